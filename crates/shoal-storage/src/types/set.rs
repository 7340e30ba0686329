//! Set values: a sorted array of integers (Redis's intset) while every member is an integer and
//! the set is small, a sharded hash set otherwise.
//!
//! The intset stores its members in the narrowest of `i16`, `i32` and `i64` that holds them all,
//! sorted, so membership is a binary search and the whole set is one allocation. Redis 7.0 has
//! no listpack encoding for sets (7.2 added it), so a set holding any non-integer member, or more
//! than `set-max-intset-entries` members, is a hash table, and `OBJECT ENCODING` says
//! `hashtable`. Conversion is one way, as in Redis.
//!
//! The hash table is split into `2^bits` shards by the top bits of each member's hash; each shard
//! is a SwissTable of boxed members. Sharding is what gives `SSCAN` Redis's guarantee (every
//! member present for the whole iteration is returned) without a chained table: the cursor is
//! the top 50 bits of a hash, shards cover aligned ranges of that space, and a call returns the
//! members of one shard in hash order starting at the cursor, exactly as the keyspace's `SCAN`
//! does per slot (see `scan.rs`). Doubling or halving the shard count keeps those ranges
//! aligned, so a resize between calls cannot make a scan skip a member. Shards hold 16 to 128
//! members on average, so sorting one per call is cheap.

use std::hash::BuildHasher;

use foldhash::fast::SeedableRandomState;
use foldhash::SharedSeed;
use hashbrown::hash_table::Entry as TableEntry;
use hashbrown::HashTable;

pub use super::pack::Item;
use crate::entry::{alloc_size, parse_canonical_i64};

/// Redis caps the intset at 2^30 members whatever `set-max-intset-entries` says.
const INTSET_HARD_MAX: usize = 1 << 30;

/// Scan cursors are this many top bits of a member's hash (small enough for any client to
/// hold the cursor in a double).
const POS_BITS: u32 = 50;
const POS_MASK: u64 = (1 << POS_BITS) - 1;
/// Past this many members per shard on average, the shard count doubles.
const SPLIT_AT: usize = 128;
/// Below this many members per shard on average, the shard count halves.
const MERGE_AT: usize = 16;
/// Most shard bits a table uses (4 billion shards is beyond any real set).
const MAX_BITS: u32 = 32;

/// A set value.
#[derive(Clone, Debug)]
pub struct Set {
    repr: Repr,
}

#[derive(Clone, Debug)]
enum Repr {
    Ints(IntSet),
    /// Boxed: a table's bookkeeping is larger than the intset's, and small sets are the common
    /// case.
    Table(Box<Table>),
}

impl Default for Set {
    fn default() -> Set {
        Set {
            repr: Repr::Ints(IntSet::I16(Vec::new())),
        }
    }
}

