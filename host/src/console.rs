//! The console (issue 21): a page at `/` of the operator's listener that shows every endpoint,
//! its live call and error counts and the reload history, and calls a method through the
//! gateway. Part of the HTTP layer, with `http` and `gateway` (axum stays in these).
//!
//! - `GET /`, `/console.js`, `/console.css`: the page, plain files compiled into the binary
//!   (`console/`), with no build step and nothing fetched from elsewhere.
//! - `GET /v1/status`: what the page polls, as JSON: the serving host's endpoints as
//!   `list_endpoints` describes them, each with its methods' call counts read from the metrics
//!   (`wasmrpc_calls_total`: the same counters, not a second count), readiness, and the reload
//!   history.
//!
//! The page posts to `/v1/call/...` and `/v1/cast/...` like any gateway client, so what it
//! shows for a result or an oslo error is what `curl` gets.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};

use crate::http::Serving;
use crate::metrics::Metrics;

const INDEX_HTML: &str = include_str!("console/index.html");
const CONSOLE_JS: &str = include_str!("console/console.js");
const CONSOLE_CSS: &str = include_str!("console/console.css");

#[derive(Clone)]
struct ConsoleState {
    serving: Arc<Serving>,
    metrics: Arc<Metrics>,
}

/// The console's routes.
pub(crate) fn router(serving: Arc<Serving>, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/", get(|| async { file("text/html; charset=utf-8", INDEX_HTML) }))
        .route("/console.js", get(|| async { file("text/javascript; charset=utf-8", CONSOLE_JS) }))
        .route("/console.css", get(|| async { file("text/css; charset=utf-8", CONSOLE_CSS) }))
        .route("/v1/status", get(status))
        .with_state(ConsoleState { serving, metrics })
}

/// A compiled-in file. `no-cache`: after an upgrade the browser asks again rather than running
/// the old script against the new status.
fn file(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body)
}

async fn status(State(state): State<ConsoleState>) -> Json<Value> {
    Json(status_of(&state.serving, &state.metrics))
}

/// The status document (see the module's doc). With no host serving yet it still answers, with
/// no endpoints and the reason it is not ready.
fn status_of(serving: &Serving, metrics: &Metrics) -> Value {
    let not_ready = serving.not_ready_reasons();
    let Some(host) = serving.host() else {
        return json!({
            "server": Value::Null,
            "version": env!("CARGO_PKG_VERSION"),
            "ready": false,
            "not_ready": not_ready,
            "endpoints": [],
            "history": [],
        });
    };
    let mut counts: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
    for c in metrics.call_counts() {
        counts.entry(c.endpoint).or_default().insert(c.method, json!({"ok": c.ok, "error": c.error}));
    }
    let endpoints: Vec<Value> = host
        .endpoint_listing()
        .into_iter()
        .map(|mut e| {
            let name = e["name"].as_str().unwrap_or_default().to_owned();
            let mine = counts.remove(&name).unwrap_or_default();
            // Every method the endpoint has now, with zeros for those not called yet (and none
            // of the methods an earlier version had).
            let calls: serde_json::Map<String, Value> = e["methods"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|m| (m.to_owned(), mine.get(m).cloned().unwrap_or_else(|| json!({"ok": 0, "error": 0}))))
                .collect();
            if let Some(fields) = e.as_object_mut() {
                fields.insert("calls".to_owned(), Value::Object(calls));
            }
            e
        })
        .collect();
    // Cannot fail (paths and times serialize as text), but a status is no reason to panic.
    let history = serde_json::to_value(host.reload_history()).unwrap_or_else(|e| {
        tracing::error!("cannot serialize the reload history: {e}");
        Value::Array(Vec::new())
    });
    json!({
        "server": host.config().server,
        "version": env!("CARGO_PKG_VERSION"),
        "ready": not_ready.is_empty(),
        "not_ready": not_ready,
        "endpoints": endpoints,
        "history": history,
    })
}
