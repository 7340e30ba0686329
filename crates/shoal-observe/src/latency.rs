//! The latency monitor behind `LATENCY`: for each event class (`command`, `fast-command`, and
//! later `expire-cycle`, `fork` and the like) the worst latency of each of the last
//! [`HISTORY_LEN`] seconds that had a spike of at least `latency-monitor-threshold` milliseconds,
//! plus the worst ever, and Redis 7.0's reports on them (`LATEST`, `HISTORY`, `GRAPH`, `DOCTOR`).
//!
//! Pure data: the server measures, compares with the threshold and passes the time in.

use std::fmt::Write;

/// Samples kept per event (Redis's `LATENCY_TS_LEN`).
pub const HISTORY_LEN: usize = 160;

/// Width of `LATENCY GRAPH`: the rule under the title, and the sparkline's columns per block.
const GRAPH_COLUMNS: usize = 80;

/// Height of the sparkline in rows.
const GRAPH_ROWS: usize = 4;

/// The sparkline's characters from low to high within one row; a full row below the top is `|`.
const GRAPH_FILL: [u8; 3] = *b"_o#";

/// One second's worst spike of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Unix time in seconds.
    pub time: u64,
    pub latency_ms: u64,
}

/// One line of `LATENCY LATEST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latest {
    pub event: String,
    /// The newest sample.
    pub time: u64,
    pub latency_ms: u64,
    /// The worst latency since the event was first recorded or last reset.
    pub max_ms: u64,
}

/// What `LATENCY DOCTOR` needs to know beyond the samples.
#[derive(Debug, Clone, Copy)]
pub struct DoctorContext {
    /// Unix time in seconds.
    pub now: u64,
    /// `latency-monitor-threshold`.
    pub threshold_ms: u64,
    /// `slowlog-log-slower-than`.
    pub slowlog_slower_than: i64,
    /// True when the process uses transparent huge pages (`AnonHugePages` above zero).
    pub huge_pages: bool,
}

/// The history of one event: a ring of samples, oldest overwritten first.
#[derive(Debug, Clone)]
struct Series {
    samples: [Option<Sample>; HISTORY_LEN],
    /// Where the next new second goes.
    next: usize,
    max: u64,
}

impl Series {
    fn new() -> Series {
        Series {
            samples: [None; HISTORY_LEN],
            next: 0,
            max: 0,
        }
    }

    fn add(&mut self, latency_ms: u64, now: u64) {
        self.max = self.max.max(latency_ms);
        // A second keeps only its worst spike.
        if let Some(last) = &mut self.samples[self.last_index()] {
            if last.time == now {
                last.latency_ms = last.latency_ms.max(latency_ms);
                return;
            }
        }
        self.samples[self.next] = Some(Sample {
            time: now,
            latency_ms,
        });
        self.next = (self.next + 1) % HISTORY_LEN;
    }

    fn last_index(&self) -> usize {
        (self.next + HISTORY_LEN - 1) % HISTORY_LEN
    }

    fn oldest_first(&self) -> impl Iterator<Item = Sample> + '_ {
        (0..HISTORY_LEN).filter_map(move |j| self.samples[(self.next + j) % HISTORY_LEN])
    }

    /// `(samples, average, mean absolute deviation, seconds since the oldest sample)`, with
    /// Redis's integer arithmetic.
    fn stats(&self, now: u64) -> (u64, u64, u64, u64) {
        let samples: Vec<u64> = self.oldest_first().map(|s| s.latency_ms).collect();
        let n = samples.len() as u64;
        if n == 0 {
            return (0, 0, 0, 0);
        }
        let avg = samples.iter().sum::<u64>() / n;
        let mad = samples.iter().map(|&l| avg.abs_diff(l)).sum::<u64>() / n;
        let oldest = self.oldest_first().map(|s| s.time).min().unwrap_or(now);
        let period = now.saturating_sub(oldest).max(1);
        (n, avg, mad, period)
    }
}

