//! Configuration the way Redis users know it: `redis.conf` syntax, `--directive value` on the
//! command line, and `CONFIG GET/SET/REWRITE` at run time, over one table of parameters.
//!
//! Values are kept in their canonical text form (what `CONFIG GET` prints) and validated by the
//! parameter's kind on every path in, so a file, the command line and `CONFIG SET` all accept and
//! reject exactly the same things.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How a parameter's value is parsed and checked.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    /// A byte count with Redis's units (`1k` = 1000, `1kb` = 1024, `mb`, `gb`, ...).
    Memory {
        min: u64,
        max: u64,
    },
    Enum(&'static [&'static str]),
    /// A number written in octal (file permissions), at most `max`.
    Octal {
        max: u32,
    },
    Str,
    /// `save`: pairs of `<seconds> <changes>`, or empty.
    SavePairs,
    /// `bind`: one or more addresses.
    AddrList,
    /// `latency-tracking-info-percentiles`: zero or more numbers between 0 and 100.
    Percentiles,
    /// `notify-keyspace-events`: Redis's class letters, shown in its canonical order.
    NotifyEvents,
    /// `client-output-buffer-limit`: `<class> <hard> <soft> <soft-seconds>` groups for the
    /// classes `normal`, `replica` (or `slave`) and `pubsub`; classes not named keep their
    /// limits.
    OutputLimits,
}

/// One configuration parameter.
#[derive(Debug)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub default: &'static str,
    /// Settable with `CONFIG SET`.
    pub mutable: bool,
    /// What it controls, for the README and `shoal-server --help`.
    pub doc: &'static str,
}

const fn p(
    name: &'static str,
    kind: Kind,
    default: &'static str,
    mutable: bool,
    doc: &'static str,
) -> Param {
    Param {
        name,
        kind,
        default,
        mutable,
        doc,
    }
}

const GB: u64 = 1 << 30;
const MAX_I32: i64 = i32::MAX as i64;

