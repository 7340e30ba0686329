//! `INFO`, `CLIENT LIST`/`CLIENT INFO` and `MEMORY DOCTOR` compared with a real redis-server 7.0.
//!
//! Each test starts Shoal and redis-server with the same arguments, sends both the same commands
//! on one connection each, and compares what comes back:
//!
//! - `INFO everything`: the section headers, the blank lines between sections and every field
//!   name in order; the values of fields whose value is fixed for a fresh standalone master
//!   without persistence (`role:master`, `rdb_last_bgsave_status:ok`, `aof_enabled:0`, ...) or
//!   follows from the shared workload (hits, misses, commands, input bytes); and the form of
//!   every other value (integer, decimal with so many places, percentage, human size, 40 hex
//!   digits, text).
//! - Which sections each argument list selects: default, `all`, `everything`, several names,
//!   duplicates, unknown names, any case, `module_list`.
//! - `commandstats`, `errorstats`, `latencystats` and `keyspace` after the same workload.
//! - The fields of `CLIENT LIST` and `CLIENT INFO` lines, in order, for a fresh client, for a
//!   named client on database 3, for an idle second client and in RESP3.
//! - `MEMORY DOCTOR` on an empty instance, byte for byte in both protocols.
//!
//! The differences allowed are listed in [`SHOAL_ONLY_INFO_FIELDS`] and
//! [`SHOAL_ONLY_CLIENT_FIELDS`]: fields Shoal adds after Redis's, never in place of one.
//! `SHOAL_TEST_AGAINST=redis` runs the candidate side against a second redis-server, which checks
//! that every expectation here is Redis's own behaviour.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use shoal_testkit::{target_kind, Frame, RawClient, ServerKind, ServerProcess};

/// Bounds every read, so a server that stops answering fails the test instead of hanging it.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Fields only Shoal prints, at the end of their section: its own version and the lock-stripe
/// count it was started with. Both sides are compared with these left out.
const SHOAL_ONLY_INFO_FIELDS: &[&str] = &["shoal_version", "lock_stripes"];

/// `CLIENT LIST` fields Redis 7.0 lacks: Redis 7.2 added them after `resp` for `CLIENT SETINFO`,
/// which Shoal implements, so Shoal prints them where Redis 7.2 does.
const SHOAL_ONLY_CLIENT_FIELDS: &[&str] = &["lib-name", "lib-ver"];

/// Every section of `INFO everything`, in Redis's order, with its header.
const SECTIONS: &[(&str, &str)] = &[
    ("server", "Server"),
    ("clients", "Clients"),
    ("memory", "Memory"),
    ("persistence", "Persistence"),
    ("stats", "Stats"),
    ("replication", "Replication"),
    ("cpu", "CPU"),
    ("modules", "Modules"),
    ("commandstats", "Commandstats"),
    ("errorstats", "Errorstats"),
    ("latencystats", "Latencystats"),
    ("cluster", "Cluster"),
    ("keyspace", "Keyspace"),
];

/// Sections whose lines depend on the commands run rather than forming a fixed list of fields;
/// [`dynamic_sections_match_after_the_same_workload`] compares them.
const DYNAMIC_SECTIONS: &[&str] = &["Commandstats", "Errorstats", "Latencystats", "Keyspace"];

