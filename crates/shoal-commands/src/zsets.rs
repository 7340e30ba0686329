//! Sorted set commands (ZADD, ZRANGE, ZUNIONSTORE, the blocking BZPOPMIN family, ...).
//!
//! Layout, top to bottom: the spec table, the handlers in table order, then the helpers the
//! handlers share (typed lookup and update, range parsing, the generic range walker, replies,
//! the set-algebra engine behind ZUNION/ZINTER/ZDIFF, and popping for the ZPOP family).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use shoal_resp::{Frame, Protocol};
use shoal_storage::notify;
use shoal_storage::types::zset::{Member, ZSet};
use shoal_storage::{glob_match, Entry, Object, TypeLimits};

use crate::args::{self, is, Args, TimeoutUnit};
use crate::cx::{BlockSpec, Cx};
use crate::error::{CmdResult, CommandError};
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
/// `dest numkeys key ...` (the STORE forms).
const DEST_COUNTED: Keys = Keys::Counted {
    numkeys_at: 2,
    dest: true,
};
/// `numkeys key ...`.
const COUNTED: Keys = Keys::Counted {
    numkeys_at: 1,
    dest: false,
};

const fn zset(name: &'static str, arity: i32, handler: crate::spec::Handler) -> CommandSpec {
    CommandSpec::new(name, Group::SortedSet, arity, handler)
}

/// The zsets family.
pub(crate) const COMMANDS: &[CommandSpec] = &[
    zset("bzmpop", -5, bzmpop)
        .flags(Flags::WRITE.with(Flags::BLOCKING))
        .keys(Keys::Counted { numkeys_at: 2, dest: false }, KeyAccess::Pop)
        .doc("Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", "7.0.0"),
    zset("bzpopmax", -3, bzpopmax)
        .flags(Flags::WRITE.with(Flags::FAST).with(Flags::BLOCKING).with(Flags::NOSCRIPT))
        .keys(Keys::Range { first: 1, last: -2, step: 1 }, KeyAccess::Pop)
        .doc("Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.  Deletes the sorted set if the last element was popped.", "5.0.0"),
    zset("bzpopmin", -3, bzpopmin)
        .flags(Flags::WRITE.with(Flags::FAST).with(Flags::BLOCKING).with(Flags::NOSCRIPT))
        .keys(Keys::Range { first: 1, last: -2, step: 1 }, KeyAccess::Pop)
        .doc("Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", "5.0.0"),
    zset("zadd", -4, zadd)
        .flags(WF)
        .keys(ONE, KeyAccess::Update)
        .doc("Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.", "1.2.0"),
    zset("zcard", 2, zcard)
        .flags(RF)
        .keys(ONE, KeyAccess::Meta)
        .doc("Returns the number of members in a sorted set.", "1.2.0"),
    zset("zcount", 4, zcount)
        .flags(RF)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns the count of members in a sorted set that have scores within a range.", "2.0.0"),
    zset("zdiff", -3, zdiff)
        .flags(R)
        .keys(COUNTED, KeyAccess::Read)
        .doc("Returns the difference between multiple sorted sets.", "6.2.0"),
    zset("zdiffstore", -4, zdiffstore)
        .flags(W)
        .keys(DEST_COUNTED, KeyAccess::Overwrite)
        .doc("Stores the difference of multiple sorted sets in a key.", "6.2.0"),
    zset("zincrby", 4, zincrby)
        .flags(WF)
        .keys(ONE, KeyAccess::ReadWrite)
        .doc("Increments the score of a member in a sorted set.", "1.2.0"),
    zset("zinter", -3, zinter)
        .flags(R)
        .keys(COUNTED, KeyAccess::Read)
        .doc("Returns the intersect of multiple sorted sets.", "6.2.0"),
    zset("zintercard", -3, zintercard)
        .flags(R)
        .keys(COUNTED, KeyAccess::Read)
        .doc("Returns the number of members of the intersect of multiple sorted sets.", "7.0.0"),
    zset("zinterstore", -4, zinterstore)
        .flags(W)
        .keys(DEST_COUNTED, KeyAccess::Overwrite)
        .doc("Stores the intersect of multiple sorted sets in a key.", "2.0.0"),
    zset("zlexcount", 4, zlexcount)
        .flags(RF)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns the number of members in a sorted set within a lexicographical range.", "2.8.9"),
    zset("zmpop", -4, zmpop)
        .flags(Flags::WRITE)
        .keys(COUNTED, KeyAccess::Pop)
        .doc("Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped.", "7.0.0"),
    zset("zmscore", -3, zmscore)
        .flags(RF)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns the score of one or more members in a sorted set.", "6.2.0"),
    zset("zpopmax", -2, zpopmax)
        .flags(Flags::WRITE.with(Flags::FAST))
        .keys(ONE, KeyAccess::Pop)
        .doc("Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", "5.0.0"),
    zset("zpopmin", -2, zpopmin)
        .flags(Flags::WRITE.with(Flags::FAST))
        .keys(ONE, KeyAccess::Pop)
        .doc("Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", "5.0.0"),
    zset("zrandmember", -2, zrandmember)
        .flags(R)
        .keys(ONE, KeyAccess::Read)
        .tips(&["nondeterministic_output"])
        .doc("Returns one or more random members from a sorted set.", "6.2.0"),
    zset("zrange", -4, zrange)
        .flags(R)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns members in a sorted set within a range of indexes.", "1.2.0"),
    zset("zrangebylex", -4, zrangebylex)
        .flags(R)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns members in a sorted set within a lexicographical range.", "2.8.9"),
    zset("zrangebyscore", -4, zrangebyscore)
        .flags(R)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns members in a sorted set within a range of scores.", "1.0.5"),
    zset("zrangestore", -5, zrangestore)
        .flags(W)
        .keys(Keys::Range { first: 1, last: 2, step: 1 }, KeyAccess::Overwrite)
        .other_keys(KeyAccess::Read)
        .doc("Stores a range of members from sorted set in a key.", "6.2.0"),
    zset("zrank", -3, zrank)
        .flags(RF)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns the index of a member in a sorted set ordered by ascending scores.", "2.0.0"),
    zset("zrem", -3, zrem)
        .flags(Flags::WRITE.with(Flags::FAST))
        .keys(ONE, KeyAccess::Delete)
        .doc("Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.", "1.2.0"),
    zset("zremrangebylex", 4, zremrangebylex)
        .flags(Flags::WRITE)
        .keys(ONE, KeyAccess::Delete)
        .doc("Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.", "2.8.9"),
    zset("zremrangebyrank", 4, zremrangebyrank)
        .flags(Flags::WRITE)
        .keys(ONE, KeyAccess::Delete)
        .doc("Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.", "2.0.0"),
    zset("zremrangebyscore", 4, zremrangebyscore)
        .flags(Flags::WRITE)
        .keys(ONE, KeyAccess::Delete)
        .doc("Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.", "1.2.0"),
    zset("zrevrange", -4, zrevrange)
        .flags(R)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns members in a sorted set within a range of indexes in reverse order.", "1.2.0"),
    zset("zrevrangebylex", -4, zrevrangebylex)
        .flags(R)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns members in a sorted set within a lexicographical range in reverse order.", "2.8.9"),
    zset("zrevrangebyscore", -4, zrevrangebyscore)
        .flags(R)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns members in a sorted set within a range of scores in reverse order.", "2.2.0"),
    zset("zrevrank", -3, zrevrank)
        .flags(RF)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns the index of a member in a sorted set ordered by descending scores.", "2.0.0"),
    zset("zscan", -3, zscan)
        .flags(R)
        .keys(ONE, KeyAccess::Read)
        .tips(&["nondeterministic_output"])
        .doc("Iterates over members and scores of a sorted set.", "2.8.0"),
    zset("zscore", 3, zscore)
        .flags(RF)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns the score of a member in a sorted set.", "1.2.0"),
    zset("zunion", -3, zunion)
        .flags(R)
        .keys(COUNTED, KeyAccess::Read)
        .doc("Returns the union of multiple sorted sets.", "6.2.0"),
    zset("zunionstore", -4, zunionstore)
        .flags(W)
        .keys(DEST_COUNTED, KeyAccess::Overwrite)
        .doc("Stores the union of multiple sorted sets in a key.", "2.0.0"),
];

