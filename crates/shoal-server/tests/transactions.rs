//! Transactions across clients: what breaks a `WATCH` (another client's write, a flush, a swap,
//! an expiry, an eviction) and what does not, each scenario run on redis-server 7.0 and on
//! Shoal with the replies compared; then atomicity under concurrency, where many clients move
//! money between accounts in different stripes while others check the total.
//! `SHOAL_TEST_AGAINST=redis` runs the Shoal side against a second redis-server.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use shoal_testkit::{encode_command, target_kind, Frame, RawClient, ServerKind, ServerProcess};

const TIMEOUT: Duration = Duration::from_secs(30);

fn candidate() -> ServerKind {
    target_kind(option_env!("CARGO_BIN_EXE_shoal-server"))
}

fn connect(addr: SocketAddr) -> RawClient {
    RawClient::connect_with_timeout(addr, TIMEOUT).expect("connect")
}

/// Runs `scenario` on redis-server and on Shoal (each with `args`) and checks both produced the
/// same transcript; returns Shoal's.
fn same_on_both(args: &[&str], scenario: impl Fn(SocketAddr) -> Vec<Frame>) -> Vec<Frame> {
    let redis = ServerProcess::start(ServerKind::Redis, args).expect("redis starts");
    let expected = scenario(redis.addr());
    let shoal = ServerProcess::start(candidate(), args).expect("shoal starts");
    let got = scenario(shoal.addr());
    assert_eq!(got, expected, "Shoal (left) and Redis (right) differ");
    got
}

/// `WATCH key`, let `other` act from a second connection, then run `MULTI SET key mine EXEC`;
/// returns the EXEC reply.
fn watch_then(addr: SocketAddr, db: &str, key: &str, other: &[&[&str]]) -> Frame {
    let mut me = connect(addr);
    let mut them = connect(addr);
    me.call(&["SELECT", db]);
    me.call(&["WATCH", key]);
    for cmd in other {
        them.call(cmd);
    }
    me.call(&["MULTI"]);
    me.call(&["SET", key, "mine"]);
    me.call(&["EXEC"])
}

/// Sends several commands at once and reads their replies.
fn pipeline(c: &mut RawClient, cmds: &[&[&str]]) -> Vec<Frame> {
    let mut bytes = Vec::new();
    for cmd in cmds {
        let args: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
        bytes.extend(encode_command(&args));
    }
    c.send_raw(&bytes).expect("send");
    cmds.iter()
        .map(|_| c.read_frame().expect("reply"))
        .collect()
}

fn ran() -> Frame {
    Frame::Array(vec![Frame::simple("OK")])
}

#[test]
fn a_write_by_another_client_breaks_the_watch_and_others_do_not() {
    let got = same_on_both(&[], |addr| {
        let mut setup = connect(addr);
        setup.call(&["SET", "k", "0"]);
        vec![
            watch_then(addr, "0", "k", &[&["SET", "k", "1"]]),
            watch_then(addr, "0", "k", &[&["SET", "other", "1"]]),
            watch_then(addr, "0", "k", &[&["INCR", "k"], &["DEL", "k"]]),
            // A change to the same key name in another database is another key.
            watch_then(addr, "0", "k", &[&["SELECT", "3"], &["SET", "k", "x"]]),
            // Reading is no change; neither is a write that fails.
            watch_then(addr, "0", "k", &[&["GET", "k"], &["LPUSH", "k", "x"]]),
            watch_then(addr, "0", "missing", &[&["DEL", "missing"]]),
            watch_then(addr, "0", "k", &[&["EXPIRE", "k", "100"]]),
            watch_then(addr, "0", "k", &[&["RENAME", "k", "k2"]]),
        ]
    });
    assert_eq!(got[0], Frame::NullArray, "the watched key changed");
    assert_eq!(got[1], ran());
}