/// Fields whose values must be equal on both servers after the shared workload: constants of a
/// standalone master without persistence, replication or modules, facts of the machine both run
/// on, configuration both were given, and counters the workload determines.
const SAME_VALUE: &[(&str, &[&str])] = &[
    (
        "Server",
        &[
            "redis_version",
            "redis_git_sha1",
            "redis_git_dirty",
            "redis_mode",
            "os",
            "arch_bits",
            "monotonic_clock",
            "multiplexing_api",
            "atomicvar_api",
            "process_supervised",
            "uptime_in_days",
            "hz",
            "configured_hz",
            "config_file",
            "io_threads_active",
        ],
    ),
    (
        "Clients",
        &[
            "connected_clients",
            "cluster_connections",
            "maxclients",
            "blocked_clients",
            "tracking_clients",
            "clients_in_timeout_table",
        ],
    ),
    (
        "Memory",
        &[
            "total_system_memory",
            "total_system_memory_human",
            "used_memory_scripts_eval",
            "number_of_cached_scripts",
            "number_of_functions",
            "number_of_libraries",
            "maxmemory",
            "maxmemory_human",
            "maxmemory_policy",
            "mem_not_counted_for_evict",
            "mem_replication_backlog",
            "mem_total_replication_buffers",
            "mem_clients_slaves",
            "mem_cluster_links",
            "mem_aof_buffer",
            "mem_allocator",
            "active_defrag_running",
            "lazyfree_pending_objects",
            "lazyfreed_objects",
        ],
    ),
    (
        "Persistence",
        &[
            "loading",
            "async_loading",
            "current_cow_peak",
            "current_cow_size",
            "current_cow_size_age",
            "current_fork_perc",
            "current_save_keys_processed",
            "current_save_keys_total",
            "rdb_changes_since_last_save",
            "rdb_bgsave_in_progress",
            "rdb_last_bgsave_status",
            "rdb_last_bgsave_time_sec",
            "rdb_current_bgsave_time_sec",
            "rdb_saves",
            "rdb_last_cow_size",
            "rdb_last_load_keys_expired",
            "rdb_last_load_keys_loaded",
            "aof_enabled",
            "aof_rewrite_in_progress",
            "aof_rewrite_scheduled",
            "aof_last_rewrite_time_sec",
            "aof_current_rewrite_time_sec",
            "aof_last_bgrewrite_status",
            "aof_rewrites",
            "aof_rewrites_consecutive_failures",
            "aof_last_write_status",
            "aof_last_cow_size",
            "module_fork_in_progress",
            "module_fork_last_cow_size",
        ],
    ),
    (
        "Stats",
        &[
            "total_commands_processed",
            "total_net_input_bytes",
            "total_net_repl_input_bytes",
            "total_net_repl_output_bytes",
            "instantaneous_input_repl_kbps",
            "instantaneous_output_repl_kbps",
            "rejected_connections",
            "sync_full",
            "sync_partial_ok",
            "sync_partial_err",
            "expired_keys",
            "evicted_keys",
            "evicted_clients",
            "total_eviction_exceeded_time",
            "current_eviction_exceeded_time",
            "keyspace_hits",
            "keyspace_misses",
            "pubsub_channels",
            "pubsub_patterns",
            "pubsubshard_channels",
            "latest_fork_usec",
            "total_forks",
            "migrate_cached_sockets",
            "slave_expires_tracked_keys",
            "active_defrag_hits",
            "active_defrag_misses",
            "active_defrag_key_hits",
            "active_defrag_key_misses",
            "total_active_defrag_time",
            "current_active_defrag_time",
            "tracking_total_keys",
            "tracking_total_items",
            "tracking_total_prefixes",
            "unexpected_error_replies",
            "total_error_replies",
            "dump_payload_sanitizations",
            "io_threaded_reads_processed",
            "io_threaded_writes_processed",
        ],
    ),
    (
        "Replication",
        &[
            "role",
            "connected_slaves",
            "master_failover_state",
            "master_replid2",
            "master_repl_offset",
            "second_repl_offset",
            "repl_backlog_active",
            "repl_backlog_size",
            "repl_backlog_first_byte_offset",
            "repl_backlog_histlen",
        ],
    ),
    ("Cluster", &["cluster_enabled"]),
];

/// `CLIENT LIST` fields with equal values on both servers for the same client history.
const SAME_CLIENT_VALUE: &[&str] = &[
    "argv-mem",
    "name",
    "flags",
    "db",
    "sub",
    "psub",
    "ssub",
    "multi",
    "multi-mem",
    "obl",
    "oll",
    "omem",
    "events",
    "cmd",
    "user",
    "redir",
    "resp",
];

// ---------------------------------------------------------------------------------------------
// Servers, clients and parsing
// ---------------------------------------------------------------------------------------------

