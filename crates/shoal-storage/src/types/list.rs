//! List values: a chain of pack nodes, Shoal's counterpart of Redis's quicklist.
//!
//! A list is a double-ended ring of [`Pack`] nodes. Pushes and pops touch only the first or last
//! node, so they are O(1) apart from moving bytes inside one bounded node (as listpack does).
//! Index-based operations (`LINDEX`, `LSET`, `LINSERT`) walk the chain from the nearer end and
//! skip whole nodes by their element counts. A node's size is bounded by
//! `list-max-listpack-size`: positive values cap the element count (and, like Redis's
//! `SIZE_SAFETY_LIMIT`, 8 KiB), -1..-5 cap its bytes at 4..64 KiB. The limit is passed to every
//! operation that may grow a node; a list never reads configuration itself.
//!
//! Memory. An element costs its pack encoding (two or three bytes beyond its text, integers
//! less) and nothing else; a node costs one ring slot and its buffer's slack. A node that stops
//! being an end of the chain gives its growth slack back, so long lists hold almost no spare
//! capacity. The heap figure `mem_usage` reports is a running counter updated on every change.
//!
//! Redis 7.0 reports every list as `quicklist`, however small, and so does Shoal.

use std::collections::VecDeque;

use super::pack::{Item, Pack};
use crate::entry::{alloc_size, parse_canonical_i64};

/// Node byte limits for `list-max-listpack-size` -1 to -5.
const NODE_BYTES: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
/// With a count limit, a node still stops growing at this many bytes (Redis's
/// `SIZE_SAFETY_LIMIT`), so a count limit cannot build huge nodes out of large elements.
const SAFETY_BYTES: usize = 8192;
/// The per-element overhead added to a value's length when checking whether it fits a node; an
/// overestimate, as Redis's `SIZE_ESTIMATE_OVERHEAD`.
const ELEMENT_OVERHEAD: usize = 8;

/// One end of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The first element (`LEFT`).
    Head,
    /// The last element (`RIGHT`).
    Tail,
}

/// A list value.
#[derive(Debug, Default)]
pub struct List {
    /// Never holds an empty node.
    nodes: VecDeque<Pack>,
    /// Number of elements, the sum of the nodes' counts.
    len: usize,
    /// Heap bytes of the nodes' buffers, the sum of their `mem_usage`.
    node_mem: usize,
}

impl Clone for List {
    /// Clones the nodes (with exact capacities) and recomputes the memory counter for them.
    fn clone(&self) -> List {
        let nodes: VecDeque<Pack> = self.nodes.iter().cloned().collect();
        let node_mem = nodes.iter().map(Pack::mem_usage).sum();
        List {
            nodes,
            len: self.len,
            node_mem,
        }
    }
}

/// Where an element sits: its node and its byte position in that node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    node: usize,
    pos: usize,
}

/// A value searched for in a list, with its integer form computed once: elements that are
/// canonical integers are stored as integers, so only those can equal an integer needle, and only
/// byte strings can equal any other needle.
struct Needle<'a> {
    bytes: &'a [u8],
    int: Option<i64>,
}

