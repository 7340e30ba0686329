//! Expiry and eviction: the active cycle reclaims keys nobody touches (with CPU compared to
//! redis-server's), lazy expiry hides expired keys, `noeviction` refuses writes with Redis's
//! `-OOM`, the eviction policies keep memory near `maxmemory` and choose the keys Redis would,
//! a Zipfian cache-aside load gets about Redis's hit ratio, and lowering `maxmemory` at run time
//! evicts without any write. `SHOAL_TEST_AGAINST=redis` runs every test against redis-server
//! (comparative tests then compare two redis-servers), which validates the expectations.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use shoal_testkit::probe::{self, SplitMix64, Zipf};
use shoal_testkit::{encode_command, target_kind, Frame, RawClient, ServerKind, ServerProcess};

/// The server under test: Shoal's binary, unless redirected to Redis.
fn candidate() -> ServerKind {
    target_kind(option_env!("CARGO_BIN_EXE_shoal-server"))
}

fn start(kind: ServerKind, args: &[&str]) -> ServerProcess {
    let name = kind.name();
    ServerProcess::start(kind, args).unwrap_or_else(|e| panic!("start {name}: {e}"))
}

/// How long a test waits for the server to reach a state. It bounds a wait for an event, not
/// the server's speed, so it is generous for a debug build on a loaded two-core machine.
const EVENT_DEADLINE: Duration = Duration::from_secs(30);

/// How often polled conditions are checked.
const POLL: Duration = Duration::from_millis(100);

/// Commands per pipelined write.
const BATCH: usize = 1000;

/// Redis's exact refusal of a write under `noeviction` when memory is over the limit.
const OOM: &str = "-OOM command not allowed when used memory > 'maxmemory'.\r\n";

fn connect(server: &ServerProcess) -> RawClient {
    // Pipelined batches against a debug build can take a while to answer.
    RawClient::connect_with_timeout(server.addr(), Duration::from_secs(60)).expect("connect")
}

/// Sends the encoded commands in one write and returns the raw bytes of each reply.
fn pipeline(client: &mut RawClient, commands: &[Vec<u8>]) -> Vec<Vec<u8>> {
    client
        .send_raw(&commands.concat())
        .expect("send a pipeline");
    (0..commands.len())
        .map(|_| {
            client
                .read_reply()
                .expect("read a pipelined reply")
                .raw
                .to_vec()
        })
        .collect()
}

/// Runs `commands` in pipelined batches and fails on any reply other than `+OK`.
fn pipeline_ok(client: &mut RawClient, commands: impl IntoIterator<Item = Vec<u8>>) {
    let commands: Vec<Vec<u8>> = commands.into_iter().collect();
    for batch in commands.chunks(BATCH) {
        for reply in pipeline(client, batch) {
            assert_eq!(
                String::from_utf8_lossy(&reply),
                "+OK\r\n",
                "a pipelined write was refused"
            );
        }
    }
}

/// Runs writes under an evicting policy in pipelined batches and returns how many were refused
/// with `-OOM`; any other reply than `+OK` or that exact error fails the test. Under an
/// `allkeys-*` policy Redis refuses nothing while keys remain, and
/// `allkeys_lru_never_refuses_a_write` holds Shoal to that; the other eviction tests count
/// refusals instead, so each checks only what it is about.
fn pipeline_evicting(client: &mut RawClient, commands: impl IntoIterator<Item = Vec<u8>>) -> usize {
    let commands: Vec<Vec<u8>> = commands.into_iter().collect();
    let mut refused = 0;
    for batch in commands.chunks(BATCH) {
        for reply in pipeline(client, batch) {
            if reply != b"+OK\r\n" {
                assert_eq!(
                    String::from_utf8_lossy(&reply),
                    OOM,
                    "a write got an unexpected reply"
                );
                refused += 1;
            }
        }
    }
    refused
}

fn set(key: &str, value: &[u8], options: &[&str]) -> Vec<u8> {
    let mut args: Vec<&[u8]> = vec![b"SET", key.as_bytes(), value];
    args.extend(options.iter().map(|o| o.as_bytes()));
    encode_command(&args)
}

fn used_memory(client: &mut RawClient) -> u64 {
    probe::info_u64(client, "memory", "used_memory").expect("INFO memory used_memory")
}

