#!/usr/bin/env python3
"""Cost of metrics: Shoal's throughput with metrics on and scraped every second vs metrics off.

For each round, two fresh Shoal servers run one after the other (alternating which goes first):
  - "off": no metrics port and `latency-tracking no`, so no latency histogram is recorded;
  - "on":  `--metrics-port <free port>` and `latency-tracking yes` (the default), with a thread
           fetching /metrics every SCRAPE_INTERVAL seconds for the whole run, as Prometheus would.
Each gets `redis-benchmark -t $TESTS -n $N -r $KEYSPACE -c $CLIENTS [-P 16] --csv` for every
pipeline depth in PIPELINES. Reported: median requests/s over rounds per test, and on/off ratios.
The claim to check is that "on" is at most 2 % lower (ratio >= 0.98).

With PIN=1 the server runs with one worker thread pinned to CPU 0 (`taskset -c 0`) and
redis-benchmark on CPU 1, which takes the scheduler's placement out of the noise.

Env: SHOAL_BIN, N (1000000), ROUNDS (3), CLIENTS (50), TESTS (set,get), KEYSPACE (1000000),
     PIPELINES ("1 16"), SCRAPE_INTERVAL (1.0), PIN (0), EXTRA_ARGS.
"""

import csv
import io
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

N = int(os.environ.get("N", "1000000"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
CLIENTS = int(os.environ.get("CLIENTS", "50"))
TESTS = os.environ.get("TESTS", "set,get")
KEYSPACE = int(os.environ.get("KEYSPACE", "1000000"))
PIPELINES = [int(p) for p in os.environ.get("PIPELINES", "1 16").split()]
SCRAPE_INTERVAL = float(os.environ.get("SCRAPE_INTERVAL", "1.0"))
PIN = os.environ.get("PIN", "0") == "1"


class Scraper(threading.Thread):
    """Fetches /metrics every SCRAPE_INTERVAL seconds until stopped; counts good scrapes."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.stop_event = threading.Event()
        self.scrapes = 0
        self.errors = 0

    def run(self):
        while not self.stop_event.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=5) as r:
                    body = r.read()
                if b"shoal_commands_processed_total" in body:
                    self.scrapes += 1
                else:
                    self.errors += 1
            except OSError:
                self.errors += 1
            self.stop_event.wait(SCRAPE_INTERVAL)

    def stop(self):
        self.stop_event.set()
        self.join(timeout=10)


def benchmark(port, pipeline):
    args = ["taskset", "-c", "1"] if PIN else []
    args += ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", TESTS, "-n", str(N),
            "-r", str(KEYSPACE), "-c", str(CLIENTS), "--csv"]
    if pipeline > 1:
        args += ["-P", str(pipeline)]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=1800).stdout
    rps = {}
    for row in csv.reader(io.StringIO(out)):
        if row and row[0] != "test":
            rps[row[0]] = float(row[1])
    return rps


def run_one(mode, binary, pipeline):
    extra = ["--latency-tracking", "no"] if mode == "off" else []
    if PIN:
        extra += ["--worker-threads", "1"]
    metrics_port = None
    if mode == "on":
        metrics_port = bl.free_port()
        extra += ["--metrics-port", str(metrics_port)]
    with bl.Server(f"shoal-{mode}", binary, extra) as srv:
        scraper = None
        if metrics_port is not None:
            scraper = Scraper(metrics_port)
            scraper.start()
        rps = benchmark(srv.port, pipeline)
        if scraper is not None:
            scraper.stop()
            if scraper.scrapes == 0 or scraper.errors:
                sys.exit(f"error: scraping failed ({scraper.scrapes} scrapes, "
                         f"{scraper.errors} errors)")
            bl.log(f"  {scraper.scrapes} scrapes")
        # The server must really have done the work.
        calls = int(srv.info("stats").get("total_commands_processed", "0"))
        if calls < N:
            sys.exit(f"error: {mode} server processed only {calls} commands")
        return rps


def pinned(binary):
    """A wrapper that starts `binary` on CPU 0 (its threads inherit the affinity)."""
    path = os.path.join(os.path.dirname(binary), "shoal-on-cpu0")
    with open(path, "w") as f:
        f.write(f"#!/bin/sh\nexec taskset -c 0 {binary} \"$@\"\n")
    os.chmod(path, 0o755)
    return path


def main():
    real = bl.private_copy(bl.shoal_bin())
    binary = pinned(real) if PIN else real
    results = {}  # (pipeline, mode) -> {test: [rps...]}
    for r in range(ROUNDS):
        for pipeline in PIPELINES:
            order = ["off", "on"] if r % 2 == 0 else ["on", "off"]
            for mode in order:
                bl.log(f"round {r + 1}/{ROUNDS} -P {pipeline} metrics {mode}")
                for test, v in run_one(mode, binary, pipeline).items():
                    bl.log(f"  {test}: {v:,.0f} rps")
                    results.setdefault((pipeline, mode), {}).setdefault(test, []).append(v)

    bl.header("Cost of metrics: scraped every second vs off", bl.command_line())
    print(f"- Shoal: {bl.describe(real)}")
    print(f"- redis-benchmark -t {TESTS} -n {N} -r {KEYSPACE} -c {CLIENTS}; "
          f"medians of {ROUNDS} rounds; 'on' scrapes /metrics every {SCRAPE_INTERVAL:g} s"
          + ("; server on CPU 0 with one worker, redis-benchmark on CPU 1" if PIN else ""))
    print()
    print("| test | pipeline | off (rps) | on (rps) | on/off |")
    print("|---|---|---|---|---|")
    worst = None
    for pipeline in PIPELINES:
        off = results[(pipeline, "off")]
        on = results[(pipeline, "on")]
        for test in off:
            a = statistics.median(off[test])
            b = statistics.median(on[test])
            ratio = bl.ratio(b, a)
            worst = ratio if worst is None else min(worst, ratio)
            print(f"| {test} | {pipeline} | {a:,.0f} | {b:,.0f} | {ratio:.3f} |")
    print()
    print(f"SUMMARY metrics-cost worst on/off ratio {worst:.3f} (target >= 0.98)")


if __name__ == "__main__":
    main()
