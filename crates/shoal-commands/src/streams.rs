//! Stream commands (XADD, XRANGE, XREADGROUP, XINFO, ...).
//!
//! Layout, top to bottom: the spec table, the handlers in table order, then the helpers the
//! handlers share (ID parsing, typed lookups, the XADD/XTRIM option parser, reply builders).
//! Semantics, replies and error texts follow Redis 7.0's `t_stream.c`; times come from `cx.now`.

use bytes::Bytes;
use shoal_resp::{Frame, Protocol};
use shoal_storage::types::stream::{Entries, Entry, Group, Stream, StreamId, Trim};
use shoal_storage::{notify, Entry as KeyEntry, Object};

use crate::args::{self, is, TimeoutUnit};
use crate::cx::{BlockSpec, Cx};
use crate::error::{CmdResult, CommandError};
use crate::help::help_reply;
use crate::spec::{CommandSpec, Flags, Group as CmdGroup, KeyAccess, Keys};

const W: Flags = Flags::WRITE.with(Flags::DENYOOM);
const WF: Flags = W.with(Flags::FAST);
const R: Flags = Flags::READONLY;
const RF: Flags = R.with(Flags::FAST);
const ONE: Keys = Keys::Range {
    first: 1,
    last: 1,
    step: 1,
};
const SUB_KEY: Keys = Keys::Range {
    first: 2,
    last: 2,
    step: 1,
};
/// `XREAD` keys follow `STREAMS`.
const XREAD_KEYS: Keys = Keys::Streams { from: 1 };
/// `XREADGROUP GROUP g c ...` keys follow `STREAMS`, searched after the group and consumer.
const XREADGROUP_KEYS: Keys = Keys::Streams { from: 4 };

const fn stream(name: &'static str, arity: i32, handler: crate::spec::Handler) -> CommandSpec {
    CommandSpec::new(name, CmdGroup::Stream, arity, handler)
}

/// A subcommand whose key is its first argument (`XGROUP CREATE key ...`), used as `access`.
#[allow(clippy::too_many_arguments)]
const fn sub(
    name: &'static str,
    arity: i32,
    flags: Flags,
    access: KeyAccess,
    summary: &'static str,
    since: &'static str,
    handler: crate::spec::Handler,
) -> CommandSpec {
    stream(name, arity, handler)
        .flags(flags)
        .doc(summary, since)
        .keys(SUB_KEY, access)
}

/// A `HELP` subcommand.
const fn help(name: &'static str, handler: crate::spec::Handler) -> CommandSpec {
    stream(name, 2, handler)
        .flags(Flags::LOADING.with(Flags::STALE))
        .doc(
            "Returns helpful text about the different subcommands.",
            "5.0.0",
        )
}

/// The streams family.
pub(crate) const COMMANDS: &[CommandSpec] = &[
    stream("xack", -4, xack)
        .flags(Flags::WRITE.with(Flags::FAST))
        .keys(ONE, KeyAccess::Update)
        .doc("Returns the number of messages that were successfully acknowledged by the consumer group member of a stream.", "5.0.0"),
    stream("xadd", -5, xadd)
        .flags(WF)
        .keys(ONE, KeyAccess::Update)
        .key_note("UPDATE instead of INSERT because of the optional trimming feature")
        .tips(&["nondeterministic_output"])
        .doc("Appends a new message to a stream. Creates the key if it doesn't exist.", "5.0.0"),
    stream("xautoclaim", -6, xautoclaim)
        .flags(Flags::WRITE.with(Flags::FAST))
        .keys(ONE, KeyAccess::Delete)
        .tips(&["nondeterministic_output"])
        .doc("Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member.", "6.2.0"),
    stream("xclaim", -6, xclaim)
        .flags(Flags::WRITE.with(Flags::FAST))
        .keys(ONE, KeyAccess::Update)
        .tips(&["nondeterministic_output"])
        .doc("Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member.", "5.0.0"),
    stream("xdel", -3, xdel)
        .flags(Flags::WRITE.with(Flags::FAST))
        .keys(ONE, KeyAccess::Delete)
        .doc("Returns the number of messages after removing them from a stream.", "5.0.0"),
    stream("xgroup", -2, xgroup_help)
        .doc("A container for consumer groups commands.", "5.0.0")
        .subcommands(&[
            sub("xgroup|create", -5, W, KeyAccess::Insert, "Creates a consumer group.", "5.0.0", xgroup_create),
            sub("xgroup|createconsumer", 5, W, KeyAccess::Insert, "Creates a consumer in a consumer group.", "6.2.0", xgroup_createconsumer),
            sub("xgroup|delconsumer", 5, Flags::WRITE, KeyAccess::Delete, "Deletes a consumer from a consumer group.", "5.0.0", xgroup_delconsumer),
            sub("xgroup|destroy", 4, Flags::WRITE, KeyAccess::Delete, "Destroys a consumer group.", "5.0.0", xgroup_destroy),
            help("xgroup|help", xgroup_help),
            sub("xgroup|setid", -5, Flags::WRITE, KeyAccess::Update, "Sets the last-delivered ID of a consumer group.", "5.0.0", xgroup_setid),
        ]),
    stream("xinfo", -2, xinfo_help)
        .doc("A container for stream introspection commands.", "5.0.0")
        .subcommands(&[
            sub("xinfo|consumers", 4, R, KeyAccess::Read, "Returns a list of the consumers in a consumer group.", "5.0.0", xinfo_consumers).tips(&["nondeterministic_output"]),
            sub("xinfo|groups", 3, R, KeyAccess::Read, "Returns a list of the consumer groups of a stream.", "5.0.0", xinfo_groups),
            help("xinfo|help", xinfo_help),
            sub("xinfo|stream", -3, R, KeyAccess::Read, "Returns information about a stream.", "5.0.0", xinfo_stream),
        ]),
    stream("xlen", 2, xlen)
        .flags(RF)
        .keys(ONE, KeyAccess::Meta)
        .doc("Return the number of messages in a stream.", "5.0.0"),
    stream("xpending", -3, xpending)
        .flags(R)
        .keys(ONE, KeyAccess::Read)
        .tips(&["nondeterministic_output"])
        .doc("Returns the information and entries from a stream consumer group's pending entries list.", "5.0.0"),
    stream("xrange", -4, xrange)
        .flags(R)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns the messages from a stream within a range of IDs.", "5.0.0"),
    stream("xread", -4, xread)
        .flags(R.with(Flags::BLOCKING))
        .keys(XREAD_KEYS, KeyAccess::Read)
        .doc("Returns messages from multiple streams with IDs greater than the ones requested. Blocks until a message is available otherwise.", "5.0.0"),
    stream("xreadgroup", -7, xreadgroup)
        .flags(Flags::WRITE.with(Flags::BLOCKING))
        .keys(XREADGROUP_KEYS, KeyAccess::Read)
        .doc("Returns new or historical messages from a stream for a consumer in a group. Blocks until a message is available otherwise.", "5.0.0"),
    stream("xrevrange", -4, xrevrange)
        .flags(R)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns the messages from a stream within a range of IDs in reverse order.", "5.0.0"),
    stream("xsetid", -3, xsetid)
        .flags(WF)
        .keys(ONE, KeyAccess::Update)
        .doc("An internal command for replicating stream values.", "5.0.0"),
    stream("xtrim", -4, xtrim)
        .flags(Flags::WRITE)
        .keys(ONE, KeyAccess::Delete)
        .tips(&["nondeterministic_output"])
        .doc("Deletes messages from the beginning of a stream.", "5.0.0"),
];

