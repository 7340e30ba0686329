//! Instantaneous rates (`instantaneous_ops_per_sec` and friends): a running counter sampled
//! periodically, averaged over the last 16 samples as Redis does.

use parking_lot::Mutex;

/// Samples averaged, as Redis's `STATS_METRIC_SAMPLES`.
const SAMPLES: usize = 16;

/// Milliseconds between samples, as Redis's `run_with_period(100)`: the window is 1.6 seconds
/// whatever `hz` the background cycle runs at.
const PERIOD_MS: u64 = 100;

#[derive(Default)]
struct State {
    last_ms: u64,
    last_value: u64,
    started: bool,
    samples: [u64; SAMPLES],
    next: usize,
}

/// The rate of one counter.
#[derive(Default)]
pub struct Meter {
    state: Mutex<State>,
}

impl Meter {
    /// Records the counter's value at `now_ms`. The background cycle calls this on every tick;
    /// calls less than 100 ms after the last sample are ignored.
    pub fn sample(&self, now_ms: u64, value: u64) {
        let mut s = self.state.lock();
        if !s.started {
            s.started = true;
            s.last_ms = now_ms;
            s.last_value = value;
            return;
        }
        let elapsed = now_ms.saturating_sub(s.last_ms);
        if elapsed < PERIOD_MS {
            return;
        }
        // A counter reset (CONFIG RESETSTAT) reads as no activity rather than a huge negative.
        let delta = value.saturating_sub(s.last_value);
        let i = s.next;
        s.samples[i] = delta.saturating_mul(1000) / elapsed;
        s.next = (i + 1) % SAMPLES;
        s.last_ms = now_ms;
        s.last_value = value;
    }

    /// The average rate per second over the last samples. Like Redis, the sum is divided by the
    /// full window even before it has filled.
    pub fn per_sec(&self) -> u64 {
        let s = self.state.lock();
        s.samples.iter().sum::<u64>() / SAMPLES as u64
    }
}

/// The rates `INFO stats` and the status page show.
#[derive(Default)]
pub struct Meters {
    /// Commands per second.
    pub ops: Meter,
    /// Bytes read from clients per second.
    pub net_input: Meter,
    /// Bytes written to clients per second.
    pub net_output: Meter,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_the_last_sixteen_samples() {
        let m = Meter::default();
        m.sample(1000, 0);
        assert_eq!(m.per_sec(), 0);
        // 100 commands every 100 ms is 1000 per second, once the window is full.
        for i in 1..=16 {
            m.sample(1000 + i * 100, i * 100);
        }
        assert_eq!(m.per_sec(), 1000);
        // Half a window of silence halves the average.
        for i in 17..=24 {
            m.sample(1000 + i * 100, 1600);
        }
        assert_eq!(m.per_sec(), 500);
    }

    #[test]
    fn samples_closer_than_100_ms_are_ignored() {
        let m = Meter::default();
        m.sample(0, 0);
        // At hz 100 the cycle calls every 10 ms; only every tenth call makes a sample.
        for i in 1..=160u64 {
            m.sample(i * 10, i * 10);
        }
        assert_eq!(m.per_sec(), 1000);
    }

    #[test]
    fn a_reset_counter_reads_as_idle() {
        let m = Meter::default();
        m.sample(0, 500);
        m.sample(100, 0);
        assert_eq!(m.per_sec(), 0);
    }
}
