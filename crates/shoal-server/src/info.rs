//! `INFO`: Redis 7.0's sections with its field names in its order, filled from Shoal's own
//! counters, the client registry and jemalloc; and `MEMORY DOCTOR`, which judges the same figures
//! with Redis's thresholds.
//!
//! Shoal is a standalone master without persistence, replication, scripting, modules or Pub/Sub
//! (yet). For those parts every field is still printed, with the value a fresh Redis reports when
//! the feature is idle (`rdb_last_bgsave_status:ok`, `connected_slaves:0`, ...), because that is
//! the truth for Shoal and tools expect the fields to exist. Fields that only Shoal has come last
//! in their section, so Redis's fields keep their positions.

use std::fmt::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use shoal_commands::REDIS_COMPAT_VERSION;

use crate::config::Config;
use crate::shared::Shared;

/// Allocator and process memory readings.
#[derive(Default, Clone, Copy)]
pub struct Memory {
    pub allocated: usize,
    pub active: usize,
    pub resident: usize,
    pub mapped: usize,
    pub retained: usize,
    pub metadata: usize,
    pub rss: usize,
    pub peak: usize,
}

impl Memory {
    /// `allocator_frag_ratio`: allocator pages in use over bytes allocated.
    pub fn frag_ratio(&self) -> f64 {
        ratio(self.active, self.allocated)
    }

    /// `mem_fragmentation_ratio`: RSS over allocated bytes.
    pub fn rss_ratio(&self) -> f64 {
        ratio(self.rss, self.allocated)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// `a - b` of two unsigned readings, which may be negative.
fn diff(a: usize, b: usize) -> i64 {
    a as i64 - b as i64
}

/// The largest allocation seen, for `used_memory_peak`.
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// The first allocation reading of the process, for `used_memory_startup`. The background cycle
/// reads the allocator on its first tick, as the server starts and before clients send data, so
/// this is the footprint of an empty server, which is what Redis reports.
static STARTUP: OnceLock<usize> = OnceLock::new();

/// Resident set size of this process, from `/proc/self/statm`.
pub fn rss_bytes() -> usize {
    let text = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = text
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * page_size()
}

fn page_size() -> usize {
    // SAFETY: sysconf only reads a system constant and has no memory-safety preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page > 0 {
        page as usize
    } else {
        4096
    }
}

/// Physical memory of the machine, as Redis computes `total_system_memory`.
fn system_memory() -> usize {
    // SAFETY: sysconf only reads a system constant and has no memory-safety preconditions.
    let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
    if pages > 0 {
        pages as usize * page_size()
    } else {
        0
    }
}

/// Bytes allocated through jemalloc right now (refreshing its statistics epoch), without the
/// other readings, for the background cycle's memory calibration. Every reading also feeds the
/// peak, so the peak follows the background cycle and not only `INFO` calls.
pub fn allocated_bytes() -> usize {
    use tikv_jemalloc_ctl::{epoch, stats};
    let _ = epoch::advance();
    let allocated = stats::allocated::read().unwrap_or(0);
    STARTUP.get_or_init(|| allocated);
    PEAK.fetch_max(allocated, Ordering::Relaxed);
    allocated
}

/// Reads jemalloc's statistics (refreshing its epoch) and the process RSS.
pub fn memory() -> Memory {
    use tikv_jemalloc_ctl::stats;
    let allocated = allocated_bytes();
    Memory {
        allocated,
        active: stats::active::read().unwrap_or(0),
        resident: stats::resident::read().unwrap_or(0),
        mapped: stats::mapped::read().unwrap_or(0),
        retained: stats::retained::read().unwrap_or(0),
        metadata: stats::metadata::read().unwrap_or(0),
        rss: rss_bytes(),
        peak: PEAK.load(Ordering::Relaxed).max(allocated),
    }
}

/// How the allocated bytes divide up, as Redis's `getMemoryOverheadData` reports them for
/// `INFO memory`, `MEMORY STATS` and `MEMORY DOCTOR`.
#[derive(Clone, Copy, Debug)]
pub struct Overhead {
    /// `used_memory_startup`: the footprint of the empty server.
    pub startup: usize,
    /// `mem_clients_normal`: what the connected clients cost (their `tot-mem` added up).
    pub clients: usize,
    /// `used_memory_overhead`: everything that is not keys and values.
    pub total: usize,
    /// `used_memory_dataset`: the write path's running estimate of the keys and values.
    pub dataset: usize,
    /// `used_memory_dataset_perc`: the dataset's share of what was allocated after start-up.
    pub dataset_perc: f64,
    /// `used_memory_peak_perc`.
    pub peak_perc: f64,
    /// Connected clients, for the doctor's per-client average.
    pub client_count: usize,
}

/// Splits `m.allocated` the way Redis does.
pub fn overhead(s: &Shared, m: &Memory) -> Overhead {
    let summary = s.clients.summary();
    let startup = STARTUP.get().copied().unwrap_or(0);
    let dataset = s.ks.dataset_estimate().min(m.allocated);
    // Redis divides by the memory allocated since start-up, and by 1 when there is none.
    let net = if m.allocated > startup {
        m.allocated - startup
    } else {
        1
    };
    Overhead {
        startup,
        clients: summary.memory,
        total: m.allocated - dataset,
        dataset,
        dataset_perc: dataset as f64 * 100.0 / net as f64,
        peak_perc: ratio(m.allocated, m.peak) * 100.0,
        client_count: s.clients.len(),
    }
}

/// Redis's `bytesToHuman`.
fn human(bytes: u64) -> String {
    const K: u64 = 1024;
    let units = [
        (K * K, K, 'K'),
        (K * K * K, K * K, 'M'),
        (K * K * K * K, K * K * K, 'G'),
        (K * K * K * K * K, K * K * K * K, 'T'),
        (K * K * K * K * K * K, K * K * K * K * K, 'P'),
    ];
    if bytes < K {
        return format!("{bytes}B");
    }
    for (below, unit, suffix) in units {
        if bytes < below {
            return format!("{:.2}{suffix}", bytes as f64 / unit as f64);
        }
    }
    format!("{bytes}B")
}

/// CPU time of the process, its children and the calling thread, from `getrusage`, as Redis
/// prints it (`seconds.microseconds`).
fn cpu_times(who: libc::c_int) -> (String, String) {
    // SAFETY: `rusage` is a plain C struct of integers, for which all-zero bytes are valid.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes into the struct we pass.
    if unsafe { libc::getrusage(who, &mut u) } != 0 {
        return ("0.000000".into(), "0.000000".into());
    }
    let t = |tv: libc::timeval| format!("{}.{:06}", tv.tv_sec, tv.tv_usec);
    (t(u.ru_stime), t(u.ru_utime))
}

/// `os`: the kernel's name, release and machine, as Redis prints `uname`'s, read once.
fn os() -> &'static str {
    static OS: OnceLock<String> = OnceLock::new();
    OS.get_or_init(|| {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_string())
                .ok()
                .filter(|s| !s.is_empty())
        };
        match (
            read("/proc/sys/kernel/ostype"),
            read("/proc/sys/kernel/osrelease"),
        ) {
            (Some(name), Some(release)) => {
                let machine = read("/proc/sys/kernel/arch")
                    .unwrap_or_else(|| std::env::consts::ARCH.to_string());
                format!("{name} {release} {machine}")
            }
            _ => format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        }
    })
}

