//! Bitmap commands (SETBIT, BITCOUNT, BITOP, BITFIELD, ...), on string values.
//!
//! A bitmap is an ordinary string: bit 0 is the most significant bit of the first byte, and a
//! string that Shoal stores as an integer is addressed through its decimal text ("12" is two
//! bytes), as in Redis. Writes grow the string with zero bytes and leave it in the `raw`
//! encoding, as Redis's `dbUnshareStringValue` does.
//!
//! Layout, top to bottom: the spec table, the handlers in table order, then the bit helpers the
//! handlers share (offset and type parsing, range counting and searching, bitfield arithmetic).

use bytes::Bytes;
use shoal_resp::Frame;
use shoal_storage::{notify, Entry, NewString, StrRef};

use crate::args::{self, is};
use crate::cx::Cx;
use crate::error::{CmdResult, CommandError};
use crate::spec::{CommandSpec, Flags, Group, KeyAccess, Keys};

const W: Flags = Flags::WRITE.with(Flags::DENYOOM);
const R: Flags = Flags::READONLY;
const ONE: Keys = Keys::Range {
    first: 1,
    last: 1,
    step: 1,
};

const fn bitmap(name: &'static str, arity: i32, handler: crate::spec::Handler) -> CommandSpec {
    CommandSpec::new(name, Group::Bitmap, arity, handler)
}

/// The bitmaps family.
pub(crate) const COMMANDS: &[CommandSpec] = &[
    bitmap("bitcount", -2, bitcount)
        .flags(R)
        .keys(ONE, KeyAccess::Read)
        .complexity("O(N)")
        .doc("Count set bits in a string", "2.6.0"),
    bitmap("bitfield", -2, bitfield)
        .flags(W)
        .keys(ONE, KeyAccess::ReadOrWrite)
        .key_note("This command allows both access and modification of the key")
        .complexity("O(1) for each subcommand specified")
        .doc("Perform arbitrary bitfield integer operations on strings", "3.2.0"),
    bitmap("bitfield_ro", -2, bitfield_ro)
        .flags(R.with(Flags::FAST))
        .keys(ONE, KeyAccess::Read)
        .complexity("O(1) for each subcommand specified")
        .doc("Perform arbitrary bitfield integer operations on strings. Read-only variant of BITFIELD", "6.0.0"),
    bitmap("bitop", -4, bitop)
        .flags(W)
        .keys(Keys::Range { first: 2, last: -1, step: 1 }, KeyAccess::Overwrite)
        .other_keys(KeyAccess::Read)
        .complexity("O(N)")
        .doc("Perform bitwise operations between strings", "2.6.0"),
    bitmap("bitpos", -3, bitpos)
        .flags(R)
        .keys(ONE, KeyAccess::Read)
        .complexity("O(N)")
        .doc("Find first bit set or clear in a string", "2.8.7"),
    bitmap("getbit", 3, getbit)
        .flags(R.with(Flags::FAST))
        .keys(ONE, KeyAccess::Read)
        .doc("Returns the bit value at offset in the string value stored at key", "2.2.0"),
    bitmap("setbit", 4, setbit)
        .flags(W)
        .keys(ONE, KeyAccess::ReadWrite)
        .doc("Sets or clears the bit at offset in the string value stored at key", "2.2.0"),
];

// Command: BITCOUNT key [start end [BYTE|BIT]]
//
// > SET k foobar
// OK
// > BITCOUNT k
// (integer) 26
// > BITCOUNT k 1 1
// (integer) 6
// > BITCOUNT k 5 30 BIT
// (integer) 17
fn bitcount(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let db = cx.dbi();
    let touch = !cx.client.no_touch;
    let l = cx.db()?;
    // Redis looks the key up before it reads any argument: a missing key is 0 whatever follows.
    let Some(e) = l.lookup(db, &a[1], touch, true)? else {
        return Ok(Frame::Integer(0));
    };
    let s = e.as_str().ok_or(CommandError::WrongType)?;
    with_bytes(s, |bytes| {
        let len = bytes.len() as i64;
        let (first, last) = match a.len() {
            2 => (0, len * 8 - 1),
            4 | 5 => {
                let start = args::int(&a[2])?;
                let end = args::int(&a[3])?;
                if start < 0 && end < 0 && start > end {
                    return Ok(Frame::Integer(0));
                }
                let bit = match a.get(4) {
                    Some(unit) => parse_unit(unit)?,
                    None => false,
                };
                match clamp_range(start, end, len, bit) {
                    Some(range) => range,
                    None => return Ok(Frame::Integer(0)),
                }
            }
            _ => return Err(CommandError::Syntax),
        };
        if first > last {
            return Ok(Frame::Integer(0));
        }
        Ok(Frame::Integer(
            count_bits(bytes, first as u64, last as u64) as i64
        ))
    })
}

