//! The pub/sub hub: which clients listen to which channels, patterns and shard channels, and
//! each subscriber's mailbox, the bounded queue of encoded messages its connection writes out.
//!
//! Publishing encodes a message once per protocol and appends it to the mailbox of every
//! receiver under the registry's read lock and that mailbox's own short lock; nothing here ever
//! touches a socket. The connection drains its mailbox into its output buffer and writes with no
//! lock held. A mailbox over its `client-output-buffer-limit pubsub` (the hard limit, or the
//! soft limit for longer than its seconds) is cut off: it drops its queue, refuses everything
//! after, and wakes its connection, which closes. So a subscriber that stops reading costs at
//! most its limit, never unbounded memory.
//!
//! Subscribe and unsubscribe confirmations go through the mailbox too, queued under the
//! registry's write lock together with the change they confirm: every message published after
//! a subscription is therefore queued after its confirmation, and none after an unsubscribe
//! confirmation, whatever other clients do meanwhile.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use foldhash::fast::FixedState;
use indexmap::IndexSet;
use parking_lot::{Mutex, RwLock};
use shoal_commands::{PubsubKind, Subscriptions};
use shoal_resp::{encode, Frame, Protocol};
use shoal_storage::glob_match;
use tokio::sync::Notify;

use crate::config::OutputLimit;

type Map<K, V> = HashMap<K, V, FixedState>;
type Set<T> = IndexSet<T, FixedState>;

/// Every subscription on the server and every subscriber's mailbox.
#[derive(Default)]
pub struct Hub {
    registry: RwLock<Registry>,
    /// Clients with a mailbox, so that a disconnect of any other takes no lock.
    clients: AtomicUsize,
    /// The `pubsub` class of `client-output-buffer-limit`, read on every delivery.
    hard: AtomicU64,
    soft: AtomicU64,
    soft_secs: AtomicU64,
}

#[derive(Default)]
struct Registry {
    /// Channel -> its subscribers, in the order they subscribed (Redis delivers in that order).
    channels: Map<Bytes, Vec<Arc<Mailbox>>>,
    patterns: Map<Bytes, Vec<Arc<Mailbox>>>,
    shard: Map<Bytes, Vec<Arc<Mailbox>>>,
    clients: Map<u64, Subscriber>,
}

/// One client's subscriptions, which it may list and leave.
struct Subscriber {
    mailbox: Arc<Mailbox>,
    channels: Set<Bytes>,
    patterns: Set<Bytes>,
    shard: Set<Bytes>,
}

impl Subscriber {
    /// A client's first use of pub/sub, counted in `clients`.
    fn new(id: u64, clients: &AtomicUsize) -> Subscriber {
        clients.fetch_add(1, Ordering::Relaxed);
        Subscriber {
            mailbox: Arc::new(Mailbox::new(id)),
            channels: Set::default(),
            patterns: Set::default(),
            shard: Set::default(),
        }
    }

    fn names(&mut self, kind: PubsubKind) -> &mut Set<Bytes> {
        match kind {
            PubsubKind::Channel => &mut self.channels,
            PubsubKind::Pattern => &mut self.patterns,
            PubsubKind::Shard => &mut self.shard,
        }
    }

    /// The count a confirmation shows: channels and patterns together, shard channels apart,
    /// as in Redis.
    fn count(&self, kind: PubsubKind) -> usize {
        match kind {
            PubsubKind::Channel | PubsubKind::Pattern => self.channels.len() + self.patterns.len(),
            PubsubKind::Shard => self.shard.len(),
        }
    }

    fn publish_counts(&self) {
        let m = &self.mailbox;
        m.channels.store(self.channels.len(), Ordering::Relaxed);
        m.patterns.store(self.patterns.len(), Ordering::Relaxed);
        m.shard.store(self.shard.len(), Ordering::Relaxed);
    }
}

