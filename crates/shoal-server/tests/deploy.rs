//! The operations kit in `deploy/` and what operators consume from a running node: the alert
//! rules pass `promtool check rules` and their `promtool test rules` unit tests; every query of
//! the Grafana dashboard is valid PromQL naming only metrics catalogued in `deploy/METRICS.md`;
//! a live Shoal serves exactly the metrics that catalogue lists; a real Prometheus loading the
//! shipped rules scrapes it and answers a query for a counter the test drove; and
//! `--log-format json` writes one JSON object per line, including configuration changes and
//! rejected clients.
//!
//! `promtool` and `prometheus` come from Debian's `prometheus` package (`.ci/run` installs it);
//! without them these tests fail and say so. The tests that start Shoal are skipped under
//! `SHOAL_TEST_AGAINST=redis`, since Redis has neither a metrics port nor JSON logs.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use shoal_testkit::http;
use shoal_testkit::server::{free_port, make_temp_dir};
use shoal_testkit::{target_kind, workspace_root, Frame, RawClient, ServerKind, ServerProcess};

/// Bounds every wait for an external process: Prometheus starting and scraping, Shoal writing a
/// log line. A healthy run takes a few seconds; this is generous for a debug build on a loaded
/// two-core machine, and no assertion depends on it.
const DEADLINE: Duration = Duration::from_secs(90);

/// How often polled conditions are checked.
const POLL: Duration = Duration::from_millis(100);

/// Start attempts when a port chosen as free was taken before the process bound it.
const START_ATTEMPTS: usize = 5;

fn deploy_dir() -> PathBuf {
    workspace_root().join("deploy")
}

// ---------------------------------------------------------------------------------------------
// Alert rules
// ---------------------------------------------------------------------------------------------

#[test]
fn alert_rules_pass_promtool_check_and_unit_tests() {
    let dir = deploy_dir().join("prometheus");
    // Run from the rules' directory: the test file names the rules file relative to itself.
    promtool(&dir, &["check", "rules", "shoal-alerts.yml"]);
    promtool(&dir, &["test", "rules", "shoal-alerts.test.yml"]);
    promtool(&dir, &["check", "config", "prometheus.yml"]);
}

#[test]
fn alert_rules_use_only_catalogued_metrics() {
    let catalogue = catalogue();
    let text = read(&deploy_dir().join("prometheus/shoal-alerts.yml"));
    let exprs = yaml_exprs(&text);
    assert_eq!(exprs.len(), 8, "one expression per alert rule: {exprs:#?}");
    for expr in &exprs {
        check_metrics(expr, &catalogue).unwrap_or_else(|e| panic!("shoal-alerts.yml: {e}"));
    }
}

