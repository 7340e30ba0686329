//! Pub/sub across clients: subscribers and publishers on separate connections, every raw reply
//! recorded and compared byte for byte with what redis-server 7.0 sends in the same scenario,
//! in RESP2 and in RESP3. Then what only a test with several clients can show: cleanup on
//! `RESET` and on disconnect, and a subscriber that stops reading being cut off under
//! `client-output-buffer-limit pubsub` while the server's memory stays bounded.
//! `SHOAL_TEST_AGAINST=redis` runs the Shoal side against a second redis-server.
//!
//! Redis lists a client's channels in hash-table order (random per process), so no scenario
//! unsubscribes from several channels at once or lists several active channels.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use shoal_testkit::client::escape;
use shoal_testkit::{target_kind, Frame, RawClient, ServerKind, ServerProcess};

/// Bounds every read and every wait; a healthy server answers in milliseconds.
const TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(10);

fn candidate() -> ServerKind {
    target_kind(option_env!("CARGO_BIN_EXE_shoal-server"))
}

fn start(kind: ServerKind) -> ServerProcess {
    ServerProcess::start(kind, &[]).expect("server starts")
}

fn connect(addr: SocketAddr) -> RawClient {
    RawClient::connect_with_timeout(addr, TIMEOUT).expect("connect")
}

/// The replies one scenario produced, in order, each as `client> raw bytes`.
#[derive(Default)]
struct Transcript(Vec<String>);

impl Transcript {
    /// Sends a command from `who` without reading anything.
    fn send(&mut self, c: &mut RawClient, args: &[&str]) {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        c.send_command(&args).expect("send");
    }

    /// Reads `n` replies (or pushed messages) of client `who`.
    fn read(&mut self, who: &str, c: &mut RawClient, n: usize) {
        for _ in 0..n {
            let reply = c.read_reply().expect("reply");
            self.0.push(format!("{who}> {}", escape(&reply.raw)));
        }
    }

    /// Sends a command and reads `n` replies.
    fn run(&mut self, who: &str, c: &mut RawClient, args: &[&str], n: usize) {
        self.send(c, args);
        self.read(who, c, n);
    }
}

/// Runs `scenario` on redis-server and on the candidate and compares the transcripts.
fn same_as_redis(scenario: impl Fn(&ServerProcess) -> Transcript) {
    let redis = start(ServerKind::Redis);
    let shoal = start(candidate());
    let expected = scenario(&redis).0;
    let actual = scenario(&shoal).0;
    for (i, (e, a)) in expected.iter().zip(&actual).enumerate() {
        assert_eq!(
            e,
            a,
            "reply {i} differs; redis said:\n{}",
            expected.join("\n")
        );
    }
    assert_eq!(expected.len(), actual.len());
}

/// Switches `c` to `protocol`, reading `HELLO`'s reply without recording it (it holds the
/// client id and the server's version).
fn hello(c: &mut RawClient, protocol: u8) {
    if protocol == 3 {
        c.call(&["HELLO", "3"]);
    }
}

fn numsub(c: &mut RawClient, channel: &str) -> i64 {
    match c.call(&["PUBSUB", "NUMSUB", channel]) {
        Frame::Array(items) => match items.get(1) {
            Some(Frame::Integer(n)) => *n,
            other => panic!("NUMSUB count is {other:?}"),
        },
        other => panic!("NUMSUB replied {other:?}"),
    }
}

/// Waits until `channel` has `n` subscribers.
fn await_numsub(c: &mut RawClient, channel: &str, n: i64) {
    let start = Instant::now();
    while numsub(c, channel) != n {
        assert!(
            start.elapsed() < TIMEOUT,
            "{channel} never had {n} subscribers"
        );
        std::thread::sleep(POLL);
    }
}

fn info(c: &mut RawClient, section: &str) -> String {
    match c.call(&["INFO", section]) {
        Frame::Bulk(text) => String::from_utf8_lossy(&text).into_owned(),
        other => panic!("INFO replied {other:?}"),
    }
}

fn info_field(c: &mut RawClient, section: &str, field: &str) -> i64 {
    let text = info(c, section);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("INFO {section} has no {field}: {text}"))
}