// Command: BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]
fn bzmpop(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let deadline = args::block_timeout(&a[1], TimeoutUnit::Seconds, cx.now)?;
    let (keys, max, count) = parse_mpop(a, 2)?;
    match pop_first(cx, &keys, max, count)? {
        Some((key, popped)) => Ok(mpop_reply(key, popped)),
        None => Ok(block(cx, &keys, deadline)),
    }
}

// Command: BZPOPMAX key [key ...] timeout
fn bzpopmax(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    bzpop(cx, a, true)
}

// Command: BZPOPMIN key [key ...] timeout
//
// > ZADD z 1 a 2 b
// (integer) 2
// > BZPOPMIN nothing z 0
// 1) "z"
// 2) "a"
// 3) "1"
fn bzpopmin(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    bzpop(cx, a, false)
}

// Command: ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]
//
// > ZADD z 1 one 2 two
// (integer) 2
// > ZADD z XX CH 3 two 4 four
// (integer) 1
fn zadd(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let mut opts = AddOptions::default();
    let mut i = 2;
    while let Some(opt) = a.get(i) {
        if is(opt, "NX") {
            opts.nx = true;
        } else if is(opt, "XX") {
            opts.xx = true;
        } else if is(opt, "CH") {
            opts.ch = true;
        } else if is(opt, "INCR") {
            opts.incr = true;
        } else if is(opt, "GT") {
            opts.gt = true;
        } else if is(opt, "LT") {
            opts.lt = true;
        } else {
            break;
        }
        i += 1;
    }
    let rest = &a[i..];
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return Err(CommandError::Syntax);
    }
    if opts.nx && opts.xx {
        return Err(CommandError::err(
            "XX and NX options at the same time are not compatible",
        ));
    }
    if (opts.nx && (opts.gt || opts.lt)) || (opts.gt && opts.lt) {
        return Err(CommandError::err(
            "GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if opts.incr && rest.len() > 2 {
        return Err(CommandError::err(
            "INCR option supports a single increment-element pair",
        ));
    }
    // One pair is the common case; it needs no vector.
    if let [score, member] = rest {
        let one = [(
            parse_score(score).ok_or(CommandError::NotFloat)?,
            &member[..],
        )];
        return zadd_generic(cx, &a[1], &one, opts);
    }
    let pairs = rest
        .chunks_exact(2)
        .map(|p| Ok((parse_score(&p[0]).ok_or(CommandError::NotFloat)?, &p[1][..])))
        .collect::<Result<Vec<(f64, &[u8])>, CommandError>>()?;
    zadd_generic(cx, &a[1], &pairs, opts)
}

// Command: ZCARD key
fn zcard(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let z = read_zset(cx, &a[1])?;
    Ok(Frame::Integer(z.map_or(0, |z| z.len() as i64)))
}

// Command: ZCOUNT key min max
//
// > ZADD z 1 a 2 b 3 c
// (integer) 3
// > ZCOUNT z (1 +inf
// (integer) 2
fn zcount(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let range = ScoreRange::parse(&a[2], &a[3])?;
    let z = read_zset(cx, &a[1])?;
    let (lo, hi) = z.map_or((0, 0), |z| range.ranks(z));
    Ok(Frame::Integer((hi - lo) as i64))
}

// Command: ZDIFF numkeys key [key ...] [WITHSCORES]
fn zdiff(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    set_op(cx, a, 1, None, SetOp::Diff)
}

// Command: ZDIFFSTORE destination numkeys key [key ...]
fn zdiffstore(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    set_op(cx, a, 2, Some(&a[1]), SetOp::Diff)
}

// Command: ZINCRBY key increment member
//
// > ZINCRBY z 2.5 m
// "2.5"
fn zincrby(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let by = parse_score(&a[2]).ok_or(CommandError::NotFloat)?;
    let opts = AddOptions {
        incr: true,
        ..AddOptions::default()
    };
    zadd_generic(cx, &a[1], &[(by, &a[3][..])], opts)
}

// Command: ZINTER numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]
fn zinter(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    set_op(cx, a, 1, None, SetOp::Inter)
}

// Command: ZINTERCARD numkeys key [key ...] [LIMIT limit]
fn zintercard(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    set_op(cx, a, 1, None, SetOp::InterCard)
}

// Command: ZINTERSTORE destination numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX]
fn zinterstore(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    set_op(cx, a, 2, Some(&a[1]), SetOp::Inter)
}

// Command: ZLEXCOUNT key min max
fn zlexcount(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let range = LexRange::parse(&a[2], &a[3])?;
    let z = read_zset(cx, &a[1])?;
    let (lo, hi) = z.map_or((0, 0), |z| range.ranks(z));
    Ok(Frame::Integer((hi - lo) as i64))
}

// Command: ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]
//
// > ZADD z 1 a 2 b
// (integer) 2
// > ZMPOP 1 z MAX
// 1) "z"
// 2) 1) 1) "b"
//       2) "2"
fn zmpop(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let (keys, max, count) = parse_mpop(a, 1)?;
    Ok(match pop_first(cx, &keys, max, count)? {
        Some((key, popped)) => mpop_reply(key, popped),
        None => Frame::NullArray,
    })
}

// Command: ZMSCORE key member [member ...]
fn zmscore(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let z = read_zset(cx, &a[1])?;
    Ok(Frame::Array(
        a[2..]
            .iter()
            .map(|m| {
                z.and_then(|z| z.score(m))
                    .map_or(Frame::Null, Frame::Double)
            })
            .collect(),
    ))
}

// Command: ZPOPMAX key [count]
fn zpopmax(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    zpop(cx, a, true)
}

// Command: ZPOPMIN key [count]
//
// > ZADD z 1 a 2 b 3 c
// (integer) 3
// > ZPOPMIN z 2
// 1) "a"
// 2) "1"
// 3) "b"
// 4) "2"
fn zpopmin(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    zpop(cx, a, false)
}

// Command: ZRANDMEMBER key [count [WITHSCORES]]
fn zrandmember(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let resp3 = is_resp3(cx);
    if a.len() == 2 {
        let Some(z) = read_zset(cx, &a[1])? else {
            return Ok(Frame::Null);
        };
        let pick = random() as usize % z.len().max(1);
        return Ok(z
            .iter_from(pick, false)
            .next()
            .map_or(Frame::Null, |(m, _)| Frame::Bulk(Bytes::from(m.to_vec()))));
    }
    let count = args::int(&a[2])?;
    if count == i64::MIN {
        return Err(CommandError::err(
            "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    let withscores = match a.get(3) {
        None => false,
        Some(w) if a.len() == 4 && is(w, "WITHSCORES") => true,
        Some(_) => return Err(CommandError::Syntax),
    };
    if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err(CommandError::err("value is out of range"));
    }
    let Some(z) = read_zset(cx, &a[1])? else {
        return Ok(Frame::Array(Vec::new()));
    };
    let len = z.len();
    let picked: Vec<(Vec<u8>, f64)> = if count < 0 {
        // Repeats allowed: independent draws, capped so a huge count cannot exhaust memory
        // building one reply.
        let n = count.unsigned_abs().min(MAX_RANDOM_REPLY as u64) as usize;
        (0..n)
            .filter_map(|_| {
                z.iter_from(random() as usize % len, false)
                    .next()
                    .map(|(m, s)| (m.to_vec(), s))
            })
            .collect()
    } else if count as usize >= len {
        // The whole set, in the order Redis's set-operation iterator walks it: from the top.
        z.iter_from(len - 1, true)
            .map(|(m, s)| (m.to_vec(), s))
            .collect()
    } else {
        // Distinct members: choose `count` ranks without repetition (Floyd's algorithm), then
        // read them in rank order.
        let count = count as usize;
        let mut ranks = std::collections::BTreeSet::new();
        for j in len - count..len {
            let r = random() as usize % (j + 1);
            if !ranks.insert(r) {
                ranks.insert(j);
            }
        }
        let mut out: Vec<(Vec<u8>, f64)> = ranks
            .into_iter()
            .filter_map(|r| z.iter_from(r, false).next().map(|(m, s)| (m.to_vec(), s)))
            .collect();
        shuffle(&mut out);
        out
    };
    Ok(scored_reply(picked, withscores, resp3))
}

// Command: ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]
//
// > ZADD z 1 a 2 b 3 c
// (integer) 3
// > ZRANGE z (1 +inf BYSCORE WITHSCORES
// 1) "b"
// 2) "2"
// 3) "c"
// 4) "3"
fn zrange(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    range_command(cx, a, 1, None, RangeKind::Auto, None)
}

// Command: ZRANGEBYLEX key min max [LIMIT offset count]
fn zrangebylex(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    range_command(cx, a, 1, None, RangeKind::Lex, Some(false))
}

// Command: ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]
fn zrangebyscore(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    range_command(cx, a, 1, None, RangeKind::Score, Some(false))
}

// Command: ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]
fn zrangestore(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    range_command(cx, a, 2, Some(&a[1]), RangeKind::Auto, None)
}

// Command: ZRANK key member [WITHSCORE]
fn zrank(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    rank_generic(cx, a, false)
}

// Command: ZREM key member [member ...]
//
// > ZADD z 1 a 2 b
// (integer) 2
// > ZREM z a nope
// (integer) 1
fn zrem(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let Some(z) = read_zset_quiet(cx, &a[1])? else {
        return Ok(Frame::Integer(0));
    };
    if !a[2..].iter().any(|m| z.score(m).is_some()) {
        return Ok(Frame::Integer(0));
    }
    let removed = update_zset(cx, &a[1], |z| {
        a[2..].iter().filter(|m| z.remove(m).is_some()).count()
    })?
    .unwrap_or(0);
    if removed > 0 {
        let db = cx.dbi();
        cx.db()?
            .notify_then_del_if_gone(notify::ZSET, "zrem", db, &a[1]);
    }
    Ok(Frame::Integer(removed as i64))
}

// Command: ZREMRANGEBYLEX key min max
fn zremrangebylex(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let range = LexRange::parse(&a[2], &a[3])?;
    remove_ranks(cx, &a[1], "zremrangebylex", |z| range.ranks(z))
}

// Command: ZREMRANGEBYRANK key start stop
fn zremrangebyrank(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let start = args::int(&a[2])?;
    let stop = args::int(&a[3])?;
    remove_ranks(cx, &a[1], "zremrangebyrank", |z| {
        rank_span(start, stop, z.len())
    })
}

// Command: ZREMRANGEBYSCORE key min max
fn zremrangebyscore(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let range = ScoreRange::parse(&a[2], &a[3])?;
    remove_ranks(cx, &a[1], "zremrangebyscore", |z| range.ranks(z))
}

// Command: ZREVRANGE key start stop [WITHSCORES]
fn zrevrange(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    range_command(cx, a, 1, None, RangeKind::Rank, Some(true))
}

// Command: ZREVRANGEBYLEX key max min [LIMIT offset count]
fn zrevrangebylex(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    range_command(cx, a, 1, None, RangeKind::Lex, Some(true))
}

// Command: ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]
fn zrevrangebyscore(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    range_command(cx, a, 1, None, RangeKind::Score, Some(true))
}

// Command: ZREVRANK key member [WITHSCORE]
fn zrevrank(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    rank_generic(cx, a, true)
}

// Command: ZSCAN key cursor [MATCH pattern] [COUNT count]
fn zscan(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let cursor =
        crate::keys::parse_cursor(&a[2]).ok_or_else(|| CommandError::err("invalid cursor"))?;
    let mut count = 10usize;
    let mut pattern: Option<&Bytes> = None;
    let mut opts = Args::new(a, 3);
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
            pattern = Some(opts.next()?);
        } else {
            return Err(CommandError::Syntax);
        }
    }
    let (next, items) = match read_zset(cx, &a[1])? {
        Some(z) => z.scan(cursor, count),
        None => (0, Vec::new()),
    };
    let mut out = Vec::with_capacity(items.len() * 2);
    for (m, s) in items {
        if pattern.is_some_and(|p| &p[..] != b"*" && !glob_match(p, &m, false)) {
            continue;
        }
        out.push(Frame::Bulk(Bytes::from(m)));
        out.push(Frame::Bulk(Bytes::from(d2string(s))));
    }
    Ok(Frame::Array(vec![
        Frame::Bulk(Bytes::from(next.to_string())),
        Frame::Array(out),
    ]))
}

