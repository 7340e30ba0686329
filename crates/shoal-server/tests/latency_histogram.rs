//! `LATENCY HISTOGRAM` and `INFO latencystats` against a real redis-server 7.0: the same
//! commands sent to both must give the same command names, call counts and bucket layout (the
//! durations themselves differ, so bucket positions are checked against Redis's layout rather
//! than compared).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use shoal_testkit::{target_kind, Frame, RawClient, ServerKind, ServerProcess};

const TIMEOUT: Duration = Duration::from_secs(30);

fn start(kind: ServerKind) -> ServerProcess {
    ServerProcess::start(kind, &[]).expect("server starts")
}

fn connect(addr: SocketAddr) -> RawClient {
    RawClient::connect_with_timeout(addr, TIMEOUT).expect("connect")
}

fn text(frame: &Frame) -> String {
    match frame {
        Frame::Bulk(b) | Frame::Simple(b) => String::from_utf8_lossy(b).into_owned(),
        Frame::Verbatim { text, .. } => String::from_utf8_lossy(text).into_owned(),
        other => panic!("expected a string, got {other:?}"),
    }
}

fn integer(frame: &Frame) -> u64 {
    match frame {
        Frame::Integer(n) => u64::try_from(*n).expect("non-negative"),
        other => panic!("expected an integer, got {other:?}"),
    }
}

fn pairs(frame: &Frame) -> &[(Frame, Frame)] {
    match frame {
        Frame::Map(p) => p,
        other => panic!("expected a map, got {other:?}"),
    }
}

/// One command's entry: calls and (bucket in microseconds, cumulative calls).
type Cdf = (u64, Vec<(u64, u64)>);

/// Parses a RESP3 `LATENCY HISTOGRAM` reply into (command, calls, distribution), in reply order.
fn histogram(frame: &Frame) -> Vec<(String, Cdf)> {
    pairs(frame)
        .iter()
        .map(|(name, body)| {
            let body = pairs(body);
            assert_eq!(text(&body[0].0), "calls");
            assert_eq!(text(&body[1].0), "histogram_usec");
            let buckets = pairs(&body[1].1)
                .iter()
                .map(|(k, v)| (integer(k), integer(v)))
                .collect();
            (text(name), (integer(&body[0].1), buckets))
        })
        .collect()
}

/// The bucket labels Redis can report: for each power of two from 1024 ns, the highest value
/// HdrHistogram (2 significant digits) files with it, in microseconds.
fn redis_bucket_labels() -> Vec<u64> {
    (0..21)
        .map(|k| {
            let level: u64 = 1024 << k;
            // Above 256 ns a power of two 2^e is split into 128 buckets of width 2^(e-7).
            let width = level >> 7;
            (level + width - 1) / 1000
        })
        .collect()
}

/// A workload with known call counts, run on a fresh connection after `CONFIG RESETSTAT`.
fn workload(addr: SocketAddr) -> RawClient {
    let mut c = connect(addr);
    c.call(&["HELLO", "3"]);
    c.call(&["CONFIG", "RESETSTAT"]);
    for _ in 0..3 {
        c.call(&["SET", "a", "1"]);
    }
    for _ in 0..2 {
        c.call(&["GET", "a"]);
    }
    c.call(&["CONFIG", "GET", "port"]);
    c.call(&["GET"]); // Rejected for its arity: no latency recorded.
    c
}

