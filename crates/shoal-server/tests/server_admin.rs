//! Server administration end to end: start-up from a redis.conf-style file plus `--directive
//! value` overrides, start-up errors, CONFIG GET/SET/RESETSTAT/REWRITE, AUTH with requirepass,
//! CLIENT, INFO, MEMORY, DEBUG SLEEP, TIME, SHUTDOWN and signals, Unix sockets, protected mode
//! and COMMAND introspection. Wherever Shoal must behave like Redis 7.0, the test sends the same
//! commands to a real redis-server it starts itself and compares the replies instead of
//! hard-coding them. `SHOAL_TEST_AGAINST=redis` runs every test against redis-server instead,
//! which is how the expectations here were checked to be Redis's own.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use shoal_resp::{decode_frame, Limits};
use shoal_testkit::client::escape;
use shoal_testkit::server::{free_port, make_temp_dir};
use shoal_testkit::{target_kind, Frame, RawClient, ServerKind};

/// How long a test waits for an event: a server starting, answering, closing a connection or
/// exiting. It only bounds waits (a healthy server takes milliseconds), so it is generous
/// enough for a debug build on a loaded two-core machine; no assertion depends on it.
const EVENT_DEADLINE: Duration = Duration::from_secs(30);

/// How often polled conditions are checked.
const POLL: Duration = Duration::from_millis(10);

/// Start attempts when the chosen port was taken between probing and binding.
const START_ATTEMPTS: usize = 5;

// ---------------------------------------------------------------------------------------------
// Servers and clients
// ---------------------------------------------------------------------------------------------

/// The server under test: Shoal's binary, unless redirected to Redis.
fn candidate() -> ServerKind {
    target_kind(option_env!("CARGO_BIN_EXE_shoal-server"))
}

fn is_redis(kind: &ServerKind) -> bool {
    matches!(kind, ServerKind::Redis)
}

/// Directives a server of `kind` needs before DEBUG works. Redis 7 refuses DEBUG unless
/// `enable-debug-command` allows it, while Shoal has no such directive and would refuse to
/// start with it.
fn debug_args(kind: &ServerKind) -> &'static [&'static str] {
    if is_redis(kind) {
        &["--enable-debug-command", "yes"]
    } else {
        &[]
    }
}

/// Starts the server under test on 127.0.0.1, an ephemeral port and a temporary directory,
/// with `args` appended (so they override the defaults).
fn start(args: &[&str]) -> Launched {
    Launched::start(candidate(), args)
}

/// Starts the reference redis-server with the same arguments as the candidate.
fn start_redis(args: &[&str]) -> Launched {
    Launched::start(ServerKind::Redis, args)
}

fn connect(addr: SocketAddr) -> RawClient {
    RawClient::connect_with_timeout(addr, EVENT_DEADLINE).expect("connect")
}

/// Sends one command given as text arguments and returns the decoded reply.
fn cmd(client: &mut RawClient, args: &[&str]) -> Frame {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    client
        .command(&args)
        .unwrap_or_else(|e| panic!("{:?}: {e}", args_text(&args)))
}

/// Sends one command and returns the reply's exact bytes, escaped for readable diffs.
fn cmd_raw(client: &mut RawClient, args: &[&str]) -> String {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    let reply = client
        .command_raw(&args)
        .unwrap_or_else(|e| panic!("{:?}: {e}", args_text(&args)));
    escape(&reply.raw)
}

fn args_text(args: &[&[u8]]) -> String {
    args.iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The text of a string-like reply (bulk, simple, verbatim); anything else fails the test.
fn text(frame: &Frame) -> String {
    match frame {
        Frame::Bulk(b) | Frame::Simple(b) => String::from_utf8_lossy(b).into_owned(),
        Frame::Verbatim { text, .. } => String::from_utf8_lossy(text).into_owned(),
        other => panic!("expected a string reply, got {other:?}"),
    }
}

fn integer(frame: &Frame) -> i64 {
    match frame {
        Frame::Integer(n) => *n,
        other => panic!("expected an integer reply, got {other:?}"),
    }
}

fn ok() -> Frame {
    Frame::Simple("OK".into())
}

/// The elements of an array-like reply.
fn elements(frame: &Frame) -> &[Frame] {
    match frame {
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => items,
        other => panic!("expected an array reply, got {other:?}"),
    }
}

/// Key/value pairs of a reply that is a map in RESP3 and a flat array in RESP2.
fn pairs(frame: &Frame) -> Vec<(String, Frame)> {
    match frame {
        Frame::Map(entries) => entries.iter().map(|(k, v)| (text(k), v.clone())).collect(),
        Frame::Array(items) => {
            assert!(items.len() % 2 == 0, "odd-length key/value array {items:?}");
            items
                .chunks(2)
                .map(|kv| (text(&kv[0]), kv[1].clone()))
                .collect()
        }
        other => panic!("expected a map or flat array, got {other:?}"),
    }
}

/// CONFIG GET's reply as sorted `(name, value)` pairs.
fn config_get(client: &mut RawClient, pattern: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = pairs(&cmd(client, &["CONFIG", "GET", pattern]))
        .into_iter()
        .map(|(k, v)| (k, text(&v)))
        .collect();
    out.sort();
    out
}

/// One CONFIG GET value, failing the test when the parameter is unknown.
fn config_value(client: &mut RawClient, name: &str) -> String {
    let found = config_get(client, name);
    match found.as_slice() {
        [(k, v)] if k.eq_ignore_ascii_case(name) => v.clone(),
        other => panic!("CONFIG GET {name} returned {other:?}"),
    }
}

/// The full text of `INFO [section]`.
fn info(client: &mut RawClient, section: &str) -> String {
    let reply = if section.is_empty() {
        cmd(client, &["INFO"])
    } else {
        cmd(client, &["INFO", section])
    };
    text(&reply)
}

/// The value of one `field:value` line of an INFO text.
fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k == field).then(|| v.trim_end().to_string())
    })
}

fn info_u64(client: &mut RawClient, section: &str, field: &str) -> u64 {
    let text = info(client, section);
    info_field(&text, field)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("INFO {section} has no numeric {field}:\n{text}"))
}

/// The `# Title` lines of an INFO text, in order.
fn info_headers(info: &str) -> Vec<String> {
    info.lines()
        .filter_map(|l| l.strip_prefix("# "))
        .map(|l| l.trim_end().to_string())
        .collect()
}

/// Runs `script` on one fresh connection to each server and returns the two transcripts, one
/// line per command with the reply's exact bytes. `normalise` may rewrite a reply that
/// legitimately differs (a client id, a port).
fn transcripts(
    candidate: SocketAddr,
    redis: SocketAddr,
    script: &[&[&str]],
    normalise: impl Fn(&[&str], String) -> String,
) -> (Vec<String>, Vec<String>) {
    let run = |addr: SocketAddr| -> Vec<String> {
        let mut client = connect(addr);
        script
            .iter()
            .map(|args| {
                let reply = normalise(args, cmd_raw(&mut client, args));
                format!("{} -> {reply}", args.join(" "))
            })
            .collect()
    };
    (run(candidate), run(redis))
}

/// Asserts that `script` gets byte-identical replies from the candidate and from Redis.
fn assert_same_replies(candidate: SocketAddr, redis: SocketAddr, script: &[&[&str]]) {
    let (got, want) = transcripts(candidate, redis, script, |_, r| r);
    assert_eq!(
        got, want,
        "candidate (left) differs from redis-server (right)"
    );
}

/// Reads until the server closes the connection and returns whatever arrived before.
fn read_until_closed(client: &mut RawClient) -> Vec<u8> {
    client
        .read_to_close()
        .expect("the server should close the connection")
}

/// True when the server has sent something on `stream` that has not been read yet. It does not
/// wait: it tells what has arrived so far.
fn has_pending_data(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).expect("non-blocking");
    let mut byte = [0u8; 1];
    let pending = match stream.peek(&mut byte) {
        Ok(n) => n > 0,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
        Err(e) => panic!("peek failed: {e}"),
    };
    stream.set_nonblocking(false).expect("blocking again");
    pending
}

/// Polls `probe` until it returns `Some` or `EVENT_DEADLINE` passes.
fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + EVENT_DEADLINE;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(POLL);
    }
}

// ---------------------------------------------------------------------------------------------
// Processes spawned directly
// ---------------------------------------------------------------------------------------------

/// How a freshly spawned server is known to be ready.
#[derive(Clone)]
enum Ready {
    /// It answers an inline PING on 127.0.0.1 at its port.
    Tcp,
    /// It answers an inline PING on this Unix socket.
    Unix(PathBuf),
}

/// A server process with exactly the command line a test chooses (a config file first, no
/// `--bind`, a pid file...) and whose exit status the test can observe. It owns a temporary
/// directory and is stopped when dropped.
///
/// The testkit's `ServerProcess` is not used because it takes any PONG on its port as proof
/// that its own server is up: when two tests are handed the same ephemeral port, the loser
/// exits with "Address already in use" while its test talks to the winner. Here a server is
/// ready only once it answers PING and its own log says it is ready to accept connections.
struct Launched {
    kind: ServerKind,
    dir: PathBuf,
    child: Option<Child>,
    port: u16,
    spawns: usize,
}

impl Launched {
    fn new(kind: ServerKind) -> Launched {
        let dir = make_temp_dir(&format!("admin-{}", kind.name())).expect("temp dir");
        Launched {
            kind,
            dir,
            child: None,
            port: 0,
            spawns: 0,
        }
    }

    /// Starts `kind` the way the testkit does (127.0.0.1, a free port, no persistence, the
    /// temporary directory as `dir`) with `extra` appended, and waits until it is ready.
    fn start(kind: ServerKind, extra: &[&str]) -> Launched {
        let mut server = Launched::new(kind);
        let dir = server.dir_arg();
        server.spawn(Ready::Tcp, |port| {
            let mut args = argv(&[
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                &dir,
            ]);
            args.extend(argv(extra));
            args
        });
        server
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn dir_arg(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("a running child")
    }

    /// True while the process has not exited.
    fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    fn log_path(&self) -> PathBuf {
        self.path(&format!("server-{}.log", self.spawns))
    }

    fn log(&self) -> String {
        fs::read(self.log_path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Spawns the server with the arguments `args(port)` on a free port and waits until it is
    /// ready. A start that fails because the port was taken meanwhile is retried on another.
    fn spawn(&mut self, ready: Ready, args: impl Fn(u16) -> Vec<String>) {
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port().expect("free port");
            match self.try_spawn(port, &ready, &args(port)) {
                Ok(()) => return,
                Err(log) if log.contains("Address already in use") => last = log,
                Err(log) => panic!("{} did not start:\n{log}", self.kind.name()),
            }
        }
        panic!("{} kept finding its port taken:\n{last}", self.kind.name());
    }

    /// Spawns the process without waiting for anything.
    fn spawn_detached(&mut self, args: &[String]) {
        assert!(
            self.child.is_none(),
            "the previous process is still running"
        );
        self.spawns += 1;
        let log = File::create(self.log_path()).expect("log file");
        let child = Command::new(self.kind.program())
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.kind.program().display()));
        self.child = Some(child);
    }

