//! The metrics port end to end: `/metrics` scraped after a known workload shows exact counter
//! values (commands, hits, misses, errors, keys, bytes read), latency histograms whose counts
//! match the commands sent, and an exposition that parses as the Prometheus text format with a
//! `# HELP` and `# TYPE` line for every family and conventional names. Also `CONFIG RESETSTAT`,
//! `latency-tracking no`, `/healthz`, `/readyz`, unknown paths, the port being off by default,
//! and start-up failing when the port is taken.
//!
//! Redis has no metrics port, so under `SHOAL_TEST_AGAINST=redis` every test here is skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shoal_testkit::http;
use shoal_testkit::server::{free_port, make_temp_dir};
use shoal_testkit::{encode_command, render, target_kind, RawClient, ServerKind, ServerProcess};

/// Start attempts when a probed metrics port was taken before the server bound it.
const START_ATTEMPTS: usize = 5;

/// How long a server that must fail at start-up may take to exit. It bounds a wait, not the
/// server's speed, so it is generous for a debug build on a loaded two-core machine.
const EXIT_DEADLINE: Duration = Duration::from_secs(30);

/// The upper bounds (`le`) of every latency histogram, as deploy/METRICS.md documents them.
const DOCUMENTED_BOUNDS: &[&str] = &[
    "0.00001", "0.000025", "0.00005", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
    "0.01", "0.025", "0.05", "0.1", "0.2", "0.5", "1", "2.5", "5", "10", "+Inf",
];

