//! Stream values: entries in ID order, packed into nodes, and the consumer groups reading them.
//!
//! Entries live in nodes of up to `stream-node-max-entries` entries and `stream-node-max-bytes`
//! bytes (see [`node`]), kept in a `BTreeMap` from each node's first ID, like Redis's radix tree
//! of listpacks: seeking an ID is O(log n) to find its node plus a scan of that node. Deleted
//! entries are flagged in place; a node goes when its last live entry does. The stream
//! remembers its last generated ID, its first entry, the highest deleted ID and how many
//! entries were ever added, which consumer groups use to tell how far behind they are.
//!
//! An empty stream is a value of its own (it keeps its last ID and groups), so the keyspace
//! never deletes it for being empty.

mod group;
mod node;

use std::collections::BTreeMap;
use std::fmt;

pub use group::{Consumer, Group, Nack};
pub use node::Fields;
use node::{Node, Slot};

use crate::entry::alloc_size;
use crate::types::TypeLimits;

/// Estimated heap bytes of a tree slot beside its node's buffer.
const NODE_OVERHEAD: usize = std::mem::size_of::<Node>() + 32;
/// Estimated heap bytes of a consumer group beside its name and contents.
const GROUP_OVERHEAD: usize = std::mem::size_of::<Group>() + 64;
/// Listpacks cannot exceed 1 GiB; neither can an entry or a node.
const MAX_NODE_BYTES: usize = 1 << 30;

/// An entry ID: milliseconds and a sequence number, ordered as a pair.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    /// A new ID.
    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The next ID, `None` after the last possible one.
    pub fn next(self) -> Option<StreamId> {
        match (self.ms, self.seq) {
            (u64::MAX, u64::MAX) => None,
            (ms, u64::MAX) => Some(StreamId::new(ms + 1, 0)),
            (ms, seq) => Some(StreamId::new(ms, seq + 1)),
        }
    }

    /// The previous ID, `None` before 0-0.
    pub fn prev(self) -> Option<StreamId> {
        match (self.ms, self.seq) {
            (0, 0) => None,
            (ms, 0) => Some(StreamId::new(ms - 1, u64::MAX)),
            (ms, seq) => Some(StreamId::new(ms, seq - 1)),
        }
    }

    /// True for 0-0.
    pub fn is_zero(self) -> bool {
        self == StreamId::MIN
    }

    fn key_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.ms.to_be_bytes());
        b[8..].copy_from_slice(&self.seq.to_be_bytes());
        b
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// A trimming strategy (`MAXLEN` or `MINID`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trim {
    /// Keep at most this many entries.
    MaxLen(u64),
    /// Drop entries with IDs below this one.
    MinId(StreamId),
}

/// One entry, borrowed from its node.
#[derive(Clone, Debug)]
pub struct Entry<'a> {
    pub id: StreamId,
    pub fields: Fields<'a>,
}

/// A stream value.
#[derive(Clone, Debug, Default)]
pub struct Stream {
    entries: Entries,
    groups: BTreeMap<Box<[u8]>, Group>,
    /// Heap bytes of the groups, kept as they change.
    groups_mem: usize,
}

impl Stream {
    /// An empty stream.
    pub fn new() -> Stream {
        Stream::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.length as usize
    }

    /// True when there are no entries (the stream still exists).
    pub fn is_empty(&self) -> bool {
        self.entries.length == 0
    }

    /// Heap bytes held, in O(1).
    pub fn mem_usage(&self) -> usize {
        self.entries.mem + self.groups_mem
    }

