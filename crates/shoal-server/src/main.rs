//! `shoal-server`: starts Shoal with `redis-server`'s command line,
//! `shoal-server [/path/to/shoal.conf] [--directive value ...]`.
//!
//! This crate is the only one that owns sockets, threads, timers and the process: it wires the
//! codec, the keyspace and the command families to the network and the clock.

mod blocking;
mod clients;
mod config;
mod connection;
mod cron;
mod http;
mod info;
mod metrics;
mod pubsub;
mod script_run;
mod server;
mod shared;
mod status;
mod tracking;

use std::sync::Arc;

use config::Config;
use shared::{Shared, SystemClock};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, Layer, Registry};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's start-up options (its `malloc_conf` symbol, a C string). A background thread
/// returns freed pages to the system, as Redis's `jemalloc-bg-thread yes` does, and pages stay
/// cached for one second instead of ten: collections reallocate their packs on every change,
/// like listpacks, and without this the freed buffers of a bulk load stay resident for seconds
/// (a 10M-element list showed 13 % more RSS). `MALLOC_CONF`-style tuning still works through
/// the `_RJEM_MALLOC_CONF` environment variable, which jemalloc reads after this.
#[export_name = "_rjem_malloc_conf"]
pub static MALLOC_CONF: &u8 = &b"background_thread:true,dirty_decay_ms:1000\0"[0];

fn usage() -> String {
    let mut s = String::from(
        "Usage: shoal-server [/path/to/shoal.conf] [--directive value ...]\n       shoal-server --version\n       shoal-server --help\n\nExamples:\n       shoal-server\n       shoal-server --port 7000 --save ''\n       shoal-server /etc/shoal/shoal.conf --loglevel verbose\n\nDirectives (default in brackets):\n",
    );
    for p in config::PARAMS {
        let when = if p.mutable { "runtime" } else { "start-up" };
        s.push_str(&format!(
            "  {:<28} [{}] ({when}) {}\n",
            p.name, p.default, p.doc
        ));
    }
    s
}

/// The handle that changes the log level of the running subscriber: `CONFIG SET loglevel` goes
/// through [`set_log_level`]. Global because the subscriber it controls is global too.
static LOG_LEVEL: std::sync::OnceLock<reload::Handle<LevelFilter, Registry>> =
    std::sync::OnceLock::new();

/// Maps Redis's `loglevel` names onto tracing levels. Redis's `verbose` sits between `debug` and
/// `notice`, but Shoal logs nothing at that granularity, so it shows what `notice` shows.
fn level_filter(loglevel: &str) -> LevelFilter {
    match loglevel {
        "debug" => LevelFilter::DEBUG,
        "verbose" | "notice" => LevelFilter::INFO,
        "warning" => LevelFilter::WARN,
        _ => LevelFilter::OFF,
    }
}

/// Applies a new `loglevel` to the running subscriber (no-op before logging is set up).
pub(crate) fn set_log_level(loglevel: &str) {
    if let Some(handle) = LOG_LEVEL.get() {
        if let Err(e) = handle.modify(|f| *f = level_filter(loglevel)) {
            eprintln!("Can't change the log level: {e}");
        }
    }
}

/// Installs the global subscriber: `loglevel` behind a reload handle, lines as text or JSON
/// (`log-format`), to standard output or `logfile`.
fn init_logging(cfg: &Config) -> Result<(), String> {
    let (filter, handle) = reload::Layer::new(level_filter(cfg.get("loglevel")));
    let (writer, ansi) = match cfg.get("logfile") {
        "" => (
            BoxMakeWriter::new(std::io::stdout),
            std::io::IsTerminal::is_terminal(&std::io::stdout()),
        ),
        path => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("Can't open the log file: {e}"))?;
            (BoxMakeWriter::new(std::sync::Mutex::new(file)), false)
        }
    };
    let lines = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_writer(writer);
    let lines = match cfg.get("log-format") {
        // One object per line with the event's fields at the top level next to `timestamp`,
        // `level` and `message`, the shape log shippers index without extra parsing. Shoal
        // opens no spans, so span context would only add empty keys.
        "json" => lines
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .boxed(),
        _ => lines.with_ansi(ansi).boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .try_init()
        .map_err(|e| format!("Can't set up logging: {e}"))?;
    let _ = LOG_LEVEL.set(handle);
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("-v" | "--version") => {
            println!(
                "Shoal server v={} (Redis {} compatible)",
                env!("CARGO_PKG_VERSION"),
                shoal_commands::REDIS_COMPAT_VERSION
            );
            return;
        }
        Some("-h" | "--help") => {
            print!("{}", usage());
            return;
        }
        _ => {}
    }
    let cfg = match Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = init_logging(&cfg) {
        eprintln!("{e}");
        std::process::exit(1);
    }
    let dir = cfg.get("dir").to_string();
    if let Err(e) = std::env::set_current_dir(&dir) {
        eprintln!("Can't chdir to '{dir}': {e}");
        std::process::exit(1);
    }
    let workers = match cfg.int("worker-threads") {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n as usize,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("shoal-worker")
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Can't start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(run(cfg, workers));
    // Connections still open at shutdown are dropped with the runtime.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    std::process::exit(code);
}

