//! List commands (LPUSH, LRANGE, LMOVE, ..., and the blocking BLPOP family).
//!
//! Layout, top to bottom: the spec table, the handlers in table order, then the list helpers the
//! handlers share (typed lookup, pops, moves, the blocking hand-off, argument parsers).
//!
//! Blocking commands first try to serve like their non-blocking forms. When every key is missing
//! they hand the connection a [`BlockSpec`]; the connection parks the client and runs the command
//! again when one of the keys is written. A key of another type is an error at once, as in Redis.

use bytes::Bytes;
use shoal_resp::Frame;
use shoal_storage::types::list::{End, List};
use shoal_storage::types::pack::Item;
use shoal_storage::{notify, Entry, EntryMut, Object};

use crate::args::{self, is, TimeoutUnit};
use crate::cx::{BlockSpec, Cx};
use crate::error::{CmdResult, CommandError};
use crate::spec::{CommandSpec, Flags, Group, KeyAccess, Keys};

const W: Flags = Flags::WRITE.with(Flags::DENYOOM);
const WF: Flags = W.with(Flags::FAST);
const R: Flags = Flags::READONLY;
const BLOCK: Flags = Flags::WRITE.with(Flags::NOSCRIPT).with(Flags::BLOCKING);
const ONE: Keys = Keys::Range {
    first: 1,
    last: 1,
    step: 1,
};
const TWO: Keys = Keys::Range {
    first: 1,
    last: 2,
    step: 1,
};
/// `BLPOP key [key ...] timeout`: every argument but the first and the last.
const ALL_BUT_LAST: Keys = Keys::Range {
    first: 1,
    last: -2,
    step: 1,
};
/// `LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT n]`.
const MPOP_KEYS: Keys = Keys::Counted {
    numkeys_at: 1,
    dest: false,
};
/// `BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT n]`.
const BMPOP_KEYS: Keys = Keys::Counted {
    numkeys_at: 2,
    dest: false,
};

const fn list(name: &'static str, arity: i32, handler: crate::spec::Handler) -> CommandSpec {
    CommandSpec::new(name, Group::List, arity, handler)
}