// Command: BITFIELD key [GET type offset] [SET type offset value] [INCRBY type offset increment] [OVERFLOW WRAP|SAT|FAIL]
//
// > BITFIELD k INCRBY i5 100 1 GET u4 0
// [(integer) 1, (integer) 0]
// > BITFIELD k OVERFLOW SAT SET u2 0 9
// [(integer) 0]
fn bitfield(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    bitfield_generic(cx, a, false)
}

// Command: BITFIELD_RO key [GET type offset ...]
//
// > SET k hello
// OK
// > BITFIELD_RO k GET i8 16
// [(integer) 108]
fn bitfield_ro(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    bitfield_generic(cx, a, true)
}

// Command: BITOP AND|OR|XOR|NOT destkey key [key ...]
//
// > SET a "\xff\x0f"
// OK
// > SET b "\x0f"
// OK
// > BITOP AND dest a b
// (integer) 2
// > GET dest
// "\x0f\x00"
fn bitop(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let op = if is(&a[1], "AND") {
        BitOp::And
    } else if is(&a[1], "OR") {
        BitOp::Or
    } else if is(&a[1], "XOR") {
        BitOp::Xor
    } else if is(&a[1], "NOT") {
        BitOp::Not
    } else {
        return Err(CommandError::Syntax);
    };
    if op == BitOp::Not && a.len() != 4 {
        return Err(CommandError::err(
            "BITOP NOT must be called with a single source key.",
        ));
    }
    let db = cx.dbi();
    let l = cx.db()?;
    // Missing sources are empty strings. The sources are copied because the result may replace
    // one of them; the copy costs no more than the operation itself.
    let mut sources = Vec::with_capacity(a.len() - 3);
    for key in &a[3..] {
        let v = match l.read(db, key)? {
            None => Bytes::new(),
            Some(e) => str_bytes(e.as_str().ok_or(CommandError::WrongType)?),
        };
        sources.push(v);
    }
    let max_len = sources.iter().map(Bytes::len).max().unwrap_or(0);
    if max_len == 0 {
        if l.remove(db, &a[2])?.is_some() {
            l.notify(notify::GENERIC, "del", db, &a[2]);
        }
        return Ok(Frame::Integer(0));
    }
    let mut out = vec![0u8; max_len];
    let first = sources.first().map(|s| &s[..]).unwrap_or_default();
    out[..first.len()].copy_from_slice(first);
    match op {
        BitOp::Not => out.iter_mut().for_each(|b| *b = !*b),
        BitOp::And => {
            for src in &sources[1..] {
                out.iter_mut().zip(src.iter()).for_each(|(o, s)| *o &= s);
                // Beyond its end a source reads as zeros.
                out[src.len().min(max_len)..].fill(0);
            }
        }
        BitOp::Or => {
            for src in &sources[1..] {
                out.iter_mut().zip(src.iter()).for_each(|(o, s)| *o |= s);
            }
        }
        BitOp::Xor => {
            for src in &sources[1..] {
                out.iter_mut().zip(src.iter()).for_each(|(o, s)| *o ^= s);
            }
        }
    }
    let clock = l.access_clock();
    l.insert(
        db,
        Entry::new_string(&a[2], NewString::Raw(out), None, clock),
    )?;
    l.notify(notify::STRING, "set", db, &a[2]);
    Ok(Frame::Integer(max_len as i64))
}

