//! Whole-database iteration: `SCAN` cursors, `KEYS` and `RANDOMKEY`, one slot table at a time so
//! no lock is held for long.
//!
//! The `SCAN` cursor is `slot << 50 | position`, where position is the top 50 bits of a key's hash.
//! Within a slot, keys are returned in hash order starting at the position. Because the order is a
//! property of the keys and not of the table's layout, table growth or shrinkage between calls
//! cannot make a scan skip a key: every key present from the start to the end of a full scan is
//! returned, and at most once unless two keys share the top 50 bits (they are then returned in the
//! same call). The price is that each call sorts the hashes of one slot's keys; slots are small
//! (keys are spread over 16384 of them), and to bound the work on a slot made huge by a hash tag a
//! call returns at least 1/32 of its keys, so any slot is finished in at most 32 calls.

use crate::entry::Entry;
use crate::keyspace::{EventKind, Keyspace};
use crate::slot::SLOTS;

const POS_BITS: u32 = 50;
const POS_MASK: u64 = (1 << POS_BITS) - 1;

fn position(hash: u64) -> u64 {
    hash >> (64 - POS_BITS)
}

impl Keyspace {
    /// One `SCAN` step over database `db`: returns the next cursor (0 when done) and the keys
    /// visited that pass `filter`. Expired keys are skipped.
    pub fn scan(
        &self,
        db: usize,
        cursor: u64,
        count: usize,
        now: u64,
        mut filter: impl FnMut(&Entry) -> bool,
    ) -> (u64, Vec<Vec<u8>>) {
        let mut slot = (cursor >> POS_BITS) as usize;
        let mut pos = cursor & POS_MASK;
        let mut out = Vec::new();
        let mut visited = 0usize;
        let count = count.max(1);
        while slot < SLOTS {
            let (sidx, index) = self.locate(slot);
            let stripe = self.stripe(sidx);
            let table = stripe.dbs.get(db).and_then(|d| d.tables.get(index));
            let mut keys: Vec<(u64, &Entry)> = match table {
                Some(t) if !t.is_empty() => t
                    .iter()
                    .map(|e| (position(self.hash(e.key())), e))
                    .filter(|(p, _)| *p >= pos)
                    .collect(),
                _ => Vec::new(),
            };
            keys.sort_unstable_by_key(|(p, _)| *p);
            let total = table.map_or(0, |t| t.len());
            let want = count.saturating_sub(visited).max(total / 32).max(1);
            let mut take = want.min(keys.len());
            // Keys sharing a position must be returned together, or the next cursor would skip
            // the rest of them.
            while take > 0 && take < keys.len() && keys[take].0 == keys[take - 1].0 {
                take += 1;
            }
            for (_, e) in &keys[..take] {
                if !e.is_expired(now) && filter(e) {
                    out.push(e.key().to_vec());
                }
            }
            visited += take;
            let slot_done = take == keys.len();
            let next = if slot_done {
                slot += 1;
                pos = 0;
                if slot >= SLOTS {
                    0
                } else {
                    (slot as u64) << POS_BITS
                }
            } else {
                pos = keys[take - 1].0 + 1;
                ((slot as u64) << POS_BITS) | pos
            };
            drop(stripe);
            if visited >= count || next == 0 {
                return (next, out);
            }
        }
        (0, out)
    }

    /// Every key of database `db` that passes `filter`, skipping expired keys (`KEYS`).
    pub fn keys(&self, db: usize, now: u64, mut filter: impl FnMut(&[u8]) -> bool) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for sidx in 0..self.stripe_count() {
            let stripe = self.stripe(sidx);
            let Some(d) = stripe.dbs.get(db) else {
                continue;
            };
            for t in d.tables.iter() {
                for e in t.iter() {
                    if !e.is_expired(now) && filter(e.key()) {
                        out.push(e.key().to_vec());
                    }
                }
            }
        }
        out
    }

    /// A random key of database `db`, or `None` when it is empty. Expired keys met on the way are
    /// deleted through the write path, as Redis's `RANDOMKEY` does.
    pub fn random_key(&self, db: usize, now: u64, journal: &mut crate::Journal) -> Option<Vec<u8>> {
        let stripes = self.stripe_count();
        let per = self.slots_per_stripe();
        for attempt in 0..(stripes * 4 + 100) {
            // Random stripes first; fall back to a linear sweep so a sparse keyspace still works.
            let sidx = if attempt < stripes * 2 {
                (self.random() as usize) & (stripes - 1)
            } else {
                attempt % stripes
            };
            let mut locked = self.lock([sidx], now);
            let picked = {
                let Ok(d) = locked.db_mut(db, sidx) else {
                    return None;
                };
                if d.keys == 0 {
                    continue;
                }
                let start = self.random() as usize % per;
                let mut picked = None;
                for off in 0..per {
                    let t = &d.tables[(start + off) % per];
                    if t.is_empty() {
                        continue;
                    }
                    let buckets = t.map.num_buckets();
                    let b0 = self.random() as usize % buckets;
                    for i in 0..buckets {
                        if let Some(e) = t.map.get_bucket((b0 + i) % buckets) {
                            picked = Some((e.key().to_vec(), e.is_expired(now)));
                            break;
                        }
                    }
                    break;
                }
                picked
            };
            match picked {
                Some((key, false)) => return Some(key),
                Some((key, true)) => {
                    let p = locked.place(&key);
                    let _ = locked.remove_at(db, &key, p, EventKind::Expired);
                    journal.absorb(std::mem::take(&mut locked.journal));
                }
                None => continue,
            }
        }
        None
    }

    /// The number of keys in one hash slot of database `db`.
    pub fn count_keys_in_slot(&self, db: usize, slot: u16) -> usize {
        let (sidx, index) = self.locate(slot as usize % SLOTS);
        let stripe = self.stripe(sidx);
        stripe
            .dbs
            .get(db)
            .and_then(|d| d.tables.get(index))
            .map_or(0, |t| t.len())
    }
}