/// `redis_build_id`: Redis hashes its build's details; Shoal hashes its version and target, so
/// the id changes whenever the binary's identity does.
fn build_id() -> String {
    let text = format!(
        "shoal-server {} {} {}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    // FNV-1a: any stable hash will do, this one needs no dependency.
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:x}")
}

/// `mem_allocator`: `jemalloc-<major.minor.patch>`, as Redis names its allocator.
fn allocator_name() -> String {
    let version = tikv_jemalloc_ctl::version::read().unwrap_or("");
    let release = version.split('-').next().unwrap_or("");
    if release.is_empty() {
        "jemalloc".to_string()
    } else {
        format!("jemalloc-{release}")
    }
}

/// `master_replid`: 40 random hex digits drawn once per process, distinct from the run id as in
/// Redis. There is no replication yet, but the id names this node's history for replicas to come.
fn replication_id(s: &Shared) -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let mut bytes = [0u8; 20];
        let random = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
        if random.is_err() {
            // Without a random source the run id, itself seeded by time and pid, is mixed with
            // a constant so the two ids still differ.
            for (i, b) in s.run_id.bytes().enumerate() {
                bytes[i % 20] ^= b.rotate_left(3) ^ 0x5a;
            }
        }
        bytes.iter().fold(String::with_capacity(40), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
    })
}

/// Every section, in Redis's order.
const SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
];

/// Redis's default sections: all but `commandstats` and `latencystats`. Redis asks for the
/// modules section as `module_list` here, which is why `INFO module_list` shows it too.
const DEFAULT: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "module_list",
    "errorstats",
    "cluster",
    "keyspace",
];

/// The sections one `INFO` call asked for, by Redis's rules: no argument or `default` means the
/// default sections, `all` and `everything` mean every section, other names (compared without
/// regard to case) select that section, and unknown names select nothing. Redis's `everything`
/// adds the sections modules generate to `all`; Shoal loads no modules, so the two are the same.
struct Selection {
    all: bool,
    names: Vec<String>,
}

