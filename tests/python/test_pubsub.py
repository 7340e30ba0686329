"""Owns the redis-py pub/sub tests: PubSub objects in RESP2 and RESP3 subscribing to channels,
patterns and shard channels, a listener thread receiving every message in order, and
introspection seen from another client."""

import threading
import time

import pytest
import redis

TIMEOUT = 10.0


def _next(p):
    """The next message of PubSub `p`, failing the test rather than waiting forever."""
    message = p.get_message(timeout=TIMEOUT)
    assert message is not None, "no message arrived"
    return message


@pytest.mark.parametrize("protocol", [2, 3])
def test_subscribe_publish_and_unsubscribe(server, protocol):
    c = redis.Redis(host="127.0.0.1", port=server.port, protocol=protocol, decode_responses=True)
    p = c.pubsub()
    p.subscribe("news")
    assert _next(p) == {"type": "subscribe", "pattern": None, "channel": "news", "data": 1}
    p.psubscribe("new*")
    assert _next(p) == {"type": "psubscribe", "pattern": None, "channel": "new*", "data": 2}

    other = redis.Redis(host="127.0.0.1", port=server.port, decode_responses=True)
    assert other.publish("news", "hello") == 2
    assert _next(p) == {"type": "message", "pattern": None, "channel": "news", "data": "hello"}
    assert _next(p) == {"type": "pmessage", "pattern": "new*", "channel": "news", "data": "hello"}
    assert other.pubsub_numsub("news", "none") == [("news", 1), ("none", 0)]
    assert other.pubsub_numpat() == 1
    assert other.pubsub_channels("n*") == ["news"]

    p.unsubscribe("news")
    assert _next(p)["type"] == "unsubscribe"
    p.punsubscribe()
    assert _next(p) == {"type": "punsubscribe", "pattern": None, "channel": "new*", "data": 0}
    assert other.publish("news", "gone") == 0
    p.close()
    other.close()
    c.close()


def test_shard_channels(server):
    c = redis.Redis(host="127.0.0.1", port=server.port, decode_responses=True)
    p = c.pubsub()
    p.ssubscribe("orders")
    assert _next(p)["type"] == "ssubscribe"
    assert c.spublish("orders", "o-1") == 1
    assert c.publish("orders", "not sharded") == 0
    assert _next(p) == {"type": "smessage", "pattern": None, "channel": "orders", "data": "o-1"}
    assert c.pubsub_shardnumsub("orders") == [("orders", 1)]
    assert c.pubsub_shardchannels() == ["orders"]
    p.close()
    c.close()


def test_listener_thread_receives_every_message_in_order(server):
    count = 5000
    c = redis.Redis(host="127.0.0.1", port=server.port, decode_responses=True)
    p = c.pubsub(ignore_subscribe_messages=True)
    received = []
    done = threading.Event()

    def on_message(message):
        received.append(message["data"])
        if len(received) == count:
            done.set()

    p.subscribe(**{"events": on_message})
    worker = p.run_in_thread(sleep_time=0.01, daemon=True)
    publisher = redis.Redis(host="127.0.0.1", port=server.port, decode_responses=True)
    # Published once the subscription is visible, so no message can precede it.
    deadline = time.monotonic() + TIMEOUT
    while publisher.pubsub_numsub("events")[0][1] != 1:
        assert time.monotonic() < deadline, "the subscription never showed"
        time.sleep(0.01)
    pipe = publisher.pipeline(transaction=False)
    for i in range(count):
        pipe.publish("events", str(i))
    assert pipe.execute() == [1] * count
    assert done.wait(TIMEOUT), f"received {len(received)} of {count}"
    assert received == [str(i) for i in range(count)]
    worker.stop()
    worker.join(TIMEOUT)
    p.close()
    publisher.close()
    c.close()
