//! The state every connection shares: keyspace, command table, configuration, clients and
//! statistics, and the [`ServerOps`] the command families call into.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use shoal_commands::{
    ClientFilter, ClientState, CommandError, CommandLimits, CommandTable, PubsubKind, ServerOps,
    Subscriptions,
};
use shoal_resp::{Frame, Limits};
use shoal_storage::{Garbage, Keyspace, Policy};
use tokio::sync::{watch, Notify};

use crate::clients::Clients;
use crate::config::{self, Config};
use shoal_observe::ratelimit::EverySecond;
use shoal_observe::{Meters, Stats};

/// A source of wall-clock time. Injected so tests (and, later, replicas replaying a stream) can
/// run commands at a chosen instant.
pub trait Clock: Send + Sync {
    /// Unix time in microseconds.
    fn now_us(&self) -> u64;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_us(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0)
    }
}

/// Values read on hot paths, mirrored from the configuration so no lock is taken per command.
pub struct Live {
    pub proto_max_bulk_len: AtomicU64,
    pub max_multibulk_len: AtomicU64,
    pub max_inline_len: AtomicU64,
    pub lcs_max_table_bytes: AtomicU64,
    pub query_buffer_limit: AtomicU64,
    pub timeout_secs: AtomicU64,
    pub maxclients: AtomicU64,
    pub protected_mode: AtomicBool,
    pub has_password: AtomicBool,
    pub hz: AtomicU64,
    pub expire_effort: AtomicU64,
    pub lazy_user_flush: AtomicBool,
    pub tcp_keepalive: AtomicU64,
    /// `slowlog-log-slower-than` in microseconds (-1: off).
    pub slowlog_slower_than: std::sync::atomic::AtomicI64,
    /// `slowlog-max-len`.
    pub slowlog_max_len: AtomicU64,
    /// `latency-monitor-threshold` in milliseconds (0: off).
    pub latency_threshold_ms: AtomicU64,
    /// The hard limit of `client-output-buffer-limit normal`, in bytes (0: none).
    pub normal_output_hard: AtomicU64,
}

/// Everything shared by the server's tasks.
pub struct Shared {
    pub ks: Keyspace,
    pub table: CommandTable,
    pub config: RwLock<Config>,
    pub live: Live,
    pub clients: Clients,
    pub stats: Stats,
    pub clock: Box<dyn Clock>,
    pub started: Instant,
    /// `CLIENT PAUSE`: Unix ms until which clients wait (0 = not paused), and whether every
    /// command waits or only writes. Atomics, because every command checks them.
    pub pause_until: AtomicU64,
    pub pause_all: AtomicBool,
    pub unpaused: Notify,
    /// Clients currently held by `CLIENT PAUSE`.
    pub blocked_clients: std::sync::atomic::AtomicUsize,
    /// Set to true to stop the server; every listener and connection watches it.
    pub shutdown: watch::Sender<bool>,
    pub expired_stale_perc: AtomicU64,
    lazy_free: Mutex<mpsc::Sender<(Garbage, u64)>>,
    /// Keys handed to the lazy-free thread and not yet freed, and keys it has freed
    /// (`lazyfree_pending_objects`, `lazyfreed_objects`).
    pub lazyfree: Arc<LazyFreeStats>,
    /// Active expiry cycles stopped by their time budget, and the time all cycles ran
    /// (`expired_time_cap_reached_count`, `expire_cycle_cpu_milliseconds`), in microseconds.
    pub expire_time_cap_reached: AtomicU64,
    pub expire_cycle_us: AtomicU64,
    pub run_id: String,
    pub tcp_port: AtomicU64,
    /// Instantaneous rates, sampled by the background cycle.
    pub meters: Meters,
    /// At most one log line a second for slow commands and for refused clients.
    pub slow_log_lines: EverySecond,
    pub rejected_log_lines: EverySecond,
    /// True while a dataset is being loaded at start-up: `/readyz` answers 503 until it clears.
    pub loading: AtomicBool,
    /// `SLOWLOG`: locked only for commands that qualify and for the command itself.
    pub slowlog: Mutex<shoal_observe::slowlog::SlowLog>,
    /// `LATENCY`: locked only for spikes over the threshold and for the command itself.
    pub latency: Mutex<shoal_observe::latency::LatencyMonitor>,
    /// Clients in `MONITOR` mode.
    pub monitors: crate::connection::Monitors,
    /// Thresholds between compact and full collection encodings, copied into every command's
    /// limits.
    pub type_limits: RwLock<shoal_storage::TypeLimits>,
    /// Clients blocked on keys (`BLPOP` and friends).
    pub blocking: crate::blocking::Blocking,
    /// Pub/sub subscriptions and the subscribers' mailboxes.
    pub pubsub: crate::pubsub::Hub,
    /// Client-side caching: who may hold which keys.
    pub tracking: crate::tracking::Tracking,
    /// The running script, for `-BUSY` and `SCRIPT KILL`.
    pub script: crate::script_run::ScriptRun,
    /// The Lua VM and its script cache; `None` if the VM could not be created.
    pub scripts: Option<Mutex<shoal_script::Engine>>,
}

