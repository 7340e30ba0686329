//! Owns the differential runner (the same case files sent to a reference redis-server and to a
//! candidate server, replies compared frame by frame in RESP2 and RESP3) and the transcript
//! runner (one server, replies compared with hand-written expectations).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use shoal_resp::Frame;

use crate::cases::{Case, CaseFile, Compare};
use crate::client::{escape, RawClient, Reply};
use crate::render::{render, type_name};

/// The protocols every file is run in, in order.
pub const PROTOCOLS: [u8; 2] = [2, 3];

/// Knobs for a differential run.
#[derive(Debug, Clone)]
pub struct DiffOptions {
    /// Run lines marked `!needs-types` / files marked `@needs-types`.
    pub run_needs_types: bool,
    /// Stop reporting a file's pass after this many mismatches (later ones are usually
    /// consequences of the first).
    pub max_mismatches_per_pass: usize,
    /// Label for the reference server in messages.
    pub reference_label: String,
    /// Label for the candidate server in messages.
    pub candidate_label: String,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            run_needs_types: false,
            max_mismatches_per_pass: 10,
            reference_label: "redis".into(),
            candidate_label: "shoal".into(),
        }
    }
}

/// One difference found.
#[derive(Debug, Clone)]
pub struct Mismatch {
    /// The case file.
    pub file: PathBuf,
    /// The 1-based line (0 for problems with the file's set-up).
    pub line: usize,
    /// 2 or 3.
    pub protocol: u8,
    /// The command as written.
    pub command: String,
    /// Why the replies differ.
    pub reason: String,
    /// The reference side, rendered (with raw bytes), or its I/O error.
    pub reference: String,
    /// The candidate side, rendered (with raw bytes), or its I/O error.
    pub candidate: String,
    /// Labels of the two sides.
    pub labels: (String, String),
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}:{} [RESP{}] {}  -- {}",
            self.file.display(),
            self.line,
            self.protocol,
            self.command,
            self.reason
        )?;
        writeln!(f, "    {:>8}: {}", self.labels.0, self.reference)?;
        write!(f, "    {:>8}: {}", self.labels.1, self.candidate)
    }
}

/// What a run did.
#[derive(Debug, Default, Clone)]
pub struct DiffReport {
    /// Files run.
    pub files: usize,
    /// Commands sent to each side, counting both protocol passes.
    pub commands: usize,
    /// Commands skipped by directives.
    pub skipped: usize,
    /// Everything that differed.
    pub mismatches: Vec<Mismatch>,
}

impl DiffReport {
    /// True when nothing differed.
    pub fn is_clean(&self) -> bool {
        self.mismatches.is_empty()
    }

    /// A multi-line description of every mismatch, for a test's panic message.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "{} files, {} commands, {} skipped, {} mismatches\n",
            self.files,
            self.commands,
            self.skipped,
            self.mismatches.len()
        );
        for m in &self.mismatches {
            out.push_str(&m.to_string());
            out.push('\n');
        }
        out
    }

    /// Adds another report's counts and mismatches to this one.
    pub fn merge(&mut self, other: DiffReport) {
        self.files += other.files;
        self.commands += other.commands;
        self.skipped += other.skipped;
        self.mismatches.extend(other.mismatches);
    }
}

/// Runs every file against both servers, in RESP2 then RESP3.
pub fn run_diff(
    reference: SocketAddr,
    candidate: SocketAddr,
    files: &[PathBuf],
    options: &DiffOptions,
) -> io::Result<DiffReport> {
    let mut report = DiffReport::default();
    for path in files {
        let file =
            CaseFile::load(path).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        report.merge(diff_file(reference, candidate, &file, options));
    }
    Ok(report)
}

/// Runs one parsed file against both servers, in RESP2 then RESP3.
pub fn diff_file(
    reference: SocketAddr,
    candidate: SocketAddr,
    file: &CaseFile,
    options: &DiffOptions,
) -> DiffReport {
    let mut report = DiffReport {
        files: 1,
        ..DiffReport::default()
    };
    if file.file_directives.needs_types && !options.run_needs_types {
        report.skipped += file.cases.len() * PROTOCOLS.len();
        return report;
    }
    for proto in PROTOCOLS {
        diff_pass(reference, candidate, file, proto, options, &mut report);
    }
    report
}

fn labels(options: &DiffOptions) -> (String, String) {
    (
        options.reference_label.clone(),
        options.candidate_label.clone(),
    )
}

/// Opens a connection in protocol `proto` on an empty keyspace with DB 0 selected.
fn prepare(addr: SocketAddr, proto: u8) -> io::Result<RawClient> {
    let mut client = RawClient::connect(addr)?;
    if proto == 3 {
        let reply = client.command(&[b"HELLO", b"3"])?;
        if matches!(reply, Frame::Error(_)) {
            return Err(io::Error::other(format!(
                "HELLO 3 failed: {}",
                render(&reply)
            )));
        }
    }
    for cmd in [&[&b"FLUSHALL"[..]][..], &[b"SELECT", b"0"]] {
        let reply = client.command(cmd)?;
        if matches!(reply, Frame::Error(_)) {
            return Err(io::Error::other(format!(
                "set-up command failed: {}",
                render(&reply)
            )));
        }
    }
    Ok(client)
}

fn skip(case: &Case, proto: u8, options: &DiffOptions) -> bool {
    let d = &case.directives;
    (d.needs_types && !options.run_needs_types)
        || (proto == 2 && d.skip_resp2)
        || (proto == 3 && d.skip_resp3)
}

