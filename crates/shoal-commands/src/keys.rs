//! Generic key commands (DEL, EXISTS, EXPIRE, TTL, RENAME, COPY, SCAN, OBJECT, ...).
//!
//! Layout: the spec table, the handlers, then shared helpers (expiry arithmetic, database index
//! parsing).

use bytes::Bytes;
use shoal_resp::Frame;
use shoal_storage::{glob_match, idle_ms, lfu_decayed, notify, Encoding, StrRef};

use crate::args::{self, is, Args};
use crate::cx::Cx;
use crate::error::{CmdResult, CommandError};
use crate::help::help_reply;
use crate::spec::{CommandSpec, Flags, Group, KeyAccess, Keys};
use crate::strings::str_bytes;

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
const TWO: Keys = Keys::Range {
    first: 1,
    last: 2,
    step: 1,
};
const W: Flags = Flags::WRITE;
const WF: Flags = Flags::WRITE.with(Flags::FAST);
const R: Flags = Flags::READONLY;
const RF: Flags = Flags::READONLY.with(Flags::FAST);

const fn generic(name: &'static str, arity: i32, handler: crate::spec::Handler) -> CommandSpec {
    CommandSpec::new(name, Group::Generic, arity, handler)
}

const fn object_sub(
    name: &'static str,
    arity: i32,
    summary: &'static str,
    since: &'static str,
    handler: crate::spec::Handler,
) -> CommandSpec {
    generic(name, arity, handler)
        .flags(R)
        .keys(
            Keys::Range {
                first: 2,
                last: 2,
                step: 1,
            },
            KeyAccess::Meta,
        )
        .tips(&["nondeterministic_output"])
        .doc(summary, since)
}

