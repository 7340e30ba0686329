//! Real-client tests with the `redis` crate (async, tokio): its string, key and expiry APIs,
//! pipelines, SCAN iteration and RESP3, against Shoal (or against redis-server with
//! `SHOAL_TEST_AGAINST=redis`, which validates the tests themselves).

use std::collections::HashSet;

use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, ExistenceCheck, SetExpiry, SetOptions, Value};
use shoal_testkit::{target_kind, ServerKind, ServerProcess};

/// The server under test: Shoal's binary, unless redirected to Redis.
fn candidate() -> ServerKind {
    target_kind(option_env!("CARGO_BIN_EXE_shoal-server"))
}

async fn connect(server: &ServerProcess, resp3: bool) -> MultiplexedConnection {
    let query = if resp3 { "?protocol=resp3" } else { "" };
    let url = format!("redis://127.0.0.1:{}/{query}", server.port());
    let client = redis::Client::open(url).expect("valid URL");
    client
        .get_multiplexed_async_connection()
        .await
        .expect("connect with the redis crate")
}

fn start() -> ServerProcess {
    ServerProcess::start(candidate(), &[]).expect("start the server under test")
}

#[tokio::test]
async fn strings_round_trip() {
    let server = start();
    let mut con = connect(&server, false).await;
    let () = con.set("greeting", "hello").await.expect("SET");
    let got: Option<String> = con.get("greeting").await.expect("GET");
    assert_eq!(got.as_deref(), Some("hello"));
    let missing: Option<String> = con.get("nope").await.expect("GET missing");
    assert_eq!(missing, None);

    // Binary values survive untouched.
    let blob: Vec<u8> = (0u8..=255).collect();
    let () = con.set(b"bin\x00key", &blob).await.expect("SET binary");
    let back: Vec<u8> = con.get(b"bin\x00key").await.expect("GET binary");
    assert_eq!(back, blob);

    let len: usize = con.append("greeting", ", world").await.expect("APPEND");
    assert_eq!(len, 12);
    let len: usize = con.strlen("greeting").await.expect("STRLEN");
    assert_eq!(len, 12);
    let part: String = con.getrange("greeting", 0, 4).await.expect("GETRANGE");
    assert_eq!(part, "hello");
    let len: usize = con
        .setrange("greeting", 7, "WORLD")
        .await
        .expect("SETRANGE");
    assert_eq!(len, 12);
    let old: Option<String> = con.getset("greeting", "bye").await.expect("GETSET");
    assert_eq!(old.as_deref(), Some("hello, WORLD"));
    let gone: Option<String> = con.get_del("greeting").await.expect("GETDEL");
    assert_eq!(gone.as_deref(), Some("bye"));
    let exists: bool = con.exists("greeting").await.expect("EXISTS");
    assert!(!exists);

    let set: bool = con.set_nx("once", 1).await.expect("SETNX");
    assert!(set);
    let set: bool = con.set_nx("once", 2).await.expect("SETNX again");
    assert!(!set);
}

#[tokio::test]
async fn set_options_nx_xx_get_and_expiry() {
    let server = start();
    let mut con = connect(&server, false).await;
    let options = SetOptions::default()
        .conditional_set(ExistenceCheck::NX)
        .with_expiration(SetExpiry::EX(100));
    let reply: Option<String> = con
        .set_options("lock", "me", options)
        .await
        .expect("SET NX EX");
    assert_eq!(reply.as_deref(), Some("OK"));
    let reply: Option<String> = con
        .set_options(
            "lock",
            "you",
            SetOptions::default().conditional_set(ExistenceCheck::NX),
        )
        .await
        .expect("SET NX on an existing key");
    assert_eq!(reply, None);
    let ttl: i64 = con.ttl("lock").await.expect("TTL");
    assert!((99..=100).contains(&ttl), "ttl {ttl}");

    let reply: Option<String> = con
        .set_options(
            "lock",
            "me2",
            SetOptions::default()
                .conditional_set(ExistenceCheck::XX)
                .get(true)
                .with_expiration(SetExpiry::KEEPTTL),
        )
        .await
        .expect("SET XX GET KEEPTTL");
    assert_eq!(reply.as_deref(), Some("me"));
    let ttl: i64 = con.ttl("lock").await.expect("TTL after KEEPTTL");
    assert!((99..=100).contains(&ttl), "ttl {ttl}");

    let () = con.set_ex("session", "data", 50).await.expect("SETEX");
    let ttl: i64 = con.ttl("session").await.expect("TTL");
    assert!((49..=50).contains(&ttl), "ttl {ttl}");
    let pttl: i64 = con.pttl("session").await.expect("PTTL");
    assert!((45_000..=50_000).contains(&pttl), "pttl {pttl}");
    let () = con.pset_ex("short", "x", 100_000).await.expect("PSETEX");
    let ttl: i64 = con.ttl("short").await.expect("TTL");
    assert!((99..=100).contains(&ttl), "ttl {ttl}");

    // An invalid expire time is an error the client surfaces, with Redis's text.
    let err = con
        .set_options::<_, _, Option<String>>(
            "bad",
            "v",
            SetOptions::default().with_expiration(SetExpiry::PX(0)),
        )
        .await
        .expect_err("PX 0 must fail");
    assert!(
        err.to_string()
            .contains("invalid expire time in 'set' command"),
        "{err}"
    );
}