// Command: BITPOS key bit [start [end [BYTE|BIT]]]
//
// > SET k "\xff\xf0\x00"
// OK
// > BITPOS k 0
// (integer) 12
// > BITPOS k 1 2
// (integer) -1
fn bitpos(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let bit = args::int(&a[2])?;
    if bit != 0 && bit != 1 {
        return Err(CommandError::err("The bit argument must be 1 or 0."));
    }
    let bit = bit == 1;
    let db = cx.dbi();
    let touch = !cx.client.no_touch;
    let l = cx.db()?;
    // A missing key is an endless run of zeros.
    let Some(e) = l.lookup(db, &a[1], touch, true)? else {
        return Ok(Frame::Integer(if bit { -1 } else { 0 }));
    };
    let s = e.as_str().ok_or(CommandError::WrongType)?;
    with_bytes(s, |bytes| {
        let len = bytes.len() as i64;
        let mut end_given = false;
        let (first, last) = match a.len() {
            3 => (0, len * 8 - 1),
            4..=6 => {
                let start = args::int(&a[3])?;
                // The unit is checked before the end, as Redis does.
                let unit_bit = match a.get(5) {
                    Some(unit) => parse_unit(unit)?,
                    None => false,
                };
                let end = match a.get(4) {
                    Some(end) => {
                        end_given = true;
                        args::int(end)?
                    }
                    None => len - 1,
                };
                match clamp_range(start, end, len, unit_bit) {
                    Some(range) => range,
                    None => return Ok(Frame::Integer(-1)),
                }
            }
            _ => return Err(CommandError::Syntax),
        };
        if first > last {
            return Ok(Frame::Integer(-1));
        }
        let found = find_bit(bytes, first as u64, last as u64, bit);
        Ok(Frame::Integer(match found {
            Some(pos) => pos as i64,
            None if bit || end_given => -1,
            // Looking for a zero with no end given: the string is padded with zeros on the
            // right, so the answer is the first bit after the range's last byte.
            None => (last / 8 + 1) * 8,
        }))
    })
}

// Command: GETBIT key offset
//
// > SETBIT k 7 1
// (integer) 0
// > GETBIT k 7
// (integer) 1
// > GETBIT k 100
// (integer) 0
fn getbit(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let max = cx.server.limits().max_string;
    let offset = bit_offset(&a[2], None, max)?;
    let db = cx.dbi();
    let touch = !cx.client.no_touch;
    let l = cx.db()?;
    let Some(e) = l.lookup(db, &a[1], touch, true)? else {
        return Ok(Frame::Integer(0));
    };
    let s = e.as_str().ok_or(CommandError::WrongType)?;
    let bit = with_bytes(s, |bytes| get_bit(bytes, offset));
    Ok(Frame::Integer(bit as i64))
}

// Command: SETBIT key offset value
//
// > SETBIT k 7 1
// (integer) 0
// > SETBIT k 7 0
// (integer) 1
// > GET k
// "\x00"
fn setbit(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let max = cx.server.limits().max_string;
    let offset = bit_offset(&a[2], None, max)?;
    let on = match args::parse_i64(&a[3]) {
        Some(v @ (0 | 1)) => v == 1,
        _ => return Err(CommandError::err("bit is not an integer or out of range")),
    };
    let db = cx.dbi();
    let l = cx.db()?;
    let byte = (offset >> 3) as usize;
    let existing = match l.write(db, &a[1])? {
        Some(mut e) => {
            let s = e.get().as_str().ok_or(CommandError::WrongType)?;
            let (old, grows) = with_bytes(s, |b| (get_bit(b, offset), b.len() <= byte));
            // Redis turns the value into a raw string even when the bit is already right.
            if old != on || grows || e.get().encoding_name() != "raw" {
                e.get_mut()
                    .edit_bytes(byte + 1, |buf| set_bits(buf, offset, 1, on as u64));
            }
            Some((old, old != on || grows))
        }
        None => None,
    };
    // Like Redis, a SETBIT that changes nothing (the bit was already so) announces nothing.
    if let Some((old, changed)) = existing {
        if changed {
            l.notify(notify::STRING, "setbit", db, &a[1]);
        }
        return Ok(Frame::Integer(old as i64));
    }
    let mut buf = vec![0u8; byte + 1];
    set_bits(&mut buf, offset, 1, on as u64);
    let clock = l.access_clock();
    l.insert(
        db,
        Entry::new_string(&a[1], NewString::Raw(buf), None, clock),
    )?;
    l.notify(notify::STRING, "setbit", db, &a[1]);
    Ok(Frame::Integer(0))
}

