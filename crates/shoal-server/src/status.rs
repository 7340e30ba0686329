//! The status page: one self-contained HTML document (no scripts, fonts or images from
//! elsewhere) with the figures an operator checks first, reloading itself every few seconds.

use std::fmt::Write;

use crate::metrics::Summary;

/// Seconds between reloads.
const REFRESH_SECS: u32 = 5;

/// Renders the page.
pub fn render(s: &Summary) -> String {
    let hit_ratio = match s.hit_ratio() {
        Some(r) => format!("{:.1} %", r * 100.0),
        None => "n/a".to_string(),
    };
    let memory_limit = if s.maxmemory == 0 {
        "no limit".to_string()
    } else {
        format!(
            "{} of {} ({:.1} %)",
            bytes(s.used_memory as u64),
            bytes(s.maxmemory),
            s.used_memory as f64 * 100.0 / s.maxmemory as f64
        )
    };
    let state = if s.loading { "loading" } else { "ready" };
    let figures: [(&str, &str, String); 13] = [
        ("role", "Role", s.role.to_string()),
        ("state", "State", state.to_string()),
        ("uptime", "Uptime", uptime(s.uptime_secs)),
        (
            "keys",
            "Keys",
            format!("{} ({} with a TTL)", s.keys, s.expiring),
        ),
        ("memory", "Memory used", bytes(s.used_memory as u64)),
        ("rss", "Resident memory", bytes(s.rss as u64)),
        ("maxmemory", "Memory limit", memory_limit),
        ("ops", "Operations / s", s.ops_per_sec.to_string()),
        ("hit-ratio", "Hit ratio", hit_ratio),
        (
            "latency",
            "Latency p50 / p95 / p99 (since start)",
            format!(
                "{} / {} / {}",
                micros(s.latency_us[0]),
                micros(s.latency_us[1]),
                micros(s.latency_us[2])
            ),
        ),
        (
            "clients",
            "Clients",
            format!("{} connected, {} blocked", s.clients, s.blocked),
        ),
        (
            "replication",
            "Replication",
            format!("{}, {} replicas", s.role, s.connected_replicas),
        ),
        (
            "cluster",
            "Cluster",
            if s.cluster_enabled {
                "enabled"
            } else {
                "disabled"
            }
            .to_string(),
        ),
    ];
    let mut out = String::with_capacity(4096);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Shoal {state}</title><style>{STYLE}</style></head><body>\
         <h1>Shoal <span class=\"{state}\">{state}</span></h1>\
         <p class=\"sub\">{} commands processed &middot; refreshes every {REFRESH_SECS} s &middot; \
         <a href=\"/metrics\">/metrics</a></p><dl>",
        s.commands
    );
    for (id, label, value) in &figures {
        let _ = write!(
            out,
            "<div class=\"figure\"><dt>{label}</dt><dd id=\"{id}\">{}</dd></div>",
            escape(value)
        );
    }
    out.push_str("</dl></body></html>\n");
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;background:#f6f8fa;color:#1f2328}\
h1{font-size:1.6em;margin:0 0 .2em}h1 span{font-size:.6em;padding:.15em .5em;border-radius:.4em;\
vertical-align:middle}.ready{background:#d1f0d8;color:#116329}.loading{background:#fff1c2;color:#7d4e00}\
.sub{color:#59636e;margin:0 0 1.5em}dl{display:grid;grid-template-columns:repeat(auto-fill,minmax(15em,1fr));\
gap:1em;margin:0}.figure{background:#fff;border:1px solid #d1d9e0;border-radius:.6em;padding:1em}\
dt{color:#59636e;font-size:.85em}dd{margin:.3em 0 0;font-size:1.35em;font-weight:600}";

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A latency with the precision it deserves: commands under a microsecond (recorded as 1 ns, as
/// Redis records them) still show a non-zero figure.
fn micros(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else if us >= 100.0 {
        format!("{us:.0} µs")
    } else if us >= 10.0 {
        format!("{us:.1} µs")
    } else {
        format!("{us:.3} µs")
    }
}

fn uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h}h {m}m")
    } else if h > 0 {
        format!("{h}h {m}m {s}s")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Summary {
        Summary {
            role: "master",
            uptime_secs: 3725,
            keys: 42,
            expiring: 2,
            used_memory: 3 * 1024 * 1024,
            rss: 8 * 1024 * 1024,
            maxmemory: 0,
            ops_per_sec: 1234,
            hits: 3,
            misses: 1,
            clients: 5,
            blocked: 1,
            commands: 99,
            latency_us: [11.007, 250.0, 1500.0],
            connected_replicas: 0,
            cluster_enabled: false,
            loading: false,
        }
    }

    #[test]
    fn shows_the_key_figures() {
        let page = render(&sample());
        for needle in [
            "<dd id=\"role\">master</dd>",
            "<dd id=\"uptime\">1h 2m 5s</dd>",
            "<dd id=\"keys\">42 (2 with a TTL)</dd>",
            "<dd id=\"memory\">3.0 MiB</dd>",
            "<dd id=\"ops\">1234</dd>",
            "<dd id=\"hit-ratio\">75.0 %</dd>",
            "<dd id=\"latency\">11.0 µs / 250 µs / 1.50 ms</dd>",
            "<dd id=\"clients\">5 connected, 1 blocked</dd>",
            "<meta http-equiv=\"refresh\"",
        ] {
            assert!(page.contains(needle), "missing {needle} in {page}");
        }
        assert!(!page.contains("http://") && !page.contains("https://"));
    }

    #[test]
    fn sub_microsecond_latencies_are_not_shown_as_zero() {
        let mut s = sample();
        s.latency_us = [0.001, 2.5, 12.34];
        assert!(render(&s).contains("<dd id=\"latency\">0.001 µs / 2.500 µs / 12.3 µs</dd>"));
    }

    #[test]
    fn loading_and_memory_limit() {
        let mut s = sample();
        s.loading = true;
        s.maxmemory = 6 * 1024 * 1024;
        s.hits = 0;
        s.misses = 0;
        let page = render(&s);
        assert!(page.contains("<dd id=\"state\">loading</dd>"));
        assert!(page.contains("<dd id=\"maxmemory\">3.0 MiB of 6.0 MiB (50.0 %)</dd>"));
        assert!(page.contains("<dd id=\"hit-ratio\">n/a</dd>"));
    }
}
