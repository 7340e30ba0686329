"""Owns the redis-py transaction tests: pipelines with transaction=True, the WATCH retry loop that
redis-py's `transaction()` helper runs, and the errors redis-py raises from EXEC, in RESP2 and
RESP3."""

import threading

import pytest
import redis


def _client(server, protocol=2):
    return redis.Redis(
        host="127.0.0.1", port=server.port, protocol=protocol, decode_responses=True, socket_timeout=30
    )


@pytest.mark.parametrize("protocol", [2, 3])
def test_a_transactional_pipeline_returns_every_reply(server, protocol):
    c = _client(server, protocol)
    c.flushall()
    pipe = c.pipeline(transaction=True)
    pipe.set("a", 1).incr("a").rpush("l", "x", "y").lrange("l", 0, -1).hset("h", "f", "v")
    assert pipe.execute() == [True, 2, 2, ["x", "y"], 1]


def test_a_runtime_error_inside_exec_is_raised_after_the_rest_ran(r):
    r.set("s", "text")
    pipe = r.pipeline(transaction=True)
    pipe.incr("s").set("after", "ok")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        pipe.execute()
    assert r.get("after") == "ok"
    # raise_on_error=False hands the error back in place.
    pipe = r.pipeline(transaction=True)
    pipe.incr("s").get("after")
    replies = pipe.execute(raise_on_error=False)
    assert isinstance(replies[0], redis.ResponseError)
    assert replies[1] == "ok"


def test_a_queueing_error_aborts_the_transaction(r):
    pipe = r.pipeline(transaction=True)
    pipe.set("never", 1).execute_command("NOSUCHCOMMAND")
    with pytest.raises(redis.ResponseError):
        pipe.execute()
    assert r.exists("never") == 0


def test_watch_raises_watch_error_when_another_client_changes_the_key(r, server):
    other = _client(server)
    r.set("balance", 100)
    with r.pipeline() as pipe:
        pipe.watch("balance")
        current = int(pipe.get("balance"))
        other.incrby("balance", 5)
        pipe.multi()
        pipe.set("balance", current - 10)
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert r.get("balance") == "105"


def test_the_transaction_helper_retries_until_no_increment_is_lost(server):
    """Threads increment one counter through redis-py's optimistic-locking helper."""
    threads, each = 4, 100
    _client(server).set("counter", 0)

    def work():
        c = _client(server)

        def step(pipe):
            value = int(pipe.get("counter"))
            pipe.multi()
            pipe.set("counter", value + 1)

        for _ in range(each):
            c.transaction(step, "counter")

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert int(_client(server).get("counter")) == threads * each
