//! A pack: a compact run of small strings and integers in one byte buffer, Shoal's counterpart
//! of Redis's listpack, used for small hashes, sets, sorted sets and list nodes.
//!
//! Each element is `[header][data][backlen]`:
//!
//! ```text
//! header 0x00..=0x7F      string of 0..=127 bytes follows
//! header 0x80..=0xBF + b  string of ((h & 0x3F) << 8 | b) bytes follows (up to 16383)
//! header 0xC0 + u32 LE    string of that many bytes follows
//! header 0xC1..=0xC8      integer in (h - 0xC0) little-endian two's-complement bytes
//! header 0xC9..=0xFF      the integer h - 0xC9 (0..=54) itself, no data: small counters,
//!                         scores and flags take two bytes, as listpack's 7-bit integers do
//! backlen                 length of header+data, 7 bits per byte, read from the right
//! ```
//!
//! The back length lets a cursor walk backwards, so list nodes pop from either end without a
//! scan. Strings that are the canonical text of an `i64` are stored as integers, as listpack
//! does; [`Item`] turns them back into the same text. Positions are byte offsets into the
//! buffer; they stay valid until the pack is modified before or at them.

use crate::entry::{alloc_size, parse_canonical_i64};

/// One element of a pack, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item<'a> {
    Int(i64),
    Bytes(&'a [u8]),
}

impl Item<'_> {
    /// The element as the bytes a client sees.
    pub fn to_vec(self) -> Vec<u8> {
        self.with_text(<[u8]>::to_vec)
    }

    /// Runs `f` on the element's text; an integer is formatted on the stack, so reading an
    /// element never allocates.
    pub fn with_text<R>(self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Item::Bytes(b) => f(b),
            Item::Int(n) => {
                let mut digits = [0u8; 20];
                f(format_i64(n, &mut digits))
            }
        }
    }

    /// True when the element equals these bytes as a client sees them.
    pub fn eq_bytes(self, other: &[u8]) -> bool {
        match self {
            Item::Bytes(b) => b == other,
            Item::Int(n) => parse_canonical_i64(other) == Some(n),
        }
    }

    /// The element as an integer, when it is one or its text is an integer.
    pub fn as_int(self) -> Option<i64> {
        match self {
            Item::Int(n) => Some(n),
            Item::Bytes(b) => parse_canonical_i64(b),
        }
    }

    /// Length of the element's text.
    pub fn text_len(self) -> usize {
        match self {
            Item::Int(n) => {
                let mut len = if n < 0 { 2 } else { 1 };
                let mut v = n.unsigned_abs();
                while v >= 10 {
                    v /= 10;
                    len += 1;
                }
                len
            }
            Item::Bytes(b) => b.len(),
        }
    }

    /// Compares two elements by their text, byte-wise (the order lex ranges use).
    pub fn cmp_bytes(self, other: &[u8]) -> std::cmp::Ordering {
        match self {
            Item::Bytes(b) => b.cmp(other),
            Item::Int(n) => n.to_string().as_bytes().cmp(other),
        }
    }
}

/// A compact sequence of elements in one buffer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pack {
    /// `[count: u32 LE][elements]`, or nothing at all when empty. Exactly sized: like a
    /// listpack, a pack is reallocated to its size on every change (which the allocator does in
    /// place within a size class), because small collections are many and spare capacity in
    /// each would cost more than the copies. Keeping the count in the buffer keeps a pack
    /// two words wide, so the collection types that embed one stay small.
    buf: Box<[u8]>,
}

/// Bytes of the element count at the start of a non-empty buffer.
const HEADER: usize = 4;

impl Pack {
    /// An empty pack (no allocation).
    pub fn new() -> Pack {
        Pack::default()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self.buf.get(..HEADER) {
            Some(h) => u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize,
            None => 0,
        }
    }