/// Words that would put a unit other than seconds or bytes in a metric name.
const NON_BASE_UNITS: &str = "ms us ns milliseconds microseconds nanoseconds minutes hours \
                              kb mb gb kib mib gib kilobytes megabytes gigabytes";

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn scrape_after_a_known_workload_shows_exact_counts() {
    let Some(shoal) = Shoal::start(&[]) else {
        return;
    };
    let mut c = shoal.session();
    // The harness probes readiness with PING (and sometimes INFO) a number of times that
    // depends on timing, so the count starts from a reset. Like Redis, the reset itself is
    // counted once it has run.
    c.check("CONFIG RESETSTAT", "OK");
    // Its own bytes were read before it ran, so the reset forgot them too.
    c.sent_bytes = 0;
    for i in 0..5 {
        c.check(&format!("SET plain:{i} v"), "OK");
    }
    c.check("SET ttl:0 v EX 1000", "OK");
    c.check("SET ttl:1 v PX 1000000", "OK");
    for i in 0..5 {
        c.check(&format!("GET plain:{i}"), "\"v\"");
    }
    for i in 0..3 {
        c.check(&format!("GET missing:{i}"), "(nil)");
    }
    // Unknown commands are refused before any command runs: they count only as errors.
    c.check(
        "NOSUCHCMD",
        "(error) ERR unknown command 'NOSUCHCMD', with args beginning with: ",
    );
    c.check(
        "ANOTHERONE x",
        "(error) ERR unknown command 'ANOTHERONE', with args beginning with: 'x' ",
    );
    // A wrong arity is a rejected call of a known command: not run, so not a call.
    c.check(
        "GET",
        "(error) ERR wrong number of arguments for 'get' command",
    );
    // INCR runs and fails; as in Redis, a write's lookup counts as neither hit nor miss.
    for _ in 0..4 {
        c.check(
            "INCR plain:0",
            "(error) ERR value is not an integer or out of range",
        );
    }

    let scrape = shoal.scrape();
    scrape.expect_family(
        "shoal_commands_total",
        r#"
        shoal_commands_total{cmd="config|resetstat"} 1
        shoal_commands_total{cmd="get"} 8
        shoal_commands_total{cmd="incr"} 4
        shoal_commands_total{cmd="set"} 7
        "#,
    );
    scrape.expect_family(
        "shoal_commands_failed_total",
        r#"
        shoal_commands_failed_total{cmd="config|resetstat"} 0
        shoal_commands_failed_total{cmd="get"} 0
        shoal_commands_failed_total{cmd="incr"} 4
        shoal_commands_failed_total{cmd="set"} 0
        "#,
    );
    scrape.expect_family(
        "shoal_commands_rejected_total",
        r#"
        shoal_commands_rejected_total{cmd="config|resetstat"} 0
        shoal_commands_rejected_total{cmd="get"} 1
        shoal_commands_rejected_total{cmd="incr"} 0
        shoal_commands_rejected_total{cmd="set"} 0
        "#,
    );
    scrape.expect_family(
        "shoal_errors_total",
        r#"
        shoal_errors_total{prefix="ERR"} 7
        "#,
    );
    // 1 CONFIG RESETSTAT + 7 SET + 8 GET + 4 INCR; refused commands never ran.
    scrape.expect_samples(&format!(
        r#"
        shoal_commands_processed_total 20
        shoal_keyspace_hits_total 5
        shoal_keyspace_misses_total 3
        shoal_keyspace_hit_ratio 0.625
        shoal_db_keys{{db="0"}} 7
        shoal_db_keys_expiring{{db="0"}} 2
        shoal_expired_keys_total 0
        shoal_evicted_keys_total 0
        shoal_connected_clients 1
        shoal_blocked_clients 0
        shoal_rejected_connections_total 0
        shoal_rdb_changes_since_last_save 7
        shoal_net_input_bytes_total {}
        shoal_replication_role{{role="master"}} 1
        shoal_cluster_enabled 0
        "#,
        c.sent_bytes
    ));
    let info = scrape.only("shoal_info");
    assert_eq!(info.value, 1.0);
    assert_eq!(info.label("role"), Some("master"));
    assert_eq!(info.label("version"), Some(env!("CARGO_PKG_VERSION")));
    let run_id = info.label("run_id").unwrap_or_default();
    assert!(
        run_id.len() == 40 && run_id.bytes().all(|b| b.is_ascii_hexdigit()),
        "run_id {run_id:?}"
    );

    let histograms = scrape.histograms("shoal_command_duration_seconds", "cmd");
    let calls = scrape.by_label("shoal_commands_total", "cmd");
    // Every command listed was called (none was only rejected), so each has a histogram.
    assert_eq!(
        histograms.keys().collect::<Vec<_>>(),
        calls.keys().collect::<Vec<_>>(),
        "a histogram for exactly the commands that were called"
    );
    for (cmd, h) in &histograms {
        assert_eq!(h.count as f64, calls[cmd], "histogram count of {cmd}");
        let inf = h.buckets.last().filter(|(le, _)| le == "+Inf");
        assert_eq!(inf.map(|(_, n)| *n), Some(h.count), "+Inf bucket of {cmd}");
        assert!(h.sum > 0.0, "histogram sum of {cmd} is {}", h.sum);
    }

    // A scrape is not a command: scraping again changes no command counter.
    let again = shoal.scrape();
    again.expect_samples("shoal_commands_processed_total 20");
    assert_eq!(again.by_label("shoal_commands_total", "cmd"), calls);
}