    fn try_spawn(&mut self, port: u16, ready: &Ready, args: &[String]) -> Result<(), String> {
        self.port = port;
        self.spawn_detached(args);
        let end = Instant::now() + EVENT_DEADLINE;
        loop {
            let child = self.child.as_mut().expect("child");
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return Err(format!(
                    "exited during start-up ({status}):\n{}",
                    self.log()
                ));
            }
            let answered = match ready {
                Ready::Tcp => TcpStream::connect_timeout(&self.addr(), Duration::from_secs(1))
                    .and_then(ping_ready),
                Ready::Unix(path) => UnixStream::connect(path).and_then(ping_ready),
            };
            // Redis logs "Ready to accept connections", Shoal "Shoal ready to accept
            // connections"; a PONG without that line may come from another test's server.
            let logged = || {
                self.log()
                    .to_ascii_lowercase()
                    .contains("ready to accept connections")
            };
            if answered.is_ok() && logged() {
                return Ok(());
            }
            if Instant::now() >= end {
                return Err(format!(
                    "no PONG within {EVENT_DEADLINE:?}:\n{}",
                    self.log()
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on a child we spawned and have not reaped, so the pid is still ours.
        let rc = unsafe { libc::kill(self.pid() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill: {}", io::Error::last_os_error());
    }

    /// Waits for the process to exit on its own and returns its status.
    fn wait_exit(&mut self) -> ExitStatus {
        let end = Instant::now() + EVENT_DEADLINE;
        let child = self.child.as_mut().expect("a running child");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < end,
                "{} did not exit; log:\n{}",
                self.kind.name(),
                self.log()
            );
            std::thread::sleep(POLL);
        }
    }

    /// Stops the process (SIGTERM, then SIGKILL after the deadline) if it is still running.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SAFETY: as in `signal`, the child has not been reaped yet.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let end = Instant::now() + EVENT_DEADLINE;
        while Instant::now() < end {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(POLL);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        self.stop();
        // A failing test keeps the directory and the server's log for a post-mortem.
        if std::thread::panicking() {
            eprintln!("kept {} (server logs inside)", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Sends an inline PING and accepts `+PONG` or `-NOAUTH` (a server with a password is serving
/// too).
fn ping_ready<S: Read + Write>(mut stream: S) -> io::Result<()> {
    stream.write_all(b"PING\r\n")?;
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while !got.ends_with(b"\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    if got.starts_with(b"+PONG") || got.starts_with(b"-NOAUTH") {
        Ok(())
    } else {
        Err(io::Error::other(String::from_utf8_lossy(&got).into_owned()))
    }
}

/// Builds an argument vector from string-like pieces.
fn argv<S: AsRef<str>>(parts: &[S]) -> Vec<String> {
    parts.iter().map(|p| p.as_ref().to_string()).collect()
}

/// What a process that is expected to exit by itself printed, and how it ended.
struct Exited {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs the server binary with `args` in `dir` and waits (bounded) for it to exit by itself;
/// output goes to files so that a chatty process cannot block on a full pipe.
fn run_to_exit(kind: &ServerKind, dir: &Path, args: &[String]) -> Exited {
    let out_path = dir.join("run.stdout");
    let err_path = dir.join("run.stderr");
    let mut child = Command::new(kind.program())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", kind.program().display()));
    let end = Instant::now() + EVENT_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} {args:?} kept running instead of exiting; output:\n{}",
                kind.name(),
                fs::read_to_string(&out_path).unwrap_or_default()
            );
        }
        std::thread::sleep(POLL);
    };
    Exited {
        status,
        stdout: String::from_utf8_lossy(&fs::read(&out_path).unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&fs::read(&err_path).unwrap_or_default()).into_owned(),
    }
}

/// Removes a temporary directory when dropped, unless the test is failing.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> TempDir {
        TempDir(make_temp_dir(prefix).expect("temp dir"))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Start-up
// ---------------------------------------------------------------------------------------------

#[test]
fn startup_reads_config_file_and_command_line_wins() {
    let mut server = Launched::new(candidate());
    let conf = server.path("server.conf");
    let dir = server.dir_arg();
    server.spawn(Ready::Tcp, |port| {
        // The port must be in the file (the file is what is being tested), so the file is
        // written for each start attempt's port.
        let text = format!(
            "# A redis.conf-style file: comments, blank lines and quoted values.\n\
             \x20  # An indented comment, then a blank line.\n\
             \n\
             port {port}\n\
             maxmemory 10mb\n\
             requirepass \"open sesame\"\n\
             maxmemory-policy 'allkeys-lru'\n\
             hz 15\n\
             maxmemory-samples \"7\"\n"
        );
        fs::write(&conf, text).expect("write config");
        argv(&[
            conf.to_str().unwrap(),
            "--maxmemory",
            "20mb",
            "--hz",
            "25",
            "--save",
            "",
            "--dir",
            &dir,
        ])
    });
    let mut client = connect(server.addr());
    // The password came from a double-quoted value with a space in it, so only the whole
    // phrase authenticates.
    assert_eq!(
        cmd(&mut client, &["PING"]),
        Frame::Error("NOAUTH Authentication required.".into())
    );
    assert_eq!(cmd(&mut client, &["AUTH", "open sesame"]), ok());
    // Command-line directives are applied after the file, so they win.
    assert_eq!(config_value(&mut client, "maxmemory"), "20971520");
    assert_eq!(config_value(&mut client, "hz"), "25");
    // Directives only in the file keep the file's values, quotes removed.
    assert_eq!(config_value(&mut client, "maxmemory-policy"), "allkeys-lru");
    assert_eq!(config_value(&mut client, "maxmemory-samples"), "7");
    assert_eq!(config_value(&mut client, "requirepass"), "open sesame");
    assert_eq!(config_value(&mut client, "port"), server.port.to_string());
    // INFO names the file the server was started with.
    let server_info = info(&mut client, "server");
    assert_eq!(
        info_field(&server_info, "config_file").as_deref(),
        conf.to_str(),
        "{server_info}"
    );
}

/// A configuration file with one bad line, the line's number and its text.
struct BadConfig {
    text: &'static str,
    line: usize,
    offending: &'static str,
}

#[test]
fn startup_rejects_bad_config_lines_like_redis() {
    let cases = [
        BadConfig {
            text: "# comment\nport abc\n",
            line: 2,
            offending: "port abc",
        },
        BadConfig {
            text: "hz 10\n\n# policy below\nmaxmemory-policy foo\n",
            line: 4,
            offending: "maxmemory-policy foo",
        },
        BadConfig {
            text: "maxmemory 1mb\nno-such-directive yes\n",
            line: 2,
            offending: "no-such-directive yes",
        },
        BadConfig {
            text: "maxmemory lots\n",
            line: 1,
            offending: "maxmemory lots",
        },
    ];
    let kind = candidate();
    let dir = TempDir::new("admin-badconf");
    for case in &cases {
        let conf = dir.0.join("bad.conf");
        fs::write(&conf, case.text).expect("write config");
        // A free port on the command line means a server that wrongly starts cannot collide
        // with anything; `run_to_exit` then fails the test instead of hanging.
        let port = free_port().expect("free port").to_string();
        let args = argv(&[conf.to_str().unwrap(), "--port", &port, "--save", ""]);
        let got = run_to_exit(&kind, &dir.0, &args);
        let want = run_to_exit(&ServerKind::Redis, &dir.0, &args);
        assert!(!got.status.success(), "{:?} started", case.text);
        assert!(!want.status.success(), "redis accepted {:?}", case.text);
        assert!(
            got.stderr.contains(&format!("line {}", case.line))
                && got.stderr.contains(&format!(">>> '{}'", case.offending)),
            "stderr should name line {} and {:?}:\n{}",
            case.line,
            case.offending,
            got.stderr
        );
        // After the banner (which names the product), the message is Redis's word for word.
        let body = |s: &str| {
            s.lines()
                .skip_while(|l| !l.starts_with("*** FATAL CONFIG FILE ERROR"))
                .skip(1)
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(body(&got.stderr), body(&want.stderr), "for {:?}", case.text);
    }
}

#[test]
fn startup_rejects_bad_command_line_values() {
    let kind = candidate();
    let dir = TempDir::new("admin-badcli");
    let port = free_port().expect("free port").to_string();
    for bad in [["--port", "abc"], ["--maxmemory-policy", "foo"]] {
        let args = argv(&[bad[0], bad[1], "--port", &port, "--save", ""]);
        // The bad directive comes first, so the valid `--port` after it cannot hide it.
        let got = run_to_exit(&kind, &dir.0, &args);
        assert!(!got.status.success(), "{bad:?} started");
        let name = bad[0].trim_start_matches('-');
        assert!(
            got.stderr.contains("FATAL CONFIG FILE ERROR")
                && got.stderr.contains(name)
                && got.stderr.contains(bad[1]),
            "stderr should name {bad:?}:\n{}",
            got.stderr
        );
    }
}

#[test]
#[ignore = "bug: a bad --directive is reported as `line 1` / `'port abc'`; Redis 7.0 reports `line 2` / `'port \"abc\"'`"]
fn startup_command_line_error_matches_redis() {
    let dir = TempDir::new("admin-badcli-exact");
    let args = argv(&["--port", "abc"]);
    let got = run_to_exit(&candidate(), &dir.0, &args);
    let want = run_to_exit(&ServerKind::Redis, &dir.0, &args);
    let body = |s: &str| s.lines().skip(1).map(str::to_string).collect::<Vec<_>>();
    assert_eq!(body(&got.stderr), body(&want.stderr));
}

#[test]
fn version_and_help_exit_zero() {
    let kind = candidate();
    let dir = TempDir::new("admin-version");
    let version = run_to_exit(&kind, &dir.0, &argv(&["--version"]));
    assert!(version.status.success(), "--version: {}", version.status);
    // Tools parse `v=<version>` out of this line, as they do for redis-server.
    assert!(
        version.stdout.contains(" v="),
        "--version printed {:?}",
        version.stdout
    );
    let help = run_to_exit(&kind, &dir.0, &argv(&["--help"]));
    let usage = format!("{}{}", help.stdout, help.stderr);
    assert!(usage.contains("Usage"), "--help printed {usage:?}");
    if is_redis(&kind) {
        // redis-server prints its usage and exits 1; Shoal deliberately exits 0.
        println!("skipped the --help exit status check: redis-server exits 1 after its usage");
    } else {
        assert!(help.status.success(), "--help: {}", help.status);
        // Every directive is listed with its default.
        for directive in ["port", "maxmemory-policy", "requirepass", "unixsocket"] {
            assert!(usage.contains(directive), "--help lacks {directive}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. CONFIG
// ---------------------------------------------------------------------------------------------

#[test]
fn config_get_globs_agree_with_redis() {
    let server = start(&[]);
    let redis = start_redis(&[]);
    let mut client = connect(server.addr());
    let mut reference = connect(redis.addr());
    let maxmemory = config_get(&mut client, "maxmemory*");
    let names: Vec<&str> = maxmemory.iter().map(|(k, _)| k.as_str()).collect();
    for name in ["maxmemory", "maxmemory-policy", "maxmemory-samples"] {
        assert!(names.contains(&name), "maxmemory* lacks {name}: {names:?}");
    }
    assert!(
        names.iter().all(|n| n.starts_with("maxmemory")),
        "{names:?}"
    );
    // Shoal implements a subset of Redis's parameters; every one it reports must be one Redis
    // reports under the same glob, with the same default value.
    let reference_maxmemory = config_get(&mut reference, "maxmemory*");
    for pair in &maxmemory {
        assert!(
            reference_maxmemory.contains(pair),
            "{pair:?} not in redis's {reference_maxmemory:?}"
        );
    }
    let all = config_get(&mut client, "*");
    let reference_all = config_get(&mut reference, "*");
    for name in [
        "port",
        "bind",
        "maxmemory",
        "requirepass",
        "databases",
        "hz",
    ] {
        assert!(
            all.iter().any(|(k, _)| k == name),
            "* lacks {name}: {all:?}"
        );
    }
    // The port and the directory differ by construction; the rest of the common parameters
    // must have Redis's values (defaults, or what the testkit passed to both).
    for (name, value) in &all {
        if name == "port" || name == "dir" {
            continue;
        }
        if let Some((_, want)) = reference_all.iter().find(|(k, _)| k == name) {
            assert_eq!(value, want, "CONFIG GET * value of {name}");
        }
    }
    // A glob that matches nothing is an empty reply; `?` matches one character.
    assert_same_replies(
        server.addr(),
        redis.addr(),
        &[
            &["CONFIG", "GET", "no-such-param*"],
            &["CONFIG", "GET", "maxmemory-polic?"],
        ],
    );
    // Several patterns are combined into one reply. Redis orders it by its dict's randomly
    // seeded hash, so the pairs are compared as sets.
    let several = |client: &mut RawClient| {
        let mut found = pairs(&cmd(client, &["CONFIG", "GET", "hz", "databases", "hz"]))
            .into_iter()
            .map(|(k, v)| (k, text(&v)))
            .collect::<Vec<_>>();
        found.sort();
        found
    };
    assert_eq!(several(&mut client), several(&mut reference));
}

#[test]
fn config_set_several_pairs_is_all_or_nothing() {
    let server = start(&[]);
    let redis = start_redis(&[]);
    let script: &[&[&str]] = &[
        &[
            "CONFIG",
            "SET",
            "maxmemory",
            "5mb",
            "maxmemory-policy",
            "allkeys-lru",
            "maxmemory-samples",
            "9",
        ],
        &["CONFIG", "GET", "maxmemory"],
        &["CONFIG", "GET", "maxmemory-policy"],
        &["CONFIG", "GET", "maxmemory-samples"],
        // The last pair is invalid, so the valid ones before it must not be applied either.
        &[
            "CONFIG",
            "SET",
            "maxmemory",
            "7mb",
            "maxmemory-samples",
            "3",
            "maxmemory-policy",
            "foo",
        ],
        // And the same with the invalid pair first.
        &[
            "CONFIG",
            "SET",
            "maxmemory-samples",
            "abc",
            "maxmemory",
            "8mb",
        ],
        &["CONFIG", "GET", "maxmemory"],
        &["CONFIG", "GET", "maxmemory-policy"],
        &["CONFIG", "GET", "maxmemory-samples"],
        // Memory units are accepted and read back in bytes.
        &["CONFIG", "SET", "maxmemory", "1gb"],
        &["CONFIG", "GET", "maxmemory"],
        &["CONFIG", "SET", "maxmemory", "0"],
    ];
    assert_same_replies(server.addr(), redis.addr(), script);
    // The comparison proves Redis's behaviour; these pin the values it must have had.
    let mut client = connect(server.addr());
    cmd(
        &mut client,
        &[
            "CONFIG",
            "SET",
            "maxmemory",
            "5mb",
            "maxmemory-policy",
            "allkeys-lru",
        ],
    );
    let reply = cmd(
        &mut client,
        &[
            "CONFIG",
            "SET",
            "maxmemory",
            "6mb",
            "maxmemory-policy",
            "foo",
        ],
    );
    assert!(matches!(reply, Frame::Error(_)), "{reply:?}");
    assert_eq!(config_value(&mut client, "maxmemory"), "5242880");
    assert_eq!(config_value(&mut client, "maxmemory-policy"), "allkeys-lru");
    assert_eq!(
        cmd(&mut client, &["CONFIG", "SET", "maxmemory", "1gb"]),
        ok()
    );
    assert_eq!(config_value(&mut client, "maxmemory"), "1073741824");
}

#[test]
fn config_set_errors_match_redis() {
    let server = start(&[]);
    let redis = start_redis(&[]);
    assert_same_replies(
        server.addr(),
        redis.addr(),
        &[
            &["CONFIG", "SET", "maxmemory-policy", "foo"],
            &["CONFIG", "SET", "no-such-parameter", "1"],
            &["CONFIG", "SET", "maxmemory", "1", "maxmemory", "2"],
            &["CONFIG", "SET", "maxmemory", "lots"],
            &["CONFIG", "SET", "hz", "abc"],
            &["CONFIG", "SET", "databases", "4"],
            &["CONFIG", "SET", "maxmemory"],
            &["CONFIG", "GET"],
            &["CONFIG", "NOSUCH"],
        ],
    );
}

#[test]
fn config_set_port_error_matches_redis() {
    let server = start(&[]);
    let redis = start_redis(&[]);
    assert_same_replies(
        server.addr(),
        redis.addr(),
        &[&["CONFIG", "SET", "port", "abc"]],
    );
}

#[test]
fn config_parameter_names_are_echoed_like_redis() {
    let server = start(&[]);
    let redis = start_redis(&[]);
    assert_same_replies(
        server.addr(),
        redis.addr(),
        &[
            &["CONFIG", "GET", "MAXMEMORY"],
            &["CONFIG", "SET", "maxmemory", "1", "MAXMEMORY", "2"],
        ],
    );
}

#[test]
fn config_set_maxmemory_samples_range_matches_redis() {
    let server = start(&[]);
    let redis = start_redis(&[]);
    assert_same_replies(
        server.addr(),
        redis.addr(),
        &[
            &["CONFIG", "SET", "maxmemory-samples", "-1"],
            &["CONFIG", "SET", "maxmemory-samples", "65"],
        ],
    );
}

#[test]
fn config_set_odd_arguments_match_redis() {
    let server = start(&[]);
    let redis = start_redis(&[]);
    assert_same_replies(
        server.addr(),
        redis.addr(),
        &[&["CONFIG", "SET", "maxmemory", "1", "hz"]],
    );
}

/// The INFO stats counters that CONFIG RESETSTAT must zero.
const RESET_COUNTERS: [&str; 5] = [
    "keyspace_hits",
    "keyspace_misses",
    "total_commands_processed",
    "total_error_replies",
    "expired_keys",
];

#[test]
fn config_resetstat_zeroes_counters_like_redis() {
    let server = start(&[]);
    let redis = start_redis(&[]);
    let run = |addr: SocketAddr| -> Vec<(String, String)> {
        let mut client = connect(addr);
        cmd(&mut client, &["SET", "a", "1"]);
        cmd(&mut client, &["SET", "gone", "1", "PX", "1"]);
        cmd(&mut client, &["GET", "a"]);
        cmd(&mut client, &["GET", "missing"]);
        cmd(&mut client, &["NOSUCHCOMMAND"]);
        // Waiting for the short-lived key to be reported missing makes expired_keys non-zero
        // without sleeping for a fixed time.
        wait_for("the PX 1 key to expire", || {
            (cmd(&mut client, &["GET", "gone"]) == Frame::Null).then_some(())
        });
        let before = info(&mut client, "stats");
        for field in RESET_COUNTERS {
            let v: u64 = info_field(&before, field).unwrap().parse().unwrap();
            assert!(
                v > 0,
                "{field} should be non-zero before RESETSTAT:\n{before}"
            );
        }
        assert_eq!(cmd(&mut client, &["CONFIG", "RESETSTAT"]), ok());
        let after = info(&mut client, "stats");
        let commandstats = info(&mut client, "commandstats");
        let errorstats = info(&mut client, "errorstats");
        let mut out: Vec<(String, String)> = RESET_COUNTERS
            .iter()
            .map(|f| (f.to_string(), info_field(&after, f).unwrap()))
            .collect();
        // Only the commands run since the reset remain in commandstats and none in errorstats.
        let mut cmdstats: Vec<String> = commandstats
            .lines()
            .filter_map(|l| l.strip_prefix("cmdstat_"))
            .map(|l| l.split(':').next().unwrap().to_string())
            .collect();
        cmdstats.sort();
        out.push(("commandstats".into(), cmdstats.join(",")));
        out.push((
            "errorstats".into(),
            errorstats
                .lines()
                .filter(|l| l.starts_with("errorstat_"))
                .collect::<Vec<_>>()
                .join(","),
        ));
        out
    };
    let got = run(server.addr());
    let want = run(redis.addr());
    assert_eq!(got, want, "after CONFIG RESETSTAT (left: candidate)");
    let value = |name: &str| got.iter().find(|(k, _)| k == name).unwrap().1.clone();
    assert_eq!(value("keyspace_hits"), "0");
    assert_eq!(value("keyspace_misses"), "0");
    assert_eq!(value("total_error_replies"), "0");
}

#[test]
fn config_rewrite_updates_file_keeps_comments_and_survives_restart() {
    let mut server = Launched::new(candidate());
    let conf = server.path("rewrite.conf");
    let original = "# Top comment: kept by CONFIG REWRITE.\n\
                    maxmemory 10mb\n\
                    \n\
                    # Policy comment, also kept.\n\
                    maxmemory-policy allkeys-lru\n\
                    hz 10\n";
    fs::write(&conf, original).expect("write config");
    let dir = server.dir_arg();
    let conf_arg = conf.to_string_lossy().into_owned();
    let args = |port: u16| {
        argv(&[
            conf_arg.as_str(),
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--dir",
            &dir,
        ])
    };
    server.spawn(Ready::Tcp, args);
    let mut client = connect(server.addr());
    assert_eq!(
        cmd(
            &mut client,
            &[
                "CONFIG",
                "SET",
                "maxmemory",
                "3mb",
                "maxmemory-samples",
                "8"
            ]
        ),
        ok()
    );
    assert_eq!(cmd(&mut client, &["CONFIG", "REWRITE"]), ok());
    let rewritten = fs::read_to_string(&conf).expect("read rewritten config");
    // Redis writes memory sizes with a unit when one fits ("3mb"); plain bytes mean the same.
    let value_of = |name: &str| -> Vec<String> {
        rewritten
            .lines()
            .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .map(|v| v.trim().trim_matches('"').to_string())
            .collect()
    };
    let maxmemory = value_of("maxmemory");
    assert!(
        maxmemory == ["3mb"] || maxmemory == ["3145728"],
        "exactly one maxmemory line with the new value:\n{rewritten}"
    );
    assert_eq!(value_of("maxmemory-samples"), ["8"], "{rewritten}");
    assert_eq!(value_of("maxmemory-policy"), ["allkeys-lru"], "{rewritten}");
    let top = rewritten
        .find("# Top comment: kept by CONFIG REWRITE.")
        .unwrap_or_else(|| panic!("top comment lost:\n{rewritten}"));
    let policy = rewritten
        .find("# Policy comment, also kept.")
        .unwrap_or_else(|| panic!("policy comment lost:\n{rewritten}"));
    assert!(top < policy, "comments reordered:\n{rewritten}");
    drop(client);
    server.stop();
    // A restart from the rewritten file has the values that were set at run time.
    server.spawn(Ready::Tcp, args);
    let mut client = connect(server.addr());
    assert_eq!(config_value(&mut client, "maxmemory"), "3145728");
    assert_eq!(config_value(&mut client, "maxmemory-samples"), "8");
    assert_eq!(config_value(&mut client, "maxmemory-policy"), "allkeys-lru");
}

#[test]
fn config_rewrite_without_file_errors_like_redis() {
    let server = start(&[]);
    let redis = start_redis(&[]);
    assert_same_replies(server.addr(), redis.addr(), &[&["CONFIG", "REWRITE"]]);
    let mut client = connect(server.addr());
    assert_eq!(
        cmd(&mut client, &["CONFIG", "REWRITE"]),
        Frame::Error("ERR The server is running without a config file".into())
    );
}

// ---------------------------------------------------------------------------------------------
// 3. AUTH and requirepass
// ---------------------------------------------------------------------------------------------

const NOAUTH: &str = "-NOAUTH Authentication required.\\r\\n";
const WRONGPASS: &str = "-WRONGPASS invalid username-password pair or user is disabled.\\r\\n";

/// Replaces the value after `id` in a HELLO reply (flat or map) with `N`, since client ids
/// depend on how many connections each server has seen.
fn normalise_hello(args: &[&str], reply: String) -> String {
    if !args[0].eq_ignore_ascii_case("HELLO") {
        return reply;
    }
    match reply.find("$2\\r\\nid\\r\\n:") {
        Some(at) => {
            let start = at + "$2\\r\\nid\\r\\n:".len();
            let end = start + reply[start..].find("\\r\\n").unwrap_or(0);
            format!("{}N{}", &reply[..start], &reply[end..])
        }
        None => reply,
    }
}

#[test]
fn requirepass_replies_match_redis() {
    let args = ["--requirepass", "s3cret"];
    let server = start(&args);
    let redis = start_redis(&args);
    let unauthenticated: &[&[&str]] = &[
        &["PING"],
        &["GET", "k"],
        &["SET", "k", "v"],
        &["CLIENT", "ID"],
        &["SELECT", "1"],
        &["CONFIG", "GET", "maxmemory"],
        &["NOSUCHCOMMAND"],
        &["AUTH", "wrong"],
        &["AUTH", "default", "wrong"],
        &["AUTH", "nobody", "s3cret"],
        &["AUTH", "a", "b", "c"],
        &["HELLO", "3", "AUTH", "default", "wrong"],
        &["HELLO", "3", "AUTH", "default"],
        &["HELLO", "4", "AUTH", "default", "s3cret"],
        &["PING"],
        &["AUTH", "s3cret"],
        &["PING"],
        &["SET", "k", "v"],
        &["GET", "k"],
        &["AUTH", "default", "s3cret"],
        &["AUTH", "wrong"],
        // A failed AUTH after a successful one leaves the connection authenticated.
        &["GET", "k"],
        &["QUIT"],
    ];
    let (got, want) = transcripts(server.addr(), redis.addr(), unauthenticated, |_, r| r);
    assert_eq!(
        got, want,
        "candidate (left) differs from redis-server (right)"
    );
    // The comparison proves Redis's behaviour; these pin the exact lines the brief names.
    assert_eq!(got[0], format!("PING -> {NOAUTH}"));
    assert_eq!(got[7], format!("AUTH wrong -> {WRONGPASS}"));
    // HELLO with AUTH authenticates and switches protocol in one step; the reply is a map.
    let hello: &[&[&str]] = &[
        &[
            "HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "admin",
        ],
        &["PING"],
        &["CLIENT", "GETNAME"],
        &["HELLO", "2"],
    ];
    let (got, want) = transcripts(server.addr(), redis.addr(), hello, normalise_hello);
    assert_eq!(
        got, want,
        "candidate (left) differs from redis-server (right)"
    );
    let mut client = connect(server.addr());
    let reply = cmd(&mut client, &["HELLO", "3", "AUTH", "default", "s3cret"]);
    let fields = pairs(&reply);
    assert!(matches!(reply, Frame::Map(_)), "{reply:?}");
    let proto = fields.iter().find(|(k, _)| k == "proto").map(|(_, v)| v);
    assert_eq!(proto, Some(&Frame::Integer(3)));
}

#[test]
fn hello_without_auth_gets_noauth_hello_error() {
    let server = start(&["--requirepass", "s3cret"]);
    let mut client = connect(server.addr());
    for args in [&["HELLO", "3"][..], &["HELLO"], &["HELLO", "2"]] {
        let reply = cmd(&mut client, args);
        match &reply {
            Frame::Error(e) => assert!(
                e.starts_with(b"NOAUTH HELLO must be called with the client already authenticated"),
                "{args:?}: {reply:?}"
            ),
            other => panic!("{args:?}: {other:?}"),
        }
    }
    // The refused HELLO left the protocol and the authentication state unchanged.
    assert_eq!(
        cmd_raw(&mut client, &["GET", "k"]),
        "-NOAUTH Authentication required.\\r\\n"
    );
}

#[test]
fn hello_without_auth_error_matches_redis() {
    let args = ["--requirepass", "s3cret"];
    let server = start(&args);
    let redis = start_redis(&args);
    assert_same_replies(server.addr(), redis.addr(), &[&["HELLO", "3"], &["HELLO"]]);
}

#[test]
fn auth_without_requirepass_matches_redis() {
    let server = start(&[]);
    let redis = start_redis(&[]);
    assert_same_replies(
        server.addr(),
        redis.addr(),
        &[
            &["AUTH", "anything"],
            &["AUTH", "default", "anything"],
            &["AUTH", "nobody", "anything"],
            &["PING"],
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// 4. CLIENT
// ---------------------------------------------------------------------------------------------

#[test]
fn client_id_and_names_match_redis() {
    let server = start(&[]);
    let redis = start_redis(&[]);
    let mut client = connect(server.addr());
    let id = integer(&cmd(&mut client, &["CLIENT", "ID"]));
    assert!(id > 0);
    // Ids are never reused: a later connection gets a larger one.
    let mut later = connect(server.addr());
    assert!(integer(&cmd(&mut later, &["CLIENT", "ID"])) > id);
    assert_same_replies(
        server.addr(),
        redis.addr(),
        &[
            &["CLIENT", "GETNAME"],
            &["CLIENT", "SETNAME", "worker-1"],
            &["CLIENT", "GETNAME"],
            &["CLIENT", "SETNAME", "has space"],
            &["CLIENT", "SETNAME", "line\nbreak"],
            &["CLIENT", "SETNAME", "caf\u{e9}"],
            &["CLIENT", "SETNAME", "tab\there"],
            &["CLIENT", "GETNAME"],
            // An empty name clears the name.
            &["CLIENT", "SETNAME", ""],
            &["CLIENT", "GETNAME"],
            &["CLIENT", "SETNAME"],
            &["CLIENT", "SETNAME", "a", "b"],
            &["CLIENT", "NOSUCH"],
        ],
    );
}

/// The `field=value` pairs of one CLIENT LIST/INFO line, in order.
fn client_fields(line: &str) -> Vec<(String, String)> {
    line.split(' ')
        .filter_map(|f| f.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn client_list_and_info_show_the_connection() {
    let server = start(&[]);
    let redis = start_redis(&[]);
    let shape = |addr: SocketAddr| -> Vec<String> {
        let mut client = connect(addr);
        let local = client.stream().local_addr().unwrap().to_string();
        let id = integer(&cmd(&mut client, &["CLIENT", "ID"])).to_string();
        assert_eq!(cmd(&mut client, &["CLIENT", "SETNAME", "lister"]), ok());
        assert_eq!(cmd(&mut client, &["SELECT", "3"]), ok());
        let _other = connect(addr);
        let list = text(&cmd(&mut client, &["CLIENT", "LIST"]));
        assert!(list.ends_with('\n'), "{list:?}");
        let mine: Vec<&str> = list
            .lines()
            .filter(|l| l.starts_with(&format!("id={id} ")))
            .collect();
        assert_eq!(mine.len(), 1, "own connection in CLIENT LIST:\n{list}");
        let fields = client_fields(mine[0]);
        assert_eq!(field(&fields, "addr"), Some(local.as_str()), "{list}");
        assert_eq!(field(&fields, "name"), Some("lister"), "{list}");
        assert_eq!(field(&fields, "db"), Some("3"), "{list}");
        // CLIENT INFO is the same line for the calling connection alone.
        let own = text(&cmd(&mut client, &["CLIENT", "INFO"]));
        assert!(own.ends_with('\n') && own.lines().count() == 1, "{own:?}");
        let own_fields = client_fields(&own);
        assert_eq!(field(&own_fields, "id"), Some(id.as_str()));
        assert_eq!(field(&own_fields, "name"), Some("lister"));
        assert_eq!(field(&own_fields, "db"), Some("3"));
        // CLIENT LIST ID filters to the given connections.
        let by_id = text(&cmd(&mut client, &["CLIENT", "LIST", "ID", &id]));
        assert_eq!(by_id.lines().count(), 1, "{by_id}");
        fields.into_iter().map(|(k, _)| k).collect()
    };
    let got = shape(server.addr());
    let want = shape(redis.addr());
    // Shoal may add fields after Redis 7.0's (Redis 7.2 added lib-name and lib-ver), but
    // Redis's must all be there, in Redis's order, for tools that parse the line.
    assert!(
        got.len() >= want.len() && got[..want.len()] == want[..],
        "CLIENT LIST fields\n  candidate: {got:?}\n  redis:     {want:?}"
    );
}

#[test]
fn client_list_reports_the_current_command() {
    let server = start(&[]);
    let mut client = connect(server.addr());
    let list = text(&cmd(&mut client, &["CLIENT", "LIST"]));
    assert!(list.contains(" cmd=client|list "), "{list}");
    cmd(&mut client, &["SET", "k", "v"]);
    let own = text(&cmd(&mut client, &["CLIENT", "INFO"]));
    assert!(own.contains(" cmd=client|info "), "{own}");
}

#[test]
fn client_kill_by_id_and_addr_closes_the_victim() {
    let server = start(&[]);
    let mut admin = connect(server.addr());
    // By ID: the killer gets the number of clients killed, the victim an orderly close.
    let mut victim = connect(server.addr());
    let victim_id = integer(&cmd(&mut victim, &["CLIENT", "ID"])).to_string();
    assert_eq!(
        cmd(&mut admin, &["CLIENT", "KILL", "ID", &victim_id]),
        Frame::Integer(1)
    );
    assert_eq!(read_until_closed(&mut victim), b"");
    // By ADDR, the address being the victim's side of the connection as the server sees it.
    let mut victim = connect(server.addr());
    let victim_addr = victim.stream().local_addr().unwrap().to_string();
    assert_eq!(cmd(&mut victim, &["PING"]), Frame::Simple("PONG".into()));
    assert_eq!(
        cmd(&mut admin, &["CLIENT", "KILL", "ADDR", &victim_addr]),
        Frame::Integer(1)
    );
    assert_eq!(read_until_closed(&mut victim), b"");
    // The old form `CLIENT KILL ip:port` answers OK.
    let mut victim = connect(server.addr());
    let victim_addr = victim.stream().local_addr().unwrap().to_string();
    assert_eq!(cmd(&mut victim, &["PING"]), Frame::Simple("PONG".into()));
    assert_eq!(cmd(&mut admin, &["CLIENT", "KILL", &victim_addr]), ok());
    assert_eq!(read_until_closed(&mut victim), b"");
    // The killer itself is unaffected.
    assert_eq!(cmd(&mut admin, &["PING"]), Frame::Simple("PONG".into()));
}

#[test]
fn client_kill_skipme_and_errors_match_redis() {
    let server = start(&[]);
    let redis = start_redis(&[]);
    let run = |addr: SocketAddr| -> Vec<String> {
        let mut me = connect(addr);
        let id = integer(&cmd(&mut me, &["CLIENT", "ID"])).to_string();
        let my_addr = me.stream().local_addr().unwrap().to_string();
        let mut out = vec![
            // SKIPME defaults to yes, so the caller survives filters that match it.
            cmd_raw(&mut me, &["CLIENT", "KILL", "ID", &id]),
            cmd_raw(&mut me, &["CLIENT", "KILL", "ADDR", &my_addr]),
            cmd_raw(&mut me, &["CLIENT", "KILL", "ID", &id, "SKIPME", "yes"]),
            cmd_raw(&mut me, &["PING"]),
            cmd_raw(&mut me, &["CLIENT", "KILL", "ID", "999999"]),
            cmd_raw(&mut me, &["CLIENT", "KILL", "ADDR", "10.1.2.3:4"]),
            cmd_raw(&mut me, &["CLIENT", "KILL", "10.1.2.3:4"]),
            cmd_raw(&mut me, &["CLIENT", "KILL", "ID", "abc"]),
            cmd_raw(&mut me, &["CLIENT", "KILL", "ID", &id, "SKIPME", "maybe"]),
            cmd_raw(&mut me, &["CLIENT", "KILL", "NOSUCHFILTER", "x"]),
            cmd_raw(&mut me, &["CLIENT", "KILL", "ID"]),
        ];
        // With SKIPME no the caller kills itself: it still gets the count, then the close.
        me.send_command(&[b"CLIENT", b"KILL", b"ID", id.as_bytes(), b"SKIPME", b"no"])
            .unwrap();
        out.push(escape(&read_until_closed(&mut me)));
        out
    };
    let got = run(server.addr());
    let want = run(redis.addr());
    assert_eq!(
        got, want,
        "candidate (left) differs from redis-server (right)"
    );
    assert_eq!(got[0], ":0\\r\\n");
    assert_eq!(got.last().unwrap(), ":1\\r\\n");
}

/// Sends `args` on `sender` without reading the reply, then waits until the server's
/// total_net_input_bytes (watched from `observer`) shows that it has read the request. This
/// proves the request arrived even when the server rightly does not answer it yet.
fn send_and_wait_until_read(observer: &mut RawClient, sender: &mut RawClient, args: &[&[u8]]) {
    // Each poll's own `INFO stats` request is counted too, so it is subtracted.
    let info_len = shoal_testkit::encode_command(&[b"INFO", b"stats"]).len() as u64;
    let bytes = shoal_testkit::encode_command(args).len() as u64;
    let base = info_u64(observer, "stats", "total_net_input_bytes");
    sender.send_command(args).unwrap();
    let mut polls = 0;
    wait_for("the server to read the paused client's request", || {
        polls += 1;
        let now = info_u64(observer, "stats", "total_net_input_bytes");
        (now >= base + polls * info_len + bytes).then_some(())
    });
}

#[test]
fn client_pause_write_holds_writes_until_unpause_or_timeout() {
    let server = start(&[]);
    let mut admin = connect(server.addr());
    let mut writer = connect(server.addr());
    let mut reader = connect(server.addr());
    assert_eq!(cmd(&mut writer, &["SET", "k", "old"]), ok());
    // A pause far longer than the test: only CLIENT UNPAUSE can end it, so the checks below
    // cannot race with the pause expiring on a slow machine.
    assert_eq!(
        cmd(&mut admin, &["CLIENT", "PAUSE", "600000", "WRITE"]),
        ok()
    );
    send_and_wait_until_read(&mut reader, &mut writer, &[b"SET", b"k", b"new"]);
    // Reads proceed while writes wait: the value is still the old one and the writer has no
    // reply.
    assert_eq!(cmd(&mut reader, &["GET", "k"]), Frame::Bulk("old".into()));
    assert_eq!(cmd(&mut reader, &["PING"]), Frame::Simple("PONG".into()));
    assert!(
        !has_pending_data(writer.stream()),
        "the write was answered during the pause"
    );
    assert_eq!(cmd(&mut admin, &["CLIENT", "UNPAUSE"]), ok());
    assert_eq!(writer.read_frame().expect("SET after UNPAUSE"), ok());
    assert_eq!(cmd(&mut reader, &["GET", "k"]), Frame::Bulk("new".into()));
    // A short pause ends by itself: the held write completes without UNPAUSE.
    assert_eq!(cmd(&mut admin, &["CLIENT", "PAUSE", "500", "WRITE"]), ok());
    assert_eq!(cmd(&mut writer, &["SET", "k", "later"]), ok());
    assert_eq!(cmd(&mut reader, &["GET", "k"]), Frame::Bulk("later".into()));
}

#[test]
fn client_held_by_pause_is_reported_blocked() {
    let server = start(&[]);
    let mut admin = connect(server.addr());
    let mut writer = connect(server.addr());
    let writer_id = integer(&cmd(&mut writer, &["CLIENT", "ID"])).to_string();
    assert_eq!(
        cmd(&mut admin, &["CLIENT", "PAUSE", "600000", "WRITE"]),
        ok()
    );
    writer.send_command(&[b"SET", b"k", b"v"]).unwrap();
    wait_for("the held SET to show as blocked", || {
        (info_u64(&mut admin, "clients", "blocked_clients") == 1).then_some(())
    });
    let line = text(&cmd(&mut admin, &["CLIENT", "LIST", "ID", &writer_id]));
    let fields = client_fields(&line);
    assert_eq!(field(&fields, "flags"), Some("b"), "{line}");
    assert_eq!(field(&fields, "cmd"), Some("set"), "{line}");
    assert_eq!(cmd(&mut admin, &["CLIENT", "UNPAUSE"]), ok());
}

#[test]
fn client_pause_errors_match_redis() {
    let server = start(&[]);
    let redis = start_redis(&[]);
    assert_same_replies(
        server.addr(),
        redis.addr(),
        &[
            &["CLIENT", "PAUSE"],
            &["CLIENT", "PAUSE", "abc"],
            &["CLIENT", "PAUSE", "-1"],
            &["CLIENT", "PAUSE", "0", "ALL"],
            &["CLIENT", "UNPAUSE"],
            &["CLIENT", "UNPAUSE", "extra"],
        ],
    );
}

#[test]
fn client_pause_bad_mode_matches_redis() {
    let server = start(&[]);
    let redis = start_redis(&[]);
    assert_same_replies(
        server.addr(),
        redis.addr(),
        &[&["CLIENT", "PAUSE", "10", "FOO"]],
    );
}

#[test]
fn client_reply_off_on_skip_exact_stream() {
    let server = start(&[]);
    let redis = start_redis(&[]);
    let stream = |addr: SocketAddr| -> String {
        let mut client = connect(addr);
        let script: &[&[&[u8]]] = &[
            &[b"CLIENT", b"REPLY", b"OFF"],
            &[b"SET", b"a", b"1"],
            &[b"GET", b"a"],
            &[b"NOSUCHCOMMAND"],
            &[b"CLIENT", b"REPLY", b"ON"],
            &[b"GET", b"a"],
            &[b"CLIENT", b"REPLY", b"SKIP"],
            &[b"SET", b"b", b"2"],
            &[b"GET", b"b"],
            &[b"CLIENT", b"REPLY", b"SKIP"],
            &[b"CLIENT", b"REPLY", b"SKIP"],
            &[b"GET", b"a"],
            // A sentinel: everything before it has been answered (or not) once it arrives.
            &[b"ECHO", b"end"],
        ];
        for args in script {
            client.send_command(args).unwrap();
        }
        let mut got = Vec::new();
        loop {
            let reply = client.read_reply().expect("reply");
            got.extend_from_slice(&reply.raw);
            if reply.frame == Frame::Bulk("end".into()) {
                break;
            }
        }
        escape(&got)
    };
    let got = stream(server.addr());
    assert_eq!(
        got,
        stream(redis.addr()),
        "candidate differs from redis-server"
    );
    // OFF silences everything up to ON, whose own reply is OK; SKIP silences itself and the
    // next command, and a second SKIP in a row passes the skip on to the command after it.
    assert_eq!(
        got,
        "+OK\\r\\n$1\\r\\n1\\r\\n$1\\r\\n2\\r\\n$3\\r\\nend\\r\\n"
    );
}

#[test]
fn client_no_evict_and_no_touch_replies() {
    let server = start(&[]);
    let redis = start_redis(&[]);
    assert_same_replies(
        server.addr(),
        redis.addr(),
        &[
            &["CLIENT", "NO-EVICT", "on"],
            &["CLIENT", "NO-EVICT", "OFF"],
            &["CLIENT", "NO-EVICT", "maybe"],
            &["CLIENT", "NO-EVICT"],
            &["CLIENT", "REPLY", "maybe"],
        ],
    );
    // CLIENT NO-TOUCH arrived in Redis 7.2, so redis-server 7.0 cannot serve as the reference.
    if is_redis(&candidate()) {
        println!("skipped CLIENT NO-TOUCH: redis-server 7.0 does not have it");
        return;
    }
    let mut client = connect(server.addr());
    assert_eq!(cmd(&mut client, &["CLIENT", "NO-TOUCH", "on"]), ok());
    assert_eq!(cmd(&mut client, &["CLIENT", "NO-TOUCH", "off"]), ok());
    assert_eq!(
        cmd(&mut client, &["CLIENT", "NO-TOUCH", "maybe"]),
        Frame::Error("ERR syntax error".into())
    );
}

// ---------------------------------------------------------------------------------------------
// 5. INFO
// ---------------------------------------------------------------------------------------------

#[test]
fn info_default_sections_match_redis() {
    let server = start(&[]);
    let redis = start_redis(&[]);
    let got = info_headers(&info(&mut connect(server.addr()), ""));
    let want = info_headers(&info(&mut connect(redis.addr()), ""));
    for section in ["Server", "Clients", "Memory", "Stats", "Keyspace"] {
        assert!(got.iter().any(|s| s == section), "no # {section}: {got:?}");
    }
    assert_eq!(got, want, "default INFO sections (left: candidate)");
    // A named section returns that section alone.
    let memory = info_headers(&info(&mut connect(server.addr()), "memory"));
    assert_eq!(memory, ["Memory"]);
}

#[test]
fn info_memory_fields() {
    let server = start(&[]);
    let mut client = connect(server.addr());
    let memory = info(&mut client, "memory");
    for name in ["used_memory", "used_memory_rss"] {
        let v: u64 = info_field(&memory, name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no numeric {name}:\n{memory}"));
        assert!(v > 0, "{name} is 0:\n{memory}");
    }
    let ratio: f64 = info_field(&memory, "mem_fragmentation_ratio")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no mem_fragmentation_ratio:\n{memory}"));
    assert!(ratio > 0.0, "{memory}");
    assert_eq!(
        info_field(&memory, "maxmemory_policy").as_deref(),
        Some("noeviction")
    );
    // The section follows CONFIG SET.
    cmd(
        &mut client,
        &[
            "CONFIG",
            "SET",
            "maxmemory-policy",
            "allkeys-lfu",
            "maxmemory",
            "64mb",
        ],
    );
    let memory = info(&mut client, "memory");
    assert_eq!(
        info_field(&memory, "maxmemory_policy").as_deref(),
        Some("allkeys-lfu")
    );
    assert_eq!(
        info_field(&memory, "maxmemory").as_deref(),
        Some("67108864")
    );
}

/// Runs `f` against the candidate and Redis (each after CONFIG RESETSTAT on a fresh server)
/// and returns both results.
fn on_both<T>(args: &[&str], f: impl Fn(&mut RawClient) -> T) -> (T, T) {
    let server = start(args);
    let redis = start_redis(args);
    let run = |addr: SocketAddr| {
        let mut client = connect(addr);
        assert_eq!(cmd(&mut client, &["CONFIG", "RESETSTAT"]), ok());
        f(&mut client)
    };
    (run(server.addr()), run(redis.addr()))
}

#[test]
fn info_commandstats_counts_calls() {
    let (got, want) = on_both(&[], |client| {
        for i in 0..7 {
            cmd(client, &["SET", &format!("k{i}"), "v"]);
        }
        let stats = info(client, "commandstats");
        let line = stats
            .lines()
            .find(|l| l.starts_with("cmdstat_set:"))
            .unwrap_or_else(|| panic!("no cmdstat_set:\n{stats}"))
            .to_string();
        // usec and usec_per_call are timings; the call counts are exact.
        client_fields(&line.replace(',', " ").replace("cmdstat_set:", ""))
            .into_iter()
            .filter(|(k, _)| !k.starts_with("usec"))
            .collect::<Vec<_>>()
    });
    assert_eq!(got, want, "cmdstat_set (left: candidate)");
    assert_eq!(field(&got, "calls"), Some("7"));
}

#[test]
fn info_errorstats_counts_errors() {
    let (got, want) = on_both(&[], |client| {
        cmd(client, &["SET", "text", "abc"]);
        let errors: &[&[&str]] = &[
            &["INCR", "text"],
            &["NOSUCHCOMMAND"],
            &["GET"],
            &["SET", "k", "v", "NX", "XX"],
        ];
        for args in errors {
            assert!(matches!(cmd(client, args), Frame::Error(_)), "{args:?}");
        }
        let errorstats = info(client, "errorstats");
        let stats = info(client, "stats");
        (
            errorstats
                .lines()
                .filter(|l| l.starts_with("errorstat_"))
                .map(str::to_string)
                .collect::<Vec<_>>(),
            info_field(&stats, "total_error_replies"),
        )
    });
    assert_eq!(got, want, "errorstats (left: candidate)");
    assert_eq!(got.0, ["errorstat_ERR:count=4"]);
    assert_eq!(got.1.as_deref(), Some("4"));
}

#[test]
fn info_keyspace_line_format() {
    let (got, want) = on_both(&[], |client| {
        cmd(client, &["SET", "a", "1"]);
        cmd(client, &["SET", "b", "2", "EX", "1000"]);
        cmd(client, &["SELECT", "5"]);
        cmd(client, &["SET", "c", "3"]);
        let keyspace = info(client, "keyspace");
        keyspace
            .lines()
            .filter(|l| l.starts_with("db"))
            .map(|l| {
                // avg_ttl is an estimate the expiry cycle refines over time, so only its
                // presence and form are compared.
                let (head, ttl) = l.rsplit_once(",avg_ttl=").expect("avg_ttl field");
                assert!(ttl.trim_end().parse::<u64>().is_ok(), "{l}");
                head.to_string()
            })
            .collect::<Vec<_>>()
    });
    assert_eq!(got, want, "keyspace lines (left: candidate)");
    assert_eq!(got, ["db0:keys=2,expires=1", "db5:keys=1,expires=0"]);
}

#[test]
fn info_keyspace_hits_and_misses_are_exact() {
    let (got, want) = on_both(&[], |client| {
        cmd(client, &["SET", "a", "1"]);
        cmd(client, &["SET", "b", "2"]);
        cmd(client, &["GET", "a"]);
        cmd(client, &["GET", "b"]);
        cmd(client, &["GET", "missing"]);
        cmd(client, &["MGET", "a", "missing", "b", "other"]);
        cmd(client, &["STRLEN", "a"]);
        let stats = info(client, "stats");
        (
            info_field(&stats, "keyspace_hits").unwrap(),
            info_field(&stats, "keyspace_misses").unwrap(),
        )
    });
    assert_eq!(got, want, "(hits, misses) (left: candidate)");
    assert_eq!(got, ("5".to_string(), "3".to_string()));
}

// ---------------------------------------------------------------------------------------------
// 6. MEMORY, DEBUG SLEEP, TIME
// ---------------------------------------------------------------------------------------------

#[test]
fn memory_usage_and_stats() {
    let server = start(&[]);
    let redis = start_redis(&[]);
    let mut client = connect(server.addr());
    cmd(&mut client, &["SET", "k", "hello"]);
    cmd(&mut client, &["SET", "n", "12345"]);
    let usage = integer(&cmd(&mut client, &["MEMORY", "USAGE", "k"]));
    assert!(usage > 0, "MEMORY USAGE k = {usage}");
    // A bigger value takes more memory.
    cmd(&mut client, &["SET", "big", &"x".repeat(10_000)]);
    assert!(integer(&cmd(&mut client, &["MEMORY", "USAGE", "big"])) > usage + 9_000);
    assert_same_replies(
        server.addr(),
        redis.addr(),
        &[
            &["MEMORY", "USAGE", "missing"],
            &["MEMORY", "USAGE", "missing", "SAMPLES", "5"],
            &["MEMORY", "USAGE", "k", "SAMPLES"],
            &["MEMORY", "USAGE"],
            &["MEMORY", "NOSUCH"],
        ],
    );
    // MEMORY STATS is a map in RESP3 (a flat array in RESP2) whose keys.count is the number
    // of keys.
    let keys = integer(&cmd(&mut client, &["DBSIZE"]));
    let flat = cmd(&mut client, &["MEMORY", "STATS"]);
    assert!(matches!(flat, Frame::Array(_)), "{flat:?}");
    cmd(&mut client, &["HELLO", "3"]);
    let stats = cmd(&mut client, &["MEMORY", "STATS"]);
    assert!(matches!(stats, Frame::Map(_)), "{stats:?}");
    let count = pairs(&stats)
        .into_iter()
        .find(|(k, _)| k == "keys.count")
        .map(|(_, v)| v);
    assert_eq!(count, Some(Frame::Integer(keys)));
}

#[test]
fn debug_sleep_delays_only_its_own_reply() {
    let kind = candidate();
    let server = start(debug_args(&kind));
    let mut sleeper = connect(server.addr());
    let mut other = connect(server.addr());
    // The reply can never come before the sleep is over: a lower bound, safe on any machine.
    let sent = Instant::now();
    assert_eq!(cmd(&mut sleeper, &["DEBUG", "SLEEP", "0.2"]), ok());
    assert!(sent.elapsed() >= Duration::from_millis(200));
    assert_eq!(cmd(&mut sleeper, &["DEBUG", "SLEEP", "0"]), ok());
    if is_redis(&kind) {
        // Redis sleeps in its only thread, so other clients wait too; Shoal sleeps in the
        // connection alone.
        println!("skipped the concurrent PING check: redis-server blocks every client");
        return;
    }
    // A PING on another connection during the sleep is answered first. The check only counts
    // when that PING came back before the sleep could have ended; on a machine so loaded that
    // a round trip takes longer, the attempt is repeated rather than failed.
    for _ in 0..5 {
        let start = Instant::now();
        sleeper.send_command(&[b"DEBUG", b"SLEEP", b"0.2"]).unwrap();
        assert_eq!(cmd(&mut other, &["PING"]), Frame::Simple("PONG".into()));
        let in_time = start.elapsed() < Duration::from_millis(200);
        let answered = has_pending_data(sleeper.stream());
        assert_eq!(sleeper.read_frame().unwrap(), ok());
        if in_time {
            assert!(
                !answered,
                "DEBUG SLEEP 0.2 answered before a PING sent after it"
            );
            return;
        }
    }
    println!("inconclusive: no PING round trip finished within the 0.2 s sleep");
}

#[test]
fn time_returns_seconds_and_microseconds() {
    let server = start(&[]);
    let mut client = connect(server.addr());
    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let reply = cmd(&mut client, &["TIME"]);
    let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let parts = elements(&reply);
    assert_eq!(parts.len(), 2, "{reply:?}");
    assert!(matches!(parts[0], Frame::Bulk(_)) && matches!(parts[1], Frame::Bulk(_)));
    let secs: u64 = text(&parts[0]).parse().expect("seconds");
    let micros: u64 = text(&parts[1]).parse().expect("microseconds");
    assert!(micros < 1_000_000, "{micros}");
    // The server reads the same clock as the test; a second of slack covers rounding and a
    // clock the server caches between ticks.
    assert!(
        secs + 1 >= before.as_secs() && secs <= after.as_secs() + 1,
        "TIME {secs} outside [{}, {}]",
        before.as_secs(),
        after.as_secs()
    );
}

// ---------------------------------------------------------------------------------------------
// 7. SHUTDOWN and signals
// ---------------------------------------------------------------------------------------------

#[test]
fn shutdown_nosave_closes_and_exits_zero() {
    let mut server = Launched::new(candidate());
    let dir = server.dir_arg();
    server.spawn(Ready::Tcp, |port| {
        argv(&["--port", &port.to_string(), "--save", "", "--dir", &dir])
    });
    let mut bystander = connect(server.addr());
    let mut client = connect(server.addr());
    client.send_command(&[b"SHUTDOWN", b"NOSAVE"]).unwrap();
    // SHUTDOWN sends no reply on success: the connection just closes.
    assert_eq!(read_until_closed(&mut client), b"");
    assert_eq!(read_until_closed(&mut bystander), b"");
    let status = server.wait_exit();
    assert!(status.success(), "exit status {status}");
}

#[test]
fn shutdown_errors_match_redis() {
    let mut server = start(&[]);
    let redis = start_redis(&[]);
    assert_same_replies(
        server.addr(),
        redis.addr(),
        &[
            &["SHUTDOWN", "ABORT"],
            &["SHUTDOWN", "SAVE", "NOSAVE"],
            &["SHUTDOWN", "NOSUCH"],
            &["SHUTDOWN", "NOW", "ABORT"],
            &["PING"],
        ],
    );
    let mut client = connect(server.addr());
    assert_eq!(
        cmd(&mut client, &["SHUTDOWN", "ABORT"]),
        Frame::Error("ERR No shutdown in progress.".into())
    );
    assert_eq!(
        cmd(&mut client, &["SHUTDOWN", "SAVE", "NOSAVE"]),
        Frame::Error("ERR syntax error".into())
    );
    assert!(server.is_running(), "a refused SHUTDOWN stopped the server");
}

fn signal_exits_cleanly(signal: libc::c_int) {
    let mut server = Launched::new(candidate());
    let pidfile = server.path("x.pid");
    let socket = server.path("s.sock");
    let dir = server.dir_arg();
    let (pid_arg, sock_arg) = (
        pidfile.to_string_lossy().into_owned(),
        socket.to_string_lossy().into_owned(),
    );
    server.spawn(Ready::Tcp, |port| {
        argv(&[
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--dir",
            &dir,
            "--pidfile",
            &pid_arg,
            "--unixsocket",
            &sock_arg,
        ])
    });
    // The pid file may be written just after the listeners open, so it is polled for.
    let written = wait_for("the pid file", || {
        fs::read_to_string(&pidfile)
            .ok()
            .filter(|s| s.ends_with('\n'))
    });
    assert_eq!(written.trim(), server.pid().to_string());
    assert!(socket.exists());
    let mut client = connect(server.addr());
    assert_eq!(cmd(&mut client, &["PING"]), Frame::Simple("PONG".into()));
    // The server is ready (it logged so and answered PING), which is when a process manager
    // may stop it; `sigterm_right_after_startup_exits_cleanly` covers an earlier signal.
    server.signal(signal);
    assert_eq!(read_until_closed(&mut client), b"");
    let status = server.wait_exit();
    assert!(
        status.success(),
        "exit status {status} after signal {signal}"
    );
    assert!(!pidfile.exists(), "the pid file was left behind");
    assert!(!socket.exists(), "the Unix socket file was left behind");
}

#[test]
fn sigterm_exits_zero_and_cleans_up() {
    signal_exits_cleanly(libc::SIGTERM);
}

#[test]
fn sigint_exits_zero_and_cleans_up() {
    signal_exits_cleanly(libc::SIGINT);
}

#[test]
fn sigterm_right_after_startup_exits_cleanly() {
    'attempts: for attempt in 0..20 {
        let mut server = Launched::new(candidate());
        let pidfile = server.path("x.pid");
        let socket = server.path("s.sock");
        let port = free_port().expect("free port").to_string();
        let dir = server.dir_arg();
        server.spawn_detached(&argv(&[
            "--port",
            &port,
            "--save",
            "",
            "--dir",
            &dir,
            "--pidfile",
            pidfile.to_str().unwrap(),
            "--unixsocket",
            socket.to_str().unwrap(),
        ]));
        // The pid file is polled without sleeping so that the signal lands as early as a
        // process manager reading the pid file could send it.
        let end = Instant::now() + EVENT_DEADLINE;
        while !pidfile.exists() {
            if !server.is_running() {
                // Another process took the port; this attempt proves nothing either way.
                continue 'attempts;
            }
            assert!(Instant::now() < end, "no pid file:\n{}", server.log());
            std::thread::yield_now();
        }
        server.signal(libc::SIGTERM);
        let status = server.wait_exit();
        assert!(status.success(), "attempt {attempt}: exit status {status}");
        assert!(
            !pidfile.exists(),
            "attempt {attempt}: the pid file was left behind"
        );
        assert!(
            !socket.exists(),
            "attempt {attempt}: the socket file was left behind"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 8. Unix socket
// ---------------------------------------------------------------------------------------------

/// Starts the server under test listening on a Unix socket only (`--port 0`), with `extra`
/// directives, and returns it with the socket's path.
fn launch_unix(extra: &[&str]) -> (Launched, PathBuf) {
    let mut server = Launched::new(candidate());
    let socket = server.path("s.sock");
    let sock_arg = socket.to_string_lossy().into_owned();
    let dir = server.dir_arg();
    // TCP is disabled, so the socket is the only way in and the port plays no part.
    server.spawn(Ready::Unix(socket.clone()), |_| {
        let mut args = argv(&[
            "--port",
            "0",
            "--unixsocket",
            &sock_arg,
            "--save",
            "",
            "--dir",
            &dir,
        ]);
        args.extend(argv(extra));
        args
    });
    (server, socket)
}

/// A connected Unix-socket client with its read buffer.
struct UnixClient {
    stream: UnixStream,
    buf: BytesMut,
}

impl UnixClient {
    fn connect(path: &Path) -> UnixClient {
        let stream = UnixStream::connect(path).expect("connect to the Unix socket");
        stream.set_read_timeout(Some(EVENT_DEADLINE)).unwrap();
        UnixClient {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// Sends one command and decodes one reply.
    fn command(&mut self, args: &[&[u8]]) -> Frame {
        self.stream
            .write_all(&shoal_testkit::encode_command(args))
            .expect("write");
        loop {
            let decoded = decode_frame(&mut self.buf, &Limits::default()).expect("a valid reply");
            if let Some(frame) = decoded {
                return frame;
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.stream.read(&mut chunk).expect("read");
            assert!(n > 0, "the server closed the Unix connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[test]
fn unix_socket_serves_clients() {
    let (_server, socket) = launch_unix(&[]);
    let mut client = UnixClient::connect(&socket);
    assert_eq!(client.command(&[b"PING"]), Frame::Simple("PONG".into()));
    assert_eq!(client.command(&[b"SET", b"k", b"v"]), ok());
    assert_eq!(client.command(&[b"GET", b"k"]), Frame::Bulk("v".into()));
    // Redis names a Unix-socket client by the socket's path with port 0.
    let expected = format!("{}:0", socket.display());
    let own = text(&client.command(&[b"CLIENT", b"INFO"]));
    let fields = client_fields(&own);
    assert_eq!(field(&fields, "addr"), Some(expected.as_str()), "{own}");
    assert_eq!(field(&fields, "laddr"), Some(expected.as_str()), "{own}");
    let list = text(&client.command(&[b"CLIENT", b"LIST"]));
    assert!(list.contains(&format!(" addr={expected} ")), "{list}");
}

#[test]
fn unix_socket_clients_have_the_u_flag() {
    let (_server, socket) = launch_unix(&[]);
    let mut client = UnixClient::connect(&socket);
    let own = text(&client.command(&[b"CLIENT", b"INFO"]));
    assert_eq!(field(&client_fields(&own), "flags"), Some("U"), "{own}");
}

#[test]
fn unixsocketperm_is_octal() {
    let (_server, socket) = launch_unix(&["--unixsocketperm", "700"]);
    let mode = fs::metadata(&socket)
        .expect("socket file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}

// ---------------------------------------------------------------------------------------------
// 9. Protected mode
// ---------------------------------------------------------------------------------------------

/// A local IPv4 address that is not loopback, from the kernel's routing table (the
/// `/32 host LOCAL` entries of /proc/net/fib_trie), or `None` on a machine without one.
fn non_loopback_ipv4() -> Option<Ipv4Addr> {
    let trie = fs::read_to_string("/proc/net/fib_trie").ok()?;
    let lines: Vec<&str> = trie.lines().collect();
    lines.windows(2).find_map(|pair| {
        let addr: Ipv4Addr = pair[0].trim().strip_prefix("|-- ")?.parse().ok()?;
        let local = pair[1].trim() == "/32 host LOCAL";
        (local && !addr.is_loopback() && !addr.is_unspecified()).then_some(addr)
    })
}

/// The address to reach the machine from a non-loopback source, or `None` (after saying why)
/// when the machine has none.
fn external_ip() -> Option<IpAddr> {
    let ip = non_loopback_ipv4();
    if ip.is_none() {
        println!("skipped: this machine has no non-loopback IPv4 address");
    }
    ip.map(IpAddr::V4)
}

/// Starts a server of `kind` bound as `extra` says (no `--bind` at all when `extra` has none).
fn launch_with(kind: ServerKind, extra: &[&str]) -> Launched {
    let mut server = Launched::new(kind);
    let dir = server.dir_arg();
    server.spawn(Ready::Tcp, |port| {
        let mut args = argv(&["--port", &port.to_string(), "--save", "", "--dir", &dir]);
        args.extend(argv(extra));
        args
    });
    server
}

/// Connects from the external address (so the server sees a non-loopback peer), sends PING,
/// and returns everything received until the server closes the connection or answers.
fn ping_from(ip: IpAddr, port: u16) -> String {
    let mut client = connect(SocketAddr::new(ip, port));
    let peer_ip = client.stream().local_addr().unwrap().ip();
    assert!(!peer_ip.is_loopback(), "the client side is {peer_ip}");
    client.send_command(&[b"PING"]).unwrap();
    match client.read_reply() {
        Ok(reply) => escape(&reply.raw),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => String::new(),
        Err(e) => panic!("PING from {ip}: {e}"),
    }
}

#[test]
fn default_bind_is_loopback_only() {
    let Some(ip) = external_ip() else {
        return;
    };
    let kind = candidate();
    if is_redis(&kind) {
        // redis-server without a config file binds every interface ("* -::*"); loopback-only
        // by default is Shoal's choice (redis.conf's shipped default).
        println!("skipped: redis-server's built-in default bind is every interface");
        return;
    }
    let server = launch_with(kind, &[]);
    let mut local = connect(server.addr());
    assert_eq!(cmd(&mut local, &["PING"]), Frame::Simple("PONG".into()));
    match TcpStream::connect_timeout(&SocketAddr::new(ip, server.port), EVENT_DEADLINE) {
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}"),
        Ok(_) => panic!("the default bind accepted a connection on {ip}"),
    }
}

#[test]
fn protected_mode_denies_external_clients_like_redis() {
    let Some(ip) = external_ip() else {
        return;
    };
    let open = ["--bind", "0.0.0.0"];
    let server = launch_with(candidate(), &open);
    let redis = launch_with(ServerKind::Redis, &open);
    let got = ping_from(ip, server.port);
    let want = ping_from(ip, redis.port);
    assert!(
        got.starts_with("-DENIED Redis is running in protected mode"),
        "{got}"
    );
    // Up to its fourth remedy the line is Redis 7.0's word for word; the whole line is compared
    // by `protected_mode_denied_line_matches_redis`.
    let head = |s: &str| s.split(" 4) ").next().unwrap_or_default().to_string();
    assert_eq!(head(&got), head(&want), "the DENIED line (left: candidate)");
    assert!(
        got.ends_with("\\r\\n") && got.matches("\\r\\n").count() == 1,
        "{got}"
    );
    // The loopback interface is still let in.
    assert_eq!(
        cmd(&mut connect(server.addr()), &["PING"]),
        Frame::Simple("PONG".into())
    );
    // With protected mode off, or with a password set, external clients are served.
    let unprotected = launch_with(
        candidate(),
        &["--bind", "0.0.0.0", "--protected-mode", "no"],
    );
    assert_eq!(ping_from(ip, unprotected.port), "+PONG\\r\\n");
    let with_password = launch_with(candidate(), &["--bind", "0.0.0.0", "--requirepass", "pw"]);
    assert_eq!(ping_from(ip, with_password.port), NOAUTH);
}

#[test]
fn protected_mode_denied_line_matches_redis() {
    let Some(ip) = external_ip() else {
        return;
    };
    let open = ["--bind", "0.0.0.0"];
    let server = launch_with(candidate(), &open);
    let redis = launch_with(ServerKind::Redis, &open);
    assert_eq!(ping_from(ip, server.port), ping_from(ip, redis.port));
}

// ---------------------------------------------------------------------------------------------
// 10. COMMAND
// ---------------------------------------------------------------------------------------------

fn texts(frame: &Frame) -> Vec<String> {
    elements(frame).iter().map(text).collect()
}

#[test]
fn command_info_get_shape() {
    let server = start(&[]);
    let mut client = connect(server.addr());
    let reply = cmd(&mut client, &["COMMAND", "INFO", "get"]);
    let infos = elements(&reply);
    assert_eq!(infos.len(), 1, "{reply:?}");
    let get = elements(&infos[0]);
    // [name, arity, flags, first key, last key, step, ACL categories, tips, key specs,
    // subcommands], as in Redis 7.
    assert_eq!(get.len(), 10, "{get:?}");
    assert_eq!(text(&get[0]), "get");
    assert_eq!(get[1], Frame::Integer(2));
    let flags = texts(&get[2]);
    assert!(
        flags.contains(&"readonly".to_string()) && flags.contains(&"fast".to_string()),
        "{flags:?}"
    );
    assert_eq!(
        &get[3..6],
        &[Frame::Integer(1), Frame::Integer(1), Frame::Integer(1)]
    );
    let categories = texts(&get[6]);
    for category in ["@read", "@string", "@fast"] {
        assert!(categories.iter().any(|c| c == category), "{categories:?}");
    }
    assert!(elements(&get[7]).is_empty(), "tips {:?}", get[7]);
    assert_eq!(elements(&get[8]).len(), 1, "key specs {:?}", get[8]);
    assert!(elements(&get[9]).is_empty(), "subcommands {:?}", get[9]);
}

#[test]
fn command_info_get_matches_redis() {
    let server = start(&[]);
    let redis = start_redis(&[]);
    assert_same_replies(
        server.addr(),
        redis.addr(),
        &[
            &["COMMAND", "INFO", "get"],
            &["COMMAND", "INFO", "set"],
            &["COMMAND", "GETKEYSANDFLAGS", "SET", "k", "v"],
        ],
    );
}

#[test]
fn command_info_unknown_matches_redis() {
    let server = start(&[]);
    let redis = start_redis(&[]);
    assert_same_replies(
        server.addr(),
        redis.addr(),
        &[&["COMMAND", "INFO", "nosuchcommand"]],
    );
}

#[test]
fn command_getkeys_keyless_command_matches_redis() {
    let server = start(&[]);
    let redis = start_redis(&[]);
    assert_same_replies(
        server.addr(),
        redis.addr(),
        &[&["COMMAND", "GETKEYS", "PING"]],
    );
}

#[test]
fn command_count_getkeys_list_docs() {
    let server = start(&[]);
    let redis = start_redis(&[]);
    let mut client = connect(server.addr());
    let count = integer(&cmd(&mut client, &["COMMAND", "COUNT"]));
    assert!(count > 60, "COMMAND COUNT = {count}");
    // COMMAND (all) lists exactly COMMAND COUNT entries.
    assert_eq!(
        elements(&cmd(&mut client, &["COMMAND"])).len() as i64,
        count
    );
    assert_same_replies(
        server.addr(),
        redis.addr(),
        &[
            &["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"],
            &["COMMAND", "GETKEYS", "GET", "k"],
            &["COMMAND", "GETKEYS", "NOSUCHCOMMAND", "x"],
            &["COMMAND", "GETKEYS", "MSET", "a"],
            &["COMMAND", "GETKEYS"],
            &["COMMAND", "DOCS", "nosuchcommand"],
        ],
    );
    assert_eq!(
        texts(&cmd(
            &mut client,
            &["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"]
        )),
        ["a", "b"]
    );
    // The pattern filter; Redis's list also has getbit, which needs a type Shoal lacks.
    let mut listed = texts(&cmd(
        &mut client,
        &["COMMAND", "LIST", "FILTERBY", "PATTERN", "get*"],
    ));
    listed.sort();
    for name in ["get", "getdel", "getex", "getrange", "getset"] {
        assert!(listed.iter().any(|n| n == name), "{listed:?}");
    }
    assert!(listed.iter().all(|n| n.starts_with("get")), "{listed:?}");
    // COMMAND DOCS: a map from command name to its documentation map.
    cmd(&mut client, &["HELLO", "3"]);
    let docs = pairs(&cmd(&mut client, &["COMMAND", "DOCS", "get"]));
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].0, "get");
    let doc = pairs(&docs[0].1);
    let value = |name: &str| {
        doc.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| text(v))
            .unwrap_or_else(|| panic!("no {name} in {doc:?}"))
    };
    assert!(!value("summary").is_empty());
    assert_eq!(value("since"), "1.0.0");
    assert_eq!(value("group"), "string");
}

#[test]
#[ignore = "bug: COMMAND DOCS get has Redis 7.2's summary (`Returns the string value of a key.`) and no `arguments`; Redis 7.0 says `Get the value of a key` and lists the key argument"]
fn command_docs_get_matches_redis() {
    let server = start(&[]);
    let redis = start_redis(&[]);
    assert_same_replies(server.addr(), redis.addr(), &[&["COMMAND", "DOCS", "get"]]);
}
