//! The keyspace: databases split into hash-slot tables, grouped into lock stripes, and the single
//! write path every mutation goes through.
//!
//! Concurrency model. Slot `s` lives in stripe `s & (stripes - 1)`. A stripe is one mutex that
//! guards the slot tables of its slots in *every* database, so commands that touch one key in two
//! databases (`MOVE`, `COPY ... DB`) need one lock, and `SWAPDB`/`FLUSHALL` lock all stripes.
//! A command locks the stripes of its keys in ascending order through [`Keyspace::lock`], which
//! rules out deadlock between multi-key commands. Locks are `parking_lot` mutexes, not async
//! ones: nothing awaits while holding them, and critical sections are a few hundred nanoseconds.
//!
//! The single write path. Handlers never touch a table directly: they call [`Locked::insert`],
//! [`Locked::remove`] or mutate through an [`EntryMut`]. Those are the only places that change a
//! table, and each one updates memory accounting, the per-database counters and the command's
//! [`Journal`] (dirty count and, when enabled, key events for propagation and notifications).
//! Expiry and eviction call the same functions.

use std::cell::Cell;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use foldhash::fast::FixedState;
use parking_lot::{Mutex, MutexGuard};
use smallvec::SmallVec;

use crate::entry::{Entry, CLOCK_MAX};
use crate::evict::{self, EvictionConfig};
use crate::gate::Gate;
use crate::slot::{key_slot, SLOTS};
use crate::table::SlotTable;
use crate::watch::{WatchTable, WatchToken};

/// A handler asked for a key whose stripe it did not lock: a bug in a command's key spec, reported
/// as an error instead of a panic so a client can never crash the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotLocked;

impl std::fmt::Display for NotLocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("key accessed without holding its stripe lock")
    }
}

impl std::error::Error for NotLocked {}

/// Why a key left the keyspace or changed, for propagation and notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Created or modified by a command.
    Write,
    /// Deleted by a command.
    Delete,
    /// Removed because its expiry passed.
    Expired,
    /// Removed by the eviction policy.
    Evicted,
}

/// One change to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEvent {
    pub db: usize,
    pub key: Vec<u8>,
    pub kind: EventKind,
}

/// What a command (or expiry or eviction) changed. The server reads it after the command to bump
/// the dirty counter and, later, to feed replication, the AOF and keyspace notifications.
#[derive(Debug, Default)]
pub struct Journal {
    /// Number of key modifications, as Redis counts `server.dirty`.
    pub dirty: u64,
    /// Key events, recorded only when someone needs them (collecting costs an allocation each).
    pub events: Option<Vec<KeyEvent>>,
    /// Two databases exchanged by `SWAPDB`: every key of both may have changed.
    pub swapped_dbs: Option<(usize, usize)>,
    /// Keyspace notifications to publish, recorded only for the classes that are on.
    pub notes: Vec<crate::notify::Notification>,
}

impl Journal {
    /// Records a keyspace notification if `flags` ask for its class.
    pub fn notify(
        &mut self,
        flags: crate::notify::Class,
        class: crate::notify::Class,
        event: &'static str,
        db: usize,
        key: &[u8],
    ) {
        if crate::notify::wanted(flags, class) {
            self.notes.push(crate::notify::Notification {
                class,
                event,
                db,
                key: key.to_vec(),
            });
        }
    }

    /// A journal that also collects key events.
    pub fn with_events() -> Journal {
        Journal {
            events: Some(Vec::new()),
            ..Journal::default()
        }
    }

    /// Adds another journal's changes to this one.
    pub fn absorb(&mut self, other: Journal) {
        self.dirty += other.dirty;
        if other.swapped_dbs.is_some() {
            self.swapped_dbs = other.swapped_dbs;
        }
        if !other.notes.is_empty() {
            self.notes.extend(other.notes);
        }
        match (self.events.as_mut(), other.events) {
            (Some(mine), Some(theirs)) => mine.extend(theirs),
            (None, Some(theirs)) => self.events = Some(theirs),
            _ => {}
        }
    }

    pub(crate) fn record(&mut self, db: usize, key: &[u8], kind: EventKind) {
        self.dirty += 1;
        if let Some(events) = self.events.as_mut() {
            events.push(KeyEvent {
                db,
                key: key.to_vec(),
                kind,
            });
        }
    }
}

/// Per-stripe counters, summed for `INFO`. Kept inside the stripe so updating them costs nothing
/// beyond the lock the command already holds.
#[derive(Debug, Default, Clone, Copy)]
pub struct StripeStats {
    pub hits: u64,
    pub misses: u64,
    pub expired: u64,
    pub evicted: u64,
}