#[test]
fn exposition_follows_the_prometheus_text_format() {
    let Some(shoal) = Shoal::start(&[]) else {
        return;
    };
    let mut c = shoal.session();
    c.check("SET k v EX 100", "OK");
    c.check("GET k", "\"v\"");
    c.check("CONFIG GET maxmemory", "[\"maxmemory\", \"0\"]");
    c.check(
        "NOSUCHCMD",
        "(error) ERR unknown command 'NOSUCHCMD', with args beginning with: ",
    );
    let response = http::get(shoal.metrics, "/metrics").expect("GET /metrics");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    // `parse` enforces the format: HELP and TYPE before a family's samples, each family
    // declared once and its samples contiguous, every sample belonging to a declared family,
    // well-formed names, labels and values, no repeated series.
    let scrape = Exposition::parse(&response.text()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        scrape.families.len() >= 30,
        "{} families",
        scrape.families.len()
    );
    for f in &scrape.families {
        let name = &f.name;
        assert!(
            f.help.as_deref().is_some_and(|h| !h.is_empty()),
            "{name}: no # HELP"
        );
        let kind = f
            .kind
            .as_deref()
            .unwrap_or_else(|| panic!("{name}: no # TYPE"));
        assert!(
            name.starts_with("shoal_"),
            "{name}: not in the shoal_ namespace"
        );
        match kind {
            "counter" => assert!(
                name.ends_with("_total"),
                "counter {name} must end in _total"
            ),
            "gauge" | "histogram" => {
                for reserved in ["_total", "_count", "_sum", "_bucket"] {
                    assert!(
                        !name.ends_with(reserved),
                        "{kind} {name} ends in {reserved}"
                    );
                }
            }
            other => panic!("{name}: unexpected type {other}"),
        }
        // Prometheus wants base units: seconds and bytes, never their multiples.
        for word in name.split('_') {
            assert!(
                !NON_BASE_UNITS.split_whitespace().any(|unit| unit == word),
                "{name} is not in a base unit"
            );
        }
        if kind == "histogram" {
            assert!(
                name.ends_with("_seconds"),
                "histogram {name} without a unit"
            );
        }
    }
    // Every command called has a histogram (the harness's readiness probe adds PING and
    // perhaps INFO), each with the documented buckets, cumulative, ending in `+Inf` = count.
    let histograms = scrape.histograms("shoal_command_duration_seconds", "cmd");
    let called: Vec<String> = scrape
        .by_label("shoal_commands_total", "cmd")
        .into_iter()
        .filter_map(|(cmd, calls)| (calls > 0.0).then_some(cmd))
        .collect();
    assert_eq!(histograms.keys().cloned().collect::<Vec<_>>(), called);
    for cmd in ["config|get", "get", "set"] {
        assert!(histograms.contains_key(cmd), "no histogram for {cmd}");
    }
    for (cmd, h) in &histograms {
        let bounds: Vec<&str> = h.buckets.iter().map(|(le, _)| le.as_str()).collect();
        assert_eq!(bounds, DOCUMENTED_BOUNDS, "bounds of {cmd}");
        let counts: Vec<u64> = h.buckets.iter().map(|(_, n)| *n).collect();
        assert!(
            counts.windows(2).all(|w| w[0] <= w[1]),
            "buckets of {cmd} are not cumulative: {counts:?}"
        );
        assert_eq!(counts.last(), Some(&h.count), "+Inf bucket of {cmd}");
    }
}

#[test]
fn config_resetstat_resets_counters_and_histograms() {
    let Some(shoal) = Shoal::start(&[]) else {
        return;
    };
    let mut c = shoal.session();
    for i in 0..3 {
        c.check(&format!("SET k{i} v"), "OK");
    }
    c.check("GET k0", "\"v\"");
    c.check("GET nope", "(nil)");
    c.check(
        "INCR k0",
        "(error) ERR value is not an integer or out of range",
    );
    let before = shoal.scrape();
    before.expect_samples(
        r#"
        shoal_commands_total{cmd="set"} 3
        shoal_command_duration_seconds_count{cmd="set"} 3
        shoal_keyspace_hits_total 1
        shoal_errors_total{prefix="ERR"} 1
        "#,
    );

    c.check("CONFIG RESETSTAT", "OK");
    let after = shoal.scrape();
    after.expect_family(
        "shoal_commands_total",
        r#"shoal_commands_total{cmd="config|resetstat"} 1"#,
    );
    after.expect_family("shoal_errors_total", "");
    after.expect_samples(
        r#"
        shoal_commands_processed_total 1
        shoal_keyspace_hits_total 0
        shoal_keyspace_misses_total 0
        shoal_keyspace_hit_ratio 0
        shoal_command_duration_seconds_count{cmd="config|resetstat"} 1
        shoal_db_keys{db="0"} 3
        "#,
    );
    let histograms = after.histograms("shoal_command_duration_seconds", "cmd");
    assert_eq!(histograms.keys().collect::<Vec<_>>(), ["config|resetstat"]);

    // Counting resumes from zero, histograms included.
    c.check("SET k0 w", "OK");
    c.check("SET k1 w", "OK");
    let resumed = shoal.scrape();
    resumed.expect_samples(
        r#"
        shoal_commands_total{cmd="set"} 2
        shoal_command_duration_seconds_count{cmd="set"} 2
        shoal_command_duration_seconds_bucket{cmd="set",le="+Inf"} 2
        shoal_commands_processed_total 3
        "#,
    );
}

