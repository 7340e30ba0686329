//! One key and its value, laid out compactly: a 32-byte table bucket plus one heap block.
//!
//! Layout of `Entry::blob`, a single allocation per key:
//!
//! ```text
//! [ deadline: u64 LE, only when the key is volatile ][ key bytes ][ inline payload ]
//! ```
//!
//! Integers are stored as 8 bytes of payload (no text), strings up to [`INLINE_MAX`] bytes are
//! stored inline after the key, and anything bigger (or any other type, later) lives in `obj`.
//! Keeping the key, the expiry and a short value in one block saves the separate key, value
//! object and expiry-dictionary allocations Redis pays for, which is where Shoal's per-key
//! memory advantage comes from.

use std::borrow::Cow;

/// Strings up to this many bytes are stored inline in the entry's blob. Longer strings move to a
/// separate growable buffer so that `APPEND` is amortised and an expiry change does not copy them.
pub const INLINE_MAX: usize = 256;

/// Redis reports strings up to this length that were never modified in place as `embstr`.
const EMBSTR_MAX: usize = 44;

/// How a value is stored, mirrored in `OBJECT ENCODING`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Encoding {
    /// A string that is the canonical text of an `i64`, stored as the integer.
    Int = 0,
    /// A short string stored inline, never modified in place (Redis: `embstr`).
    Embstr = 1,
    /// A string stored inline that was created by an in-place edit (Redis: `raw`).
    RawInline = 2,
    /// A long string in its own buffer (Redis: `raw`).
    RawHeap = 3,
}

impl Encoding {
    fn from_bits(bits: u32) -> Encoding {
        match bits & ENC_MASK {
            0 => Encoding::Int,
            1 => Encoding::Embstr,
            2 => Encoding::RawInline,
            _ => Encoding::RawHeap,
        }
    }

    /// The name Redis's `OBJECT ENCODING` uses for this encoding.
    pub fn redis_name(self) -> &'static str {
        match self {
            Encoding::Int => "int",
            Encoding::Embstr => "embstr",
            Encoding::RawInline | Encoding::RawHeap => "raw",
        }
    }
}

/// The data type of a value, as `TYPE` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    String,
}

impl Kind {
    /// The name `TYPE` replies with.
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
        }
    }
}

/// Values that do not fit inline. Later data types (hashes, lists, ...) add variants here.
#[derive(Debug)]
enum Object {
    Str(Vec<u8>),
}

const ENC_MASK: u32 = 0b111;
const VOLATILE: u32 = 1 << 3;
const CLOCK_SHIFT: u32 = 8;
/// The 24-bit access clock (LRU seconds or LFU minutes+counter), as in Redis's `robj.lru`.
pub const CLOCK_MAX: u32 = (1 << 24) - 1;

/// A stored key with its value, expiry and access clock.
#[derive(Debug)]
pub struct Entry {
    blob: Box<[u8]>,
    obj: Option<Box<Object>>,
    key_len: u32,
    meta: u32,
}

/// A borrowed view of a string value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrRef<'a> {
    Int(i64),
    Bytes(&'a [u8]),
}

impl StrRef<'_> {
    /// The value as bytes, formatting integers as Redis does.
    pub fn to_bytes(self) -> Cow<'static, [u8]> {
        match self {
            StrRef::Int(n) => Cow::Owned(n.to_string().into_bytes()),
            StrRef::Bytes(b) => Cow::Owned(b.to_vec()),
        }
    }

    /// The length in bytes of the value's string form (what `STRLEN` reports).
    pub fn len(self) -> usize {
        match self {
            StrRef::Int(n) => int_text_len(n),
            StrRef::Bytes(b) => b.len(),
        }
    }

    /// True when the string is empty.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

fn int_text_len(n: i64) -> usize {
    let mut len = if n < 0 { 2 } else { 1 };
    let mut v = n.unsigned_abs();
    while v >= 10 {
        v /= 10;
        len += 1;
    }
    len
}

/// Parses `bytes` as Redis's `string2ll` does: the canonical decimal form of an `i64`, no sign
/// `+`, no leading zeros, no spaces. Only such strings may be stored as integers, because the
/// stored integer must format back to exactly the same bytes.
pub fn parse_canonical_i64(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || bytes.len() > 20 {
        return None;
    }
    let (neg, digits) = match bytes[0] {
        b'-' => (true, &bytes[1..]),
        _ => (false, bytes),
    };
    if digits.is_empty() || (digits[0] == b'0' && (digits.len() > 1 || neg)) {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let digit = (d - b'0') as i64;
        v = v.checked_mul(10)?;
        v = if neg {
            v.checked_sub(digit)?
        } else {
            v.checked_add(digit)?
        };
    }
    Some(v)
}