/// Every parameter Shoal knows, in the order `CONFIG REWRITE` and the README list them.
pub const PARAMS: &[Param] = &[
    p(
        "bind",
        Kind::AddrList,
        "127.0.0.1 -::1",
        true,
        "Addresses to listen on. A leading '-' means the address may be unavailable.",
    ),
    p(
        "port",
        Kind::Int { min: 0, max: 65535 },
        "6379",
        false,
        "TCP port; 0 disables TCP.",
    ),
    p(
        "unixsocket",
        Kind::Str,
        "",
        false,
        "Path of a Unix socket to listen on as well (empty: none).",
    ),
    p(
        "unixsocketperm",
        Kind::Octal { max: 0o777 },
        "0",
        false,
        "Permissions of the Unix socket, in octal (0: leave the default).",
    ),
    p(
        "protected-mode",
        Kind::Bool,
        "yes",
        true,
        "When no password is set, refuse clients that are not on the loopback interface.",
    ),
    p(
        "tcp-backlog",
        Kind::Int {
            min: 0,
            max: MAX_I32,
        },
        "511",
        false,
        "Listen backlog.",
    ),
    p(
        "tcp-keepalive",
        Kind::Int {
            min: 0,
            max: MAX_I32,
        },
        "300",
        true,
        "TCP keepalive interval in seconds (0: off).",
    ),
    p(
        "timeout",
        Kind::Int {
            min: 0,
            max: MAX_I32,
        },
        "0",
        true,
        "Close a client after this many idle seconds (0: never).",
    ),
    p(
        "maxclients",
        Kind::Int {
            min: 1,
            max: MAX_I32,
        },
        "10000",
        true,
        "Maximum number of connected clients.",
    ),
    p(
        "requirepass",
        Kind::Str,
        "",
        true,
        "Password clients must give with AUTH (empty: none).",
    ),
    p(
        "databases",
        Kind::Int {
            min: 1,
            max: MAX_I32,
        },
        "16",
        false,
        "Number of databases.",
    ),
    p(
        "hz",
        Kind::Int { min: 1, max: 500 },
        "10",
        true,
        "Background task frequency (active expiry cycles per second).",
    ),
    p(
        "active-expire-effort",
        Kind::Int { min: 1, max: 10 },
        "1",
        true,
        "How hard the active expiry cycle works (1-10).",
    ),
    p(
        "maxmemory",
        Kind::Memory {
            min: 0,
            max: u64::MAX,
        },
        "0",
        true,
        "Memory limit for the dataset (0: none).",
    ),
    p(
        "maxmemory-policy",
        Kind::Enum(&[
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "noeviction",
        ]),
        "noeviction",
        true,
        "What to evict when maxmemory is reached.",
    ),
    p(
        "maxmemory-samples",
        Kind::Int {
            min: 1,
            max: MAX_I32,
        },
        "5",
        true,
        "Keys sampled per eviction round.",
    ),
    p(
        "lfu-log-factor",
        Kind::Int {
            min: 0,
            max: MAX_I32,
        },
        "10",
        true,
        "LFU counter logarithm factor.",
    ),
    p(
        "lfu-decay-time",
        Kind::Int {
            min: 0,
            max: MAX_I32,
        },
        "1",
        true,
        "Minutes after which an idle key's LFU counter is decremented by one.",
    ),
    p(
        "proto-max-bulk-len",
        Kind::Memory {
            min: 1024 * 1024,
            max: (4 << 30) - (1 << 20),
        },
        "512mb",
        true,
        "Largest bulk string a client may send or a command may create (at most 4gb minus 1mb).",
    ),
    p(
        "proto-max-multibulk-len",
        Kind::Int {
            min: 1,
            max: MAX_I32,
        },
        "2147483647",
        true,
        "Shoal: most arguments one request may carry (Redis 7's fixed cap by default).",
    ),
    p(
        "proto-max-inline-len",
        Kind::Memory {
            min: 1024,
            max: 1 << 30,
        },
        "64kb",
        true,
        "Shoal: longest inline command line or length line accepted before a protocol error.",
    ),
    p(
        "hash-max-listpack-entries",
        Kind::Int { min: 0, max: i64::MAX },
        "512",
        true,
        "Hashes with at most this many fields use the compact listpack encoding.",
    ),
    p(
        "hash-max-listpack-value",
        Kind::Memory { min: 0, max: i64::MAX as u64 },
        "64",
        true,
        "Hashes whose fields and values are all at most this long use the listpack encoding.",
    ),
    p(
        "list-max-listpack-size",
        Kind::Int {
            min: i32::MIN as i64,
            max: MAX_I32,
        },
        "-2",
        true,
        "List node size: positive = elements per node, -1..-5 = 4, 8, 16, 32, 64 KiB per node (below -5 = 64 KiB).",
    ),
    p(
        "list-compress-depth",
        Kind::Int { min: 0, max: MAX_I32 },
        "0",
        true,
        "List nodes at each end left uncompressed (accepted; Shoal does not compress list nodes).",
    ),
    p(
        "set-max-intset-entries",
        Kind::Int { min: 0, max: i64::MAX },
        "512",
        true,
        "Sets of integers only with at most this many members use the intset encoding.",
    ),
    p(
        "zset-max-listpack-entries",
        Kind::Int { min: 0, max: i64::MAX },
        "128",
        true,
        "Sorted sets with at most this many members use the listpack encoding.",
    ),
    p(
        "zset-max-listpack-value",
        Kind::Memory { min: 0, max: i64::MAX as u64 },
        "64",
        true,
        "Sorted sets whose members are all at most this long use the listpack encoding.",
    ),
    p(
        "stream-node-max-bytes",
        Kind::Memory { min: 0, max: i64::MAX as u64 },
        "4096",
        true,
        "Largest stream node in bytes before a new node starts (0 = no limit).",
    ),
    p(
        "stream-node-max-entries",
        Kind::Int { min: 0, max: i64::MAX },
        "100",
        true,
        "Most entries in one stream node before a new node starts (0 = no limit).",
    ),
    p(
        "hll-sparse-max-bytes",
        Kind::Memory {
            min: 0,
            max: i64::MAX as u64,
        },
        "3000",
        true,
        "Largest sparse HyperLogLog in bytes (header included) before it turns dense.",
    ),
    p(
        "lcs-max-table-bytes",
        Kind::Memory {
            min: 1024,
            max: u64::MAX,
        },
        "1gb",
        true,
        "Shoal: largest comparison table LCS may allocate; bigger inputs get an error.",
    ),
    p(
        "client-query-buffer-limit",
        Kind::Memory {
            min: 1024 * 1024,
            max: 4 * GB,
        },
        "1gb",
        true,
        "Largest unprocessed input a client may accumulate before it is disconnected.",
    ),
    p(
        "client-output-buffer-limit",
        Kind::OutputLimits,
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        true,
        "Per client class (normal, replica, pubsub): hard limit, soft limit and soft seconds of undelivered output; a pub/sub subscriber over its hard limit, or over its soft limit for longer than the seconds, is disconnected (0 = no limit).",
    ),
    p(
        "notify-keyspace-events",
        Kind::NotifyEvents,
        "",
        true,
        "Keyspace notifications to publish: Redis's class letters (K keyspace, E keyevent, g generic, $ string, l list, s set, h hash, z sorted set, t stream, x expired, e evicted, m key miss, n new key, A all of g$lshzxetd; empty: off).",
    ),
    p(
        "busy-reply-threshold",
        Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        "5000",
        true,
        "Milliseconds a script may run before other clients are answered -BUSY and SCRIPT KILL is accepted (alias lua-time-limit).",
    ),
    p(
        "tracking-table-max-keys",
        Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        "1000000",
        true,
        "Client-side caching: keys remembered for tracking clients before the oldest are invalidated early (0: unlimited).",
    ),
    p(
        "lazyfree-lazy-user-flush",
        Kind::Bool,
        "no",
        true,
        "FLUSHALL/FLUSHDB without ASYNC|SYNC free memory in the background.",
    ),
    p(
        "loglevel",
        Kind::Enum(&["debug", "verbose", "notice", "warning", "nothing"]),
        "notice",
        true,
        "Log verbosity.",
    ),
    p(
        "logfile",
        Kind::Str,
        "",
        false,
        "Log file (empty: standard output).",
    ),
    p(
        "log-format",
        Kind::Enum(&["text", "json"]),
        "text",
        false,
        "Shoal: log line format, 'text' or one JSON object per line ('json').",
    ),
    p(
        "slowlog-log-slower-than",
        Kind::Int {
            min: -1,
            max: i64::MAX,
        },
        "10000",
        true,
        "Log commands that run at least this many microseconds in the slow log (-1: off, 0: every command).",
    ),
    p(
        "slowlog-max-len",
        Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        "128",
        true,
        "Entries the slow log keeps.",
    ),
    p(
        "latency-monitor-threshold",
        Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        "0",
        true,
        "Record latency events of at least this many milliseconds for LATENCY (0: off).",
    ),
    p(
        "latency-tracking",
        Kind::Bool,
        "yes",
        true,
        "Keep per-command latency histograms (INFO latencystats, LATENCY HISTOGRAM, /metrics).",
    ),
    p(
        "latency-tracking-info-percentiles",
        Kind::Percentiles,
        "50 99 99.9",
        true,
        "Percentiles INFO latencystats reports.",
    ),
    p(
        "metrics-port",
        Kind::Int { min: 0, max: 65535 },
        "0",
        false,
        "Shoal: HTTP port serving /metrics (Prometheus), the status page, /healthz and /readyz (0: off).",
    ),
    p(
        "metrics-bind",
        Kind::Str,
        "127.0.0.1",
        false,
        "Shoal: address the metrics port listens on.",
    ),
    p(
        "pidfile",
        Kind::Str,
        "",
        false,
        "Write the process id to this file (empty: none).",
    ),
    p(
        "dir",
        Kind::Str,
        ".",
        true,
        "Working directory (where future snapshot and AOF files go).",
    ),
    p(
        "dbfilename",
        Kind::Str,
        "dump.rdb",
        true,
        "Snapshot file name (snapshots are not implemented yet; accepted for compatibility).",
    ),
    p(
        "save",
        Kind::SavePairs,
        "3600 1 300 100 60 10000",
        true,
        "Snapshot rules (accepted for compatibility; snapshots are not implemented yet).",
    ),
    p(
        "appendonly",
        Kind::Enum(&["no"]),
        "no",
        true,
        "Append-only file (not implemented yet: only 'no' is accepted).",
    ),
    p(
        "daemonize",
        Kind::Enum(&["no"]),
        "no",
        false,
        "Shoal runs in the foreground; only 'no' is accepted.",
    ),
    p(
        "worker-threads",
        Kind::Int { min: 0, max: 1024 },
        "0",
        false,
        "Shoal: threads executing commands (0: one per CPU).",
    ),
    p(
        "lock-stripes",
        Kind::Int { min: 1, max: 16384 },
        "256",
        false,
        "Shoal: lock stripes over the 16384 hash slots (rounded to a power of two).",
    ),
];