/// The lists family.
pub(crate) const COMMANDS: &[CommandSpec] = &[
    list("blmove", 6, blmove)
        .flags(BLOCK.with(Flags::DENYOOM))
        .keys(TWO, KeyAccess::Pop)
        .other_keys(KeyAccess::Insert)
        .doc("Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.", "6.2.0"),
    list("blmpop", -5, blmpop)
        .flags(Flags::WRITE.with(Flags::BLOCKING))
        .keys(BMPOP_KEYS, KeyAccess::Pop)
        .doc("Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", "7.0.0")
        .complexity("O(N+M) where N is the number of provided keys and M is the number of elements returned."),
    list("blpop", -3, blpop)
        .flags(BLOCK)
        .keys(ALL_BUT_LAST, KeyAccess::Pop)
        .doc("Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", "2.0.0")
        .complexity("O(N) where N is the number of provided keys."),
    list("brpop", -3, brpop)
        .flags(BLOCK)
        .keys(ALL_BUT_LAST, KeyAccess::Pop)
        .doc("Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", "2.0.0")
        .complexity("O(N) where N is the number of provided keys."),
    list("brpoplpush", 4, brpoplpush)
        .flags(BLOCK.with(Flags::DENYOOM))
        .keys(TWO, KeyAccess::Pop)
        .other_keys(KeyAccess::Insert)
        .doc("Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.", "2.2.0"),
    list("lindex", 3, lindex)
        .flags(R)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns an element from a list by its index.", "1.0.0")
        .complexity("O(N) where N is the number of elements to traverse to get to the element at index. This makes asking for the first or the last element of the list O(1)."),
    list("linsert", 5, linsert)
        .flags(W)
        .keys(ONE, KeyAccess::Insert)
        .doc("Inserts an element before or after another element in a list.", "2.2.0")
        .complexity("O(N) where N is the number of elements to traverse before seeing the value pivot. This means that inserting somewhere on the left end on the list (head) can be considered O(1) and inserting somewhere on the right end (tail) is O(N)."),
    list("llen", 2, llen)
        .flags(R.with(Flags::FAST))
        .keys(ONE, KeyAccess::Meta)
        .doc("Returns the length of a list.", "1.0.0"),
    list("lmove", 5, lmove)
        .flags(W)
        .keys(TWO, KeyAccess::Pop)
        .other_keys(KeyAccess::Insert)
        .doc("Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.", "6.2.0"),
    list("lmpop", -4, lmpop)
        .flags(Flags::WRITE)
        .keys(MPOP_KEYS, KeyAccess::Pop)
        .doc("Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.", "7.0.0")
        .complexity("O(N+M) where N is the number of provided keys and M is the number of elements returned."),
    list("lpop", -2, lpop)
        .flags(Flags::WRITE.with(Flags::FAST))
        .keys(ONE, KeyAccess::Pop)
        .doc("Returns the first elements in a list after removing it. Deletes the list if the last element was popped.", "1.0.0")
        .complexity("O(N) where N is the number of elements returned"),
    list("lpos", -3, lpos)
        .flags(R)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns the index of matching elements in a list.", "6.0.6")
        .complexity("O(N) where N is the number of elements in the list, for the average case. When searching for elements near the head or the tail of the list, or when the MAXLEN option is provided, the command may run in constant time."),
    list("lpush", -3, lpush)
        .flags(WF)
        .keys(ONE, KeyAccess::Insert)
        .doc("Prepends one or more elements to a list. Creates the key if it doesn't exist.", "1.0.0")
        .complexity("O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments."),
    list("lpushx", -3, lpushx)
        .flags(WF)
        .keys(ONE, KeyAccess::Insert)
        .doc("Prepends one or more elements to a list only when the list exists.", "2.2.0")
        .complexity("O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments."),
    list("lrange", 4, lrange)
        .flags(R)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns a range of elements from a list.", "1.0.0")
        .complexity("O(S+N) where S is the distance of start offset from HEAD for small lists, from nearest end (HEAD or TAIL) for large lists; and N is the number of elements in the specified range."),
    list("lrem", 4, lrem)
        .flags(Flags::WRITE)
        .keys(ONE, KeyAccess::Delete)
        .doc("Removes elements from a list. Deletes the list if the last element was removed.", "1.0.0")
        .complexity("O(N+M) where N is the length of the list and M is the number of elements removed."),
    list("lset", 4, lset)
        .flags(W)
        .keys(ONE, KeyAccess::Update)
        .doc("Sets the value of an element in a list by its index.", "1.0.0")
        .complexity("O(N) where N is the length of the list. Setting either the first or the last element of the list is O(1)."),
    list("ltrim", 4, ltrim)
        .flags(Flags::WRITE)
        .keys(ONE, KeyAccess::Delete)
        .doc("Removes elements from both ends a list. Deletes the list if all elements were trimmed.", "1.0.0")
        .complexity("O(N) where N is the number of elements to be removed by the operation."),
    list("rpop", -2, rpop)
        .flags(Flags::WRITE.with(Flags::FAST))
        .keys(ONE, KeyAccess::Pop)
        .doc("Returns and removes the last elements of a list. Deletes the list if the last element was popped.", "1.0.0")
        .complexity("O(N) where N is the number of elements returned"),
    list("rpoplpush", 3, rpoplpush)
        .flags(W)
        .keys(TWO, KeyAccess::Pop)
        .other_keys(KeyAccess::Insert)
        .doc("Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.", "1.2.0"),
    list("rpush", -3, rpush)
        .flags(WF)
        .keys(ONE, KeyAccess::Insert)
        .doc("Appends one or more elements to a list. Creates the key if it doesn't exist.", "1.0.0")
        .complexity("O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments."),
    list("rpushx", -3, rpushx)
        .flags(WF)
        .keys(ONE, KeyAccess::Insert)
        .doc("Appends an element to a list only when the list exists.", "2.2.0")
        .complexity("O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments."),
];

// Command: BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout
//
// > RPUSH jobs a b
// (integer) 2
// > BLMOVE jobs working LEFT RIGHT 0
// "a"
fn blmove(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let from = end_arg(&a[3])?;
    let to = end_arg(&a[4])?;
    let deadline = args::block_timeout(&a[5], TimeoutUnit::Seconds, cx.now)?;
    blocking_move(cx, &a[1], &a[2], from, to, deadline)
}

// Command: BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]
//
// > RPUSH l a b c
// (integer) 3
// > BLMPOP 0 2 missing l RIGHT COUNT 2
// 1) "l"
// 2) 1) "c"
//    2) "b"
fn blmpop(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let (keys, end, count) = mpop_args(a, 2)?;
    let deadline = args::block_timeout(&a[1], TimeoutUnit::Seconds, cx.now)?;
    if let Some(reply) = mpop(cx, keys, end, count)? {
        return Ok(reply);
    }
    Ok(block(cx, keys, deadline, Frame::NullArray))
}

// Command: BLPOP key [key ...] timeout
//
// > RPUSH l a b
// (integer) 2
// > BLPOP missing l 0
// 1) "l"
// 2) "a"
fn blpop(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    blocking_pop(cx, a, End::Head)
}

// Command: BRPOP key [key ...] timeout
//
// > RPUSH l a b
// (integer) 2
// > BRPOP l 1.5
// 1) "l"
// 2) "b"
fn brpop(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    blocking_pop(cx, a, End::Tail)
}

