//! Set commands (SADD, SINTER, SPOP, SSCAN, ...).
//!
//! Layout, top to bottom: the spec table, the handlers in table order, then the helpers they
//! share (typed lookup, the intersection and union/difference engines, random numbers).
//!
//! Multi-key commands declare every argument from their first key on as keys, so the dispatcher
//! locks all their stripes; they look each key up once through `Locked::lookup` (which expires
//! keys and counts hits, as Redis's `lookupKeyRead`) and then borrow all the sets at once with
//! `Locked::get_live`.

use std::cell::Cell;

use bytes::Bytes;
use shoal_resp::Frame;
use shoal_storage::notify;
use shoal_storage::types::set::{Item, Set};
use shoal_storage::{glob_match, Entry, Locked, Object};

use crate::args::{self, is};
use crate::cx::Cx;
use crate::error::{CmdResult, CommandError};
use crate::keys::parse_cursor;
use crate::spec::{CommandSpec, Flags, Group, KeyAccess, Keys};

const W: Flags = Flags::WRITE.with(Flags::DENYOOM);
const WF: Flags = W.with(Flags::FAST);
const R: Flags = Flags::READONLY;
const RF: Flags = R.with(Flags::FAST);
const ONE: Keys = Keys::Range {
    first: 1,
    last: 1,
    step: 1,
};
const ALL: Keys = Keys::Range {
    first: 1,
    last: -1,
    step: 1,
};

const fn set(name: &'static str, arity: i32, handler: crate::spec::Handler) -> CommandSpec {
    CommandSpec::new(name, Group::Set, arity, handler)
}

/// The sets family.
pub(crate) const COMMANDS: &[CommandSpec] = &[
    set("sadd", -3, sadd)
        .flags(WF)
        .keys(ONE, KeyAccess::Insert)
        .doc("Adds one or more members to a set. Creates the key if it doesn't exist.", "1.0.0")
        .complexity("O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments."),
    set("scard", 2, scard)
        .flags(RF)
        .keys(ONE, KeyAccess::Meta)
        .doc("Returns the number of members in a set.", "1.0.0"),
    set("sdiff", -2, sdiff)
        .flags(R)
        .keys(ALL, KeyAccess::Read)
        .tips(&["nondeterministic_output_order"])
        .doc("Returns the difference of multiple sets.", "1.0.0")
        .complexity("O(N) where N is the total number of elements in all given sets."),
    set("sdiffstore", -3, sdiffstore)
        .flags(W)
        .keys(ALL, KeyAccess::Overwrite)
        .other_keys(KeyAccess::Read)
        .doc("Stores the difference of multiple sets in a key.", "1.0.0")
        .complexity("O(N) where N is the total number of elements in all given sets."),
    set("sinter", -2, sinter)
        .flags(R)
        .keys(ALL, KeyAccess::Read)
        .tips(&["nondeterministic_output_order"])
        .doc("Returns the intersect of multiple sets.", "1.0.0")
        .complexity("O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets."),
    // The keys follow `numkeys`; every argument from there on is locked (a trailing `LIMIT n`
    // only costs a stripe lock).
    set("sintercard", -3, sintercard)
        .flags(R)
        .keys(Keys::Counted { numkeys_at: 1, dest: false }, KeyAccess::Read)
        .doc("Returns the number of members of the intersect of multiple sets.", "7.0.0")
        .complexity("O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets."),
    set("sinterstore", -3, sinterstore)
        .flags(W)
        .keys(ALL, KeyAccess::Update)
        .other_keys(KeyAccess::Read)
        .doc("Stores the intersect of multiple sets in a key.", "1.0.0")
        .complexity("O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets."),
    set("sismember", 3, sismember)
        .flags(RF)
        .keys(ONE, KeyAccess::Meta)
        .doc("Determines whether a member belongs to a set.", "1.0.0"),
    set("smembers", 2, smembers)
        .flags(R)
        .keys(ONE, KeyAccess::Read)
        .tips(&["nondeterministic_output_order"])
        .doc("Returns all members of a set.", "1.0.0")
        .complexity("O(N) where N is the set cardinality."),
    set("smismember", -3, smismember)
        .flags(RF)
        .keys(ONE, KeyAccess::Read)
        .doc("Determines whether multiple members belong to a set.", "6.2.0")
        .complexity("O(N) where N is the number of elements being checked for membership"),
    set("smove", 4, smove)
        .flags(Flags::WRITE.with(Flags::FAST))
        .keys(Keys::Range { first: 1, last: 2, step: 1 }, KeyAccess::Pop)
        .other_keys(KeyAccess::Insert)
        .doc("Moves a member from one set to another.", "1.0.0"),
    set("spop", -2, spop)
        .flags(Flags::WRITE.with(Flags::FAST))
        .keys(ONE, KeyAccess::Pop)
        .tips(&["nondeterministic_output"])
        .doc("Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.", "1.0.0")
        .complexity("Without the count argument O(1), otherwise O(N) where N is the value of the passed count."),
    set("srandmember", -2, srandmember)
        .flags(R)
        .keys(ONE, KeyAccess::Read)
        .tips(&["nondeterministic_output"])
        .doc("Get one or multiple random members from a set", "1.0.0")
        .complexity("Without the count argument O(1), otherwise O(N) where N is the absolute value of the passed count."),
    set("srem", -3, srem)
        .flags(Flags::WRITE.with(Flags::FAST))
        .keys(ONE, KeyAccess::Delete)
        .doc("Removes one or more members from a set. Deletes the set if the last member was removed.", "1.0.0")
        .complexity("O(N) where N is the number of members to be removed."),
    set("sscan", -3, sscan)
        .flags(R)
        .keys(ONE, KeyAccess::Read)
        .tips(&["nondeterministic_output"])
        .doc("Iterates over members of a set.", "2.8.0")
        .complexity("O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection."),
    set("sunion", -2, sunion)
        .flags(R)
        .keys(ALL, KeyAccess::Read)
        .tips(&["nondeterministic_output_order"])
        .doc("Returns the union of multiple sets.", "1.0.0")
        .complexity("O(N) where N is the total number of elements in all given sets."),
    set("sunionstore", -3, sunionstore)
        .flags(W)
        .keys(ALL, KeyAccess::Overwrite)
        .other_keys(KeyAccess::Read)
        .doc("Stores the union of multiple sets in a key.", "1.0.0")
        .complexity("O(N) where N is the total number of elements in all given sets."),
];

