//! Consumer groups: the last delivered ID, the pending entries list (PEL) and the consumers,
//! each with the IDs it owns.
//!
//! An entry pending in a group appears twice, as in Redis: in the group's PEL (with its owner,
//! delivery time and count) and in its owner's PEL (the ID alone), so both "everything pending"
//! and "what this consumer has" are ordered walks. Consumer names are shared (`Arc`) between
//! the consumer and the PEL entries it owns.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;
use std::sync::Arc;

use super::StreamId;

/// Estimated heap bytes of one PEL entry (in the group's tree and its owner's).
const NACK_MEM: usize = 96;
/// Estimated heap bytes of a consumer, name aside.
const CONSUMER_MEM: usize = 96;

/// A pending entry: delivered to `consumer`, not acknowledged yet.
#[derive(Clone, Debug)]
pub struct Nack {
    /// The owner; `None` only transiently, for an entry `XCLAIM ... FORCE` is creating.
    pub consumer: Option<Arc<[u8]>>,
    /// Unix ms of the last delivery.
    pub delivery_time: u64,
    pub delivery_count: u64,
}

/// A consumer of a group.
#[derive(Clone, Debug)]
pub struct Consumer {
    pub name: Arc<[u8]>,
    /// Unix ms of the last time the consumer read or claimed.
    pub seen_time: u64,
    pel: BTreeSet<StreamId>,
}

impl Consumer {
    /// Number of entries this consumer owns.
    pub fn pending(&self) -> usize {
        self.pel.len()
    }

    /// The IDs this consumer owns within `range`, in order.
    pub fn pending_ids(
        &self,
        range: RangeInclusive<StreamId>,
    ) -> impl Iterator<Item = StreamId> + '_ {
        self.pel.range(range).copied()
    }
}

/// A consumer group.
#[derive(Clone, Debug)]
pub struct Group {
    pub last_id: StreamId,
    /// The logical number of entries the group has read, `None` when unknown.
    pub entries_read: Option<u64>,
    pel: BTreeMap<StreamId, Nack>,
    consumers: BTreeMap<Arc<[u8]>, Consumer>,
    /// Heap bytes held, kept as the group changes.
    pub(super) mem: usize,
}

impl Group {
    pub(super) fn new(last_id: StreamId, entries_read: Option<u64>) -> Group {
        Group {
            last_id,
            entries_read,
            pel: BTreeMap::new(),
            consumers: BTreeMap::new(),
            mem: 0,
        }
    }

    /// Number of pending entries.
    pub fn pending(&self) -> usize {
        self.pel.len()
    }