impl Shared {
    /// Builds the shared state from a validated configuration.
    pub fn new(cfg: Config, clock: Box<dyn Clock>) -> Arc<Shared> {
        let seed = clock.now_us() ^ (std::process::id() as u64).rotate_left(32);
        let ks = Keyspace::new(
            cfg.int("databases") as usize,
            cfg.int("lock-stripes") as usize,
            seed,
        );
        let table = CommandTable::new();
        let stats = Stats::new(&table);
        let script_run = crate::script_run::ScriptRun::default();
        let scripts = match shoal_script::Engine::new(
            script_run.killed.clone(),
            shoal_commands::REDIS_COMPAT_VERSION,
        ) {
            Ok(engine) => Some(Mutex::new(engine)),
            Err(e) => {
                tracing::error!(error = %e, "the Lua VM could not be created; scripting is off");
                None
            }
        };
        let (tx, rx) = mpsc::channel::<(Garbage, u64)>();
        let lazyfree = Arc::new(LazyFreeStats::default());
        let counts = lazyfree.clone();
        // Freed tables are dropped here so FLUSHALL ASYNC answers at once.
        let _ = std::thread::Builder::new()
            .name("shoal-lazyfree".into())
            .spawn(move || {
                while let Ok((g, keys)) = rx.recv() {
                    drop(g);
                    counts.pending.fetch_sub(keys, Ordering::Relaxed);
                    counts.freed.fetch_add(keys, Ordering::Relaxed);
                }
            });
        let (shutdown, _) = watch::channel(false);
        let run_id = random_hex40(seed);
        let shared = Arc::new(Shared {
            ks,
            table,
            live: Live {
                proto_max_bulk_len: AtomicU64::new(0),
                max_multibulk_len: AtomicU64::new(0),
                max_inline_len: AtomicU64::new(0),
                lcs_max_table_bytes: AtomicU64::new(0),
                query_buffer_limit: AtomicU64::new(0),
                timeout_secs: AtomicU64::new(0),
                maxclients: AtomicU64::new(0),
                protected_mode: AtomicBool::new(true),
                has_password: AtomicBool::new(false),
                hz: AtomicU64::new(10),
                expire_effort: AtomicU64::new(1),
                lazy_user_flush: AtomicBool::new(false),
                tcp_keepalive: AtomicU64::new(300),
                slowlog_slower_than: Default::default(),
                slowlog_max_len: AtomicU64::new(0),
                latency_threshold_ms: AtomicU64::new(0),
                normal_output_hard: AtomicU64::new(0),
            },
            config: RwLock::new(cfg),
            clients: Clients::default(),
            stats,
            clock,
            started: Instant::now(),
            pause_until: AtomicU64::new(0),
            pause_all: AtomicBool::new(false),
            blocked_clients: Default::default(),
            unpaused: Notify::new(),
            shutdown,
            expired_stale_perc: AtomicU64::new(0),
            lazy_free: Mutex::new(tx),
            lazyfree,
            expire_time_cap_reached: AtomicU64::new(0),
            expire_cycle_us: AtomicU64::new(0),
            run_id,
            tcp_port: AtomicU64::new(0),
            meters: Meters::default(),
            slow_log_lines: EverySecond::default(),
            rejected_log_lines: EverySecond::default(),
            loading: AtomicBool::new(false),
            slowlog: Default::default(),
            latency: Default::default(),
            monitors: Default::default(),
            type_limits: RwLock::new(shoal_storage::TypeLimits::default()),
            blocking: Default::default(),
            pubsub: Default::default(),
            tracking: Default::default(),
            script: script_run,
            scripts,
        });
        let cfg = shared.config.read().clone();
        shared.apply_all(&cfg);
        shared
    }

