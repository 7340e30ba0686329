//! Sets at sizes the differential case files do not reach: a full `SSCAN` of a big hash-table
//! set returns every member (also while the set grows), set algebra over big sets is exact, the
//! random commands keep their promises (distinct members, whole set, sampling with
//! replacement), and memory is accounted (`MEMORY USAGE` grows with the set, `used_memory`
//! comes back after `DEL`). `SHOAL_TEST_AGAINST=redis` runs them against redis-server, which
//! validates the expectations.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use bytes::Bytes;
use shoal_testkit::probe;
use shoal_testkit::{encode_command, target_kind, Frame, RawClient, ServerKind, ServerProcess};

/// The server under test: Shoal's binary, unless redirected to Redis.
fn candidate() -> ServerKind {
    target_kind(option_env!("CARGO_BIN_EXE_shoal-server"))
}

fn start(kind: ServerKind) -> (ServerProcess, RawClient) {
    let name = kind.name();
    let server = ServerProcess::start(kind, &[]).unwrap_or_else(|e| panic!("start {name}: {e}"));
    let client =
        RawClient::connect_with_timeout(server.addr(), Duration::from_secs(60)).expect("connect");
    (server, client)
}

/// Adds the members to `key`, a thousand per `SADD`, pipelined.
fn sadd_all(client: &mut RawClient, key: &str, members: &[String]) {
    let commands: Vec<Vec<u8>> = members
        .chunks(1000)
        .map(|chunk| {
            let mut args: Vec<&[u8]> = vec![b"SADD", key.as_bytes()];
            args.extend(chunk.iter().map(|m| m.as_bytes()));
            encode_command(&args)
        })
        .collect();
    client.send_raw(&commands.concat()).expect("send SADDs");
    for _ in &commands {
        let reply = client.read_frame().expect("read SADD reply");
        assert!(matches!(reply, Frame::Integer(_)), "SADD: {reply:?}");
    }
}

fn int(frame: Frame) -> i64 {
    match frame {
        Frame::Integer(n) => n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

fn text(frame: &Frame) -> String {
    match frame {
        Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("expected a bulk string, got {other:?}"),
    }
}

/// The members of an array or set reply.
fn members(frame: Frame) -> Vec<String> {
    match frame {
        Frame::Array(items) | Frame::Set(items) => items.iter().map(text).collect(),
        other => panic!("expected an aggregate, got {other:?}"),
    }
}

/// Runs a full `SSCAN` iteration and returns every member returned, duplicates included, and
/// the number of calls. `between` runs after each call.
fn sscan_all(
    client: &mut RawClient,
    key: &str,
    options: &[&str],
    mut between: impl FnMut(&mut RawClient, usize),
) -> (Vec<String>, usize) {
    let mut cursor = "0".to_string();
    let mut out = Vec::new();
    let mut calls = 0;
    loop {
        let mut args = vec!["SSCAN", key, &cursor];
        args.extend_from_slice(options);
        let Frame::Array(mut reply) = client.call(&args) else {
            panic!("SSCAN reply is not an array");
        };
        let batch = reply.pop().expect("SSCAN members");
        cursor = text(&reply.pop().expect("SSCAN cursor"));
        out.extend(members(batch));
        calls += 1;
        between(client, calls);
        if cursor == "0" {
            return (out, calls);
        }
        assert!(calls < 1_000_000, "SSCAN never finished");
    }
}

fn words(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}

#[test]
fn sscan_over_a_big_set_returns_every_member() {
    let (_server, mut client) = start(candidate());
    let all = words("member:", 0..30_000);
    sadd_all(&mut client, "big", &all);
    assert_eq!(
        client.call(&["OBJECT", "ENCODING", "big"]),
        Frame::bulk("hashtable")
    );

    let (seen, calls) = sscan_all(&mut client, "big", &["COUNT", "100"], |_, _| {});
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), all.len(), "every member, once each");
    assert!(seen.len() < all.len() * 11 / 10, "{} returned", seen.len());
    assert!(
        calls >= 200,
        "COUNT 100 is roughly respected: {calls} calls"
    );

    // Members added and removed during the iteration may or may not be returned; those present
    // throughout must be.
    let (seen, _) = sscan_all(&mut client, "big", &["COUNT", "50"], |c, call| {
        if call == 20 {
            sadd_all(c, "big", &words("late:", 0..40_000));
        }
        if call == 60 {
            let mut args = vec!["SREM", "big"];
            let gone = words("late:", 0..39_000);
            args.extend(gone.iter().map(String::as_str));
            c.call(&args);
        }
    });
    let seen: HashSet<String> = seen.into_iter().collect();
    let missing: Vec<&String> = all.iter().filter(|m| !seen.contains(*m)).collect();
    assert!(
        missing.is_empty(),
        "{} members missed, e.g. {:?}",
        missing.len(),
        missing.first()
    );

    // MATCH filters after the cursor moves, so a full iteration finds exactly the matches.
    let (seen, _) = sscan_all(&mut client, "big", &["MATCH", "member:1234*"], |_, _| {});
    let seen: BTreeSet<String> = seen.into_iter().collect();
    let want: BTreeSet<String> = all
        .iter()
        .filter(|m| m.starts_with("member:1234"))
        .cloned()
        .collect();
    assert_eq!(seen, want);
}

