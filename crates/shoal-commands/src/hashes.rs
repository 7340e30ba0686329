//! Hash commands (HSET, HGET, HINCRBY, HSCAN, per-field expiry, ...).
//!
//! Layout, top to bottom: the spec table, the handlers in table order, then the helpers the
//! handlers share (typed lookup with lazy field expiry, the write path, `FIELDS` parsing).
//!
//! Field expiry (Redis 7.4's `HEXPIRE` family and Redis 8's `HGETEX`/`HSETEX`/`HGETDEL`) is
//! lazy: every command first removes the fields of its hash that are due at the command's
//! `now` (deleting the key when none remain), so no reply ever shows an expired field. A hash
//! whose every field is due also counts as expired at key lookup (`Entry::is_expired`), so
//! `EXISTS`, `TYPE`, `SCAN` and `KEYS` agree. There is no background sweep of fields yet: a hash
//! nobody touches keeps its expired fields in memory (and a hash without a key expiry is not
//! sampled by the active expiry cycle even when all its fields are due).

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};

use bytes::Bytes;
use shoal_resp::{Frame, Protocol};
use shoal_storage::notify;
use shoal_storage::types::hash::Hash;
use shoal_storage::types::pack::Item;
use shoal_storage::{glob_match, Entry, EntryMut, Locked, Object};

use crate::args::{self, is};
use crate::cx::Cx;
use crate::error::{CmdResult, CommandError};
use crate::keys::parse_cursor;
use crate::longdouble::LongDouble;
use crate::spec::{CommandSpec, Flags, Group, KeyAccess, Keys};

const W: Flags = Flags::WRITE.with(Flags::DENYOOM);
const WF: Flags = W.with(Flags::FAST);
const WFAST: Flags = Flags::WRITE.with(Flags::FAST);
const R: Flags = Flags::READONLY;
const RF: Flags = R.with(Flags::FAST);
const ONE: Keys = Keys::Range {
    first: 1,
    last: 1,
    step: 1,
};

const fn hash(name: &'static str, arity: i32, handler: crate::spec::Handler) -> CommandSpec {
    CommandSpec::new(name, Group::Hash, arity, handler)
}

/// The hashes family.
pub(crate) const COMMANDS: &[CommandSpec] = &[
    hash("hdel", -3, hdel)
        .flags(WFAST)
        .keys(ONE, KeyAccess::Delete)
        .doc("Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.", "2.0.0"),
    hash("hexists", 3, hexists)
        .flags(RF)
        .keys(ONE, KeyAccess::Meta)
        .doc("Determines whether a field exists in a hash.", "2.0.0"),
    hash("hexpire", -6, hexpire)
        .flags(WF)
        .keys(ONE, KeyAccess::ReadWrite)
        .doc("Set expiry for hash field using relative time to expire (seconds)", "7.4.0"),
    hash("hexpireat", -6, hexpireat)
        .flags(WF)
        .keys(ONE, KeyAccess::ReadWrite)
        .doc("Set expiry for hash field using an absolute Unix timestamp (seconds)", "7.4.0"),
    hash("hexpiretime", -5, hexpiretime)
        .flags(RF)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns the expiration time of a hash field as a Unix timestamp, in seconds.", "7.4.0"),
    hash("hget", 3, hget)
        .flags(RF)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns the value of a field in a hash.", "2.0.0"),
    hash("hgetall", 2, hgetall)
        .flags(R)
        .keys(ONE, KeyAccess::Read)
        .tips(&["nondeterministic_output_order"])
        .doc("Returns all fields and values in a hash.", "2.0.0"),
    hash("hgetdel", -5, hgetdel)
        .flags(WFAST)
        .keys(ONE, KeyAccess::ReadWrite)
        .doc("Returns the value of a field and deletes it from the hash.", "8.0.0"),
    hash("hgetex", -5, hgetex)
        .flags(WFAST)
        .keys(ONE, KeyAccess::ReadWrite)
        .doc("Get the value of one or more fields of a given hash key, and optionally set their expiration.", "8.0.0"),
    hash("hincrby", 4, hincrby)
        .flags(WF)
        .keys(ONE, KeyAccess::ReadWrite)
        .doc("Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.", "2.0.0"),
    hash("hincrbyfloat", 4, hincrbyfloat)
        .flags(WF)
        .keys(ONE, KeyAccess::ReadWrite)
        .doc("Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.", "2.6.0"),
    hash("hkeys", 2, hkeys)
        .flags(R)
        .keys(ONE, KeyAccess::Read)
        .tips(&["nondeterministic_output_order"])
        .doc("Returns all fields in a hash.", "2.0.0"),
    hash("hlen", 2, hlen)
        .flags(RF)
        .keys(ONE, KeyAccess::Meta)
        .doc("Returns the number of fields in a hash.", "2.0.0"),
    hash("hmget", -3, hmget)
        .flags(RF)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns the values of all fields in a hash.", "2.0.0"),
    hash("hmset", -4, hmset)
        .flags(WF)
        .keys(ONE, KeyAccess::Update)
        .doc("Sets the values of multiple fields.", "2.0.0"),
    hash("hpersist", -5, hpersist)
        .flags(WFAST)
        .keys(ONE, KeyAccess::ReadWrite)
        .doc("Removes the expiration time for each specified field", "7.4.0"),
    hash("hpexpire", -6, hpexpire)
        .flags(WF)
        .keys(ONE, KeyAccess::ReadWrite)
        .doc("Set expiry for hash field using relative time to expire (milliseconds)", "7.4.0"),
    hash("hpexpireat", -6, hpexpireat)
        .flags(WF)
        .keys(ONE, KeyAccess::ReadWrite)
        .doc("Set expiry for hash field using an absolute Unix timestamp (milliseconds)", "7.4.0"),
    hash("hpexpiretime", -5, hpexpiretime)
        .flags(RF)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns the expiration time of a hash field as a Unix timestamp, in msec.", "7.4.0"),
    hash("hpttl", -5, hpttl)
        .flags(RF)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns the TTL in milliseconds of a hash field.", "7.4.0"),
    hash("hrandfield", -2, hrandfield)
        .flags(R)
        .keys(ONE, KeyAccess::Read)
        .tips(&["nondeterministic_output"])
        .doc("Returns one or more random fields from a hash.", "6.2.0"),
    hash("hscan", -3, hscan)
        .flags(R)
        .keys(ONE, KeyAccess::Read)
        .tips(&["nondeterministic_output"])
        .doc("Iterates over fields and values of a hash.", "2.8.0"),
    hash("hset", -4, hset)
        .flags(WF)
        .keys(ONE, KeyAccess::Update)
        .doc("Creates or modifies the value of a field in a hash.", "2.0.0"),
    hash("hsetex", -6, hsetex)
        .flags(WF)
        .keys(ONE, KeyAccess::ReadWrite)
        .doc("Set the value of one or more fields of a given hash key, and optionally set their expiration.", "8.0.0"),
    hash("hsetnx", 4, hsetnx)
        .flags(WF)
        .keys(ONE, KeyAccess::Insert)
        .doc("Sets the value of a field in a hash only when the field doesn't exist.", "2.0.0"),
    hash("hstrlen", 3, hstrlen)
        .flags(RF)
        .keys(ONE, KeyAccess::Meta)
        .doc("Returns the length of the value of a field.", "3.2.0"),
    hash("httl", -5, httl)
        .flags(RF)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns the TTL in seconds of a hash field.", "7.4.0"),
    hash("hvals", 2, hvals)
        .flags(R)
        .keys(ONE, KeyAccess::Read)
        .tips(&["nondeterministic_output_order"])
        .doc("Returns all values in a hash.", "2.0.0"),
];