impl Registry {
    fn table(&mut self, kind: PubsubKind) -> &mut Map<Bytes, Vec<Arc<Mailbox>>> {
        match kind {
            PubsubKind::Channel => &mut self.channels,
            PubsubKind::Pattern => &mut self.patterns,
            PubsubKind::Shard => &mut self.shard,
        }
    }

    fn table_ref(&self, kind: PubsubKind) -> &Map<Bytes, Vec<Arc<Mailbox>>> {
        match kind {
            PubsubKind::Channel => &self.channels,
            PubsubKind::Pattern => &self.patterns,
            PubsubKind::Shard => &self.shard,
        }
    }

    /// Removes `id` from the subscribers of `name`, dropping the entry once nobody is left (so
    /// that abandoned channels cost nothing, as in Redis).
    fn detach(&mut self, kind: PubsubKind, name: &Bytes, id: u64) {
        let table = self.table(kind);
        if let Some(list) = table.get_mut(name) {
            list.retain(|m| m.id != id);
            if list.is_empty() {
                table.remove(name);
            }
        }
    }
}

impl Hub {
    /// Sets the `pubsub` class of `client-output-buffer-limit`.
    pub fn set_limit(&self, limit: OutputLimit) {
        self.hard.store(limit.hard, Ordering::Relaxed);
        self.soft.store(limit.soft, Ordering::Relaxed);
        self.soft_secs.store(limit.soft_secs, Ordering::Relaxed);
    }

    /// The `pubsub` class's hard limit in bytes (0: none).
    pub fn hard_limit(&self) -> u64 {
        self.hard.load(Ordering::Relaxed)
    }

    fn limit(&self) -> OutputLimit {
        OutputLimit {
            hard: self.hard.load(Ordering::Relaxed),
            soft: self.soft.load(Ordering::Relaxed),
            soft_secs: self.soft_secs.load(Ordering::Relaxed),
        }
    }

    /// Delivers `message` to the subscribers of `channel` (and, unless `kind` is
    /// [`PubsubKind::Shard`], of every matching pattern); returns how many received it.
    /// `now_secs` times the soft output limit.
    pub fn publish(
        &self,
        kind: PubsubKind,
        channel: &[u8],
        message: &[u8],
        now_secs: u64,
    ) -> usize {
        let registry = self.registry.read();
        let limit = self.limit();
        let mut receivers = 0;
        let table = match kind {
            PubsubKind::Shard => &registry.shard,
            _ => &registry.channels,
        };
        if let Some(list) = table.get(channel) {
            let head = match kind {
                PubsubKind::Shard => "smessage",
                _ => "message",
            };
            let frame = Frame::Push(vec![
                Frame::bulk(head),
                Frame::Bulk(Bytes::copy_from_slice(channel)),
                Frame::Bulk(Bytes::copy_from_slice(message)),
            ]);
            let mut encoded = Encoded::new(&frame);
            for m in list {
                m.deliver(&mut encoded, limit, now_secs);
                receivers += 1;
            }
        }
        if kind == PubsubKind::Shard || registry.patterns.is_empty() {
            return receivers;
        }
        for (pattern, list) in &registry.patterns {
            if !glob_match(pattern, channel, false) {
                continue;
            }
            let frame = Frame::Push(vec![
                Frame::bulk("pmessage"),
                Frame::Bulk(pattern.clone()),
                Frame::Bulk(Bytes::copy_from_slice(channel)),
                Frame::Bulk(Bytes::copy_from_slice(message)),
            ]);
            let mut encoded = Encoded::new(&frame);
            for m in list {
                m.deliver(&mut encoded, limit, now_secs);
                receivers += 1;
            }
        }
        receivers
    }

