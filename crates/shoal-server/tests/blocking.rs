//! Clients blocked on keys, end to end, with `BLPOP` as the probe: the bookkeeping every blocking
//! command shares (what `INFO` and `CLIENT LIST` show, `CLIENT UNBLOCK`, disconnects, kills,
//! requests pipelined behind a blocked command, FIFO order, wake-ups racing the block itself).
//! Each behaviour is checked on redis-server 7.0 too, so the test states what Redis does.
//! `SHOAL_TEST_AGAINST=redis` runs the Shoal side against a second redis-server.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use shoal_testkit::{target_kind, Frame, RawClient, ServerKind, ServerProcess};

/// Bounds every read and every wait; a healthy server answers in milliseconds.
const TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(5);

fn candidate() -> ServerKind {
    target_kind(option_env!("CARGO_BIN_EXE_shoal-server"))
}

fn servers() -> Vec<ServerProcess> {
    [ServerKind::Redis, candidate()]
        .into_iter()
        .map(|k| ServerProcess::start(k, &[]).expect("server starts"))
        .collect()
}

fn connect(addr: SocketAddr) -> RawClient {
    RawClient::connect_with_timeout(addr, TIMEOUT).expect("connect")
}

fn bulk(s: &str) -> Frame {
    Frame::Bulk(s.as_bytes().to_vec().into())
}

fn pair(key: &str, value: &str) -> Frame {
    Frame::Array(vec![bulk(key), bulk(value)])
}

fn info_field(c: &mut RawClient, field: &str) -> i64 {
    let Frame::Bulk(text) = c.call(&["INFO", "clients"]) else {
        panic!("INFO is a bulk string");
    };
    let text = String::from_utf8_lossy(&text).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("INFO clients has no {field}: {text}"))
}

/// Waits until `n` clients are blocked, as the server reports it.
fn await_blocked(c: &mut RawClient, n: i64) {
    let start = Instant::now();
    while info_field(c, "blocked_clients") != n {
        assert!(start.elapsed() < TIMEOUT, "never saw {n} blocked clients");
        std::thread::sleep(POLL);
    }
}

fn client_id(c: &mut RawClient) -> String {
    match c.call(&["CLIENT", "ID"]) {
        Frame::Integer(id) => id.to_string(),
        other => panic!("CLIENT ID replied {other:?}"),
    }
}

#[test]
fn blocked_clients_are_served_in_the_order_they_blocked() {
    for server in servers() {
        let mut admin = connect(server.addr());
        let mut waiters: Vec<RawClient> = Vec::new();
        for i in 0..5 {
            let mut w = connect(server.addr());
            w.send_command(&[b"BLPOP", b"queue", b"0"]).expect("send");
            await_blocked(&mut admin, i + 1);
            waiters.push(w);
        }
        // One push of five elements serves all five, the first blocked getting the first.
        admin.call(&["RPUSH", "queue", "a", "b", "c", "d", "e"]);
        for (w, v) in waiters.iter_mut().zip(["a", "b", "c", "d", "e"]) {
            assert_eq!(
                w.read_frame().expect("reply"),
                pair("queue", v),
                "{:?}",
                server.kind()
            );
        }
        await_blocked(&mut admin, 0);
        assert_eq!(admin.call(&["EXISTS", "queue"]), Frame::Integer(0));
    }
}

#[test]
fn info_and_client_list_show_a_blocked_client() {
    for server in servers() {
        let mut admin = connect(server.addr());
        let mut w = connect(server.addr());
        let id = client_id(&mut w);
        w.send_command(&[b"BLPOP", b"k1", b"k2", b"0"])
            .expect("send");
        await_blocked(&mut admin, 1);
        let Frame::Bulk(line) = admin.call(&["CLIENT", "LIST", "ID", &id]) else {
            panic!("CLIENT LIST is a bulk string");
        };
        let line = String::from_utf8_lossy(&line).into_owned();
        assert!(line.contains(" flags=b "), "{:?}: {line}", server.kind());
        assert!(line.contains(" cmd=blpop "), "{:?}: {line}", server.kind());
        admin.call(&["LPUSH", "k2", "v"]);
        assert_eq!(w.read_frame().expect("reply"), pair("k2", "v"));
        await_blocked(&mut admin, 0);
    }
}