/// The part of one database that lives in one stripe.
#[derive(Debug, Default)]
pub struct StripeDb {
    /// Slot tables of this stripe's slots, indexed by `slot >> shift`. Empty until first written
    /// so unused databases cost nothing.
    pub(crate) tables: Vec<SlotTable>,
    pub(crate) keys: usize,
    pub(crate) volatile: usize,
    /// Estimated bytes held by this database's entries in this stripe.
    pub(crate) mem: usize,
    /// Keys of hashes with per-field expiry times, kept by the write path, so the active expiry
    /// cycle can remove due fields from hashes no client touches.
    pub(crate) field_ttls: std::collections::BTreeSet<Box<[u8]>>,
    /// Where the cycle stopped walking `field_ttls`.
    pub(crate) field_cursor: Option<Box<[u8]>>,
    /// Clients watching keys of this database in this stripe (`WATCH`). It belongs to the
    /// database index, not to the data: a flush or a swap leaves it in place.
    pub(crate) watches: WatchTable,
}

impl StripeDb {
    /// The entry stored under `key`, expired or not.
    fn stored(&self, ks: &Keyspace, key: &[u8]) -> Option<&Entry> {
        let (_, index) = ks.locate(key_slot(key) as usize);
        self.tables
            .get(index)?
            .map
            .find(ks.hash(key), |e| e.key() == key)
    }

    /// Takes the data out, leaving an empty database with the same watchers.
    fn take_data(&mut self) -> StripeDb {
        let watches = std::mem::take(&mut self.watches);
        let old = std::mem::take(self);
        self.watches = watches;
        old
    }
}

/// One lock stripe: the slot tables of its slots in every database.
#[derive(Debug)]
pub struct Stripe {
    pub(crate) dbs: Vec<StripeDb>,
    pub(crate) stats: StripeStats,
}

/// Tables taken out of the keyspace by a flush; dropping this frees them. `FLUSHALL ASYNC` drops
/// it on a background thread so the client is answered at once.
pub struct Garbage(Vec<StripeDb>);

impl Garbage {
    /// The number of keys these tables hold (what `lazyfree_pending_objects` counts).
    pub fn keys(&self) -> usize {
        self.0.iter().map(|d| d.keys).sum()
    }
}

/// Counters of one database, for `INFO keyspace` and `DBSIZE`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DbInfo {
    pub keys: usize,
    pub volatile: usize,
}

/// The whole dataset of one node.
pub struct Keyspace {
    stripes: Box<[Mutex<Stripe>]>,
    mask: usize,
    shift: u32,
    slots_per_stripe: usize,
    databases: usize,
    hasher: FixedState,
    /// Sum of [`Entry::mem_usage`] over all keys, updated by the write path.
    estimate: AtomicI64,
    /// Allocator bytes not explained by `estimate` (tables' spare buckets, connections, ...),
    /// refreshed by the server from jemalloc's statistics.
    overhead: AtomicI64,
    pub(crate) expire_cursor: AtomicUsize,
    pub(crate) rng: AtomicU64,
    /// Eviction policy and limits, settable at run time by `CONFIG SET`.
    pub eviction: EvictionConfig,
    pub(crate) pool: Mutex<evict::Pool>,
    /// How many parties want every command's key events (clients blocked on keys): while
    /// non-zero, each locked view collects them; while zero, writes pay nothing for it.
    key_event_listeners: AtomicUsize,
    /// Every command passes it shared; transactions and scripts pass it alone.
    pub gate: Gate,
    /// `notify-keyspace-events`, as class bits (see `notify.rs`).
    pub notify_flags: std::sync::atomic::AtomicU32,
}