#[test]
fn flushes_and_swaps_break_watches_of_keys_they_change() {
    same_on_both(&[], |addr| {
        let mut setup = connect(addr);
        let mut out = Vec::new();
        for (present, other) in [
            (true, &[&["FLUSHALL"][..]][..]),
            (false, &[&["FLUSHALL"][..]][..]),
            (true, &[&["FLUSHDB"][..]][..]),
            (true, &[&["SELECT", "1"][..], &["FLUSHDB"][..]][..]),
            (true, &[&["SWAPDB", "0", "1"][..]][..]),
            (false, &[&["SWAPDB", "0", "1"][..]][..]),
        ] {
            setup.call(&["FLUSHALL"]);
            if present {
                setup.call(&["SET", "w", "v"]);
            }
            out.push(watch_then(addr, "0", "w", other));
        }
        // A swap brings in a database that holds the key.
        setup.call(&["FLUSHALL"]);
        setup.call(&["SELECT", "1"]);
        setup.call(&["SET", "w", "v"]);
        out.push(watch_then(addr, "0", "w", &[&["SWAPDB", "0", "1"]]));
        out
    });
}

#[test]
fn an_expiry_or_an_eviction_breaks_the_watch() {
    same_on_both(&[], |addr| {
        let mut setup = connect(addr);
        setup.call(&["SET", "e", "v"]);
        // Expired by time between WATCH and EXEC, without anyone deleting it.
        let mut me = connect(addr);
        me.call(&["WATCH", "e"]);
        setup.call(&["PEXPIREAT", "e", "1"]);
        me.call(&["MULTI"]);
        me.call(&["GET", "e"]);
        let expired = me.call(&["EXEC"]);
        // Evicted.
        setup.call(&["CONFIG", "SET", "maxmemory-policy", "allkeys-random"]);
        setup.call(&["SET", "big", "value"]);
        me.call(&["WATCH", "big"]);
        setup.call(&["CONFIG", "SET", "maxmemory", "1"]);
        // Any command makes the server evict.
        setup.call(&["PING"]);
        setup.call(&["CONFIG", "SET", "maxmemory", "0"]);
        me.call(&["MULTI"]);
        me.call(&["GET", "big"]);
        let evicted = me.call(&["EXEC"]);
        vec![expired, evicted]
    });
}

#[test]
fn a_key_expired_before_it_was_watched_is_no_change_when_deleted() {
    same_on_both(&["--hz", "1"], |addr| {
        let mut setup = connect(addr);
        setup.call(&["SET", "old", "v", "PX", "1"]);
        // Nothing can be awaited here without touching the key (which would delete it), so this
        // is the one sleep: long enough for the millisecond TTL to pass.
        std::thread::sleep(Duration::from_millis(20));
        let mut me = connect(addr);
        me.call(&["WATCH", "old"]);
        // Another client's read deletes the expired key: nothing visible changed.
        setup.call(&["GET", "old"]);
        me.call(&["MULTI"]);
        me.call(&["SET", "old", "new"]);
        vec![me.call(&["EXEC"]), setup.call(&["GET", "old"])]
    });
}

#[test]
fn exec_replies_null_in_both_protocols_and_discard_unwatches() {
    same_on_both(&[], |addr| {
        let mut me = connect(addr);
        let mut them = connect(addr);
        me.call(&["HELLO", "3"]);
        let mut out = Vec::new();
        me.call(&["WATCH", "x"]);
        them.call(&["SET", "x", "1"]);
        me.call(&["MULTI"]);
        out.push(me.call(&["EXEC"]));
        // DISCARD forgets the watch, so the next transaction runs.
        me.call(&["WATCH", "x"]);
        them.call(&["SET", "x", "2"]);
        me.call(&["MULTI"]);
        out.push(me.call(&["DISCARD"]));
        me.call(&["MULTI"]);
        me.call(&["GET", "x"]);
        out.push(me.call(&["EXEC"]));
        out
    });
}

#[test]
fn a_client_that_disconnects_leaves_no_watch_behind() {
    let shoal = ServerProcess::start(candidate(), &[]).expect("shoal starts");
    for _ in 0..200 {
        let mut c = connect(shoal.addr());
        c.call(&["WATCH", "a", "b", "c"]);
    }
    // Still consistent: a new watcher sees only its own changes.
    let mut me = connect(shoal.addr());
    me.call(&["WATCH", "a"]);
    me.call(&["MULTI"]);
    me.call(&["SET", "a", "1"]);
    assert_eq!(me.call(&["EXEC"]), ran());
}

