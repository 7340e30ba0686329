#!/usr/bin/env python3
"""Eviction quality: hit ratio of a cache-aside workload under maxmemory + allkeys-lru.

Each server is started with `--maxmemory $MAXMEMORY --maxmemory-policy $POLICY`, then:
  1. preload (PRELOAD=1): SET every key of the keyspace once (key-number order, unrelated to
     popularity),
     so memory is full and eviction is running before the measured load starts;
  2. warm-up: WARMUP cache-aside operations (not counted);
  3. measure: OPS cache-aside operations: GET key; on a miss, SET key value.
Keys are drawn from a Zipf distribution (exponent ZIPF_S) over KEYSPACE keys; the sequence is
generated once (seeded) and replayed identically against both servers. Operations are
pipelined in batches of BATCH GETs, followed by one pipelined batch of SETs for the batch's
distinct misses. Values are VALUE_SIZE bytes and carry their key's number, so every hit is
checked for the right value.

Env: SHOAL_BIN, REDIS_BIN, MAXMEMORY (100mb), POLICY (allkeys-lru), KEYSPACE (2000000),
     OPS (2000000), WARMUP (1000000), ZIPF_S (1.0), BATCH (1000), VALUE_SIZE (100), SEED (42),
     PRELOAD (1), ROUNDS (1; with more, servers alternate and medians are shown), EXTRA_ARGS.
"""

import bisect
import itertools
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

MAXMEMORY = os.environ.get("MAXMEMORY", "100mb")
POLICY = os.environ.get("POLICY", "allkeys-lru")
KEYSPACE = int(os.environ.get("KEYSPACE", 2_000_000))
OPS = int(os.environ.get("OPS", 2_000_000))
WARMUP = int(os.environ.get("WARMUP", 1_000_000))
ZIPF_S = float(os.environ.get("ZIPF_S", 1.0))
BATCH = int(os.environ.get("BATCH", 1000))
VALUE_SIZE = int(os.environ.get("VALUE_SIZE", 100))
SEED = int(os.environ.get("SEED", 42))
PRELOAD = os.environ.get("PRELOAD", "1") not in ("0", "", "no", "false")
ROUNDS = int(os.environ.get("ROUNDS", 1))

PAD = b"x" * (VALUE_SIZE - 10)


def value(k):
    return (b"%010d" % k) + PAD


def zipf_sequence(n, keyspace, s, rnd):
    """n key numbers in [0, keyspace): rank r (1-based) has weight 1/r^s; ranks are mapped to
    key numbers through a seeded permutation so popularity is unrelated to key order."""
    cdf = list(itertools.accumulate(1.0 / (k ** s) for k in range(1, keyspace + 1)))
    total = cdf[-1]
    rr = rnd.random
    ranks = map(bisect.bisect, itertools.repeat(cdf), [rr() * total for _ in range(n)])
    perm = list(range(keyspace))
    rnd.shuffle(perm)
    seq = [perm[min(r, keyspace - 1)] for r in ranks]
    return seq, perm


def set_cmd(k):
    key = b"key:%d" % k
    return b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, VALUE_SIZE, value(k))


def get_cmd(k):
    key = b"key:%d" % k
    return b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key)


def count_set_errors(conn, n, what, first_error):
    """Read n SET replies; return how many were not +OK (e.g. -OOM: a real outcome for a cache,
    so it is counted and reported rather than fatal). The first one is logged."""
    errors = 0
    for _ in range(n):
        r = conn.read_reply()
        if r != b"OK":
            errors += 1
            if not first_error:
                first_error.append(r)
                bl.log(f"warning: {what}: SET replied {r!r} (counting further errors silently)")
    return errors


def run_one(label, binary, preload_order, seq):
    args = ["--maxmemory", MAXMEMORY, "--maxmemory-policy", POLICY]
    with bl.Server(label, binary, args) as srv, srv.connect(timeout=120) as conn:
        t_start = time.monotonic()
        first_error = []
        pre_errors = 0
        if PRELOAD:
            for i in range(0, len(preload_order), BATCH):
                part = preload_order[i:i + BATCH]
                conn.send(b"".join(map(set_cmd, part)))
                pre_errors += count_set_errors(conn, len(part), f"{label} preload", first_error)
        t_pre = time.monotonic() - t_start
        evicted_pre = int(srv.info("stats").get("evicted_keys", -1))
        bl.log(f"[eviction] {label}: preload {len(preload_order):,} keys in {t_pre:.1f}s, "
               f"DBSIZE {srv.dbsize():,}, evicted_keys {evicted_pre:,}, SET errors {pre_errors:,}")
        hits = misses = bad = set_errors = 0
        t_measure = None
        for i in range(0, len(seq), BATCH):
            if i >= WARMUP and t_measure is None:
                hits = misses = bad = set_errors = 0
                t_measure = time.monotonic()
                evicted0 = int(srv.info("stats").get("evicted_keys", -1))
            part = seq[i:i + BATCH]
            conn.send(b"".join(map(get_cmd, part)))
            missed = []
            for k in part:
                r = conn.read_reply()
                if r is None:
                    missed.append(k)
                elif isinstance(r, bytes) and len(r) == VALUE_SIZE and r[:10] == b"%010d" % k:
                    hits += 1
                else:
                    bad += 1
            misses += len(missed)
            if missed:
                uniq = list(dict.fromkeys(missed))
                conn.send(b"".join(map(set_cmd, uniq)))
                set_errors += count_set_errors(conn, len(uniq), label, first_error)
        el = time.monotonic() - t_measure
        stats = srv.info("stats")
        mem = srv.info("memory")
        res = {
            "hits": hits, "misses": misses, "bad": bad, "set_errors": set_errors,
            "pre_errors": pre_errors,
            "hit_ratio": hits / (hits + misses + bad),
            "evicted": int(stats.get("evicted_keys", -1)) - evicted0,
            "dbsize": srv.dbsize(),
            "used_memory": int(mem.get("used_memory", -1)),
            "rss": srv.rss_bytes(),
            "ops_s": (OPS / el) if el > 0 else 0.0,
        }
        bl.log(f"[eviction] {label}: hit ratio {res['hit_ratio'] * 100:.2f}% "
               f"(hits {hits:,} misses {misses:,} bad {bad}, SET errors {set_errors:,}), "
               f"evicted {res['evicted']:,}, "
               f"DBSIZE {res['dbsize']:,}, {res['ops_s']:,.0f} ops/s")
        if bad:
            bl.log(f"warning: {label}: {bad} GETs returned a wrong value")
        return res