    /// Redis's `OBJECT ENCODING` name.
    pub fn encoding_name(&self) -> &'static str {
        "stream"
    }

    /// The entries and their metadata.
    pub fn entries(&self) -> &Entries {
        &self.entries
    }

    /// The entries, for adding, deleting and trimming.
    pub fn entries_mut(&mut self) -> &mut Entries {
        &mut self.entries
    }

    /// The consumer groups, in name order.
    pub fn groups(&self) -> impl Iterator<Item = (&[u8], &Group)> + '_ {
        self.groups.iter().map(|(n, g)| (&n[..], g))
    }

    /// Number of consumer groups.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// A group by name.
    pub fn group(&self, name: &[u8]) -> Option<&Group> {
        self.groups.get(name)
    }

    /// Creates a group; false when one with that name exists.
    pub fn create_group(
        &mut self,
        name: &[u8],
        last_id: StreamId,
        entries_read: Option<u64>,
    ) -> bool {
        if self.groups.contains_key(name) {
            return false;
        }
        self.groups_mem += GROUP_OVERHEAD + alloc_size(name.len());
        self.groups
            .insert(name.into(), Group::new(last_id, entries_read));
        true
    }

    /// Deletes a group; false when there was none.
    pub fn destroy_group(&mut self, name: &[u8]) -> bool {
        match self.groups.remove(name) {
            Some(g) => {
                self.groups_mem -= GROUP_OVERHEAD + alloc_size(name.len()) + g.mem;
                true
            }
            None => false,
        }
    }

    /// Runs `f` on a group (with the entries readable beside it), keeping memory accounting
    /// exact. `None` when there is no such group.
    pub fn with_group<R>(
        &mut self,
        name: &[u8],
        f: impl FnOnce(&Entries, &mut Group) -> R,
    ) -> Option<R> {
        let g = self.groups.get_mut(name)?;
        let before = g.mem;
        let out = f(&self.entries, g);
        self.groups_mem = self.groups_mem + g.mem - before;
        Some(out)
    }
}

/// The entries of a stream and the counters that describe them.
#[derive(Clone, Debug, Default)]
pub struct Entries {
    nodes: BTreeMap<StreamId, Node>,
    length: u64,
    last_id: StreamId,
    /// The first live entry's ID when the stream was last changed at its head (0-0 if empty).
    first_id: StreamId,
    max_deleted: StreamId,
    entries_added: u64,
    /// Heap bytes of the nodes.
    mem: usize,
}

impl Entries {
    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.length
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// The last ID generated (the top of the stream, even once deleted).
    pub fn last_id(&self) -> StreamId {
        self.last_id
    }

    /// The first entry's ID as recorded (`XINFO STREAM`'s `recorded-first-entry-id`).
    pub fn first_id(&self) -> StreamId {
        self.first_id
    }

    /// The highest ID ever deleted with `XDEL`.
    pub fn max_deleted(&self) -> StreamId {
        self.max_deleted
    }

    /// How many entries were ever added.
    pub fn entries_added(&self) -> u64 {
        self.entries_added
    }

    /// Number of nodes (`radix-tree-keys`).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The number of nodes Redis's radix tree would have for the same node keys
    /// (`radix-tree-nodes`): one per run of shared bytes, per branching point and per key.
    pub fn radix_tree_nodes(&self) -> usize {
        let keys: Vec<[u8; 16]> = self.nodes.keys().map(|k| k.key_bytes()).collect();
        if keys.is_empty() {
            return 1;
        }
        rax_nodes(&keys, 0)
    }

    /// The ID an `XADD *` at `now` gets, `None` when the stream has used every ID.
    pub fn next_id(&self, now: u64) -> Option<StreamId> {
        if now > self.last_id.ms {
            Some(StreamId::new(now, 0))
        } else {
            self.last_id.next()
        }
    }

    /// Overwrites the stream's counters (`XSETID`).
    pub fn set_meta(
        &mut self,
        last_id: StreamId,
        entries_added: Option<u64>,
        max_deleted: Option<StreamId>,
    ) {
        self.last_id = last_id;
        if let Some(n) = entries_added {
            self.entries_added = n;
        }
        if let Some(id) = max_deleted {
            self.max_deleted = id;
        }
    }