/// Every rule in the rules file has unit tests that name it, so a new rule cannot slip in
/// untested.
#[test]
fn every_alert_rule_has_unit_tests() {
    let rules = read(&deploy_dir().join("prometheus/shoal-alerts.yml"));
    let tests = read(&deploy_dir().join("prometheus/shoal-alerts.test.yml"));
    let names: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(str::trim)
        .collect();
    assert_eq!(names.len(), 8, "{names:?}");
    for name in names {
        let cases = tests
            .lines()
            .filter(|l| l.trim() == format!("alertname: {name}"))
            .count();
        assert!(
            cases >= 2,
            "{name} needs a firing and a non-firing case in shoal-alerts.test.yml (found {cases})"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Dashboard
// ---------------------------------------------------------------------------------------------

/// The dashboard as parsed JSON, and every PromQL expression in it (panel targets and
/// template variable queries).
fn dashboard() -> (json::Value, Vec<String>) {
    let path = deploy_dir().join("grafana/shoal-dashboard.json");
    let dash = json::parse(&read(&path))
        .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()));
    let mut exprs = Vec::new();
    collect_exprs(&dash, &mut exprs);
    (dash, exprs)
}

/// Finds `"expr"` strings anywhere (panels nested in collapsed rows included), and the
/// `definition` of query variables, which is PromQL wrapped in Grafana's `label_values`.
fn collect_exprs(v: &json::Value, out: &mut Vec<String>) {
    match v {
        json::Value::Object(fields) => {
            for (k, v) in fields {
                match (k.as_str(), v) {
                    ("expr", json::Value::String(s)) => out.push(s.clone()),
                    ("definition", json::Value::String(s)) => {
                        if let Some(inner) = s
                            .strip_prefix("label_values(")
                            .and_then(|r| r.strip_suffix(')'))
                        {
                            let selector = inner.rsplit_once(',').map_or(inner, |(m, _)| m);
                            out.push(selector.trim().to_string());
                        }
                    }
                    _ => collect_exprs(v, out),
                }
            }
        }
        json::Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

#[test]
fn dashboard_is_importable_grafana_json() {
    let (dash, exprs) = dashboard();
    assert!(
        dash.get("schemaVersion")
            .and_then(json::Value::as_f64)
            .is_some_and(|v| v >= 36.0),
        "schemaVersion missing or older than Grafana 9"
    );
    let vars = dash
        .get("templating")
        .and_then(|t| t.get("list"))
        .and_then(json::Value::as_array)
        .expect("templating.list");
    let var = |name: &str| {
        vars.iter()
            .find(|v| v.get("name").and_then(json::Value::as_str) == Some(name))
            .unwrap_or_else(|| panic!("no `{name}` template variable"))
    };
    let ds = var("datasource");
    assert_eq!(
        ds.get("type").and_then(json::Value::as_str),
        Some("datasource")
    );
    assert_eq!(
        ds.get("query").and_then(json::Value::as_str),
        Some("prometheus")
    );
    assert_eq!(
        var("instance").get("type").and_then(json::Value::as_str),
        Some("query")
    );

    let panels = dash
        .get("panels")
        .and_then(json::Value::as_array)
        .expect("panels");
    let mut ids = BTreeSet::new();
    let mut titles = Vec::new();
    for p in panels {
        let id = p.get("id").and_then(json::Value::as_f64).expect("panel id");
        assert!(ids.insert(id as i64), "duplicate panel id {id}");
        let title = p.get("title").and_then(json::Value::as_str).unwrap_or("");
        titles.push(title.to_string());
        if p.get("type").and_then(json::Value::as_str) == Some("row") {
            continue;
        }
        // Panels must follow the dashboard's data source variable, or the import would bind
        // them to whatever data source uid the author had.
        let uid = p
            .get("datasource")
            .and_then(|d| d.get("uid"))
            .and_then(json::Value::as_str);
        assert_eq!(uid, Some("${datasource}"), "panel {title:?}");
        let targets = p
            .get("targets")
            .and_then(json::Value::as_array)
            .unwrap_or_else(|| panic!("panel {title:?} has no targets"));
        assert!(!targets.is_empty(), "panel {title:?} has no queries");
    }
    // The issue's list of what an operator must see.
    for wanted in [
        "Commands per second",
        "Top commands",
        "Hit ratio",
        "Latency percentiles",
        "Average latency",
        "Memory",
        "Keys per database",
        "Keys with an expiry",
        "Evictions and expirations",
        "Connected and blocked clients",
        "Rejected connections",
        "Errors by prefix",
        "Role",
        "Connected replicas",
        "Sync queue",
        "Sync latency",
        "Snapshot in progress",
        "Last snapshot",
        "Last snapshot duration",
        "Last snapshot extra memory",
    ] {
        assert!(
            titles.iter().any(|t| t == wanted),
            "no panel titled {wanted:?}"
        );
    }
    let all = exprs.join("\n");
    for quantile in ["0.5", "0.95", "0.99"] {
        assert!(
            all.contains(&format!("histogram_quantile({quantile},")),
            "no p{quantile} latency query"
        );
    }
}

#[test]
fn dashboard_queries_use_only_catalogued_metrics() {
    let catalogue = catalogue();
    let (_, exprs) = dashboard();
    assert!(exprs.len() > 20, "found only {} queries", exprs.len());
    for expr in &exprs {
        if let Err(e) = check_metrics(expr, &catalogue) {
            panic!("shoal-dashboard.json: {e}");
        }
    }
}

/// Grafana's variables replaced by values Prometheus accepts, each expression becomes a
/// recording rule, and `promtool check rules` parses them all.
#[test]
fn dashboard_queries_are_valid_promql() {
    let (_, exprs) = dashboard();
    let dir = make_temp_dir("dashboard-promql").expect("temp dir");
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, expr) in exprs.iter().enumerate() {
        let concrete = expr
            .replace("$__rate_interval", "1m")
            .replace("$__interval", "1m")
            .replace("$instance", ".+");
        assert!(!concrete.contains('$'), "unknown variable in {expr:?}");
        rules.push_str(&format!(
            "      - record: dashboard_query_{i}\n        expr: {}\n",
            json::quote(&concrete)
        ));
    }
    fs::write(dir.join("dashboard.rules.yml"), rules).expect("write rules");
    promtool(&dir, &["check", "rules", "dashboard.rules.yml"]);
    let _ = fs::remove_dir_all(&dir);
}

/// The metric scanner is what keeps the dashboard honest, so it must catch a misspelt metric
/// and must not mistake functions, keywords, labels or durations for metrics.
#[test]
fn metric_scanner_finds_metrics_and_only_metrics() {
    let names = metric_names(
        r#"topk(10, sum by (cmd, le) (rate(shoal_commands_total{instance=~"$instance", cmd!="x{y}"}[$__rate_interval] offset 5m)))
           / on (instance) group_left shoal_info or vector(0) and bool unless time() - foo:bar_total"#,
    );
    assert_eq!(
        names,
        vec!["shoal_commands_total", "shoal_info", "foo:bar_total"]
    );
    let catalogue = catalogue();
    assert!(check_metrics("rate(shoal_comands_total[5m])", &catalogue).is_err());
    assert!(check_metrics("up", &catalogue).is_err());
    assert!(check_metrics("sum(rate(x[5m])) by (le)", &catalogue).is_err());
    assert!(
        check_metrics("vector(1)", &catalogue).is_err(),
        "no metric at all"
    );
    assert!(check_metrics("shoal_uptime_seconds_bucket", &catalogue).is_err());
    assert!(check_metrics("shoal_command_duration_seconds_bucket", &catalogue).is_ok());
    assert!(check_metrics("shoal_command_duration_seconds", &catalogue).is_err());
}

// ---------------------------------------------------------------------------------------------
// Prometheus against a live Shoal
// ---------------------------------------------------------------------------------------------

#[test]
fn prometheus_scrapes_live_shoal() {
    let Some((mut shoal, metrics_addr)) = start_shoal_with_metrics() else {
        return;
    };
    // The known workload: 7 SETs and 5 GETs of keys that exist.
    let mut client = RawClient::connect(shoal.addr()).expect("connect");
    for i in 0..7 {
        let key = format!("deploy:{i}");
        let reply = client
            .command(&[b"SET", key.as_bytes(), b"v"])
            .expect("SET");
        assert_eq!(reply, Frame::Simple("OK".into()));
    }
    for i in 0..5 {
        let key = format!("deploy:{i}");
        let reply = client.command(&[b"GET", key.as_bytes()]).expect("GET");
        assert_eq!(reply, Frame::Bulk("v".into()));
    }
    // Straight from the endpoint first, so a wrong count is told apart from a scrape problem.
    let page = http::get(metrics_addr, "/metrics").expect("GET /metrics");
    assert_eq!(page.status, 200, "{}", page.text());
    let exposed = exposition_value(&page.text(), "shoal_commands_total", &[("cmd", "set")]);
    assert_eq!(exposed, Some(7.0), "/metrics:\n{}", page.text());
    // The dashboard and rules are checked against METRICS.md, so METRICS.md must be what the
    // server serves: the same names, each with its `# HELP` line.
    let served: BTreeSet<String> = page
        .text()
        .lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    let listed: BTreeSet<String> = catalogue().into_keys().collect();
    assert_eq!(
        served, listed,
        "metrics served (left) and listed in deploy/METRICS.md (right) differ"
    );

    let mut prometheus = Prometheus::start(metrics_addr);
    let instance = metrics_addr.to_string();
    let up = format!(r#"up{{job="shoal",instance="{instance}"}}"#);
    let sets = format!(r#"shoal_commands_total{{job="shoal",instance="{instance}",cmd="set"}}"#);
    let deadline = Instant::now() + DEADLINE;
    let mut last = (None, None);
    loop {
        last = (
            prometheus.query_value(&up).or(last.0),
            prometheus.query_value(&sets).or(last.1),
        );
        if last == (Some(1.0), Some(7.0)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus did not report the target up with 7 SETs within {DEADLINE:?} \
             (last up = {:?}, SETs = {:?}); Prometheus log:\n{}\nShoal log:\n{}",
            last.0,
            last.1,
            prometheus.log(),
            shoal.log()
        );
        prometheus.assert_running();
        std::thread::sleep(POLL);
    }
    // The shipped rules loaded into a real Prometheus too, and evaluate without errors.
    let rules = prometheus.wait_for_rules(8);
    assert!(
        !rules.contains(r#""health":"err""#),
        "a rule failed to evaluate: {rules}"
    );
    drop(prometheus);
    shoal.stop().expect("stop shoal");
}

/// Starts Shoal with a metrics port, retrying on a new port when the probed one was taken in
/// the meantime. Returns the server and its metrics address, or None under
/// `SHOAL_TEST_AGAINST=redis`.
fn start_shoal_with_metrics() -> Option<(ServerProcess, SocketAddr)> {
    let kind = target_kind(option_env!("CARGO_BIN_EXE_shoal-server"));
    if matches!(kind, ServerKind::Redis) {
        eprintln!("skipped: Redis has no metrics port");
        return None;
    }
    let mut last_err = None;
    for _ in 0..START_ATTEMPTS {
        let port = free_port().expect("free port");
        let port_arg = port.to_string();
        match ServerProcess::start(kind.clone(), &["--metrics-port", &port_arg]) {
            Ok(server) => return Some((server, SocketAddr::from(([127, 0, 0, 1], port)))),
            Err(e) if e.to_string().contains("in use") => last_err = Some(e),
            Err(e) => panic!("shoal did not start: {e}"),
        }
    }
    panic!("shoal did not start: {last_err:?}");
}

/// The value of the sample `name{labels...}` in a Prometheus text exposition, when exactly one
/// sample matches.
fn exposition_value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (label_text, value) = match rest.strip_prefix('{') {
            Some(r) => r.split_once('}')?,
            None if rest.starts_with(' ') => ("", rest),
            None => continue,
        };
        let matches = labels
            .iter()
            .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")));
        if matches {
            if found.is_some() {
                return None;
            }
            let value = value.split_whitespace().next()?;
            found = Some(value.parse().ok()?);
        }
    }
    found
}

/// A `prometheus` process in its own temporary directory, scraping one target every second and
/// loading the shipped alert rules. Stopped (by its pid) when dropped.
struct Prometheus {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
}

impl Prometheus {
    fn start(target: SocketAddr) -> Prometheus {
        let bin = find_tool("prometheus");
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let dir = make_temp_dir("prometheus").expect("temp dir");
            let rules = deploy_dir().join("prometheus/shoal-alerts.yml");
            let config = format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {}\n\
                 scrape_configs:\n  - job_name: shoal\n    scrape_timeout: 1s\n    \
                 static_configs:\n      - targets: ['{target}']\n",
                json::quote(&rules.to_string_lossy())
            );
            fs::write(dir.join("prometheus.yml"), config).expect("write config");
            let port = free_port().expect("free port");
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let log = fs::File::create(dir.join("prometheus.log")).expect("log file");
            let child = Command::new(&bin)
                .arg(format!(
                    "--config.file={}",
                    dir.join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::from(log.try_clone().expect("log file")))
                .stderr(Stdio::from(log))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
            let mut p = Prometheus { child, dir, addr };
            match p.wait_ready() {
                Ok(()) => return p,
                Err(log) => last_log = log,
            }
        }
        panic!("prometheus did not start; last log:\n{last_log}");
    }

    /// Polls `/-/ready` until it answers 200; on exit or timeout returns the log.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status}:\n{}", self.log()));
            }
            if http::get_with_timeout(self.addr, "/-/ready", Duration::from_secs(2))
                .is_ok_and(|r| r.status == 200)
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("not ready within {DEADLINE:?}:\n{}", self.log()));
            }
            std::thread::sleep(POLL);
        }
    }

    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("prometheus exited with {status}; log:\n{}", self.log());
        }
    }

    /// The value of an instant query that returns exactly one sample, or None (no sample yet,
    /// or the API answered something else).
    fn query_value(&self, promql: &str) -> Option<f64> {
        let path = format!("/api/v1/query?query={}", http::encode_component(promql));
        let resp = http::get(self.addr, &path).ok()?;
        if resp.status != 200 {
            return None;
        }
        let body = json::parse(&resp.text()).ok()?;
        if body.get("status").and_then(json::Value::as_str) != Some("success") {
            return None;
        }
        let result = body.get("data")?.get("result")?.as_array()?;
        let [sample] = result.as_slice() else {
            return None;
        };
        let value = sample.get("value")?.as_array()?;
        value.get(1)?.as_str()?.parse().ok()
    }

    /// Waits until `/api/v1/rules` lists `count` rules that have all been evaluated at least
    /// once, and returns the response body.
    fn wait_for_rules(&self, count: usize) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(resp) = http::get(self.addr, "/api/v1/rules") {
                let text = resp.text();
                let rules = json::parse(&text)
                    .ok()
                    .and_then(|b| {
                        let groups = b.get("data")?.get("groups")?.as_array()?.clone();
                        Some(
                            groups
                                .iter()
                                .filter_map(|g| g.get("rules")?.as_array().cloned())
                                .flatten()
                                .collect::<Vec<_>>(),
                        )
                    })
                    .unwrap_or_default();
                let evaluated = rules
                    .iter()
                    .filter(|r| {
                        r.get("lastEvaluation")
                            .and_then(json::Value::as_str)
                            .is_some_and(|t| !t.starts_with("0001-"))
                    })
                    .count();
                if rules.len() == count && evaluated == count {
                    return text;
                }
                assert!(
                    Instant::now() < deadline,
                    "expected {count} evaluated rules, got {} ({evaluated} evaluated): {text}",
                    rules.len()
                );
            }
            assert!(Instant::now() < deadline, "no answer from /api/v1/rules");
            std::thread::sleep(POLL);
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // SIGTERM to exactly the process we spawned (not yet reaped, so the pid is still ours),
        // a bounded wait for its clean exit, then SIGKILL.
        if let Ok(None) = self.child.try_wait() {
            let pid = self.child.id() as libc::pid_t;
            // SAFETY: kill(2) on our own unreaped child's pid.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("prometheus kept its directory {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// JSON logs
// ---------------------------------------------------------------------------------------------

#[test]
fn json_logs_record_config_changes_and_rejected_clients() {
    let kind = target_kind(option_env!("CARGO_BIN_EXE_shoal-server"));
    if matches!(kind, ServerKind::Redis) {
        eprintln!("skipped: Redis has no JSON logs");
        return;
    }
    let log_dir = make_temp_dir("json-log").expect("temp dir");
    let log_path = log_dir.join("shoal.log");
    let log_arg = log_path.to_string_lossy().into_owned();
    let mut server = ServerProcess::start(kind, &["--log-format", "json", "--logfile", &log_arg])
        .expect("start shoal");
    let mut c = RawClient::connect(server.addr()).expect("connect");
    let mut ok = |args: &[&[u8]]| {
        let reply = c.command(args).expect("command");
        assert_eq!(reply, Frame::Simple("OK".into()), "{args:?}");
    };
    ok(&[b"CONFIG", b"SET", b"maxmemory", b"10mb"]);
    // At `warning`, the next change is not logged: the level is applied at run time.
    ok(&[b"CONFIG", b"SET", b"loglevel", b"warning"]);
    ok(&[b"CONFIG", b"SET", b"maxmemory", b"20mb"]);
    ok(&[b"CONFIG", b"SET", b"loglevel", b"notice"]);
    ok(&[b"CONFIG", b"SET", b"maxmemory", b"30mb", b"hz", b"20"]);
    ok(&[b"CONFIG", b"SET", b"maxclients", b"1"]);
    // This connection is the one allowed client, so the next is refused.
    let mut refused = RawClient::connect(server.addr()).expect("connect");
    let reply = refused.read_to_close().expect("read the refusal");
    assert_eq!(reply, b"-ERR max number of clients reached\r\n");
    ok(&[b"CONFIG", b"SET", b"requirepass", b"hunter2"]);

    // (parameter, old, new) in the order set; the second maxmemory change and the return to
    // `notice` happened at `warning` and are absent.
    let want = [
        ("maxmemory", "0", "10485760"),
        ("loglevel", "notice", "warning"),
        ("maxmemory", "20971520", "31457280"),
        ("hz", "10", "20"),
        ("maxclients", "10000", "1"),
        ("requirepass", "(redacted)", "(redacted)"),
    ];
    let deadline = Instant::now() + DEADLINE;
    let (changes, rejected, text) = loop {
        let text = fs::read_to_string(&log_path).unwrap_or_default();
        let mut changes = Vec::new();
        let mut rejected = Vec::new();
        for line in text.lines() {
            let v = json::parse(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            for key in ["timestamp", "level", "message"] {
                assert!(
                    v.get(key).and_then(json::Value::as_str).is_some(),
                    "no {key}: {line}"
                );
            }
            let field = |k: &str| {
                v.get(k)
                    .and_then(json::Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            if field("message") == "configuration changed by CONFIG SET" {
                assert_eq!(field("level"), "INFO", "{line}");
                changes.push((field("parameter"), field("old"), field("new")));
            }
            if field("message").starts_with("client rejected") {
                assert_eq!(field("level"), "WARN", "{line}");
                rejected.push((field("reason"), field("peer"), line.to_string()));
            }
        }
        if changes.len() >= want.len() && !rejected.is_empty() {
            break (changes, rejected, text);
        }
        assert!(
            Instant::now() < deadline,
            "log lines missing after {DEADLINE:?}:\n{text}"
        );
        std::thread::sleep(POLL);
    };
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(p, o, n)| (p.to_string(), o.to_string(), n.to_string()))
        .collect();
    assert_eq!(changes, want, "log:\n{text}");
    assert!(
        !text.contains("hunter2"),
        "the password was logged:\n{text}"
    );
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].0, "maxclients", "{}", rejected[0].2);
    assert!(rejected[0].1.starts_with("127.0.0.1:"), "{}", rejected[0].2);
    server.stop().expect("stop shoal");
    let _ = fs::remove_dir_all(&log_dir);
}

// ---------------------------------------------------------------------------------------------
// Helpers: tools, the metric catalogue, PromQL scanning
// ---------------------------------------------------------------------------------------------

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The path of `name` on PATH; fails the test with instructions when it is missing.
fn find_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "`{name}` is not on PATH. Install Debian's prometheus package \
         (apt-get install --no-install-recommends prometheus), as .ci/run does."
    );
}

