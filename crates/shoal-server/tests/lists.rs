//! The blocking list commands end to end: each command's reply when a write serves it, the null
//! reply of each on timeout in both protocols, clients blocked on several keys or in another
//! database, and wake-ups caused by other list commands. `tests/blocking.rs` covers what every
//! blocking command shares (FIFO queues, `CLIENT UNBLOCK`, disconnects, the stress test).
//! Each case runs on redis-server 7.0 first, so the test states what Redis does, then on Shoal.

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

fn array(items: &[&str]) -> Frame {
    Frame::Array(items.iter().map(|s| bulk(s)).collect())
}

fn pair(key: &str, value: &str) -> Frame {
    array(&[key, value])
}

/// Sends a command that is expected to block, without reading its reply.
fn send(c: &mut RawClient, args: &[&str]) {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    c.send_command(&args).expect("send");
}

fn blocked_clients(c: &mut RawClient) -> i64 {
    let Frame::Bulk(text) = c.call(&["INFO", "clients"]) else {
        panic!("INFO is a bulk string");
    };
    let text = String::from_utf8_lossy(&text).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("INFO clients has no blocked_clients: {text}"))
}

/// Waits until `n` clients are blocked, as the server reports it.
fn await_blocked(c: &mut RawClient, n: i64) {
    let start = Instant::now();
    while blocked_clients(c) != n {
        assert!(start.elapsed() < TIMEOUT, "never saw {n} blocked clients");
        std::thread::sleep(POLL);
    }
}

/// Blocks a fresh client with `command`, checks it really blocked, then runs `write` from
/// another client and returns the blocked client's reply.
fn served_by(addr: SocketAddr, command: &[&str], write: &[&[&str]]) -> (Frame, RawClient) {
    let mut admin = connect(addr);
    let mut waiter = connect(addr);
    send(&mut waiter, command);
    await_blocked(&mut admin, 1);
    for w in write {
        admin.call(w);
    }
    let reply = waiter.read_frame().expect("the blocked client is served");
    await_blocked(&mut admin, 0);
    (reply, admin)
}

/// A blocking command, its reply once `RPUSH src a b c` serves it, and the lists left behind.
struct Served {
    command: &'static [&'static str],
    reply: Frame,
    src: &'static [&'static str],
    dst: &'static [&'static str],
}

#[test]
fn each_blocking_command_is_served_with_its_own_reply() {
    let push: &[&[&str]] = &[&["RPUSH", "src", "a", "b", "c"]];
    let cases = [
        Served {
            command: &["BLPOP", "src", "0"],
            reply: pair("src", "a"),
            src: &["b", "c"],
            dst: &[],
        },
        Served {
            command: &["BRPOP", "src", "0"],
            reply: pair("src", "c"),
            src: &["a", "b"],
            dst: &[],
        },
        Served {
            command: &["BLMOVE", "src", "dst", "RIGHT", "LEFT", "0"],
            reply: bulk("c"),
            src: &["a", "b"],
            dst: &["c"],
        },
        Served {
            command: &["BRPOPLPUSH", "src", "dst", "0"],
            reply: bulk("c"),
            src: &["a", "b"],
            dst: &["c"],
        },
        Served {
            command: &["BLMPOP", "0", "2", "nothing", "src", "LEFT", "COUNT", "2"],
            reply: Frame::Array(vec![bulk("src"), array(&["a", "b"])]),
            src: &["c"],
            dst: &[],
        },
        Served {
            command: &["BLMPOP", "0", "1", "src", "RIGHT", "COUNT", "10"],
            reply: Frame::Array(vec![bulk("src"), array(&["c", "b", "a"])]),
            src: &[],
            dst: &[],
        },
    ];
    for server in servers() {
        for case in &cases {
            let (reply, mut admin) = served_by(server.addr(), case.command, push);
            let kind = server.kind();
            assert_eq!(reply, case.reply, "{kind:?}: {:?}", case.command);
            assert_eq!(admin.call(&["LRANGE", "src", "0", "-1"]), array(case.src));
            assert_eq!(admin.call(&["LRANGE", "dst", "0", "-1"]), array(case.dst));
            admin.call(&["FLUSHALL"]);
        }
    }
}

#[test]
fn timeouts_answer_each_commands_null_in_both_protocols() {
    let cases: [(&[&str], &[u8]); 5] = [
        (&["BLPOP", "none", "0.01"], b"*-1\r\n"),
        (&["BRPOP", "none", "other", "0.01"], b"*-1\r\n"),
        (&["BLMPOP", "0.01", "1", "none", "LEFT"], b"*-1\r\n"),
        // Redis 7.0 times every list command out with a null array, BLMOVE and BRPOPLPUSH
        // too, although their immediate "nothing to move" reply is a null bulk.
        (
            &["BLMOVE", "none", "dst", "LEFT", "LEFT", "0.01"],
            b"*-1\r\n",
        ),
        (&["BRPOPLPUSH", "none", "dst", "0.01"], b"*-1\r\n"),
    ];
    for server in servers() {
        let mut c = connect(server.addr());
        for resp3 in [false, true] {
            if resp3 {
                c.call(&["HELLO", "3"]);
            }
            for (command, resp2) in &cases {
                let args: Vec<&[u8]> = command.iter().map(|a| a.as_bytes()).collect();
                let reply = c.command_raw(&args).expect("timeout reply");
                let expected: &[u8] = if resp3 { b"_\r\n" } else { resp2 };
                assert_eq!(
                    &reply.raw[..],
                    expected,
                    "{:?} RESP{}: {command:?}",
                    server.kind(),
                    if resp3 { 3 } else { 2 }
                );
            }
        }
        assert_eq!(c.call(&["EXISTS", "dst"]), Frame::Integer(0));
    }
}