#[test]
fn set_algebra_over_big_sets_is_exact() {
    let (_server, mut client) = start(candidate());
    const N: usize = 20_000;
    // Integers past the intset limit (hash tables whose members are integers) and strings.
    let all: Vec<String> = (0..N).map(|i| i.to_string()).collect();
    let evens: Vec<String> = (0..N).step_by(2).map(|i| i.to_string()).collect();
    let threes: Vec<String> = (0..N).step_by(3).map(|i| i.to_string()).collect();
    sadd_all(&mut client, "all", &all);
    sadd_all(&mut client, "evens", &evens);
    sadd_all(&mut client, "threes", &threes);
    sadd_all(
        &mut client,
        "small",
        &["6".into(), "7".into(), "12".into(), "x".into()],
    );

    let sixes: BTreeSet<String> = (0..N).step_by(6).map(|i| i.to_string()).collect();
    let got: BTreeSet<String> = members(client.call(&["SINTER", "all", "evens", "threes"]))
        .into_iter()
        .collect();
    assert_eq!(got, sixes);
    let got = members(client.call(&["SINTER", "threes", "small", "all", "evens"]));
    assert_eq!(
        got.into_iter().collect::<BTreeSet<_>>(),
        ["12", "6"].map(String::from).into()
    );
    assert_eq!(
        int(client.call(&["SINTERCARD", "3", "all", "evens", "threes"])),
        sixes.len() as i64
    );
    assert_eq!(
        int(client.call(&["SINTERCARD", "2", "evens", "threes", "LIMIT", "10"])),
        10
    );
    assert_eq!(
        int(client.call(&["SINTERSTORE", "six", "threes", "evens"])),
        sixes.len() as i64
    );
    assert_eq!(
        client.call(&["OBJECT", "ENCODING", "six"]),
        Frame::bulk("hashtable")
    );

    // Odd numbers that are not multiples of three.
    let want: BTreeSet<String> = (0..N)
        .filter(|i| i % 2 == 1 && i % 3 != 0)
        .map(|i| i.to_string())
        .collect();
    let got: BTreeSet<String> = members(client.call(&["SDIFF", "all", "evens", "threes"]))
        .into_iter()
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        int(client.call(&["SDIFFSTORE", "rest", "all", "evens", "threes"])),
        want.len() as i64
    );
    // The second difference algorithm: many small sets to subtract from a big one.
    let got = members(client.call(&["SDIFF", "small", "all", "evens"]));
    assert_eq!(got, vec!["x".to_string()]);

    assert_eq!(
        int(client.call(&["SUNIONSTORE", "u", "evens", "threes", "small"])),
        (N / 2 + N / 3 - N / 6 + 2) as i64
    );
    assert_eq!(
        int(client.call(&["SCARD", "u"])),
        (N / 2 + N / 3 - N / 6 + 2) as i64
    );
    assert_eq!(
        members(client.call(&["SUNION", "evens", "all"])).len(),
        N,
        "SUNION of a set and its subset"
    );
}

#[test]
fn random_members_keep_their_promises() {
    let (_server, mut client) = start(candidate());
    client.call(&["SADD", "one", "only"]);
    assert_eq!(
        members(client.call(&["SRANDMEMBER", "one", "-5"])),
        vec!["only"; 5]
    );

    let all = words("r", 0..1000);
    sadd_all(&mut client, "r", &all);
    for count in ["5", "400", "900", "999"] {
        let got = members(client.call(&["SRANDMEMBER", "r", count]));
        let unique: HashSet<&String> = got.iter().collect();
        assert_eq!(
            got.len(),
            count.parse::<usize>().unwrap_or(0),
            "SRANDMEMBER r {count}"
        );
        assert_eq!(
            unique.len(),
            got.len(),
            "SRANDMEMBER r {count} repeats a member"
        );
        assert!(got.iter().all(|m| all.contains(m)));
    }
    assert_eq!(
        members(client.call(&["SRANDMEMBER", "r", "5000"])).len(),
        1000
    );
    let sampled = members(client.call(&["SRANDMEMBER", "r", "-20000"]));
    assert_eq!(sampled.len(), 20_000);
    let distinct: HashSet<&String> = sampled.iter().collect();
    // 20,000 draws from 1,000 members miss any given member with probability e^-20.
    assert_eq!(
        distinct.len(),
        1000,
        "sampling with replacement reaches every member"
    );

    // SPOP: a few, then most of the rest (Redis's "keep the remainder" path), then everything.
    let mut popped: Vec<String> = members(client.call(&["SPOP", "r", "10"]));
    assert_eq!(int(client.call(&["SCARD", "r"])), 990);
    popped.extend(members(client.call(&["SPOP", "r", "980"])));
    assert_eq!(int(client.call(&["SCARD", "r"])), 10);
    for _ in 0..5 {
        popped.push(text(&client.call(&["SPOP", "r"])));
    }
    popped.extend(members(client.call(&["SPOP", "r", "100"])));
    assert_eq!(int(client.call(&["EXISTS", "r"])), 0);
    let unique: BTreeSet<String> = popped.iter().cloned().collect();
    assert_eq!(popped.len(), 1000, "every member popped once");
    assert_eq!(unique, all.into_iter().collect());
}

