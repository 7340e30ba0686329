//! `INFO`: Redis's sections and field names, filled from Shoal's own counters and jemalloc.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use shoal_commands::REDIS_COMPAT_VERSION;

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
    /// `allocator_frag_ratio`.
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

static PEAK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Resident set size of this process, from `/proc/self/statm`.
pub fn rss_bytes() -> usize {
    let text = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = text
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf only reads a system constant and has no memory-safety preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * if page > 0 { page as usize } else { 4096 }
}

/// Bytes allocated through jemalloc right now (refreshing its statistics epoch), without the
/// other readings, for the background cycle's memory calibration.
pub fn allocated_bytes() -> usize {
    use tikv_jemalloc_ctl::{epoch, stats};
    let _ = epoch::advance();
    stats::allocated::read().unwrap_or(0)
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
        peak: PEAK.fetch_max(allocated, Ordering::Relaxed).max(allocated),
    }
}

fn human(bytes: usize) -> String {
    let b = bytes as f64;
    if b < 1024.0 {
        format!("{bytes}B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.2}K", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", b / (1024.0 * 1024.0))
    } else {
        format!("{:.2}G", b / (1024.0 * 1024.0 * 1024.0))
    }
}

/// CPU time used by the process, from `getrusage`.
fn cpu_times() -> (f64, f64) {
    // SAFETY: `rusage` is a plain C struct of integers, for which all-zero bytes are valid.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes into the struct we pass.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return (0.0, 0.0);
    }
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(u.ru_stime), t(u.ru_utime))
}

/// Every section, in Redis's order.
const ALL: &[&str] = &[
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
    "cluster",
    "keyspace",
];

/// Sections `INFO` shows without arguments: all but the per-command statistics, as in Redis.
fn default_sections() -> impl Iterator<Item = &'static str> {
    ALL.iter().copied().filter(|s| *s != "commandstats")
}

/// Renders the requested sections (`default`, `all`, `everything` or names).
pub fn render(s: &Shared, requested: &[String]) -> String {
    let wanted: Vec<&str> = if requested.is_empty() {
        default_sections().collect()
    } else {
        let mut v = Vec::new();
        for r in requested {
            match r.as_str() {
                "default" => default_sections().for_each(|d| v.push(d)),
                "all" | "everything" => v.extend_from_slice(ALL),
                other => v.push(other),
            }
        }
        v
    };
    let mut out = String::new();
    for name in ALL {
        if !wanted.contains(name) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        section(s, name, &mut out);
    }
    out
}

fn line(out: &mut String, k: &str, v: impl std::fmt::Display) {
    let _ = write!(out, "{k}:{v}\r\n");
}

