//! One node of a stream: a run of consecutive entries packed in one buffer, like the listpacks
//! Redis keeps in its radix tree.
//!
//! The buffer starts with the node's *master fields* (the field names of its first entry), then
//! holds the entries in ID order:
//!
//! ```text
//! master field   varint length, bytes                       (repeated `master_fields` times)
//! entry          flags byte, ms delta varint, seq delta zigzag varint,
//!                [field count varint, then field, value, ...]  or, with SAME_FIELDS,
//!                [value, ...] for the master fields
//! ```
//!
//! IDs are stored as deltas from the node's first ID (its key in the stream's tree). Deleted
//! entries stay in place with the `DELETED` flag, as in Redis, until the whole node goes.
//!
//! Besides its own bytes, a node tracks how many bytes Redis's listpack for the same entries
//! would take (`lp_bytes`): Redis starts a new node when that size reaches
//! `stream-node-max-bytes`, and node boundaries are visible to clients (`XINFO STREAM`'s
//! `radix-tree-keys`, approximate trimming), so Shoal splits nodes at the same entries.

use super::StreamId;
use crate::entry::{alloc_size, parse_canonical_i64};

const DELETED: u8 = 1;
const SAME_FIELDS: u8 = 2;

/// A node of packed entries.
#[derive(Clone, Debug)]
pub(super) struct Node {
    buf: Vec<u8>,
    /// Where the first entry starts (after the master fields).
    entries_at: usize,
    master_fields: usize,
    /// Entries not marked deleted.
    pub(super) live: usize,
    /// Entries marked deleted.
    pub(super) deleted: usize,
    /// The listpack size of everything but the header and the two counters.
    lp_body: usize,
    /// The node's first ID (its key), the base of the deltas.
    pub(super) master: StreamId,
    /// The ID of the last entry, deleted or not.
    pub(super) last: StreamId,
}

/// Where an entry sits in its node, as found by a scan.
#[derive(Clone, Copy, Debug)]
pub(super) struct Slot {
    pub(super) id: StreamId,
    /// Offset of the flags byte.
    pub(super) at: usize,
    pub(super) deleted: bool,
}

impl Node {
    /// A node holding one entry; its fields become the master fields.
    pub(super) fn new<T: AsRef<[u8]>>(id: StreamId, pairs: &[T]) -> Node {
        let nfields = pairs.len() / 2;
        let mut node = Node {
            buf: Vec::new(),
            entries_at: 0,
            master_fields: nfields,
            live: 0,
            deleted: 0,
            // The master field count and the zero terminator of the master entry.
            lp_body: lp_int_size(nfields as i64) + lp_int_size(0),
            master: id,
            last: id,
        };
        for field in pairs.iter().step_by(2) {
            let field = field.as_ref();
            put_bytes(&mut node.buf, field);
            node.lp_body += lp_str_size(field);
        }
        node.entries_at = node.buf.len();
        node.push(id, pairs);
        node
    }

    /// Heap bytes held.
    pub(super) fn mem_usage(&self) -> usize {
        alloc_size(self.buf.capacity())
    }

    /// Gives back the buffer's spare capacity, once the node is complete.
    pub(super) fn shrink(&mut self) {
        self.buf.shrink_to_fit();
    }

    /// The size Redis's listpack would have.
    pub(super) fn lp_bytes(&self) -> usize {
        // Header (total bytes, element count), end byte, then the two counters.
        6 + 1 + lp_int_size(self.live as i64) + lp_int_size(self.deleted as i64) + self.lp_body
    }

    /// Appends an entry; `id` must be greater than every ID in the node.
    pub(super) fn push<T: AsRef<[u8]>>(&mut self, id: StreamId, pairs: &[T]) {
        let nfields = pairs.len() / 2;
        let same = nfields == self.master_fields
            && self
                .master_field_iter()
                .zip(pairs.iter().step_by(2))
                .all(|(m, f)| m == f.as_ref());
        let ms_delta = id.ms.wrapping_sub(self.master.ms);
        let seq_delta = id.seq.wrapping_sub(self.master.seq) as i64;
        self.buf.push(if same { SAME_FIELDS } else { 0 });
        put_varint(&mut self.buf, ms_delta);
        put_varint(&mut self.buf, zigzag(seq_delta));
        let mut lp = lp_int_size(0) + lp_int_size(ms_delta as i64) + lp_int_size(seq_delta);
        let mut lp_count = 3 + nfields;
        if !same {
            put_varint(&mut self.buf, nfields as u64);
            lp += lp_int_size(nfields as i64);
            lp_count += nfields + 1;
        }
        for (i, item) in pairs.iter().enumerate() {
            let item = item.as_ref();
            if i % 2 == 1 || !same {
                put_bytes(&mut self.buf, item);
                lp += lp_str_size(item);
            }
        }
        lp += lp_int_size(lp_count as i64);
        self.lp_body += lp;
        self.live += 1;
        self.last = id;
    }

