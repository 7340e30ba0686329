//! Clients blocked on keys (`BLPOP`, `BZPOPMIN`, `XREAD BLOCK`, ...): who waits for which key, in
//! what order, and waking them when a key is written.
//!
//! A blocked client holds no lock. It sits in a FIFO queue per key it waits for; a command that
//! writes a key with waiters wakes only the queue's head, which re-runs its command. If that
//! serves it, it leaves every queue and wakes the next head of each of its keys (the key may
//! still hold data); if not (another client got there first), it keeps its place. A client that
//! leaves for any other reason (timeout, `CLIENT UNBLOCK`, disconnect, kill) also wakes the next
//! heads, so a wake-up meant for it is never lost. Re-running the command instead of handing
//! data over means a client that disconnects can never take an element with it.
//!
//! Wake-ups come from the keys each command's journal records, which the keyspace collects only
//! while someone is blocked ([`Keyspace::listen_key_events`]), so writes cost nothing extra the
//! rest of the time.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use shoal_storage::{Journal, Keyspace};
use tokio::sync::Notify;

/// How a blocked client was released by `CLIENT UNBLOCK`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unblock {
    /// Not released: keep waiting.
    No,
    /// Answer as if the timeout had passed.
    Timeout,
    /// Answer `-UNBLOCKED client unblocked via CLIENT UNBLOCK`.
    Error,
}

/// One blocked client.
pub struct Waiter {
    pub client: u64,
    keys: Vec<(usize, Bytes)>,
    /// Signalled when one of the keys was written, or on `CLIENT UNBLOCK`.
    pub wake: Notify,
    unblock: AtomicU8,
}

impl Waiter {
    /// Whether `CLIENT UNBLOCK` released this client, and how.
    pub fn unblocked(&self) -> Unblock {
        match self.unblock.load(Ordering::Acquire) {
            1 => Unblock::Timeout,
            2 => Unblock::Error,
            _ => Unblock::No,
        }
    }
}

#[derive(Default)]
struct Queues {
    by_key: HashMap<(usize, Bytes), VecDeque<Arc<Waiter>>>,
    by_client: HashMap<u64, Arc<Waiter>>,
}

/// The registry of blocked clients.
#[derive(Default)]
pub struct Blocking {
    queues: Mutex<Queues>,
    /// Number of blocked clients, read without the lock after every command.
    waiting: AtomicUsize,
}

/// A client's place in the queues; leaving them (on drop) wakes the next waiters.
pub struct Registration<'a> {
    blocking: &'a Blocking,
    ks: &'a Keyspace,
    pub waiter: Arc<Waiter>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.blocking.leave(&self.waiter);
        self.ks.listen_key_events(false);
    }
}

impl Blocking {
    /// Queues `client` on `keys`. Key events are collected from the moment this returns, so a
    /// command run after it (the re-check the caller must do before sleeping) cannot miss a write.
    pub fn join<'a>(
        &'a self,
        ks: &'a Keyspace,
        client: u64,
        keys: Vec<(usize, Bytes)>,
    ) -> Registration<'a> {
        ks.listen_key_events(true);
        let waiter = Arc::new(Waiter {
            client,
            keys,
            wake: Notify::new(),
            unblock: AtomicU8::new(0),
        });
        let mut q = self.queues.lock();
        for key in &waiter.keys {
            let queue = q.by_key.entry(key.clone()).or_default();
            // A client listing a key twice waits in its queue once.
            if !queue.iter().any(|w| Arc::ptr_eq(w, &waiter)) {
                queue.push_back(waiter.clone());
            }
        }
        q.by_client.insert(client, waiter.clone());
        self.waiting.fetch_add(1, Ordering::SeqCst);
        Registration {
            blocking: self,
            ks,
            waiter,
        }
    }

    fn leave(&self, waiter: &Arc<Waiter>) {
        let mut q = self.queues.lock();
        for key in &waiter.keys {
            if let Some(queue) = q.by_key.get_mut(key) {
                queue.retain(|w| !Arc::ptr_eq(w, waiter));
                match queue.front() {
                    // Pass the turn on: the key may hold data this client did not take.
                    Some(next) => next.wake.notify_one(),
                    None => {
                        q.by_key.remove(key);
                    }
                }
            }
        }
        if q.by_client
            .get(&waiter.client)
            .is_some_and(|w| Arc::ptr_eq(w, waiter))
        {
            q.by_client.remove(&waiter.client);
        }
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }

    /// Wakes the first waiter of every key a command changed (every key of two databases
    /// `SWAPDB` exchanged).
    pub fn signal(&self, journal: &Journal) {
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        let events = journal.events.as_deref().unwrap_or_default();
        if events.is_empty() && journal.swapped_dbs.is_none() {
            return;
        }
        let q = self.queues.lock();
        if let Some((a, b)) = journal.swapped_dbs {
            for ((db, _), queue) in q.by_key.iter() {
                if *db == a || *db == b {
                    if let Some(head) = queue.front() {
                        head.wake.notify_one();
                    }
                }
            }
        }
        for e in events {
            // Building the lookup key copies the key once per event; this runs only while
            // clients are blocked.
            let key = (e.db, Bytes::copy_from_slice(&e.key));
            if let Some(head) = q.by_key.get(&key).and_then(|queue| queue.front()) {
                head.wake.notify_one();
            }
        }
    }

    /// A woken client that could not be served keeps its place but passes the wake-up on to the
    /// client right behind it in each of its queues: that one may be served where it was not
    /// (it waits for another type on the same key, or for stream entries after an earlier ID).
    /// Each pass moves strictly down a queue, so a chain of them ends.
    pub fn pass_on(&self, waiter: &Arc<Waiter>) {
        let q = self.queues.lock();
        for key in &waiter.keys {
            let Some(queue) = q.by_key.get(key) else {
                continue;
            };
            let behind = queue
                .iter()
                .position(|w| Arc::ptr_eq(w, waiter))
                .and_then(|i| queue.get(i + 1));
            if let Some(next) = behind {
                next.wake.notify_one();
            }
        }
    }

    /// `CLIENT UNBLOCK id [TIMEOUT|ERROR]`: true when the client was blocked on keys.
    pub fn unblock(&self, client: u64, how: Unblock) -> bool {
        let q = self.queues.lock();
        let Some(w) = q.by_client.get(&client) else {
            return false;
        };
        let code = match how {
            Unblock::Error => 2,
            _ => 1,
        };
        w.unblock.store(code, Ordering::Release);
        w.wake.notify_one();
        true
    }
}
