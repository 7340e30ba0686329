//! Scripts across clients: `-BUSY` replies while a script runs past `busy-reply-threshold`,
//! `SCRIPT KILL` and its refusals (on redis-server 7.0 and on Shoal, transcripts compared), and
//! atomicity under concurrency: transfer scripts touching keys they did not declare, audited by
//! other scripts that must always see the total intact.
//! `SHOAL_TEST_AGAINST=redis` runs the Shoal side against a second redis-server.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal_testkit::{render, target_kind, Frame, RawClient, ServerKind, ServerProcess};

const TIMEOUT: Duration = Duration::from_secs(30);

fn candidate() -> ServerKind {
    target_kind(option_env!("CARGO_BIN_EXE_shoal-server"))
}

fn connect(addr: SocketAddr) -> RawClient {
    RawClient::connect_with_timeout(addr, TIMEOUT).expect("connect")
}

fn same_on_both(args: &[&str], scenario: impl Fn(SocketAddr) -> Vec<String>) {
    let redis = ServerProcess::start(ServerKind::Redis, args).expect("redis starts");
    let expected = scenario(redis.addr());
    let shoal = ServerProcess::start(candidate(), args).expect("shoal starts");
    let got = scenario(shoal.addr());
    assert_eq!(
        got.join("\n"),
        expected.join("\n"),
        "Shoal (left), Redis (right)"
    );
}

/// Sends `GET probe` until the server answers `-BUSY` (the script is past its threshold).
fn await_busy(c: &mut RawClient) -> String {
    let start = Instant::now();
    loop {
        let reply = render(&c.call(&["GET", "probe"]));
        if reply.contains("BUSY") {
            return reply;
        }
        assert!(start.elapsed() < TIMEOUT, "never answered -BUSY: {reply}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_busy_script_gets_other_clients_busy_and_script_kill_stops_it() {
    same_on_both(&["--busy-reply-threshold", "50"], |addr| {
        let mut log = Vec::new();
        let (mut runner, mut other) = (connect(addr), connect(addr));
        runner
            .send_command(&[b"EVAL", b"local i = 0 while true do i = i + 1 end", b"0"])
            .expect("send");
        log.push(await_busy(&mut other));
        log.push(render(&other.call(&["SCRIPT", "KILL"])));
        log.push(render(&runner.read_frame().expect("the script's reply")));
        // Afterwards everything runs again.
        log.push(render(&other.call(&["SET", "after", "1"])));
        log.push(render(&other.call(&["SCRIPT", "KILL"])));
        log
    });
}

#[test]
fn a_script_that_wrote_cannot_be_killed() {
    same_on_both(&["--busy-reply-threshold", "50"], |addr| {
        let mut log = Vec::new();
        let (mut runner, mut other) = (connect(addr), connect(addr));
        // About a second of work after a write.
        let body =
            "redis.call('set', 'w', '1') local i = 0 while i < 40000000 do i = i + 1 end return i";
        runner
            .send_command(&[b"EVAL", body.as_bytes(), b"0"])
            .expect("send");
        log.push(await_busy(&mut other));
        log.push(render(&other.call(&["SCRIPT", "KILL"])));
        log.push(render(&runner.read_frame().expect("the script's reply")));
        log.push(render(&other.call(&["GET", "w"])));
        log
    });
}

/// Transfers between accounts by scripts that name only one of the two keys they touch, while
/// auditors sum every account in a script: atomicity must hold for keys a script did not
/// declare too (job queues rely on it).
#[test]
fn scripts_are_atomic_under_concurrency_even_for_undeclared_keys() {
    const ACCOUNTS: usize = 16;
    const START: i64 = 1000;
    const WORKERS: usize = 4;
    const TRANSFERS: usize = 400;
    let shoal = ServerProcess::start(candidate(), &[]).expect("shoal starts");
    let addr = shoal.addr();
    let mut setup = connect(addr);
    for i in 0..ACCOUNTS {
        setup.call(&["SET", &format!("account:{i}"), &START.to_string()]);
    }
    let transfer = "redis.call('decrby', KEYS[1], ARGV[2]) \
                    redis.call('incrby', ARGV[1], ARGV[2]) return 1";
    let audit = "local t = 0 for i = 0, tonumber(ARGV[1]) - 1 do \
                 t = t + tonumber(redis.call('get', 'account:' .. i)) end return t";
    let done = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            std::thread::spawn(move || {
                let mut c = connect(addr);
                for t in 0..TRANSFERS {
                    let from = format!("account:{}", (w * 7 + t) % ACCOUNTS);
                    let to = format!("account:{}", (w * 3 + t * 5 + 1) % ACCOUNTS);
                    let amount = ((t % 9) + 1).to_string();
                    let reply = c.call(&["EVAL", transfer, "1", &from, &to, &amount]);
                    assert_eq!(reply, Frame::Integer(1));
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
                let reply = c.call(&["EVAL", audit, "0", &ACCOUNTS.to_string()]);
                assert_eq!(
                    reply,
                    Frame::Integer(START * ACCOUNTS as i64),
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
    assert!(auditor.join().expect("auditor") >= 10);
}