#[test]
fn latency_tracking_off_freezes_histograms_but_not_counters() {
    let Some(shoal) = Shoal::start(&[]) else {
        return;
    };
    let mut c = shoal.session();
    for i in 0..3 {
        c.check(&format!("SET k{i} v"), "OK");
    }
    c.check("CONFIG SET latency-tracking no", "OK");
    for i in 0..4 {
        c.check(&format!("SET k{i} w"), "OK");
    }
    let off = shoal.scrape();
    // CONFIG SET itself finished after tracking stopped, so it has no histogram either.
    off.expect_samples(
        r#"
        shoal_commands_total{cmd="set"} 7
        shoal_command_duration_seconds_count{cmd="set"} 3
        shoal_command_duration_seconds_bucket{cmd="set",le="+Inf"} 3
        shoal_commands_total{cmd="config|set"} 1
        "#,
    );
    let histograms = off.histograms("shoal_command_duration_seconds", "cmd");
    assert!(!histograms.contains_key("config|set"), "{histograms:?}");
    let frozen_sum = histograms["set"].sum;

    c.check("CONFIG SET latency-tracking yes", "OK");
    c.check("SET k0 x", "OK");
    let on = shoal.scrape();
    on.expect_samples(
        r#"
        shoal_commands_total{cmd="set"} 8
        shoal_command_duration_seconds_count{cmd="set"} 4
        "#,
    );
    let set = &on.histograms("shoal_command_duration_seconds", "cmd")["set"];
    assert!(set.sum > frozen_sum, "{} then {}", frozen_sum, set.sum);
}

#[test]
fn health_readiness_and_unknown_paths() {
    let Some(shoal) = Shoal::start(&[]) else {
        return;
    };
    let get = |path: &str| {
        let r = http::get(shoal.metrics, path).unwrap_or_else(|e| panic!("GET {path}: {e}"));
        (r.status, r.text())
    };
    assert_eq!(get("/healthz"), (200, "ok\n".to_string()));
    // Not loading anything (no snapshot exists yet), so ready at once.
    assert_eq!(get("/readyz"), (200, "ready\n".to_string()));
    for path in ["/nope", "/metrics/extra", "/healthz/", "/favicon.ico"] {
        assert_eq!(get(path).0, 404, "GET {path}");
    }
}

#[test]
fn metrics_port_listens_only_when_configured() {
    if skipped() {
        return;
    }
    let plain = ServerProcess::start(shoal_kind(), &[]).expect("start shoal");
    let ready = ready_line(&plain);
    assert!(ready.contains("listening="), "{ready}");
    assert!(
        !ready.contains("metrics="),
        "metrics port open by default: {ready}"
    );
    assert_eq!(
        listening_ports(plain.pid()),
        BTreeSet::from([plain.port()]),
        "without --metrics-port only the data port listens"
    );
    let mut c = Session::connect(&plain);
    c.check("CONFIG GET metrics-port", "[\"metrics-port\", \"0\"]");
    c.check(
        "CONFIG GET metrics-bind",
        "[\"metrics-bind\", \"127.0.0.1\"]",
    );
    drop(plain);

    let Some(shoal) = Shoal::start(&[]) else {
        return;
    };
    let port = shoal.metrics.port();
    let ready = ready_line(&shoal.server);
    assert!(
        ready.contains(&format!("metrics=http://127.0.0.1:{port}")),
        "metrics port not on loopback by default: {ready}"
    );
    assert_eq!(
        listening_ports(shoal.server.pid()),
        BTreeSet::from([shoal.server.port(), port])
    );
}

