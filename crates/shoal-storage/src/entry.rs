//! One key and its value, laid out compactly: a 16-byte table bucket plus one heap block.
//!
//! The bucket holds a thin pointer to the block, the block's length and 32 bits of metadata
//! (encoding, volatility and the 24-bit LRU/LFU clock). The block holds everything else:
//!
//! ```text
//! [ deadline: u64 LE, only when volatile ][ key length: LEB128 ][ key ][ payload ]
//! ```
//!
//! The payload is an integer in as few little-endian bytes as it needs, a string of up to
//! [`INLINE_MAX`] bytes, or (for longer strings, and later for other types) the address of a
//! separately allocated object. One block per key replaces the separate key, value object,
//! dictionary entry and expiry-dictionary entry that Redis allocates, which is where Shoal's
//! per-key memory saving comes from.
//!
//! This is the one place in Shoal with hand-written `unsafe` code: the block is allocated and
//! freed with `std::alloc` so the bucket can hold a thin pointer instead of a 16-byte slice
//! reference. Every access goes through [`Entry::bytes`] and [`Entry::bytes_mut`], which build
//! the slice from the pointer and the stored length; the invariants are listed on [`Entry`].

use std::borrow::Cow;
use std::ptr::NonNull;

use crate::types::hash::Hash;
use crate::types::list::List;
use crate::types::set::Set;
use crate::types::stream::Stream;
use crate::types::zset::ZSet;

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
    /// A collection (hash, list, set, sorted set, stream) in its own object; the object knows
    /// its own encoding.
    Object = 4,
}

impl Encoding {
    fn from_bits(bits: u32) -> Encoding {
        match bits & ENC_MASK {
            0 => Encoding::Int,
            1 => Encoding::Embstr,
            2 => Encoding::RawInline,
            3 => Encoding::RawHeap,
            _ => Encoding::Object,
        }
    }

    /// The name Redis's `OBJECT ENCODING` uses for a string in this encoding (collections
    /// answer through [`Entry::encoding_name`]).
    pub fn redis_name(self) -> &'static str {
        match self {
            Encoding::Int => "int",
            Encoding::Embstr => "embstr",
            Encoding::RawInline | Encoding::RawHeap => "raw",
            Encoding::Object => "unknown",
        }
    }
}

/// The data type of a value, as `TYPE` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    String,
    Hash,
    List,
    Set,
    ZSet,
    Stream,
}

impl Kind {
    /// The name `TYPE` replies with.
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Hash => "hash",
            Kind::List => "list",
            Kind::Set => "set",
            Kind::ZSet => "zset",
            Kind::Stream => "stream",
        }
    }
}

/// Values that do not fit inline: long strings and every collection.
#[derive(Debug, Clone)]
pub enum Object {
    /// A long string (only ever created by the string constructors).
    Str(Vec<u8>),
    Hash(Hash),
    /// Boxed, like sets and streams, so the enum stays four words wide: small hashes and sorted
    /// sets, which are many, embed their pack directly.
    List(Box<List>),
    Set(Box<Set>),
    ZSet(ZSet),
    /// Boxed: a stream's bookkeeping is much larger than the other types'.
    Stream(Box<Stream>),
}

impl Object {
    /// The type `TYPE` reports.
    pub fn kind(&self) -> Kind {
        match self {
            Object::Str(_) => Kind::String,
            Object::Hash(_) => Kind::Hash,
            Object::List(_) => Kind::List,
            Object::Set(_) => Kind::Set,
            Object::ZSet(_) => Kind::ZSet,
            Object::Stream(_) => Kind::Stream,
        }
    }

    /// Heap bytes held by the value (not counting the object itself).
    fn mem_usage(&self) -> usize {
        match self {
            Object::Str(v) => alloc_size(v.capacity()),
            Object::Hash(h) => h.mem_usage(),
            Object::List(l) => alloc_size(std::mem::size_of::<List>()) + l.mem_usage(),
            Object::Set(s) => alloc_size(std::mem::size_of::<Set>()) + s.mem_usage(),
            Object::ZSet(z) => z.mem_usage(),
            Object::Stream(s) => alloc_size(std::mem::size_of::<Stream>()) + s.mem_usage(),
        }
    }