// Command: XACK key group id [id ...]
//
// > XACK s g 1-1
// (integer) 0
fn xack(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let has_group = read(cx, &a[1], |s| s.group(&a[2]).is_some())?;
    if has_group != Some(true) {
        return Ok(Frame::Integer(0));
    }
    let ids = a[3..]
        .iter()
        .map(|arg| parse_id(arg, 0, true))
        .collect::<Result<Vec<_>, _>>()?;
    let acked = write(cx, &a[1], |s| {
        Ok(s.with_group(&a[2], |_, g| ids.iter().filter(|id| g.ack(**id)).count()))
    })?;
    Ok(Frame::Integer(acked.flatten().unwrap_or(0) as i64))
}

// Command: XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value [field value ...]
//
// > XADD s 1-1 f v
// "1-1"
// > XADD s 1-* f v
// "1-2"
fn xadd(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let limits = cx.server.limits().types;
    let opts = TrimOptions::parse(a, true, limits.stream_node_max_entries)?;
    let fields = a.get(opts.id_pos + 1..).unwrap_or(&[]);
    if fields.len() < 2 || fields.len() % 2 == 1 {
        return Err(CommandError::WrongArity("xadd".into()));
    }
    if let Some((id, true)) = opts.id {
        if id.is_zero() {
            return Err(CommandError::err(
                "The ID specified in XADD must be greater than 0-0",
            ));
        }
    }
    let now = cx.now;
    let db = cx.dbi();
    let l = cx.db()?;
    if l.write(db, &a[1])?.is_none() {
        if opts.no_mkstream {
            return Ok(Frame::Null);
        }
        let clock = l.access_clock();
        let value = Object::Stream(Box::new(Stream::new()));
        l.insert(db, KeyEntry::new_object(&a[1], value, None, clock))?;
    }
    let Some(mut e) = l.write(db, &a[1])? else {
        return Ok(Frame::Null);
    };
    // Work the new ID out before touching the value, so a refused ID leaves no trace.
    let id =
        {
            let Some(Object::Stream(s)) = e.get().value() else {
                return Err(CommandError::WrongType);
            };
            let entries = s.entries();
            if entries.last_id() == StreamId::MAX {
                return Err(CommandError::err(
                    "The stream has exhausted the last possible ID, unable to add more items",
                ));
            }
            let id = match opts.id {
                Some((id, true)) => Some(id),
                Some((id, false)) if id.ms == entries.last_id().ms => entries.last_id().next(),
                Some((id, false)) => Some(id),
                None => entries.next_id(now),
            };
            match id {
                Some(id) if id > entries.last_id() => id,
                _ => return Err(CommandError::err(
                    "The ID specified in XADD is equal or smaller than the target stream top item",
                )),
            }
        };
    if fields.iter().map(|f| f.len()).sum::<usize>() > 1 << 30 {
        return Err(CommandError::err("Elements are too large to be stored"));
    }
    let Some(Object::Stream(s)) = e.get_mut().value_mut() else {
        return Err(CommandError::WrongType);
    };
    let entries = s.entries_mut();
    entries.append(id, fields, &limits);
    let trimmed = match opts.strategy {
        Some(strategy) => entries.trim(strategy, opts.approx, opts.limit),
        None => 0,
    };
    drop(e);
    l.notify(notify::STREAM, "xadd", db, &a[1]);
    if trimmed > 0 {
        l.notify(notify::STREAM, "xtrim", db, &a[1]);
    }
    Ok(id_frame(id))
}

