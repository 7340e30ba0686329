//! Pub/sub commands (SUBSCRIBE, PUBLISH, PSUBSCRIBE, SSUBSCRIBE, PUBSUB, ...).
//!
//! Layout, top to bottom: the spec table, the handlers in table order, then helpers.
//!
//! The hub that holds the subscriptions lives in the server, behind [`crate::ServerOps`]. The
//! (un)subscribe commands answer through the client's mailbox: the server queues one
//! confirmation per channel together with the change it confirms, so no message published
//! afterwards can overtake it; the handler itself replies with nothing ([`Action::Pubsub`]).

use bytes::Bytes;
use shoal_resp::{Frame, Protocol};

use crate::args;
use crate::cx::{Action, Cx, PubsubKind};
use crate::error::{CmdResult, CommandError};
use crate::help::help_reply;
use crate::spec::{CommandSpec, Flags, Group, KeyAccess, Keys};

/// Every pub/sub command may run while loading or on a stale replica.
const PS: Flags = Flags::PUBSUB.with(Flags::LOADING).with(Flags::STALE);
/// Subscribing from a script makes no sense: nobody would read the messages.
const SUB: Flags = PS.with(Flags::NOSCRIPT);
/// The shard channels, declared like keys so a cluster can route them by slot.
const SHARD_CHANNELS: Keys = Keys::Range {
    first: 1,
    last: -1,
    step: 1,
};
const SHARD_CHANNEL: Keys = Keys::Range {
    first: 1,
    last: 1,
    step: 1,
};

const fn pubsub(name: &'static str, arity: i32, handler: crate::spec::Handler) -> CommandSpec {
    CommandSpec::new(name, Group::Pubsub, arity, handler)
}

/// The pub/sub family.
pub(crate) const COMMANDS: &[CommandSpec] = &[
    pubsub("psubscribe", -2, psubscribe)
        .flags(SUB)
        .doc("Listen for messages published to channels matching the given patterns", "2.0.0")
        .complexity("O(N) where N is the number of patterns the client is already subscribed to."),
    pubsub("publish", 3, publish)
        .flags(PS.with(Flags::FAST).with(Flags::MAY_REPLICATE))
        .doc("Post a message to a channel", "2.0.0")
        .complexity("O(N+M) where N is the number of clients subscribed to the receiving channel and M is the total number of subscribed patterns (by any client)."),
    pubsub("pubsub", -2, container)
        .doc("A container for Pub/Sub commands", "2.8.0")
        .subcommands(&[
            pubsub("pubsub|channels", -2, channels)
                .flags(PS)
                .doc("List active channels", "2.8.0")
                .complexity("O(N) where N is the number of active channels, and assuming constant time pattern matching (relatively short channels and patterns)"),
            pubsub("pubsub|help", 2, help)
                .flags(Flags::LOADING.with(Flags::STALE))
                .doc("Show helpful text about the different subcommands", "6.2.0"),
            pubsub("pubsub|numpat", 2, numpat)
                .flags(PS)
                .doc("Get the count of unique patterns pattern subscriptions", "2.8.0"),
            pubsub("pubsub|numsub", -2, numsub)
                .flags(PS)
                .doc("Get the count of subscribers for channels", "2.8.0")
                .complexity("O(N) for the NUMSUB subcommand, where N is the number of requested channels"),
            pubsub("pubsub|shardchannels", -2, shardchannels)
                .flags(PS)
                .doc("List active shard channels", "7.0.0")
                .complexity("O(N) where N is the number of active shard channels, and assuming constant time pattern matching (relatively short shard channels)."),
            pubsub("pubsub|shardnumsub", -2, shardnumsub)
                .flags(PS)
                .doc("Get the count of subscribers for shard channels", "7.0.0")
                .complexity("O(N) for the SHARDNUMSUB subcommand, where N is the number of requested shard channels"),
        ]),
    pubsub("punsubscribe", -1, punsubscribe)
        .flags(SUB)
        .doc("Stop listening for messages posted to channels matching the given patterns", "2.0.0")
        .complexity("O(N+M) where N is the number of patterns the client is already subscribed and M is the number of total patterns subscribed in the system (by any client)."),
    pubsub("spublish", 3, spublish)
        .flags(PS.with(Flags::FAST).with(Flags::MAY_REPLICATE))
        .keys(SHARD_CHANNEL, KeyAccess::NotKey)
        .doc("Post a message to a shard channel", "7.0.0")
        .complexity("O(N) where N is the number of clients subscribed to the receiving shard channel."),
    pubsub("ssubscribe", -2, ssubscribe)
        .flags(SUB)
        .keys(SHARD_CHANNELS, KeyAccess::NotKey)
        .doc("Listen for messages published to the given shard channels", "7.0.0")
        .complexity("O(N) where N is the number of shard channels to subscribe to."),
    pubsub("subscribe", -2, subscribe)
        .flags(SUB)
        .doc("Listen for messages published to the given channels", "2.0.0")
        .complexity("O(N) where N is the number of channels to subscribe to."),
    pubsub("sunsubscribe", -1, sunsubscribe)
        .flags(SUB)
        .keys(SHARD_CHANNELS, KeyAccess::NotKey)
        .doc("Stop listening for messages posted to the given shard channels", "7.0.0")
        .complexity("O(N) where N is the number of clients already subscribed to a shard channel."),
    pubsub("unsubscribe", -1, unsubscribe)
        .flags(SUB)
        .doc("Stop listening for messages posted to the given channels", "2.0.0")
        .complexity("O(N) where N is the number of clients already subscribed to a channel."),
];