    /// True for a collection with no elements, which Redis never keeps: the write path deletes
    /// the key. Streams are the exception (an empty stream keeps its ID and groups).
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Object::Str(_) | Object::Stream(_) => false,
            Object::Hash(h) => h.is_empty(),
            Object::List(l) => l.is_empty(),
            Object::Set(s) => s.is_empty(),
            Object::ZSet(z) => z.is_empty(),
        }
    }

    fn encoding_name(&self) -> &'static str {
        match self {
            Object::Str(_) => "raw",
            Object::Hash(h) => h.encoding_name(),
            Object::List(l) => l.encoding_name(),
            Object::Set(s) => s.encoding_name(),
            Object::ZSet(z) => z.encoding_name(),
            Object::Stream(s) => s.encoding_name(),
        }
    }
}

const ENC_MASK: u32 = 0b111;
const VOLATILE: u32 = 1 << 3;
const CLOCK_SHIFT: u32 = 8;
/// The 24-bit access clock (LRU seconds or LFU minutes+counter), as in Redis's `robj.lru`.
pub const CLOCK_MAX: u32 = (1 << 24) - 1;
/// The payload of a heap-encoded value: the object's address.
const PTR_BYTES: usize = std::mem::size_of::<usize>();
/// Bytes of a collection stored inline at the end of its block.
const OBJ_BYTES: usize = std::mem::size_of::<Object>();
/// Every block is allocated with this alignment, so an inline object can sit at an offset that
/// is a multiple of it. The allocator hands out at least this alignment anyway.
const BLOCK_ALIGN: usize = 8;
const _: () = assert!(std::mem::align_of::<Object>() <= BLOCK_ALIGN);
// Collections live inline in their entry's block: keeping the enum at four words keeps a small
// hash or sorted set at two allocations (block and pack).
const _: () = assert!(OBJ_BYTES <= 32);
/// Longest key an entry can hold: the block length is 32 bits.
pub const MAX_KEY_LEN: usize = u32::MAX as usize - 64;

/// A stored key with its value, expiry and access clock.
///
/// Invariants the `unsafe` code relies on:
/// - `ptr` points to a live allocation of exactly `len` bytes (alignment [`BLOCK_ALIGN`]), owned by this entry
///   alone and freed only by [`Drop`] or by [`Entry::replace_block`];
/// - `len >= 1` (the key length byte is always there);
/// - when the encoding is [`Encoding::RawHeap`], the last [`PTR_BYTES`] bytes of the block hold
///   the exposed address of a `Box<Object>` owned by this entry;
/// - when the encoding is [`Encoding::Object`], the block is `[prefix][Object]`: the last
///   [`OBJ_BYTES`] bytes, at an offset that is a multiple of [`BLOCK_ALIGN`], hold a live
///   `Object` owned by this entry, and the prefix (deadline, key length, key, zeroed padding)
///   is the only part ever viewed as bytes;
/// - blocks are allocated with alignment [`BLOCK_ALIGN`].
pub struct Entry {
    ptr: NonNull<u8>,
    len: u32,
    meta: u32,
}

// SAFETY: an entry owns its block and its object exclusively, like a `Box`, and exposes them only
// through `&self`/`&mut self`, so moving it to or sharing it with another thread is as safe as
// doing so with a `Box<[u8]>`.
unsafe impl Send for Entry {}
// SAFETY: see `Send`; shared access only reads.
unsafe impl Sync for Entry {}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("key", &String::from_utf8_lossy(self.key()))
            .field("encoding", &self.encoding())
            .field("deadline", &self.deadline())
            .finish()
    }
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

