//! The storage engine: a keyspace of databases split into hash-slot tables grouped into lock
//! stripes, compact value encodings, expiry, eviction and memory accounting.
//!
//! **Architecture invariant:** this crate does no I/O, spawns no thread and never reads a clock.
//! Time is an argument (`now`, Unix milliseconds) so expiry and eviction are tested without
//! sleeping; the server crate decides when cycles run.

mod entry;
mod evict;
mod expire;
mod gate;
mod glob;
mod keyspace;
pub mod notify;
mod scan;
mod slot;
mod table;
pub mod types;
mod watch;

pub use entry::{
    alloc_size, parse_canonical_i64, Encoding, Entry, Kind, NewString, Object, StrRef, INLINE_MAX,
};
pub use evict::{
    idle_ms, lfu_decayed, lru_clock, EvictOutcome, EvictionConfig, EvictionSettings, Policy,
};
pub use expire::{ExpireCycleStats, ExpireEffort};
pub use gate::{ExclusiveEntry, Gate, SharedEntry};
pub use glob::glob_match;
pub use keyspace::{
    DbInfo, EntryMut, EventKind, Garbage, Journal, KeyEvent, Keyspace, Locked, NotLocked,
    StripeStats,
};
pub use slot::{crc16, key_slot, SLOTS};
pub use table::SlotTable;
pub use types::TypeLimits;
pub use watch::WatchToken;