// Command: HDEL key field [field ...]
//
// > HSET h a 1 b 2
// (integer) 2
// > HDEL h a nope
// (integer) 1
fn hdel(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let removed = write_hash(cx, &a[1], |e| {
        let h = as_hash(e.get())?;
        if !a[2..].iter().any(|f| h.contains(f)) {
            return Ok(0);
        }
        let h = hash_mut(e)?;
        Ok(a[2..].iter().filter(|f| h.remove(f)).count() as i64)
    })?;
    let removed = removed.unwrap_or(0);
    if removed > 0 {
        let db = cx.dbi();
        cx.db()?
            .notify_then_del_if_gone(notify::HASH, "hdel", db, &a[1]);
    }
    Ok(Frame::Integer(removed))
}

// Command: HEXISTS key field
fn hexists(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let found = read_hash(cx, &a[1])?.is_some_and(|h| h.contains(&a[2]));
    Ok(Frame::Integer(found as i64))
}

// Command: HEXPIRE key seconds [NX|XX|GT|LT] FIELDS numfields field [field ...]
//
// > HSET h a 1
// (integer) 1
// > HEXPIRE h 100 FIELDS 2 a nope
// 1) (integer) 1
// 2) (integer) -2
fn hexpire(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let now = cx.now;
    expire_generic(cx, a, now, Unit::Seconds, "hexpire")
}

// Command: HEXPIREAT key unix-time-seconds [NX|XX|GT|LT] FIELDS numfields field [field ...]
fn hexpireat(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    expire_generic(cx, a, 0, Unit::Seconds, "hexpireat")
}

// Command: HEXPIRETIME key FIELDS numfields field [field ...]
fn hexpiretime(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    ttl_generic(cx, a, 0, Unit::Seconds)
}

// Command: HGET key field
//
// > HSET h f v
// (integer) 1
// > HGET h f
// "v"
fn hget(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let value = read_hash(cx, &a[1])?.and_then(|h| h.get(&a[2]));
    Ok(value.map_or(Frame::Null, bulk))
}

// Command: HGETALL key
//
// A map in RESP3, a flat field/value array in RESP2.
fn hgetall(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let pairs = read_hash(cx, &a[1])?.map_or_else(Vec::new, |h| {
        h.iter().map(|(f, v)| (bulk(f), bulk(v))).collect()
    });
    Ok(Frame::Map(pairs))
}

// Command: HGETDEL key FIELDS numfields field [field ...]
//
// > HSET h a 1 b 2
// (integer) 2
// > HGETDEL h FIELDS 2 a nope
// 1) "1"
// 2) (nil)
fn hgetdel(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    check_type(cx, &a[1])?;
    let fields = fields_arg(a, 3, NUMFIELDS_POSITIVE)?;
    let out = write_hash(cx, &a[1], |e| {
        let h = as_hash(e.get())?;
        if !fields.iter().any(|f| h.contains(f)) {
            return Ok(vec![Frame::Null; fields.len()]);
        }
        let h = hash_mut(e)?;
        Ok(fields
            .iter()
            .map(|f| {
                let v = h.get(f).map_or(Frame::Null, bulk);
                h.remove(f);
                v
            })
            .collect())
    })?;
    Ok(Frame::Array(
        out.unwrap_or_else(|| vec![Frame::Null; fields.len()]),
    ))
}