/// Every event's history. Events appear in the order they were first recorded (Redis's order is
/// its hash table's, which varies between runs).
#[derive(Debug, Default)]
pub struct LatencyMonitor {
    events: Vec<(String, Box<Series>)>,
}

impl LatencyMonitor {
    /// Records a spike of `latency_ms` for `event` at `now` (Unix seconds). The caller has already
    /// compared it with `latency-monitor-threshold`.
    pub fn add(&mut self, event: &str, latency_ms: u64, now: u64) {
        match self.events.iter_mut().find(|(e, _)| e == event) {
            Some((_, series)) => series.add(latency_ms, now),
            None => {
                let mut series = Box::new(Series::new());
                series.add(latency_ms, now);
                self.events.push((event.to_string(), series));
            }
        }
    }

    /// `LATENCY RESET [event]`: forgets one event (named in any case) or, with `None`, every
    /// event. Returns how many were forgotten.
    pub fn reset(&mut self, event: Option<&[u8]>) -> usize {
        let before = self.events.len();
        self.events
            .retain(|(e, _)| event.is_some_and(|name| !e.as_bytes().eq_ignore_ascii_case(name)));
        before - self.events.len()
    }

    /// `LATENCY LATEST`: each event's newest sample and worst latency.
    pub fn latest(&self) -> Vec<Latest> {
        self.events
            .iter()
            .filter_map(|(event, s)| {
                let last = s.samples[s.last_index()]?;
                Some(Latest {
                    event: event.clone(),
                    time: last.time,
                    latency_ms: last.latency_ms,
                    max_ms: s.max,
                })
            })
            .collect()
    }

    /// `LATENCY HISTORY event`: the event's samples, oldest first; none for an unknown event.
    /// Names are case-sensitive here, as in Redis.
    pub fn history(&self, event: &[u8]) -> Vec<Sample> {
        self.series(event)
            .map(|s| s.oldest_first().collect())
            .unwrap_or_default()
    }

    /// `LATENCY GRAPH event` at `now`: a title, a rule, and an ASCII sparkline of the samples,
    /// each column labelled with how long ago it was. `None` for an unknown event.
    pub fn graph(&self, event: &[u8], now: u64) -> Option<String> {
        let (name, series) = self.events.iter().find(|(e, _)| e.as_bytes() == event)?;
        let samples: Vec<Sample> = series.oldest_first().collect();
        let high = samples.iter().map(|s| s.latency_ms).max().unwrap_or(0);
        let low = samples.iter().map(|s| s.latency_ms).min().unwrap_or(0);
        let mut out = format!(
            "{name} - high {high} ms, low {low} ms (all time high {} ms)\n{}\n",
            series.max,
            "-".repeat(GRAPH_COLUMNS)
        );
        let values: Vec<f64> = samples.iter().map(|s| s.latency_ms as f64).collect();
        let labels: Vec<String> = samples
            .iter()
            .map(|s| age_label(now as i64 - s.time as i64))
            .collect();
        sparkline(&mut out, &values, &labels);
        Some(out)
    }

