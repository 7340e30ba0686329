//! The metrics port: `/metrics` (Prometheus), `/` (the status page), `/healthz` and `/readyz`,
//! served by axum on a single-threaded runtime of its own, so a scrape never takes a worker from
//! the clients and a stuck scraper cannot slow a command.
//!
//! Connections are capped and must send their request headers in time: the port may be opened to
//! a remote Prometheus (`metrics-bind`), and idle peers must not use up the file descriptors the
//! data port needs.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;

use crate::shared::Shared;
use crate::{metrics, status};

/// Connections served at once; further ones wait in the listen backlog until one closes.
const MAX_CONNECTIONS: usize = 32;

/// Time a client has to send a request's headers before its connection is closed.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Binds the metrics port if `metrics-port` is set. Binding happens before the server reports
/// ready, so a port in use stops start-up with a clear message, like the data port.
pub fn bind(shared: &Shared) -> Result<Option<TcpListener>, String> {
    let (port, bind) = {
        let cfg = shared.config.read();
        (cfg.int("metrics-port"), cfg.get("metrics-bind").to_string())
    };
    if port == 0 {
        return Ok(None);
    }
    let addr = format!("{bind}:{port}");
    let parsed: SocketAddr = match addr.parse() {
        Ok(a) => a,
        // An IPv6 literal needs brackets in a socket address.
        Err(_) => format!("[{bind}]:{port}")
            .parse()
            .map_err(|_| format!("Invalid metrics-bind address '{bind}'"))?,
    };
    let listener = TcpListener::bind(parsed)
        .map_err(|e| format!("Could not bind the metrics port {parsed}: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("Could not configure the metrics port {parsed}: {e}"))?;
    Ok(Some(listener))
}

/// Serves the metrics port on a thread of its own until shutdown.
pub fn spawn(
    shared: Arc<Shared>,
    listener: TcpListener,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("shoal-metrics".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "failed to start the metrics runtime");
                    return;
                }
            };
            runtime.block_on(serve(shared, listener));
        })
}

async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "failed to serve the metrics port");
            return;
        }
    };
    let mut shutdown = shared.shutdown.subscribe();
    let app = Router::new()
        .route("/metrics", get(metrics_page))
        .route("/", get(status_page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(shared);
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // Connection tasks end with this runtime when the loop returns at shutdown.
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = shutdown.wait_for(|v| *v) => return,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, for example: wait instead of spinning.
                    tracing::warn!(error = %e, "metrics port accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.wait_for(|v| *v) => return,
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "metrics connection ended with an error");
            }
        });
    }
}

async fn metrics_page(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(header::CONTENT_TYPE, shoal_observe::expose::CONTENT_TYPE)],
        metrics::render(&shared),
    )
        .into_response()
}

async fn status_page(State(shared): State<Arc<Shared>>) -> Html<String> {
    Html(status::render(&metrics::summary(&shared)))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(shared): State<Arc<Shared>>) -> (StatusCode, &'static str) {
    if shared.loading.load(Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "loading\n")
    } else {
        (StatusCode::OK, "ready\n")
    }
}