// Command: HGETEX key [EX s|PX ms|EXAT t|PXAT t|PERSIST] FIELDS numfields field [field ...]
//
// > HSET h a 1
// (integer) 1
// > HGETEX h PX 5000 FIELDS 1 a
// 1) "1"
fn hgetex(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    check_type(cx, &a[1])?;
    let now = cx.now;
    let opt = &a[2];
    let (change, numfields_at) = if is(opt, "PERSIST") {
        (Some(None), 4)
    } else if let Some((unit, base)) = expire_option(opt, now) {
        let at = expire_time(&a[3], unit, base, "hgetex")?;
        (Some(Some(at)), 5)
    } else {
        (None, 3)
    };
    let fields = fields_arg(a, numfields_at, NUMFIELDS_POSITIVE)?;
    let out = write_hash(cx, &a[1], |e| {
        let h = as_hash(e.get())?;
        let values: Vec<Frame> = fields
            .iter()
            .map(|f| h.get(f).map_or(Frame::Null, bulk))
            .collect();
        let Some(deadline) = change else {
            return Ok(values);
        };
        let touches = match deadline {
            None => fields.iter().any(|f| h.deadline(f).is_some()),
            Some(_) => fields.iter().any(|f| h.contains(f)),
        };
        if touches {
            let h = hash_mut(e)?;
            for f in fields {
                if !h.contains(f) {
                    continue;
                }
                match deadline {
                    Some(d) if d <= now => {
                        h.remove(f);
                    }
                    d => h.set_deadline(f, d),
                }
            }
        }
        Ok(values)
    })?;
    Ok(Frame::Array(
        out.unwrap_or_else(|| vec![Frame::Null; fields.len()]),
    ))
}

// Command: HINCRBY key field increment
//
// > HINCRBY h n 5
// (integer) 5
// > HINCRBY h n -7
// (integer) -2
fn hincrby(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let by = args::int(&a[3])?;
    let next = write_field(cx, &a[1], &a[2], |current| {
        let current = match current {
            None => 0,
            Some(Item::Int(n)) => n,
            Some(Item::Bytes(b)) => args::parse_i64(b)
                .ok_or_else(|| CommandError::err("hash value is not an integer"))?,
        };
        let next = current.checked_add(by).ok_or(CommandError::Overflow)?;
        Ok((next, next.to_string()))
    })?;
    cx.notify(notify::HASH, "hincrby", &a[1]);
    Ok(Frame::Integer(next))
}

// Command: HINCRBYFLOAT key field increment
//
// > HSET h f 10.50
// (integer) 1
// > HINCRBYFLOAT h f 0.1
// "10.6"
fn hincrbyfloat(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let by = LongDouble::parse(&a[3]).ok_or(CommandError::NotFloat)?;
    if !by.is_finite() {
        return Err(CommandError::err("value is NaN or Infinity"));
    }
    let text = write_field(cx, &a[1], &a[2], |current| {
        let current = match current {
            None => LongDouble::from_i64(0),
            Some(Item::Int(n)) => LongDouble::from_i64(n),
            Some(Item::Bytes(b)) => LongDouble::parse(b)
                .ok_or_else(|| CommandError::err("hash value is not a float"))?,
        };
        let sum = current.add(by);
        if !sum.is_finite() {
            return Err(CommandError::err("increment would produce NaN or Infinity"));
        }
        let text = sum.to_human_string();
        Ok((text.clone(), text))
    })?;
    cx.notify(notify::HASH, "hincrbyfloat", &a[1]);
    Ok(Frame::Bulk(Bytes::from(text)))
}

// Command: HKEYS key
fn hkeys(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let keys =
        read_hash(cx, &a[1])?.map_or_else(Vec::new, |h| h.iter().map(|(f, _)| bulk(f)).collect());
    Ok(Frame::Array(keys))
}

// Command: HLEN key
fn hlen(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let len = read_hash(cx, &a[1])?.map_or(0, Hash::len);
    Ok(Frame::Integer(len as i64))
}

// Command: HMGET key field [field ...]
//
// > HSET h a 1
// (integer) 1
// > HMGET h a b
// 1) "1"
// 2) (nil)
fn hmget(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let h = read_hash(cx, &a[1])?;
    let values = a[2..]
        .iter()
        .map(|f| h.and_then(|h| h.get(f)).map_or(Frame::Null, bulk))
        .collect();
    Ok(Frame::Array(values))
}

// Command: HMSET key field value [field value ...]
fn hmset(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    if !a.len().is_multiple_of(2) {
        return Err(CommandError::WrongArity("hmset".into()));
    }
    set_pairs(cx, &a[1], &a[2..])?;
    cx.notify(notify::HASH, "hset", &a[1]);
    Ok(Frame::ok())
}