#[test]
fn client_unblock_answers_as_a_timeout_or_an_error() {
    for server in servers() {
        let mut admin = connect(server.addr());
        assert_eq!(
            admin.call(&["CLIENT", "UNBLOCK", "999999"]),
            Frame::Integer(0)
        );
        assert_eq!(
            admin.call(&["CLIENT", "UNBLOCK", "1", "MAYBE"]),
            Frame::Error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR".into())
        );
        let mut w = connect(server.addr());
        let id = client_id(&mut w);
        w.send_command(&[b"BLPOP", b"nothing", b"0"]).expect("send");
        await_blocked(&mut admin, 1);
        assert_eq!(admin.call(&["CLIENT", "UNBLOCK", &id]), Frame::Integer(1));
        assert_eq!(w.read_frame().expect("reply"), Frame::NullArray);
        await_blocked(&mut admin, 0);
        assert_eq!(admin.call(&["CLIENT", "UNBLOCK", &id]), Frame::Integer(0));

        w.send_command(&[b"BLPOP", b"nothing", b"0"]).expect("send");
        await_blocked(&mut admin, 1);
        assert_eq!(
            admin.call(&["CLIENT", "UNBLOCK", &id, "error"]),
            Frame::Integer(1)
        );
        assert_eq!(
            w.read_frame().expect("reply"),
            Frame::Error("UNBLOCKED client unblocked via CLIENT UNBLOCK".into())
        );
        // The connection is still usable.
        assert_eq!(w.call(&["PING"]), Frame::Simple("PONG".into()));
    }
}

#[test]
fn requests_pipelined_behind_a_blocked_command_wait_for_it() {
    for server in servers() {
        let mut admin = connect(server.addr());
        let mut w = connect(server.addr());
        let mut batch = shoal_testkit::encode_command(&[b"SET", b"before", b"1"]);
        batch.extend(shoal_testkit::encode_command(&[b"BLPOP", b"q", b"0"]));
        batch.extend(shoal_testkit::encode_command(&[b"GET", b"before"]));
        w.send_raw(&batch).expect("send");
        // The reply to the command before the blocked one is not held back.
        assert_eq!(w.read_frame().expect("reply"), Frame::Simple("OK".into()));
        await_blocked(&mut admin, 1);
        admin.call(&["RPUSH", "q", "x"]);
        assert_eq!(w.read_frame().expect("reply"), pair("q", "x"));
        assert_eq!(w.read_frame().expect("reply"), bulk("1"));
    }
}

#[test]
fn a_client_that_leaves_while_blocked_leaves_no_trace() {
    for server in servers() {
        let mut admin = connect(server.addr());
        let mut gone = connect(server.addr());
        gone.send_command(&[b"BLPOP", b"q", b"0"]).expect("send");
        await_blocked(&mut admin, 1);
        let mut killed = connect(server.addr());
        let killed_id = client_id(&mut killed);
        killed.send_command(&[b"BLPOP", b"q", b"0"]).expect("send");
        await_blocked(&mut admin, 2);
        let mut stays = connect(server.addr());
        stays.send_command(&[b"BLPOP", b"q", b"0"]).expect("send");
        await_blocked(&mut admin, 3);

        drop(gone);
        assert_eq!(
            admin.call(&["CLIENT", "KILL", "ID", &killed_id]),
            Frame::Integer(1)
        );
        await_blocked(&mut admin, 1);
        // The element goes to the one client still waiting, and stays nowhere else.
        admin.call(&["RPUSH", "q", "only"]);
        assert_eq!(stays.read_frame().expect("reply"), pair("q", "only"));
        await_blocked(&mut admin, 0);
        assert_eq!(admin.call(&["LLEN", "q"]), Frame::Integer(0));
    }
}

#[test]
fn a_timeout_answers_null_and_counts_one_call() {
    for server in servers() {
        let mut c = connect(server.addr());
        c.call(&["CONFIG", "RESETSTAT"]);
        let start = Instant::now();
        assert_eq!(c.call(&["BLPOP", "empty", "0.05"]), Frame::NullArray);
        assert!(start.elapsed() >= Duration::from_millis(50));
        let Frame::Bulk(stats) = c.call(&["INFO", "commandstats"]) else {
            panic!("INFO is a bulk string");
        };
        let stats = String::from_utf8_lossy(&stats).into_owned();
        assert!(
            stats.contains("cmdstat_blpop:calls=1,"),
            "{:?}: {stats}",
            server.kind()
        );
        c.call(&["HELLO", "3"]);
        assert_eq!(c.call(&["BLPOP", "empty", "0.01"]), Frame::Null);
    }
}