#[test]
fn start_up_fails_clearly_when_the_metrics_port_is_taken() {
    if skipped() {
        return;
    }
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("address").port().to_string();
    let data_port = free_port().expect("free port").to_string();
    let dir = make_temp_dir("metrics-port-taken").expect("temp dir");
    let dir_arg = dir.to_string_lossy().into_owned();
    let mut child = Command::new(env!("CARGO_BIN_EXE_shoal-server"))
        .args(["--port", &data_port, "--bind", "127.0.0.1", "--save", ""])
        .args([
            "--appendonly",
            "no",
            "--dir",
            &dir_arg,
            "--metrics-port",
            &port,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn shoal-server");
    let deadline = Instant::now() + EXIT_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("shoal-server kept running with its metrics port taken");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    let _ = fs::remove_dir_all(&dir);
    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains(&format!("Could not bind the metrics port 127.0.0.1:{port}"))
            && stderr.contains("Address already in use"),
        "unclear start-up error: {stderr}"
    );
    drop(taken);
}

// ---------------------------------------------------------------------------------------------
// The server and a client
// ---------------------------------------------------------------------------------------------

/// True (with a note) when the tests run against Redis, which has no metrics port.
#[test]
fn idle_connections_are_capped_and_wait_instead_of_failing() {
    let Some(shoal) = Shoal::start(&[]) else {
        return;
    };
    // 32 connections that never send a request fill every slot (the cap in http.rs).
    let idle: Vec<std::net::TcpStream> = (0..32)
        .map(|_| std::net::TcpStream::connect(shoal.metrics).expect("connect"))
        .collect();
    // One more is accepted by the kernel but not served while the slots are taken: a short
    // deadline passes without an answer.
    let waiting = http::get_with_timeout(shoal.metrics, "/healthz", Duration::from_millis(300));
    assert!(waiting.is_err(), "served past the cap: {waiting:?}");
    // The data port is unaffected.
    let mut session = shoal.session();
    session.check("PING", "PONG");
    // Freeing the slots lets new requests through again.
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match http::get_with_timeout(shoal.metrics, "/healthz", Duration::from_secs(5)) {
            Ok(r) => {
                assert_eq!((r.status, r.text()), (200, "ok\n".to_string()));
                break;
            }
            Err(e) => assert!(
                Instant::now() < deadline,
                "metrics port never recovered: {e}"
            ),
        }
    }
}

fn skipped() -> bool {
    let skip = matches!(
        target_kind(option_env!("CARGO_BIN_EXE_shoal-server")),
        ServerKind::Redis
    );
    if skip {
        eprintln!("skipped: Redis has no metrics port");
    }
    skip
}

fn shoal_kind() -> ServerKind {
    target_kind(option_env!("CARGO_BIN_EXE_shoal-server"))
}

/// Shoal with its metrics port open.
struct Shoal {
    server: ServerProcess,
    metrics: SocketAddr,
}

impl Shoal {
    /// Starts Shoal with `--metrics-port` on a free port and `args`, retrying on a new port
    /// when the probed one was taken in the meantime; None under `SHOAL_TEST_AGAINST=redis`.
    fn start(args: &[&str]) -> Option<Shoal> {
        if skipped() {
            return None;
        }
        let mut last_err = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port().expect("free port");
            let port_arg = port.to_string();
            let mut all = vec!["--metrics-port", &port_arg];
            all.extend_from_slice(args);
            match ServerProcess::start(shoal_kind(), &all) {
                Ok(server) => {
                    let metrics = SocketAddr::from(([127, 0, 0, 1], port));
                    return Some(Shoal { server, metrics });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last_err = Some(e),
                Err(e) => panic!("shoal did not start: {e}"),
            }
        }
        panic!("shoal did not start: {last_err:?}");
    }

    fn session(&self) -> Session {
        Session::connect(&self.server)
    }