// Command: HPERSIST key FIELDS numfields field [field ...]
//
// > HSET h a 1 b 2
// (integer) 2
// > HEXPIRE h 100 FIELDS 1 a
// 1) (integer) 1
// > HPERSIST h FIELDS 3 a b c
// 1) (integer) 1
// 2) (integer) -1
// 3) (integer) -2
fn hpersist(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    check_type(cx, &a[1])?;
    let fields = fields_arg(a, 3, NUMFIELDS_POSITIVE)?;
    let out = write_hash(cx, &a[1], |e| {
        let h = as_hash(e.get())?;
        let codes: Vec<i64> = fields
            .iter()
            .map(|f| match (h.contains(f), h.deadline(f)) {
                (false, _) => -2,
                (true, None) => -1,
                (true, Some(_)) => 1,
            })
            .collect();
        if codes.contains(&1) {
            let h = hash_mut(e)?;
            for f in fields {
                h.set_deadline(f, None);
            }
        }
        Ok(codes)
    })?;
    Ok(int_array(out.unwrap_or_else(|| vec![-2; fields.len()])))
}

// Command: HPEXPIRE key milliseconds [NX|XX|GT|LT] FIELDS numfields field [field ...]
fn hpexpire(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let now = cx.now;
    expire_generic(cx, a, now, Unit::Millis, "hpexpire")
}

// Command: HPEXPIREAT key unix-time-milliseconds [NX|XX|GT|LT] FIELDS numfields field [field ...]
fn hpexpireat(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    expire_generic(cx, a, 0, Unit::Millis, "hpexpireat")
}

// Command: HPEXPIRETIME key FIELDS numfields field [field ...]
fn hpexpiretime(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    ttl_generic(cx, a, 0, Unit::Millis)
}

// Command: HPTTL key FIELDS numfields field [field ...]
fn hpttl(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let now = cx.now;
    ttl_generic(cx, a, now, Unit::Millis)
}

/// The largest reply `HRANDFIELD` builds: Redis streams any count to the socket, Shoal builds
/// the reply first, so a count in the billions is refused instead of exhausting memory.
const MAX_RANDOM_REPLY: u64 = 1 << 22;

// Command: HRANDFIELD key [count [WITHVALUES]]
//
// A positive count returns distinct fields (all of them when count >= HLEN), a negative count
// may repeat fields. With WITHVALUES, RESP2 gets a flat field/value array and RESP3 an array
// of pairs.
fn hrandfield(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let resp3 = cx.client.protocol == Protocol::Resp3;
    if a.len() == 2 {
        let Some(h) = read_hash(cx, &a[1])? else {
            return Ok(Frame::Null);
        };
        return Ok(h
            .random_pair(&mut random)
            .map_or(Frame::Null, |(f, _)| bulk(f)));
    }
    let count = args::int(&a[2])?;
    if count == i64::MIN {
        return Err(CommandError::err(format!(
            "value is out of range, value must between {} and {}",
            -i64::MAX,
            i64::MAX
        )));
    }
    let with_values = match a.get(3) {
        None => false,
        Some(opt) if a.len() == 4 && is(opt, "WITHVALUES") => true,
        Some(_) => return Err(CommandError::Syntax),
    };
    if with_values && !(-i64::MAX / 2..=i64::MAX / 2).contains(&count) {
        return Err(CommandError::err("value is out of range"));
    }
    let Some(h) = read_hash(cx, &a[1])? else {
        return Ok(Frame::Array(Vec::new()));
    };
    let wanted = count.unsigned_abs();
    if wanted == 0 {
        return Ok(Frame::Array(Vec::new()));
    }
    let size = h.len() as u64;
    let mut out = Vec::new();
    let mut emit = |f: Item<'_>, v: Item<'_>| {
        if !with_values {
            out.push(bulk(f));
        } else if resp3 {
            out.push(Frame::Array(vec![bulk(f), bulk(v)]));
        } else {
            out.push(bulk(f));
            out.push(bulk(v));
        }
    };
    if count < 0 || wanted == 1 {
        // Independent draws, repeats allowed (and for a count of 1 there is nothing to repeat).
        if wanted > MAX_RANDOM_REPLY {
            return Err(CommandError::err("value is out of range"));
        }
        for _ in 0..wanted {
            if let Some((f, v)) = h.random_pair(&mut random) {
                emit(f, v);
            }
        }
    } else if wanted >= size {
        for (f, v) in h.iter() {
            emit(f, v);
        }
    } else if wanted * 3 > size {
        // Most of the hash is wanted: pick which to keep with a partial Fisher-Yates shuffle.
        let mut all: Vec<(Item<'_>, Item<'_>)> = h.iter().collect();
        for i in 0..wanted as usize {
            let j = i + (random() % (all.len() - i) as u64) as usize;
            all.swap(i, j);
        }
        for (f, v) in all.into_iter().take(wanted as usize) {
            emit(f, v);
        }
    } else {
        // A few fields of a big hash: draw until enough distinct ones turned up.
        let mut seen = std::collections::HashSet::new();
        while (seen.len() as u64) < wanted {
            if let Some((f, v)) = h.random_pair(&mut random) {
                if seen.insert(f.to_vec()) {
                    emit(f, v);
                }
            }
        }
    }
    Ok(Frame::Array(out))
}

