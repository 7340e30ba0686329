//! What Shoal knows about itself: per-thread command counters and latency histograms, and the
//! encoders that turn them into `INFO` fields and Prometheus text.
//!
//! Like the storage engine, this crate does no I/O and reads no clock: the server measures and
//! passes durations in, and serves what this crate renders.

pub mod expose;
pub mod histogram;
pub mod latency;
pub mod meter;
pub mod ratelimit;
pub mod slowlog;
pub mod stats;

pub use meter::{Meter, Meters};
pub use stats::{CmdTotals, Stats, Totals};
