//! Server statistics for `INFO` and `/metrics`: per-command calls, latency histograms, error
//! counts, network bytes.
//!
//! The command path must not contend on shared counters, so every worker thread owns a shard of
//! plain atomics that only it writes (relaxed loads and stores, no read-modify-write), registered
//! once with the process-wide [`Stats`]; `INFO` sums the shards.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use shoal_commands::{CommandSpec, CommandTable};

use crate::histogram::{Histogram, Snapshot};

/// Counters of one command in one shard.
#[derive(Default)]
pub struct CmdCounters {
    pub calls: AtomicU64,
    pub nanos: AtomicU64,
    pub rejected: AtomicU64,
    pub failed: AtomicU64,
    /// Allocated on the command's first call on this thread: most commands are never called,
    /// and a histogram is 32 KiB.
    latency: OnceLock<Histogram>,
}

/// Per-thread counters.
pub struct Shard {
    cmds: Box<[CmdCounters]>,
    pub net_in: AtomicU64,
    pub net_out: AtomicU64,
    /// Socket reads and writes (`total_reads_processed`, `total_writes_processed`).
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    pub commands: AtomicU64,
    pub dirty: AtomicU64,
    /// Error replies by code. A mutex only this thread takes on the command path (readers take
    /// it at `INFO` or scrape time), so it is uncontended.
    errors: Mutex<HashMap<String, u64>>,
    /// The [`Stats`] this shard belongs to.
    owner: u64,
    /// The last command recorded on this thread (its spec's address) and its counter index:
    /// clients repeat commands, and this skips the hash lookup. Only the owning thread uses it.
    last_spec: AtomicUsize,
    last_index: AtomicUsize,
}

/// Gives every [`Stats`] its own identity, so a thread's shard is never credited to another
/// instance (tests create several servers' statistics in one process).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn bump(c: &AtomicU64, by: u64) {
    // Only the owning thread writes, so a load and a store cannot lose an update.
    c.store(c.load(Ordering::Relaxed) + by, Ordering::Relaxed);
}

/// Process-wide statistics.
pub struct Stats {
    /// Spec address to counter index; looked up once per command, so a fast hasher matters.
    index: HashMap<usize, usize, foldhash::fast::FixedState>,
    names: Vec<&'static str>,
    shards: Mutex<Vec<Arc<Shard>>>,
    /// Counters folded in by `CONFIG RESETSTAT` are subtracted from the shards' totals.
    baseline: Mutex<Totals>,
    /// Histograms at the last `CONFIG RESETSTAT`, by command index.
    latency_baseline: Mutex<HashMap<usize, Snapshot>>,
    /// `latency-tracking`.
    tracking: AtomicBool,
    id: u64,
}

/// One command's counters, summed over threads (`cmdstat_<name>`).
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmdTotals {
    pub calls: u64,
    pub usec: u64,
    pub rejected: u64,
    pub failed: u64,
}

impl CmdTotals {
    /// These counters less an earlier reading of them (never below zero).
    fn since(self, base: CmdTotals) -> CmdTotals {
        CmdTotals {
            calls: self.calls.saturating_sub(base.calls),
            usec: self.usec.saturating_sub(base.usec),
            rejected: self.rejected.saturating_sub(base.rejected),
            failed: self.failed.saturating_sub(base.failed),
        }
    }
}

/// Summed counters.
#[derive(Default, Clone)]
pub struct Totals {
    pub per_cmd: Vec<CmdTotals>,
    pub net_in: u64,
    pub net_out: u64,
    pub reads: u64,
    pub writes: u64,
    pub commands: u64,
    pub dirty: u64,
}

thread_local! {
    static LOCAL: RefCell<Option<Arc<Shard>>> = const { RefCell::new(None) };
}

