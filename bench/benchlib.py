"""Shared helpers for the Shoal benchmark scripts (memory.py, expiry.py, eviction.py).

Every server started through `Server` runs in its own temporary directory on a free
127.0.0.1 port and is killed (by pid) when the script exits, whatever the reason.
"""

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)

_live = []  # Server objects still running


def shoal_bin():
    path = os.environ.get("SHOAL_BIN", os.path.join(REPO_DIR, "target/release/shoal-server"))
    if not os.path.isabs(path):
        # Relative paths are relative to the repository root, like the default.
        cand = os.path.join(REPO_DIR, path)
        path = cand if os.path.exists(cand) else (shutil.which(path) or path)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        sys.exit(f"error: shoal binary not found or not executable: {path} "
                 f"(build it with `cargo build --release -p shoal-server` or set SHOAL_BIN)")
    return path


def redis_bin():
    path = os.environ.get("REDIS_BIN", "redis-server")
    found = shutil.which(path)
    if not found:
        sys.exit(f"error: redis-server not found: {path} (set REDIS_BIN)")
    return found


_copies = {}  # private copy of a binary -> the path it was copied from


def private_copy(path):
    """Copy a binary into a temp dir (removed at exit) and return the copy, so that a rebuild
    of the original during the run cannot mix two builds in one result."""
    d = tempfile.mkdtemp(prefix="shoal-bench-bin-")
    atexit.register(shutil.rmtree, d, True)
    dst = os.path.join(d, os.path.basename(path))
    shutil.copy2(path, dst)
    _copies[dst] = path
    return dst


def servers():
    """[(label, binary)] in the order the scripts run them (Shoal's is a private copy)."""
    return [("shoal", private_copy(shoal_bin())), ("redis", redis_bin())]


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _cleanup():
    for srv in list(_live):
        srv.stop()


def _on_signal(signum, _frame):
    _cleanup()
    sys.exit(128 + signum)


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)
signal.signal(signal.SIGHUP, _on_signal)

CLK_TCK = os.sysconf("SC_CLK_TCK")