#[tokio::test]
async fn counters_and_multi_key_commands() {
    let server = start();
    let mut con = connect(&server, false).await;
    let n: i64 = con.incr("counter", 1).await.expect("INCR");
    assert_eq!(n, 1);
    let n: i64 = con.incr("counter", 41).await.expect("INCRBY");
    assert_eq!(n, 42);
    let n: i64 = con.decr("counter", 2).await.expect("DECRBY");
    assert_eq!(n, 40);
    let f: f64 = con.incr("float", 2.5).await.expect("INCRBYFLOAT");
    assert_eq!(f, 2.5);
    let () = con.set("max", i64::MAX).await.expect("SET max");
    let err = con.incr::<_, _, i64>("max", 1).await.expect_err("overflow");
    assert!(
        err.to_string()
            .contains("increment or decrement would overflow"),
        "{err}"
    );
    let () = con.set("text", "abc").await.expect("SET text");
    let err = con
        .incr::<_, _, i64>("text", 1)
        .await
        .expect_err("not an integer");
    assert!(
        err.to_string()
            .contains("value is not an integer or out of range"),
        "{err}"
    );

    let () = con
        .mset(&[("k1", "v1"), ("k2", "v2"), ("k3", "v3")])
        .await
        .expect("MSET");
    let values: Vec<Option<String>> = con.mget(&["k1", "missing", "k3"]).await.expect("MGET");
    assert_eq!(
        values,
        vec![Some("v1".to_string()), None, Some("v3".to_string())]
    );
    let set: bool = con
        .mset_nx(&[("k1", "x"), ("k9", "y")])
        .await
        .expect("MSETNX");
    assert!(!set);
    let n: usize = con.exists(&["k1", "k2", "k9"]).await.expect("EXISTS many");
    assert_eq!(n, 2);
    let n: usize = con.del(&["k1", "k2", "k9"]).await.expect("DEL");
    assert_eq!(n, 2);
    let n: usize = con.unlink("k3").await.expect("UNLINK");
    assert_eq!(n, 1);
    let kind: String = con.key_type("counter").await.expect("TYPE");
    assert_eq!(kind, "string");
    let () = con.rename("counter", "renamed").await.expect("RENAME");
    let ok: bool = con.rename_nx("renamed", "max").await.expect("RENAMENX");
    assert!(!ok);
    let size: usize = redis::cmd("DBSIZE")
        .query_async(&mut con)
        .await
        .expect("DBSIZE");
    assert_eq!(size, 4);
}

#[tokio::test]
async fn expiry_apis() {
    let server = start();
    let mut con = connect(&server, false).await;
    let () = con.set("k", "v").await.expect("SET");
    let ttl: i64 = con.ttl("k").await.expect("TTL without expiry");
    assert_eq!(ttl, -1);
    let ttl: i64 = con.ttl("missing").await.expect("TTL of a missing key");
    assert_eq!(ttl, -2);
    let set: bool = con.expire("k", 100).await.expect("EXPIRE");
    assert!(set);
    let ttl: i64 = con.ttl("k").await.expect("TTL");
    assert_eq!(ttl, 100);
    let set: bool = con.pexpire("k", 200_000).await.expect("PEXPIRE");
    assert!(set);
    let ttl: i64 = con.ttl("k").await.expect("TTL");
    assert_eq!(ttl, 200);
    let set: bool = con.expire_at("k", 4_102_444_800).await.expect("EXPIREAT");
    assert!(set);
    let when: i64 = con.expire_time("k").await.expect("EXPIRETIME");
    assert_eq!(when, 4_102_444_800);
    let set: bool = con
        .pexpire_at("k", 4_102_444_800_123)
        .await
        .expect("PEXPIREAT");
    assert!(set);
    let when: i64 = con.pexpire_time("k").await.expect("PEXPIRETIME");
    assert_eq!(when, 4_102_444_800_123);
    let removed: bool = con.persist("k").await.expect("PERSIST");
    assert!(removed);
    let ttl: i64 = con.ttl("k").await.expect("TTL after PERSIST");
    assert_eq!(ttl, -1);
    let set: bool = con.expire("missing", 10).await.expect("EXPIRE missing");
    assert!(!set);
    // A past deadline deletes the key at once.
    let set: bool = con.pexpire_at("k", 1).await.expect("PEXPIREAT in the past");
    assert!(set);
    let exists: bool = con.exists("k").await.expect("EXISTS");
    assert!(!exists);
    // EXPIRE with NX/GT through the generic command builder.
    let () = con.set("g", "v").await.expect("SET");
    let r: i64 = redis::cmd("EXPIRE")
        .arg("g")
        .arg(50)
        .arg("NX")
        .query_async(&mut con)
        .await
        .expect("EXPIRE NX");
    assert_eq!(r, 1);
    let r: i64 = redis::cmd("EXPIRE")
        .arg("g")
        .arg(10)
        .arg("GT")
        .query_async(&mut con)
        .await
        .expect("EXPIRE GT");
    assert_eq!(r, 0);
    let value: Option<String> = con
        .get_ex("g", redis::Expiry::EX(300))
        .await
        .expect("GETEX EX");
    assert_eq!(value.as_deref(), Some("v"));
    let ttl: i64 = con.ttl("g").await.expect("TTL after GETEX");
    assert_eq!(ttl, 300);
}

