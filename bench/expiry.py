#!/usr/bin/env python3
"""Active expiry: how fast and how cheaply each server reclaims keys nobody touches.

For each round, a fresh Shoal and a fresh redis-server (alternating which goes first) each:
  1. sit idle for IDLE_SECONDS, measuring their idle CPU use;
  2. receive KEYS keys `SET key:<i> <32-byte value> PX <ttl>` (ttl uniform in
     [TTL_MIN_MS, TTL_MAX_MS], same seeded payload for both) through `redis-cli --pipe`;
  3. are then left alone: only DBSIZE and INFO stats (expired_keys) are polled every POLL
     seconds, until DBSIZE reaches 0 or TIME_LIMIT seconds pass.
Reported (median over rounds): time from the end of the load until DBSIZE <= 1% of KEYS (t99,
interpolated linearly between the two polls around the crossing), until DBSIZE == 0 (t100, at
poll resolution), and the server's CPU time (utime+stime from /proc/<pid>/stat) from the end of
the load to the first poll at or after each of those points.

Env: SHOAL_BIN, REDIS_BIN, KEYS (1000000), TTL_MIN_MS (1000), TTL_MAX_MS (3000), POLL (0.5),
     TIME_LIMIT (120), ROUNDS (3), IDLE_SECONDS (2), SEED (1), EXTRA_ARGS.
"""

import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

KEYS = int(os.environ.get("KEYS", 1_000_000))
TTL_MIN = int(os.environ.get("TTL_MIN_MS", 1000))
TTL_MAX = int(os.environ.get("TTL_MAX_MS", 3000))
POLL = float(os.environ.get("POLL", 0.5))
TIME_LIMIT = float(os.environ.get("TIME_LIMIT", 120))
ROUNDS = int(os.environ.get("ROUNDS", 3))
IDLE_SECONDS = float(os.environ.get("IDLE_SECONDS", 2))
SEED = int(os.environ.get("SEED", 1))


def payload():
    rnd = random.Random(SEED)
    span = TTL_MAX - TTL_MIN
    val = b"v" * 32
    parts = []
    ap = parts.append
    for i in range(KEYS):
        k = b"key:%d" % i
        ttl = b"%d" % (TTL_MIN + int(rnd.random() * (span + 1)))
        ap(b"*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$32\r\n%s\r\n$2\r\nPX\r\n$%d\r\n%s\r\n"
           % (len(k), k, val, len(ttl), ttl))
    data = b"".join(parts)
    chunk = 1 << 20
    return [data[i:i + chunk] for i in range(0, len(data), chunk)]


def expired_keys(conn):
    raw = conn.call("INFO", "stats").decode()
    for line in raw.splitlines():
        if line.startswith("expired_keys:"):
            return int(line.split(":", 1)[1])
    return -1


def run_one(label, binary, chunks):
    with bl.Server(label, binary) as srv, srv.connect() as conn:
        time.sleep(0.2)
        c0 = srv.cpu_seconds()
        time.sleep(IDLE_SECONDS)
        idle_cpu = (srv.cpu_seconds() - c0) / IDLE_SECONDS
        exp0 = expired_keys(conn)
        t_load = time.monotonic()
        errors, replies = bl.redis_cli_pipe(srv.port, chunks, timeout=600)
        if errors or replies != KEYS:
            sys.exit(f"error: {label}: redis-cli --pipe reported errors={errors} replies={replies}")
        t0 = time.monotonic()
        cpu0 = srv.cpu_seconds()
        n0 = int(conn.call("DBSIZE"))
        bl.log(f"[expiry] {label}: loaded {KEYS:,} keys in {t0 - t_load:.2f}s, DBSIZE {n0:,} at load end")
        t99 = cpu99 = t100 = cpu100 = exp99 = None
        n = n0
        thr = KEYS * 0.01
        prev_el, prev_n = 0.0, n0
        next_poll = t0
        while True:
            next_poll += POLL
            delay = next_poll - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            now = time.monotonic()
            n = int(conn.call("DBSIZE"))
            cpu = srv.cpu_seconds()
            el = now - t0
            if t99 is None and n <= thr:
                # Interpolate linearly between the last two polls; CPU is read at this poll.
                t99 = prev_el + (el - prev_el) * (prev_n - thr) / (prev_n - n) if prev_n > n else el
                cpu99 = cpu - cpu0
                exp99 = expired_keys(conn) - exp0
            prev_el, prev_n = el, n
            if n == 0:
                t100, cpu100 = el, cpu - cpu0
                break
            if el >= TIME_LIMIT:
                break
        el = time.monotonic() - t0
        cpu_end = srv.cpu_seconds() - cpu0
        exp_total = expired_keys(conn) - exp0
        bl.log(f"[expiry] {label}: t99={t99} t100={t100} DBSIZE at end {n:,} expired_keys +{exp_total:,} "
               f"cpu to end {cpu_end:.2f}s over {el:.1f}s")
        if t99 is not None and exp99 < KEYS * 0.98:
            bl.log(f"warning: {label}: DBSIZE fell to <=1% but INFO expired_keys grew by only {exp99:,}; "
                   f"DBSIZE may not count logically expired keys")
        return {"t99": t99, "cpu99": cpu99, "t100": t100, "cpu100": cpu100, "n0": n0, "n_end": n,
                "exp": exp_total, "idle_cpu": idle_cpu, "load_s": t0 - t_load,
                "cpu_end": cpu_end, "el_end": el}


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def f(v, fmt="{:.2f}"):
    return "n/a" if v is None else fmt.format(v)