// Command: HSCAN key cursor [MATCH pattern] [COUNT count] [NOVALUES]
//
// A listpack-encoded hash is returned whole with cursor 0, as Redis does.
fn hscan(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&a[2]).ok_or_else(|| CommandError::err("invalid cursor"))?;
    let empty = || {
        Frame::Array(vec![
            Frame::Bulk(Bytes::from_static(b"0")),
            Frame::Array(Vec::new()),
        ])
    };
    let Some(h) = read_hash(cx, &a[1])? else {
        return Ok(empty());
    };
    let mut count = 10usize;
    let mut pattern: Option<&Bytes> = None;
    let mut values = true;
    let mut i = 3;
    while i < a.len() {
        let opt = &a[i];
        let has_arg = i + 1 < a.len();
        if is(opt, "COUNT") && has_arg {
            let n = args::int(&a[i + 1])?;
            if n < 1 {
                return Err(CommandError::Syntax);
            }
            count = n as usize;
            i += 2;
        } else if is(opt, "MATCH") && has_arg {
            pattern = Some(&a[i + 1]).filter(|p| p.as_ref() != b"*");
            i += 2;
        } else if is(opt, "NOVALUES") {
            values = false;
            i += 1;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    let mut out = Vec::new();
    let next = h.scan(cursor, count, |f, v| {
        let keep = match pattern {
            Some(p) => glob_match(p, &f.to_vec(), false),
            None => true,
        };
        if keep {
            out.push(bulk(f));
            if values {
                out.push(bulk(v));
            }
        }
    });
    Ok(Frame::Array(vec![
        Frame::Bulk(Bytes::from(next.to_string())),
        Frame::Array(out),
    ]))
}

// Command: HSET key field value [field value ...]
//
// > HSET h a 1 b 2
// (integer) 2
// > HSET h a 3
// (integer) 0
fn hset(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    if !a.len().is_multiple_of(2) {
        return Err(CommandError::WrongArity("hset".into()));
    }
    let created = set_pairs(cx, &a[1], &a[2..])?;
    cx.notify(notify::HASH, "hset", &a[1]);
    Ok(Frame::Integer(created))
}

// Command: HSETEX key [FNX|FXX] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL] FIELDS numfields field value [field value ...]
//
// > HSETEX h FNX EX 100 FIELDS 2 a 1 b 2
// (integer) 1
// > HSETEX h FNX FIELDS 1 a 3
// (integer) 0
fn hsetex(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let o = SetExOptions::parse(a, cx.now)?;
    check_type(cx, &a[1])?;
    let limits = cx.server.limits().types;
    let now = cx.now;
    let pairs = o.pairs;
    let apply = |h: &mut Hash| {
        for p in pairs.chunks_exact(2) {
            if o.keep_ttl || o.deadline.is_some() {
                h.set_keep_ttl(&p[0], &p[1], &limits);
            } else {
                h.set(&p[0], &p[1], &limits);
            }
            match o.deadline {
                Some(d) if d <= now => {
                    h.remove(&p[0]);
                }
                Some(d) => h.set_deadline(&p[0], Some(d)),
                None => {}
            }
        }
    };
    let allowed = |h: &Hash| {
        let fields = pairs.chunks_exact(2).map(|p| &p[0]);
        match o.condition {
            Some(FieldCondition::Fnx) => !fields.into_iter().any(|f| h.contains(f)),
            Some(FieldCondition::Fxx) => fields.into_iter().all(|f| h.contains(f)),
            None => true,
        }
    };
    let done = write_hash(cx, &a[1], |e| {
        if !allowed(as_hash(e.get())?) {
            return Ok(0);
        }
        apply(hash_mut(e)?);
        Ok(1)
    })?;
    if let Some(done) = done {
        return Ok(Frame::Integer(done));
    }
    if o.condition == Some(FieldCondition::Fxx) {
        return Ok(Frame::Integer(0));
    }
    let mut h = Hash::new();
    apply(&mut h);
    insert_hash(cx, &a[1], h)?;
    Ok(Frame::Integer(1))
}

// Command: HSETNX key field value
fn hsetnx(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let limits = cx.server.limits().types;
    let done = write_hash(cx, &a[1], |e| {
        if as_hash(e.get())?.contains(&a[2]) {
            return Ok(0);
        }
        hash_mut(e)?.set(&a[2], &a[3], &limits);
        Ok(1)
    })?;
    if let Some(done) = done {
        if done == 1 {
            cx.notify(notify::HASH, "hset", &a[1]);
        }
        return Ok(Frame::Integer(done));
    }
    let mut h = Hash::new();
    h.set(&a[2], &a[3], &limits);
    insert_hash(cx, &a[1], h)?;
    cx.notify(notify::HASH, "hset", &a[1]);
    Ok(Frame::Integer(1))
}

// Command: HSTRLEN key field
fn hstrlen(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let len = read_hash(cx, &a[1])?
        .and_then(|h| h.get(&a[2]))
        .map_or(0, Item::text_len);
    Ok(Frame::Integer(len as i64))
}

// Command: HTTL key FIELDS numfields field [field ...]
//
// -2 for a missing field, -1 for a field without expiry, else the seconds left (rounded up).
fn httl(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let now = cx.now;
    ttl_generic(cx, a, now, Unit::Seconds)
}

// Command: HVALS key
fn hvals(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let values =
        read_hash(cx, &a[1])?.map_or_else(Vec::new, |h| h.iter().map(|(_, v)| bulk(v)).collect());
    Ok(Frame::Array(values))
}

// ---------------------------------------------------------------------------------------------
// Hash type helpers.

/// The error text of a bad `numfields` in the read-style field expiry commands.
const NUMFIELDS_POSITIVE: &str = "Number of fields must be a positive integer";
/// The error text of a bad `numfields` in `HEXPIRE` and its variants.
const NUMFIELDS_EXPIRE: &str = "Parameter `numFields` should be greater than 0";
/// The latest field expiry time Redis accepts (`EB_EXPIRE_TIME_MAX >> 2`, in ms).
const MAX_FIELD_DEADLINE: i64 = ((1i64 << 48) - 1) >> 2;

fn bulk(item: Item<'_>) -> Frame {
    Frame::Bulk(Bytes::from(item.to_vec()))
}

fn int_array(values: Vec<i64>) -> Frame {
    Frame::Array(values.into_iter().map(Frame::Integer).collect())
}

/// The hash inside an entry, or `WRONGTYPE`.
fn as_hash(e: &Entry) -> Result<&Hash, CommandError> {
    match e.value() {
        Some(Object::Hash(h)) => Ok(h),
        _ => Err(CommandError::WrongType),
    }
}

/// The hash inside an entry being written, marking the key modified; type-checks first so a
/// `WRONGTYPE` leaves no trace.
fn hash_mut<'e>(e: &'e mut EntryMut<'_>) -> Result<&'e mut Hash, CommandError> {
    as_hash(e.get())?;
    match e.get_mut().value_mut() {
        Some(Object::Hash(h)) => Ok(h),
        _ => Err(CommandError::WrongType),
    }
}

/// Removes the fields of the hash at `key` that are due at `now`, deleting the key when none
/// remain. This is the lazy expiry of fields, run before any command reads or writes a hash.
fn expire_fields(l: &mut Locked<'_>, db: usize, key: &[u8], now: u64) -> Result<(), CommandError> {
    let due = match l.peek(db, key)? {
        Some(e) => {
            matches!(e.value(), Some(Object::Hash(h)) if h.next_deadline().is_some_and(|d| d <= now))
        }
        None => false,
    };
    if due {
        l.update(db, key, |e| {
            if let Some(Object::Hash(h)) = e.get_mut().value_mut() {
                h.purge_expired(now);
            }
        })?;
    }
    Ok(())
}

/// Reads the hash at `key` as Redis's `lookupKeyRead` does (a keyspace hit or miss, the access
/// clock touched), after lazy field expiry: `None` when missing, `WRONGTYPE` for other types.
fn read_hash<'c>(cx: &'c mut Cx<'_>, key: &[u8]) -> Result<Option<&'c Hash>, CommandError> {
    let db = cx.dbi();
    let now = cx.now;
    let touch = !cx.client.no_touch;
    let l = cx.db()?;
    expire_fields(l, db, key, now)?;
    match l.lookup(db, key, touch, true)? {
        None => Ok(None),
        Some(e) => as_hash(e).map(Some),
    }
}

/// Fails with `WRONGTYPE` when `key` holds another type; for commands that check the type
/// before they parse the rest of their arguments, as Redis's field expiry commands do.
fn check_type(cx: &mut Cx<'_>, key: &[u8]) -> Result<(), CommandError> {
    let db = cx.dbi();
    match cx.db()?.peek(db, key)? {
        Some(e) if e.kind() != shoal_storage::Kind::Hash => Err(CommandError::WrongType),
        _ => Ok(()),
    }
}

/// Runs `f` on the live hash at `key` through the write path, after lazy field expiry; the key
/// is deleted when `f` leaves the hash empty. Returns `None` when the key does not exist.
fn write_hash<R>(
    cx: &mut Cx<'_>,
    key: &[u8],
    f: impl FnOnce(&mut EntryMut<'_>) -> Result<R, CommandError>,
) -> Result<Option<R>, CommandError> {
    let db = cx.dbi();
    let now = cx.now;
    let l = cx.db()?;
    // The common case, a hash with no field due, costs one lookup: `f` runs in the same
    // `update`. Only when fields are due does the write step back, purge them (deleting the
    // key if none remain, as Redis does) and look the key up again.
    let mut f = Some(f);
    let first = l.update(db, key, |e| {
        let due = matches!(e.get().value(), Some(Object::Hash(h))
            if h.next_deadline().is_some_and(|d| d <= now));
        if due {
            return None;
        }
        f.take().map(|f| f(e))
    })?;
    match (first, f) {
        (Some(Some(r)), _) => r.map(Some),
        (Some(None), Some(f)) => {
            expire_fields(l, db, key, now)?;
            l.update(db, key, f)?.transpose()
        }
        _ => Ok(None),
    }
}

/// Stores a new hash at `key` (nothing when it is empty: Redis never keeps empty hashes).
fn insert_hash(cx: &mut Cx<'_>, key: &[u8], h: Hash) -> Result<(), CommandError> {
    if h.is_empty() {
        return Ok(());
    }
    let db = cx.dbi();
    let l = cx.db()?;
    let clock = l.access_clock();
    l.insert(db, Entry::new_object(key, Object::Hash(h), None, clock))?;
    Ok(())
}

/// `HSET`'s body: sets every field/value pair, creating the hash if needed; returns how many
/// fields are new.
fn set_pairs(cx: &mut Cx<'_>, key: &[u8], pairs: &[Bytes]) -> Result<i64, CommandError> {
    let limits = cx.server.limits().types;
    let set_all = |h: &mut Hash| {
        pairs
            .chunks_exact(2)
            .filter(|p| h.set(&p[0], &p[1], &limits))
            .count() as i64
    };
    if let Some(created) = write_hash(cx, key, |e| Ok(set_all(hash_mut(e)?)))? {
        return Ok(created);
    }
    let mut h = Hash::new();
    let created = set_all(&mut h);
    insert_hash(cx, key, h)?;
    Ok(created)
}

/// The read-modify-write of `HINCRBY` and `HINCRBYFLOAT`: `f` computes the reply and the new
/// text of `field` from its current value (`None` when missing, the key included); the field
/// keeps its expiry time, as in Redis.
fn write_field<R>(
    cx: &mut Cx<'_>,
    key: &[u8],
    field: &[u8],
    f: impl Fn(Option<Item<'_>>) -> Result<(R, String), CommandError>,
) -> Result<R, CommandError> {
    let limits = cx.server.limits().types;
    let done = write_hash(cx, key, |e| {
        let (reply, text) = f(as_hash(e.get())?.get(field))?;
        hash_mut(e)?.set_keep_ttl(field, text.as_bytes(), &limits);
        Ok(reply)
    })?;
    if let Some(reply) = done {
        return Ok(reply);
    }
    let (reply, text) = f(None)?;
    let mut h = Hash::new();
    h.set(field, text.as_bytes(), &limits);
    insert_hash(cx, key, h)?;
    Ok(reply)
}

/// A unit of expiry arguments and replies.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Seconds,
    Millis,
}

/// Parses Redis's `FIELDS numfields field ...` block, with `numfields` at `at` (and the
/// `FIELDS` keyword just before it); `msg` is the command's error for a bad count.
fn fields_arg<'a>(a: &'a [Bytes], at: usize, msg: &str) -> Result<&'a [Bytes], CommandError> {
    if !a.get(at - 1).is_some_and(|k| is(k, "FIELDS")) {
        return Err(CommandError::err(
            "Mandatory argument FIELDS is missing or not at the right position",
        ));
    }
    let n = a
        .get(at)
        .and_then(|n| args::parse_i64(n))
        .filter(|n| *n >= 1)
        .ok_or_else(|| CommandError::err(msg))?;
    let fields = a.get(at + 1..).unwrap_or_default();
    if n as u64 != fields.len() as u64 {
        return Err(CommandError::err(
            "The `numfields` parameter must match the number of arguments",
        ));
    }
    Ok(fields)
}