class Server:
    """A redis-server-compatible process started with redis-server's command line."""

    def __init__(self, label, binary, extra_args=(), startup_timeout=20.0):
        self.label = label
        self.binary = binary
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix=f"shoal-bench-{label}-")
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += list(extra_args)
        args += os.environ.get("EXTRA_ARGS", "").split()
        self.args = args
        self.log_path = os.path.join(self.dir, "server.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, cwd=self.dir, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        _live.append(self)
        deadline = time.time() + startup_timeout
        while True:
            if self.proc.poll() is not None:
                self._fail(f"exited with status {self.proc.returncode} during start-up")
            try:
                if self.command("PING") == b"PONG":
                    break
            except OSError:
                pass
            if time.time() > deadline:
                self._fail(f"did not answer PING within {startup_timeout}s")
            time.sleep(0.05)

    def _fail(self, why):
        self.stop()
        try:
            with open(self.log_path, "rb") as f:
                tail = f.read()[-2000:].decode(errors="replace")
        except OSError:
            tail = ""
        sys.exit(f"error: {self.label} ({' '.join(self.args)}) {why}\n--- server log ---\n{tail}")

    # ---- a tiny synchronous RESP client (no dependency on redis-py) ----

    def connect(self, timeout=60.0):
        return Conn(self.port, timeout)

    def command(self, *args):
        with self.connect(timeout=10.0) as c:
            return c.call(*args)

    def info(self, section=None):
        raw = self.command("INFO", section) if section else self.command("INFO")
        out = {}
        for line in raw.decode().splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                out[k] = v
        return out

    def dbsize(self):
        return int(self.command("DBSIZE"))

    # ---- process statistics ----

    def rss_bytes(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("VmRSS not found")

    def cpu_seconds(self):
        """utime + stime of the server process (all threads), in seconds."""
        with open(f"/proc/{self.pid}/stat") as f:
            data = f.read()
        fields = data[data.rindex(")") + 2:].split()
        # fields[0] is field 3 (state); utime is field 14, stime field 15.
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def stop(self):
        if self in _live:
            _live.remove(self)
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        try:
            self._log.close()
        except Exception:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class RespError(Exception):
    pass


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, int):
            a = b"%d" % a
        elif isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    """Minimal pipelining RESP2 connection: send raw bytes, read N replies."""

    def __init__(self, port, timeout=60.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.pos = 0

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("server closed the connection")
        if self.pos:
            self.buf = self.buf[self.pos:] + chunk
            self.pos = 0
        else:
            self.buf += chunk

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                line = self.buf[self.pos:i]
                self.pos = i + 2
                return line
            self._fill()

    def read_reply(self):
        line = self._line()
        t = line[:1]
        if t == b"+":
            return line[1:]
        if t == b"-":
            return RespError(line[1:].decode(errors="replace"))
        if t == b":":
            return int(line[1:])
        if t == b"$":
            n = int(line[1:])
            if n < 0:
                return None
            while len(self.buf) - self.pos < n + 2:
                self._fill()
            v = self.buf[self.pos:self.pos + n]
            self.pos += n + 2
            return v
        if t == b"*":
            n = int(line[1:])
            if n < 0:
                return None
            return [self.read_reply() for _ in range(n)]
        raise RespError(f"unexpected reply type: {line[:50]!r}")

    def call(self, *args):
        self.send(encode(*args))
        r = self.read_reply()
        if isinstance(r, RespError):
            raise r
        return r


def redis_cli_pipe(port, chunks, timeout=None):
    """Feed an iterable of RESP byte chunks to `redis-cli --pipe`; return (errors, replies)."""
    p = subprocess.Popen(["redis-cli", "-h", "127.0.0.1", "-p", str(port), "--pipe"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for c in chunks:
            p.stdin.write(c)
        p.stdin.close()
        out = p.stdout.read().decode(errors="replace")
        p.wait(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    errors = replies = None
    for line in out.splitlines():
        if line.startswith("errors:"):
            # "errors: 0, replies: 5000000"
            parts = line.replace(",", "").split()
            errors, replies = int(parts[1]), int(parts[3])
    if p.returncode != 0 or errors is None:
        raise RuntimeError(f"redis-cli --pipe failed (status {p.returncode}): {out[-1000:]}")
    return errors, replies


def fmt_int(n):
    return f"{n:,}"


def fmt_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n:.0f} B"
        n /= 1024


def ratio(a, b):
    return a / b if b else float("nan")


def header(title, command):
    print(f"### {title}")
    print()
    print(f"- Date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(f"- Command: `{command}`")
    print(f"- Host: {os.cpu_count()} CPUs, {os.uname().release}; load average at start "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()


def describe(binary):
    """`path` (modified <time>, sha256 <prefix>): identifies exactly which build was measured."""
    import hashlib
    h = hashlib.sha256()
    with open(binary, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    mtime = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(binary)))
    return f"`{_copies.get(binary, binary)}` (modified {mtime}, sha256 {h.hexdigest()[:12]})"


def command_line():
    env = [f"{k}={os.environ[k]}" for k in sorted(os.environ)
           if k in ENV_KEYS_TO_ECHO and os.environ.get(k)]
    rel = os.path.relpath(os.path.abspath(sys.argv[0]), REPO_DIR)
    return " ".join(env + [rel] + sys.argv[1:])


ENV_KEYS_TO_ECHO = {"SHOAL_BIN", "REDIS_BIN", "EXTRA_ARGS", "KEYS", "ROUNDS", "N", "TTL_MIN_MS",
                    "TTL_MAX_MS", "TIME_LIMIT", "POLL", "KEYSPACE", "OPS", "WARMUP", "ZIPF_S",
                    "BATCH", "MAXMEMORY", "POLICY", "SEED", "VALUE_SIZE", "PRELOAD", "IDLE_SECONDS",
                    "PIPELINES", "SCRAPE_INTERVAL", "TESTS", "CLIENTS", "PIN"}


def log(*a):
    print(*a, file=sys.stderr, flush=True)
