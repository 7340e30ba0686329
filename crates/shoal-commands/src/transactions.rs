//! Transactions: `MULTI`, `EXEC`, `DISCARD`, `WATCH`, `UNWATCH`.
//!
//! While a client is in `MULTI` the dispatcher queues its commands instead of running them
//! (see `dispatch.rs`); `EXEC` passes the keyspace gate alone (its spec is `exclusive`), so no
//! other client's command runs between the queued ones, whatever stripes they touch, and then
//! runs each through the dispatcher's nested path. `WATCH` registers the client in the stripes of
//! its keys; the write path raises the client's token when one of them changes.
//!
//! Layout: the spec table, the handlers, then the state kept on the client.

use std::sync::Arc;

use bytes::Bytes;
use shoal_resp::Frame;
use shoal_storage::{Keyspace, WatchToken};

use crate::cx::Cx;
use crate::dispatch::Engine;
use crate::error::{CmdResult, CommandError};
use crate::spec::{CommandSpec, Flags, Group, KeyAccess, Keys};

/// The flags Redis gives every transaction command but `EXEC`.
const CONTROL: Flags = Flags::NOSCRIPT
    .with(Flags::LOADING)
    .with(Flags::STALE)
    .with(Flags::FAST)
    .with(Flags::ALLOW_BUSY);

const fn tx(name: &'static str, arity: i32, handler: crate::spec::Handler) -> CommandSpec {
    CommandSpec::new(name, Group::Transactions, arity, handler)
}

pub(crate) static COMMANDS: &[CommandSpec] = &[
    tx("discard", 1, discard)
        .flags(CONTROL)
        .doc("Discard all commands issued after MULTI", "2.0.0")
        .complexity("O(N), when N is the number of queued commands"),
    tx("exec", 1, exec)
        .flags(
            Flags::NOSCRIPT
                .with(Flags::LOADING)
                .with(Flags::STALE)
                .with(Flags::SKIP_SLOWLOG),
        )
        .exclusive()
        .doc("Execute all commands issued after MULTI", "1.2.0")
        .complexity("Depends on commands in the transaction"),
    tx("multi", 1, multi)
        .flags(CONTROL)
        .doc("Mark the start of a transaction block", "1.2.0"),
    tx("unwatch", 1, unwatch)
        .flags(CONTROL)
        .doc("Forget about all watched keys", "2.2.0"),
    tx("watch", -2, watch)
        .flags(CONTROL)
        .keys(
            Keys::Range {
                first: 1,
                last: -1,
                step: 1,
            },
            KeyAccess::Meta,
        )
        .doc(
            "Watch the given keys to determine execution of the MULTI/EXEC block",
            "2.2.0",
        )
        .complexity("O(1) for every key."),
];

// Command: DISCARD
// > MULTI        => OK
// > SET k v      => QUEUED
// > DISCARD      => OK
// > GET k        => (nil)
fn discard(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    if cx.client.multi.take().is_none() {
        return Err(CommandError::err("DISCARD without MULTI"));
    }
    unwatch_all(cx.ks, cx.client);
    Ok(Frame::ok())
}

// Command: EXEC
// > MULTI        => OK
// > INCR n       => QUEUED
// > INCR n       => QUEUED
// > EXEC         => 1) (integer) 1  2) (integer) 2
fn exec(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    let Some(multi) = cx.client.multi.take() else {
        return Err(CommandError::err("EXEC without MULTI"));
    };
    // A watched key that expired since it was watched fails the transaction as a change would.
    let dirty = cx.client.watching.as_ref().is_some_and(|w| {
        w.token.is_dirty() || cx.ks.watched_key_expired(&w.keys, &w.token, cx.now)
    });
    unwatch_all(cx.ks, cx.client);
    if multi.aborted {
        return Err(CommandError::ExecAbort);
    }
    if dirty {
        return Ok(Frame::NullArray);
    }
    // Nothing inside a transaction may block: blocking commands answer as if timed out.
    let was_no_block = std::mem::replace(&mut cx.client.no_block, true);
    let engine = Engine {
        table: cx.table,
        ks: cx.ks,
        server: cx.server,
    };
    let mut replies = Vec::with_capacity(multi.queued.len());
    for args in multi.queued {
        let ex = engine.execute_nested(cx.client, &args, cx.now_us);
        replies.push(ex.reply);
        cx.journal.absorb(ex.journal);
        cx.nested.push(crate::dispatch::Nested {
            spec: ex.spec,
            args,
            error: ex.error,
            rejected: ex.rejected,
        });
    }
    cx.client.no_block = was_no_block;
    Ok(Frame::Array(replies))
}

// Command: MULTI
// > MULTI        => OK
// > MULTI        => (error) ERR MULTI calls can not be nested
fn multi(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    if cx.client.multi.is_some() {
        return Err(CommandError::err("MULTI calls can not be nested"));
    }
    cx.client.multi = Some(Multi::default());
    Ok(Frame::ok())
}

// Command: UNWATCH
// > WATCH k      => OK
// > UNWATCH      => OK
fn unwatch(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    unwatch_all(cx.ks, cx.client);
    Ok(Frame::ok())
}

// Command: WATCH
// > WATCH a b    => OK
// > MULTI        => OK
// > WATCH c      => (error) ERR WATCH inside MULTI is not allowed
fn watch(cx: &mut Cx<'_>, args: &[Bytes]) -> CmdResult {
    if cx.client.multi.is_some() {
        return Err(CommandError::err("WATCH inside MULTI is not allowed"));
    }
    let db = cx.dbi();
    let watching = cx.client.watching.get_or_insert_with(Watching::default);
    // Watching more is pointless once a watched key changed: EXEC will fail anyway.
    if watching.token.is_dirty() {
        return Ok(Frame::ok());
    }
    let token = watching.token.clone();
    let mut added = Vec::new();
    for key in &args[1..] {
        if watching.keys.iter().any(|(d, k)| *d == db && k == key) || added.contains(key) {
            continue;
        }
        added.push(key.clone());
    }
    let l = cx.db()?;
    for key in &added {
        l.watch(db, key, &token)?;
    }
    if let Some(w) = cx.client.watching.as_mut() {
        w.keys.extend(added.into_iter().map(|k| (db, k)));
    }
    Ok(Frame::ok())
}

/// A transaction being queued (`MULTI` until `EXEC` or `DISCARD`).
#[derive(Debug, Clone, Default)]
pub struct Multi {
    /// The queued commands, in order.
    pub queued: Vec<Vec<Bytes>>,
    /// A command was refused while queueing: `EXEC` answers `-EXECABORT`.
    pub aborted: bool,
    /// Some queued command writes (for `CLIENT PAUSE WRITE`) or may use memory (for `-OOM`).
    pub writes: bool,
    pub denyoom: bool,
}

/// The keys a client watches (`WATCH` until `EXEC`, `DISCARD`, `UNWATCH`, `RESET` or disconnect).
#[derive(Debug, Clone)]
pub struct Watching {
    pub token: Arc<WatchToken>,
    pub keys: Vec<(usize, Bytes)>,
}

impl Default for Watching {
    fn default() -> Watching {
        Watching {
            token: WatchToken::new(),
            keys: Vec::new(),
        }
    }
}

/// Forgets every key the client watches. The connection calls this when the client leaves, so a
/// closed connection leaves nothing behind in the stripes.
pub fn unwatch_all(ks: &Keyspace, client: &mut crate::cx::ClientState) {
    if let Some(w) = client.watching.take() {
        ks.unwatch(&w.keys, &w.token);
    }
}