/// A number the way Redis prints a configured double: `%f`, then trailing zeros and a trailing
/// point removed (`50` for 50.0, `99.9`).
pub fn trim_double(v: f64) -> String {
    let s = format!("{v:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Looks a parameter up by name, case-insensitively.
pub fn param(name: &str) -> Option<&'static Param> {
    // Redis's old name for the script time limit.
    let name = if name.eq_ignore_ascii_case("lua-time-limit") {
        "busy-reply-threshold"
    } else {
        name
    };
    PARAMS.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

/// Parses a memory value with Redis's units. `1k` is 1000 bytes, `1kb` is 1024.
pub fn parse_memory(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit() && c != '-')
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    let n: u64 = num.parse().ok()?;
    n.checked_mul(mul)
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// Checks `args` (one or more words) against the parameter's kind and returns the canonical
/// value, or Redis's explanation of what is wrong.
pub fn canonical(p: &Param, args: &[String]) -> Result<String, String> {
    let one = || -> Result<&String, String> {
        match args {
            [v] => Ok(v),
            _ => Err("wrong number of arguments".into()),
        }
    };
    match p.kind {
        Kind::Bool => parse_bool(one()?)
            .map(|b| if b { "yes" } else { "no" }.to_string())
            .ok_or_else(|| "argument must be 'yes' or 'no'".into()),
        Kind::Int { min, max } => {
            let v: i64 = one()?
                .parse()
                .map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
            if v < min || v > max {
                return Err(format!(
                    "argument must be between {min} and {max} inclusive"
                ));
            }
            Ok(v.to_string())
        }
        Kind::Memory { min, max } => {
            let v = parse_memory(one()?)
                .ok_or_else(|| "argument must be a memory value".to_string())?;
            if v != 0 && (v < min || v > max) || (v == 0 && min > 0) {
                return Err(format!(
                    "argument must be between {min} and {max} inclusive"
                ));
            }
            Ok(v.to_string())
        }
        Kind::Enum(values) => {
            let v = one()?.to_ascii_lowercase();
            if values.contains(&v.as_str()) {
                Ok(v)
            } else {
                Err(format!(
                    "argument(s) must be one of the following: {}",
                    values.join(", ")
                ))
            }
        }
        Kind::Octal { max } => {
            let v = u32::from_str_radix(one()?, 8)
                .map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
            if v > max {
                return Err(format!("argument must be between 0 and {max:o} inclusive"));
            }
            Ok(format!("{v:o}"))
        }
        Kind::Str => Ok(one()?.clone()),
        Kind::SavePairs => {
            let words: Vec<&str> = args.iter().flat_map(|a| a.split_whitespace()).collect();
            if !words.len().is_multiple_of(2) || words.iter().any(|w| w.parse::<u64>().is_err()) {
                return Err("Invalid save parameters".into());
            }
            Ok(words.join(" "))
        }
        Kind::AddrList => {
            let words: Vec<&str> = args.iter().flat_map(|a| a.split_whitespace()).collect();
            if words.is_empty() {
                return Err("Too many bind addresses specified.".into());
            }
            Ok(words.join(" "))
        }
        Kind::NotifyEvents => {
            let v = one()?;
            shoal_storage::notify::parse(v)
                .map(shoal_storage::notify::render)
                .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".to_string())
        }
        Kind::OutputLimits => {
            let words: Vec<&str> = args.iter().flat_map(|a| a.split_whitespace()).collect();
            let mut limits = OutputLimits::default();
            limits.apply(&words)?;
            Ok(limits.render())
        }
        Kind::Percentiles => {
            let mut out = Vec::new();
            for w in args.iter().flat_map(|a| a.split_whitespace()) {
                match w.parse::<f64>() {
                    Ok(v) if (0.0..=100.0).contains(&v) => out.push(trim_double(v)),
                    _ => {
                        return Err(
                            "latency-tracking-info-percentiles should be between 0.0 and 100.0"
                                .into(),
                        )
                    }
                }
            }
            Ok(out.join(" "))
        }
    }
}

/// One class of `client-output-buffer-limit`: bytes and seconds, 0 meaning no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutputLimit {
    pub hard: u64,
    pub soft: u64,
    pub soft_secs: u64,
}

/// `client-output-buffer-limit`: the `normal`, `replica` and `pubsub` classes, in that order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutputLimits {
    pub normal: OutputLimit,
    pub replica: OutputLimit,
    pub pubsub: OutputLimit,
}