/// The generic family.
pub(crate) const COMMANDS: &[CommandSpec] = &[
    generic("copy", -3, copy)
        .flags(W.with(Flags::DENYOOM))
        .keys(TWO, KeyAccess::Read)
        .other_keys(KeyAccess::Overwrite)
        .doc("Copies the value of a key to a new key.", "6.2.0"),
    generic("del", -2, del)
        .flags(W)
        .keys(ALL, KeyAccess::Remove)
        .tips(&["request_policy:multi_shard", "response_policy:agg_sum"])
        .doc("Deletes one or more keys.", "1.0.0"),
    generic("delex", -2, delex)
        .flags(WF)
        .keys(ONE, KeyAccess::Remove)
        .doc("Deletes a key, optionally only if its value matches a condition.", "8.4.0"),
    generic("delifeq", 3, delifeq)
        .flags(WF)
        .keys(ONE, KeyAccess::Remove)
        .doc("Deletes a key only if its value equals the given value.", "9.0.0"),
    generic("exists", -2, exists)
        .flags(RF)
        .keys(ALL, KeyAccess::Meta)
        .tips(&["request_policy:multi_shard", "response_policy:agg_sum"])
        .doc("Determines whether one or more keys exist.", "1.0.0"),
    generic("expire", -3, expire)
        .flags(WF)
        .keys(ONE, KeyAccess::Update)
        .doc("Sets the expiration time of a key in seconds.", "1.0.0"),
    generic("expireat", -3, expireat)
        .flags(WF)
        .keys(ONE, KeyAccess::Update)
        .doc("Sets the expiration time of a key to a Unix timestamp.", "1.2.0"),
    generic("expiretime", 2, expiretime)
        .flags(RF)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns the expiration time of a key as a Unix timestamp.", "7.0.0"),
    generic("keys", 2, keys)
        .flags(R)
        .acl(&["dangerous"])
        .tips(&["request_policy:all_shards", "nondeterministic_output_order"])
        .doc("Returns all key names that match a pattern.", "1.0.0"),
    generic("move", 3, move_)
        .flags(WF)
        .keys(ONE, KeyAccess::ReadWrite)
        .doc("Moves a key to another database.", "1.0.0"),
    generic("object", -2, object_help)
        .doc("A container for object introspection commands.", "2.2.3")
        .subcommands(&[
            object_sub("object|encoding", 3, "Returns the internal encoding of a Redis object.", "2.2.3", object_encoding),
            object_sub("object|freq", 3, "Returns the logarithmic access frequency counter of a Redis object.", "4.0.0", object_freq),
            generic("object|help", 2, object_help)
                .flags(Flags::LOADING.with(Flags::STALE))
                .doc("Returns helpful text about the different subcommands.", "6.2.0"),
            object_sub("object|idletime", 3, "Returns the time since the last access to a Redis object.", "2.2.3", object_idletime),
            object_sub("object|refcount", 3, "Returns the reference count of a value of a key.", "2.2.3", object_refcount),
        ]),
    generic("persist", 2, persist)
        .flags(WF)
        .keys(ONE, KeyAccess::Update)
        .doc("Removes the expiration time of a key.", "2.2.0"),
    generic("pexpire", -3, pexpire)
        .flags(WF)
        .keys(ONE, KeyAccess::Update)
        .doc("Sets the expiration time of a key in milliseconds.", "2.6.0"),
    generic("pexpireat", -3, pexpireat)
        .flags(WF)
        .keys(ONE, KeyAccess::Update)
        .doc("Sets the expiration time of a key to a Unix milliseconds timestamp.", "2.6.0"),
    generic("pexpiretime", 2, pexpiretime)
        .flags(RF)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns the expiration time of a key as a Unix milliseconds timestamp.", "7.0.0"),
    generic("pttl", 2, pttl)
        .flags(RF)
        .keys(ONE, KeyAccess::Read)
        .tips(&["nondeterministic_output"])
        .doc("Returns the expiration time in milliseconds of a key.", "2.6.0"),
    generic("randomkey", 1, randomkey)
        .flags(R)
        .tips(&["request_policy:all_shards", "nondeterministic_output"])
        .doc("Returns a random key name from the database.", "1.0.0"),
    generic("rename", 3, rename)
        .flags(W)
        .keys(TWO, KeyAccess::Pop)
        .other_keys(KeyAccess::Overwrite)
        .doc("Renames a key and overwrites the destination.", "1.0.0"),
    generic("renamenx", 3, renamenx)
        .flags(WF)
        .keys(TWO, KeyAccess::Pop)
        .other_keys(KeyAccess::Create)
        .doc("Renames a key only when the target key name doesn't exist.", "1.0.0"),
    generic("scan", -2, scan)
        .flags(R)
        .tips(&["nondeterministic_output", "request_policy:special"])
        .doc("Iterates over the key names in the database.", "2.8.0"),
    generic("touch", -2, touch)
        .flags(RF)
        .keys(ALL, KeyAccess::Meta)
        .tips(&["request_policy:multi_shard", "response_policy:agg_sum"])
        .doc("Returns the number of existing keys out of those specified after updating the time they were last accessed.", "3.2.1"),
    generic("ttl", 2, ttl)
        .flags(RF)
        .keys(ONE, KeyAccess::Read)
        .tips(&["nondeterministic_output"])
        .doc("Returns the expiration time in seconds of a key.", "1.0.0"),
    generic("type", 2, type_)
        .flags(RF)
        .keys(ONE, KeyAccess::Meta)
        .doc("Determines the type of value stored at a key.", "1.0.0"),
    generic("unlink", -2, del)
        .flags(WF)
        .keys(ALL, KeyAccess::Remove)
        .tips(&["request_policy:multi_shard", "response_policy:agg_sum"])
        .doc("Asynchronously deletes one or more keys.", "4.0.0"),
];

// Command: DEL key [key ...]
//
// > MSET a 1 b 2
// OK
// > DEL a b c
// (integer) 2
fn del(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let db = cx.dbi();
    let l = cx.db()?;
    let mut n = 0;
    for key in &a[1..] {
        if l.remove(db, key)?.is_some() {
            l.notify(notify::GENERIC, "del", db, key);
            n += 1;
        }
    }
    Ok(Frame::Integer(n))
}

// Command: DELIFEQ key value
fn delifeq(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    delete_if(cx, &a[1], |v| v == a[2])
}