    fn set_len(&mut self, n: usize) {
        if n == 0 {
            self.buf = Box::default();
        } else if let Some(h) = self.buf.get_mut(..HEADER) {
            h.copy_from_slice(&(n as u32).to_le_bytes());
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.buf.len() <= HEADER
    }

    /// Bytes of encoded data (the figure listpack size limits compare against).
    pub fn byte_len(&self) -> usize {
        self.buf.len().saturating_sub(HEADER)
    }

    /// Heap bytes held, rounded to the allocator's size classes.
    pub fn mem_usage(&self) -> usize {
        alloc_size(self.buf.len())
    }

    /// Runs an edit on the buffer as a vector, then trims it back to its exact size.
    fn edit<R>(&mut self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        let mut v = std::mem::take(&mut self.buf).into_vec();
        if v.is_empty() {
            v.reserve_exact(HEADER);
            v.extend_from_slice(&[0; HEADER]);
        }
        let out = f(&mut v);
        self.buf = v.into_boxed_slice();
        out
    }

    /// The position just past the last element, where [`Pack::insert_at`] appends.
    pub fn end(&self) -> usize {
        self.buf.len().max(HEADER)
    }

    /// The position of the first element.
    pub fn first(&self) -> Option<usize> {
        (self.buf.len() > HEADER).then_some(HEADER)
    }

    /// The position of the last element.
    pub fn last(&self) -> Option<usize> {
        self.prev(self.buf.len())
    }

    /// The position after the element at `pos`.
    pub fn next(&self, pos: usize) -> Option<usize> {
        let (_, end) = self.read(pos)?;
        (end < self.buf.len()).then_some(end)
    }

    /// The position before `pos` (which may be the end of the buffer).
    pub fn prev(&self, pos: usize) -> Option<usize> {
        if pos <= HEADER || pos > self.buf.len() {
            return None;
        }
        // Almost every element is shorter than 128 bytes: a back length of one byte.
        let last = *self.buf.get(pos - 1)?;
        if last & 0x80 == 0 {
            return (pos - 1)
                .checked_sub(last as usize)
                .filter(|p| *p >= HEADER);
        }
        // Read the back length right to left: the rightmost byte holds the low 7 bits and the
        // high bit of each byte says whether another byte follows to the left.
        let mut i = pos;
        let mut value = 0usize;
        let mut shift = 0;
        loop {
            i = i.checked_sub(1).filter(|i| *i >= HEADER)?;
            let b = *self.buf.get(i)?;
            value |= ((b & 0x7F) as usize) << shift;
            shift += 7;
            if b & 0x80 == 0 || shift > 35 {
                break;
            }
        }
        i.checked_sub(value).filter(|p| *p >= HEADER)
    }

    /// The element at `pos`.
    pub fn get(&self, pos: usize) -> Option<Item<'_>> {
        self.read(pos).map(|(item, _)| item)
    }

    /// The element at `pos` and the position just after it (back length included), from one
    /// decoding of its header: what a cursor walking forward needs at each step.
    #[inline]
    pub fn read(&self, pos: usize) -> Option<(Item<'_>, usize)> {
        if pos < HEADER {
            return None;
        }
        let buf = &self.buf[..];
        let h = *buf.get(pos)?;
        let (item, body) = match h {
            0x00..=0x7F => {
                let len = h as usize;
                (Item::Bytes(buf.get(pos + 1..pos + 1 + len)?), 1 + len)
            }
            SMALL_INT..=0xFF => (Item::Int((h - SMALL_INT) as i64), 1),
            0x80..=0xBF => {
                let len = (((h & 0x3F) as usize) << 8) | *buf.get(pos + 1)? as usize;
                (Item::Bytes(buf.get(pos + 2..pos + 2 + len)?), 2 + len)
            }
            0xC0 => {
                let len = u32::from_le_bytes(buf.get(pos + 1..pos + 5)?.try_into().ok()?) as usize;
                (Item::Bytes(buf.get(pos + 5..pos + 5 + len)?), 5 + len)
            }
            0xC1..=0xC8 => {
                let n = (h - 0xC0) as usize;
                let raw = buf.get(pos + 1..pos + 1 + n)?;
                let fill = if raw[n - 1] & 0x80 != 0 { 0xFF } else { 0 };
                let mut b = [fill; 8];
                b[..n].copy_from_slice(raw);
                (Item::Int(i64::from_le_bytes(b)), 1 + n)
            }
        };
        Some((item, pos + body + backlen_len(body)))
    }

