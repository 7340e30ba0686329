//! The background cycle: active expiry, memory calibration and eviction when idle, `hz` times a
//! second on a thread of its own, so its work never delays a connection's task.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal_storage::{ExpireEffort, Journal};

use crate::shared::Shared;

/// Redis's `ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC`: the share of each cycle the expiry may use.
const SLOW_TIME_PERC: u64 = 25;

/// Runs the cycle until shutdown.
pub fn spawn(shared: Arc<Shared>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("shoal-cron".into())
        .spawn(move || {
            let shutdown = shared.shutdown.subscribe();
            while !*shutdown.borrow() {
                let hz = shared.live.hz.load(Ordering::Relaxed).clamp(1, 500);
                let period = Duration::from_micros(1_000_000 / hz);
                let started = Instant::now();
                tick(&shared, period);
                if let Some(rest) = period.checked_sub(started.elapsed()) {
                    std::thread::sleep(rest);
                }
            }
        })
}

/// One cycle.
pub fn tick(shared: &Shared, period: Duration) {
    shared.ks.calibrate_memory(crate::info::allocated_bytes());

    let effort = shared.live.expire_effort.load(Ordering::Relaxed) as u32;
    let perc = SLOW_TIME_PERC + 2 * (effort.saturating_sub(1)) as u64;
    let budget = period * perc as u32 / 100;
    let started = Instant::now();
    let mut journal = Journal::default();
    let now = shared.now_ms();
    // The cycle changes the keyspace like a command does, so it waits while a transaction runs.
    let gate = shared.ks.gate.shared();
    let stats = shared.ks.active_expire_cycle(
        now,
        ExpireEffort::from_effort(effort),
        || started.elapsed() >= budget,
        &mut journal,
    );
    // Like Redis, a cycle stopped by its time budget is counted, and every cycle's time added.
    if !stats.completed {
        shared
            .expire_time_cap_reached
            .fetch_add(1, Ordering::Relaxed);
    }
    shared
        .expire_cycle_us
        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    if stats.sampled > 0 {
        let perc = stats.expired as u64 * 10_000 / stats.sampled as u64;
        shared.expired_stale_perc.store(perc, Ordering::Relaxed);
    }
    // Memory may be over the limit without any write arriving (CONFIG SET maxmemory lower).
    shared.ks.evict_if_needed(now, &mut journal);
    drop(gate);
    shared.stats.dirty(journal.dirty);
    if !journal.notes.is_empty() {
        shared.publish_notifications(&journal.notes);
    }
    // Keys that expired or were evicted are invalidated for the clients caching them.
    if let (true, Some(events)) = (shared.tracking.active() > 0, &journal.events) {
        let owed = shared
            .tracking
            .invalidate(0, events.iter().map(|e| &e.key[..]));
        crate::tracking::deliver(shared, owed, 0, shoal_resp::Protocol::Resp2, false);
    }

    let (commands, net_in, net_out) = shared.stats.traffic();
    let m = &shared.meters;
    m.ops.sample(now, commands);
    m.net_input.sample(now, net_in);
    m.net_output.sample(now, net_out);
}