    fn master_field_iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut at = 0;
        (0..self.master_fields).map(move |_| {
            let (b, next) = get_bytes(&self.buf, at);
            at = next;
            b
        })
    }

    /// Every entry of the node, deleted ones included, in ID order.
    pub(super) fn scan(&self) -> Vec<Slot> {
        let mut out = Vec::with_capacity(self.live + self.deleted);
        let mut at = self.entries_at;
        while at < self.buf.len() {
            let e = self.decode(at);
            out.push(Slot {
                id: e.id,
                at,
                deleted: e.flags & DELETED != 0,
            });
            at = e.end;
        }
        out
    }

    /// The entry at `at` (an offset from [`Node::scan`]).
    pub(super) fn entry(&self, at: usize) -> Decoded<'_> {
        self.decode(at)
    }

    /// Marks the entry at `at` deleted; false when it already was.
    pub(super) fn mark_deleted(&mut self, at: usize) -> bool {
        match self.buf.get_mut(at) {
            Some(flags) if *flags & DELETED == 0 => {
                *flags |= DELETED;
                self.live -= 1;
                self.deleted += 1;
                true
            }
            _ => false,
        }
    }

    fn decode(&self, at: usize) -> Decoded<'_> {
        let flags = self.buf.get(at).copied().unwrap_or(DELETED);
        let (ms_delta, p) = get_varint(&self.buf, at + 1);
        let (seq_delta, mut p) = get_varint(&self.buf, p);
        let id = StreamId {
            ms: self.master.ms.wrapping_add(ms_delta),
            seq: self.master.seq.wrapping_add(unzigzag(seq_delta) as u64),
        };
        let same = flags & SAME_FIELDS != 0;
        let nfields = if same {
            self.master_fields
        } else {
            let (n, next) = get_varint(&self.buf, p);
            p = next;
            n as usize
        };
        let fields_at = p;
        let items = if same { nfields } else { nfields * 2 };
        for _ in 0..items {
            p = get_bytes(&self.buf, p).1;
        }
        Decoded {
            id,
            flags,
            fields: Fields {
                buf: &self.buf,
                at: fields_at,
                master_at: if same { Some(0) } else { None },
                left: nfields,
            },
            end: p,
        }
    }
}

/// A decoded entry.
pub(super) struct Decoded<'a> {
    pub(super) id: StreamId,
    flags: u8,
    pub(super) fields: Fields<'a>,
    end: usize,
}

/// The field-value pairs of an entry.
#[derive(Clone, Debug)]
pub struct Fields<'a> {
    buf: &'a [u8],
    at: usize,
    /// Where the next master field name is read, for entries with the master's fields.
    master_at: Option<usize>,
    left: usize,
}

impl<'a> Iterator for Fields<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let field = match self.master_at.as_mut() {
            Some(m) => {
                let (f, next) = get_bytes(self.buf, *m);
                *m = next;
                f
            }
            None => {
                let (f, next) = get_bytes(self.buf, self.at);
                self.at = next;
                f
            }
        };
        let (value, next) = get_bytes(self.buf, self.at);
        self.at = next;
        Some((field, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Fields<'_> {}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Reads a varint at `at`; a truncated buffer (which the node never writes) reads as 0.
fn get_varint(buf: &[u8], mut at: usize) -> (u64, usize) {
    let mut v = 0u64;
    let mut shift = 0;
    while let Some(&b) = buf.get(at) {
        at += 1;
        if shift < 64 {
            v |= u64::from(b & 0x7F) << shift;
        }
        shift += 7;
        if b & 0x80 == 0 {
            break;
        }
    }
    (v, at)
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_varint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

fn get_bytes(buf: &[u8], at: usize) -> (&[u8], usize) {
    let (len, at) = get_varint(buf, at);
    let end = at.saturating_add(len as usize).min(buf.len());
    (buf.get(at..end).unwrap_or(&[]), end)
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Bytes a listpack spends on its back-length field for an element of `len` bytes.
fn lp_backlen(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

/// Bytes a listpack spends on an integer element.
fn lp_int_size(v: i64) -> usize {
    let enc = match v {
        0..=127 => 1,
        -4096..=4095 => 2,
        -32768..=32767 => 3,
        -8388608..=8388607 => 4,
        -2147483648..=2147483647 => 5,
        _ => 9,
    };
    enc + lp_backlen(enc)
}

/// Bytes a listpack spends on a string element (stored as an integer when it is one).
fn lp_str_size(s: &[u8]) -> usize {
    if let Some(v) = parse_canonical_i64(s) {
        return lp_int_size(v);
    }
    let enc = match s.len() {
        0..=63 => 1 + s.len(),
        64..=4095 => 2 + s.len(),
        _ => 5 + s.len(),
    };
    enc + lp_backlen(enc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    #[test]
    fn entries_round_trip_with_and_without_master_fields() {
        let mut n = Node::new(id(5, 3), &["a", "1", "b", "2"]);
        n.push(id(5, 4), &["a", "x", "b", "y"]);
        n.push(id(9, 0), &["c", "z"]);
        let slots = n.scan();
        assert_eq!(
            slots.iter().map(|s| s.id).collect::<Vec<_>>(),
            [id(5, 3), id(5, 4), id(9, 0)]
        );
        let fields: Vec<Vec<(&[u8], &[u8])>> = slots
            .iter()
            .map(|s| n.entry(s.at).fields.collect())
            .collect();
        assert_eq!(fields[1], [(&b"a"[..], &b"x"[..]), (b"b", b"y")]);
        assert_eq!(fields[2], [(&b"c"[..], &b"z"[..])]);
        assert!(n.mark_deleted(slots[1].at));
        assert!(!n.mark_deleted(slots[1].at));
        assert_eq!((n.live, n.deleted), (2, 1));
    }

    #[test]
    fn listpack_sizes_follow_redis() {
        // One entry "f" => "v": header 7, count 2, deleted 2, master count 2, "f" 3,
        // terminator 2, flags 2, deltas 2 + 2, "v" 3, lp-count 2.
        let n = Node::new(id(1, 1), &["f", "v"]);
        assert_eq!(n.lp_bytes(), 7 + 2 + 2 + 2 + 3 + 2 + 2 + 2 + 2 + 3 + 2);
        assert_eq!(lp_str_size(b"12345"), 3 + 1);
        assert_eq!(lp_str_size(b"0123"), 5 + 1);
    }
}