/// A value to store as a string. `Raw` forces the `raw` encoding, as in-place edits do in Redis.
pub enum NewString<'a> {
    /// Bytes from a client: stored as an integer when canonical, else inline or on the heap.
    Auto(&'a [u8]),
    /// An integer result (INCR and friends).
    Int(i64),
    /// Bytes produced by an in-place edit (APPEND, SETRANGE): never an integer.
    Raw(Vec<u8>),
    /// Text the server formatted (INCRBYFLOAT): stored as a string, never as an integer, like
    /// Redis's `createStringObject`.
    Text(&'a [u8]),
}

impl Entry {
    /// Builds a string entry.
    pub fn new_string(
        key: &[u8],
        value: NewString<'_>,
        deadline: Option<u64>,
        clock: u32,
    ) -> Entry {
        let mut e = Entry {
            blob: Box::new([]),
            obj: None,
            key_len: 0,
            meta: (clock & CLOCK_MAX) << CLOCK_SHIFT,
        };
        e.rebuild(key, deadline, value);
        e
    }

    /// Rewrites the blob with `key`, `deadline` and the new string payload.
    fn rebuild(&mut self, key: &[u8], deadline: Option<u64>, value: NewString<'_>) {
        let head = if deadline.is_some() { 8 } else { 0 };
        let (enc, payload, obj): (Encoding, Cow<'_, [u8]>, Option<Box<Object>>) = match value {
            NewString::Int(n) => (Encoding::Int, Cow::Owned(n.to_le_bytes().to_vec()), None),
            NewString::Auto(bytes) => match parse_canonical_i64(bytes) {
                Some(n) => (Encoding::Int, Cow::Owned(n.to_le_bytes().to_vec()), None),
                None if bytes.len() <= EMBSTR_MAX => (Encoding::Embstr, Cow::Borrowed(bytes), None),
                None if bytes.len() <= INLINE_MAX => {
                    (Encoding::RawInline, Cow::Borrowed(bytes), None)
                }
                None => (
                    Encoding::RawHeap,
                    Cow::Borrowed(&[][..]),
                    Some(Box::new(Object::Str(bytes.to_vec()))),
                ),
            },
            NewString::Text(bytes) if bytes.len() <= EMBSTR_MAX => {
                (Encoding::Embstr, Cow::Borrowed(bytes), None)
            }
            NewString::Text(bytes) => {
                return self.rebuild(key, deadline, NewString::Raw(bytes.to_vec()))
            }
            NewString::Raw(bytes) if bytes.len() <= INLINE_MAX => {
                (Encoding::RawInline, Cow::Owned(bytes), None)
            }
            NewString::Raw(bytes) => (
                Encoding::RawHeap,
                Cow::Borrowed(&[][..]),
                Some(Box::new(Object::Str(bytes))),
            ),
        };
        let mut blob = Vec::with_capacity(head + key.len() + payload.len());
        if let Some(d) = deadline {
            blob.extend_from_slice(&d.to_le_bytes());
        }
        blob.extend_from_slice(key);
        blob.extend_from_slice(&payload);
        self.blob = blob.into_boxed_slice();
        self.obj = obj;
        self.key_len = key.len() as u32;
        let volatile = if deadline.is_some() { VOLATILE } else { 0 };
        self.meta = (self.meta & !(ENC_MASK | VOLATILE)) | enc as u32 | volatile;
    }

    fn head(&self) -> usize {
        if self.meta & VOLATILE != 0 {
            8
        } else {
            0
        }
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        let h = self.head();
        &self.blob[h..h + self.key_len as usize]
    }

    /// The absolute expiry time in Unix milliseconds, if the key is volatile.
    pub fn deadline(&self) -> Option<u64> {
        if self.meta & VOLATILE == 0 {
            return None;
        }
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.blob[..8]);
        Some(u64::from_le_bytes(b))
    }

    /// True when the key has an expiry.
    pub fn is_volatile(&self) -> bool {
        self.meta & VOLATILE != 0
    }

    /// True when the key has an expiry at or before `now`.
    pub fn is_expired(&self, now: u64) -> bool {
        matches!(self.deadline(), Some(d) if d <= now)
    }

    /// Sets or clears the expiry. The blob is rebuilt only when volatility changes.
    pub fn set_deadline(&mut self, deadline: Option<u64>) {
        match (self.is_volatile(), deadline) {
            (true, Some(d)) => self.blob[..8].copy_from_slice(&d.to_le_bytes()),
            (false, None) => {}
            (true, None) => {
                self.blob = self.blob[8..].to_vec().into_boxed_slice();
                self.meta &= !VOLATILE;
            }
            (false, Some(d)) => {
                let mut blob = Vec::with_capacity(8 + self.blob.len());
                blob.extend_from_slice(&d.to_le_bytes());
                blob.extend_from_slice(&self.blob);
                self.blob = blob.into_boxed_slice();
                self.meta |= VOLATILE;
            }
        }
    }

    /// The value's type.
    pub fn kind(&self) -> Kind {
        Kind::String
    }

    /// The value's encoding.
    pub fn encoding(&self) -> Encoding {
        Encoding::from_bits(self.meta)
    }

    fn payload(&self) -> &[u8] {
        &self.blob[self.head() + self.key_len as usize..]
    }

    /// The string value, or `None` when the key holds another type.
    pub fn as_str(&self) -> Option<StrRef<'_>> {
        match self.encoding() {
            Encoding::Int => {
                let mut b = [0u8; 8];
                b.copy_from_slice(self.payload().get(..8)?);
                Some(StrRef::Int(i64::from_le_bytes(b)))
            }
            Encoding::Embstr | Encoding::RawInline => Some(StrRef::Bytes(self.payload())),
            Encoding::RawHeap => self.obj.as_deref().map(|Object::Str(v)| StrRef::Bytes(v)),
        }
    }

    /// Replaces the value with a string, keeping the key and, if `keep_ttl`, the expiry.
    pub fn set_string(&mut self, value: NewString<'_>, deadline: Option<u64>) {
        let key = self.key().to_vec();
        self.rebuild(&key, deadline, value);
    }

    /// Appends to a string value in place (the caller has checked the type). Long strings grow
    /// their buffer geometrically so repeated appends stay amortised O(1).
    pub fn append(&mut self, tail: &[u8]) {
        if let (Encoding::RawHeap, Some(obj)) = (self.encoding(), self.obj.as_deref_mut()) {
            let Object::Str(v) = obj;
            v.extend_from_slice(tail);
            return;
        }
        let mut bytes = self
            .as_str()
            .map(|s| s.to_bytes().into_owned())
            .unwrap_or_default();
        bytes.extend_from_slice(tail);
        let deadline = self.deadline();
        self.set_string(NewString::Raw(bytes), deadline);
    }

    /// Gives mutable access to the bytes of a string value, converting it to the `raw` encoding
    /// first, for `SETRANGE`. The buffer is grown with zeros to at least `min_len` bytes.
    pub fn edit_bytes(&mut self, min_len: usize, edit: impl FnOnce(&mut Vec<u8>)) {
        if let (Encoding::RawHeap, Some(obj)) = (self.encoding(), self.obj.as_deref_mut()) {
            let Object::Str(v) = obj;
            if v.len() < min_len {
                v.resize(min_len, 0);
            }
            edit(v);
            return;
        }
        let mut bytes = self
            .as_str()
            .map(|s| s.to_bytes().into_owned())
            .unwrap_or_default();
        if bytes.len() < min_len {
            bytes.resize(min_len, 0);
        }
        edit(&mut bytes);
        let deadline = self.deadline();
        self.set_string(NewString::Raw(bytes), deadline);
    }

    /// A copy of this entry under another key, with the same value, expiry and clock (`COPY`).
    pub fn duplicate(&self, key: &[u8]) -> Entry {
        let mut blob = Vec::with_capacity(self.blob.len() - self.key_len as usize + key.len());
        blob.extend_from_slice(&self.blob[..self.head()]);
        blob.extend_from_slice(key);
        blob.extend_from_slice(self.payload());
        Entry {
            blob: blob.into_boxed_slice(),
            obj: self.obj.as_deref().map(|o| match o {
                Object::Str(v) => Box::new(Object::Str(v.clone())),
            }),
            key_len: key.len() as u32,
            meta: self.meta,
        }
    }

    /// This entry moved to another key, keeping its value, expiry and clock (`RENAME`, `MOVE`).
    /// Large values are moved, not copied.
    pub fn rekey(self, key: &[u8]) -> Entry {
        let mut blob = Vec::with_capacity(self.blob.len() - self.key_len as usize + key.len());
        blob.extend_from_slice(&self.blob[..self.head()]);
        blob.extend_from_slice(key);
        blob.extend_from_slice(self.payload());
        Entry {
            blob: blob.into_boxed_slice(),
            obj: self.obj,
            key_len: key.len() as u32,
            meta: self.meta,
        }
    }

    /// The 24-bit access clock (LRU time or LFU data).
    pub fn clock(&self) -> u32 {
        self.meta >> CLOCK_SHIFT
    }

    /// Sets the 24-bit access clock.
    pub fn set_clock(&mut self, clock: u32) {
        self.meta = (self.meta & ((1 << CLOCK_SHIFT) - 1)) | ((clock & CLOCK_MAX) << CLOCK_SHIFT);
    }

    /// An estimate of the bytes this entry costs: its bucket plus its heap blocks rounded up to the
    /// allocator's size classes. Used for `MEMORY USAGE` and for the eviction memory gauge.
    pub fn mem_usage(&self) -> usize {
        let mut total = std::mem::size_of::<Entry>() + alloc_size(self.blob.len());
        if let Some(obj) = self.obj.as_deref() {
            total += alloc_size(std::mem::size_of::<Object>());
            match obj {
                Object::Str(v) => total += alloc_size(v.capacity()),
            }
        }
        total
    }
}

