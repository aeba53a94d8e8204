//! The operator's HTTP listener (`--http ADDR`): `/metrics` for Prometheus, `/healthz` for
//! liveness, `/readyz` for readiness, the HTTP gateway's `/v1/` routes ([`crate::gateway`]), and
//! the console at `/` with its `/v1/status` (`console`). With `gateway` and `console`, the only
//! modules that name axum.
//!
//! It reads whichever host is serving through [`Serving`], which `wasmrpc serve` updates as it
//! starts, reloads on SIGHUP and stops, so probes see the process's state rather than one
//! host's: not ready while waiting for the broker at boot or while draining at exit.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::host::Host;
use crate::locks::lock;
use crate::metrics::{CONTENT_TYPE, Metrics, Snapshot};

/// What the process is doing, as probes see it.
#[derive(Debug, Default)]
pub struct Serving {
    phase: Mutex<Phase>,
}

#[derive(Debug, Clone, Default)]
enum Phase {
    #[default]
    Starting,
    /// Not serving yet, and why (waiting for the broker).
    Waiting(String),
    Serving(Host),
    Stopping,
}

impl Serving {
    /// Not serving yet: `why` is what `/readyz` says.
    pub fn waiting(&self, why: impl Into<String>) {
        *lock(&self.phase) = Phase::Waiting(why.into());
    }

    /// `host` serves from now on (it replaces the one before, on SIGHUP).
    pub fn serve(&self, host: Host) {
        *lock(&self.phase) = Phase::Serving(host);
    }

    /// The process is draining and about to exit.
    pub fn stopping(&self) {
        *lock(&self.phase) = Phase::Stopping;
    }

    /// The host serving now, if any.
    #[must_use]
    pub fn host(&self) -> Option<Host> {
        match &*lock(&self.phase) {
            Phase::Serving(host) => Some(host.clone()),
            _ => None,
        }
    }

    /// Why the process is not ready (nothing when it is).
    #[must_use]
    pub fn not_ready_reasons(&self) -> Vec<String> {
        let phase = lock(&self.phase).clone();
        match phase {
            Phase::Starting => vec!["starting".to_owned()],
            Phase::Waiting(why) => vec![why],
            Phase::Serving(host) => host.status().not_ready_reasons(),
            Phase::Stopping => vec!["stopping".to_owned()],
        }
    }
}

/// Why the listener could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for HTTP on {addr}: {source}")]
pub struct HttpError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// What the socket said.
    pub source: std::io::Error,
}

#[derive(Clone)]
struct AppState {
    serving: Arc<Serving>,
    metrics: Arc<Metrics>,
}

/// A running HTTP listener.
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl HttpServer {
    /// Binds `addr` and serves the probes and metrics until [`HttpServer::stop`].
    pub async fn start(
        addr: SocketAddr,
        serving: Arc<Serving>,
        metrics: Arc<Metrics>,
    ) -> Result<HttpServer, HttpError> {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| HttpError { addr, source })?;
        let addr = listener.local_addr().map_err(|source| HttpError { addr, source })?;
        let app = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(exposition))
            .with_state(AppState { serving: serving.clone(), metrics: metrics.clone() })
            .merge(crate::gateway::router(serving.clone()))
            .merge(crate::console::router(serving, metrics));
        let stop = CancellationToken::new();
        let stopped = stop.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stopped).await {
                tracing::error!(%addr, "the HTTP listener failed: {e}");
            }
        });
        tracing::info!(%addr, "HTTP listener serving the console at /, /metrics, /healthz, /readyz and the gateway at /v1/");
        Ok(HttpServer { addr, stop, task })
    }

    /// Where it listens (the port is the system's choice when asked for port 0).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening; requests in progress finish.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: 200 when serving everything over a live broker link, 503 with the reasons.
async fn readyz(State(state): State<AppState>) -> Response {
    let reasons = state.serving.not_ready_reasons();
    if reasons.is_empty() {
        return (StatusCode::OK, "ready\n").into_response();
    }
    let mut body = String::from("not ready:\n");
    for r in reasons {
        body.push_str("- ");
        body.push_str(&r);
        body.push('\n');
    }
    (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
}

async fn exposition(State(state): State<AppState>) -> Response {
    let snapshot = match state.serving.host() {
        Some(host) => host.status().metrics_snapshot(),
        None => Snapshot::default(),
    };
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], state.metrics.render(snapshot)).into_response()
}
