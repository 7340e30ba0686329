//! Hash behaviour a case file cannot show: `HSCAN` over a large hashtable-encoded hash returns
//! every field that stays for the whole scan while other fields come and go, field expiry
//! removes fields as real time passes (and the key with its last field), and memory accounting
//! follows a hash's growth and its deletion.
//!
//! The scan and memory tests run against redis-server too with `SHOAL_TEST_AGAINST=redis`; the
//! field expiry test needs Redis 7.4 and runs against Shoal only.

use std::collections::HashSet;
use std::time::Duration;

use shoal_testkit::probe;
use shoal_testkit::{against_redis, encode_command, target_kind, Frame, RawClient, ServerProcess};

fn start() -> ServerProcess {
    let kind = target_kind(option_env!("CARGO_BIN_EXE_shoal-server"));
    ServerProcess::start(kind, &[]).expect("start the server")
}

fn connect(server: &ServerProcess) -> RawClient {
    RawClient::connect_with_timeout(server.addr(), Duration::from_secs(60)).expect("connect")
}

/// Fills `key` with `fields` fields named `<prefix><i>`, pipelined in batches.
fn fill(client: &mut RawClient, key: &str, prefix: &str, fields: usize, value: &str) {
    for start in (0..fields).step_by(500) {
        let mut args: Vec<Vec<u8>> = vec![b"HSET".to_vec(), key.as_bytes().to_vec()];
        for i in start..(start + 500).min(fields) {
            args.push(format!("{prefix}{i}").into_bytes());
            args.push(value.as_bytes().to_vec());
        }
        let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        client.send_raw(&encode_command(&refs)).expect("send HSET");
        let reply = client.read_reply().expect("HSET reply").frame;
        assert!(matches!(reply, Frame::Integer(_)), "HSET: {reply:?}");
    }
}

fn bulk_text(frame: &Frame) -> String {
    match frame {
        Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("expected a bulk string, got {other:?}"),
    }
}

#[test]
fn hscan_returns_every_field_present_for_the_whole_scan() {
    let server = start();
    let mut c = connect(&server);
    fill(&mut c, "big", "keep", 5000, "v");
    assert_eq!(
        c.call(&["OBJECT", "ENCODING", "big"]),
        Frame::Bulk("hashtable".into())
    );
    let mut seen = HashSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let reply = c.call(&["HSCAN", "big", &cursor, "COUNT", "20"]);
        let Frame::Array(parts) = reply else {
            panic!("HSCAN: {reply:?}");
        };
        cursor = bulk_text(&parts[0]);
        let Frame::Array(items) = &parts[1] else {
            panic!("HSCAN items: {:?}", parts[1]);
        };
        for pair in items.chunks(2) {
            seen.insert(bulk_text(&pair[0]));
        }
        calls += 1;
        // Make the table grow, then shrink, while the scan is under way.
        if calls == 10 {
            fill(&mut c, "big", "tmp", 20000, "t");
        }
        if calls == 100 {
            for start in (0..20000).step_by(500) {
                let mut args = vec!["HDEL".to_string(), "big".to_string()];
                args.extend((start..start + 500).map(|i| format!("tmp{i}")));
                let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                c.call(&refs);
            }
        }
        if cursor == "0" {
            break;
        }
        assert!(calls < 100_000, "the scan does not end");
    }
    let missing: Vec<usize> = (0..5000)
        .filter(|i| !seen.contains(&format!("keep{i}")))
        .collect();
    assert!(missing.is_empty(), "fields never returned: {missing:?}");
}

#[test]
fn memory_usage_grows_with_a_hash_and_del_gives_it_back() {
    let server = start();
    let mut c = connect(&server);
    let used = |c: &mut RawClient| probe::info_u64(c, "memory", "used_memory").expect("INFO");
    let usage = |c: &mut RawClient| match c.call(&["MEMORY", "USAGE", "h"]) {
        Frame::Integer(n) => n as u64,
        other => panic!("MEMORY USAGE: {other:?}"),
    };
    let before = used(&mut c);
    fill(&mut c, "h", "f", 10, "small");
    let small = usage(&mut c);
    fill(
        &mut c,
        "h",
        "field-with-a-longer-name-",
        20000,
        &"x".repeat(100),
    );
    let large = usage(&mut c);
    // Each field holds well over 130 bytes of strings alone.
    assert!(
        large > small + 20000 * 130,
        "MEMORY USAGE {small} -> {large}"
    );
    let full = used(&mut c);
    assert!(
        full > before + 20000 * 130,
        "used_memory {before} -> {full}"
    );
    assert_eq!(c.call(&["DEL", "h"]), Frame::Integer(1));
    let after = used(&mut c);
    // DEL gives back at least most of what MEMORY USAGE reported (the rest of used_memory
    // moves with unrelated allocations, such as the server's own start-up work).
    assert!(
        full.saturating_sub(after) >= large * 8 / 10,
        "used_memory {before} -> {full} -> {after} after DEL, MEMORY USAGE was {large}"
    );
}

#[test]
fn fields_expire_as_time_passes_and_take_the_key_with_the_last() {
    if against_redis() {
        // Redis 7.0 has no field expiry.
        return;
    }
    let server = start();
    let mut c = connect(&server);
    assert_eq!(
        c.call(&["HSET", "h", "a", "1", "b", "2", "c", "3"]),
        Frame::Integer(3)
    );
    assert_eq!(
        c.call(&["HPEXPIRE", "h", "50", "FIELDS", "1", "a"]),
        Frame::Array(vec![Frame::Integer(1)])
    );
    match c.call(&["HPTTL", "h", "FIELDS", "1", "a"]) {
        Frame::Array(v) if matches!(v[..], [Frame::Integer(1..=50)]) => {}
        other => panic!("HPTTL: {other:?}"),
    }
    let gone = probe::wait_for(Duration::from_secs(30), Duration::from_millis(20), || {
        (c.call(&["HGET", "h", "a"]) == Frame::Null).then_some(())
    });
    assert!(gone.is_some(), "field a never expired");
    assert_eq!(c.call(&["HLEN", "h"]), Frame::Integer(2));
    assert_eq!(
        c.call(&["HKEYS", "h"]),
        Frame::Array(vec![Frame::Bulk("b".into()), Frame::Bulk("c".into())])
    );

    // Once every remaining field has expired, the key itself is gone.
    assert_eq!(
        c.call(&["HPEXPIRE", "h", "30", "FIELDS", "2", "b", "c"]),
        Frame::Array(vec![Frame::Integer(1), Frame::Integer(1)])
    );
    let gone = probe::wait_for(Duration::from_secs(30), Duration::from_millis(20), || {
        (c.call(&["EXISTS", "h"]) == Frame::Integer(0)).then_some(())
    });
    assert!(gone.is_some(), "the hash outlived its fields");

    // A key expiry in the past removes a hash with field expiries like any other key.
    c.call(&["HSET", "k", "a", "1", "b", "2"]);
    c.call(&["HEXPIRE", "k", "1000", "FIELDS", "1", "a"]);
    assert_eq!(c.call(&["PEXPIREAT", "k", "1"]), Frame::Integer(1));
    assert_eq!(c.call(&["EXISTS", "k"]), Frame::Integer(0));
    assert_eq!(
        c.call(&["HTTL", "k", "FIELDS", "1", "a"]),
        Frame::Array(vec![Frame::Integer(-2)])
    );
    assert_eq!(c.call(&["DBSIZE"]), Frame::Integer(0));
}
