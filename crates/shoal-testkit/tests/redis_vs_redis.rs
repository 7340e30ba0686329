//! Validates the differential case files and the runner itself by running every file against
//! two independent redis-servers: any mismatch here means a case is not deterministic (or the
//! runner is wrong), not that Shoal is.

use shoal_testkit::{
    case_files, cases_dir, diff::diff_file, run_all_cases, CaseFile, DiffOptions, ServerKind,
    ServerProcess,
};

#[test]
fn every_case_file_is_deterministic_between_two_redis_servers() {
    let report = run_all_cases(ServerKind::Redis, true).expect("run the case files");
    eprintln!(
        "redis vs redis: {} files, {} commands, {} skipped",
        report.files, report.commands, report.skipped
    );
    assert!(report.is_clean(), "{}", report.describe());
    assert!(
        report.commands > 500,
        "too few commands: {}",
        report.commands
    );
}

#[test]
fn every_case_file_parses() {
    let files = case_files(&cases_dir()).expect("list tests/cases");
    assert!(
        files.len() >= 10,
        "expected the case files, found {files:?}"
    );
    for path in files {
        CaseFile::load(&path).expect("case file parses");
    }
}

/// The runner must report a real difference, with file, line and both replies: a runner that
/// never fails would prove nothing.
#[test]
fn runner_reports_a_difference() {
    let left = ServerProcess::start(ServerKind::Redis, &[]).expect("start redis");
    let right = ServerProcess::start(ServerKind::Redis, &["--requirepass", "secret"])
        .expect("start redis with a password");
    let text = "PING\nSET a 1\n";
    let file = shoal_testkit::cases::parse_case_file(std::path::Path::new("inline.txt"), text)
        .expect("parses");
    // The candidate needs a password, so its set-up fails with NOAUTH in both passes.
    let report = diff_file(left.addr(), right.addr(), &file, &DiffOptions::default());
    assert_eq!(report.mismatches.len(), 2, "{}", report.describe());
    assert!(
        report.describe().contains("NOAUTH"),
        "{}",
        report.describe()
    );

    let right = ServerProcess::start(ServerKind::Redis, &[]).expect("start redis");
    // Both servers agree here, so the differences must come from the wrong hand-written
    // expectation and the impossible range.
    let text = "SET a 1\nGET a\n=> \"2\"\n!type GET a\n!range 0 0 STRLEN a\n";
    let file =
        shoal_testkit::cases::parse_case_file(std::path::Path::new("x.txt"), text).expect("parses");
    let report = diff_file(left.addr(), right.addr(), &file, &DiffOptions::default());
    let text = report.describe();
    assert_eq!(report.mismatches.len(), 4, "{text}");
    assert!(text.contains("x.txt:2 [RESP3] GET a"), "{text}");
    assert!(text.contains("x.txt:5 [RESP2] STRLEN a"), "{text}");
    assert!(text.contains("integers in 0..=0"), "{text}");
}

/// The transcript runner (used for the Shoal-only files) checks renderings in both protocols
/// and reports a wrong expectation with its line.
#[test]
fn transcript_runner_checks_expectations() {
    let server = ServerProcess::start(ServerKind::Redis, &[]).expect("start redis");
    let dir = shoal_testkit::server::make_temp_dir("transcript").expect("temp dir");
    let path = dir.join("t.txt");
    let text = "SET k v\n=> OK\nGET k\n=> \"v\"\nHELLO 3\n=2> (error) wrong\n=3> (error) wrong\n\
                MGET k nope\n=> [\"v\", (nil)]\nINCRBYFLOAT f 1.5\n=> \"1.5\"\n";
    std::fs::write(&path, text).expect("write transcript");
    let report = shoal_testkit::run_transcript(server.addr(), &path, "redis").expect("run");
    std::fs::remove_dir_all(&dir).expect("remove temp dir");
    let described = report.describe();
    assert_eq!(report.mismatches.len(), 2, "{described}");
    assert!(described.contains("t.txt:5 [RESP2] HELLO 3"), "{described}");
    assert_eq!(report.commands, 10, "{described}");
}
