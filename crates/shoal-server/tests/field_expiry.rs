//! Hash fields with their own expiry (Redis 7.4's `HEXPIRE` family) are reclaimed by the active
//! expiry cycle even when no client touches the hash again: the fields go, and a hash whose
//! last field expires is deleted. Shoal only: Redis 7.0 has no field expiry.

use std::time::Duration;

use shoal_testkit::{probe, Frame, RawClient, ServerKind, ServerProcess};

const TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(10);

fn start() -> ServerProcess {
    let bin = env!("CARGO_BIN_EXE_shoal-server");
    ServerProcess::start(ServerKind::Shoal(bin.into()), &["--hz", "100"]).expect("server starts")
}

fn int(f: Frame) -> i64 {
    match f {
        Frame::Integer(n) => n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

#[test]
fn untouched_hashes_lose_their_due_fields_and_then_themselves() {
    let server = start();
    let mut c = RawClient::connect_with_timeout(server.addr(), TIMEOUT).expect("connect");
    let long = "v".repeat(60);
    c.call(&["HSET", "partly", "keeps", "x", "goes", &long]);
    c.call(&["HSET", "wholly", "a", "1", "b", "2"]);
    assert_eq!(
        c.call(&["HPEXPIRE", "partly", "20", "FIELDS", "1", "goes"]),
        Frame::Array(vec![Frame::Integer(1)])
    );
    let before = int(c.call(&["MEMORY", "USAGE", "partly"]));
    assert_eq!(
        c.call(&["HPEXPIRE", "wholly", "20", "FIELDS", "2", "a", "b"]),
        Frame::Array(vec![Frame::Integer(1), Frame::Integer(1)])
    );
    // Neither hash is touched by a hash command again: only the background cycle can act.
    probe::wait_for(TIMEOUT, POLL, || {
        (int(c.call(&["DBSIZE"])) == 1).then_some(())
    })
    .expect("the hash whose every field expired is deleted");
    probe::wait_for(TIMEOUT, POLL, || {
        (int(c.call(&["MEMORY", "USAGE", "partly"])) < before).then_some(())
    })
    .expect("the due field is removed from the other hash");
    assert_eq!(c.call(&["HLEN", "partly"]), Frame::Integer(1));
    assert_eq!(
        c.call(&["HGET", "partly", "keeps"]),
        Frame::Bulk("x".into())
    );
}