// Command: ZSCORE key member
//
// > ZADD z 1.5 m
// (integer) 1
// > ZSCORE z m
// "1.5"
fn zscore(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let z = read_zset(cx, &a[1])?;
    Ok(z.and_then(|z| z.score(&a[2]))
        .map_or(Frame::Null, Frame::Double))
}

// Command: ZUNION numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]
fn zunion(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    set_op(cx, a, 1, None, SetOp::Union)
}

// Command: ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX]
//
// > ZADD a 1 x 2 y
// (integer) 2
// > ZADD b 10 y
// (integer) 1
// > ZUNIONSTORE out 2 a b WEIGHTS 1 2
// (integer) 2
fn zunionstore(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    set_op(cx, a, 2, Some(&a[1]), SetOp::Union)
}

// ---------------------------------------------------------------------------------------------
// Typed access.

fn zset_of(e: &Entry) -> Result<&ZSet, CommandError> {
    match e.value() {
        Some(Object::ZSet(z)) => Ok(z),
        _ => Err(CommandError::WrongType),
    }
}

/// Looks a sorted set up for reading (counting a hit or miss, touching its access clock).
pub(crate) fn read_zset<'c>(
    cx: &'c mut Cx<'_>,
    key: &[u8],
) -> Result<Option<&'c ZSet>, CommandError> {
    let db = cx.dbi();
    let touch = !cx.client.no_touch;
    match cx.db()?.lookup(db, key, touch, true)? {
        None => Ok(None),
        Some(e) => zset_of(e).map(Some),
    }
}