// Command: BRPOPLPUSH source destination timeout
//
// > RPUSH l a b
// (integer) 2
// > BRPOPLPUSH l l 0
// "b"
fn brpoplpush(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let deadline = args::block_timeout(&a[3], TimeoutUnit::Seconds, cx.now)?;
    blocking_move(cx, &a[1], &a[2], End::Tail, End::Head, deadline)
}

// Command: LINDEX key index
//
// > RPUSH l a b c
// (integer) 3
// > LINDEX l -1
// "c"
// > LINDEX l 3
// (nil)
fn lindex(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let Some(list) = read_list(cx, &a[1])? else {
        return Ok(Frame::Null);
    };
    let index = args::int(&a[2])?;
    let item = absolute_index(index, list.len()).and_then(|i| list.get(i));
    Ok(item.map_or(Frame::Null, bulk))
}

// Command: LINSERT key BEFORE|AFTER pivot element
//
// > RPUSH l a c
// (integer) 2
// > LINSERT l BEFORE c b
// (integer) 3
// > LINSERT l AFTER zz x
// (integer) -1
fn linsert(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let after = if is(&a[2], "after") {
        true
    } else if is(&a[2], "before") {
        false
    } else {
        return Err(CommandError::Syntax);
    };
    let fill = fill(cx);
    let db = cx.dbi();
    let inserted = cx
        .db()?
        .update(db, &a[1], |e| -> Result<i64, CommandError> {
            let Some(place) = list_ref(e)?.find(&a[3]) else {
                return Ok(-1);
            };
            let list = list_mut(e)?;
            list.insert_at(place, &a[4], after, fill);
            Ok(list.len() as i64)
        })?;
    let inserted = inserted.transpose()?.unwrap_or(0);
    if inserted > 0 {
        cx.notify(notify::LIST, "linsert", &a[1]);
    }
    Ok(Frame::Integer(inserted))
}

// Command: LLEN key
//
// > RPUSH l a b
// (integer) 2
// > LLEN l
// (integer) 2
fn llen(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let len = read_list(cx, &a[1])?.map_or(0, List::len);
    Ok(Frame::Integer(len as i64))
}

// Command: LMOVE source destination LEFT|RIGHT LEFT|RIGHT
//
// > RPUSH l a b c
// (integer) 3
// > LMOVE l l LEFT RIGHT
// "a"
// > LRANGE l 0 -1
// 1) "b"
// 2) "c"
// 3) "a"
fn lmove(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let from = end_arg(&a[3])?;
    let to = end_arg(&a[4])?;
    Ok(move_element(cx, &a[1], &a[2], from, to)?.unwrap_or(Frame::Null))
}

// Command: LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]
//
// > RPUSH l a b c
// (integer) 3
// > LMPOP 2 missing l LEFT COUNT 2
// 1) "l"
// 2) 1) "a"
//    2) "b"
fn lmpop(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let (keys, end, count) = mpop_args(a, 1)?;
    Ok(mpop(cx, keys, end, count)?.unwrap_or(Frame::NullArray))
}

// Command: LPOP key [count]
//
// > RPUSH l a b c
// (integer) 3
// > LPOP l
// "a"
// > LPOP l 5
// 1) "b"
// 2) "c"
// > LPOP l 5
// (nil)
fn lpop(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    pop_command(cx, a, End::Head)
}

// Command: LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
//
// > RPUSH l a b c 1 2 3 c c
// (integer) 8
// > LPOS l c RANK -1
// (integer) 7
// > LPOS l c COUNT 0
// 1) (integer) 2
// 2) (integer) 6
// 3) (integer) 7
fn lpos(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let mut rank: i64 = 1;
    let mut count: Option<usize> = None;
    let mut maxlen: usize = 0;
    let mut rest = a[3..].iter();
    while let Some(opt) = rest.next() {
        let value = if rest.len() > 0 { rest.next() } else { None };
        match value {
            Some(v) if is(opt, "rank") => {
                rank = args::int(v)?;
                if rank == 0 {
                    return Err(CommandError::err(
                        "RANK can't be zero: use 1 to start from the first match, 2 from the \
                         second ... or use negative to start from the end of the list",
                    ));
                }
            }
            Some(v) if is(opt, "count") => count = Some(non_negative(v, "COUNT")?),
            Some(v) if is(opt, "maxlen") => maxlen = non_negative(v, "MAXLEN")?,
            _ => return Err(CommandError::Syntax),
        }
    }
    let Some(list) = read_list(cx, &a[1])? else {
        return Ok(if count.is_some() {
            Frame::Array(Vec::new())
        } else {
            Frame::Null
        });
    };
    let from = if rank < 0 { End::Tail } else { End::Head };
    // Redis 7.0 negates a negative rank in a C long, so -2^63 stays negative and then counts
    // as "from the first match".
    let skip = match rank {
        i64::MIN => 0,
        r => (r.unsigned_abs() - 1).try_into().unwrap_or(usize::MAX),
    };
    let mut hits = list.positions(&a[2], from, maxlen).skip(skip);
    Ok(match count {
        None => hits
            .next()
            .map_or(Frame::Null, |i| Frame::Integer(i as i64)),
        Some(n) => {
            let n = if n == 0 { usize::MAX } else { n };
            Frame::Array(hits.take(n).map(|i| Frame::Integer(i as i64)).collect())
        }
    })
}

