//! Active expiry: a background cycle that finds and deletes keys whose expiry has passed, so
//! memory is reclaimed even for keys no client ever reads again.
//!
//! Like Redis's adaptive cycle, it walks tables that hold volatile keys, samples up to
//! `keys_per_loop` volatile keys at a time, deletes the expired ones, and keeps working on a table
//! while more than `acceptable_stale` percent of the sample had expired, on the theory that a table
//! where many sampled keys were stale has many more. It stops when the caller says time is up, and
//! resumes from the same stripe and bucket on the next call, so the CPU spent per call is bounded
//! and every key is eventually visited.

use crate::keyspace::{EventKind, Journal, Keyspace};

/// Tuning derived from `active-expire-effort` (1..=10), with Redis's formulas.
#[derive(Debug, Clone, Copy)]
pub struct ExpireEffort {
    /// Volatile keys sampled per round on one table.
    pub keys_per_loop: usize,
    /// Keep going on a table while more than this percentage of the sample had expired.
    pub acceptable_stale: usize,
}

impl ExpireEffort {
    /// The tuning for an `active-expire-effort` value.
    pub fn from_effort(effort: u32) -> ExpireEffort {
        let e = effort.clamp(1, 10) as usize - 1;
        ExpireEffort {
            keys_per_loop: 20 + 20 / 4 * e,
            acceptable_stale: 10 - e,
        }
    }
}

/// What one cycle did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExpireCycleStats {
    pub sampled: usize,
    pub expired: usize,
    /// Hash fields removed because their own expiry passed.
    pub expired_fields: usize,
    /// True when the cycle visited every stripe before time ran out.
    pub completed: bool,
}

impl Keyspace {
    /// Runs one active expiry cycle at time `now`, stopping when `out_of_time` returns true.
    /// Deleted keys are recorded in `journal` with [`EventKind::Expired`].
    pub fn active_expire_cycle(
        &self,
        now: u64,
        effort: ExpireEffort,
        mut out_of_time: impl FnMut() -> bool,
        journal: &mut Journal,
    ) -> ExpireCycleStats {
        use std::sync::atomic::Ordering;
        let mut stats = ExpireCycleStats::default();
        let stripes = self.stripe_count();
        let start = self.expire_cursor.load(Ordering::Relaxed) % stripes;
        for off in 0..stripes {
            let sidx = (start + off) % stripes;
            let mut locked = self.lock([sidx], now);
            if journal.events.is_some() {
                locked.journal = Journal::with_events();
            }
            let timed_out = locked.expire_stripe(sidx, effort, &mut stats, &mut out_of_time);
            journal.absorb(std::mem::take(&mut locked.journal));
            drop(locked);
            if timed_out {
                self.expire_cursor.store(sidx, Ordering::Relaxed);
                return stats;
            }
        }
        stats.completed = true;
        stats
    }
}

impl crate::keyspace::Locked<'_> {
    /// Removes due fields from up to `keys_per_loop` hashes with field expiry in one database of
    /// one locked stripe, continuing from where the last cycle stopped. Each change goes through
    /// the write path, which deletes a hash left empty.
    fn expire_fields(
        &mut self,
        db: usize,
        sidx: usize,
        effort: ExpireEffort,
        stats: &mut ExpireCycleStats,
    ) {
        use std::ops::Bound::{Excluded, Unbounded};
        let now = self.now();
        let Ok(d) = self.db_mut(db, sidx) else {
            return;
        };
        if d.field_ttls.is_empty() {
            return;
        }
        let after = match &d.field_cursor {
            Some(k) => (Excluded(k.clone()), Unbounded),
            None => (Unbounded, Unbounded),
        };
        let mut batch: Vec<Box<[u8]>> = d
            .field_ttls
            .range::<Box<[u8]>, _>(after)
            .take(effort.keys_per_loop)
            .cloned()
            .collect();
        if batch.len() < effort.keys_per_loop {
            // Wrap around to the first keys.
            let more = effort.keys_per_loop - batch.len();
            let first: Vec<Box<[u8]>> = d.field_ttls.iter().take(more).cloned().collect();
            for k in first {
                if !batch.contains(&k) {
                    batch.push(k);
                }
            }
        }
        d.field_cursor = batch.last().cloned();
        // At most this many fields go per call, so a hash with a million fields due at once
        // holds its stripe for a bounded time per tick; the rest go on the next ticks.
        let mut budget = effort.keys_per_loop * 20;
        for key in batch {
            if budget == 0 {
                break;
            }
            let due = matches!(
                self.peek(db, &key),
                Ok(Some(e)) if matches!(
                    e.value(),
                    Some(crate::Object::Hash(h)) if h.next_deadline().is_some_and(|t| t <= now)
                )
            );
            if !due {
                continue;
            }
            let removed = self.update(db, &key, |e| match e.get_mut().value_mut() {
                Some(crate::Object::Hash(h)) => h.purge_expired_upto(now, budget),
                _ => 0,
            });
            let removed = removed.ok().flatten().unwrap_or(0);
            budget = budget.saturating_sub(removed);
            stats.expired_fields += removed;
        }
    }

    /// Expires keys in one locked stripe. Returns true when time ran out.
    fn expire_stripe(
        &mut self,
        sidx: usize,
        effort: ExpireEffort,
        stats: &mut ExpireCycleStats,
        out_of_time: &mut impl FnMut() -> bool,
    ) -> bool {
        let now = self.now();
        let dbs = self.keyspace().databases();
        for db in 0..dbs {
            self.expire_fields(db, sidx, effort, stats);
            let Ok(d) = self.db_mut(db, sidx) else {
                return false;
            };
            if d.volatile == 0 {
                continue;
            }
            let tables = d.tables.len();
            for index in 0..tables {
                loop {
                    let Ok(d) = self.db_mut(db, sidx) else {
                        return false;
                    };
                    let t = &mut d.tables[index];
                    if t.volatile == 0 {
                        break;
                    }
                    // Walk buckets from where the last round stopped, sampling volatile keys.
                    let buckets = t.map.num_buckets();
                    let mut due = Vec::new();
                    let mut sampled = 0;
                    let mut pos = t.expire_cursor as usize % buckets.max(1);
                    let mut walked = 0;
                    while sampled < effort.keys_per_loop && walked < buckets {
                        if let Some(e) = t.map.get_bucket(pos) {
                            if let Some(deadline) = e.deadline() {
                                sampled += 1;
                                if deadline <= now {
                                    due.push(e.key().to_vec());
                                }
                            }
                        }
                        pos = (pos + 1) % buckets;
                        walked += 1;
                    }
                    t.expire_cursor = pos as u32;
                    let expired = due.len();
                    for key in due {
                        let p = self.place(&key);
                        let _ = self.remove_at(db, &key, p, EventKind::Expired);
                    }
                    stats.sampled += sampled;
                    stats.expired += expired;
                    if out_of_time() {
                        return true;
                    }
                    if sampled == 0 || expired * 100 <= sampled * effort.acceptable_stale {
                        break;
                    }
                }
            }
        }
        false
    }
}
