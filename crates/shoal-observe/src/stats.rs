//! Server statistics for `INFO`: per-command calls and latency, error counts, network bytes.
//!
//! The command path must not contend on shared counters, so every worker thread owns a shard of
//! plain atomics that only it writes (relaxed loads and stores, no read-modify-write), registered
//! once with the process-wide [`Stats`]; `INFO` sums the shards.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use shoal_commands::{CommandSpec, CommandTable};

/// Counters of one command in one shard.
#[derive(Default)]
pub struct CmdCounters {
    pub calls: AtomicU64,
    pub usec: AtomicU64,
    pub rejected: AtomicU64,
    pub failed: AtomicU64,
}

/// Per-thread counters.
pub struct Shard {
    cmds: Box<[CmdCounters]>,
    pub net_in: AtomicU64,
    pub net_out: AtomicU64,
    pub commands: AtomicU64,
    pub dirty: AtomicU64,
}

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
    errors: Mutex<HashMap<String, u64>>,
    /// Counters folded in by `CONFIG RESETSTAT` are subtracted from the shards' totals.
    baseline: Mutex<Totals>,
}

/// Summed counters.
#[derive(Default, Clone)]
pub struct Totals {
    pub per_cmd: Vec<(u64, u64, u64, u64)>,
    pub net_in: u64,
    pub net_out: u64,
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
            errors: Mutex::new(HashMap::new()),
            baseline: Mutex::new(Totals::default()),
        }
    }

    fn with_shard<R>(&self, f: impl FnOnce(&Shard) -> R) -> R {
        LOCAL.with(|l| {
            let mut l = l.borrow_mut();
            let shard = l.get_or_insert_with(|| {
                let s = Arc::new(Shard {
                    cmds: (0..self.names.len())
                        .map(|_| CmdCounters::default())
                        .collect(),
                    net_in: AtomicU64::new(0),
                    net_out: AtomicU64::new(0),
                    commands: AtomicU64::new(0),
                    dirty: AtomicU64::new(0),
                });
                self.shards.lock().push(s.clone());
                s
            });
            f(shard)
        })
    }

    /// Records one command.
    pub fn record(
        &self,
        spec: Option<&'static CommandSpec>,
        usec: u64,
        rejected: bool,
        error: Option<&str>,
        dirty: u64,
    ) {
        if let Some(code) = error {
            *self.errors.lock().entry(code.to_string()).or_insert(0) += 1;
        }
        let index = spec.and_then(|spec| self.index.get(&(spec as *const CommandSpec as usize)));
        if index.is_none() && dirty == 0 {
            return;
        }
        // One visit to the thread's shard per command: this runs on every command.
        self.with_shard(|s| {
            if dirty > 0 {
                bump(&s.dirty, dirty);
            }
            let Some(&i) = index else { return };
            let c = &s.cmds[i];
            if rejected {
                bump(&c.rejected, 1);
                return;
            }
            bump(&c.calls, 1);
            bump(&c.usec, usec);
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
            bump(&s.net_in, input);
            bump(&s.net_out, output);
        });
    }

    fn raw(&self) -> Totals {
        let mut t = Totals {
            per_cmd: vec![(0, 0, 0, 0); self.names.len()],
            ..Totals::default()
        };
        for s in self.shards.lock().iter() {
            for (i, c) in s.cmds.iter().enumerate() {
                let e = &mut t.per_cmd[i];
                e.0 += c.calls.load(Ordering::Relaxed);
                e.1 += c.usec.load(Ordering::Relaxed);
                e.2 += c.rejected.load(Ordering::Relaxed);
                e.3 += c.failed.load(Ordering::Relaxed);
            }
            t.net_in += s.net_in.load(Ordering::Relaxed);
            t.net_out += s.net_out.load(Ordering::Relaxed);
            t.commands += s.commands.load(Ordering::Relaxed);
            t.dirty += s.dirty.load(Ordering::Relaxed);
        }
        t
    }

    /// Counters since start or the last `CONFIG RESETSTAT`.
    pub fn totals(&self) -> Totals {
        let mut t = self.raw();
        let b = self.baseline.lock();
        for (i, e) in t.per_cmd.iter_mut().enumerate() {
            if let Some(base) = b.per_cmd.get(i) {
                e.0 -= base.0.min(e.0);
                e.1 -= base.1.min(e.1);
                e.2 -= base.2.min(e.2);
                e.3 -= base.3.min(e.3);
            }
        }
        t.net_in -= b.net_in.min(t.net_in);
        t.net_out -= b.net_out.min(t.net_out);
        t.commands -= b.commands.min(t.commands);
        t
    }

    /// Command names, indexed like `Totals::per_cmd`.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }

    /// Error counts by code.
    pub fn errors(&self) -> Vec<(String, u64)> {
        let mut v: Vec<_> = self
            .errors
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        v.sort();
        v
    }

    /// `CONFIG RESETSTAT`.
    pub fn reset(&self) {
        let now = self.raw();
        *self.baseline.lock() = now;
        self.errors.lock().clear();
    }
}