/// The server under test: Shoal's binary, unless `SHOAL_TEST_AGAINST=redis` redirects it.
fn candidate() -> ServerKind {
    target_kind(option_env!("CARGO_BIN_EXE_shoal-server"))
}

/// The candidate and a reference redis-server, started with the same arguments.
struct Pair {
    shoal: ServerProcess,
    redis: ServerProcess,
}

impl Pair {
    fn start(args: &[&str]) -> Pair {
        Pair {
            shoal: ServerProcess::start(candidate(), args).expect("start the candidate"),
            redis: ServerProcess::start(ServerKind::Redis, args).expect("start redis-server"),
        }
    }

    /// Runs `f` on a fresh connection to each server: (candidate's result, Redis's result).
    fn both<T>(&self, f: impl Fn(&mut RawClient) -> T) -> (T, T) {
        let run = |addr: SocketAddr| f(&mut connect(addr));
        (run(self.shoal.addr()), run(self.redis.addr()))
    }
}

fn connect(addr: SocketAddr) -> RawClient {
    RawClient::connect_with_timeout(addr, TIMEOUT).expect("connect")
}

/// The raw bytes of a reply, for byte-exact comparisons.
fn raw(client: &mut RawClient, args: &[&str]) -> Vec<u8> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    client.command_raw(&args).expect("command").raw.to_vec()
}

fn text(frame: &Frame) -> String {
    match frame {
        Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        Frame::Verbatim { text, .. } => String::from_utf8_lossy(text).into_owned(),
        other => panic!("expected a text reply, got {other:?}"),
    }
}

fn info(client: &mut RawClient, sections: &[&str]) -> String {
    let mut args = vec!["INFO"];
    args.extend_from_slice(sections);
    text(&client.call(&args))
}

/// The `# Title` lines of an INFO text, in order.
fn headers(info: &str) -> Vec<String> {
    info.lines()
        .filter_map(|l| l.strip_prefix("# "))
        .map(str::to_string)
        .collect()
}

/// One section of an INFO text: its title and its `name:value` lines in order.
#[derive(Debug)]
struct Section {
    title: String,
    fields: Vec<(String, String)>,
}

impl Section {
    fn names(&self) -> Vec<&str> {
        self.fields.iter().map(|(k, _)| k.as_str()).collect()
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Splits an INFO text into sections, checking the framing Redis uses: every line ends with
/// CRLF, each section starts with its `# Title` line, and sections are separated by exactly one
/// empty line.
fn sections(info: &str) -> Vec<Section> {
    assert!(
        info.is_empty() || info.ends_with("\r\n"),
        "INFO text must end with CRLF: {info:?}"
    );
    let mut out: Vec<Section> = Vec::new();
    let mut after_blank = true;
    for line in info.split_terminator("\r\n") {
        assert!(!line.contains('\n'), "bare LF in INFO line {line:?}");
        if line.is_empty() {
            assert!(
                !after_blank,
                "two blank lines in a row or a leading blank line"
            );
            after_blank = true;
            continue;
        }
        if let Some(title) = line.strip_prefix("# ") {
            assert!(after_blank, "section {title} does not follow a blank line");
            out.push(Section {
                title: title.to_string(),
                fields: Vec::new(),
            });
            after_blank = false;
            continue;
        }
        assert!(!after_blank, "field line {line:?} outside a section");
        let (k, v) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("INFO line without a colon: {line:?}"));
        let section = out.last_mut().expect("a field before any section");
        section.fields.push((k.to_string(), v.to_string()));
    }
    out
}

/// Drops Shoal-only fields, so both sides list Redis's fields alone.
fn without_shoal_only(mut s: Vec<Section>) -> Vec<Section> {
    for section in &mut s {
        section
            .fields
            .retain(|(k, _)| !SHOAL_ONLY_INFO_FIELDS.contains(&k.as_str()));
    }
    s
}

/// The form of a value, for fields whose values differ but must be written alike.
fn shape(value: &str) -> String {
    let is_hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    if value.len() == 40 && is_hex(value) {
        return "40 hex digits".into();
    }
    if value.parse::<i64>().is_ok() {
        return "integer".into();
    }
    let decimal = |s: &str| -> Option<usize> {
        let (int, frac) = s.split_once('.')?;
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        (digits(int.trim_start_matches('-')) && digits(frac)).then_some(frac.len())
    };
    if let Some(places) = decimal(value) {
        return format!("decimal with {places} places");
    }
    if let Some(places) = value.strip_suffix('%').and_then(decimal) {
        return format!("percentage with {places} places");
    }
    // Redis's human sizes: `512B`, `1.50K`, `23.54G`.
    if let Some(last) = value.chars().last().filter(|c| "BKMGTP".contains(*c)) {
        let number = &value[..value.len() - 1];
        if (last == 'B' && number.parse::<u64>().is_ok()) || decimal(number) == Some(2) {
            return "human size".into();
        }
    }
    "text".into()
}

/// The `field=value` pairs of one CLIENT LIST line, in order.
fn client_fields(line: &str) -> Vec<(String, String)> {
    line.trim_end_matches('\n')
        .split(' ')
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .unwrap_or_else(|| panic!("client field without '=': {kv:?} in {line:?}"));
            (k.to_string(), v.to_string())
        })
        .filter(|(k, _)| !SHOAL_ONLY_CLIENT_FIELDS.contains(&k.as_str()))
        .collect()
}

