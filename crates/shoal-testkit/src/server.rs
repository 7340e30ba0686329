//! Owns the life cycle of server processes under test: Shoal or a real redis-server on an
//! ephemeral 127.0.0.1 port, in its own temporary directory, stopped when dropped.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a server may take from spawn to answering PING. Debug builds on a loaded 2-core
/// machine can be slow to start, so this is generous; a healthy start takes milliseconds.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// How long a server gets to exit after SIGTERM before it is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// How often start-up and shutdown are polled while waiting.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Start attempts when the chosen port was taken between probing and binding.
const START_ATTEMPTS: usize = 5;

/// Which server binary to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerKind {
    /// The Shoal server binary at this path.
    Shoal(PathBuf),
    /// Debian's redis-server, from `REDIS_SERVER_BIN` or `PATH`.
    Redis,
}

impl ServerKind {
    /// A short name for messages: `shoal` or `redis`.
    pub fn name(&self) -> &'static str {
        match self {
            ServerKind::Shoal(_) => "shoal",
            ServerKind::Redis => "redis",
        }
    }

    /// The executable to spawn.
    pub fn program(&self) -> PathBuf {
        match self {
            ServerKind::Shoal(path) => path.clone(),
            ServerKind::Redis => std::env::var_os("REDIS_SERVER_BIN")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("redis-server")),
        }
    }
}

/// Chooses the server a Shoal test talks to.
///
/// `SHOAL_TEST_AGAINST=redis` makes every Shoal test run against redis-server instead, which is
/// how the tests themselves are validated before (or independently of) Shoal. Otherwise the
/// binary is `shoal_bin` (pass `option_env!("CARGO_BIN_EXE_shoal-server")`), then the
/// `SHOAL_SERVER_BIN` environment variable; with neither, the test runs against redis-server so
/// that the test code can be exercised from crates that do not build the Shoal binary.
pub fn target_kind(shoal_bin: Option<&str>) -> ServerKind {
    if against_redis() {
        return ServerKind::Redis;
    }
    if let Some(path) = shoal_bin {
        return ServerKind::Shoal(PathBuf::from(path));
    }
    match std::env::var_os("SHOAL_SERVER_BIN") {
        Some(path) => ServerKind::Shoal(PathBuf::from(path)),
        None => ServerKind::Redis,
    }
}

/// True when `SHOAL_TEST_AGAINST=redis` asks for Redis in place of Shoal.
pub fn against_redis() -> bool {
    std::env::var("SHOAL_TEST_AGAINST")
        .map(|v| v.eq_ignore_ascii_case("redis"))
        .unwrap_or(false)
}

/// A running server process that is stopped (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    kind: ServerKind,
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    log_path: PathBuf,
}

impl ServerProcess {
    /// Starts a server on a free 127.0.0.1 port with its own temporary directory, and waits
    /// until it answers PING. `extra_args` are appended to the command line in
    /// `--directive value` form, so they override the defaults chosen here.
    pub fn start(kind: ServerKind, extra_args: &[&str]) -> io::Result<ServerProcess> {
        let mut last_err = None;
        // The port is found by binding port 0 and releasing it, so another process can grab it
        // before the server binds; a start that fails that way is retried on a new port.
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let dir = make_temp_dir(kind.name())?;
            match Self::start_on(kind.clone(), port, dir.clone(), extra_args) {
                Ok(server) => return Ok(server),
                Err(err) => {
                    let retry = err.kind() == io::ErrorKind::AddrInUse;
                    last_err = Some(err);
                    if !retry {
                        break;
                    }
                    let _ = fs::remove_dir_all(&dir);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("server did not start")))
    }

