//! Latency histograms: a log-linear layout with the bucket boundaries of Redis 7's HdrHistogram
//! (two significant digits, one-nanosecond unit), kept in single-writer atomics so the command
//! path records without a lock and any thread can read.
//!
//! Values below 256 ns get one bucket each; above that every power of two is split into 128
//! equal buckets, so a bucket is never wider than 1/128 of its values (0.8 %). Because the
//! boundaries are Redis's, percentiles (`INFO latencystats`) and the cumulative distribution
//! (`LATENCY HISTOGRAM`) come out exactly as Redis computes them from the same durations (the
//! statistics record whole microseconds, as Redis does, and reads clamp at Redis's one-second
//! ceiling).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Values below `1 << LINEAR_BITS` have a bucket each.
const LINEAR_BITS: u32 = 8;
/// Buckets per power of two above the linear range.
const HALF: u64 = 1 << (LINEAR_BITS - 1);
/// Durations are clamped below this (about 137 seconds): longer commands are counted as this.
pub const MAX_NANOS: u64 = (1 << 37) - 1;
/// Number of buckets needed to cover `0..=MAX_NANOS`.
pub const BUCKETS: usize = index(MAX_NANOS) + 1;
/// Buckets are allocated in groups of this many (one power of two's worth), on first use.
const GROUP: usize = HALF as usize;
/// Number of groups.
const GROUPS: usize = BUCKETS / GROUP;
const _: () = assert!(GROUPS * GROUP == BUCKETS);
/// Redis clamps recorded durations to one second (`LATENCY_HISTOGRAM_MAX_VALUE`).
const REDIS_MAX_NANOS: u64 = 1_000_000_000;

/// The bucket of a value.
pub const fn index(v: u64) -> usize {
    let v = if v > MAX_NANOS { MAX_NANOS } else { v };
    if v < (1 << LINEAR_BITS) {
        return v as usize;
    }
    let e = 63 - v.leading_zeros();
    let shift = e - LINEAR_BITS + 1;
    (shift as u64 * HALF + (v >> shift)) as usize
}

/// The smallest value that lands in bucket `i`.
pub const fn lowest(i: usize) -> u64 {
    let i = i as u64;
    if i < (1 << LINEAR_BITS) {
        return i;
    }
    let shift = i / HALF - 1;
    let m = i % HALF + HALF;
    m << shift
}

/// The largest value that lands in bucket `i` (HdrHistogram's "highest equivalent value").
pub const fn highest(i: usize) -> u64 {
    let i64 = i as u64;
    if i64 < (1 << LINEAR_BITS) {
        return i64;
    }
    let shift = i64 / HALF - 1;
    lowest(i) + (1 << shift) - 1
}

/// One writer's histogram. Only the owning thread records, so a relaxed load and store cannot
/// lose an update, and readers see each bucket's count as of some recent moment.
///
/// Buckets come in groups of 128 (one power of two), each allocated the first time a value lands
/// in it: a command's durations usually span two to four powers of two, so a histogram costs a
/// few KiB instead of the 31 KiB that every bucket would take, per command and per thread.
pub struct Histogram {
    groups: [OnceLock<Box<[AtomicU64; GROUP]>>; GROUPS],
    sum: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            groups: std::array::from_fn(|_| OnceLock::new()),
            sum: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Records one duration (`value`, in nanoseconds, placed in a bucket) that took `nanos`
    /// nanoseconds (added to the sum). Must only be called by the owning thread.
    pub fn record(&self, value: u64, nanos: u64) {
        let i = index(value);
        let group = self.groups[i / GROUP]
            .get_or_init(|| Box::new(std::array::from_fn(|_| AtomicU64::new(0))));
        let c = &group[i % GROUP];
        c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        self.sum
            .store(self.sum.load(Ordering::Relaxed) + nanos, Ordering::Relaxed);
    }

    /// Adds this histogram into a snapshot.
    pub fn add_to(&self, snap: &mut Snapshot) {
        for (g, group) in self.groups.iter().enumerate() {
            let Some(group) = group.get() else { continue };
            for (j, c) in group.iter().enumerate() {
                let n = c.load(Ordering::Relaxed);
                if n > 0 {
                    snap.counts[g * GROUP + j] += n;
                    snap.total += n;
                }
            }
        }
        snap.sum_nanos += self.sum.load(Ordering::Relaxed);
    }
}

