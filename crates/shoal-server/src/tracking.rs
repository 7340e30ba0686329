//! Client-side caching (`CLIENT TRACKING`): which clients may hold which keys, and the
//! invalidation messages owed to them when those keys change.
//!
//! In the default mode the server remembers, per key, the clients that read it; the first change
//! to the key sends each of them one invalidation (one message per key, as Redis does) and
//! forgets them. In `BCAST` mode clients name prefixes instead, and every change to a key under
//! one of them is announced to them, the keys of one command batched per prefix. The table is
//! bounded by `tracking-table-max-keys`: past it, keys are dropped with an invalidation, so a
//! client never keeps a stale entry because the server forgot it.
//!
//! This module only decides who is owed what; the connection encodes and delivers (its own
//! messages after its reply, others' through their pub/sub mailboxes).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;
use shoal_commands::{CommandError, TrackingMode};
use shoal_resp::{Frame, Protocol};

use crate::shared::Shared;

/// What one tracking client is owed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// These keys changed.
    Keys(Vec<Bytes>),
    /// Everything changed (`FLUSHALL`, `FLUSHDB`).
    All,
}

/// One message, addressed to the tracking client that owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub tracker: u64,
    /// Where to send it: the tracker itself (0) or the client it redirects to.
    pub redirect: u64,
    pub payload: Payload,
}

#[derive(Default)]
struct Table {
    /// Key -> clients that read it since its last change.
    keys: HashMap<Bytes, BTreeSet<u64>>,
    /// Entries in `keys`, summed over keys (what `tracking_total_items` reports).
    items: usize,
    clients: HashMap<u64, Tracker>,
    /// `BCAST` prefixes -> the clients listening to them.
    prefixes: BTreeMap<Bytes, BTreeSet<u64>>,
}

struct Tracker {
    mode: TrackingMode,
    prefixes: Vec<Bytes>,
    /// The client it redirected to has gone (`CLIENT TRACKINGINFO` shows `broken_redirect`).
    broken: bool,
}

/// See the module documentation.
#[derive(Default)]
pub struct Tracking {
    table: Mutex<Table>,
    /// Clients with tracking on: zero makes every check one load.
    active: AtomicUsize,
    /// `tracking-table-max-keys` (0: unlimited).
    pub max_keys: AtomicU64,
}

impl Tracking {
    /// Clients with tracking on.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// `CLIENT TRACKING ON`: checks the options against the client's current state as Redis
    /// does, then (re)enables tracking. Returns true when the client was not tracking before.
    pub fn enable(
        &self,
        id: u64,
        mode: TrackingMode,
        prefixes: &[Bytes],
    ) -> Result<bool, CommandError> {
        let mut t = self.table.lock();
        let existing: &[Bytes] = t.clients.get(&id).map_or(&[], |c| &c.prefixes);
        for (i, p) in prefixes.iter().enumerate() {
            if let Some(old) = existing.iter().find(|o| overlaps(o, p)) {
                return Err(CommandError::err(format!(
                    "Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(old)
                )));
            }
            if let Some(other) = prefixes[i + 1..].iter().find(|o| overlaps(p, o)) {
                return Err(CommandError::err(format!(
                    "Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(other)
                )));
            }
        }
        let new = !t.clients.contains_key(&id);
        let mut all: Vec<Bytes> = t
            .clients
            .remove(&id)
            .map(|c| c.prefixes)
            .unwrap_or_default();
        if mode.bcast {
            let wanted: Vec<Bytes> = if prefixes.is_empty() {
                vec![Bytes::new()]
            } else {
                prefixes.to_vec()
            };
            for p in wanted {
                t.prefixes.entry(p.clone()).or_default().insert(id);
                if !all.contains(&p) {
                    all.push(p);
                }
            }
        }
        t.clients.insert(
            id,
            Tracker {
                mode,
                prefixes: all,
                broken: false,
            },
        );
        if new {
            self.active.fetch_add(1, Ordering::Relaxed);
        }
        Ok(new)
    }

    /// `CLIENT TRACKING OFF` or a disconnect. Returns true when the client was tracking.
    pub fn disable(&self, id: u64) -> bool {
        if self.active() == 0 {
            return false;
        }
        let mut t = self.table.lock();
        let Some(c) = t.clients.remove(&id) else {
            return false;
        };
        for p in c.prefixes {
            if let Some(set) = t.prefixes.get_mut(&p) {
                set.remove(&id);
                if set.is_empty() {
                    t.prefixes.remove(&p);
                }
            }
        }
        self.active.fetch_sub(1, Ordering::Relaxed);
        true
    }

    /// The client's `BCAST` prefixes and whether its redirection broke.
    pub fn info(&self, id: u64) -> (Vec<Bytes>, bool) {
        let t = self.table.lock();
        t.clients.get(&id).map_or((Vec::new(), false), |c| {
            let mut p = c.prefixes.clone();
            p.sort();
            (p, c.broken)
        })
    }

