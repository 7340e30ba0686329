//! Eviction under `maxmemory`: Redis's sampled approximations of LRU, LFU and TTL order, with an
//! eviction pool that remembers the best candidates between rounds.
//!
//! Redis does not keep an exact LRU list (it would cost two pointers per key). Instead every key
//! carries a 24-bit clock: the last access time in seconds for LRU, or a 16-bit minute stamp and
//! an 8-bit logarithmic counter for LFU. To free memory, Redis samples `maxmemory-samples` keys,
//! merges them into a 16-entry pool ordered by "idleness", and evicts the idlest. We follow the
//! same scheme so hit ratios match Redis's under the same workload.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use crate::entry::{Entry, CLOCK_MAX};
use crate::keyspace::{Journal, Keyspace};

/// Redis's `EVPOOL_SIZE`.
const POOL_SIZE: usize = 16;
/// Redis's `LFU_INIT_VAL`: new keys start with a small counter so they are not evicted at once.
pub const LFU_INIT_VAL: u32 = 5;

/// The `maxmemory-policy` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Policy {
    NoEviction = 0,
    AllKeysLru = 1,
    AllKeysLfu = 2,
    AllKeysRandom = 3,
    VolatileLru = 4,
    VolatileLfu = 5,
    VolatileRandom = 6,
    VolatileTtl = 7,
}

impl Policy {
    /// Every policy with its configuration name.
    pub const ALL: [(Policy, &'static str); 8] = [
        (Policy::NoEviction, "noeviction"),
        (Policy::AllKeysLru, "allkeys-lru"),
        (Policy::AllKeysLfu, "allkeys-lfu"),
        (Policy::AllKeysRandom, "allkeys-random"),
        (Policy::VolatileLru, "volatile-lru"),
        (Policy::VolatileLfu, "volatile-lfu"),
        (Policy::VolatileRandom, "volatile-random"),
        (Policy::VolatileTtl, "volatile-ttl"),
    ];

    /// Parses a configuration name, case-insensitively.
    pub fn parse(name: &str) -> Option<Policy> {
        Self::ALL
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(p, _)| *p)
    }

    /// The configuration name.
    pub fn name(self) -> &'static str {
        Self::ALL[self as usize].1
    }

    fn from_u8(v: u8) -> Policy {
        Self::ALL
            .get(v as usize)
            .map_or(Policy::NoEviction, |(p, _)| *p)
    }

    /// True for the LFU policies, which change what the per-key clock means.
    pub fn is_lfu(self) -> bool {
        matches!(self, Policy::AllKeysLfu | Policy::VolatileLfu)
    }

    fn volatile_only(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru
                | Policy::VolatileLfu
                | Policy::VolatileRandom
                | Policy::VolatileTtl
        )
    }

    fn random(self) -> bool {
        matches!(self, Policy::AllKeysRandom | Policy::VolatileRandom)
    }
}

/// Eviction settings, changed at run time by `CONFIG SET`.
#[derive(Debug)]
pub struct EvictionConfig {
    maxmemory: AtomicU64,
    policy: AtomicU8,
    samples: AtomicU32,
    lfu_log_factor: AtomicU32,
    lfu_decay_time: AtomicU32,
}

impl Default for EvictionConfig {
    fn default() -> Self {
        EvictionConfig {
            maxmemory: AtomicU64::new(0),
            policy: AtomicU8::new(Policy::NoEviction as u8),
            samples: AtomicU32::new(5),
            lfu_log_factor: AtomicU32::new(10),
            lfu_decay_time: AtomicU32::new(1),
        }
    }
}

/// A plain copy of the eviction settings for one command.
#[derive(Clone, Copy, Debug)]
pub struct EvictionSettings {
    pub maxmemory: u64,
    pub policy: Policy,
    pub samples: u32,
    pub lfu_log_factor: u32,
    pub lfu_decay_time: u32,
}

impl EvictionConfig {
    /// Reads every setting.
    pub fn snapshot(&self) -> EvictionSettings {
        EvictionSettings {
            maxmemory: self.maxmemory.load(Ordering::Relaxed),
            policy: Policy::from_u8(self.policy.load(Ordering::Relaxed)),
            samples: self.samples.load(Ordering::Relaxed),
            lfu_log_factor: self.lfu_log_factor.load(Ordering::Relaxed),
            lfu_decay_time: self.lfu_decay_time.load(Ordering::Relaxed),
        }
    }

    /// Sets `maxmemory` in bytes (0 = no limit).
    pub fn set_maxmemory(&self, bytes: u64) {
        self.maxmemory.store(bytes, Ordering::Relaxed);
    }

    /// Sets `maxmemory-policy`.
    pub fn set_policy(&self, p: Policy) {
        self.policy.store(p as u8, Ordering::Relaxed);
    }