    /// Iterates over the elements from the first.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            pack: self,
            pos: self.first(),
        }
    }

    /// Iterates over the elements from the last.
    pub fn iter_rev(&self) -> impl Iterator<Item = Item<'_>> + '_ {
        let mut pos = self.last();
        std::iter::from_fn(move || {
            let p = pos?;
            pos = self.prev(p);
            self.get(p)
        })
    }

    /// The position of the `index`-th element (negative counts from the end, -1 = last).
    pub fn nth(&self, index: i64) -> Option<usize> {
        if index >= 0 {
            let mut pos = self.first();
            for _ in 0..index {
                pos = self.next(pos?);
            }
            pos
        } else {
            let mut pos = self.last();
            for _ in 0..(-(index + 1)) {
                pos = self.prev(pos?);
            }
            pos
        }
    }

    /// The position of the first element equal to `value`, stepping `skip` elements after each
    /// comparison (1 for plain sequences, 2 to search the fields of field/value pairs).
    pub fn find(&self, value: &[u8], skip: usize) -> Option<usize> {
        let as_int = parse_canonical_i64(value);
        let mut pos = self.first();
        while let Some(p) = pos {
            let hit = match (self.get(p)?, as_int) {
                (Item::Int(n), Some(v)) => n == v,
                (Item::Bytes(b), None) => b == value,
                _ => false,
            };
            if hit {
                return Some(p);
            }
            pos = Some(p);
            for _ in 0..skip.max(1) {
                pos = self.next(pos?);
            }
        }
        None
    }

    /// Appends an element.
    pub fn push_back(&mut self, value: &[u8]) {
        let end = self.buf.len();
        self.insert_at(end, value);
    }

    /// Appends an integer element.
    pub fn push_int(&mut self, value: i64) {
        let enc = encode_int(value);
        self.edit(|b| {
            b.reserve_exact(enc.len);
            b.extend_from_slice(&enc.bytes[..enc.len]);
        });
        self.set_len(self.len() + 1);
    }

    /// Prepends an element.
    pub fn push_front(&mut self, value: &[u8]) {
        self.insert_at(0, value);
    }

    /// Inserts an element before the one at `pos` (or at the end when `pos` is the buffer
    /// length).
    pub fn insert_at(&mut self, pos: usize, value: &[u8]) {
        let pos = pos.clamp(HEADER, self.buf.len().max(HEADER));
        self.edit(|b| write_element(b, pos..pos, value));
        self.set_len(self.len() + 1);
    }

    /// Replaces the element at `pos` with `value`.
    pub fn replace_at(&mut self, pos: usize, value: &[u8]) {
        let Some((_, end)) = self.read(pos) else {
            return;
        };
        self.edit(|b| write_element(b, pos..end, value));
    }

    /// Removes `count` elements starting at `pos`; returns the position now holding the element
    /// that followed them (or `None` at the end).
    pub fn remove_at(&mut self, pos: usize, count: usize) -> Option<usize> {
        let pos = pos.max(HEADER);
        let mut end = pos;
        let mut removed = 0;
        while removed < count {
            match self.read(end) {
                Some((_, next)) => {
                    end = next;
                    removed += 1;
                }
                None => break,
            }
        }
        if removed == 0 {
            return self.get(pos).map(|_| pos);
        }
        self.edit(|b| {
            b.drain(pos..end);
        });
        self.set_len(self.len() - removed);
        (pos < self.buf.len()).then_some(pos)
    }

    /// Removes every element.
    pub fn clear(&mut self) {
        self.buf = Box::default();
    }
}

/// Forward iterator over a pack.
pub struct Iter<'a> {
    pack: &'a Pack,
    pos: Option<usize>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        let p = self.pos?;
        let (item, end) = self.pack.read(p)?;
        self.pos = (end < self.pack.buf.len()).then_some(end);
        Some(item)
    }
}

