//! Redis's HyperLogLog byte format and estimator, byte for byte: the `HYLL` header with its
//! cached cardinality, the sparse run-length representation, the dense 6-bit registers,
//! MurmurHash64A and Otmar Ertl's improved cardinality estimator.
//!
//! A HyperLogLog is an ordinary string value, so everything here works on byte buffers:
//!
//! ```text
//! [ "HYLL" ][ encoding: 0 dense, 1 sparse ][ 3 unused bytes ][ cardinality: u64 LE ][ registers ]
//! ```
//!
//! The most significant bit of the cardinality's last byte marks the cached value stale; Redis
//! sets only that bit when the registers change, so the stale value's other bytes stay visible in
//! `GET`, and Shoal keeps them the same way.
//!
//! Dense: 16384 registers of 6 bits, packed from the least significant bit of each byte upwards
//! (12288 bytes). Sparse: a sequence of opcodes covering all 16384 registers in order,
//! `00xxxxxx` ZERO (1..64 zero registers), `01xxxxxx yyyyyyyy` XZERO (1..16384 zero registers)
//! and `1vvvvvxx` VAL (1..4 registers of value 1..32). A sparse HyperLogLog becomes dense when a
//! register needs a value over 32 or when an update would make it longer than
//! `hll-sparse-max-bytes`; it never goes back. Every edit of the sparse form follows Redis's
//! `hllSparseSet` step by step (including its local merging of neighbouring VAL opcodes), since
//! the bytes themselves are visible to clients.

/// Header bytes: magic, encoding, three unused bytes, cached cardinality.
pub const HDR: usize = 16;
/// Number of registers (2^14).
pub const REGISTERS: usize = 1 << 14;
/// Size of a dense HyperLogLog, header included.
pub const DENSE_SIZE: usize = HDR + REGISTERS * 6 / 8;

const P: u32 = 14;
const Q: u32 = 64 - P;
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
const REGISTER_MAX: u64 = 63;
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;
const SEED: u64 = 0xadc8_3b19;

/// The registers are not a valid sparse sequence (Redis: `INVALIDOBJ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

/// An empty HyperLogLog: sparse, one XZERO opcode covering every register, cached count 0.
pub fn new_sparse() -> Vec<u8> {
    let mut h = vec![0u8; HDR + 2];
    h[..4].copy_from_slice(b"HYLL");
    h[4] = SPARSE;
    write_xzero(&mut h[HDR..], REGISTERS);
    h
}

/// True when a string's header is that of a HyperLogLog, as `isHLLObjectOrReply` checks it:
/// magic, a known encoding, and the exact length for the dense one.
pub fn is_valid(h: &[u8]) -> bool {
    h.len() >= HDR
        && &h[..4] == b"HYLL"
        && h[4] <= SPARSE
        && (h[4] != DENSE || h.len() == DENSE_SIZE)
}

/// True when the registers are dense.
pub fn is_dense(h: &[u8]) -> bool {
    h.get(4) == Some(&DENSE)
}

/// The cached cardinality, when it is still valid.
pub fn cached(h: &[u8]) -> Option<u64> {
    let card: [u8; 8] = h.get(8..16)?.try_into().ok()?;
    (card[7] & 0x80 == 0).then(|| u64::from_le_bytes(card))
}

/// Stores a freshly computed cardinality.
pub fn set_cached(h: &mut [u8], card: u64) {
    if let Some(dst) = h.get_mut(8..16) {
        dst.copy_from_slice(&card.to_le_bytes());
    }
}

/// Marks the cached cardinality stale, leaving its other bits as they were.
pub fn invalidate(h: &mut [u8]) {
    if let Some(b) = h.get_mut(15) {
        *b |= 0x80;
    }
}