    /// Sets `maxmemory-samples`.
    pub fn set_samples(&self, n: u32) {
        self.samples.store(n.max(1), Ordering::Relaxed);
    }

    /// Sets `lfu-log-factor`.
    pub fn set_lfu_log_factor(&self, n: u32) {
        self.lfu_log_factor.store(n, Ordering::Relaxed);
    }

    /// Sets `lfu-decay-time` in minutes.
    pub fn set_lfu_decay_time(&self, n: u32) {
        self.lfu_decay_time.store(n, Ordering::Relaxed);
    }

    /// The clock value a key gets when created at `now` (Unix ms) under the current policy.
    pub fn access_clock(&self, now: u64) -> u32 {
        if Policy::from_u8(self.policy.load(Ordering::Relaxed)).is_lfu() {
            (lfu_minutes(now) << 8) | LFU_INIT_VAL
        } else {
            lru_clock(now)
        }
    }
}

/// Redis's LRU clock: seconds, wrapping at 24 bits.
pub fn lru_clock(now_ms: u64) -> u32 {
    ((now_ms / 1000) as u32) & CLOCK_MAX
}

fn lfu_minutes(now_ms: u64) -> u32 {
    ((now_ms / 60_000) as u32) & 0xFFFF
}

/// Idle time in milliseconds of an entry under LRU, as `OBJECT IDLETIME` reports (in seconds).
pub fn idle_ms(e: &Entry, now_ms: u64) -> u64 {
    let now = lru_clock(now_ms);
    let then = e.clock();
    let secs = if now >= then {
        now - then
    } else {
        CLOCK_MAX - then + now
    };
    secs as u64 * 1000
}

/// The LFU counter after applying the decay for the minutes elapsed, as `OBJECT FREQ` reports.
pub fn lfu_decayed(e: &Entry, now_ms: u64, decay_time: u32) -> u32 {
    let ldt = e.clock() >> 8;
    let counter = e.clock() & 0xFF;
    let now = lfu_minutes(now_ms);
    let elapsed = if now >= ldt {
        now - ldt
    } else {
        0xFFFF - ldt + now
    };
    let periods = elapsed.checked_div(decay_time).unwrap_or(0);
    counter.saturating_sub(periods)
}

/// Updates an entry's clock on access: the access time under LRU, the decayed and
/// logarithmically incremented counter under LFU.
pub(crate) fn touch(e: &mut Entry, now_ms: u64, s: &EvictionSettings) {
    if s.policy.is_lfu() {
        let mut counter = lfu_decayed(e, now_ms, s.lfu_decay_time);
        if counter < 255 {
            let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
            let p = 1.0 / (base * s.lfu_log_factor as f64 + 1.0);
            // A cheap per-thread random number is plenty for a probabilistic counter.
            if thread_random_unit() < p {
                counter += 1;
            }
        }
        e.set_clock((lfu_minutes(now_ms) << 8) | counter);
    } else {
        e.set_clock(lru_clock(now_ms));
    }
}

fn thread_random_unit() -> f64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(
            0x9E37_79B9_7F4A_7C15 ^ (&STATE as *const _ as u64)
        );
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

/// A key considered for eviction, with its score (higher = evict sooner).
#[derive(Debug, Clone)]
struct Candidate {
    score: u64,
    db: usize,
    key: Vec<u8>,
}

/// The eviction pool, kept between rounds so good candidates found earlier are not forgotten.
#[derive(Debug, Default)]
pub struct Pool {
    /// Sorted by ascending score; the best candidate is last.
    entries: Vec<Candidate>,
}

impl Pool {
    fn offer(&mut self, c: Candidate) {
        if self.entries.len() >= POOL_SIZE && self.entries[0].score >= c.score {
            return;
        }
        if self.entries.iter().any(|e| e.db == c.db && e.key == c.key) {
            return;
        }
        let at = self.entries.partition_point(|e| e.score < c.score);
        self.entries.insert(at, c);
        if self.entries.len() > POOL_SIZE {
            self.entries.remove(0);
        }
    }
}

/// The outcome of an eviction attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictOutcome {
    /// Memory is within `maxmemory` (or there is no limit), or eviction is making progress.
    Ok,
    /// Memory is still above the limit and nothing more can be evicted (or the policy is
    /// `noeviction`): writes that may grow memory must be refused with `-OOM`.
    OverLimit,
}

/// At most this many keys are evicted by one call, so one command never stalls for long; the next
/// write continues the work.
const MAX_EVICTIONS_PER_CALL: usize = 512;