// ---------------------------------------------------------------------------------------------
// Bit helpers.

#[derive(Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

/// The bytes of a string value.
fn str_bytes(s: StrRef<'_>) -> Bytes {
    match s {
        StrRef::Int(n) => Bytes::from(n.to_string()),
        StrRef::Bytes(b) => Bytes::copy_from_slice(b),
    }
}

/// Runs `f` on the bytes of a string value without copying it (an integer is formatted first).
fn with_bytes<R>(s: StrRef<'_>, f: impl FnOnce(&[u8]) -> R) -> R {
    match s {
        StrRef::Bytes(b) => f(b),
        StrRef::Int(n) => f(n.to_string().as_bytes()),
    }
}

/// Parses the `BYTE|BIT` unit of BITCOUNT and BITPOS: true for bits.
fn parse_unit(arg: &[u8]) -> Result<bool, CommandError> {
    if is(arg, "BIT") {
        Ok(true)
    } else if is(arg, "BYTE") {
        Ok(false)
    } else {
        Err(CommandError::Syntax)
    }
}

/// Turns a `start end` pair (negative counts from the end, in bytes or bits) into an inclusive
/// range of bit positions inside a string of `len` bytes, clamped as Redis clamps it. `None`
/// means the range is empty; the range may also come back with `first > last`.
fn clamp_range(start: i64, end: i64, len: i64, bit_unit: bool) -> Option<(i64, i64)> {
    let total = if bit_unit { len * 8 } else { len };
    let fix = |i: i64| if i < 0 { (total + i).max(0) } else { i };
    let start = fix(start);
    let end = fix(end).min(total - 1);
    if start > end {
        return None;
    }
    Some(if bit_unit {
        (start, end)
    } else {
        (start * 8, end * 8 + 7)
    })
}

/// Parses a bit offset as Redis's `getBitOffsetFromArgument` does. With `hash_bits`, BITFIELD's
/// `#N` form is accepted and means `N` times the field width. Offsets whose byte would lie at or
/// past `proto-max-bulk-len` are refused.
fn bit_offset(arg: &[u8], hash_bits: Option<u32>, max_string: u64) -> Result<u64, CommandError> {
    let err = || CommandError::err("bit offset is not an integer or out of range");
    let (digits, factor) = match (arg.first(), hash_bits) {
        (Some(b'#'), Some(bits)) => (&arg[1..], bits as i64),
        _ => (arg, 1),
    };
    // Redis multiplies in C without checking, so an overflowing `#N` wraps as it does there.
    let offset = args::parse_i64(digits)
        .ok_or_else(err)?
        .wrapping_mul(factor);
    if offset < 0 || (offset as u64 >> 3) >= max_string {
        return Err(err());
    }
    Ok(offset as u64)
}

/// The bit at `offset`; bits past the end of the string are zero.
fn get_bit(bytes: &[u8], offset: u64) -> bool {
    let byte = bytes.get((offset >> 3) as usize).copied().unwrap_or(0);
    byte & (0x80 >> (offset & 7)) != 0
}

/// Counts the set bits of `bytes`, eight bytes at a time.
fn popcount(bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    let mut n: u64 = 0;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        n += u64::from_ne_bytes(w).count_ones() as u64;
    }
    n + chunks
        .remainder()
        .iter()
        .map(|b| b.count_ones() as u64)
        .sum::<u64>()
}

/// The set bits in the inclusive bit range `first..=last` of `bytes` (`last` inside the string).
fn count_bits(bytes: &[u8], first: u64, last: u64) -> u64 {
    let (fb, lb) = ((first / 8) as usize, (last / 8) as usize);
    let Some(span) = bytes.get(fb..=lb) else {
        return 0;
    };
    let mut n = popcount(span);
    // Take away the bits of the edge bytes that lie outside the range.
    let before = !(0xffu8 >> (first % 8));
    let after = (1u8 << (7 - last % 8)).wrapping_sub(1);
    n -= (span[0] & before).count_ones() as u64;
    n -= (span[span.len() - 1] & after).count_ones() as u64;
    n
}