impl Selection {
    fn parse(requested: &[String]) -> Selection {
        if requested.is_empty() {
            return Selection {
                all: false,
                names: DEFAULT.iter().map(|s| s.to_string()).collect(),
            };
        }
        let mut sel = Selection {
            all: false,
            names: Vec::new(),
        };
        for r in requested {
            let r = r.to_ascii_lowercase();
            match r.as_str() {
                "default" => sel.names.extend(DEFAULT.iter().map(|s| s.to_string())),
                "all" | "everything" => sel.all = true,
                _ => sel.names.push(r),
            }
        }
        sel
    }

    fn wants(&self, section: &str) -> bool {
        let named = |n: &str| self.names.iter().any(|s| s == n);
        self.all || named(section) || (section == "modules" && named("module_list"))
    }
}

/// Renders the requested sections (`default`, `all`, `everything` or names), as `INFO` does.
pub fn render(s: &Shared, requested: &[String]) -> String {
    let selection = Selection::parse(requested);
    let cfg = s.config.read().clone();
    let mut out = String::new();
    for name in SECTIONS {
        if !selection.wants(name) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        section(s, &cfg, name, &mut out);
    }
    out
}

fn line(out: &mut String, k: &str, v: impl std::fmt::Display) {
    let _ = write!(out, "{k}:{v}\r\n");
}

/// Writes `name:0` for each name: counters of features Shoal does not have yet.
fn zeros(out: &mut String, names: &[&str]) {
    for name in names {
        line(out, name, 0);
    }
}

fn section(s: &Shared, cfg: &Config, name: &str, out: &mut String) {
    match name {
        "server" => server(s, cfg, out),
        "clients" => {
            let summary = s.clients.summary();
            out.push_str("# Clients\r\n");
            line(out, "connected_clients", s.clients.len());
            line(out, "cluster_connections", 0);
            line(out, "maxclients", cfg.int("maxclients"));
            // Redis keeps the largest buffers of the last few seconds; Shoal reads the current
            // clients. Output counts, like `omem`, what stands for Redis's reply list: a
            // subscriber's undelivered messages (see `CLIENT LIST`).
            line(
                out,
                "client_recent_max_input_buffer",
                summary.max_input_buffer,
            );
            line(
                out,
                "client_recent_max_output_buffer",
                summary.max_output_buffer,
            );
            line(
                out,
                "blocked_clients",
                s.blocked_clients.load(Ordering::Relaxed),
            );
            line(out, "tracking_clients", s.tracking.active());
            line(out, "clients_in_timeout_table", 0);
        }
        "memory" => memory_section(s, cfg, out),
        "persistence" => persistence(s, out),
        "stats" => stats(s, out),
        "replication" => {
            out.push_str("# Replication\r\n");
            line(out, "role", "master");
            line(out, "connected_slaves", 0);
            line(out, "master_failover_state", "no-failover");
            line(out, "master_replid", replication_id(s));
            line(out, "master_replid2", "0".repeat(40));
            line(out, "master_repl_offset", 0);
            line(out, "second_repl_offset", -1);
            line(out, "repl_backlog_active", 0);
            // Redis's default `repl-backlog-size`: the backlog a first replica would get.
            line(out, "repl_backlog_size", 1_048_576);
            line(out, "repl_backlog_first_byte_offset", 0);
            line(out, "repl_backlog_histlen", 0);
        }
        "cpu" => {
            let (sys, user) = cpu_times(libc::RUSAGE_SELF);
            let (sys_children, user_children) = cpu_times(libc::RUSAGE_CHILDREN);
            // Redis's main thread runs every command; in Shoal the worker thread answering this
            // INFO is one of the threads that do, so it stands in for it.
            let (sys_main, user_main) = cpu_times(libc::RUSAGE_THREAD);
            out.push_str("# CPU\r\n");
            line(out, "used_cpu_sys", sys);
            line(out, "used_cpu_user", user);
            line(out, "used_cpu_sys_children", sys_children);
            line(out, "used_cpu_user_children", user_children);
            line(out, "used_cpu_sys_main_thread", sys_main);
            line(out, "used_cpu_user_main_thread", user_main);
        }
        "modules" => out.push_str("# Modules\r\n"),
        "commandstats" => {
            let t = s.stats.totals();
            out.push_str("# Commandstats\r\n");
            for (i, name) in s.stats.names().iter().enumerate() {
                let shoal_observe::CmdTotals {
                    calls,
                    usec,
                    rejected,
                    failed,
                } = t.per_cmd[i];
                if calls == 0 && rejected == 0 && failed == 0 {
                    continue;
                }
                let per = if calls == 0 {
                    0.0
                } else {
                    usec as f64 / calls as f64
                };
                let _ = write!(
                    out,
                    "cmdstat_{name}:calls={calls},usec={usec},usec_per_call={per:.2},rejected_calls={rejected},failed_calls={failed}\r\n"
                );
            }
        }
        "errorstats" => {
            out.push_str("# Errorstats\r\n");
            for (code, n) in s.stats.errors() {
                let _ = write!(out, "errorstat_{code}:count={n}\r\n");
            }
        }
        "latencystats" => {
            out.push_str("# Latencystats\r\n");
            if cfg.flag("latency-tracking") {
                let percentiles: Vec<(String, f64)> = cfg
                    .get("latency-tracking-info-percentiles")
                    .split_whitespace()
                    .filter_map(|w| w.parse::<f64>().ok())
                    .map(|p| (crate::config::trim_double(p), p))
                    .collect();
                for (name, snap) in s.stats.latency() {
                    let _ = write!(out, "latency_percentiles_usec_{name}:");
                    for (i, (label, p)) in percentiles.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let usec = snap.percentile(*p) as f64 / 1000.0;
                        let _ = write!(out, "p{label}={usec:.3}");
                    }
                    out.push_str("\r\n");
                }
            }
        }
        "cluster" => {
            out.push_str("# Cluster\r\n");
            line(out, "cluster_enabled", 0);
        }
        "keyspace" => {
            out.push_str("# Keyspace\r\n");
            for (db, i) in s.ks.db_infos().into_iter().enumerate() {
                if i.keys > 0 || i.volatile > 0 {
                    // avg_ttl is 0 until the expiry cycle keeps Redis's running estimate of it.
                    let _ = write!(
                        out,
                        "db{db}:keys={},expires={},avg_ttl=0\r\n",
                        i.keys, i.volatile
                    );
                }
            }
        }
        _ => {}
    }
}