#[test]
fn confirmations_and_messages_match_redis() {
    for protocol in [2, 3] {
        same_as_redis(|server| {
            let mut t = Transcript::default();
            let mut sub = connect(server.addr());
            let mut publisher = connect(server.addr());
            hello(&mut sub, protocol);
            // One confirmation per channel, counting channels and patterns together and shard
            // channels apart; a repeated channel is confirmed again without counting twice.
            t.run(
                "sub",
                &mut sub,
                &["SUBSCRIBE", "news.tech", "news.art", "news.tech"],
                3,
            );
            t.run("sub", &mut sub, &["PSUBSCRIBE", "news.*"], 1);
            t.run("sub", &mut sub, &["SSUBSCRIBE", "orders", "stock"], 2);
            // Channel subscribers first, then pattern subscribers; shard channels apart.
            t.run("pub", &mut publisher, &["PUBLISH", "news.tech", "hello"], 1);
            t.run("pub", &mut publisher, &["PUBLISH", "news.sport", "goal"], 1);
            t.run("pub", &mut publisher, &["PUBLISH", "weather", "rain"], 1);
            t.run("pub", &mut publisher, &["SPUBLISH", "orders", "o-1"], 1);
            t.run(
                "pub",
                &mut publisher,
                &["PUBLISH", "orders", "not-sharded"],
                1,
            );
            t.run(
                "pub",
                &mut publisher,
                &["SPUBLISH", "news.tech", "sharded"],
                1,
            );
            t.read("sub", &mut sub, 4);
            // Binary-safe channels and messages.
            t.run("sub", &mut sub, &["SUBSCRIBE", "bin\u{0}\r\n"], 1);
            t.run(
                "pub",
                &mut publisher,
                &["PUBLISH", "bin\u{0}\r\n", "a\r\nb\u{0}"],
                1,
            );
            t.read("sub", &mut sub, 1);
            // Introspection from another client.
            t.run(
                "pub",
                &mut publisher,
                &["PUBSUB", "NUMSUB", "news.tech", "news.art", "none"],
                1,
            );
            t.run("pub", &mut publisher, &["PUBSUB", "NUMPAT"], 1);
            t.run("pub", &mut publisher, &["PUBSUB", "CHANNELS", "news.t*"], 1);
            t.run(
                "pub",
                &mut publisher,
                &["PUBSUB", "SHARDCHANNELS", "ord*"],
                1,
            );
            t.run(
                "pub",
                &mut publisher,
                &["PUBSUB", "SHARDNUMSUB", "orders", "news.tech"],
                1,
            );
            // Leaving one by one, then leaving "everything" when nothing is left.
            t.run("sub", &mut sub, &["UNSUBSCRIBE", "news.tech", "never"], 2);
            t.run("sub", &mut sub, &["UNSUBSCRIBE", "news.art"], 1);
            t.run("sub", &mut sub, &["UNSUBSCRIBE", "bin\u{0}\r\n"], 1);
            t.run("sub", &mut sub, &["UNSUBSCRIBE"], 1);
            t.run("sub", &mut sub, &["PUNSUBSCRIBE"], 1);
            t.run("sub", &mut sub, &["SUNSUBSCRIBE", "stock"], 1);
            t.run("sub", &mut sub, &["SUNSUBSCRIBE"], 1);
            t.run("sub", &mut sub, &["SUNSUBSCRIBE"], 1);
            t.run("pub", &mut publisher, &["PUBLISH", "news.tech", "gone"], 1);
            t.run("pub", &mut publisher, &["PUBSUB", "NUMPAT"], 1);
            // Out of subscribed mode, PING is a plain PONG again.
            t.run("sub", &mut sub, &["PING"], 1);
            t
        });
    }
}

#[test]
fn messages_arrive_in_publishing_order() {
    same_as_redis(|server| {
        let mut t = Transcript::default();
        let mut sub = connect(server.addr());
        let mut publisher = connect(server.addr());
        t.run("sub", &mut sub, &["SUBSCRIBE", "seq"], 1);
        // Pipelined, so the subscriber's messages are queued faster than it reads them.
        let mut batch = Vec::new();
        for i in 0..200 {
            batch.extend(shoal_testkit::client::encode_command(&[
                b"PUBLISH",
                b"seq",
                format!("m{i}").as_bytes(),
            ]));
        }
        publisher.send_raw(&batch).expect("send");
        t.read("pub", &mut publisher, 200);
        t.read("sub", &mut sub, 200);
        t
    });
}