    /// Marks the client's redirection as broken.
    pub fn mark_broken(&self, id: u64) {
        if let Some(c) = self.table.lock().clients.get_mut(&id) {
            c.broken = true;
        }
    }

    /// Remembers that client `id` read `keys`. Past `tracking-table-max-keys`, keys are dropped
    /// and their readers invalidated; those messages are returned.
    pub fn remember<'k>(&self, id: u64, keys: impl Iterator<Item = &'k [u8]>) -> Vec<Message> {
        let mut t = self.table.lock();
        for key in keys {
            let readers = t.keys.entry(Bytes::copy_from_slice(key)).or_default();
            if readers.insert(id) {
                t.items += 1;
            }
        }
        let max = self.max_keys.load(Ordering::Relaxed) as usize;
        let mut out = Vec::new();
        while max > 0 && t.keys.len() > max {
            let Some(key) = t.keys.keys().next().cloned() else {
                break;
            };
            invalidate_key(&mut t, &key, 0, &mut out);
        }
        out
    }

    /// Keys written by client `writer` (0 for the server itself: expiry, eviction): the
    /// messages owed for them.
    pub fn invalidate<'k>(
        &self,
        writer: u64,
        keys: impl Iterator<Item = &'k [u8]>,
    ) -> Vec<Message> {
        let mut t = self.table.lock();
        let mut out = Vec::new();
        let mut broadcast: BTreeMap<Bytes, Vec<Bytes>> = BTreeMap::new();
        for key in keys {
            for (prefix, _) in t.prefixes.iter() {
                if key.starts_with(prefix) {
                    let list = broadcast.entry(prefix.clone()).or_default();
                    if !list.iter().any(|k| k[..] == *key) {
                        list.push(Bytes::copy_from_slice(key));
                    }
                }
            }
            if !t.keys.is_empty() {
                invalidate_key(&mut t, key, writer, &mut out);
            }
        }
        for (prefix, keys) in broadcast {
            let Some(clients) = t.prefixes.get(&prefix) else {
                continue;
            };
            for &id in clients {
                let Some(c) = t.clients.get(&id) else {
                    continue;
                };
                // Keys a NOLOOP client changed itself are not announced back to it.
                if c.mode.noloop && id == writer {
                    continue;
                }
                out.push(Message {
                    tracker: id,
                    redirect: c.mode.redirect,
                    payload: Payload::Keys(keys.clone()),
                });
            }
        }
        out
    }

    /// `FLUSHALL`/`FLUSHDB`: every tracking client is told everything changed, and the table is
    /// emptied.
    pub fn flush(&self) -> Vec<Message> {
        let mut t = self.table.lock();
        t.keys.clear();
        t.items = 0;
        let mut out: Vec<Message> = t
            .clients
            .iter()
            .map(|(&id, c)| Message {
                tracker: id,
                redirect: c.mode.redirect,
                payload: Payload::All,
            })
            .collect();
        out.sort_by_key(|m| m.tracker);
        out
    }

    /// `INFO`'s `tracking_total_keys`, `tracking_total_items` and `tracking_total_prefixes`.
    pub fn totals(&self) -> (usize, usize, usize) {
        let t = self.table.lock();
        (t.keys.len(), t.items, t.prefixes.len())
    }
}

/// The frame that carries `payload` to a client: a RESP3 push, or for a RESP2 client that
/// receives another client's invalidations while subscribed to something, a message on
/// `__redis__:invalidate`. `None` when the client cannot be told (RESP2 without redirection).
pub fn frame(
    payload: &Payload,
    protocol: Protocol,
    redirected: bool,
    subscribed: bool,
) -> Option<Frame> {
    let value = match payload {
        Payload::Keys(keys) => Frame::Array(keys.iter().cloned().map(Frame::Bulk).collect()),
        Payload::All => Frame::Null,
    };
    if protocol != Protocol::Resp2 {
        Some(Frame::Push(vec![Frame::bulk("invalidate"), value]))
    } else if redirected && subscribed {
        Some(Frame::Push(vec![
            Frame::bulk("message"),
            Frame::bulk(INVALIDATE_CHANNEL),
            value,
        ]))
    } else {
        None
    }
}

/// The channel a RESP2 client listens on for redirected invalidations.
pub const INVALIDATE_CHANNEL: &str = "__redis__:invalidate";

