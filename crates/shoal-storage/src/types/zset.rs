//! Sorted set values: member/score pairs in a pack while small, a member map plus an
//! order-statistic tree past the limits (Redis's "listpack" and "skiplist" encodings).
//!
//! Both encodings keep the elements ordered by (score, member bytes). The pack holds each element
//! as two entries, the member then the score's text, in that order; lookups scan it, which is
//! fine because it never holds more than `zset-max-listpack-entries` elements. The full encoding
//! maps members to scores in a hash table for O(1) `ZSCORE` and keeps the order in [`tree`],
//! whose ranks give `ZRANK` and range starts in O(log n). Members are shared between the two
//! (`Arc<[u8]>`), so each member's bytes are stored once. Like Redis, a sorted set never goes
//! back to the pack once converted. Scores are never NaN: commands reject NaN before storing.

mod tree;

use std::hash::BuildHasher;
use std::sync::Arc;

use foldhash::fast::FixedState;
use hashbrown::HashTable;

use super::pack::{Item, Pack};
use super::TypeLimits;
use crate::entry::alloc_size;
use tree::{Elem, Tree};

/// A sorted set value.
#[derive(Clone, Debug, Default)]
pub struct ZSet {
    repr: Repr,
}

#[derive(Clone, Debug)]
enum Repr {
    Pack(Pack),
    Full(Box<Full>),
}

impl Default for Repr {
    fn default() -> Repr {
        Repr::Pack(Pack::new())
    }
}

/// The full encoding: member -> score, and the order.
#[derive(Clone, Debug, Default)]
struct Full {
    map: HashTable<(Arc<[u8]>, f64)>,
    tree: Tree,
    /// Heap bytes of the shared members.
    member_heap: usize,
}

/// A fixed seed: the table's layout never leaves the process, and members are hashed again on
/// every resize anyway.
const HASHER: FixedState = FixedState::with_seed(0x5a5e_7001);

fn hash(member: &[u8]) -> u64 {
    HASHER.hash_one(member)
}

fn member_bytes(len: usize) -> usize {
    // An `Arc<[u8]>` allocation holds the two reference counts before the bytes.
    alloc_size(2 * std::mem::size_of::<usize>() + len)
}

impl Full {
    fn score(&self, member: &[u8]) -> Option<f64> {
        self.map
            .find(hash(member), |(m, _)| **m == *member)
            .map(|(_, s)| *s)
    }

    fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        let h = hash(member);
        if let Some((m, s)) = self.map.find_mut(h, |(m, _)| **m == *member) {
            let old = *s;
            if old != score {
                *s = score;
                let m = m.clone();
                self.tree.remove(old, &m);
                self.tree.insert(Elem { score, member: m });
            }
            return Some(old);
        }
        let m: Arc<[u8]> = Arc::from(member);
        self.member_heap += member_bytes(member.len());
        self.tree.insert(Elem {
            score,
            member: m.clone(),
        });
        self.map.insert_unique(h, (m, score), |(m, _)| hash(m));
        None
    }

    fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let Ok(slot) = self.map.find_entry(hash(member), |(m, _)| **m == *member) else {
            return None;
        };
        let ((m, score), _) = slot.remove();
        self.tree.remove(score, &m);
        self.forget(&m);
        Some(score)
    }

    /// Removes the lowest (or, `last`, the highest) element.
    fn pop(&mut self, last: bool) -> Option<Elem> {
        let e = self.tree.pop(last)?;
        // The map holds the same allocation, so a pointer comparison finds it.
        if let Ok(slot) = self
            .map
            .find_entry(hash(&e.member), |(m, _)| Arc::ptr_eq(m, &e.member))
        {
            slot.remove();
        }
        self.forget(&e.member);
        Some(e)
    }

    /// Bookkeeping once `member` left the map and the tree.
    fn forget(&mut self, member: &[u8]) {
        // hashbrown never shrinks by itself; Redis's dict does once it is mostly empty.
        if self.map.capacity() > 64 && self.map.len() < self.map.capacity() / 8 {
            self.map.shrink_to(self.map.len() * 2, |(m, _)| hash(m));
        }
        self.member_heap -= member_bytes(member.len());
    }

    fn mem_usage(&self) -> usize {
        // hashbrown keeps a power-of-two bucket count at most 7/8 full, one control byte each.
        let cap = self.map.capacity();
        let buckets = if cap == 0 {
            0
        } else {
            (cap * 8 / 7).next_power_of_two()
        };
        let entry = std::mem::size_of::<(Arc<[u8]>, f64)>() + 1;
        alloc_size(std::mem::size_of::<Full>())
            + alloc_size(buckets * entry)
            + self.tree.heap()
            + self.member_heap
    }
}