    /// Pushes every hot-path value of `cfg` into the live mirrors and the keyspace.
    fn apply_all(&self, cfg: &Config) {
        let l = &self.live;
        l.proto_max_bulk_len
            .store(cfg.bytes("proto-max-bulk-len"), Ordering::Relaxed);
        l.max_multibulk_len
            .store(cfg.int("proto-max-multibulk-len") as u64, Ordering::Relaxed);
        l.max_inline_len
            .store(cfg.bytes("proto-max-inline-len"), Ordering::Relaxed);
        l.lcs_max_table_bytes
            .store(cfg.bytes("lcs-max-table-bytes"), Ordering::Relaxed);
        l.query_buffer_limit
            .store(cfg.bytes("client-query-buffer-limit"), Ordering::Relaxed);
        l.timeout_secs
            .store(cfg.int("timeout") as u64, Ordering::Relaxed);
        l.maxclients
            .store(cfg.int("maxclients") as u64, Ordering::Relaxed);
        l.protected_mode
            .store(cfg.flag("protected-mode"), Ordering::Relaxed);
        l.has_password
            .store(!cfg.get("requirepass").is_empty(), Ordering::Relaxed);
        l.hz.store(cfg.int("hz") as u64, Ordering::Relaxed);
        self.ks.notify_flags.store(
            shoal_storage::notify::parse(cfg.get("notify-keyspace-events")).unwrap_or(0),
            Ordering::Relaxed,
        );
        self.script
            .threshold_ms
            .store(cfg.int("busy-reply-threshold") as u64, Ordering::Relaxed);
        self.tracking
            .max_keys
            .store(cfg.int("tracking-table-max-keys") as u64, Ordering::Relaxed);
        l.expire_effort
            .store(cfg.int("active-expire-effort") as u64, Ordering::Relaxed);
        l.lazy_user_flush
            .store(cfg.flag("lazyfree-lazy-user-flush"), Ordering::Relaxed);
        l.tcp_keepalive
            .store(cfg.int("tcp-keepalive") as u64, Ordering::Relaxed);
        let slower_than = cfg.int("slowlog-log-slower-than");
        let max_len = cfg.int("slowlog-max-len").max(0) as u64;
        l.slowlog_slower_than.store(slower_than, Ordering::Relaxed);
        l.slowlog_max_len.store(max_len, Ordering::Relaxed);
        // Redis trims the slow log to its length whenever a command is considered for it, the
        // CONFIG SET that lowered the length included; trimming here has the same effect.
        if slower_than >= 0 {
            self.slowlog.lock().trim(max_len as usize);
        }
        l.latency_threshold_ms.store(
            cfg.int("latency-monitor-threshold").max(0) as u64,
            Ordering::Relaxed,
        );
        self.stats
            .set_latency_tracking(cfg.flag("latency-tracking"));
        *self.type_limits.write() = shoal_storage::TypeLimits {
            hash_max_listpack_entries: cfg.int("hash-max-listpack-entries") as usize,
            hash_max_listpack_value: cfg.bytes("hash-max-listpack-value") as usize,
            set_max_intset_entries: cfg.int("set-max-intset-entries") as usize,
            zset_max_listpack_entries: cfg.int("zset-max-listpack-entries") as usize,
            zset_max_listpack_value: cfg.bytes("zset-max-listpack-value") as usize,
            list_max_listpack_size: cfg.int("list-max-listpack-size"),
            list_compress_depth: cfg.int("list-compress-depth") as usize,
            stream_node_max_bytes: cfg.bytes("stream-node-max-bytes") as usize,
            stream_node_max_entries: cfg.int("stream-node-max-entries") as usize,
            hll_sparse_max_bytes: cfg.bytes("hll-sparse-max-bytes") as usize,
        };
        let output_limits = cfg.output_limits();
        self.pubsub.set_limit(output_limits.pubsub);
        l.normal_output_hard
            .store(output_limits.normal.hard, Ordering::Relaxed);
        let ev = &self.ks.eviction;
        ev.set_maxmemory(cfg.bytes("maxmemory"));
        if let Some(p) = Policy::parse(cfg.get("maxmemory-policy")) {
            ev.set_policy(p);
        }
        ev.set_samples(cfg.int("maxmemory-samples") as u32);
        ev.set_lfu_log_factor(cfg.int("lfu-log-factor") as u32);
        ev.set_lfu_decay_time(cfg.int("lfu-decay-time") as u32);
    }