/// Looks a sorted set up the way a write does first: no hit/miss statistics.
fn read_zset_quiet<'c>(cx: &'c mut Cx<'_>, key: &[u8]) -> Result<Option<&'c ZSet>, CommandError> {
    let db = cx.dbi();
    match cx.db()?.lookup(db, key, true, false)? {
        None => Ok(None),
        Some(e) => zset_of(e).map(Some),
    }
}

/// Modifies an existing sorted set through the write path (which deletes it if left empty);
/// `None` when the key does not exist.
fn update_zset<R>(
    cx: &mut Cx<'_>,
    key: &[u8],
    f: impl FnOnce(&mut ZSet) -> R,
) -> Result<Option<R>, CommandError> {
    let db = cx.dbi();
    let out = cx.db()?.update(db, key, |e| {
        zset_of(e.get())?;
        match e.get_mut().value_mut() {
            Some(Object::ZSet(z)) => Ok(f(z)),
            _ => Err(CommandError::WrongType),
        }
    })?;
    out.transpose()
}

/// Replaces `key` with `z` (deleting the key when `z` is empty), as the STORE commands do.
/// Stores `z` at `key` (deleting the key when `z` is empty), announcing `event` (or `del` for a
/// deletion) when one is given, as the `*STORE` commands do.
pub(crate) fn store(
    cx: &mut Cx<'_>,
    key: &[u8],
    z: ZSet,
    event: Option<&'static str>,
) -> Result<(), CommandError> {
    let db = cx.dbi();
    let l = cx.db()?;
    if z.is_empty() {
        if l.remove(db, key)?.is_some() && event.is_some() {
            l.notify(notify::GENERIC, "del", db, key);
        }
    } else {
        let clock = l.access_clock();
        l.insert(db, Entry::new_object(key, Object::ZSet(z), None, clock))?;
        if let Some(event) = event {
            l.notify(notify::ZSET, event, db, key);
        }
    }
    Ok(())
}

fn limits(cx: &Cx<'_>) -> TypeLimits {
    cx.server.limits().types
}

fn is_resp3(cx: &Cx<'_>) -> bool {
    cx.client.protocol == Protocol::Resp3
}

// ---------------------------------------------------------------------------------------------
// ZADD and ZINCRBY.

/// ZADD's flags (GEOADD passes NX, XX and CH through).
#[derive(Clone, Copy, Default)]
pub(crate) struct AddOptions {
    pub nx: bool,
    pub xx: bool,
    pub ch: bool,
    pub incr: bool,
    pub gt: bool,
    pub lt: bool,
}

/// What adding one pair did.
enum Added {
    New(f64),
    Updated(f64),
    /// Processed without a change (the score was already this): INCR replies it, CH does not
    /// count it.
    Same(f64),
    /// Skipped by NX, XX, GT or LT.
    Nop,
    Nan,
}

fn add_one(z: &mut ZSet, score: f64, member: &[u8], o: AddOptions, l: &TypeLimits) -> Added {
    // Without flags the outcome only depends on the previous score, which the insertion itself
    // reports: one member lookup instead of two.
    if !(o.nx || o.xx || o.incr || o.gt || o.lt) {
        return match z.insert(member, score, l) {
            None => Added::New(score),
            Some(cur) if cur == score => Added::Same(cur),
            Some(_) => Added::Updated(score),
        };
    }
    match z.score(member) {
        Some(cur) => {
            if o.nx {
                return Added::Nop;
            }
            let score = if o.incr { score + cur } else { score };
            if score.is_nan() {
                return Added::Nan;
            }
            if (o.lt && score >= cur) || (o.gt && score <= cur) {
                return Added::Nop;
            }
            // -0 and 0 compare equal, so (as in Redis) they do not count as a change.
            if score != cur {
                z.insert(member, score, l);
                Added::Updated(score)
            } else {
                Added::Same(cur)
            }
        }
        None if o.xx => Added::Nop,
        None => {
            z.insert(member, score, l);
            Added::New(score)
        }
    }
}

pub(crate) fn zadd_generic(
    cx: &mut Cx<'_>,
    key: &[u8],
    pairs: &[(f64, &[u8])],
    o: AddOptions,
) -> CmdResult {
    let l = limits(cx);
    let mut added = 0;
    let mut updated = 0;
    let mut last: Option<f64> = None;
    let mut nan = false;
    let mut apply = |z: &mut ZSet| {
        for &(score, member) in pairs {
            match add_one(z, score, member, o, &l) {
                Added::New(s) => {
                    added += 1;
                    last = Some(s);
                }
                Added::Updated(s) => {
                    updated += 1;
                    last = Some(s);
                }
                Added::Same(s) => last = Some(s),
                Added::Nop => {}
                Added::Nan => {
                    nan = true;
                    return;
                }
            }
        }
    };
    // One lookup when the key exists, the common case: the update finds it or reports it
    // missing.
    if update_zset(cx, key, &mut apply)?.is_none() && !o.xx {
        let mut z = ZSet::new();
        apply(&mut z);
        if !z.is_empty() {
            store(cx, key, z, None)?;
        }
    }
    if nan {
        return Err(CommandError::err("resulting score is not a number (NaN)"));
    }
    if added + updated > 0 {
        cx.notify(notify::ZSET, if o.incr { "zincr" } else { "zadd" }, key);
    }
    Ok(if o.incr {
        last.map_or(Frame::Null, Frame::Double)
    } else if o.ch {
        Frame::Integer(added + updated)
    } else {
        Frame::Integer(added)
    })
}

// ---------------------------------------------------------------------------------------------
// Ranks and ranges.

/// A score interval: `(1` is exclusive, `-inf`/`+inf` unbounded.
#[derive(Clone, Copy, Debug)]
struct ScoreRange {
    min: f64,
    minex: bool,
    max: f64,
    maxex: bool,
}

