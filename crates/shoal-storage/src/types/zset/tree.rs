//! The ordered index of a large sorted set: an order-statistic B+tree of (score, member) pairs.
//!
//! Elements live only in the leaves, sorted by (score, member bytes). Every inner node keeps,
//! for each child, the child's smallest element and its element count, so a descent finds an
//! element, its rank or the element at a rank in O(log n), and a cursor walks ranges in order
//! from any rank. Redis uses a skiplist with spans for the same job; a B+tree packs 24-byte
//! elements densely in leaves instead of one allocation per element, which keeps the memory per
//! member below Redis's.
//!
//! Leaves split in half, except when the new element lands at either end of a full leaf: then
//! the old leaf stays full and the new one starts with that element, so ascending (or
//! descending) insertions, the common case of time-ordered scores, leave full leaves behind.
//! Nodes that fall below a quarter full merge with a neighbour when the two fit in one node.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::entry::alloc_size;

/// Most elements in a leaf, and most children of an inner node.
const MAX: usize = 64;
/// A node smaller than this tries to merge with a neighbour.
const MIN: usize = MAX / 4;

/// One element: a score and a member shared with the member map.
#[derive(Clone, Debug)]
pub(crate) struct Elem {
    pub score: f64,
    pub member: Arc<[u8]>,
}

/// Orders by score, then by member bytes. Scores are never NaN, and `-0` equals `0` as in Redis.
pub(crate) fn compare(score: f64, member: &[u8], other: &Elem) -> Ordering {
    match score.partial_cmp(&other.score) {
        Some(Ordering::Equal) | None => member.cmp(&other.member),
        Some(o) => o,
    }
}

#[derive(Clone, Debug)]
enum Node {
    Leaf(Vec<Elem>),
    Inner(Box<Inner>),
}

#[derive(Clone, Debug)]
struct Inner {
    /// The smallest element of each child.
    mins: Vec<Elem>,
    /// The element count of each child's subtree.
    counts: Vec<usize>,
    children: Vec<Node>,
}

/// The tree, with its element count and the heap bytes of its nodes (members not included).
#[derive(Clone, Debug)]
pub(crate) struct Tree {
    root: Node,
    len: usize,
    heap: usize,
}

impl Default for Tree {
    fn default() -> Tree {
        Tree {
            root: Node::Leaf(Vec::new()),
            len: 0,
            heap: 0,
        }
    }
}

impl Tree {
    pub fn len(&self) -> usize {
        self.len
    }

    /// Heap bytes of the nodes.
    pub fn heap(&self) -> usize {
        self.heap
    }

    /// Inserts an element that is not in the tree yet.
    pub fn insert(&mut self, e: Elem) {
        let mut delta = 0isize;
        if let Some((right, rcount)) = insert_in(&mut self.root, e, &mut delta) {
            let left = std::mem::replace(&mut self.root, Node::Leaf(Vec::new()));
            let lcount = self.len + 1 - rcount;
            if let (Some(lmin), Some(rmin)) = (first(&left).cloned(), first(&right).cloned()) {
                let inner = Inner {
                    mins: vec![lmin, rmin],
                    counts: vec![lcount, rcount],
                    children: vec![left, right],
                };
                delta += inner_bytes(&inner) as isize;
                self.root = Node::Inner(Box::new(inner));
            }
        }
        self.len += 1;
        self.heap = (self.heap as isize + delta) as usize;
    }

    /// Removes the element equal to (`score`, `member`); returns whether it was there.
    pub fn remove(&mut self, score: f64, member: &[u8]) -> bool {
        let mut delta = 0isize;
        let removed = remove_in(&mut self.root, score, member, &mut delta);
        if removed {
            self.removed(delta);
        }
        removed
    }

    /// Removes and returns the smallest element, or the largest (`last`). Walks down the edge
    /// of the tree without comparing anything.
    pub fn pop(&mut self, last: bool) -> Option<Elem> {
        let mut delta = 0isize;
        let e = pop_in(&mut self.root, last, &mut delta)?;
        self.removed(delta);
        Some(e)
    }

