#!/usr/bin/env bash
# Runs every test of the workspace: unit and property tests, the differential suite against a
# real redis-server, the real-client suites (redis crate, redis-cli, redis-py) and the replay of
# the parser's fuzz corpus. Needs redis-server, redis-cli and redis-benchmark on PATH and the
# Python packages redis and pytest (.ci/run installs them).
set -euo pipefail
cd "$(dirname "$0")"
cargo build --workspace --all-targets
cargo test --workspace --no-fail-fast
SHOAL_SERVER_BIN="$PWD/target/debug/shoal-server" python3 -m pytest -q tests/python
