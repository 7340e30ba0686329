"""Owns the pytest fixtures of the redis-py suite: a server process per session and a fresh client per test.

The server is Shoal's binary from SHOAL_SERVER_BIN (default: target/debug/shoal-server in the
workspace). SHOAL_TEST_AGAINST=redis runs the same tests against redis-server instead, which is
how the tests themselves are validated.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
START_DEADLINE = 30.0
STOP_DEADLINE = 10.0


def _free_port() -> int:
    # Binding port 0 lets the kernel choose a port that is free right now.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _program() -> list:
    if os.environ.get("SHOAL_TEST_AGAINST", "").lower() == "redis":
        return [os.environ.get("REDIS_SERVER_BIN", "redis-server")]
    binary = os.environ.get("SHOAL_SERVER_BIN", str(ROOT / "target" / "debug" / "shoal-server"))
    if not Path(binary).exists() and shutil.which(binary) is None:
        pytest.fail(f"Shoal binary not found at {binary}: build it or set SHOAL_SERVER_BIN")
    return [binary]


class Server:
    """A server process on 127.0.0.1 with its own directory, stopped by stop()."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="shoal-pytest-")
        self.log_path = os.path.join(self.dir, "server.log")
        self.port = _free_port()
        args = _program() + [
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", self.dir,
        ]
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            args, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        # Poll PING until the server answers rather than sleeping a fixed time.
        deadline = time.monotonic() + START_DEADLINE
        probe = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.5)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited during start-up:\n{self.read_log()}")
            try:
                if probe.ping():
                    probe.close()
                    return
            except redis.exceptions.ConnectionError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not answer PING in time:\n{self.read_log()}")
            time.sleep(0.01)

    def read_log(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def server():
    srv = Server()
    yield srv
    srv.stop()


@pytest.fixture
def r(server):
    """A RESP2 client on an empty keyspace, decoding replies to str."""
    client = redis.Redis(host="127.0.0.1", port=server.port, decode_responses=True, socket_timeout=10)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def r3(server):
    """A RESP3 client on an empty keyspace, decoding replies to str."""
    client = redis.Redis(
        host="127.0.0.1", port=server.port, protocol=3, decode_responses=True, socket_timeout=10
    )
    client.flushall()
    yield client
    client.close()