// Command: LPUSH key element [element ...]
//
// > LPUSH l a b c
// (integer) 3
// > LRANGE l 0 -1
// 1) "c"
// 2) "b"
// 3) "a"
fn lpush(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    push_command(cx, a, End::Head, false)
}

// Command: LPUSHX key element [element ...]
//
// > LPUSHX l a
// (integer) 0
fn lpushx(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    push_command(cx, a, End::Head, true)
}

// Command: LRANGE key start stop
//
// > RPUSH l a b c
// (integer) 3
// > LRANGE l -2 100
// 1) "b"
// 2) "c"
fn lrange(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let start = args::int(&a[2])?;
    let stop = args::int(&a[3])?;
    let Some(list) = read_list(cx, &a[1])? else {
        return Ok(Frame::Array(Vec::new()));
    };
    let Some((first, last)) = clamp_range(start, stop, list.len()) else {
        return Ok(Frame::Array(Vec::new()));
    };
    Ok(Frame::Array(range_bulks(list, first, last - first + 1)))
}

// Command: LREM key count element
//
// > RPUSH l a b a c a
// (integer) 5
// > LREM l -2 a
// (integer) 2
// > LRANGE l 0 -1
// 1) "a"
// 2) "b"
// 3) "c"
fn lrem(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let count = args::int(&a[2])?;
    let from = if count < 0 { End::Tail } else { End::Head };
    let limit = count.unsigned_abs().try_into().unwrap_or(usize::MAX);
    let db = cx.dbi();
    let removed = cx
        .db()?
        .update(db, &a[1], |e| -> Result<usize, CommandError> {
            // Look before changing anything, so a list without the element is left untouched.
            if list_ref(e)?.positions(&a[3], from, 0).next().is_none() {
                return Ok(0);
            }
            Ok(list_mut(e)?.remove_matching(&a[3], limit, from))
        })?;
    let removed = removed.transpose()?.unwrap_or(0);
    if removed > 0 {
        cx.db()?
            .notify_then_del_if_gone(notify::LIST, "lrem", db, &a[1]);
    }
    Ok(Frame::Integer(removed as i64))
}

// Command: LSET key index element
//
// > RPUSH l a b
// (integer) 2
// > LSET l -1 z
// OK
// > LSET l 2 z
// (error) ERR index out of range
fn lset(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let fill = fill(cx);
    let db = cx.dbi();
    let done = cx.db()?.update(db, &a[1], |e| -> CmdResult {
        let len = list_ref(e)?.len();
        let index = args::int(&a[2])?;
        let index =
            absolute_index(index, len).ok_or_else(|| CommandError::err("index out of range"))?;
        list_mut(e)?.set(index, &a[3], fill);
        Ok(Frame::ok())
    })?;
    let reply = done.ok_or(CommandError::NoSuchKey)??;
    cx.notify(notify::LIST, "lset", &a[1]);
    Ok(reply)
}

// Command: LTRIM key start stop
//
// > RPUSH l a b c d
// (integer) 4
// > LTRIM l 1 -2
// OK
// > LRANGE l 0 -1
// 1) "b"
// 2) "c"
fn ltrim(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let start = args::int(&a[2])?;
    let stop = args::int(&a[3])?;
    let db = cx.dbi();
    let done = cx
        .db()?
        .update(db, &a[1], |e| -> Result<(), CommandError> {
            let len = list_ref(e)?.len();
            let (head, tail) = match clamp_range(start, stop, len) {
                Some((first, last)) => (first, len - 1 - last),
                None => (len, 0),
            };
            let list = list_mut(e)?;
            list.remove_head(head);
            list.remove_tail(tail);
            Ok(())
        })?;
    if done.transpose()?.is_some() {
        cx.db()?
            .notify_then_del_if_gone(notify::LIST, "ltrim", db, &a[1]);
    }
    Ok(Frame::ok())
}

// Command: RPOP key [count]
//
// > RPUSH l a b c
// (integer) 3
// > RPOP l 2
// 1) "c"
// 2) "b"
fn rpop(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    pop_command(cx, a, End::Tail)
}

// Command: RPOPLPUSH source destination
//
// > RPUSH l a b
// (integer) 2
// > RPOPLPUSH l other
// "b"
fn rpoplpush(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    Ok(move_element(cx, &a[1], &a[2], End::Tail, End::Head)?.unwrap_or(Frame::Null))
}