impl Keyspace {
    /// Creates an empty keyspace with `databases` databases and `stripes` lock stripes (rounded
    /// up to a power of two between 1 and 16384).
    pub fn new(databases: usize, stripes: usize, seed: u64) -> Keyspace {
        let stripes = stripes.clamp(1, SLOTS).next_power_of_two();
        let shift = stripes.trailing_zeros();
        let databases = databases.max(1);
        let stripe_vec = (0..stripes)
            .map(|_| {
                Mutex::new(Stripe {
                    dbs: (0..databases).map(|_| StripeDb::default()).collect(),
                    stats: StripeStats::default(),
                })
            })
            .collect::<Vec<_>>();
        Keyspace {
            stripes: stripe_vec.into_boxed_slice(),
            mask: stripes - 1,
            shift,
            slots_per_stripe: SLOTS / stripes,
            databases,
            hasher: FixedState::with_seed(seed),
            estimate: AtomicI64::new(0),
            overhead: AtomicI64::new(0),
            expire_cursor: AtomicUsize::new(0),
            rng: AtomicU64::new(seed | 1),
            eviction: EvictionConfig::default(),
            pool: Mutex::new(evict::Pool::default()),
            key_event_listeners: AtomicUsize::new(0),
            gate: Gate::default(),
            notify_flags: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// Starts (`true`) or stops (`false`) one party's interest in key events: every locked view
    /// made while at least one party is interested records the keys it changes in its journal.
    /// A view made after `listen_key_events(true)` returns is guaranteed to record them.
    pub fn listen_key_events(&self, on: bool) {
        if on {
            self.key_event_listeners.fetch_add(1, Ordering::SeqCst);
        } else {
            self.key_event_listeners.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Number of databases.
    pub fn databases(&self) -> usize {
        self.databases
    }

    /// Number of lock stripes.
    pub fn stripe_count(&self) -> usize {
        self.stripes.len()
    }

    /// The stripe that holds `key`.
    pub fn stripe_of(&self, key: &[u8]) -> usize {
        key_slot(key) as usize & self.mask
    }

    pub(crate) fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    pub(crate) fn locate(&self, slot: usize) -> (usize, usize) {
        (slot & self.mask, slot >> self.shift)
    }

    pub(crate) fn stripe(&self, idx: usize) -> MutexGuard<'_, Stripe> {
        self.stripes[idx].lock()
    }

    /// Locks the given stripes (in ascending order, duplicates removed) for one command.
    pub fn lock(&self, stripes: impl IntoIterator<Item = usize>, now: u64) -> Locked<'_> {
        let mut stripes: SmallVec<[usize; 4]> = stripes.into_iter().collect();
        stripes.sort_unstable();
        stripes.dedup();
        let guards = stripes
            .into_iter()
            .filter(|&s| s < self.stripes.len())
            .map(|s| (s, self.stripes[s].lock()))
            .collect();
        self.locked(guards, now)
    }

    /// Locks the stripe of one key. The key is borrowed as long as the view, which lets the view
    /// recognise it by address and skip hashing it again.
    pub fn lock_key<'a>(&'a self, key: &'a [u8], now: u64) -> Locked<'a> {
        let slot = key_slot(key);
        let s = slot as usize & self.mask;
        let mut guards = Guards::new();
        guards.push((s, self.stripes[s].lock()));
        let locked = self.locked(guards, now);
        locked.known_slot.set(SlotOf::new(key, slot));
        locked
    }

    /// Locks every stripe, for commands that see the whole keyspace at one instant.
    pub fn lock_all(&self, now: u64) -> Locked<'_> {
        let guards = self
            .stripes
            .iter()
            .enumerate()
            .map(|(i, m)| (i, m.lock()))
            .collect();
        self.locked(guards, now)
    }

    fn locked<'a>(&'a self, guards: Guards<'a>, now: u64) -> Locked<'a> {
        Locked {
            ks: self,
            all: guards.len() == self.stripes.len(),
            guards,
            now,
            clock: self.eviction.access_clock(now),
            journal: if self.key_event_listeners.load(Ordering::SeqCst) > 0 {
                Journal::with_events()
            } else {
                Journal::default()
            },
            known_slot: Cell::new(SlotOf::NONE),
        }
    }

    /// Bytes the dataset uses, as the eviction policy sees it: the write path's running estimate
    /// corrected by the last allocator reading.
    pub fn used_memory(&self) -> usize {
        let v = self.estimate.load(Ordering::Relaxed) + self.overhead.load(Ordering::Relaxed);
        v.max(0) as usize
    }

    /// The write path's running estimate of the bytes held by keys and values.
    pub fn dataset_estimate(&self) -> usize {
        self.estimate.load(Ordering::Relaxed).max(0) as usize
    }

    /// Records the allocator's real figure so `used_memory` tracks it between readings.
    pub fn calibrate_memory(&self, allocated: usize) {
        let est = self.estimate.load(Ordering::Relaxed);
        self.overhead
            .store(allocated as i64 - est, Ordering::Relaxed);
    }

    pub(crate) fn add_mem(&self, delta: i64) {
        if delta != 0 {
            self.estimate.fetch_add(delta, Ordering::Relaxed);
        }
    }

    /// Key counts of one database, summed over stripes.
    pub fn db_info(&self, db: usize) -> DbInfo {
        let mut info = DbInfo::default();
        for m in self.stripes.iter() {
            if let Some(d) = m.lock().dbs.get(db) {
                info.keys += d.keys;
                info.volatile += d.volatile;
            }
        }
        info
    }

    /// Key and volatile-key counts of every database, in one pass over the stripes (one lock
    /// each), for readers that want them all, such as a metrics scrape.
    pub fn db_infos(&self) -> Vec<DbInfo> {
        let mut out = vec![DbInfo::default(); self.databases()];
        for m in self.stripes.iter() {
            let stripe = m.lock();
            for (info, d) in out.iter_mut().zip(stripe.dbs.iter()) {
                info.keys += d.keys;
                info.volatile += d.volatile;
            }
        }
        out
    }

    /// Counters summed over stripes.
    pub fn stats(&self) -> StripeStats {
        let mut total = StripeStats::default();
        for m in self.stripes.iter() {
            let s = m.lock().stats;
            total.hits += s.hits;
            total.misses += s.misses;
            total.expired += s.expired;
            total.evicted += s.evicted;
        }
        total
    }

    /// Resets the hit, miss, expired and evicted counters (`CONFIG RESETSTAT`).
    pub fn reset_stats(&self) {
        for m in self.stripes.iter() {
            m.lock().stats = StripeStats::default();
        }
    }

    /// Empties database `db` (or all databases) and returns the old tables for the caller to drop
    /// where it likes. Locks every stripe, so the flush is atomic.
    pub fn flush(&self, db: Option<usize>, journal: &mut Journal) -> Garbage {
        let mut taken = Vec::new();
        let mut removed = 0u64;
        for m in self.stripes.iter() {
            let mut stripe = m.lock();
            for (i, d) in stripe.dbs.iter_mut().enumerate() {
                if db.is_some_and(|want| want != i) {
                    continue;
                }
                if !d.watches.is_empty() {
                    let mut watches = std::mem::take(&mut d.watches);
                    watches.touch_all(|k| d.stored(self, k).is_some(), None);
                    d.watches = watches;
                }
                let old = d.take_data();
                removed += old.keys as u64;
                self.add_mem(-(old.mem as i64));
                taken.push(old);
            }
        }
        journal.dirty += removed;
        Garbage(taken)
    }

    /// Swaps two databases atomically (`SWAPDB`), recording the change in `journal`.
    /// Watchers stay with their database index, so a client watching a key of database `a`
    /// is dirtied when the key's visible state differs between the two databases.
    pub fn swap_dbs(&self, a: usize, b: usize, now: u64, journal: &mut Journal) {
        journal.dirty += 1;
        journal.swapped_dbs = Some((a, b));
        let mut guards: Vec<_> = self.stripes.iter().map(|m| m.lock()).collect();
        if a == b || a >= self.databases || b >= self.databases {
            return;
        }
        for g in guards.iter_mut() {
            for (emptied, replaced) in [(a, b), (b, a)] {
                if g.dbs[emptied].watches.is_empty() {
                    continue;
                }
                let mut watches = std::mem::take(&mut g.dbs[emptied].watches);
                let (here, there) = (&g.dbs[emptied], &g.dbs[replaced]);
                let incoming = |k: &[u8]| there.stored(self, k).map(|e| e.is_expired(now));
                watches.touch_all(|k| here.stored(self, k).is_some(), Some(&incoming));
                g.dbs[emptied].watches = watches;
            }
            g.dbs.swap(a, b);
            let (lo, hi) = g.dbs.split_at_mut(a.max(b));
            std::mem::swap(&mut lo[a.min(b)].watches, &mut hi[0].watches);
        }
    }

    /// Stops watching `keys` (database, key) for `token`.
    pub fn unwatch<K: AsRef<[u8]>>(&self, keys: &[(usize, K)], token: &Arc<WatchToken>) {
        for (db, key) in keys {
            let key = key.as_ref();
            let mut stripe = self.stripe(self.stripe_of(key));
            if let Some(d) = stripe.dbs.get_mut(*db) {
                d.watches.remove(key, token);
            }
        }
    }

    /// True when a key `token` watches has expired since it was watched (Redis fails `EXEC`
    /// then, even though nothing deleted the key yet).
    pub fn watched_key_expired<K: AsRef<[u8]>>(
        &self,
        keys: &[(usize, K)],
        token: &Arc<WatchToken>,
        now: u64,
    ) -> bool {
        keys.iter().any(|(db, key)| {
            let key = key.as_ref();
            let stripe = self.stripe(self.stripe_of(key));
            stripe.dbs.get(*db).is_some_and(|d| {
                d.watches.watched_live(key, token)
                    && d.stored(self, key).is_some_and(|e| e.is_expired(now))
            })
        })
    }

    /// A pseudo-random number, for sampling. Quality is unimportant; speed and no shared lock are.
    pub(crate) fn random(&self) -> u64 {
        // xorshift64*, advanced with a relaxed update: a lost race only repeats a number.
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.store(x, Ordering::Relaxed);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(crate) fn slots_per_stripe(&self) -> usize {
        self.slots_per_stripe
    }
}

/// The stripe locks one command holds, in ascending stripe order. Inline for the common case of
/// one or two stripes, so a command takes no allocation to lock.
pub(crate) type Guards<'a> = SmallVec<[(usize, MutexGuard<'a, Stripe>); 2]>;