    /// Bookkeeping after one element left: the count, the node bytes, and the root, which is
    /// replaced by its only child so the tree gets shorter again.
    fn removed(&mut self, mut delta: isize) {
        self.len -= 1;
        if let Node::Inner(inner) = &mut self.root {
            if inner.children.len() == 1 {
                delta -= inner_bytes(inner) as isize;
                if let Some(child) = inner.children.pop() {
                    self.root = child;
                }
            }
        }
        self.heap = (self.heap as isize + delta) as usize;
    }

    /// The 0-based rank of (`score`, `member`), if present.
    pub fn rank(&self, score: f64, member: &[u8]) -> Option<usize> {
        let mut node = &self.root;
        let mut acc = 0;
        loop {
            match node {
                Node::Leaf(v) => {
                    return v
                        .binary_search_by(|x| compare(score, member, x).reverse())
                        .ok()
                        .map(|p| acc + p)
                }
                Node::Inner(inner) => {
                    let j = inner
                        .mins
                        .partition_point(|m| compare(score, member, m) != Ordering::Less);
                    let i = j.checked_sub(1)?;
                    acc += inner.counts[..i].iter().sum::<usize>();
                    node = inner.children.get(i)?;
                }
            }
        }
    }

    /// How many elements satisfy `before`, a predicate true for a prefix of the order and false
    /// after it (e.g. "score below the range's minimum"): the rank where the rest starts.
    pub fn partition(&self, before: impl Fn(&Elem) -> bool) -> usize {
        let mut node = &self.root;
        let mut acc = 0;
        loop {
            match node {
                Node::Leaf(v) => return acc + v.partition_point(&before),
                Node::Inner(inner) => {
                    let Some(i) = inner.mins.partition_point(&before).checked_sub(1) else {
                        return acc;
                    };
                    acc += inner.counts[..i].iter().sum::<usize>();
                    match inner.children.get(i) {
                        Some(c) => node = c,
                        None => return acc,
                    }
                }
            }
        }
    }