impl<'a> Needle<'a> {
    fn new(bytes: &'a [u8]) -> Needle<'a> {
        Needle {
            bytes,
            int: parse_canonical_i64(bytes),
        }
    }

    fn matches(&self, item: Item<'_>) -> bool {
        match item {
            Item::Int(n) => self.int == Some(n),
            Item::Bytes(b) => b == self.bytes,
        }
    }
}

/// True when `node` may take one more element of `value_len` bytes under limit `fill`.
fn fits(node: &Pack, value_len: usize, fill: i64) -> bool {
    let size = node
        .byte_len()
        .saturating_add(value_len)
        .saturating_add(ELEMENT_OVERHEAD);
    if fill < 0 {
        let level = (fill.unsigned_abs().min(NODE_BYTES.len() as u64) - 1) as usize;
        size <= NODE_BYTES[level]
    } else {
        size <= SAFETY_BYTES && (node.len() as u64) < fill as u64
    }
}

/// The position of the `k`-th element of a pack, walking from its nearer end.
fn nth_in(pack: &Pack, k: usize) -> Option<usize> {
    if k < pack.len() / 2 {
        pack.nth(k as i64)
    } else {
        pack.nth(k as i64 - pack.len() as i64)
    }
}

/// Appends an element to a pack, keeping integers as integers.
fn push_item(pack: &mut Pack, item: Item<'_>) {
    match item {
        Item::Int(n) => pack.push_int(n),
        Item::Bytes(b) => pack.push_back(b),
    }
}

impl List {
    /// An empty value.
    pub fn new() -> List {
        List::default()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes held, in O(1): the nodes' buffers and the ring that holds them.
    pub fn mem_usage(&self) -> usize {
        self.node_mem + alloc_size(self.nodes.capacity() * std::mem::size_of::<Pack>())
    }

    /// Redis 7.0's `OBJECT ENCODING` name: every list is a quicklist.
    pub fn encoding_name(&self) -> &'static str {
        "quicklist"
    }

    /// Number of nodes in the chain (for tests and `DEBUG`-style introspection).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Adds an element at one end, starting a new node when the end node is full under `fill`
    /// (`list-max-listpack-size`).
    pub fn push(&mut self, end: End, value: &[u8], fill: i64) {
        let i = match end {
            End::Head => 0,
            End::Tail => self.nodes.len().wrapping_sub(1),
        };
        if self
            .nodes
            .get(i)
            .is_some_and(|n| fits(n, value.len(), fill))
        {
            self.edit(i, |p| match end {
                End::Head => p.push_front(value),
                End::Tail => p.push_back(value),
            });
            return;
        }
        let at = match end {
            End::Head => 0,
            End::Tail => self.nodes.len(),
        };
        self.new_node(at, value);
    }

    /// Removes and returns the element at one end.
    pub fn pop(&mut self, end: End) -> Option<Vec<u8>> {
        let i = match end {
            End::Head => 0,
            End::Tail => self.nodes.len().checked_sub(1)?,
        };
        let value = self.edit(i, |p| {
            let pos = match end {
                End::Head => p.first(),
                End::Tail => p.last(),
            }?;
            let value = p.get(pos)?.to_vec();
            p.remove_at(pos, 1);
            Some(value)
        })??;
        self.drop_if_empty(i);
        Some(value)
    }

    /// The element at `index` (0 is the head).
    pub fn get(&self, index: usize) -> Option<Item<'_>> {
        let (i, pos) = self.locate(index)?;
        self.nodes.get(i)?.get(pos)
    }

    /// Replaces the element at `index`; false when the index is out of range.
    pub fn set(&mut self, index: usize, value: &[u8], fill: i64) -> bool {
        let Some((i, pos)) = self.locate(index) else {
            return false;
        };
        let Some(node) = self.nodes.get(i) else {
            return false;
        };
        if node.len() == 1 || fits(node, value.len(), fill) {
            self.edit(i, |p| p.replace_at(pos, value));
        } else {
            // The node has other elements and no room: take the old element out and insert the
            // new one where it was, which moves or splits as an insertion would.
            self.edit(i, |p| {
                p.remove_at(pos, 1);
            });
            self.insert_in_node(i, pos, value, fill);
        }
        true
    }

    /// Inserts `value` before (or, with `after`, after) the first element equal to `pivot`,
    /// searching from the head. Returns false when there is no such element.
    pub fn insert_by_pivot(&mut self, pivot: &[u8], value: &[u8], after: bool, fill: i64) -> bool {
        match self.find(pivot) {
            Some(place) => {
                self.insert_at(place, value, after, fill);
                true
            }
            None => false,
        }
    }