    /// Protocol limits for the request parser.
    pub fn limits(&self) -> Limits {
        Limits {
            max_bulk_len: self.live.proto_max_bulk_len.load(Ordering::Relaxed) as usize,
            max_multibulk_len: self.live.max_multibulk_len.load(Ordering::Relaxed) as usize,
            max_inline_len: self.live.max_inline_len.load(Ordering::Relaxed) as usize,
        }
    }

    /// Unix time in milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_us() / 1000
    }

    /// Starts a shutdown.
    pub fn request_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Publishes `message` on `channel` as `PUBLISH` does, to the channel's subscribers and
    /// those of every matching pattern; returns how many received it. For server-side
    /// publishers such as keyspace notifications. Takes no stripe lock.
    pub fn publish(&self, channel: &[u8], message: &[u8]) -> usize {
        self.pubsub
            .publish(PubsubKind::Channel, channel, message, self.now_secs())
    }

    /// Unix time in seconds.
    pub fn now_secs(&self) -> u64 {
        self.clock.now_us() / 1_000_000
    }
}

/// What the lazy-free thread has been given and has done, in keys.
#[derive(Default)]
pub struct LazyFreeStats {
    pub pending: AtomicU64,
    pub freed: AtomicU64,
}

/// 40 hex digits derived from `seed` (the run id; Redis's is random), every digit mixed by
/// SplitMix64 so the id does not show the seed's structure.
pub fn random_hex40(seed: u64) -> String {
    let mut state = seed;
    let mut out = String::with_capacity(48);
    for _ in 0..3 {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.push_str(&format!("{z:016x}"));
    }
    out.truncate(40);
    out
}

fn config_error(name: &str, msg: &str) -> CommandError {
    CommandError::err(format!(
        "CONFIG SET failed (possibly related to argument '{name}') - {msg}"
    ))
}

impl Shared {
    /// Milliseconds since start-up on the monotonic clock (script run times).
    pub fn monotonic_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Publishes a command's keyspace notifications: each to `__keyspace@<db>__:<key>` (with
    /// the event) and `__keyevent@<db>__:<event>` (with the key), as its flags ask.
    pub fn publish_notifications(&self, notes: &[shoal_storage::notify::Notification]) {
        use shoal_storage::notify::{KEYEVENT, KEYSPACE};
        let flags = self.ks.notify_flags.load(Ordering::Relaxed);
        for n in notes {
            if flags & KEYSPACE != 0 {
                let mut channel = format!("__keyspace@{}__:", n.db).into_bytes();
                channel.extend_from_slice(&n.key);
                self.publish(&channel, n.event.as_bytes());
            }
            if flags & KEYEVENT != 0 {
                let channel = format!("__keyevent@{}__:{}", n.db, n.event);
                self.publish(channel.as_bytes(), &n.key);
            }
        }
    }