/// A command's view of the keyspace: the stripes it locked, the time it runs at, and the journal
/// of what it changed. Dropping it releases the locks.
pub struct Locked<'a> {
    pub(crate) ks: &'a Keyspace,
    pub(crate) guards: Guards<'a>,
    pub(crate) all: bool,
    now: u64,
    clock: u32,
    /// What this command changed.
    pub journal: Journal,
    /// The slot of the key a single-key command locked, so the command's own lookups and
    /// writes do not hash the key's CRC16 a second time.
    known_slot: Cell<SlotOf>,
}

/// A key's slot, remembered by the address and length of the key's bytes. [`Keyspace::lock_key`]
/// borrows the key for as long as the view lives, so no other key can have that address meanwhile.
#[derive(Clone, Copy)]
struct SlotOf {
    addr: usize,
    len: usize,
    slot: u16,
}

impl SlotOf {
    const NONE: SlotOf = SlotOf {
        addr: 0,
        len: usize::MAX,
        slot: 0,
    };

    fn new(key: &[u8], slot: u16) -> SlotOf {
        SlotOf {
            addr: key.as_ptr() as usize,
            len: key.len(),
            slot,
        }
    }

    fn of(&self, key: &[u8]) -> Option<u16> {
        (self.addr == key.as_ptr() as usize && self.len == key.len()).then_some(self.slot)
    }
}