impl ScoreRange {
    fn parse(min: &[u8], max: &[u8]) -> Result<ScoreRange, CommandError> {
        let bad = || CommandError::err("min or max is not a float");
        let (min, minex) = parse_bound(min).ok_or_else(bad)?;
        let (max, maxex) = parse_bound(max).ok_or_else(bad)?;
        Ok(ScoreRange {
            min,
            minex,
            max,
            maxex,
        })
    }

    fn below_min(&self, s: f64) -> bool {
        if self.minex {
            s <= self.min
        } else {
            s < self.min
        }
    }

    fn within_max(&self, s: f64) -> bool {
        if self.maxex {
            s < self.max
        } else {
            s <= self.max
        }
    }

    fn is_empty(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.minex || self.maxex))
    }

    /// The rank interval `lo..hi` of the elements inside.
    fn ranks(&self, z: &ZSet) -> (usize, usize) {
        if self.is_empty() {
            return (0, 0);
        }
        let lo = z.rank_where(|s, _| self.below_min(s));
        let hi = z.rank_where(|s, _| self.within_max(s));
        (lo, hi.max(lo))
    }
}

/// One score bound as Redis's `zslParseRange` reads it with `strtod`: optional `(`, leading
/// blanks allowed, an empty number is 0, overflow is infinity, NaN is refused.
fn parse_bound(arg: &[u8]) -> Option<(f64, bool)> {
    let (text, ex) = match arg.split_first() {
        Some((b'(', rest)) => (rest, true),
        _ => (arg, false),
    };
    let s = std::str::from_utf8(text).ok()?;
    let s = s.trim_start_matches(|c: char| c.is_ascii_whitespace());
    if s.is_empty() && !text.is_empty() {
        return None;
    }
    if s.is_empty() {
        return Some((0.0, ex));
    }
    let lower = s.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    let negative = lower.starts_with('-');
    let v = if unsigned == "inf" || unsigned == "infinity" {
        if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        }
    } else if let Some(v) = parse_hex(&lower) {
        v
    } else {
        if !lower
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'))
        {
            return None;
        }
        lower.parse::<f64>().ok()?
    };
    (!v.is_nan()).then_some((v, ex))
}

/// A score, weight or increment as Redis's `string2d` reads it: `strtod` with no leading blank,
/// nothing left over, no overflow or underflow, not NaN. `strtod` also reads hexadecimal.
fn parse_score(arg: &[u8]) -> Option<f64> {
    if let Some(v) = parse_small_int(arg) {
        return Some(v);
    }
    args::parse_f64(arg).or_else(|| {
        let s = std::str::from_utf8(arg).ok()?.to_ascii_lowercase();
        parse_hex(&s).filter(|v| v.is_finite())
    })
}

/// The common score: an optional sign and at most 15 decimal digits, which `strtod` reads as
/// exactly that integer (a double holds it exactly); `None` for anything else.
fn parse_small_int(arg: &[u8]) -> Option<f64> {
    let (negative, digits) = match arg.split_first()? {
        (b'-', rest) => (true, rest),
        (b'+', rest) => (false, rest),
        _ => (false, arg),
    };
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let mut v = 0u64;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(b - b'0');
    }
    // Negating keeps `-0` a negative zero, as `strtod` reads it.
    let v = v as f64;
    Some(if negative { -v } else { v })
}

