//! Hash values: field/value pairs in a pack while small, a chained hash table past the limits,
//! and the per-field expiry times (Redis 7.4's hash field expiration) kept beside either.
//!
//! The compact encoding is a [`Pack`] of alternating fields and values, searched linearly, as
//! Redis's listpack. It converts, one way, to a [`Table`] once the hash holds more than
//! `hash-max-listpack-entries` fields or a field or value longer than `hash-max-listpack-value`
//! bytes arrives.
//!
//! The table is a chained table with a power-of-two number of buckets, like Redis's `dict`, rather
//! than an open-addressing map. That choice is for `HSCAN`: with chaining, an element lives in
//! the bucket its hash selects, so the reverse-binary cursor Redis uses (see [`Table::scan`])
//! returns every element present for the whole scan at least once even when the table grows or
//! shrinks between calls. An open-addressing table moves elements along probe sequences when it
//! grows, which breaks that guarantee. Each element is one 32-byte node plus one allocation
//! holding the field and value back to back.
//!
//! Field expiry times live in [`Ttls`], created the first time an expiry command touches the
//! hash: a map from field to deadline and the same pairs ordered by deadline, so removing the
//! fields that are due costs O(log n) each and a hash without expiring fields pays nothing.
//! Expired fields are removed by [`Hash::purge_expired`], which commands call before they read
//! (the lazy expiry of fields); the type itself never looks at a clock.

use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::sync::OnceLock;

use super::pack::{Item, Pack};
use super::TypeLimits;
use crate::entry::alloc_size;

/// The hasher of every hash table: seeded randomly once per process, so clients cannot aim
/// fields at one bucket.
fn hasher() -> &'static foldhash::fast::RandomState {
    static STATE: OnceLock<foldhash::fast::RandomState> = OnceLock::new();
    STATE.get_or_init(foldhash::fast::RandomState::default)
}

fn hash_of(field: &[u8]) -> u64 {
    hasher().hash_one(field)
}

/// A hash value.
#[derive(Clone, Debug, Default)]
pub struct Hash {
    repr: Repr,
    /// Field expiry times; `None` until an expiry command first runs on this hash.
    ttl: Option<Box<Ttls>>,
}

#[derive(Clone, Debug)]
enum Repr {
    Pack(Pack),
    /// Boxed so a hash stays three words wide: small hashes are the common case.
    Table(Box<Table>),
}

impl Default for Repr {
    fn default() -> Repr {
        Repr::Pack(Pack::new())
    }
}