fn client_value<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name}= in {fields:?}"))
}

/// Compares two CLIENT LIST lines: the same names in the same order, equal values where the
/// same history must give equal values, and the same form everywhere else.
fn assert_same_client_line(what: &str, got: &str, want: &str) {
    let g = client_fields(got);
    let w = client_fields(want);
    let names = |f: &[(String, String)]| f.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&g),
        names(&w),
        "{what}: CLIENT field names\n  candidate: {got}\n  redis:     {want}"
    );
    for ((k, gv), (_, wv)) in g.iter().zip(&w) {
        if SAME_CLIENT_VALUE.contains(&k.as_str()) {
            assert_eq!(
                gv, wv,
                "{what}: {k}=\n  candidate: {got}\n  redis:     {want}"
            );
        } else if k == "addr" || k == "laddr" {
            let port = |v: &str| v.rsplit_once(':').map(|(_, p)| p.parse::<u16>().is_ok());
            assert_eq!(port(gv), Some(true), "{what}: {k}={gv}");
        } else {
            assert_eq!(
                shape(gv),
                shape(wv),
                "{what}: form of {k}= (candidate {gv:?}, redis {wv:?})"
            );
        }
    }
}

/// The same commands on both sides, after `CONFIG RESETSTAT` so that counters start from zero
/// whatever the start-up probes sent: writes, a volatile key, hits and misses, a failed command
/// (`INCR` on text), a rejected one (wrong arity) and an unknown command.
fn workload(client: &mut RawClient) {
    assert_eq!(
        client.call(&["CONFIG", "RESETSTAT"]),
        Frame::Simple("OK".into())
    );
    client.call(&["SET", "a", "1"]);
    client.call(&["SET", "text", "abc"]);
    client.call(&["SET", "v", "1", "EX", "1000"]);
    client.call(&["GET", "a"]);
    client.call(&["GET", "missing"]);
    client.call(&["MGET", "a", "nope", "text"]);
    client.call(&["INCR", "a"]);
    client.call(&["SELECT", "4"]);
    client.call(&["SET", "other", "x"]);
    client.call(&["SELECT", "0"]);
    assert!(matches!(client.call(&["INCR", "text"]), Frame::Error(_)));
    assert!(matches!(client.call(&["GET"]), Frame::Error(_)));
    assert!(matches!(client.call(&["NOSUCHCOMMAND"]), Frame::Error(_)));
}

// ---------------------------------------------------------------------------------------------
// INFO
// ---------------------------------------------------------------------------------------------