    /// `GET /metrics`, parsed.
    fn scrape(&self) -> Exposition {
        let response = http::get(self.metrics, "/metrics").expect("GET /metrics");
        assert_eq!(response.status, 200, "{}", response.text());
        Exposition::parse(&response.text()).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// A client whose every command is checked against the reply redis-cli would print, and which
/// counts the bytes it sends (for `shoal_net_input_bytes_total`).
struct Session {
    client: RawClient,
    sent_bytes: u64,
}

impl Session {
    fn connect(server: &ServerProcess) -> Session {
        Session {
            client: RawClient::connect(server.addr()).expect("connect"),
            sent_bytes: 0,
        }
    }

    /// Sends `command` (arguments split on spaces) and checks the rendered reply.
    fn check(&mut self, command: &str, expected: &str) {
        let args: Vec<&[u8]> = command.split(' ').map(str::as_bytes).collect();
        self.sent_bytes += encode_command(&args).len() as u64;
        let reply = self
            .client
            .command(&args)
            .unwrap_or_else(|e| panic!("> {command}: {e}"));
        assert_eq!(render(&reply), expected, "> {command}");
    }
}

/// The server's start-up line that reports where it listens. The port accepts connections as
/// soon as it is bound, a moment before the line reaches the log file, so this waits for it.
fn ready_line(server: &ServerProcess) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let log = server.log();
        if let Some(line) = log
            .lines()
            .find(|l| l.contains("ready to accept connections"))
        {
            return line.to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no ready line in the log:\n{log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The TCP ports the process `pid` listens on: the socket inodes among its open files, looked
/// up in the kernel's TCP tables.
fn listening_ports(pid: u32) -> BTreeSet<u16> {
    let mut inodes = BTreeSet::new();
    for entry in fs::read_dir(format!("/proc/{pid}/fd")).expect("list open files") {
        let Ok(target) = entry.and_then(|e| fs::read_link(e.path())) else {
            continue;
        };
        let target = target.to_string_lossy().into_owned();
        if let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|t| t.strip_suffix(']'))
        {
            inodes.insert(inode.to_string());
        }
    }
    let mut ports = BTreeSet::new();
    for table in ["tcp", "tcp6"] {
        let text = fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // Fields: slot, local address, remote address, state (0A is LISTEN), queues,
            // timers, retransmits, uid, timeout, inode.
            if fields.len() < 10 || fields[3] != "0A" || !inodes.contains(fields[9]) {
                continue;
            }
            let port = fields[1].rsplit(':').next().unwrap_or("");
            ports.insert(u16::from_str_radix(port, 16).expect("hex port"));
        }
    }
    ports
}

// ---------------------------------------------------------------------------------------------
// The Prometheus text format
// ---------------------------------------------------------------------------------------------

/// A parsed exposition.
#[derive(Debug)]
struct Exposition {
    families: Vec<Family>,
}

/// One metric family: its `# HELP`, its `# TYPE` and its samples, in order.
#[derive(Debug)]
struct Family {
    name: String,
    help: Option<String>,
    kind: Option<String>,
    samples: Vec<Sample>,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

impl Sample {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `name{labels}` with labels sorted, to identify a series.
    fn series(&self) -> String {
        let mut labels = self.labels.clone();
        labels.sort();
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        format!("{}{{{}}}", self.name, labels.join(","))
    }
}

/// One histogram series: its buckets in order as (`le` as written, cumulative count), its sum
/// and its count.
#[derive(Debug, Default)]
struct Histogram {
    buckets: Vec<(String, u64)>,
    sum: f64,
    count: u64,
}

impl Exposition {
    /// Parses the text format (version 0.0.4), refusing anything Prometheus would refuse and
    /// also a sample that belongs to no declared family.
    fn parse(text: &str) -> Result<Exposition, String> {
        if !text.is_empty() && !text.ends_with('\n') {
            return Err("the exposition does not end with a newline".into());
        }
        let mut families: Vec<Family> = Vec::new();
        let mut series = BTreeSet::new();
        for (n, line) in text.lines().enumerate() {
            let fail = |why: &str| Err(format!("line {}: {why}: {line:?}", n + 1));
            if line.trim().is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                let mut words = comment.trim_start().splitn(3, ' ');
                let keyword = words.next().unwrap_or("");
                if keyword != "HELP" && keyword != "TYPE" {
                    continue;
                }
                let Some(name) = words.next().filter(|n| valid_name(n)) else {
                    return fail("a HELP or TYPE line without a valid metric name");
                };
                let rest = words.next().unwrap_or("").to_string();
                let current = families.last().is_some_and(|f| f.name == name);
                if !current {
                    if families.iter().any(|f| f.name == name) {
                        return fail("a family declared again after other families");
                    }
                    families.push(Family {
                        name: name.to_string(),
                        help: None,
                        kind: None,
                        samples: Vec::new(),
                    });
                }
                let Some(family) = families.last_mut() else {
                    return fail("no family");
                };
                if keyword == "HELP" {
                    if family.help.is_some() {
                        return fail("a second HELP line");
                    }
                    family.help = Some(unescape_help(&rest));
                } else {
                    if family.kind.is_some() {
                        return fail("a second TYPE line");
                    }
                    if !family.samples.is_empty() {
                        return fail("a TYPE line after the family's samples");
                    }
                    if !["counter", "gauge", "histogram", "summary", "untyped"]
                        .contains(&rest.as_str())
                    {
                        return fail("an unknown type");
                    }
                    family.kind = Some(rest);
                }
                continue;
            }
            let sample = match parse_sample(line) {
                Ok(s) => s,
                Err(e) => return fail(&e),
            };
            let Some(family) = families.last_mut() else {
                return fail("a sample before any family");
            };
            if !belongs(&sample, family) {
                return fail(&format!(
                    "a sample outside its family (the current family is {})",
                    family.name
                ));
            }
            if sample.name.ends_with("_bucket") && sample.label("le").is_none() {
                return fail("a histogram bucket without le");
            }
            if !series.insert(sample.series()) {
                return fail("a repeated series");
            }
            family.samples.push(sample);
        }
        Ok(Exposition { families })
    }

    fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.name == name)
    }

