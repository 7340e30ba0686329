//! Streams end to end: `XREAD BLOCK` and `XREADGROUP BLOCK` woken by `XADD` (with `$` standing
//! for the ID it meant when the client blocked) or timing out with a null reply, checked on
//! redis-server 7.0 and on Shoal; and a consumer group whose consumers share 100 000 messages
//! with `XREADGROUP` and `XACK`, none lost or duplicated.
//! `SHOAL_TEST_AGAINST=redis` runs the Shoal side against a second redis-server.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use shoal_testkit::{target_kind, Frame, RawClient, ServerKind, ServerProcess};

/// Bounds every read and every wait; a healthy server answers in milliseconds.
const TIMEOUT: Duration = Duration::from_secs(60);
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

fn array(items: Vec<Frame>) -> Frame {
    Frame::Array(items)
}

/// One entry as Redis replies with it.
fn entry(id: &str, fields: &[&str]) -> Frame {
    array(vec![
        bulk(id),
        array(fields.iter().map(|f| bulk(f)).collect()),
    ])
}

/// An `XREAD` reply (RESP2) for one stream.
fn read_reply(key: &str, entries: Vec<Frame>) -> Frame {
    array(vec![array(vec![bulk(key), array(entries)])])
}

/// Waits until `n` clients are blocked, as the server reports it.
fn await_blocked(c: &mut RawClient, n: i64) {
    let start = Instant::now();
    loop {
        let Frame::Bulk(text) = c.call(&["INFO", "clients"]) else {
            panic!("INFO is a bulk string");
        };
        let text = String::from_utf8_lossy(&text).into_owned();
        let blocked: i64 = text
            .lines()
            .find_map(|l| l.strip_prefix("blocked_clients:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(-1);
        if blocked == n {
            return;
        }
        assert!(start.elapsed() < TIMEOUT, "never saw {n} blocked clients");
        std::thread::sleep(POLL);
    }
}

#[test]
fn xread_block_wakes_on_xadd_with_the_entries_added_since_it_blocked() {
    for server in servers() {
        let kind = server.kind();
        let mut admin = connect(server.addr());
        admin.call(&["XADD", "s", "1-0", "f", "old"]);
        // Two readers of `$` (the last ID when they blocked) and one of a missing key.
        let mut readers: Vec<RawClient> = (0..2).map(|_| connect(server.addr())).collect();
        for (i, r) in readers.iter_mut().enumerate() {
            r.send_command(&[b"XREAD", b"BLOCK", b"0", b"STREAMS", b"s", b"$"])
                .expect("send");
            await_blocked(&mut admin, i as i64 + 1);
        }
        let mut fresh = connect(server.addr());
        fresh
            .send_command(&[b"XREAD", b"BLOCK", b"0", b"STREAMS", b"new", b"$"])
            .expect("send");
        await_blocked(&mut admin, 3);
        // A write to another key wakes no one.
        admin.call(&["XADD", "other", "1-0", "f", "v"]);
        admin.call(&["XADD", "s", "2-0", "f", "new"]);
        for r in &mut readers {
            assert_eq!(
                r.read_frame().expect("reply"),
                read_reply("s", vec![entry("2-0", &["f", "new"])]),
                "{kind:?}"
            );
        }
        admin.call(&["XADD", "new", "5-0", "a", "b"]);
        assert_eq!(
            fresh.read_frame().expect("reply"),
            read_reply("new", vec![entry("5-0", &["a", "b"])]),
            "{kind:?}"
        );
        await_blocked(&mut admin, 0);
    }
}

#[test]
fn xread_block_times_out_with_a_null_reply() {
    for server in servers() {
        let kind = server.kind();
        let mut c = connect(server.addr());
        c.call(&["XADD", "s", "1-0", "f", "v"]);
        let start = Instant::now();
        let reply = c.call(&["XREAD", "BLOCK", "100", "STREAMS", "s", "$"]);
        assert_eq!(reply, Frame::NullArray, "{kind:?}");
        assert!(start.elapsed() >= Duration::from_millis(90), "{kind:?}");
        let reply = c.call(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "50",
            "STREAMS",
            "s",
            ">",
        ]);
        assert!(matches!(reply, Frame::Error(_)), "{kind:?}: no group yet");
        c.call(&["XGROUP", "CREATE", "s", "g", "$"]);
        let reply = c.call(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "50",
            "STREAMS",
            "s",
            ">",
        ]);
        assert_eq!(reply, Frame::NullArray, "{kind:?}");
        // The connection carries on.
        assert_eq!(c.call(&["XLEN", "s"]), Frame::Integer(1), "{kind:?}");
    }
}