fn send(client: &mut RawClient, case: &Case) -> io::Result<Reply> {
    if case.directives.inline {
        let mut line = case.text.as_bytes().to_vec();
        line.extend_from_slice(b"\r\n");
        client.send_raw(&line)?;
        client.read_reply()
    } else {
        client.command_raw(&case.arg_slices())
    }
}

fn show(reply: &io::Result<Reply>) -> String {
    match reply {
        Ok(r) => format!("{}    raw \"{}\"", render(&r.frame), escape(&r.raw)),
        Err(e) => format!("I/O error: {e}"),
    }
}

fn diff_pass(
    reference: SocketAddr,
    candidate: SocketAddr,
    file: &CaseFile,
    proto: u8,
    options: &DiffOptions,
    report: &mut DiffReport,
) {
    let mismatch = |line: usize, command: &str, reason: String, r: String, c: String| Mismatch {
        file: file.path.clone(),
        line,
        protocol: proto,
        command: command.to_string(),
        reason,
        reference: r,
        candidate: c,
        labels: labels(options),
    };
    let (mut left, mut right) = match (prepare(reference, proto), prepare(candidate, proto)) {
        (Ok(l), Ok(r)) => (l, r),
        (l, r) => {
            let describe = |x: &io::Result<RawClient>| match x {
                Ok(_) => "ready".to_string(),
                Err(e) => e.to_string(),
            };
            report.mismatches.push(mismatch(
                0,
                "(connection set-up)",
                "set-up failed".into(),
                describe(&l),
                describe(&r),
            ));
            return;
        }
    };
    let mut found = 0;
    for case in &file.cases {
        if skip(case, proto, options) {
            report.skipped += 1;
            continue;
        }
        report.commands += 1;
        let l = send(&mut left, case);
        let r = send(&mut right, case);
        let verdict = match (&l, &r) {
            (Ok(a), Ok(b)) => compare(&case.directives.compare, a, b)
                .or_else(|| check_expectation(case, proto, a, b, options)),
            _ => Some("I/O error".to_string()),
        };
        if let Some(reason) = verdict {
            report
                .mismatches
                .push(mismatch(case.line, &case.text, reason, show(&l), show(&r)));
            found += 1;
            // After an I/O error the connections are out of step: abandon this pass.
            if l.is_err() || r.is_err() || found >= options.max_mismatches_per_pass {
                return;
            }
        }
    }
}

/// Returns why two replies differ under `mode`, or None when they match.
pub fn compare(mode: &Compare, a: &Reply, b: &Reply) -> Option<String> {
    match mode {
        Compare::Exact => (a.raw != b.raw).then(|| "replies differ".to_string()),
        Compare::Type => {
            (type_name(&a.frame) != type_name(&b.frame)).then(|| "reply types differ".to_string())
        }
        Compare::Range(lo, hi) => {
            let within = |f: &Frame| matches!(f, Frame::Integer(n) if n >= lo && n <= hi);
            if within(&a.frame) && within(&b.frame) {
                None
            } else {
                Some(format!("both replies must be integers in {lo}..={hi}"))
            }
        }
        Compare::Sorted => {
            if type_name(&a.frame) != type_name(&b.frame) {
                return Some("reply types differ".into());
            }
            (sorted_elements(&a.frame) != sorted_elements(&b.frame))
                .then(|| "replies differ as sorted collections".to_string())
        }
    }
}

/// The rendered elements of an aggregate, sorted; a scalar is its own single element.
fn sorted_elements(frame: &Frame) -> Vec<String> {
    let mut items: Vec<String> = match frame {
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
            items.iter().map(render).collect()
        }
        Frame::Map(pairs) => pairs
            .iter()
            .map(|(k, v)| format!("{} => {}", render(k), render(v)))
            .collect(),
        other => vec![render(other)],
    };
    items.sort();
    items
}

fn check_expectation(
    case: &Case,
    proto: u8,
    a: &Reply,
    b: &Reply,
    options: &DiffOptions,
) -> Option<String> {
    let expected = case.expect.for_protocol(proto)?;
    for (label, reply) in [(&options.reference_label, a), (&options.candidate_label, b)] {
        let got = render(&reply.frame);
        if got != expected {
            return Some(format!("{label} does not match the expected {expected}"));
        }
    }
    None
}

/// Runs a transcript file (every command followed by `=>` lines) against one server, in RESP2
/// then RESP3, and reports every reply whose rendering differs from the expectation.
pub fn run_transcript(addr: SocketAddr, path: &Path, label: &str) -> io::Result<DiffReport> {
    let file = CaseFile::load(path).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let mut report = DiffReport {
        files: 1,
        ..DiffReport::default()
    };
    for proto in PROTOCOLS {
        let mut client = prepare(addr, proto)?;
        for case in &file.cases {
            if (proto == 2 && case.directives.skip_resp2)
                || (proto == 3 && case.directives.skip_resp3)
            {
                report.skipped += 1;
                continue;
            }
            let Some(expected) = case.expect.for_protocol(proto) else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}:{}: transcript command without an expected reply",
                        path.display(),
                        case.line
                    ),
                ));
            };
            report.commands += 1;
            let reply = send(&mut client, case);
            let got = match &reply {
                Ok(r) => render(&r.frame),
                Err(e) => format!("I/O error: {e}"),
            };
            if got != expected {
                report.mismatches.push(Mismatch {
                    file: path.to_path_buf(),
                    line: case.line,
                    protocol: proto,
                    command: case.text.clone(),
                    reason: "reply differs from the transcript".into(),
                    reference: expected.to_string(),
                    candidate: show(&reply),
                    labels: ("expected".into(), label.to_string()),
                });
                if reply.is_err() {
                    break;
                }
            }
        }
    }
    Ok(report)
}