    /// Removes up to `limit` elements equal to `value` (every one when `limit` is 0), scanning
    /// from `from`. Returns how many were removed.
    pub fn remove_matching(&mut self, value: &[u8], limit: usize, from: End) -> usize {
        let needle = Needle::new(value);
        let limit = if limit == 0 { usize::MAX } else { limit };
        let mut removed = 0;
        let count = self.nodes.len();
        for k in 0..count {
            if removed >= limit {
                break;
            }
            let i = match from {
                End::Head => k,
                End::Tail => count - 1 - k,
            };
            self.edit(i, |p| {
                let mut pos = match from {
                    End::Head => p.first(),
                    End::Tail => p.last(),
                };
                while let Some(q) = pos {
                    if removed >= limit {
                        break;
                    }
                    let hit = p.get(q).is_some_and(|item| needle.matches(item));
                    pos = match (from, hit) {
                        (End::Head, true) => p.remove_at(q, 1),
                        (End::Head, false) => p.next(q),
                        (End::Tail, true) => {
                            // The element before `q` keeps its position when `q` goes.
                            let prev = p.prev(q);
                            p.remove_at(q, 1);
                            prev
                        }
                        (End::Tail, false) => p.prev(q),
                    };
                    removed += usize::from(hit);
                }
            });
        }
        if removed > 0 {
            self.drop_empty_nodes();
        }
        removed
    }

    /// Removes the first `n` elements (all of them when `n` exceeds the length).
    pub fn remove_head(&mut self, mut n: usize) {
        while n > 0 {
            let Some(first) = self.nodes.front() else {
                return;
            };
            if first.len() <= n {
                n -= first.len();
                self.remove_node(0);
            } else {
                self.edit(0, |p| {
                    p.remove_at(p.first().unwrap_or(0), n);
                });
                return;
            }
        }
    }

    /// Removes the last `n` elements (all of them when `n` exceeds the length).
    pub fn remove_tail(&mut self, mut n: usize) {
        while n > 0 {
            let Some(last) = self.nodes.back() else {
                return;
            };
            let i = self.nodes.len() - 1;
            if last.len() <= n {
                n -= last.len();
                self.remove_node(i);
            } else {
                self.edit(i, |p| {
                    if let Some(pos) = p.nth(-(n as i64)) {
                        p.remove_at(pos, n);
                    }
                });
                return;
            }
        }
    }

