//! The metrics port: `/metrics` (Prometheus), `/` (the status page), `/healthz` and `/readyz`,
//! served by axum on a single-threaded runtime of its own, so a scrape never takes a worker from
//! the clients and a stuck scraper cannot slow a command.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::shared::Shared;
use crate::{metrics, status};

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
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|v| *v).await;
        })
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "metrics port stopped");
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