/// `used_memory` once it has stopped moving. A server answers PING before its first background
/// cycles have run, and those may still allocate (an early Shoal grew by several megabytes in
/// them without any data), so a limit derived from the very first reading could sit below the
/// empty server's own usage. Three steady readings in a row span several cycles at `hz 10`.
fn settled_used_memory(client: &mut RawClient) -> u64 {
    let mut readings: Vec<u64> = Vec::new();
    let settled = probe::wait_for(EVENT_DEADLINE, POLL, || {
        readings.push(used_memory(client));
        let last = &readings[readings.len().saturating_sub(3)..];
        let (lo, hi) = (last.iter().min()?, last.iter().max()?);
        (last.len() == 3 && hi - lo <= hi / 100).then_some(*hi)
    });
    settled.unwrap_or_else(|| panic!("used_memory never settled: {readings:?}"))
}

fn stat(client: &mut RawClient, field: &str) -> u64 {
    probe::info_u64(client, "stats", field).expect("INFO stats")
}

fn dbsize(client: &mut RawClient) -> i64 {
    probe::integer(client, &[b"DBSIZE"]).expect("DBSIZE")
}

/// How many of `keys` exist, by one multi-key EXISTS (which does not count as an access for
/// LRU or LFU).
fn count_existing(client: &mut RawClient, keys: &[String]) -> usize {
    let mut args: Vec<&[u8]> = vec![b"EXISTS"];
    args.extend(keys.iter().map(|k| k.as_bytes()));
    probe::integer(client, &args).expect("EXISTS") as usize
}