#[tokio::test]
async fn scan_match_iterates_every_matching_key() {
    let server = start();
    let mut con = connect(&server, false).await;
    let mut pipe = redis::pipe();
    for i in 0..1500 {
        pipe.set(format!("item:{i}"), i).ignore();
    }
    for i in 0..100 {
        pipe.set(format!("other:{i}"), i).ignore();
    }
    let () = pipe.query_async(&mut con).await.expect("pipelined SETs");
    let mut iter = con
        .scan_match::<_, String>("item:*")
        .await
        .expect("SCAN MATCH");
    let mut seen = HashSet::new();
    while let Some(key) = iter.next_item().await {
        seen.insert(key.expect("scanned key"));
    }
    drop(iter);
    assert_eq!(seen.len(), 1500);
    assert!((0..1500).all(|i| seen.contains(&format!("item:{i}"))));
    let mut iter = con.scan::<String>().await.expect("SCAN");
    let mut all = HashSet::new();
    while let Some(key) = iter.next_item().await {
        all.insert(key.expect("scanned key"));
    }
    assert_eq!(all.len(), 1600);
}

#[tokio::test]
async fn pipelines_keep_order_and_report_errors_in_place() {
    let server = start();
    let mut con = connect(&server, false).await;
    let (a, b, n, missing): (String, String, i64, Option<String>) = redis::pipe()
        .set("a", "1")
        .ignore()
        .set("b", "2")
        .ignore()
        .get("a")
        .get("b")
        .incr("a", 10)
        .get("nope")
        .query_async(&mut con)
        .await
        .expect("pipeline");
    assert_eq!((a.as_str(), b.as_str(), n, missing), ("1", "2", 11, None));

    // A failing command inside a non-transactional pipeline fails the whole query in the
    // client, but the server must still answer every command in order.
    let result: redis::RedisResult<(String, i64)> = redis::pipe()
        .set("s", "text")
        .ignore()
        .get("s")
        .incr("s", 1)
        .query_async(&mut con)
        .await;
    let err = result.expect_err("INCR on text fails");
    assert!(err.to_string().contains("not an integer"), "{err}");
    let still: String = con.get("s").await.expect("connection still usable");
    assert_eq!(still, "text");

    // A large pipeline exercises buffering on both sides.
    let mut pipe = redis::pipe();
    for _ in 0..5000 {
        pipe.incr("big", 1);
    }
    let values: Vec<i64> = pipe.query_async(&mut con).await.expect("5000 INCRs");
    assert_eq!(values.len(), 5000);
    assert_eq!(values.last(), Some(&5000));
    assert!(values.windows(2).all(|w| w[1] == w[0] + 1));
}

#[tokio::test]
async fn resp3_connection_works() {
    let server = start();
    let mut con = connect(&server, true).await;
    let () = con.set("k", "v").await.expect("SET over RESP3");
    let v: String = con.get("k").await.expect("GET over RESP3");
    assert_eq!(v, "v");
    let missing: Option<String> = con.get("missing").await.expect("GET missing over RESP3");
    assert_eq!(missing, None);
    let f: f64 = con.incr("f", 1.5).await.expect("INCRBYFLOAT over RESP3");
    assert_eq!(f, 1.5);
    // HELLO answers with a map in RESP3.
    let hello: Value = redis::cmd("HELLO")
        .arg(3)
        .query_async(&mut con)
        .await
        .expect("HELLO 3");
    let Value::Map(fields) = hello else {
        panic!("HELLO 3 did not return a map: {hello:?}");
    };
    let proto = fields.iter().find_map(|(k, v)| match (k, v) {
        (Value::BulkString(k), Value::Int(p)) if k.as_slice() == b"proto" => Some(*p),
        _ => None,
    });
    assert_eq!(proto, Some(3));
    let mut iter = con.scan::<String>().await.expect("SCAN over RESP3");
    let mut n = 0;
    while let Some(key) = iter.next_item().await {
        key.expect("scanned key");
        n += 1;
    }
    assert_eq!(n, 2);
}