#[test]
fn info_everything_has_redis_fields_in_order() {
    let pair = Pair::start(&[]);
    let (got, want) = pair.both(|c| {
        workload(c);
        info(c, &["everything"])
    });
    let got_sections = without_shoal_only(sections(&got));
    let want_sections = without_shoal_only(sections(&want));
    let titles = |s: &[Section]| s.iter().map(|s| s.title.clone()).collect::<Vec<_>>();
    let expected: Vec<String> = SECTIONS.iter().map(|(_, t)| t.to_string()).collect();
    assert_eq!(titles(&want_sections), expected, "Redis's own sections");
    assert_eq!(
        titles(&got_sections),
        expected,
        "sections of INFO everything"
    );

    let mut checked = 0;
    for (g, w) in got_sections.iter().zip(&want_sections) {
        if DYNAMIC_SECTIONS.contains(&g.title.as_str()) {
            continue;
        }
        assert_eq!(
            g.names(),
            w.names(),
            "field names of # {} (left: candidate)",
            g.title
        );
        let same: &[&str] = SAME_VALUE
            .iter()
            .find(|(t, _)| *t == g.title)
            .map_or(&[], |(_, f)| *f);
        for ((k, gv), (_, wv)) in g.fields.iter().zip(&w.fields) {
            if same.contains(&k.as_str()) {
                assert_eq!(gv, wv, "# {}: value of {k} (left: candidate)", g.title);
            } else {
                assert_eq!(
                    shape(gv),
                    shape(wv),
                    "# {}: form of {k} (candidate {gv:?}, redis {wv:?})",
                    g.title
                );
            }
            checked += 1;
        }
        // Every name listed as fixed must exist, or a typo would silently skip the check.
        for name in same {
            assert!(
                w.value(name).is_some(),
                "# {}: Redis has no {name}",
                g.title
            );
        }
    }
    assert!(checked > 150, "only {checked} fields compared");

    // Values that differ between the servers but have a known relation.
    let section = |s: &[Section], title: &str, field: &str| -> String {
        s.iter()
            .find(|s| s.title == title)
            .and_then(|s| s.value(field))
            .unwrap_or_else(|| panic!("no {field} in # {title}"))
            .to_string()
    };
    let run_id = section(&got_sections, "Server", "run_id");
    let replid = section(&got_sections, "Replication", "master_replid");
    assert_ne!(run_id, replid, "master_replid must not be the run id");
    let port = section(&got_sections, "Server", "tcp_port");
    assert_eq!(port, pair.shoal.port().to_string());
    // Both servers count their start as the last save; they started seconds apart at most.
    let saved = |s: &[Section]| -> i64 {
        section(s, "Persistence", "rdb_last_save_time")
            .parse()
            .expect("rdb_last_save_time")
    };
    let gap = (saved(&got_sections) - saved(&want_sections)).abs();
    assert!(gap <= 60, "rdb_last_save_time {gap} s apart");
}

#[test]
fn info_section_selection_matches_redis() {
    let pair = Pair::start(&[]);
    let cases: &[&[&str]] = &[
        &[],
        &["default"],
        &["all"],
        &["everything"],
        &["server", "clients"],
        &["nonexistent"],
        &["SERVER"],
        &["Server", "CLIENTS"],
        &["keyspace", "server"],
        &["server", "server"],
        &["server", "nonexistent", "clients"],
        &["all", "server"],
        &["everything", "nonexistent"],
        &["default", "commandstats"],
        &["default", "latencystats", "DEFAULT"],
        &["module_list"],
        &["modules"],
        &["commandstats"],
        &["latencystats"],
        &["errorstats", "cpu"],
    ];
    let (got, want) = pair.both(|c| {
        cases
            .iter()
            .map(|args| (args.join(" "), headers(&info(c, args))))
            .collect::<Vec<_>>()
    });
    for ((args, g), (_, w)) in got.iter().zip(&want) {
        assert_eq!(g, w, "headers of INFO {args} (left: candidate)");
    }
    // The defaults leave out the per-command sections; `all` and `everything` have them all.
    let default = &want[0].1;
    assert!(!default.contains(&"Commandstats".to_string()));
    assert!(!default.contains(&"Latencystats".to_string()));
    assert_eq!(want[2].1.len(), SECTIONS.len());
    assert_eq!(want[3].1.len(), SECTIONS.len());

    // An unknown section is an empty text, byte for byte, in both protocols.
    let (got, want) = pair.both(|c| {
        let resp2 = raw(c, &["INFO", "nonexistent"]);
        c.call(&["HELLO", "3"]);
        let resp3 = raw(c, &["INFO", "nonexistent"]);
        (resp2, resp3)
    });
    assert_eq!(got, want, "INFO nonexistent (left: candidate)");
    assert_eq!(want.0, b"$0\r\n\r\n");
    assert_eq!(want.1, b"=4\r\ntxt:\r\n");
}

