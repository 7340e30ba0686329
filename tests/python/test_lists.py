"""Owns the redis-py list tests: every list command through a real client's own parsing, in RESP2
and RESP3, plus the patterns applications build on lists (a capped log with LPUSH+LTRIM, a task
rotation with LMOVE, a priority pop with BLPOP over several keys)."""

import threading
import time

import pytest
import redis


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def c(request, server):
    client = redis.Redis(
        host="127.0.0.1",
        port=server.port,
        protocol=request.param,
        decode_responses=True,
        socket_timeout=10,
    )
    client.flushall()
    yield client
    client.close()


def test_pushes_pops_and_ranges(c):
    assert c.rpush("l", "a", "b", "c") == 3
    assert c.lpush("l", "z") == 4
    assert c.lpushx("missing", "x") == 0
    assert c.rpushx("l", "d") == 5
    assert c.lrange("l", 0, -1) == ["z", "a", "b", "c", "d"]
    assert c.llen("l") == 5
    assert c.lindex("l", -1) == "d"
    assert c.lindex("l", 99) is None
    assert c.lpop("l") == "z"
    assert c.rpop("l", 2) == ["d", "c"]
    assert c.lpop("l", 0) == []
    assert c.lpop("missing") is None
    assert c.lpop("missing", 3) is None
    assert c.lpop("l", 10) == ["a", "b"]
    assert c.exists("l") == 0
    assert c.type("l") == "none"


def test_edits_in_the_middle(c):
    c.rpush("l", *range(10))
    assert c.linsert("l", "BEFORE", 5, "x") == 11
    assert c.linsert("l", "AFTER", "nope", "y") == -1
    assert c.lset("l", 0, "first") is True
    with pytest.raises(redis.ResponseError, match="index out of range"):
        c.lset("l", 100, "v")
    with pytest.raises(redis.ResponseError, match="no such key"):
        c.lset("missing", 0, "v")
    assert c.lrem("l", 0, "x") == 1
    assert c.ltrim("l", 1, -2) is True
    assert c.lrange("l", 0, -1) == [str(i) for i in range(1, 9)]
    assert c.object("encoding", "l") == "quicklist"


def test_lpos_options(c):
    c.rpush("l", "a", "b", "c", "1", "2", "3", "c", "c")
    assert c.lpos("l", "c") == 2
    assert c.lpos("l", "c", rank=-1) == 7
    assert c.lpos("l", "c", count=0) == [2, 6, 7]
    assert c.lpos("l", "c", rank=2, count=1) == [6]
    assert c.lpos("l", "c", maxlen=2) is None
    assert c.lpos("l", "zz") is None
    assert c.lpos("l", "zz", count=0) == []


def test_moves_and_multi_pops(c):
    c.rpush("src", "a", "b", "c")
    assert c.lmove("src", "dst", "LEFT", "RIGHT") == "a"
    assert c.rpoplpush("src", "dst") == "c"
    assert c.lmove("dst", "dst", "LEFT", "RIGHT") == "c"
    assert c.lrange("dst", 0, -1) == ["a", "c"]
    assert c.lmpop(2, "missing", "dst", direction="RIGHT", count=5) == ["dst", ["c", "a"]]
    assert c.lmpop(1, "dst", direction="LEFT") is None
    with pytest.raises(redis.ResponseError, match="numkeys should be greater than 0"):
        c.execute_command("LMPOP", 0, "src", "LEFT")
    with pytest.raises(redis.ResponseError, match="count should be greater than 0"):
        c.execute_command("LMPOP", 1, "src", "LEFT", "COUNT", 0)


def test_wrong_type(c):
    c.set("s", "v")
    for call in (
        lambda: c.lpush("s", "x"),
        lambda: c.lrange("s", 0, -1),
        lambda: c.lpos("s", "x"),
        lambda: c.blpop(["s"], timeout=1),
        lambda: c.lmove("s", "d", "LEFT", "LEFT"),
    ):
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            call()


def test_blocking_pops_served_now_and_after_a_push(c, server):
    c.rpush("b", "x")
    # redis-py returns a tuple in RESP2 and a list in RESP3.
    assert list(c.blpop(["none", "b"], timeout=1)) == ["b", "x"]
    assert c.brpop(["none"], timeout=0.05) is None
    assert c.blmove("none", "d", timeout=0.05) is None
    assert c.blmpop(0.05, 1, "none", direction="LEFT") is None

    other = redis.Redis(host="127.0.0.1", port=server.port, decode_responses=True)
    try:
        got = []
        waiter = threading.Thread(target=lambda: got.append(c.brpop(["b"], timeout=10)))
        waiter.start()
        deadline = time.monotonic() + 10
        while other.info("clients")["blocked_clients"] != 1:
            assert time.monotonic() < deadline, "the client never blocked"
            time.sleep(0.005)
        other.lpush("b", "late")
        waiter.join(timeout=10)
        assert [list(g) for g in got] == [["b", "late"]]
    finally:
        other.close()


def test_capped_log_keeps_the_newest_entries(c):
    """The LPUSH + LTRIM idiom: a log that never grows past 100 entries, newest first."""
    pipe = c.pipeline(transaction=False)
    for i in range(1000):
        pipe.lpush("log", f"event-{i}")
        pipe.ltrim("log", 0, 99)
    pipe.execute()
    assert c.llen("log") == 100
    assert c.lindex("log", 0) == "event-999"
    assert c.lindex("log", -1) == "event-900"


def test_rotation_visits_every_task_in_turn(c):
    """LMOVE of a list onto itself as a round-robin scheduler."""
    c.rpush("tasks", *[f"t{i}" for i in range(5)])
    seen = [c.lmove("tasks", "tasks", "LEFT", "RIGHT") for _ in range(10)]
    assert seen == [f"t{i % 5}" for i in range(10)]
    assert c.lrange("tasks", 0, -1) == [f"t{i}" for i in range(5)]


def test_large_list_round_trip(c):
    """Elements of every size cross node boundaries and come back intact."""
    values = [("v" * (i % 300)) + str(i) for i in range(5000)]
    pipe = c.pipeline(transaction=False)
    for start in range(0, len(values), 500):
        pipe.rpush("big", *values[start:start + 500])
    pipe.execute()
    assert c.llen("big") == len(values)
    assert c.lrange("big", 0, -1) == values
    assert c.lrange("big", 2000, 2010) == values[2000:2011]
    assert c.lindex("big", 4321) == values[4321]
    assert c.linsert("big", "AFTER", values[2500], "mid") == len(values) + 1
    assert c.lindex("big", 2501) == "mid"
