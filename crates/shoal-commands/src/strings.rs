//! String commands (GET, SET, INCR, APPEND, LCS, ...).
//!
//! Layout, top to bottom: the spec table, the handlers in table order, then the string helpers the
//! handlers share (typed lookup, the SET option parser, expiry arithmetic).

use bytes::Bytes;
use shoal_resp::Frame;
use shoal_storage::{notify, Entry, Kind, NewString, StrRef};

use crate::args::{self, is, Args};
use crate::cx::Cx;
use crate::error::{CmdResult, CommandError};
use crate::longdouble::LongDouble;
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

const fn string(name: &'static str, arity: i32, handler: crate::spec::Handler) -> CommandSpec {
    CommandSpec::new(name, Group::String, arity, handler)
}

/// The string family.
pub(crate) const COMMANDS: &[CommandSpec] = &[
    string("append", 3, append)
        .flags(WF)
        .keys(ONE, KeyAccess::Insert)
        .doc("Appends a string to the value of a key. Creates the key if it doesn't exist.", "2.0.0"),
    string("decr", 2, decr)
        .flags(WF)
        .keys(ONE, KeyAccess::ReadWrite)
        .doc("Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", "1.0.0"),
    string("decrby", 3, decrby)
        .flags(WF)
        .keys(ONE, KeyAccess::ReadWrite)
        .doc("Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", "1.0.0"),
    string("get", 2, get)
        .flags(RF)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns the string value of a key.", "1.0.0"),
    string("getdel", 2, getdel)
        .flags(Flags::WRITE.with(Flags::FAST))
        .keys(ONE, KeyAccess::Pop)
        .doc("Returns the string value of a key after deleting the key.", "6.2.0"),
    string("getex", -2, getex)
        .flags(Flags::WRITE.with(Flags::FAST))
        .keys(ONE, KeyAccess::ReadWrite)
        .key_note("RW and UPDATE because it changes the TTL")
        .doc("Returns the string value of a key after setting its expiration time.", "6.2.0"),
    string("getrange", 4, getrange)
        .flags(R)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns a substring of the string stored at a key.", "2.4.0"),
    string("getset", 3, getset)
        .flags(WF)
        .keys(ONE, KeyAccess::ReadWrite)
        .doc("Returns the previous string value of a key after setting it to a new value.", "1.0.0"),
    string("incr", 2, incr)
        .flags(WF)
        .keys(ONE, KeyAccess::ReadWrite)
        .doc("Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", "1.0.0"),
    string("incrby", 3, incrby)
        .flags(WF)
        .keys(ONE, KeyAccess::ReadWrite)
        .doc("Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", "1.0.0"),
    string("incrbyfloat", 3, incrbyfloat)
        .flags(WF)
        .keys(ONE, KeyAccess::ReadWrite)
        .doc("Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", "2.6.0"),
    string("lcs", -3, lcs)
        .flags(R)
        .keys(Keys::Range { first: 1, last: 2, step: 1 }, KeyAccess::Read)
        .doc("Finds the longest common substring.", "7.0.0"),
    string("mget", -2, mget)
        .flags(RF)
        .keys(Keys::Range { first: 1, last: -1, step: 1 }, KeyAccess::Read)
        .tips(&["request_policy:multi_shard"])
        .doc("Atomically returns the string values of one or more keys.", "1.0.0"),
    string("mset", -3, mset)
        .flags(W)
        .keys(Keys::Range { first: 1, last: -1, step: 2 }, KeyAccess::Overwrite)
        .tips(&["request_policy:multi_shard", "response_policy:all_succeeded"])
        .doc("Atomically creates or modifies the string values of one or more keys.", "1.0.1"),
    string("msetnx", -3, msetnx)
        .flags(W)
        .keys(Keys::Range { first: 1, last: -1, step: 2 }, KeyAccess::Create)
        .tips(&["request_policy:multi_shard", "response_policy:agg_min"])
        .doc("Atomically modifies the string values of one or more keys only when all keys don't exist.", "1.0.1"),
    string("psetex", 4, psetex)
        .flags(W)
        .keys(ONE, KeyAccess::Overwrite)
        .doc("Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", "2.6.0"),
    string("set", -3, set)
        .flags(W)
        .keys(ONE, KeyAccess::OverwriteOrRead)
        .key_note("RW and ACCESS due to the optional `GET` argument")
        .doc("Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", "1.0.0"),
    string("setex", 4, setex)
        .flags(W)
        .keys(ONE, KeyAccess::Overwrite)
        .doc("Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", "2.0.0"),
    string("setnx", 3, setnx)
        .flags(WF)
        .keys(ONE, KeyAccess::Create)
        .doc("Set the string value of a key only when the key doesn't exist.", "1.0.0"),
    string("setrange", 4, setrange)
        .flags(W)
        .keys(ONE, KeyAccess::Update)
        .doc("Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", "2.2.0"),
    string("strlen", 2, strlen)
        .flags(RF)
        .keys(ONE, KeyAccess::Meta)
        .doc("Returns the length of a string value.", "2.2.0"),
    string("substr", 4, getrange)
        .flags(R)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns a substring from string stored at a key.", "1.0.0"),
];