    /// Appends an entry with the field-value pairs `pairs` (flattened). `id` must be greater
    /// than [`Entries::last_id`]. A new node starts when the last one is full by Redis's rules.
    pub fn append<T: AsRef<[u8]>>(&mut self, id: StreamId, pairs: &[T], limits: &TypeLimits) {
        let incoming: usize = pairs.iter().map(|p| p.as_ref().len()).sum();
        let max_bytes = match limits.stream_node_max_bytes {
            0 => MAX_NODE_BYTES,
            n => n.min(MAX_NODE_BYTES),
        };
        let max_entries = limits.stream_node_max_entries;
        let mut appended = false;
        if let Some(mut last) = self.nodes.last_entry() {
            let node = last.get_mut();
            let before = node.mem_usage();
            if node.lp_bytes() + incoming >= max_bytes
                || (max_entries != 0 && node.live + node.deleted >= max_entries)
            {
                // The node is complete: give back what its buffer reserved for growth.
                node.shrink();
            } else {
                node.push(id, pairs);
                appended = true;
            }
            self.mem = self.mem + node.mem_usage() - before;
        }
        if !appended {
            let node = Node::new(id, pairs);
            self.mem += NODE_OVERHEAD + node.mem_usage();
            self.nodes.insert(id, node);
        }
        self.length += 1;
        self.entries_added += 1;
        self.last_id = id;
        if self.length == 1 {
            self.first_id = id;
        }
    }

