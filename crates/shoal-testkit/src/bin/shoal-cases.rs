//! Owns the `shoal-cases` command-line tool: runs case files by hand, to write and review them
//! (`dump`) or to diff two already running servers (`diff`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use shoal_testkit::{
    case_files, cases_dir, render, run_diff, CaseFile, DiffOptions, RawClient, ServerKind,
    ServerProcess,
};

const USAGE: &str = "usage:
  shoal-cases dump [--port P] [--resp3] FILE...
      Print every command of the files with the reply it gets, redis-cli style, from the
      server on 127.0.0.1:P or else from a redis-server started for the purpose.
  shoal-cases diff --reference P --candidate Q [--types] [FILE...]
      Diff two running servers on 127.0.0.1 (default files: tests/cases/*.txt).";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("dump") => dump(&args[1..]),
        Some("diff") => diff(&args[1..]),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
    }
}

/// Options shared by both subcommands.
#[derive(Default)]
struct Options {
    ports: Vec<(String, u16)>,
    resp3: bool,
    types: bool,
    files: Vec<PathBuf>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options::default();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--port" | "--reference" | "--candidate" => {
                let value = iter.next().ok_or(format!("{arg} needs a port"))?;
                let port = value.parse().map_err(|_| format!("bad port {value:?}"))?;
                options.ports.push((arg.clone(), port));
            }
            "--resp3" => options.resp3 = true,
            "--types" => options.types = true,
            flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}\n{USAGE}")),
            file => options.files.push(PathBuf::from(file)),
        }
    }
    Ok(options)
}

fn port_of(options: &Options, flag: &str) -> Option<u16> {
    options
        .ports
        .iter()
        .find(|(name, _)| name == flag)
        .map(|(_, port)| *port)
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn dump(args: &[String]) -> Result<bool, String> {
    let options = parse(args)?;
    if options.files.is_empty() {
        return Err(USAGE.to_string());
    }
    // Keep the started server alive for the whole dump.
    let (_server, target) = match port_of(&options, "--port") {
        Some(port) => (None, addr(port)),
        None => {
            let server = ServerProcess::start(ServerKind::Redis, &[])
                .map_err(|e| format!("cannot start redis-server: {e}"))?;
            let target = server.addr();
            (Some(server), target)
        }
    };
    for path in &options.files {
        let file = CaseFile::load(path).map_err(|e| e.to_string())?;
        let mut client = RawClient::connect(target).map_err(|e| e.to_string())?;
        let mut setup: Vec<Vec<&[u8]>> = vec![vec![b"FLUSHALL"], vec![b"SELECT", b"0"]];
        if options.resp3 {
            setup.insert(0, vec![b"HELLO", b"3"]);
        }
        for cmd in setup {
            client.command(&cmd).map_err(|e| e.to_string())?;
        }
        println!("# {}", path.display());
        for case in &file.cases {
            let reply = if case.directives.inline {
                let mut line = case.text.clone().into_bytes();
                line.extend_from_slice(b"\r\n");
                client.send_raw(&line).and_then(|()| client.read_frame())
            } else {
                client.command(&case.arg_slices())
            };
            let shown = match reply {
                Ok(frame) => render(&frame),
                Err(e) => format!("I/O error: {e}"),
            };
            println!("{:>4}  {}\n      => {}", case.line, case.text, shown);
        }
    }
    Ok(true)
}

fn diff(args: &[String]) -> Result<bool, String> {
    let options = parse(args)?;
    let (Some(reference), Some(candidate)) = (
        port_of(&options, "--reference"),
        port_of(&options, "--candidate"),
    ) else {
        return Err(USAGE.to_string());
    };
    let files = if options.files.is_empty() {
        case_files(&cases_dir()).map_err(|e| e.to_string())?
    } else {
        options.files.clone()
    };
    let diff_options = DiffOptions {
        run_needs_types: options.types,
        ..DiffOptions::default()
    };
    let report = run_diff(addr(reference), addr(candidate), &files, &diff_options)
        .map_err(|e| e.to_string())?;
    println!("{}", report.describe());
    Ok(report.is_clean())
}