    /// Subscribes client `id` to `names` with one confirmation per name, queued in its mailbox
    /// (created on first use, in `protocol`) or, when `inline`, returned. Returns the client's
    /// subscriptions of every kind afterwards.
    pub fn subscribe(
        &self,
        id: u64,
        protocol: Protocol,
        kind: PubsubKind,
        names: &[Bytes],
        inline: bool,
        now_secs: u64,
    ) -> Subscriptions {
        let limit = self.limit();
        let mut guard = self.registry.write();
        let registry = &mut *guard;
        let sub = registry
            .clients
            .entry(id)
            .or_insert_with(|| Subscriber::new(id, &self.clients));
        sub.mailbox.set_protocol(protocol);
        let head = match kind {
            PubsubKind::Channel => "subscribe",
            PubsubKind::Pattern => "psubscribe",
            PubsubKind::Shard => "ssubscribe",
        };
        let mut confirmations = Confirmations::new(inline, limit, now_secs);
        for name in names {
            if sub.names(kind).insert(name.clone()) {
                let list = match kind {
                    PubsubKind::Channel => registry.channels.entry(name.clone()),
                    PubsubKind::Pattern => registry.patterns.entry(name.clone()),
                    PubsubKind::Shard => registry.shard.entry(name.clone()),
                };
                list.or_default().push(sub.mailbox.clone());
            }
            confirmations.add(&sub.mailbox, head, Some(name), sub.count(kind));
        }
        sub.publish_counts();
        Subscriptions {
            count: sub.mailbox.total(),
            inline: confirmations.inline,
        }
    }

    /// Unsubscribes client `id` from `names` of `kind` (from all of them when `names` is empty),
    /// with one confirmation per name, or a single one naming nothing when there was nothing to
    /// leave; queued in its mailbox or, when `inline`, returned. Returns the client's remaining
    /// subscriptions of every kind.
    pub fn unsubscribe(
        &self,
        id: u64,
        protocol: Protocol,
        kind: PubsubKind,
        names: &[Bytes],
        inline: bool,
        now_secs: u64,
    ) -> Subscriptions {
        let limit = self.limit();
        let mut guard = self.registry.write();
        let registry = &mut *guard;
        let head = match kind {
            PubsubKind::Channel => "unsubscribe",
            PubsubKind::Pattern => "punsubscribe",
            PubsubKind::Shard => "sunsubscribe",
        };
        let mut confirmations = Confirmations::new(inline, limit, now_secs);
        if inline && !registry.clients.contains_key(&id) {
            // Nothing to leave and nowhere to queue: answer without registering the client.
            for name in names
                .iter()
                .map(Some)
                .chain(names.is_empty().then_some(None))
            {
                confirmations.inline.push(confirmation(head, name, 0));
            }
            return Subscriptions {
                count: 0,
                inline: confirmations.inline,
            };
        }
        // A client that never subscribed still gets its confirmations, so it needs a mailbox.
        let sub = registry
            .clients
            .entry(id)
            .or_insert_with(|| Subscriber::new(id, &self.clients));
        sub.mailbox.set_protocol(protocol);
        let leaving: Vec<Bytes> = if names.is_empty() {
            sub.names(kind).iter().cloned().collect()
        } else {
            names.to_vec()
        };
        let mut detached = Vec::new();
        for name in &leaving {
            if sub.names(kind).shift_remove(name) {
                detached.push(name.clone());
            }
            confirmations.add(&sub.mailbox, head, Some(name), sub.count(kind));
        }
        if leaving.is_empty() {
            confirmations.add(&sub.mailbox, head, None, sub.count(kind));
        }
        sub.publish_counts();
        let count = sub.mailbox.total();
        for name in &detached {
            registry.detach(kind, name, id);
        }
        Subscriptions {
            count,
            inline: confirmations.inline,
        }
    }

    /// Drops every subscription of client `id` without confirmations (`RESET`), keeping its
    /// mailbox and whatever is queued in it.
    pub fn unsubscribe_all(&self, id: u64) {
        let mut registry = self.registry.write();
        let Some(sub) = registry.clients.get_mut(&id) else {
            return;
        };
        let names = [
            (PubsubKind::Channel, std::mem::take(&mut sub.channels)),
            (PubsubKind::Pattern, std::mem::take(&mut sub.patterns)),
            (PubsubKind::Shard, std::mem::take(&mut sub.shard)),
        ];
        sub.publish_counts();
        for (kind, set) in names {
            for name in &set {
                registry.detach(kind, name, id);
            }
        }
    }