    /// The entries with IDs in `start..=end`, forward or (`rev`) backward.
    pub fn range(&self, start: StreamId, end: StreamId, rev: bool) -> Range<'_> {
        let nodes = if start > end {
            self.nodes.range(StreamId::MAX..StreamId::MAX)
        } else if rev {
            self.nodes.range(..=end)
        } else {
            let from = self
                .nodes
                .range(..=start)
                .next_back()
                .map_or(StreamId::MIN, |(k, _)| *k);
            self.nodes.range(from..=end)
        };
        Range {
            nodes,
            node: None,
            slots: Vec::new(),
            pos: 0,
            start,
            end,
            rev,
            done: false,
        }
    }

    /// The entry with this ID, if it exists (and is not deleted).
    pub fn get(&self, id: StreamId) -> Option<Entry<'_>> {
        self.range(id, id, false).next()
    }

    /// The last live entry's ID.
    pub fn last_valid_id(&self) -> Option<StreamId> {
        self.range(StreamId::MIN, StreamId::MAX, true)
            .next()
            .map(|e| e.id)
    }

    fn first_valid_id(&self) -> Option<StreamId> {
        self.range(StreamId::MIN, StreamId::MAX, false)
            .next()
            .map(|e| e.id)
    }

    /// Deletes entries by ID (`XDEL`), returning how many existed. Tracks the highest deleted
    /// ID and the first entry.
    pub fn delete(&mut self, ids: &[StreamId]) -> u64 {
        let mut deleted = 0;
        let mut first_gone = false;
        for &id in ids {
            if !self.delete_one(id) {
                continue;
            }
            deleted += 1;
            first_gone |= id == self.first_id;
            if id > self.max_deleted {
                self.max_deleted = id;
            }
        }
        if deleted > 0 {
            if self.length == 0 {
                self.first_id = StreamId::MIN;
            } else if first_gone {
                self.first_id = self.first_valid_id().unwrap_or(StreamId::MAX);
            }
        }
        deleted
    }

    fn delete_one(&mut self, id: StreamId) -> bool {
        let Some((&key, node)) = self.nodes.range_mut(..=id).next_back() else {
            return false;
        };
        let Some(slot) = node.scan().into_iter().find(|s| s.id == id && !s.deleted) else {
            return false;
        };
        if node.live == 1 {
            if let Some(node) = self.nodes.remove(&key) {
                self.mem -= NODE_OVERHEAD + node.mem_usage();
            }
        } else {
            node.mark_deleted(slot.at);
        }
        self.length -= 1;
        true
    }

    /// Trims the oldest entries (`XTRIM`, `XADD ... MAXLEN|MINID`) as Redis's `streamTrim`
    /// does: whole nodes first; then, unless `approx`, entries inside the first node that
    /// must stay partly. `limit` (0 = none) caps the entries removed. Returns how many went.
    pub fn trim(&mut self, strategy: Trim, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0u64;
        while let Some(mut first) = self.nodes.first_entry() {
            if let Trim::MaxLen(max) = strategy {
                if self.length <= max {
                    break;
                }
            }
            let node = first.get_mut();
            let entries = node.live as u64;
            if limit > 0 && deleted + entries > limit {
                break;
            }
            let remove_node = match strategy {
                Trim::MaxLen(max) => self.length - entries >= max,
                Trim::MinId(min) => node.last < min,
            };
            if remove_node {
                let node = first.remove();
                self.mem -= NODE_OVERHEAD + node.mem_usage();
                self.length -= entries;
                deleted += entries;
                continue;
            }
            if approx {
                break;
            }
            for Slot {
                id,
                at,
                deleted: gone,
            } in node.scan()
            {
                let stop = match strategy {
                    Trim::MaxLen(max) => self.length <= max,
                    Trim::MinId(min) => id >= min,
                };
                if stop {
                    break;
                }
                if !gone && node.mark_deleted(at) {
                    self.length -= 1;
                    deleted += 1;
                }
            }
            break;
        }
        if self.length == 0 {
            self.first_id = StreamId::MIN;
        } else if deleted > 0 {
            self.first_id = self.first_valid_id().unwrap_or(StreamId::MAX);
        }
        deleted
    }

    /// True when a deleted entry may lie in `start..=end` (Redis's `streamRangeHasTombstones`).
    pub fn range_has_tombstones(&self, start: StreamId, end: StreamId) -> bool {
        if self.length == 0 || self.max_deleted.is_zero() || self.first_id > self.max_deleted {
            return false;
        }
        start <= self.max_deleted && self.max_deleted <= end
    }

    /// How many entries were added up to and including `id`, when that can be known (Redis's
    /// `streamEstimateDistanceFromFirstEverEntry`).
    pub fn entries_read_at(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.length == 0 && id <= self.last_id {
            return Some(self.entries_added);
        }
        match id.cmp(&self.last_id) {
            std::cmp::Ordering::Equal => return Some(self.entries_added),
            std::cmp::Ordering::Greater => return None,
            std::cmp::Ordering::Less => {}
        }
        if self.max_deleted.is_zero() || self.max_deleted < self.first_id {
            match id.cmp(&self.first_id) {
                std::cmp::Ordering::Less => return Some(self.entries_added - self.length),
                std::cmp::Ordering::Equal => return Some(self.entries_added - self.length + 1),
                std::cmp::Ordering::Greater => {}
            }
        }
        None
    }

    /// How many entries a group has yet to read, when that can be known.
    pub fn lag(&self, g: &Group) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if let Some(read) = g.entries_read {
            if !self.range_has_tombstones(g.last_id, StreamId::MAX) {
                return Some(self.entries_added.wrapping_sub(read));
            }
        }
        self.entries_read_at(g.last_id)
            .map(|read| self.entries_added.wrapping_sub(read))
    }

    /// Moves a group's last delivered ID forward to `id` (an entry it is being served),
    /// keeping its read counter when it can.
    pub fn advance_group(&self, g: &mut Group, id: StreamId) {
        if id <= g.last_id {
            return;
        }
        if g.entries_read.is_some() && !self.range_has_tombstones(id, StreamId::MAX) {
            g.entries_read = g.entries_read.map(|n| n + 1);
        } else if self.entries_added > 0 {
            g.entries_read = self.entries_read_at(id);
        }
        g.last_id = id;
    }
}