fn server(s: &Shared, cfg: &Config, out: &mut String) {
    out.push_str("# Server\r\n");
    line(out, "redis_version", REDIS_COMPAT_VERSION);
    line(out, "redis_git_sha1", "00000000");
    line(out, "redis_git_dirty", 0);
    line(out, "redis_build_id", build_id());
    line(out, "redis_mode", "standalone");
    line(out, "os", os());
    line(out, "arch_bits", usize::BITS);
    // Rust's `Instant` reads CLOCK_MONOTONIC through clock_gettime.
    line(out, "monotonic_clock", "POSIX clock_gettime");
    line(out, "multiplexing_api", "epoll");
    // Rust's atomics are the C11 memory model's.
    line(out, "atomicvar_api", "c11-builtin");
    // Redis prints 0.0.0 when not built by GCC, which Shoal is not.
    line(out, "gcc_version", "0.0.0");
    line(out, "process_id", std::process::id());
    line(out, "process_supervised", "no");
    line(out, "run_id", &s.run_id);
    line(out, "tcp_port", s.tcp_port.load(Ordering::Relaxed));
    let now_us = s.clock.now_us();
    line(out, "server_time_usec", now_us);
    let up = s.started.elapsed().as_secs();
    line(out, "uptime_in_seconds", up);
    line(out, "uptime_in_days", up / 86400);
    line(out, "hz", cfg.int("hz"));
    line(out, "configured_hz", cfg.int("hz"));
    line(out, "lru_clock", shoal_storage::lru_clock(now_us / 1000));
    line(
        out,
        "executable",
        std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    );
    line(
        out,
        "config_file",
        cfg.file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    );
    // Redis's I/O threads only read and write sockets for the main thread; Shoal has none, its
    // workers doing both the I/O and the commands of their connections.
    line(out, "io_threads_active", 0);
    // Shoal's own fields.
    line(out, "shoal_version", env!("CARGO_PKG_VERSION"));
    line(out, "lock_stripes", s.ks.stripe_count());
}