    /// Iterates from the element at `index` towards the tail.
    pub fn iter_from(&self, index: usize) -> Iter<'_> {
        let at = self.locate(index);
        Iter {
            list: self,
            node: at.map_or(self.nodes.len(), |(i, _)| i),
            pack: at.and_then(|(i, _)| self.nodes.get(i)),
            pos: at.map_or(0, |(_, p)| p),
            left: self.len.saturating_sub(index),
            forward: true,
        }
    }

    /// Iterates from the element at `index` towards the head.
    pub fn iter_rev_from(&self, index: usize) -> Iter<'_> {
        let at = self.locate(index);
        Iter {
            list: self,
            node: at.map_or(0, |(i, _)| i),
            pack: at.and_then(|(i, _)| self.nodes.get(i)),
            pos: at.map_or(0, |(_, p)| p),
            left: if at.is_some() { index + 1 } else { 0 },
            forward: false,
        }
    }

    /// Calls `f` on up to `count` elements from the one at `index` towards the tail: the
    /// iteration of [`List::iter_from`] as one tight loop per node, for replies that read many
    /// elements (`LRANGE`).
    pub fn for_each_from(&self, index: usize, count: usize, mut f: impl FnMut(Item<'_>)) {
        let Some((mut i, mut pos)) = self.locate(index) else {
            return;
        };
        let mut left = count;
        while left > 0 {
            let Some(pack) = self.nodes.get(i) else {
                return;
            };
            let end = pack.end();
            while left > 0 && pos < end {
                let Some((item, next)) = pack.read(pos) else {
                    return;
                };
                f(item);
                pos = next;
                left -= 1;
            }
            i += 1;
            pos = pack.first().unwrap_or(0);
        }
    }

    /// Iterates from the head.
    pub fn iter(&self) -> Iter<'_> {
        self.iter_from(0)
    }

    /// Iterates from the tail.
    pub fn iter_rev(&self) -> Iter<'_> {
        self.iter_rev_from(self.len.saturating_sub(1))
    }

    /// The index of every element equal to `value` among the first `scan` elements met walking
    /// from `from` (every element when `scan` is 0), in the order met.
    pub fn positions<'a>(
        &'a self,
        value: &'a [u8],
        from: End,
        scan: usize,
    ) -> impl Iterator<Item = usize> + 'a {
        let needle = Needle::new(value);
        let len = self.len;
        let scan = if scan == 0 { len } else { scan };
        let iter = match from {
            End::Head => self.iter(),
            End::Tail => self.iter_rev(),
        };
        iter.take(scan)
            .enumerate()
            .filter(move |(_, item)| needle.matches(*item))
            .map(move |(k, _)| match from {
                End::Head => k,
                End::Tail => len - 1 - k,
            })
    }

    /// The node and byte position of the first element equal to `value`, searching from the
    /// head: a place for [`List::insert_at`], valid until the list changes.
    pub fn find(&self, value: &[u8]) -> Option<Place> {
        let needle = Needle::new(value);
        self.nodes.iter().enumerate().find_map(|(node, pack)| {
            let mut pos = pack.first();
            while let Some(p) = pos {
                if needle.matches(pack.get(p)?) {
                    return Some(Place { node, pos: p });
                }
                pos = pack.next(p);
            }
            None
        })
    }

    /// Inserts `value` before (or, with `after`, after) the element at `place`, found by
    /// [`List::find`] on the unchanged list.
    pub fn insert_at(&mut self, place: Place, value: &[u8], after: bool, fill: i64) {
        let Place { node: i, pos } = place;
        let at = match (after, self.nodes.get(i)) {
            (true, Some(node)) => node.next(pos).unwrap_or(node.end()),
            _ => pos,
        };
        self.insert_in_node(i, at, value, fill);
    }

    /// Finds the node and byte position of the element at `index`, walking from the nearer end
    /// and skipping whole nodes.
    fn locate(&self, index: usize) -> Option<(usize, usize)> {
        if index >= self.len {
            return None;
        }
        if index < self.len / 2 {
            let mut rest = index;
            for (i, node) in self.nodes.iter().enumerate() {
                if rest < node.len() {
                    return Some((i, nth_in(node, rest)?));
                }
                rest -= node.len();
            }
        } else {
            let mut rest = self.len - 1 - index;
            for (i, node) in self.nodes.iter().enumerate().rev() {
                if rest < node.len() {
                    return Some((i, nth_in(node, node.len() - 1 - rest)?));
                }
                rest -= node.len();
            }
        }
        None
    }

    /// Inserts `value` at byte position `pos` of node `i` (its length for the end). When the node
    /// is full the element goes to a neighbour with room, a new node, or the node is split at
    /// `pos`, as quicklist does.
    fn insert_in_node(&mut self, i: usize, pos: usize, value: &[u8], fill: i64) {
        let Some(node) = self.nodes.get(i) else {
            self.new_node(self.nodes.len(), value);
            return;
        };
        if fits(node, value.len(), fill) {
            self.edit(i, |p| p.insert_at(pos, value));
            return;
        }
        let at_head = node.first().is_none_or(|f| pos <= f);
        let at_tail = pos >= node.end();
        if at_tail && self.room(i + 1, value, fill) {
            self.edit(i + 1, |p| p.push_front(value));
        } else if at_head && i > 0 && self.room(i - 1, value, fill) {
            self.edit(i - 1, |p| p.push_back(value));
        } else if at_tail {
            self.new_node(i + 1, value);
        } else if at_head {
            self.new_node(i, value);
        } else {
            let tail = self.edit(i, |p| split_off(p, pos)).unwrap_or_default();
            self.node_mem += tail.mem_usage();
            self.len += tail.len();
            self.nodes.insert(i + 1, tail);
            if self.room(i, value, fill) {
                self.edit(i, |p| p.push_back(value));
            } else if self.room(i + 1, value, fill) {
                self.edit(i + 1, |p| p.push_front(value));
            } else {
                self.new_node(i + 1, value);
            }
        }
    }

    /// True when node `i` exists and has room for `value`.
    fn room(&self, i: usize, value: &[u8], fill: i64) -> bool {
        self.nodes
            .get(i)
            .is_some_and(|n| fits(n, value.len(), fill))
    }

    /// Runs `f` on node `i`, keeping the length and memory counters in step.
    fn edit<R>(&mut self, i: usize, f: impl FnOnce(&mut Pack) -> R) -> Option<R> {
        let node = self.nodes.get_mut(i)?;
        let (mem, len) = (node.mem_usage(), node.len());
        let out = f(node);
        self.node_mem = self.node_mem + node.mem_usage() - mem;
        self.len = self.len + node.len() - len;
        Some(out)
    }

    /// Adds a node holding just `value` at chain position `at`.
    fn new_node(&mut self, at: usize, value: &[u8]) {
        let mut node = Pack::new();
        node.push_back(value);
        self.node_mem += node.mem_usage();
        self.len += 1;
        if self.nodes.capacity() == 0 {
            // Most lists are short and stay in one node: a ring of one slot instead of the
            // default four saves 96 bytes per list.
            self.nodes.reserve_exact(1);
        }
        self.nodes.insert(at.min(self.nodes.len()), node);
    }

    /// Removes node `i` and its elements.
    fn remove_node(&mut self, i: usize) {
        if let Some(node) = self.nodes.remove(i) {
            self.node_mem -= node.mem_usage();
            self.len -= node.len();
        }
        self.release_ring();
    }

    fn drop_if_empty(&mut self, i: usize) {
        if self.nodes.get(i).is_some_and(Pack::is_empty) {
            self.remove_node(i);
        }
    }

    /// Removes every emptied node in one pass (after a scan that may empty many).
    fn drop_empty_nodes(&mut self) {
        let freed: usize = self
            .nodes
            .iter()
            .filter(|n| n.is_empty())
            .map(Pack::mem_usage)
            .sum();
        self.node_mem -= freed;
        self.nodes.retain(|n| !n.is_empty());
        self.release_ring();
    }

    /// Gives back the ring's buffer when the list has become empty, or most of it when it holds
    /// far fewer nodes than it once did.
    fn release_ring(&mut self) {
        if self.nodes.capacity() > 2 * self.nodes.len() + 8 {
            self.nodes.shrink_to_fit();
        }
    }
}