/// A member as the encodings hand it out: bytes, or an integer the pack stored compactly.
pub type Member<'a> = Item<'a>;

/// The score's text in the pack: integers as integers (stored compactly), others in the
/// shortest form that reads back as the same double.
/// Negative zero is stored as `0`: Redis's listpack reads its `-0` text back as the integer 0,
/// so small sorted sets lose the sign (large ones keep it).
fn score_text(score: f64) -> Vec<u8> {
    if score.fract() == 0.0 && score.abs() < 9.0e15 {
        return (score as i64).to_string().into_bytes();
    }
    format!("{score:e}").into_bytes()
}

fn parse_score(item: Item<'_>) -> f64 {
    match item {
        Item::Int(n) => n as f64,
        Item::Bytes(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.0),
    }
}

/// Orders a pack element against (`score`, `member`).
fn cmp_item(score: f64, member: &[u8], s: f64, m: Item<'_>) -> std::cmp::Ordering {
    match score.partial_cmp(&s) {
        Some(std::cmp::Ordering::Equal) | None => m.cmp_bytes(member).reverse(),
        Some(o) => o,
    }
}

/// Walks a pack's (member, score) pairs, with the byte position of each member.
fn pack_pairs(p: &Pack) -> impl Iterator<Item = (usize, Item<'_>, f64)> + '_ {
    let mut pos = p.first();
    std::iter::from_fn(move || {
        let mpos = pos?;
        let spos = p.next(mpos)?;
        pos = p.next(spos);
        Some((mpos, p.get(mpos)?, parse_score(p.get(spos)?)))
    })
}

impl ZSet {
    /// An empty value in the compact encoding.
    pub fn new() -> ZSet {
        ZSet::default()
    }

    /// An empty value already in the full encoding (for `zset-max-listpack-entries 0`, or a
    /// first member longer than `zset-max-listpack-value`, as Redis 7.0 decides in `ZADD`).
    pub fn new_full() -> ZSet {
        ZSet {
            repr: Repr::Full(Box::default()),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Pack(p) => p.len() / 2,
            Repr::Full(f) => f.tree.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held, in O(1).
    pub fn mem_usage(&self) -> usize {
        match &self.repr {
            Repr::Pack(p) => p.mem_usage(),
            Repr::Full(f) => f.mem_usage(),
        }
    }

    /// Redis's `OBJECT ENCODING` name for the current encoding.
    pub fn encoding_name(&self) -> &'static str {
        match &self.repr {
            Repr::Pack(_) => "listpack",
            Repr::Full(_) => "skiplist",
        }
    }

    /// True in the full encoding.
    pub fn is_full(&self) -> bool {
        matches!(self.repr, Repr::Full(_))
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.repr {
            Repr::Pack(p) => pack_pairs(p)
                .find(|(_, m, _)| m.eq_bytes(member))
                .map(|(_, _, s)| s),
            Repr::Full(f) => f.score(member),
        }
    }

    /// Sets `member`'s score, adding it when absent; returns the previous score. A score equal to
    /// the current one (`0` and `-0` are equal) changes nothing, as in Redis's `ZADD`. Converts
    /// to the full encoding when the set outgrows `limits`. `score` must not be NaN.
    pub fn insert(&mut self, member: &[u8], score: f64, limits: &TypeLimits) -> Option<f64> {
        if let Repr::Pack(p) = &mut self.repr {
            let old = pack_pairs(p)
                .find(|(_, m, _)| m.eq_bytes(member))
                .map(|(pos, _, s)| (pos, s));
            if let Some((pos, s)) = old {
                if s == score {
                    return Some(s);
                }
                p.remove_at(pos, 2);
                pack_insert(p, member, score);
                return Some(s);
            }
            if p.len() / 2 < limits.zset_max_listpack_entries
                && member.len() <= limits.zset_max_listpack_value
            {
                pack_insert(p, member, score);
                return None;
            }
            self.convert();
        }
        match &mut self.repr {
            Repr::Full(f) => f.insert(member, score),
            Repr::Pack(_) => None,
        }
    }

    /// Removes `member`; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match &mut self.repr {
            Repr::Pack(p) => {
                let (pos, _, s) = pack_pairs(p).find(|(_, m, _)| m.eq_bytes(member))?;
                p.remove_at(pos, 2);
                Some(s)
            }
            Repr::Full(f) => f.remove(member),
        }
    }

    /// The 0-based ascending rank of `member`, with its score.
    pub fn rank(&self, member: &[u8]) -> Option<(usize, f64)> {
        match &self.repr {
            Repr::Pack(p) => pack_pairs(p)
                .enumerate()
                .find(|(_, (_, m, _))| m.eq_bytes(member))
                .map(|(i, (_, _, s))| (i, s)),
            Repr::Full(f) => {
                let s = f.score(member)?;
                f.tree.rank(s, member).map(|r| (r, s))
            }
        }
    }

    /// How many elements satisfy `before`, which must hold for a prefix of the order and not
    /// after it (such as "score below the minimum"): the rank where the others start.
    pub fn rank_where(&self, before: impl Fn(f64, Member<'_>) -> bool) -> usize {
        match &self.repr {
            Repr::Pack(p) => pack_pairs(p).take_while(|(_, m, s)| before(*s, *m)).count(),
            Repr::Full(f) => f
                .tree
                .partition(|e| before(e.score, Item::Bytes(&e.member))),
        }
    }

    /// The elements from `rank` on, ascending, or descending (`rev`) from `rank` down to 0.
    pub fn iter_from(&self, rank: usize, rev: bool) -> ZIter<'_> {
        match &self.repr {
            Repr::Pack(p) => {
                if rev {
                    let pos = if rank < self.len() {
                        p.nth(2 * rank as i64)
                    } else {
                        None
                    };
                    ZIter(Cursor::PackRev { pack: p, pos })
                } else {
                    let pos = p.nth(2 * rank as i64);
                    ZIter(Cursor::Pack { pack: p, pos })
                }
            }
            Repr::Full(f) => ZIter(Cursor::Tree(f.tree.iter_from(rank, rev))),
        }
    }

    /// Removes the elements with ranks in `start..end`; returns how many were removed.
    pub fn remove_ranks(&mut self, start: usize, end: usize) -> usize {
        let end = end.min(self.len());
        if start >= end {
            return 0;
        }
        match &mut self.repr {
            Repr::Pack(p) => {
                if let Some(pos) = p.nth(2 * start as i64) {
                    p.remove_at(pos, 2 * (end - start));
                }
            }
            Repr::Full(f) => {
                let doomed: Vec<Arc<[u8]>> = f
                    .tree
                    .iter_from(start, false)
                    .take(end - start)
                    .map(|e| e.member.clone())
                    .collect();
                for m in doomed {
                    f.remove(&m);
                }
            }
        }
        end - start
    }

    /// Removes and returns the lowest element, or the highest (`max`), with its score.
    pub fn pop(&mut self, max: bool) -> Option<(Vec<u8>, f64)> {
        match &mut self.repr {
            Repr::Pack(p) => {
                // A pair is member then score, so the last member is the second to last entry.
                let mpos = p.nth(if max { -2 } else { 0 })?;
                let spos = p.next(mpos)?;
                let out = (p.get(mpos)?.to_vec(), parse_score(p.get(spos)?));
                p.remove_at(mpos, 2);
                Some(out)
            }
            Repr::Full(f) => f.pop(max).map(|e| (e.member.to_vec(), e.score)),
        }
    }

    /// One step of `ZSCAN` over the full encoding, visiting hash-table buckets from `cursor`:
    /// returns the next cursor (0 when done) and the elements seen. The compact encoding returns
    /// everything in one step, as Redis does.
    pub fn scan(&self, cursor: u64, count: usize) -> (u64, Vec<(Vec<u8>, f64)>) {
        match &self.repr {
            Repr::Pack(p) => (0, pack_pairs(p).map(|(_, m, s)| (m.to_vec(), s)).collect()),
            Repr::Full(f) => {
                let buckets = f.map.num_buckets();
                let mut out = Vec::new();
                let mut b = cursor as usize;
                // Like Redis, visit at most ten times COUNT buckets so a sparse table does not
                // make one call slow.
                let mut budget = count.max(1).saturating_mul(10);
                while b < buckets && out.len() < count.max(1) && budget > 0 {
                    if let Some((m, s)) = f.map.get_bucket(b) {
                        out.push((m.to_vec(), *s));
                    }
                    b += 1;
                    budget -= 1;
                }
                (if b >= buckets { 0 } else { b as u64 }, out)
            }
        }
    }

    fn convert(&mut self) {
        let Repr::Pack(p) = &self.repr else {
            return;
        };
        let mut full = Full::default();
        for (_, m, s) in pack_pairs(p) {
            full.insert(&m.to_vec(), s);
        }
        self.repr = Repr::Full(Box::new(full));
    }
}