fn config_set(client: &mut RawClient, name: &str, value: &str) {
    let reply = client
        .command(&[b"CONFIG", b"SET", name.as_bytes(), value.as_bytes()])
        .expect("CONFIG SET");
    assert_eq!(
        reply,
        Frame::Simple("OK".into()),
        "CONFIG SET {name} {value}"
    );
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

/// What one server did while reclaiming keys by active expiry alone.
struct Reclaim {
    /// Server CPU seconds (user + system) from the first possible expiry until DBSIZE was 0.
    cpu: f64,
    /// Wall time from the first possible expiry until DBSIZE was seen at 0.
    elapsed: Duration,
    /// The increase of INFO stats expired_keys.
    expired: u64,
}

/// Loads `keys` keys with TTLs of 300..=800 ms and leaves them alone until DBSIZE is 0.
///
/// The TTLs are given as `PXAT T0 + ttl`, with T0 far enough ahead that the whole load is over
/// before the first key can expire: a `PX` TTL would let a slow loader (a debug build) overlap
/// loading with reclaiming, and its CPU figure would then measure something else than Redis's.
/// The lead is calibrated by timing the first batch (loaded with a far deadline, then
/// overwritten like every other key); a load that still overruns it, on a busy machine, is
/// flushed and repeated with twice the lead.
fn reclaim_untouched(kind: ServerKind, keys: usize) -> Reclaim {
    let server = start(kind, &[]);
    let mut client = connect(&server);
    let mut rng = SplitMix64::new(7);
    let ttls: Vec<u64> = (0..keys).map(|_| 300 + rng.below(501)).collect();
    let (ttls, value) = (&ttls, &[b'v'; 32]);
    let commands = |base: u64, range: std::ops::Range<usize>| {
        range.map(move |i| {
            let at = (base + ttls[i]).to_string();
            set(&format!("key:{i}"), value, &["PXAT", &at])
        })
    };
    let calibration = Instant::now();
    pipeline_ok(&mut client, commands(unix_ms() + 600_000, 0..BATCH));
    let mut lead = calibration.elapsed() * (3 * keys / BATCH) as u32 + Duration::from_secs(1);
    let mut attempts = 0;
    let (t0, expired_before) = loop {
        attempts += 1;
        let t0 = unix_ms() + lead.as_millis() as u64;
        pipeline_ok(&mut client, commands(t0, 0..keys));
        let expired_before = stat(&mut client, "expired_keys");
        let loaded = dbsize(&mut client);
        if unix_ms() < t0 {
            assert_eq!(loaded, keys as i64, "DBSIZE after the load");
            break (t0, expired_before);
        }
        assert!(
            attempts < 4,
            "{}: loading {keys} keys kept overrunning a lead of {lead:?}",
            server.kind().name()
        );
        assert_eq!(
            client.command(&[b"FLUSHALL"]).unwrap(),
            Frame::Simple("OK".into())
        );
        lead *= 2;
    };
    // Waiting for T0 is waiting for a known instant, not a guess at how long something takes.
    std::thread::sleep(Duration::from_millis(t0.saturating_sub(unix_ms())));
    let started = Instant::now();
    let cpu_before = probe::cpu_seconds(server.pid()).expect("read /proc/<pid>/stat");
    // DBSIZE counts expired keys that are still present and touches no key, so polling it
    // leaves all the work to the active cycle. The deadline is far beyond the 800 ms TTLs.
    let mut left = keys as i64;
    let done = probe::wait_for(EVENT_DEADLINE, POLL, || {
        left = dbsize(&mut client);
        (left == 0).then_some(())
    });
    let elapsed = started.elapsed();
    let cpu = probe::cpu_seconds(server.pid()).expect("read /proc/<pid>/stat") - cpu_before;
    assert!(
        done.is_some(),
        "{}: {left} of {keys} keys were still present {EVENT_DEADLINE:?} after their TTLs",
        server.kind().name()
    );
    let expired = stat(&mut client, "expired_keys") - expired_before;
    Reclaim {
        cpu,
        elapsed,
        expired,
    }
}

/// A bounded CI version of bench/expiry.py, which loads one million keys, alternates servers
/// over several rounds and reports medians; this test loads 200,000 once per server.
#[test]
fn active_expiry_reclaims_untouched_keys_with_bounded_cpu() {
    const KEYS: usize = 200_000;
    let shoal = reclaim_untouched(candidate(), KEYS);
    let redis = reclaim_untouched(ServerKind::Redis, KEYS);
    eprintln!(
        "active expiry of {KEYS} keys: {} used {:.2} s CPU over {:.2} s, redis {:.2} s CPU over \
         {:.2} s",
        candidate().name(),
        shoal.cpu,
        shoal.elapsed.as_secs_f64(),
        redis.cpu,
        redis.elapsed.as_secs_f64()
    );
    assert_eq!(shoal.expired, KEYS as u64, "expired_keys");
    assert_eq!(redis.expired, KEYS as u64, "redis expired_keys");
    // CPU time is counted in 10 ms ticks and Redis needs little, so its figure is floored at
    // 100 ms to keep the ratio meaningful. The factor is lenient on purpose: this is a debug
    // build against a release Redis (measured on the 2-vCPU CI machine: Shoal 0.55-0.75 s,
    // Redis 0.12-0.24 s, ratios 2.6-6.2); the benchmark measures the real ratio of release
    // builds. A cycle that spins instead of expiring would still exceed it many times over.
    let ratio = shoal.cpu / redis.cpu.max(0.1);
    assert!(
        ratio < 10.0,
        "reclaiming took {:.2} s of CPU against Redis's {:.2} s (ratio {ratio:.1})",
        shoal.cpu,
        redis.cpu
    );
}

#[test]
fn lazy_expiry_hides_a_key_once_its_ttl_passes() {
    let server = start(candidate(), &[]);
    let mut client = connect(&server);
    assert_eq!(
        client.command(&[b"SET", b"k", b"v", b"PX", b"50"]).unwrap(),
        Frame::Simple("OK".into())
    );
    let pttl = probe::integer(&mut client, &[b"PTTL", b"k"]).unwrap();
    assert!(
        (0..=50).contains(&pttl),
        "PTTL right after SET PX 50: {pttl}"
    );
    // PTTL reads the key, so once the TTL has passed the read itself finds it expired.
    let mut last = pttl;
    let gone = probe::wait_for(EVENT_DEADLINE, Duration::from_millis(10), || {
        last = probe::integer(&mut client, &[b"PTTL", b"k"]).unwrap();
        (last == -2).then_some(())
    });
    assert!(gone.is_some(), "PTTL stayed at {last}");
    assert_eq!(client.command(&[b"GET", b"k"]).unwrap(), Frame::Null);
    assert_eq!(probe::integer(&mut client, &[b"EXISTS", b"k"]).unwrap(), 0);
    assert_eq!(dbsize(&mut client), 0);
    assert_eq!(stat(&mut client, "expired_keys"), 1);
}

#[test]
fn noeviction_refuses_writes_with_oom_once_full() {
    let server = start(candidate(), &["--maxmemory-policy", "noeviction"]);
    let mut client = connect(&server);
    // The limit is set relative to the empty server's own usage rather than as an absolute
    // `--maxmemory 2mb`: an empty Shoal already reports several times 2 MB (its slot tables),
    // an empty Redis under 1 MB, and the test is about the 2 MB of headroom.
    let baseline = settled_used_memory(&mut client);
    config_set(
        &mut client,
        "maxmemory",
        &(baseline + 2 * 1024 * 1024).to_string(),
    );
    let value = vec![b'x'; 1024];
    let mut stored = 0usize;
    let mut refused = 0usize;
    while refused == 0 {
        assert!(stored < 100_000, "1 KB values never hit a 2 MB limit");
        let batch: Vec<Vec<u8>> = (stored..stored + 100)
            .map(|i| set(&format!("key:{i}"), &value, &[]))
            .collect();
        for reply in pipeline(&mut client, &batch) {
            if reply == b"+OK\r\n" && refused == 0 {
                stored += 1;
            } else {
                assert_eq!(String::from_utf8_lossy(&reply), OOM);
                refused += 1;
            }
        }
    }
    eprintln!(
        "noeviction: {stored} values of 1 KB fit in 2 MB over a baseline of {:.1} MB",
        baseline as f64 / 1e6
    );
    assert!(
        (500..4000).contains(&stored),
        "{stored} values of 1 KB stored under 2 MB of headroom"
    );
    // Reads still work, and so does DEL, which frees memory.
    assert_eq!(
        client.command(&[b"GET", b"key:0"]).unwrap(),
        Frame::Bulk(value.clone().into())
    );
    assert_eq!(dbsize(&mut client), stored as i64);
    let doomed: Vec<String> = (0..stored / 2).map(|i| format!("key:{i}")).collect();
    let mut del: Vec<&[u8]> = vec![b"DEL"];
    del.extend(doomed.iter().map(|k| k.as_bytes()));
    assert_eq!(
        probe::integer(&mut client, &del).unwrap(),
        doomed.len() as i64
    );
    let accepted = probe::wait_for(EVENT_DEADLINE, POLL, || {
        let reply = client.command_raw(&[b"SET", b"after-del", &value]).unwrap();
        (reply.raw.as_ref() == b"+OK\r\n").then_some(())
    });
    assert!(
        accepted.is_some(),
        "writes stayed refused after DEL freed memory"
    );
}

#[test]
fn allkeys_lru_keeps_memory_near_maxmemory() {
    const MAXMEMORY: u64 = 20 * 1024 * 1024;
    const KEYS: usize = 100_000;
    let server = start(
        candidate(),
        &["--maxmemory", "20mb", "--maxmemory-policy", "allkeys-lru"],
    );
    let mut client = connect(&server);
    let value = vec![b'x'; 500];
    // 100,000 values of 500 bytes are about 50 MB, two and a half times the limit.
    let refused = pipeline_evicting(
        &mut client,
        (0..KEYS).map(|i| set(&format!("key:{i}"), &value, &[])),
    );
    // The background cycle may still be evicting after the last write (writes are not refused
    // while eviction catches up), so read the key count and the eviction counter once they are
    // consistent: the counter unchanged on both sides of DBSIZE.
    let (keys, evicted) = probe::wait_for(EVENT_DEADLINE, POLL, || {
        let before = stat(&mut client, "evicted_keys");
        let keys = dbsize(&mut client) as u64;
        let after = stat(&mut client, "evicted_keys");
        (before == after).then_some((keys, after))
    })
    .expect("eviction settles");
    let used = used_memory(&mut client);
    eprintln!(
        "allkeys-lru: used_memory {:.1} MB of a 20 MB limit, {keys} keys, {evicted} evicted, \
         {refused} writes refused",
        used as f64 / 1e6
    );
    assert!(
        used <= MAXMEMORY + MAXMEMORY / 4,
        "used_memory {used} is more than 25% over maxmemory {MAXMEMORY}"
    );
    assert!(evicted > 0, "nothing was evicted");
    assert_eq!(
        keys + evicted + refused as u64,
        KEYS as u64,
        "every key is present, evicted or was refused"
    );
}

#[test]
fn allkeys_lru_never_refuses_a_write() {
    // Small values written fast make the used-memory figure jump by more than one eviction
    // call's share between two background calibrations. Redis takes all 300,000 writes and lets
    // eviction catch up; a server that answered -OOM while keys can still be evicted fails here.
    let server = start(
        candidate(),
        &["--maxmemory", "20mb", "--maxmemory-policy", "allkeys-lru"],
    );
    let mut client = connect(&server);
    let value = vec![b'x'; 100];
    let refused = pipeline_evicting(
        &mut client,
        (0..300_000).map(|i| set(&format!("key:{i}"), &value, &[])),
    );
    assert_eq!(refused, 0, "writes refused under allkeys-lru");
    assert!(stat(&mut client, "evicted_keys") > 0, "nothing was evicted");
}

/// The outcome of one cache-aside run.
struct HitRatio {
    hits: u64,
    misses: u64,
    refused: usize,
}

impl HitRatio {
    fn ratio(&self) -> f64 {
        self.hits as f64 / (self.hits + self.misses) as f64
    }
}

/// The value cached for key number `k`: its number, then padding to `size` bytes, so a hit can
/// be checked to hold the right value.
fn cached_value(k: usize, size: usize) -> Vec<u8> {
    let mut v = format!("{k:010}").into_bytes();
    v.resize(size, b'x');
    v
}

/// The workload of bench/eviction.py, scaled down: ranks drawn from Zipf(1) over `keyspace`
/// keys and mapped to key numbers through a seeded permutation, so popularity is unrelated to
/// the preload order. Seeded, so both servers get the same sequence.
fn zipf_sequence(keyspace: usize, ops: usize) -> Vec<usize> {
    let mut rng = SplitMix64::new(42);
    let zipf = Zipf::new(keyspace, 1.0);
    let mut permutation: Vec<usize> = (0..keyspace).collect();
    rng.shuffle(&mut permutation);
    (0..ops)
        .map(|_| permutation[zipf.sample(&mut rng)])
        .collect()
}

/// Cache-aside over `sequence` on a fresh server: each batch is a pipeline of GETs, then one
/// pipeline of SETs for the batch's distinct misses.
fn cache_aside(kind: ServerKind, args: &[&str], keyspace: usize, sequence: &[usize]) -> HitRatio {
    const VALUE_SIZE: usize = 200;
    let server = start(kind, args);
    let mut client = connect(&server);
    // Every key is loaded once first (in key-number order), so the cache is full and evicting
    // before the measured operations start.
    let mut refused = pipeline_evicting(
        &mut client,
        (0..keyspace).map(|k| set(&format!("key:{k}"), &cached_value(k, VALUE_SIZE), &[])),
    );
    let mut hits = 0;
    let mut misses = 0;
    for batch in sequence.chunks(BATCH) {
        let gets: Vec<Vec<u8>> = batch
            .iter()
            .map(|k| encode_command(&[b"GET", format!("key:{k}").as_bytes()]))
            .collect();
        let mut missed = Vec::new();
        for (&k, reply) in batch.iter().zip(pipeline(&mut client, &gets)) {
            if reply == b"$-1\r\n" {
                misses += 1;
                if !missed.contains(&k) {
                    missed.push(k);
                }
            } else {
                // A hit must hold this key's own value.
                let expected = encode_command(&[&cached_value(k, VALUE_SIZE)]);
                assert!(
                    expected.ends_with(&reply),
                    "GET key:{k} returned {:?}",
                    String::from_utf8_lossy(&reply)
                );
                hits += 1;
            }
        }
        refused += pipeline_evicting(
            &mut client,
            missed
                .iter()
                .map(|&k| set(&format!("key:{k}"), &cached_value(k, VALUE_SIZE), &[])),
        );
    }
    HitRatio {
        hits,
        misses,
        refused,
    }
}

/// A bounded CI version of bench/eviction.py (which runs 2 M keys under `maxmemory 100mb` and
/// holds Shoal to 2 points of Redis's hit ratio): 200,000 keys of 200 bytes, 200,000
/// operations, both servers under `--maxmemory 20mb`. Two redis-servers differ by up to about
/// 1.5 points here (eviction samples at random), hence the 5-point tolerance.
#[test]
fn zipf_hit_ratio_under_allkeys_lru_is_close_to_redis() {
    const KEYSPACE: usize = 200_000;
    const OPS: usize = 200_000;
    let args = ["--maxmemory", "20mb", "--maxmemory-policy", "allkeys-lru"];
    let sequence = zipf_sequence(KEYSPACE, OPS);
    let shoal = cache_aside(candidate(), &args, KEYSPACE, &sequence);
    let redis = cache_aside(ServerKind::Redis, &args, KEYSPACE, &sequence);
    eprintln!(
        "zipf cache-aside: hit ratio {} {:.2}% ({} hits, {} misses, {} writes refused), redis \
         {:.2}% ({} hits, {} misses, {} writes refused)",
        candidate().name(),
        shoal.ratio() * 100.0,
        shoal.hits,
        shoal.misses,
        shoal.refused,
        redis.ratio() * 100.0,
        redis.hits,
        redis.misses,
        redis.refused
    );
    let gap = (shoal.ratio() - redis.ratio()) * 100.0;
    assert!(gap.abs() <= 5.0, "hit ratios differ by {gap:.2} points");
}

/// Fills `prefix:0..n` with values of `size` bytes, each with the given SET options, under an
/// evicting policy; returns how many writes were refused.
fn fill(
    client: &mut RawClient,
    prefix: &str,
    n: usize,
    size: usize,
    options: impl Fn(usize) -> Vec<String>,
) -> usize {
    let value = vec![b'x'; size];
    pipeline_evicting(
        client,
        (0..n).map(|i| {
            let opts = options(i);
            let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
            set(&format!("{prefix}:{i}"), &value, &opts)
        }),
    )
}

/// Sets `maxmemory` to the current usage plus `headroom` bytes.
fn limit_to_current_plus(client: &mut RawClient, headroom: u64) {
    // A settled reading: the background cycle recalibrates `used_memory` against the allocator
    // ten times a second, and a limit derived from a reading taken just before a correction
    // leaves less headroom than asked for.
    let used = settled_used_memory(client);
    config_set(client, "maxmemory", &(used + headroom).to_string());
}

#[test]
fn volatile_ttl_evicts_the_soonest_expiring_keys_first() {
    const VOLATILE: usize = 20_000;
    const PERSISTENT: usize = 12_000;
    const SIZE: usize = 256;
    let server = start(candidate(), &["--maxmemory-policy", "volatile-ttl"]);
    let mut client = connect(&server);
    settled_used_memory(&mut client);
    // Key i expires 10 s after key i - 1; all are hours away, so none expires in the test.
    let refused = fill(&mut client, "ttl", VOLATILE, SIZE, |i| {
        vec!["EX".into(), (10_000 + 10 * i).to_string()]
    });
    assert_eq!(refused, 0, "no limit is set yet");
    limit_to_current_plus(&mut client, 256 * 1024);
    // Keys without a TTL must push out more than half of the volatile ones, and under
    // volatile-ttl they are never candidates themselves. The keyspace is large enough that
    // each sample sees several keys: with a few thousand keys Shoal's per-stripe samples hold
    // only one or two each and its order is visibly rougher than Redis's.
    let refused = fill(&mut client, "persistent", PERSISTENT, SIZE, |_| Vec::new());
    let persistent: Vec<String> = (0..PERSISTENT).map(|i| format!("persistent:{i}")).collect();
    assert_eq!(
        count_existing(&mut client, &persistent) + refused,
        PERSISTENT,
        "a key without a TTL was evicted"
    );
    let quarter = VOLATILE / 4;
    let survivors: Vec<usize> = (0..4)
        .map(|q| {
            let keys: Vec<String> = (q * quarter..(q + 1) * quarter)
                .map(|i| format!("ttl:{i}"))
                .collect();
            count_existing(&mut client, &keys)
        })
        .collect();
    eprintln!(
        "volatile-ttl: survivors per quarter of {quarter} keys, soonest first: {survivors:?}, \
         {refused} writes refused"
    );
    assert!(
        survivors.iter().sum::<usize>() < VOLATILE * 3 / 4,
        "too little was evicted to judge the order: {survivors:?}"
    );
    // Sampling only approximates the order, so the test asks for a clear skew, not perfection.
    assert!(
        survivors[0] <= quarter / 5,
        "the soonest-expiring quarter mostly survived: {survivors:?}"
    );
    assert!(
        survivors[3] >= quarter * 4 / 5,
        "the latest-expiring quarter was mostly evicted: {survivors:?}"
    );
}

#[test]
fn allkeys_lfu_keeps_frequently_read_keys() {
    const HOT: usize = 200;
    const COLD: usize = 5000;
    const VALUE: usize = 4096;
    let server = start(candidate(), &["--maxmemory-policy", "allkeys-lfu"]);
    let mut client = connect(&server);
    settled_used_memory(&mut client);
    // Values of a few KiB keep the allocator's own noise (thread caches, the first table of
    // each slot, the background recalibration of `used_memory`) small next to the headroom,
    // so the number of cold keys left over does not swing towards zero between runs.
    fill(&mut client, "hot", HOT, VALUE, |_| Vec::new());
    let hot: Vec<String> = (0..HOT).map(|i| format!("hot:{i}")).collect();
    // A hundred reads lift each hot key's logarithmic counter well above the initial value of
    // a key that is written once and never read.
    let gets: Vec<Vec<u8>> = hot
        .iter()
        .map(|k| encode_command(&[b"GET", k.as_bytes()]))
        .collect();
    for _ in 0..100 {
        pipeline(&mut client, &gets);
    }
    limit_to_current_plus(&mut client, 4 * 1024 * 1024);
    let refused = fill(&mut client, "cold", COLD, VALUE, |_| Vec::new());
    let cold: Vec<String> = (0..COLD).map(|i| format!("cold:{i}")).collect();
    let hot_left = count_existing(&mut client, &hot);
    let cold_left = count_existing(&mut client, &cold);
    eprintln!(
        "allkeys-lfu: {hot_left} of {HOT} hot keys and {cold_left} of {COLD} cold keys left, \
         {refused} writes refused"
    );
    assert!(
        cold_left < COLD / 2,
        "too little was evicted to judge: {cold_left} of {COLD} cold keys left"
    );
    assert!(
        hot_left >= HOT * 9 / 10,
        "only {hot_left} of {HOT} frequently read keys survived"
    );
}

#[test]
fn object_freq_needs_an_lfu_policy_like_redis() {
    let redis = start(ServerKind::Redis, &[]);
    let server = start(candidate(), &[]);
    let mut clients = [connect(&redis), connect(&server)];
    // Each step runs on both servers and the raw replies must be identical. The counter of a
    // key created under LFU starts at 5 and its first read always increments it, so the
    // integers are deterministic too.
    let steps: &[&[&str]] = &[
        &["SET", "k", "v"],
        &["OBJECT", "FREQ", "k"],
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
        &["OBJECT", "FREQ", "k"],
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"],
        &["SET", "f", "v"],
        &["OBJECT", "FREQ", "f"],
        &["GET", "f"],
        &["OBJECT", "FREQ", "f"],
        &["OBJECT", "FREQ", "missing"],
        &["OBJECT", "FREQ"],
        &["CONFIG", "SET", "maxmemory-policy", "volatile-lfu"],
        &["OBJECT", "FREQ", "f"],
        &["CONFIG", "SET", "maxmemory-policy", "volatile-ttl"],
        &["OBJECT", "FREQ", "f"],
    ];
    let mut saw_error = false;
    for step in steps {
        let args: Vec<&[u8]> = step.iter().map(|a| a.as_bytes()).collect();
        let [expected, got] = clients
            .each_mut()
            .map(|c| c.command_raw(&args).expect("command"));
        saw_error |= matches!(expected.frame, Frame::Error(_));
        assert_eq!(
            String::from_utf8_lossy(&got.raw),
            String::from_utf8_lossy(&expected.raw),
            "{}",
            step.join(" ")
        );
    }
    assert!(saw_error, "the steps should include Redis's refusal");
}

#[test]
fn lowering_maxmemory_at_run_time_evicts_without_any_write() {
    const KEYS: usize = 20_000;
    let server = start(candidate(), &["--maxmemory-policy", "allkeys-lru"]);
    let mut client = connect(&server);
    let baseline = settled_used_memory(&mut client);
    pipeline_ok(
        &mut client,
        (0..KEYS).map(|i| set(&format!("key:{i}"), &[b'x'; 1024], &[])),
    );
    let loaded = used_memory(&mut client);
    let limit = baseline + (loaded - baseline) / 2;
    config_set(&mut client, "maxmemory", &limit.to_string());
    // From here on only INFO is sent: whatever eviction happens is the server's own doing,
    // either in CONFIG SET itself or in its background cycle. Redis evicts to just under the
    // limit and then reports a little more, because the buffers of the INFO reply itself count
    // in used_memory; 64 KB of slack covers that.
    let mut used = loaded;
    let reached = probe::wait_for(EVENT_DEADLINE, POLL, || {
        used = used_memory(&mut client);
        (used <= limit + 64 * 1024).then_some(())
    });
    // The background cycle may evict a few more keys while we read, so take the key count and
    // the eviction counter only when the counter is the same on both sides of DBSIZE.
    let (keys, evicted) = probe::wait_for(EVENT_DEADLINE, POLL, || {
        let before = stat(&mut client, "evicted_keys");
        let keys = dbsize(&mut client) as u64;
        let after = stat(&mut client, "evicted_keys");
        (before == after).then_some((keys, after))
    })
    .expect("eviction settles");
    eprintln!(
        "CONFIG SET maxmemory: {:.1} MB loaded, limit {:.1} MB, now {:.1} MB, {evicted} evicted",
        loaded as f64 / 1e6,
        limit as f64 / 1e6,
        used as f64 / 1e6
    );
    assert!(
        reached.is_some(),
        "used_memory stayed at {used}, above the new maxmemory {limit}"
    );
    assert!(evicted > 0, "nothing was evicted");
    assert_eq!(keys + evicted, KEYS as u64);
}

/// Eviction and expiry treat every collection like a string: under `allkeys-lru` a load of
/// hashes, lists, sets, sorted sets and streams stays near `maxmemory` (their sizes are counted
/// as they grow), and a collection given a past expiry is gone.
#[test]
fn eviction_and_expiry_cover_every_collection_type() {
    const MAXMEMORY: u64 = 20 * 1024 * 1024;
    const KEYS: usize = 25_000;
    let server = start(
        candidate(),
        &["--maxmemory", "20mb", "--maxmemory-policy", "allkeys-lru"],
    );
    let mut client = connect(&server);
    let field = "x".repeat(40);
    // Five types, each key about 2 KB: about 50 MB written, two and a half times the limit.
    let commands = (0..KEYS).map(|i| {
        let key = format!("c:{i}");
        let mut args: Vec<String> = match i % 5 {
            0 => vec!["HSET".into(), key],
            1 => vec!["RPUSH".into(), key],
            2 => vec!["SADD".into(), key],
            3 => vec!["ZADD".into(), key],
            _ => vec!["XADD".into(), key, "*".into()],
        };
        for j in 0..40 {
            match i % 5 {
                0 | 4 => args.extend([format!("f{j}"), field.clone()]),
                3 => args.extend([j.to_string(), format!("{field}{j}")]),
                _ => args.push(format!("{field}{j}")),
            }
        }
        let words: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        encode_command(&words)
    });
    // Replies are counts and stream IDs; the only error allowed is `-OOM`.
    let commands: Vec<Vec<u8>> = commands.collect();
    let mut refused = 0u64;
    for batch in commands.chunks(BATCH) {
        for reply in pipeline(&mut client, batch) {
            if reply.starts_with(b"-") {
                assert_eq!(String::from_utf8_lossy(&reply), OOM, "unexpected error");
                refused += 1;
            }
        }
    }
    let (keys, evicted) = probe::wait_for(EVENT_DEADLINE, POLL, || {
        let before = stat(&mut client, "evicted_keys");
        let keys = dbsize(&mut client) as u64;
        let after = stat(&mut client, "evicted_keys");
        (before == after).then_some((keys, after))
    })
    .expect("eviction settles");
    let used = used_memory(&mut client);
    assert!(
        used <= MAXMEMORY + MAXMEMORY / 4,
        "used_memory {used} is more than 25% over maxmemory {MAXMEMORY}"
    );
    assert!(evicted > 0, "nothing was evicted");
    assert_eq!(keys + evicted + refused, KEYS as u64);

    config_set(&mut client, "maxmemory", "0");
    for (kind, setup) in [
        ("hash", vec!["HSET", "gone:h", "f", "v"]),
        ("list", vec!["RPUSH", "gone:l", "a"]),
        ("set", vec!["SADD", "gone:s", "a"]),
        ("zset", vec!["ZADD", "gone:z", "1", "a"]),
        ("stream", vec!["XADD", "gone:x", "*", "f", "v"]),
    ] {
        client.call(&setup);
        let key = setup[1];
        assert_eq!(client.call(&["TYPE", key]), Frame::Simple(kind.into()));
        assert_eq!(client.call(&["PEXPIREAT", key, "1"]), Frame::Integer(1));
        assert_eq!(client.call(&["EXISTS", key]), Frame::Integer(0), "{kind}");
    }
}
