"""Owns the real-library tests: redis-py's Lock (EVALSHA and SCRIPT LOAD underneath), a rate
limiter written as a Lua script, and python-rq running a thousand jobs end to end, all against
the server under test."""

import sys
from pathlib import Path

import pytest
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))


def test_redis_py_lock_acquire_extend_reacquire_release(r, server):
    other = redis.Redis(host="127.0.0.1", port=server.port, decode_responses=True)
    lock = r.lock("resource", timeout=5)
    assert lock.acquire(blocking=False)
    assert r.pttl("resource") > 0
    # Someone else cannot take it while it is held.
    assert not other.lock("resource", timeout=5).acquire(blocking=False)
    assert lock.extend(10)
    assert r.pttl("resource") > 5000
    assert lock.reacquire()
    assert lock.owned()
    lock.release()
    assert not lock.owned()
    assert r.exists("resource") == 0
    # Now another client gets it; the first one, no longer the owner, can neither extend nor
    # release it (the compare-and-delete script refuses).
    second = other.lock("resource", timeout=5)
    assert second.acquire(blocking=False)
    stale = r.lock("resource", timeout=5)
    stale.local.token = b"not-the-owner"
    with pytest.raises(redis.exceptions.LockNotOwnedError):
        stale.extend(5)
    with pytest.raises(redis.exceptions.LockNotOwnedError):
        stale.release()
    second.release()


RATE_LIMIT = """
local current = redis.call('INCR', KEYS[1])
if current == 1 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if current > tonumber(ARGV[1]) then
    return 0
end
return 1
"""


def test_a_lua_rate_limiter_allows_exactly_the_limit(r):
    limiter = r.register_script(RATE_LIMIT)
    allowed = sum(limiter(keys=["rate:user:1"], args=[10, 60000]) for _ in range(25))
    assert allowed == 10
    assert 0 < r.pttl("rate:user:1") <= 60000
    # Another key has its own window; the script ran through EVALSHA after the first call.
    assert limiter(keys=["rate:user:2"], args=[10, 60000]) == 1
    assert r.script_exists(limiter.sha) == [True]


def test_python_rq_runs_a_thousand_jobs(server):
    rq = pytest.importorskip("rq")
    import rq_jobs

    conn = redis.Redis(host="127.0.0.1", port=server.port)
    conn.flushall()
    queue = rq.Queue("default", connection=conn)
    jobs = [queue.enqueue(rq_jobs.add, i, 1) for i in range(1000)]
    assert queue.count == 1000
    worker = rq.SimpleWorker([queue], connection=conn)
    worker.work(burst=True)
    results = [job.latest_result() for job in jobs]
    assert all(res is not None and res.type == res.Type.SUCCESSFUL for res in results)
    assert [job.return_value() for job in jobs] == [i + 1 for i in range(1000)]
    assert queue.count == 0