/// Where a key lives: its stripe, its table index in the stripe, and its hash.
#[derive(Clone, Copy)]
pub(crate) struct Place {
    stripe: usize,
    index: usize,
    hash: u64,
}

impl<'a> Locked<'a> {
    /// The time this command runs at, in Unix milliseconds. Every expiry check in one command uses
    /// this one instant, as Redis does, so a key cannot expire half-way through a command.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The keyspace this view belongs to.
    pub fn keyspace(&self) -> &'a Keyspace {
        self.ks
    }

    pub(crate) fn place(&self, key: &[u8]) -> Place {
        let slot = match self.known_slot.get().of(key) {
            Some(slot) => slot,
            None => key_slot(key),
        };
        let (stripe, index) = self.ks.locate(slot as usize);
        Place {
            stripe,
            index,
            hash: self.ks.hash(key),
        }
    }

    fn stripe_mut(&mut self, stripe: usize) -> Result<&mut Stripe, NotLocked> {
        stripe_in(&mut self.guards, self.all, stripe)
    }

    pub(crate) fn db_mut(&mut self, db: usize, stripe: usize) -> Result<&mut StripeDb, NotLocked> {
        db_in(&mut self.guards, self.all, stripe, db)
    }

    /// Finds a live key with one probe of its table, returning its bucket index; a key whose
    /// expiry has passed is removed on the way (through the write path) and reported absent.
    fn find_live(&mut self, db: usize, key: &[u8], p: Place) -> Result<Option<usize>, NotLocked> {
        let now = self.now;
        let d = self.db_mut(db, p.stripe)?;
        let Some(table) = d.tables.get(p.index) else {
            return Ok(None);
        };
        let Some(idx) = table.map.find_bucket_index(p.hash, |e| e.key() == key) else {
            return Ok(None);
        };
        if table.map.get_bucket(idx).is_some_and(|e| e.is_expired(now)) {
            self.remove_at(db, key, p, EventKind::Expired)?;
            return Ok(None);
        }
        Ok(Some(idx))
    }

    /// Looks a key up for reading, expiring it first if due, counting a hit or a miss and
    /// updating its access clock, as Redis's `lookupKeyRead` does.
    pub fn read(&mut self, db: usize, key: &[u8]) -> Result<Option<&Entry>, NotLocked> {
        self.lookup(db, key, true, true)
    }

    /// Looks a key up, expiring it first if due. `touch` updates the access clock (off for
    /// `CLIENT NO-TOUCH` and for commands that only inspect a key); `stats` counts a keyspace
    /// hit or miss.
    pub fn lookup(
        &mut self,
        db: usize,
        key: &[u8],
        touch: bool,
        stats: bool,
    ) -> Result<Option<&Entry>, NotLocked> {
        let p = self.place(key);
        let found = self.find_live(db, key, p)?;
        if found.is_none() {
            if stats {
                self.stripe_mut(p.stripe)?.stats.misses += 1;
                // A read that misses is a `keymiss` event, as Redis's read lookups report.
                self.notify(crate::notify::KEY_MISS, "keymiss", db, key);
            }
            return Ok(None);
        }
        let now = self.now;
        let ks = self.ks;
        let stripe = self.stripe_mut(p.stripe)?;
        let entry = found.and_then(|idx| {
            stripe
                .dbs
                .get_mut(db)
                .and_then(|d| d.tables.get_mut(p.index))
                .and_then(|t| t.map.get_bucket_mut(idx))
        });
        match entry {
            Some(e) => {
                if touch {
                    evict::touch(e, now, &ks.eviction.snapshot());
                }
                if stats {
                    stripe.stats.hits += 1;
                }
                Ok(Some(&*e))
            }
            None => {
                if stats {
                    stripe.stats.misses += 1;
                }
                Ok(None)
            }
        }
    }

    /// Looks a key up without counting a hit or touching its access clock (`TTL`, `TYPE`,
    /// `EXISTS`, `OBJECT`), expiring it first if due.
    pub fn peek(&mut self, db: usize, key: &[u8]) -> Result<Option<&Entry>, NotLocked> {
        let p = self.place(key);
        let Some(idx) = self.find_live(db, key, p)? else {
            return Ok(None);
        };
        let d = self.db_mut(db, p.stripe)?;
        Ok(d.tables.get(p.index).and_then(|t| t.map.get_bucket(idx)))
    }

    /// Looks a key up through a shared borrow, so a command can hold several keys' values at
    /// once (`SINTER`, `SUNIONSTORE`): no expiry, no statistics, no access clock. An expired key
    /// reads as absent; commands look their keys up with [`Locked::lookup`] first, which
    /// deletes expired keys and counts hits.
    pub fn get_live(&self, db: usize, key: &[u8]) -> Result<Option<&Entry>, NotLocked> {
        let p = self.place(key);
        let found = if self.all {
            self.guards.get(p.stripe)
        } else {
            self.guards.iter().find(|(s, _)| *s == p.stripe)
        };
        let (_, stripe) = found.ok_or(NotLocked)?;
        let d = stripe.dbs.get(db).ok_or(NotLocked)?;
        Ok(d.tables
            .get(p.index)
            .and_then(|t| t.map.find(p.hash, |e| e.key() == key))
            .filter(|e| !e.is_expired(self.now)))
    }

    /// Looks a key up for modification. Changes made through the returned [`EntryMut`] go through
    /// the write path when it is dropped.
    pub fn write(&mut self, db: usize, key: &[u8]) -> Result<Option<EntryMut<'_>>, NotLocked> {
        let p = self.place(key);
        let Some(idx) = self.find_live(db, key, p)? else {
            return Ok(None);
        };
        let ev = self.ks.eviction.snapshot();
        // Split the borrow of `self` so the entry (inside a stripe guard) and the journal can be
        // held mutably at the same time by the `EntryMut`.
        let Locked {
            ks,
            guards,
            all,
            now,
            journal,
            ..
        } = self;
        let StripeDb {
            tables,
            volatile,
            mem,
            field_ttls,
            watches,
            ..
        } = db_in(guards, *all, p.stripe, db)?;
        let Some(table) = tables.get_mut(p.index) else {
            return Ok(None);
        };
        let Some(entry) = table.map.get_bucket_mut(idx) else {
            return Ok(None);
        };
        evict::touch(entry, *now, &ev);
        let before_mem = entry.mem_usage();
        let before_volatile = entry.is_volatile();
        let before_field_ttls = entry.has_field_ttls();
        Ok(Some(EntryMut {
            entry,
            table_volatile: &mut table.volatile,
            db_volatile: volatile,
            db_mem: mem,
            field_ttls,
            before_field_ttls,
            watches,
            ks,
            journal,
            db,
            before_mem,
            before_volatile,
            touched: false,
        }))
    }

    /// Inserts or replaces a key. Returns the entry it replaced, if any. One probe of the table
    /// finds the old entry or the free slot.
    pub fn insert(&mut self, db: usize, entry: Entry) -> Result<Option<Entry>, NotLocked> {
        let p = self.place(entry.key());
        let size = entry.mem_usage();
        let volatile = entry.is_volatile();
        let field_key: Option<Box<[u8]>> = entry.has_field_ttls().then(|| entry.key().into());
        let Locked {
            ks,
            guards,
            all,
            journal,
            ..
        } = self;
        let ks: &Keyspace = ks;
        let d = db_in(guards, *all, p.stripe, db)?;
        if d.tables.is_empty() {
            // Tables are created on the first write to a database in this stripe, so unused
            // databases and idle scans cost no memory.
            d.tables
                .resize_with(ks.slots_per_stripe(), SlotTable::default);
        }
        let Some(table) = d.tables.get_mut(p.index) else {
            return Err(NotLocked);
        };
        journal.record(db, entry.key(), EventKind::Write);
        d.watches.touch(entry.key(), true);
        let flags = ks.notify_flags.load(Ordering::Relaxed);
        let new_key =
            crate::notify::wanted(flags, crate::notify::NEW).then(|| entry.key().to_vec());
        let slot = table
            .map
            .entry(p.hash, |e| e.key() == entry.key(), |e| ks.hash(e.key()));
        let old = match slot {
            hashbrown::hash_table::Entry::Occupied(mut o) => {
                Some(std::mem::replace(o.get_mut(), entry))
            }
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(entry);
                None
            }
        };
        let (old_size, old_volatile) = old
            .as_ref()
            .map_or((0, false), |o| (o.mem_usage(), o.is_volatile()));
        match (old.as_ref().is_some_and(Entry::has_field_ttls), field_key) {
            (_, Some(key)) => {
                d.field_ttls.insert(key);
            }
            (true, None) => {
                if let Some(o) = &old {
                    d.field_ttls.remove(o.key());
                }
            }
            (false, None) => {}
        }
        if old.is_none() {
            d.keys += 1;
            if let Some(key) = new_key {
                journal.notify(flags, crate::notify::NEW, "new", db, &key);
            }
        }
        d.mem = d.mem + size - old_size;
        match (old_volatile, volatile) {
            (false, true) => {
                table.volatile += 1;
                d.volatile += 1;
            }
            (true, false) => {
                table.volatile -= 1;
                d.volatile -= 1;
            }
            _ => {}
        }
        ks.add_mem(size as i64 - old_size as i64);
        Ok(old)
    }

    /// Modifies a live key through the write path: `f` gets the key's [`EntryMut`] (reading
    /// through `get` does not count as a change, so a type check that fails leaves no trace),
    /// and when it leaves a collection empty the key is deleted, as Redis never keeps an empty
    /// hash, list, set or sorted set. Returns `None` when the key does not exist.
    pub fn update<R>(
        &mut self,
        db: usize,
        key: &[u8],
        f: impl FnOnce(&mut EntryMut<'_>) -> R,
    ) -> Result<Option<R>, NotLocked> {
        let (out, empty) = {
            let Some(mut e) = self.write(db, key)? else {
                return Ok(None);
            };
            let out = f(&mut e);
            (out, e.get().is_empty_collection())
        };
        if empty {
            let p = self.place(key);
            self.remove_at(db, key, p, EventKind::Delete)?;
        }
        Ok(Some(out))
    }

    /// Deletes a key. Returns the removed entry (`None` when absent or already expired).
    pub fn remove(&mut self, db: usize, key: &[u8]) -> Result<Option<Entry>, NotLocked> {
        let p = self.place(key);
        if self.find_live(db, key, p)?.is_none() {
            return Ok(None);
        }
        self.remove_at(db, key, p, EventKind::Delete)
    }

    fn remove_quiet(
        &mut self,
        db: usize,
        key: &[u8],
        p: Place,
    ) -> Result<Option<Entry>, NotLocked> {
        let ks = self.ks;
        let d = self.db_mut(db, p.stripe)?;
        let Some(old) = d
            .tables
            .get_mut(p.index)
            .and_then(|t| t.remove(p.hash, key))
        else {
            return Ok(None);
        };
        let size = old.mem_usage();
        d.keys -= 1;
        d.mem -= size;
        if old.is_volatile() {
            d.volatile -= 1;
        }
        if old.has_field_ttls() {
            d.field_ttls.remove(old.key());
        }
        ks.add_mem(-(size as i64));
        Ok(Some(old))
    }

    pub(crate) fn remove_at(
        &mut self,
        db: usize,
        key: &[u8],
        p: Place,
        kind: EventKind,
    ) -> Result<Option<Entry>, NotLocked> {
        let old = self.remove_quiet(db, key, p)?;
        if old.is_some() {
            match kind {
                EventKind::Expired => self.stripe_mut(p.stripe)?.stats.expired += 1,
                EventKind::Evicted => self.stripe_mut(p.stripe)?.stats.evicted += 1,
                _ => {}
            }
            self.journal.record(db, key, kind);
            let flags = self.ks.notify_flags.load(Ordering::Relaxed);
            match kind {
                EventKind::Expired => {
                    self.journal
                        .notify(flags, crate::notify::EXPIRED, "expired", db, key)
                }
                EventKind::Evicted => {
                    self.journal
                        .notify(flags, crate::notify::EVICTED, "evicted", db, key)
                }
                _ => {}
            }
            self.db_mut(db, p.stripe)?.watches.touch(key, false);
        }
        Ok(old)
    }

    /// Removes a key for the eviction policy.
    pub(crate) fn evict(&mut self, db: usize, key: &[u8]) -> Result<bool, NotLocked> {
        let p = self.place(key);
        Ok(self.remove_at(db, key, p, EventKind::Evicted)?.is_some())
    }

    /// Starts watching `key` for `token` (`WATCH`), noting whether the key is stored but
    /// already expired: its deletion is then no change.
    pub fn watch(
        &mut self,
        db: usize,
        key: &[u8],
        token: &Arc<WatchToken>,
    ) -> Result<(), NotLocked> {
        let (ks, now) = (self.ks, self.now);
        let p = self.place(key);
        let d = self.db_mut(db, p.stripe)?;
        let expired = d.stored(ks, key).is_some_and(|e| e.is_expired(now));
        d.watches.add(key, token, expired);
        Ok(())
    }

    /// Records the keyspace notification `event` of `class` for `key` of database `db`, if
    /// `notify-keyspace-events` asks for it (one load when it does not).
    pub fn notify(
        &mut self,
        class: crate::notify::Class,
        event: &'static str,
        db: usize,
        key: &[u8],
    ) {
        let flags = self.ks.notify_flags.load(Ordering::Relaxed);
        if flags != 0 {
            self.journal.notify(flags, class, event, db, key);
        }
    }

    /// [`Locked::notify`], then `del` if the key is gone: a collection the command emptied,
    /// which the write path deleted, as Redis announces it.
    pub fn notify_then_del_if_gone(
        &mut self,
        class: crate::notify::Class,
        event: &'static str,
        db: usize,
        key: &[u8],
    ) {
        let flags = self.ks.notify_flags.load(Ordering::Relaxed);
        if flags == 0 {
            return;
        }
        self.journal.notify(flags, class, event, db, key);
        if matches!(self.peek(db, key), Ok(None)) {
            self.journal
                .notify(flags, crate::notify::GENERIC, "del", db, key);
        }
    }

    /// The LRU/LFU access clock value this command stamps on entries it touches.
    pub fn access_clock(&self) -> u32 {
        self.clock & CLOCK_MAX
    }
}