/// The commands a RESP2 client may send while subscribed, as Redis's `processCommand` lists
/// them. Everything else is refused with [`subscribed_mode_error`].
pub fn allowed_when_subscribed(name: &str) -> bool {
    matches!(
        name,
        "ping"
            | "subscribe"
            | "ssubscribe"
            | "unsubscribe"
            | "sunsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "quit"
            | "reset"
    )
}

/// Redis's refusal of a command from a subscribed RESP2 client; `name` is the full name
/// (`config|get`).
pub fn subscribed_mode_error(name: &str) -> CommandError {
    CommandError::err(format!(
        "Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    ))
}

// Command: PSUBSCRIBE pattern [pattern ...]
//
// > PSUBSCRIBE news.*
// 1) "psubscribe"
// 2) "news.*"
// 3) (integer) 1
fn psubscribe(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    subscribe_to(cx, PubsubKind::Pattern, &a[1..])
}

// Command: PUBLISH channel message
//
// > PUBLISH news.tech hello
// (integer) 2
fn publish(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let receivers = cx.server.publish(PubsubKind::Channel, &a[1], &a[2]);
    Ok(Frame::Integer(receivers as i64))
}

/// Never runs: the dispatcher resolves a subcommand or answers with an error first.
fn container(_cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    Err(CommandError::WrongArity(
        args::text(&a[0]).to_ascii_lowercase(),
    ))
}

// Command: PUBSUB CHANNELS [pattern]
//
// > PUBSUB CHANNELS news.*
// 1) "news.tech"
fn channels(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    list_channels(cx, PubsubKind::Channel, a)
}

// Command: PUBSUB HELP
fn help(_cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(help_reply(
        "PUBSUB",
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    ))
}

// Command: PUBSUB NUMPAT
//
// > PUBSUB NUMPAT
// (integer) 1
fn numpat(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(Frame::Integer(cx.server.pubsub_numpat() as i64))
}

// Command: PUBSUB NUMSUB [channel ...]
//
// > PUBSUB NUMSUB news.tech other
// 1) "news.tech"
// 2) (integer) 1
// 3) "other"
// 4) (integer) 0
fn numsub(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    count_subscribers(cx, PubsubKind::Channel, &a[2..])
}

// Command: PUBSUB SHARDCHANNELS [pattern]
fn shardchannels(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    list_channels(cx, PubsubKind::Shard, a)
}

// Command: PUBSUB SHARDNUMSUB [shardchannel ...]
fn shardnumsub(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    count_subscribers(cx, PubsubKind::Shard, &a[2..])
}

// Command: PUNSUBSCRIBE [pattern ...]
//
// > PUNSUBSCRIBE
// 1) "punsubscribe"
// 2) (nil)
// 3) (integer) 0
fn punsubscribe(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    unsubscribe_from(cx, PubsubKind::Pattern, &a[1..])
}

// Command: SPUBLISH shardchannel message
//
// > SPUBLISH orders hello
// (integer) 1
fn spublish(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let receivers = cx.server.publish(PubsubKind::Shard, &a[1], &a[2]);
    Ok(Frame::Integer(receivers as i64))
}

// Command: SSUBSCRIBE shardchannel [shardchannel ...]
//
// > SSUBSCRIBE orders
// 1) "ssubscribe"
// 2) "orders"
// 3) (integer) 1
fn ssubscribe(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    // Unlike SUBSCRIBE, which Redis keeps allowing inside MULTI for old clients' sake.
    if cx.client.no_block {
        return Err(CommandError::err(
            "SSUBSCRIBE isn't allowed for a DENY BLOCKING client",
        ));
    }
    subscribe_to(cx, PubsubKind::Shard, &a[1..])
}

// Command: SUBSCRIBE channel [channel ...]
//
// > SUBSCRIBE news.tech news.art
// 1) "subscribe"
// 2) "news.tech"
// 3) (integer) 1
// 1) "subscribe"
// 2) "news.art"
// 3) (integer) 2
fn subscribe(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    subscribe_to(cx, PubsubKind::Channel, &a[1..])
}

// Command: SUNSUBSCRIBE [shardchannel ...]
fn sunsubscribe(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    unsubscribe_from(cx, PubsubKind::Shard, &a[1..])
}

// Command: UNSUBSCRIBE [channel ...]
//
// > UNSUBSCRIBE news.tech
// 1) "unsubscribe"
// 2) "news.tech"
// 3) (integer) 1
fn unsubscribe(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    unsubscribe_from(cx, PubsubKind::Channel, &a[1..])
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// Subscribes; the confirmations reach the client through its mailbox.
fn subscribe_to(cx: &mut Cx<'_>, kind: PubsubKind, names: &[Bytes]) -> CmdResult {
    let inline = inside_exec(cx);
    let done = cx.server.subscribe(cx.client, kind, names, inline);
    answer(cx, done, inline)
}

/// Unsubscribes; the confirmations reach the client through its mailbox.
fn unsubscribe_from(cx: &mut Cx<'_>, kind: PubsubKind, names: &[Bytes]) -> CmdResult {
    let inline = inside_exec(cx);
    let done = cx.server.unsubscribe(cx.client, kind, names, inline);
    answer(cx, done, inline)
}

/// True while the command runs inside `EXEC` (the one place that sets `no_block` for these
/// commands: they are refused in scripts). `EXEC` collects one reply per command, so the
/// confirmations must come back as the reply instead of through the mailbox; nothing can
/// publish meanwhile, since `EXEC` runs alone.
fn inside_exec(cx: &Cx<'_>) -> bool {
    cx.client.no_block
}

/// The (un)subscribe reply: nothing, the confirmations being in the mailbox; or, inside `EXEC`,
/// the single confirmation, or several in an array. (Redis writes several confirmations as
/// separate replies there, more replies than the `EXEC` array announces; nesting them keeps
/// the reply well-formed.)
fn answer(cx: &mut Cx<'_>, done: crate::cx::Subscriptions, inline: bool) -> CmdResult {
    cx.client.subscriptions = done.count;
    if !inline {
        cx.client.action = Some(Action::Pubsub);
        return Ok(Frame::Null);
    }
    let mut confirmations = done.inline;
    Ok(match confirmations.len() {
        1 => confirmations.remove(0),
        _ => Frame::Array(confirmations),
    })
}

/// `PUBSUB CHANNELS` and `SHARDCHANNELS`: at most one pattern.
fn list_channels(cx: &mut Cx<'_>, kind: PubsubKind, a: &[Bytes]) -> CmdResult {
    if a.len() > 3 {
        return Err(subcommand_syntax(a));
    }
    let pattern = a.get(2).map(|p| &p[..]);
    let names = cx.server.pubsub_channels(kind, pattern);
    Ok(Frame::Array(names.into_iter().map(Frame::Bulk).collect()))
}

/// `PUBSUB NUMSUB` and `SHARDNUMSUB`: each channel, then its number of subscribers.
fn count_subscribers(cx: &mut Cx<'_>, kind: PubsubKind, names: &[Bytes]) -> CmdResult {
    let counts = cx.server.pubsub_numsub(kind, names);
    let mut out = Vec::with_capacity(names.len() * 2);
    for (name, n) in names.iter().zip(counts) {
        out.push(Frame::Bulk(name.clone()));
        out.push(Frame::Integer(n as i64));
    }
    Ok(Frame::Array(out))
}

/// Redis's `addReplySubcommandSyntaxError`: the subcommand as sent, the command in capitals.
fn subcommand_syntax(a: &[Bytes]) -> CommandError {
    let sub = String::from_utf8_lossy(&a[1][..a[1].len().min(128)]).into_owned();
    CommandError::err(format!(
        "unknown subcommand or wrong number of arguments for '{sub}'. Try {} HELP.",
        args::text(&a[0]).to_ascii_uppercase()
    ))
}

/// `PING` from a subscribed RESP2 client: `["pong", message or ""]`, as Redis answers there
/// (the client's reply parser then expects arrays only).
pub(crate) fn subscribed_ping(
    protocol: Protocol,
    subscriptions: usize,
    a: &[Bytes],
) -> Option<Frame> {
    (protocol == Protocol::Resp2 && subscriptions > 0).then(|| {
        Frame::Array(vec![
            Frame::bulk("pong"),
            Frame::Bulk(a.get(1).cloned().unwrap_or_default()),
        ])
    })
}