// Command: XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]
//
// > XAUTOCLAIM s g c 0 0-0
// 1) "0-0"
// 2) (empty array)
// 3) (empty array)
fn xautoclaim(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let min_idle = args::parse_i64(&a[4])
        .ok_or_else(|| CommandError::err("Invalid min-idle-time argument for XAUTOCLAIM"))?
        .max(0) as u64;
    let (mut start, exclusive) = parse_interval(&a[5], 0)?;
    if exclusive {
        start = start
            .next()
            .ok_or_else(|| CommandError::err("invalid start ID for the interval"))?;
    }
    let mut count: u64 = 100;
    let mut justid = false;
    let mut i = 6;
    while i < a.len() {
        if is(&a[i], "COUNT") && i + 1 < a.len() {
            let max = i64::MAX / 16;
            count = args::parse_i64(&a[i + 1])
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| CommandError::err("COUNT must be > 0"))? as u64;
            i += 1;
        } else if is(&a[i], "JUSTID") {
            justid = true;
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    require_group(cx, &a[1], &a[2])?;
    let now = cx.now;
    let consumer = &a[3];
    let mut created = false;
    let reply = write(cx, &a[1], |s| {
        Ok(s.with_group(&a[2], |entries, g| {
            let mut claimed = Vec::new();
            let mut deleted = Vec::new();
            let mut attempts = count.saturating_mul(10);
            let mut from = Some(start);
            let mut have_consumer = false;
            while attempts > 0 && count > 0 {
                attempts -= 1;
                let Some(id) = from.and_then(|f| g.next_pending(f)) else {
                    from = None;
                    break;
                };
                from = id.next();
                let Some(entry) = entries.get(id) else {
                    g.ack(id);
                    deleted.push(id_frame(id));
                    count -= 1;
                    continue;
                };
                let idle = g
                    .nack(id)
                    .map_or(0, |n| now as i64 - n.delivery_time as i64);
                if min_idle > 0 && idle < min_idle as i64 {
                    continue;
                }
                if !have_consumer {
                    created = g.touch_consumer(consumer, now);
                    have_consumer = true;
                }
                g.claim(id, consumer, now, None, false);
                if !justid {
                    g.bump_delivery_count(id);
                }
                claimed.push(if justid {
                    id_frame(id)
                } else {
                    entry_frame(entry)
                });
                count -= 1;
            }
            let cursor = from
                .and_then(|f| g.next_pending(f))
                .unwrap_or(StreamId::MIN);
            Frame::Array(vec![
                id_frame(cursor),
                Frame::Array(claimed),
                Frame::Array(deleted),
            ])
        }))
    })?;
    if created {
        cx.notify(notify::STREAM, "xgroup-createconsumer", &a[1]);
    }
    Ok(reply.flatten().unwrap_or_else(|| Frame::Array(Vec::new())))
}

// Command: XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME unix-time-milliseconds] [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID lastid]
//
// > XCLAIM s g c 0 1-1
// (empty array)
fn xclaim(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    require_group(cx, &a[1], &a[2])?;
    let min_idle = args::parse_i64(&a[4])
        .ok_or_else(|| CommandError::err("Invalid min-idle-time argument for XCLAIM"))?
        .max(0);
    let mut ids = Vec::new();
    let mut j = 5;
    while let Some(id) = a.get(j).and_then(|arg| parse_id(arg, 0, true).ok()) {
        ids.push(id);
        j += 1;
    }
    let now = cx.now as i64;
    let mut delivery: Option<i64> = None;
    let mut retry: Option<u64> = None;
    let mut force = false;
    let mut justid = false;
    let mut last_id = StreamId::MIN;
    let option_int = |arg: &[u8], name: &str| {
        args::parse_i64(arg)
            .ok_or_else(|| CommandError::err(format!("Invalid {name} option argument for XCLAIM")))
    };
    while j < a.len() {
        let more = j + 1 < a.len();
        let opt = &a[j];
        if is(opt, "FORCE") {
            force = true;
        } else if is(opt, "JUSTID") {
            justid = true;
        } else if is(opt, "IDLE") && more {
            j += 1;
            delivery = Some(now - option_int(&a[j], "IDLE")?);
        } else if is(opt, "TIME") && more {
            j += 1;
            delivery = Some(option_int(&a[j], "TIME")?);
        } else if is(opt, "RETRYCOUNT") && more {
            j += 1;
            // A negative count means "not given", as in Redis.
            retry = u64::try_from(option_int(&a[j], "RETRYCOUNT")?).ok();
        } else if is(opt, "LASTID") && more {
            j += 1;
            last_id = parse_id(&a[j], 0, true)?;
        } else {
            return Err(CommandError::err(format!(
                "Unrecognized XCLAIM option '{}'",
                args::text(opt)
            )));
        }
        j += 1;
    }
    let delivery = match delivery {
        Some(t) if (0..=now).contains(&t) => t as u64,
        _ => now as u64,
    };
    let consumer = &a[3];
    let mut created = false;
    let reply = write(cx, &a[1], |s| {
        Ok(s.with_group(&a[2], |entries, g| {
            if last_id > g.last_id {
                g.last_id = last_id;
            }
            let mut out = Vec::new();
            let mut have_consumer = false;
            for &id in &ids {
                let Some(entry) = entries.get(id) else {
                    g.ack(id);
                    continue;
                };
                let nack = g.nack(id);
                if nack.is_none() && !force {
                    continue;
                }
                if let Some(n) = nack.filter(|n| n.consumer.is_some()) {
                    if min_idle > 0 && now - (n.delivery_time as i64) < min_idle {
                        continue;
                    }
                }
                if !have_consumer {
                    created = g.touch_consumer(consumer, now as u64);
                    have_consumer = true;
                }
                g.claim(id, consumer, delivery, retry, force);
                if retry.is_none() && !justid {
                    g.bump_delivery_count(id);
                }
                out.push(if justid {
                    id_frame(id)
                } else {
                    entry_frame(entry)
                });
            }
            Frame::Array(out)
        }))
    })?;
    if created {
        cx.notify(notify::STREAM, "xgroup-createconsumer", &a[1]);
    }
    Ok(reply.flatten().unwrap_or_else(|| Frame::Array(Vec::new())))
}

// Command: XDEL key id [id ...]
//
// > XADD s 1-1 f v
// "1-1"
// > XDEL s 1-1 2-2
// (integer) 1
fn xdel(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    if read(cx, &a[1], |_| ())?.is_none() {
        return Ok(Frame::Integer(0));
    }
    let ids = a[2..]
        .iter()
        .map(|arg| parse_id(arg, 0, true))
        .collect::<Result<Vec<_>, _>>()?;
    let deleted = write(cx, &a[1], |s| Ok(s.entries_mut().delete(&ids)))?.unwrap_or(0);
    if deleted > 0 {
        cx.notify(notify::STREAM, "xdel", &a[1]);
    }
    Ok(Frame::Integer(deleted as i64))
}

// Command: XGROUP CREATE key group id|$ [MKSTREAM] [ENTRIESREAD entries-read]
//
// > XGROUP CREATE s g $ MKSTREAM
// OK
fn xgroup_create(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let opts = GroupOptions::parse(a, true)?;
    let (exists, last_id) = group_target(cx, a, opts.mkstream, false)?;
    if a.len() > 8 {
        return Err(subcommand_syntax(a));
    }
    let id = if a[4][..] == b"$"[..] {
        last_id
    } else {
        parse_id(&a[4], 0, true)?
    };
    let db = cx.dbi();
    if !exists {
        let l = cx.db()?;
        let clock = l.access_clock();
        let value = Object::Stream(Box::new(Stream::new()));
        l.insert(db, KeyEntry::new_object(&a[2], value, None, clock))?;
    }
    let created = write(cx, &a[2], |s| {
        Ok(s.create_group(&a[3], id, opts.entries_read))
    })?;
    if created == Some(true) {
        cx.notify(notify::STREAM, "xgroup-create", &a[2]);
        Ok(Frame::ok())
    } else {
        Err(CommandError::Other(
            "BUSYGROUP Consumer Group name already exists".into(),
        ))
    }
}

// Command: XGROUP CREATECONSUMER key group consumer
//
// > XGROUP CREATE s g $ MKSTREAM
// OK
// > XGROUP CREATECONSUMER s g c
// (integer) 1
fn xgroup_createconsumer(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    group_target(cx, a, false, true)?;
    let now = cx.now;
    let created = write(cx, &a[2], |s| {
        Ok(s.with_group(&a[3], |_, g| g.create_consumer(&a[4], now)))
    })?;
    let created = created.flatten() == Some(true);
    if created {
        cx.notify(notify::STREAM, "xgroup-createconsumer", &a[2]);
    }
    Ok(Frame::Integer(i64::from(created)))
}

// Command: XGROUP DELCONSUMER key group consumer
//
// > XGROUP CREATE s g $ MKSTREAM
// OK
// > XGROUP DELCONSUMER s g c
// (integer) 0
fn xgroup_delconsumer(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    group_target(cx, a, false, true)?;
    let exists = read(cx, &a[2], |s| {
        s.group(&a[3]).and_then(|g| g.consumer(&a[4])).is_some()
    })?;
    if exists != Some(true) {
        return Ok(Frame::Integer(0));
    }
    let pending = write(cx, &a[2], |s| {
        Ok(s.with_group(&a[3], |_, g| g.delete_consumer(&a[4])))
    })?;
    cx.notify(notify::STREAM, "xgroup-delconsumer", &a[2]);
    Ok(Frame::Integer(
        pending.flatten().flatten().unwrap_or(0) as i64
    ))
}

// Command: XGROUP DESTROY key group
//
// > XGROUP CREATE s g $ MKSTREAM
// OK
// > XGROUP DESTROY s g
// (integer) 1
fn xgroup_destroy(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    group_target(cx, a, false, false)?;
    if read(cx, &a[2], |s| s.group(&a[3]).is_some())? != Some(true) {
        return Ok(Frame::Integer(0));
    }
    let destroyed = write(cx, &a[2], |s| Ok(s.destroy_group(&a[3])))? == Some(true);
    if destroyed {
        cx.notify(notify::STREAM, "xgroup-destroy", &a[2]);
    }
    Ok(Frame::Integer(i64::from(destroyed)))
}

// Command: XGROUP HELP
fn xgroup_help(_cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(help_reply(
        "XGROUP",
        &[
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ],
    ))
}

// Command: XGROUP SETID key group id|$ [ENTRIESREAD entries-read]
//
// > XGROUP CREATE s g $ MKSTREAM
// OK
// > XGROUP SETID s g 0
// OK
fn xgroup_setid(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let opts = GroupOptions::parse(a, false)?;
    let (_, last_id) = group_target(cx, a, false, true)?;
    if a.len() != 5 && a.len() != 7 {
        return Err(subcommand_syntax(a));
    }
    let id = if a[4][..] == b"$"[..] {
        last_id
    } else {
        parse_id(&a[4], 0, false)?
    };
    write(cx, &a[2], |s| {
        Ok(s.with_group(&a[3], |_, g| {
            g.last_id = id;
            g.entries_read = opts.entries_read;
        }))
    })?;
    cx.notify(notify::STREAM, "xgroup-setid", &a[2]);
    Ok(Frame::ok())
}

// Command: XINFO CONSUMERS key group
//
// > XGROUP CREATE s g $ MKSTREAM
// OK
// > XINFO CONSUMERS s g
// (empty array)
fn xinfo_consumers(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let now = cx.now;
    let reply = read(cx, &a[2], |s| {
        let Some(g) = s.group(&a[3]) else {
            return Err(no_group_for_key(&a[3], &a[2]));
        };
        let consumers = g
            .consumers()
            .map(|c| {
                Frame::Map(vec![
                    (
                        Frame::bulk("name"),
                        Frame::Bulk(Bytes::copy_from_slice(&c.name)),
                    ),
                    (Frame::bulk("pending"), Frame::Integer(c.pending() as i64)),
                    (
                        Frame::bulk("idle"),
                        Frame::Integer(now.saturating_sub(c.seen_time) as i64),
                    ),
                ])
            })
            .collect();
        Ok(Frame::Array(consumers))
    })?;
    reply.ok_or(CommandError::NoSuchKey)?
}

// Command: XINFO GROUPS key
//
// > XGROUP CREATE s g $ MKSTREAM
// OK
// > XINFO GROUPS s
// 1) 1) "name" 2) "g" 3) "consumers" 4) (integer) 0 ...
fn xinfo_groups(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let reply = read(cx, &a[2], |s| {
        let groups = s
            .groups()
            .map(|(name, g)| {
                Frame::Map(vec![
                    (
                        Frame::bulk("name"),
                        Frame::Bulk(Bytes::copy_from_slice(name)),
                    ),
                    (
                        Frame::bulk("consumers"),
                        Frame::Integer(g.consumer_count() as i64),
                    ),
                    (Frame::bulk("pending"), Frame::Integer(g.pending() as i64)),
                    (Frame::bulk("last-delivered-id"), id_frame(g.last_id)),
                    (Frame::bulk("entries-read"), opt_int(g.entries_read)),
                    (Frame::bulk("lag"), opt_int(s.entries().lag(g))),
                ])
            })
            .collect();
        Frame::Array(groups)
    })?;
    reply.ok_or(CommandError::NoSuchKey)
}

// Command: XINFO HELP
fn xinfo_help(_cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(help_reply(
        "XINFO",
        &[
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
        ],
    ))
}

// Command: XINFO STREAM key [FULL [COUNT count]]
//
// > XADD s 1-1 f v
// "1-1"
// > XINFO STREAM s
// 1) "length" 2) (integer) 1 ...
fn xinfo_stream(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let reply = read(cx, &a[2], |s| xinfo_stream_reply(s, a))?;
    reply.ok_or(CommandError::NoSuchKey)?
}

fn xinfo_stream_reply(s: &Stream, a: &[Bytes]) -> CmdResult {
    let opts = &a[3..];
    let mut full = false;
    let mut count: u64 = 10;
    if !opts.is_empty() {
        if (opts.len() != 1 && opts.len() != 3) || !is(&opts[0], "FULL") {
            return Err(subcommand_syntax(a));
        }
        full = true;
        if opts.len() == 3 {
            if !is(&opts[1], "COUNT") {
                return Err(subcommand_syntax(a));
            }
            count = u64::try_from(args::int(&opts[2])?).unwrap_or(10);
        }
    }
    let e = s.entries();
    let mut map = vec![
        (Frame::bulk("length"), Frame::Integer(e.len() as i64)),
        (
            Frame::bulk("radix-tree-keys"),
            Frame::Integer(e.node_count() as i64),
        ),
        (
            Frame::bulk("radix-tree-nodes"),
            Frame::Integer(e.radix_tree_nodes() as i64),
        ),
        (Frame::bulk("last-generated-id"), id_frame(e.last_id())),
        (
            Frame::bulk("max-deleted-entry-id"),
            id_frame(e.max_deleted()),
        ),
        (
            Frame::bulk("entries-added"),
            Frame::Integer(e.entries_added() as i64),
        ),
        (
            Frame::bulk("recorded-first-entry-id"),
            id_frame(e.first_id()),
        ),
    ];
    if !full {
        let first = e.range(StreamId::MIN, StreamId::MAX, false).next();
        let last = e.range(StreamId::MIN, StreamId::MAX, true).next();
        map.push((
            Frame::bulk("groups"),
            Frame::Integer(s.group_count() as i64),
        ));
        map.push((
            Frame::bulk("first-entry"),
            first.map_or(Frame::Null, entry_frame),
        ));
        map.push((
            Frame::bulk("last-entry"),
            last.map_or(Frame::Null, entry_frame),
        ));
        return Ok(Frame::Map(map));
    }
    let limit = if count == 0 {
        usize::MAX
    } else {
        count as usize
    };
    let entries = e
        .range(StreamId::MIN, StreamId::MAX, false)
        .take(limit)
        .map(entry_frame)
        .collect();
    map.push((Frame::bulk("entries"), Frame::Array(entries)));
    let groups = s
        .groups()
        .map(|(name, g)| {
            let pel = g
                .pel_range(StreamId::MIN..=StreamId::MAX)
                .take(limit)
                .map(|(id, n)| {
                    Frame::Array(vec![
                        id_frame(id),
                        n.consumer
                            .as_ref()
                            .map_or(Frame::Null, |c| Frame::Bulk(Bytes::copy_from_slice(c))),
                        Frame::Integer(n.delivery_time as i64),
                        Frame::Integer(n.delivery_count as i64),
                    ])
                })
                .collect();
            let consumers = g
                .consumers()
                .map(|c| {
                    let pending = c
                        .pending_ids(StreamId::MIN..=StreamId::MAX)
                        .take(limit)
                        .map(|id| {
                            let n = g.nack(id);
                            Frame::Array(vec![
                                id_frame(id),
                                Frame::Integer(n.map_or(0, |n| n.delivery_time) as i64),
                                Frame::Integer(n.map_or(0, |n| n.delivery_count) as i64),
                            ])
                        })
                        .collect();
                    Frame::Map(vec![
                        (
                            Frame::bulk("name"),
                            Frame::Bulk(Bytes::copy_from_slice(&c.name)),
                        ),
                        (Frame::bulk("seen-time"), Frame::Integer(c.seen_time as i64)),
                        (Frame::bulk("pel-count"), Frame::Integer(c.pending() as i64)),
                        (Frame::bulk("pending"), Frame::Array(pending)),
                    ])
                })
                .collect();
            Frame::Map(vec![
                (
                    Frame::bulk("name"),
                    Frame::Bulk(Bytes::copy_from_slice(name)),
                ),
                (Frame::bulk("last-delivered-id"), id_frame(g.last_id)),
                (Frame::bulk("entries-read"), opt_int(g.entries_read)),
                (Frame::bulk("lag"), opt_int(e.lag(g))),
                (Frame::bulk("pel-count"), Frame::Integer(g.pending() as i64)),
                (Frame::bulk("pending"), Frame::Array(pel)),
                (Frame::bulk("consumers"), Frame::Array(consumers)),
            ])
        })
        .collect();
    map.push((Frame::bulk("groups"), Frame::Array(groups)));
    Ok(Frame::Map(map))
}

// Command: XLEN key
//
// > XADD s 1-1 f v
// "1-1"
// > XLEN s
// (integer) 1
fn xlen(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let len = read(cx, &a[1], |s| s.len())?;
    Ok(Frame::Integer(len.unwrap_or(0) as i64))
}

// Command: XPENDING key group [[IDLE min-idle-time] start end count [consumer]]
//
// > XGROUP CREATE s g $ MKSTREAM
// OK
// > XPENDING s g
// 1) (integer) 0 2) (nil) 3) (nil) 4) (nil)
fn xpending(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let argc = a.len();
    if argc != 3 && !(6..=9).contains(&argc) {
        return Err(CommandError::Syntax);
    }
    let mut extended = None;
    if argc >= 6 {
        let mut at = 3;
        let mut min_idle = 0;
        if is(&a[3], "IDLE") {
            min_idle = args::int(&a[4])?;
            if argc < 8 {
                return Err(CommandError::Syntax);
            }
            at += 2;
        }
        let count = args::int(&a[at + 2])?.max(0) as u64;
        let (start, end) = parse_range(&a[at], &a[at + 1])?;
        extended = Some((min_idle, start, end, count, a.get(at + 3)));
    }
    let now = cx.now as i64;
    let reply = read(cx, &a[1], |s| {
        let Some(g) = s.group(&a[2]) else {
            return Err(no_key_or_group(&a[1], &a[2]));
        };
        let Some((min_idle, start, end, count, consumer)) = extended else {
            let Some((first, last)) = g.pel_bounds() else {
                return Ok(Frame::Array(vec![
                    Frame::Integer(0),
                    Frame::Null,
                    Frame::Null,
                    Frame::NullArray,
                ]));
            };
            let owners = g
                .consumers()
                .filter(|c| c.pending() > 0)
                .map(|c| {
                    Frame::Array(vec![
                        Frame::Bulk(Bytes::copy_from_slice(&c.name)),
                        Frame::Bulk(Bytes::from(c.pending().to_string())),
                    ])
                })
                .collect();
            return Ok(Frame::Array(vec![
                Frame::Integer(g.pending() as i64),
                id_frame(first),
                id_frame(last),
                Frame::Array(owners),
            ]));
        };
        if start > end {
            return Ok(Frame::Array(Vec::new()));
        }
        let ids: Box<dyn Iterator<Item = StreamId>> = match consumer {
            Some(name) => match g.consumer(name) {
                Some(c) => Box::new(c.pending_ids(start..=end)),
                None => return Ok(Frame::Array(Vec::new())),
            },
            None => Box::new(g.pel_range(start..=end).map(|(id, _)| id)),
        };
        let mut out = Vec::new();
        for id in ids {
            if out.len() as u64 >= count {
                break;
            }
            let Some(n) = g.nack(id) else {
                continue;
            };
            let idle = now - n.delivery_time as i64;
            if min_idle > 0 && idle < min_idle {
                continue;
            }
            out.push(Frame::Array(vec![
                id_frame(id),
                n.consumer
                    .as_ref()
                    .map_or(Frame::Null, |c| Frame::Bulk(Bytes::copy_from_slice(c))),
                Frame::Integer(idle.max(0)),
                Frame::Integer(n.delivery_count as i64),
            ]));
        }
        Ok(Frame::Array(out))
    })?;
    reply.ok_or_else(|| no_key_or_group(&a[1], &a[2]))?
}

// Command: XRANGE key start end [COUNT count]
//
// > XADD s 1-1 f v
// "1-1"
// > XRANGE s - +
// 1) 1) "1-1" 2) 1) "f" 2) "v"
fn xrange(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    range_generic(cx, a, false)
}

// Command: XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]
//
// > XADD s 1-1 f v
// "1-1"
// > XREAD STREAMS s 0
// 1) 1) "s" 2) 1) 1) "1-1" 2) 1) "f" 2) "v"
fn xread(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    read_generic(cx, a, false)
}

// Command: XREADGROUP GROUP group consumer [COUNT count] [BLOCK milliseconds] [NOACK] STREAMS key [key ...] id [id ...]
//
// > XGROUP CREATE s g $ MKSTREAM
// OK
// > XADD s 1-1 f v
// "1-1"
// > XREADGROUP GROUP g c STREAMS s >
// 1) 1) "s" 2) 1) 1) "1-1" 2) 1) "f" 2) "v"
fn xreadgroup(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    read_generic(cx, a, true)
}

// Command: XREVRANGE key end start [COUNT count]
//
// > XADD s 1-1 f v
// "1-1"
// > XREVRANGE s + - COUNT 1
// 1) 1) "1-1" 2) 1) "f" 2) "v"
fn xrevrange(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    range_generic(cx, a, true)
}

// Command: XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]
//
// > XADD s 1-1 f v
// "1-1"
// > XSETID s 5-0
// OK
fn xsetid(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let id = parse_id(&a[2], 0, true)?;
    let mut entries_added = None;
    let mut max_deleted = None;
    let mut i = 3;
    while i < a.len() {
        let more = i + 1 < a.len();
        if is(&a[i], "ENTRIESADDED") && more {
            let n = args::int(&a[i + 1])?;
            entries_added = Some(
                u64::try_from(n)
                    .map_err(|_| CommandError::err("entries_added must be positive"))?,
            );
        } else if is(&a[i], "MAXDELETEDID") && more {
            let max = parse_id(&a[i + 1], 0, true)?;
            if id < max {
                return Err(CommandError::err(
                    "The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
            max_deleted = Some(max).filter(|m| !m.is_zero());
        } else {
            return Err(CommandError::Syntax);
        }
        i += 2;
    }
    let check = read(cx, &a[1], |s| {
        let e = s.entries();
        if e.is_empty() {
            return Ok(());
        }
        if e.last_valid_id().is_some_and(|top| id < top) {
            return Err(CommandError::err(
                "The ID specified in XSETID is smaller than the target stream top item",
            ));
        }
        if entries_added.is_some_and(|n| e.len() > n) {
            return Err(CommandError::err(
                "The entries_added specified in XSETID is smaller than the target stream length",
            ));
        }
        Ok(())
    })?;
    check.ok_or(CommandError::NoSuchKey)??;
    write(cx, &a[1], |s| {
        s.entries_mut().set_meta(id, entries_added, max_deleted);
        Ok(())
    })?;
    cx.notify(notify::STREAM, "xsetid", &a[1]);
    Ok(Frame::ok())
}

// Command: XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]
//
// > XADD s 1-1 f v
// "1-1"
// > XTRIM s MAXLEN 0
// (integer) 1
fn xtrim(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let limits = cx.server.limits().types;
    let opts = TrimOptions::parse(a, false, limits.stream_node_max_entries)?;
    let Some(strategy) = opts.strategy else {
        return Err(CommandError::Syntax);
    };
    if read(cx, &a[1], |_| ())?.is_none() {
        return Ok(Frame::Integer(0));
    }
    let deleted = write(cx, &a[1], |s| {
        Ok(s.entries_mut().trim(strategy, opts.approx, opts.limit))
    })?
    .unwrap_or(0);
    if deleted > 0 {
        cx.notify(notify::STREAM, "xtrim", &a[1]);
    }
    Ok(Frame::Integer(deleted as i64))
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// `XRANGE` and `XREVRANGE`.
fn range_generic(cx: &mut Cx<'_>, a: &[Bytes], rev: bool) -> CmdResult {
    let (start_arg, end_arg) = if rev { (&a[3], &a[2]) } else { (&a[2], &a[3]) };
    let (start, end) = parse_range(start_arg, end_arg)?;
    let mut count: Option<u64> = None;
    let mut j = 4;
    while j < a.len() {
        if is(&a[j], "COUNT") && j + 1 < a.len() {
            count = Some(args::int(&a[j + 1])?.max(0) as u64);
            j += 2;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    let reply = read(cx, &a[1], |s| {
        if count == Some(0) {
            return Frame::NullArray;
        }
        let limit = count.map_or(usize::MAX, |c| c.min(usize::MAX as u64) as usize);
        Frame::Array(
            s.entries()
                .range(start, end, rev)
                .take(limit)
                .map(entry_frame)
                .collect(),
        )
    })?;
    Ok(reply.unwrap_or_else(|| Frame::Array(Vec::new())))
}

/// Parses a range's bounds: `-`, `+`, full or partial IDs (a partial start has sequence 0, a
/// partial end the largest one), `(` for exclusive bounds.
fn parse_range(start_arg: &[u8], end_arg: &[u8]) -> Result<(StreamId, StreamId), CommandError> {
    let (mut start, start_ex) = parse_interval(start_arg, 0)?;
    if start_ex {
        start = start
            .next()
            .ok_or_else(|| CommandError::err("invalid start ID for the interval"))?;
    }
    let (mut end, end_ex) = parse_interval(end_arg, u64::MAX)?;
    if end_ex {
        end = end
            .prev()
            .ok_or_else(|| CommandError::err("invalid end ID for the interval"))?;
    }
    Ok((start, end))
}

/// `XREAD` and `XREADGROUP`.
fn read_generic(cx: &mut Cx<'_>, a: &[Bytes], grouped: bool) -> CmdResult {
    let mut block: Option<Option<u64>> = None;
    let mut count: u64 = 0;
    let mut count_given = false;
    let mut streams_at = 0;
    let mut group: Option<(&Bytes, &Bytes)> = None;
    let mut noack = false;
    let mut i = 1;
    while i < a.len() {
        let more = a.len() - i - 1;
        let o = &a[i];
        if is(o, "BLOCK") && more > 0 {
            i += 1;
            block = Some(args::block_timeout(&a[i], TimeoutUnit::Millis, cx.now)?);
        } else if is(o, "COUNT") && more > 0 {
            i += 1;
            count = args::int(&a[i])?.max(0) as u64;
            count_given = true;
        } else if is(o, "STREAMS") && more > 0 {
            streams_at = i + 1;
            if !more.is_multiple_of(2) {
                return Err(CommandError::err(
                    "Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                ));
            }
            break;
        } else if is(o, "GROUP") && more >= 2 {
            if !grouped {
                return Err(CommandError::err(
                    "The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            group = Some((&a[i + 1], &a[i + 2]));
            i += 2;
        } else if is(o, "NOACK") {
            if !grouped {
                return Err(CommandError::err(
                    "The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            noack = true;
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    if streams_at == 0 {
        return Err(CommandError::Syntax);
    }
    if grouped && group.is_none() {
        return Err(CommandError::err("Missing GROUP option for XREADGROUP"));
    }
    let n = (a.len() - streams_at) / 2;
    let keys = &a[streams_at..streams_at + n];
    let id_args = &a[streams_at + n..];

    // Resolve every stream's starting point; `None` stands for `>`.
    let mut from: Vec<Option<StreamId>> = Vec::with_capacity(n);
    for (key, arg) in keys.iter().zip(id_args) {
        let last = read(cx, key, |s| {
            (
                s.entries().last_id(),
                group.is_some_and(|(g, _)| s.group(g).is_some()),
            )
        })?;
        if let Some((g, _)) = group {
            if !last.is_some_and(|(_, has)| has) {
                return Err(CommandError::Other(format!(
                    "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                    args::text(key),
                    args::text(g)
                )));
            }
        }
        if arg[..] == b"$"[..] {
            if grouped {
                return Err(CommandError::err(
                    "The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
                ));
            }
            from.push(Some(last.map_or(StreamId::MIN, |(id, _)| id)));
        } else if arg[..] == b">"[..] {
            if !grouped {
                return Err(CommandError::err(
                    "The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
                ));
            }
            from.push(None);
        } else {
            from.push(Some(parse_id(arg, 0, true)?));
        }
    }

    let now = cx.now;
    let limit = if count == 0 {
        usize::MAX
    } else {
        count as usize
    };
    let mut served = Vec::new();
    for (key, start) in keys.iter().zip(&from) {
        let reply = match group {
            None => {
                let start = start.unwrap_or(StreamId::MAX);
                read(cx, key, |s| {
                    let e = s.entries();
                    if e.last_valid_id().is_none_or(|top| top <= start) {
                        return None;
                    }
                    let first = start.next().unwrap_or(StreamId::MIN);
                    Some(Frame::Array(
                        e.range(first, StreamId::MAX, false)
                            .take(limit)
                            .map(entry_frame)
                            .collect(),
                    ))
                })?
                .flatten()
            }
            Some((g, consumer)) => {
                let servable = read(cx, key, |s| match start {
                    Some(_) => true,
                    None => {
                        let top = s.entries().last_valid_id();
                        let last = s.group(g).map(|g| g.last_id);
                        top.zip(last).is_some_and(|(top, last)| top > last)
                    }
                })?;
                if servable != Some(true) {
                    continue;
                }
                let mut created = false;
                let reply = write(cx, key, |s| {
                    Ok(s.with_group(g, |entries, g| {
                        created = g.touch_consumer(consumer, now);
                        match start {
                            Some(start) => serve_history(entries, g, consumer, *start, limit, now),
                            None => serve_new(entries, g, consumer, limit, noack, now),
                        }
                    }))
                })?
                .flatten()
                .flatten();
                if created {
                    cx.notify(notify::STREAM, "xgroup-createconsumer", key);
                }
                reply
            }
        };
        if let Some(entries) = reply {
            served.push((Frame::Bulk(key.clone()), entries));
        }
    }
    if !served.is_empty() {
        return Ok(match cx.client.protocol {
            Protocol::Resp2 => Frame::Array(
                served
                    .into_iter()
                    .map(|(k, v)| Frame::Array(vec![k, v]))
                    .collect(),
            ),
            _ => Frame::Map(served),
        });
    }
    let Some(deadline) = block else {
        return Ok(Frame::NullArray);
    };
    // Wait for the keys. The command runs again as written, except that `$` becomes the ID it
    // stood for now (so entries added meanwhile are served) and, as in Redis, a client that
    // gave no COUNT gets at most 1000 entries per stream once woken.
    let db = cx.dbi();
    let mut rerun: Vec<Bytes> = Vec::with_capacity(a.len() + 2);
    rerun.push(a[0].clone());
    if !count_given {
        rerun.push(Bytes::from_static(b"COUNT"));
        rerun.push(Bytes::from_static(b"1000"));
    }
    rerun.extend(a[1..streams_at + n].iter().cloned());
    for (arg, start) in id_args.iter().zip(&from) {
        match start {
            Some(id) if arg[..] == b"$"[..] => rerun.push(Bytes::from(id.to_string())),
            _ => rerun.push(arg.clone()),
        }
    }
    Ok(cx.client.block(BlockSpec {
        keys: keys.iter().map(|k| (db, k.clone())).collect(),
        deadline,
        timeout_reply: Frame::NullArray,
        args: Some(rerun),
    }))
}

/// Serves `>`: entries after the group's last delivered ID, which become pending for the
/// consumer unless `noack`.
fn serve_new(
    entries: &Entries,
    g: &mut Group,
    consumer: &[u8],
    limit: usize,
    noack: bool,
    now: u64,
) -> Option<Frame> {
    let first = g.last_id.next()?;
    let mut out = Vec::new();
    for e in entries.range(first, StreamId::MAX, false).take(limit) {
        entries.advance_group(g, e.id);
        if !noack {
            g.deliver(e.id, consumer, now);
        }
        out.push(entry_frame(e));
    }
    Some(Frame::Array(out))
}

/// Serves an explicit ID: the consumer's own pending entries after it, each delivered again.
/// An entry deleted meanwhile shows as its ID with a null body.
fn serve_history(
    entries: &Entries,
    g: &mut Group,
    consumer: &[u8],
    start: StreamId,
    limit: usize,
    now: u64,
) -> Option<Frame> {
    let first = start.next().unwrap_or(StreamId::MIN);
    let ids: Vec<StreamId> = g
        .consumer(consumer)
        .map(|c| c.pending_ids(first..=StreamId::MAX).take(limit).collect())
        .unwrap_or_default();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        match entries.get(id) {
            Some(e) => {
                g.redeliver(id, now);
                out.push(entry_frame(e));
            }
            None => out.push(Frame::Array(vec![id_frame(id), Frame::NullArray])),
        }
    }
    Some(Frame::Array(out))
}

/// The options of `XADD` and `XTRIM`, parsed as Redis's `streamParseAddOrTrimArgsOrReply`.
struct TrimOptions {
    strategy: Option<Trim>,
    approx: bool,
    /// Most entries to trim (0 = no limit).
    limit: u64,
    no_mkstream: bool,
    /// The explicit ID and whether its sequence was given (`ms-*` leaves it out).
    id: Option<(StreamId, bool)>,
    /// Where the ID is (`XADD`).
    id_pos: usize,
}

impl TrimOptions {
    fn parse(
        a: &[Bytes],
        xadd: bool,
        node_max_entries: usize,
    ) -> Result<TrimOptions, CommandError> {
        let mut o = TrimOptions {
            strategy: None,
            approx: false,
            limit: 0,
            no_mkstream: false,
            id: None,
            id_pos: a.len(),
        };
        let mut limit_given = false;
        let mut i = 2;
        while i < a.len() {
            let more = a.len() - 1 - i;
            let opt = &a[i];
            if xadd && opt[..] == b"*"[..] {
                break;
            } else if (is(opt, "MAXLEN") || is(opt, "MINID")) && more > 0 {
                if o.strategy.is_some() {
                    return Err(CommandError::err(
                        "syntax error, MAXLEN and MINID options at the same time are not compatible",
                    ));
                }
                o.approx = false;
                let next = &a[i + 1][..];
                if more >= 2 && next == b"~" {
                    o.approx = true;
                    i += 1;
                } else if more >= 2 && next == b"=" {
                    i += 1;
                }
                let arg = &a[i + 1];
                o.strategy = Some(if is(opt, "MAXLEN") {
                    let n = args::int(arg)?;
                    Trim::MaxLen(
                        u64::try_from(n)
                            .map_err(|_| CommandError::err("The MAXLEN argument must be >= 0."))?,
                    )
                } else {
                    Trim::MinId(parse_id(arg, 0, true)?)
                });
                i += 1;
            } else if is(opt, "LIMIT") && more > 0 {
                let n = args::int(&a[i + 1])?;
                o.limit = u64::try_from(n)
                    .map_err(|_| CommandError::err("The LIMIT argument must be >= 0."))?;
                limit_given = true;
                i += 1;
            } else if xadd && is(opt, "NOMKSTREAM") {
                o.no_mkstream = true;
            } else if xadd {
                o.id = Some(parse_id_seq(opt)?);
                break;
            } else {
                return Err(CommandError::Syntax);
            }
            i += 1;
        }
        o.id_pos = i;
        if o.limit > 0 && o.strategy.is_none() {
            return Err(CommandError::err(
                "syntax error, LIMIT cannot be used without specifying a trimming strategy",
            ));
        }
        if !xadd && o.strategy.is_none() {
            return Err(CommandError::err(
                "syntax error, XTRIM must be called with a trimming strategy",
            ));
        }
        if limit_given {
            if !o.approx {
                return Err(CommandError::err(
                    "syntax error, LIMIT cannot be used without the special ~ option",
                ));
            }
        } else if o.approx {
            // Redis caps the work of an approximate trim at 100 nodes.
            o.limit = match (node_max_entries as u64).saturating_mul(100) {
                0 => 10_000,
                n => n.min(1_000_000),
            };
        } else {
            o.limit = 0;
        }
        Ok(o)
    }
}

/// The options of `XGROUP CREATE` and `XGROUP SETID`.
struct GroupOptions {
    mkstream: bool,
    entries_read: Option<u64>,
}

impl GroupOptions {
    fn parse(a: &[Bytes], create: bool) -> Result<GroupOptions, CommandError> {
        let mut o = GroupOptions {
            mkstream: false,
            entries_read: None,
        };
        let mut i = 5;
        while i < a.len() {
            if create && is(&a[i], "MKSTREAM") {
                o.mkstream = true;
                i += 1;
            } else if is(&a[i], "ENTRIESREAD") && i + 1 < a.len() {
                let n = args::int(&a[i + 1])?;
                if n < -1 {
                    return Err(CommandError::err(
                        "value for ENTRIESREAD must be positive or -1",
                    ));
                }
                o.entries_read = u64::try_from(n).ok();
                i += 2;
            } else {
                return Err(subcommand_syntax(a));
            }
        }
        Ok(o)
    }
}

/// The checks every `XGROUP` subcommand makes on its key and group (argument 2 and 3): the key
/// must hold a stream (unless `mkstream`) and, when `need_group`, the group must exist.
/// Returns whether the key exists and the stream's last ID (0-0 when it does not).
fn group_target(
    cx: &mut Cx<'_>,
    a: &[Bytes],
    mkstream: bool,
    need_group: bool,
) -> Result<(bool, StreamId), CommandError> {
    let found = read(cx, &a[2], |s| {
        (s.entries().last_id(), s.group(&a[3]).is_some())
    })?;
    match found {
        None if mkstream => Ok((false, StreamId::MIN)),
        None => Err(CommandError::err(
            "The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.",
        )),
        Some((_, false)) if need_group => Err(no_group_for_key(&a[3], &a[2])),
        Some((last, _)) => Ok((true, last)),
    }
}

/// Fails with `NOGROUP` unless the key holds a stream with this group.
fn require_group(cx: &mut Cx<'_>, key: &[u8], group: &[u8]) -> Result<(), CommandError> {
    match read(cx, key, |s| s.group(group).is_some())? {
        Some(true) => Ok(()),
        _ => Err(no_key_or_group(key, group)),
    }
}

fn no_key_or_group(key: &[u8], group: &[u8]) -> CommandError {
    CommandError::Other(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        args::text(key),
        args::text(group)
    ))
}

fn no_group_for_key(group: &[u8], key: &[u8]) -> CommandError {
    CommandError::Other(format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        args::text(group),
        args::text(key)
    ))
}

/// Redis's `addReplySubcommandSyntaxError`.
fn subcommand_syntax(a: &[Bytes]) -> CommandError {
    let sub = String::from_utf8_lossy(&a[1][..a[1].len().min(128)]).into_owned();
    CommandError::err(format!(
        "unknown subcommand or wrong number of arguments for '{sub}'. Try {} HELP.",
        args::text(&a[0]).to_ascii_uppercase()
    ))
}

/// Runs `f` on the stream at `key`, looked up for reading (a hit or a miss is counted).
/// `None` when the key does not exist; `WRONGTYPE` when it holds something else.
fn read<R>(
    cx: &mut Cx<'_>,
    key: &[u8],
    f: impl FnOnce(&Stream) -> R,
) -> Result<Option<R>, CommandError> {
    let db = cx.dbi();
    let touch = !cx.client.no_touch;
    match cx.db()?.lookup(db, key, touch, true)? {
        None => Ok(None),
        Some(e) => match e.value() {
            Some(Object::Stream(s)) => Ok(Some(f(s))),
            _ => Err(CommandError::WrongType),
        },
    }
}

/// Runs `f` on the stream at `key` through the write path (the key counts as modified).
/// `None` when the key does not exist.
fn write<R>(
    cx: &mut Cx<'_>,
    key: &[u8],
    f: impl FnOnce(&mut Stream) -> Result<R, CommandError>,
) -> Result<Option<R>, CommandError> {
    let db = cx.dbi();
    let Some(mut e) = cx.db()?.write(db, key)? else {
        return Ok(None);
    };
    if !matches!(e.get().value(), Some(Object::Stream(_))) {
        return Err(CommandError::WrongType);
    }
    match e.get_mut().value_mut() {
        Some(Object::Stream(s)) => f(s).map(Some),
        _ => Err(CommandError::WrongType),
    }
}

const INVALID_ID: &str = "Invalid stream ID specified as stream command argument";

/// Parses an ID as Redis's `streamGenericParseIDOrReply`: `ms-seq`, or `ms` alone with the
/// sequence `missing_seq`; `-` and `+` are the smallest and largest IDs unless `strict`.
fn parse_id(arg: &[u8], missing_seq: u64, strict: bool) -> Result<StreamId, CommandError> {
    parse_id_inner(arg, missing_seq, strict, false).map(|(id, _)| id)
}

/// Parses `XADD`'s ID, which may be `ms-*`; returns it and whether the sequence was given.
fn parse_id_seq(arg: &[u8]) -> Result<(StreamId, bool), CommandError> {
    parse_id_inner(arg, 0, true, true)
}

fn parse_id_inner(
    arg: &[u8],
    missing_seq: u64,
    strict: bool,
    seq_star: bool,
) -> Result<(StreamId, bool), CommandError> {
    let invalid = || CommandError::err(INVALID_ID);
    if arg.len() > 127 {
        return Err(invalid());
    }
    // The ID is a C string in Redis: anything after a NUL byte is not seen.
    let arg = &arg[..arg.iter().position(|&b| b == 0).unwrap_or(arg.len())];
    match arg {
        b"-" | b"+" if strict => return Err(invalid()),
        b"-" => return Ok((StreamId::MIN, true)),
        b"+" => return Ok((StreamId::MAX, true)),
        _ => {}
    }
    let (ms, seq) = match arg.iter().position(|&b| b == b'-') {
        Some(dash) => (&arg[..dash], Some(&arg[dash + 1..])),
        None => (arg, None),
    };
    let ms = string2ull(ms).ok_or_else(invalid)?;
    match seq {
        Some(b"*") if seq_star => Ok((StreamId::new(ms, 0), false)),
        Some(seq) => Ok((
            StreamId::new(ms, string2ull(seq).ok_or_else(invalid)?),
            true,
        )),
        None => Ok((StreamId::new(ms, missing_seq), true)),
    }
}

/// Redis's `string2ull`: a canonical non-negative integer, or whatever C's `strtoull` accepts
/// in full (leading blanks, a sign, leading zeros; a `-` negates modulo 2^64).
fn string2ull(s: &[u8]) -> Option<u64> {
    if let Some(n) = args::parse_i64(s) {
        return u64::try_from(n).ok();
    }
    let mut rest = s;
    while let [b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r', tail @ ..] = rest {
        rest = tail;
    }
    let negative = match rest {
        [b'-', tail @ ..] => {
            rest = tail;
            true
        }
        [b'+', tail @ ..] => {
            rest = tail;
            false
        }
        _ => false,
    };
    if rest.is_empty() || !rest.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for d in rest {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if negative { v.wrapping_neg() } else { v })
}

/// Parses a range bound: an ID (strict after `(`), returning it and whether it is exclusive.
fn parse_interval(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), CommandError> {
    if arg.len() > 1 && arg[0] == b'(' {
        Ok((parse_id(&arg[1..], missing_seq, true)?, true))
    } else {
        Ok((parse_id(arg, missing_seq, false)?, false))
    }
}

fn id_frame(id: StreamId) -> Frame {
    Frame::Bulk(Bytes::from(id.to_string()))
}

fn opt_int(v: Option<u64>) -> Frame {
    v.map_or(Frame::Null, |n| Frame::Integer(n as i64))
}

/// An entry as Redis replies with it: its ID, then its fields and values in one array.
fn entry_frame(e: Entry<'_>) -> Frame {
    let mut kv = Vec::with_capacity(e.fields.len() * 2);
    for (f, v) in e.fields {
        kv.push(Frame::Bulk(Bytes::copy_from_slice(f)));
        kv.push(Frame::Bulk(Bytes::copy_from_slice(v)));
    }
    Frame::Array(vec![id_frame(e.id), Frame::Array(kv)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_as_redis_does() {
        assert_eq!(parse_id(b"5", 7, true), Ok(StreamId::new(5, 7)));
        assert_eq!(parse_id(b"5-3", 7, true), Ok(StreamId::new(5, 3)));
        assert_eq!(parse_id(b"-", 0, false), Ok(StreamId::MIN));
        assert!(parse_id(b"+", 0, true).is_err());
        assert!(parse_id(b"5-x", 0, true).is_err());
        assert!(parse_id(b"-1", 0, true).is_err());
        assert_eq!(parse_id(b"007", 0, true), Ok(StreamId::new(7, 0)));
        assert_eq!(parse_id_seq(b"5-*"), Ok((StreamId::new(5, 0), false)));
        assert!(parse_id(b"5-*", 0, true).is_err());
        assert_eq!(string2ull(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(string2ull(b"18446744073709551616"), None);
    }
}
