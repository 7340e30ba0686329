//! Client-side caching (`CLIENT TRACKING`), each scenario run on redis-server 7.0 and on Shoal
//! with every frame each client receives compared: invalidations pushed to a RESP3 client after
//! its own reply, redirection to a RESP2 client subscribed to `__redis__:invalidate`, BCAST
//! prefixes, NOLOOP, OPTIN/OPTOUT with `CLIENT CACHING`, flushes, expiry, and the errors.
//! `SHOAL_TEST_AGAINST=redis` runs the Shoal side against a second redis-server.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use shoal_testkit::{render, target_kind, Frame, RawClient, ServerKind, ServerProcess};

const TIMEOUT: Duration = Duration::from_secs(30);

fn candidate() -> ServerKind {
    target_kind(option_env!("CARGO_BIN_EXE_shoal-server"))
}

fn connect(addr: SocketAddr) -> RawClient {
    RawClient::connect_with_timeout(addr, TIMEOUT).expect("connect")
}

/// A transcript: what each client sent and every frame it then received.
#[derive(Default)]
struct Log(Vec<String>);

impl Log {
    /// Sends a command on `c` and records every frame up to and including its reply, which is
    /// recognised as the first frame that is not a push (pushes may come before and after it).
    fn run(&mut self, who: &str, c: &mut RawClient, args: &[&str]) -> Frame {
        let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        c.send_command(&bytes).expect("send");
        loop {
            let f = c.read_frame().expect("reply");
            let push = matches!(f, Frame::Push(_));
            self.0
                .push(format!("{who} {} -> {}", args.join(" "), render(&f)));
            if !push {
                return f;
            }
        }
    }

    /// Collects what `c` was sent meanwhile: PING, and everything before its PONG (a RESP2
    /// subscriber answers PING with an array, which is also where the frames stop).
    fn drain(&mut self, who: &str, c: &mut RawClient) {
        c.send_command(&[b"PING"]).expect("send");
        loop {
            let f = c.read_frame().expect("frame");
            let text = render(&f);
            let done = text.contains("PONG") || text.contains("pong");
            self.0.push(format!("{who} <- {text}"));
            if done {
                return;
            }
        }
    }
}

fn id_of(c: &mut RawClient) -> String {
    match c.call(&["CLIENT", "ID"]) {
        Frame::Integer(id) => id.to_string(),
        other => panic!("CLIENT ID replied {other:?}"),
    }
}

/// Runs `scenario` on both servers and compares the transcripts.
fn same_on_both(scenario: impl Fn(SocketAddr) -> Vec<String>) {
    let redis = ServerProcess::start(ServerKind::Redis, &[]).expect("redis starts");
    let expected = scenario(redis.addr());
    let shoal = ServerProcess::start(candidate(), &[]).expect("shoal starts");
    let got = scenario(shoal.addr());
    assert_eq!(
        got.join("\n"),
        expected.join("\n"),
        "Shoal (left), Redis (right)"
    );
}

#[test]
fn a_resp3_client_is_told_after_its_own_reply_and_others_when_they_next_read() {
    same_on_both(|addr| {
        let mut log = Log::default();
        let (mut a, mut b) = (connect(addr), connect(addr));
        log.run("a", &mut a, &["HELLO", "3"]);
        log.0.clear();
        log.run("b", &mut b, &["HELLO", "3"]);
        log.0.clear();
        log.run("a", &mut a, &["SET", "k", "1"]);
        log.run("a", &mut a, &["CLIENT", "TRACKING", "on"]);
        log.run("b", &mut b, &["CLIENT", "TRACKING", "on"]);
        log.run("a", &mut a, &["GET", "k"]);
        log.run("b", &mut b, &["MGET", "k", "k2"]);
        // a's own write: its reply, then its invalidation; b hears of it on its next read.
        log.run("a", &mut a, &["SET", "k", "2"]);
        log.drain("b", &mut b);
        // Once told, a client is not told again until it reads the key again.
        log.run("a", &mut a, &["SET", "k", "3"]);
        log.drain("b", &mut b);
        // A key that expires is invalidated when it is deleted.
        // Long enough for the GET to read it even on a loaded machine; then awaited.
        log.run("b", &mut b, &["SET", "e", "v", "PX", "1000"]);
        log.run("b", &mut b, &["GET", "e"]);
        let start = Instant::now();
        while b.call(&["PTTL", "e"]) != Frame::Integer(-2) {
            assert!(start.elapsed() < TIMEOUT);
            std::thread::sleep(Duration::from_millis(2));
        }
        log.drain("b", &mut b);
        // A write from a transaction, a flush, and reading inside a transaction.
        log.run("b", &mut b, &["GET", "k"]);
        log.run("a", &mut a, &["MULTI"]);
        log.run("a", &mut a, &["INCR", "k"]);
        log.run("a", &mut a, &["EXEC"]);
        log.drain("b", &mut b);
        log.run("b", &mut b, &["GET", "k"]);
        log.run("a", &mut a, &["FLUSHALL"]);
        log.drain("b", &mut b);
        log.run("b", &mut b, &["CLIENT", "TRACKINGINFO"]);
        log.run("b", &mut b, &["CLIENT", "GETREDIR"]);
        log.run("b", &mut b, &["CLIENT", "TRACKING", "off"]);
        log.run("b", &mut b, &["CLIENT", "TRACKINGINFO"]);
        log.0
    });
}