    fn start_on(
        kind: ServerKind,
        port: u16,
        dir: PathBuf,
        extra_args: &[&str],
    ) -> io::Result<ServerProcess> {
        let log_path = dir.join("server.log");
        let log = File::create(&log_path)?;
        let log_err = log.try_clone()?;
        let port_arg = port.to_string();
        let dir_arg = dir.to_string_lossy().into_owned();
        let mut args: Vec<&str> = vec![
            "--port",
            &port_arg,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir_arg,
        ];
        args.extend_from_slice(extra_args);
        let program = kind.program();
        let child = Command::new(&program)
            .args(&args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .map_err(|e| {
                io::Error::new(e.kind(), format!("cannot spawn {}: {e}", program.display()))
            })?;
        let mut server = ServerProcess {
            kind,
            child: Some(child),
            port,
            dir,
            log_path,
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// Polls PING until the server answers, it exits, or the deadline passes.
    fn wait_ready(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    let log = self.log();
                    let kind = if log.contains("Address already in use") {
                        io::ErrorKind::AddrInUse
                    } else {
                        io::ErrorKind::Other
                    };
                    return Err(io::Error::new(
                        kind,
                        format!(
                            "{} exited during start-up ({status}); log:\n{log}",
                            self.kind.name()
                        ),
                    ));
                }
            }
            // A PING answer alone is not proof: when two tests draw the same free port, the
            // loser's PING reaches the winner's server. The server must also be ours: its log
            // says it is ready, or its INFO names our child's pid.
            if ping(self.addr()).is_ok() && self.answering_is_ours() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{} did not answer PING within {:?}; log:\n{}",
                        self.kind.name(),
                        START_DEADLINE,
                        self.log()
                    ),
                ));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// True when the server answering on our port is the process we started.
    fn answering_is_ours(&self) -> bool {
        if self
            .log()
            .to_ascii_lowercase()
            .contains("ready to accept connections")
        {
            return true;
        }
        let Some(pid) = self.child.as_ref().map(|c| c.id()) else {
            return false;
        };
        info_pid(self.addr()).is_some_and(|p| p == pid)
    }

    /// Which server this is.
    pub fn kind(&self) -> &ServerKind {
        &self.kind
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address to connect to.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The process id, or 0 once the process has been stopped.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// The temporary directory the server runs in (its `dir`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Everything the server has written to stdout and stderr so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = File::open(&self.log_path) {
            let mut bytes = Vec::new();
            if file.read_to_end(&mut bytes).is_ok() {
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
        }
        text
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stops the server: SIGTERM, a bounded wait, then SIGKILL. Safe to call twice.
    pub fn stop(&mut self) -> io::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        let pid = child.id() as libc::pid_t;
        // SAFETY: kill(2) with a pid we spawned and have not reaped yet, so it cannot name
        // another process.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + STOP_DEADLINE;
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        child.kill()?;
        child.wait()?;
        Ok(())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.stop();
        // A failing test keeps the directory (and the server log in it) for a post-mortem.
        if std::thread::panicking() {
            eprintln!(
                "{} on port {} kept its directory {} (log: {})",
                self.kind.name(),
                self.port,
                self.dir.display(),
                self.log_path.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Finds a port that is free right now by binding port 0 on 127.0.0.1.
pub fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// Creates a fresh, unique directory under the system temporary directory.
pub fn make_temp_dir(prefix: &str) -> io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "shoal-test-{prefix}-{}-{n}-{nanos}",
        std::process::id()
    ));
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The `process_id` the server at `addr` reports in `INFO server`, if it answers.
fn info_pid(addr: SocketAddr) -> Option<u32> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    stream.write_all(b"INFO server\r\n").ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("process_id:") || !got.ends_with(b"\r\n") {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 || got.len() > 1 << 16 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    let line = text.lines().find(|l| l.starts_with("process_id:"))?;
    line["process_id:".len()..].trim().parse().ok()
}

/// Sends one inline PING and checks for `+PONG`; used only to detect readiness, so it does not
/// need the RESP codec.
fn ping(addr: SocketAddr) -> io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
    stream.set_read_timeout(Some(Duration::from_millis(500)))?;
    stream.write_all(b"PING\r\n")?;
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while !got.ends_with(b"\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    // A server with requirepass answers -NOAUTH, which still proves it is serving.
    if got.starts_with(b"+PONG") || got.starts_with(b"-NOAUTH") {
        Ok(())
    } else {
        // A server that is still loading answers -LOADING; treat that as not ready yet.
        Err(io::Error::other(format!(
            "unexpected PING reply {:?}",
            String::from_utf8_lossy(&got)
        )))
    }
}