impl OutputLimits {
    /// Reads a canonical value (as [`OutputLimits::render`] writes it); classes missing stay
    /// unlimited.
    fn parse(canonical: &str) -> OutputLimits {
        let mut limits = OutputLimits::default();
        let words: Vec<&str> = canonical.split_whitespace().collect();
        let _ = limits.apply(&words);
        limits
    }

    /// Applies `<class> <hard> <soft> <soft-seconds>` groups, with Redis's errors; nothing
    /// changes unless every group is valid.
    fn apply(&mut self, words: &[&str]) -> Result<(), String> {
        if !words.len().is_multiple_of(4) {
            return Err("Wrong number of arguments in buffer limit configuration.".into());
        }
        let mut next = *self;
        for group in words.chunks(4) {
            let class = match group[0].to_ascii_lowercase().as_str() {
                "normal" => &mut next.normal,
                "replica" | "slave" => &mut next.replica,
                "pubsub" => &mut next.pubsub,
                _ => {
                    return Err(
                        "Invalid client class specified in buffer limit configuration.".into(),
                    )
                }
            };
            let bad =
                || "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
            let hard = parse_memory(group[1]).ok_or_else(bad)?;
            let soft = parse_memory(group[2]).ok_or_else(bad)?;
            let soft_secs = group[3].parse::<u64>().map_err(|_| bad())?;
            *class = OutputLimit {
                hard,
                soft,
                soft_secs,
            };
        }
        *self = next;
        Ok(())
    }