/// Rounds a request up to jemalloc's size classes (8, 16, 32, 48, ... four classes per doubling),
/// so memory estimates follow what the allocator really hands out.
pub fn alloc_size(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    if n <= 8 {
        return 8;
    }
    if n <= 16 {
        return 16;
    }
    if n <= 128 {
        return n.div_ceil(16) * 16;
    }
    let pow = usize::BITS - (n - 1).leading_zeros(); // 2^pow >= n
    let step = 1usize << (pow - 3);
    n.div_ceil(step) * step
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_is_one_bucket_of_32_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 32);
    }

    #[test]
    fn canonical_integers_only() {
        assert_eq!(parse_canonical_i64(b"123"), Some(123));
        assert_eq!(parse_canonical_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_canonical_i64(b"9223372036854775808"), None);
        for bad in [&b"0123"[..], b"+1", b" 1", b"-0", b"", b"-", b"1.0"] {
            assert_eq!(parse_canonical_i64(bad), None, "{bad:?}");
        }
        assert_eq!(parse_canonical_i64(b"0"), Some(0));
    }

    #[test]
    fn encodings_follow_redis_names() {
        let e = Entry::new_string(b"k", NewString::Auto(b"12345"), None, 0);
        assert_eq!(e.encoding().redis_name(), "int");
        assert_eq!(e.as_str(), Some(StrRef::Int(12345)));
        let e = Entry::new_string(b"k", NewString::Auto(b"hello"), None, 0);
        assert_eq!(e.encoding().redis_name(), "embstr");
        let long = vec![b'x'; 45];
        let e = Entry::new_string(b"k", NewString::Auto(&long), None, 0);
        assert_eq!(e.encoding().redis_name(), "raw");
        let huge = vec![b'y'; 1000];
        let e = Entry::new_string(b"k", NewString::Auto(&huge), None, 0);
        assert_eq!(e.as_str(), Some(StrRef::Bytes(&huge[..])));
    }

    #[test]
    fn deadline_round_trips_without_disturbing_key_or_value() {
        let mut e = Entry::new_string(b"key", NewString::Auto(b"value"), None, 7);
        e.set_deadline(Some(99));
        assert_eq!((e.key(), e.deadline()), (&b"key"[..], Some(99)));
        assert_eq!(e.as_str(), Some(StrRef::Bytes(b"value")));
        e.set_deadline(Some(100));
        assert_eq!(e.deadline(), Some(100));
        e.set_deadline(None);
        assert_eq!((e.key(), e.deadline()), (&b"key"[..], None));
        assert_eq!(e.as_str(), Some(StrRef::Bytes(b"value")));
        assert_eq!(e.clock(), 7);
    }

    #[test]
    fn append_crosses_from_inline_to_heap() {
        let mut e = Entry::new_string(b"k", NewString::Auto(b"1"), Some(5), 0);
        for _ in 0..300 {
            e.append(b"ab");
        }
        let s = e.as_str().map(|s| s.len());
        assert_eq!(s, Some(601));
        assert_eq!(e.deadline(), Some(5));
        assert_eq!(e.encoding(), Encoding::RawHeap);
    }

    #[test]
    fn size_classes_look_like_jemalloc() {
        assert_eq!(alloc_size(116), 128);
        assert_eq!(alloc_size(129), 160);
        assert_eq!(alloc_size(200), 224);
        assert_eq!(alloc_size(4097), 5120);
    }
}