// Command: RPUSH key element [element ...]
//
// > RPUSH l a b
// (integer) 2
fn rpush(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    push_command(cx, a, End::Tail, false)
}

// Command: RPUSHX key element [element ...]
//
// > RPUSH l a
// (integer) 1
// > RPUSHX l b
// (integer) 2
fn rpushx(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    push_command(cx, a, End::Tail, true)
}

// Helpers.

/// The node size limit new and growing lists use (`list-max-listpack-size`).
fn fill(cx: &Cx<'_>) -> i64 {
    cx.server.limits().types.list_max_listpack_size
}

/// The list an entry holds, or WRONGTYPE.
fn as_list(entry: &Entry) -> Result<&List, CommandError> {
    match entry.value() {
        Some(Object::List(list)) => Ok(list),
        _ => Err(CommandError::WrongType),
    }
}

/// The list a key being modified holds, read without marking the key changed.
fn list_ref<'e>(e: &'e EntryMut<'_>) -> Result<&'e List, CommandError> {
    as_list(e.get())
}

/// The list a key being modified holds, marking the key changed: call only when really changing
/// it, after [`list_ref`] has checked the type.
fn list_mut<'e>(e: &'e mut EntryMut<'_>) -> Result<&'e mut List, CommandError> {
    match e.get_mut().value_mut() {
        Some(Object::List(list)) => Ok(list),
        _ => Err(CommandError::WrongType),
    }
}

/// Looks a list up for reading (counting a hit or miss, touching its access clock unless the
/// client said `CLIENT NO-TOUCH`); `None` when the key is missing.
fn read_list<'c>(cx: &'c mut Cx<'_>, key: &[u8]) -> Result<Option<&'c List>, CommandError> {
    let db = cx.dbi();
    let touch = !cx.client.no_touch;
    match cx.db()?.lookup(db, key, touch, true)? {
        None => Ok(None),
        Some(e) => as_list(e).map(Some),
    }
}

/// An element as a bulk reply.
fn bulk(item: Item<'_>) -> Frame {
    Frame::Bulk(item.with_text(Bytes::copy_from_slice))
}

/// Up to `count` elements from `index` on as bulk replies whose texts share one buffer: one
/// allocation for the whole reply instead of one per element.
fn range_bulks(list: &List, index: usize, count: usize) -> Vec<Frame> {
    let count = count.min(list.len().saturating_sub(index));
    let mut text = Vec::with_capacity(count.saturating_mul(8).min(1 << 20));
    let mut ends = Vec::with_capacity(count);
    list.for_each_from(index, count, |item| {
        item.with_text(|t| text.extend_from_slice(t));
        ends.push(text.len());
    });
    let text = Bytes::from(text);
    let mut start = 0;
    ends.into_iter()
        .map(|end| {
            let frame = Frame::Bulk(text.slice(start..end));
            start = end;
            frame
        })
        .collect()
}

/// `LPUSH`, `RPUSH` and their `X` forms (which never create the key): the new length.
fn push_command(cx: &mut Cx<'_>, a: &[Bytes], end: End, only_existing: bool) -> CmdResult {
    let fill = fill(cx);
    let values = &a[2..];
    let db = cx.dbi();
    let l = cx.db()?;
    let pushed = l.update(db, &a[1], |e| -> Result<usize, CommandError> {
        list_ref(e)?;
        let list = list_mut(e)?;
        for v in values {
            list.push(end, v, fill);
        }
        Ok(list.len())
    })?;
    let event = match end {
        End::Head => "lpush",
        End::Tail => "rpush",
    };
    let len = match pushed {
        Some(len) => {
            let len = len?;
            l.notify(notify::LIST, event, db, &a[1]);
            len
        }
        None if only_existing => 0,
        None => {
            let mut list = List::new();
            for v in values {
                list.push(end, v, fill);
            }
            let len = list.len();
            let clock = l.access_clock();
            l.insert(
                db,
                Entry::new_object(&a[1], Object::List(Box::new(list)), None, clock),
            )?;
            l.notify(notify::LIST, event, db, &a[1]);
            len
        }
    };
    Ok(Frame::Integer(len as i64))
}

