//! Log rate limiting: a line for an event that can repeat without bound (a slow command under
//! `slowlog-log-slower-than 0`, a client refused at `maxclients` during a reconnect storm) is
//! written at most once a second, with the count of the lines held back since the last one, so
//! the log stays readable and the disk cannot fill.

use std::sync::atomic::{AtomicU64, Ordering};

/// Admits at most one event per second.
#[derive(Default)]
pub struct EverySecond {
    /// The second (Unix time) of the last admitted event.
    last: AtomicU64,
    /// Events held back since the last admitted one.
    suppressed: AtomicU64,
}

impl EverySecond {
    /// Returns `Some(held back)` when an event at `now_secs` may be logged, with the number of
    /// events held back since the last logged one; `None` when it must not be.
    pub fn admit(&self, now_secs: u64) -> Option<u64> {
        let last = self.last.load(Ordering::Relaxed);
        if now_secs > last
            && self
                .last
                .compare_exchange(last, now_secs, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_second_with_the_count_held_back() {
        let limit = EverySecond::default();
        assert_eq!(limit.admit(100), Some(0));
        assert_eq!(limit.admit(100), None);
        assert_eq!(limit.admit(100), None);
        assert_eq!(limit.admit(101), Some(2));
        assert_eq!(limit.admit(101), None);
        // A clock that steps back admits nothing until it passes the last second again.
        assert_eq!(limit.admit(99), None);
        assert_eq!(limit.admit(102), Some(2));
    }
}
