//! Blocking sorted-set pops end to end: BZPOPMIN, BZPOPMAX and BZMPOP wait for a write, wake
//! clients in the order they blocked, and time out with a null array. (Shoal has no `MULTI`
//! yet; the handlers answer a blocking pop there with the timeout reply through
//! `ClientState::block`.) `SHOAL_TEST_AGAINST=redis` runs them against redis-server instead.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use shoal_testkit::{target_kind, Frame, RawClient, ServerProcess};

const TIMEOUT: Duration = Duration::from_secs(30);

fn start() -> ServerProcess {
    ServerProcess::start(target_kind(option_env!("CARGO_BIN_EXE_shoal-server")), &[])
        .expect("server starts")
}

fn connect(addr: SocketAddr) -> RawClient {
    RawClient::connect_with_timeout(addr, TIMEOUT).expect("connect")
}

fn bulk(s: &str) -> Frame {
    Frame::Bulk(s.as_bytes().to_vec().into())
}

/// Waits until the server reports `n` blocked clients, so writes happen after the waits began.
fn wait_blocked(c: &mut RawClient, n: usize) {
    let want = format!("blocked_clients:{n}\r\n");
    let start = Instant::now();
    loop {
        if let Frame::Bulk(info) = c.call(&["INFO", "clients"]) {
            if String::from_utf8_lossy(&info).contains(&want) {
                return;
            }
        }
        assert!(start.elapsed() < TIMEOUT, "never saw {n} blocked clients");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn blocked_pops_are_served_in_the_order_clients_blocked() {
    let server = start();
    let mut first = connect(server.addr());
    let mut second = connect(server.addr());
    let mut writer = connect(server.addr());
    first
        .send_command(&[b"BZPOPMIN", b"other", b"z", b"0"])
        .expect("send");
    wait_blocked(&mut writer, 1);
    second
        .send_command(&[b"BZPOPMAX", b"z", b"0"])
        .expect("send");
    wait_blocked(&mut writer, 2);

    assert_eq!(
        writer.call(&["ZADD", "z", "1", "a", "2", "b"]),
        Frame::Integer(2)
    );
    assert_eq!(
        first.read_frame().expect("reply"),
        Frame::Array(vec![bulk("z"), bulk("a"), bulk("1")])
    );
    assert_eq!(
        second.read_frame().expect("reply"),
        Frame::Array(vec![bulk("z"), bulk("b"), bulk("2")])
    );
    assert_eq!(writer.call(&["EXISTS", "z"]), Frame::Integer(0));
}

#[test]
fn one_element_wakes_only_the_first_waiter() {
    let server = start();
    let mut first = connect(server.addr());
    let mut second = connect(server.addr());
    let mut writer = connect(server.addr());
    first
        .send_command(&[b"BZMPOP", b"0", b"1", b"z", b"MIN", b"COUNT", b"5"])
        .expect("send");
    wait_blocked(&mut writer, 1);
    second
        .send_command(&[b"BZPOPMIN", b"z", b"0"])
        .expect("send");
    wait_blocked(&mut writer, 2);

    writer.call(&["ZADD", "z", "1", "a"]);
    assert_eq!(
        first.read_frame().expect("reply"),
        Frame::Array(vec![
            bulk("z"),
            Frame::Array(vec![Frame::Array(vec![bulk("a"), bulk("1")])])
        ])
    );
    // The second client is still waiting; the next write serves it.
    wait_blocked(&mut writer, 1);
    writer.call(&["ZADD", "z", "5", "e"]);
    assert_eq!(
        second.read_frame().expect("reply"),
        Frame::Array(vec![bulk("z"), bulk("e"), bulk("5")])
    );
}

#[test]
fn timeouts_reply_a_null_array_and_wrong_types_fail_at_once() {
    let server = start();
    let mut c = connect(server.addr());
    let started = Instant::now();
    assert_eq!(c.call(&["BZPOPMIN", "z", "0.05"]), Frame::NullArray);
    assert_eq!(
        c.call(&["BZMPOP", "0.05", "1", "z", "MAX"]),
        Frame::NullArray
    );
    assert!(started.elapsed() >= Duration::from_millis(100));

    c.call(&["SET", "s", "v"]);
    assert!(matches!(c.call(&["BZPOPMAX", "s", "0"]), Frame::Error(_)));
}
