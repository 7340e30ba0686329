//! `COMMAND INFO`, `COMMAND GETKEYS` and `COMMAND GETKEYSANDFLAGS` compared with a real
//! redis-server 7.0.
//!
//! For every command redis-server lists that Shoal also implements, both servers must answer
//! `COMMAND INFO <name>` with the same bytes, in RESP2 and RESP3: arity, flags, legacy key
//! positions, ACL categories, tips, key specs and subcommands. Redis lists a container's
//! subcommands in hash-table order, which changes from one process to the next, so a container
//! is compared field by field and each subcommand on its own (`COMMAND INFO client|list`).
//! `COMMAND COUNT`, `COMMAND LIST` and the full `COMMAND` reply are not compared: Shoal lacks
//! some commands (and has a few newer ones).
//!
//! The differences allowed are listed, with their reason, in [`ALLOWED`] and
//! [`SUBCOMMAND_DIFFERENCES`]. `SHOAL_TEST_AGAINST=redis` runs the candidate side against a
//! second redis-server, which checks that the comparison itself is sound.

use std::collections::BTreeSet;
use std::time::Duration;

use shoal_testkit::client::escape;
use shoal_testkit::{target_kind, Frame, RawClient, ServerKind, ServerProcess};

/// Bounds every read, so a server that stops answering fails the test instead of hanging it.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Commands whose `COMMAND INFO` may differ from Redis 7.0's, with the reason.
const ALLOWED: &[(&str, &str)] = &[
    // Shoal accepts Redis 7.2's `WITHSCORE`, which needs arity -3 where Redis 7.0 says 3.
    ("zrank", "WITHSCORE (Redis 7.2) needs arity -3"),
    ("zrevrank", "WITHSCORE (Redis 7.2) needs arity -3"),
];

/// Subcommands only one of the two servers has, with the reason.
const SUBCOMMAND_DIFFERENCES: &[(&str, &str)] = &[
    // Client-side caching (tracking and redirection) is not implemented.
    ("client|caching", "client tracking is not implemented"),
    ("client|getredir", "client tracking is not implemented"),
    ("client|tracking", "client tracking is not implemented"),
    ("client|trackinginfo", "client tracking is not implemented"),
    // Redis 7.2 subcommands Shoal implements.
    ("client|no-touch", "added in Redis 7.2"),
    ("client|setinfo", "added in Redis 7.2"),
];

/// Invocations whose `COMMAND GETKEYS` and `COMMAND GETKEYSANDFLAGS` replies must match: one
/// per way of finding keys, and every command whose key flags depend on its arguments.
const GETKEYS_CASES: &[&[&str]] = &[
    &["GET", "k"],
    &["SET", "k", "v"],
    &["SET", "k", "v", "GET"],
    &["SET", "k", "v", "EX", "10", "get"],
    &["BITFIELD", "k", "GET", "u8", "0"],
    &["BITFIELD", "k", "GET", "u8", "0", "OVERFLOW", "SAT"],
    &["BITFIELD", "k", "GET", "u8", "0", "SET", "u8", "0", "1"],
    &["BITFIELD", "k", "INCRBY", "u8", "0", "1"],
    &["BITFIELD", "k", "GET", "u8"],
    &["BITFIELD_RO", "k", "GET", "u8", "0"],
    &["MSET", "a", "1", "b", "2"],
    &["MSETNX", "a", "1", "b", "2"],
    &["DEL", "a", "b", "c"],
    &["LMOVE", "a", "b", "LEFT", "RIGHT"],
    &["BLMOVE", "a", "b", "LEFT", "RIGHT", "0"],
    &["RPOPLPUSH", "a", "b"],
    &["SMOVE", "a", "b", "m"],
    &["RENAME", "a", "b"],
    &["RENAMENX", "a", "b"],
    &["COPY", "a", "b"],
    &["BITOP", "AND", "d", "a", "b"],
    &["SUNIONSTORE", "d", "a", "b"],
    &["SINTERSTORE", "d", "a", "b"],
    &["PFMERGE", "d", "a", "b"],
    &["PFCOUNT", "a", "b"],
    &["ZRANGESTORE", "d", "s", "0", "-1"],
    &["ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2"],
    &["ZUNION", "2", "a", "b"],
    &["LMPOP", "2", "a", "b", "LEFT"],
    &["BLPOP", "a", "b", "0"],
    &["SINTERCARD", "2", "a", "b", "LIMIT", "1"],
    &["EXPIRE", "k", "10"],
    &["TTL", "k"],
    &["GETEX", "k", "PERSIST"],
    &["GETDEL", "k"],
    &["LPUSH", "k", "a"],
    &["HDEL", "k", "f"],
    &["OBJECT", "ENCODING", "k"],
    &["MEMORY", "USAGE", "k"],
    &["PING"],
    &["ZUNIONSTORE", "d", "0", "a"],
];

/// The candidate server: Shoal, or a second redis-server under `SHOAL_TEST_AGAINST=redis`.
fn candidate() -> ServerKind {
    target_kind(option_env!("CARGO_BIN_EXE_shoal-server"))
}

/// A client on `server` speaking RESP `proto`.
fn connect(server: &ServerProcess, proto: u8) -> RawClient {
    let mut c = RawClient::connect_with_timeout(server.addr(), TIMEOUT).expect("connect");
    if proto == 3 {
        c.call(&["HELLO", "3"]);
    }
    c
}