    /// The canonical value, as `CONFIG GET` shows it (Redis names the replica class `slave`).
    fn render(&self) -> String {
        [
            ("normal", self.normal),
            ("slave", self.replica),
            ("pubsub", self.pubsub),
        ]
        .iter()
        .map(|(name, l)| format!("{name} {} {} {}", l.hard, l.soft, l.soft_secs))
        .collect::<Vec<_>>()
        .join(" ")
    }
}

/// The effective configuration: every parameter's canonical value, and the file it came from.
#[derive(Clone, Debug)]
pub struct Config {
    values: BTreeMap<&'static str, String>,
    /// The configuration file, if the server was started with one (for `CONFIG REWRITE`).
    pub file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            // Defaults go through the same validation as user values, so `512mb` is stored as
            // the byte count `CONFIG GET` reports.
            values: PARAMS
                .iter()
                .map(|p| {
                    let words: Vec<String> = split_args(p.default).unwrap_or_default();
                    let v = canonical(p, &words).unwrap_or_else(|_| p.default.to_string());
                    (p.name, v)
                })
                .collect(),
            file: None,
        }
    }
}

/// A configuration error at start-up, naming the line like Redis does.
#[derive(Debug)]
pub struct ConfigError {
    pub line: Option<(usize, String)>,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "\n*** FATAL CONFIG FILE ERROR (Shoal {}) ***",
            env!("CARGO_PKG_VERSION")
        )?;
        if let Some((n, text)) = &self.line {
            writeln!(f, "Reading the configuration file, at line {n}")?;
            writeln!(f, ">>> '{text}'")?;
        }
        write!(f, "{}", self.message)
    }
}

impl Config {
    /// The canonical value of a parameter.
    pub fn get(&self, name: &str) -> &str {
        self.values.get(name).map(String::as_str).unwrap_or("")
    }

    /// A numeric parameter (kinds Int and Memory).
    pub fn int(&self, name: &str) -> i64 {
        self.get(name).parse().unwrap_or(0)
    }

    /// A byte-count parameter.
    pub fn bytes(&self, name: &str) -> u64 {
        self.get(name).parse().unwrap_or(0)
    }

    /// A yes/no parameter.
    pub fn flag(&self, name: &str) -> bool {
        self.get(name) == "yes"
    }

    /// Sets a parameter from already split words, validating it.
    pub fn set(&mut self, name: &str, args: &[String]) -> Result<(), String> {
        let p =
            param(name).ok_or_else(|| "Bad directive or wrong number of arguments".to_string())?;
        let mut v = canonical(p, args)?;
        if let Kind::OutputLimits = p.kind {
            // Only the classes named change, as in Redis: start from the current limits.
            let mut limits = OutputLimits::parse(self.get(p.name));
            let words: Vec<&str> = args.iter().flat_map(|a| a.split_whitespace()).collect();
            limits.apply(&words)?;
            v = limits.render();
        }
        self.values.insert(p.name, v);
        Ok(())
    }