/// `LPOP`/`RPOP key [count]`: a bulk without a count, an array with one. A missing key is a
/// null of the reply's shape; a count of 0 on a list is an empty array.
fn pop_command(cx: &mut Cx<'_>, a: &[Bytes], end: End) -> CmdResult {
    let name = match end {
        End::Head => "lpop",
        End::Tail => "rpop",
    };
    let count = match a.len() {
        2 => None,
        3 => Some(
            args::parse_i64(&a[2])
                .filter(|n| *n >= 0)
                .ok_or_else(|| CommandError::err("value is out of range, must be positive"))?,
        ),
        _ => return Err(CommandError::WrongArity(name.into())),
    };
    if count.is_none() {
        return Ok(pop_one(cx, &a[1], end)?.unwrap_or(Frame::Null));
    }
    let want = count.map_or(1, |n| usize::try_from(n).unwrap_or(usize::MAX));
    match (pop_elements(cx, &a[1], end, want)?, count) {
        (None, None) => Ok(Frame::Null),
        (None, Some(_)) => Ok(Frame::NullArray),
        (Some(mut items), None) => Ok(items.pop().unwrap_or(Frame::Null)),
        (Some(items), Some(_)) => Ok(Frame::Array(items)),
    }
}

/// Pops one element from one end of the list at `key`; `None` when the key is missing. The
/// key is deleted when it empties.
fn pop_one(cx: &mut Cx<'_>, key: &[u8], end: End) -> Result<Option<Frame>, CommandError> {
    let db = cx.dbi();
    let popped = cx
        .db()?
        .update(db, key, |e| -> Result<Option<Frame>, CommandError> {
            if list_ref(e)?.is_empty() {
                return Ok(None);
            }
            let value = list_mut(e)?.pop(end);
            Ok(value.map(|v| Frame::Bulk(Bytes::from(v))))
        })?;
    let popped = popped.transpose()?.flatten();
    if popped.is_some() {
        cx.db()?
            .notify_then_del_if_gone(notify::LIST, pop_event(end), db, key);
    }
    Ok(popped)
}

/// Pops up to `count` elements from one end of the list at `key`, in popping order; `None` when
/// the key is missing. The key is deleted when it empties.
fn pop_elements(
    cx: &mut Cx<'_>,
    key: &[u8],
    end: End,
    count: usize,
) -> Result<Option<Vec<Frame>>, CommandError> {
    let db = cx.dbi();
    let popped = cx
        .db()?
        .update(db, key, |e| -> Result<Vec<Frame>, CommandError> {
            let len = list_ref(e)?.len();
            let n = count.min(len);
            if n == 0 {
                return Ok(Vec::new());
            }
            let list = list_mut(e)?;
            // Read the elements in order, then cut them off whole nodes at a time.
            let items = match end {
                End::Head => range_bulks(list, 0, n),
                End::Tail => list.iter_rev().take(n).map(bulk).collect(),
            };
            match end {
                End::Head => list.remove_head(n),
                End::Tail => list.remove_tail(n),
            }
            Ok(items)
        })?;
    let popped = popped.transpose()?;
    if popped.as_ref().is_some_and(|items| !items.is_empty()) {
        cx.db()?
            .notify_then_del_if_gone(notify::LIST, pop_event(end), db, key);
    }
    Ok(popped)
}

/// The event a pop from `end` announces.
fn pop_event(end: End) -> &'static str {
    match end {
        End::Head => "lpop",
        End::Tail => "rpop",
    }
}

/// `LMPOP`/`BLMPOP`'s pop: from the first of `keys` holding a list, `[key, [elements]]`; `None`
/// when every key is missing.
fn mpop(
    cx: &mut Cx<'_>,
    keys: &[Bytes],
    end: End,
    count: usize,
) -> Result<Option<Frame>, CommandError> {
    for key in keys {
        let popped = pop_elements(cx, key, end, count);
        if let Some(items) = cx.client.skip_wrong_type(popped)? {
            return Ok(Some(Frame::Array(vec![
                Frame::Bulk(key.clone()),
                Frame::Array(items),
            ])));
        }
    }
    Ok(None)
}

/// `BLPOP`/`BRPOP key [key ...] timeout`.
fn blocking_pop(cx: &mut Cx<'_>, a: &[Bytes], end: End) -> CmdResult {
    let last = a.len() - 1;
    let deadline = args::block_timeout(&a[last], TimeoutUnit::Seconds, cx.now)?;
    let keys = &a[1..last];
    for key in keys {
        let popped = pop_elements(cx, key, end, 1);
        if let Some(mut items) = cx.client.skip_wrong_type(popped)? {
            if let Some(value) = items.pop() {
                return Ok(Frame::Array(vec![Frame::Bulk(key.clone()), value]));
            }
        }
    }
    Ok(block(cx, keys, deadline, Frame::NullArray))
}

/// `BLMOVE`/`BRPOPLPUSH`: moves at once when the source exists, else blocks on the source alone
/// (a destination of another type is only reported once there is something to move, as Redis
/// does).
fn blocking_move(
    cx: &mut Cx<'_>,
    source: &Bytes,
    destination: &Bytes,
    from: End,
    to: End,
    deadline: Option<u64>,
) -> CmdResult {
    match move_element(cx, source, destination, from, to)? {
        Some(reply) => Ok(reply),
        // Where nothing may block (MULTI, scripts) Redis answers a move with a null bulk, but
        // times a blocked one out with a null array, as every list command.
        None if cx.client.no_block => Ok(Frame::Null),
        None => Ok(block(
            cx,
            std::slice::from_ref(source),
            deadline,
            Frame::NullArray,
        )),
    }
}