fn section(s: &Shared, name: &str, out: &mut String) {
    let cfg = s.config.read().clone();
    match name {
        "server" => {
            out.push_str("# Server\r\n");
            line(out, "redis_version", REDIS_COMPAT_VERSION);
            line(out, "shoal_version", env!("CARGO_PKG_VERSION"));
            line(out, "redis_git_sha1", "00000000");
            line(out, "redis_git_dirty", 0);
            line(out, "redis_mode", "standalone");
            line(out, "os", std::env::consts::OS);
            line(out, "arch_bits", usize::BITS);
            line(out, "multiplexing_api", "epoll");
            line(out, "process_id", std::process::id());
            line(out, "run_id", &s.run_id);
            line(out, "tcp_port", s.tcp_port.load(Ordering::Relaxed));
            let now = s.now_ms();
            line(out, "server_time_usec", now * 1000);
            let up = s.started.elapsed().as_secs();
            line(out, "uptime_in_seconds", up);
            line(out, "uptime_in_days", up / 86400);
            line(out, "hz", cfg.int("hz"));
            line(out, "configured_hz", cfg.int("hz"));
            line(out, "lru_clock", shoal_storage::lru_clock(now));
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
            line(out, "lock_stripes", s.ks.stripe_count());
        }
        "clients" => {
            out.push_str("# Clients\r\n");
            line(out, "connected_clients", s.clients.len());
            line(out, "cluster_connections", 0);
            line(out, "maxclients", cfg.int("maxclients"));
            line(out, "client_recent_max_input_buffer", 0);
            line(out, "client_recent_max_output_buffer", 0);
            line(
                out,
                "blocked_clients",
                s.blocked_clients.load(Ordering::Relaxed),
            );
            line(out, "tracking_clients", 0);
            line(out, "clients_in_timeout_table", 0);
        }
        "memory" => {
            let m = memory();
            let maxmemory = cfg.bytes("maxmemory");
            out.push_str("# Memory\r\n");
            line(out, "used_memory", m.allocated);
            line(out, "used_memory_human", human(m.allocated));
            line(out, "used_memory_rss", m.rss);
            line(out, "used_memory_rss_human", human(m.rss));
            line(out, "used_memory_peak", m.peak);
            line(out, "used_memory_peak_human", human(m.peak));
            line(
                out,
                "used_memory_peak_perc",
                format!("{:.2}%", ratio(m.allocated, m.peak) * 100.0),
            );
            line(out, "used_memory_dataset", s.ks.dataset_estimate());
            line(
                out,
                "used_memory_dataset_perc",
                format!(
                    "{:.2}%",
                    ratio(s.ks.dataset_estimate(), m.allocated) * 100.0
                ),
            );
            line(out, "allocator_allocated", m.allocated);
            line(out, "allocator_active", m.active);
            line(out, "allocator_resident", m.resident);
            line(out, "used_memory_lua", 0);
            line(out, "maxmemory", maxmemory);
            line(out, "maxmemory_human", human(maxmemory as usize));
            line(out, "maxmemory_policy", cfg.get("maxmemory-policy"));
            line(
                out,
                "allocator_frag_ratio",
                format!("{:.2}", m.frag_ratio()),
            );
            line(
                out,
                "allocator_frag_bytes",
                m.active as i64 - m.allocated as i64,
            );
            line(
                out,
                "allocator_rss_ratio",
                format!("{:.2}", ratio(m.resident, m.active)),
            );
            line(
                out,
                "mem_fragmentation_ratio",
                format!("{:.2}", m.rss_ratio()),
            );
            line(
                out,
                "mem_fragmentation_bytes",
                m.rss as i64 - m.allocated as i64,
            );
            line(out, "mem_allocator", "jemalloc");
        }
        "persistence" => {
            out.push_str("# Persistence\r\n");
            line(out, "loading", 0);
            line(out, "rdb_changes_since_last_save", s.stats.totals().dirty);
            line(out, "rdb_bgsave_in_progress", 0);
            line(out, "aof_enabled", 0);
            line(out, "aof_rewrite_in_progress", 0);
        }
        "stats" => {
            let t = s.stats.totals();
            let ks = s.ks.stats();
            out.push_str("# Stats\r\n");
            line(
                out,
                "total_connections_received",
                s.clients.total_connections.load(Ordering::Relaxed),
            );
            line(out, "total_commands_processed", t.commands);
            line(out, "total_net_input_bytes", t.net_in);
            line(out, "total_net_output_bytes", t.net_out);
            line(
                out,
                "rejected_connections",
                s.clients.rejected.load(Ordering::Relaxed),
            );
            line(out, "expired_keys", ks.expired);
            line(
                out,
                "expired_stale_perc",
                format!(
                    "{:.2}",
                    s.expired_stale_perc.load(Ordering::Relaxed) as f64 / 100.0
                ),
            );
            line(out, "evicted_keys", ks.evicted);
            line(out, "keyspace_hits", ks.hits);
            line(out, "keyspace_misses", ks.misses);
            let errors: u64 = s.stats.errors().iter().map(|(_, n)| n).sum();
            line(out, "total_error_replies", errors);
        }
        "replication" => {
            out.push_str("# Replication\r\n");
            line(out, "role", "master");
            line(out, "connected_slaves", 0);
            line(out, "master_repl_offset", 0);
        }
        "cpu" => {
            let (sys, user) = cpu_times();
            out.push_str("# CPU\r\n");
            line(out, "used_cpu_sys", format!("{sys:.6}"));
            line(out, "used_cpu_user", format!("{user:.6}"));
        }
        "modules" => out.push_str("# Modules\r\n"),
        "commandstats" => {
            let t = s.stats.totals();
            out.push_str("# Commandstats\r\n");
            for (i, name) in s.stats.names().iter().enumerate() {
                let (calls, usec, rejected, failed) = t.per_cmd[i];
                if calls == 0 && rejected == 0 {
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
        "cluster" => {
            out.push_str("# Cluster\r\n");
            line(out, "cluster_enabled", 0);
        }
        "keyspace" => {
            out.push_str("# Keyspace\r\n");
            for db in 0..s.ks.databases() {
                let i = s.ks.db_info(db);
                if i.keys > 0 {
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