fn allowed(name: &str) -> bool {
    ALLOWED.iter().any(|(n, _)| *n == name)
}

fn text(frame: &Frame) -> String {
    match frame {
        Frame::Bulk(b) | Frame::Simple(b) => String::from_utf8_lossy(b).into_owned(),
        other => format!("{other:?}"),
    }
}

/// The one entry of a `COMMAND INFO <name>` reply, and the reply's raw bytes.
fn info(c: &mut RawClient, name: &str) -> (Frame, Vec<u8>) {
    let reply = c
        .command_raw(&[b"COMMAND", b"INFO", name.as_bytes()])
        .expect("COMMAND INFO");
    let entry = match reply.frame {
        Frame::Array(mut items) if items.len() == 1 => items.remove(0),
        other => panic!("COMMAND INFO {name}: unexpected reply {other:?}"),
    };
    (entry, reply.raw.to_vec())
}

/// The subcommand names of a `COMMAND INFO` entry.
fn subcommand_names(entry: &Frame) -> BTreeSet<String> {
    match entry {
        Frame::Array(fields) => match fields.get(9) {
            Some(Frame::Array(subs)) => subs
                .iter()
                .filter_map(|s| match s {
                    Frame::Array(f) => f.first().map(text),
                    _ => None,
                })
                .collect(),
            _ => BTreeSet::new(),
        },
        _ => BTreeSet::new(),
    }
}

/// Compares `COMMAND INFO <name>` on both servers, adding every difference to `failures`.
fn compare(redis: &mut RawClient, shoal: &mut RawClient, name: &str, failures: &mut Vec<String>) {
    let (expected, expected_raw) = info(redis, name);
    let (got, got_raw) = info(shoal, name);
    if got == Frame::Null || got == Frame::NullArray || allowed(name) {
        return;
    }
    let expected_subs = subcommand_names(&expected);
    if expected_subs.is_empty() {
        if expected_raw != got_raw {
            failures.push(format!(
                "{name}:\n  redis: {}\n  shoal: {}",
                escape(&expected_raw),
                escape(&got_raw)
            ));
        }
        return;
    }
    // A container: every field but the subcommands, then each subcommand on its own.
    let head = |f: &Frame| match f {
        Frame::Array(fields) => fields.iter().take(9).cloned().collect::<Vec<_>>(),
        _ => Vec::new(),
    };
    if head(&expected) != head(&got) {
        failures.push(format!(
            "{name}:\n  redis: {:?}\n  shoal: {:?}",
            head(&expected),
            head(&got)
        ));
    }
    let got_subs = subcommand_names(&got);
    for sub in expected_subs.symmetric_difference(&got_subs) {
        if !SUBCOMMAND_DIFFERENCES.iter().any(|(n, _)| n == sub) {
            let side = if got_subs.contains(sub) {
                "only Shoal"
            } else {
                "only Redis"
            };
            failures.push(format!("{sub}: {side} has this subcommand"));
        }
    }
    for sub in expected_subs.intersection(&got_subs) {
        compare(redis, shoal, sub, failures);
    }
}

#[test]
fn command_info_matches_redis_for_every_shared_command() {
    let shoal_server = ServerProcess::start(candidate(), &[]).expect("start the candidate");
    let redis_server = ServerProcess::start(ServerKind::Redis, &[]).expect("start redis-server");
    let mut failures = Vec::new();
    for proto in [2, 3] {
        let mut redis = connect(&redis_server, proto);
        let mut shoal = connect(&shoal_server, proto);
        let names: BTreeSet<String> = match redis.call(&["COMMAND", "LIST"]) {
            Frame::Array(items) => items.iter().map(text).collect(),
            other => panic!("COMMAND LIST: unexpected reply {other:?}"),
        };
        assert!(
            names.len() > 200,
            "redis-server lists {} commands",
            names.len()
        );
        for name in &names {
            let before = failures.len();
            compare(&mut redis, &mut shoal, name, &mut failures);
            for f in &mut failures[before..] {
                *f = format!("RESP{proto} {f}");
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} COMMAND INFO differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn command_getkeys_and_flags_match_redis() {
    let shoal_server = ServerProcess::start(candidate(), &[]).expect("start the candidate");
    let redis_server = ServerProcess::start(ServerKind::Redis, &[]).expect("start redis-server");
    let mut failures = Vec::new();
    for proto in [2, 3] {
        let mut redis = connect(&redis_server, proto);
        let mut shoal = connect(&shoal_server, proto);
        for case in GETKEYS_CASES {
            for sub in ["GETKEYS", "GETKEYSANDFLAGS"] {
                let mut args: Vec<&[u8]> = vec![b"COMMAND", sub.as_bytes()];
                args.extend(case.iter().map(|a| a.as_bytes()));
                let expected = redis.command_raw(&args).expect("redis");
                let got = shoal.command_raw(&args).expect("shoal");
                if expected.raw != got.raw {
                    failures.push(format!(
                        "RESP{proto} COMMAND {sub} {}:\n  redis: {}\n  shoal: {}",
                        case.join(" "),
                        escape(&expected.raw),
                        escape(&got.raw)
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