// Command: DELEX key [IFEQ value | IFNE value | IFDEQ digest | IFDNE digest]
fn delex(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    match a.len() {
        2 => {
            let db = cx.dbi();
            let l = cx.db()?;
            let removed = l.remove(db, &a[1])?.is_some();
            if removed {
                l.notify(notify::GENERIC, "del", db, &a[1]);
            }
            Ok(Frame::Integer(removed as i64))
        }
        4 => {
            let arg = a[3].clone();
            if is(&a[2], "IFEQ") {
                delete_if(cx, &a[1], |v| v == arg)
            } else if is(&a[2], "IFNE") {
                delete_if(cx, &a[1], |v| v != arg)
            } else if is(&a[2], "IFDEQ") {
                delete_if(cx, &a[1], |v| digest(&v).eq_ignore_ascii_case(&arg))
            } else if is(&a[2], "IFDNE") {
                delete_if(cx, &a[1], |v| !digest(&v).eq_ignore_ascii_case(&arg))
            } else {
                Err(CommandError::Syntax)
            }
        }
        _ => Err(CommandError::Syntax),
    }
}

/// The value digest `DELEX IFDEQ` compares with: 16 hex digits of the value's XXH3-64 hash, as
/// Redis 8.4's `DIGEST` returns.
fn digest(v: &[u8]) -> Vec<u8> {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(v)).into_bytes()
}

fn delete_if(cx: &mut Cx<'_>, key: &[u8], cond: impl FnOnce(Bytes) -> bool) -> CmdResult {
    let db = cx.dbi();
    let l = cx.db()?;
    let value = match l.lookup(db, key, false, false)? {
        None => return Ok(Frame::Integer(0)),
        Some(e) => str_bytes(e.as_str().ok_or(CommandError::WrongType)?),
    };
    if !cond(value) {
        return Ok(Frame::Integer(0));
    }
    l.remove(db, key)?;
    l.notify(notify::GENERIC, "del", db, key);
    Ok(Frame::Integer(1))
}

// Command: EXISTS key [key ...]
fn exists(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let db = cx.dbi();
    let l = cx.db()?;
    let mut n = 0;
    for key in &a[1..] {
        if l.lookup(db, key, false, true)?.is_some() {
            n += 1;
        }
    }
    Ok(Frame::Integer(n))
}

// Command: TOUCH key [key ...]
fn touch(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let db = cx.dbi();
    let touch = !cx.client.no_touch;
    let l = cx.db()?;
    let mut n = 0;
    for key in &a[1..] {
        if l.lookup(db, key, touch, true)?.is_some() {
            n += 1;
        }
    }
    Ok(Frame::Integer(n))
}

// Command: TYPE key
fn type_(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let db = cx.dbi();
    let t = match cx.db()?.lookup(db, &a[1], false, true)? {
        Some(e) => e.kind().name(),
        None => "none",
    };
    Ok(Frame::Simple(Bytes::from_static(t.as_bytes())))
}

fn expire(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let base = cx.now as i64;
    expire_generic(cx, a, base, 1000, "expire")
}

fn pexpire(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let base = cx.now as i64;
    expire_generic(cx, a, base, 1, "pexpire")
}

fn expireat(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    expire_generic(cx, a, 0, 1000, "expireat")
}

fn pexpireat(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    expire_generic(cx, a, 0, 1, "pexpireat")
}