    /// Forgets client `id` entirely: its subscriptions and its mailbox. Every disconnect calls
    /// it; when no client has a mailbox that costs one atomic load.
    pub fn leave(&self, id: u64) {
        if self.clients.load(Ordering::Relaxed) == 0
            || !self.registry.read().clients.contains_key(&id)
        {
            return;
        }
        self.unsubscribe_all(id);
        if let Some(sub) = self.registry.write().clients.remove(&id) {
            sub.mailbox.close();
            self.clients.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Gives client `id` a mailbox without subscribing it to anything (a client tracking keys
    /// receives its invalidations there).
    pub fn open(&self, id: u64) {
        let mut registry = self.registry.write();
        registry
            .clients
            .entry(id)
            .or_insert_with(|| Subscriber::new(id, &self.clients));
    }

    /// Queues a frame for client `id`, built for its mailbox's protocol and whether it is
    /// subscribed to anything (`build` returns `None` when nothing fits). False when the client
    /// has no mailbox.
    pub fn push_to(
        &self,
        id: u64,
        build: impl Fn(Protocol, bool) -> Option<Frame>,
        now_secs: u64,
    ) -> bool {
        let registry = self.registry.read();
        let Some(sub) = registry.clients.get(&id) else {
            return false;
        };
        let m = &sub.mailbox;
        let protocol = m.queue.lock().protocol.unwrap_or(Protocol::Resp2);
        if let Some(frame) = build(protocol, m.total() > 0) {
            let mut encoded = Encoded::new(&frame);
            m.deliver(&mut encoded, self.limit(), now_secs);
        }
        true
    }

    /// The mailbox of client `id`, once it has used a subscribe or unsubscribe command.
    pub fn mailbox(&self, id: u64) -> Option<Arc<Mailbox>> {
        self.registry
            .read()
            .clients
            .get(&id)
            .map(|s| s.mailbox.clone())
    }

    /// `PUBSUB CHANNELS` / `SHARDCHANNELS`: the active channels of `kind` matching `pattern`.
    pub fn channels(&self, kind: PubsubKind, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let registry = self.registry.read();
        registry
            .table_ref(kind)
            .keys()
            .filter(|c| pattern.is_none_or(|p| glob_match(p, c, false)))
            .cloned()
            .collect()
    }

    /// `PUBSUB NUMSUB` / `SHARDNUMSUB`: the number of subscribers of each channel.
    pub fn numsub(&self, kind: PubsubKind, channels: &[Bytes]) -> Vec<usize> {
        let registry = self.registry.read();
        let table = registry.table_ref(kind);
        channels
            .iter()
            .map(|c| table.get(c).map_or(0, Vec::len))
            .collect()
    }

    /// The number of distinct channels, patterns and shard channels with subscribers
    /// (`PUBSUB NUMPAT`, `INFO`'s `pubsub_channels`, `pubsub_patterns`, `pubsubshard_channels`).
    pub fn counts(&self) -> (usize, usize, usize) {
        let registry = self.registry.read();
        (
            registry.channels.len(),
            registry.patterns.len(),
            registry.shard.len(),
        )
    }
}

/// Where the confirmations of one (un)subscribe go: the client's mailbox, or back to the
/// command (`inline`) when it runs inside `EXEC`, whose reply must hold them.
struct Confirmations {
    to_mailbox: bool,
    limit: OutputLimit,
    now_secs: u64,
    inline: Vec<Frame>,
}

impl Confirmations {
    fn new(inline: bool, limit: OutputLimit, now_secs: u64) -> Confirmations {
        Confirmations {
            to_mailbox: !inline,
            limit,
            now_secs,
            inline: Vec::new(),
        }
    }

    fn add(&mut self, mailbox: &Mailbox, head: &'static str, name: Option<&Bytes>, count: usize) {
        let frame = confirmation(head, name, count);
        if self.to_mailbox {
            mailbox.deliver(&mut Encoded::new(&frame), self.limit, self.now_secs);
        } else {
            self.inline.push(frame);
        }
    }
}

/// A subscribe or unsubscribe confirmation: `[kind, name or null, count]`.
fn confirmation(head: &'static str, name: Option<&Bytes>, count: usize) -> Frame {
    Frame::Push(vec![
        Frame::bulk(head),
        name.map_or(Frame::Null, |n| Frame::Bulk(n.clone())),
        Frame::Integer(count as i64),
    ])
}

/// One frame encoded at most once per protocol, for delivery to many mailboxes.
struct Encoded<'a> {
    frame: &'a Frame,
    resp2: Option<Bytes>,
    resp3: Option<Bytes>,
}

impl<'a> Encoded<'a> {
    fn new(frame: &'a Frame) -> Encoded<'a> {
        Encoded {
            frame,
            resp2: None,
            resp3: None,
        }
    }

    fn get(&mut self, protocol: Protocol) -> Bytes {
        let (slot, proto) = match protocol {
            Protocol::Resp2 => (&mut self.resp2, Protocol::Resp2),
            _ => (&mut self.resp3, Protocol::Resp3),
        };
        slot.get_or_insert_with(|| {
            let mut out = BytesMut::new();
            encode(self.frame, proto, &mut out);
            out.freeze()
        })
        .clone()
    }
}

/// One subscriber's queue of encoded messages and confirmations, shared by the hub (which
/// appends) and the subscriber's connection (which drains).
pub struct Mailbox {
    pub id: u64,
    queue: Mutex<Queue>,
    /// Signalled when something is queued or the mailbox is cut off.
    ready: Notify,
    /// The client's subscriptions, readable without the registry's lock (the subscribed-mode
    /// check, `CLIENT LIST`).
    channels: AtomicUsize,
    patterns: AtomicUsize,
    shard: AtomicUsize,
}

#[derive(Default)]
struct Queue {
    frames: VecDeque<Bytes>,
    /// Bytes in `frames`.
    bytes: usize,
    protocol: Option<Protocol>,
    /// Cut off for exceeding its output limit, or its client left: nothing more is queued.
    closed: bool,
    /// Why it was cut off, for the log.
    cut: Option<&'static str>,
    /// Unix seconds since when the queue has been over the soft limit.
    soft_since: Option<u64>,
}

/// What [`Mailbox::drain`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Drained {
    /// Moved what was queued (up to the requested amount) into the output.
    Open,
    /// The mailbox was cut off for exceeding this limit (`"hard"` or `"soft"`).
    Cut(&'static str),
}

impl Mailbox {
    fn new(id: u64) -> Mailbox {
        Mailbox {
            id,
            queue: Mutex::new(Queue::default()),
            ready: Notify::new(),
            channels: AtomicUsize::new(0),
            patterns: AtomicUsize::new(0),
            shard: AtomicUsize::new(0),
        }
    }

    /// Channels, patterns and shard channels this client is subscribed to.
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.channels.load(Ordering::Relaxed),
            self.patterns.load(Ordering::Relaxed),
            self.shard.load(Ordering::Relaxed),
        )
    }

    /// Subscriptions of every kind; nonzero puts a RESP2 client in subscribed mode.
    pub fn total(&self) -> usize {
        let (c, p, s) = self.counts();
        c + p + s
    }

    /// The protocol messages are encoded in from now on (`HELLO` may change it).
    pub fn set_protocol(&self, protocol: Protocol) {
        self.queue.lock().protocol = Some(protocol);
    }

    /// Bytes queued and not yet taken by the connection.
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.queue.lock().bytes
    }

