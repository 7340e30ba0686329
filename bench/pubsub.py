#!/usr/bin/env python3
"""Pub/Sub: publish throughput and delivery latency, Shoal vs redis-server (issue 4).

For each subscriber count S in SUBSCRIBERS (default 1,100,1000), on a fresh server of each
kind (alternating which goes first, ROUNDS rounds): S subscriber connections SUBSCRIBE to one
channel in a separate process that reads every message and records, per message, the time it
arrived; one publisher connection PUBLISHes M messages (M = DELIVERIES / S, so every run
delivers about the same number of messages) in pipelined batches of BATCH, each message
carrying its send time. Reported: publish throughput (messages published per second, from the
first PUBLISH to the last reply) and delivery latency percentiles (arrival minus send time, over
every delivery), with Shoal/Redis ratios per round and their median.

Env: SHOAL_BIN, REDIS_BIN (see benchlib), SUBSCRIBERS (default "1,100,1000"),
     DELIVERIES (default 200000), BATCH (default 50), ROUNDS (default 3).
"""

import multiprocessing as mp
import os
import selectors
import socket
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

SUBSCRIBERS = [int(x) for x in os.environ.get("SUBSCRIBERS", "1,100,1000").split(",")]
DELIVERIES = int(os.environ.get("DELIVERIES", 200_000))
BATCH = int(os.environ.get("BATCH", 50))
ROUNDS = int(os.environ.get("ROUNDS", 3))
CHANNEL = b"bench"


def subscriber_process(port, count, expected, ready, results):
    """Opens `count` subscribers and reads until each has `expected` messages; sends back the
    latencies (ns) of every delivery."""
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(bl.encode("SUBSCRIBE", CHANNEL))
        socks.append(s)
    # Wait for every confirmation before telling the publisher to start.
    for s in socks:
        buf = b""
        while buf.count(b"\r\n") < 6:
            buf += s.recv(4096)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, {"buf": b"", "got": 0})
    ready.set()
    latencies = []
    done = 0
    while done < count:
        for key, _ in sel.select(timeout=60):
            st = key.data
            try:
                chunk = key.fileobj.recv(1 << 16)
            except BlockingIOError:
                continue
            if not chunk:
                raise SystemExit("subscriber connection closed")
            now = time.perf_counter_ns()
            st["buf"] += chunk
            buf = st["buf"]
            # Each message: *3 $7 message $5 bench $<n> <send-ns>; the payload is last.
            while True:
                i = buf.find(b"*3\r\n")
                if i < 0:
                    break
                # Parse the three bulks in order.
                pos = i + 4
                parts = []
                ok = True
                for _ in range(3):
                    if pos >= len(buf) or buf[pos:pos + 1] != b"$":
                        ok = False
                        break
                    nl = buf.find(b"\r\n", pos)
                    if nl < 0:
                        ok = False
                        break
                    n = int(buf[pos + 1:nl])
                    if nl + 2 + n + 2 > len(buf):
                        ok = False
                        break
                    parts.append(buf[nl + 2:nl + 2 + n])
                    pos = nl + 2 + n + 2
                if not ok:
                    break
                latencies.append(now - int(parts[2]))
                st["got"] += 1
                buf = buf[pos:]
                if st["got"] == expected:
                    done += 1
            st["buf"] = buf
    results.put(latencies)


def run_one(label, binary, subs, messages):
    with bl.Server(label, binary) as srv:
        ready = mp.Event()
        results = mp.Queue()
        proc = mp.Process(target=subscriber_process,
                          args=(srv.port, subs, messages, ready, results))
        proc.start()
        if not ready.wait(120):
            raise SystemExit("subscribers did not start")
        pub = socket.create_connection(("127.0.0.1", srv.port))
        start = time.perf_counter()
        sent = 0
        pending = b""
        while sent < messages:
            n = min(BATCH, messages - sent)
            out = b"".join(bl.encode("PUBLISH", CHANNEL, str(time.perf_counter_ns()))
                           for _ in range(n))
            pub.sendall(out)
            replies = 0
            while replies < n:
                pending += pub.recv(1 << 16)
                while True:
                    k = pending.find(b"\r\n")
                    if k < 0:
                        break
                    pending = pending[k + 2:]
                    replies += 1
            sent += n
        elapsed = time.perf_counter() - start
        latencies = results.get(timeout=600)
        proc.join(60)
        pub.close()
        latencies.sort()

        def pct(p):
            return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] / 1e6

        return {"rate": messages / elapsed, "p50": pct(50), "p99": pct(99)}


def main():
    bl.header("Pub/Sub throughput and delivery latency", bl.command_line())
    kinds = bl.servers()
    for label, binary in kinds:
        print(f"- {label}: {bl.describe(binary)}")
    print(f"- {ROUNDS} rounds; about {DELIVERIES} deliveries per run; PUBLISH pipelined {BATCH} "
          "at a time; ratios are Shoal/Redis per round, median shown (throughput: higher is "
          "better, latency: lower is better)")
    print()
    print("| subscribers | messages | shoal msg/s | redis msg/s | rate ratio | shoal p50 ms | "
          "redis p50 ms | shoal p99 ms | redis p99 ms | p99 ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    summary = []
    for subs in SUBSCRIBERS:
        messages = max(1, DELIVERIES // subs)
        per_round = []
        for r in range(ROUNDS):
            order = kinds if r % 2 == 0 else list(reversed(kinds))
            got = {}
            for label, binary in order:
                bl.log(f"[pubsub] {subs} subscribers, round {r + 1}/{ROUNDS}, {label}")
                got[label] = run_one(label, binary, subs, messages)
            per_round.append(got)
        med = lambda k, f: statistics.median(g[k][f] for g in per_round)  # noqa: E731
        rate_ratio = statistics.median(g["shoal"]["rate"] / g["redis"]["rate"] for g in per_round)
        p99_ratio = statistics.median(g["shoal"]["p99"] / g["redis"]["p99"] for g in per_round)
        summary.append((subs, rate_ratio, p99_ratio))
        print(f"| {subs} | {messages} | {med('shoal', 'rate'):,.0f} | {med('redis', 'rate'):,.0f} "
              f"| {rate_ratio:.2f} | {med('shoal', 'p50'):.3f} | {med('redis', 'p50'):.3f} "
              f"| {med('shoal', 'p99'):.3f} | {med('redis', 'p99'):.3f} | {p99_ratio:.2f} |")
    print()
    print("SUMMARY pubsub " + ", ".join(
        f"{s} subscribers: rate {r:.2f}x p99 {p:.2f}x" for s, r, p in summary))


if __name__ == "__main__":
    main()