#[test]
fn redirected_invalidations_reach_a_resp2_subscriber() {
    same_on_both(|addr| {
        let mut log = Log::default();
        let (mut reader, mut listener, mut writer) = (connect(addr), connect(addr), connect(addr));
        let listener_id = id_of(&mut listener);
        log.run(
            "listener",
            &mut listener,
            &["SUBSCRIBE", "__redis__:invalidate"],
        );
        // The ids differ between the servers, so the reply is checked rather than logged.
        assert_eq!(
            reader.call(&["CLIENT", "TRACKING", "on", "REDIRECT", &listener_id]),
            Frame::simple("OK")
        );
        let redir = reader.call(&["CLIENT", "GETREDIR"]);
        assert_eq!(render(&redir), format!("(integer) {listener_id}"));
        log.run("reader", &mut reader, &["GET", "a"]);
        log.run("reader", &mut reader, &["GET", "b"]);
        log.run("writer", &mut writer, &["MSET", "a", "1", "b", "2"]);
        log.drain("listener", &mut listener);
        log.run("reader", &mut reader, &["GET", "a"]);
        log.run("writer", &mut writer, &["FLUSHDB"]);
        log.drain("listener", &mut listener);
        log.0
    });
}

#[test]
fn bcast_noloop_optin_and_optout_follow_redis() {
    same_on_both(|addr| {
        let mut log = Log::default();
        let (mut a, mut w) = (connect(addr), connect(addr));
        log.run("a", &mut a, &["HELLO", "3"]);
        log.0.clear();
        // BCAST: changes to keys under the prefixes, without reading them first.
        log.run(
            "a",
            &mut a,
            &[
                "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "user:", "PREFIX", "ord:",
            ],
        );
        log.run(
            "w",
            &mut w,
            &["MSET", "user:1", "x", "ord:7", "y", "other", "z"],
        );
        log.run("w", &mut w, &["SET", "user:2", "x"]);
        log.drain("a", &mut a);
        log.run("a", &mut a, &["CLIENT", "TRACKINGINFO"]);
        log.run("a", &mut a, &["CLIENT", "TRACKING", "off"]);
        // NOLOOP: a client's own writes are not announced to it.
        log.run("a", &mut a, &["CLIENT", "TRACKING", "on", "NOLOOP"]);
        log.run("a", &mut a, &["GET", "n"]);
        log.run("a", &mut a, &["SET", "n", "1"]);
        log.run("a", &mut a, &["GET", "n"]);
        log.run("w", &mut w, &["SET", "n", "2"]);
        log.drain("a", &mut a);
        log.run("a", &mut a, &["CLIENT", "TRACKING", "off"]);
        // OPTIN: only reads right after CLIENT CACHING yes are tracked.
        log.run("a", &mut a, &["CLIENT", "TRACKING", "on", "OPTIN"]);
        log.run("a", &mut a, &["GET", "untracked"]);
        log.run("a", &mut a, &["CLIENT", "CACHING", "yes"]);
        log.run("a", &mut a, &["CLIENT", "TRACKINGINFO"]);
        log.run("a", &mut a, &["GET", "tracked"]);
        log.run("w", &mut w, &["MSET", "untracked", "1", "tracked", "1"]);
        log.drain("a", &mut a);
        log.run("a", &mut a, &["CLIENT", "CACHING", "no"]);
        log.run("a", &mut a, &["CLIENT", "TRACKING", "off"]);
        // OPTOUT: every read but those right after CLIENT CACHING no.
        log.run("a", &mut a, &["CLIENT", "TRACKING", "on", "OPTOUT"]);
        log.run("a", &mut a, &["CLIENT", "CACHING", "no"]);
        log.run("a", &mut a, &["GET", "skipped"]);
        log.run("a", &mut a, &["GET", "kept"]);
        log.run("w", &mut w, &["MSET", "skipped", "1", "kept", "1"]);
        log.drain("a", &mut a);
        log.0
    });
}