    /// `LATENCY DOCTOR`: Redis's report, statistics for each event and advice for the events
    /// Shoal produces.
    pub fn doctor(&self, cx: &DoctorContext) -> String {
        if self.events.is_empty() && cx.threshold_ms == 0 {
            return DOCTOR_DISABLED.to_string();
        }
        let mut report = String::new();
        let mut advice = Advice::default();
        for (n, (event, series)) in self.events.iter().enumerate() {
            if n == 0 {
                report.push_str(DOCTOR_SPIKES);
            }
            let (samples, avg, mad, period) = series.stats(cx.now);
            let _ = write!(
                report,
                "{}. {event}: {samples} latency spikes (average {avg}ms, mean deviation {mad}ms, period {:.2} sec). Worst all time event {}ms.",
                n + 1,
                period as f64 / samples.max(1) as f64,
                series.max
            );
            match event.as_str() {
                "command" => {
                    if cx.slowlog_slower_than < 0 {
                        advice.slowlog_enable = true;
                    } else if cx.slowlog_slower_than / 1000 > cx.threshold_ms as i64 {
                        advice.slowlog_tune = true;
                    }
                    advice.slowlog_inspect = true;
                    advice.large_objects = true;
                }
                "fast-command" => advice.scheduler = true,
                _ => {}
            }
            report.push('\n');
        }
        advice.huge_pages = cx.huge_pages;
        if !advice.any() {
            report.push_str(if self.events.is_empty() {
                DOCTOR_NO_SPIKES
            } else {
                DOCTOR_NO_ADVICE
            });
            return report;
        }
        report.push_str("\nI have a few advices for you:\n\n");
        let threshold_us = cx.threshold_ms.saturating_mul(1000);
        if advice.slowlog_enable {
            let _ = writeln!(report, "- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than {threshold_us}'. If the Slow log is disabled Redis is not able to log slow commands execution for you.");
        }
        if advice.slowlog_tune {
            let _ = writeln!(report, "- Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {threshold_us}'.");
        }
        if advice.slowlog_inspect {
            report.push_str(ADVICE_SLOWLOG_INSPECT);
        }
        if advice.scheduler {
            report.push_str(ADVICE_SCHEDULER);
        }
        if advice.large_objects {
            report.push_str(ADVICE_LARGE_OBJECTS);
        }
        if advice.huge_pages {
            report.push_str(ADVICE_HUGE_PAGES);
        }
        report
    }

    fn series(&self, event: &[u8]) -> Option<&Series> {
        self.events
            .iter()
            .find(|(e, _)| e.as_bytes() == event)
            .map(|(_, s)| s.as_ref())
    }
}

/// The advice `LATENCY DOCTOR` gives, in the order it gives it.
#[derive(Default)]
struct Advice {
    slowlog_enable: bool,
    slowlog_tune: bool,
    slowlog_inspect: bool,
    scheduler: bool,
    large_objects: bool,
    huge_pages: bool,
}

impl Advice {
    fn any(&self) -> bool {
        self.slowlog_enable
            || self.slowlog_tune
            || self.slowlog_inspect
            || self.scheduler
            || self.large_objects
            || self.huge_pages
    }
}

// The report's texts are Redis 7.0's, word for word, because clients and operators compare them.
const DOCTOR_DISABLED: &str = "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n";
const DOCTOR_SPIKES: &str = "Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n";
const DOCTOR_NO_SPIKES: &str = "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n";
const DOCTOR_NO_ADVICE: &str = "\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please use the Redis community to get some help, providing this report in your help request.\n";
const ADVICE_SLOWLOG_INSPECT: &str = "- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n";
const ADVICE_SCHEDULER: &str = "- The system is slow to execute Redis code paths not containing system calls. This usually means the system does not provide Redis CPU time to run for long periods. You should try to:\n  1) Lower the system load.\n  2) Use a computer / VM just for Redis if you are running other software in the same system.\n  3) Check if you have a \"noisy neighbour\" problem.\n  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n  5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, if you are using Jemalloc. However this may create fragmentation problems.\n";
const ADVICE_LARGE_OBJECTS: &str = "- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you have very large objects that are often deleted, expired, or evicted, try to fragment those objects into multiple smaller objects.\n";
const ADVICE_HUGE_PAGES: &str = "- I detected a non zero amount of anonymous huge pages used by your process. This creates very serious latency events in different conditions, especially when Redis is persisting on disk. To disable THP support use the command 'echo never > /sys/kernel/mm/transparent_hugepage/enabled', make sure to also add it into /etc/rc.local so that the command will be executed again after a reboot. Note that even if you have already disabled THP, you still need to restart the Redis process to get rid of the huge pages already created.\n";

/// How long ago a sample was, as the graph labels it: `12s`, `3m`, `5h`, `2d`.
fn age_label(elapsed: i64) -> String {
    if elapsed < 60 {
        format!("{elapsed}s")
    } else if elapsed < 3600 {
        format!("{}m", elapsed / 60)
    } else if elapsed < 3600 * 24 {
        format!("{}h", elapsed / 3600)
    } else {
        format!("{}d", elapsed / (3600 * 24))
    }
}