async fn run(cfg: Config, workers: usize) -> i32 {
    // Signal handlers go in before anything is bound or written, so a SIGTERM that arrives during
    // start-up still shuts down cleanly (pid file and socket removed) instead of killing us.
    let signals = Signals::install();
    let pidfile = cfg.get("pidfile").to_string();
    let shared = Shared::new(cfg, Box::new(SystemClock));
    let (tcp, unix) = match server::bind(&shared).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("{}", e.0);
            eprintln!("{}", e.0);
            return 1;
        }
    };
    let metrics = match http::bind(&shared) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("{e}");
            return 1;
        }
    };
    if !pidfile.is_empty() {
        if let Err(e) = std::fs::write(&pidfile, format!("{}\n", std::process::id())) {
            tracing::warn!(error = %e, path = %pidfile, "failed to write the pid file");
        }
    }
    let mut addrs = Vec::new();
    for l in tcp {
        if let Ok(a) = l.local_addr() {
            shared
                .tcp_port
                .store(a.port() as u64, std::sync::atomic::Ordering::Relaxed);
            addrs.push(a.to_string());
        }
        tokio::spawn(server::accept_tcp(shared.clone(), l));
    }
    let unix_path = unix.as_ref().map(|(_, p)| p.clone());
    if let Some((l, path)) = unix {
        addrs.push(format!("unix:{path}"));
        tokio::spawn(server::accept_unix(shared.clone(), l, path));
    }
    if let Some(l) = metrics {
        if let Ok(a) = l.local_addr() {
            addrs.push(format!("metrics=http://{a}"));
        }
        if let Err(e) = http::spawn(shared.clone(), l) {
            tracing::error!(error = %e, "failed to start the metrics thread");
            return 1;
        }
    }
    let cron = match cron::spawn(shared.clone()) {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::error!(error = %e, "failed to start the background thread");
            return 1;
        }
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        pid = std::process::id(),
        workers,
        stripes = shared.ks.stripe_count(),
        listening = %addrs.join(" "),
        "Shoal ready to accept connections"
    );
    wait_for_shutdown(&shared, signals).await;
    tracing::info!("shutting down");
    if let Some(h) = cron {
        let _ = tokio::task::spawn_blocking(move || h.join()).await;
    }
    if let Some(p) = unix_path {
        let _ = std::fs::remove_file(p);
    }
    if !pidfile.is_empty() {
        let _ = std::fs::remove_file(&pidfile);
    }
    tracing::info!("Shoal is now ready to exit, bye bye...");
    0
}

/// SIGTERM and SIGINT listeners.
struct Signals {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        Signals {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
        }
    }
}

/// Returns when SIGTERM or SIGINT arrives or `SHUTDOWN` is called, and tells every task to stop.
async fn wait_for_shutdown(shared: &Arc<Shared>, signals: Signals) {
    let mut rx = shared.shutdown.subscribe();
    match (signals.term, signals.int) {
        (Some(mut term), Some(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("received SIGTERM, scheduling shutdown"),
                _ = int.recv() => tracing::info!("received SIGINT, scheduling shutdown"),
                _ = rx.wait_for(|v| *v) => {}
            }
        }
        _ => {
            let _ = rx.wait_for(|v| *v).await;
        }
    }
    shared.request_shutdown();
}
