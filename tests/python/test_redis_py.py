"""Owns the redis-py client tests: its string, key and expiry APIs, pipelines, scan_iter and RESP3 against Shoal."""

import pytest
import redis

YEAR_2100 = 4102444800


def test_set_get_and_binary_values(r, server):
    assert r.set("k", "v") is True
    assert r.get("k") == "v"
    assert r.get("missing") is None
    raw = redis.Redis(host="127.0.0.1", port=server.port)
    blob = bytes(range(256))
    assert raw.set(b"bin\x00key", blob) is True
    assert raw.get(b"bin\x00key") == blob
    assert raw.set(b"", b"") is True
    assert raw.get(b"") == b""
    raw.close()


@pytest.mark.filterwarnings("ignore:Call to deprecated setex:DeprecationWarning")
def test_set_ex_px_and_ttls(r):
    assert r.set("ex", "v", ex=100) is True
    assert r.ttl("ex") == 100
    assert r.set("px", "v", px=100_000) is True
    assert r.ttl("px") == 100
    assert 99_000 <= r.pttl("px") <= 100_000
    assert r.set("exat", "v", exat=YEAR_2100) is True
    assert r.expiretime("exat") == YEAR_2100
    assert r.set("pxat", "v", pxat=YEAR_2100 * 1000 + 5) is True
    assert r.pexpiretime("pxat") == YEAR_2100 * 1000 + 5
    assert r.setex("sx", 50, "v") is True
    assert r.ttl("sx") == 50
    assert r.psetex("psx", 50_000, "v") is True
    assert r.ttl("psx") == 50
    with pytest.raises(redis.ResponseError, match="invalid expire time in 'set' command"):
        r.set("bad", "v", ex=0)


def test_set_nx_xx_get_keepttl(r):
    assert r.set("k", "1", nx=True) is True
    assert r.set("k", "2", nx=True) is None
    assert r.get("k") == "1"
    assert r.set("missing", "x", xx=True) is None
    assert r.exists("missing") == 0
    assert r.set("k", "3", xx=True) is True
    assert r.set("k", "4", get=True) == "3"
    assert r.set("new", "v", get=True) is None
    r.set("t", "v", ex=100)
    assert r.set("t", "w", keepttl=True) is True
    assert r.ttl("t") == 100
    assert r.set("t", "x") is True
    assert r.ttl("t") == -1
    assert r.setnx("t", "y") is False
    assert r.getset("t", "z") == "x"
    assert r.getdel("t") == "z"
    assert r.getdel("t") is None


def test_getex(r):
    r.set("g", "v")
    assert r.getex("g", ex=100) == "v"
    assert r.ttl("g") == 100
    assert r.getex("g", persist=True) == "v"
    assert r.ttl("g") == -1
    assert r.getex("g", exat=YEAR_2100) == "v"
    assert r.expiretime("g") == YEAR_2100
    assert r.getex("missing") is None


def test_counters_and_incrbyfloat(r):
    assert r.incr("c") == 1
    assert r.incrby("c", 10) == 11
    assert r.decr("c") == 10
    assert r.decrby("c", 4) == 6
    assert r.incrbyfloat("f", 1.5) == 1.5
    assert r.incrbyfloat("f", 0.25) == 1.75
    assert r.incrbyfloat("f", -1.75) == 0
    assert r.get("f") == "0"
    assert r.incrbyfloat("f", 10.5) == 10.5
    assert r.get("f") == "10.5"
    r.set("max", 2**63 - 1)
    with pytest.raises(redis.ResponseError, match="increment or decrement would overflow"):
        r.incr("max")
    r.set("s", "abc")
    with pytest.raises(redis.ResponseError, match="value is not an integer or out of range"):
        r.incr("s")
    with pytest.raises(redis.ResponseError, match="value is not a valid float"):
        r.incrbyfloat("s", 1)


def test_mset_mget_msetnx(r):
    assert r.mset({"a": "1", "b": "2", "c": "3"}) is True
    assert r.mget("a", "missing", "c") == ["1", None, "3"]
    assert r.mget(["a", "b"]) == ["1", "2"]
    assert r.msetnx({"a": "x", "z": "y"}) is False
    assert r.exists("z") == 0
    assert r.msetnx({"y": "1", "z": "2"}) is True
    assert r.mget("y", "z") == ["1", "2"]


def test_strings_ranges(r):
    assert r.append("s", "hello") == 5
    assert r.append("s", " world") == 11
    assert r.strlen("s") == 11
    assert r.getrange("s", 0, 4) == "hello"
    assert r.getrange("s", -5, -1) == "world"
    assert r.setrange("s", 6, "WORLD") == 11
    assert r.get("s") == "hello WORLD"
    assert r.setrange("pad", 3, "x") == 4
    assert r.get("pad") == "\x00\x00\x00x"
    assert r.lcs("s", "s") == "hello WORLD"