/// Sends `messages`: the frames for client `me` (the one whose command caused them, speaking
/// `protocol`, `subscribed` to something or not) are returned, to be written after its reply as
/// Redis does; the others go to their clients' mailboxes. A redirection to a client that has
/// gone is reported to the tracking client instead (`tracking-redir-broken`), as Redis does.
pub fn deliver(
    shared: &Shared,
    messages: Vec<Message>,
    me: u64,
    protocol: Protocol,
    subscribed: bool,
) -> Vec<Frame> {
    let mut mine = Vec::new();
    let now = shared.now_secs();
    for m in messages {
        let redirected = m.redirect != 0;
        let target = if redirected { m.redirect } else { m.tracker };
        if target == me {
            mine.extend(frame(&m.payload, protocol, redirected, subscribed));
            continue;
        }
        let sent =
            shared
                .pubsub
                .push_to(target, |p, sub| frame(&m.payload, p, redirected, sub), now);
        if sent || !redirected || shared.clients.all().iter().any(|c| c.id == target) {
            continue;
        }
        shared.tracking.mark_broken(m.tracker);
        let broken = Frame::Push(vec![
            Frame::bulk("tracking-redir-broken"),
            Frame::Integer(m.redirect as i64),
        ]);
        if m.tracker == me {
            if protocol != Protocol::Resp2 {
                mine.push(broken);
            }
        } else {
            shared.pubsub.push_to(
                m.tracker,
                |p, _| (p != Protocol::Resp2).then(|| broken.clone()),
                now,
            );
        }
    }
    mine
}

/// One key changed: one message per client that read it (unless it is in `BCAST` mode now, or
/// changed the key itself under NOLOOP), and the key is forgotten.
fn invalidate_key(t: &mut Table, key: &[u8], writer: u64, out: &mut Vec<Message>) {
    let Some(readers) = t.keys.remove(key) else {
        return;
    };
    t.items -= readers.len();
    for id in readers {
        let Some(c) = t.clients.get(&id) else {
            continue;
        };
        if c.mode.bcast || (c.mode.noloop && id == writer) {
            continue;
        }
        out.push(Message {
            tracker: id,
            redirect: c.mode.redirect,
            payload: Payload::Keys(vec![Bytes::copy_from_slice(key)]),
        });
    }
}

/// Two prefixes overlap when one starts with the other.
fn overlaps(a: &[u8], b: &[u8]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &[&str]) -> Vec<Bytes> {
        list.iter().map(|k| Bytes::from(k.to_string())).collect()
    }

    fn default_mode() -> TrackingMode {
        TrackingMode::default()
    }

    #[test]
    fn a_read_key_is_invalidated_once_for_each_reader() {
        let t = Tracking::default();
        t.enable(1, default_mode(), &[]).unwrap();
        t.enable(2, default_mode(), &[]).unwrap();
        t.remember(1, [&b"k"[..]].into_iter());
        t.remember(2, [&b"k"[..]].into_iter());
        let msgs = t.invalidate(3, [&b"k"[..], &b"other"[..]].into_iter());
        assert_eq!(msgs.len(), 2);
        assert!(msgs
            .iter()
            .all(|m| m.payload == Payload::Keys(keys(&["k"]))));
        // Forgotten after the first change.
        assert!(t.invalidate(3, [&b"k"[..]].into_iter()).is_empty());
        assert_eq!(t.totals(), (0, 0, 0));
    }

    #[test]
    fn noloop_skips_the_clients_own_writes() {
        let t = Tracking::default();
        let mode = TrackingMode {
            noloop: true,
            ..default_mode()
        };
        t.enable(1, mode, &[]).unwrap();
        t.remember(1, [&b"k"[..]].into_iter());
        assert!(t.invalidate(1, [&b"k"[..]].into_iter()).is_empty());
    }

    #[test]
    fn bcast_batches_a_commands_keys_per_prefix() {
        let t = Tracking::default();
        let mode = TrackingMode {
            bcast: true,
            ..default_mode()
        };
        t.enable(1, mode, &keys(&["user:", "order:"])).unwrap();
        let msgs = t.invalidate(
            2,
            [&b"user:1"[..], &b"order:9"[..], &b"user:2"[..]].into_iter(),
        );
        let payloads: Vec<_> = msgs.into_iter().map(|m| m.payload).collect();
        assert_eq!(
            payloads,
            vec![
                Payload::Keys(keys(&["order:9"])),
                Payload::Keys(keys(&["user:1", "user:2"]))
            ]
        );
    }

    #[test]
    fn overlapping_prefixes_are_refused_like_redis() {
        let t = Tracking::default();
        let mode = TrackingMode {
            bcast: true,
            ..default_mode()
        };
        let err = t.enable(1, mode, &keys(&["a", "ab"])).unwrap_err();
        assert!(err
            .message()
            .contains("overlaps with another provided prefix 'ab'"));
        t.enable(1, mode, &keys(&["a"])).unwrap();
        let err = t.enable(1, mode, &keys(&["abc"])).unwrap_err();
        assert!(err
            .message()
            .contains("overlaps with an existing prefix 'a'"));
    }

    #[test]
    fn the_table_is_bounded_by_max_keys() {
        let t = Tracking::default();
        t.max_keys.store(2, Ordering::Relaxed);
        t.enable(1, default_mode(), &[]).unwrap();
        let dropped = t.remember(1, [&b"a"[..], &b"b"[..], &b"c"[..]].into_iter());
        assert_eq!(dropped.len(), 1, "one key dropped with an invalidation");
        assert_eq!(t.totals().0, 2);
    }
}