impl Keyspace {
    /// Evicts keys until used memory is within `maxmemory`, following the configured policy.
    /// Must be called without any stripe lock held.
    pub fn evict_if_needed(&self, now: u64, journal: &mut Journal) -> EvictOutcome {
        let s = self.eviction.snapshot();
        if s.maxmemory == 0 || self.used_memory() as u64 <= s.maxmemory {
            return EvictOutcome::Ok;
        }
        if s.policy == Policy::NoEviction {
            return EvictOutcome::OverLimit;
        }
        let mut pool = self.pool.lock();
        for _ in 0..MAX_EVICTIONS_PER_CALL {
            if self.used_memory() as u64 <= s.maxmemory {
                return EvictOutcome::Ok;
            }
            let evicted = if s.policy.random() {
                self.evict_random(now, &s, journal)
            } else {
                self.evict_from_pool(now, &s, &mut pool, journal)
            };
            if !evicted {
                return EvictOutcome::OverLimit;
            }
        }
        // Keys can still be evicted but this call has done its share; like Redis when its
        // eviction time limit is reached, the write goes ahead and later writes and the
        // background cycle carry on evicting.
        EvictOutcome::Ok
    }

    /// Picks a random table position holding a key that the policy may evict. A few random
    /// stripes are tried first; if all are empty (a nearly empty keyspace), the stripes are
    /// walked in order from a random one, so a key that exists is always found.
    fn sample_stripe<F: FnMut(usize, &Entry)>(&self, s: &EvictionSettings, mut visit: F) -> bool {
        const RANDOM_PROBES: usize = 16;
        let stripes = self.stripe_count();
        let per = self.slots_per_stripe();
        let start = self.random() as usize;
        for attempt in 0..RANDOM_PROBES + stripes {
            let sidx = if attempt < RANDOM_PROBES {
                (self.random() as usize) & (stripes - 1)
            } else {
                (start + attempt) & (stripes - 1)
            };
            let stripe = self.stripe(sidx);
            let mut found = false;
            for (db, d) in stripe.dbs.iter().enumerate() {
                let eligible = if s.policy.volatile_only() {
                    d.volatile
                } else {
                    d.keys
                };
                if eligible == 0 || d.tables.is_empty() {
                    continue;
                }
                let start = self.random() as usize % per;
                let mut taken = 0u32;
                for off in 0..per {
                    let t = &d.tables[(start + off) % per];
                    let usable = if s.policy.volatile_only() {
                        t.volatile as usize
                    } else {
                        t.len()
                    };
                    if usable == 0 {
                        continue;
                    }
                    let buckets = t.map.num_buckets();
                    let b0 = self.random() as usize % buckets.max(1);
                    for i in 0..buckets {
                        if let Some(e) = t.map.get_bucket((b0 + i) % buckets) {
                            if s.policy.volatile_only() && !e.is_volatile() {
                                continue;
                            }
                            visit(db, e);
                            found = true;
                            taken += 1;
                            if taken >= s.samples {
                                break;
                            }
                        }
                    }
                    if taken >= s.samples {
                        break;
                    }
                }
            }
            if found {
                return true;
            }
        }
        false
    }

    fn evict_random(&self, now: u64, s: &EvictionSettings, journal: &mut Journal) -> bool {
        let mut victim: Option<(usize, Vec<u8>)> = None;
        let mut settings = *s;
        settings.samples = 1;
        self.sample_stripe(&settings, |db, e| {
            if victim.is_none() {
                victim = Some((db, e.key().to_vec()));
            }
        });
        match victim {
            Some((db, key)) => self.evict_key(now, db, &key, false, journal),
            None => false,
        }
    }

    fn evict_from_pool(
        &self,
        now: u64,
        s: &EvictionSettings,
        pool: &mut Pool,
        journal: &mut Journal,
    ) -> bool {
        let sampled = self.sample_stripe(s, |db, e| {
            let score = match s.policy {
                Policy::VolatileTtl => u64::MAX - e.deadline().unwrap_or(u64::MAX),
                p if p.is_lfu() => 255 - lfu_decayed(e, now, s.lfu_decay_time) as u64,
                _ => idle_ms(e, now),
            };
            pool.offer(Candidate {
                score,
                db,
                key: e.key().to_vec(),
            });
        });
        while let Some(c) = pool.entries.pop() {
            if self.evict_key(now, c.db, &c.key, s.policy.volatile_only(), journal) {
                return true;
            }
        }
        sampled
    }

    fn evict_key(
        &self,
        now: u64,
        db: usize,
        key: &[u8],
        volatile_only: bool,
        journal: &mut Journal,
    ) -> bool {
        let mut locked = self.lock_key(key, now);
        if journal.events.is_some() {
            locked.journal = Journal::with_events();
        }
        if volatile_only {
            match locked.peek(db, key) {
                Ok(Some(e)) if e.is_volatile() => {}
                _ => return false,
            }
        }
        let evicted = locked.evict(db, key).unwrap_or(false);
        journal.absorb(std::mem::take(&mut locked.journal));
        evicted
    }
}