    /// Turns client `id`'s tracking off (`CLIENT TRACKING OFF`, `RESET`, disconnect); the last
    /// tracking client stops the key events tracking needs.
    pub fn stop_tracking(&self, id: u64) {
        if self.tracking.disable(id) && self.tracking.active() == 0 {
            self.ks.listen_key_events(false);
        }
    }
}

impl ServerOps for Shared {
    fn requirepass(&self) -> Option<String> {
        let c = self.config.read();
        let p = c.get("requirepass");
        (!p.is_empty()).then(|| p.to_string())
    }

    fn config_get(&self, patterns: &[Bytes]) -> Vec<(String, String)> {
        let c = self.config.read();
        let mut out: Vec<(String, String)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for pat in patterns {
            let text = String::from_utf8_lossy(pat).into_owned();
            if !text.contains(['*', '?', '[']) {
                // A plain name is looked up directly and echoed as the client wrote it, as Redis
                // does.
                if let Some(p) = config::param(&text) {
                    if seen.insert(p.name) {
                        out.push((text, c.get(p.name).to_string()));
                    }
                }
                continue;
            }
            for (name, value) in c.iter() {
                if shoal_storage::glob_match(pat, name.as_bytes(), true) && seen.insert(name) {
                    out.push((name.to_string(), value.to_string()));
                }
            }
        }
        out
    }

    fn config_set(&self, pairs: &[(Bytes, Bytes)]) -> Result<(), CommandError> {
        // Held for the whole update so two concurrent CONFIG SETs cannot lose each other's changes.
        let mut current = self.config.write();
        let mut next = current.clone();
        let mut seen = std::collections::HashSet::new();
        for (k, v) in pairs {
            // Errors name the parameter as the client wrote it, as Redis's do.
            let given = String::from_utf8_lossy(k).into_owned();
            let Some(p) = config::param(&given) else {
                return Err(CommandError::err(format!(
                    "Unknown option or number of arguments for CONFIG SET - '{given}'"
                )));
            };
            if !seen.insert(p.name) {
                return Err(config_error(&given, "duplicate parameter"));
            }
            let value = String::from_utf8_lossy(v).into_owned();
            let words = match p.kind {
                config::Kind::SavePairs
                | config::Kind::AddrList
                | config::Kind::Percentiles
                | config::Kind::OutputLimits => {
                    value.split_whitespace().map(str::to_string).collect()
                }
                _ => vec![value],
            };
            // The value is checked before mutability, so a bad value is reported as such.
            next.set(p.name, &words)
                .map_err(|e| config_error(&given, &e))?;
            if !p.mutable {
                return Err(config_error(&given, "can't set immutable config"));
            }
        }
        self.apply_all(&next);
        // One line per parameter, after every value was accepted (CONFIG SET is all or nothing).
        // Passwords are never written to the log.
        for (k, _) in pairs {
            let Some(p) = config::param(&String::from_utf8_lossy(k)) else {
                continue;
            };
            let (old, new) = if p.name == "requirepass" {
                ("(redacted)", "(redacted)")
            } else {
                (current.get(p.name), next.get(p.name))
            };
            tracing::info!(
                parameter = p.name,
                old,
                new,
                "configuration changed by CONFIG SET"
            );
        }
        // The level changes after the lines above, so raising it to `warning` is still recorded.
        if seen.contains("loglevel") {
            crate::set_log_level(next.get("loglevel"));
        }
        *current = next;
        Ok(())
    }

    fn config_rewrite(&self) -> Result<(), CommandError> {
        self.config.read().rewrite().map_err(CommandError::err)
    }