/// Pops from one end of `source` and pushes onto one end of `destination` (which may be the same
/// key), returning the element; `None` when the source is missing. Both keys' types are checked
/// before anything changes.
fn move_element(
    cx: &mut Cx<'_>,
    source: &[u8],
    destination: &[u8],
    from: End,
    to: End,
) -> Result<Option<Frame>, CommandError> {
    let fill = fill(cx);
    let db = cx.dbi();
    let woken = cx.client.woken;
    let l = cx.db()?;
    match l.write(db, source)? {
        None => return Ok(None),
        // A blocked client waits on: the source became another type while it waited.
        Some(e) if woken && list_ref(&e).is_err() => return Ok(None),
        Some(e) => {
            list_ref(&e)?;
        }
    }
    if let Some(e) = l.write(db, destination)? {
        list_ref(&e)?;
    }
    let popped = l.update(db, source, |e| list_mut(e).map(|list| list.pop(from)))?;
    let Some(value) = popped.transpose()?.flatten() else {
        return Ok(None);
    };
    let pushed = l.update(db, destination, |e| {
        list_mut(e).map(|list| list.push(to, &value, fill))
    })?;
    match pushed {
        Some(done) => done?,
        None => {
            // The destination is missing, or was the source and has just been emptied.
            let mut list = List::new();
            list.push(to, &value, fill);
            let clock = l.access_clock();
            l.insert(
                db,
                Entry::new_object(destination, Object::List(Box::new(list)), None, clock),
            )?;
        }
    }
    // As Redis: the push onto the destination, then the pop from the source, then its deletion.
    let push_event = match to {
        End::Head => "lpush",
        End::Tail => "rpush",
    };
    l.notify(notify::LIST, push_event, db, destination);
    l.notify_then_del_if_gone(notify::LIST, pop_event(from), db, source);
    Ok(Some(Frame::Bulk(Bytes::from(value))))
}

/// Parks the client until one of `keys` (in its selected database) is written or `deadline`
/// passes, when it gets `timeout_reply`.
fn block(cx: &mut Cx<'_>, keys: &[Bytes], deadline: Option<u64>, timeout_reply: Frame) -> Frame {
    let db = cx.dbi();
    cx.client.block(BlockSpec {
        keys: keys.iter().map(|k| (db, k.clone())).collect(),
        deadline,
        timeout_reply,
        args: None,
    })
}

/// Parses `LMPOP`/`BLMPOP`'s arguments from `numkeys` on: the keys, the end and the count.
fn mpop_args(a: &[Bytes], numkeys_at: usize) -> Result<(&[Bytes], End, usize), CommandError> {
    let numkeys = args::parse_i64(&a[numkeys_at])
        .filter(|n| *n > 0)
        .ok_or_else(|| CommandError::err("numkeys should be greater than 0"))?;
    let first = numkeys_at + 1;
    let end_at = usize::try_from(numkeys)
        .ok()
        .and_then(|n| first.checked_add(n))
        .filter(|i| *i < a.len())
        .ok_or(CommandError::Syntax)?;
    let end = end_arg(&a[end_at])?;
    let mut count = None;
    let mut rest = a[end_at + 1..].iter();
    while let Some(opt) = rest.next() {
        match (count, rest.len() > 0) {
            (None, true) if is(opt, "count") => {
                let n = rest
                    .next()
                    .and_then(|v| args::parse_i64(v))
                    .filter(|n| *n > 0)
                    .ok_or_else(|| CommandError::err("count should be greater than 0"))?;
                count = Some(usize::try_from(n).unwrap_or(usize::MAX));
            }
            _ => return Err(CommandError::Syntax),
        }
    }
    Ok((&a[first..end_at], end, count.unwrap_or(1)))
}

/// `LEFT` or `RIGHT`.
fn end_arg(arg: &[u8]) -> Result<End, CommandError> {
    if is(arg, "left") {
        Ok(End::Head)
    } else if is(arg, "right") {
        Ok(End::Tail)
    } else {
        Err(CommandError::Syntax)
    }
}

/// A non-negative integer option of `LPOS`, with Redis's message for both bad forms.
fn non_negative(arg: &[u8], option: &str) -> Result<usize, CommandError> {
    args::parse_i64(arg)
        .filter(|n| *n >= 0)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        .ok_or_else(|| CommandError::err(format!("{option} can't be negative")))
}

