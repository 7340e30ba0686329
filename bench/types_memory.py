#!/usr/bin/env python3
"""Memory of collections: Shoal vs redis-server (issue 3).

Workloads (each on a fresh server, one server at a time, never both at once):
  hashes  N small hashes of 10 fields    HSET h:<i> f0 v<i>-0 ... f9 v<i>-9
  sets    N small sets of 10 members     SADD s:<i> tag-0 ... tag-9
  zsets   N small sorted sets of 10      ZADD z:<i> 0 m0 ... 9 m9
  list    one list of L elements         RPUSH biglist e<j> ... (1000 per command)
  bigzset one sorted set of Z members    ZADD bigz <j> m<j> ... (1000 per command)
After loading with `redis-cli --pipe` and checking the element count, it records VmRSS and
INFO used_memory, and prints a Markdown table with Shoal/Redis ratios (lower is better).

Env: SHOAL_BIN, REDIS_BIN (see benchlib), N (default 1000000), L (default 10000000),
     Z (default 5000000), ONLY (comma-separated workload names), LOAD_TIMEOUT (default 900).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

N = int(os.environ.get("N", 1_000_000))
L = int(os.environ.get("L", 10_000_000))
Z = int(os.environ.get("Z", 5_000_000))
LOAD_TIMEOUT = float(os.environ.get("LOAD_TIMEOUT", 900))
SETTLE = 1.0


def resp(parts):
    out = [b"*%d\r\n" % len(parts)]
    for p in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(p), p))
    return b"".join(out)


def chunks(commands, per_chunk=2000):
    buf = []
    for c in commands:
        buf.append(c)
        if len(buf) >= per_chunk:
            yield b"".join(buf)
            buf = []
    if buf:
        yield b"".join(buf)


def gen_hashes():
    for i in range(N):
        parts = [b"HSET", b"h:%d" % i]
        for j in range(10):
            parts += [b"f%d" % j, b"v%d-%d" % (i, j)]
        yield resp(parts)


def gen_sets():
    for i in range(N):
        yield resp([b"SADD", b"s:%d" % i] + [b"tag-%d" % ((i + j) % 50) for j in range(10)])


def gen_zsets():
    for i in range(N):
        parts = [b"ZADD", b"z:%d" % i]
        for j in range(10):
            parts += [b"%d" % j, b"m%d" % j]
        yield resp(parts)


def gen_list():
    for start in range(0, L, 1000):
        yield resp([b"RPUSH", b"biglist"] + [b"e%d" % j for j in range(start, min(L, start + 1000))])


def gen_bigzset():
    for start in range(0, Z, 1000):
        parts = [b"ZADD", b"bigz"]
        for j in range(start, min(Z, start + 1000)):
            parts += [b"%d" % j, b"m%d" % j]
        yield resp(parts)


# name, description, generator, number of commands, check command, expected check reply
WORKLOADS = [
    ("hashes", f"{N:,} hashes x 10 fields", gen_hashes, N, ("DBSIZE",), N),
    ("sets", f"{N:,} sets x 10 members", gen_sets, N, ("DBSIZE",), N),
    ("zsets", f"{N:,} sorted sets x 10 members", gen_zsets, N, ("DBSIZE",), N),
    ("list", f"1 list x {L:,} elements", gen_list, (L + 999) // 1000, ("LLEN", "biglist"), L),
    ("bigzset", f"1 sorted set x {Z:,} members", gen_bigzset, (Z + 999) // 1000, ("ZCARD", "bigz"), Z),
]


def measure(label, binary, name, gen, commands, check, expected):
    with bl.Server(label, binary) as srv:
        time.sleep(0.3)
        rss0 = srv.rss_bytes()
        bl.log(f"[types-memory] {label} {name}: loading on port {srv.port} ...")
        t0 = time.monotonic()
        errors, replies = bl.redis_cli_pipe(srv.port, chunks(gen()), timeout=LOAD_TIMEOUT)
        load_s = time.monotonic() - t0
        if errors or replies != commands:
            sys.exit(f"error: {label} {name}: errors={errors} replies={replies} (want {commands})")
        got = srv.command(*check)
        if int(got) != expected:
            sys.exit(f"error: {label} {name}: {' '.join(check)} = {got}, expected {expected}")
        time.sleep(SETTLE)
        rss1 = srv.rss_bytes()
        used = int(srv.info("memory")["used_memory"])
        enc = srv.command("OBJECT", "ENCODING", {"hashes": "h:0", "sets": "s:0", "zsets": "z:0",
                                                 "list": "biglist", "bigzset": "bigz"}[name])
        if isinstance(enc, bytes):
            enc = enc.decode()
        bl.log(f"[types-memory] {label} {name}: {load_s:.1f}s, RSS {bl.fmt_bytes(rss1)}, "
               f"used_memory {bl.fmt_bytes(used)}, encoding {enc}")
        return {"rss": rss1 - rss0, "used": used, "load_s": load_s, "enc": enc}


def main():
    only = {w for w in os.environ.get("ONLY", "").split(",") if w}
    pairs = bl.servers()
    bl.header("Memory of collections", bl.command_line())
    for label, binary in pairs:
        print(f"- {label}: {bl.describe(binary)}")
    print()
    print("| workload | shoal RSS growth | redis RSS growth | RSS ratio | shoal used_memory "
          "| redis used_memory | encoding (shoal / redis) | load s (shoal / redis) |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    summary = []
    for name, desc, gen, commands, check, expected in WORKLOADS:
        if only and name not in only:
            continue
        res = {label: measure(label, binary, name, gen, commands, check, expected)
               for label, binary in pairs}
        s, r = res["shoal"], res["redis"]
        ratio = bl.ratio(s["rss"], r["rss"])
        print(f"| {desc} | {bl.fmt_bytes(s['rss'])} | {bl.fmt_bytes(r['rss'])} | {ratio:.2f} | "
              f"{bl.fmt_bytes(s['used'])} | {bl.fmt_bytes(r['used'])} | {s['enc']} / {r['enc']} | "
              f"{s['load_s']:.1f} / {r['load_s']:.1f} |", flush=True)
        summary.append(f"{name} {ratio:.2f}")
    print()
    print("RSS growth = VmRSS after the load minus VmRSS of the empty server. Ratio = shoal / redis.")
    print()
    print("SUMMARY types-memory RSS ratios: " + "; ".join(summary))


if __name__ == "__main__":
    main()