/// Many producers and consumers on every worker thread: every element pushed is popped exactly
/// once, whichever client was blocked when it arrived.
#[test]
fn producers_and_consumers_lose_and_duplicate_nothing() {
    const PRODUCERS: usize = 4;
    const CONSUMERS: usize = 6;
    const PER_PRODUCER: usize = 2_000;
    let server = ServerProcess::start(candidate(), &[]).expect("server starts");
    let addr = server.addr();
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = connect(addr);
                let mut got = Vec::new();
                loop {
                    match c.call(&["BRPOP", "jobs", "0"]) {
                        Frame::Array(kv) if kv.len() == 2 => match &kv[1] {
                            Frame::Bulk(v) if &v[..] == b"stop" => break,
                            Frame::Bulk(v) => got.push(String::from_utf8_lossy(v).into_owned()),
                            other => panic!("BRPOP value {other:?}"),
                        },
                        other => panic!("BRPOP replied {other:?}"),
                    }
                }
                got
            })
        })
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            std::thread::spawn(move || {
                let mut c = connect(addr);
                for i in 0..PER_PRODUCER {
                    let v = format!("{p}:{i}");
                    c.call(&["LPUSH", "jobs", &v]);
                }
            })
        })
        .collect();
    for p in producers {
        p.join().expect("producer");
    }
    let mut admin = connect(addr);
    for _ in 0..CONSUMERS {
        admin.call(&["LPUSH", "jobs", "stop"]);
    }
    let mut all: Vec<String> = Vec::new();
    for c in consumers {
        all.extend(c.join().expect("consumer"));
    }
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(before, all.len(), "an element was popped twice");
    assert_eq!(all.len(), PRODUCERS * PER_PRODUCER, "an element was lost");
}

/// A key that becomes another type while a client waits on it neither wakes the client with an
/// error nor stops it being served from its other keys, as in Redis; before blocking, though, a
/// key of the wrong type is an error.
#[test]
fn a_key_that_changes_type_while_blocked_is_skipped() {
    for server in servers() {
        let mut admin = connect(server.addr());
        admin.call(&["SET", "str", "x"]);
        let mut c = connect(server.addr());
        assert_eq!(
            c.call(&["BLPOP", "str", "0.01"]),
            Frame::Error(
                "WRONGTYPE Operation against a key holding the wrong kind of value".into()
            )
        );
        let mut w = connect(server.addr());
        w.send_command(&[b"BLPOP", b"k1", b"k2", b"0"])
            .expect("send");
        await_blocked(&mut admin, 1);
        admin.call(&["SET", "k1", "now a string"]);
        admin.call(&["RPUSH", "k2", "v"]);
        assert_eq!(
            w.read_frame().expect("reply"),
            pair("k2", "v"),
            "{:?}",
            server.kind()
        );
        await_blocked(&mut admin, 0);

        w.send_command(&[b"BLMOVE", b"src", b"dst", b"LEFT", b"RIGHT", b"0"])
            .expect("send");
        await_blocked(&mut admin, 1);
        admin.call(&["SET", "src", "a string"]);
        admin.call(&["DEL", "src"]);
        admin.call(&["RPUSH", "src", "moved"]);
        assert_eq!(w.read_frame().expect("reply"), bulk("moved"));
        assert_eq!(
            admin.call(&["LRANGE", "dst", "0", "-1"]),
            Frame::Array(vec![bulk("moved")])
        );
    }
}

/// `SWAPDB` brings a list into the database a client waits in: the client is served, as in
/// Redis, although no command wrote the key.
#[test]
fn swapdb_serves_clients_blocked_in_the_swapped_databases() {
    for server in servers() {
        let mut admin = connect(server.addr());
        let mut w = connect(server.addr());
        w.call(&["SELECT", "1"]);
        w.send_command(&[b"BLPOP", b"k", b"0"]).expect("send");
        await_blocked(&mut admin, 1);
        admin.call(&["RPUSH", "k", "from-db-0"]);
        admin.call(&["SWAPDB", "0", "1"]);
        assert_eq!(
            w.read_frame().expect("reply"),
            pair("k", "from-db-0"),
            "{:?}",
            server.kind()
        );
        await_blocked(&mut admin, 0);
    }
}

/// A woken client that cannot be served (it waits for another type on the same key) passes the
/// turn to the client behind it, which Redis serves at once.
#[test]
fn a_client_that_cannot_be_served_lets_the_next_one_be() {
    for server in servers() {
        let mut admin = connect(server.addr());
        let mut list_waiter = connect(server.addr());
        list_waiter
            .send_command(&[b"BLPOP", b"mixed", b"0"])
            .expect("send");
        await_blocked(&mut admin, 1);
        let mut zset_waiter = connect(server.addr());
        zset_waiter
            .send_command(&[b"BZPOPMIN", b"mixed", b"0"])
            .expect("send");
        await_blocked(&mut admin, 2);
        admin.call(&["ZADD", "mixed", "1", "a"]);
        assert_eq!(
            zset_waiter.read_frame().expect("reply"),
            Frame::Array(vec![bulk("mixed"), bulk("a"), bulk("1")]),
            "{:?}",
            server.kind()
        );
        await_blocked(&mut admin, 1);
        admin.call(&["RPUSH", "other", "x"]);
        admin.call(&["RENAME", "other", "mixed"]);
        assert_eq!(list_waiter.read_frame().expect("reply"), pair("mixed", "x"));
    }
}