/// The position of the first bit equal to `bit` in the inclusive bit range `first..=last`.
/// Whole words that cannot hold it are skipped eight bytes at a time.
fn find_bit(bytes: &[u8], first: u64, last: u64, bit: bool) -> Option<u64> {
    let (fb, lb) = ((first / 8) as usize, (last / 8) as usize);
    let skip: u8 = if bit { 0 } else { 0xff };
    let skip_word = u64::from_ne_bytes([skip; 8]);
    let mut i = fb;
    while i <= lb {
        // Interior bytes only: the edge bytes are masked below.
        if i > fb && i + 8 <= lb {
            if let Some(word) = bytes.get(i..i + 8) {
                let mut w = [0u8; 8];
                w.copy_from_slice(word);
                if u64::from_ne_bytes(w) == skip_word {
                    i += 8;
                    continue;
                }
            }
        }
        // Ones in `x` mark bits equal to `bit`.
        let mut x = bytes.get(i).copied().unwrap_or(0) ^ skip;
        if i == fb {
            x &= 0xff >> (first % 8);
        }
        if i == lb {
            x &= 0xff << (7 - last % 8);
        }
        if x != 0 {
            return Some(i as u64 * 8 + x.leading_zeros() as u64);
        }
        i += 1;
    }
    None
}

/// The unsigned value of the `bits`-wide field at bit `offset`, most significant bit first;
/// bits past the end of the string are zero.
fn get_bits(bytes: &[u8], offset: u64, bits: u32) -> u64 {
    let mut v = 0u64;
    for j in 0..bits as u64 {
        v = (v << 1) | get_bit(bytes, offset + j) as u64;
    }
    v
}

/// Writes the low `bits` bits of `value` at bit `offset`, most significant bit first. The caller
/// has grown `buf` to hold them.
fn set_bits(buf: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..bits as u64 {
        let on = value & (1 << (bits as u64 - 1 - j)) != 0;
        let pos = offset + j;
        if let Some(byte) = buf.get_mut((pos >> 3) as usize) {
            let mask = 0x80 >> (pos & 7);
            if on {
                *byte |= mask;
            } else {
                *byte &= !mask;
            }
        }
    }
}

/// The signed value of a field: its top bit is propagated upwards.
fn get_signed(bytes: &[u8], offset: u64, bits: u32) -> i64 {
    let v = get_bits(bytes, offset, bits);
    if bits < 64 && v & (1 << (bits - 1)) != 0 {
        (v | (u64::MAX << bits)) as i64
    } else {
        v as i64
    }
}

/// What BITFIELD does when a value does not fit its field.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FieldOp {
    Get,
    Set,
    IncrBy,
}

/// One BITFIELD subcommand, parsed.
struct Field {
    op: FieldOp,
    signed: bool,
    bits: u32,
    offset: u64,
    /// The SET value or the INCRBY increment.
    value: i64,
    overflow: Overflow,
}

/// Parses a field type (`i1`..`i64`, `u1`..`u63`): (signed, bits).
fn field_type(arg: &[u8]) -> Result<(bool, u32), CommandError> {
    let err = || {
        CommandError::err(
            "Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
        )
    };
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(err()),
    };
    // Redis reads the width as a C string, so it ends at a NUL byte.
    let width = &arg[1..];
    let width = width.split(|b| *b == 0).next().unwrap_or_default();
    let bits = args::parse_i64(width).ok_or_else(err)?;
    let max = if signed { 64 } else { 63 };
    if !(1..=max).contains(&bits) {
        return Err(err());
    }
    Ok((signed, bits as u32))
}

/// Parses BITFIELD's subcommands, in order, with Redis's checks and errors.
fn parse_fields(a: &[Bytes], max_string: u64) -> Result<Vec<Field>, CommandError> {
    let mut fields = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < a.len() {
        let rest = a.len() - j - 1;
        let sub = &a[j];
        let op = if is(sub, "GET") && rest >= 2 {
            FieldOp::Get
        } else if is(sub, "SET") && rest >= 3 {
            FieldOp::Set
        } else if is(sub, "INCRBY") && rest >= 3 {
            FieldOp::IncrBy
        } else if is(sub, "OVERFLOW") && rest >= 1 {
            let kind = &a[j + 1];
            overflow = if is(kind, "WRAP") {
                Overflow::Wrap
            } else if is(kind, "SAT") {
                Overflow::Sat
            } else if is(kind, "FAIL") {
                Overflow::Fail
            } else {
                return Err(CommandError::err("Invalid OVERFLOW type specified"));
            };
            j += 2;
            continue;
        } else {
            return Err(CommandError::Syntax);
        };
        let (signed, bits) = field_type(&a[j + 1])?;
        let offset = bit_offset(&a[j + 2], Some(bits), max_string)?;
        let value = if op == FieldOp::Get {
            0
        } else {
            args::int(&a[j + 3])?
        };
        fields.push(Field {
            op,
            signed,
            bits,
            offset,
            value,
            overflow,
        });
        j += if op == FieldOp::Get { 3 } else { 4 };
    }
    Ok(fields)
}

