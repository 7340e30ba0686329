//! The keyspace gate: every command passes it in shared mode; a transaction or a script passes it
//! alone, so the commands it runs see no other client's writes in between.
//!
//! A single reader-writer lock would make every command of every thread update one cache line.
//! The gate is a "big reader" lock instead: one reader-writer lock per shard, each on its own
//! cache line, a thread always entering through the same shard. Shared entry touches only that
//! thread's line; exclusive entry takes every shard, in index order.
//!
//! **Lock order:** the gate is taken before any stripe lock and released after them. A thread
//! that holds the gate exclusively never enters it again (the commands of a transaction run
//! under the exclusive entry without re-entering), and a thread that holds it shared never asks
//! for it exclusively.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Shards of the gate: more than the threads that run commands on any machine Shoal targets, so
/// two threads rarely share one.
const SHARDS: usize = 64;

/// One shard, alone on its cache line (128 bytes covers the adjacent-line prefetch of x86).
#[repr(align(128))]
#[derive(Default)]
struct Shard(RwLock<()>);

/// See the module documentation.
pub struct Gate {
    shards: Box<[Shard]>,
    /// Someone is inside exclusively: a connection checks this (one load) to wait for the
    /// gate asynchronously instead of parking its worker thread on it.
    exclusive: AtomicBool,
}

impl Default for Gate {
    fn default() -> Gate {
        Gate {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            exclusive: AtomicBool::new(false),
        }
    }
}

/// Entry in shared mode; dropping it leaves.
pub struct SharedEntry<'a> {
    _guard: RwLockReadGuard<'a, ()>,
}

/// Entry in exclusive mode; dropping it leaves.
pub struct ExclusiveEntry<'a> {
    gate: &'a Gate,
    _guards: Vec<RwLockWriteGuard<'a, ()>>,
}

impl Drop for ExclusiveEntry<'_> {
    fn drop(&mut self) {
        self.gate.exclusive.store(false, Ordering::Release);
    }
}

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's shard, handed out round-robin on first use.
    static MY_SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn my_shard() -> usize {
    MY_SHARD.with(|s| {
        if s.get() == usize::MAX {
            s.set(NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS);
        }
        s.get()
    })
}

impl Gate {
    /// Enters in shared mode, waiting while someone is inside exclusively.
    pub fn shared(&self) -> SharedEntry<'_> {
        SharedEntry {
            _guard: self.shards[my_shard()].0.read(),
        }
    }

    /// Enters in shared mode if nobody is inside exclusively (or waiting to be).
    pub fn try_shared(&self) -> Option<SharedEntry<'_>> {
        self.shards[my_shard()]
            .0
            .try_read()
            .map(|g| SharedEntry { _guard: g })
    }

    /// Enters alone: waits for every shared entry to leave, and keeps new ones out until dropped.
    pub fn exclusive(&self) -> ExclusiveEntry<'_> {
        let guards = self.shards.iter().map(|s| s.0.write()).collect();
        self.exclusive.store(true, Ordering::Release);
        ExclusiveEntry {
            gate: self,
            _guards: guards,
        }
    }

    /// True while someone is inside exclusively (a transaction or a script runs).
    pub fn is_exclusive(&self) -> bool {
        self.exclusive.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    #[test]
    fn shared_entries_coexist_and_exclusive_waits_for_them() {
        let gate = Arc::new(Gate::default());
        let a = gate.shared();
        let b = gate.try_shared();
        assert!(b.is_some(), "two shared entries on one thread coexist");
        let inside = Arc::new(AtomicBool::new(false));
        let (g, flag) = (gate.clone(), inside.clone());
        let writer = std::thread::spawn(move || {
            let _x = g.exclusive();
            flag.store(true, Ordering::SeqCst);
        });
        // The writer cannot get in while the shared entries are held; it gets in once they go.
        assert!(!inside.load(Ordering::SeqCst));
        drop((a, b));
        writer.join().expect("writer thread");
        assert!(inside.load(Ordering::SeqCst));
    }

    #[test]
    fn an_exclusive_entry_keeps_shared_entries_out() {
        let gate = Gate::default();
        let x = gate.exclusive();
        assert!(gate.is_exclusive());
        assert!(gate.try_shared().is_none());
        drop(x);
        assert!(!gate.is_exclusive());
        assert!(gate.try_shared().is_some());
    }
}