fn memory_section(s: &Shared, cfg: &Config, out: &mut String) {
    let m = memory();
    let o = overhead(s, &m);
    let maxmemory = cfg.bytes("maxmemory");
    let system = system_memory();
    out.push_str("# Memory\r\n");
    line(out, "used_memory", m.allocated);
    line(out, "used_memory_human", human(m.allocated as u64));
    line(out, "used_memory_rss", m.rss);
    line(out, "used_memory_rss_human", human(m.rss as u64));
    line(out, "used_memory_peak", m.peak);
    line(out, "used_memory_peak_human", human(m.peak as u64));
    line(out, "used_memory_peak_perc", format!("{:.2}%", o.peak_perc));
    line(out, "used_memory_overhead", o.total);
    line(out, "used_memory_startup", o.startup);
    line(out, "used_memory_dataset", o.dataset);
    line(
        out,
        "used_memory_dataset_perc",
        format!("{:.2}%", o.dataset_perc),
    );
    line(out, "allocator_allocated", m.allocated);
    line(out, "allocator_active", m.active);
    line(out, "allocator_resident", m.resident);
    line(out, "total_system_memory", system);
    line(out, "total_system_memory_human", human(system as u64));
    // No scripting engine and no functions: nothing is allocated for them.
    line(out, "used_memory_lua", 0);
    line(out, "used_memory_vm_eval", 0);
    line(out, "used_memory_lua_human", human(0));
    zeros(
        out,
        &[
            "used_memory_scripts_eval",
            "number_of_cached_scripts",
            "number_of_functions",
            "number_of_libraries",
            "used_memory_vm_functions",
            "used_memory_vm_total",
        ],
    );
    line(out, "used_memory_vm_total_human", human(0));
    zeros(out, &["used_memory_functions", "used_memory_scripts"]);
    line(out, "used_memory_scripts_human", human(0));
    line(out, "maxmemory", maxmemory);
    line(out, "maxmemory_human", human(maxmemory));
    line(out, "maxmemory_policy", cfg.get("maxmemory-policy"));
    line(
        out,
        "allocator_frag_ratio",
        format!("{:.2}", m.frag_ratio()),
    );
    line(out, "allocator_frag_bytes", diff(m.active, m.allocated));
    line(
        out,
        "allocator_rss_ratio",
        format!("{:.2}", ratio(m.resident, m.active)),
    );
    line(out, "allocator_rss_bytes", diff(m.resident, m.active));
    line(
        out,
        "rss_overhead_ratio",
        format!("{:.2}", ratio(m.rss, m.resident)),
    );
    line(out, "rss_overhead_bytes", diff(m.rss, m.resident));
    line(
        out,
        "mem_fragmentation_ratio",
        format!("{:.2}", m.rss_ratio()),
    );
    line(out, "mem_fragmentation_bytes", diff(m.rss, m.allocated));
    // Redis leaves replica output buffers and the AOF buffer out of maxmemory; Shoal has neither.
    line(out, "mem_not_counted_for_evict", 0);
    zeros(
        out,
        &[
            "mem_replication_backlog",
            "mem_total_replication_buffers",
            "mem_clients_slaves",
        ],
    );
    line(out, "mem_clients_normal", o.clients);
    zeros(out, &["mem_cluster_links", "mem_aof_buffer"]);
    line(out, "mem_allocator", allocator_name());
    line(out, "active_defrag_running", 0);
    line(
        out,
        "lazyfree_pending_objects",
        s.lazyfree.pending.load(Ordering::Relaxed),
    );
    line(
        out,
        "lazyfreed_objects",
        s.lazyfree.freed.load(Ordering::Relaxed),
    );
}

fn persistence(s: &Shared, out: &mut String) {
    // Without snapshots, the figures are those of a server that has never saved: Redis too
    // counts its start as the last save and reports its statuses as ok.
    let started = (s.clock.now_us() / 1_000_000).saturating_sub(s.started.elapsed().as_secs());
    out.push_str("# Persistence\r\n");
    line(out, "loading", u8::from(s.loading.load(Ordering::Relaxed)));
    zeros(
        out,
        &[
            "async_loading",
            "current_cow_peak",
            "current_cow_size",
            "current_cow_size_age",
        ],
    );
    line(out, "current_fork_perc", "0.00");
    zeros(
        out,
        &["current_save_keys_processed", "current_save_keys_total"],
    );
    line(out, "rdb_changes_since_last_save", s.stats.totals().dirty);
    line(out, "rdb_bgsave_in_progress", 0);
    line(out, "rdb_last_save_time", started);
    line(out, "rdb_last_bgsave_status", "ok");
    line(out, "rdb_last_bgsave_time_sec", -1);
    line(out, "rdb_current_bgsave_time_sec", -1);
    zeros(
        out,
        &[
            "rdb_saves",
            "rdb_last_cow_size",
            "rdb_last_load_keys_expired",
            "rdb_last_load_keys_loaded",
            "aof_enabled",
            "aof_rewrite_in_progress",
            "aof_rewrite_scheduled",
        ],
    );
    line(out, "aof_last_rewrite_time_sec", -1);
    line(out, "aof_current_rewrite_time_sec", -1);
    line(out, "aof_last_bgrewrite_status", "ok");
    zeros(out, &["aof_rewrites", "aof_rewrites_consecutive_failures"]);
    line(out, "aof_last_write_status", "ok");
    zeros(
        out,
        &[
            "aof_last_cow_size",
            "module_fork_in_progress",
            "module_fork_last_cow_size",
        ],
    );
}

