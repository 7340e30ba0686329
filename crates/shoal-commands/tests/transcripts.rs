//! In-process transcripts of the command families, on a manual clock: time-dependent behaviour
//! (expiry, TTLs, idle time) is checked instantly and exactly, without sleeping.
//!
//! A transcript is a list of lines: a command, or `+advance <ms>` to move the clock, each
//! followed by `=> <expected reply>` in redis-cli style. The server side of `ServerOps` is the crate's
//! `InertServer` stand-in; the real one is exercised by the server's integration tests.

use bytes::Bytes;
use shoal_commands::{ClientState, CommandTable, Engine, InertServer};
use shoal_resp::Frame;
use shoal_storage::Keyspace;

fn render(f: &Frame) -> String {
    match f {
        Frame::Simple(s) => String::from_utf8_lossy(s).into_owned(),
        Frame::Error(e) => format!("(error) {}", String::from_utf8_lossy(e)),
        Frame::Integer(n) => format!("(integer) {n}"),
        Frame::Bulk(b) => format!("{:?}", String::from_utf8_lossy(b)),
        Frame::Null | Frame::NullArray => "(nil)".into(),
        Frame::Array(items) => format!(
            "[{}]",
            items.iter().map(render).collect::<Vec<_>>().join(", ")
        ),
        other => format!("{other:?}"),
    }
}

/// Runs a transcript starting at Unix time `T0` and checks every `=>` line.
fn check(transcript: &str) {
    let ks = Keyspace::new(16, 64, 42);
    let table = CommandTable::new();
    let mut client = ClientState::new(1, true);
    let mut now: u64 = 1_700_000_000_000;
    let mut last = String::new();
    for (n, line) in transcript.lines().map(str::trim).enumerate() {
        if line.is_empty() {
            continue;
        }
        if let Some(ms) = line.strip_prefix("+advance ") {
            now += ms
                .trim_end_matches("ms")
                .parse::<u64>()
                .expect("advance in ms");
        } else if let Some(want) = line.strip_prefix("=> ") {
            assert_eq!(last, want, "line {}: {line}", n + 1);
        } else {
            let args: Vec<Bytes> = line
                .split_whitespace()
                .map(|w| Bytes::copy_from_slice(w.as_bytes()))
                .collect();
            let engine = Engine {
                table: &table,
                ks: &ks,
                server: &InertServer,
            };
            let ex = engine.execute(&mut client, &args, now * 1000);
            last = render(&ex.reply);
        }
    }
}

#[test]
fn set_ex_expires_exactly_at_its_deadline() {
    check(
        "SET k v EX 1
         => OK
         +advance 999ms
         GET k
         => \"v\"
         PTTL k
         => (integer) 1
         +advance 1ms
         GET k
         => (nil)
         EXISTS k
         => (integer) 0",
    );
}

#[test]
fn keepttl_and_persist() {
    check(
        "SET k v PX 5000
         => OK
         SET k w KEEPTTL
         => OK
         PTTL k
         => (integer) 5000
         SET k x
         => OK
         TTL k
         => (integer) -1
         EXPIRE k 10
         => (integer) 1
         +advance 2500ms
         TTL k
         => (integer) 8
         PERSIST k
         => (integer) 1
         +advance 100000ms
         GET k
         => \"x\"",
    );
}

#[test]
fn expire_options_compare_with_the_current_ttl() {
    check(
        "SET k v
         => OK
         EXPIRE k 100 XX
         => (integer) 0
         EXPIRE k 100 NX
         => (integer) 1
         EXPIRE k 50 GT
         => (integer) 0
         EXPIRE k 50 LT
         => (integer) 1
         TTL k
         => (integer) 50
         EXPIRE k -1
         => (integer) 1
         EXISTS k
         => (integer) 0",
    );
}

#[test]
fn getex_changes_and_removes_expiry() {
    check(
        "SET k v
         => OK
         GETEX k PX 300
         => \"v\"
         +advance 200ms
         GETEX k PERSIST
         => \"v\"
         +advance 1000ms
         GET k
         => \"v\"
         GETEX k EXAT 1
         => \"v\"
         GET k
         => (nil)",
    );
}

#[test]
fn object_idletime_follows_the_clock_and_no_touch_commands() {
    check(
        "SET k v
         => OK
         +advance 5000ms
         OBJECT IDLETIME k
         => (integer) 5
         TTL k
         => (integer) -1
         OBJECT IDLETIME k
         => (integer) 5
         GET k
         => \"v\"
         OBJECT IDLETIME k
         => (integer) 0",
    );
}

#[test]
fn incr_keeps_ttl_and_counts() {
    check(
        "SET n 10 EX 100
         => OK
         INCRBY n 5
         => (integer) 15
         TTL n
         => (integer) 100
         OBJECT ENCODING n
         => \"int\"
         INCRBYFLOAT n 0.5
         => \"15.5\"
         OBJECT ENCODING n
         => \"embstr\"",
    );
}

#[test]
fn scan_and_randomkey_skip_expired_keys() {
    check(
        "SET a 1 PX 10
         => OK
         +advance 10ms
         SCAN 0 COUNT 1000
         => [\"0\", []]
         RANDOMKEY
         => (nil)",
    );
}