    /// Frames and bytes queued and not yet taken by the connection.
    pub fn backlog(&self) -> (usize, usize) {
        let q = self.queue.lock();
        (q.frames.len(), q.bytes)
    }

    fn deliver(&self, encoded: &mut Encoded<'_>, limit: OutputLimit, now_secs: u64) {
        let mut q = self.queue.lock();
        if q.closed {
            return;
        }
        let bytes = encoded.get(q.protocol.unwrap_or(Protocol::Resp2));
        q.bytes += bytes.len();
        q.frames.push_back(bytes);
        let pending = q.bytes as u64;
        let mut over = None;
        if limit.hard > 0 && pending >= limit.hard {
            over = Some("hard");
        } else if limit.soft > 0 && pending >= limit.soft {
            // Like Redis, the soft limit is checked as the buffer grows: the first time over
            // starts the clock, and staying over for longer than the seconds allowed cuts off.
            match q.soft_since {
                None => q.soft_since = Some(now_secs),
                Some(since) if now_secs.saturating_sub(since) > limit.soft_secs => {
                    over = Some("soft")
                }
                Some(_) => {}
            }
        } else {
            q.soft_since = None;
        }
        if let Some(which) = over {
            q.closed = true;
            q.cut = Some(which);
            q.frames = VecDeque::new();
            q.bytes = 0;
        }
        drop(q);
        self.ready.notify_one();
    }