fn int_width(n: i64) -> usize {
    let b = n.to_le_bytes();
    let mut len = 8;
    while len > 1 {
        let top = b[len - 1];
        let next_sign = b[len - 2] & 0x80;
        if (top == 0 && next_sign == 0) || (top == 0xFF && next_sign != 0) {
            len -= 1;
        } else {
            break;
        }
    }
    len
}

#[inline]
fn backlen_len(body: usize) -> usize {
    if body < 0x80 {
        return 1;
    }
    let mut n = 1;
    let mut v = body >> 7;
    while v > 0 {
        n += 1;
        v >>= 7;
    }
    n
}

struct IntEnc {
    bytes: [u8; 11],
    len: usize,
}

/// The first header byte of an immediate small integer.
const SMALL_INT: u8 = 0xC9;

fn encode_int(n: i64) -> IntEnc {
    let mut bytes = [0u8; 11];
    if (0..=(0xFF - SMALL_INT) as i64).contains(&n) {
        bytes[0] = SMALL_INT + n as u8;
        bytes[1] = 1;
        return IntEnc { bytes, len: 2 };
    }
    let w = int_width(n);
    bytes[0] = 0xC0 + w as u8;
    bytes[1..1 + w].copy_from_slice(&n.to_le_bytes()[..w]);
    // The body is at most 9 bytes, so the back length is one byte.
    bytes[1 + w] = (1 + w) as u8;
    IntEnc { bytes, len: 2 + w }
}

/// Writes `value` as one element in place of `range` of `buf`, without building it in a
/// temporary buffer first (every push of a small collection comes through here).
fn write_element(buf: &mut Vec<u8>, range: std::ops::Range<usize>, value: &[u8]) {
    if let Some(n) = parse_canonical_i64(value) {
        let enc = encode_int(n);
        put(buf, range, [&enc.bytes[..enc.len], &[], &[]]);
        return;
    }
    let len = value.len();
    let mut head = [0u8; 5];
    let head_len = if len <= 0x7F {
        head[0] = len as u8;
        1
    } else if len <= 0x3FFF {
        head[0] = 0x80 | (len >> 8) as u8;
        head[1] = (len & 0xFF) as u8;
        2
    } else {
        head[0] = 0xC0;
        head[1..5].copy_from_slice(&(len as u32).to_le_bytes());
        5
    };
    let body = head_len + len;
    // The back length goes most significant group first (leftmost), every byte but that one
    // with the high bit set, so a reader going left from the end knows another group follows.
    let mut back = [0u8; 5];
    let back_len = backlen_len(body);
    for (k, i) in (0..back_len).rev().enumerate() {
        let group = ((body >> (7 * i)) & 0x7F) as u8;
        back[k] = if i + 1 == back_len {
            group
        } else {
            group | 0x80
        };
    }
    put(buf, range, [&head[..head_len], value, &back[..back_len]]);
}

/// Replaces `range` of `buf` with the concatenation of `parts`: one exact reservation, one
/// move of the bytes after the range (none when appending), then plain copies.
fn put(buf: &mut Vec<u8>, range: std::ops::Range<usize>, parts: [&[u8]; 3]) {
    let n: usize = parts.iter().map(|p| p.len()).sum();
    let old = buf.len();
    let (start, end) = (range.start.min(old), range.end.min(old));
    let end = end.max(start);
    let new_len = old - (end - start) + n;
    if start == old {
        // Appending: no bytes to move, nothing to zero first.
        buf.reserve_exact(n);
        for part in parts {
            buf.extend_from_slice(part);
        }
        return;
    }
    if new_len > old {
        buf.reserve_exact(new_len - old);
        buf.resize(new_len, 0);
    }
    buf.copy_within(end..old, start + n);
    buf.truncate(new_len);
    let mut at = start;
    for part in parts {
        if let Some(dst) = buf.get_mut(at..at + part.len()) {
            dst.copy_from_slice(part);
        }
        at += part.len();
    }
}