// Command: GET key
//
// > SET k v
// OK
// > GET k
// "v"
fn get(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let value = read_string(cx, &a[1])?;
    Ok(value.map_or(Frame::Null, Frame::Bulk))
}

// Command: SET key value [NX|XX|IFEQ v] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL]
//
// > SET k v NX
// OK
// > SET k w NX
// (nil)
fn set(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let opts = SetOptions::parse(&a[3..], OptionSet::Set)?;
    set_generic(cx, &a[1], &a[2], &opts, "set")
}

// Command: SETNX key value
fn setnx(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let db = cx.dbi();
    let l = cx.db()?;
    if l.lookup(db, &a[1], false, false)?.is_some() {
        return Ok(Frame::Integer(0));
    }
    let clock = l.access_clock();
    l.insert(
        db,
        Entry::new_string(&a[1], NewString::Auto(&a[2]), None, clock),
    )?;
    cx.notify(notify::STRING, "set", &a[1]);
    Ok(Frame::Integer(1))
}

// Command: SETEX key seconds value
fn setex(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let opts = SetOptions {
        expire: Some((Expire::Ex, a[2].clone())),
        ..SetOptions::default()
    };
    set_generic(cx, &a[1], &a[3], &opts, "setex")
}

// Command: PSETEX key milliseconds value
fn psetex(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let opts = SetOptions {
        expire: Some((Expire::Px, a[2].clone())),
        ..SetOptions::default()
    };
    set_generic(cx, &a[1], &a[3], &opts, "psetex")
}

// Command: GETSET key value
fn getset(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let opts = SetOptions {
        get: true,
        ..SetOptions::default()
    };
    set_generic(cx, &a[1], &a[2], &opts, "getset")
}

// Command: GETDEL key
fn getdel(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let value = read_string(cx, &a[1])?;
    if value.is_some() {
        let db = cx.dbi();
        cx.db()?.remove(db, &a[1])?;
        cx.notify(notify::GENERIC, "del", &a[1]);
    }
    Ok(value.map_or(Frame::Null, Frame::Bulk))
}

// Command: GETEX key [EX s|PX ms|EXAT t|PXAT t|PERSIST]
fn getex(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let opts = SetOptions::parse(&a[2..], OptionSet::GetEx)?;
    let deadline = match &opts.expire {
        Some((unit, v)) => Some(deadline_ms(*unit, v, cx.now, "getex")?),
        None => None,
    };
    let Some(value) = read_string(cx, &a[1])? else {
        return Ok(Frame::Null);
    };
    let db = cx.dbi();
    let now = cx.now;
    let l = cx.db()?;
    match deadline {
        Some(d) if d <= now as i64 => {
            l.remove(db, &a[1])?;
            cx.notify(notify::GENERIC, "del", &a[1]);
        }
        Some(d) => {
            if let Some(mut e) = l.write(db, &a[1])? {
                e.get_mut().set_deadline(Some(d as u64));
            }
            cx.notify(notify::GENERIC, "expire", &a[1]);
        }
        None if opts.persist => {
            let mut persisted = false;
            if let Some(mut e) = l.write(db, &a[1])? {
                if e.get().is_volatile() {
                    e.get_mut().set_deadline(None);
                    persisted = true;
                }
            }
            if persisted {
                cx.notify(notify::GENERIC, "persist", &a[1]);
            }
        }
        None => {}
    }
    Ok(Frame::Bulk(value))
}