    fn samples(&self) -> impl Iterator<Item = &Sample> {
        self.families.iter().flat_map(|f| f.samples.iter())
    }

    /// The one sample of a family.
    fn only(&self, name: &str) -> &Sample {
        match self.family(name).map(|f| f.samples.as_slice()) {
            Some([sample]) => sample,
            other => panic!("{name}: expected one sample, found {other:?}"),
        }
    }

    /// A family's values by one label (`cmd`, `prefix`).
    fn by_label(&self, name: &str, label: &str) -> BTreeMap<String, f64> {
        let family = self
            .family(name)
            .unwrap_or_else(|| panic!("no family {name}"));
        family
            .samples
            .iter()
            .map(|s| (s.label(label).unwrap_or_default().to_string(), s.value))
            .collect()
    }

    /// A histogram family's series by one label.
    fn histograms(&self, name: &str, label: &str) -> BTreeMap<String, Histogram> {
        let family = self
            .family(name)
            .unwrap_or_else(|| panic!("no family {name}"));
        let mut out: BTreeMap<String, Histogram> = BTreeMap::new();
        for s in &family.samples {
            let h = out
                .entry(s.label(label).unwrap_or_default().to_string())
                .or_default();
            let suffix = &s.name[name.len()..];
            match suffix {
                "_bucket" => {
                    let le = s.label("le").unwrap_or_default().to_string();
                    h.buckets.push((le, s.value as u64));
                }
                "_sum" => h.sum = s.value,
                "_count" => h.count = s.value as u64,
                other => panic!("{name}: unexpected sample suffix {other:?}"),
            }
        }
        out
    }

    /// Checks that each line of `expected` (`name{labels} value`, indentation ignored) is a
    /// sample of the exposition with that value, and reports every mismatch at once.
    fn expect_samples(&self, expected: &str) {
        let mut wrong = Vec::new();
        for line in expected.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let want = parse_sample(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            match self.samples().find(|s| s.series() == want.series()) {
                Some(s) if s.value == want.value => {}
                Some(s) => wrong.push(format!("{line}   (scraped: {})", s.value)),
                None => wrong.push(format!("{line}   (not scraped)")),
            }
        }
        assert!(
            wrong.is_empty(),
            "unexpected samples:\n{}",
            wrong.join("\n")
        );
    }

