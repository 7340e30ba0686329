//! What `/metrics` and the status page show: the server's counters gathered at request time from
//! the same sources `INFO` reads, so the two never disagree. `deploy/METRICS.md` lists every
//! metric; `tests/deploy.rs` checks that a live server serves exactly the metrics listed there.

use std::sync::atomic::Ordering;

use shoal_observe::expose::{Exposition, Kind};
use shoal_observe::histogram::Snapshot;
use shoal_observe::CmdTotals;

use crate::info;
use crate::shared::Shared;

/// The figures the status page shows.
pub struct Summary {
    pub role: &'static str,
    pub uptime_secs: u64,
    pub keys: u64,
    pub expiring: u64,
    pub used_memory: usize,
    pub rss: usize,
    pub maxmemory: u64,
    pub ops_per_sec: u64,
    pub hits: u64,
    pub misses: u64,
    pub clients: usize,
    pub blocked: usize,
    pub commands: u64,
    /// p50, p95 and p99 over every command since start or `CONFIG RESETSTAT`, in microseconds
    /// (0 when nothing ran).
    pub latency_us: [f64; 3],
    pub connected_replicas: u64,
    pub cluster_enabled: bool,
    pub loading: bool,
}

impl Summary {
    /// hits / (hits + misses), or `None` before any lookup.
    pub fn hit_ratio(&self) -> Option<f64> {
        let total = self.hits + self.misses;
        (total > 0).then(|| self.hits as f64 / total as f64)
    }
}

/// Reads the status page's figures.
pub fn summary(s: &Shared) -> Summary {
    let m = info::memory();
    let ks = s.ks.stats();
    let (mut keys, mut expiring) = (0, 0);
    for i in s.ks.db_infos() {
        keys += i.keys as u64;
        expiring += i.volatile as u64;
    }
    let mut all = Snapshot::default();
    for (_, snap) in s.stats.latency() {
        all.merge(&snap);
    }
    let pct = |p: f64| all.percentile(p) as f64 / 1000.0;
    Summary {
        role: "master",
        uptime_secs: s.started.elapsed().as_secs(),
        keys,
        expiring,
        used_memory: m.allocated,
        rss: m.rss,
        maxmemory: s.config.read().bytes("maxmemory"),
        ops_per_sec: s.meters.ops.per_sec(),
        hits: ks.hits,
        misses: ks.misses,
        clients: s.clients.len(),
        blocked: s.blocked_clients.load(Ordering::Relaxed),
        commands: s.stats.totals().commands,
        latency_us: [pct(50.0), pct(95.0), pct(99.0)],
        connected_replicas: 0,
        cluster_enabled: false,
        loading: s.loading.load(Ordering::Relaxed),
    }
}