// Command: GETRANGE key start end
//
// > SET k "This is a string"
// OK
// > GETRANGE k -3 -1
// "ing"
fn getrange(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let mut start = args::int(&a[2])?;
    let mut end = args::int(&a[3])?;
    let Some(value) = read_string(cx, &a[1])? else {
        return Ok(Frame::Bulk(Bytes::new()));
    };
    let len = value.len() as i64;
    if start < 0 && end < 0 && start > end {
        return Ok(Frame::Bulk(Bytes::new()));
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return Ok(Frame::Bulk(Bytes::new()));
    }
    Ok(Frame::Bulk(value.slice(start as usize..=end as usize)))
}

// Command: SETRANGE key offset value
fn setrange(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let offset = args::int(&a[2])?;
    if offset < 0 {
        return Err(CommandError::err("offset is out of range"));
    }
    let offset = offset as u64;
    let value = &a[3];
    let max = cx.server.limits().max_string;
    let db = cx.dbi();
    let l = cx.db()?;
    let check_len = || -> Result<usize, CommandError> {
        let total = offset.saturating_add(value.len() as u64);
        if total > max {
            return Err(CommandError::err(
                "string exceeds maximum allowed size (proto-max-bulk-len)",
            ));
        }
        Ok(total as usize)
    };
    let edited = match l.write(db, &a[1])? {
        Some(mut e) => {
            let old = e.get().as_str().ok_or(CommandError::WrongType)?;
            if value.is_empty() {
                return Ok(Frame::Integer(old.len() as i64));
            }
            let total = check_len()?;
            let off = offset as usize;
            e.get_mut().edit_bytes(total, |buf| {
                buf[off..off + value.len()].copy_from_slice(value)
            });
            Some(e.get().as_str().map_or(0, |s| s.len()))
        }
        None => None,
    };
    if let Some(len) = edited {
        l.notify(notify::STRING, "setrange", db, &a[1]);
        return Ok(Frame::Integer(len as i64));
    }
    if value.is_empty() {
        return Ok(Frame::Integer(0));
    }
    let total = check_len()?;
    let mut buf = vec![0u8; total];
    buf[offset as usize..].copy_from_slice(value);
    let clock = l.access_clock();
    l.insert(
        db,
        Entry::new_string(&a[1], NewString::Raw(buf), None, clock),
    )?;
    l.notify(notify::STRING, "setrange", db, &a[1]);
    Ok(Frame::Integer(total as i64))
}

// Command: STRLEN key
fn strlen(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let db = cx.dbi();
    let touch = !cx.client.no_touch;
    let l = cx.db()?;
    match l.lookup(db, &a[1], touch, true)? {
        None => Ok(Frame::Integer(0)),
        Some(e) => {
            let s = e.as_str().ok_or(CommandError::WrongType)?;
            Ok(Frame::Integer(s.len() as i64))
        }
    }
}

// Command: APPEND key value
//
// > APPEND k Hello
// (integer) 5
// > APPEND k " World"
// (integer) 11
fn append(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let max = cx.server.limits().max_string;
    let db = cx.dbi();
    let l = cx.db()?;
    let appended = match l.write(db, &a[1])? {
        Some(mut e) => {
            let old = e.get().as_str().ok_or(CommandError::WrongType)?.len();
            if (old as u64).saturating_add(a[2].len() as u64) > max {
                return Err(CommandError::err(
                    "string exceeds maximum allowed size (proto-max-bulk-len)",
                ));
            }
            e.get_mut().append(&a[2]);
            Some(old + a[2].len())
        }
        None => None,
    };
    if let Some(len) = appended {
        l.notify(notify::STRING, "append", db, &a[1]);
        return Ok(Frame::Integer(len as i64));
    }
    let clock = l.access_clock();
    l.insert(
        db,
        Entry::new_string(&a[1], NewString::Raw(a[2].to_vec()), None, clock),
    )?;
    l.notify(notify::STRING, "append", db, &a[1]);
    Ok(Frame::Integer(a[2].len() as i64))
}

