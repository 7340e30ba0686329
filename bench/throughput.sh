#!/usr/bin/env bash
# Throughput and latency: Shoal vs redis-server, run alternately in the same run.
#
# For each round and each mode (no pipelining; -P 16) a fresh Shoal and a fresh redis-server
# (alternating which goes first) each get
#   redis-benchmark -t $TESTS -n $N -r 1000000 -c $CLIENTS [-P 16] --csv
# Then a Markdown table of medians over rounds: rps, p50 and p99 for each, and shoal/redis ratios.
#
# Env: SHOAL_BIN (default target/release/shoal-server), REDIS_BIN (default redis-server),
#      N (default 1000000), ROUNDS (3), CLIENTS (50), TESTS (set,get,incr,mset),
#      KEYSPACE (-r, 1000000), PIPELINES ("1 16"), BENCH_TIMEOUT (seconds per redis-benchmark
#      run, 900), EXTRA_ARGS (appended to both servers' command lines), KEEP_RAW=1 (keep raw CSV).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$BENCH_DIR")

SHOAL_BIN=${SHOAL_BIN:-target/release/shoal-server}
REDIS_BIN=${REDIS_BIN:-redis-server}
N=${N:-1000000}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-50}
TESTS=${TESTS:-set,get,incr,mset}
KEYSPACE=${KEYSPACE:-1000000}
PIPELINES=${PIPELINES:-1 16}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-900}
EXTRA_ARGS=${EXTRA_ARGS:-}

resolve_bin() {
    local p=$1
    if [[ $p != /* && -x $REPO_DIR/$p ]]; then p=$REPO_DIR/$p; fi
    if [[ $p != */* ]]; then p=$(command -v "$p" || true); fi
    if [[ -z $p || ! -x $p || -d $p ]]; then
        echo "error: server binary not found or not executable: $1" >&2
        [[ $1 == *shoal* ]] && echo "  build it with: cargo build --release -p shoal-server (or set SHOAL_BIN)" >&2
        exit 2
    fi
    echo "$p"
}
SHOAL=$(resolve_bin "$SHOAL_BIN")
REDIS=$(resolve_bin "$REDIS_BIN")
for tool in redis-benchmark redis-cli python3 timeout; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found" >&2; exit 2; }
done

WORK=$(mktemp -d -t shoal-throughput.XXXXXX)
SERVER_PID=""
BENCH_PID=""
cleanup() {
    if [[ -n $BENCH_PID ]]; then
        kill "$BENCH_PID" 2>/dev/null || true   # timeout(1) passes the signal on to redis-benchmark
        wait "$BENCH_PID" 2>/dev/null || true
    fi
    if [[ -n $SERVER_PID ]]; then
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ ${KEEP_RAW:-0} == 1 ]]; then echo "raw results kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_server LABEL BIN -> sets SERVER_PID, PORT
start_server() {
    local label=$1 bin=$2 dir
    PORT=$(free_port)
    dir=$WORK/$label-$PORT
    mkdir -p "$dir"
    # shellcheck disable=SC2086  # EXTRA_ARGS is deliberately word-split
    (cd "$dir" && exec "$bin" --port "$PORT" --bind 127.0.0.1 --save '' $EXTRA_ARGS) \
        >"$dir/server.log" 2>&1 &
    SERVER_PID=$!
    local i
    for i in $(seq 1 200); do
        if [[ $(redis-cli -h 127.0.0.1 -p "$PORT" PING 2>/dev/null) == PONG ]]; then return 0; fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "error: $label ($bin) did not start on port $PORT; log:" >&2
    tail -20 "$dir/server.log" >&2
    exit 1
}

stop_server() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        local i
        for i in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}

# Sanity check: the commands under test must answer correctly, or the numbers mean nothing.
check_server() {
    local label=$1 out
    out=$(redis-cli -h 127.0.0.1 -p "$PORT" SET bench:check 41 2>&1)
    [[ $out == OK ]] || { echo "error: $label: SET replied '$out'" >&2; exit 1; }
    out=$(redis-cli -h 127.0.0.1 -p "$PORT" INCR bench:check 2>&1)
    [[ $out == 42 ]] || { echo "error: $label: INCR replied '$out'" >&2; exit 1; }
    out=$(redis-cli -h 127.0.0.1 -p "$PORT" MSET bench:a 1 bench:b 2 2>&1)
    [[ $out == OK ]] || { echo "error: $label: MSET replied '$out'" >&2; exit 1; }
    out=$(redis-cli -h 127.0.0.1 -p "$PORT" GET bench:b 2>&1)
    [[ $out == 2 ]] || { echo "error: $label: GET replied '$out'" >&2; exit 1; }
    redis-cli -h 127.0.0.1 -p "$PORT" DEL bench:check bench:a bench:b >/dev/null
}

# Run a private copy of Shoal, so that a rebuild during the run cannot mix two builds.
SHOAL_ORIG=$SHOAL
SHOAL=$WORK/bin/$(basename "$SHOAL_ORIG")
mkdir -p "$WORK/bin"
cp -p "$SHOAL_ORIG" "$SHOAL"

RAW=$WORK/results.csv
echo "server,round,pipeline,test,rps,avg,min,p50,p95,p99,max" >"$RAW"
START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
START_TS=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
T0=$SECONDS