/// MurmurHash64A, in the endian-neutral form Redis uses (blocks read little-endian).
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut blocks = data.chunks_exact(8);
    for block in &mut blocks {
        let mut b = [0u8; 8];
        b.copy_from_slice(block);
        let mut k = u64::from_le_bytes(b);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= (b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element maps to and the length of its hash's `000..1` pattern (1..=51).
pub fn pattern(element: &[u8]) -> (usize, u8) {
    let hash = murmur64a(element, SEED);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    // The forced bit at Q bounds the count at Q + 1.
    let rest = (hash >> P) | (1 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// A dense register.
fn dense_get(regs: &[u8], index: usize) -> u8 {
    let byte = index * 6 / 8;
    let fb = (index * 6) & 7;
    let b0 = regs.get(byte).copied().unwrap_or(0) as u64;
    let b1 = regs.get(byte + 1).copied().unwrap_or(0) as u64;
    (((b0 >> fb) | (b1 << (8 - fb))) & REGISTER_MAX) as u8
}

/// Sets a dense register; the bits of its neighbours are kept.
fn dense_put(regs: &mut [u8], index: usize, value: u8) {
    let byte = index * 6 / 8;
    let fb = (index * 6) & 7;
    let v = value as u64;
    if let Some(b) = regs.get_mut(byte) {
        *b &= !((REGISTER_MAX << fb) as u8);
        *b |= (v << fb) as u8;
    }
    // The last register never spills into a next byte, which a dense buffer does not have.
    if let Some(b) = regs.get_mut(byte + 1) {
        *b &= !((REGISTER_MAX >> (8 - fb)) as u8);
        *b |= (v >> (8 - fb)) as u8;
    }
}

/// Raises a dense register to `count`; true when it changed.
fn dense_set(h: &mut [u8], index: usize, count: u8) -> bool {
    let regs = &mut h[HDR..];
    if count > dense_get(regs, index) {
        dense_put(regs, index, count);
        true
    } else {
        false
    }
}

/// One sparse opcode.
#[derive(Clone, Copy)]
enum Op {
    Zero(usize),
    XZero(usize),
    Val(u8, usize),
}

impl Op {
    /// Decodes the opcode at `p`; an XZERO cut short by the end reads a zero second byte, as
    /// Redis reads the string's terminator.
    fn at(h: &[u8], p: usize) -> Op {
        let b = h.get(p).copied().unwrap_or(0);
        if b & 0xc0 == 0 {
            Op::Zero((b & 0x3f) as usize + 1)
        } else if b & 0x80 == 0 {
            let lo = h.get(p + 1).copied().unwrap_or(0) as usize;
            Op::XZero(((((b & 0x3f) as usize) << 8) | lo) + 1)
        } else {
            Op::Val(((b >> 2) & 0x1f) + 1, (b & 0x3) as usize + 1)
        }
    }

    /// Registers covered.
    fn span(self) -> usize {
        match self {
            Op::Zero(n) | Op::XZero(n) | Op::Val(_, n) => n,
        }
    }

    /// Bytes taken.
    fn size(self) -> usize {
        match self {
            Op::XZero(_) => 2,
            _ => 1,
        }
    }
}

fn val_byte(value: u8, len: usize) -> u8 {
    0x80 | ((value - 1) << 2) | (len as u8 - 1)
}

fn write_xzero(out: &mut [u8], len: usize) {
    let l = len - 1;
    out[0] = 0x40 | (l >> 8) as u8;
    out[1] = (l & 0xff) as u8;
}

/// Appends a run of `len` zero registers as ZERO or XZERO, as `hllSparseSet` chooses.
fn push_zeros(seq: &mut Vec<u8>, len: usize) {
    if len > ZERO_MAX_LEN {
        let mut x = [0u8; 2];
        write_xzero(&mut x, len);
        seq.extend_from_slice(&x);
    } else {
        seq.push((len - 1) as u8);
    }
}

/// Rewrites a sparse HyperLogLog as dense, keeping the header (cached count included).
pub fn to_dense(h: &mut Vec<u8>) -> Result<(), Corrupt> {
    if h.get(4) == Some(&DENSE) {
        return Ok(());
    }
    let mut dense = vec![0u8; DENSE_SIZE];
    dense[..HDR].copy_from_slice(h.get(..HDR).ok_or(Corrupt)?);
    dense[4] = DENSE;
    let mut idx = 0usize;
    let mut p = HDR;
    while p < h.len() {
        let op = Op::at(h, p);
        if let Op::Val(value, len) = op {
            // A run past the last register is corrupt (Redis 7.0.15 as patched for
            // CVE-2025-32023 refuses it; the original stopped there and could still accept it).
            if idx + len > REGISTERS {
                return Err(Corrupt);
            }
            for i in idx..idx + len {
                dense_put(&mut dense[HDR..], i, value);
            }
        }
        idx += op.span();
        p += op.size();
    }
    if idx != REGISTERS {
        return Err(Corrupt);
    }
    *h = dense;
    Ok(())
}

/// Raises register `index` to `count` if it is lower, in either representation, promoting a
/// sparse HyperLogLog to dense when needed. True when a register changed.
pub fn set(h: &mut Vec<u8>, index: usize, count: u8, sparse_max: usize) -> Result<bool, Corrupt> {
    if is_dense(h) {
        Ok(dense_set(h, index, count))
    } else {
        sparse_set(h, index, count, sparse_max)
    }
}

/// Adds an element; true when a register changed.
pub fn add(h: &mut Vec<u8>, element: &[u8], sparse_max: usize) -> Result<bool, Corrupt> {
    let (index, count) = pattern(element);
    set(h, index, count, sparse_max)
}

/// The value of register `index`, read without changing anything.
pub fn register(h: &[u8], index: usize) -> Result<u8, Corrupt> {
    if is_dense(h) {
        return Ok(dense_get(&h[HDR..], index));
    }
    let mut first = 0usize;
    let mut p = HDR;
    while p < h.len() {
        let op = Op::at(h, p);
        if index < first + op.span() {
            return Ok(match op {
                Op::Val(v, _) => v,
                _ => 0,
            });
        }
        first += op.span();
        p += op.size();
    }
    Err(Corrupt)
}

/// Redis's `hllSparseSet`.
fn sparse_set(
    h: &mut Vec<u8>,
    index: usize,
    count: u8,
    sparse_max: usize,
) -> Result<bool, Corrupt> {
    if count > VAL_MAX_VALUE {
        return promote(h, index, count);
    }
    // Step 1: find the opcode covering the register.
    let end = h.len();
    let mut p = HDR;
    let mut first = 0usize;
    let mut prev = None;
    let mut op = None;
    while p < end {
        let o = Op::at(h, p);
        op = Some(o);
        if index < first + o.span() {
            break;
        }
        prev = Some(p);
        p += o.size();
        first += o.span();
    }
    let Some(op) = op else {
        return Err(Corrupt);
    };
    if p >= end {
        return Err(Corrupt);
    }
    let span = op.span();
    // Step 2: the trivial in-place updates, else the split sequence.
    match op {
        Op::Val(old, _) if old >= count => return Ok(false),
        Op::Val(_, 1) | Op::Zero(1) => {
            h[p] = val_byte(count, 1);
            merge_vals(h, prev.unwrap_or(HDR));
            invalidate(h);
            return Ok(true);
        }
        _ => {}
    }
    let last = first + span - 1;
    let mut seq = Vec::with_capacity(5);
    match op {
        Op::Val(current, _) => {
            if index != first {
                seq.push(val_byte(current, index - first));
            }
            seq.push(val_byte(count, 1));
            if index != last {
                seq.push(val_byte(current, last - index));
            }
        }
        Op::Zero(_) | Op::XZero(_) => {
            if index != first {
                push_zeros(&mut seq, index - first);
            }
            seq.push(val_byte(count, 1));
            if index != last {
                push_zeros(&mut seq, last - index);
            }
        }
    }
    // Step 3: replace the opcode with the sequence, unless that grows the string too much.
    let old_len = op.size();
    if seq.len() > old_len && end + seq.len() - old_len > sparse_max {
        return promote(h, index, count);
    }
    let new_len = end + seq.len() - old_len;
    let tail = h.split_off((p + old_len).min(end));
    h.truncate(p);
    h.extend_from_slice(&seq);
    h.extend_from_slice(&tail);
    // An XZERO cut short by the end of a corrupt string loses its missing byte, as in Redis.
    h.truncate(new_len);
    // Step 4: merge neighbouring VAL opcodes.
    merge_vals(h, prev.unwrap_or(HDR));
    invalidate(h);
    Ok(true)
}

/// Merges adjacent VAL opcodes of equal value, scanning at most five opcodes from `p`, exactly
/// as far as Redis looks.
fn merge_vals(h: &mut Vec<u8>, mut p: usize) {
    let mut budget = 5;
    while p < h.len() && budget > 0 {
        budget -= 1;
        let op = Op::at(h, p);
        let Op::Val(v1, l1) = op else {
            p += op.size();
            continue;
        };
        if let Some(&next) = h.get(p + 1) {
            if let Op::Val(v2, l2) = Op::at(h, p + 1) {
                if next & 0x80 != 0 && v1 == v2 && l1 + l2 <= VAL_MAX_LEN {
                    h[p + 1] = val_byte(v1, l1 + l2);
                    h.remove(p);
                    // Retry at the same place: the merged opcode may merge again.
                    continue;
                }
            }
        }
        p += 1;
    }
}

/// Converts to dense and sets the register there (the path Redis calls `promote`).
fn promote(h: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    to_dense(h)?;
    Ok(dense_set(h, index, count))
}

/// Merges a HyperLogLog's registers into `max` (one byte per register), keeping the larger.
pub fn merge_into(max: &mut [u8], h: &[u8]) -> Result<(), Corrupt> {
    if is_dense(h) {
        let regs = &h[HDR..];
        for (i, m) in max.iter_mut().enumerate().take(REGISTERS) {
            *m = (*m).max(dense_get(regs, i));
        }
        return Ok(());
    }
    let mut i = 0usize;
    let mut p = HDR;
    while p < h.len() {
        let op = Op::at(h, p);
        if let Op::Val(value, len) = op {
            // As in `to_dense`: a run past the last register is corrupt.
            if i + len > REGISTERS {
                return Err(Corrupt);
            }
            for m in max.iter_mut().skip(i).take(len) {
                *m = (*m).max(value);
            }
        }
        i += op.span();
        p += op.size();
    }
    if i != REGISTERS {
        return Err(Corrupt);
    }
    Ok(())
}

/// The estimated cardinality of a HyperLogLog.
pub fn count(h: &[u8]) -> Result<u64, Corrupt> {
    let mut histo = [0u32; 64];
    if is_dense(h) {
        let regs = &h[HDR..];
        for i in 0..REGISTERS {
            histo[dense_get(regs, i) as usize] += 1;
        }
    } else {
        let mut idx = 0usize;
        let mut p = HDR;
        while p < h.len() {
            let op = Op::at(h, p);
            let value = match op {
                Op::Val(v, _) => v as usize,
                _ => 0,
            };
            histo[value] = histo[value].wrapping_add(op.span() as u32);
            idx += op.span();
            p += op.size();
        }
        if idx != REGISTERS {
            return Err(Corrupt);
        }
    }
    Ok(estimate(&histo))
}

/// The estimated cardinality of registers held one per byte (PFCOUNT of several keys).
pub fn count_registers(regs: &[u8]) -> u64 {
    let mut histo = [0u32; 64];
    for &r in regs {
        histo[(r & 63) as usize] += 1;
    }
    estimate(&histo)
}

/// Ertl's improved estimator ("New cardinality estimation algorithms for HyperLogLog
/// sketches", arXiv:1702.01284), in Redis's exact order of floating-point operations.
fn estimate(histo: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - histo[Q as usize + 1] as f64) / m);
    for j in (1..=Q as usize).rev() {
        z += histo[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(histo[0] as f64 / m);
    const ALPHA_INF: f64 = 0.721_347_520_444_481_7;
    let e = (ALPHA_INF * m * m / z).round();
    // x86's conversion of an out-of-range value, which is what Redis's llroundl returns.
    if !(e >= i64::MIN as f64 && e < i64::MAX as f64) {
        return i64::MIN as u64;
    }
    e as i64 as u64
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if before == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        let d = 1.0 - x;
        z -= d * d * y;
        if before == z {
            return z / 3.0;
        }
    }
}

/// Every register's value, one per byte (`PFDEBUG GETREG`); the caller has made `h` dense.
pub fn registers(h: &[u8]) -> Vec<u8> {
    let regs = h.get(HDR..).unwrap_or_default();
    (0..REGISTERS).map(|i| dense_get(regs, i)).collect()
}

/// The sparse opcodes as text, `Z:<n>` for XZERO, `z:<n>` for ZERO, `v:<value>,<n>` for VAL
/// (`PFDEBUG DECODE`); `None` for a dense HyperLogLog.
pub fn decode(h: &[u8]) -> Option<String> {
    if is_dense(h) {
        return None;
    }
    let mut ops = Vec::new();
    let mut p = HDR;
    while p < h.len() {
        let op = Op::at(h, p);
        ops.push(match op {
            Op::Zero(n) => format!("z:{n}"),
            Op::XZero(n) => format!("Z:{n}"),
            Op::Val(v, n) => format!("v:{v},{n}"),
        });
        p += op.size();
    }
    Some(ops.join(" "))
}

/// `PFSELFTEST`: dense registers keep exactly what is stored in them without disturbing their
/// neighbours, and the sparse and dense representations agree register by register while
/// elements are added, with an estimate within a few standard errors. Returns what failed.
pub fn self_test() -> Result<(), String> {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut dense = vec![0u8; DENSE_SIZE];
    for _ in 0..20 {
        let values: Vec<u8> = (0..REGISTERS).map(|_| (next() & 63) as u8).collect();
        for (i, &v) in values.iter().enumerate() {
            dense_put(&mut dense[HDR..], i, v);
        }
        for (i, &v) in values.iter().enumerate() {
            if dense_get(&dense[HDR..], i) != v {
                return Err(format!("TESTFAILED Register error at {i}"));
            }
        }
    }
    let mut sparse = new_sparse();
    let mut full = new_sparse();
    to_dense(&mut full).map_err(|_| "TESTFAILED sparse to dense conversion".to_string())?;
    for n in 1..=5000u64 {
        let element = next().to_le_bytes();
        let a = add(&mut sparse, &element, usize::MAX);
        let b = add(&mut full, &element, usize::MAX);
        if a != b || (n % 1000 == 0 && count(&sparse) != count(&full)) {
            return Err(format!(
                "TESTFAILED sparse and dense differ after {n} elements"
            ));
        }
    }
    let estimate = count(&full).unwrap_or(0) as f64;
    // The standard error with 16384 registers is 1.04 / sqrt(16384), about 0.81%.
    if (estimate - 5000.0).abs() / 5000.0 > 0.05 {
        return Err(format!(
            "TESTFAILED Too big error. card:5000 abserr:{}",
            estimate - 5000.0
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_one_xzero() {
        let h = new_sparse();
        assert_eq!(&h[HDR..], &[0x7f, 0xff]);
        assert!(is_valid(&h));
        assert_eq!(count(&h), Ok(0));
    }

    #[test]
    fn sparse_and_dense_agree() {
        let mut sparse = new_sparse();
        let mut dense = new_sparse();
        to_dense(&mut dense).unwrap();
        for i in 0..2000 {
            let e = format!("element:{i}");
            let a = add(&mut sparse, e.as_bytes(), usize::MAX).unwrap();
            let b = add(&mut dense, e.as_bytes(), usize::MAX).unwrap();
            assert_eq!(a, b, "{e}");
        }
        assert!(!is_dense(&sparse));
        assert_eq!(count(&sparse), count(&dense));
        for i in 0..REGISTERS {
            assert_eq!(register(&sparse, i), register(&dense, i));
        }
        let mut max = vec![0u8; REGISTERS];
        merge_into(&mut max, &sparse).unwrap();
        assert_eq!(count_registers(&max), count(&dense).unwrap());
        let estimate = count(&dense).unwrap();
        assert!((1900..2100).contains(&estimate), "{estimate}");
    }

    #[test]
    fn self_test_passes() {
        assert_eq!(self_test(), Ok(()));
        let mut h = new_sparse();
        add(&mut h, b"a", 3000).unwrap();
        assert!(decode(&h).unwrap().starts_with("Z:"));
    }

    #[test]
    fn promotes_past_the_sparse_limit() {
        let mut h = new_sparse();
        for i in 0..5000 {
            add(&mut h, format!("{i}").as_bytes(), 3000).unwrap();
        }
        assert!(is_dense(&h));
        assert_eq!(h.len(), DENSE_SIZE);
    }
}