fn incr(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    incr_by(cx, &a[1], 1)
}

fn decr(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    incr_by(cx, &a[1], -1)
}

fn incrby(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let by = args::int(&a[2])?;
    incr_by(cx, &a[1], by)
}

fn decrby(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let by = args::int(&a[2])?;
    if by == i64::MIN {
        return Err(CommandError::err("decrement would overflow"));
    }
    incr_by(cx, &a[1], -by)
}

// Command: INCRBYFLOAT key increment
//
// > SET k 10.50
// OK
// > INCRBYFLOAT k 0.1
// "10.6"
fn incrbyfloat(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let db = cx.dbi();
    let l = cx.db()?;
    let current = match l.write(db, &a[1])? {
        None => LongDouble::from_i64(0),
        Some(e) => {
            let s = e.get().as_str().ok_or(CommandError::WrongType)?;
            let bytes = s.to_bytes();
            LongDouble::parse(&bytes).ok_or(CommandError::NotFloat)?
        }
    };
    let by = LongDouble::parse(&a[2]).ok_or(CommandError::NotFloat)?;
    let sum = current.add(by);
    if !sum.is_finite() {
        return Err(CommandError::err("increment would produce NaN or Infinity"));
    }
    let text = sum.to_human_string();
    let updated = match l.write(db, &a[1])? {
        Some(mut e) => {
            let deadline = e.get().deadline();
            e.get_mut()
                .set_string(NewString::Text(text.as_bytes()), deadline);
            true
        }
        None => false,
    };
    if updated {
        l.notify(notify::STRING, "incrbyfloat", db, &a[1]);
        return Ok(Frame::Bulk(Bytes::from(text)));
    }
    let clock = l.access_clock();
    l.insert(
        db,
        Entry::new_string(&a[1], NewString::Text(text.as_bytes()), None, clock),
    )?;
    l.notify(notify::STRING, "incrbyfloat", db, &a[1]);
    Ok(Frame::Bulk(Bytes::from(text)))
}

// Command: MGET key [key ...]
fn mget(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let db = cx.dbi();
    let touch = !cx.client.no_touch;
    let l = cx.db()?;
    let mut out = Vec::with_capacity(a.len() - 1);
    for key in &a[1..] {
        let v = match l.lookup(db, key, touch, true)? {
            Some(e) => match e.as_str() {
                Some(s) => Frame::Bulk(str_bytes(s)),
                None => Frame::Null,
            },
            None => Frame::Null,
        };
        out.push(v);
    }
    Ok(Frame::Array(out))
}

// Command: MSET key value [key value ...]
fn mset(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    if a.len().is_multiple_of(2) {
        return Err(CommandError::WrongArity("mset".into()));
    }
    let db = cx.dbi();
    let l = cx.db()?;
    let clock = l.access_clock();
    for pair in a[1..].chunks_exact(2) {
        l.insert(
            db,
            Entry::new_string(&pair[0], NewString::Auto(&pair[1]), None, clock),
        )?;
        l.notify(notify::STRING, "set", db, &pair[0]);
    }
    Ok(Frame::ok())
}

// Command: MSETNX key value [key value ...]
fn msetnx(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    if a.len().is_multiple_of(2) {
        return Err(CommandError::WrongArity("msetnx".into()));
    }
    let db = cx.dbi();
    let l = cx.db()?;
    for pair in a[1..].chunks_exact(2) {
        if l.lookup(db, &pair[0], false, false)?.is_some() {
            return Ok(Frame::Integer(0));
        }
    }
    let clock = l.access_clock();
    for pair in a[1..].chunks_exact(2) {
        l.insert(
            db,
            Entry::new_string(&pair[0], NewString::Auto(&pair[1]), None, clock),
        )?;
        l.notify(notify::STRING, "set", db, &pair[0]);
    }
    Ok(Frame::Integer(1))
}