/// Runs promtool with `args` in `dir` and fails the test with its output unless it succeeds.
fn promtool(dir: &Path, args: &[&str]) -> Output {
    let bin = find_tool("promtool");
    let out = Command::new(&bin)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    assert!(
        out.status.success(),
        "promtool {} failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The metric table of `deploy/METRICS.md`: name to type.
fn catalogue() -> BTreeMap<String, String> {
    let text = read(&deploy_dir().join("METRICS.md"));
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // `| name | type | labels | meaning |` splits into an empty first cell, then the cells.
        let (Some(name), Some(kind)) = (cells.get(1), cells.get(2)) else {
            continue;
        };
        let Some(name) = name.strip_prefix('`').and_then(|n| n.strip_suffix('`')) else {
            continue;
        };
        if name.starts_with("shoal_") {
            out.insert(name.to_string(), kind.to_string());
        }
    }
    assert!(out.len() > 30, "METRICS.md table not found: {out:?}");
    out
}

/// Checks that `expr` names at least one metric and only catalogued ones (a histogram through
/// its `_bucket`, `_sum` and `_count` series). Returns the names.
fn check_metrics(expr: &str, catalogue: &BTreeMap<String, String>) -> Result<Vec<String>, String> {
    let names = metric_names(expr);
    if names.is_empty() {
        return Err(format!("no metric in {expr:?}"));
    }
    for name in &names {
        let known = match catalogue.get(name) {
            Some(kind) => kind != "histogram",
            None => ["_bucket", "_sum", "_count"].iter().any(|suffix| {
                name.strip_suffix(suffix)
                    .and_then(|base| catalogue.get(base))
                    .is_some_and(|kind| kind == "histogram")
            }),
        };
        if !known {
            return Err(format!(
                "{name} (in {expr:?}) is not a metric listed in deploy/METRICS.md"
            ));
        }
    }
    Ok(names)
}

/// The metric names a PromQL expression selects, in order of appearance. Skips strings, label
/// matchers `{...}`, ranges and subqueries `[...]`, comments, numbers and durations, Grafana
/// variables, function and aggregation names (identifiers followed by `(`), keywords, and the
/// label lists of `by`, `without`, `on`, `ignoring`, `group_left` and `group_right`.
fn metric_names(expr: &str) -> Vec<String> {
    // Aggregation operators are keywords in PromQL, and may be followed by `by (...)` rather
    // than by their parenthesis.
    const KEYWORDS: [&str; 24] = [
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "atan2",
        "inf",
        "nan",
        "start",
        "end",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    const LABEL_LISTS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let b = expr.as_bytes();
    let mut names = Vec::new();
    let mut i = 0;
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let skip_ws = |mut j: usize| {
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        j
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' | b'\'' | b'`' => i = skip_string(b, i),
            b'{' => i = skip_group(b, i, b'{', b'}'),
            b'[' => i = skip_group(b, i, b'[', b']'),
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'$' => {
                i += 1;
                if i < b.len() && b[i] == b'{' {
                    i = skip_group(b, i, b'{', b'}');
                }
                while i < b.len() && is_ident(b[i]) {
                    i += 1;
                }
            }
            b'0'..=b'9' | b'.' => {
                while i < b.len() && (is_ident(b[i]) || b[i] == b'.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {
                let start = i;
                while i < b.len() && is_ident(b[i]) {
                    i += 1;
                }
                let word = &expr[start..i];
                let next = skip_ws(i);
                let followed_by_paren = next < b.len() && b[next] == b'(';
                let lower = word.to_ascii_lowercase();
                if LABEL_LISTS.contains(&lower.as_str()) {
                    if followed_by_paren {
                        i = skip_group(b, next, b'(', b')');
                    }
                } else if followed_by_paren || KEYWORDS.contains(&lower.as_str()) {
                    // A function, an aggregation or a keyword.
                } else {
                    names.push(word.to_string());
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// The index just past the string literal starting at `b[i]`.
fn skip_string(b: &[u8], i: usize) -> usize {
    let quote = b[i];
    let mut j = i + 1;
    while j < b.len() && b[j] != quote {
        // Backquoted strings have no escapes.
        if b[j] == b'\\' && quote != b'`' {
            j += 1;
        }
        j += 1;
    }
    j + 1
}

/// The index just past the bracket that closes the one at `b[i]`, stepping over strings.
fn skip_group(b: &[u8], i: usize, open: u8, close: u8) -> usize {
    let mut depth = 0;
    let mut j = i;
    while j < b.len() {
        match b[j] {
            b'"' | b'\'' | b'`' => {
                j = skip_string(b, j);
                continue;
            }
            c if c == open => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    j
}

/// The `expr:` values of a Prometheus rules file: single-line ones and `|` blocks (the lines
/// indented deeper than the key). Enough YAML for the file this repository ships.
fn yaml_exprs(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim_start().trim_start_matches("- ");
        i += 1;
        let Some(value) = trimmed.strip_prefix("expr:") else {
            continue;
        };
        let value = value.trim();
        if value == "|" || value == ">" || value == "|-" || value == ">-" {
            let mut block = Vec::new();
            while i < lines.len() {
                let l = lines[i];
                let deeper = l.len() - l.trim_start().len() > indent;
                if !l.trim().is_empty() && !deeper {
                    break;
                }
                block.push(l.trim());
                i += 1;
            }
            out.push(block.join("\n").trim().to_string());
        } else {
            out.push(value.trim_matches(['\'', '"']).to_string());
        }
    }
    out
}

/// Just enough JSON for these tests: Grafana's dashboard, Prometheus's API answers and JSON log
/// lines. The workspace has no JSON crate the tests could use.
mod json {
    /// A parsed JSON value. Objects keep their members in order.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Value {
        Null,
        Bool(bool),
        Number(f64),
        String(String),
        Array(Vec<Value>),
        Object(Vec<(String, Value)>),
    }

    impl Value {
        /// The member `key` of an object.
        pub fn get(&self, key: &str) -> Option<&Value> {
            match self {
                Value::Object(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
                _ => None,
            }
        }

        pub fn as_str(&self) -> Option<&str> {
            match self {
                Value::String(s) => Some(s),
                _ => None,
            }
        }

        pub fn as_f64(&self) -> Option<f64> {
            match self {
                Value::Number(n) => Some(*n),
                _ => None,
            }
        }

        pub fn as_array(&self) -> Option<&Vec<Value>> {
            match self {
                Value::Array(a) => Some(a),
                _ => None,
            }
        }
    }

    /// Parses one complete JSON text; trailing non-whitespace is an error.
    pub fn parse(text: &str) -> Result<Value, String> {
        let mut p = Parser {
            b: text.as_bytes(),
            i: 0,
        };
        let v = p.value(0)?;
        p.ws();
        if p.i != p.b.len() {
            return Err(p.err("trailing characters"));
        }
        Ok(v)
    }

    /// `s` as a JSON string literal (also a valid YAML double-quoted scalar).
    pub fn quote(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    struct Parser<'a> {
        b: &'a [u8],
        i: usize,
    }

    impl Parser<'_> {
        fn err(&self, what: &str) -> String {
            format!("{what} at byte {}", self.i)
        }

        fn ws(&mut self) {
            while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
                self.i += 1;
            }
        }

        fn eat(&mut self, lit: &str) -> bool {
            if self.b[self.i..].starts_with(lit.as_bytes()) {
                self.i += lit.len();
                true
            } else {
                false
            }
        }

        fn value(&mut self, depth: usize) -> Result<Value, String> {
            if depth > 128 {
                return Err(self.err("nesting too deep"));
            }
            self.ws();
            match self.b.get(self.i) {
                None => Err(self.err("unexpected end")),
                Some(b'{') => {
                    self.i += 1;
                    let mut members = Vec::new();
                    self.ws();
                    if self.eat("}") {
                        return Ok(Value::Object(members));
                    }
                    loop {
                        self.ws();
                        let key = self.string()?;
                        self.ws();
                        if !self.eat(":") {
                            return Err(self.err("expected ':'"));
                        }
                        members.push((key, self.value(depth + 1)?));
                        self.ws();
                        if self.eat("}") {
                            return Ok(Value::Object(members));
                        }
                        if !self.eat(",") {
                            return Err(self.err("expected ',' or '}'"));
                        }
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    let mut items = Vec::new();
                    self.ws();
                    if self.eat("]") {
                        return Ok(Value::Array(items));
                    }
                    loop {
                        items.push(self.value(depth + 1)?);
                        self.ws();
                        if self.eat("]") {
                            return Ok(Value::Array(items));
                        }
                        if !self.eat(",") {
                            return Err(self.err("expected ',' or ']'"));
                        }
                    }
                }
                Some(b'"') => Ok(Value::String(self.string()?)),
                Some(_) if self.eat("true") => Ok(Value::Bool(true)),
                Some(_) if self.eat("false") => Ok(Value::Bool(false)),
                Some(_) if self.eat("null") => Ok(Value::Null),
                Some(_) => self.number(),
            }
        }

        fn number(&mut self) -> Result<Value, String> {
            let start = self.i;
            while self.i < self.b.len()
                && matches!(
                    self.b[self.i],
                    b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                )
            {
                self.i += 1;
            }
            let text = std::str::from_utf8(&self.b[start..self.i]).map_err(|e| e.to_string())?;
            // Rust's float syntax is a superset of JSON's only in forms JSON writers never
            // produce (`+1`, `.5`, `1.`), which is fine for a test's reader.
            if text.is_empty() || text.starts_with('+') {
                return Err(self.err("expected a value"));
            }
            text.parse()
                .map(Value::Number)
                .map_err(|_| self.err("bad number"))
        }

        fn string(&mut self) -> Result<String, String> {
            if !self.eat("\"") {
                return Err(self.err("expected a string"));
            }
            let mut out = Vec::new();
            loop {
                let Some(&c) = self.b.get(self.i) else {
                    return Err(self.err("unterminated string"));
                };
                self.i += 1;
                match c {
                    b'"' => break,
                    b'\\' => {
                        let Some(&e) = self.b.get(self.i) else {
                            return Err(self.err("unterminated escape"));
                        };
                        self.i += 1;
                        let ch = match e {
                            b'"' => '"',
                            b'\\' => '\\',
                            b'/' => '/',
                            b'b' => '\u{8}',
                            b'f' => '\u{c}',
                            b'n' => '\n',
                            b'r' => '\r',
                            b't' => '\t',
                            b'u' => self.unicode_escape()?,
                            _ => return Err(self.err("bad escape")),
                        };
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    }
                    c if c < 0x20 => return Err(self.err("control character in string")),
                    c => out.push(c),
                }
            }
            String::from_utf8(out).map_err(|_| self.err("invalid UTF-8"))
        }

        /// The character of a `\uXXXX` escape (the `\u` already read), joining surrogate pairs.
        fn unicode_escape(&mut self) -> Result<char, String> {
            let hi = self.hex4()?;
            let code = if (0xD800..0xDC00).contains(&hi) {
                if !self.eat("\\u") {
                    return Err(self.err("lone surrogate"));
                }
                let lo = self.hex4()?;
                if !(0xDC00..0xE000).contains(&lo) {
                    return Err(self.err("bad surrogate pair"));
                }
                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
            } else {
                hi
            };
            char::from_u32(code).ok_or_else(|| self.err("bad \\u escape"))
        }

        fn hex4(&mut self) -> Result<u32, String> {
            let digits = self
                .b
                .get(self.i..self.i + 4)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| u32::from_str_radix(d, 16).ok())
                .ok_or_else(|| self.err("bad \\u escape"))?;
            self.i += 4;
            Ok(digits)
        }
    }

    #[test]
    fn parses_what_the_tests_read() {
        let v = parse(
            r#" {"a": [1, -2.5e3, true, false, null], "b\u00e9\n": "x\"\u263a\ud83d\ude00"} "#,
        )
        .unwrap();
        assert_eq!(
            v.get("a"),
            Some(&Value::Array(vec![
                Value::Number(1.0),
                Value::Number(-2500.0),
                Value::Bool(true),
                Value::Bool(false),
                Value::Null
            ]))
        );
        assert_eq!(v.get("bé\n").and_then(Value::as_str), Some("x\"☺😀"));
        for bad in [
            "",
            "{",
            "[1,]",
            r#"{"a" 1}"#,
            "tru",
            "1 2",
            "\"\u{1}\"",
            r#""\ud800""#,
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(
            parse(&quote("a\"b\\c\n")).unwrap(),
            Value::String("a\"b\\c\n".into())
        );
    }
}