/// Entries of an ID range, in order (see [`Entries::range`]).
pub struct Range<'a> {
    nodes: std::collections::btree_map::Range<'a, StreamId, Node>,
    node: Option<&'a Node>,
    slots: Vec<Slot>,
    pos: usize,
    start: StreamId,
    end: StreamId,
    rev: bool,
    done: bool,
}

impl<'a> Iterator for Range<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        loop {
            if self.done {
                return None;
            }
            if let Some(node) = self.node {
                while self.pos < self.slots.len() {
                    let i = if self.rev {
                        self.slots.len() - 1 - self.pos
                    } else {
                        self.pos
                    };
                    self.pos += 1;
                    let Some(slot) = self.slots.get(i).copied() else {
                        break;
                    };
                    if slot.id > self.end {
                        if self.rev {
                            continue;
                        }
                        self.done = true;
                        return None;
                    }
                    if slot.id < self.start {
                        if self.rev {
                            self.done = true;
                            return None;
                        }
                        continue;
                    }
                    if slot.deleted {
                        continue;
                    }
                    let e = node.entry(slot.at);
                    return Some(Entry {
                        id: e.id,
                        fields: e.fields,
                    });
                }
            }
            let (_, node) = if self.rev {
                self.nodes.next_back()?
            } else {
                self.nodes.next()?
            };
            if self.rev && node.last < self.start {
                self.done = true;
                return None;
            }
            self.node = Some(node);
            self.slots = node.scan();
            self.pos = 0;
        }
    }
}