fn stats(s: &Shared, out: &mut String) {
    let t = s.stats.totals();
    let ks = s.ks.stats();
    let kbps = |bytes_per_sec: u64| format!("{:.2}", bytes_per_sec as f64 / 1024.0);
    out.push_str("# Stats\r\n");
    line(
        out,
        "total_connections_received",
        s.clients.total_connections.load(Ordering::Relaxed),
    );
    line(out, "total_commands_processed", t.commands);
    line(out, "instantaneous_ops_per_sec", s.meters.ops.per_sec());
    line(out, "total_net_input_bytes", t.net_in);
    line(out, "total_net_output_bytes", t.net_out);
    zeros(
        out,
        &["total_net_repl_input_bytes", "total_net_repl_output_bytes"],
    );
    line(
        out,
        "instantaneous_input_kbps",
        kbps(s.meters.net_input.per_sec()),
    );
    line(
        out,
        "instantaneous_output_kbps",
        kbps(s.meters.net_output.per_sec()),
    );
    line(out, "instantaneous_input_repl_kbps", kbps(0));
    line(out, "instantaneous_output_repl_kbps", kbps(0));
    line(
        out,
        "rejected_connections",
        s.clients.rejected.load(Ordering::Relaxed),
    );
    zeros(out, &["sync_full", "sync_partial_ok", "sync_partial_err"]);
    line(out, "expired_keys", ks.expired);
    line(
        out,
        "expired_stale_perc",
        format!(
            "{:.2}",
            s.expired_stale_perc.load(Ordering::Relaxed) as f64 / 100.0
        ),
    );
    line(
        out,
        "expired_time_cap_reached_count",
        s.expire_time_cap_reached.load(Ordering::Relaxed),
    );
    line(
        out,
        "expire_cycle_cpu_milliseconds",
        s.expire_cycle_us.load(Ordering::Relaxed) / 1000,
    );
    line(out, "evicted_keys", ks.evicted);
    zeros(
        out,
        &[
            "evicted_clients",
            "total_eviction_exceeded_time",
            "current_eviction_exceeded_time",
        ],
    );
    line(out, "keyspace_hits", ks.hits);
    line(out, "keyspace_misses", ks.misses);
    let (channels, patterns, shard) = s.pubsub.counts();
    line(out, "pubsub_channels", channels);
    line(out, "pubsub_patterns", patterns);
    line(out, "pubsubshard_channels", shard);
    // Forks, MIGRATE, replicas, defragmentation and client-side caching do not exist (yet), so
    // their counters are 0.
    zeros(
        out,
        &[
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
        ],
    );
    let (keys, items, prefixes) = s.tracking.totals();
    line(out, "tracking_total_keys", keys);
    line(out, "tracking_total_items", items);
    line(out, "tracking_total_prefixes", prefixes);
    line(out, "unexpected_error_replies", 0);
    let errors: u64 = s.stats.errors().iter().map(|(_, n)| n).sum();
    line(out, "total_error_replies", errors);
    line(out, "dump_payload_sanitizations", 0);
    line(out, "total_reads_processed", t.reads);
    line(out, "total_writes_processed", t.writes);
    // Every connection does its own I/O on its worker; there are no separate I/O threads.
    zeros(
        out,
        &[
            "io_threaded_reads_processed",
            "io_threaded_writes_processed",
        ],
    );
    // The reply buffer grows as needed and is never shrunk or grown by a background pass.
    zeros(out, &["reply_buffer_shrinks", "reply_buffer_expands"]);
}

/// What `MEMORY DOCTOR` looks at: Redis's `getMemoryOverheadData` figures.
#[derive(Clone, Copy, Debug, Default)]
pub struct DoctorFigures {
    pub used: usize,
    pub peak: usize,
    pub rss: usize,
    pub allocator_allocated: usize,
    pub allocator_active: usize,
    pub allocator_resident: usize,
    pub clients_memory: usize,
    pub clients: usize,
}

/// Below this much allocated memory Redis declines to diagnose anything.
const DOCTOR_EMPTY_BYTES: usize = 5 << 20;

/// A ratio only counts as a problem when it also wastes more than this many bytes.
const DOCTOR_WASTE_BYTES: i64 = 10 << 20;

/// Average memory per client above which client buffers are reported as too big.
const DOCTOR_CLIENT_BYTES: usize = 200 << 10;

/// `MEMORY DOCTOR` for this server.
pub fn memory_doctor(s: &Shared) -> String {
    let m = memory();
    let o = overhead(s, &m);
    doctor_report(&DoctorFigures {
        used: m.allocated,
        peak: m.peak,
        rss: m.rss,
        allocator_allocated: m.allocated,
        allocator_active: m.active,
        allocator_resident: m.resident,
        clients_memory: o.clients,
        clients: o.client_count,
    })
}