    /// The `client-output-buffer-limit` classes.
    pub fn output_limits(&self) -> OutputLimits {
        OutputLimits::parse(self.get("client-output-buffer-limit"))
    }

    /// Every parameter with its value, in table order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        PARAMS.iter().map(|p| (p.name, self.get(p.name)))
    }

    /// Applies the lines of a `redis.conf`-style text. `origin_lines` numbers lines for errors.
    pub fn apply_text(&mut self, text: &str) -> Result<(), ConfigError> {
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |message: String| ConfigError {
                line: Some((i + 1, line.to_string())),
                message,
            };
            let words = split_args(line)
                .ok_or_else(|| err("Unbalanced quotes in configuration line".into()))?;
            let Some((name, args)) = words.split_first() else {
                continue;
            };
            if param(name).is_none() {
                return Err(err("Bad directive or wrong number of arguments".into()));
            }
            self.set(name, args).map_err(err)?;
        }
        Ok(())
    }

    /// Builds the configuration from `shoal-server [config-file] [--directive value ...]`,
    /// exactly as `redis-server` reads its command line.
    pub fn from_args(args: &[String]) -> Result<Config, ConfigError> {
        let mut cfg = Config::default();
        let mut rest = args;
        let mut text = String::new();
        if let Some(first) = args.first() {
            if !first.starts_with("--") {
                let path = Path::new(first);
                let content = if first == "-" {
                    let mut s = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| {
                        ConfigError {
                            line: None,
                            message: format!("Can't read config from stdin: {e}"),
                        }
                    })?;
                    s
                } else {
                    std::fs::read_to_string(path).map_err(|e| ConfigError {
                        line: None,
                        message: format!("Fatal error, can't open config file '{first}': {e}"),
                    })?
                };
                text.push_str(&content);
                text.push('\n');
                if first != "-" {
                    cfg.file =
                        Some(std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()));
                }
                rest = &args[1..];
            }
        }
        // Each `--name` starts a new line; the words after it are its arguments, quoted so empty
        // strings (`--save ''`) and spaces survive the second parse.
        let mut options = String::new();
        for a in rest {
            if let Some(name) = a.strip_prefix("--") {
                if !options.is_empty() {
                    options.push('\n');
                }
                options.push_str(name);
            } else {
                options.push(' ');
                options.push_str(&quote(a));
            }
        }
        text.push_str(&options);
        cfg.apply_text(&text)?;
        Ok(cfg)
    }

    /// Rewrites the configuration file with the current values (`CONFIG REWRITE`): directive
    /// lines are updated in place, comments kept, missing non-default values appended. The new
    /// file is written to a temporary file, fsynced and renamed over the old one.
    pub fn rewrite(&self) -> Result<(), String> {
        let path = self
            .file
            .as_ref()
            .ok_or_else(|| "The server is running without a config file".to_string())?;
        let old = std::fs::read_to_string(path).unwrap_or_default();
        let mut written = std::collections::HashSet::new();
        let mut out = String::new();
        for raw in old.lines() {
            let line = raw.trim();
            let name = split_args(line)
                .and_then(|w| w.first().cloned())
                .and_then(|n| param(&n));
            match name {
                Some(p) if !line.starts_with('#') => {
                    if written.insert(p.name) {
                        out.push_str(&format!(
                            "{} {}\n",
                            p.name,
                            quote_value(p, self.get(p.name))
                        ));
                    }
                }
                _ => {
                    out.push_str(raw);
                    out.push('\n');
                }
            }
        }
        let mut header = false;
        for p in PARAMS {
            if written.contains(p.name) || self.get(p.name) == p.default {
                continue;
            }
            if !header {
                out.push_str("# Generated by CONFIG REWRITE\n");
                header = true;
            }
            out.push_str(&format!(
                "{} {}\n",
                p.name,
                quote_value(p, self.get(p.name))
            ));
        }
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(out.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            Ok(())
        };
        write().map_err(|e| format!("Rewriting config file: {e}"))
    }
}