    /// The pending entries within `range`, in ID order.
    pub fn pel_range(
        &self,
        range: RangeInclusive<StreamId>,
    ) -> impl Iterator<Item = (StreamId, &Nack)> + '_ {
        self.pel.range(range).map(|(id, n)| (*id, n))
    }

    /// The pending entry with this ID.
    pub fn nack(&self, id: StreamId) -> Option<&Nack> {
        self.pel.get(&id)
    }

    /// The lowest and highest pending IDs.
    pub fn pel_bounds(&self) -> Option<(StreamId, StreamId)> {
        let first = self.pel.keys().next()?;
        let last = self.pel.keys().next_back()?;
        Some((*first, *last))
    }

    /// The consumers, in name order.
    pub fn consumers(&self) -> impl Iterator<Item = &Consumer> + '_ {
        self.consumers.values()
    }

    /// Number of consumers.
    pub fn consumer_count(&self) -> usize {
        self.consumers.len()
    }

    /// A consumer by name, without refreshing its seen time.
    pub fn consumer(&self, name: &[u8]) -> Option<&Consumer> {
        self.consumers.get(name)
    }

    /// Creates a consumer; false when it exists.
    pub fn create_consumer(&mut self, name: &[u8], now: u64) -> bool {
        if self.consumers.contains_key(name) {
            return false;
        }
        let name: Arc<[u8]> = Arc::from(name);
        self.mem += CONSUMER_MEM + name.len();
        self.consumers.insert(
            name.clone(),
            Consumer {
                name,
                seen_time: now,
                pel: BTreeSet::new(),
            },
        );
        true
    }

    /// Looks a consumer up, refreshing its seen time, creating it if needed (as reading and
    /// claiming do). Returns true when it was created.
    pub fn touch_consumer(&mut self, name: &[u8], now: u64) -> bool {
        match self.consumers.get_mut(name) {
            Some(c) => {
                c.seen_time = now;
                false
            }
            None => self.create_consumer(name, now),
        }
    }

    /// Deletes a consumer and its pending entries; returns how many it had, `None` when it did
    /// not exist.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let c = self.consumers.remove(name)?;
        for id in &c.pel {
            self.pel.remove(id);
        }
        self.mem -= CONSUMER_MEM + c.name.len() + c.pel.len() * NACK_MEM;
        Some(c.pel.len())
    }

    /// Records the delivery of `id` to `consumer` (which must exist) at `now`: a new PEL entry,
    /// or, when another consumer had it (after `XGROUP SETID`), a transfer with the count reset.
    pub fn deliver(&mut self, id: StreamId, consumer: &[u8], now: u64) {
        let Some(c) = self.consumers.get_mut(consumer) else {
            return;
        };
        c.pel.insert(id);
        let owner = c.name.clone();
        if let Some(old) = self.pel.insert(
            id,
            Nack {
                consumer: Some(owner.clone()),
                delivery_time: now,
                delivery_count: 1,
            },
        ) {
            if let Some(prev) = old.consumer.filter(|p| *p != owner) {
                if let Some(pc) = self.consumers.get_mut(&prev) {
                    pc.pel.remove(&id);
                }
            }
        } else {
            self.mem += NACK_MEM;
        }
    }

    /// Counts another delivery of a pending entry (a consumer re-reading its history).
    pub fn redeliver(&mut self, id: StreamId, now: u64) {
        if let Some(n) = self.pel.get_mut(&id) {
            n.delivery_time = now;
            n.delivery_count += 1;
        }
    }

    /// Acknowledges `id`; false when it was not pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        let Some(n) = self.pel.remove(&id) else {
            return false;
        };
        if let Some(c) = n.consumer.and_then(|c| self.consumers.get_mut(&c)) {
            c.pel.remove(&id);
        }
        self.mem -= NACK_MEM;
        true
    }

    /// Gives the pending entry `id` to `consumer` (which must exist), setting its delivery
    /// time, and its count to `count` when given. With `force`, an entry that was not pending
    /// is created first. Returns false when there was nothing to claim.
    pub fn claim(
        &mut self,
        id: StreamId,
        consumer: &[u8],
        delivery_time: u64,
        count: Option<u64>,
        force: bool,
    ) -> bool {
        if !self.pel.contains_key(&id) {
            if !force {
                return false;
            }
            self.mem += NACK_MEM;
            self.pel.insert(
                id,
                Nack {
                    consumer: None,
                    delivery_time,
                    delivery_count: 1,
                },
            );
        }
        let Some(owner) = self.consumers.get(consumer).map(|c| c.name.clone()) else {
            return false;
        };
        let Some(nack) = self.pel.get_mut(&id) else {
            return false;
        };
        nack.delivery_time = delivery_time;
        if let Some(n) = count {
            nack.delivery_count = n;
        }
        if nack.consumer.as_ref() != Some(&owner) {
            if let Some(prev) = nack.consumer.replace(owner.clone()) {
                if let Some(pc) = self.consumers.get_mut(&prev) {
                    pc.pel.remove(&id);
                }
            }
            if let Some(c) = self.consumers.get_mut(&owner) {
                c.pel.insert(id);
            }
        }
        true
    }

    /// Adds to the delivery count of a pending entry.
    pub fn bump_delivery_count(&mut self, id: StreamId) {
        if let Some(n) = self.pel.get_mut(&id) {
            n.delivery_count += 1;
        }
    }

    /// The first pending ID at or after `from`.
    pub fn next_pending(&self, from: StreamId) -> Option<StreamId> {
        self.pel.range(from..).next().map(|(id, _)| *id)
    }

    /// The memory estimate recomputed from scratch, to check the running counter.
    #[cfg(test)]
    pub(super) fn recount(&self) -> usize {
        let consumers: usize = self
            .consumers
            .values()
            .map(|c| CONSUMER_MEM + c.name.len())
            .sum();
        consumers + self.pel.len() * NACK_MEM
    }
}