fn stripe_in<'g>(
    guards: &'g mut [(usize, MutexGuard<'_, Stripe>)],
    all: bool,
    stripe: usize,
) -> Result<&'g mut Stripe, NotLocked> {
    let found = if all {
        guards.get_mut(stripe)
    } else {
        guards.iter_mut().find(|(s, _)| *s == stripe)
    };
    found.map(|(_, g)| &mut **g).ok_or(NotLocked)
}

fn db_in<'g>(
    guards: &'g mut [(usize, MutexGuard<'_, Stripe>)],
    all: bool,
    stripe: usize,
    db: usize,
) -> Result<&'g mut StripeDb, NotLocked> {
    stripe_in(guards, all, stripe)?
        .dbs
        .get_mut(db)
        .ok_or(NotLocked)
}

/// A key being modified. Memory accounting, expiry counters and the journal are updated when it
/// is dropped, so a handler cannot forget them.
pub struct EntryMut<'l> {
    entry: &'l mut Entry,
    table_volatile: &'l mut u32,
    db_volatile: &'l mut usize,
    db_mem: &'l mut usize,
    field_ttls: &'l mut std::collections::BTreeSet<Box<[u8]>>,
    before_field_ttls: bool,
    watches: &'l mut WatchTable,
    ks: &'l Keyspace,
    journal: &'l mut Journal,
    db: usize,
    before_mem: usize,
    before_volatile: bool,
    touched: bool,
}