// Command: SADD key member [member ...]
//
// > SADD s a b a
// (integer) 2
// > OBJECT ENCODING s
// "hashtable"
fn sadd(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let max = max_intset(cx);
    let db = cx.dbi();
    let l = cx.db()?;
    let members = &a[2..];
    let added = match l.write(db, &a[1])? {
        Some(mut e) => {
            // Only a real addition marks the key modified.
            let s = set_ref(e.get())?;
            if members.iter().all(|m| s.contains(m)) {
                return Ok(Frame::Integer(0));
            }
            let s = set_mut(e.get_mut())?;
            Some(members.iter().filter(|m| s.insert(m, max)).count())
        }
        None => None,
    };
    if let Some(added) = added {
        l.notify(notify::SET, "sadd", db, &a[1]);
        return Ok(Frame::Integer(added as i64));
    }
    let mut s = Set::new();
    let added = members.iter().filter(|m| s.insert(m, max)).count();
    let clock = l.access_clock();
    l.insert(
        db,
        Entry::new_object(&a[1], Object::Set(Box::new(s)), None, clock),
    )?;
    l.notify(notify::SET, "sadd", db, &a[1]);
    Ok(Frame::Integer(added as i64))
}

// Command: SCARD key
fn scard(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let len = read_set(cx, &a[1], |s| s.len())?;
    Ok(Frame::Integer(len.unwrap_or(0) as i64))
}

// Command: SDIFF key [key ...]
//
// > SADD a 1 2 3
// (integer) 3
// > SADD b 2
// (integer) 1
// > SDIFF a b
// 1) "1"
// 2) "3"
fn sdiff(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    union_diff(cx, &a[1..], None, Op::Diff)
}

// Command: SDIFFSTORE destination key [key ...]
fn sdiffstore(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    union_diff(cx, &a[2..], Some(&a[1]), Op::Diff)
}

// Command: SINTER key [key ...]
//
// > SADD a 1 2 3
// (integer) 3
// > SADD b 2 3 4
// (integer) 3
// > SINTER a b
// 1) "2"
// 2) "3"
fn sinter(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    inter(cx, &a[1..], Inter::Reply)
}