/// Redis's `parseExpireTime` for field expiry: a non-negative integer in `unit`, plus `base`
/// (the command's time for relative forms, 0 for absolute ones), at most `MAX_FIELD_DEADLINE`.
fn expire_time(arg: &[u8], unit: Unit, base: u64, cmd: &'static str) -> Result<u64, CommandError> {
    let mut v = args::int(arg)?;
    if v < 0 {
        return Err(CommandError::err("invalid expire time, must be >= 0"));
    }
    if unit == Unit::Seconds {
        if v > MAX_FIELD_DEADLINE / 1000 {
            return Err(CommandError::InvalidExpire(cmd));
        }
        v *= 1000;
    }
    if v > MAX_FIELD_DEADLINE - base as i64 {
        return Err(CommandError::InvalidExpire(cmd));
    }
    Ok((v + base as i64) as u64)
}

/// `EX`, `PX`, `EXAT` or `PXAT`: the unit of its argument and the time it counts from.
fn expire_option(opt: &[u8], now: u64) -> Option<(Unit, u64)> {
    if is(opt, "EX") {
        Some((Unit::Seconds, now))
    } else if is(opt, "PX") {
        Some((Unit::Millis, now))
    } else if is(opt, "EXAT") {
        Some((Unit::Seconds, 0))
    } else if is(opt, "PXAT") {
        Some((Unit::Millis, 0))
    } else {
        None
    }
}

