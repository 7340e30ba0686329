"""Owns the real-client queue tests: redis-py programs built the way applications build job queues
on lists (the BLMOVE reliable-queue pattern) and on streams (consumer groups), run to the end with
every message accounted for."""

import threading

import redis

MESSAGES = 100_000
WORKERS = 4


def _client(server):
    return redis.Redis(host="127.0.0.1", port=server.port, decode_responses=True, socket_timeout=30)


def test_blmove_reliable_queue_processes_every_message_once(r, server):
    """Workers move each job from `jobs` to their own processing list with BLMOVE, record it, then
    acknowledge it with LREM; a sentinel per worker stops them."""
    pipe = r.pipeline(transaction=False)
    for start in range(0, MESSAGES, 1000):
        pipe.lpush("jobs", *[f"job-{i}" for i in range(start, start + 1000)])
    pipe.execute()

    done = [[] for _ in range(WORKERS)]

    def work(n):
        c = _client(server)
        processing = f"processing:{n}"
        while True:
            job = c.blmove("jobs", processing, timeout=0, src="RIGHT", dest="LEFT")
            if job == "stop":
                c.lrem(processing, 1, job)
                break
            done[n].append(job)
            assert c.lrem(processing, 1, job) == 1
        c.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(WORKERS)]
    for t in threads:
        t.start()
    # The sentinels go in behind every job: the queue is FIFO from the right.
    r.lpush("jobs", *["stop"] * WORKERS)
    for t in threads:
        t.join(timeout=300)
        assert not t.is_alive()

    seen = [job for worker in done for job in worker]
    assert len(seen) == MESSAGES
    assert len(set(seen)) == MESSAGES
    assert r.exists("jobs") == 0
    assert all(r.llen(f"processing:{n}") == 0 for n in range(WORKERS))


def test_stream_consumer_group_processes_every_message_once(r, server):
    """Several consumers of one group read with XREADGROUP and acknowledge with XACK; in the end
    every message was delivered to exactly one consumer and nothing is pending."""
    pipe = r.pipeline(transaction=False)
    for i in range(MESSAGES):
        pipe.xadd("events", {"n": i})
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    r.xgroup_create("events", "workers", id="0")

    done = [[] for _ in range(WORKERS)]

    def consume(n):
        c = _client(server)
        name = f"consumer-{n}"
        while True:
            batch = c.xreadgroup("workers", name, {"events": ">"}, count=100, block=100)
            if not batch:
                break
            for _stream, entries in batch:
                ids = [entry_id for entry_id, _ in entries]
                done[n].extend(int(fields["n"]) for _, fields in entries)
                assert c.xack("events", "workers", *ids) == len(ids)
        c.close()

    threads = [threading.Thread(target=consume, args=(n,)) for n in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
        assert not t.is_alive()

    seen = [m for worker in done for m in worker]
    assert len(seen) == MESSAGES
    assert sorted(seen) == list(range(MESSAGES))
    assert r.xpending("events", "workers")["pending"] == 0