#[test]
fn a_resp3_client_may_run_any_command_and_sees_its_own_messages_first() {
    same_as_redis(|server| {
        let mut t = Transcript::default();
        let mut c = connect(server.addr());
        hello(&mut c, 3);
        t.run("c", &mut c, &["SUBSCRIBE", "self"], 1);
        t.run("c", &mut c, &["SET", "k", "v"], 1);
        t.run("c", &mut c, &["GET", "k"], 1);
        // Redis queues the message during PUBLISH, so it precedes PUBLISH's own reply.
        t.run("c", &mut c, &["PUBLISH", "self", "echo"], 2);
        t.run("c", &mut c, &["PING"], 1);
        t
    });
}

#[test]
fn subscribed_resp2_clients_may_run_only_pubsub_commands() {
    same_as_redis(|server| {
        let mut t = Transcript::default();
        let mut c = connect(server.addr());
        t.run("c", &mut c, &["SSUBSCRIBE", "s"], 1);
        t.run("c", &mut c, &["GET", "k"], 1);
        t.run("c", &mut c, &["CLIENT", "ID"], 1);
        t.run("c", &mut c, &["PUBLISH", "s", "x"], 1);
        t.run("c", &mut c, &["NOSUCHCOMMAND"], 1);
        t.run("c", &mut c, &["GET"], 1);
        t.run("c", &mut c, &["PING"], 1);
        t.run("c", &mut c, &["PING", "hi"], 1);
        t.run("c", &mut c, &["PSUBSCRIBE", "p*"], 1);
        t.run("c", &mut c, &["PUNSUBSCRIBE", "p*"], 1);
        // RESET leaves every channel without confirmations.
        t.run("c", &mut c, &["RESET"], 1);
        t.run("c", &mut c, &["GET", "k"], 1);
        t.run("c", &mut c, &["PUBSUB", "SHARDNUMSUB", "s"], 1);
        // QUIT is allowed too.
        t.run("c", &mut c, &["SUBSCRIBE", "q"], 1);
        t.run("c", &mut c, &["QUIT"], 1);
        t
    });
}

#[test]
fn introspection_counts_and_client_list_follow_subscriptions() {
    for server in [start(ServerKind::Redis), start(candidate())] {
        let kind = server.kind();
        let mut admin = connect(server.addr());
        let mut sub = connect(server.addr());
        sub.call(&["CLIENT", "SETNAME", "listener"]);
        sub.send_command(&[b"SUBSCRIBE", b"a", b"b"]).expect("send");
        sub.send_command(&[b"PSUBSCRIBE", b"x*"]).expect("send");
        sub.send_command(&[b"SSUBSCRIBE", b"s"]).expect("send");
        for _ in 0..4 {
            sub.read_frame().expect("confirmation");
        }
        assert_eq!(
            info_field(&mut admin, "stats", "pubsub_channels"),
            2,
            "{kind:?}"
        );
        assert_eq!(
            info_field(&mut admin, "stats", "pubsub_patterns"),
            1,
            "{kind:?}"
        );
        assert_eq!(
            info_field(&mut admin, "stats", "pubsubshard_channels"),
            1,
            "{kind:?}"
        );
        let Frame::Bulk(list) = admin.call(&["CLIENT", "LIST"]) else {
            panic!("CLIENT LIST is a bulk string");
        };
        let list = String::from_utf8_lossy(&list).into_owned();
        let line = list
            .lines()
            .find(|l| l.contains(" name=listener "))
            .unwrap_or_else(|| panic!("{kind:?}: {list}"));
        assert!(line.contains(" flags=P "), "{kind:?}: {line}");
        assert!(line.contains(" sub=2 psub=1 ssub=1 "), "{kind:?}: {line}");
        // A disconnect leaves every channel.
        drop(sub);
        await_numsub(&mut admin, "a", 0);
        let start = Instant::now();
        while info_field(&mut admin, "stats", "pubsubshard_channels") != 0
            || info_field(&mut admin, "stats", "pubsub_patterns") != 0
        {
            assert!(
                start.elapsed() < TIMEOUT,
                "{kind:?}: subscriptions outlived the client"
            );
            std::thread::sleep(POLL);
        }
        assert_eq!(info_field(&mut admin, "stats", "pubsub_channels"), 0);
        assert_eq!(admin.call(&["PUBLISH", "a", "m"]), Frame::Integer(0));
    }
}

/// Resident memory of a process in bytes, from `/proc`.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("VmRSS")
}