/// Inserts a pair into a pack at its ordered position.
fn pack_insert(p: &mut Pack, member: &[u8], score: f64) {
    let at = pack_pairs(p)
        .find(|(_, m, s)| cmp_item(score, member, *s, *m) == std::cmp::Ordering::Less)
        .map(|(pos, _, _)| pos)
        .unwrap_or(p.end());
    p.insert_at(at, member);
    let spos = p.next(at).unwrap_or(p.end());
    p.insert_at(spos, &score_text(score));
}

/// A cursor over a sorted set's elements in order (see [`ZSet::iter_from`]).
pub struct ZIter<'a>(Cursor<'a>);

enum Cursor<'a> {
    Pack { pack: &'a Pack, pos: Option<usize> },
    PackRev { pack: &'a Pack, pos: Option<usize> },
    Tree(tree::Iter<'a>),
}

impl<'a> Iterator for ZIter<'a> {
    type Item = (Member<'a>, f64);

    fn next(&mut self) -> Option<(Member<'a>, f64)> {
        match &mut self.0 {
            Cursor::Pack { pack, pos } => {
                let mpos = (*pos)?;
                let spos = pack.next(mpos)?;
                *pos = pack.next(spos);
                Some((pack.get(mpos)?, parse_score(pack.get(spos)?)))
            }
            Cursor::PackRev { pack, pos } => {
                let mpos = (*pos)?;
                let spos = pack.next(mpos)?;
                *pos = pack.prev(mpos).and_then(|s| pack.prev(s));
                Some((pack.get(mpos)?, parse_score(pack.get(spos)?)))
            }
            Cursor::Tree(it) => it.next().map(|e| (Item::Bytes(&e.member[..]), e.score)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(entries: usize) -> TypeLimits {
        TypeLimits {
            zset_max_listpack_entries: entries,
            ..TypeLimits::default()
        }
    }

    fn dump(z: &ZSet) -> Vec<(Vec<u8>, f64)> {
        z.iter_from(0, false)
            .map(|(m, s)| (m.to_vec(), s))
            .collect()
    }

    #[test]
    fn both_encodings_agree() {
        for entries in [1000, 4] {
            let l = limits(entries);
            let mut z = ZSet::new();
            assert_eq!(z.insert(b"b", 2.0, &l), None);
            assert_eq!(z.insert(b"a", 2.0, &l), None);
            assert_eq!(z.insert(b"10", 0.5, &l), None);
            assert_eq!(z.insert(b"c", f64::NEG_INFINITY, &l), None);
            assert_eq!(z.insert(b"d", 1e300, &l), None);
            assert_eq!(z.insert(b"b", -0.0, &l), Some(2.0));
            let want: Vec<(Vec<u8>, f64)> = vec![
                (b"c".to_vec(), f64::NEG_INFINITY),
                (b"b".to_vec(), -0.0),
                (b"10".to_vec(), 0.5),
                (b"a".to_vec(), 2.0),
                (b"d".to_vec(), 1e300),
            ];
            assert_eq!(dump(&z), want);
            assert_eq!(
                z.encoding_name(),
                if entries == 4 { "skiplist" } else { "listpack" }
            );
            assert_eq!(z.rank(b"a"), Some((3, 2.0)));
            assert_eq!(z.score(b"10"), Some(0.5));
            // A pack stores -0 as the integer 0, as Redis's listpack does, so only the full
            // encoding keeps the sign.
            let negative = z.score(b"b").is_some_and(|s| s.is_sign_negative());
            assert_eq!(negative, entries == 4);
            assert_eq!(z.rank_where(|s, _| s < 1.0), 3);
            let rev: Vec<Vec<u8>> = z.iter_from(3, true).map(|(m, _)| m.to_vec()).collect();
            assert_eq!(
                rev,
                vec![b"a".to_vec(), b"10".to_vec(), b"b".to_vec(), b"c".to_vec()]
            );
            assert_eq!(z.remove(b"10"), Some(0.5));
            assert_eq!(z.remove(b"10"), None);
            assert_eq!(z.remove_ranks(0, 2), 2);
            assert_eq!(dump(&z), want[3..].to_vec());
            let (cursor, all) = z.scan(0, 100);
            assert_eq!((cursor, all.len()), (0, 2));
        }
    }

    #[test]
    fn pops_take_both_ends_in_both_encodings() {
        for entries in [1000, 4] {
            let l = limits(entries);
            let mut z = ZSet::new();
            for (i, m) in ["e", "b", "d", "a", "c", "7"].iter().enumerate() {
                z.insert(m.as_bytes(), (i % 2) as f64, &l);
            }
            let before = z.mem_usage();
            // Scores: c, d, e have 0; 7, a, b have 1.
            assert_eq!(z.pop(false), Some((b"c".to_vec(), 0.0)));
            assert_eq!(z.pop(true), Some((b"b".to_vec(), 1.0)));
            assert_eq!(z.pop(true), Some((b"a".to_vec(), 1.0)));
            assert_eq!(z.pop(false), Some((b"d".to_vec(), 0.0)));
            assert_eq!(z.pop(false), Some((b"e".to_vec(), 0.0)));
            assert!(z.mem_usage() <= before);
            assert_eq!(z.score(b"7"), Some(1.0));
            assert_eq!(z.pop(true), Some((b"7".to_vec(), 1.0)));
            assert_eq!(z.pop(true), None);
            assert!(z.is_empty());
        }
    }

    #[test]
    fn long_members_convert_and_memory_is_tracked() {
        let l = TypeLimits::default();
        let mut z = ZSet::new();
        z.insert(b"short", 1.0, &l);
        assert_eq!(z.encoding_name(), "listpack");
        z.insert(&[b'x'; 65], 1.0, &l);
        assert_eq!(z.encoding_name(), "skiplist");
        for i in 0..1000 {
            z.insert(format!("m{i}").as_bytes(), i as f64, &l);
        }
        let before = z.mem_usage();
        for i in 0..1000 {
            z.remove(format!("m{i}").as_bytes());
        }
        assert!(z.mem_usage() < before / 4, "{} vs {before}", z.mem_usage());
        assert_eq!(z.len(), 2);
    }
}