#[test]
fn latency_histogram_matches_redis_in_names_counts_and_buckets() {
    let mut shoal = start(target_kind(option_env!("CARGO_BIN_EXE_shoal-server")));
    let mut redis = start(ServerKind::Redis);
    let mut a = workload(shoal.addr());
    let mut b = workload(redis.addr());

    let labels = redis_bucket_labels();
    let all_a: BTreeMap<_, _> = histogram(&a.call(&["LATENCY", "HISTOGRAM"]))
        .into_iter()
        .collect();
    let all_b: BTreeMap<_, _> = histogram(&b.call(&["LATENCY", "HISTOGRAM"]))
        .into_iter()
        .collect();
    let names = |m: &BTreeMap<String, Cdf>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&all_a), names(&all_b));
    assert_eq!(
        names(&all_a),
        ["config|get", "config|resetstat", "get", "set"]
    );
    for (name, (calls, buckets)) in &all_a {
        assert_eq!(*calls, all_b[name].0, "calls of {name}");
        assert!(!buckets.is_empty(), "{name} has buckets");
        let mut last = 0;
        for (usec, count) in buckets {
            assert!(
                labels.contains(usec),
                "{name}: {usec} is not a Redis bucket"
            );
            assert!(*count > last, "{name}: counts only listed where they grow");
            last = *count;
        }
        assert_eq!(last, *calls, "{name}: the last bucket holds every call");
    }

    // Named commands, in the order given: a container brings its subcommands with data, unknown
    // names are skipped and a repeated name is answered again.
    let ask = [
        "LATENCY",
        "HISTOGRAM",
        "set",
        "nosuch",
        "CONFIG|GET",
        "config",
        "set",
    ];
    let order = |c: &mut RawClient| -> Vec<String> {
        histogram(&c.call(&ask))
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    };
    let (oa, ob) = (order(&mut a), order(&mut b));
    assert_eq!(oa.len(), ob.len());
    assert_eq!(oa[..2], ob[..2]);
    assert_eq!(oa[..2], ["set", "config|get"]);
    // Redis lists a container's subcommands in hash-table order, so only the set is compared.
    let mut sub_a = oa[2..oa.len() - 1].to_vec();
    let mut sub_b = ob[2..ob.len() - 1].to_vec();
    sub_a.sort();
    sub_b.sort();
    assert_eq!(sub_a, sub_b);
    assert_eq!(oa.last().map(String::as_str), Some("set"));

    // Nothing known: an empty map on both.
    assert_eq!(
        a.call(&["LATENCY", "HISTOGRAM", "nosuch"]),
        b.call(&["LATENCY", "HISTOGRAM", "nosuch"])
    );

    shoal.stop().expect("stop shoal");
    redis.stop().expect("stop redis");
}

/// The `latency_percentiles_usec_<cmd>` lines: same commands and percentile labels as Redis,
/// values with three decimals, and the labels follow `latency-tracking-info-percentiles`.
#[test]
fn info_latencystats_lines_match_redis() {
    let mut shoal = start(target_kind(option_env!("CARGO_BIN_EXE_shoal-server")));
    let mut redis = start(ServerKind::Redis);
    let lines = |addr: SocketAddr, percentiles: &str| -> Vec<(String, Vec<String>)> {
        let mut c = workload(addr);
        c.call(&[
            "CONFIG",
            "SET",
            "latency-tracking-info-percentiles",
            percentiles,
        ]);
        let info = text(&c.call(&["INFO", "latencystats"]));
        info.lines()
            .filter_map(|l| l.strip_prefix("latency_percentiles_usec_"))
            .map(|l| {
                let (name, values) = l.split_once(':').expect("name:values");
                let labels = values
                    .split(',')
                    .filter(|kv| !kv.is_empty())
                    .map(|kv| {
                        let (label, value) = kv.split_once('=').expect("label=value");
                        let (_, decimals) = value.split_once('.').expect("a decimal value");
                        assert_eq!(decimals.len(), 3, "three decimals in {kv}");
                        label.to_string()
                    })
                    .collect();
                (name.to_string(), labels)
            })
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect()
    };
    for percentiles in ["50 99 99.9", "50.0 99.99 100", ""] {
        let a = lines(shoal.addr(), percentiles);
        let b = lines(redis.addr(), percentiles);
        assert_eq!(a, b, "percentiles {percentiles:?}");
        assert!(a.iter().any(|(name, _)| name == "config|get"));
    }
    shoal.stop().expect("stop shoal");
    redis.stop().expect("stop redis");
}