/// `HEXPIRE`'s `NX | XX | GT | LT`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ExpireCondition {
    Nx,
    Xx,
    Gt,
    Lt,
}

/// The body of `HEXPIRE`, `HPEXPIRE`, `HEXPIREAT` and `HPEXPIREAT`, with Redis's argument
/// checks in Redis's order: type, time, condition, `FIELDS`. Replies per field: -2 no such
/// field, 0 condition not met, 1 set, 2 deleted because the time has passed.
fn expire_generic(
    cx: &mut Cx<'_>,
    a: &[Bytes],
    base: u64,
    unit: Unit,
    cmd: &'static str,
) -> CmdResult {
    check_type(cx, &a[1])?;
    let now = cx.now;
    let deadline = expire_time(&a[2], unit, base, cmd)?;
    let opt = &a[3];
    let condition = if is(opt, "NX") {
        Some(ExpireCondition::Nx)
    } else if is(opt, "XX") {
        Some(ExpireCondition::Xx)
    } else if is(opt, "GT") {
        Some(ExpireCondition::Gt)
    } else if is(opt, "LT") {
        Some(ExpireCondition::Lt)
    } else {
        None
    };
    let at = if condition.is_some() { 5 } else { 4 };
    let fields = fields_arg(a, at, NUMFIELDS_EXPIRE)?;
    let code = |h: &Hash, f: &[u8]| -> i64 {
        if !h.contains(f) {
            return -2;
        }
        let blocked = match (h.deadline(f), condition) {
            (None, Some(ExpireCondition::Xx | ExpireCondition::Gt)) => true,
            (None, _) => false,
            (Some(_), Some(ExpireCondition::Nx)) => true,
            (Some(old), Some(ExpireCondition::Gt)) => old >= deadline,
            (Some(old), Some(ExpireCondition::Lt)) => old <= deadline,
            (Some(_), _) => false,
        };
        if blocked {
            0
        } else if deadline <= now {
            2
        } else {
            1
        }
    };
    let out = write_hash(cx, &a[1], |e| {
        if !fields
            .iter()
            .any(|f| as_hash(e.get()).is_ok_and(|h| code(h, f) > 0))
        {
            let h = as_hash(e.get())?;
            return Ok(fields.iter().map(|f| code(h, f)).collect());
        }
        let h = hash_mut(e)?;
        // Fields are handled one after the other, so a field named twice sees its first
        // change, as in Redis.
        Ok(fields
            .iter()
            .map(|f| {
                let c = code(h, f);
                match c {
                    1 => h.set_deadline(f, Some(deadline)),
                    2 => {
                        h.remove(f);
                    }
                    _ => {}
                }
                c
            })
            .collect())
    })?;
    Ok(int_array(out.unwrap_or_else(|| vec![-2; fields.len()])))
}