/// Transfers between accounts spread over many stripes, by transactions from several clients,
/// while auditors read every account in one transaction: every audit must see the total intact.
#[test]
fn transactions_are_atomic_across_stripes_under_concurrency() {
    const ACCOUNTS: usize = 16;
    const START: i64 = 1000;
    const WORKERS: usize = 4;
    const TRANSFERS: usize = 500;
    let shoal = ServerProcess::start(candidate(), &[]).expect("shoal starts");
    let addr = shoal.addr();
    let account = |i: usize| format!("account:{i}");
    let mut setup = connect(addr);
    for i in 0..ACCOUNTS {
        setup.call(&["SET", &account(i), &START.to_string()]);
    }
    let done = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            std::thread::spawn(move || {
                let mut c = connect(addr);
                for t in 0..TRANSFERS {
                    let from = format!("account:{}", (w * 7 + t) % ACCOUNTS);
                    let to = format!("account:{}", (w * 3 + t * 5 + 1) % ACCOUNTS);
                    let amount = ((t % 9) + 1).to_string();
                    let minus = format!("-{amount}");
                    // Pipelined, so the commands of different clients interleave as much as
                    // the server allows.
                    let replies = pipeline(
                        &mut c,
                        &[
                            &["MULTI"][..],
                            &["INCRBY", &from, &minus],
                            &["INCRBY", &to, &amount],
                            &["EXEC"],
                        ],
                    );
                    assert!(
                        matches!(replies.last(), Some(Frame::Array(r)) if r.len() == 2),
                        "transfer failed: {replies:?}"
                    );
                }
            })
        })
        .collect();
    let auditor = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut c = connect(addr);
            let mut audits = 0;
            while !done.load(Ordering::SeqCst) || audits < 10 {
                c.call(&["MULTI"]);
                for i in 0..ACCOUNTS {
                    c.call(&["GET", &format!("account:{i}")]);
                }
                let Frame::Array(values) = c.call(&["EXEC"]) else {
                    panic!("audit EXEC did not return an array");
                };
                let total: i64 = values
                    .iter()
                    .map(|v| match v {
                        Frame::Bulk(b) => std::str::from_utf8(b)
                            .ok()
                            .and_then(|s| s.parse::<i64>().ok())
                            .expect("a number"),
                        other => panic!("GET replied {other:?}"),
                    })
                    .sum();
                assert_eq!(
                    total,
                    START * ACCOUNTS as i64,
                    "an audit saw a half-done transfer"
                );
                audits += 1;
            }
            audits
        })
    };
    for w in workers {
        w.join().expect("worker");
    }
    done.store(true, Ordering::SeqCst);
    let audits = auditor.join().expect("auditor");
    assert!(audits >= 10);
}

/// Optimistic locking: clients increment one counter with WATCH/GET/MULTI/SET/EXEC, retrying
/// when EXEC fails. No increment may be lost, and some must have been retried.
#[test]
fn watch_based_increments_lose_nothing_under_contention() {
    const CLIENTS: usize = 4;
    const EACH: usize = 200;
    let shoal = ServerProcess::start(candidate(), &[]).expect("shoal starts");
    let addr = shoal.addr();
    connect(addr).call(&["SET", "counter", "0"]);
    let handles: Vec<_> = (0..CLIENTS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = connect(addr);
                let mut retries = 0;
                for _ in 0..EACH {
                    loop {
                        c.call(&["WATCH", "counter"]);
                        let Frame::Bulk(v) = c.call(&["GET", "counter"]) else {
                            panic!("counter missing");
                        };
                        let n: i64 = std::str::from_utf8(&v)
                            .ok()
                            .and_then(|s| s.parse().ok())
                            .expect("a number");
                        let next = (n + 1).to_string();
                        let replies = pipeline(
                            &mut c,
                            &[&["MULTI"][..], &["SET", "counter", &next], &["EXEC"]],
                        );
                        match replies.last() {
                            Some(Frame::Array(_)) => break,
                            Some(Frame::NullArray) | Some(Frame::Null) => retries += 1,
                            other => panic!("EXEC replied {other:?}"),
                        }
                    }
                }
                retries
            })
        })
        .collect();
    let _retries: usize = handles.into_iter().map(|h| h.join().expect("client")).sum();
    let mut c = connect(addr);
    assert_eq!(
        c.call(&["GET", "counter"]),
        Frame::Bulk(format!("{}", CLIENTS * EACH).into_bytes().into())
    );
}