impl Stats {
    /// Creates statistics for every command and subcommand of the table.
    pub fn new(table: &CommandTable) -> Stats {
        let mut names = Vec::new();
        let mut index = HashMap::with_hasher(foldhash::fast::FixedState::default());
        let mut specs: Vec<&'static CommandSpec> = table.all().collect();
        specs.sort_by_key(|s| s.name);
        for s in specs {
            for spec in std::iter::once(s).chain(s.subcommands.iter()) {
                index.insert(spec as *const CommandSpec as usize, names.len());
                names.push(spec.name);
            }
        }
        Stats {
            index,
            names,
            shards: Mutex::new(Vec::new()),
            baseline: Mutex::new(Totals::default()),
            latency_baseline: Mutex::new(HashMap::new()),
            tracking: AtomicBool::new(true),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    fn with_shard<R>(&self, f: impl FnOnce(&Shard) -> R) -> R {
        LOCAL.with(|l| {
            let mut l = l.borrow_mut();
            if l.as_ref().is_some_and(|s| s.owner != self.id) {
                *l = None;
            }
            let shard = l.get_or_insert_with(|| {
                let s = Arc::new(Shard {
                    cmds: (0..self.names.len())
                        .map(|_| CmdCounters::default())
                        .collect(),
                    net_in: AtomicU64::new(0),
                    net_out: AtomicU64::new(0),
                    reads: AtomicU64::new(0),
                    writes: AtomicU64::new(0),
                    commands: AtomicU64::new(0),
                    dirty: AtomicU64::new(0),
                    errors: Mutex::new(HashMap::new()),
                    owner: self.id,
                    last_spec: AtomicUsize::new(0),
                    last_index: AtomicUsize::new(0),
                });
                self.shards.lock().push(s.clone());
                s
            });
            f(shard)
        })
    }

    /// Sets `latency-tracking`: whether commands feed the latency histograms.
    pub fn set_latency_tracking(&self, on: bool) {
        self.tracking.store(on, Ordering::Relaxed);
    }

    /// Records one command that ran for `nanos` nanoseconds.
    pub fn record(
        &self,
        spec: Option<&'static CommandSpec>,
        nanos: u64,
        rejected: bool,
        error: Option<&str>,
        dirty: u64,
    ) {
        if spec.is_none() && dirty == 0 && error.is_none() {
            return;
        }
        // One visit to the thread's shard per command: this runs on every command.
        self.with_shard(|s| {
            let index = spec.and_then(|spec| {
                let addr = spec as *const CommandSpec as usize;
                if s.last_spec.load(Ordering::Relaxed) == addr {
                    return Some(s.last_index.load(Ordering::Relaxed));
                }
                let i = *self.index.get(&addr)?;
                s.last_spec.store(addr, Ordering::Relaxed);
                s.last_index.store(i, Ordering::Relaxed);
                Some(i)
            });
            if dirty > 0 {
                bump(&s.dirty, dirty);
            }
            if let Some(code) = error {
                let mut errors = s.errors.lock();
                match errors.get_mut(code) {
                    Some(n) => *n += 1,
                    None => {
                        errors.insert(code.to_string(), 1);
                    }
                }
            }
            let Some(i) = index else { return };
            let c = &s.cmds[i];
            if rejected {
                bump(&c.rejected, 1);
                return;
            }
            bump(&c.calls, 1);
            bump(&c.nanos, nanos);
            if self.tracking.load(Ordering::Relaxed) {
                // Like Redis, which records whole microseconds (`c->duration * 1000`, at least
                // 1 ns), so percentiles come out as Redis prints them; the sum keeps every
                // nanosecond.
                let value = (nanos / 1000 * 1000).max(1);
                c.latency
                    .get_or_init(Histogram::default)
                    .record(value, nanos);
            }
            if error.is_some() {
                bump(&c.failed, 1);
            }
            bump(&s.commands, 1);
        });
    }

    /// Records key modifications made outside a command (`rdb_changes_since_last_save`), by the
    /// background cycle's expiry and eviction.
    pub fn dirty(&self, n: u64) {
        if n > 0 {
            self.with_shard(|s| bump(&s.dirty, n));
        }
    }

    /// Records network traffic.
    pub fn net(&self, input: u64, output: u64) {
        self.with_shard(|s| {
            if input > 0 {
                bump(&s.net_in, input);
                bump(&s.reads, 1);
            }
            if output > 0 {
                bump(&s.net_out, output);
                bump(&s.writes, 1);
            }
        });
    }

    fn raw(&self) -> Totals {
        let mut t = Totals {
            per_cmd: vec![CmdTotals::default(); self.names.len()],
            ..Totals::default()
        };
        for s in self.shards.lock().iter() {
            for (i, c) in s.cmds.iter().enumerate() {
                let e = &mut t.per_cmd[i];
                e.calls += c.calls.load(Ordering::Relaxed);
                e.usec += c.nanos.load(Ordering::Relaxed) / 1000;
                e.rejected += c.rejected.load(Ordering::Relaxed);
                e.failed += c.failed.load(Ordering::Relaxed);
            }
            t.net_in += s.net_in.load(Ordering::Relaxed);
            t.net_out += s.net_out.load(Ordering::Relaxed);
            t.reads += s.reads.load(Ordering::Relaxed);
            t.writes += s.writes.load(Ordering::Relaxed);
            t.commands += s.commands.load(Ordering::Relaxed);
            t.dirty += s.dirty.load(Ordering::Relaxed);
        }
        t
    }

    /// Counters since start or the last `CONFIG RESETSTAT`.
    pub fn totals(&self) -> Totals {
        let mut t = self.raw();
        let b = self.baseline.lock();
        for (e, base) in t.per_cmd.iter_mut().zip(&b.per_cmd) {
            *e = e.since(*base);
        }
        t.net_in -= b.net_in.min(t.net_in);
        t.net_out -= b.net_out.min(t.net_out);
        t.reads -= b.reads.min(t.reads);
        t.writes -= b.writes.min(t.writes);
        t.commands -= b.commands.min(t.commands);
        t
    }

    /// Commands executed and bytes read and written since start, without the per-command
    /// sums [`Stats::totals`] builds: what the background cycle samples for the instantaneous
    /// rates ten times a second, which only need differences.
    pub fn traffic(&self) -> (u64, u64, u64) {
        let (mut commands, mut net_in, mut net_out) = (0, 0, 0);
        for s in self.shards.lock().iter() {
            commands += s.commands.load(Ordering::Relaxed);
            net_in += s.net_in.load(Ordering::Relaxed);
            net_out += s.net_out.load(Ordering::Relaxed);
        }
        (commands, net_in, net_out)
    }

    /// Command names, indexed like `Totals::per_cmd`.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }

    /// Error counts by code.
    pub fn errors(&self) -> Vec<(String, u64)> {
        let mut sum: HashMap<String, u64> = HashMap::new();
        for s in self.shards.lock().iter() {
            for (code, n) in s.errors.lock().iter() {
                *sum.entry(code.clone()).or_insert(0) += n;
            }
        }
        let mut v: Vec<_> = sum.into_iter().collect();
        v.sort();
        v
    }

    fn raw_latency(&self) -> Vec<(usize, Snapshot)> {
        let shards = self.shards.lock();
        let mut out = Vec::new();
        for i in 0..self.names.len() {
            let mut snap: Option<Snapshot> = None;
            for s in shards.iter() {
                if let Some(h) = s.cmds[i].latency.get() {
                    h.add_to(snap.get_or_insert_with(Snapshot::default));
                }
            }
            if let Some(snap) = snap {
                out.push((i, snap));
            }
        }
        out
    }

    /// Latency histograms of every command called since start or the last `CONFIG RESETSTAT`,
    /// as (command name, merged histogram), in name order.
    pub fn latency(&self) -> Vec<(&'static str, Snapshot)> {
        let base = self.latency_baseline.lock();
        self.raw_latency()
            .into_iter()
            .filter_map(|(i, mut snap)| {
                if let Some(b) = base.get(&i) {
                    snap.subtract(b);
                }
                (snap.count() > 0).then(|| (self.names[i], snap))
            })
            .collect()
    }

    /// `CONFIG RESETSTAT`.
    pub fn reset(&self) {
        let now = self.raw();
        let latency = self.raw_latency();
        *self.baseline.lock() = now;
        *self.latency_baseline.lock() = latency.into_iter().collect();
        for s in self.shards.lock().iter() {
            s.errors.lock().clear();
        }
    }
}