/// The payload a new block will carry.
enum Payload<'a> {
    /// Bytes to copy in.
    Bytes(&'a [u8]),
    /// Bytes to copy in, from a vector the caller gave up.
    Owned(Vec<u8>),
    /// An integer, stored in as few bytes as it needs.
    Int(i64),
    /// A separately allocated value; the block stores its address and owns it.
    Object(Box<Object>),
    /// The raw payload of another block, copied verbatim: an object address moves with its
    /// ownership, so the old block must then be freed without dropping the object.
    Moved(&'a [u8]),
    /// A collection to store inline, at the block's end.
    Inline(Object),
    /// Another block's inline collection, moved bit for bit: the old block must then be freed
    /// without dropping it.
    MovedObject(*const Object),
}

fn leb128_len(mut v: usize) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// The minimal little-endian two's-complement bytes of `n` (at least one).
fn int_bytes(n: i64) -> ([u8; 8], usize) {
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
    (b, len)
}

fn int_from_bytes(p: &[u8]) -> Option<i64> {
    if p.is_empty() || p.len() > 8 {
        return None;
    }
    let fill = if p[p.len() - 1] & 0x80 != 0 { 0xFF } else { 0 };
    let mut b = [fill; 8];
    b[..p.len()].copy_from_slice(p);
    Some(i64::from_le_bytes(b))
}

/// Chooses the encoding and payload of a new string value.
fn encode(value: NewString<'_>) -> (Encoding, Payload<'_>) {
    fn heap(v: Vec<u8>) -> (Encoding, Payload<'static>) {
        (Encoding::RawHeap, Payload::Object(Box::new(Object::Str(v))))
    }
    match value {
        NewString::Int(n) => (Encoding::Int, Payload::Int(n)),
        NewString::Auto(bytes) => match parse_canonical_i64(bytes) {
            Some(n) => (Encoding::Int, Payload::Int(n)),
            None if bytes.len() <= EMBSTR_MAX => (Encoding::Embstr, Payload::Bytes(bytes)),
            None if bytes.len() <= INLINE_MAX => (Encoding::RawInline, Payload::Bytes(bytes)),
            None => heap(bytes.to_vec()),
        },
        NewString::Text(bytes) if bytes.len() <= EMBSTR_MAX => {
            (Encoding::Embstr, Payload::Bytes(bytes))
        }
        NewString::Text(bytes) if bytes.len() <= INLINE_MAX => {
            (Encoding::RawInline, Payload::Bytes(bytes))
        }
        NewString::Text(bytes) => heap(bytes.to_vec()),
        NewString::Raw(bytes) if bytes.len() <= INLINE_MAX => {
            (Encoding::RawInline, Payload::Owned(bytes))
        }
        NewString::Raw(bytes) => heap(bytes),
    }
}

impl Entry {
    /// Builds a string entry. Keys longer than [`MAX_KEY_LEN`] are cut to it; the protocol
    /// limits (`proto-max-bulk-len` is capped below it) keep that from ever happening.
    pub fn new_string(
        key: &[u8],
        value: NewString<'_>,
        deadline: Option<u64>,
        clock: u32,
    ) -> Entry {
        let key = &key[..key.len().min(MAX_KEY_LEN)];
        let (enc, payload) = encode(value);
        let volatile = if deadline.is_some() { VOLATILE } else { 0 };
        let (ptr, len) = alloc_block(deadline, key, payload);
        Entry {
            ptr,
            len,
            meta: ((clock & CLOCK_MAX) << CLOCK_SHIFT) | volatile | enc as u32,
        }
    }

    /// Bytes of the block that are plain bytes: all of it, except an inline object.
    fn prefix_len(&self) -> usize {
        match self.encoding() {
            Encoding::Object => (self.len as usize).saturating_sub(OBJ_BYTES),
            _ => self.len as usize,
        }
    }

    /// The block's bytes (without an inline object, whose padding is not plain bytes).
    fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` points to `len` bytes owned by `self`, of which the first `prefix_len`
        // are initialised plain bytes (type invariant).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.prefix_len()) }
    }

    /// The block's bytes, mutably (without an inline object).
    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `&mut self` guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.prefix_len()) }
    }

    /// Where an inline object lives (only meaningful for [`Encoding::Object`]).
    fn inline_object(&self) -> *mut Object {
        // SAFETY: `prefix_len <= len`, so the pointer stays inside (or one past) the block.
        unsafe { self.ptr.as_ptr().add(self.prefix_len()).cast::<Object>() }
    }

    fn head(&self) -> usize {
        if self.meta & VOLATILE != 0 {
            8
        } else {
            0
        }
    }

    /// Where the key starts and ends in the block.
    fn key_range(&self) -> (usize, usize) {
        let b = self.bytes();
        let mut pos = self.head();
        let mut key_len = 0usize;
        let mut shift = 0;
        while let Some(&byte) = b.get(pos) {
            key_len |= ((byte & 0x7F) as usize) << shift;
            pos += 1;
            shift += 7;
            if byte & 0x80 == 0 || shift > 35 {
                break;
            }
        }
        (pos, (pos + key_len).min(b.len()))
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        let (start, end) = self.key_range();
        &self.bytes()[start..end]
    }

    fn payload(&self) -> &[u8] {
        let (_, end) = self.key_range();
        &self.bytes()[end..]
    }

    fn has_object(&self) -> bool {
        matches!(self.encoding(), Encoding::RawHeap | Encoding::Object)
    }

    /// The object of a heap-encoded value: inline for collections, boxed for long strings.
    fn object(&self) -> Option<&Object> {
        if self.encoding() == Encoding::Object {
            // SAFETY: an Object block ends with a live, aligned `Object` owned by this entry
            // (type invariant); the shared borrow of `self` keeps it alive and unaliased by
            // writers.
            return Some(unsafe { &*self.inline_object() });
        }
        if !self.has_object() {
            return None;
        }
        let addr = usize::from_le_bytes(self.payload().try_into().ok()?);
        // SAFETY: a RawHeap block's payload is the exposed address of a live `Box<Object>` owned
        // by this entry (type invariant); the shared borrow of `self` keeps it alive.
        Some(unsafe { &*std::ptr::with_exposed_provenance::<Object>(addr) })
    }

    fn object_mut(&mut self) -> Option<&mut Object> {
        if self.encoding() == Encoding::Object {
            // SAFETY: as in `object`, and `&mut self` guarantees exclusive access.
            return Some(unsafe { &mut *self.inline_object() });
        }
        if !self.has_object() {
            return None;
        }
        let addr = usize::from_le_bytes(self.payload().try_into().ok()?);
        // SAFETY: as in `object`, and `&mut self` guarantees exclusive access.
        Some(unsafe { &mut *std::ptr::with_exposed_provenance_mut::<Object>(addr) })
    }

    /// Takes ownership of the object out of the block, if any, leaving the block's payload
    /// meaningless: the caller must replace or free the block next.
    fn take_object(&mut self) -> Option<Object> {
        if self.encoding() == Encoding::Object {
            let at = self.inline_object();
            // SAFETY: the block ends with a live `Object` owned by this entry (type invariant).
            // It is read out once: the bytes are then zeroed and the encoding switched to a
            // plain-bytes one, so nothing reads or drops it again.
            let obj = unsafe { std::ptr::read(at) };
            unsafe { std::ptr::write_bytes(at.cast::<u8>(), 0, OBJ_BYTES) };
            self.meta = (self.meta & !ENC_MASK) | Encoding::RawInline as u32;
            return Some(obj);
        }
        if !self.has_object() {
            return None;
        }
        let addr = usize::from_le_bytes(self.payload().try_into().ok()?);
        // Mark the value inline so nothing reads the address again.
        self.meta = (self.meta & !ENC_MASK) | Encoding::RawInline as u32;
        // SAFETY: the address came from `Box::into_raw` in `alloc_block` and is owned by this
        // entry; switching the encoding above guarantees it is reclaimed only once.
        let boxed = unsafe { Box::from_raw(std::ptr::with_exposed_provenance_mut::<Object>(addr)) };
        Some(*boxed)
    }

    /// Swaps in a new block, freeing the old one without touching any object its payload
    /// addresses (ownership of that object has been moved or taken by the caller).
    fn replace_block(&mut self, (ptr, len): (NonNull<u8>, u32)) {
        let old = std::mem::replace(&mut self.ptr, ptr);
        let old_len = std::mem::replace(&mut self.len, len);
        // SAFETY: `old` was allocated by `alloc_block` with `old_len` bytes and is no longer
        // referenced.
        unsafe { free_block(old, old_len) };
    }

    /// The absolute expiry time in Unix milliseconds, if the key is volatile.
    pub fn deadline(&self) -> Option<u64> {
        if self.meta & VOLATILE == 0 {
            return None;
        }
        let b: [u8; 8] = self.bytes().get(..8)?.try_into().ok()?;
        Some(u64::from_le_bytes(b))
    }

    /// True when the key has an expiry.
    pub fn is_volatile(&self) -> bool {
        self.meta & VOLATILE != 0
    }

    /// True when the key has an expiry at or before `now`, or is a hash whose every field has
    /// one (so lookups, `SCAN` and `DBSIZE`-style counts treat a hash whose last field expired
    /// as gone, the way Redis's field expiry deletes it).
    pub fn is_expired(&self, now: u64) -> bool {
        match self.deadline() {
            Some(d) if d <= now => true,
            _ => {
                self.encoding() == Encoding::Object
                    && matches!(self.object(), Some(Object::Hash(h)) if h.all_fields_due(now))
            }
        }
    }

    /// Sets or clears the expiry. The block is rebuilt only when volatility changes; a heap
    /// value's object moves to the new block without being copied.
    pub fn set_deadline(&mut self, deadline: Option<u64>) {
        match (self.is_volatile(), deadline) {
            (true, Some(d)) => self.bytes_mut()[..8].copy_from_slice(&d.to_le_bytes()),
            (false, None) => {}
            _ => {
                let block = self.rebuilt_block(deadline, None);
                self.replace_block(block);
                self.meta = (self.meta & !VOLATILE) | if deadline.is_some() { VOLATILE } else { 0 };
            }
        }
    }

    /// The value's type.
    pub fn kind(&self) -> Kind {
        match self.encoding() {
            Encoding::Object => self.object().map_or(Kind::String, Object::kind),
            _ => Kind::String,
        }
    }

    /// Redis's `OBJECT ENCODING` name for the value.
    pub fn encoding_name(&self) -> &'static str {
        match self.encoding() {
            Encoding::Object => self.object().map_or("unknown", Object::encoding_name),
            e => e.redis_name(),
        }
    }

    /// Builds an entry holding a collection.
    pub fn new_object(key: &[u8], value: Object, deadline: Option<u64>, clock: u32) -> Entry {
        let key = &key[..key.len().min(MAX_KEY_LEN)];
        let enc = match value {
            Object::Str(_) => Encoding::RawHeap,
            _ => Encoding::Object,
        };
        let volatile = if deadline.is_some() { VOLATILE } else { 0 };
        let payload = match value {
            Object::Str(_) => Payload::Object(Box::new(value)),
            _ => Payload::Inline(value),
        };
        let (ptr, len) = alloc_block(deadline, key, payload);
        Entry {
            ptr,
            len,
            meta: ((clock & CLOCK_MAX) << CLOCK_SHIFT) | volatile | enc as u32,
        }
    }

    /// A new block for this entry with another expiry and/or key, the value moved over
    /// without being copied (an inline object is moved bit for bit; the old block must then be
    /// freed without dropping it, which [`Entry::replace_block`] does).
    fn rebuilt_block(&self, deadline: Option<u64>, key: Option<&[u8]>) -> (NonNull<u8>, u32) {
        let (start, end) = self.key_range();
        let b = self.bytes();
        let key = key.unwrap_or(&b[start..end]);
        match self.encoding() {
            Encoding::Object => {
                alloc_block(deadline, key, Payload::MovedObject(self.inline_object()))
            }
            _ => alloc_block(deadline, key, Payload::Moved(&b[end..])),
        }
    }

    /// The collection this entry holds (`None` for strings, long ones included).
    pub fn value(&self) -> Option<&Object> {
        match self.encoding() {
            Encoding::Object => self.object(),
            _ => None,
        }
    }

    /// The collection this entry holds, mutably.
    pub fn value_mut(&mut self) -> Option<&mut Object> {
        match self.encoding() {
            Encoding::Object => self.object_mut(),
            _ => None,
        }
    }

    /// True when this entry is a hash with at least one field that has an expiry time.
    pub fn has_field_ttls(&self) -> bool {
        matches!(self.value(), Some(Object::Hash(h)) if h.volatile_len() > 0)
    }

    /// True when this entry is a collection with no elements left.
    pub fn is_empty_collection(&self) -> bool {
        self.value().is_some_and(Object::is_empty_collection)
    }

    /// The value's encoding.
    pub fn encoding(&self) -> Encoding {
        Encoding::from_bits(self.meta)
    }

    /// The string value, or `None` when the key holds another type.
    pub fn as_str(&self) -> Option<StrRef<'_>> {
        match self.encoding() {
            Encoding::Int => int_from_bytes(self.payload()).map(StrRef::Int),
            Encoding::Embstr | Encoding::RawInline => Some(StrRef::Bytes(self.payload())),
            Encoding::RawHeap => match self.object() {
                Some(Object::Str(v)) => Some(StrRef::Bytes(v)),
                _ => None,
            },
            Encoding::Object => None,
        }
    }

    /// Replaces the value with a string, keeping the key and setting the expiry to `deadline`.
    pub fn set_string(&mut self, value: NewString<'_>, deadline: Option<u64>) {
        let old = self.take_object();
        let (enc, payload) = encode(value);
        let (start, end) = self.key_range();
        let block = alloc_block(deadline, &self.bytes()[start..end], payload);
        self.replace_block(block);
        let volatile = if deadline.is_some() { VOLATILE } else { 0 };
        self.meta = (self.meta & !(ENC_MASK | VOLATILE)) | enc as u32 | volatile;
        drop(old);
    }

    /// Appends to a string value in place (the caller has checked the type). Long strings grow
    /// their buffer geometrically so repeated appends stay amortised O(1).
    pub fn append(&mut self, tail: &[u8]) {
        if let Some(Object::Str(v)) = self.object_mut() {
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
        if let Some(Object::Str(v)) = self.object_mut() {
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
        let key = &key[..key.len().min(MAX_KEY_LEN)];
        let payload = match (self.encoding(), self.object()) {
            (Encoding::Object, Some(obj)) => Payload::Inline(obj.clone()),
            (_, Some(obj)) => Payload::Object(Box::new(obj.clone())),
            (_, None) => Payload::Bytes(self.payload()),
        };
        let (ptr, len) = alloc_block(self.deadline(), key, payload);
        Entry {
            ptr,
            len,
            meta: self.meta,
        }
    }

    /// This entry moved to another key, keeping its value, expiry and clock (`RENAME`, `MOVE`).
    /// Large values are moved, not copied.
    pub fn rekey(mut self, key: &[u8]) -> Entry {
        let key = &key[..key.len().min(MAX_KEY_LEN)];
        let block = self.rebuilt_block(self.deadline(), Some(key));
        self.replace_block(block);
        self
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
        let mut total = std::mem::size_of::<Entry>() + alloc_size(self.len as usize);
        if let Some(obj) = self.object() {
            if self.encoding() != Encoding::Object {
                // A long string's object is boxed; collections sit inside the block.
                total += alloc_size(std::mem::size_of::<Object>());
            }
            total += obj.mem_usage();
        }
        total
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        drop(self.take_object());
        // SAFETY: the block was allocated by `alloc_block` with `len` bytes and is dropped once.
        unsafe { free_block(self.ptr, self.len) };
    }
}

/// Allocates and fills a block: `[deadline][key length][key][payload]`.
fn alloc_block(deadline: Option<u64>, key: &[u8], payload: Payload<'_>) -> (NonNull<u8>, u32) {
    let (ib, ilen) = match payload {
        Payload::Int(n) => int_bytes(n),
        _ => ([0; 8], 0),
    };
    let head = if deadline.is_some() { 8 } else { 0 };
    let key_end = head + leb128_len(key.len()) + key.len();
    // Plain bytes up to `prefix`; an inline object follows at that (aligned) offset.
    let (prefix, total) = match &payload {
        Payload::Bytes(b) | Payload::Moved(b) => (key_end + b.len(), key_end + b.len()),
        Payload::Owned(v) => (key_end + v.len(), key_end + v.len()),
        Payload::Int(_) => (key_end + ilen, key_end + ilen),
        Payload::Object(_) => (key_end + PTR_BYTES, key_end + PTR_BYTES),
        Payload::Inline(_) | Payload::MovedObject(_) => {
            let at = key_end.next_multiple_of(BLOCK_ALIGN);
            (at, at + OBJ_BYTES)
        }
    };
    let layout = std::alloc::Layout::from_size_align(total, BLOCK_ALIGN)
        .unwrap_or_else(|_| std::alloc::Layout::new::<u64>());
    // SAFETY: `layout` has a non-zero size (the key length byte is always present).
    let raw = unsafe { std::alloc::alloc(layout) };
    let Some(ptr) = NonNull::new(raw) else {
        std::alloc::handle_alloc_error(layout);
    };
    // SAFETY: the allocation is `total >= prefix` bytes long and not yet shared; the first
    // `prefix` bytes are filled below before anything reads them.
    let b = unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), prefix) };
    let mut pos = 0;
    if let Some(d) = deadline {
        b[..8].copy_from_slice(&d.to_le_bytes());
        pos = 8;
    }
    let mut v = key.len();
    loop {
        let byte = (v & 0x7F) as u8;
        v >>= 7;
        if v == 0 {
            b[pos] = byte;
            pos += 1;
            break;
        }
        b[pos] = byte | 0x80;
        pos += 1;
    }
    b[pos..pos + key.len()].copy_from_slice(key);
    pos += key.len();
    let object_at = ptr.as_ptr().wrapping_add(prefix).cast::<Object>();
    match payload {
        Payload::Bytes(p) | Payload::Moved(p) => b[pos..].copy_from_slice(p),
        Payload::Owned(p) => b[pos..].copy_from_slice(&p),
        Payload::Int(_) => b[pos..].copy_from_slice(&ib[..ilen]),
        Payload::Object(obj) => {
            let addr = Box::into_raw(obj).expose_provenance();
            b[pos..].copy_from_slice(&addr.to_le_bytes());
        }
        Payload::Inline(obj) => {
            b[pos..].fill(0);
            // SAFETY: `object_at` is inside the allocation, `prefix` is a multiple of
            // `BLOCK_ALIGN` from an allocation aligned to it, and `OBJ_BYTES` bytes follow.
            unsafe { std::ptr::write(object_at, obj) };
        }
        Payload::MovedObject(from) => {
            b[pos..].fill(0);
            // SAFETY: as above for the destination; the source is another block's live object,
            // which the caller frees without dropping (a bitwise move).
            unsafe { std::ptr::copy_nonoverlapping(from, object_at, 1) };
        }
    }
    (ptr, total as u32)
}

/// Frees a block allocated by [`alloc_block`].
///
/// # Safety
/// `ptr` must come from `alloc_block` with this `len`, and must not be used afterwards.
unsafe fn free_block(ptr: NonNull<u8>, len: u32) {
    let layout = std::alloc::Layout::from_size_align(len as usize, BLOCK_ALIGN)
        .unwrap_or_else(|_| std::alloc::Layout::new::<u64>());
    // SAFETY: guaranteed by the caller.
    unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) };
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
    fn entry_is_one_bucket_of_16_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 16);
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
    fn integers_use_as_few_bytes_as_they_need() {
        for n in [
            0,
            1,
            -1,
            127,
            128,
            -128,
            -129,
            255,
            256,
            65535,
            i64::MAX,
            i64::MIN,
            1 << 40,
        ] {
            let (b, len) = int_bytes(n);
            assert_eq!(int_from_bytes(&b[..len]), Some(n), "{n}");
        }
        assert_eq!(int_bytes(5).1, 1);
        assert_eq!(int_bytes(200).1, 2);
        let e = Entry::new_string(b"key:1", NewString::Auto(b"7"), None, 0);
        assert_eq!(e.mem_usage(), 16 + 8);
    }

    #[test]
    fn inline_collections_survive_expiry_changes_renames_copies_and_overwrites() {
        use crate::types::hash::Hash;
        use crate::types::TypeLimits;
        let limits = TypeLimits::default();
        let mut hash = Hash::new();
        for i in 0..20 {
            hash.set(format!("f{i}").as_bytes(), b"value", &limits);
        }
        // Keys of every length modulo the alignment, so the object lands after varied padding.
        for key_len in 0..20usize {
            let key = vec![b'k'; key_len];
            let mut e = Entry::new_object(&key, Object::Hash(hash.clone()), None, 5);
            assert_eq!((e.kind(), e.encoding_name()), (Kind::Hash, "listpack"));
            e.set_deadline(Some(1234));
            assert_eq!(e.deadline(), Some(1234));
            let copy = e.duplicate(b"copy-of-it");
            let mut e = e.rekey(b"renamed-key");
            e.set_deadline(None);
            assert_eq!(e.key(), b"renamed-key");
            assert_eq!(e.deadline(), None);
            for entry in [&e, &copy] {
                let Some(Object::Hash(h)) = entry.value() else {
                    panic!("still a hash");
                };
                assert_eq!(h.len(), 20);
            }
            if let Some(Object::Hash(h)) = e.value_mut() {
                h.set(b"another", b"field", &limits);
            }
            assert!(e.mem_usage() > std::mem::size_of::<Entry>());
            e.set_string(NewString::Auto(b"now a string"), None);
            assert_eq!(e.kind(), Kind::String);
            assert_eq!(e.as_str(), Some(StrRef::Bytes(b"now a string")));
            assert_eq!(copy.key(), b"copy-of-it");
        }
    }

    #[test]
    fn heap_values_survive_expiry_changes_renames_and_copies() {
        let big = vec![b'z'; 5000];
        let mut e = Entry::new_string(b"k", NewString::Auto(&big), None, 3);
        e.set_deadline(Some(77));
        e.append(b"!");
        let copy = e.duplicate(b"copy");
        let e = e.rekey(b"renamed");
        assert_eq!(e.key(), b"renamed");
        assert_eq!(e.deadline(), Some(77));
        assert_eq!(e.as_str().map(|s| s.len()), Some(5001));
        assert_eq!(copy.key(), b"copy");
        assert_eq!(copy.as_str(), e.as_str());
        drop(e);
        assert_eq!(copy.as_str().map(|s| s.len()), Some(5001));
        let mut copy = copy;
        copy.set_string(NewString::Auto(b"small"), None);
        assert_eq!(copy.as_str(), Some(StrRef::Bytes(b"small")));
        assert_eq!(copy.encoding(), Encoding::Embstr);
    }

    #[test]
    fn long_keys_use_multi_byte_lengths() {
        let key = vec![b'k'; 300];
        let mut e = Entry::new_string(&key, NewString::Auto(b"v"), Some(9), 0);
        assert_eq!(e.key(), &key[..]);
        e.set_deadline(None);
        assert_eq!(e.key(), &key[..]);
        assert_eq!(e.as_str(), Some(StrRef::Bytes(b"v")));
    }

    #[test]
    fn size_classes_look_like_jemalloc() {
        assert_eq!(alloc_size(116), 128);
        assert_eq!(alloc_size(129), 160);
        assert_eq!(alloc_size(200), 224);
        assert_eq!(alloc_size(4097), 5120);
    }
}