    fn reset_stats(&self) {
        self.stats.reset();
        self.ks.reset_stats();
        // Redis's CONFIG RESETSTAT zeroes these too (but not the pending lazy-free count).
        self.clients.total_connections.store(0, Ordering::Relaxed);
        self.clients.rejected.store(0, Ordering::Relaxed);
        self.lazyfree.freed.store(0, Ordering::Relaxed);
        self.expire_time_cap_reached.store(0, Ordering::Relaxed);
        self.expire_cycle_us.store(0, Ordering::Relaxed);
    }

    fn info(&self, sections: &[String]) -> String {
        crate::info::render(self, sections)
    }

    fn update_client(&self, client: &ClientState) {
        self.clients.update(client);
    }

    fn client_list(&self, filter: &ClientFilter, me: u64) -> String {
        let mut out = String::new();
        for c in self.clients.select(filter, me) {
            out.push_str(&Clients::line(&c));
        }
        out
    }

    fn client_kill(&self, filter: &ClientFilter, me: u64) -> usize {
        let victims = self.clients.select(filter, me);
        for c in &victims {
            c.killed.store(true, Ordering::Relaxed);
            // Every waiter: the connection's read loop and, for a monitor, its write guard. A
            // connection not waiting yet sees the flag before it next waits.
            c.kill_notify.notify_waiters();
        }
        victims.len()
    }

    fn client_pause(&self, until_ms: u64, all: bool) {
        // A new pause never shortens or weakens one in force, as in Redis.
        let now = self.now_ms();
        let current = self.pause_until.load(Ordering::Relaxed);
        if current > now {
            self.pause_until
                .store(current.max(until_ms), Ordering::Relaxed);
            self.pause_all.fetch_or(all, Ordering::Relaxed);
        } else {
            self.pause_all.store(all, Ordering::Relaxed);
            self.pause_until.store(until_ms, Ordering::Relaxed);
        }
    }

    fn client_unpause(&self) {
        self.pause_until.store(0, Ordering::Relaxed);
        self.unpaused.notify_waiters();
    }

    fn tracking_enable(
        &self,
        id: u64,
        mode: shoal_commands::TrackingMode,
        prefixes: &[Bytes],
    ) -> Result<(), CommandError> {
        // The mailbox first, so no invalidation can find the client without one.
        self.pubsub.open(id);
        if self.tracking.enable(id, mode, prefixes)? && self.tracking.active() == 1 {
            self.ks.listen_key_events(true);
        }
        Ok(())
    }

    fn tracking_disable(&self, id: u64) {
        self.stop_tracking(id);
    }

    fn script_engine(&self) -> Option<&Mutex<shoal_script::Engine>> {
        self.scripts.as_ref()
    }

    fn script_begin(&self, eval: bool) {
        self.script.begin(eval, self.monotonic_ms());
    }

    fn script_wrote(&self) {
        self.script.wrote();
    }

    fn script_killed(&self) -> bool {
        self.script.killed()
    }

    fn script_end(&self) {
        self.script.end();
    }

    fn script_kill(&self, eval: bool) -> Result<(), CommandError> {
        self.script.kill(eval)
    }

    fn tracking_info(&self, id: u64) -> (Vec<Bytes>, bool) {
        self.tracking.info(id)
    }

    fn client_exists(&self, id: u64) -> bool {
        self.clients.all().iter().any(|c| c.id == id)
    }

    fn client_unblock(&self, id: u64, error: bool) -> bool {
        let how = if error {
            crate::blocking::Unblock::Error
        } else {
            crate::blocking::Unblock::Timeout
        };
        self.blocking.unblock(id, how)
    }