/// The node count of a radix tree holding these sorted 16-byte keys, from byte `depth` on:
/// a compressed node for a run shared by every key, a branching node where they differ, and a
/// leaf per key.
fn rax_nodes(keys: &[[u8; 16]], depth: usize) -> usize {
    if depth >= 16 {
        return 1;
    }
    let (Some(first), Some(last)) = (keys.first(), keys.last()) else {
        return 0;
    };
    let shared = (depth..16).take_while(|&i| first[i] == last[i]).count();
    if shared > 0 {
        return 1 + rax_nodes(keys, depth + shared);
    }
    let mut n = 1;
    let mut rest = keys;
    while let Some(head) = rest.first() {
        let split = rest
            .iter()
            .position(|k| k[depth] != head[depth])
            .unwrap_or(rest.len());
        let (group, tail) = rest.split_at(split);
        n += rax_nodes(group, depth + 1);
        rest = tail;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Stream {
        /// The memory estimate recomputed from scratch, to check the running counters.
        fn recount(&self) -> usize {
            let nodes: usize = self
                .entries
                .nodes
                .values()
                .map(|n| NODE_OVERHEAD + n.mem_usage())
                .sum();
            let groups: usize = self
                .groups
                .iter()
                .map(|(name, g)| GROUP_OVERHEAD + alloc_size(name.len()) + g.recount())
                .sum();
            nodes + groups
        }
    }

    #[test]
    fn memory_counter_follows_every_change() {
        let mut s = Stream::new();
        let l = limits(4);
        for i in 1..=20 {
            s.entries_mut()
                .append(StreamId::new(i, 0), &["field", "value"], &l);
        }
        assert_eq!(s.mem_usage(), s.recount());
        s.create_group(b"g", StreamId::MIN, Some(0));
        s.create_group(b"h", StreamId::MIN, None);
        s.with_group(b"g", |e, g| {
            g.create_consumer(b"a", 1);
            g.create_consumer(b"b", 1);
            let ids: Vec<StreamId> = e
                .range(StreamId::MIN, StreamId::MAX, false)
                .map(|x| x.id)
                .collect();
            for (i, id) in ids.iter().enumerate() {
                g.deliver(*id, if i % 2 == 0 { b"a" } else { b"b" }, 5);
            }
            g.deliver(ids[0], b"b", 6);
            g.ack(ids[1]);
            g.claim(StreamId::new(99, 0), b"a", 7, None, true);
        });
        assert_eq!(s.mem_usage(), s.recount());
        s.with_group(b"g", |_, g| g.delete_consumer(b"a"));
        assert_eq!(s.mem_usage(), s.recount());
        s.entries_mut()
            .delete(&[StreamId::new(5, 0), StreamId::new(6, 0)]);
        s.entries_mut().trim(Trim::MaxLen(7), false, 0);
        assert_eq!(s.mem_usage(), s.recount());
        s.destroy_group(b"g");
        s.destroy_group(b"h");
        s.entries_mut().trim(Trim::MaxLen(0), false, 0);
        assert_eq!(s.mem_usage(), 0);
    }

    fn limits(entries: usize) -> TypeLimits {
        TypeLimits {
            stream_node_max_entries: entries,
            ..TypeLimits::default()
        }
    }

    fn ids(r: Range<'_>) -> Vec<u64> {
        r.map(|e| e.id.ms).collect()
    }

    fn stream(n: u64, per_node: usize) -> Entries {
        let mut e = Entries::default();
        for i in 1..=n {
            e.append(StreamId::new(i, 0), &["f", "v"], &limits(per_node));
        }
        e
    }

    #[test]
    fn ranges_cross_nodes_both_ways() {
        let e = stream(10, 3);
        assert_eq!(e.node_count(), 4);
        let all = StreamId::MAX;
        assert_eq!(
            ids(e.range(StreamId::new(2, 0), StreamId::new(8, 0), false)),
            [2, 3, 4, 5, 6, 7, 8]
        );
        assert_eq!(
            ids(e.range(StreamId::new(2, 0), StreamId::new(8, 0), true)),
            [8, 7, 6, 5, 4, 3, 2]
        );
        assert_eq!(ids(e.range(StreamId::MIN, all, false)).len(), 10);
        assert_eq!(
            ids(e.range(StreamId::new(9, 0), StreamId::new(2, 0), false)),
            Vec::<u64>::new()
        );
    }

    #[test]
    fn deletes_flag_entries_and_drop_empty_nodes() {
        let mut e = stream(6, 3);
        let before = e.mem;
        assert_eq!(e.delete(&[StreamId::new(1, 0), StreamId::new(1, 0)]), 1);
        assert_eq!(e.first_id(), StreamId::new(2, 0));
        assert_eq!(e.delete(&[StreamId::new(2, 0), StreamId::new(3, 0)]), 2);
        assert_eq!(e.node_count(), 1);
        assert!(e.mem < before);
        assert_eq!(e.max_deleted(), StreamId::new(3, 0));
        assert_eq!(ids(e.range(StreamId::MIN, StreamId::MAX, false)), [4, 5, 6]);
    }

    #[test]
    fn trims_like_redis() {
        let mut e = stream(10, 3);
        // Approximate: only whole nodes (of 3) go.
        assert_eq!(e.trim(Trim::MaxLen(5), true, 0), 3);
        assert_eq!(e.len(), 7);
        assert_eq!(e.trim(Trim::MaxLen(5), false, 0), 2);
        assert_eq!(
            ids(e.range(StreamId::MIN, StreamId::MAX, false)),
            [6, 7, 8, 9, 10]
        );
        assert_eq!(e.trim(Trim::MinId(StreamId::new(9, 0)), false, 0), 3);
        assert_eq!(e.first_id(), StreamId::new(9, 0));
    }

    #[test]
    fn radix_nodes_match_redis_for_simple_trees() {
        assert_eq!(Entries::default().radix_tree_nodes(), 1);
        assert_eq!(stream(1, 100).radix_tree_nodes(), 2);
        // Keys 1-0 and 3-0 differ in byte 7: a run of 7 bytes, a branch, then for each key a
        // run of the 8 remaining bytes and a leaf.
        assert_eq!(stream(3, 2).radix_tree_nodes(), 6);
    }
}
