#!/usr/bin/env python3
"""Active expiry: how fast and how cheaply each server reclaims keys nobody touches.

For each round, a fresh Shoal and a fresh redis-server (alternating which goes first) each:
  1. sit idle for IDLE_SECONDS, measuring their idle CPU use;
  2. receive KEYS keys `SET key:<i> <32-byte value> PXAT <T0 + ttl_i>` through `redis-cli --pipe`,
     ttl_i uniform in [TTL_MIN_MS, TTL_MAX_MS] (same seeded ttl_i for both servers). T0 is
     LEAD_MS after the payload is built, so no key can expire before the load is over and the
     result does not depend on how fast each server loads;
  3. are then left alone: from T0, only DBSIZE and INFO stats (expired_keys) are polled every
     POLL seconds, until DBSIZE reaches 0 or TIME_LIMIT seconds pass.
Reported (median over rounds), with time measured from T0: t99 = when DBSIZE <= 1% of KEYS
(interpolated linearly between the two polls around the crossing), t100 = when DBSIZE == 0 (at
poll resolution), and the server's CPU time (utime+stime from /proc/<pid>/stat) from T0 to the
first poll at or after each of those points. Ideal (instant reclaim): t99 = TTL_MIN + 0.99 *
(TTL_MAX - TTL_MIN), t100 = TTL_MAX.

Env: SHOAL_BIN, REDIS_BIN, KEYS (1000000), TTL_MIN_MS (1000), TTL_MAX_MS (3000), POLL (0.5),
     TIME_LIMIT (120, seconds after T0), ROUNDS (3), IDLE_SECONDS (2), SEED (1),
     LEAD_MS (2000 + KEYS/100), EXTRA_ARGS.
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
LEAD_MS = int(os.environ.get("LEAD_MS", 2000 + KEYS // 100))

IDEAL_T99 = (TTL_MIN + 0.99 * (TTL_MAX - TTL_MIN)) / 1000
IDEAL_T100 = TTL_MAX / 1000


def ttls():
    rnd = random.Random(SEED)
    span = TTL_MAX - TTL_MIN
    return [TTL_MIN + int(rnd.random() * (span + 1)) for _ in range(KEYS)]


def payload(ttl_list, t0_ms):
    val = b"v" * 32
    parts = []
    ap = parts.append
    for i, ttl in enumerate(ttl_list):
        k = b"key:%d" % i
        at = b"%d" % (t0_ms + ttl)
        ap(b"*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$32\r\n%s\r\n$4\r\nPXAT\r\n$%d\r\n%s\r\n"
           % (len(k), k, val, len(at), at))
    data = b"".join(parts)
    chunk = 1 << 20
    return [data[i:i + chunk] for i in range(0, len(data), chunk)]


def expired_keys(conn):
    raw = conn.call("INFO", "stats").decode()
    for line in raw.splitlines():
        if line.startswith("expired_keys:"):
            return int(line.split(":", 1)[1])
    return -1


def run_one(label, binary, ttl_list):
    with bl.Server(label, binary) as srv, srv.connect() as conn:
        time.sleep(0.2)
        c0 = srv.cpu_seconds()
        time.sleep(IDLE_SECONDS)
        idle_cpu = (srv.cpu_seconds() - c0) / IDLE_SECONDS
        exp_before = expired_keys(conn)
        # T0 on the wall clock (what PXAT uses) and on the monotonic clock (what we sleep on).
        wall, mono = time.time(), time.monotonic()
        t0_ms = int(wall * 1000) + LEAD_MS
        t0 = mono + (t0_ms / 1000 - wall)
        chunks = payload(ttl_list, t0_ms)
        t_load = time.monotonic()
        errors, replies = bl.redis_cli_pipe(srv.port, chunks, timeout=600)
        load_end = time.monotonic()
        if errors or replies != KEYS:
            sys.exit(f"error: {label}: redis-cli --pipe reported errors={errors} replies={replies}")
        if load_end > t0:
            bl.log(f"warning: {label}: the load ended {load_end - t0:.2f}s after T0; raise LEAD_MS")
        n_loaded = int(conn.call("DBSIZE"))
        bl.log(f"[expiry] {label}: loaded {KEYS:,} keys in {load_end - t_load:.2f}s, DBSIZE {n_loaded:,}; "
               f"T0 in {t0 - time.monotonic():.2f}s")
        if time.monotonic() < t0:
            time.sleep(t0 - time.monotonic())
        cpu0 = srv.cpu_seconds()
        exp0 = expired_keys(conn) - exp_before
        t99 = cpu99 = t100 = cpu100 = exp99 = None
        n = n_loaded
        thr = KEYS * 0.01
        prev_el, prev_n = 0.0, n_loaded
        k = 0
        while True:
            k += 1
            delay = t0 + k * POLL - time.monotonic()
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
                exp99 = expired_keys(conn) - exp_before
            prev_el, prev_n = el, n
            if n == 0:
                t100, cpu100 = el, cpu - cpu0
                break
            if el >= TIME_LIMIT:
                break
        el = time.monotonic() - t0
        cpu_end = srv.cpu_seconds() - cpu0
        exp_total = expired_keys(conn) - exp_before
        bl.log(f"[expiry] {label}: t99={f(t99)} t100={f(t100)} DBSIZE at end {n:,} expired_keys "
               f"+{exp_total:,} (+{exp0:,} before T0) CPU {cpu_end:.2f}s over {el:.1f}s")
        if t99 is not None and exp99 < KEYS * 0.98:
            bl.log(f"warning: {label}: DBSIZE fell to <=1% but INFO expired_keys grew by only {exp99:,}; "
                   f"DBSIZE may not count logically expired keys")
        return {"t99": t99, "cpu99": cpu99, "t100": t100, "cpu100": cpu100, "n0": n_loaded,
                "n_end": n, "exp": exp_total, "idle_cpu": idle_cpu, "load_s": load_end - t_load,
                "cpu_end": cpu_end, "el_end": el}


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def f(v, fmt="{:.2f}"):
    return "n/a" if v is None else fmt.format(v)


def main():
    if TTL_MIN < 1 or TTL_MAX < TTL_MIN:
        sys.exit("need 1 <= TTL_MIN_MS <= TTL_MAX_MS")
    pairs = dict(bl.servers())
    bl.header(f"Active expiry: {KEYS:,} keys expiring {TTL_MIN}-{TTL_MAX} ms after T0, no client touching them",
              bl.command_line())
    print(f"- shoal: {bl.describe(pairs['shoal'])}")
    print(f"- redis: {bl.describe(pairs['redis'])}")
    print(f"- {ROUNDS} round(s), medians shown. Keys are set with PXAT T0 + uniform({TTL_MIN}, {TTL_MAX}) ms, "
          f"T0 being after the load; times are from T0; polled every {POLL}s (DBSIZE + INFO stats), "
          f"time limit {TIME_LIMIT:.0f}s")
    print(f"- t99: DBSIZE <= 1% of the keys (interpolated between polls); t100: DBSIZE == 0 (poll resolution). "
          f"Ideal, if keys vanished at their deadline: t99 = {IDEAL_T99:.2f}s, t100 = {IDEAL_T100:.2f}s. "
          f"CPU = utime+stime of the server from T0.")
    print()
    ttl_list = ttls()
    res = {"shoal": [], "redis": []}
    for rnd in range(ROUNDS):
        order = ["shoal", "redis"] if rnd % 2 == 0 else ["redis", "shoal"]
        for label in order:
            bl.log(f"[expiry] round {rnd + 1}/{ROUNDS} {label}")
            res[label].append(run_one(label, pairs[label], ttl_list))

    print("| server | load s | t99 s | t99 lag s | CPU s to t99 | CPU % to t99 | t100 s | CPU s to t100 "
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
        lag = None if t99 is None else t99 - IDEAL_T99
        print(f"| {label} | {f(med([r['load_s'] for r in rs]))} | {f(t99)} | {f(lag)} | {f(cpu99)} | "
              f"{f(pct99, '{:.0f}')} | {f(t100)} | {f(cpu100)} | "
              f"{med([r['exp'] for r in rs]):,.0f} | {med([r['n_end'] for r in rs]):,.0f} | "
              f"{f(med([100 * r['idle_cpu'] for r in rs]), '{:.1f}')} | {reached}/{len(rs)} |")
    print()
    (st, sc), (rt, rc) = m["shoal"], m["redis"]
    tr = f(st / rt) if st and rt else "n/a"
    cr = f(sc / rc) if sc is not None and rc else "n/a"
    print(f"SUMMARY expiry keys={KEYS}: t99 shoal {f(st)}s vs redis {f(rt)}s (ratio {tr}, ideal {IDEAL_T99:.2f}s); "
          f"CPU to t99 shoal {f(sc)}s vs redis {f(rc)}s (ratio {cr})")


if __name__ == "__main__":
    main()
