//! Shoal's test harness: spawns and stops Shoal and redis-server processes, talks raw RESP to
//! them, renders replies like redis-cli, and runs the differential case files in `tests/cases`.

pub mod cases;
pub mod client;
pub mod diff;
pub mod http;
pub mod probe;
pub mod render;
pub mod server;

use std::io;
use std::path::PathBuf;

pub use cases::{case_files, split_args, Case, CaseFile, Compare, Directives};
pub use client::{encode_command, RawClient, Reply};
pub use diff::{run_diff, run_transcript, DiffOptions, DiffReport, Mismatch};
pub use render::{quote, render, render_pretty};
pub use server::{against_redis, target_kind, ServerKind, ServerProcess};
/// Re-exported so test crates need no direct dependency on the codec.
pub use shoal_resp::Frame;

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
    let mut candidate = ServerProcess::start(candidate, &[])?;
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
    let mut report = DiffReport::default();
    for path in &files {
        let file =
            CaseFile::load(path).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        report.merge(diff::diff_file(
            reference.addr(),
            candidate.addr(),
            &file,
            &options,
        ));
        // A crashed candidate would turn every later file into noise: report the crash with
        // the end of its log instead.
        if !candidate.is_running() {
            let log = candidate.log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            report.mismatches.push(Mismatch {
                file: path.clone(),
                line: 0,
                protocol: 0,
                command: "(whole file)".into(),
                reason: "the candidate server exited while running this file".into(),
                reference: "running".into(),
                candidate: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
                labels: (
                    options.reference_label.clone(),
                    options.candidate_label.clone(),
                ),
            });
            break;
        }
    }
    Ok(report)
}