// Command: LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]
//
// > MSET a ohmytext b mynewtext
// OK
// > LCS a b
// "mytext"
fn lcs(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let (mut get_len, mut get_idx, mut with_len) = (false, false, false);
    let mut min_len: i64 = 0;
    let mut opts = Args::new(a, 3);
    while let Some(opt) = opts.try_next() {
        if is(opt, "IDX") {
            get_idx = true;
        } else if is(opt, "LEN") {
            get_len = true;
        } else if is(opt, "WITHMATCHLEN") {
            with_len = true;
        } else if is(opt, "MINMATCHLEN") && !opts.is_empty() {
            min_len = args::int(opts.next()?)?.max(0);
        } else {
            return Err(CommandError::Syntax);
        }
    }
    let max_table = cx.server.limits().lcs_table;
    let db = cx.dbi();
    let l = cx.db()?;
    let mut fetch = |key: &[u8]| -> Result<Bytes, CommandError> {
        match l.lookup(db, key, true, true)? {
            None => Ok(Bytes::new()),
            Some(e) => match e.as_str() {
                Some(s) => Ok(str_bytes(s)),
                None => Err(CommandError::err(
                    "The specified keys must contain string values",
                )),
            },
        }
    };
    let sa = fetch(&a[1])?;
    let sb = fetch(&a[2])?;
    if get_idx && get_len {
        return Err(CommandError::err(
            "If you want both the length and indexes, please just use IDX.",
        ));
    }
    let (alen, blen) = (sa.len(), sb.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    // A table larger than the configured limit is refused instead of exhausting memory.
    if cells.saturating_mul(4) > max_table {
        return Err(CommandError::err("String too long for LCS"));
    }
    // table[i][j] = length of the LCS of the first i bytes of a and the first j bytes of b.
    let w = blen + 1;
    let mut table = vec![0u32; cells as usize];
    for i in 1..=alen {
        for j in 1..=blen {
            table[i * w + j] = if sa[i - 1] == sb[j - 1] {
                table[(i - 1) * w + j - 1] + 1
            } else {
                table[(i - 1) * w + j].max(table[i * w + j - 1])
            };
        }
    }
    let total = table[alen * w + blen];
    if get_len {
        return Ok(Frame::Integer(total as i64));
    }
    // Walk back from the end, collecting the LCS and, for IDX, the matching ranges, exactly in the
    // order Redis emits them (last match first).
    let mut result = vec![0u8; total as usize];
    let mut idx = total as usize;
    let mut matches = Vec::new();
    let (mut a_start, mut a_end, mut b_start, mut b_end) = (alen, 0usize, 0usize, 0usize);
    let (mut i, mut j) = (alen, blen);
    while i > 0 && j > 0 {
        let mut emit = false;
        if sa[i - 1] == sb[j - 1] {
            result[idx - 1] = sa[i - 1];
            if a_start == alen {
                a_start = i - 1;
                a_end = i - 1;
                b_start = j - 1;
                b_end = j - 1;
            } else if a_start == i && b_start == j {
                a_start -= 1;
                b_start -= 1;
            } else {
                emit = true;
            }
            if a_start == 0 || b_start == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if table[(i - 1) * w + j] > table[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if a_start != alen {
                emit = true;
            }
        }
        if emit {
            let match_len = a_end - a_start + 1;
            if min_len == 0 || match_len as i64 >= min_len {
                let mut m = vec![
                    Frame::Array(vec![
                        Frame::Integer(a_start as i64),
                        Frame::Integer(a_end as i64),
                    ]),
                    Frame::Array(vec![
                        Frame::Integer(b_start as i64),
                        Frame::Integer(b_end as i64),
                    ]),
                ];
                if with_len {
                    m.push(Frame::Integer(match_len as i64));
                }
                matches.push(Frame::Array(m));
            }
            a_start = alen;
        }
    }
    if get_idx {
        return Ok(Frame::Map(vec![
            (Frame::bulk("matches"), Frame::Array(matches)),
            (Frame::bulk("len"), Frame::Integer(total as i64)),
        ]));
    }
    Ok(Frame::Bulk(Bytes::from(result)))
}

// ---------------------------------------------------------------------------------------------
// String type helpers.

/// The bytes of a string value.
pub(crate) fn str_bytes(s: StrRef<'_>) -> Bytes {
    match s {
        StrRef::Int(n) => Bytes::from(n.to_string()),
        StrRef::Bytes(b) => Bytes::copy_from_slice(b),
    }
}

/// Reads a string key as `GET` does: `None` when missing, `WRONGTYPE` for other types.
fn read_string(cx: &mut Cx<'_>, key: &[u8]) -> Result<Option<Bytes>, CommandError> {
    let db = cx.dbi();
    let touch = !cx.client.no_touch;
    match cx.db()?.lookup(db, key, touch, true)? {
        None => Ok(None),
        Some(e) if e.kind() == Kind::String => {
            Ok(Some(str_bytes(e.as_str().ok_or(CommandError::WrongType)?)))
        }
        Some(_) => Err(CommandError::WrongType),
    }
}

fn incr_by(cx: &mut Cx<'_>, key: &[u8], by: i64) -> CmdResult {
    let db = cx.dbi();
    let l = cx.db()?;
    let updated = match l.write(db, key)? {
        Some(mut e) => {
            let current = match e.get().as_str().ok_or(CommandError::WrongType)? {
                StrRef::Int(n) => n,
                StrRef::Bytes(b) => args::parse_i64(b).ok_or(CommandError::NotInteger)?,
            };
            let next = current.checked_add(by).ok_or(CommandError::Overflow)?;
            let deadline = e.get().deadline();
            e.get_mut().set_string(NewString::Int(next), deadline);
            Some(next)
        }
        None => None,
    };
    if let Some(next) = updated {
        l.notify(notify::STRING, "incrby", db, key);
        return Ok(Frame::Integer(next));
    }
    let clock = l.access_clock();
    l.insert(db, Entry::new_string(key, NewString::Int(by), None, clock))?;
    l.notify(notify::STRING, "incrby", db, key);
    Ok(Frame::Integer(by))
}

/// The expiry options of SET and GETEX.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expire {
    Ex,
    Px,
    ExAt,
    PxAt,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OptionSet {
    Set,
    GetEx,
}

#[derive(Default)]
struct SetOptions {
    nx: bool,
    xx: bool,
    get: bool,
    keep_ttl: bool,
    persist: bool,
    if_eq: Option<Bytes>,
    expire: Option<(Expire, Bytes)>,
}

impl SetOptions {
    /// Parses options the way Redis's `parseExtendedStringArgumentsOrReply` does: each option
    /// only checks the options it conflicts with, so repeating one (`EX 1 EX 2`) is allowed and
    /// the last value wins.
    fn parse(opts: &[Bytes], set: OptionSet) -> Result<SetOptions, CommandError> {
        let mut o = SetOptions::default();
        let mut i = 0;
        while i < opts.len() {
            let opt = &opts[i];
            let next = opts.get(i + 1);
            let has_expire = o.expire.is_some();
            if set == OptionSet::Set && is(opt, "NX") && !o.xx && o.if_eq.is_none() {
                o.nx = true;
            } else if set == OptionSet::Set && is(opt, "XX") && !o.nx && o.if_eq.is_none() {
                o.xx = true;
            } else if set == OptionSet::Set && is(opt, "IFEQ") && !o.nx && !o.xx && next.is_some() {
                o.if_eq = next.cloned();
                i += 1;
            } else if set == OptionSet::Set && is(opt, "GET") {
                o.get = true;
            } else if set == OptionSet::Set && is(opt, "KEEPTTL") && !o.persist && !has_expire {
                o.keep_ttl = true;
            } else if set == OptionSet::GetEx && is(opt, "PERSIST") && !has_expire && !o.keep_ttl {
                o.persist = true;
            } else if let Some(unit) = expire_unit(opt) {
                let conflicting =
                    o.keep_ttl || o.persist || o.expire.as_ref().is_some_and(|(u, _)| *u != unit);
                match next {
                    Some(v) if !conflicting => {
                        o.expire = Some((unit, v.clone()));
                        i += 1;
                    }
                    _ => return Err(CommandError::Syntax),
                }
            } else {
                return Err(CommandError::Syntax);
            }
            i += 1;
        }
        Ok(o)
    }
}

fn expire_unit(opt: &[u8]) -> Option<Expire> {
    if is(opt, "EX") {
        Some(Expire::Ex)
    } else if is(opt, "PX") {
        Some(Expire::Px)
    } else if is(opt, "EXAT") {
        Some(Expire::ExAt)
    } else if is(opt, "PXAT") {
        Some(Expire::PxAt)
    } else {
        None
    }
}

/// Converts an expiry argument to an absolute Unix time in milliseconds, with Redis's checks:
/// not an integer → `ERR value is not an integer...`; zero, negative or overflowing →
/// `ERR invalid expire time in '<cmd>' command`.
fn deadline_ms(unit: Expire, arg: &[u8], now: u64, cmd: &'static str) -> Result<i64, CommandError> {
    let v = args::int(arg)?;
    let seconds = matches!(unit, Expire::Ex | Expire::ExAt);
    if v <= 0 || (seconds && v > i64::MAX / 1000) {
        return Err(CommandError::InvalidExpire(cmd));
    }
    let mut ms = if seconds { v * 1000 } else { v };
    if matches!(unit, Expire::Ex | Expire::Px) {
        ms = ms.wrapping_add(now as i64);
    }
    if ms <= 0 {
        return Err(CommandError::InvalidExpire(cmd));
    }
    Ok(ms)
}

fn set_generic(
    cx: &mut Cx<'_>,
    key: &Bytes,
    value: &Bytes,
    o: &SetOptions,
    cmd: &'static str,
) -> CmdResult {
    let deadline = match &o.expire {
        Some((unit, v)) => Some(deadline_ms(*unit, v, cx.now, cmd)?),
        None => None,
    };
    let old = if o.get {
        Some(read_string(cx, key)?)
    } else {
        None
    };
    let db = cx.dbi();
    let l = cx.db()?;
    // A plain SET overwrites whatever is there; only the conditional forms need the old entry.
    let needs_old = o.nx || o.xx || o.keep_ttl || o.if_eq.is_some();
    let old_entry = if needs_old {
        l.lookup(db, key, false, false)?
    } else {
        None
    };
    let (found, old_deadline, matches) = match old_entry {
        None => (false, None, false),
        Some(e) => {
            let matches = match &o.if_eq {
                Some(want) => {
                    let s = e.as_str().ok_or(CommandError::WrongType)?;
                    str_bytes(s) == *want
                }
                None => false,
            };
            (true, e.deadline(), matches)
        }
    };
    let blocked = (o.nx && found) || (o.xx && !found) || (o.if_eq.is_some() && !matches);
    if blocked {
        return Ok(match old {
            Some(v) => v.map_or(Frame::Null, Frame::Bulk),
            None => Frame::Null,
        });
    }
    let keep = if o.keep_ttl { old_deadline } else { None };
    let deadline = deadline.map(|d| d as u64).or(keep);
    let clock = l.access_clock();
    l.insert(
        db,
        Entry::new_string(key, NewString::Auto(value), deadline, clock),
    )?;
    cx.notify(notify::STRING, "set", key);
    if o.expire.is_some() {
        cx.notify(notify::GENERIC, "expire", key);
    }
    Ok(match old {
        Some(v) => v.map_or(Frame::Null, Frame::Bulk),
        None => Frame::ok(),
    })
}
