//! The script that is running, if any: when it started, whether it wrote, and whether
//! `SCRIPT KILL`/`FUNCTION KILL` asked it to stop. Other connections read this to answer
//! `-BUSY` once the script runs longer than `busy-reply-threshold`, as Redis does.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use shoal_commands::CommandError;

/// `-BUSY` while an `EVAL` script runs.
pub const BUSY_EVAL: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
/// `-BUSY` while a function runs.
pub const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

/// See the module documentation.
#[derive(Default)]
pub struct ScriptRun {
    running: AtomicBool,
    /// An `EVAL` script (not a function).
    eval: AtomicBool,
    /// Monotonic milliseconds when it started.
    started_ms: AtomicU64,
    wrote: AtomicBool,
    /// Shared with the Lua engine, whose instruction hook stops the script when it is raised.
    pub killed: Arc<AtomicBool>,
    /// `busy-reply-threshold` in milliseconds.
    pub threshold_ms: AtomicU64,
}

impl ScriptRun {
    /// A script starts (the caller holds the keyspace gate alone).
    pub fn begin(&self, eval: bool, now_ms: u64) {
        self.eval.store(eval, Ordering::Relaxed);
        self.started_ms.store(now_ms, Ordering::Relaxed);
        self.wrote.store(false, Ordering::Relaxed);
        self.killed.store(false, Ordering::Relaxed);
        self.running.store(true, Ordering::Release);
    }

    pub fn end(&self) {
        self.running.store(false, Ordering::Release);
    }

    /// The script changed the dataset: it can no longer be killed.
    pub fn wrote(&self) {
        self.wrote.store(true, Ordering::Relaxed);
    }

    /// Whether a kill was requested.
    pub fn killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }

    /// The `-BUSY` text for other clients, once the running script is past the threshold.
    pub fn busy(&self, now_ms: u64) -> Option<&'static str> {
        if !self.running.load(Ordering::Acquire) {
            return None;
        }
        let ran = now_ms.saturating_sub(self.started_ms.load(Ordering::Relaxed));
        (ran >= self.threshold_ms.load(Ordering::Relaxed)).then(|| {
            if self.eval.load(Ordering::Relaxed) {
                BUSY_EVAL
            } else {
                BUSY_FUNCTION
            }
        })
    }

    /// `SCRIPT KILL` (`eval`) or `FUNCTION KILL`, with Redis's refusals.
    pub fn kill(&self, eval: bool) -> Result<(), CommandError> {
        if !self.running.load(Ordering::Acquire) {
            return Err(CommandError::Other(
                "NOTBUSY No scripts in execution right now.".into(),
            ));
        }
        if self.wrote.load(Ordering::Relaxed) {
            return Err(CommandError::Other(
                "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.".into(),
            ));
        }
        match (eval, self.eval.load(Ordering::Relaxed)) {
            (true, false) => Err(CommandError::Other(BUSY_FUNCTION.into())),
            (false, true) => Err(CommandError::Other(BUSY_EVAL.into())),
            _ => {
                self.killed.store(true, Ordering::Relaxed);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_only_past_the_threshold_and_kill_follows_redis() {
        let s = ScriptRun::default();
        s.threshold_ms.store(100, Ordering::Relaxed);
        assert_eq!(s.busy(1_000), None);
        assert!(s.kill(true).is_err_and(|e| e.code() == "NOTBUSY"));
        s.begin(true, 1_000);
        assert_eq!(s.busy(1_050), None);
        assert_eq!(s.busy(1_100), Some(BUSY_EVAL));
        assert!(s.kill(false).is_err_and(|e| e.message() == BUSY_EVAL));
        assert!(s.kill(true).is_ok());
        assert!(s.killed());
        s.begin(false, 2_000);
        s.wrote();
        assert!(s.kill(false).is_err_and(|e| e.code() == "UNKILLABLE"));
        s.end();
        assert_eq!(s.busy(10_000), None);
    }
}