    fn memory_stats(&self) -> Vec<(String, Frame)> {
        let m = crate::info::memory();
        let o = crate::info::overhead(self, &m);
        let keys: usize = self.ks.db_infos().iter().map(|i| i.keys).sum();
        let dataset = self.ks.dataset_estimate();
        vec![
            ("peak.allocated".into(), Frame::Integer(m.peak as i64)),
            ("total.allocated".into(), Frame::Integer(m.allocated as i64)),
            ("startup.allocated".into(), Frame::Integer(o.startup as i64)),
            ("replication.backlog".into(), Frame::Integer(0)),
            ("clients.slaves".into(), Frame::Integer(0)),
            ("clients.normal".into(), Frame::Integer(o.clients as i64)),
            ("aof.buffer".into(), Frame::Integer(0)),
            ("lua.caches".into(), Frame::Integer(0)),
            (
                "overhead.total".into(),
                Frame::Integer(m.allocated.saturating_sub(dataset) as i64),
            ),
            ("keys.count".into(), Frame::Integer(keys as i64)),
            (
                "keys.bytes-per-key".into(),
                Frame::Integer(m.allocated.checked_div(keys).unwrap_or(0) as i64),
            ),
            ("dataset.bytes".into(), Frame::Integer(dataset as i64)),
            (
                "dataset.percentage".into(),
                Frame::Double(if m.allocated == 0 {
                    0.0
                } else {
                    dataset as f64 * 100.0 / m.allocated as f64
                }),
            ),
            (
                "peak.percentage".into(),
                Frame::Double(if m.peak == 0 {
                    0.0
                } else {
                    m.allocated as f64 * 100.0 / m.peak as f64
                }),
            ),
            (
                "allocator.allocated".into(),
                Frame::Integer(m.allocated as i64),
            ),
            ("allocator.active".into(), Frame::Integer(m.active as i64)),
            (
                "allocator.resident".into(),
                Frame::Integer(m.resident as i64),
            ),
            (
                "allocator-fragmentation.ratio".into(),
                Frame::Double(m.frag_ratio()),
            ),
            ("rss-overhead.ratio".into(), Frame::Double(m.rss_ratio())),
            ("fragmentation".into(), Frame::Double(m.rss_ratio())),
            (
                "fragmentation.bytes".into(),
                Frame::Integer(m.rss as i64 - m.allocated as i64),
            ),
        ]
    }

    fn malloc_stats(&self) -> String {
        let m = crate::info::memory();
        format!(
            "___ Begin jemalloc statistics ___\nAllocated: {}, active: {}, metadata: {}, resident: {}, mapped: {}, retained: {}\n--- End jemalloc statistics ---\n",
            m.allocated, m.active, m.metadata, m.resident, m.mapped, m.retained
        )
    }

    fn memory_doctor(&self) -> String {
        crate::info::memory_doctor(self)
    }

    fn free(&self, garbage: Garbage, lazy: bool) {
        if lazy {
            let keys = garbage.keys() as u64;
            self.lazyfree.pending.fetch_add(keys, Ordering::Relaxed);
            if let Err(e) = self.lazy_free.lock().send((garbage, keys)) {
                // The thread is gone (only at exit): free here, and keep the counts true.
                drop(e.0);
                self.lazyfree.pending.fetch_sub(keys, Ordering::Relaxed);
            }
        } else {
            drop(garbage);
        }
    }

    fn lazy_user_flush(&self) -> bool {
        self.live.lazy_user_flush.load(Ordering::Relaxed)
    }

    fn limits(&self) -> CommandLimits {
        CommandLimits {
            max_string: self.live.proto_max_bulk_len.load(Ordering::Relaxed),
            lcs_table: self.live.lcs_max_table_bytes.load(Ordering::Relaxed),
            types: *self.type_limits.read(),
        }
    }

    fn slowlog_get(&self, count: usize) -> Vec<Frame> {
        self.slowlog
            .lock()
            .newest(count)
            .map(slowlog_entry)
            .collect()
    }

    fn slowlog_len(&self) -> usize {
        self.slowlog.lock().len()
    }

    fn slowlog_reset(&self) {
        self.slowlog.lock().reset();
    }

    fn latency_latest(&self) -> Vec<(String, u64, u64, u64)> {
        self.latency
            .lock()
            .latest()
            .into_iter()
            .map(|l| (l.event, l.time, l.latency_ms, l.max_ms))
            .collect()
    }