/// Moves the elements from byte position `pos` on out of `pack` into a new pack.
fn split_off(pack: &mut Pack, pos: usize) -> Pack {
    let mut tail = Pack::new();
    let mut at = Some(pos);
    while let Some(p) = at {
        let Some(item) = pack.get(p) else {
            break;
        };
        push_item(&mut tail, item);
        at = pack.next(p);
    }
    pack.remove_at(pos, tail.len());
    tail
}

/// Walks a list's elements in one direction, crossing node boundaries.
#[derive(Clone)]
pub struct Iter<'a> {
    list: &'a List,
    /// Index of the current node in the chain.
    node: usize,
    /// The current node; `None` when done.
    pack: Option<&'a Pack>,
    /// Position in the current node of the next element to yield.
    pos: usize,
    /// Elements still to yield.
    left: usize,
    forward: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Item<'a>;

    #[inline]
    fn next(&mut self) -> Option<Item<'a>> {
        let pack = self.pack?;
        if self.forward {
            let Some((item, next)) = pack.read(self.pos) else {
                self.pack = None;
                return None;
            };
            if next < pack.end() {
                self.pos = next;
            } else {
                self.node += 1;
                self.pack = self.list.nodes.get(self.node);
                self.pos = self.pack.and_then(Pack::first).unwrap_or(0);
            }
            self.left = self.left.saturating_sub(1);
            return Some(item);
        }
        let Some(item) = pack.get(self.pos) else {
            self.pack = None;
            return None;
        };
        match pack.prev(self.pos) {
            Some(prev) => self.pos = prev,
            None => {
                self.pack = match self.node.checked_sub(1) {
                    Some(i) => {
                        self.node = i;
                        self.list.nodes.get(i)
                    }
                    None => None,
                };
                self.pos = self.pack.and_then(Pack::last).unwrap_or(0);
            }
        }
        self.left = self.left.saturating_sub(1);
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks the counters against a full recount and the contents against a model.
    fn check(list: &List, model: &VecDeque<Vec<u8>>) {
        assert_eq!(list.len(), model.len());
        assert_eq!(
            list.node_mem,
            list.nodes.iter().map(Pack::mem_usage).sum::<usize>()
        );
        assert!(list.nodes.iter().all(|n| !n.is_empty()));
        let fwd: Vec<Vec<u8>> = list.iter().map(Item::to_vec).collect();
        assert_eq!(fwd, model.iter().cloned().collect::<Vec<_>>());
        let mut rev: Vec<Vec<u8>> = list.iter_rev().map(Item::to_vec).collect();
        rev.reverse();
        assert_eq!(rev, fwd);
    }

    /// A small deterministic generator, so failures reproduce.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) as usize) % n.max(1)
        }
    }

    fn value(rng: &mut Lcg) -> Vec<u8> {
        match rng.next(4) {
            0 => rng.next(100).to_string().into_bytes(),
            1 => vec![b'a' + rng.next(3) as u8; 1 + rng.next(3)],
            2 => vec![b'x'; rng.next(300)],
            _ => format!("-{}", rng.next(1 << 20)).into_bytes(),
        }
    }

    #[test]
    fn random_operations_match_a_model_under_every_fill() {
        for fill in [-5, -2, -1, 0, 1, 3, 128] {
            let mut rng = Lcg((fill as u64).wrapping_add(7));
            let mut list = List::new();
            let mut model: VecDeque<Vec<u8>> = VecDeque::new();
            for _ in 0..3000 {
                let v = value(&mut rng);
                match rng.next(10) {
                    0 | 1 => {
                        list.push(End::Head, &v, fill);
                        model.push_front(v);
                    }
                    2 | 3 => {
                        list.push(End::Tail, &v, fill);
                        model.push_back(v);
                    }
                    4 => assert_eq!(list.pop(End::Head), model.pop_front()),
                    5 => assert_eq!(list.pop(End::Tail), model.pop_back()),
                    6 => {
                        let i = rng.next(model.len() + 1);
                        let ok = list.set(i, &v, fill);
                        assert_eq!(ok, i < model.len());
                        if ok {
                            model[i] = v;
                        }
                    }
                    7 => {
                        let pivot = value(&mut rng);
                        let after = rng.next(2) == 1;
                        let found = model.iter().position(|e| *e == pivot);
                        assert_eq!(
                            list.insert_by_pivot(&pivot, &v, after, fill),
                            found.is_some()
                        );
                        if let Some(p) = found {
                            model.insert(p + usize::from(after), v);
                        }
                    }
                    8 => {
                        let limit = rng.next(3);
                        let from = if rng.next(2) == 0 {
                            End::Head
                        } else {
                            End::Tail
                        };
                        let target = value(&mut rng);
                        let mut expected = 0;
                        let lim = if limit == 0 { usize::MAX } else { limit };
                        let idx: Vec<usize> = match from {
                            End::Head => (0..model.len()).collect(),
                            End::Tail => (0..model.len()).rev().collect(),
                        };
                        let mut drop = Vec::new();
                        for i in idx {
                            if expected < lim && model[i] == target {
                                drop.push(i);
                                expected += 1;
                            }
                        }
                        drop.sort_unstable();
                        for i in drop.into_iter().rev() {
                            model.remove(i);
                        }
                        assert_eq!(list.remove_matching(&target, limit, from), expected);
                    }
                    _ => {
                        let n = rng.next(5);
                        if rng.next(2) == 0 {
                            list.remove_head(n);
                            model.drain(..n.min(model.len()));
                        } else {
                            list.remove_tail(n);
                            let keep = model.len().saturating_sub(n);
                            model.truncate(keep);
                        }
                    }
                }
                check(&list, &model);
            }
            for i in 0..model.len() {
                assert_eq!(list.get(i).map(Item::to_vec).as_ref(), model.get(i));
                assert_eq!(
                    list.iter_from(i).map(Item::to_vec).collect::<Vec<_>>(),
                    model.range(i..).cloned().collect::<Vec<_>>()
                );
                assert_eq!(list.iter_from(i).len(), model.len() - i);
                assert_eq!(list.iter_rev_from(i).len(), i + 1);
                let count = rng.next(model.len() + 2);
                let mut seen = Vec::new();
                list.for_each_from(i, count, |item| seen.push(item.to_vec()));
                assert_eq!(
                    seen,
                    model.range(i..).take(count).cloned().collect::<Vec<_>>()
                );
            }
            assert!(list.get(model.len()).is_none());
        }
    }

    #[test]
    fn nodes_respect_their_limits() {
        let mut list = List::new();
        for i in 0..1000 {
            list.push(End::Tail, format!("element:{i}").as_bytes(), 5);
        }
        assert_eq!(list.node_count(), 200);
        let mut list = List::new();
        for i in 0..10_000 {
            list.push(End::Head, format!("element:{i}").as_bytes(), -1);
        }
        assert!(list.nodes.iter().all(|n| n.byte_len() <= 4096));
        assert!(list.node_count() < 50, "{} nodes", list.node_count());
        // An element larger than any node still gets one of its own.
        list.push(End::Tail, &vec![b'z'; 100_000], -1);
        assert_eq!(list.get(10_000).map(|i| i.text_len()), Some(100_000));
    }

    #[test]
    fn long_lists_cost_little_beyond_their_elements() {
        let mut list = List::new();
        let n = 100_000;
        let mut data = 0;
        for i in 0..n {
            let v = format!("v{i:07}");
            data += v.len();
            list.push(End::Tail, v.as_bytes(), -2);
        }
        // Each 8-byte element costs 10 bytes in a pack; node slack and the ring stay small.
        let per_element = list.mem_usage() as f64 / n as f64;
        assert!(per_element < 10.5, "{per_element} bytes per element");
        assert!(data < list.mem_usage());
    }

    #[test]
    fn positions_count_from_the_head_in_both_directions() {
        let mut list = List::new();
        for v in ["a", "b", "a", "1", "a"] {
            list.push(End::Tail, v.as_bytes(), 2);
        }
        assert_eq!(
            list.positions(b"a", End::Head, 0).collect::<Vec<_>>(),
            [0, 2, 4]
        );
        assert_eq!(
            list.positions(b"a", End::Tail, 0).collect::<Vec<_>>(),
            [4, 2, 0]
        );
        assert_eq!(list.positions(b"1", End::Tail, 0).collect::<Vec<_>>(), [3]);
        assert_eq!(list.positions(b"01", End::Head, 0).count(), 0);
        assert_eq!(list.positions(b"a", End::Tail, 2).collect::<Vec<_>>(), [4]);
        assert_eq!(
            list.positions(b"a", End::Head, 3).collect::<Vec<_>>(),
            [0, 2]
        );
    }

    #[test]
    fn clones_recount_their_memory() {
        let mut list = List::new();
        for i in 0..500 {
            list.push(End::Head, format!("{i}x").as_bytes(), -2);
        }
        let copy = list.clone();
        assert_eq!(
            copy.node_mem,
            copy.nodes.iter().map(Pack::mem_usage).sum::<usize>()
        );
        assert_eq!(
            copy.iter().map(Item::to_vec).collect::<Vec<_>>(),
            list.iter().map(Item::to_vec).collect::<Vec<_>>()
        );
    }
}