impl EntryMut<'_> {
    /// Read access without marking the key modified.
    pub fn get(&self) -> &Entry {
        self.entry
    }

    /// Mutable access; the key counts as modified.
    pub fn get_mut(&mut self) -> &mut Entry {
        self.touched = true;
        self.entry
    }
}

impl Drop for EntryMut<'_> {
    fn drop(&mut self) {
        if !self.touched {
            return;
        }
        let after = self.entry.mem_usage();
        let delta = after as i64 - self.before_mem as i64;
        *self.db_mem = (*self.db_mem as i64 + delta).max(0) as usize;
        self.ks.add_mem(delta);
        match (self.before_volatile, self.entry.is_volatile()) {
            (false, true) => {
                *self.table_volatile += 1;
                *self.db_volatile += 1;
            }
            (true, false) => {
                *self.table_volatile -= 1;
                *self.db_volatile -= 1;
            }
            _ => {}
        }
        match (self.before_field_ttls, self.entry.has_field_ttls()) {
            (false, true) => {
                self.field_ttls.insert(self.entry.key().into());
            }
            (true, false) => {
                self.field_ttls.remove(self.entry.key());
            }
            _ => {}
        }
        self.journal
            .record(self.db, self.entry.key(), EventKind::Write);
        self.watches.touch(self.entry.key(), true);
    }
}