/// Renders `values` as a filled sparkline of [`GRAPH_ROWS`] rows, in blocks of
/// [`GRAPH_COLUMNS`] columns, each column's label written vertically underneath after a blank
/// row: the layout of Redis's `sparklineRender`.
fn sparkline(out: &mut String, values: &[f64], labels: &[String]) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let range = if max - min == 0.0 { 1.0 } else { max - min };
    let steps = (GRAPH_FILL.len() * GRAPH_ROWS) as i64;
    // Each value's height in steps, truncated the way Redis's C arithmetic truncates it.
    let heights: Vec<i64> = values
        .iter()
        .map(|v| {
            let scaled = ((v - min) * steps as f64) as i64;
            ((scaled as f64 / range) as i64).clamp(0, steps - 1)
        })
        .collect();
    for start in (0..values.len()).step_by(GRAPH_COLUMNS) {
        if start != 0 {
            out.push('\n');
        }
        let end = (start + GRAPH_COLUMNS).min(values.len());
        sparkline_block(out, &heights[start..end], &labels[start..end]);
    }
}

fn sparkline_block(out: &mut String, heights: &[i64], labels: &[String]) {
    let fill = GRAPH_FILL.len() as i64;
    let mut line = vec![b' '; heights.len()];
    for row in 0..GRAPH_ROWS {
        let floor = (GRAPH_ROWS - row - 1) as i64 * fill;
        for (c, &h) in line.iter_mut().zip(heights) {
            let idx = h - floor;
            *c = match idx {
                i if i < 0 => b' ',
                i if i < fill => GRAPH_FILL[i as usize],
                _ => b'|',
            };
        }
        push_line(out, &line);
    }
    // A blank row, then the labels top to bottom.
    push_line(out, &vec![b' '; heights.len()]);
    let tallest = labels.iter().map(String::len).max().unwrap_or(0);
    for depth in 0..tallest {
        let row: Vec<u8> = labels
            .iter()
            .map(|l| l.as_bytes().get(depth).copied().unwrap_or(b' '))
            .collect();
        push_line(out, &row);
    }
}