/// The body of `HTTL`, `HPTTL`, `HEXPIRETIME` and `HPEXPIRETIME`: per field -2 when missing,
/// -1 without expiry, else the deadline minus `base` in `unit` (seconds rounded up).
fn ttl_generic(cx: &mut Cx<'_>, a: &[Bytes], base: u64, unit: Unit) -> CmdResult {
    check_type(cx, &a[1])?;
    let fields = fields_arg(a, 3, NUMFIELDS_POSITIVE)?;
    let Some(h) = read_hash(cx, &a[1])? else {
        return Ok(int_array(vec![-2; fields.len()]));
    };
    let codes = fields
        .iter()
        .map(|f| match (h.contains(f), h.deadline(f)) {
            (false, _) => -2,
            (true, None) => -1,
            (true, Some(d)) => {
                let left = d.saturating_sub(base) as i64;
                match unit {
                    Unit::Seconds => (left + 999) / 1000,
                    Unit::Millis => left,
                }
            }
        })
        .collect();
    Ok(int_array(codes))
}

/// `HSETEX`'s `FNX | FXX`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum FieldCondition {
    Fnx,
    Fxx,
}

/// The parsed options of `HSETEX`.
struct SetExOptions<'a> {
    condition: Option<FieldCondition>,
    deadline: Option<u64>,
    keep_ttl: bool,
    pairs: &'a [Bytes],
}

impl<'a> SetExOptions<'a> {
    /// Parses as Redis's `hsetexParseArgs`: options in any order up to `FIELDS`, each expiry
    /// option excluding the others and `KEEPTTL`, `FNX` excluding `FXX`, and a field count
    /// that must match the pairs that follow (an arity error otherwise).
    fn parse(a: &'a [Bytes], now: u64) -> Result<SetExOptions<'a>, CommandError> {
        let arity = || CommandError::WrongArity("hsetex".into());
        let mut o = SetExOptions {
            condition: None,
            deadline: None,
            keep_ttl: false,
            pairs: &[],
        };
        let mut i = 2;
        while i < a.len() {
            let opt = &a[i];
            if is(opt, "FIELDS") {
                if i + 3 >= a.len() {
                    return Err(arity());
                }
                let n = args::parse_i64(&a[i + 1])
                    .filter(|n| (1..=i32::MAX as i64).contains(n))
                    .ok_or_else(|| CommandError::err("invalid number of fields"))?;
                let remaining = a.len() - i - 2;
                if !remaining.is_multiple_of(2) || n as usize != remaining / 2 {
                    return Err(arity());
                }
                o.pairs = &a[i + 2..];
                return Ok(o);
            } else if let Some((unit, base)) = expire_option(opt, now) {
                if o.deadline.is_some() || o.keep_ttl {
                    return Err(CommandError::err(
                        "Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified",
                    ));
                }
                let Some(arg) = a.get(i + 1) else {
                    return Err(CommandError::err("missing expire time"));
                };
                o.deadline = Some(expire_time(arg, unit, base, "hsetex")?);
                i += 2;
            } else if is(opt, "KEEPTTL") {
                if o.deadline.is_some() || o.keep_ttl {
                    return Err(CommandError::err(
                        "Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified",
                    ));
                }
                o.keep_ttl = true;
                i += 1;
            } else if is(opt, "FXX") || is(opt, "FNX") {
                if o.condition.is_some() {
                    return Err(CommandError::err(
                        "Only one of FXX or FNX arguments can be specified",
                    ));
                }
                o.condition = Some(if is(opt, "FXX") {
                    FieldCondition::Fxx
                } else {
                    FieldCondition::Fnx
                });
                i += 1;
            } else {
                return Err(CommandError::err(format!(
                    "unknown argument: {}",
                    args::text(opt)
                )));
            }
        }
        Err(CommandError::Syntax)
    }
}

thread_local! {
    /// Per-thread xorshift state for `HRANDFIELD`, seeded from the standard library's random
    /// hasher keys; quality matters little, speed and no shared state do.
    static RNG: Cell<u64> = Cell::new({
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x9E37_79B9_7F4A_7C15);
        h.finish() | 1
    });
}

/// A pseudo-random number (xorshift64*).
fn random() -> u64 {
    RNG.with(|s| {
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}