impl Hash {
    /// An empty value.
    pub fn new() -> Hash {
        Hash::default()
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Pack(p) => p.len() / 2,
            Repr::Table(t) => t.len,
        }
    }

    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held, in O(1).
    pub fn mem_usage(&self) -> usize {
        let repr = match &self.repr {
            Repr::Pack(p) => p.mem_usage(),
            // The table's own header is boxed too.
            Repr::Table(t) => alloc_size(std::mem::size_of::<Table>()) + t.heap,
        };
        let ttl = self
            .ttl
            .as_ref()
            .map_or(0, |t| alloc_size(std::mem::size_of::<Ttls>()) + t.heap);
        repr + ttl
    }

    /// Redis's `OBJECT ENCODING` name for the current encoding: a pack that has had field
    /// expiry enabled is Redis's `listpackex`.
    pub fn encoding_name(&self) -> &'static str {
        match (&self.repr, &self.ttl) {
            (Repr::Pack(_), None) => "listpack",
            (Repr::Pack(_), Some(_)) => "listpackex",
            (Repr::Table(_), _) => "hashtable",
        }
    }

    /// True once the hash uses the hash table encoding.
    pub fn is_table(&self) -> bool {
        matches!(self.repr, Repr::Table(_))
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<Item<'_>> {
        match &self.repr {
            Repr::Pack(p) => {
                let at = p.find(field, 2)?;
                p.get(p.next(at)?)
            }
            Repr::Table(t) => t.get(field).map(|n| Item::Bytes(n.value())),
        }
    }

    /// True when `field` is present.
    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Sets `field` to `value` as `HSET` does, dropping any expiry time the field had. Returns
    /// true when the field is new.
    pub fn set(&mut self, field: &[u8], value: &[u8], limits: &TypeLimits) -> bool {
        self.clear_deadline(field);
        self.set_keep_ttl(field, value, limits)
    }

    /// Sets `field` to `value` keeping its expiry time (`HINCRBY`, `HSETEX KEEPTTL`). Returns
    /// true when the field is new. Converts to the table first when either string is too long
    /// for the pack, and after inserting when the pack holds too many fields, as Redis does.
    pub fn set_keep_ttl(&mut self, field: &[u8], value: &[u8], limits: &TypeLimits) -> bool {
        let max = limits.hash_max_listpack_value;
        if field.len() > max || value.len() > max {
            self.convert();
        }
        let created = match &mut self.repr {
            Repr::Pack(p) => match p.find(field, 2).and_then(|at| p.next(at)) {
                Some(v) => {
                    p.replace_at(v, value);
                    false
                }
                None => {
                    p.push_back(field);
                    p.push_back(value);
                    true
                }
            },
            Repr::Table(t) => t.insert(field, value),
        };
        if self.len() > limits.hash_max_listpack_entries {
            self.convert();
        }
        created
    }

    /// Removes `field` and its expiry time. Returns true when it was present.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        let removed = match &mut self.repr {
            Repr::Pack(p) => match p.find(field, 2) {
                Some(at) => {
                    p.remove_at(at, 2);
                    true
                }
                None => false,
            },
            Repr::Table(t) => t.remove(field).is_some(),
        };
        if removed {
            self.clear_deadline(field);
        }
        removed
    }

    /// Switches to the hash table encoding (never back).
    fn convert(&mut self) {
        let Repr::Pack(p) = &self.repr else {
            return;
        };
        let mut t = Table::default();
        t.reserve(p.len() / 2);
        let mut items = p.iter();
        while let (Some(f), Some(v)) = (items.next(), items.next()) {
            t.insert(&f.to_vec(), &v.to_vec());
        }
        self.repr = Repr::Table(Box::new(t));
    }

    /// Iterates over the (field, value) pairs, in the encoding's order.
    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Pack(p) => Iter::Pack(p.iter()),
            Repr::Table(t) => Iter::Table {
                buckets: t.old.iter().chain(t.main.iter()),
                node: None,
            },
        }
    }

    /// One `HSCAN` step: calls `visit` for the pairs of the next buckets and returns the next
    /// cursor (0 when done). A pack is visited whole and answers 0, as Redis does for listpacks.
    pub fn scan(
        &self,
        cursor: u64,
        count: usize,
        mut visit: impl FnMut(Item<'_>, Item<'_>),
    ) -> u64 {
        match &self.repr {
            Repr::Pack(_) => {
                for (f, v) in self.iter() {
                    visit(f, v);
                }
                0
            }
            Repr::Table(t) => t.scan(cursor, count, |n| {
                visit(Item::Bytes(n.field()), Item::Bytes(n.value()))
            }),
        }
    }

    /// A random (field, value) pair, drawing random numbers from `rng`; `None` when empty.
    pub fn random_pair(&self, rng: &mut impl FnMut() -> u64) -> Option<(Item<'_>, Item<'_>)> {
        match &self.repr {
            Repr::Pack(p) => {
                let n = p.len() / 2;
                if n == 0 {
                    return None;
                }
                let at = p.nth(2 * (rng() % n as u64) as i64)?;
                Some((p.get(at)?, p.get(p.next(at)?)?))
            }
            Repr::Table(t) => t
                .random(rng)
                .map(|n| (Item::Bytes(n.field()), Item::Bytes(n.value()))),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Field expiry.

    /// Prepares the hash for field expiry times, as Redis converts a listpack to a listpackex
    /// when an expiry command first runs on it.
    pub fn enable_ttl(&mut self) {
        if self.ttl.is_none() {
            self.ttl = Some(Box::default());
        }
    }

    /// The expiry time of `field` (Unix ms), if it has one.
    pub fn deadline(&self, field: &[u8]) -> Option<u64> {
        self.ttl.as_ref()?.by_field.get(field).copied()
    }

    /// Sets or clears the expiry time of a present `field`.
    pub fn set_deadline(&mut self, field: &[u8], deadline: Option<u64>) {
        match deadline {
            None => self.clear_deadline(field),
            Some(d) => {
                self.enable_ttl();
                if let Some(t) = self.ttl.as_mut() {
                    t.set(field, d);
                }
            }
        }
    }

    fn clear_deadline(&mut self, field: &[u8]) {
        if let Some(t) = self.ttl.as_mut() {
            t.clear(field);
        }
    }

    /// The earliest field expiry time, if any field has one.
    pub fn next_deadline(&self) -> Option<u64> {
        self.ttl.as_ref()?.order.first().map(|(d, _)| *d)
    }

    /// True when the hash has fields and every one of them is due at `now`: the key itself
    /// is then as good as expired. O(1).
    pub fn all_fields_due(&self, now: u64) -> bool {
        self.ttl.as_ref().is_some_and(|t| {
            !t.by_field.is_empty()
                && t.by_field.len() == self.len()
                && t.order.last().is_some_and(|(d, _)| *d <= now)
        })
    }

    /// Number of fields with an expiry time.
    pub fn volatile_len(&self) -> usize {
        self.ttl.as_ref().map_or(0, |t| t.by_field.len())
    }

    /// Removes every field whose expiry time is at or before `now`; returns how many.
    pub fn purge_expired(&mut self, now: u64) -> usize {
        self.purge_expired_upto(now, usize::MAX)
    }

    /// [`Hash::purge_expired`], removing at most `max` fields (the background cycle bounds the
    /// work one call does while it holds a stripe lock).
    pub fn purge_expired_upto(&mut self, now: u64, max: usize) -> usize {
        let mut removed = 0;
        while removed < max {
            let Some(field) = self.ttl.as_mut().and_then(|t| t.pop_due(now)) else {
                break;
            };
            match &mut self.repr {
                Repr::Pack(p) => {
                    if let Some(at) = p.find(&field, 2) {
                        p.remove_at(at, 2);
                    }
                }
                Repr::Table(t) => {
                    t.remove(&field);
                }
            }
            removed += 1;
        }
        removed
    }
}

/// Iterator over one bucket array of a hash table.
type Buckets<'a> = std::slice::Iter<'a, Option<Box<Node>>>;

/// Iterator over a hash's (field, value) pairs.
pub enum Iter<'a> {
    Pack(super::pack::Iter<'a>),
    Table {
        buckets: std::iter::Chain<Buckets<'a>, Buckets<'a>>,
        node: Option<&'a Node>,
    },
}

impl<'a> Iterator for Iter<'a> {
    type Item = (Item<'a>, Item<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Pack(items) => Some((items.next()?, items.next()?)),
            Iter::Table { buckets, node } => loop {
                if let Some(n) = node.take() {
                    *node = n.next.as_deref();
                    return Some((Item::Bytes(n.field()), Item::Bytes(n.value())));
                }
                *node = buckets.next()?.as_deref();
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The hash table encoding.

/// One field/value pair of the table: the two strings back to back in one allocation.
#[derive(Clone, Debug)]
pub struct Node {
    next: Option<Box<Node>>,
    split: usize,
    data: Box<[u8]>,
}

impl Node {
    fn new(field: &[u8], value: &[u8]) -> Box<Node> {
        let mut data = Vec::with_capacity(field.len() + value.len());
        data.extend_from_slice(field);
        data.extend_from_slice(value);
        Box::new(Node {
            next: None,
            split: field.len(),
            data: data.into_boxed_slice(),
        })
    }

    fn field(&self) -> &[u8] {
        self.data.get(..self.split).unwrap_or_default()
    }

    /// Replaces the value, in place when it has the old one's length.
    fn set_value(&mut self, value: &[u8]) {
        match self.data.get_mut(self.split..) {
            Some(old) if old.len() == value.len() => old.copy_from_slice(value),
            _ => {
                let mut data = Vec::with_capacity(self.split + value.len());
                data.extend_from_slice(self.field());
                data.extend_from_slice(value);
                self.data = data.into_boxed_slice();
            }
        }
    }

    fn value(&self) -> &[u8] {
        self.data.get(self.split..).unwrap_or_default()
    }

    /// Heap bytes of this node and its strings.
    fn heap(&self) -> usize {
        alloc_size(std::mem::size_of::<Node>()) + alloc_size(self.data.len())
    }
}

/// A chained hash table with a power-of-two bucket count, grown when it holds more elements
/// than buckets and shrunk below one element per eight buckets.
///
/// Resizing is incremental, as in Redis's `dict`: a resize allocates the new bucket array and
/// keeps the old one, and every write moves a few of the old buckets over ([`REHASH_STEP`]),
/// so no single command pays for moving the whole table. While both arrays are in use, new
/// elements go to `main`, lookups search both, and `old`'s buckets below `moved` are empty.
#[derive(Clone, Debug, Default)]
struct Table {
    main: Vec<Option<Box<Node>>>,
    /// The array being emptied into `main`; empty when no resize is under way.
    old: Vec<Option<Box<Node>>>,
    /// Buckets of `old` already moved.
    moved: usize,
    len: usize,
    /// Heap bytes of the bucket arrays and every node, kept as elements come and go.
    heap: usize,
}

const MIN_BUCKETS: usize = 4;

/// Non-empty buckets moved per write while resizing; ten times as many empty ones may be passed
/// over, as Redis bounds its `dictRehash` steps.
const REHASH_STEP: usize = 4;

/// A bucket array of `n` empty buckets (zeroed memory, which the allocator may hand out without
/// writing it).
fn buckets(n: usize) -> Vec<Option<Box<Node>>> {
    vec![None; n]
}

fn array_heap(b: &[Option<Box<Node>>]) -> usize {
    alloc_size(std::mem::size_of_val(b))
}

fn chain(b: &[Option<Box<Node>>], h: u64) -> Option<&Node> {
    b.get((h as usize) & b.len().wrapping_sub(1))?.as_deref()
}

impl Table {
    fn rehashing(&self) -> bool {
        !self.old.is_empty()
    }

    fn reserve(&mut self, n: usize) {
        let want = n.max(MIN_BUCKETS).next_power_of_two();
        if want > self.main.len() && !self.rehashing() {
            self.heap -= array_heap(&self.main);
            self.main = buckets(want);
            self.heap += array_heap(&self.main);
        }
    }

    fn get(&self, field: &[u8]) -> Option<&Node> {
        if self.len == 0 {
            return None;
        }
        let h = hash_of(field);
        let mut node = chain(&self.main, h);
        while let Some(n) = node {
            if n.field() == field {
                return Some(n);
            }
            node = n.next.as_deref();
        }
        let mut node = chain(&self.old, h);
        while let Some(n) = node {
            if n.field() == field {
                return Some(n);
            }
            node = n.next.as_deref();
        }
        None
    }

    /// The node of `field`, searching both arrays.
    fn find_mut(&mut self, field: &[u8], h: u64) -> Option<&mut Node> {
        for b in [&mut self.main, &mut self.old] {
            let mask = b.len().wrapping_sub(1);
            let mut cur = b
                .get_mut((h as usize) & mask)
                .and_then(|c| c.as_deref_mut());
            while let Some(n) = cur {
                if n.field() == field {
                    return Some(n);
                }
                cur = n.next.as_deref_mut();
            }
        }
        None
    }

    /// Inserts or replaces; returns true when the field is new.
    fn insert(&mut self, field: &[u8], value: &[u8]) -> bool {
        self.rehash_step();
        let h = hash_of(field);
        if let Some(n) = self.find_mut(field, h) {
            let old = n.heap();
            n.set_value(value);
            let new = n.heap();
            self.heap = self.heap + new - old;
            return false;
        }
        if self.main.is_empty() {
            self.main = buckets(MIN_BUCKETS);
            self.heap += array_heap(&self.main);
        }
        let mask = self.main.len() - 1;
        let Some(head) = self.main.get_mut((h as usize) & mask) else {
            return false;
        };
        let mut node = Node::new(field, value);
        self.heap += node.heap();
        node.next = head.take();
        *head = Some(node);
        self.len += 1;
        if self.len > self.main.len() && !self.rehashing() {
            self.start_resize(self.main.len() * 2);
        }
        true
    }

    /// Unlinks and returns the node of `field`.
    fn remove(&mut self, field: &[u8]) -> Option<Box<Node>> {
        if self.len == 0 {
            return None;
        }
        self.rehash_step();
        let h = hash_of(field);
        let node = unlink(&mut self.main, field, h).or_else(|| unlink(&mut self.old, field, h))?;
        self.len -= 1;
        self.heap -= node.heap();
        if !self.rehashing() && self.main.len() > MIN_BUCKETS && self.len * 8 < self.main.len() {
            self.start_resize((self.len.max(1) * 2).next_power_of_two().max(MIN_BUCKETS));
        }
        Some(node)
    }

    /// Makes a fresh array of `n` buckets the main one and starts moving the elements over.
    fn start_resize(&mut self, n: usize) {
        self.old = std::mem::replace(&mut self.main, buckets(n));
        self.moved = 0;
        self.heap += array_heap(&self.main);
        self.rehash_step();
    }

    /// Moves up to [`REHASH_STEP`] non-empty buckets of `old` into `main`, freeing `old` once
    /// it is empty.
    #[inline]
    fn rehash_step(&mut self) {
        if self.rehashing() {
            self.rehash_buckets();
        }
    }

    fn rehash_buckets(&mut self) {
        let mask = self.main.len() - 1;
        let mut moved = 0;
        let mut empty = 0;
        while moved < REHASH_STEP && empty < REHASH_STEP * 10 {
            let Some(slot) = self.old.get_mut(self.moved) else {
                break;
            };
            self.moved += 1;
            let mut next = slot.take();
            if next.is_none() {
                empty += 1;
                continue;
            }
            while let Some(mut n) = next {
                next = n.next.take();
                if let Some(head) = self.main.get_mut((hash_of(n.field()) as usize) & mask) {
                    n.next = head.take();
                    *head = Some(n);
                }
            }
            moved += 1;
        }
        if self.moved >= self.old.len() {
            self.heap -= array_heap(&self.old);
            self.old = Vec::new();
            self.moved = 0;
        }
    }

    /// Visits whole buckets from `cursor` until at least `count` elements were visited (or
    /// ten times `count` buckets were looked at, as Redis bounds empty stretches), returning
    /// the next cursor.
    ///
    /// The cursor is Redis's reverse-binary bucket index: it is incremented in its high bits
    /// first. When the table doubles, bucket `b` splits into `b` and `b + size`, which in
    /// reversed order come right after each other, both at or after the cursor; when it halves,
    /// buckets merge into one already at or after the cursor's masked value. Either way no
    /// bucket that still holds unvisited elements is skipped, so an element present for the
    /// whole scan is returned at least once (possibly twice after a shrink). While a resize is
    /// under way each step visits the cursor's bucket in the smaller array and every bucket of
    /// the larger one that it expands to, as Redis's `dictScan` does.
    fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(&Node)) -> u64 {
        if self.main.is_empty() {
            return 0;
        }
        let mut visit_chain = |b: &[Option<Box<Node>>], i: u64| -> usize {
            let mut visited = 0;
            let mut node = b.get(i as usize).and_then(|n| n.as_deref());
            while let Some(n) = node {
                visit(n);
                visited += 1;
                node = n.next.as_deref();
            }
            visited
        };
        let (small, large) = if self.old.len() < self.main.len() {
            (&self.old, &self.main)
        } else {
            (&self.main, &self.old)
        };
        let mut v = cursor;
        let mut visited = 0usize;
        let mut budget = count.max(1).saturating_mul(10);
        loop {
            if small.is_empty() {
                let m = (large.len() - 1) as u64;
                visited += visit_chain(large, v & m);
                v = next_cursor(v, m);
            } else {
                let m0 = (small.len() - 1) as u64;
                let m1 = (large.len() - 1) as u64;
                visited += visit_chain(small, v & m0);
                loop {
                    visited += visit_chain(large, v & m1);
                    v = next_cursor(v, m1);
                    if v & (m0 ^ m1) == 0 {
                        break;
                    }
                }
            }
            budget -= 1;
            if v == 0 || visited >= count || budget == 0 {
                return v;
            }
        }
    }

    /// A bucket of the two arrays taken as one sequence, `old`'s first.
    fn bucket_at(&self, i: usize) -> Option<&Node> {
        match i.checked_sub(self.old.len()) {
            None => self.old.get(i)?.as_deref(),
            Some(j) => self.main.get(j)?.as_deref(),
        }
    }

    /// A random element: a random non-empty bucket, then a random element of its chain.
    fn random(&self, rng: &mut impl FnMut() -> u64) -> Option<&Node> {
        if self.len == 0 {
            return None;
        }
        // Buckets of `old` below `moved` are known to be empty.
        let first = self.moved;
        let span = self.old.len() + self.main.len() - first;
        // The table is at least one-eighth full, so a non-empty bucket turns up quickly; the
        // linear fallback only guarantees termination.
        let mut b = first + (rng() % span as u64) as usize;
        for _ in 0..64 {
            if self.bucket_at(b).is_some() {
                break;
            }
            b = first + (rng() % span as u64) as usize;
        }
        let mut head = self.bucket_at(b);
        while head.is_none() {
            b = if b + 1 >= first + span { first } else { b + 1 };
            head = self.bucket_at(b);
        }
        let head = head?;
        let mut chain = 0usize;
        let mut node = Some(head);
        while let Some(n) = node {
            chain += 1;
            node = n.next.as_deref();
        }
        let mut pick = (rng() % chain as u64) as usize;
        let mut node = head;
        while pick > 0 {
            node = node.next.as_deref()?;
            pick -= 1;
        }
        Some(node)
    }
}

/// Redis's reverse-binary cursor increment for a table of mask `m`.
fn next_cursor(v: u64, m: u64) -> u64 {
    (v | !m).reverse_bits().wrapping_add(1).reverse_bits()
}

/// Unlinks the node of `field` from its chain in `b`.
fn unlink(b: &mut [Option<Box<Node>>], field: &[u8], h: u64) -> Option<Box<Node>> {
    let mask = b.len().wrapping_sub(1);
    let mut link = b.get_mut((h as usize) & mask)?;
    while link.as_ref().is_some_and(|n| n.field() != field) {
        link = &mut link.as_mut()?.next;
    }
    let mut node = link.take()?;
    *link = node.next.take();
    Some(node)
}

// ---------------------------------------------------------------------------------------------
// Field expiry times.

/// Deadlines of the fields that have one, by field and in deadline order.
#[derive(Clone, Debug, Default)]
struct Ttls {
    by_field: hashbrown::HashMap<Box<[u8]>, u64, foldhash::fast::RandomState>,
    order: BTreeSet<(u64, Box<[u8]>)>,
    /// Estimated heap bytes of both structures.
    heap: usize,
}

/// Estimated bytes per field in the two indexes besides the field copies: a map slot, a tree
/// element and the tree's share of node overhead.
const TTL_ENTRY_OVERHEAD: usize = 64;

impl Ttls {
    fn entry_heap(field: &[u8]) -> usize {
        2 * alloc_size(field.len()) + TTL_ENTRY_OVERHEAD
    }

    fn set(&mut self, field: &[u8], deadline: u64) {
        match self.by_field.get_mut(field) {
            Some(old) => {
                self.order.remove(&(*old, Box::from(field)));
                *old = deadline;
            }
            None => {
                self.by_field.insert(Box::from(field), deadline);
                self.heap += Ttls::entry_heap(field);
            }
        }
        self.order.insert((deadline, Box::from(field)));
    }

    fn clear(&mut self, field: &[u8]) {
        if let Some(old) = self.by_field.remove(field) {
            self.order.remove(&(old, Box::from(field)));
            self.heap -= Ttls::entry_heap(field);
        }
    }

    /// Removes and returns the earliest field whose deadline is at or before `now`.
    fn pop_due(&mut self, now: u64) -> Option<Box<[u8]>> {
        let (deadline, _) = self.order.first()?;
        if *deadline > now {
            return None;
        }
        let (_, field) = self.order.pop_first()?;
        self.by_field.remove(&field);
        self.heap -= Ttls::entry_heap(&field);
        Some(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(entries: usize, value: usize) -> TypeLimits {
        TypeLimits {
            hash_max_listpack_entries: entries,
            hash_max_listpack_value: value,
            ..TypeLimits::default()
        }
    }

    fn pairs(h: &Hash) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut v: Vec<_> = h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
        v.sort();
        v
    }

    #[test]
    fn pack_keeps_insertion_order_and_replaces_in_place() {
        let l = TypeLimits::default();
        let mut h = Hash::new();
        assert!(h.set(b"a", b"1", &l));
        assert!(h.set(b"b", b"two", &l));
        assert!(!h.set(b"a", b"one", &l));
        assert_eq!(h.encoding_name(), "listpack");
        let order: Vec<Vec<u8>> = h.iter().map(|(f, _)| f.to_vec()).collect();
        assert_eq!(order, vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(h.get(b"a"), Some(Item::Bytes(b"one")));
        assert!(h.remove(b"a") && !h.remove(b"a"));
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn converts_past_either_threshold() {
        let l = limits(2, 4);
        let mut h = Hash::new();
        h.set(b"a", b"1", &l);
        h.set(b"b", b"2", &l);
        assert_eq!(h.encoding_name(), "listpack");
        h.set(b"c", b"3", &l);
        assert_eq!(h.encoding_name(), "hashtable");
        assert_eq!(h.len(), 3);
        assert_eq!(h.get(b"b"), Some(Item::Bytes(b"2")));

        let mut h = Hash::new();
        h.set(b"a", b"12345", &l);
        assert_eq!(h.encoding_name(), "hashtable");
    }

    #[test]
    fn table_grows_shrinks_and_accounts_memory() {
        let l = limits(0, 64);
        let mut h = Hash::new();
        let base = h.mem_usage();
        for i in 0..1000 {
            h.set(format!("f{i}").as_bytes(), format!("v{i}").as_bytes(), &l);
        }
        assert_eq!(h.len(), 1000);
        let full = h.mem_usage();
        assert!(full > base + 1000 * 32);
        for i in 0..1000 {
            assert_eq!(
                h.get(format!("f{i}").as_bytes()).map(Item::to_vec),
                Some(format!("v{i}").into_bytes())
            );
        }
        for i in 0..990 {
            assert!(h.remove(format!("f{i}").as_bytes()));
        }
        assert_eq!(h.len(), 10);
        assert!(h.mem_usage() < full / 10);
        let Repr::Table(t) = &h.repr else {
            panic!("still a table")
        };
        let mut recount = alloc_size(t.main.capacity() * 8) + alloc_size(t.old.capacity() * 8);
        for (f, v) in h.iter() {
            recount += alloc_size(32) + alloc_size(f.text_len() + v.text_len());
        }
        assert_eq!(t.heap, recount);
    }

    #[test]
    fn scan_returns_every_stable_field_across_growth_and_shrink() {
        let l = limits(0, 64);
        let mut h = Hash::new();
        for i in 0..500 {
            h.set(format!("keep{i}").as_bytes(), b"v", &l);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut step = 0;
        loop {
            cursor = h.scan(cursor, 7, |f, _| {
                seen.insert(f.to_vec());
            });
            // Grow the table during the scan, then shrink it again.
            step += 1;
            if step == 5 {
                for i in 0..3000 {
                    h.set(format!("tmp{i}").as_bytes(), b"v", &l);
                }
            }
            if step == 40 {
                for i in 0..3000 {
                    h.remove(format!("tmp{i}").as_bytes());
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..500 {
            assert!(
                seen.contains(format!("keep{i}").as_bytes()),
                "keep{i} missed"
            );
        }
    }

    #[test]
    fn resizes_are_incremental_and_everything_stays_reachable() {
        let l = limits(0, 64);
        let mut h = Hash::new();
        let table = |h: &Hash| match &h.repr {
            Repr::Table(t) => (t.rehashing(), t.heap, t.main.len() + t.old.len()),
            Repr::Pack(_) => (false, 0, 0),
        };
        let recount = |h: &Hash| {
            let Repr::Table(t) = &h.repr else {
                return 0;
            };
            h.iter()
                .map(|(f, v)| alloc_size(32) + alloc_size(f.text_len() + v.text_len()))
                .sum::<usize>()
                + alloc_size(t.main.len() * 8)
                + alloc_size(t.old.len() * 8)
        };
        let mut seen_rehash = false;
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        for i in 0..5000 {
            h.set(format!("f{i}").as_bytes(), b"v", &l);
            let (rehashing, heap, _) = table(&h);
            if rehashing {
                seen_rehash = true;
                assert_eq!(heap, recount(&h));
                assert!(h.contains(b"f0") && h.contains(format!("f{}", i / 2).as_bytes()));
            }
            // A scan runs alongside the growth, collecting the first 100 fields.
            if i >= 100 && (i == 100 || cursor != 0) {
                cursor = h.scan(cursor, 3, |f, _| {
                    seen.insert(f.to_vec());
                });
            }
        }
        assert!(seen_rehash);
        while cursor != 0 {
            cursor = h.scan(cursor, 3, |f, _| {
                seen.insert(f.to_vec());
            });
        }
        for i in 0..100 {
            assert!(seen.contains(format!("f{i}").as_bytes()), "f{i} missed");
        }
        assert_eq!(h.iter().count(), 5000);
        // Shrinking is incremental too, and a scan across it still sees the survivors.
        let mut seen = std::collections::HashSet::new();
        let mut cursor = h.scan(0, 3, |f, _| {
            seen.insert(f.to_vec());
        });
        for i in 100..5000 {
            assert!(h.remove(format!("f{i}").as_bytes()));
            assert_eq!(table(&h).1, recount(&h));
            if cursor != 0 && i % 20 == 0 {
                cursor = h.scan(cursor, 3, |f, _| {
                    seen.insert(f.to_vec());
                });
            }
        }
        while cursor != 0 {
            cursor = h.scan(cursor, 3, |f, _| {
                seen.insert(f.to_vec());
            });
        }
        for i in 0..100 {
            assert!(seen.contains(format!("f{i}").as_bytes()), "f{i} missed");
        }
        assert!(table(&h).2 <= 1024);
    }

    #[test]
    fn field_expiry_purges_due_fields_only() {
        let l = TypeLimits::default();
        let mut h = Hash::new();
        for f in ["a", "b", "c"] {
            h.set(f.as_bytes(), b"v", &l);
        }
        h.set_deadline(b"a", Some(100));
        h.set_deadline(b"b", Some(200));
        assert_eq!(h.encoding_name(), "listpackex");
        assert_eq!(h.next_deadline(), Some(100));
        assert_eq!(h.purge_expired(99), 0);
        assert_eq!(h.purge_expired(150), 1);
        assert!(!h.contains(b"a"));
        // HSET drops the expiry time; HINCRBY-style sets keep it.
        h.set_keep_ttl(b"b", b"w", &l);
        assert_eq!(h.deadline(b"b"), Some(200));
        h.set(b"b", b"x", &l);
        assert_eq!(h.deadline(b"b"), None);
        assert_eq!(h.purge_expired(1000), 0);
        assert_eq!(pairs(&h).len(), 2);
        h.set_deadline(b"c", Some(5));
        h.remove(b"c");
        assert_eq!(h.volatile_len(), 0);
        assert_eq!(h.mem_usage(), {
            let mut g = h.clone();
            g.ttl = None;
            g.mem_usage() + alloc_size(std::mem::size_of::<Ttls>())
        });
    }

    #[test]
    fn random_pairs_come_from_the_hash() {
        let mut x = 7u64;
        let mut rng = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for limit in [128, 0] {
            let l = limits(limit, 64);
            let mut h = Hash::new();
            assert!(h.random_pair(&mut rng).is_none());
            for i in 0..50 {
                h.set(format!("f{i}").as_bytes(), format!("{i}").as_bytes(), &l);
            }
            for _ in 0..100 {
                let (f, v) = h.random_pair(&mut rng).expect("non-empty");
                assert_eq!(h.get(&f.to_vec()).map(Item::to_vec), Some(v.to_vec()));
            }
        }
    }
}