#[test]
fn tracking_errors_are_redis_errors() {
    same_on_both(|addr| {
        let mut log = Log::default();
        let mut a = connect(addr);
        for cmd in [
            &["CLIENT", "TRACKING", "maybe"][..],
            &["CLIENT", "TRACKING", "on", "PREFIX", "a"],
            &["CLIENT", "TRACKING", "on", "BCAST", "OPTIN"],
            &["CLIENT", "TRACKING", "on", "OPTIN", "OPTOUT"],
            &["CLIENT", "TRACKING", "on", "REDIRECT", "999999"],
            &["CLIENT", "TRACKING", "on", "REDIRECT", "x"],
            &[
                "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "ab", "PREFIX", "a",
            ],
            &["CLIENT", "TRACKING", "on", "NOSUCHOPTION"],
            &["CLIENT", "CACHING", "yes"],
            &["CLIENT", "GETREDIR"],
            &["CLIENT", "TRACKING", "on", "OPTIN"],
            &["CLIENT", "CACHING", "no"],
            &["CLIENT", "CACHING", "maybe"],
            &["CLIENT", "TRACKING", "on", "OPTOUT"],
            &["CLIENT", "TRACKING", "on", "BCAST"],
            &["CLIENT", "TRACKING", "off"],
            &["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "a"],
            &["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "abc"],
            &["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "b"],
            &["CLIENT", "TRACKINGINFO"],
            &["CLIENT", "GETREDIR"],
            &["RESET"],
            &["CLIENT", "TRACKINGINFO"],
        ] {
            log.run("a", &mut a, cmd);
        }
        log.0
    });
}

/// Collects invalidated keys from pushes (RESP3) or `__redis__:invalidate` messages (RESP2)
/// until `want` keys have arrived, each PING flushing what is queued; returns how many times
/// each key was invalidated.
fn collect_invalidations(
    c: &mut RawClient,
    want: usize,
) -> std::collections::HashMap<Vec<u8>, usize> {
    let mut seen: std::collections::HashMap<Vec<u8>, usize> = std::collections::HashMap::new();
    let start = Instant::now();
    while seen.values().sum::<usize>() < want {
        assert!(
            start.elapsed() < TIMEOUT,
            "only {} of {want} invalidations arrived",
            seen.values().sum::<usize>()
        );
        c.send_command(&[b"PING"]).expect("send");
        loop {
            let f = c.read_frame().expect("frame");
            let items = match f {
                Frame::Push(items) | Frame::Array(items) => items,
                _ => break,
            };
            // A RESP2 subscriber answers PING with ["pong", ""].
            if items.first() == Some(&Frame::Bulk("pong".into())) {
                break;
            }
            if let Some(Frame::Array(keys)) = items.last() {
                for k in keys {
                    if let Frame::Bulk(k) = k {
                        *seen.entry(k.to_vec()).or_default() += 1;
                    }
                }
            }
        }
        if seen.values().sum::<usize>() < want {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    seen
}

/// A client caching 10,000 keys gets exactly one invalidation for each key another client
/// modifies, each key that expires and each key that is evicted: in RESP3 (pushes on its own
/// connection) and in RESP2 (redirected to a subscriber). In BCAST mode, where every change is
/// announced, exactly one per change: a modified key is announced when modified and again when
/// evicted, a key given a TTL when the TTL is set and when it expires.
#[test]
fn ten_thousand_cached_keys_each_invalidated_exactly_once() {
    const KEYS: usize = 10_000;
    let shoal = ServerProcess::start(candidate(), &["--hz", "50"]).expect("shoal starts");
    let addr = shoal.addr();
    for mode in ["resp3", "resp2-redirect", "bcast"] {
        let mut writer = connect(addr);
        writer.call(&["FLUSHALL"]);
        writer.call(&["CONFIG", "SET", "maxmemory", "0"]);
        let keys: Vec<String> = (0..KEYS).map(|i| format!("cache:{i}")).collect();
        for chunk in keys.chunks(1000) {
            let mut args = vec!["MSET"];
            for k in chunk {
                args.push(k);
                args.push("v");
            }
            writer.call(&args);
        }
        let mut reader = connect(addr);
        let mut listener = connect(addr);
        match mode {
            "resp3" => {
                reader.call(&["HELLO", "3"]);
                reader.call(&["CLIENT", "TRACKING", "on"]);
            }
            "resp2-redirect" => {
                let id = match listener.call(&["CLIENT", "ID"]) {
                    Frame::Integer(id) => id.to_string(),
                    other => panic!("CLIENT ID replied {other:?}"),
                };
                listener.call(&["SUBSCRIBE", "__redis__:invalidate"]);
                reader.call(&["CLIENT", "TRACKING", "on", "REDIRECT", &id]);
            }
            _ => {
                reader.call(&["HELLO", "3"]);
                reader.call(&["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "cache:"]);
            }
        }
        if mode != "bcast" {
            for chunk in keys.chunks(1000) {
                let mut args = vec!["MGET"];
                args.extend(chunk.iter().map(String::as_str));
                reader.call(&args);
            }
        }
        // Modify the first half, twice: only the first change of a read key is announced
        // (in BCAST mode every change is, so there each key is changed once).
        let modified = &keys[..KEYS / 2];
        let rounds = if mode == "bcast" { 1 } else { 2 };
        for _ in 0..rounds {
            for chunk in modified.chunks(1000) {
                let mut args = vec!["MSET"];
                for k in chunk {
                    args.push(k);
                    args.push("w");
                }
                writer.call(&args);
            }
        }
        // Expire a quarter: the active cycle deletes them without anyone touching them.
        let expiring = &keys[KEYS / 2..KEYS * 3 / 4];
        for k in expiring {
            writer.call(&["PEXPIRE", k, "1"]);
        }
        // In BCAST mode setting the expiry is itself announced, then the expiry.
        let per_expiring = if mode == "bcast" { 2 } else { 1 };
        let expected_now = modified.len() + per_expiring * expiring.len();
        let target = if mode == "resp2-redirect" {
            &mut listener
        } else {
            &mut reader
        };
        let mut seen = collect_invalidations(target, expected_now);
        // Evict: with a tiny limit every remaining key goes.
        writer.call(&["CONFIG", "SET", "maxmemory-policy", "allkeys-random"]);
        writer.call(&["CONFIG", "SET", "maxmemory", "1"]);
        let start = Instant::now();
        while writer.call(&["DBSIZE"]) != Frame::Integer(0) {
            assert!(
                start.elapsed() < TIMEOUT,
                "eviction did not empty the keyspace"
            );
            writer.call(&["PING"]);
        }
        writer.call(&["CONFIG", "SET", "maxmemory", "0"]);
        // In BCAST mode the modified keys, still there, are announced again when evicted.
        let evict_phase = if mode == "bcast" {
            KEYS / 4 + modified.len()
        } else {
            KEYS / 4
        };
        let rest = collect_invalidations(target, evict_phase);
        for (k, n) in rest {
            *seen.entry(k).or_default() += n;
        }
        assert_eq!(seen.len(), KEYS, "{mode}: every key is invalidated");
        for (i, k) in keys.iter().enumerate() {
            let want = match mode {
                "bcast" if i < KEYS * 3 / 4 => 2,
                _ => 1,
            };
            assert_eq!(
                seen.get(k.as_bytes()).copied(),
                Some(want),
                "{mode}: key {i} invalidated a wrong number of times"
            );
        }
    }
}