/// A C99 hexadecimal float (`0x1.8p3`, `-0x10`), as `strtod` accepts it.
fn parse_hex(s: &str) -> Option<f64> {
    let (negative, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let rest = rest.strip_prefix("0x")?;
    let (mantissa, exp) = match rest.split_once('p') {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + c.to_digit(16)? as f64;
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += c.to_digit(16)? as f64 * scale;
        scale /= 16.0;
    }
    let v = v * 2f64.powi(exp);
    Some(if negative { -v } else { v })
}

/// One end of a lex interval.
#[derive(Clone, Debug)]
enum Lex {
    /// `-`
    Min,
    /// `+`
    Max,
    /// `[x` or `(x`
    Value(Bytes, bool),
}

#[derive(Clone, Debug)]
struct LexRange {
    min: Lex,
    max: Lex,
}

impl LexRange {
    fn parse(min: &Bytes, max: &Bytes) -> Result<LexRange, CommandError> {
        let item = |a: &Bytes| -> Option<Lex> {
            match a.first()? {
                b'+' if a.len() == 1 => Some(Lex::Max),
                b'-' if a.len() == 1 => Some(Lex::Min),
                b'(' => Some(Lex::Value(a.slice(1..), true)),
                b'[' => Some(Lex::Value(a.slice(1..), false)),
                _ => None,
            }
        };
        match (item(min), item(max)) {
            (Some(min), Some(max)) => Ok(LexRange { min, max }),
            _ => Err(CommandError::err("min or max not valid string range item")),
        }
    }

    fn below_min(&self, m: Member<'_>) -> bool {
        match &self.min {
            Lex::Min => false,
            Lex::Max => true,
            Lex::Value(v, ex) => {
                let o = m.cmp_bytes(v);
                o.is_lt() || (*ex && o.is_eq())
            }
        }
    }

    fn within_max(&self, m: Member<'_>) -> bool {
        match &self.max {
            Lex::Min => false,
            Lex::Max => true,
            Lex::Value(v, ex) => {
                let o = m.cmp_bytes(v);
                o.is_lt() || (!*ex && o.is_eq())
            }
        }
    }

    fn is_empty(&self) -> bool {
        match (&self.min, &self.max) {
            (Lex::Max, _) | (_, Lex::Min) => true,
            (Lex::Min, _) | (_, Lex::Max) => false,
            (Lex::Value(a, aex), Lex::Value(b, bex)) => a > b || (a == b && (*aex || *bex)),
        }
    }

    fn ranks(&self, z: &ZSet) -> (usize, usize) {
        if self.is_empty() {
            return (0, 0);
        }
        let lo = z.rank_where(|_, m| self.below_min(m));
        let hi = z.rank_where(|_, m| self.within_max(m));
        (lo, hi.max(lo))
    }
}

/// `start..=stop` rank indexes (negative from the end) as a clamped half-open interval.
fn rank_span(start: i64, stop: i64, len: usize) -> (usize, usize) {
    let len = len as i64;
    let start = if start < 0 { start + len } else { start }.max(0);
    let stop = if stop < 0 { stop + len } else { stop };
    if start > stop || start >= len {
        return (0, 0);
    }
    (start as usize, (stop.min(len - 1) + 1) as usize)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeKind {
    Auto,
    Rank,
    Score,
    Lex,
}

/// ZRANGE and its older forms. `src` is the index of the source key; `dst` is the STORE
/// destination; `rev` is fixed by the older commands and `None` when `REV` may be given.
fn range_command(
    cx: &mut Cx<'_>,
    a: &[Bytes],
    src: usize,
    dst: Option<&Bytes>,
    kind: RangeKind,
    rev: Option<bool>,
) -> CmdResult {
    let mut kind = kind;
    let mut reverse = rev.unwrap_or(false);
    let mut withscores = false;
    let mut limit: Option<(i64, i64)> = None;
    let mut j = src + 3;
    while j < a.len() {
        let opt = &a[j];
        let left = a.len() - j - 1;
        if dst.is_none() && is(opt, "WITHSCORES") {
            withscores = true;
        } else if is(opt, "LIMIT") && left >= 2 {
            limit = Some((args::int(&a[j + 1])?, args::int(&a[j + 2])?));
            j += 2;
        } else if rev.is_none() && is(opt, "REV") {
            reverse = true;
        } else if kind == RangeKind::Auto && is(opt, "BYLEX") {
            kind = RangeKind::Lex;
        } else if kind == RangeKind::Auto && is(opt, "BYSCORE") {
            kind = RangeKind::Score;
        } else {
            return Err(CommandError::Syntax);
        }
        j += 1;
    }
    if kind == RangeKind::Auto {
        kind = RangeKind::Rank;
    }
    if limit.is_some() && kind == RangeKind::Rank {
        return Err(CommandError::err(
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && kind == RangeKind::Lex {
        return Err(CommandError::err(
            "syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (lo_arg, hi_arg) = if reverse && kind != RangeKind::Rank {
        (&a[src + 2], &a[src + 1])
    } else {
        (&a[src + 1], &a[src + 2])
    };
    enum Parsed {
        Rank(i64, i64),
        Score(ScoreRange),
        Lex(LexRange),
    }
    let parsed = match kind {
        RangeKind::Score => Parsed::Score(ScoreRange::parse(lo_arg, hi_arg)?),
        RangeKind::Lex => Parsed::Lex(LexRange::parse(lo_arg, hi_arg)?),
        _ => Parsed::Rank(args::int(lo_arg)?, args::int(hi_arg)?),
    };
    let resp3 = is_resp3(cx);
    let walk = read_zset(cx, &a[src])?.and_then(|z| {
        let (lo, hi) = match &parsed {
            Parsed::Rank(start, stop) => rank_span(*start, *stop, z.len()),
            Parsed::Score(r) => r.ranks(z),
            Parsed::Lex(r) => r.ranks(z),
        };
        // Rank ranges count from the top when reversed; score and lex ranges select the
        // same elements either way and only walk them backwards.
        let (lo, hi) = if reverse && matches!(parsed, Parsed::Rank(..)) {
            (z.len() - hi, z.len() - lo)
        } else {
            (lo, hi)
        };
        match &parsed {
            // Redis walks a lex range from its first element while elements stay below the
            // maximum; with mixed scores (where lex ranges are undefined) that stops at the
            // first element past it, which the walk below reproduces.
            Parsed::Lex(r) if !reverse && lo < hi => {
                walk_range(z, lo, z.len(), false, limit, Some(r))
            }
            _ => walk_range(z, lo, hi, reverse, limit, None),
        }
    });
    match dst {
        Some(dst) => {
            let items: Vec<(Vec<u8>, f64)> = walk
                .into_iter()
                .flat_map(|(_, it)| it)
                .map(|(m, s)| (m.to_vec(), s))
                .collect();
            let l = limits(cx);
            let mut z = ZSet::new();
            for (m, s) in &items {
                z.insert(m, *s, &l);
            }
            let n = z.len();
            store(cx, dst, z, Some("zrangestore"))?;
            Ok(Frame::Integer(n as i64))
        }
        None => Ok(match walk {
            None => Frame::Array(Vec::new()),
            Some((n, it)) => range_reply(it, n, withscores, resp3),
        }),
    }
}

/// Walks the elements of ranks `lo..hi`, ascending or descending, after `LIMIT offset count`
/// (a negative offset selects nothing, a negative count means all); a lex range `upto` stops
/// the walk at the first element past its maximum. Gives at most the returned number of
/// elements; `None` when the range selects nothing.
fn walk_range<'z>(
    z: &'z ZSet,
    lo: usize,
    hi: usize,
    reverse: bool,
    limit: Option<(i64, i64)>,
    upto: Option<&'z LexRange>,
) -> Option<(usize, impl Iterator<Item = (Member<'z>, f64)> + 'z)> {
    let (offset, count) = limit.unwrap_or((0, -1));
    if offset < 0 || lo >= hi {
        return None;
    }
    let span = hi - lo;
    let offset = (offset as u64).min(span as u64) as usize;
    let take = if count < 0 {
        span - offset
    } else {
        (count as u64).min((span - offset) as u64) as usize
    };
    if take == 0 {
        return None;
    }
    let start = if reverse {
        hi - 1 - offset
    } else {
        lo + offset
    };
    let it = z
        .iter_from(start, reverse)
        .take(take)
        .take_while(move |(m, _)| upto.is_none_or(|r| r.within_max(*m)));
    Some((take, it))
}

/// A range's reply built straight from the walk, one bulk per member (the `n` the walk may
/// give sizes the array): members alone, or with scores, flat in RESP2 and as pairs in RESP3.
/// (Slicing one shared buffer instead of copying each member was measured slower: every
/// slice of a `Bytes` costs more than a small allocation.)
fn range_reply<'z>(
    it: impl Iterator<Item = (Member<'z>, f64)>,
    n: usize,
    withscores: bool,
    resp3: bool,
) -> Frame {
    let per = if withscores && !resp3 { 2 } else { 1 };
    let mut out = Vec::with_capacity(n * per);
    for (m, s) in it {
        let m = Frame::Bulk(match m {
            Member::Bytes(b) => Bytes::copy_from_slice(b),
            Member::Int(_) => Bytes::from(m.to_vec()),
        });
        if !withscores {
            out.push(m);
        } else if resp3 {
            out.push(Frame::Array(vec![m, Frame::Double(s)]));
        } else {
            out.push(m);
            out.push(Frame::Double(s));
        }
    }
    Frame::Array(out)
}

fn rank_generic(cx: &mut Cx<'_>, a: &[Bytes], reverse: bool) -> CmdResult {
    let withscore = match a.get(3) {
        None => false,
        Some(w) if a.len() == 4 && is(w, "WITHSCORE") => true,
        Some(_) => return Err(CommandError::Syntax),
    };
    let Some(z) = read_zset(cx, &a[1])? else {
        return Ok(if withscore {
            Frame::NullArray
        } else {
            Frame::Null
        });
    };
    let len = z.len();
    Ok(match z.rank(&a[2]) {
        None if withscore => Frame::NullArray,
        None => Frame::Null,
        Some((r, s)) => {
            let r = if reverse { len - 1 - r } else { r } as i64;
            if withscore {
                Frame::Array(vec![Frame::Integer(r), Frame::Double(s)])
            } else {
                Frame::Integer(r)
            }
        }
    })
}

/// ZREMRANGEBY*: removes the ranks `ranks` picks; replies with how many went.
fn remove_ranks(
    cx: &mut Cx<'_>,
    key: &[u8],
    event: &'static str,
    ranks: impl Fn(&ZSet) -> (usize, usize),
) -> CmdResult {
    let Some(z) = read_zset_quiet(cx, key)? else {
        return Ok(Frame::Integer(0));
    };
    let (lo, hi) = ranks(z);
    if lo >= hi {
        return Ok(Frame::Integer(0));
    }
    let n = update_zset(cx, key, |z| z.remove_ranks(lo, hi))?.unwrap_or(0);
    if n > 0 {
        let db = cx.dbi();
        cx.db()?
            .notify_then_del_if_gone(notify::ZSET, event, db, key);
    }
    Ok(Frame::Integer(n as i64))
}

/// Members, or members with scores: flat in RESP2, [member, score] pairs in RESP3.
fn scored_reply(items: Vec<(Vec<u8>, f64)>, withscores: bool, resp3: bool) -> Frame {
    if !withscores {
        return Frame::Array(
            items
                .into_iter()
                .map(|(m, _)| Frame::Bulk(Bytes::from(m)))
                .collect(),
        );
    }
    if resp3 {
        return Frame::Array(
            items
                .into_iter()
                .map(|(m, s)| Frame::Array(vec![Frame::Bulk(Bytes::from(m)), Frame::Double(s)]))
                .collect(),
        );
    }
    let mut out = Vec::with_capacity(items.len() * 2);
    for (m, s) in items {
        out.push(Frame::Bulk(Bytes::from(m)));
        out.push(Frame::Double(s));
    }
    Frame::Array(out)
}

/// A score as Redis's `d2string` writes it (ZSCAN): integers in plain digits while they fit a
/// `long long` exactly, `-0` for negative zero, else `%.17g`.
fn d2string(s: f64) -> Vec<u8> {
    if s == 0.0 {
        return if s.is_sign_negative() {
            b"-0".to_vec()
        } else {
            b"0".to_vec()
        };
    }
    let half = (i64::MAX / 2) as f64;
    if s.is_finite() && s >= -half && s <= half && s.fract() == 0.0 {
        return (s as i64).to_string().into_bytes();
    }
    shoal_resp::format_double(s).as_bytes().to_vec()
}

// ---------------------------------------------------------------------------------------------
// ZUNION, ZINTER, ZDIFF and their STORE and CARD forms.

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    InterCard,
    Diff,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    fn apply(self, acc: f64, v: f64) -> f64 {
        match self {
            Aggregate::Sum => {
                let s = acc + v;
                // inf + -inf: Redis stores 0 rather than NaN.
                if s.is_nan() {
                    0.0
                } else {
                    s
                }
            }
            Aggregate::Min => acc.min(v),
            Aggregate::Max => acc.max(v),
        }
    }
}

fn set_op(
    cx: &mut Cx<'_>,
    a: &[Bytes],
    numkeys_at: usize,
    dst: Option<&Bytes>,
    op: SetOp,
) -> CmdResult {
    let n = args::int(&a[numkeys_at])?;
    if n < 1 {
        let name = String::from_utf8_lossy(&a[0]).to_lowercase();
        return Err(CommandError::err(format!(
            "at least 1 input key is needed for '{name}' command"
        )));
    }
    let first = numkeys_at + 1;
    if n as u64 > (a.len() - first) as u64 {
        return Err(CommandError::Syntax);
    }
    let n = n as usize;
    // Inputs are read (and type-checked) before the options are parsed, as Redis does.
    let mut inputs: Vec<Vec<(Vec<u8>, f64)>> = Vec::with_capacity(n);
    for key in &a[first..first + n] {
        inputs.push(match read_zset(cx, key)? {
            Some(z) => z
                .iter_from(0, false)
                .map(|(m, s)| (m.to_vec(), s))
                .collect(),
            None => Vec::new(),
        });
    }
    let mut weights = vec![1.0f64; n];
    let mut aggregate = Aggregate::Sum;
    let mut withscores = false;
    let mut limit = 0usize;
    let mut j = first + n;
    let card = op == SetOp::InterCard;
    while j < a.len() {
        let remaining = a.len() - j;
        let opt = &a[j];
        if op != SetOp::Diff && !card && remaining > n && is(opt, "WEIGHTS") {
            for (w, arg) in weights.iter_mut().zip(&a[j + 1..j + 1 + n]) {
                *w = parse_score(arg)
                    .ok_or_else(|| CommandError::err("weight value is not a float"))?;
            }
            j += n + 1;
        } else if op != SetOp::Diff && !card && remaining >= 2 && is(opt, "AGGREGATE") {
            let v = &a[j + 1];
            aggregate = if is(v, "SUM") {
                Aggregate::Sum
            } else if is(v, "MIN") {
                Aggregate::Min
            } else if is(v, "MAX") {
                Aggregate::Max
            } else {
                return Err(CommandError::Syntax);
            };
            j += 2;
        } else if dst.is_none() && !card && is(opt, "WITHSCORES") {
            withscores = true;
            j += 1;
        } else if card && remaining >= 2 && is(opt, "LIMIT") {
            let v = args::int(&a[j + 1])?;
            if v < 0 {
                return Err(CommandError::err("LIMIT can't be negative"));
            }
            limit = v as usize;
            j += 2;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    let weighted = |s: f64, w: f64| {
        let v = s * w;
        if v.is_nan() {
            0.0
        } else {
            v
        }
    };
    let mut result: Vec<(Vec<u8>, f64)> = match op {
        SetOp::Union => {
            let mut acc: HashMap<Vec<u8>, f64> = HashMap::new();
            for (input, w) in inputs.into_iter().zip(&weights) {
                for (m, s) in input {
                    let v = weighted(s, *w);
                    acc.entry(m)
                        .and_modify(|cur| *cur = aggregate.apply(*cur, v))
                        .or_insert(v);
                }
            }
            acc.into_iter().collect()
        }
        SetOp::Inter | SetOp::InterCard => {
            // Walk the smallest input and probe the others, like Redis.
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by_key(|&i| inputs[i].len());
            let maps: Vec<HashMap<&[u8], f64>> = inputs
                .iter()
                .map(|v| v.iter().map(|(m, s)| (&m[..], *s)).collect())
                .collect();
            let mut out = Vec::new();
            let smallest = order[0];
            'members: for (m, s) in &inputs[smallest] {
                let mut v = weighted(*s, weights[smallest]);
                for &i in &order[1..] {
                    match maps[i].get(&m[..]) {
                        Some(other) => v = aggregate.apply(v, weighted(*other, weights[i])),
                        None => continue 'members,
                    }
                }
                out.push((m.clone(), v));
                if card && limit > 0 && out.len() >= limit {
                    break;
                }
            }
            out
        }
        SetOp::Diff => {
            let others: std::collections::HashSet<&[u8]> = inputs[1..]
                .iter()
                .flat_map(|v| v.iter().map(|(m, _)| &m[..]))
                .collect();
            inputs[0]
                .iter()
                .filter(|(m, _)| !others.contains(&m[..]))
                .cloned()
                .collect()
        }
    };
    if card {
        return Ok(Frame::Integer(result.len() as i64));
    }
    result.sort_by(|x, y| {
        x.1.partial_cmp(&y.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| x.0.cmp(&y.0))
    });
    match dst {
        Some(dst) => {
            let l = limits(cx);
            let mut z = ZSet::new();
            for (m, s) in &result {
                z.insert(m, *s, &l);
            }
            let len = z.len();
            let event = match op {
                SetOp::Union => "zunionstore",
                SetOp::Inter | SetOp::InterCard => "zinterstore",
                SetOp::Diff => "zdiffstore",
            };
            store(cx, dst, z, Some(event))?;
            Ok(Frame::Integer(len as i64))
        }
        None => Ok(scored_reply(result, withscores, is_resp3(cx))),
    }
}

// ---------------------------------------------------------------------------------------------
// Popping.

fn zpop(cx: &mut Cx<'_>, a: &[Bytes], max: bool) -> CmdResult {
    if a.len() > 3 {
        return Err(CommandError::Syntax);
    }
    let count = match a.get(2) {
        None => None,
        Some(c) => match args::parse_i64(c) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return Err(CommandError::err("value is out of range, must be positive")),
        },
    };
    let resp3 = is_resp3(cx);
    if count == Some(0) {
        // Nothing to pop, but a key of another type is still an error.
        read_zset_quiet(cx, &a[1])?;
        return Ok(Frame::Array(Vec::new()));
    }
    // A missing key pops nothing, which replies an empty array too.
    let popped = pop_from(cx, &a[1], max, count.unwrap_or(1))?;
    Ok(scored_reply(popped, true, resp3 && count.is_some()))
}

/// Members with their scores, in reply order.
type Scored = Vec<(Vec<u8>, f64)>;

/// Pops up to `count` elements from the low (or high, `max`) end of the sorted set at `key`.
fn pop_from(
    cx: &mut Cx<'_>,
    key: &[u8],
    max: bool,
    count: usize,
) -> Result<Vec<(Vec<u8>, f64)>, CommandError> {
    let popped = update_zset(cx, key, |z| {
        let n = count.min(z.len());
        let mut items = Vec::with_capacity(n);
        while items.len() < n {
            match z.pop(max) {
                Some(item) => items.push(item),
                None => break,
            }
        }
        items
    })?;
    let popped = popped.unwrap_or_default();
    if !popped.is_empty() {
        let db = cx.dbi();
        let event = if max { "zpopmax" } else { "zpopmin" };
        cx.db()?
            .notify_then_del_if_gone(notify::ZSET, event, db, key);
    }
    Ok(popped)
}

/// The first non-empty sorted set among `keys`, popped; `None` when all are missing.
fn pop_first(
    cx: &mut Cx<'_>,
    keys: &[Bytes],
    max: bool,
    count: usize,
) -> Result<Option<(Bytes, Scored)>, CommandError> {
    for key in keys {
        let found = read_zset_quiet(cx, key).map(|z| z.map(|_| ()));
        if cx.client.skip_wrong_type(found)?.is_some() {
            return Ok(Some((key.clone(), pop_from(cx, key, max, count)?)));
        }
    }
    Ok(None)
}

/// Parses `numkeys key... MIN|MAX [COUNT n]` starting at `numkeys_at`.
fn parse_mpop(a: &[Bytes], numkeys_at: usize) -> Result<(Vec<Bytes>, bool, usize), CommandError> {
    let n = args::int(&a[numkeys_at])?;
    if n < 1 {
        return Err(CommandError::err("numkeys should be greater than 0"));
    }
    let where_at = (numkeys_at as u64).saturating_add(n as u64) + 1;
    if where_at >= a.len() as u64 {
        return Err(CommandError::Syntax);
    }
    let where_at = where_at as usize;
    let max = if is(&a[where_at], "MIN") {
        false
    } else if is(&a[where_at], "MAX") {
        true
    } else {
        return Err(CommandError::Syntax);
    };
    let mut count = None;
    let mut j = where_at + 1;
    while j < a.len() {
        if count.is_none() && is(&a[j], "COUNT") && j + 1 < a.len() {
            let c = args::int(&a[j + 1])?;
            if c < 1 {
                return Err(CommandError::err("count should be greater than 0"));
            }
            count = Some(c as usize);
            j += 2;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok((
        a[numkeys_at + 1..where_at].to_vec(),
        max,
        count.unwrap_or(1),
    ))
}

/// `[key, [[member, score], ...]]`, in both protocols.
fn mpop_reply(key: Bytes, popped: Vec<(Vec<u8>, f64)>) -> Frame {
    Frame::Array(vec![Frame::Bulk(key), scored_reply(popped, true, true)])
}

fn bzpop(cx: &mut Cx<'_>, a: &[Bytes], max: bool) -> CmdResult {
    let last = a.len() - 1;
    let deadline = args::block_timeout(&a[last], TimeoutUnit::Seconds, cx.now)?;
    let keys = &a[1..last];
    match pop_first(cx, keys, max, 1)? {
        Some((key, popped)) => {
            let mut out = vec![Frame::Bulk(key)];
            for (m, s) in popped {
                out.push(Frame::Bulk(Bytes::from(m)));
                out.push(Frame::Double(s));
            }
            Ok(Frame::Array(out))
        }
        None => Ok(block(cx, keys, deadline)),
    }
}

fn block(cx: &mut Cx<'_>, keys: &[Bytes], deadline: Option<u64>) -> Frame {
    let db = cx.dbi();
    cx.client.block(BlockSpec {
        keys: keys.iter().map(|k| (db, k.clone())).collect(),
        deadline,
        timeout_reply: Frame::NullArray,
        args: None,
    })
}

// ---------------------------------------------------------------------------------------------
// Randomness for ZRANDMEMBER.

/// The most elements one `ZRANDMEMBER key -count` reply holds; Redis streams such replies and
/// relies on output buffer limits, Shoal builds them whole, so it caps them.
const MAX_RANDOM_REPLY: usize = 1 << 24;

/// A xorshift generator seeded from the clock, shared by all threads (quality is not a concern,
/// only that replies vary).
fn random() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        x = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9E37_79B9_7F4A_7C15, |d| d.as_nanos() as u64)
            | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    x
}

fn shuffle<T>(v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = random() as usize % (i + 1);
        v.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_integer_scores_parse_like_strtod() {
        for s in [
            "0",
            "-0",
            "+0",
            "7",
            "007",
            "-12",
            "+12",
            "999999999999999",
            "-999999999999999",
        ] {
            let fast = parse_small_int(s.as_bytes()).map(f64::to_bits);
            let slow = args::parse_f64(s.as_bytes()).map(f64::to_bits);
            assert_eq!(fast, slow, "{s}");
        }
        for s in [
            "",
            "-",
            "+",
            "1e3",
            "1.5",
            " 1",
            "1 ",
            "0x10",
            "1000000000000000",
        ] {
            assert_eq!(parse_small_int(s.as_bytes()), None, "{s}");
        }
    }
}
