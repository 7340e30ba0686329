//! Keyspace notifications, compared with redis-server 7.0: a subscriber listens on
//! `__key*__:*`, another client runs a script of commands, and the two servers must deliver the
//! same messages in the same order. Each family has its scenario; the class flags vary.
//! `SHOAL_TEST_AGAINST=redis` runs the Shoal side against a second redis-server.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use shoal_testkit::{render, split_args, target_kind, RawClient, ServerKind, ServerProcess};

const TIMEOUT: Duration = Duration::from_secs(30);

fn candidate() -> ServerKind {
    target_kind(option_env!("CARGO_BIN_EXE_shoal-server"))
}

fn connect(addr: SocketAddr) -> RawClient {
    RawClient::connect_with_timeout(addr, TIMEOUT).expect("connect")
}

/// Runs `commands` (redis-cli syntax, one per line) with `notify-keyspace-events` set to
/// `flags` and returns every notification the subscriber received, in order.
fn notifications(addr: SocketAddr, flags: &str, commands: &str) -> Vec<String> {
    let mut sub = connect(addr);
    let mut c = connect(addr);
    c.call(&["FLUSHALL"]);
    c.call(&["CONFIG", "SET", "notify-keyspace-events", flags]);
    sub.send_command(&[b"PSUBSCRIBE", b"__key*__:*"])
        .expect("send");
    sub.read_frame().expect("psubscribe confirmation");
    sub.send_command(&[b"SUBSCRIBE", b"end-of-test"])
        .expect("send");
    sub.read_frame().expect("subscribe confirmation");
    let mut out = Vec::new();
    for line in commands.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let args = split_args(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        let args: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
        // Replies are not compared: some are random (SPOP); the notifications are what counts.
        c.command(&args).expect("reply");
        out.push(format!("> {line}"));
    }
    c.call(&["PUBLISH", "end-of-test", "done"]);
    loop {
        let f = sub.read_frame().expect("message");
        let text = render(&f);
        if text.contains("end-of-test") {
            break;
        }
        out.push(text);
    }
    c.call(&["CONFIG", "SET", "notify-keyspace-events", ""]);
    out
}

fn same_on_both(flags: &str, commands: &str) {
    let redis = ServerProcess::start(ServerKind::Redis, &[]).expect("redis starts");
    let expected = notifications(redis.addr(), flags, commands);
    let shoal = ServerProcess::start(candidate(), &[]).expect("shoal starts");
    let got = notifications(shoal.addr(), flags, commands);
    assert_eq!(
        got.join("\n"),
        expected.join("\n"),
        "flags {flags}: Shoal (left), Redis (right)"
    );
}

const STRINGS: &str = "
SET s v
SET s v2 EX 100
SETNX s x
SETNX s2 x
SETEX s3 100 v
GETSET s v3
MSET a 1 b 2
MSETNX a 1 c 3
INCR n
INCRBY n 5
DECR n
INCRBYFLOAT f 1.5
APPEND s tail
APPEND newapp x
SETRANGE s 2 XY
SETRANGE sr 3 x
GETDEL s
GETEX a EX 100
GETEX a PERSIST
GETEX b PXAT 1
";

#[test]
fn string_commands_notify_like_redis() {
    same_on_both("KEA", STRINGS);
    same_on_both("E$", STRINGS);
    same_on_both("Kgn", STRINGS);
    same_on_both(
        "Km",
        "GET missing\nMGET a missing2\nSET a 1\nGET a\nHGET nohash f\nLRANGE nolist 0 -1",
    );
}

const KEYS: &str = "
SET k1 v
SET k2 v
DEL k1 k2 missing
SET k v
EXPIRE k 100
PEXPIRE k 100000
EXPIREAT k 4102444800
PERSIST k
PERSIST k
EXPIRE k 0
SET r v
RENAME r r2
RENAMENX r2 r3
SET m v
MOVE m 1
SET c v
COPY c c2
COPY c c2 REPLACE
SET u v
UNLINK u
SET e v PX 100000
";

#[test]
fn key_commands_notify_like_redis() {
    same_on_both("KEA", KEYS);
    same_on_both("Eg", KEYS);
}