def test_keys_commands(r):
    r.mset({"user:1": "a", "user:2": "b", "other": "c"})
    assert sorted(r.keys("user:*")) == ["user:1", "user:2"]
    assert r.exists("user:1", "user:2", "nope") == 2
    assert r.type("user:1") == "string"
    assert r.type("nope") == "none"
    assert r.rename("other", "renamed") is True
    assert r.renamenx("renamed", "user:1") is False
    assert r.copy("user:1", "copy") is True
    assert r.get("copy") == "a"
    assert r.touch("user:1", "nope") == 1
    assert r.delete("user:1", "nope") == 1
    assert r.unlink("user:2") == 1
    assert r.dbsize() == 2
    assert r.randomkey() in {"renamed", "copy"}
    assert r.object("encoding", "copy") == "embstr"
    r.set("n", 12345)
    assert r.object("encoding", "n") == "int"


def test_expire_ttl_persist(r):
    r.set("k", "v")
    assert r.ttl("k") == -1
    assert r.ttl("missing") == -2
    assert r.expire("k", 100) is True
    assert r.ttl("k") == 100
    assert r.expire("k", 50, gt=True) is False
    assert r.expire("k", 50, lt=True) is True
    assert r.ttl("k") == 50
    assert r.expire("k", 10, nx=True) is False
    assert r.pexpire("k", 200_000) is True
    assert r.ttl("k") == 200
    assert r.expireat("k", YEAR_2100) is True
    assert r.expiretime("k") == YEAR_2100
    assert r.pexpireat("k", YEAR_2100 * 1000 + 7) is True
    assert r.pexpiretime("k") == YEAR_2100 * 1000 + 7
    assert r.persist("k") is True
    assert r.persist("k") is False
    assert r.ttl("k") == -1
    assert r.pexpireat("k", 1) is True
    assert r.exists("k") == 0
    assert r.expire("missing", 10) is False


def test_scan_iter_covers_every_key(r):
    with r.pipeline(transaction=False) as pipe:
        for i in range(3000):
            pipe.set(f"item:{i}", i)
        for i in range(200):
            pipe.set(f"other:{i}", i)
        pipe.execute()
    assert set(r.scan_iter()) == {f"item:{i}" for i in range(3000)} | {f"other:{i}" for i in range(200)}
    assert set(r.scan_iter(match="other:*", count=7)) == {f"other:{i}" for i in range(200)}
    assert set(r.scan_iter(match="item:1??", _type="string")) == {f"item:{i}" for i in range(100, 200)}
    assert list(r.scan_iter(match="nothing:*")) == []


def test_pipeline_without_transaction(r):
    with r.pipeline(transaction=False) as pipe:
        pipe.set("a", "1").incr("a").get("a").get("missing").expire("a", 100).ttl("a")
        assert pipe.execute() == [True, 2, "2", None, True, 100]
    with r.pipeline(transaction=False) as pipe:
        pipe.set("s", "text").incr("s").get("s")
        results = pipe.execute(raise_on_error=False)
    assert results[0] is True
    assert isinstance(results[1], redis.ResponseError)
    assert results[2] == "text"
    with r.pipeline(transaction=False) as pipe:
        for _ in range(10_000):
            pipe.incr("n")
        values = pipe.execute()
    assert values == list(range(1, 10_001))


def test_select_and_databases(r, server):
    r.set("k", "db0")
    other = redis.Redis(host="127.0.0.1", port=server.port, db=5, decode_responses=True)
    assert other.get("k") is None
    other.set("k", "db5")
    assert r.get("k") == "db0"
    assert r.move("k", 6) is True
    assert r.exists("k") == 0
    assert other.dbsize() == 1
    other.flushdb()
    assert other.dbsize() == 0
    other.close()


def test_resp3_client(r3):
    assert r3.ping() is True
    assert r3.set("k", "v", ex=100) is True
    assert r3.get("k") == "v"
    assert r3.get("missing") is None
    assert r3.ttl("k") == 100
    assert r3.incrbyfloat("f", 2.5) == 2.5
    assert r3.mget("k", "missing") == ["v", None]
    with r3.pipeline(transaction=False) as pipe:
        pipe.incr("c").incr("c").get("c")
        assert pipe.execute() == [1, 2, "2"]
    assert set(r3.scan_iter()) == {"k", "f", "c"}
    hello = r3.execute_command("HELLO", 3)
    assert hello["proto"] == 3
    with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'get' command"):
        r3.execute_command("GET")