/// Redis 7.0's memory report, with its checks, thresholds and texts. The checks about replica
/// buffers and the script cache cannot fire in Shoal, which has neither.
pub fn doctor_report(f: &DoctorFigures) -> String {
    // Redis computes these ratios in single precision; doing the same keeps the thresholds'
    // edges where Redis has them.
    let r = |a: usize, b: usize| {
        if b == 0 {
            0.0
        } else {
            a as f32 / b as f32
        }
    };
    let over = |ratio: f32, limit: f32, waste: i64| ratio > limit && waste > DOCTOR_WASTE_BYTES;
    if f.used < DOCTOR_EMPTY_BYTES {
        return "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n".to_string();
    }
    let big_peak = r(f.peak, f.used) > 1.5;
    let high_frag = over(r(f.rss, f.used), 1.4, diff(f.rss, f.used));
    let high_alloc_frag = over(
        r(f.allocator_active, f.allocator_allocated),
        1.1,
        diff(f.allocator_active, f.allocator_allocated),
    );
    let high_alloc_rss = over(
        r(f.allocator_resident, f.allocator_active),
        1.1,
        diff(f.allocator_resident, f.allocator_active),
    );
    let high_proc_rss = over(
        r(f.rss, f.allocator_resident),
        1.1,
        diff(f.rss, f.allocator_resident),
    );
    let big_client_buf = f.clients_memory / f.clients.max(1) > DOCTOR_CLIENT_BYTES;
    let issues = [
        (big_peak, " * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.\n\n".to_string()),
        (high_frag, format!(" * High total RSS: This instance has a memory fragmentation and RSS overhead greater than 1.4 (this means that the Resident Set Size of the Redis process is much larger than the sum of the logical allocations Redis performed). This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. If the problem is a large peak memory, then there is no issue. Otherwise, make sure you are using the Jemalloc allocator and not the default libc malloc. Note: The currently used allocator is \"{}\".\n\n", allocator_name())),
        (high_alloc_frag, " * High allocator fragmentation: This instance has an allocator external fragmentation greater than 1.1. This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. You can try enabling 'activedefrag' config option.\n\n".to_string()),
        (high_alloc_rss, " * High allocator RSS overhead: This instance has an RSS memory overhead is greater than 1.1 (this means that the Resident Set Size of the allocator is much larger than the sum what the allocator actually holds). This problem is usually due to a large peak memory (check if there is a peak memory entry above in the report), you can try the MEMORY PURGE command to reclaim it.\n\n".to_string()),
        (high_proc_rss, " * High process RSS overhead: This instance has non-allocator RSS memory overhead is greater than 1.1 (this means that the Resident Set Size of the Redis process is much larger than the RSS the allocator holds). This problem may be due to Lua scripts or Modules.\n\n".to_string()),
        (big_client_buf, " * Big client buffers: The clients output buffers in this instance are greater than 200K per client (on average). This may result from different causes, like Pub/Sub clients subscribed to channels bot not receiving data fast enough, so that data piles on the Redis instance output buffer, or clients sending commands with large replies or very large sequences of commands in the same pipeline. Please use the CLIENT LIST command in order to investigate the issue if it causes problems in your instance, or to understand better why certain clients are using a big amount of memory.\n\n".to_string()),
    ];
    if !issues.iter().any(|(found, _)| *found) {
        return "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n".to_string();
    }
    let mut report =
        "Sam, I detected a few issues in this Redis instance memory implants:\n\n".to_string();
    for (_, text) in issues.iter().filter(|(found, _)| *found) {
        report.push_str(text);
    }
    report.push_str("I'm here to keep you safe, Sam. I want to help you.\n");
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: usize = 1 << 20;

    /// A healthy 100 MB instance: nothing to report.
    fn healthy() -> DoctorFigures {
        DoctorFigures {
            used: 100 * MB,
            peak: 110 * MB,
            rss: 120 * MB,
            allocator_allocated: 100 * MB,
            allocator_active: 105 * MB,
            allocator_resident: 110 * MB,
            clients_memory: 40 * 1024,
            clients: 2,
        }
    }

    fn issues(report: &str) -> Vec<&str> {
        report
            .lines()
            .filter_map(|l| l.strip_prefix(" * "))
            .filter_map(|l| l.split(':').next())
            .collect()
    }

    #[test]
    fn doctor_declines_below_five_megabytes() {
        let mut f = healthy();
        f.used = 5 * MB - 1;
        // Even a huge peak is not diagnosed in an almost empty instance.
        f.peak = 500 * MB;
        let report = doctor_report(&f);
        assert!(
            report.starts_with("Hi Sam, this instance is empty"),
            "{report}"
        );
        assert!(report.ends_with("finished rebooting.\n"), "{report}");
    }

    #[test]
    fn doctor_finds_nothing_in_a_healthy_instance() {
        let mut f = healthy();
        f.used = 5 * MB;
        f.allocator_allocated = 5 * MB;
        f.peak = 5 * MB;
        f.allocator_active = 5 * MB;
        f.allocator_resident = 5 * MB;
        f.rss = 5 * MB;
        assert_eq!(
            doctor_report(&f),
            "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n"
        );
        assert!(doctor_report(&healthy()).starts_with("Hi Sam, I can't find"));
    }

    #[test]
    fn doctor_thresholds_are_redis_ones() {
        // Peak: over 150% of used memory, whatever the bytes.
        let mut f = healthy();
        f.peak = 150 * MB;
        assert!(issues(&doctor_report(&f)).is_empty());
        f.peak = 151 * MB;
        assert_eq!(issues(&doctor_report(&f)), ["Peak memory"]);

        // Total RSS: over 1.4 and over 10 MB wasted.
        let mut f = healthy();
        f.used = 20 * MB;
        f.allocator_allocated = 20 * MB;
        f.allocator_active = 20 * MB;
        f.allocator_resident = 20 * MB;
        f.peak = 20 * MB;
        f.rss = 29 * MB;
        assert!(
            issues(&doctor_report(&f)).is_empty(),
            "{}",
            doctor_report(&f)
        );
        f.rss = 31 * MB;
        // RSS beyond the allocator's resident memory is also a process overhead.
        assert_eq!(
            issues(&doctor_report(&f)),
            ["High total RSS", "High process RSS overhead"]
        );

        // Allocator fragmentation and RSS: over 1.1 and over 10 MB.
        let mut f = healthy();
        f.allocator_active = 115 * MB;
        f.allocator_resident = 127 * MB;
        f.rss = 127 * MB;
        assert_eq!(
            issues(&doctor_report(&f)),
            [
                "High allocator fragmentation",
                "High allocator RSS overhead"
            ]
        );

        // Clients: over 200 KB each on average.
        let mut f = healthy();
        f.clients = 2;
        f.clients_memory = 400 * 1024;
        assert!(issues(&doctor_report(&f)).is_empty());
        f.clients_memory = 402 * 1024;
        assert_eq!(issues(&doctor_report(&f)), ["Big client buffers"]);
    }

    #[test]
    fn doctor_report_frames_its_findings() {
        let mut f = healthy();
        f.peak = 400 * MB;
        let report = doctor_report(&f);
        assert!(report.starts_with(
            "Sam, I detected a few issues in this Redis instance memory implants:\n\n * Peak memory:"
        ));
        assert!(report.ends_with(".\n\nI'm here to keep you safe, Sam. I want to help you.\n"));
    }

    #[test]
    fn human_matches_redis() {
        assert_eq!(human(0), "0B");
        assert_eq!(human(1023), "1023B");
        assert_eq!(human(1024), "1.00K");
        assert_eq!(human(916_232), "894.76K");
        assert_eq!(human(12_193_792), "11.63M");
        assert_eq!(human(25_276_514_304), "23.54G");
        assert_eq!(human(1 << 40), "1.00T");
        assert_eq!(human(1 << 50), "1.00P");
        assert_eq!(human(1 << 60), format!("{}B", 1u64 << 60));
    }

    fn selected(args: &[&str]) -> Vec<&'static str> {
        let sel = Selection::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        SECTIONS.iter().copied().filter(|s| sel.wants(s)).collect()
    }

    #[test]
    fn section_selection_follows_redis() {
        let default = [
            "server",
            "clients",
            "memory",
            "persistence",
            "stats",
            "replication",
            "cpu",
            "modules",
            "errorstats",
            "cluster",
            "keyspace",
        ];
        assert_eq!(selected(&[]), default);
        assert_eq!(selected(&["default"]), default);
        assert_eq!(selected(&["all"]), SECTIONS);
        assert_eq!(selected(&["EveryThing"]), SECTIONS);
        assert_eq!(selected(&["all", "server"]), SECTIONS);
        assert_eq!(selected(&["keyspace", "SERVER"]), ["server", "keyspace"]);
        assert_eq!(selected(&["module_list"]), ["modules"]);
        assert_eq!(selected(&["nonexistent"]), Vec::<&str>::new());
        let mut with_stats = default.to_vec();
        with_stats.insert(8, "commandstats");
        assert_eq!(selected(&["default", "commandstats"]), with_stats);
    }
}