def main():
    pairs = dict(bl.servers())
    bl.header(f"Active expiry: {KEYS:,} keys with PX {TTL_MIN}-{TTL_MAX} ms, no client touching them",
              bl.command_line())
    print(f"- shoal: `{pairs['shoal']}`; redis: `{pairs['redis']}`")
    print(f"- {ROUNDS} round(s), medians shown; polled every {POLL}s (DBSIZE + INFO stats), "
          f"time limit {TIME_LIMIT:.0f}s; times are from the end of the load; "
          f"t99 is interpolated between polls, t100 is at poll resolution; CPU = utime+stime of the server")
    print(f"- For reference: 99% of the keys' deadlines fall within ~{(TTL_MIN + 0.99 * (TTL_MAX - TTL_MIN)) / 1000:.2f}s "
          f"of the end of the load (less if the load itself is slow)")
    print()
    bl.log(f"[expiry] generating payload for {KEYS:,} keys ...")
    chunks = payload()
    res = {"shoal": [], "redis": []}
    for rnd in range(ROUNDS):
        order = ["shoal", "redis"] if rnd % 2 == 0 else ["redis", "shoal"]
        for label in order:
            bl.log(f"[expiry] round {rnd + 1}/{ROUNDS} {label}")
            res[label].append(run_one(label, pairs[label], chunks))

    print("| server | load s | DBSIZE at load end | t99 s | CPU s to t99 | CPU % to t99 | t100 s | CPU s to t100 "
          "| expired_keys | DBSIZE at end | idle CPU % | rounds reaching 99% |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    m = {}
    for label in ("shoal", "redis"):
        rs = res[label]
        t99 = med([r["t99"] for r in rs])
        cpu99 = med([r["cpu99"] for r in rs])
        t100 = med([r["t100"] for r in rs]) if all(r["t100"] is not None for r in rs) else None
        cpu100 = med([r["cpu100"] for r in rs]) if t100 is not None else None
        pct99 = med([100 * r["cpu99"] / r["t99"] for r in rs if r["t99"]])
        m[label] = (t99, cpu99)
        reached = sum(1 for r in rs if r["t99"] is not None)
        print(f"| {label} | {f(med([r['load_s'] for r in rs]))} | {med([r['n0'] for r in rs]):,.0f} | "
              f"{f(t99)} | {f(cpu99)} | {f(pct99, '{:.0f}')} | {f(t100)} | {f(cpu100)} | "
              f"{med([r['exp'] for r in rs]):,.0f} | {med([r['n_end'] for r in rs]):,.0f} | "
              f"{f(med([100 * r['idle_cpu'] for r in rs]), '{:.1f}')} | {reached}/{len(rs)} |")
    print()
    (st, sc), (rt, rc) = m["shoal"], m["redis"]
    tr = f(st / rt) if st and rt else "n/a"
    cr = f(sc / rc) if sc is not None and rc else "n/a"
    print(f"SUMMARY expiry keys={KEYS}: t99 shoal {f(st)}s vs redis {f(rt)}s (ratio {tr}); "
          f"CPU to t99 shoal {f(sc)}s vs redis {f(rc)}s (ratio {cr})")


if __name__ == "__main__":
    main()