def main():
    if OPS <= 0 or VALUE_SIZE < 10:
        sys.exit("OPS must be > 0 and VALUE_SIZE >= 10")
    WARMUP_ROUNDED = -(-WARMUP // BATCH) * BATCH  # measurement starts on a batch boundary
    pairs = dict(bl.servers())
    bl.header(f"Eviction: cache-aside under maxmemory {MAXMEMORY} {POLICY}, Zipf s={ZIPF_S} over "
              f"{KEYSPACE:,} keys", bl.command_line())
    print(f"- shoal: {bl.describe(pairs['shoal'])}")
    print(f"- redis: {bl.describe(pairs['redis'])}")
    print(f"- {'preload of every key, then ' if PRELOAD else ''}{WARMUP_ROUNDED:,} warm-up ops, then "
          f"{OPS:,} measured ops (GET; SET on miss), {VALUE_SIZE}-byte values, batches of {BATCH}, "
          f"seed {SEED}, {ROUNDS} round(s)")
    print()
    t = time.monotonic()
    rnd = random.Random(SEED)
    seq, perm = zipf_sequence(WARMUP_ROUNDED + OPS, KEYSPACE, ZIPF_S, rnd)
    # Key-number order, which the permutation makes unrelated to popularity.
    preload_order = range(KEYSPACE) if PRELOAD else []
    distinct = len(set(seq[WARMUP_ROUNDED:]))
    bl.log(f"[eviction] generated {len(seq):,} Zipf keys in {time.monotonic() - t:.1f}s "
           f"({distinct:,} distinct in the measured part)")

    res = {"shoal": [], "redis": []}
    for r in range(ROUNDS):
        order = ["shoal", "redis"] if r % 2 == 0 else ["redis", "shoal"]
        for label in order:
            bl.log(f"[eviction] round {r + 1}/{ROUNDS} {label}")
            res[label].append(run_one(label, pairs[label], preload_order, seq))

    print("| server | hit ratio % | hits | misses | wrong values | SET errors (measured / preload) "
          "| evicted keys (measured) | keys at end | used_memory | RSS | client ops/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    med = {}
    for label in ("shoal", "redis"):
        rs = res[label]
        m = {k: statistics.median([x[k] for x in rs]) for k in rs[0]}
        med[label] = m
        print(f"| {label} | {m['hit_ratio'] * 100:.2f} | {m['hits']:,.0f} | {m['misses']:,.0f} | "
              f"{m['bad']:,.0f} | {m['set_errors']:,.0f} / {m['pre_errors']:,.0f} | {m['evicted']:,.0f} | {m['dbsize']:,.0f} | {bl.fmt_bytes(m['used_memory'])} | "
              f"{bl.fmt_bytes(m['rss'])} | {m['ops_s']:,.0f} |")
    print()
    diff = (med["shoal"]["hit_ratio"] - med["redis"]["hit_ratio"]) * 100
    verdict = "within 2 points" if abs(diff) <= 2 else ("better by more than 2 points" if diff > 0
                                                          else "WORSE by more than 2 points")
    print(f"SUMMARY eviction keyspace={KEYSPACE} ops={OPS} maxmemory={MAXMEMORY}: hit ratio shoal "
          f"{med['shoal']['hit_ratio'] * 100:.2f}% vs redis {med['redis']['hit_ratio'] * 100:.2f}% "
          f"(difference {diff:+.2f} points, {verdict}); SET errors shoal {med['shoal']['set_errors']:,.0f} "
          f"vs redis {med['redis']['set_errors']:,.0f} (+ preload {med['shoal']['pre_errors']:,.0f} vs "
          f"{med['redis']['pre_errors']:,.0f})")


if __name__ == "__main__":
    main()
