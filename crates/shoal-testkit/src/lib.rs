//! Shoal's test harness: spawns and stops Shoal and redis-server processes, talks raw RESP to
//! them, renders replies like redis-cli, and runs the differential case files in `tests/cases`.

pub mod cases;
pub mod client;
pub mod diff;
pub mod render;
pub mod server;

use std::io;
use std::path::PathBuf;

pub use cases::{case_files, split_args, Case, CaseFile, Compare, Directives};
pub use client::{encode_command, RawClient, Reply};
pub use diff::{run_diff, run_transcript, DiffOptions, DiffReport, Mismatch};
pub use render::{quote, render, render_pretty};
pub use server::{against_redis, target_kind, ServerKind, ServerProcess};

/// The workspace's root directory (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
}

/// The directory of differential case files, `tests/cases`.
pub fn cases_dir() -> PathBuf {
    workspace_root().join("tests").join("cases")
}

/// The directory of Shoal-only transcript files, `tests/cases/shoal-only`.
pub fn shoal_only_dir() -> PathBuf {
    cases_dir().join("shoal-only")
}

/// Starts a reference redis-server and the candidate, runs every differential case file, and
/// returns the report. Lines that need data types are run only when `run_needs_types` is set
/// (always sensible when the candidate is Redis itself).
pub fn run_all_cases(candidate: ServerKind, run_needs_types: bool) -> io::Result<DiffReport> {
    let reference = ServerProcess::start(ServerKind::Redis, &[])?;
    let candidate_label = match &candidate {
        ServerKind::Redis => "redis#2".to_string(),
        other => other.name().to_string(),
    };
    let candidate = ServerProcess::start(candidate, &[])?;
    let files = case_files(&cases_dir())?;
    if files.is_empty() {
        return Err(io::Error::other(format!(
            "no case files in {}",
            cases_dir().display()
        )));
    }
    let options = DiffOptions {
        run_needs_types,
        candidate_label,
        ..DiffOptions::default()
    };
    run_diff(reference.addr(), candidate.addr(), &files, &options)
}