#[test]
fn xreadgroup_block_wakes_one_consumer_per_entry() {
    for server in servers() {
        let kind = server.kind();
        let mut admin = connect(server.addr());
        admin.call(&["XGROUP", "CREATE", "q", "g", "$", "MKSTREAM"]);
        let mut consumers: Vec<RawClient> = (0..2).map(|_| connect(server.addr())).collect();
        for (i, c) in consumers.iter_mut().enumerate() {
            let name = format!("c{i}");
            c.send_command(&[
                b"XREADGROUP",
                b"GROUP",
                b"g",
                name.as_bytes(),
                b"BLOCK",
                b"0",
                b"STREAMS",
                b"q",
                b">",
            ])
            .expect("send");
            await_blocked(&mut admin, i as i64 + 1);
        }
        admin.call(&["XADD", "q", "1-0", "job", "1"]);
        // The first consumer to block gets the entry; the other keeps waiting.
        assert_eq!(
            consumers[0].read_frame().expect("reply"),
            read_reply("q", vec![entry("1-0", &["job", "1"])]),
            "{kind:?}"
        );
        await_blocked(&mut admin, 1);
        admin.call(&["XADD", "q", "2-0", "job", "2"]);
        assert_eq!(
            consumers[1].read_frame().expect("reply"),
            read_reply("q", vec![entry("2-0", &["job", "2"])]),
            "{kind:?}"
        );
        let pending = admin.call(&["XPENDING", "q", "g"]);
        assert_eq!(
            pending,
            array(vec![
                Frame::Integer(2),
                bulk("1-0"),
                bulk("2-0"),
                array(vec![
                    array(vec![bulk("c0"), bulk("1")]),
                    array(vec![bulk("c1"), bulk("1")]),
                ]),
            ]),
            "{kind:?}"
        );
    }
}

/// The values of the `n` field in an `XREADGROUP` reply, with their IDs.
fn batch_entries(reply: &Frame) -> Vec<(Vec<u8>, u64)> {
    let Frame::Array(streams) = reply else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for s in streams {
        let Frame::Array(parts) = s else { continue };
        let Some(Frame::Array(entries)) = parts.get(1) else {
            continue;
        };
        for e in entries {
            let Frame::Array(e) = e else { continue };
            let (Some(Frame::Bulk(id)), Some(Frame::Array(fields))) = (e.first(), e.get(1)) else {
                panic!("malformed entry {e:?}");
            };
            let Some(Frame::Bulk(n)) = fields.get(1) else {
                panic!("entry without a value {fields:?}");
            };
            let n = std::str::from_utf8(n)
                .expect("utf-8")
                .parse()
                .expect("number");
            out.push((id.to_vec(), n));
        }
    }
    out
}