for round in $(seq 1 "$ROUNDS"); do
    for pl in $PIPELINES; do
        # Alternate which server goes first, so neither always gets the quieter slot.
        if (( (round + ${pl}) % 2 == 1 )); then order="shoal redis"; else order="redis shoal"; fi
        for label in $order; do
            if [[ $label == shoal ]]; then bin=$SHOAL; else bin=$REDIS; fi
            start_server "$label" "$bin"
            check_server "$label"
            echo "[throughput] round $round/$ROUNDS -P $pl $label (port $PORT) ..." >&2
            out=$WORK/$label-$round-$pl.csv
            status=0
            # In the background + wait, so that a signal to this script is handled at once.
            timeout -k 5 "$BENCH_TIMEOUT" redis-benchmark -h 127.0.0.1 -p "$PORT" -t "$TESTS" \
                -n "$N" -r "$KEYSPACE" -c "$CLIENTS" -P "$pl" --csv >"$out" 2>"$out.err" &
            BENCH_PID=$!
            wait "$BENCH_PID" || status=$?
            BENCH_PID=""
            if ((status != 0)); then
                echo "warning: redis-benchmark against $label exited with $status (timeout=$BENCH_TIMEOUT s); partial results kept" >&2
                tail -3 "$out.err" >&2 || true
            fi
            if ! kill -0 "$SERVER_PID" 2>/dev/null; then
                echo "warning: $label died during the benchmark; log:" >&2
                tail -20 "$WORK/$label-$PORT/server.log" >&2 || true
            fi
            # "SET","41152.26","0.801",... -> shoal,1,1,SET,41152.26,...
            tail -n +2 "$out" | tr -d '"' | sed -E 's/ \([0-9]+ keys\)//' |
                awk -F, -v s="$label" -v r="$round" -v p="$pl" 'NF>=8 {print s","r","p","$0}' >>"$RAW"
            stop_server
        done
    done
done
ELAPSED=$((SECONDS - T0))

CMD="redis-benchmark -t $TESTS -n $N -r $KEYSPACE -c $CLIENTS [-P 16] --csv"
ENVS=""
for v in SHOAL_BIN REDIS_BIN N ROUNDS CLIENTS TESTS KEYSPACE PIPELINES EXTRA_ARGS; do
    if [[ -n ${!v+x} && -n ${!v} ]] && env | grep -q "^$v="; then ENVS+="$v=${!v} "; fi
done

python3 - "$RAW" <<PYEOF
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
tests = []
for r in rows:
    if r["test"] not in tests:
        tests.append(r["test"])
pls = "$PIPELINES".split()
def vals(server, pl, test, field):
    return {r["round"]: float(r[field]) for r in rows
            if r["server"] == server and r["pipeline"] == pl and r["test"] == test}
def med(server, pl, test, field):
    v = list(vals(server, pl, test, field).values())
    return (statistics.median(v), len(v)) if v else (float("nan"), 0)
def pratio(pl, test, field):
    # Median over rounds of the ratio of the two back-to-back runs of the same round:
    # background load that drifts between rounds cancels out of each pair.
    s, r = vals("shoal", pl, test, field), vals("redis", pl, test, field)
    q = [s[k] / r[k] for k in s if k in r and r[k] > 0]
    return statistics.median(q) if q else float("nan")
print("### Throughput: redis-benchmark, Shoal vs redis-server")
print()
print("- Date: $START_TS (load average at start: $START_LOAD; wall time ${ELAPSED}s)")
print("- Command: \`${ENVS}bench/throughput.sh\`, each round running \`$CMD\` against a fresh server of each kind, alternately")
print("- shoal: \`$SHOAL_ORIG\` (modified $(date -r "$SHOAL" '+%Y-%m-%d %H:%M:%S'), sha256 $(sha256sum "$SHOAL" | cut -c1-12))")
print("- redis: \`$REDIS\` (modified $(date -r "$REDIS" '+%Y-%m-%d %H:%M:%S'), sha256 $(sha256sum "$REDIS" | cut -c1-12)) $("$REDIS" --version | awk '{print $3}')")
print("- $ROUNDS rounds; rps and latencies are medians over rounds; a ratio is shoal / redis, computed per round (the two runs of a round are back to back) and then the median over rounds is shown (throughput: higher is better; latency: lower is better)")
print()
print("| test | mode | shoal rps | redis rps | rps ratio | shoal p50 ms | redis p50 ms | p50 ratio | shoal p99 ms | redis p99 ms | p99 ratio | rounds |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
summ = []
worst_rps = None; worst_p99 = None
for pl in pls:
    mode = "no pipelining" if pl == "1" else f"-P {pl}"
    for t in tests:
        srps, ns = med("shoal", pl, t, "rps"); rrps, nr = med("redis", pl, t, "rps")
        s50, _ = med("shoal", pl, t, "p50"); r50, _ = med("redis", pl, t, "p50")
        s99, _ = med("shoal", pl, t, "p99"); r99, _ = med("redis", pl, t, "p99")
        rr, r50r, r99r = pratio(pl, t, "rps"), pratio(pl, t, "p50"), pratio(pl, t, "p99")
        print(f"| {t} | {mode} | {srps:,.0f} | {rrps:,.0f} | {rr:.2f} | {s50:.3f} | {r50:.3f} | {r50r:.2f} | {s99:.3f} | {r99:.3f} | {r99r:.2f} | {ns}/{nr} |")
        summ.append(f"{t}{'' if pl == '1' else '/P'+pl} {rr:.2f}x")
        worst_rps = rr if worst_rps is None or rr < worst_rps else worst_rps
        worst_p99 = r99r if worst_p99 is None or r99r > worst_p99 else worst_p99
print()
print(f"SUMMARY throughput rounds=$ROUNDS n=$N: rps ratio min {worst_rps:.2f}, p99 ratio max {worst_p99:.2f} (target: rps >= 1.00, p99 <= 1.00); " + ", ".join(summ))
PYEOF
