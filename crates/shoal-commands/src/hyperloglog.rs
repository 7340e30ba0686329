//! HyperLogLog commands (PFADD, PFCOUNT, PFMERGE), in Redis's byte format.
//!
//! A HyperLogLog is a string value whose bytes are exactly those Redis would hold (see
//! `hll.rs`), so `GET`/`SET`, `DUMP`-free copies between servers and replies all match. Layout:
//! the spec table, the handlers in table order, then the typed lookup they share.

mod hll;

use bytes::Bytes;
use shoal_resp::Frame;
use shoal_storage::{notify, Entry, NewString, StrRef};

use crate::args::{self, is};
use crate::cx::Cx;
use crate::error::{CmdResult, CommandError};
use crate::spec::{CommandSpec, Flags, Group, KeyAccess, Keys};

const fn pf(name: &'static str, arity: i32, handler: crate::spec::Handler) -> CommandSpec {
    CommandSpec::new(name, Group::HyperLogLog, arity, handler)
}

/// The hyperloglog family.
pub(crate) const COMMANDS: &[CommandSpec] = &[
    pf("pfadd", -2, pfadd)
        .flags(Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST))
        .keys(Keys::Range { first: 1, last: 1, step: 1 }, KeyAccess::Insert)
        .complexity("O(1) to add every element.")
        .doc("Adds the specified elements to the specified HyperLogLog.", "2.8.9"),
    pf("pfcount", -2, pfcount)
        .flags(Flags::READONLY.with(Flags::MAY_REPLICATE))
        .keys(Keys::Range { first: 1, last: -1, step: 1 }, KeyAccess::ReadCache)
        .key_note("RW because it may change the internal representation of the key, and propagate to replicas")
        .complexity("O(1) with a very small average constant time when called with a single key. O(N) with N being the number of keys, and much bigger constant times, when called with multiple keys.")
        .doc("Return the approximated cardinality of the set(s) observed by the HyperLogLog at key(s).", "2.8.9"),
    pf("pfmerge", -2, pfmerge)
        .flags(Flags::WRITE.with(Flags::DENYOOM))
        .keys(Keys::Range { first: 1, last: -1, step: 1 }, KeyAccess::ReadInsert)
        .other_keys(KeyAccess::Read)
        .complexity("O(N) to merge N HyperLogLogs, but with high constant times.")
        .doc("Merge N different HyperLogLogs into a single one.", "2.8.9"),
    pf("pfdebug", 3, pfdebug)
        .flags(Flags::WRITE.with(Flags::DENYOOM).with(Flags::ADMIN))
        .keys(Keys::Range { first: 2, last: 2, step: 1 }, KeyAccess::ReadCache)
        .complexity("N/A")
        .doc("Internal commands for debugging HyperLogLog values", "2.8.9"),
    pf("pfselftest", 1, pfselftest)
        .flags(Flags::ADMIN)
        .complexity("N/A")
        .doc("An internal command for testing HyperLogLog values", "2.8.9"),
];

// Command: PFADD key [element ...]
//
// > PFADD hll a b c
// (integer) 1
// > PFADD hll a
// (integer) 0
fn pfadd(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let sparse_max = cx.server.limits().types.hll_sparse_max_bytes;
    let db = cx.dbi();
    let l = cx.db()?;
    let elements = &a[2..];
    let existing = match l.write(db, &a[1])? {
        None => None,
        Some(mut e) => {
            let bytes = hll_bytes(e.get().as_str())?;
            // Most PFADDs change nothing; find out without writing, so the key is only marked
            // modified when a register really grows. A corrupt sparse sequence takes the writing
            // path, which reports it the way Redis does.
            let changes = elements.iter().any(|el| {
                let (index, count) = hll::pattern(el);
                hll::register(bytes, index).map_or(true, |r| count > r)
            });
            if !changes {
                return Ok(Frame::Integer(0));
            }
            let mut result = Ok(false);
            e.get_mut().edit_bytes(0, |h| {
                let mut updated = false;
                for el in elements {
                    match hll::add(h, el, sparse_max) {
                        Ok(changed) => updated |= changed,
                        // Registers already raised stay raised, as in Redis.
                        Err(c) => {
                            result = Err(c);
                            return;
                        }
                    }
                }
                if updated {
                    hll::invalidate(h);
                }
                result = Ok(updated);
            });
            Some(result.map_err(|_| corrupt())?)
        }
    };
    if let Some(updated) = existing {
        if updated {
            l.notify(notify::STRING, "pfadd", db, &a[1]);
        }
        return Ok(Frame::Integer(updated as i64));
    }
    let mut h = hll::new_sparse();
    for el in elements {
        hll::add(&mut h, el, sparse_max).map_err(|_| corrupt())?;
    }
    // Creating the key counts as an update, so even `PFADD key` marks the cache stale.
    hll::invalidate(&mut h);
    let clock = l.access_clock();
    l.insert(db, Entry::new_string(&a[1], NewString::Raw(h), None, clock))?;
    l.notify(notify::STRING, "pfadd", db, &a[1]);
    Ok(Frame::Integer(1))
}