#[test]
fn a_consumer_group_processes_every_message_exactly_once() {
    const MESSAGES: u64 = 100_000;
    const WORKERS: usize = 4;
    let server = ServerProcess::start(candidate(), &[]).expect("server starts");
    let mut admin = connect(server.addr());
    let mut sent = 0;
    while sent < MESSAGES {
        let mut bytes = Vec::new();
        let batch = (MESSAGES - sent).min(5000);
        for i in sent..sent + batch {
            let n = i.to_string();
            bytes.extend_from_slice(&shoal_testkit::encode_command(&[
                b"XADD",
                b"events",
                b"*",
                b"n",
                n.as_bytes(),
            ]));
        }
        admin.send_raw(&bytes).expect("send XADDs");
        for _ in 0..batch {
            let reply = admin.read_frame().expect("XADD reply");
            assert!(matches!(reply, Frame::Bulk(_)), "XADD replied {reply:?}");
        }
        sent += batch;
    }
    assert_eq!(
        admin.call(&["XLEN", "events"]),
        Frame::Integer(MESSAGES as i64)
    );
    assert_eq!(
        admin.call(&["XGROUP", "CREATE", "events", "workers", "0"]),
        Frame::Simple("OK".into())
    );

    let addr = server.addr();
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            std::thread::spawn(move || {
                let mut c = connect(addr);
                let name = format!("consumer-{w}");
                let mut seen = Vec::new();
                loop {
                    let reply = c.call(&[
                        "XREADGROUP",
                        "GROUP",
                        "workers",
                        &name,
                        "COUNT",
                        "100",
                        "BLOCK",
                        "200",
                        "STREAMS",
                        "events",
                        ">",
                    ]);
                    if reply == Frame::NullArray {
                        return seen;
                    }
                    let batch = batch_entries(&reply);
                    assert!(!batch.is_empty(), "unexpected reply {reply:?}");
                    let mut ack: Vec<&[u8]> = vec![b"XACK", b"events", b"workers"];
                    ack.extend(batch.iter().map(|(id, _)| id.as_slice()));
                    let acked = c.command(&ack).expect("XACK");
                    assert_eq!(acked, Frame::Integer(batch.len() as i64));
                    seen.extend(batch.into_iter().map(|(_, n)| n));
                }
            })
        })
        .collect();
    let mut all: Vec<u64> = Vec::new();
    let mut busy = 0;
    for w in workers {
        let seen = w.join().expect("worker finishes");
        busy += usize::from(!seen.is_empty());
        all.extend(seen);
    }
    assert_eq!(all.len() as u64, MESSAGES, "every message delivered once");
    all.sort_unstable();
    assert!(
        all.iter().copied().eq(0..MESSAGES),
        "no message lost or duplicated"
    );
    assert!(busy > 1, "the work was shared");
    let pending = admin.call(&["XPENDING", "events", "workers"]);
    assert_eq!(
        pending,
        array(vec![
            Frame::Integer(0),
            Frame::Null,
            Frame::Null,
            Frame::NullArray
        ])
    );
    let Frame::Array(groups) = admin.call(&["XINFO", "GROUPS", "events"]) else {
        panic!("XINFO GROUPS is an array");
    };
    let Some(Frame::Array(fields)) = groups.first() else {
        panic!("one group");
    };
    // The group has read everything: its lag is zero.
    assert_eq!(fields.get(11), Some(&Frame::Integer(0)), "{fields:?}");
}

/// A small deterministic generator, so a failing sequence can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Sends the same command to both servers and requires the same reply (errors included).
fn same(servers: &mut [RawClient; 2], args: &[String]) {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    let redis = servers[0].command(&args).expect("redis replies");
    let shoal = servers[1].command(&args).expect("shoal replies");
    let shown: Vec<String> = args
        .iter()
        .map(|a| String::from_utf8_lossy(a).into())
        .collect();
    assert_eq!(shoal, redis, "{}", shown.join(" "));
}

fn words(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}

/// Random adds, deletes and trims on small nodes, with `XINFO STREAM` after each: node
/// boundaries, the radix-tree node count, first/last entries and tombstone bookkeeping all
/// match Redis.
#[test]
fn random_deletes_and_trims_keep_xinfo_stream_identical() {
    let servers = servers();
    let mut c = [connect(servers[0].addr()), connect(servers[1].addr())];
    same(
        &mut c,
        &words(&["CONFIG", "SET", "stream-node-max-entries", "2"]),
    );
    let mut rng = Rng(7);
    for _ in 0..150 {
        same(&mut c, &words(&["DEL", "fz"]));
        let mut ids = Vec::new();
        let mut ms = 1u64;
        for _ in 0..=rng.below(40) {
            ms += [0, 1, 2, 255, 256, 65535, 1 << 20, 1 << 33][rng.below(8) as usize];
            let seq = [0, 1, 7, 300][rng.below(4) as usize];
            if ids.last().is_some_and(|&last| (ms, seq) <= last) {
                ms += 1;
            }
            ids.push((ms, seq));
            same(
                &mut c,
                &words(&["XADD", "fz", &format!("{ms}-{seq}"), "f", "v"]),
            );
        }
        for _ in 0..rng.below(30) {
            let (ms, seq) = ids[rng.below(ids.len() as u64) as usize];
            if rng.below(5) < 4 {
                same(&mut c, &words(&["XDEL", "fz", &format!("{ms}-{seq}")]));
            } else {
                let n = rng.below(20).to_string();
                same(
                    &mut c,
                    &words(&["XTRIM", "fz", "MAXLEN", rng.pick(&["~", "="]), &n]),
                );
            }
            same(&mut c, &words(&["XINFO", "STREAM", "fz"]));
        }
    }
    same(
        &mut c,
        &words(&["CONFIG", "SET", "stream-node-max-entries", "100"]),
    );
}

