//! `WATCH` bookkeeping: which clients watch which keys, and the flag the write path raises on a
//! client whose watched key changed, so its next `EXEC` fails.
//!
//! Each stripe keeps, per database, the watchers of its own keys. The write path touches a key
//! under the stripe lock it already holds, so a change can never slip between a modification and
//! the check: when the table is empty (the common case) touching costs one branch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use smallvec::SmallVec;
use std::collections::HashMap;

/// One client's watch session: raised when any key it watches changes.
#[derive(Debug, Default)]
pub struct WatchToken {
    dirty: AtomicBool,
}

impl WatchToken {
    /// A fresh, clean token.
    pub fn new() -> Arc<WatchToken> {
        Arc::new(WatchToken::default())
    }

    /// True once a watched key changed (or the client asked for it with [`Self::mark`]).
    pub fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }

    /// Marks the session dirty.
    pub fn mark(&self) {
        self.dirty.store(true, Ordering::Release);
    }
}

/// One client watching one key.
#[derive(Debug)]
struct Watcher {
    token: Arc<WatchToken>,
    /// The key was already logically expired (but still stored) when it was watched. Its lazy
    /// deletion is then no change, as in Redis, where such a key was already invisible.
    expired: bool,
}

/// The watchers of one database's keys in one stripe.
#[derive(Debug, Default)]
pub(crate) struct WatchTable {
    keys: HashMap<Box<[u8]>, SmallVec<[Watcher; 1]>>,
}

impl WatchTable {
    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub(crate) fn add(&mut self, key: &[u8], token: &Arc<WatchToken>, expired: bool) {
        let watchers = self.keys.entry(key.into()).or_default();
        if !watchers.iter().any(|w| Arc::ptr_eq(&w.token, token)) {
            watchers.push(Watcher {
                token: token.clone(),
                expired,
            });
        }
    }

    pub(crate) fn remove(&mut self, key: &[u8], token: &Arc<WatchToken>) {
        if let Some(watchers) = self.keys.get_mut(key) {
            watchers.retain(|w| !Arc::ptr_eq(&w.token, token));
            if watchers.is_empty() {
                self.keys.remove(key);
            }
        }
    }

    /// Whether `token` watches `key` and the key was live when watched.
    pub(crate) fn watched_live(&self, key: &[u8], token: &Arc<WatchToken>) -> bool {
        self.keys.get(key).is_some_and(|ws| {
            ws.iter()
                .any(|w| Arc::ptr_eq(&w.token, token) && !w.expired)
        })
    }

    /// `key` was written (`exists` after the change) or deleted (`!exists`).
    #[inline]
    pub(crate) fn touch(&mut self, key: &[u8], exists: bool) {
        if self.keys.is_empty() {
            return;
        }
        if let Some(watchers) = self.keys.get_mut(key) {
            for w in watchers.iter_mut() {
                if w.expired && !exists {
                    // An already-expired key being deleted changes nothing a client could see.
                    w.expired = false;
                } else {
                    w.token.mark();
                }
            }
        }
    }

    /// The database is emptied (`FLUSHDB`, `FLUSHALL`) or exchanged with another (`SWAPDB`).
    /// `present` says whether a key is stored here now; `replacement` says, for a swap, whether
    /// it is stored in the incoming database and whether it is expired there. A watcher is
    /// dirtied only when its key's visible state can change, as Redis decides it.
    pub(crate) fn touch_all(
        &mut self,
        present: impl Fn(&[u8]) -> bool,
        replacement: Option<&dyn Fn(&[u8]) -> Option<bool>>,
    ) {
        for (key, watchers) in self.keys.iter_mut() {
            let here = present(key);
            let there = replacement.and_then(|r| r(key));
            if !here && there.is_none() {
                continue;
            }
            for w in watchers.iter_mut() {
                if w.expired {
                    match there {
                        // The expired key is gone and nothing replaces it: no visible change.
                        None => w.expired = false,
                        // An expired key is replaced by another expired one.
                        Some(true) => {}
                        Some(false) => w.token.mark(),
                    }
                } else if !here && there == Some(true) {
                    // A missing key is replaced by an expired one: still invisible.
                    w.expired = true;
                } else {
                    w.token.mark();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touching_a_watched_key_dirties_only_its_watchers() {
        let mut t = WatchTable::default();
        let (a, b) = (WatchToken::new(), WatchToken::new());
        t.add(b"k", &a, false);
        t.add(b"other", &b, false);
        t.touch(b"k", true);
        assert!(a.is_dirty());
        assert!(!b.is_dirty());
        t.touch(b"unwatched", true);
        assert!(!b.is_dirty());
    }

    #[test]
    fn deleting_a_key_that_was_expired_when_watched_is_no_change() {
        let mut t = WatchTable::default();
        let a = WatchToken::new();
        t.add(b"k", &a, true);
        t.touch(b"k", false);
        assert!(!a.is_dirty());
        // From now on the key counts as absent-and-watched: creating it is a change.
        t.touch(b"k", true);
        assert!(a.is_dirty());
    }

    #[test]
    fn removed_watchers_are_not_touched_and_empty_keys_are_dropped() {
        let mut t = WatchTable::default();
        let a = WatchToken::new();
        t.add(b"k", &a, false);
        t.remove(b"k", &a);
        assert!(t.is_empty());
        t.touch(b"k", true);
        assert!(!a.is_dirty());
    }

    #[test]
    fn a_flush_dirties_watchers_of_present_keys_only() {
        let mut t = WatchTable::default();
        let (a, b) = (WatchToken::new(), WatchToken::new());
        t.add(b"here", &a, false);
        t.add(b"gone", &b, false);
        t.touch_all(|k| k == b"here", None);
        assert!(a.is_dirty());
        assert!(!b.is_dirty());
    }

    #[test]
    fn a_swap_dirties_watchers_when_either_side_holds_the_key() {
        let mut t = WatchTable::default();
        let (a, b) = (WatchToken::new(), WatchToken::new());
        t.add(b"incoming", &a, false);
        t.add(b"incoming-expired", &b, false);
        let there = |k: &[u8]| match k {
            b"incoming" => Some(false),
            b"incoming-expired" => Some(true),
            _ => None,
        };
        t.touch_all(|_| false, Some(&there));
        assert!(a.is_dirty());
        assert!(
            !b.is_dirty(),
            "an expired key replacing a missing one is invisible"
        );
    }
}
