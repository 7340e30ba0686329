#!/usr/bin/env bash
# Cost of metrics in CPU instructions, which a shared, noisy machine cannot blur.
#
# Runs Shoal under valgrind's callgrind twice with one worker thread:
#   off: --latency-tracking no, no metrics port;
#   on:  --latency-tracking yes --metrics-port <free port>, then SCRAPES scrapes of /metrics;
# each time with `redis-benchmark -t $TEST -n $N -P $PIPELINE -c 10 -r 1000000`. Prints the
# instructions spent in the connection tasks (everything a command costs: parse, execute,
# statistics, reply, write) per command for each, their ratio, and the instructions of one scrape
# (metrics::render), with the share of one core that one scrape per second costs at RATE
# commands per second.
#
# Env: SHOAL_BIN (default target/release/shoal-server), N (200000), TEST (set), PIPELINE (16),
#      SCRAPES (10), RATE (500000). Needs valgrind, callgrind_annotate, redis-benchmark,
#      redis-cli, curl, python3.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$BENCH_DIR")
SHOAL_BIN=${SHOAL_BIN:-$REPO_DIR/target/release/shoal-server}
N=${N:-200000}
TEST=${TEST:-set}
PIPELINE=${PIPELINE:-16}
SCRAPES=${SCRAPES:-10}
RATE=${RATE:-500000}
for tool in valgrind callgrind_annotate redis-benchmark redis-cli curl python3; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found" >&2; exit 2; }
done
[[ -x $SHOAL_BIN ]] || { echo "error: $SHOAL_BIN not found (cargo build --release -p shoal-server)" >&2; exit 2; }

WORK=$(mktemp -d -t shoal-metrics-cost.XXXXXX)
VG_PID=""
cleanup() {
    if [[ -n $VG_PID ]]; then kill "$VG_PID" 2>/dev/null || true; wait "$VG_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# inclusive instructions of the first function matching $2 in callgrind output $1
inclusive() {
    # The whole report goes to a file first: stopping a pipe early would fail under pipefail.
    callgrind_annotate --inclusive=yes "$1" >"$1.txt" 2>/dev/null
    awk -v pat="$2" '!/=>/ && index($0, pat) { gsub(",", "", $1); print $1; exit }' "$1.txt"
}

run() {
    local mode=$1 port metrics_port args
    port=$(free_port)
    args=(--port "$port" --bind 127.0.0.1 --save '' --worker-threads 1)
    if [[ $mode == on ]]; then
        metrics_port=$(free_port)
        args+=(--latency-tracking yes --metrics-port "$metrics_port")
    else
        args+=(--latency-tracking no)
    fi
    valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$mode" "$SHOAL_BIN" "${args[@]}" \
        >"$WORK/server.$mode.log" 2>&1 &
    VG_PID=$!
    for _ in $(seq 1 200); do
        redis-cli -p "$port" PING >/dev/null 2>&1 && break
        sleep 0.2
    done
    redis-benchmark -p "$port" -t "$TEST" -n "$N" -P "$PIPELINE" -c 10 -r 1000000 -q >/dev/null
    if [[ $mode == on ]]; then
        for _ in $(seq 1 "$SCRAPES"); do
            curl -sf "http://127.0.0.1:$metrics_port/metrics" >/dev/null
        done
    fi
    redis-cli -p "$port" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
    wait "$VG_PID" || true
    VG_PID=""
}

echo "running off and on under callgrind (a minute or two)..." >&2
run off
run on
off=$(inclusive "$WORK/cg.off" 'connection::serve::')
on=$(inclusive "$WORK/cg.on" 'connection::serve::')
render=$(inclusive "$WORK/cg.on" 'metrics::render')
python3 - "$off" "$on" "$render" "$N" "$SCRAPES" "$RATE" "$TEST" "$PIPELINE" <<'EOF'
import sys
off, on, render, n, scrapes, rate = (int(x) for x in sys.argv[1:7])
test, pipeline = sys.argv[7], sys.argv[8]
per_off, per_on = off / n, on / n
per_scrape = render / scrapes
print(f"| command path (instructions per {test.upper()}, -P {pipeline}) | off | on | on/off |")
print("|---|---|---|---|")
print(f"| connection task, inclusive | {per_off:,.0f} | {per_on:,.0f} | {per_on / per_off:.4f} |")
print()
share = per_scrape / (per_on * rate)
print(f"One scrape of /metrics: {per_scrape:,.0f} instructions, {share * 100:.3f} % of the "
      f"instructions of {rate:,} commands (one second at that rate).")
print(f"SUMMARY metrics-cost-instructions command path on/off {per_on / per_off:.4f}, "
      f"scrape per second {share * 100:.3f} %")
EOF