    /// A cursor over the elements starting at `rank`, ascending or (`rev`) descending.
    pub fn iter_from(&self, rank: usize, rev: bool) -> Iter<'_> {
        let mut stack = Vec::new();
        let mut node = &self.root;
        let mut rest = rank;
        if rank >= self.len {
            return Iter {
                stack,
                leaf: &[],
                pos: 0,
                rev,
            };
        }
        loop {
            match node {
                Node::Leaf(v) => {
                    let pos = if rev { rest + 1 } else { rest };
                    return Iter {
                        stack,
                        leaf: v,
                        pos,
                        rev,
                    };
                }
                Node::Inner(inner) => {
                    let mut i = 0;
                    while i + 1 < inner.counts.len() && rest >= inner.counts[i] {
                        rest -= inner.counts[i];
                        i += 1;
                    }
                    stack.push((&**inner, i));
                    match inner.children.get(i) {
                        Some(c) => node = c,
                        None => {
                            return Iter {
                                stack: Vec::new(),
                                leaf: &[],
                                pos: 0,
                                rev,
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A cursor over the tree's elements from some rank.
pub(crate) struct Iter<'a> {
    stack: Vec<(&'a Inner, usize)>,
    leaf: &'a [Elem],
    /// Ascending: the index of the next element. Descending: one past it.
    pos: usize,
    rev: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Elem;

    fn next(&mut self) -> Option<&'a Elem> {
        loop {
            if self.rev {
                if self.pos > 0 {
                    self.pos -= 1;
                    return self.leaf.get(self.pos);
                }
            } else if self.pos < self.leaf.len() {
                self.pos += 1;
                return self.leaf.get(self.pos - 1);
            }
            self.step_leaf()?;
        }
    }
}

impl<'a> Iter<'a> {
    /// Moves to the next (or previous) leaf; `None` when there is none.
    fn step_leaf(&mut self) -> Option<()> {
        loop {
            let (inner, idx) = self.stack.last_mut()?;
            let inner: &'a Inner = inner;
            let next = if self.rev {
                idx.checked_sub(1)
            } else {
                Some(*idx + 1).filter(|i| *i < inner.children.len())
            };
            let Some(next) = next else {
                self.stack.pop();
                continue;
            };
            *idx = next;
            let mut node = inner.children.get(next)?;
            loop {
                match node {
                    Node::Leaf(v) => {
                        self.leaf = v;
                        self.pos = if self.rev { v.len() } else { 0 };
                        return Some(());
                    }
                    Node::Inner(child) => {
                        let i = if self.rev {
                            child.children.len() - 1
                        } else {
                            0
                        };
                        self.stack.push((&**child, i));
                        node = child.children.get(i)?;
                    }
                }
            }
        }
    }
}

fn first(node: &Node) -> Option<&Elem> {
    match node {
        Node::Leaf(v) => v.first(),
        Node::Inner(inner) => inner.mins.first(),
    }
}

/// Elements of a leaf, or children of an inner node.
fn width(node: &Node) -> usize {
    match node {
        Node::Leaf(v) => v.len(),
        Node::Inner(inner) => inner.children.len(),
    }
}

fn leaf_bytes(v: &Vec<Elem>) -> usize {
    alloc_size(v.capacity() * std::mem::size_of::<Elem>())
}

fn inner_bytes(inner: &Inner) -> usize {
    alloc_size(std::mem::size_of::<Inner>())
        + alloc_size(inner.mins.capacity() * std::mem::size_of::<Elem>())
        + alloc_size(inner.counts.capacity() * std::mem::size_of::<usize>())
        + alloc_size(inner.children.capacity() * std::mem::size_of::<Node>())
}

/// Gives back most of a leaf's spare capacity once it is a quarter full, counting the change.
fn shrink_leaf(v: &mut Vec<Elem>, delta: &mut isize) {
    if v.capacity() > 8 && v.len() < v.capacity() / 4 {
        let before = leaf_bytes(v) as isize;
        v.shrink_to(v.len() * 2);
        *delta += leaf_bytes(v) as isize - before;
    }
}

fn node_bytes(node: &Node) -> usize {
    match node {
        Node::Leaf(v) => leaf_bytes(v),
        Node::Inner(inner) => inner_bytes(inner),
    }
}

/// Where a full node splits: uneven at the ends (see the module doc), else in the middle.
fn split_point(len: usize, pos: usize) -> usize {
    if pos + 1 >= len {
        len - 1
    } else if pos == 0 {
        1
    } else {
        len / 2
    }
}

/// Inserts into the subtree; returns the new right sibling and its count when the node split.
///
/// Node bytes only change when a vector grows, shrinks or splits, so they are counted there
/// rather than before and after every step of the descent.
fn insert_in(node: &mut Node, e: Elem, delta: &mut isize) -> Option<(Node, usize)> {
    match node {
        Node::Leaf(v) => {
            let pos = v.partition_point(|x| compare(e.score, &e.member, x) == Ordering::Greater);
            if v.len() < v.capacity() {
                v.insert(pos, e);
                return None;
            }
            let before = leaf_bytes(v) as isize;
            v.insert(pos, e);
            let split = if v.len() > MAX {
                let right = v.split_off(split_point(v.len(), pos));
                // The insertion that overfilled the leaf doubled its capacity; give it back.
                v.shrink_to(MAX);
                *delta += leaf_bytes(&right) as isize;
                let n = right.len();
                Some((Node::Leaf(right), n))
            } else {
                None
            };
            *delta += leaf_bytes(v) as isize - before;
            split
        }
        Node::Inner(inner) => {
            let j = inner
                .mins
                .partition_point(|m| compare(e.score, &e.member, m) == Ordering::Greater);
            let i = j.saturating_sub(1);
            if j == 0 {
                if let Some(m) = inner.mins.first_mut() {
                    *m = e.clone();
                }
            }
            if let Some(c) = inner.counts.get_mut(i) {
                *c += 1;
            }
            let child_split = match inner.children.get_mut(i) {
                Some(child) => insert_in(child, e, delta),
                None => None,
            };
            let (right, rc) = child_split?;
            let before = inner_bytes(inner) as isize;
            if let Some(min) = first(&right).cloned() {
                inner.counts[i] -= rc;
                inner.mins.insert(i + 1, min);
                inner.counts.insert(i + 1, rc);
                inner.children.insert(i + 1, right);
            }
            let split = if inner.children.len() > MAX {
                let at = split_point(inner.children.len(), i + 1);
                let right = Inner {
                    mins: inner.mins.split_off(at),
                    counts: inner.counts.split_off(at),
                    children: inner.children.split_off(at),
                };
                inner.mins.shrink_to(MAX);
                inner.counts.shrink_to(MAX);
                inner.children.shrink_to(MAX);
                *delta += inner_bytes(&right) as isize;
                let n = right.counts.iter().sum();
                Some((Node::Inner(Box::new(right)), n))
            } else {
                None
            };
            *delta += inner_bytes(inner) as isize - before;
            split
        }
    }
}

/// Removes (`score`, `member`) from the subtree; returns whether it was there.
///
/// Removing never grows a vector, and an inner node's vectors keep their capacity when a child
/// goes, so bytes are only counted where a leaf shrinks and in [`fix_child`]'s merges.
fn remove_in(node: &mut Node, score: f64, member: &[u8], delta: &mut isize) -> bool {
    match node {
        Node::Leaf(v) => match v.binary_search_by(|x| compare(score, member, x).reverse()) {
            Ok(p) => {
                v.remove(p);
                shrink_leaf(v, delta);
                true
            }
            Err(_) => false,
        },
        Node::Inner(inner) => {
            let j = inner
                .mins
                .partition_point(|m| compare(score, member, m) != Ordering::Less);
            match j.checked_sub(1) {
                None => false,
                Some(i) => {
                    let found = match inner.children.get_mut(i) {
                        Some(child) => remove_in(child, score, member, delta),
                        None => false,
                    };
                    if found {
                        inner.counts[i] -= 1;
                        fix_child(inner, i, delta);
                    }
                    found
                }
            }
        }
    }
}

/// Removes the first (or `last`) element of the subtree.
fn pop_in(node: &mut Node, last: bool, delta: &mut isize) -> Option<Elem> {
    match node {
        Node::Leaf(v) => {
            let e = if last {
                v.pop()?
            } else if v.is_empty() {
                return None;
            } else {
                v.remove(0)
            };
            shrink_leaf(v, delta);
            Some(e)
        }
        Node::Inner(inner) => {
            let i = if last {
                inner.children.len().checked_sub(1)?
            } else {
                0
            };
            let e = pop_in(inner.children.get_mut(i)?, last, delta)?;
            if let Some(c) = inner.counts.get_mut(i) {
                *c -= 1;
            }
            fix_child(inner, i, delta);
            Some(e)
        }
    }
}

/// After a removal from child `i`: drops it when empty, refreshes its minimum, and merges it
/// with a neighbour when it became small and the two fit in one node.
fn fix_child(inner: &mut Inner, i: usize, delta: &mut isize) {
    let Some(child) = inner.children.get(i) else {
        return;
    };
    if width(child) == 0 {
        *delta -= node_bytes(child) as isize;
        inner.children.remove(i);
        inner.mins.remove(i);
        inner.counts.remove(i);
        return;
    }
    if let Some(min) = first(child).cloned() {
        inner.mins[i] = min;
    }
    if width(child) >= MIN {
        return;
    }
    let fits = |a: usize, b: usize| -> bool {
        match (inner.children.get(a), inner.children.get(b)) {
            (Some(x), Some(y)) => width(x) + width(y) <= MAX,
            _ => false,
        }
    };
    let left = if i + 1 < inner.children.len() && fits(i, i + 1) {
        i
    } else if i > 0 && fits(i - 1, i) {
        i - 1
    } else {
        return;
    };
    let right = inner.children.remove(left + 1);
    inner.mins.remove(left + 1);
    let rc = inner.counts.remove(left + 1);
    inner.counts[left] += rc;
    *delta -= node_bytes(&right) as isize;
    let target = &mut inner.children[left];
    let before = node_bytes(target) as isize;
    match (target, right) {
        (Node::Leaf(a), Node::Leaf(mut b)) => a.append(&mut b),
        (Node::Inner(a), Node::Inner(b)) => {
            let b = *b;
            a.mins.extend(b.mins);
            a.counts.extend(b.counts);
            a.children.extend(b.children);
        }
        // Siblings are always at the same depth.
        _ => {}
    }
    *delta += node_bytes(&inner.children[left]) as isize - before;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elem(score: f64, m: &str) -> Elem {
        Elem {
            score,
            member: Arc::from(m.as_bytes()),
        }
    }

    /// The node bytes counted from scratch, to check the running total.
    fn recount(node: &Node) -> usize {
        match node {
            Node::Leaf(v) => leaf_bytes(v),
            Node::Inner(inner) => {
                inner_bytes(inner) + inner.children.iter().map(recount).sum::<usize>()
            }
        }
    }

    fn check(t: &Tree, want: &[(f64, String)]) {
        assert_eq!(t.heap(), recount(&t.root));
        let got: Vec<(f64, String)> = t
            .iter_from(0, false)
            .map(|e| (e.score, String::from_utf8(e.member.to_vec()).unwrap()))
            .collect();
        assert_eq!(got, want);
        let mut rev: Vec<(f64, String)> = t
            .iter_from(t.len().saturating_sub(1), true)
            .map(|e| (e.score, String::from_utf8(e.member.to_vec()).unwrap()))
            .collect();
        rev.reverse();
        assert_eq!(rev, want);
        for (i, (s, m)) in want.iter().enumerate() {
            assert_eq!(t.rank(*s, m.as_bytes()), Some(i));
            assert_eq!(
                t.iter_from(i, false).next().unwrap().member[..],
                *m.as_bytes()
            );
            assert_eq!(
                t.iter_from(i, true).next().unwrap().member[..],
                *m.as_bytes()
            );
        }
    }

    #[test]
    fn random_inserts_and_removals_keep_order_ranks_and_counts() {
        let mut t = Tree::default();
        let mut model: Vec<(f64, String)> = Vec::new();
        let mut x: u64 = 12345;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..6000 {
            let v = rnd();
            let m = format!("m{}", v % 3000);
            let score = ((v >> 20) % 50) as f64;
            if let Some(p) = model.iter().position(|(_, mm)| *mm == m) {
                let (s, _) = model.remove(p);
                assert!(t.remove(s, m.as_bytes()));
            } else if round % 3 != 0 {
                t.insert(elem(score, &m));
                model.push((score, m));
                model.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap().then(a.1.cmp(&b.1)));
            }
            assert_eq!(t.len(), model.len());
            assert_eq!(t.heap(), recount(&t.root));
        }
        check(&t, &model);
        assert_eq!(
            t.partition(|e| e.score < 10.0),
            model.iter().filter(|(s, _)| *s < 10.0).count()
        );
        for (s, m) in model.clone() {
            assert!(t.remove(s, m.as_bytes()));
        }
        assert_eq!(t.len(), 0);
        assert!(!t.remove(1.0, b"nope"));
    }

    #[test]
    fn pops_take_the_ends_in_order() {
        let mut t = Tree::default();
        let mut model: Vec<(f64, String)> = Vec::new();
        for i in 0..5000u64 {
            let score = (i * 7919 % 5000) as f64;
            t.insert(elem(score, "m"));
            model.push((score, "m".to_string()));
        }
        model.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
        let mut lo = 0;
        let mut hi = model.len();
        let mut round = 0;
        while lo < hi {
            let last = round % 3 == 0;
            let e = t.pop(last).unwrap();
            let want = if last {
                hi -= 1;
                &model[hi]
            } else {
                lo += 1;
                &model[lo - 1]
            };
            assert_eq!(e.score, want.0);
            assert_eq!(t.len(), hi - lo);
            assert_eq!(t.heap(), recount(&t.root));
            if round % 500 == 0 {
                check(&t, &model[lo..hi]);
            }
            round += 1;
        }
        assert!(t.pop(false).is_none());
        assert!(t.pop(true).is_none());
        assert_eq!(t.heap(), recount(&t.root));
    }

    #[test]
    fn ascending_inserts_fill_leaves() {
        let mut t = Tree::default();
        for i in 0..10_000 {
            t.insert(elem(i as f64, "m"));
        }
        // Full leaves: about 24 bytes per element plus the inner nodes.
        assert!(t.heap() < 10_000 * 30, "{}", t.heap());
        assert_eq!(t.rank(5000.0, b"m"), Some(5000));
        assert_eq!(t.iter_from(9999, false).next().unwrap().score, 9999.0);
        assert!(t.iter_from(10_000, false).next().is_none());
    }
}