// Command: PFCOUNT key [key ...]
//
// > PFADD hll foo bar zap a
// (integer) 1
// > PFCOUNT hll
// (integer) 4
fn pfcount(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let db = cx.dbi();
    let l = cx.db()?;
    if a.len() > 2 {
        // The union of several: merge into a temporary register set, leave every key alone.
        let mut max = vec![0u8; hll::REGISTERS];
        for key in &a[1..] {
            let Some(e) = l.read(db, key)? else {
                continue;
            };
            let bytes = hll_bytes(e.as_str())?;
            hll::merge_into(&mut max, bytes).map_err(|_| corrupt())?;
        }
        return Ok(Frame::Integer(hll::count_registers(&max) as i64));
    }
    let Some(e) = l.read(db, &a[1])? else {
        return Ok(Frame::Integer(0));
    };
    let bytes = hll_bytes(e.as_str())?;
    if let Some(card) = hll::cached(bytes) {
        return Ok(Frame::Integer(card as i64));
    }
    let card = hll::count(bytes).map_err(|_| corrupt())?;
    // PFCOUNT is a read, but the cached cardinality it refreshes is part of the value.
    if let Some(mut e) = l.write(db, &a[1])? {
        e.get_mut().edit_bytes(0, |h| hll::set_cached(h, card));
    }
    Ok(Frame::Integer(card as i64))
}

// Command: PFMERGE destkey [sourcekey ...]
//
// > PFADD a x y
// (integer) 1
// > PFADD b y z
// (integer) 1
// > PFMERGE c a b
// OK
// > PFCOUNT c
// (integer) 3
fn pfmerge(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let sparse_max = cx.server.limits().types.hll_sparse_max_bytes;
    let db = cx.dbi();
    let l = cx.db()?;
    // The destination is merged too: it is the first of the keys read.
    let mut max = vec![0u8; hll::REGISTERS];
    let mut use_dense = false;
    for key in &a[1..] {
        let Some(e) = l.read(db, key)? else {
            continue;
        };
        let bytes = hll_bytes(e.as_str())?;
        use_dense |= hll::is_dense(bytes);
        hll::merge_into(&mut max, bytes).map_err(|_| corrupt())?;
    }
    let fill = |h: &mut Vec<u8>| -> Result<(), CommandError> {
        if use_dense {
            hll::to_dense(h).map_err(|_| corrupt())?;
        }
        for (index, &count) in max.iter().enumerate() {
            if count != 0 {
                // The destination was validated while merging, so this cannot fail.
                let _ = hll::set(h, index, count, sparse_max);
            }
        }
        hll::invalidate(h);
        Ok(())
    };
    let existed = match l.write(db, &a[1])? {
        Some(mut e) => {
            let mut result = Ok(());
            e.get_mut().edit_bytes(0, |h| result = fill(h));
            result?;
            true
        }
        None => false,
    };
    if !existed {
        let mut h = hll::new_sparse();
        fill(&mut h)?;
        let clock = l.access_clock();
        l.insert(db, Entry::new_string(&a[1], NewString::Raw(h), None, clock))?;
    }
    l.notify(notify::STRING, "pfadd", db, &a[1]);
    Ok(Frame::ok())
}

// Command: PFDEBUG GETREG|DECODE|ENCODING|TODENSE key
//
// > PFADD hll a
// (integer) 1
// > PFDEBUG ENCODING hll
// sparse
// > PFDEBUG DECODE hll
// "Z:5798 v:1,1 Z:10585"
fn pfdebug(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let db = cx.dbi();
    let l = cx.db()?;
    let Some(mut e) = l.write(db, &a[2])? else {
        return Err(CommandError::err("The specified key does not exist"));
    };
    let bytes = hll_bytes(e.get().as_str())?;
    let sub = &a[1];
    if is(sub, "GETREG") || is(sub, "TODENSE") {
        let was_sparse = !hll::is_dense(bytes);
        if was_sparse {
            let mut dense = bytes.to_vec();
            hll::to_dense(&mut dense).map_err(|_| corrupt())?;
            e.get_mut().edit_bytes(0, |h| *h = dense);
        }
        if is(sub, "TODENSE") {
            return Ok(Frame::Integer(was_sparse as i64));
        }
        let regs = hll_bytes(e.get().as_str()).map(hll::registers)?;
        return Ok(Frame::Array(
            regs.into_iter().map(|r| Frame::Integer(r as i64)).collect(),
        ));
    }
    if is(sub, "DECODE") {
        return match hll::decode(bytes) {
            Some(text) => Ok(Frame::Bulk(Bytes::from(text))),
            None => Err(CommandError::err("HLL encoding is not sparse")),
        };
    }
    if is(sub, "ENCODING") {
        let name = if hll::is_dense(bytes) {
            "dense"
        } else {
            "sparse"
        };
        return Ok(Frame::Simple(Bytes::from_static(name.as_bytes())));
    }
    Err(CommandError::err(format!(
        "Unknown PFDEBUG subcommand '{}'",
        args::text(sub)
    )))
}

// Command: PFSELFTEST
//
// > PFSELFTEST
// OK
fn pfselftest(_cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    match hll::self_test() {
        Ok(()) => Ok(Frame::ok()),
        Err(failure) => Err(CommandError::Other(failure)),
    }
}

// ---------------------------------------------------------------------------------------------
// HyperLogLog helpers.

/// The bytes of a value that must be a HyperLogLog: other types get the usual `WRONGTYPE`,
/// strings that are not HyperLogLogs (integers included) get Redis's HyperLogLog variant.
fn hll_bytes(s: Option<StrRef<'_>>) -> Result<&[u8], CommandError> {
    match s.ok_or(CommandError::WrongType)? {
        StrRef::Bytes(b) if hll::is_valid(b) => Ok(b),
        _ => Err(CommandError::Other(
            "WRONGTYPE Key is not a valid HyperLogLog string value.".into(),
        )),
    }
}

fn corrupt() -> CommandError {
    CommandError::Other("INVALIDOBJ Corrupted HLL object detected".into())
}