impl Set {
    /// An empty set, an intset until a member says otherwise (Redis's `createIntsetObject`).
    pub fn new() -> Set {
        Set::default()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Ints(s) => s.len(),
            Repr::Table(t) => t.len,
        }
    }

    /// True when there are no members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held, in O(1).
    pub fn mem_usage(&self) -> usize {
        match &self.repr {
            Repr::Ints(s) => s.mem_usage(),
            Repr::Table(t) => alloc_size(std::mem::size_of::<Table>()) + t.mem_usage(),
        }
    }

    /// Redis's `OBJECT ENCODING` name for the current encoding.
    pub fn encoding_name(&self) -> &'static str {
        match &self.repr {
            Repr::Ints(_) => "intset",
            Repr::Table(_) => "hashtable",
        }
    }

    /// True while the set is an intset, whose iteration order is ascending and whose `SSCAN`
    /// returns everything at once.
    pub fn is_intset(&self) -> bool {
        matches!(self.repr, Repr::Ints(_))
    }

    /// True when `member` is in the set.
    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.repr {
            Repr::Ints(s) => parse_canonical_i64(member).is_some_and(|n| s.contains(n)),
            Repr::Table(t) => t.contains(member),
        }
    }

    /// True when the member another set yielded is in this set; integers from an intset are
    /// compared without formatting them when this set is an intset too.
    pub fn contains_item(&self, member: Item<'_>) -> bool {
        match (&self.repr, member) {
            (Repr::Ints(s), Item::Int(n)) => s.contains(n),
            (_, Item::Bytes(b)) => self.contains(b),
            (Repr::Table(t), Item::Int(n)) => t.contains(IntText::new(n).as_bytes()),
        }
    }

    /// Adds `member`; returns false when it was already there. An intset becomes a hash table
    /// when the member is not an integer or the set grows past `max_intset` members.
    pub fn insert(&mut self, member: &[u8], max_intset: usize) -> bool {
        match parse_canonical_i64(member) {
            Some(n) => self.insert_item(Item::Int(n), max_intset),
            None => self.insert_item(Item::Bytes(member), max_intset),
        }
    }

    /// Adds a member another set yielded (see [`Set::insert`]); integers from an intset go into
    /// an intset without being formatted and parsed again.
    pub fn insert_item(&mut self, member: Item<'_>, max_intset: usize) -> bool {
        let n = match (&mut self.repr, member) {
            (Repr::Table(t), Item::Bytes(b)) => return t.insert(b),
            (Repr::Table(t), Item::Int(n)) => return t.insert(IntText::new(n).as_bytes()),
            (Repr::Ints(_), Item::Bytes(b)) => match parse_canonical_i64(b) {
                Some(n) => n,
                None => {
                    self.convert();
                    return self.insert_item(member, max_intset);
                }
            },
            (Repr::Ints(_), Item::Int(n)) => n,
        };
        let Repr::Ints(s) = &mut self.repr else {
            return false;
        };
        if !s.insert(n) {
            return false;
        }
        if s.len() > max_intset.min(INTSET_HARD_MAX) {
            self.convert();
        }
        true
    }

    /// Removes `member`; returns false when it was not there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Ints(s) => parse_canonical_i64(member).is_some_and(|n| s.remove(n)),
            Repr::Table(t) => t.remove(member),
        }
    }

    /// Removes a member another set yielded.
    pub fn remove_item(&mut self, member: Item<'_>) -> bool {
        match (&mut self.repr, member) {
            (Repr::Ints(s), Item::Int(n)) => s.remove(n),
            (_, Item::Bytes(b)) => self.remove(b),
            (Repr::Table(t), Item::Int(n)) => t.remove(IntText::new(n).as_bytes()),
        }
    }

    /// Every member: ascending for an intset, in table order for a hash table.
    pub fn iter(&self) -> Iter<'_> {
        Iter(match &self.repr {
            Repr::Ints(IntSet::I16(v)) => IterInner::I16(v.iter()),
            Repr::Ints(IntSet::I32(v)) => IterInner::I32(v.iter()),
            Repr::Ints(IntSet::I64(v)) => IterInner::I64(v.iter()),
            Repr::Table(t) => IterInner::Table(t.old().iter().chain(t.shards.iter()).flatten()),
        })
    }

    /// A random member (`None` when empty). `rng` supplies random 64-bit numbers. As in Redis,
    /// hash-table picks are close to, not exactly, uniform.
    pub fn random(&self, rng: &mut impl FnMut() -> u64) -> Option<Item<'_>> {
        match &self.repr {
            Repr::Ints(s) => {
                let len = s.len();
                if len == 0 {
                    return None;
                }
                s.get((rng() % len as u64) as usize).map(Item::Int)
            }
            Repr::Table(t) => t.random(rng).map(Item::Bytes),
        }
    }

    /// Removes and returns a random member's text.
    pub fn pop_random(&mut self, rng: &mut impl FnMut() -> u64) -> Option<Vec<u8>> {
        match &mut self.repr {
            Repr::Ints(s) => {
                let len = s.len();
                if len == 0 {
                    return None;
                }
                let n = s.remove_at((rng() % len as u64) as usize)?;
                Some(IntText::new(n).as_bytes().to_vec())
            }
            Repr::Table(t) => t.pop_random(rng),
        }
    }

    /// One `SSCAN` step: calls `emit` for the members visited and returns the next cursor (0 when
    /// done). An intset returns everything at once, as Redis does for compact encodings; a hash
    /// table returns about `count` members in hash order from `cursor`.
    pub fn scan(&self, cursor: u64, count: usize, mut emit: impl FnMut(Item<'_>)) -> u64 {
        match &self.repr {
            Repr::Ints(_) => {
                self.iter().for_each(emit);
                0
            }
            Repr::Table(t) => t.scan(cursor, count, |m| emit(Item::Bytes(m))),
        }
    }

    /// Turns an intset into a hash table (never the other way, like Redis).
    fn convert(&mut self) {
        let Repr::Ints(s) = &self.repr else {
            return;
        };
        let mut table = Table::with_capacity(s.len());
        for n in self.iter() {
            if let Item::Int(n) = n {
                table.insert(IntText::new(n).as_bytes());
            }
        }
        self.repr = Repr::Table(Box::new(table));
    }
}