fn push_line(out: &mut String, line: &[u8]) {
    out.push_str(&String::from_utf8_lossy(line));
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doctor_cx(now: u64) -> DoctorContext {
        DoctorContext {
            now,
            threshold_ms: 100,
            slowlog_slower_than: 10_000,
            huge_pages: false,
        }
    }

    #[test]
    fn one_sample_per_second_keeping_the_worst() {
        let mut m = LatencyMonitor::default();
        m.add("command", 200, 1000);
        m.add("command", 150, 1000);
        m.add("command", 300, 1001);
        m.add("command", 120, 1003);
        let history: Vec<(u64, u64)> = m
            .history(b"command")
            .iter()
            .map(|s| (s.time, s.latency_ms))
            .collect();
        assert_eq!(history, vec![(1000, 200), (1001, 300), (1003, 120)]);
        assert_eq!(
            m.latest(),
            vec![Latest {
                event: "command".into(),
                time: 1003,
                latency_ms: 120,
                max_ms: 300
            }]
        );
        // HISTORY matches names exactly, RESET in any case.
        assert!(m.history(b"COMMAND").is_empty());
        assert_eq!(m.reset(Some(b"COMMAND")), 1);
        assert!(m.latest().is_empty());
    }

    #[test]
    fn history_keeps_the_last_160_seconds_max_survives() {
        let mut m = LatencyMonitor::default();
        m.add("command", 999, 1);
        for t in 2..=200 {
            m.add("command", t, t);
        }
        let history = m.history(b"command");
        assert_eq!(history.len(), HISTORY_LEN);
        assert_eq!(history[0].time, 41);
        assert_eq!(history[HISTORY_LEN - 1].time, 200);
        assert_eq!(m.latest()[0].max_ms, 999);
    }

    #[test]
    fn reset_all_or_some() {
        let mut m = LatencyMonitor::default();
        m.add("command", 10, 1);
        m.add("fast-command", 10, 1);
        assert_eq!(m.reset(Some(b"nope")), 0);
        assert_eq!(m.reset(None), 2);
        assert_eq!(m.reset(None), 0);
    }

    #[test]
    fn graph_of_three_spikes() {
        let mut m = LatencyMonitor::default();
        m.add("command", 200, 100);
        m.add("command", 150, 102);
        m.add("command", 300, 103);
        let expected = format!(
            "command - high 300 ms, low 150 ms (all time high 300 ms)\n{}\n  #\n  |\no |\n|_|\n   \n421\nsss\n",
            "-".repeat(80)
        );
        assert_eq!(m.graph(b"command", 104).as_deref(), Some(expected.as_str()));
        assert_eq!(m.graph(b"other", 104), None);
    }

    #[test]
    fn graph_of_one_spike_and_old_labels() {
        let mut m = LatencyMonitor::default();
        m.add("command", 200, 1000);
        let graph = m.graph(b"command", 1000 + 7200).unwrap();
        assert!(graph.ends_with("-\n \n \n \n_\n \n2\nh\n"), "{graph:?}");
    }

    #[test]
    fn graph_wraps_at_80_columns() {
        let mut m = LatencyMonitor::default();
        for t in 0..100 {
            m.add("command", 100 + t, 1000 + t);
        }
        let graph = m.graph(b"command", 1100).unwrap();
        let lines: Vec<&str> = graph.lines().collect();
        // Title, rule, 4 rows, blank, 3 label rows; an empty line; the next 20 columns.
        assert_eq!(lines[2].len(), 80);
        assert_eq!(lines[10], "");
        assert_eq!(lines[11].len(), 20);
    }

    #[test]
    fn doctor_when_disabled_and_quiet() {
        let m = LatencyMonitor::default();
        let mut cx = doctor_cx(0);
        cx.threshold_ms = 0;
        assert!(m
            .doctor(&cx)
            .starts_with("I'm sorry, Dave, I can't do that."));
        assert!(m
            .doctor(&doctor_cx(0))
            .starts_with("Dave, no latency spike was observed"));
        cx.threshold_ms = 100;
        cx.huge_pages = true;
        assert!(m
            .doctor(&cx)
            .contains("- I detected a non zero amount of anonymous huge pages"));
    }

    #[test]
    fn doctor_on_command_spikes() {
        let mut m = LatencyMonitor::default();
        m.add("command", 200, 100);
        m.add("command", 150, 102);
        m.add("command", 300, 103);
        let report = m.doctor(&doctor_cx(106));
        let expected = format!(
            "{DOCTOR_SPIKES}1. command: 3 latency spikes (average 216ms, mean deviation 55ms, period 2.00 sec). Worst all time event 300ms.\n\nI have a few advices for you:\n\n{ADVICE_SLOWLOG_INSPECT}{ADVICE_LARGE_OBJECTS}"
        );
        assert_eq!(report, expected);

        let mut cx = doctor_cx(106);
        cx.slowlog_slower_than = -1;
        assert!(m
            .doctor(&cx)
            .contains("'CONFIG SET slowlog-log-slower-than 100000'. If the Slow log is disabled"));
        cx.slowlog_slower_than = 500_000;
        assert!(m
            .doctor(&cx)
            .contains("Please use 'CONFIG SET slowlog-log-slower-than 100000'.\n"));
    }

    #[test]
    fn doctor_on_fast_command_spikes() {
        let mut m = LatencyMonitor::default();
        m.add("fast-command", 120, 100);
        let report = m.doctor(&doctor_cx(100));
        assert!(report.contains("1. fast-command: 1 latency spikes (average 120ms, mean deviation 0ms, period 1.00 sec)."));
        assert!(report.ends_with(ADVICE_SCHEDULER));
    }

    #[test]
    fn doctor_on_other_events_has_no_advice() {
        let mut m = LatencyMonitor::default();
        m.add("expire-cycle", 120, 100);
        assert!(m.doctor(&doctor_cx(100)).ends_with(DOCTOR_NO_ADVICE));
    }
}