/// A possibly negative index (-1 is the last element) as an index from the head, if in range.
fn absolute_index(index: i64, len: usize) -> Option<usize> {
    let i = if index < 0 {
        (len as i64).checked_add(index)?
    } else {
        index
    };
    usize::try_from(i).ok().filter(|i| *i < len)
}

/// The inclusive range `start..=stop` of `LRANGE`/`LTRIM` (negative counts from the end, ends
/// clamped) as indexes from the head, or `None` when it selects nothing.
fn clamp_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { len + start } else { start }.max(0);
    let stop = if stop < 0 { len + stop } else { stop };
    if start > stop || start >= len {
        return None;
    }
    Some((start as usize, stop.min(len - 1) as usize))
}

#[cfg(test)]
mod tests {
    //! The blocking hand-off, in process: what a blocking command asks the connection for when
    //! it has nothing to serve. The waiting itself is tested end to end in the server crate.

    use bytes::Bytes;
    use shoal_resp::Frame;
    use shoal_storage::Keyspace;

    use crate::cx::{Action, BlockSpec, ClientState, InertServer};
    use crate::dispatch::Engine;
    use crate::table::CommandTable;

    const NOW_MS: u64 = 1_700_000_000_000;

    /// Runs one command and returns its reply and the action it asked for.
    fn run(ks: &Keyspace, client: &mut ClientState, line: &str) -> (Frame, Option<Action>) {
        let table = CommandTable::new();
        let engine = Engine {
            table: &table,
            ks,
            server: &InertServer,
        };
        let args: Vec<Bytes> = line
            .split_whitespace()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        let ex = engine.execute(client, &args, NOW_MS * 1000);
        (ex.reply, client.action.take())
    }

    fn block(keys: &[(usize, &str)], deadline: Option<u64>, timeout_reply: Frame) -> Action {
        Action::Block(BlockSpec {
            keys: keys
                .iter()
                .map(|(db, k)| (*db, Bytes::copy_from_slice(k.as_bytes())))
                .collect(),
            deadline,
            timeout_reply,
            args: None,
        })
    }

    #[test]
    fn blocking_commands_ask_to_wait_on_their_keys_in_the_selected_database() {
        let ks = Keyspace::new(16, 64, 7);
        let mut client = ClientState::new(1, true);
        run(&ks, &mut client, "SELECT 3");
        let cases = [
            (
                "BLPOP a b 1.5",
                block(&[(3, "a"), (3, "b")], Some(NOW_MS + 1500), Frame::NullArray),
            ),
            ("BRPOP a 0", block(&[(3, "a")], None, Frame::NullArray)),
            (
                "BLMPOP 0.001 2 a b LEFT COUNT 2",
                block(&[(3, "a"), (3, "b")], Some(NOW_MS + 1), Frame::NullArray),
            ),
            (
                "BLMOVE src dst LEFT RIGHT 2",
                block(&[(3, "src")], Some(NOW_MS + 2000), Frame::NullArray),
            ),
            (
                "BRPOPLPUSH src dst 0",
                block(&[(3, "src")], None, Frame::NullArray),
            ),
        ];
        for (line, want) in cases {
            let (_, action) = run(&ks, &mut client, line);
            assert_eq!(action, Some(want), "{line}");
        }
        // Something to serve: no waiting.
        run(&ks, &mut client, "RPUSH b x");
        let (reply, action) = run(&ks, &mut client, "BLPOP a b 0");
        assert_eq!(action, None);
        assert_eq!(
            reply,
            Frame::Array(vec![Frame::Bulk("b".into()), Frame::Bulk("x".into())])
        );
    }

    #[test]
    fn where_nothing_may_block_the_commands_answer_at_once() {
        let ks = Keyspace::new(16, 64, 7);
        let mut client = ClientState::new(1, true);
        client.no_block = true;
        for (line, want) in [
            ("BLPOP a 0", Frame::NullArray),
            ("BLMPOP 0 1 a RIGHT", Frame::NullArray),
            // Redis answers a move that may not block with a null bulk.
            ("BLMOVE a b LEFT LEFT 0", Frame::Null),
            ("BRPOPLPUSH a b 0", Frame::Null),
        ] {
            assert_eq!(run(&ks, &mut client, line), (want, None), "{line}");
        }
    }

    #[test]
    fn expired_lists_are_missing() {
        let ks = Keyspace::new(16, 64, 7);
        let mut client = ClientState::new(1, true);
        run(&ks, &mut client, "RPUSH l a b");
        run(&ks, &mut client, "PEXPIREAT l 1");
        assert_eq!(run(&ks, &mut client, "LLEN l").0, Frame::Integer(0));
        assert_eq!(run(&ks, &mut client, "LPUSHX l a").0, Frame::Integer(0));
        let (_, action) = run(&ks, &mut client, "BLPOP l 0");
        assert_eq!(action, Some(block(&[(0, "l")], None, Frame::NullArray)));
    }
}