/// Writes `n` in decimal into `out`, returning the digits (with the sign).
fn format_i64(n: i64, out: &mut [u8; 20]) -> &[u8] {
    let mut v = n.unsigned_abs();
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        i -= 1;
        out[i] = b'-';
    }
    &out[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(p: &Pack) -> Vec<Vec<u8>> {
        p.iter().map(Item::to_vec).collect()
    }

    #[test]
    fn round_trips_every_header_form_both_ways() {
        let values: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"a".to_vec(),
            b"12".to_vec(),
            b"-1".to_vec(),
            b"007".to_vec(),
            i64::MIN.to_string().into_bytes(),
            i64::MAX.to_string().into_bytes(),
            vec![b'x'; 127],
            vec![b'y'; 128],
            vec![b'z'; 16383],
            vec![b'w'; 16384],
            vec![b'v'; 70000],
        ];
        let mut p = Pack::new();
        for v in &values {
            p.push_back(v);
        }
        assert_eq!(p.len(), values.len());
        assert_eq!(texts(&p), values);
        let mut rev: Vec<Vec<u8>> = p.iter_rev().map(Item::to_vec).collect();
        rev.reverse();
        assert_eq!(rev, values);
        assert_eq!(p.get(p.nth(2).unwrap()), Some(Item::Int(12)));
        assert_eq!(p.get(p.nth(4).unwrap()), Some(Item::Bytes(b"007")));
        assert_eq!(
            p.get(p.nth(-1).unwrap()).unwrap().to_vec(),
            vec![b'v'; 70000]
        );
        assert!(p.nth(12).is_none() && p.nth(-13).is_none());
    }

    #[test]
    fn insert_replace_remove_and_find() {
        let mut p = Pack::new();
        for v in ["f1", "v1", "f2", "2", "f3", "v3"] {
            p.push_back(v.as_bytes());
        }
        assert_eq!(p.find(b"f2", 2), p.nth(2));
        assert_eq!(
            p.find(b"v1", 2),
            None,
            "values are skipped when searching fields"
        );
        assert_eq!(p.find(b"2", 1), p.nth(3));
        let at = p.nth(3).unwrap();
        p.replace_at(at, b"a much longer value than before");
        p.push_front(b"head");
        assert_eq!(
            texts(&p)[..5],
            [
                &b"head"[..],
                b"f1",
                b"v1",
                b"f2",
                b"a much longer value than before"
            ]
            .map(|s| s.to_vec())
        );
        let at = p.nth(1).unwrap();
        let next = p.remove_at(at, 2).unwrap();
        assert_eq!(p.get(next), Some(Item::Bytes(b"f2")));
        assert_eq!(p.len(), 5);
        let last = p.last().unwrap();
        assert_eq!(p.remove_at(last, 1), None);
        assert_eq!(p.len(), 4);
        p.clear();
        assert!(p.is_empty() && p.first().is_none() && p.last().is_none());
    }

    #[test]
    fn small_integers_take_two_bytes() {
        let mut p = Pack::new();
        for v in ["0", "54", "55", "-1"] {
            p.push_back(v.as_bytes());
        }
        // 2 + 2 bytes immediate, 3 + 3 bytes one-byte integers, after the count.
        assert_eq!(p.byte_len(), 10);
        assert_eq!(
            texts(&p),
            [
                b"0".to_vec(),
                b"54".to_vec(),
                b"55".to_vec(),
                b"-1".to_vec()
            ]
        );
        let rev: Vec<Item<'_>> = p.iter_rev().collect();
        assert_eq!(
            rev,
            [Item::Int(-1), Item::Int(55), Item::Int(54), Item::Int(0)]
        );
    }

    #[test]
    fn items_compare_as_text() {
        assert!(Item::Int(10).eq_bytes(b"10"));
        assert!(!Item::Int(10).eq_bytes(b"010"));
        assert_eq!(Item::Int(10).cmp_bytes(b"9"), std::cmp::Ordering::Less);
        assert_eq!(Item::Int(-123).text_len(), 4);
    }
}