// Command: SINTERCARD numkeys key [key ...] [LIMIT limit]
//
// > SADD a 1 2 3
// (integer) 3
// > SINTERCARD 2 a a LIMIT 2
// (integer) 2
fn sintercard(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let numkeys = args::parse_i64(&a[1])
        .filter(|n| *n >= 1)
        .ok_or_else(|| CommandError::err("numkeys should be greater than 0"))?;
    if numkeys > a.len() as i64 - 2 {
        return Err(CommandError::err(
            "Number of keys can't be greater than number of args",
        ));
    }
    let end = 2 + numkeys as usize;
    let mut limit = 0u64;
    let mut i = end;
    while i < a.len() {
        if is(&a[i], "LIMIT") && i + 1 < a.len() {
            limit = args::parse_i64(&a[i + 1])
                .filter(|n| *n >= 0)
                .ok_or_else(|| CommandError::err("LIMIT can't be negative"))?
                as u64;
            i += 2;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    inter(cx, &a[2..end], Inter::Card(limit))
}

// Command: SINTERSTORE destination key [key ...]
fn sinterstore(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    inter(cx, &a[2..], Inter::Store(&a[1]))
}

// Command: SISMEMBER key member
fn sismember(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let found = read_set(cx, &a[1], |s| s.contains(&a[2]))?;
    Ok(Frame::Integer(found.unwrap_or(false) as i64))
}

// Command: SMEMBERS key
//
// > SADD s 3 1 2
// (integer) 3
// > SMEMBERS s
// 1) "1"
// 2) "2"
// 3) "3"
fn smembers(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    // Redis serves SMEMBERS with SINTER's code, so replies (and errors) are the same.
    inter(cx, &a[1..2], Inter::Reply)
}

// Command: SMISMEMBER key member [member ...]
fn smismember(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let members = &a[2..];
    let flags = read_set(cx, &a[1], |s| {
        members
            .iter()
            .map(|m| Frame::Integer(s.contains(m) as i64))
            .collect::<Vec<_>>()
    })?;
    Ok(Frame::Array(flags.unwrap_or_else(|| {
        members.iter().map(|_| Frame::Integer(0)).collect()
    })))
}

// Command: SMOVE source destination member
//
// > SADD a x
// (integer) 1
// > SMOVE a b x
// (integer) 1
// > SMEMBERS b
// 1) "x"
fn smove(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let (src, dst, member) = (&a[1], &a[2], &a[3]);
    let max = max_intset(cx);
    let db = cx.dbi();
    let l = cx.db()?;
    let src_has = match l.write(db, src)? {
        None => return Ok(Frame::Integer(0)),
        Some(e) => set_ref(e.get())?.contains(member),
    };
    let dst_has = match l.write(db, dst)? {
        None => None,
        Some(e) => Some(set_ref(e.get())?.contains(member)),
    };
    if src == dst || !src_has {
        return Ok(Frame::Integer(src_has as i64));
    }
    l.update(db, src, |e| set_mut(e.get_mut()).map(|s| s.remove(member)))?
        .transpose()?;
    // As Redis: the removal from the source (and its deletion), then the addition.
    l.notify_then_del_if_gone(notify::SET, "srem", db, src);
    match dst_has {
        Some(true) => {}
        Some(false) => {
            l.update(db, dst, |e| {
                set_mut(e.get_mut()).map(|s| s.insert(member, max))
            })?
            .transpose()?;
        }
        None => {
            let mut s = Set::new();
            s.insert(member, max);
            let clock = l.access_clock();
            l.insert(
                db,
                Entry::new_object(dst, Object::Set(Box::new(s)), None, clock),
            )?;
        }
    }
    if dst_has != Some(true) {
        l.notify(notify::SET, "sadd", db, dst);
    }
    Ok(Frame::Integer(1))
}

// Command: SPOP key [count]
//
// > SADD s only
// (integer) 1
// > SPOP s
// "only"
// > EXISTS s
// (integer) 0
fn spop(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    match a.len() {
        2 => {}
        3 => return spop_count(cx, a),
        _ => return Err(CommandError::Syntax),
    }
    let db = cx.dbi();
    let popped = cx.db()?.update(db, &a[1], |e| {
        set_ref(e.get())?;
        set_mut(e.get_mut()).map(|s| s.pop_random(&mut random))
    })?;
    Ok(match popped.transpose()?.flatten() {
        Some(m) => {
            cx.db()?
                .notify_then_del_if_gone(notify::SET, "spop", db, &a[1]);
            Frame::Bulk(Bytes::from(m))
        }
        None => Frame::Null,
    })
}

/// `SPOP key count`, with Redis's three strategies: the whole set, `count` random pops, or (when
/// few members would remain) drawing the members that stay into a new set and replying with
/// the rest.
fn spop_count(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let count = args::parse_i64(&a[2])
        .filter(|n| *n >= 0)
        .ok_or_else(|| CommandError::err("value is out of range, must be positive"))?
        as u64;
    let max = max_intset(cx);
    let db = cx.dbi();
    let l = cx.db()?;
    let size = match l.write(db, &a[1])? {
        None => return Ok(Frame::Set(Vec::new())),
        Some(e) => set_ref(e.get())?.len() as u64,
    };
    if count == 0 {
        return Ok(Frame::Set(Vec::new()));
    }
    if count >= size {
        // Redis replies through SUNION's code: the members are copied into a fresh set first,
        // which decides the order (ascending when that copy is an intset).
        let all = match l.get_live(db, &a[1])? {
            Some(e) => {
                let mut copy = Set::new();
                for m in set_ref(e)?.iter() {
                    copy.insert_item(m, max);
                }
                members_frames(&copy)
            }
            None => Vec::new(),
        };
        l.remove(db, &a[1])?;
        l.notify(notify::SET, "spop", db, &a[1]);
        l.notify(notify::GENERIC, "del", db, &a[1]);
        return Ok(Frame::Set(all));
    }
    let remaining = size - count;
    let reply = l.update(db, &a[1], |e| -> Result<Vec<Frame>, CommandError> {
        let s = set_mut(e.get_mut())?;
        if remaining * 5 > count {
            let mut out = Vec::with_capacity(count as usize);
            for _ in 0..count {
                if let Some(m) = s.pop_random(&mut random) {
                    out.push(Frame::Bulk(Bytes::from(m)));
                }
            }
            return Ok(out);
        }
        let mut keep = Set::new();
        for _ in 0..remaining {
            if let Some(m) = s.pop_random(&mut random) {
                keep.insert(&m, max);
            }
        }
        let out = members_frames(s);
        *s = keep;
        Ok(out)
    })?;
    let reply = reply.transpose()?.unwrap_or_default();
    l.notify(notify::SET, "spop", db, &a[1]);
    Ok(Frame::Set(reply))
}

/// The most members a negative `SRANDMEMBER` count may ask for: the reply is built in memory,
/// and Redis's own bound (the client output buffer limit) does not exist here.
const MAX_SAMPLES: i64 = 1 << 22;

// Command: SRANDMEMBER key [count]
//
// > SADD s a
// (integer) 1
// > SRANDMEMBER s -3
// 1) "a"
// 2) "a"
// 3) "a"
fn srandmember(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    match a.len() {
        2 => {}
        3 => return srandmember_count(cx, a),
        _ => return Err(CommandError::Syntax),
    }
    let picked = read_set(cx, &a[1], |s| s.random(&mut random).map(item_frame))?;
    Ok(picked.flatten().unwrap_or(Frame::Null))
}

/// `SRANDMEMBER key count`: a negative count samples with replacement; a positive one returns
/// distinct members, the whole set when it is not larger than the count.
fn srandmember_count(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let n = args::int(&a[2])?;
    if n == i64::MIN {
        return Err(CommandError::err(format!(
            "value is out of range, value must between {} and {}",
            -i64::MAX,
            i64::MAX
        )));
    }
    if n < -MAX_SAMPLES {
        return Err(CommandError::err(format!(
            "value is out of range, value must between {} and {}",
            -MAX_SAMPLES,
            i64::MAX
        )));
    }
    let replies = read_set(cx, &a[1], |s| random_members(s, n))?;
    Ok(Frame::Array(replies.unwrap_or_default()))
}

fn random_members(s: &Set, n: i64) -> Vec<Frame> {
    let size = s.len() as u64;
    let count = n.unsigned_abs();
    if count == 0 || size == 0 {
        return Vec::new();
    }
    if n < 0 || count == 1 {
        return (0..count)
            .filter_map(|_| s.random(&mut random).map(item_frame))
            .collect();
    }
    if count >= size {
        return members_frames(s);
    }
    if count * 3 > size {
        // Close to the whole set: shuffle the first `count` places of a copy.
        let mut all: Vec<Item<'_>> = s.iter().collect();
        let count = count as usize;
        for i in 0..count {
            let j = i + (random() % (all.len() - i) as u64) as usize;
            all.swap(i, j);
        }
        return all.into_iter().take(count).map(item_frame).collect();
    }
    // Much smaller than the set: draw until `count` distinct members came up.
    let mut seen = std::collections::HashSet::with_capacity(count as usize);
    let mut out = Vec::with_capacity(count as usize);
    while (out.len() as u64) < count {
        let Some(m) = s.random(&mut random) else {
            break;
        };
        if seen.insert(m.to_vec()) {
            out.push(item_frame(m));
        }
    }
    out
}

// Command: SREM key member [member ...]
fn srem(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let db = cx.dbi();
    let members = &a[2..];
    let removed = cx
        .db()?
        .update(db, &a[1], |e| -> Result<usize, CommandError> {
            let s = set_ref(e.get())?;
            if !members.iter().any(|m| s.contains(m)) {
                return Ok(0);
            }
            let s = set_mut(e.get_mut())?;
            Ok(members.iter().filter(|m| s.remove(m)).count())
        })?;
    let removed = removed.transpose()?.unwrap_or(0);
    if removed > 0 {
        cx.db()?
            .notify_then_del_if_gone(notify::SET, "srem", db, &a[1]);
    }
    Ok(Frame::Integer(removed as i64))
}

// Command: SSCAN key cursor [MATCH pattern] [COUNT count]
//
// > SADD s 1 2 3
// (integer) 3
// > SSCAN s 0
// 1) "0"
// 2) 1) "1"
//    2) "2"
//    3) "3"
fn sscan(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&a[2]).ok_or_else(|| CommandError::err("invalid cursor"))?;
    let db = cx.dbi();
    let touch = !cx.client.no_touch;
    let l = cx.db()?;
    // As in Redis, a missing key answers before the options are parsed.
    let Some(e) = l.lookup(db, &a[1], touch, true)? else {
        return Ok(scan_reply(0, Vec::new()));
    };
    let s = set_ref(e)?;
    let mut count = 10usize;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 3;
    while i < a.len() {
        let more = i + 1 < a.len();
        if is(&a[i], "COUNT") && more {
            let n = args::int(&a[i + 1])?;
            if n < 1 {
                return Err(CommandError::Syntax);
            }
            count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if is(&a[i], "MATCH") && more {
            pattern = Some(a[i + 1].as_ref()).filter(|p| *p != b"*");
        } else {
            return Err(CommandError::Syntax);
        }
        i += 2;
    }
    let mut out = Vec::new();
    let next = s.scan(cursor, count, |m| {
        let keep = match (pattern, m) {
            (None, _) => true,
            (Some(p), Item::Bytes(b)) => glob_match(p, b, false),
            (Some(p), Item::Int(n)) => glob_match(p, n.to_string().as_bytes(), false),
        };
        if keep {
            out.push(item_frame(m));
        }
    });
    Ok(scan_reply(next, out))
}

// Command: SUNION key [key ...]
//
// > SADD a 1
// (integer) 1
// > SADD b 2
// (integer) 1
// > SUNION a b
// 1) "1"
// 2) "2"
fn sunion(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    union_diff(cx, &a[1..], None, Op::Union)
}

// Command: SUNIONSTORE destination key [key ...]
fn sunionstore(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    union_diff(cx, &a[2..], Some(&a[1]), Op::Union)
}

// ---------------------------------------------------------------------------------------------
// Set helpers.

/// The set a key holds, or `WRONGTYPE`.
fn set_ref(e: &Entry) -> Result<&Set, CommandError> {
    match e.value() {
        Some(Object::Set(s)) => Ok(s),
        _ => Err(CommandError::WrongType),
    }
}

fn set_mut(e: &mut Entry) -> Result<&mut Set, CommandError> {
    match e.value_mut() {
        Some(Object::Set(s)) => Ok(s),
        _ => Err(CommandError::WrongType),
    }
}

/// Reads a set as Redis's `lookupKeyRead` does (expiring it if due, counting a hit or miss) and
/// runs `f` on it: `None` when the key is missing, `WRONGTYPE` for other types.
fn read_set<T>(
    cx: &mut Cx<'_>,
    key: &[u8],
    f: impl FnOnce(&Set) -> T,
) -> Result<Option<T>, CommandError> {
    let db = cx.dbi();
    let touch = !cx.client.no_touch;
    match cx.db()?.lookup(db, key, touch, true)? {
        None => Ok(None),
        Some(e) => Ok(Some(f(set_ref(e)?))),
    }
}

fn max_intset(cx: &Cx<'_>) -> usize {
    cx.server.limits().types.set_max_intset_entries
}

fn item_frame(m: Item<'_>) -> Frame {
    match m {
        Item::Bytes(b) => Frame::Bulk(Bytes::copy_from_slice(b)),
        Item::Int(n) => Frame::Bulk(Bytes::from(n.to_string())),
    }
}

fn members_frames(s: &Set) -> Vec<Frame> {
    s.iter().map(item_frame).collect()
}

fn scan_reply(cursor: u64, members: Vec<Frame>) -> Frame {
    Frame::Array(vec![
        Frame::Bulk(Bytes::from(cursor.to_string())),
        Frame::Array(members),
    ])
}

/// Looks every key up as Redis's set-algebra commands do: all of them, so a wrong type anywhere
/// is an error even after a missing key. Returns whether each key exists.
fn lookup_all(cx: &mut Cx<'_>, keys: &[Bytes]) -> Result<Vec<bool>, CommandError> {
    let db = cx.dbi();
    let touch = !cx.client.no_touch;
    let l = cx.db()?;
    let mut exists = Vec::with_capacity(keys.len());
    for key in keys {
        match l.lookup(db, key, touch, true)? {
            None => exists.push(false),
            Some(e) => {
                set_ref(e)?;
                exists.push(true);
            }
        }
    }
    Ok(exists)
}

/// The sets behind `keys`, `None` for missing keys (after [`lookup_all`]).
fn borrow_all<'l>(
    l: &'l Locked<'_>,
    db: usize,
    keys: &[Bytes],
) -> Result<Vec<Option<&'l Set>>, CommandError> {
    keys.iter()
        .map(|k| match l.get_live(db, k)? {
            None => Ok(None),
            Some(e) => set_ref(e).map(Some),
        })
        .collect()
}