#[test]
fn a_client_blocked_on_several_keys_takes_from_the_one_written() {
    for server in servers() {
        let (reply, mut admin) = served_by(
            server.addr(),
            &["BLPOP", "k1", "k2", "k3", "0"],
            &[&["RPUSH", "k3", "x", "y"]],
        );
        assert_eq!(reply, pair("k3", "x"), "{:?}", server.kind());
        assert_eq!(admin.call(&["LRANGE", "k3", "0", "-1"]), array(&["y"]));
        let (reply, _) = served_by(
            server.addr(),
            &["BLMPOP", "0", "3", "k1", "k2", "k4", "RIGHT", "COUNT", "5"],
            &[&["RPUSH", "k2", "a", "b"]],
        );
        assert_eq!(
            reply,
            Frame::Array(vec![bulk("k2"), array(&["b", "a"])]),
            "{:?}",
            server.kind()
        );
    }
}

#[test]
fn a_blocked_client_waits_on_the_key_in_its_own_database() {
    for server in servers() {
        let mut admin = connect(server.addr());
        let mut waiter = connect(server.addr());
        waiter.call(&["SELECT", "9"]);
        send(&mut waiter, &["BLPOP", "k", "0"]);
        await_blocked(&mut admin, 1);
        // The same key in database 0 is another key: it must not serve the client.
        admin.call(&["RPUSH", "k", "db0"]);
        admin.call(&["SELECT", "9"]);
        admin.call(&["RPUSH", "k", "db9"]);
        assert_eq!(waiter.read_frame().expect("served"), pair("k", "db9"));
        assert_eq!(admin.call(&["EXISTS", "k"]), Frame::Integer(0));
        admin.call(&["SELECT", "0"]);
        assert_eq!(admin.call(&["LRANGE", "k", "0", "-1"]), array(&["db0"]));
    }
}

#[test]
fn clients_blocked_with_different_commands_are_served_in_order_from_one_push() {
    for server in servers() {
        let mut admin = connect(server.addr());
        let commands: [&[&str]; 3] = [
            &["BLPOP", "q", "0"],
            &["BRPOP", "q", "0"],
            &["BLMPOP", "0", "1", "q", "LEFT", "COUNT", "2"],
        ];
        let mut waiters = Vec::new();
        for (i, command) in commands.iter().enumerate() {
            let mut w = connect(server.addr());
            send(&mut w, command);
            await_blocked(&mut admin, i as i64 + 1);
            waiters.push(w);
        }
        admin.call(&["RPUSH", "q", "1", "2", "3", "4", "5"]);
        let replies: Vec<Frame> = waiters
            .iter_mut()
            .map(|w| w.read_frame().expect("served"))
            .collect();
        assert_eq!(
            replies,
            [
                pair("q", "1"),
                pair("q", "5"),
                Frame::Array(vec![bulk("q"), array(&["2", "3"])]),
            ],
            "{:?}",
            server.kind()
        );
        assert_eq!(admin.call(&["LRANGE", "q", "0", "-1"]), array(&["4"]));
    }
}

#[test]
fn a_blocked_move_wakes_the_clients_blocked_on_its_destination() {
    for server in servers() {
        let mut admin = connect(server.addr());
        let mut mover = connect(server.addr());
        let mut reader = connect(server.addr());
        send(&mut mover, &["BLMOVE", "a", "b", "LEFT", "RIGHT", "0"]);
        await_blocked(&mut admin, 1);
        send(&mut reader, &["BLPOP", "b", "0"]);
        await_blocked(&mut admin, 2);
        admin.call(&["RPUSH", "a", "v"]);
        assert_eq!(mover.read_frame().expect("served"), bulk("v"));
        assert_eq!(reader.read_frame().expect("served"), pair("b", "v"));
        await_blocked(&mut admin, 0);
        assert_eq!(admin.call(&["EXISTS", "a", "b"]), Frame::Integer(0));
    }
}

#[test]
fn moves_by_other_commands_and_rotations_serve_blocked_clients() {
    for server in servers() {
        let (reply, _) = served_by(
            server.addr(),
            &["BRPOP", "dst", "0"],
            &[
                &["RPUSH", "src", "x", "y"],
                &["LMOVE", "src", "dst", "RIGHT", "LEFT"],
            ],
        );
        assert_eq!(reply, pair("dst", "y"), "{:?}", server.kind());
        // A blocked rotation of one list onto itself.
        let (reply, mut admin) = served_by(
            server.addr(),
            &["BRPOPLPUSH", "r", "r", "0"],
            &[&["RPUSH", "r", "1", "2"]],
        );
        assert_eq!(reply, bulk("2"), "{:?}", server.kind());
        assert_eq!(admin.call(&["LRANGE", "r", "0", "-1"]), array(&["2", "1"]));
    }
}