/// Iterator over a set's members.
pub struct Iter<'a>(IterInner<'a>);

enum IterInner<'a> {
    I16(std::slice::Iter<'a, i16>),
    I32(std::slice::Iter<'a, i32>),
    I64(std::slice::Iter<'a, i64>),
    Table(
        std::iter::Flatten<
            std::iter::Chain<std::slice::Iter<'a, Shard>, std::slice::Iter<'a, Shard>>,
        >,
    ),
}

impl<'a> Iterator for Iter<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        match &mut self.0 {
            IterInner::I16(it) => it.next().map(|&n| Item::Int(n.into())),
            IterInner::I32(it) => it.next().map(|&n| Item::Int(n.into())),
            IterInner::I64(it) => it.next().map(|&n| Item::Int(n)),
            IterInner::Table(it) => it.next().map(|m| Item::Bytes(m)),
        }
    }
}

/// The decimal text of an integer, formatted on the stack (for probing hash tables with intset
/// members).
struct IntText {
    buf: [u8; 20],
    start: usize,
}

impl IntText {
    /// Formats `n` as Redis does.
    fn new(n: i64) -> IntText {
        let mut buf = [0u8; 20];
        let mut pos = buf.len();
        let mut v = n.unsigned_abs();
        loop {
            pos -= 1;
            buf[pos] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        if n < 0 {
            pos -= 1;
            buf[pos] = b'-';
        }
        IntText { buf, start: pos }
    }

    /// The text.
    fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

// ---------------------------------------------------------------------------------------------
// The intset.

/// Sorted distinct integers in the narrowest width that holds them all. Like Redis's intset, the
/// width only ever grows.
#[derive(Clone, Debug)]
enum IntSet {
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
}

impl IntSet {
    fn len(&self) -> usize {
        match self {
            IntSet::I16(v) => v.len(),
            IntSet::I32(v) => v.len(),
            IntSet::I64(v) => v.len(),
        }
    }

    fn mem_usage(&self) -> usize {
        match self {
            IntSet::I16(v) => alloc_size(v.capacity() * 2),
            IntSet::I32(v) => alloc_size(v.capacity() * 4),
            IntSet::I64(v) => alloc_size(v.capacity() * 8),
        }
    }

    fn get(&self, i: usize) -> Option<i64> {
        match self {
            IntSet::I16(v) => v.get(i).map(|&n| n.into()),
            IntSet::I32(v) => v.get(i).map(|&n| n.into()),
            IntSet::I64(v) => v.get(i).copied(),
        }
    }

    fn contains(&self, n: i64) -> bool {
        match self {
            IntSet::I16(v) => i16::try_from(n).is_ok_and(|n| v.binary_search(&n).is_ok()),
            IntSet::I32(v) => i32::try_from(n).is_ok_and(|n| v.binary_search(&n).is_ok()),
            IntSet::I64(v) => v.binary_search(&n).is_ok(),
        }
    }

    fn insert(&mut self, n: i64) -> bool {
        match self {
            IntSet::I16(v) => {
                if let Ok(x) = i16::try_from(n) {
                    return insert_sorted(v, x);
                }
            }
            IntSet::I32(v) => {
                if let Ok(x) = i32::try_from(n) {
                    return insert_sorted(v, x);
                }
            }
            IntSet::I64(v) => return insert_sorted(v, n),
        }
        // The value does not fit the current width: widen every member, as Redis's
        // `intsetUpgradeAndAdd` does. The new value is outside the old range, so it goes at
        // one end.
        let all: Vec<i64> = (0..self.len()).filter_map(|i| self.get(i)).collect();
        *self = match i32::try_from(n) {
            Ok(_) => IntSet::I32(all.iter().filter_map(|&m| i32::try_from(m).ok()).collect()),
            Err(_) => IntSet::I64(all),
        };
        self.insert(n)
    }

    fn remove(&mut self, n: i64) -> bool {
        let removed = match self {
            IntSet::I16(v) => i16::try_from(n).is_ok_and(|n| remove_sorted(v, n)),
            IntSet::I32(v) => i32::try_from(n).is_ok_and(|n| remove_sorted(v, n)),
            IntSet::I64(v) => remove_sorted(v, n),
        };
        if removed {
            self.shrink();
        }
        removed
    }

    fn remove_at(&mut self, i: usize) -> Option<i64> {
        let n = match self {
            IntSet::I16(v) => (i < v.len()).then(|| v.remove(i).into()),
            IntSet::I32(v) => (i < v.len()).then(|| v.remove(i).into()),
            IntSet::I64(v) => (i < v.len()).then(|| v.remove(i)),
        };
        self.shrink();
        n
    }

    /// Gives back spare capacity once the set is under half full, so a set that lost most of
    /// its members does not keep its peak allocation.
    fn shrink(&mut self) {
        fn fit<T>(v: &mut Vec<T>) {
            if v.capacity() > v.len() * 2 + 4 {
                v.shrink_to(v.len() + v.len() / 4);
            }
        }
        match self {
            IntSet::I16(v) => fit(v),
            IntSet::I32(v) => fit(v),
            IntSet::I64(v) => fit(v),
        }
    }
}

fn insert_sorted<T: Ord>(v: &mut Vec<T>, x: T) -> bool {
    match v.binary_search(&x) {
        Ok(_) => false,
        Err(i) => {
            v.insert(i, x);
            true
        }
    }
}

fn remove_sorted<T: Ord>(v: &mut Vec<T>, x: T) -> bool {
    match v.binary_search(&x) {
        Ok(i) => {
            v.remove(i);
            true
        }
        Err(_) => false,
    }
}

// ---------------------------------------------------------------------------------------------
// The hash table.

/// A member's hash, keyed by a per-process random seed so clients cannot aim members at one
/// shard. Shards and scan cursors use its top bits.
fn hash(member: &[u8]) -> u64 {
    SeedableRandomState::with_seed(0, SharedSeed::global_random()).hash_one(member)
}

/// The hash handed to a shard's SwissTable. Every member of a shard shares the top bits of
/// [`hash`], which the SwissTable uses for its control bytes, so the shard gets a remix in
/// which all bits depend on all of the original's.
fn mix(h: u64) -> u64 {
    (h ^ (h >> 29))
        .wrapping_mul(0xBF58_476D_1CE4_E5B9)
        .rotate_left(23)
}

fn shard_hash(member: &[u8]) -> u64 {
    mix(hash(member))
}

fn position(h: u64) -> u64 {
    h >> (64 - POS_BITS)
}

/// The hash-table encoding: `2^bits` SwissTables chosen by the top `bits` bits of the hash.
///
/// Changing the shard count is incremental, like Redis's `dict` rehash: the new shards are
/// filled from the old ones one prefix at a time, a step per write, so no command moves more
/// than a couple of shards' worth of members. While that runs, a member whose top
/// `min(bits, old_bits)` hash bits are below `moved` lives in `shards`, any other in `old`.
/// That state is boxed, so the table of a small set stays one 64-byte allocation.
#[derive(Clone, Debug)]
struct Table {
    shards: Vec<Shard>,
    bits: u32,
    /// The change of shard count under way, if any.
    migration: Option<Box<Migration>>,
    len: usize,
    /// Heap bytes of the members themselves.
    member_bytes: usize,
    /// Heap bytes of the shards' SwissTable allocations.
    table_bytes: usize,
}

type Shard = HashTable<Box<[u8]>>;

/// The shards being emptied into the table's, which are keyed by `old_bits` bits of hash.
#[derive(Clone, Debug)]
struct Migration {
    old: Vec<Shard>,
    old_bits: u32,
    /// Prefixes (of `min(bits, old_bits)` bits) already moved.
    moved: usize,
}

/// Which array a shard is in.
#[derive(Clone, Copy)]
enum Side {
    New,
    Old,
}

impl Table {
    /// An empty table sized for about `n` members.
    fn with_capacity(n: usize) -> Table {
        let mut bits = 0;
        while bits < MAX_BITS && n > (SPLIT_AT / 2) << bits {
            bits += 1;
        }
        let per_shard = n >> bits;
        let shards: Vec<_> = (0..1usize << bits)
            .map(|_| HashTable::with_capacity(per_shard))
            .collect();
        let table_bytes = shards.iter().map(|s| alloc_size(s.allocation_size())).sum();
        Table {
            shards,
            bits,
            migration: None,
            len: 0,
            member_bytes: 0,
            table_bytes,
        }
    }

    fn mem_usage(&self) -> usize {
        let vec = self.shards.capacity() * std::mem::size_of::<Shard>();
        let migration = self.migration.as_ref().map_or(0, |m| {
            alloc_size(std::mem::size_of::<Migration>())
                + alloc_size(m.old.capacity() * std::mem::size_of::<Shard>())
        });
        alloc_size(vec) + migration + self.member_bytes + self.table_bytes
    }

    fn migrating(&self) -> bool {
        self.migration.is_some()
    }

    /// The shards being emptied (none when no migration runs).
    fn old(&self) -> &[Shard] {
        self.migration.as_ref().map_or(&[], |m| &m.old)
    }

    /// Where the member of hash `h` lives: the array and the shard's index in it.
    fn locate(&self, h: u64) -> (Side, usize) {
        match &self.migration {
            Some(m) if shard_index(h, self.bits.min(m.old_bits)) >= m.moved => {
                (Side::Old, shard_index(h, m.old_bits))
            }
            _ => (Side::New, shard_index(h, self.bits)),
        }
    }

    fn shard(&self, (side, i): (Side, usize)) -> Option<&Shard> {
        match side {
            Side::New => self.shards.get(i),
            Side::Old => self.migration.as_ref()?.old.get(i),
        }
    }

    fn shard_mut(&mut self, (side, i): (Side, usize)) -> Option<&mut Shard> {
        match side {
            Side::New => self.shards.get_mut(i),
            Side::Old => self.migration.as_mut()?.old.get_mut(i),
        }
    }

    fn contains(&self, member: &[u8]) -> bool {
        let h = hash(member);
        self.shard(self.locate(h))
            .is_some_and(|s| s.find(mix(h), |m| **m == *member).is_some())
    }

    fn insert(&mut self, member: &[u8]) -> bool {
        self.migrate_step();
        let h = hash(member);
        let Some(shard) = self.shard_mut(self.locate(h)) else {
            return false;
        };
        let before = alloc_size(shard.allocation_size());
        match shard.entry(mix(h), |m| **m == *member, |m| shard_hash(m)) {
            TableEntry::Occupied(_) => return false,
            TableEntry::Vacant(v) => {
                v.insert(member.into());
            }
        }
        let after = alloc_size(shard.allocation_size());
        self.table_bytes = self.table_bytes + after - before;
        self.member_bytes += alloc_size(member.len());
        self.len += 1;
        if !self.migrating() && self.len > self.shards.len() * SPLIT_AT && self.bits < MAX_BITS {
            self.start_migration(self.bits + 1);
        }
        true
    }

    fn remove(&mut self, member: &[u8]) -> bool {
        self.migrate_step();
        let h = hash(member);
        let at = self.locate(h);
        let Some(shard) = self.shard_mut(at) else {
            return false;
        };
        let Ok(found) = shard.find_entry(mix(h), |m| **m == *member) else {
            return false;
        };
        found.remove();
        self.removed(at, member.len());
        true
    }

    /// Bookkeeping after a member of `member_len` bytes left shard `at`: counters, then giving
    /// memory back (halving the shard count, or shrinking a shard that became sparse).
    fn removed(&mut self, at: (Side, usize), member_len: usize) {
        self.member_bytes -= alloc_size(member_len);
        self.len -= 1;
        if !self.migrating() && self.bits > 0 && self.len < self.shards.len() * MERGE_AT {
            self.start_migration(self.bits - 1);
            return;
        }
        let Some(shard) = self.shard_mut(at) else {
            return;
        };
        if shard.capacity() > 32 && shard.len() * 4 < shard.capacity() {
            let before = alloc_size(shard.allocation_size());
            shard.shrink_to(shard.len() * 2, |m| shard_hash(m));
            let after = alloc_size(shard.allocation_size());
            self.table_bytes = self.table_bytes + after - before;
        }
    }

    /// Starts redistributing the members over `2^bits` shards. Shard ranges stay aligned to the
    /// hash prefix, so scan cursors stay valid. The new shards start unallocated.
    fn start_migration(&mut self, bits: u32) {
        let shards = (0..1usize << bits).map(|_| HashTable::new()).collect();
        let old = std::mem::replace(&mut self.shards, shards);
        self.migration = Some(Box::new(Migration {
            old,
            old_bits: self.bits,
            moved: 0,
        }));
        self.bits = bits;
        self.migrate_step();
    }

    /// Moves the members of the next prefix (one old shard when growing, two when shrinking)
    /// into their new shard(s), sized with a quarter of headroom as a rebuild would. O(members
    /// moved), about `SPLIT_AT` at most.
    #[inline]
    fn migrate_step(&mut self) {
        if self.migrating() {
            self.migrate_prefix();
        }
    }

    fn migrate_prefix(&mut self) {
        let Some(mut m) = self.migration.take() else {
            return;
        };
        let coarse = self.bits.min(m.old_bits);
        let p = m.moved;
        let from = p << (m.old_bits - coarse)..(p + 1) << (m.old_bits - coarse);
        let total: usize = from
            .clone()
            .filter_map(|i| m.old.get(i))
            .map(HashTable::len)
            .sum();
        // Growing splits the prefix into two shards (told apart by the next hash bit), each
        // expected to get half of the members.
        let to = p << (self.bits - coarse)..(p + 1) << (self.bits - coarse);
        let expect = total >> (self.bits - coarse);
        for i in to {
            if let Some(shard) = self.shards.get_mut(i) {
                shard.reserve(expect + expect / 4 + 1, |m| shard_hash(m));
                self.table_bytes += alloc_size(shard.allocation_size());
            }
        }
        for i in from {
            let Some(shard) = m.old.get_mut(i) else {
                continue;
            };
            self.table_bytes -= alloc_size(shard.allocation_size());
            for member in std::mem::take(shard) {
                let h = hash(&member);
                if let Some(dest) = self.shards.get_mut(shard_index(h, self.bits)) {
                    let before = dest.allocation_size();
                    dest.insert_unique(mix(h), member, |m| shard_hash(m));
                    let after = dest.allocation_size();
                    if after != before {
                        self.table_bytes =
                            self.table_bytes + alloc_size(after) - alloc_size(before);
                    }
                }
            }
        }
        m.moved += 1;
        if m.moved < 1 << coarse {
            self.migration = Some(m);
        }
    }

    /// The shards that may hold members, in no particular order, as (count, k-th shard).
    fn live_shards(&self) -> (usize, impl Fn(usize) -> Option<(Side, usize)> + '_) {
        let (new_done, old_from) = match &self.migration {
            Some(m) => {
                let coarse = self.bits.min(m.old_bits);
                (
                    m.moved << (self.bits - coarse),
                    m.moved << (m.old_bits - coarse),
                )
            }
            None => (self.shards.len(), 0),
        };
        let count = new_done + self.old().len().saturating_sub(old_from);
        (count, move |k: usize| {
            if k < new_done {
                Some((Side::New, k))
            } else {
                Some((Side::Old, old_from + k - new_done))
            }
        })
    }

    /// A random shard that holds members, then the first member at or after a random bucket.
    fn random_slot(&self, rng: &mut impl FnMut() -> u64) -> Option<(Side, usize, usize)> {
        if self.len == 0 {
            return None;
        }
        let (n, live) = self.live_shards();
        if n == 0 {
            return None;
        }
        // Shards average at least MERGE_AT members, so a random shard is almost never empty;
        // a few tries keep the pick close to uniform, and the last one sweeps forward.
        let mut start = 0;
        for _ in 0..8 {
            start = (rng() % n as u64) as usize;
            if live(start)
                .and_then(|at| self.shard(at))
                .is_some_and(|s| !s.is_empty())
            {
                break;
            }
        }
        let r = rng();
        for off in 0..n {
            let Some(at) = live((start + off) % n) else {
                continue;
            };
            let Some(shard) = self.shard(at) else {
                continue;
            };
            if shard.is_empty() {
                continue;
            }
            let buckets = shard.num_buckets();
            // Random buckets until one holds a member gives every member the same chance; the
            // shards shrink when they become sparse, so this rarely takes more than a few tries. Only
            // then the walk forward, which favours members after empty runs.
            for _ in 0..64 {
                let b = (rng() % buckets as u64) as usize;
                if shard.get_bucket(b).is_some() {
                    return Some((at.0, at.1, b));
                }
            }
            let b0 = (r % buckets as u64) as usize;
            for k in 0..buckets {
                let b = (b0 + k) % buckets;
                if shard.get_bucket(b).is_some() {
                    return Some((at.0, at.1, b));
                }
            }
        }
        None
    }

    fn random(&self, rng: &mut impl FnMut() -> u64) -> Option<&[u8]> {
        let (side, i, b) = self.random_slot(rng)?;
        self.shard((side, i))?.get_bucket(b).map(|m| &**m)
    }

    fn pop_random(&mut self, rng: &mut impl FnMut() -> u64) -> Option<Vec<u8>> {
        self.migrate_step();
        let (side, i, b) = self.random_slot(rng)?;
        let shard = self.shard_mut((side, i))?;
        let (member, _) = shard.get_bucket_entry(b).ok()?.remove();
        self.removed((side, i), member.len());
        Some(member.into_vec())
    }

    /// The shard holding hash position `pos` and the first position after its range.
    fn shard_at(&self, pos: u64) -> (Option<&Shard>, u64) {
        let h = pos << (64 - POS_BITS);
        let at = self.locate(h);
        let bits = match at.0 {
            Side::New => self.bits,
            Side::Old => self.migration.as_ref().map_or(0, |m| m.old_bits),
        };
        let end = (at.1 as u64 + 1) << (POS_BITS - bits);
        (self.shard(at), end)
    }

    /// One `SSCAN` step from `cursor` (a hash position): the members of the cursor's shard at or
    /// after it, in hash order, then the following shards, until `count` members were visited.
    fn scan(&self, cursor: u64, count: usize, mut emit: impl FnMut(&[u8])) -> u64 {
        if cursor > POS_MASK {
            return 0;
        }
        let mut pos = cursor;
        let mut visited = 0usize;
        let count = count.max(1);
        loop {
            let (shard, end) = self.shard_at(pos);
            let mut members: Vec<(u64, &[u8])> = shard
                .into_iter()
                .flat_map(|s| s.iter())
                .map(|m| (position(hash(m)), &**m))
                .filter(|(p, _)| *p >= pos)
                .collect();
            members.sort_unstable_by_key(|(p, _)| *p);
            let mut take = count.saturating_sub(visited).min(members.len());
            // Members sharing a position must be returned together, or the next cursor would
            // skip the rest of them.
            while take > 0 && take < members.len() && members[take].0 == members[take - 1].0 {
                take += 1;
            }
            for (_, m) in &members[..take] {
                emit(m);
            }
            visited += take;
            if take < members.len() {
                return members[take - 1].0 + 1;
            }
            if end > POS_MASK {
                return 0;
            }
            pos = end;
            if visited >= count {
                return pos;
            }
        }
    }
}

fn shard_index(h: u64, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        (h >> (64 - bits)) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng() -> impl FnMut() -> u64 {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        move || {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    fn text(m: Item<'_>) -> Vec<u8> {
        m.to_vec()
    }

    #[test]
    fn integers_stay_an_intset_in_ascending_order_and_widen() {
        let mut s = Set::new();
        for m in ["5", "-3", "300", "5"] {
            s.insert(m.as_bytes(), 512);
        }
        assert_eq!(s.encoding_name(), "intset");
        assert_eq!(s.len(), 3);
        s.insert(b"100000", 512);
        s.insert(b"-9223372036854775808", 512);
        let all: Vec<Vec<u8>> = s.iter().map(text).collect();
        let want: Vec<&[u8]> = vec![b"-9223372036854775808", b"-3", b"5", b"300", b"100000"];
        assert_eq!(all, want);
        assert!(s.contains(b"300") && !s.contains(b"0300") && !s.contains(b"7"));
        assert!(s.remove(b"300") && !s.remove(b"300"));
        assert_eq!(s.encoding_name(), "intset");
    }

    #[test]
    fn a_string_or_too_many_integers_convert_to_a_hash_table() {
        let mut s = Set::new();
        s.insert(b"1", 512);
        s.insert(b"01", 512);
        assert_eq!(s.encoding_name(), "hashtable");
        assert!(s.contains(b"1") && s.contains(b"01"));
        let mut s = Set::new();
        for i in 0..4 {
            s.insert(i.to_string().as_bytes(), 3);
        }
        assert_eq!((s.encoding_name(), s.len()), ("hashtable", 4));
        assert!(s.contains_item(Item::Int(2)));
    }

    #[test]
    fn big_tables_split_merge_and_keep_every_member() {
        let mut s = Set::new();
        let n = 20_000;
        for i in 0..n {
            assert!(s.insert(format!("m{i}").as_bytes(), 512));
        }
        assert_eq!(s.len(), n);
        for i in 0..n {
            assert!(s.contains(format!("m{i}").as_bytes()));
        }
        for i in 0..n - 10 {
            assert!(s.remove(format!("m{i}").as_bytes()));
        }
        assert_eq!(s.len(), 10);
        let Repr::Table(t) = &s.repr else {
            panic!("still a table")
        };
        assert_eq!(t.bits, 0);
        assert!(s.mem_usage() < 4096, "{}", s.mem_usage());
    }

    #[test]
    fn scan_returns_every_member_across_resizes() {
        let mut s = Set::new();
        for i in 0..3000 {
            s.insert(format!("a{i}").as_bytes(), 512);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut calls = 0;
        loop {
            cursor = s.scan(cursor, 10, |m| {
                seen.insert(text(m));
            });
            calls += 1;
            // Grow the table during the scan: the original members must still all come back.
            if calls == 50 {
                for i in 0..5000 {
                    s.insert(format!("b{i}").as_bytes(), 512);
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..3000 {
            assert!(seen.contains(format!("a{i}").as_bytes()), "a{i}");
        }
    }

    #[test]
    fn shard_count_changes_are_incremental_and_everything_stays_reachable() {
        let table = |s: &Set| match &s.repr {
            Repr::Table(t) => {
                let recount: usize = t
                    .old()
                    .iter()
                    .chain(t.shards.iter())
                    .map(|s| alloc_size(s.allocation_size()))
                    .sum();
                assert_eq!(t.table_bytes, recount);
                t.migrating()
            }
            Repr::Ints(_) => false,
        };
        let mut r = rng();
        let mut s = Set::new();
        let mut seen_migration = false;
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        for i in 0..20_000 {
            s.insert(format!("m{i}").as_bytes(), 512);
            if table(&s) {
                seen_migration = true;
                assert!(s.contains(b"m0") && s.contains(format!("m{}", i / 2).as_bytes()));
                assert!(s.random(&mut r).is_some_and(|m| s.contains_item(m)));
            }
            // A scan runs alongside the growth, collecting the first 1000 members.
            if i >= 1000 && (i == 1000 || cursor != 0) && i % 4 == 0 {
                cursor = s.scan(cursor, 5, |m| {
                    seen.insert(text(m));
                });
            }
        }
        assert!(seen_migration);
        while cursor != 0 {
            cursor = s.scan(cursor, 5, |m| {
                seen.insert(text(m));
            });
        }
        for i in 0..1000 {
            assert!(seen.contains(format!("m{i}").as_bytes()), "m{i}");
        }
        assert_eq!(s.iter().count(), 20_000);
        // Popping shrinks the shard count step by step; every pop is a distinct member.
        let mut popped = std::collections::HashSet::new();
        while let Some(m) = s.pop_random(&mut r) {
            table(&s);
            assert!(popped.insert(m));
        }
        assert_eq!(popped.len(), 20_000);
    }

    #[test]
    fn random_and_pop_cover_the_set_and_empty_it() {
        let mut r = rng();
        let mut s = Set::new();
        for i in 0..1000 {
            s.insert(format!("x{i}").as_bytes(), 512);
        }
        assert!(s.random(&mut r).is_some_and(|m| s.contains_item(m)));
        let mut popped = std::collections::HashSet::new();
        while let Some(m) = s.pop_random(&mut r) {
            assert!(popped.insert(m));
        }
        assert_eq!((popped.len(), s.len()), (1000, 0));
        let mut s = Set::new();
        s.insert(b"7", 512);
        assert_eq!(s.pop_random(&mut r), Some(b"7".to_vec()));
        assert!(s.is_empty());
    }

    #[test]
    fn memory_is_counted_and_given_back() {
        let mut s = Set::new();
        let empty = s.mem_usage();
        for i in 0..2000 {
            s.insert(format!("member-{i:05}-with-some-length").as_bytes(), 512);
        }
        let full = s.mem_usage();
        assert!(full > 2000 * 40, "{full}");
        for i in 0..2000 {
            s.remove(format!("member-{i:05}-with-some-length").as_bytes());
        }
        assert!(s.mem_usage() < full / 10);
        assert_eq!(empty, 0);
        // A small set's table is one 64-byte allocation; migration state lives apart.
        assert!(std::mem::size_of::<Table>() <= 64);
    }

    #[test]
    fn int_text_formats_like_redis() {
        for n in [0, 7, -1, 10, i64::MIN, i64::MAX, -120] {
            assert_eq!(IntText::new(n).as_bytes(), n.to_string().as_bytes());
        }
    }
}