    /// Checks that a family holds exactly the samples of `expected`, in any order.
    fn expect_family(&self, name: &str, expected: &str) {
        let want: BTreeMap<String, f64> = expected
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| parse_sample(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .map(|s| (s.series(), s.value))
            .collect();
        let family = self
            .family(name)
            .unwrap_or_else(|| panic!("no family {name}"));
        let got: BTreeMap<String, f64> = family
            .samples
            .iter()
            .map(|s| (s.series(), s.value))
            .collect();
        assert_eq!(got, want, "samples of {name}");
    }
}

/// True when the sample is one the family declares: the family's own name, or for a histogram
/// its `_bucket`, `_sum` and `_count` series (and a summary's `_sum` and `_count`).
fn belongs(sample: &Sample, family: &Family) -> bool {
    let Some(kind) = family.kind.as_deref() else {
        return false;
    };
    let Some(suffix) = sample.name.strip_prefix(family.name.as_str()) else {
        return false;
    };
    match kind {
        "histogram" => ["_bucket", "_sum", "_count"].contains(&suffix),
        "summary" => ["", "_sum", "_count"].contains(&suffix),
        _ => suffix.is_empty(),
    }
}

/// A metric name as Prometheus accepts it: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A label name: `[a-zA-Z_][a-zA-Z0-9_]*`, with `__` reserved for Prometheus itself.
fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    !name.starts_with("__")
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn unescape_help(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Parses `name{label="value",...} value [timestamp]`.
fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    if !valid_name(name) {
        return Err(format!("invalid metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            if let Some(after) = inner.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after) = inner.split_once("=\"").ok_or("a label without =\"")?;
            if !valid_label_name(key) {
                return Err(format!("invalid label name {key:?}"));
            }
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next() {
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c @ ('\\' | '"'))) => value.push(c),
                        _ => return Err("a bad escape in a label value".into()),
                    },
                    Some((_, c)) => value.push(c),
                    None => return Err("an unterminated label value".into()),
                }
            };
            if labels.iter().any(|(k, _)| k == key) {
                return Err(format!("label {key} given twice"));
            }
            labels.push((key.to_string(), value));
            inner = &after[end + 1..];
            inner = inner.strip_prefix(',').unwrap_or(inner);
        }
    }
    let mut fields = rest.split_whitespace();
    if !rest.starts_with(' ') {
        return Err("no space before the value".into());
    }
    let value = match fields.next().ok_or("no value")? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().map_err(|_| format!("bad value {v:?}"))?,
    };
    if let Some(ts) = fields.next() {
        ts.parse::<i64>()
            .map_err(|_| format!("bad timestamp {ts:?}"))?;
    }
    if fields.next().is_some() {
        return Err("text after the timestamp".into());
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// The parser itself, on text written by hand: what it must accept and refuse.
#[test]
fn the_parser_refuses_malformed_expositions() {
    let ok = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"q\\\"\"} 3\n\
              # HELP h_seconds H.\n# TYPE h_seconds histogram\n\
              h_seconds_bucket{le=\"+Inf\"} 1\nh_seconds_sum 0.5\nh_seconds_count 1\n";
    let parsed = Exposition::parse(ok).expect("valid");
    assert_eq!(parsed.only("a_total").label("x"), Some("q\""));
    for (bad, why) in [
        ("a 1\n", "a sample before any family"),
        ("# HELP a A.\n# TYPE a gauge\nb 1\n", "outside its family"),
        ("# HELP a A.\na 1\n", "outside its family"),
        ("# HELP a A.\n# TYPE a gauge\na 1\na 2\n", "repeated series"),
        ("# HELP a A.\n# TYPE a gauge\na{x=\"1} 1\n", "unterminated"),
        ("# HELP a A.\n# TYPE a gauge\na one\n", "bad value"),
        (
            "# TYPE a gauge\n# TYPE b gauge\n# TYPE a gauge\n",
            "declared again",
        ),
        ("# TYPE h histogram\nh_bucket 1\n", "without le"),
        ("# TYPE a gauge\na 1", "newline"),
    ] {
        let err = Exposition::parse(bad).expect_err(bad);
        assert!(err.contains(why), "{bad:?}: {err}");
    }
}