fn bitfield_generic(cx: &mut Cx<'_>, a: &[Bytes], read_only: bool) -> CmdResult {
    let max = cx.server.limits().max_string;
    let fields = parse_fields(a, max)?;
    // The last bit any SET or INCRBY touches; the string grows to hold it.
    let highest = fields
        .iter()
        .filter(|f| f.op != FieldOp::Get)
        .map(|f| f.offset + f.bits as u64 - 1)
        .max();
    let db = cx.dbi();
    let touch = !cx.client.no_touch;
    let l = cx.db()?;
    let Some(highest) = highest else {
        // Only GETs: a read, where a missing key reads as zeros.
        let entry = l.lookup(db, &a[1], touch, true)?;
        let s = match entry {
            None => StrRef::Bytes(&[]),
            Some(e) => e.as_str().ok_or(CommandError::WrongType)?,
        };
        let replies = with_bytes(s, |bytes| {
            fields
                .iter()
                .map(|f| Frame::Integer(get_field(bytes, f)))
                .collect()
        });
        return Ok(Frame::Array(replies));
    };
    if read_only {
        return Err(CommandError::err(
            "BITFIELD_RO only supports the GET subcommand",
        ));
    }
    let min_len = (highest >> 3) as usize + 1;
    let mut replies = Vec::with_capacity(fields.len());
    let existed = match l.write(db, &a[1])? {
        Some(mut e) => {
            e.get().as_str().ok_or(CommandError::WrongType)?;
            e.get_mut()
                .edit_bytes(min_len, |buf| run_fields(buf, &fields, &mut replies));
            true
        }
        None => false,
    };
    if !existed {
        let mut buf = vec![0u8; min_len];
        run_fields(&mut buf, &fields, &mut replies);
        let clock = l.access_clock();
        l.insert(
            db,
            Entry::new_string(&a[1], NewString::Raw(buf), None, clock),
        )?;
    }
    l.notify(notify::STRING, "setbit", db, &a[1]);
    Ok(Frame::Array(replies))
}

/// A GET field's value.
fn get_field(bytes: &[u8], f: &Field) -> i64 {
    if f.signed {
        get_signed(bytes, f.offset, f.bits)
    } else {
        get_bits(bytes, f.offset, f.bits) as i64
    }
}

/// Runs every field on the (already grown) buffer, pushing one reply per field.
fn run_fields(buf: &mut [u8], fields: &[Field], replies: &mut Vec<Frame>) {
    for f in fields {
        let reply = match f.op {
            FieldOp::Get => Some(get_field(buf, f)),
            FieldOp::Set | FieldOp::IncrBy if f.signed => {
                let old = get_signed(buf, f.offset, f.bits);
                let (new, overflowed, reply) = if f.op == FieldOp::IncrBy {
                    let (ov, wrapped) = signed_overflow(old, f.value, f.bits, f.overflow);
                    let new = if ov {
                        wrapped
                    } else {
                        old.wrapping_add(f.value)
                    };
                    (new, ov, new)
                } else {
                    let (ov, wrapped) = signed_overflow(f.value, 0, f.bits, f.overflow);
                    (if ov { wrapped } else { f.value }, ov, old)
                };
                if overflowed && f.overflow == Overflow::Fail {
                    None
                } else {
                    set_bits(buf, f.offset, f.bits, new as u64);
                    Some(reply)
                }
            }
            FieldOp::Set | FieldOp::IncrBy => {
                let old = get_bits(buf, f.offset, f.bits);
                let (new, overflowed, reply) = if f.op == FieldOp::IncrBy {
                    let (ov, wrapped) = unsigned_overflow(old, f.value, f.bits, f.overflow);
                    let new = if ov {
                        wrapped
                    } else {
                        old.wrapping_add(f.value as u64)
                    };
                    (new, ov, new)
                } else {
                    let value = f.value as u64;
                    let (ov, wrapped) = unsigned_overflow(value, 0, f.bits, f.overflow);
                    (if ov { wrapped } else { value }, ov, old)
                };
                if overflowed && f.overflow == Overflow::Fail {
                    None
                } else {
                    set_bits(buf, f.offset, f.bits, new);
                    Some(reply as i64)
                }
            }
        };
        replies.push(reply.map_or(Frame::Null, Frame::Integer));
    }
}