#[test]
fn dynamic_sections_match_after_the_same_workload() {
    let pair = Pair::start(&[]);
    let (got, want) = pair.both(|c| {
        workload(c);
        let commandstats = info(c, &["commandstats"]);
        let errorstats = info(c, &["errorstats"]);
        let latencystats = info(c, &["latencystats"]);
        let keyspace = info(c, &["keyspace"]);
        (commandstats, errorstats, latencystats, keyspace)
    });

    // Commandstats: the same commands with the same counts. Redis lists them in hash order, so
    // they are compared as a map; timings differ.
    let counts = |text: &str| -> BTreeMap<String, String> {
        sections(text)[0]
            .fields
            .iter()
            .map(|(k, v)| {
                let kept: Vec<&str> = v.split(',').filter(|f| !f.starts_with("usec")).collect();
                (k.clone(), kept.join(","))
            })
            .collect()
    };
    assert_eq!(
        counts(&got.0),
        counts(&want.0),
        "commandstats (left: candidate)"
    );
    assert_eq!(
        counts(&want.0).get("cmdstat_incr").map(String::as_str),
        Some("calls=2,rejected_calls=0,failed_calls=1")
    );
    assert_eq!(
        counts(&want.0).get("cmdstat_get").map(String::as_str),
        Some("calls=2,rejected_calls=1,failed_calls=0")
    );
    for (name, value) in &sections(&got.0)[0].fields {
        let parts: Vec<&str> = value.split(',').collect();
        assert!(
            parts.len() == 5 && parts[2].starts_with("usec_per_call="),
            "{name}:{value}"
        );
        let per_call = parts[2].trim_start_matches("usec_per_call=");
        assert_eq!(shape(per_call), "decimal with 2 places", "{name}:{value}");
    }

    // Errorstats: exactly the same lines.
    assert_eq!(got.1, want.1, "errorstats (left: candidate)");

    // Latencystats: Redis has one line per command called. Once Shoal prints per-command lines
    // they must name the same commands, with the same percentiles, in Redis's format.
    let latency = |text: &str| -> BTreeMap<String, Vec<String>> {
        sections(text)[0]
            .fields
            .iter()
            .map(|(k, v)| {
                let percentiles = v
                    .split(',')
                    .map(|p| {
                        let (name, value) = p.split_once('=').expect("pNN=value");
                        assert_eq!(shape(value), "decimal with 3 places", "{k}:{v}");
                        name.to_string()
                    })
                    .collect();
                (k.clone(), percentiles)
            })
            .collect()
    };
    assert_eq!(headers(&got.2), ["Latencystats"]);
    let want_latency = latency(&want.2);
    assert_eq!(
        want_latency.get("latency_percentiles_usec_set"),
        Some(&vec!["p50".into(), "p99".into(), "p99.9".into()])
    );
    let got_latency = latency(&got.2);
    if !got_latency.is_empty() {
        assert_eq!(got_latency, want_latency, "latencystats (left: candidate)");
    }

    // Keyspace: the same databases, keys and volatile keys. avg_ttl is an estimate that Redis's
    // expiry cycle refines, so only its form is compared.
    let keyspace = |text: &str| -> Vec<(String, String)> {
        sections(text)[0]
            .fields
            .iter()
            .map(|(k, v)| {
                let (head, ttl) = v.rsplit_once(",avg_ttl=").expect("avg_ttl");
                assert_eq!(shape(ttl), "integer", "{k}:{v}");
                (k.clone(), head.to_string())
            })
            .collect()
    };
    assert_eq!(
        keyspace(&got.3),
        keyspace(&want.3),
        "keyspace (left: candidate)"
    );
    assert_eq!(
        keyspace(&want.3),
        [
            ("db0".to_string(), "keys=3,expires=1".to_string()),
            ("db4".to_string(), "keys=1,expires=0".to_string())
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// CLIENT LIST and CLIENT INFO
// ---------------------------------------------------------------------------------------------

/// The line of `CLIENT LIST` that describes the client with this id, with its newline.
fn own_line(list: &str, id: i64) -> String {
    let prefix = format!("id={id} ");
    let mine: Vec<&str> = list.lines().filter(|l| l.starts_with(&prefix)).collect();
    assert_eq!(mine.len(), 1, "client {id} in CLIENT LIST:\n{list}");
    format!("{}\n", mine[0])
}

fn client_id(c: &mut RawClient) -> i64 {
    match c.call(&["CLIENT", "ID"]) {
        Frame::Integer(id) => id,
        other => panic!("CLIENT ID answered {other:?}"),
    }
}

#[test]
fn client_list_and_info_have_redis_fields_in_order() {
    let pair = Pair::start(&[]);
    let (got, want) = pair.both(|c| {
        let id = client_id(c);
        // A second client that has connected and never sent a command.
        let idle = connect(c.stream().peer_addr().expect("peer address"));
        let idle_port = idle.stream().local_addr().expect("local address").port();

        // The server registers a connection when it accepts it, which may be a moment after
        // the client's connect returns, so the listing is read until the idle client is in it.
        let idle_addr = format!(" addr=127.0.0.1:{idle_port} ");
        let deadline = Instant::now() + TIMEOUT;
        let fresh_list = loop {
            let list = text(&c.call(&["CLIENT", "LIST"]));
            if list.contains(&idle_addr) {
                break list;
            }
            assert!(
                Instant::now() < deadline,
                "idle client never listed:\n{list}"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(fresh_list.ends_with('\n'), "{fresh_list:?}");
        let fresh = own_line(&fresh_list, id);
        let idle_line = fresh_list
            .lines()
            .find(|l| l.contains(&idle_addr))
            .map(|l| format!("{l}\n"))
            .unwrap_or_else(|| panic!("idle client in CLIENT LIST:\n{fresh_list}"));
        let fresh_info = text(&c.call(&["CLIENT", "INFO"]));

        assert_eq!(
            c.call(&["CLIENT", "SETNAME", "lister"]),
            Frame::Simple("OK".into())
        );
        assert_eq!(c.call(&["SELECT", "3"]), Frame::Simple("OK".into()));
        let named_info = text(&c.call(&["CLIENT", "INFO"]));
        let named_list = own_line(&text(&c.call(&["CLIENT", "LIST"])), id);
        let by_id = text(&c.call(&["CLIENT", "LIST", "ID", &id.to_string()]));

        c.call(&["HELLO", "3"]);
        let resp3 = c.call(&["CLIENT", "INFO"]);
        assert!(
            matches!(&resp3, Frame::Verbatim { format, .. } if format == b"txt"),
            "CLIENT INFO in RESP3 is verbatim text: {resp3:?}"
        );
        vec![
            ("fresh CLIENT LIST", fresh),
            ("idle client", idle_line),
            ("fresh CLIENT INFO", fresh_info),
            ("named CLIENT INFO", named_info),
            ("named CLIENT LIST", named_list),
            ("CLIENT LIST ID", by_id),
            ("RESP3 CLIENT INFO", text(&resp3)),
        ]
    });
    for ((what, g), (_, w)) in got.iter().zip(&want) {
        assert!(g.ends_with('\n') && g.lines().count() == 1, "{what}: {g:?}");
        assert_same_client_line(what, g, w);
    }

    // The values the scenario fixes, checked on Redis and (through the comparison above) on
    // the candidate.
    let field = |i: usize, name: &str| client_value(&client_fields(&want[i].1), name).to_string();
    let expect = [
        (0, "cmd", "client|list"),
        (0, "flags", "N"),
        (0, "db", "0"),
        (0, "resp", "2"),
        (0, "multi", "-1"),
        (1, "cmd", "NULL"),
        (2, "cmd", "client|info"),
        (3, "name", "lister"),
        (3, "db", "3"),
        (3, "cmd", "client|info"),
        (4, "cmd", "client|list"),
        (6, "resp", "3"),
    ];
    for (i, name, value) in expect {
        assert_eq!(field(i, name), value, "{} {name}", want[i].0);
    }
    // Shoal's extra fields come after Redis's last one, `resp`.
    let line = &got[0].1;
    if let Some(at) = line.find(" lib-name=") {
        assert!(line[..at].contains(" resp="), "{line}");
        assert!(line[at..].starts_with(" lib-name= lib-ver=\n"), "{line}");
    }
}

// ---------------------------------------------------------------------------------------------
// MEMORY DOCTOR
// ---------------------------------------------------------------------------------------------

#[test]
fn memory_doctor_matches_redis_on_an_empty_instance() {
    let pair = Pair::start(&[]);
    let (got, want) = pair.both(|c| {
        let resp2 = raw(c, &["MEMORY", "DOCTOR"]);
        c.call(&["HELLO", "3"]);
        let resp3 = raw(c, &["MEMORY", "DOCTOR"]);
        (resp2, resp3)
    });
    assert_eq!(
        String::from_utf8_lossy(&got.0),
        String::from_utf8_lossy(&want.0),
        "MEMORY DOCTOR in RESP2 (left: candidate)"
    );
    assert_eq!(got.1, want.1, "MEMORY DOCTOR in RESP3 (left: candidate)");
    let text = String::from_utf8_lossy(&want.0);
    assert!(
        text.contains("Hi Sam, this instance is empty or is using very little memory"),
        "{text}"
    );
}

/// Reads one `field:value` of an INFO text as a number.
fn field(info: &str, name: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no numeric {name} in:\n{info}"))
}

/// `FLUSHALL ASYNC` hands the keys to the lazy-free thread: `lazyfreed_objects` counts them once
/// freed, as in Redis, and `CONFIG RESETSTAT` zeroes it; socket reads and writes are counted.
#[test]
fn lazy_free_and_io_counters_follow_redis() {
    let pair = Pair::start(&[]);
    let (got, want) = pair.both(|c| {
        for i in 0..300 {
            let key = format!("k{i}");
            c.call(&["SET", &key, "v"]);
        }
        c.call(&["FLUSHALL", "ASYNC"]);
        let deadline = Instant::now() + TIMEOUT;
        let freed = loop {
            // Redis 7.0 reports both lazy-free counters in the memory section.
            let memory = info(c, &["memory"]);
            if field(&memory, "lazyfree_pending_objects") == 0
                && field(&memory, "lazyfreed_objects") > 0
            {
                break field(&memory, "lazyfreed_objects");
            }
            assert!(Instant::now() < deadline, "keys never freed:\n{memory}");
            std::thread::sleep(Duration::from_millis(10));
        };
        let stats = info(c, &["stats"]);
        // One command per read and one reply per write on this unpipelined connection.
        let reads = field(&stats, "total_reads_processed");
        let writes = field(&stats, "total_writes_processed");
        assert!(
            reads >= 302 && writes >= 302,
            "reads {reads}, writes {writes}"
        );
        c.call(&["CONFIG", "RESETSTAT"]);
        let after = field(&info(c, &["memory"]), "lazyfreed_objects");
        (freed, after)
    });
    assert_eq!(
        got, want,
        "(lazyfreed_objects, after RESETSTAT) (left: candidate)"
    );
    assert_eq!(want, (300, 0));
}
