//! HyperLogLogs against a real redis-server 7.0, at sizes the case files cannot reach: the same
//! pseudo-random elements go to both servers and the raw bytes of every key (`GET`) and every
//! `PFCOUNT` must be identical, from a handful of elements up to a hundred thousand (where Ertl's
//! estimator works on well-filled registers), through the sparse-to-dense promotion at several
//! `hll-sparse-max-bytes` settings, and across `PFMERGE` and multi-key `PFCOUNT`.
//! `SHOAL_TEST_AGAINST=redis` runs the Shoal side against a second redis-server.

use std::time::Duration;

use shoal_testkit::probe::SplitMix64;
use shoal_testkit::{
    encode_command, render, target_kind, Frame, RawClient, ServerKind, ServerProcess,
};

/// The server under test: Shoal's binary, unless redirected to Redis.
fn candidate() -> ServerKind {
    target_kind(option_env!("CARGO_BIN_EXE_shoal-server"))
}

fn start(kind: ServerKind) -> ServerProcess {
    let name = kind.name();
    ServerProcess::start(kind, &[]).unwrap_or_else(|e| panic!("start {name}: {e}"))
}

/// A reference server and the server under test, with one client each.
struct Pair {
    _servers: [ServerProcess; 2],
    clients: [RawClient; 2],
}

impl Pair {
    fn start() -> Pair {
        let servers = [start(ServerKind::Redis), start(candidate())];
        // A debug build answering a large pipelined PFADD can take a while.
        let clients = servers.each_ref().map(|s| {
            RawClient::connect_with_timeout(s.addr(), Duration::from_secs(60)).expect("connect")
        });
        Pair {
            _servers: servers,
            clients,
        }
    }

    /// Runs a command on both servers and requires byte-identical replies; returns Redis's.
    fn same(&mut self, args: &[&[u8]]) -> Frame {
        let [redis, other] = self
            .clients
            .each_mut()
            .map(|c| c.command_raw(args).expect("reply"));
        assert_eq!(
            redis.raw,
            other.raw,
            "{}: redis {} vs candidate {}",
            render_args(args),
            render(&redis.frame),
            render(&other.frame)
        );
        redis.frame
    }

    /// Sends many commands to both servers in one write each and requires identical replies.
    fn same_pipelined(&mut self, commands: &[Vec<Vec<u8>>]) {
        let bytes: Vec<u8> = commands
            .iter()
            .flat_map(|c| encode_command(&c.iter().map(Vec::as_slice).collect::<Vec<_>>()))
            .collect();
        for c in &mut self.clients {
            c.send_raw(&bytes).expect("send a pipeline");
        }
        for command in commands {
            let [redis, other] = self
                .clients
                .each_mut()
                .map(|c| c.read_reply().expect("read a pipelined reply"));
            assert_eq!(
                redis.raw,
                other.raw,
                "{}",
                render_args(&command.iter().map(Vec::as_slice).collect::<Vec<_>>())
            );
        }
    }
}

fn render_args(args: &[&[u8]]) -> String {
    let shown: Vec<String> = args
        .iter()
        .take(4)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    format!(
        "{}{}",
        shown.join(" "),
        if args.len() > 4 { " ..." } else { "" }
    )
}

/// One PFADD of `n` pseudo-random elements of varied lengths (binary bytes included).
fn pfadd(key: &str, rng: &mut SplitMix64, n: usize) -> Vec<Vec<u8>> {
    let mut args = vec![b"PFADD".to_vec(), key.as_bytes().to_vec()];
    for _ in 0..n {
        let len = 1 + rng.below(24) as usize;
        args.push((0..len).map(|_| rng.below(256) as u8).collect());
    }
    args
}

#[test]
fn random_elements_give_redis_bytes_and_counts_at_every_size() {
    let mut pair = Pair::start();
    let mut rng = SplitMix64::new(0x5eed);
    let mut added = 0usize;
    for target in [1, 5, 40, 300, 1000, 1500, 2500, 5000, 20_000, 100_000] {
        let mut batch = Vec::new();
        while added < target {
            let n = (target - added).min(500);
            batch.push(pfadd("big", &mut rng, n));
            added += n;
        }
        pair.same_pipelined(&batch);
        pair.same(&[b"GET", b"big"]);
        pair.same(&[b"PFCOUNT", b"big"]);
        // The refreshed cache is part of the value too.
        pair.same(&[b"GET", b"big"]);
    }
    let Frame::Integer(estimate) = pair.same(&[b"PFCOUNT", b"big"]) else {
        panic!("PFCOUNT answers an integer");
    };
    assert!((95_000..105_000).contains(&estimate), "{estimate}");
}

#[test]
fn merges_and_multi_key_counts_match_redis() {
    let mut pair = Pair::start();
    let mut rng = SplitMix64::new(7);
    // Keys of different sizes: two sparse ones, one near the limit, one dense.
    let sizes = [("k1", 30), ("k2", 400), ("k3", 1600), ("k4", 8000)];
    let mut batch = Vec::new();
    for (key, n) in sizes {
        let mut left = n;
        while left > 0 {
            let step = left.min(500);
            batch.push(pfadd(key, &mut rng, step));
            left -= step;
        }
    }
    pair.same_pipelined(&batch);
    let keys: Vec<&[u8]> = vec![b"k1", b"k2", b"k3", b"k4"];
    for i in 0..keys.len() {
        for j in i..keys.len() {
            pair.same(&[b"PFCOUNT", keys[i], keys[j]]);
            let dest = format!("m{i}{j}");
            pair.same(&[b"PFMERGE", dest.as_bytes(), keys[i], keys[j]]);
            pair.same(&[b"GET", dest.as_bytes()]);
            pair.same(&[b"PFCOUNT", dest.as_bytes()]);
        }
    }
    pair.same(&[b"PFCOUNT", b"k1", b"k2", b"k3", b"k4", b"missing"]);
    // Merging into an existing sparse key walks every source register through the sparse
    // update path, promoting it on the way.
    pair.same(&[b"PFMERGE", b"k1", b"k2", b"k3"]);
    pair.same(&[b"GET", b"k1"]);
    pair.same(&[b"PFMERGE", b"k2", b"k4"]);
    pair.same(&[b"GET", b"k2"]);
    pair.same(&[b"PFCOUNT", b"k1", b"k2"]);
}

#[test]
fn promotion_follows_hll_sparse_max_bytes() {
    let mut pair = Pair::start();
    for limit in ["0", "20", "100", "1000", "6000", "20000"] {
        pair.same(&[b"CONFIG", b"SET", b"hll-sparse-max-bytes", limit.as_bytes()]);
        pair.same(&[b"CONFIG", b"GET", b"hll-sparse-max-bytes"]);
        let key = format!("limit{limit}");
        let mut rng = SplitMix64::new(limit.len() as u64);
        // Small steps, so the promotion happens inside a PFADD of a few elements.
        for _ in 0..80 {
            let batch = vec![pfadd(&key, &mut rng, 40)];
            pair.same_pipelined(&batch);
            pair.same(&[b"STRLEN", key.as_bytes()]);
            pair.same(&[b"GET", key.as_bytes()]);
        }
        pair.same(&[b"PFCOUNT", key.as_bytes()]);
        pair.same(&[b"PFMERGE", b"merged", key.as_bytes()]);
        pair.same(&[b"GET", b"merged"]);
    }
}