/// A merged, owned copy of one or more histograms, for reading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    counts: Vec<u64>,
    total: u64,
    sum_nanos: u64,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            counts: vec![0; BUCKETS],
            total: 0,
            sum_nanos: 0,
        }
    }
}

impl Snapshot {
    /// Number of recorded values.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Sum of the recorded durations, in nanoseconds (unclamped).
    pub fn sum_nanos(&self) -> u64 {
        self.sum_nanos
    }

    /// Adds another snapshot into this one (for latency over several commands).
    pub fn merge(&mut self, other: &Snapshot) {
        for (c, o) in self.counts.iter_mut().zip(&other.counts) {
            *c += *o;
        }
        self.total += other.total;
        self.sum_nanos += other.sum_nanos;
    }

    /// Subtracts an earlier snapshot of the same histograms (for `CONFIG RESETSTAT`).
    pub fn subtract(&mut self, earlier: &Snapshot) {
        for (c, e) in self.counts.iter_mut().zip(&earlier.counts) {
            *c -= (*e).min(*c);
        }
        self.total = self.counts.iter().sum();
        self.sum_nanos -= earlier.sum_nanos.min(self.sum_nanos);
    }

    /// The value at a percentile (0 to 100) as Redis's `INFO latencystats` computes it with
    /// HdrHistogram's `hdr_value_at_percentile`: find the first bucket at which the cumulative
    /// count reaches the rounded share of the total, and answer its highest equivalent value (its
    /// lowest for percentile 0). Durations over Redis's one-second ceiling count as the ceiling.
    /// 0 when empty.
    pub fn percentile(&self, p: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let requested = p.clamp(0.0, 100.0);
        let wanted = ((requested / 100.0 * self.total as f64 + 0.5) as u64).max(1);
        let ceiling = index(REDIS_MAX_NANOS);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if c > 0 && seen >= wanted {
                let i = i.min(ceiling);
                return if requested == 0.0 {
                    lowest(i)
                } else {
                    highest(i)
                };
            }
        }
        0
    }

    /// Recorded values whose bucket starts at or below `bound` nanoseconds: the cumulative count
    /// of a Prometheus bucket with that upper bound, each value taken at its bucket's lower edge.
    pub fn count_at_most(&self, bound: u64) -> u64 {
        let last = index(bound);
        self.counts[..=last].iter().sum()
    }

    /// The cumulative distribution `LATENCY HISTOGRAM` reports: for every power of two from
    /// 1024 ns up, the highest equivalent value of its bucket (in microseconds) and the number of
    /// values at or below it, listed only where that number grew. Like Redis, durations are
    /// clamped to one second first.
    pub fn redis_cdf(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        if self.total == 0 {
            return out;
        }
        let clamp = index(REDIS_MAX_NANOS);
        let mut previous = 0;
        let mut level: u64 = 1024;
        loop {
            let upto = index(level);
            // Durations past Redis's one-second ceiling count as the ceiling, so every level at
            // or above it holds them all.
            let cumulative = if upto >= clamp {
                self.total
            } else {
                self.counts[..=upto].iter().sum()
            };
            if cumulative > previous {
                out.push((highest(upto) / 1000, cumulative));
            }
            previous = cumulative;
            if cumulative >= self.total {
                return out;
            }
            level *= 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_cover_the_range() {
        let mut expected_low = 0;
        for i in 0..BUCKETS {
            assert_eq!(lowest(i), expected_low, "bucket {i}");
            assert!(highest(i) >= lowest(i));
            assert_eq!(index(lowest(i)), i);
            assert_eq!(index(highest(i)), i);
            expected_low = highest(i) + 1;
        }
        assert_eq!(highest(BUCKETS - 1), MAX_NANOS);
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn resolution_is_within_one_part_in_128() {
        for i in 256..BUCKETS {
            let width = highest(i) - lowest(i) + 1;
            assert!(width * 128 <= lowest(i), "bucket {i} too wide");
        }
    }

    #[test]
    fn percentiles_match_redis_for_known_durations() {
        // Redis reports an 11 us SET as p50=11.007 (11000 ns lands in the bucket 10944..=11007).
        let h = Histogram::default();
        h.record(11_000, 11_000);
        let mut s = Snapshot::default();
        h.add_to(&mut s);
        assert_eq!(s.percentile(50.0), 11_007);
        assert_eq!(s.percentile(99.9), 11_007);
        assert_eq!(s.redis_cdf(), vec![(16, 1)]);
    }

    #[test]
    fn percentile_rounds_like_hdr() {
        let h = Histogram::default();
        for v in 1..=100u64 {
            h.record(v * 1000, v * 1000);
        }
        let mut s = Snapshot::default();
        h.add_to(&mut s);
        assert_eq!(s.count(), 100);
        assert_eq!(s.percentile(50.0), highest(index(50_000)));
        assert_eq!(s.percentile(99.0), highest(index(99_000)));
        assert_eq!(s.percentile(100.0), highest(index(100_000)));
        // Percentile 0 is the lowest equivalent value, as in HdrHistogram.
        assert_eq!(s.percentile(0.0), lowest(index(1_000)));
        assert_eq!(s.sum_nanos(), 5050 * 1000);
    }

    #[test]
    fn cdf_lists_powers_of_two_where_the_count_grows() {
        let h = Histogram::default();
        for v in [500, 1000, 1500, 3000, 3000, 100_000, 5_000_000_000] {
            h.record(v, v);
        }
        let mut s = Snapshot::default();
        h.add_to(&mut s);
        let cdf = s.redis_cdf();
        // 500 and 1000 ns are at or below the 1024 ns level (1 us), 1500 below 2048 (2 us),
        // the two 3000s below 4096, 100 us below 131072, and the 5 s value is clamped to 1 s.
        assert_eq!(cdf[0], (1, 2));
        assert_eq!(cdf[1], (2, 3));
        assert_eq!(cdf[2], (4, 5));
        assert_eq!(cdf[3], (132, 6));
        assert_eq!(cdf.last().map(|x| x.1), Some(7));
        assert!(cdf
            .last()
            .is_some_and(|x| x.0 >= 1_000_000 && x.0 < 1_100_000));
    }

    #[test]
    fn prometheus_bounds_count_values_at_their_lower_edge() {
        // 100_200 ns shares the bucket 99_840..=100_351 with 100_000, so it counts as at most
        // 100 us.
        let h = Histogram::default();
        for v in [10_000, 50_000, 100_000, 100_200, 2_000_000] {
            h.record(v, v);
        }
        let mut s = Snapshot::default();
        h.add_to(&mut s);
        assert_eq!(s.count_at_most(9_900), 0);
        assert_eq!(s.count_at_most(10_000), 1);
        assert_eq!(s.count_at_most(100_000), 4);
        assert_eq!(s.count_at_most(1_000_000), 4);
        assert_eq!(s.count_at_most(u64::MAX), 5);
    }

    #[test]
    fn percentiles_clamp_at_redis_one_second_ceiling_and_groups_are_lazy() {
        let h = Histogram::default();
        h.record(30_000_000_000, 30_000_000_000);
        assert_eq!(h.groups.iter().filter(|g| g.get().is_some()).count(), 1);
        h.record(12_000, 12_000);
        h.record(13_000, 13_000);
        // 12 and 13 us share a power of two, hence a group.
        assert_eq!(h.groups.iter().filter(|g| g.get().is_some()).count(), 2);
        let mut s = Snapshot::default();
        h.add_to(&mut s);
        assert_eq!(s.percentile(100.0), highest(index(1_000_000_000)));
        assert_eq!(s.count_at_most(u64::MAX), 3);
        assert_eq!(s.count_at_most(10_000_000_000), 2);
    }

    #[test]
    fn subtract_removes_an_earlier_snapshot() {
        let h = Histogram::default();
        h.record(1000, 1000);
        let mut before = Snapshot::default();
        h.add_to(&mut before);
        h.record(2000, 2000);
        let mut after = Snapshot::default();
        h.add_to(&mut after);
        after.subtract(&before);
        assert_eq!(after.count(), 1);
        assert_eq!(after.sum_nanos(), 2000);
        assert_eq!(after.percentile(50.0), highest(index(2000)));
    }
}