/// Random consumer-group traffic (reads of new entries and of history, acks, claims with fixed
/// delivery times, auto-claims, deletes, trims, SETID, DELCONSUMER) gives Redis's replies, and
/// the pending lists agree (owners and delivery counts; idle times depend on the clock).
#[test]
fn random_consumer_group_traffic_matches_redis() {
    let servers = servers();
    let mut c = [connect(servers[0].addr()), connect(servers[1].addr())];
    same(
        &mut c,
        &words(&["CONFIG", "SET", "stream-node-max-entries", "3"]),
    );
    let mut rng = Rng(11);
    for _ in 0..100 {
        same(&mut c, &words(&["DEL", "gz"]));
        let mut n = 1 + rng.below(25);
        for i in 1..=n {
            same(
                &mut c,
                &words(&["XADD", "gz", &format!("{i}-0"), "f", &i.to_string()]),
            );
        }
        let start = rng.pick(&["0", "$", "3"]);
        same(&mut c, &words(&["XGROUP", "CREATE", "gz", "g", start]));
        let read = (rng.below(7) as i64 - 1).to_string();
        same(
            &mut c,
            &words(&["XGROUP", "CREATE", "gz", "h", "0", "ENTRIESREAD", &read]),
        );
        for _ in 0..40 {
            let g = rng.pick(&["g", "h"]);
            let consumer = rng.pick(&["a", "b", "c"]);
            let id = format!("{}-0", rng.below(n + 3));
            let count = (1 + rng.below(5)).to_string();
            let mut op = match rng.below(12) {
                0..=2 => {
                    let mut op = words(&["XREADGROUP", "GROUP", g, consumer, "COUNT", &count]);
                    if rng.below(5) == 0 {
                        op.push("NOACK".into());
                    }
                    let from = rng.pick(&[">", ">", "0", &id]).to_string();
                    op.extend(words(&["STREAMS", "gz", &from]));
                    op
                }
                3 | 4 => {
                    let mut op = words(&["XACK", "gz", g]);
                    op.extend((0..=rng.below(3)).map(|_| format!("{}-0", rng.below(n + 1))));
                    op
                }
                5 => {
                    let other = format!("{}-0", 1 + rng.below(n));
                    let time = (1 + rng.below(1_000_000)).to_string();
                    let mut op =
                        words(&["XCLAIM", "gz", g, consumer, "0", &id, &other, "TIME", &time]);
                    for opt in ["JUSTID", "FORCE"] {
                        if rng.below(3) == 0 {
                            op.push(opt.into());
                        }
                    }
                    op
                }
                6 => words(&["XAUTOCLAIM", "gz", g, consumer, "0", &id, "COUNT", &count]),
                7 => words(&["XDEL", "gz", &id]),
                8 => words(&["XGROUP", "SETID", "gz", g, rng.pick(&["0", "$", &id])]),
                9 => words(&["XGROUP", "DELCONSUMER", "gz", g, consumer]),
                10 => {
                    n += 1;
                    words(&["XADD", "gz", &format!("{n}-0"), "f", &n.to_string()])
                }
                _ => words(&["XTRIM", "gz", "MAXLEN", &rng.below(n + 1).to_string()]),
            };
            if op[0] == "XAUTOCLAIM" && rng.below(2) == 0 {
                op.push("JUSTID".into());
            }
            same(&mut c, &op);
            same(&mut c, &words(&["XPENDING", "gz", g]));
            same(&mut c, &words(&["XINFO", "GROUPS", "gz"]));
            // Owners and delivery counts of every pending entry (idle times vary).
            let pending: Vec<Vec<Frame>> = c
                .iter_mut()
                .map(|client| {
                    let Frame::Array(items) = client.call(&["XPENDING", "gz", g, "-", "+", "1000"])
                    else {
                        panic!("XPENDING is an array");
                    };
                    items
                        .into_iter()
                        .map(|item| match item {
                            Frame::Array(mut parts) if parts.len() == 4 => {
                                parts.remove(2);
                                Frame::Array(parts)
                            }
                            other => other,
                        })
                        .collect()
                })
                .collect();
            assert_eq!(pending[1], pending[0], "after {}", op.join(" "));
        }
    }
    same(
        &mut c,
        &words(&["CONFIG", "SET", "stream-node-max-entries", "100"]),
    );
}