/// Redis's `checkUnsignedBitfieldOverflow`: whether `value + incr` leaves a `bits`-wide unsigned
/// field, and the value to store instead under WRAP (the low bits) or SAT (the nearest limit).
fn unsigned_overflow(value: u64, incr: i64, bits: u32, mode: Overflow) -> (bool, u64) {
    let max = (1u64 << bits) - 1;
    let max_incr = max.wrapping_sub(value) as i64;
    let min_incr = (value as i64).wrapping_neg();
    let wrap = || value.wrapping_add(incr as u64) & max;
    if value > max || (incr > 0 && incr > max_incr) {
        (true, if mode == Overflow::Sat { max } else { wrap() })
    } else if incr < 0 && incr < min_incr {
        (true, if mode == Overflow::Sat { 0 } else { wrap() })
    } else {
        (false, 0)
    }
}

/// Redis's `checkSignedBitfieldOverflow`, the same for a signed field. Its arithmetic wraps as
/// the C code does, which matters for SET values far outside the field.
fn signed_overflow(value: i64, incr: i64, bits: u32, mode: Overflow) -> (bool, i64) {
    let max: i64 = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
    let min_incr = min.wrapping_sub(value);
    let wrap = || {
        let c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1 << (bits - 1)) != 0 {
                (c | mask) as i64
            } else {
                (c & !mask) as i64
            }
        } else {
            c as i64
        }
    };
    if value > max || (bits != 64 && incr > max_incr) || (value >= 0 && incr > 0 && incr > max_incr)
    {
        (true, if mode == Overflow::Sat { max } else { wrap() })
    } else if value < min
        || (bits != 64 && incr < min_incr)
        || (value < 0 && incr < 0 && incr < min_incr)
    {
        (true, if mode == Overflow::Sat { min } else { wrap() })
    } else {
        (false, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bits_in_partial_bytes() {
        let b = b"foobar";
        assert_eq!(count_bits(b, 0, 47), 26);
        assert_eq!(count_bits(b, 8, 15), 6);
        assert_eq!(count_bits(b, 5, 30), 17);
        let long = vec![0xffu8; 100];
        assert_eq!(count_bits(&long, 3, 797), 795);
    }

    #[test]
    fn finds_bits_across_words() {
        let mut b = vec![0u8; 40];
        b[33] = 0x10;
        assert_eq!(find_bit(&b, 0, 319, true), Some(33 * 8 + 3));
        assert_eq!(find_bit(&b, 0, 33 * 8 + 2, true), None);
        let ones = vec![0xffu8; 40];
        assert_eq!(find_bit(&ones, 0, 319, false), None);
        assert_eq!(find_bit(&[0xff, 0xf0, 0], 0, 23, false), Some(12));
    }

    #[test]
    fn fields_round_trip_and_saturate() {
        let mut buf = vec![0u8; 9];
        set_bits(&mut buf, 3, 64, (-5i64) as u64);
        assert_eq!(get_signed(&buf, 3, 64), -5);
        assert_eq!(unsigned_overflow(250, 10, 8, Overflow::Wrap), (true, 4));
        assert_eq!(unsigned_overflow(250, 10, 8, Overflow::Sat), (true, 255));
        assert_eq!(signed_overflow(120, 10, 8, Overflow::Wrap), (true, -126));
        assert_eq!(signed_overflow(-120, -10, 8, Overflow::Sat), (true, -128));
        assert_eq!(
            signed_overflow(i64::MAX, 1, 64, Overflow::Sat),
            (true, i64::MAX)
        );
    }
}