const LISTS: &str = "
RPUSH l a b c d e
LPUSH l z
LPUSHX nolist x
RPUSHX l y
LINSERT l BEFORE c x
LINSERT l BEFORE nothere x
LSET l 0 first
LREM l 1 x
LREM l 1 nothere
LPOP l
RPOP l 2
LTRIM l 0 1
LMOVE l dst LEFT RIGHT
RPOPLPUSH l dst
LMOVE dst dst LEFT LEFT
LMPOP 1 dst RIGHT COUNT 10
RPUSH b 1
BLPOP b 0
RPUSH t 1 2 3
LTRIM t 5 10
";

#[test]
fn list_commands_notify_like_redis() {
    same_on_both("KEA", LISTS);
    same_on_both("Elg", LISTS);
}

const HASHES_AND_SETS: &str = "
HSET h a 1 b 2
HSET h a 1
HMSET h c 3
HSETNX h a 9
HSETNX h z 9
HINCRBY h n 5
HINCRBYFLOAT h f 1.5
HDEL h a nothere
HDEL h nothere
HDEL h b c z n f
SADD s a b c
SADD s a
SREM s a
SREM s nothere
SPOP s
SADD s2 1 2 3 4 5 6 7 8 9 10
SPOP s2 3
SPOP s2 100
SADD x 1 2
SADD y 2 3
SINTERSTORE i x y
SUNIONSTORE u x y
SDIFFSTORE d x y
SDIFFSTORE d x x
SDIFFSTORE d x x
SMOVE x y 1
SMOVE y newset 2
SMOVE y newset 3
SMOVE y newset 3
";

#[test]
fn hash_and_set_commands_notify_like_redis() {
    same_on_both("KEA", HASHES_AND_SETS);
    same_on_both("Ehsgn", HASHES_AND_SETS);
}

