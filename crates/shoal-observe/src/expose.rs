//! The Prometheus text exposition format (version 0.0.4): metric families with `# HELP` and
//! `# TYPE` lines, escaped label values, and histograms with cumulative `le` buckets.
//!
//! Values are gathered at scrape time from the same counters `INFO` reads, so this module only
//! encodes; it never keeps state between scrapes.

use std::fmt::Write;

use crate::histogram::Snapshot;

/// The content type Prometheus expects for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds, in seconds, of the buckets of every latency histogram. They include the
/// thresholds the shipped alert rules use (50 ms, 100 ms, 200 ms) so those quantiles are
/// interpolated between close bounds.
pub const LATENCY_BOUNDS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A metric family's type.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Builds one exposition.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// An empty exposition.
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Starts a metric family. Every sample written after it until the next family must belong
    /// to it.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let _ = write!(self.out, "# HELP {name} ");
        for c in help.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                c => self.out.push(c),
            }
        }
        let _ = writeln!(self.out, "\n# TYPE {name} {kind}");
    }

    /// Writes one sample.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        self.labels(labels, None);
        self.out.push(' ');
        push_value(&mut self.out, value);
        self.out.push('\n');
    }

    /// A family with a single unlabelled sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// Writes a latency histogram's samples (`_bucket` for every bound and `+Inf`, `_sum` and
    /// `_count`), in seconds. The family must have been started with [`Kind::Histogram`].
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], snap: &Snapshot) {
        let mut le = String::new();
        for &bound in LATENCY_BOUNDS {
            le.clear();
            push_value(&mut le, bound);
            let nanos = (bound * 1e9).round() as u64;
            self.bucket(name, labels, &le, snap.count_at_most(nanos));
        }
        self.bucket(name, labels, "+Inf", snap.count());
        let _ = write!(self.out, "{name}_sum");
        self.labels(labels, None);
        self.out.push(' ');
        push_value(&mut self.out, snap.sum_nanos() as f64 / 1e9);
        let _ = write!(self.out, "\n{name}_count");
        self.labels(labels, None);
        let _ = writeln!(self.out, " {}", snap.count());
    }

    fn bucket(&mut self, name: &str, labels: &[(&str, &str)], le: &str, count: u64) {
        let _ = write!(self.out, "{name}_bucket");
        self.labels(labels, Some(le));
        let _ = writeln!(self.out, " {count}");
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let mut first = true;
        for (k, v) in labels.iter().copied().chain(le.map(|le| ("le", le))) {
            if !first {
                self.out.push(',');
            }
            first = false;
            let _ = write!(self.out, "{k}=\"");
            for c in v.chars() {
                match c {
                    '\\' => self.out.push_str("\\\\"),
                    '"' => self.out.push_str("\\\""),
                    '\n' => self.out.push_str("\\n"),
                    c => self.out.push(c),
                }
            }
            self.out.push('"');
        }
        self.out.push('}');
    }

    /// The finished text.
    pub fn finish(self) -> String {
        self.out
    }
}

/// Formats a sample value: integers without a fraction, other numbers in Rust's shortest
/// round-trip form, and Prometheus's spellings of the special values.
fn push_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::Histogram;

    #[test]
    fn families_have_help_and_type_lines() {
        let mut e = Exposition::new();
        e.single(
            "shoal_uptime_seconds",
            Kind::Gauge,
            "Seconds since start.",
            12.0,
        );
        e.family("shoal_commands_total", Kind::Counter, "Calls per command.");
        e.sample("shoal_commands_total", &[("cmd", "config|get")], 3.0);
        assert_eq!(
            e.finish(),
            "# HELP shoal_uptime_seconds Seconds since start.\n\
             # TYPE shoal_uptime_seconds gauge\n\
             shoal_uptime_seconds 12\n\
             # HELP shoal_commands_total Calls per command.\n\
             # TYPE shoal_commands_total counter\n\
             shoal_commands_total{cmd=\"config|get\"} 3\n"
        );
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut e = Exposition::new();
        e.family("m", Kind::Gauge, "a \\ b\nc");
        e.sample("m", &[("a", "x\"y\\z\nw"), ("b", "")], 0.5);
        assert_eq!(
            e.finish(),
            "# HELP m a \\\\ b\\nc\n# TYPE m gauge\nm{a=\"x\\\"y\\\\z\\nw\",b=\"\"} 0.5\n"
        );
    }

    #[test]
    fn special_values() {
        let mut s = String::new();
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -3.0, 1e20, 0.25] {
            push_value(&mut s, v);
            s.push(' ');
        }
        assert_eq!(s, "NaN +Inf -Inf -3 100000000000000000000 0.25 ");
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_the_count() {
        let h = Histogram::default();
        for nanos in [5_000, 20_000, 20_000, 3_000_000, 30_000_000_000] {
            h.record(nanos, nanos);
        }
        let mut snap = Snapshot::default();
        h.add_to(&mut snap);
        let mut e = Exposition::new();
        e.family("lat_seconds", Kind::Histogram, "Latency.");
        e.histogram("lat_seconds", &[("cmd", "get")], &snap);
        let text = e.finish();
        let bucket = |le: &str| -> u64 {
            let prefix = format!("lat_seconds_bucket{{cmd=\"get\",le=\"{le}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .and_then(|v| v.parse().ok())
                .unwrap_or(u64::MAX)
        };
        assert_eq!(bucket("0.00001"), 1);
        assert_eq!(bucket("0.000025"), 3);
        assert_eq!(bucket("0.0025"), 3);
        assert_eq!(bucket("0.005"), 4);
        assert_eq!(bucket("10"), 4);
        assert_eq!(bucket("+Inf"), 5);
        assert!(text.contains("lat_seconds_count{cmd=\"get\"} 5\n"));
        assert!(text.contains("lat_seconds_sum{cmd=\"get\"} 30.003045\n"));
    }
}