// Command: EXPIRE key seconds [NX|XX|GT|LT]
//
// > SET k v
// OK
// > EXPIRE k 100 XX
// (integer) 0
// > EXPIRE k 100
// (integer) 1
fn expire_generic(
    cx: &mut Cx<'_>,
    a: &[Bytes],
    base: i64,
    unit: i64,
    cmd: &'static str,
) -> CmdResult {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in &a[3..] {
        if is(opt, "NX") {
            nx = true;
        } else if is(opt, "XX") {
            xx = true;
        } else if is(opt, "GT") {
            gt = true;
        } else if is(opt, "LT") {
            lt = true;
        } else {
            return Err(CommandError::err(format!(
                "Unsupported option {}",
                args::text(opt)
            )));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(CommandError::err(
            "NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(CommandError::err(
            "GT and LT options at the same time are not compatible",
        ));
    }
    let mut when = args::int(&a[2])?;
    if unit == 1000 {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            return Err(CommandError::InvalidExpire(cmd));
        }
        when *= 1000;
    }
    if when > i64::MAX - base {
        return Err(CommandError::InvalidExpire(cmd));
    }
    when += base;
    let db = cx.dbi();
    let now = cx.now as i64;
    let l = cx.db()?;
    let Some(mut e) = l.write(db, &a[1])? else {
        return Ok(Frame::Integer(0));
    };
    let current = e.get().deadline().map(|d| d as i64);
    let refused = (nx && current.is_some())
        || (xx && current.is_none())
        || (gt && current.is_none_or(|c| when <= c))
        || (lt && current.is_some_and(|c| when >= c));
    if refused {
        return Ok(Frame::Integer(0));
    }
    if when <= now {
        drop(e);
        l.remove(db, &a[1])?;
        l.notify(notify::GENERIC, "del", db, &a[1]);
    } else {
        e.get_mut().set_deadline(Some(when as u64));
        drop(e);
        l.notify(notify::GENERIC, "expire", db, &a[1]);
    }
    Ok(Frame::Integer(1))
}

fn ttl(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    ttl_generic(cx, &a[1], false, false)
}

fn pttl(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    ttl_generic(cx, &a[1], true, false)
}

fn expiretime(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    ttl_generic(cx, &a[1], false, true)
}

fn pexpiretime(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    ttl_generic(cx, &a[1], true, true)
}

// Command: TTL key
//
// > TTL missing
// (integer) -2
// > SET k v
// OK
// > TTL k
// (integer) -1
fn ttl_generic(cx: &mut Cx<'_>, key: &[u8], ms: bool, absolute: bool) -> CmdResult {
    let db = cx.dbi();
    let now = cx.now as i64;
    let Some(e) = cx.db()?.lookup(db, key, false, true)? else {
        return Ok(Frame::Integer(-2));
    };
    let Some(deadline) = e.deadline() else {
        return Ok(Frame::Integer(-1));
    };
    let mut t = if absolute {
        deadline as i64
    } else {
        deadline as i64 - now
    };
    if t < 0 {
        t = 0;
    }
    Ok(Frame::Integer(if ms { t } else { (t + 500) / 1000 }))
}

// Command: PERSIST key
fn persist(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let db = cx.dbi();
    let l = cx.db()?;
    let persisted = match l.write(db, &a[1])? {
        Some(mut e) if e.get().is_volatile() => {
            e.get_mut().set_deadline(None);
            true
        }
        _ => false,
    };
    if persisted {
        l.notify(notify::GENERIC, "persist", db, &a[1]);
    }
    Ok(Frame::Integer(persisted as i64))
}

fn rename(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    rename_generic(cx, a, false)
}

fn renamenx(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    rename_generic(cx, a, true)
}

// Command: RENAME key newkey
fn rename_generic(cx: &mut Cx<'_>, a: &[Bytes], nx: bool) -> CmdResult {
    let db = cx.dbi();
    let l = cx.db()?;
    if l.lookup(db, &a[1], false, false)?.is_none() {
        return Err(CommandError::NoSuchKey);
    }
    if a[1] == a[2] {
        return Ok(if nx { Frame::Integer(0) } else { Frame::ok() });
    }
    if l.lookup(db, &a[2], false, false)?.is_some() {
        if nx {
            return Ok(Frame::Integer(0));
        }
        l.remove(db, &a[2])?;
    }
    let Some(entry) = l.remove(db, &a[1])? else {
        return Err(CommandError::NoSuchKey);
    };
    l.insert(db, entry.rekey(&a[2]))?;
    l.notify(notify::GENERIC, "rename_from", db, &a[1]);
    l.notify(notify::GENERIC, "rename_to", db, &a[2]);
    Ok(if nx { Frame::Integer(1) } else { Frame::ok() })
}