#[test]
fn a_subscriber_that_stops_reading_is_disconnected_at_its_hard_limit() {
    for mut server in [start(ServerKind::Redis), start(candidate())] {
        let kind = server.kind().clone();
        let mut publisher = connect(server.addr());
        assert_eq!(
            publisher.call(&[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "pubsub 1mb 0 0"
            ]),
            Frame::ok()
        );
        let mut slow = connect(server.addr());
        slow.call(&["SUBSCRIBE", "firehose"]);
        let before = rss(server.pid());
        // 256 MiB published at a subscriber that never reads: the socket buffers take a few
        // MiB, the limit 1 MiB more, and then the subscriber must be gone.
        let message = "x".repeat(64 * 1024);
        let mut delivered = 0;
        for _ in 0..4096 {
            match publisher.call(&["PUBLISH", "firehose", &message]) {
                Frame::Integer(1) => delivered += 1,
                Frame::Integer(0) => break,
                other => panic!("{kind:?}: PUBLISH replied {other:?}"),
            }
        }
        assert!(
            delivered < 4096,
            "{kind:?}: the slow subscriber was never cut off"
        );
        await_numsub(&mut publisher, "firehose", 0);
        let grown = rss(server.pid()).saturating_sub(before);
        assert!(
            grown < 64 << 20,
            "{kind:?}: memory grew by {grown} bytes for one slow subscriber"
        );
        // The subscriber sees its connection end once it reads what got through.
        slow.read_to_close().expect("the connection closes");
        server.stop().expect("stop");
        let log = server.log();
        assert!(
            log.contains("output buffer limits"),
            "{kind:?}: the log does not say why the subscriber was closed:\n{log}"
        );
    }
}

#[test]
fn a_subscriber_over_its_soft_limit_for_too_long_is_disconnected() {
    for server in [start(ServerKind::Redis), start(candidate())] {
        let kind = server.kind().clone();
        let mut publisher = connect(server.addr());
        publisher.call(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 0 1mb 1",
        ]);
        let mut slow = connect(server.addr());
        slow.call(&["SUBSCRIBE", "drip"]);
        let message = "y".repeat(64 * 1024);
        // Over the soft limit starts the clock; staying over it for more than a second (seen
        // when the next message arrives) ends the subscriber.
        let start = Instant::now();
        loop {
            match publisher.call(&["PUBLISH", "drip", &message]) {
                Frame::Integer(1) => {}
                Frame::Integer(0) => break,
                other => panic!("{kind:?}: PUBLISH replied {other:?}"),
            }
            assert!(start.elapsed() < TIMEOUT, "{kind:?}: never cut off");
            std::thread::sleep(POLL);
        }
        // Not before the soft seconds passed.
        assert!(start.elapsed() >= Duration::from_secs(1), "{kind:?}");
        await_numsub(&mut publisher, "drip", 0);
        drop(slow);
    }
}

#[test]
fn client_output_buffer_limit_reads_and_writes_like_redis() {
    same_as_redis(|server| {
        let mut t = Transcript::default();
        let mut c = connect(server.addr());
        let set = |t: &mut Transcript, c: &mut RawClient, v: &str| {
            t.run(
                "c",
                c,
                &["CONFIG", "SET", "client-output-buffer-limit", v],
                1,
            )
        };
        t.run(
            "c",
            &mut c,
            &["CONFIG", "GET", "client-output-buffer-limit"],
            1,
        );
        set(&mut t, &mut c, "pubsub 1mb 512kb 10");
        set(&mut t, &mut c, "replica 1gb 0 0 NORMAL 1k 2 3");
        set(&mut t, &mut c, "pubsub 1mb 0");
        set(&mut t, &mut c, "master 1 2 3");
        set(&mut t, &mut c, "pubsub -1 0 0");
        set(&mut t, &mut c, "pubsub 1 2 -3");
        set(&mut t, &mut c, "pubsub 1 2 x");
        set(&mut t, &mut c, "");
        t.run(
            "c",
            &mut c,
            &["CONFIG", "GET", "client-output-buffer-limit"],
            1,
        );
        t
    });
}