    /// Moves queued frames into `output` until it holds at least `upto` bytes or the queue is
    /// empty.
    pub fn drain(&self, output: &mut BytesMut, upto: usize) -> Drained {
        let mut q = self.queue.lock();
        if let Some(which) = q.cut {
            return Drained::Cut(which);
        }
        while output.len() < upto {
            let Some(frame) = q.frames.pop_front() else {
                break;
            };
            q.bytes -= frame.len();
            output.extend_from_slice(&frame);
        }
        if q.bytes == 0 {
            q.soft_since = None;
        }
        Drained::Open
    }

    /// Why the mailbox was cut off (`"hard"` or `"soft"` limit), if it was.
    pub fn cut_reason(&self) -> Option<&'static str> {
        self.queue.lock().cut
    }

    /// True when frames are waiting or the mailbox was cut off.
    pub fn has_news(&self) -> bool {
        let q = self.queue.lock();
        q.bytes > 0 || q.cut.is_some()
    }

    /// Waits until something is queued or the mailbox is cut off (may wake spuriously).
    pub async fn ready(&self) {
        self.ready.notified().await
    }

    fn close(&self) {
        let mut q = self.queue.lock();
        q.closed = true;
        q.frames = VecDeque::new();
        q.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<Bytes> {
        list.iter().map(|n| Bytes::from(n.to_string())).collect()
    }

    fn drained(m: &Mailbox) -> String {
        let mut out = BytesMut::new();
        assert_eq!(m.drain(&mut out, usize::MAX), Drained::Open);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn confirmations_precede_messages_and_counts_follow_redis() {
        let hub = Hub::default();
        assert_eq!(
            hub.subscribe(
                1,
                Protocol::Resp2,
                PubsubKind::Channel,
                &names(&["a", "a"]),
                false,
                0
            )
            .count,
            1
        );
        hub.subscribe(
            1,
            Protocol::Resp2,
            PubsubKind::Pattern,
            &names(&["a*"]),
            false,
            0,
        );
        hub.subscribe(
            1,
            Protocol::Resp2,
            PubsubKind::Shard,
            &names(&["s"]),
            false,
            0,
        );
        assert_eq!(hub.publish(PubsubKind::Channel, b"ab", b"x", 0), 1);
        assert_eq!(hub.publish(PubsubKind::Channel, b"a", b"y", 0), 2);
        assert_eq!(hub.publish(PubsubKind::Shard, b"a", b"z", 0), 0);
        let m = hub.mailbox(1).unwrap();
        assert_eq!(
            drained(&m),
            "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n\
             *3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n\
             *3\r\n$10\r\npsubscribe\r\n$2\r\na*\r\n:2\r\n\
             *3\r\n$10\r\nssubscribe\r\n$1\r\ns\r\n:1\r\n\
             *4\r\n$8\r\npmessage\r\n$2\r\na*\r\n$2\r\nab\r\n$1\r\nx\r\n\
             *3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\ny\r\n\
             *4\r\n$8\r\npmessage\r\n$2\r\na*\r\n$1\r\na\r\n$1\r\ny\r\n"
        );
        assert_eq!(m.counts(), (1, 1, 1));
    }

    #[test]
    fn unsubscribing_from_nothing_confirms_with_a_null() {
        let hub = Hub::default();
        assert_eq!(
            hub.unsubscribe(1, Protocol::Resp3, PubsubKind::Channel, &[], false, 0)
                .count,
            0
        );
        let m = hub.mailbox(1).unwrap();
        assert_eq!(drained(&m), ">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n");
    }

    #[test]
    fn inline_confirmations_are_returned_and_register_nobody_needlessly() {
        let hub = Hub::default();
        let done = hub.unsubscribe(7, Protocol::Resp2, PubsubKind::Pattern, &[], true, 0);
        assert_eq!(done.inline, [confirmation("punsubscribe", None, 0)]);
        assert!(hub.mailbox(7).is_none());
        let done = hub.subscribe(
            7,
            Protocol::Resp2,
            PubsubKind::Channel,
            &names(&["a"]),
            true,
            0,
        );
        assert_eq!(done.count, 1);
        assert_eq!(
            done.inline,
            [confirmation("subscribe", Some(&names(&["a"])[0]), 1)]
        );
        assert!(!hub.mailbox(7).unwrap().has_news());
        hub.leave(7);
        assert_eq!(hub.counts(), (0, 0, 0));
    }

    #[test]
    fn leaving_forgets_every_channel() {
        let hub = Hub::default();
        hub.subscribe(
            1,
            Protocol::Resp2,
            PubsubKind::Channel,
            &names(&["a", "b"]),
            false,
            0,
        );
        hub.subscribe(
            2,
            Protocol::Resp2,
            PubsubKind::Channel,
            &names(&["a"]),
            false,
            0,
        );
        hub.subscribe(
            1,
            Protocol::Resp2,
            PubsubKind::Pattern,
            &names(&["*"]),
            false,
            0,
        );
        assert_eq!(hub.counts(), (2, 1, 0));
        hub.leave(1);
        assert_eq!(hub.counts(), (1, 0, 0));
        assert_eq!(hub.numsub(PubsubKind::Channel, &names(&["a", "b"])), [1, 0]);
        assert!(hub.mailbox(1).is_none());
    }

    #[test]
    fn a_subscriber_over_its_hard_limit_is_cut_off_and_its_queue_freed() {
        let hub = Hub::default();
        hub.set_limit(OutputLimit {
            hard: 1000,
            soft: 0,
            soft_secs: 0,
        });
        hub.subscribe(
            1,
            Protocol::Resp2,
            PubsubKind::Channel,
            &names(&["a"]),
            false,
            0,
        );
        let m = hub.mailbox(1).unwrap();
        let payload = vec![b'x'; 100];
        for _ in 0..20 {
            hub.publish(PubsubKind::Channel, b"a", &payload, 0);
            assert!(m.pending() < 1000);
        }
        assert_eq!(
            m.drain(&mut BytesMut::new(), usize::MAX),
            Drained::Cut("hard")
        );
    }

    #[test]
    fn the_soft_limit_cuts_off_only_after_its_seconds() {
        let hub = Hub::default();
        hub.set_limit(OutputLimit {
            hard: 0,
            soft: 100,
            soft_secs: 2,
        });
        hub.subscribe(
            1,
            Protocol::Resp2,
            PubsubKind::Channel,
            &names(&["a"]),
            false,
            0,
        );
        let m = hub.mailbox(1).unwrap();
        let payload = vec![b'x'; 200];
        hub.publish(PubsubKind::Channel, b"a", &payload, 10);
        hub.publish(PubsubKind::Channel, b"a", &payload, 12);
        assert!(m.has_news());
        assert_eq!(m.drain(&mut BytesMut::new(), 0), Drained::Open);
        hub.publish(PubsubKind::Channel, b"a", &payload, 13);
        assert_eq!(m.drain(&mut BytesMut::new(), 0), Drained::Cut("soft"));
    }
}