    fn latency_history(&self, event: &[u8]) -> Vec<(u64, u64)> {
        self.latency
            .lock()
            .history(event)
            .into_iter()
            .map(|s| (s.time, s.latency_ms))
            .collect()
    }

    fn latency_reset(&self, events: &[Bytes]) -> usize {
        let mut latency = self.latency.lock();
        if events.is_empty() {
            return latency.reset(None);
        }
        events.iter().map(|e| latency.reset(Some(e))).sum()
    }

    fn latency_graph(&self, event: &[u8]) -> Option<String> {
        let now = self.clock.now_us() / 1_000_000;
        self.latency.lock().graph(event, now)
    }

    fn latency_histograms(&self) -> Vec<shoal_commands::LatencyHistogram> {
        self.stats
            .latency()
            .into_iter()
            .map(|(command, snap)| shoal_commands::LatencyHistogram {
                command,
                calls: snap.count(),
                cdf: snap.redis_cdf(),
            })
            .collect()
    }

    fn publish(&self, kind: PubsubKind, channel: &[u8], message: &[u8]) -> usize {
        match kind {
            PubsubKind::Channel => Shared::publish(self, channel, message),
            _ => self.pubsub.publish(kind, channel, message, self.now_secs()),
        }
    }

    fn subscribe(
        &self,
        client: &ClientState,
        kind: PubsubKind,
        names: &[Bytes],
        inline: bool,
    ) -> Subscriptions {
        let now = self.now_secs();
        self.pubsub
            .subscribe(client.id, client.protocol, kind, names, inline, now)
    }

    fn unsubscribe(
        &self,
        client: &ClientState,
        kind: PubsubKind,
        names: &[Bytes],
        inline: bool,
    ) -> Subscriptions {
        let now = self.now_secs();
        self.pubsub
            .unsubscribe(client.id, client.protocol, kind, names, inline, now)
    }

    fn unsubscribe_all(&self, id: u64) {
        self.pubsub.unsubscribe_all(id);
    }

    fn pubsub_channels(&self, kind: PubsubKind, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.pubsub.channels(kind, pattern)
    }

    fn pubsub_numsub(&self, kind: PubsubKind, channels: &[Bytes]) -> Vec<usize> {
        self.pubsub.numsub(kind, channels)
    }

    fn pubsub_numpat(&self) -> usize {
        self.pubsub.counts().1
    }

    fn latency_doctor(&self) -> String {
        let cx = shoal_observe::latency::DoctorContext {
            now: self.clock.now_us() / 1_000_000,
            threshold_ms: self.live.latency_threshold_ms.load(Ordering::Relaxed),
            slowlog_slower_than: self.live.slowlog_slower_than.load(Ordering::Relaxed),
            huge_pages: anon_huge_pages() > 0,
        };
        self.latency.lock().doctor(&cx)
    }
}

/// One `SLOWLOG GET` entry: id, Unix time, microseconds, arguments, client address, client name.
fn slowlog_entry(e: &shoal_observe::slowlog::Entry) -> Frame {
    Frame::Array(vec![
        Frame::Integer(e.id as i64),
        Frame::Integer(e.time as i64),
        Frame::Integer(e.duration_us as i64),
        Frame::Array(
            e.args
                .iter()
                .map(|a| Frame::Bulk(Bytes::copy_from_slice(a)))
                .collect(),
        ),
        Frame::Bulk(Bytes::copy_from_slice(e.addr.as_bytes())),
        Frame::Bulk(Bytes::copy_from_slice(&e.name)),
    ])
}

/// Bytes of transparent huge pages the process uses (`AnonHugePages`), which `LATENCY DOCTOR`
/// warns about as Redis does; 0 where the kernel does not say.
fn anon_huge_pages() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/self/smaps_rollup") else {
        return 0;
    };
    text.lines()
        .find_map(|l| l.strip_prefix("AnonHugePages:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
