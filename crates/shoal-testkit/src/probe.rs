//! Observations and inputs for tests that bound resources or wait for events: a process's RSS
//! and CPU time from /proc, INFO fields, polling with a deadline, the open-file limit, and a
//! small seeded random generator with a Zipf sampler (so workloads replay identically against
//! Shoal and redis-server without a dependency on `rand`).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::time::{Duration, Instant};

use crate::client::RawClient;
use shoal_resp::Frame;

/// Reads one `Vm...:` line of `/proc/<pid>/status`, in bytes.
fn proc_status_kib(pid: u32, field: &str) -> io::Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| io::Error::other(format!("no {field} in /proc/{pid}/status")))
}

/// The resident set size of a process right now (`VmRSS`), in bytes.
pub fn rss_bytes(pid: u32) -> io::Result<u64> {
    proc_status_kib(pid, "VmRSS")
}

/// The highest resident set size the process has reached so far (`VmHWM`), in bytes. A bound
/// on this catches a memory spike that is released again before the test looks.
pub fn peak_rss_bytes(pid: u32) -> io::Result<u64> {
    proc_status_kib(pid, "VmHWM")
}

/// The CPU time (user + system, all threads) a process has consumed so far, in seconds.
pub fn cpu_seconds(pid: u32) -> io::Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may contain spaces, so the fields are
    // counted from the last ')'. After it come field 3 (state) onwards; utime and stime are
    // fields 14 and 15.
    let rest = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| io::Error::other("malformed /proc/<pid>/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> io::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| io::Error::other("malformed /proc/<pid>/stat"))
    };
    let ticks = tick(11)? + tick(12)?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let per_second = if per_second > 0 {
        per_second as f64
    } else {
        100.0
    };
    Ok(ticks as f64 / per_second)
}

/// Sends `INFO <section>` and returns its `field:value` lines as a map.
pub fn info(client: &mut RawClient, section: &str) -> io::Result<HashMap<String, String>> {
    let text = match client.command(&[b"INFO", section.as_bytes()])? {
        Frame::Bulk(b) => b,
        Frame::Verbatim { text, .. } => text,
        other => {
            return Err(io::Error::other(format!(
                "INFO {section} replied {other:?}"
            )))
        }
    };
    Ok(String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect())
}

/// One numeric field of `INFO <section>`.
pub fn info_u64(client: &mut RawClient, section: &str, field: &str) -> io::Result<u64> {
    let map = info(client, section)?;
    map.get(field)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| io::Error::other(format!("INFO {section} has no numeric {field}")))
}

/// Sends a command that must answer with an integer (DBSIZE, EXISTS, DEL...) and returns it.
pub fn integer(client: &mut RawClient, args: &[&[u8]]) -> io::Result<i64> {
    match client.command(args)? {
        Frame::Integer(n) => Ok(n),
        other => Err(io::Error::other(format!(
            "{} replied {other:?}",
            String::from_utf8_lossy(args[0])
        ))),
    }
}

/// Calls `probe` every `interval` until it returns `Some`, or `None` once `deadline` has
/// passed. Deadlines only bound how long a test waits for an event; they are not assertions
/// about speed, so they should be generous.
pub fn wait_for<T>(
    deadline: Duration,
    interval: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Option<T> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(interval);
    }
}

/// Raises this process's soft limit on open files to at least `wanted` (capped by the hard
/// limit) and returns the new soft limit. Servers spawned afterwards inherit it.
pub fn raise_open_files_limit(wanted: libc::rlim_t) -> io::Result<libc::rlim_t> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur >= wanted {
        return Ok(lim.rlim_cur);
    }
    // RLIM_INFINITY is the largest value, so `min` handles an unlimited hard limit too.
    lim.rlim_cur = wanted.min(lim.rlim_max);
    // SAFETY: setrlimit reads the struct we pass; raising the soft limit up to the hard limit
    // needs no privilege.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(lim.rlim_cur)
}

/// SplitMix64: a tiny, fast, seeded generator. Good enough for workloads and garbage input;
/// not for anything that needs unpredictability.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform float in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform integer in `[0, n)`; `n` must be positive.
    pub fn below(&mut self, n: u64) -> u64 {
        // Multiply-shift keeps the bias negligible for the sizes tests use.
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    /// Shuffles `items` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// Samples ranks `0..n` with probability proportional to `1 / (rank + 1)^s`, by binary search
/// in the cumulative weights.
#[derive(Debug, Clone)]
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// A Zipf distribution over `n` ranks (`n > 0`) with exponent `s`.
    pub fn new(n: usize, s: f64) -> Zipf {
        let mut total = 0.0;
        let cdf = (1..=n)
            .map(|k| {
                total += 1.0 / (k as f64).powf(s);
                total
            })
            .collect();
        Zipf { cdf }
    }

    /// One rank; rank 0 is the most popular.
    pub fn sample(&self, rng: &mut SplitMix64) -> usize {
        let total = *self.cdf.last().unwrap_or(&0.0);
        let x = rng.next_f64() * total;
        self.cdf
            .partition_point(|&c| c <= x)
            .min(self.cdf.len().saturating_sub(1))
    }
}