#[test]
fn srandmember_bounds_a_negative_count() {
    if candidate() == ServerKind::Redis {
        // Redis answers any count down to -LONG_MAX, growing the reply without bound.
        return;
    }
    let (_server, mut client) = start(candidate());
    client.call(&["SADD", "s", "a"]);
    let reply = client.call(&["SRANDMEMBER", "s", "-1000000000"]);
    assert_eq!(
        reply,
        Frame::Error(Bytes::from_static(
            b"ERR value is out of range, value must between -4194304 and 9223372036854775807"
        ))
    );
    let reply = client.call(&["SRANDMEMBER", "s", "-4194305"]);
    assert!(
        matches!(reply, Frame::Error(_)),
        "one past the bound is refused"
    );
    assert_eq!(
        members(client.call(&["SRANDMEMBER", "s", "-100000"])).len(),
        100_000
    );
}

fn used_memory(client: &mut RawClient) -> i64 {
    probe::info_u64(client, "memory", "used_memory").expect("INFO used_memory") as i64
}

/// `used_memory` once three readings in a row agree within 1%.
fn settled_used_memory(client: &mut RawClient) -> i64 {
    let mut readings = Vec::new();
    let settled = probe::wait_for(Duration::from_secs(30), Duration::from_millis(100), || {
        readings.push(used_memory(client));
        let last = &readings[readings.len().saturating_sub(3)..];
        let (lo, hi) = (*last.iter().min()?, *last.iter().max()?);
        (last.len() == 3 && hi - lo <= hi / 100).then_some(hi)
    });
    settled.unwrap_or_else(|| panic!("used_memory never settled: {readings:?}"))
}

#[test]
fn memory_is_accounted_and_given_back() {
    let (_server, mut client) = start(candidate());
    let baseline = settled_used_memory(&mut client);

    client.call(&["SADD", "ints", "1", "2", "3"]);
    let small = int(client.call(&["MEMORY", "USAGE", "ints"]));
    assert!(
        small > 0 && small < 200,
        "a three-integer intset: {small} bytes"
    );

    let all = words("a-member-of-some-length:", 0..50_000);
    sadd_all(&mut client, "big", &all);
    let usage = int(client.call(&["MEMORY", "USAGE", "big", "SAMPLES", "0"]));
    let payload: i64 = all.iter().map(|m| m.len() as i64).sum();
    assert!(
        usage > payload,
        "MEMORY USAGE {usage} below the members' {payload} bytes"
    );
    assert!(
        usage < payload * 4,
        "MEMORY USAGE {usage} for {payload} bytes of members"
    );
    let loaded = used_memory(&mut client);
    assert!(
        loaded - baseline > usage / 2,
        "used_memory grew by {} for a {usage}-byte set",
        loaded - baseline
    );

    // Shrinking the set gives memory back, and deleting it gives back everything.
    let mut args = vec!["SREM", "big"];
    args.extend(all[..45_000].iter().map(String::as_str));
    assert_eq!(int(client.call(&args)), 45_000);
    let shrunk = int(client.call(&["MEMORY", "USAGE", "big", "SAMPLES", "0"]));
    assert!(shrunk < usage / 4, "{shrunk} after removing 90% of {usage}");

    client.call(&["DEL", "big", "ints"]);
    let after = settled_used_memory(&mut client);
    eprintln!(
        "{}: set of 50,000 members: MEMORY USAGE {usage}, used_memory {baseline} -> {loaded} -> {after}",
        candidate().name()
    );
    let growth = loaded - baseline;
    assert!(
        (after - baseline).abs() < growth / 10 + 256 * 1024,
        "used_memory {baseline} before, {after} after DEL"
    );
}