fn quote_value(p: &Param, v: &str) -> String {
    match p.kind {
        Kind::SavePairs | Kind::AddrList | Kind::Percentiles | Kind::OutputLimits
            if !v.is_empty() =>
        {
            v.to_string()
        }
        _ => quote(v),
    }
}

/// Quotes a word so [`split_args`] reads it back unchanged.
fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\'' && b != b'\\')
    {
        return s.to_string();
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Splits a configuration line into words like Redis's `sdssplitargs`: spaces separate words,
/// double quotes allow escapes, single quotes are literal. `None` on unbalanced quotes.
pub fn split_args(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return Some(out);
        };
        let mut word = String::new();
        match first {
            '"' => {
                chars.next();
                loop {
                    match chars.next()? {
                        '\\' => match chars.next()? {
                            'n' => word.push('\n'),
                            'r' => word.push('\r'),
                            't' => word.push('\t'),
                            'b' => word.push('\u{8}'),
                            'a' => word.push('\u{7}'),
                            'x' => {
                                let h: String = [chars.next()?, chars.next()?].iter().collect();
                                word.push(u8::from_str_radix(&h, 16).ok()? as char);
                            }
                            c => word.push(c),
                        },
                        '"' => break,
                        c => word.push(c),
                    }
                }
                if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                    return None;
                }
            }
            '\'' => {
                chars.next();
                loop {
                    match chars.next()? {
                        '\\' if chars.peek() == Some(&'\'') => {
                            chars.next();
                            word.push('\'');
                        }
                        '\'' => break,
                        c => word.push(c),
                    }
                }
                if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                    return None;
                }
            }
            _ => {
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
            }
        }
        out.push(word);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn command_line_works_like_redis_server() {
        let c = Config::from_args(&args(&[
            "--port",
            "7000",
            "--save",
            "",
            "--maxmemory",
            "100mb",
        ]))
        .expect("valid");
        assert_eq!(c.get("port"), "7000");
        assert_eq!(c.get("save"), "");
        assert_eq!(c.bytes("maxmemory"), 100 * 1024 * 1024);
    }

    #[test]
    fn unknown_directive_names_the_line() {
        let mut c = Config::default();
        let e = c.apply_text("port 1\n\nfoo bar\n").expect_err("invalid");
        assert_eq!(e.line, Some((3, "foo bar".to_string())));
        assert!(e.to_string().contains("Bad directive"));
    }

    #[test]
    fn invalid_values_are_explained() {
        let mut c = Config::default();
        assert_eq!(
            c.set("port", &args(&["x"])),
            Err("argument couldn't be parsed into an integer".into())
        );
        assert_eq!(
            c.set("protected-mode", &args(&["maybe"])),
            Err("argument must be 'yes' or 'no'".into())
        );
        assert!(c.set("maxmemory-policy", &args(&["lru"])).is_err());
        assert_eq!(c.set("maxmemory", &args(&["1gb"])), Ok(()));
        assert_eq!(c.get("maxmemory"), "1073741824");
    }

    #[test]
    fn defaults_are_canonical() {
        let c = Config::default();
        assert_eq!(c.bytes("proto-max-bulk-len"), 512 * 1024 * 1024);
        assert_eq!(c.get("save"), "3600 1 300 100 60 10000");
        for p in PARAMS {
            let words = split_args(p.default).unwrap_or_default();
            if !words.is_empty() {
                assert!(
                    canonical(p, &words).is_ok(),
                    "default of {} is invalid",
                    p.name
                );
            }
        }
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("1KB"), Some(1024));
        assert_eq!(parse_memory("2gb"), Some(2 << 30));
        assert_eq!(parse_memory("1x"), None);
    }

    #[test]
    fn split_args_handles_quotes() {
        assert_eq!(split_args(r#"save "" x"#), Some(args(&["save", "", "x"])));
        assert_eq!(
            split_args(r#"a "b\x41" 'c d'"#),
            Some(args(&["a", "bA", "c d"]))
        );
        assert_eq!(split_args(r#"a "b"c"#), None);
    }
}

#[cfg(test)]
mod doc_tests {
    #[test]
    fn readme_documents_every_directive() {
        let readme = include_str!("../../../README.md");
        for p in super::PARAMS {
            assert!(
                readme.contains(&format!("| `{}` |", p.name)),
                "README.md does not document `{}`",
                p.name
            );
        }
    }
}