const ZSETS_AND_GEO: &str = "
ZADD z 1 a 2 b 3 c 4 d 5 e
ZADD z 1 a
ZADD z XX CH 9 a
ZADD z INCR 1 a
ZINCRBY z 2 b
ZREM z a nothere
ZREM z nothere
ZREMRANGEBYRANK z 0 0
ZREMRANGEBYSCORE z 100 200
ZREMRANGEBYSCORE z 0 3
ZPOPMIN z
ZPOPMAX z 5
ZADD z1 1 a 2 b
ZADD z2 2 b 3 c
ZUNIONSTORE u 2 z1 z2
ZINTERSTORE i 2 z1 z2
ZDIFFSTORE d 2 z1 z2
ZDIFFSTORE d 2 z1 z1
ZRANGESTORE r z1 0 -1
ZRANGESTORE r z1 5 10
ZMPOP 1 z1 MIN COUNT 5
BZPOPMAX z2 0
ZADD lex 0 a 0 b 0 c
ZREMRANGEBYLEX lex [a [b
GEOADD g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania
GEOSEARCHSTORE gs g FROMLONLAT 15 37 BYRADIUS 200 km
GEORADIUS g 15 37 200 km STORE gr
GEOSEARCHSTORE gs g FROMLONLAT 0 0 BYRADIUS 1 km
GEOSEARCHSTORE gs nokey FROMLONLAT 0 0 BYRADIUS 1 km
";

#[test]
fn sorted_set_and_geo_commands_notify_like_redis() {
    same_on_both("KEA", ZSETS_AND_GEO);
    same_on_both("Ezg", ZSETS_AND_GEO);
}

const STREAMS_BITS_HLL: &str = "
XADD s 1-1 f v
XADD s MAXLEN 1 2-1 f v
XADD s NOMKSTREAM 3-1 f v
XADD nostream NOMKSTREAM 1-1 f v
XDEL s 2-1 9-9
XDEL s 9-9
XADD s 3-1 f v
XADD s 4-1 f v
XTRIM s MAXLEN 1
XTRIM s MAXLEN 5
XSETID s 10-1
XGROUP CREATE s g $
XGROUP CREATE new g $ MKSTREAM
XGROUP SETID s g 0
XGROUP CREATECONSUMER s g c1
XGROUP CREATECONSUMER s g c1
XGROUP DELCONSUMER s g c1
XGROUP DELCONSUMER s g c1
XGROUP DESTROY s g
XGROUP DESTROY s g
XGROUP CREATE s g2 0
XADD s 20-1 f v
XREADGROUP GROUP g2 reader COUNT 1 STREAMS s >
XREADGROUP GROUP g2 reader COUNT 1 STREAMS s >
XCLAIM s g2 claimer 0 20-1
XAUTOCLAIM s g2 autoclaimer 0 0
SETBIT b 7 1
SETBIT b 7 1
SETBIT b 100 0
BITFIELD bf SET u8 0 200
BITFIELD b INCRBY u8 0 1
SET x1 abc
BITOP NOT dest x1
BITOP AND dest nokey1 nokey2
BITOP AND dest nokey1 nokey2
PFADD h a b c
PFADD h a
PFADD h d
PFADD h2 x
PFMERGE hm h h2
PFMERGE hm h
";

#[test]
fn stream_bitmap_and_hyperloglog_commands_notify_like_redis() {
    same_on_both("KEA", STREAMS_BITS_HLL);
    same_on_both("Et$g", STREAMS_BITS_HLL);
}

/// Expiry, lazy (a read finds the key expired) and active (the background cycle removes it),
/// and eviction, all on the `x`/`e` classes.
#[test]
fn expiry_and_eviction_notify_like_redis() {
    let scenario = |addr: SocketAddr| {
        let mut sub = connect(addr);
        let mut c = connect(addr);
        c.call(&["CONFIG", "SET", "notify-keyspace-events", "Exe"]);
        sub.send_command(&[b"PSUBSCRIBE", b"__key*__:*"])
            .expect("send");
        sub.read_frame().expect("confirmation");
        c.call(&["SET", "lazy", "v", "PX", "1"]);
        c.call(&["SET", "active", "v", "PX", "1"]);
        // Wait for the TTL to pass without touching either key.
        std::thread::sleep(Duration::from_millis(5));
        c.call(&["GET", "lazy"]);
        let mut got = vec![render(&sub.read_frame().expect("lazy expiry"))];
        // The active cycle finds the other one by itself.
        let start = Instant::now();
        got.push(render(&sub.read_frame().expect("active expiry")));
        assert!(start.elapsed() < TIMEOUT);
        c.call(&["CONFIG", "SET", "maxmemory-policy", "allkeys-random"]);
        c.call(&["SET", "victim", "v"]);
        c.call(&["CONFIG", "SET", "maxmemory", "1"]);
        c.call(&["PING"]);
        c.call(&["CONFIG", "SET", "maxmemory", "0"]);
        got.push(render(&sub.read_frame().expect("eviction")));
        got
    };
    let redis = ServerProcess::start(ServerKind::Redis, &[]).expect("redis starts");
    let expected = scenario(redis.addr());
    let shoal = ServerProcess::start(candidate(), &[]).expect("shoal starts");
    assert_eq!(scenario(shoal.addr()), expected);
}

#[test]
fn notifications_are_off_by_default_and_flags_render_like_redis() {
    let transcripts: Vec<Vec<String>> = [ServerKind::Redis, candidate()]
        .into_iter()
        .map(|kind| {
            let server = ServerProcess::start(kind, &[]).expect("server starts");
            let mut c = connect(server.addr());
            let mut got = vec![render(&c.call(&[
                "CONFIG",
                "GET",
                "notify-keyspace-events",
            ]))];
            for flags in ["KEA", "Elg", "An", "Kxn", "gK$", "Kq", ""] {
                got.push(render(&c.call(&[
                    "CONFIG",
                    "SET",
                    "notify-keyspace-events",
                    flags,
                ])));
                got.push(render(&c.call(&[
                    "CONFIG",
                    "GET",
                    "notify-keyspace-events",
                ])));
            }
            got
        })
        .collect();
    assert!(transcripts[0][0].contains("\"\""), "off by default");
    assert_eq!(
        transcripts[1], transcripts[0],
        "Shoal (left), Redis (right)"
    );
}