/// Replaces `dst` with `result`, or deletes it when the result is empty, and replies with the
/// cardinality, as the `*STORE` commands do.
fn store(l: &mut Locked<'_>, db: usize, dst: &[u8], result: Set, event: &'static str) -> CmdResult {
    let len = result.len();
    if len == 0 {
        if l.remove(db, dst)?.is_some() {
            l.notify(notify::GENERIC, "del", db, dst);
        }
    } else {
        let clock = l.access_clock();
        l.insert(
            db,
            Entry::new_object(dst, Object::Set(Box::new(result)), None, clock),
        )?;
        l.notify(notify::SET, event, db, dst);
    }
    Ok(Frame::Integer(len as i64))
}

/// What an intersection produces.
enum Inter<'a> {
    /// The members (`SINTER`, `SMEMBERS`).
    Reply,
    /// How many there are, stopping at the limit when it is not 0 (`SINTERCARD`).
    Card(u64),
    /// A set stored at this key (`SINTERSTORE`).
    Store(&'a Bytes),
}

/// `SINTER` and friends: iterate the smallest set and probe the others, so the work is
/// O(N*M) for N the smallest cardinality and M sets, as in Redis.
fn inter(cx: &mut Cx<'_>, keys: &[Bytes], mode: Inter<'_>) -> CmdResult {
    let max = max_intset(cx);
    let db = cx.dbi();
    let exists = lookup_all(cx, keys)?;
    let l = cx.db()?;
    if exists.iter().any(|e| !e) {
        return match mode {
            Inter::Reply => Ok(Frame::Set(Vec::new())),
            Inter::Card(_) => Ok(Frame::Integer(0)),
            Inter::Store(dst) => store(l, db, dst, Set::new(), "sinterstore"),
        };
    }
    let result = {
        let mut sets: Vec<&Set> = borrow_all(l, db, keys)?.into_iter().flatten().collect();
        // A stable sort, like glibc's qsort on small arrays: equal sizes keep argument order,
        // which decides which set's order the reply follows.
        sets.sort_by_key(|s| s.len());
        let Some((&first, rest)) = sets.split_first() else {
            return Ok(Frame::Set(Vec::new()));
        };
        let others: Vec<&Set> = rest
            .iter()
            .copied()
            .filter(|s| !std::ptr::eq(*s, first))
            .collect();
        let common = first
            .iter()
            .filter(move |m| others.iter().all(|s| s.contains_item(*m)));
        match mode {
            Inter::Reply => return Ok(Frame::Set(common.map(item_frame).collect())),
            Inter::Card(limit) => {
                let limit = if limit == 0 {
                    usize::MAX
                } else {
                    limit as usize
                };
                return Ok(Frame::Integer(common.take(limit).count() as i64));
            }
            Inter::Store(_) => {
                let mut out = Set::new();
                for m in common {
                    out.insert_item(m, max);
                }
                out
            }
        }
    };
    match mode {
        Inter::Store(dst) => store(l, db, dst, result, "sinterstore"),
        _ => Ok(Frame::Set(Vec::new())),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Diff,
}

/// `SUNION`, `SDIFF` and their `STORE` forms, computed into a fresh set as Redis does (so the
/// result is an intset whenever it can be), with Redis's choice between its two difference
/// algorithms.
fn union_diff(cx: &mut Cx<'_>, keys: &[Bytes], dst: Option<&Bytes>, op: Op) -> CmdResult {
    let max = max_intset(cx);
    let db = cx.dbi();
    lookup_all(cx, keys)?;
    let l = cx.db()?;
    let result = {
        let sets = borrow_all(l, db, keys)?;
        let mut out = Set::new();
        match op {
            Op::Union => {
                for s in sets.iter().flatten() {
                    for m in s.iter() {
                        out.insert_item(m, max);
                    }
                }
            }
            Op::Diff => diff_into(&mut out, &sets, max),
        }
        out
    };
    match dst {
        Some(dst) => {
            let event = match op {
                Op::Union => "sunionstore",
                Op::Diff => "sdiffstore",
            };
            store(l, db, dst, result, event)
        }
        None => Ok(Frame::Set(members_frames(&result))),
    }
}

fn diff_into(out: &mut Set, sets: &[Option<&Set>], max: usize) {
    let Some((Some(first), rest)) = sets.split_first() else {
        return;
    };
    // The same key given again empties the difference.
    if rest.iter().flatten().any(|s| std::ptr::eq(*s, *first)) {
        return;
    }
    let present: Vec<&Set> = sets.iter().flatten().copied().collect();
    // Algorithm 1 probes every other set for each member of the first: N*M. Algorithm 2 adds
    // the first set and removes every other set's members: the total size. Redis gives
    // algorithm 1 a factor of two for its better constants.
    let one = present.len() * first.len() / 2;
    let two: usize = present.iter().map(|s| s.len()).sum();
    if one <= two {
        let mut others: Vec<&Set> = rest.iter().flatten().copied().collect();
        // Larger sets first: members are more likely to be found early.
        others.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for m in first.iter() {
            if !others.iter().any(|s| s.contains_item(m)) {
                out.insert_item(m, max);
            }
        }
    } else {
        for m in first.iter() {
            out.insert_item(m, max);
        }
        for s in rest.iter().flatten() {
            for m in s.iter() {
                out.remove_item(m);
            }
            if out.is_empty() {
                break;
            }
        }
    }
}

thread_local! {
    /// Each worker thread's random state for SPOP and SRANDMEMBER, seeded from the standard
    /// library's per-process randomness.
    static RNG: Cell<u64> = Cell::new({
        use std::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one(0x5e75_u64) | 1
    });
}

/// A random number (xorshift64*): fast, no lock, good enough for sampling.
fn random() -> u64 {
    RNG.with(|c| {
        let mut x = c.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        c.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}