// Command: COPY source destination [DB destination-db] [REPLACE]
fn copy(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let src_db = cx.dbi();
    let mut dst_db = src_db;
    let mut replace = false;
    let mut i = 3;
    while i < a.len() {
        if is(&a[i], "REPLACE") {
            replace = true;
        } else if is(&a[i], "DB") && i + 1 < a.len() {
            let id = int_arg(&a[i + 1], None)?;
            dst_db = db_index(cx, id)?;
            i += 1;
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    if src_db == dst_db && a[1] == a[2] {
        return Err(CommandError::err(
            "source and destination objects are the same",
        ));
    }
    let l = cx.db()?;
    let Some(copy) = l
        .lookup(src_db, &a[1], true, true)?
        .map(|e| e.duplicate(&a[2]))
    else {
        return Ok(Frame::Integer(0));
    };
    if l.lookup(dst_db, &a[2], false, false)?.is_some() {
        if !replace {
            return Ok(Frame::Integer(0));
        }
        l.remove(dst_db, &a[2])?;
    }
    l.insert(dst_db, copy)?;
    l.notify(notify::GENERIC, "copy_to", dst_db, &a[2]);
    Ok(Frame::Integer(1))
}

// Command: MOVE key db
fn move_(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let src_db = cx.dbi();
    let id = int_arg(&a[2], None)?;
    let dst_db = db_index(cx, id)?;
    if src_db == dst_db {
        return Err(CommandError::err(
            "source and destination objects are the same",
        ));
    }
    let l = cx.db()?;
    if l.lookup(src_db, &a[1], false, false)?.is_none() {
        return Ok(Frame::Integer(0));
    }
    if l.lookup(dst_db, &a[1], false, false)?.is_some() {
        return Ok(Frame::Integer(0));
    }
    if let Some(entry) = l.remove(src_db, &a[1])? {
        l.insert(dst_db, entry)?;
        l.notify(notify::GENERIC, "move_from", src_db, &a[1]);
        l.notify(notify::GENERIC, "move_to", dst_db, &a[1]);
    }
    Ok(Frame::Integer(1))
}

// Command: KEYS pattern
fn keys(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let pattern = &a[1];
    let all = pattern.as_ref() == b"*";
    let keys = cx
        .ks
        .keys(cx.dbi(), cx.now, |k| all || glob_match(pattern, k, false));
    Ok(Frame::Array(
        keys.into_iter().map(|k| Frame::Bulk(k.into())).collect(),
    ))
}

// Command: SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
fn scan(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&a[1]).ok_or_else(|| CommandError::err("invalid cursor"))?;
    let mut count = 10usize;
    let mut pattern: Option<Bytes> = None;
    let mut type_name: Option<Bytes> = None;
    let mut opts = Args::new(a, 2);
    while let Some(opt) = opts.try_next() {
        if opts.is_empty() {
            return Err(CommandError::Syntax);
        }
        if is(opt, "COUNT") {
            let n = args::int(opts.next()?)?;
            if n < 1 {
                return Err(CommandError::Syntax);
            }
            count = n as usize;
        } else if is(opt, "MATCH") {
            pattern = Some(opts.next()?.clone());
        } else if is(opt, "TYPE") {
            type_name = Some(opts.next()?.clone());
        } else {
            return Err(CommandError::Syntax);
        }
    }
    let match_all = pattern.as_deref() == Some(b"*");
    let (next, keys) = cx.ks.scan(cx.dbi(), cursor, count, cx.now, |e| {
        let name_ok = match &pattern {
            Some(p) if !match_all => glob_match(p, e.key(), false),
            _ => true,
        };
        let type_ok = type_name
            .as_ref()
            .is_none_or(|t| t.eq_ignore_ascii_case(e.kind().name().as_bytes()));
        name_ok && type_ok
    });
    Ok(Frame::Array(vec![
        Frame::Bulk(Bytes::from(next.to_string())),
        Frame::Array(keys.into_iter().map(|k| Frame::Bulk(k.into())).collect()),
    ]))
}

// Command: RANDOMKEY
fn randomkey(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    let key = cx.ks.random_key(cx.dbi(), cx.now, &mut cx.journal);
    Ok(key.map_or(Frame::Null, |k| Frame::Bulk(k.into())))
}

// Command: OBJECT ENCODING key
fn object_encoding(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let db = cx.dbi();
    Ok(match cx.db()?.lookup(db, &a[2], false, true)? {
        Some(e) => Frame::bulk(e.encoding_name()),
        None => Frame::Null,
    })
}

// Command: OBJECT FREQ key
fn object_freq(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let db = cx.dbi();
    let now = cx.now;
    let s = cx.ks.eviction.snapshot();
    let Some(e) = cx.db()?.lookup(db, &a[2], false, true)? else {
        return Ok(Frame::Null);
    };
    if !s.policy.is_lfu() {
        return Err(CommandError::err("An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."));
    }
    Ok(Frame::Integer(lfu_decayed(e, now, s.lfu_decay_time) as i64))
}

// Command: OBJECT IDLETIME key
fn object_idletime(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let db = cx.dbi();
    let now = cx.now;
    let s = cx.ks.eviction.snapshot();
    let Some(e) = cx.db()?.lookup(db, &a[2], false, true)? else {
        return Ok(Frame::Null);
    };
    if s.policy.is_lfu() {
        return Err(CommandError::err("An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."));
    }
    Ok(Frame::Integer((idle_ms(e, now) / 1000) as i64))
}

/// Redis marks shared objects with this reference count (`OBJ_SHARED_REFCOUNT`).
const SHARED_REFCOUNT: i64 = i32::MAX as i64;
/// Redis shares the integers below this value (`OBJ_SHARED_INTEGERS`).
const SHARED_INTEGERS: i64 = 10_000;

// Command: OBJECT REFCOUNT key
//
// Shoal never shares values, but reports what Redis would: small integers are shared objects
// there, unless an LRU or LFU policy needs per-key access data.
fn object_refcount(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let db = cx.dbi();
    let s = cx.ks.eviction.snapshot();
    let shares = s.maxmemory == 0
        || !matches!(
            s.policy.name(),
            "allkeys-lru" | "allkeys-lfu" | "volatile-lru" | "volatile-lfu"
        );
    let Some(e) = cx.db()?.lookup(db, &a[2], false, true)? else {
        return Ok(Frame::Null);
    };
    let shared = shares
        && e.encoding() == Encoding::Int
        && matches!(e.as_str(), Some(StrRef::Int(n)) if (0..SHARED_INTEGERS).contains(&n));
    Ok(Frame::Integer(if shared { SHARED_REFCOUNT } else { 1 }))
}

fn object_help(_cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(help_reply(
        "OBJECT",
        &[
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ],
    ))
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// Parses a cursor as C's `strtoul` does for Redis: an optional sign then digits; an empty string
/// is 0 and a negative number wraps around; leading spaces, trailing bytes and overflow fail.
pub(crate) fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let (neg, digits) = match arg.first() {
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() && !arg.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((d - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Parses a C `int` as Redis's `getIntFromObjectOrReply`: not an integer →
/// `value is not an integer or out of range` (or `msg`), outside the `int` range →
/// `value is out of range` (or `msg`).
pub(crate) fn int_arg(arg: &[u8], msg: Option<&str>) -> Result<i64, CommandError> {
    let custom = |m: &str| CommandError::err(m);
    let v = match args::parse_i64(arg) {
        Some(v) => v,
        None => return Err(msg.map_or(CommandError::NotInteger, custom)),
    };
    if v < i32::MIN as i64 || v > i32::MAX as i64 {
        return Err(msg.map_or_else(|| CommandError::err("value is out of range"), custom));
    }
    Ok(v)
}

/// Checks a database index against the configured number of databases.
pub(crate) fn db_index(cx: &Cx<'_>, id: i64) -> Result<usize, CommandError> {
    if id < 0 || id as usize >= cx.ks.databases() {
        return Err(CommandError::err("DB index is out of range"));
    }
    Ok(id as usize)
}