#[test]
fn an_ordinary_client_whose_reply_passes_the_normal_hard_limit_is_disconnected() {
    for mut server in [start(ServerKind::Redis), start(candidate())] {
        let kind = server.kind().clone();
        let mut admin = connect(server.addr());
        let big = "z".repeat(1 << 20);
        admin.call(&["SET", "big", &big]);
        admin.call(&["SET", "small", "v"]);
        admin.call(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 256kb 0 0",
        ]);
        let mut reader = connect(server.addr());
        assert_eq!(
            reader.call(&["GET", "small"]),
            Frame::Bulk("v".into()),
            "{kind:?}"
        );
        // The 1 MiB reply is over the limit: the client is closed instead of answered.
        reader.send_command(&[b"GET", b"big"]).expect("send");
        let got = reader.read_to_close().expect("the connection closes");
        assert!(got.len() < big.len(), "{kind:?}: the reply was sent");
        // Other clients are unaffected.
        assert_eq!(
            admin.call(&["GET", "small"]),
            Frame::Bulk("v".into()),
            "{kind:?}"
        );
        server.stop().expect("stop");
        assert!(server.log().contains("output buffer limits"), "{kind:?}");
    }
}

#[test]
fn a_resp3_subscriber_blocked_on_a_key_still_receives_messages() {
    same_as_redis(|server| {
        let mut t = Transcript::default();
        let mut c = connect(server.addr());
        let mut other = connect(server.addr());
        hello(&mut c, 3);
        t.run("c", &mut c, &["SUBSCRIBE", "chat"], 1);
        t.send(&mut c, &["BLPOP", "jobs", "0"]);
        let start = Instant::now();
        while info_field(&mut other, "clients", "blocked_clients") != 1 {
            assert!(start.elapsed() < TIMEOUT, "never blocked");
            std::thread::sleep(POLL);
        }
        t.run(
            "other",
            &mut other,
            &["PUBLISH", "chat", "while blocked"],
            1,
        );
        t.read("c", &mut c, 1);
        t.run("other", &mut other, &["RPUSH", "jobs", "j1"], 1);
        t.read("c", &mut c, 1);
        t
    });
}

#[test]
fn subscribers_are_exempt_from_the_idle_timeout() {
    for server in [start(ServerKind::Redis), start(candidate())] {
        let kind = server.kind().clone();
        let mut admin = connect(server.addr());
        admin.call(&["CONFIG", "SET", "timeout", "1"]);
        let mut sub = connect(server.addr());
        sub.call(&["SUBSCRIBE", "quiet"]);
        let mut idle = connect(server.addr());
        idle.call(&["PING"]);
        // The ordinary client, idle as long as the subscriber, is closed...
        idle.read_to_close().expect("the idle client is closed");
        // ...and the subscriber is still there.
        assert_eq!(
            sub.call(&["PING"]),
            Frame::Array(vec![Frame::Bulk("pong".into()), Frame::Bulk("".into())]),
            "{kind:?}"
        );
    }
}

#[test]
fn concurrent_publishers_reach_every_subscriber_in_their_own_order() {
    const SUBSCRIBERS: usize = 4;
    const PUBLISHERS: usize = 4;
    const EACH: usize = 2000;
    for server in [start(ServerKind::Redis), start(candidate())] {
        let kind = server.kind().clone();
        let mut subs: Vec<RawClient> = (0..SUBSCRIBERS)
            .map(|_| {
                let mut c = connect(server.addr());
                c.call(&["SUBSCRIBE", "load"]);
                c
            })
            .collect();
        let addr = server.addr();
        let publishers: Vec<_> = (0..PUBLISHERS)
            .map(|p| {
                std::thread::spawn(move || {
                    let mut c = connect(addr);
                    for n in 0..EACH {
                        let reply = c.call(&["PUBLISH", "load", &format!("{p}:{n}")]);
                        assert_eq!(reply, Frame::Integer(SUBSCRIBERS as i64));
                    }
                })
            })
            .collect();
        let readers: Vec<_> = subs
            .drain(..)
            .map(|mut c| {
                std::thread::spawn(move || {
                    let mut next = [0usize; PUBLISHERS];
                    for _ in 0..PUBLISHERS * EACH {
                        let Frame::Array(items) = c.read_frame().expect("message") else {
                            panic!("not a message");
                        };
                        let Some(Frame::Bulk(body)) = items.get(2) else {
                            panic!("no payload");
                        };
                        let body = String::from_utf8_lossy(body).into_owned();
                        let (p, n) = body.split_once(':').expect("p:n");
                        let (p, n): (usize, usize) = (p.parse().unwrap(), n.parse().unwrap());
                        assert_eq!(n, next[p], "publisher {p}'s messages out of order");
                        next[p] += 1;
                    }
                    next
                })
            })
            .collect();
        for p in publishers {
            p.join().expect("publisher");
        }
        for r in readers {
            assert_eq!(r.join().expect("reader"), [EACH; PUBLISHERS], "{kind:?}");
        }
    }
}