/// Renders every metric in the Prometheus text format.
pub fn render(s: &Shared) -> String {
    let mut e = Exposition::new();
    let m = info::memory();
    let ks = s.ks.stats();
    let t = s.stats.totals();
    let maxmemory = s.config.read().bytes("maxmemory");

    e.family(
        "shoal_info",
        Kind::Gauge,
        "Always 1; carries the server's identity.",
    );
    e.sample(
        "shoal_info",
        &[
            ("version", env!("CARGO_PKG_VERSION")),
            ("run_id", &s.run_id),
            ("role", "master"),
        ],
        1.0,
    );
    e.single(
        "shoal_uptime_seconds",
        Kind::Gauge,
        "Seconds since start.",
        s.started.elapsed().as_secs_f64().floor(),
    );

    // Keyspace.
    e.single(
        "shoal_keyspace_hits_total",
        Kind::Counter,
        "Key lookups that found the key (keyspace_hits).",
        ks.hits as f64,
    );
    e.single(
        "shoal_keyspace_misses_total",
        Kind::Counter,
        "Key lookups that did not find the key (keyspace_misses).",
        ks.misses as f64,
    );
    let lookups = ks.hits + ks.misses;
    e.single(
        "shoal_keyspace_hit_ratio",
        Kind::Gauge,
        "hits / (hits + misses) since start or CONFIG RESETSTAT (0 before any lookup).",
        if lookups == 0 {
            0.0
        } else {
            ks.hits as f64 / lookups as f64
        },
    );
    let dbs: Vec<(String, u64, u64)> =
        s.ks.db_infos()
            .into_iter()
            .enumerate()
            .filter(|(_, i)| i.keys > 0)
            .map(|(db, i)| (db.to_string(), i.keys as u64, i.volatile as u64))
            .collect();
    e.family("shoal_db_keys", Kind::Gauge, "Keys per non-empty database.");
    for (db, keys, _) in &dbs {
        e.sample("shoal_db_keys", &[("db", db)], *keys as f64);
    }
    e.family(
        "shoal_db_keys_expiring",
        Kind::Gauge,
        "Keys with a time to live per non-empty database.",
    );
    for (db, _, expiring) in &dbs {
        e.sample("shoal_db_keys_expiring", &[("db", db)], *expiring as f64);
    }
    e.single(
        "shoal_expired_keys_total",
        Kind::Counter,
        "Keys removed because their time to live passed.",
        ks.expired as f64,
    );
    e.single(
        "shoal_evicted_keys_total",
        Kind::Counter,
        "Keys evicted under maxmemory.",
        ks.evicted as f64,
    );

    // Memory.
    e.single(
        "shoal_memory_used_bytes",
        Kind::Gauge,
        "Bytes allocated (used_memory).",
        m.allocated as f64,
    );
    e.single(
        "shoal_memory_rss_bytes",
        Kind::Gauge,
        "Resident set size of the process.",
        m.rss as f64,
    );
    e.single(
        "shoal_memory_max_bytes",
        Kind::Gauge,
        "maxmemory (0: no limit).",
        maxmemory as f64,
    );
    e.single(
        "shoal_memory_used_ratio",
        Kind::Gauge,
        "Used memory / maxmemory (0 when there is no limit).",
        if maxmemory == 0 {
            0.0
        } else {
            m.allocated as f64 / maxmemory as f64
        },
    );
    e.single(
        "shoal_memory_fragmentation_ratio",
        Kind::Gauge,
        "RSS / used memory (mem_fragmentation_ratio).",
        m.rss_ratio(),
    );

    // Clients and network.
    e.single(
        "shoal_connected_clients",
        Kind::Gauge,
        "Connected clients.",
        s.clients.len() as f64,
    );
    e.single(
        "shoal_blocked_clients",
        Kind::Gauge,
        "Clients blocked (held by CLIENT PAUSE or a blocking command).",
        s.blocked_clients.load(Ordering::Relaxed) as f64,
    );
    e.single(
        "shoal_rejected_connections_total",
        Kind::Counter,
        "Connections refused (maxclients, protected mode).",
        s.clients.rejected.load(Ordering::Relaxed) as f64,
    );
    e.single(
        "shoal_net_input_bytes_total",
        Kind::Counter,
        "Bytes read from clients.",
        t.net_in as f64,
    );
    e.single(
        "shoal_net_output_bytes_total",
        Kind::Counter,
        "Bytes written to clients.",
        t.net_out as f64,
    );

    // Commands and errors.
    e.single(
        "shoal_commands_processed_total",
        Kind::Counter,
        "Commands executed (total_commands_processed).",
        t.commands as f64,
    );
    let names = s.stats.names();
    let per_cmd = |e: &mut Exposition, name: &str, help: &str, pick: fn(&CmdTotals) -> u64| {
        e.family(name, Kind::Counter, help);
        for (i, c) in t.per_cmd.iter().enumerate() {
            if c.calls > 0 || c.rejected > 0 {
                e.sample(name, &[("cmd", names[i])], pick(c) as f64);
            }
        }
    };
    per_cmd(
        &mut e,
        "shoal_commands_total",
        "Calls per command (subcommands as container|sub).",
        |c| c.calls,
    );
    per_cmd(
        &mut e,
        "shoal_commands_failed_total",
        "Calls that returned an error (failed_calls).",
        |c| c.failed,
    );
    per_cmd(
        &mut e,
        "shoal_commands_rejected_total",
        "Calls refused before running (rejected_calls).",
        |c| c.rejected,
    );
    e.family(
        "shoal_errors_total",
        Kind::Counter,
        "Error replies by their first word (errorstat_<prefix>).",
    );
    for (prefix, n) in s.stats.errors() {
        e.sample("shoal_errors_total", &[("prefix", &prefix)], n as f64);
    }
    e.family(
        "shoal_command_duration_seconds",
        Kind::Histogram,
        "Command execution time.",
    );
    for (name, snap) in s.stats.latency() {
        e.histogram("shoal_command_duration_seconds", &[("cmd", name)], &snap);
    }

    // Persistence: no snapshot or append-only file exists yet, so these report a server that
    // has never saved, as Redis's INFO persistence does on a fresh start.
    e.single(
        "shoal_rdb_bgsave_in_progress",
        Kind::Gauge,
        "1 while a snapshot is being written.",
        0.0,
    );
    e.single(
        "shoal_rdb_last_bgsave_success",
        Kind::Gauge,
        "1 if the last snapshot succeeded (or none was taken), else 0.",
        1.0,
    );
    e.single(
        "shoal_rdb_last_bgsave_duration_seconds",
        Kind::Gauge,
        "Duration of the last snapshot (-1: none yet).",
        -1.0,
    );
    e.single(
        "shoal_rdb_last_cow_bytes",
        Kind::Gauge,
        "Extra memory the last snapshot used.",
        0.0,
    );
    e.single(
        "shoal_rdb_changes_since_last_save",
        Kind::Gauge,
        "Writes since the last snapshot.",
        t.dirty as f64,
    );
    let started_unix = (s.now_ms() / 1000).saturating_sub(s.started.elapsed().as_secs());
    e.single(
        "shoal_rdb_last_save_timestamp_seconds",
        Kind::Gauge,
        "Unix time of the last successful snapshot (start time before any).",
        started_unix as f64,
    );
    e.single(
        "shoal_aof_enabled",
        Kind::Gauge,
        "1 if the append-only file is on.",
        0.0,
    );
    e.single(
        "shoal_aof_rewrite_in_progress",
        Kind::Gauge,
        "1 while the append-only file is being rewritten.",
        0.0,
    );

    // Replication and cluster: a standalone master until those capabilities land.
    e.family(
        "shoal_replication_role",
        Kind::Gauge,
        "1 for the node's role (master or replica).",
    );
    e.sample("shoal_replication_role", &[("role", "master")], 1.0);
    e.single(
        "shoal_connected_replicas",
        Kind::Gauge,
        "Replicas connected to this node.",
        0.0,
    );
    e.single(
        "shoal_replication_offset_bytes",
        Kind::Gauge,
        "Replication offset (master_repl_offset).",
        0.0,
    );
    e.single(
        "shoal_replication_sync_queue",
        Kind::Gauge,
        "Writes waiting for replica acknowledgement.",
        0.0,
    );
    e.single(
        "shoal_replication_sync_latency_seconds",
        Kind::Gauge,
        "Time the oldest waiting write has waited for acknowledgement.",
        0.0,
    );
    e.single(
        "shoal_cluster_enabled",
        Kind::Gauge,
        "1 in cluster mode.",
        0.0,
    );
    e.finish()
}
