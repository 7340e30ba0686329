#!/usr/bin/env python3
"""Memory per key: Shoal vs redis-server.

For each workload (100-byte values; small integer values) and each server in turn
(never both at once), start a fresh server, record its empty RSS and used_memory, load
exactly KEYS keys with `redis-cli --pipe` (RESP generated here), verify DBSIZE == KEYS,
then record VmRSS (/proc/<pid>/status) and INFO memory used_memory, and stop it.

Env: SHOAL_BIN (default target/release/shoal-server), REDIS_BIN (default redis-server),
     KEYS (default 5000000), VALUE_SIZE (default 100), EXTRA_ARGS (appended to both servers'
     command lines), LOAD_TIMEOUT (seconds per load, default 900).
Prints a Markdown section to stdout (progress goes to stderr).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

KEYS = int(os.environ.get("KEYS", 5_000_000))
VALUE_SIZE = int(os.environ.get("VALUE_SIZE", 100))
LOAD_TIMEOUT = float(os.environ.get("LOAD_TIMEOUT", 900))
SETTLE = 1.0  # seconds between the end of the load and the measurement


def gen_commands(n, kind, chunk=10_000):
    """RESP for `SET key:<i> <value>`, i in [0, n), in chunks of `chunk` commands."""
    if kind == "str":
        if VALUE_SIZE < 10:
            sys.exit("VALUE_SIZE must be >= 10")
        pad = b"x" * (VALUE_SIZE - 10)
    for start in range(0, n, chunk):
        parts = []
        ap = parts.append
        for i in range(start, min(n, start + chunk)):
            k = b"key:%d" % i
            v = (b"%010d" % i) + pad if kind == "str" else b"%d" % i
            ap(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v))
        yield b"".join(parts)


def measure(label, binary, kind):
    with bl.Server(label, binary) as srv:
        time.sleep(0.3)
        rss0 = srv.rss_bytes()
        used0 = int(srv.info("memory")["used_memory"])
        bl.log(f"[memory] {label} {kind}: loading {KEYS:,} keys on port {srv.port} ...")
        t0 = time.monotonic()
        errors, replies = bl.redis_cli_pipe(srv.port, gen_commands(KEYS, kind), timeout=LOAD_TIMEOUT)
        load_s = time.monotonic() - t0
        if errors or replies != KEYS:
            sys.exit(f"error: {label}: redis-cli --pipe reported errors={errors} replies={replies}")
        n = srv.dbsize()
        if n != KEYS:
            sys.exit(f"error: {label}: DBSIZE is {n}, expected {KEYS}")
        time.sleep(SETTLE)
        rss1 = srv.rss_bytes()
        mem = srv.info("memory")
        used1 = int(mem["used_memory"])
        bl.log(f"[memory] {label} {kind}: loaded in {load_s:.1f}s, RSS {bl.fmt_bytes(rss1)}, "
               f"used_memory {bl.fmt_bytes(used1)}")
        return {
            "rss": rss1, "used": used1, "rss0": rss0, "used0": used0, "load_s": load_s,
            "rss_per_key": (rss1 - rss0) / KEYS, "used_per_key": (used1 - used0) / KEYS,
        }


def main():
    pairs = bl.servers()
    bl.header(f"Memory: {KEYS:,} keys", bl.command_line())
    for label, binary in pairs:
        print(f"- {label}: {bl.describe(binary)}")
    print()
    workloads = [("str", f"{VALUE_SIZE}-byte values"), ("int", "small integer values (SET key:N N)")]
    results = {}
    for kind, _ in workloads:
        for label, binary in pairs:
            results[(kind, label)] = measure(label, binary, kind)

    print("| workload | keys | shoal RSS | redis RSS | RSS ratio | shoal RSS B/key | redis RSS B/key "
          "| per-key ratio | shoal used_memory B/key | redis used_memory B/key | load s (shoal / redis) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    summary = []
    for kind, desc in workloads:
        s, r = results[(kind, "shoal")], results[(kind, "redis")]
        rss_ratio = bl.ratio(s["rss"], r["rss"])
        pk_ratio = bl.ratio(s["rss_per_key"], r["rss_per_key"])
        print(f"| {desc} | {KEYS:,} | {bl.fmt_bytes(s['rss'])} | {bl.fmt_bytes(r['rss'])} | "
              f"{rss_ratio:.2f} | {s['rss_per_key']:.1f} | {r['rss_per_key']:.1f} | {pk_ratio:.2f} | "
              f"{s['used_per_key']:.1f} | {r['used_per_key']:.1f} | "
              f"{s['load_s']:.1f} / {r['load_s']:.1f} |")
        summary.append(f"{kind} RSS ratio {rss_ratio:.2f} (per key {s['rss_per_key']:.0f} vs "
                       f"{r['rss_per_key']:.0f} B)")
    print()
    print("B/key = (value after the load - value of the empty server) / keys. Ratios are shoal / redis; "
          "lower is better for Shoal.")
    print()
    print(f"SUMMARY memory keys={KEYS}: " + "; ".join(summary))


if __name__ == "__main__":
    main()
