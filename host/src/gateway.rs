//! The HTTP gateway (issue 21): `POST /v1/call/{topic}/{method}` and
//! `POST /v1/cast/{topic}/{method}` on the operator's listener, a bridge from HTTP to any oslo
//! RPC service reachable over the serving host's transport (the host's own endpoints, or any
//! other oslo server on the same broker).
//!
//! - The body is the keyword arguments: a JSON object, or empty for none.
//! - Query parameters: `server`, `namespace`, `version`, `timeout` (seconds; default the host's
//!   `rpc_response_timeout`), `exchange`, and `fanout` (casts only).
//! - The request context: `X-Request-Id` (`request_id`), `X-Global-Request-Id`
//!   (`global_request_id`) and `X-Context` (a JSON object, for the rest).
//!
//! A call answers 200 with its JSON result, a cast 202. Failures are
//! `{"error": {"type", "module", "message", "traceback"}}` with the status of [`status_of`]:
//! 404 `NoSuchMethod`, 409 `UnsupportedVersion`, 504 `MessagingTimeout` (which is also what an
//! unknown topic ends in: nothing consumes the message, so nothing answers), 502 any other remote
//! exception (a guest's typed error, a trap), 400 a request the gateway cannot use, 413 a body
//! over the limit, 503 when no host is serving (yet) or the transport fails.
//!
//! There is no authentication: the listener is bound to loopback unless the operator says
//! otherwise (docs/operations.md, "Gateway"). axum stays in this module and `http`.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::http::Serving;
use crate::protocol::json::kind;
use crate::protocol::{Target, Version};
use crate::rpc::{Prepare, RemoteError, RpcClient, RpcError};

/// The largest request body the gateway reads (larger ones get 413).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The module named in errors the gateway raises itself (not the remote side).
const MODULE: &str = "wasmrpc.gateway";
/// oslo's module for `MessagingTimeout`.
const OSLO_EXCEPTIONS: &str = "oslo_messaging.exceptions";

/// The gateway's routes, over whichever host `serving` has.
pub(crate) fn router(serving: Arc<Serving>) -> Router {
    Router::new()
        .route("/v1/{verb}/{topic}/{method}", post(send))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(serving)
}

/// The query parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    server: Option<String>,
    namespace: Option<String>,
    version: Option<String>,
    /// Seconds.
    timeout: Option<f64>,
    fanout: Option<bool>,
    exchange: Option<String>,
}

/// A failed request, as the client sees it.
#[derive(Debug)]
struct Failure {
    status: StatusCode,
    exc_type: String,
    module: String,
    message: String,
    traceback: Vec<String>,
}

impl Failure {
    /// A failure of the gateway's own (not the remote side's).
    fn local(status: StatusCode, exc_type: &str, message: impl Into<String>) -> Failure {
        Failure {
            status,
            exc_type: exc_type.to_owned(),
            module: MODULE.to_owned(),
            message: message.into(),
            traceback: Vec::new(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Failure {
        Failure::local(StatusCode::BAD_REQUEST, "BadRequest", message)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "type": self.exc_type,
            "module": self.module,
            "message": self.message,
            "traceback": self.traceback,
        }});
        (self.status, Json(body)).into_response()
    }
}

/// The status that fits a remote exception class.
fn status_of(exc_type: &str) -> StatusCode {
    match exc_type {
        "NoSuchMethod" => StatusCode::NOT_FOUND,
        "UnsupportedVersion" => StatusCode::CONFLICT,
        "MessagingTimeout" => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::BAD_GATEWAY,
    }
}

impl From<RpcError> for Failure {
    fn from(e: RpcError) -> Failure {
        match e {
            RpcError::Remote(RemoteError { exc_type, module, value, traceback, .. }) => {
                Failure { status: status_of(&exc_type), exc_type, module, message: value, traceback }
            }
            e @ RpcError::Timeout { .. } => Failure {
                status: StatusCode::GATEWAY_TIMEOUT,
                exc_type: "MessagingTimeout".to_owned(),
                module: OSLO_EXCEPTIONS.to_owned(),
                message: e.to_string(),
                traceback: Vec::new(),
            },
            e @ (RpcError::InvalidTarget(_) | RpcError::VersionCap { .. }) => Failure::bad_request(e.to_string()),
            e @ RpcError::Transport(_) => {
                Failure::local(StatusCode::SERVICE_UNAVAILABLE, "MessageDeliveryFailure", e.to_string())
            }
        }
    }
}

/// What a request asks for, read and checked.
struct Request {
    client: RpcClient,
    context: Map<String, Value>,
    args: Map<String, Value>,
}

/// Both routes: `verb` is `call` (200 with the result) or `cast` (202); anything else is not a
/// route (404, as axum answers for any unknown path).
async fn send(
    State(serving): State<Arc<Serving>>,
    Path((verb, topic, method)): Path<(String, String, String)>,
    query: Result<Query<Params>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let cast = match verb.as_str() {
        "call" => false,
        "cast" => true,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let r = match request(&serving, topic, cast, query, &headers, body) {
        Ok(r) => r,
        Err(f) => return f.into_response(),
    };
    let sent = if cast {
        r.client.cast(&r.context, &method, r.args).await.map(|()| StatusCode::ACCEPTED.into_response())
    } else {
        r.client.call(&r.context, &method, r.args).await.map(|result| Json(result).into_response())
    };
    sent.unwrap_or_else(|e| Failure::from(e).into_response())
}

/// Reads the parts of a request into a client, a context and arguments; the body is checked
/// before the host is asked for, so a malformed request is told so even before it serves.
fn request(
    serving: &Serving,
    topic: String,
    is_cast: bool,
    query: Result<Query<Params>, QueryRejection>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Request, Failure> {
    let body = body.map_err(|e| {
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            Failure::local(status, "PayloadTooLarge", format!("the body is over the limit of {BODY_LIMIT} bytes"))
        } else {
            Failure::local(status, "BadRequest", format!("cannot read the body: {}", e.body_text()))
        }
    })?;
    let args = arguments(&body)?;
    let Query(params) = query.map_err(|e| Failure::bad_request(format!("query parameters: {}", e.body_text())))?;
    let context = context(headers)?;
    let version = params
        .version
        .as_deref()
        .map(str::parse::<Version>)
        .transpose()
        .map_err(|e| Failure::bad_request(format!("query parameter `version`: {e}")))?;
    if params.fanout.is_some() && !is_cast {
        return Err(Failure::bad_request("query parameter `fanout` is for casts only"));
    }
    let timeout = params
        .timeout
        .map(|s| match Duration::try_from_secs_f64(s) {
            Ok(d) if !d.is_zero() => Ok(d),
            _ => {
                Err(Failure::bad_request(format!("query parameter `timeout`: {s} is not a positive number of seconds")))
            }
        })
        .transpose()?;
    let Some(host) = serving.host() else {
        return Err(Failure::local(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", "no host is serving yet"));
    };
    let client = RpcClient::new(host.transport().clone(), Target::topic(topic)).prepare(Prepare {
        exchange: params.exchange,
        namespace: params.namespace,
        version,
        server: params.server,
        fanout: params.fanout,
        timeout: Some(timeout.unwrap_or(host.config().rpc_response_timeout)),
        ..Prepare::default()
    });
    Ok(Request { client, context, args })
}

/// The keyword arguments: an empty body is none; anything else must be a JSON object.
fn arguments(body: &[u8]) -> Result<Map<String, Value>, Failure> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(args)) => Ok(args),
        Ok(other) => Err(Failure::bad_request(format!(
            "the body must be a JSON object of keyword arguments, not {}",
            kind(&other)
        ))),
        Err(e) => Err(Failure::bad_request(format!("the body is not valid JSON: {e}"))),
    }
}

/// The request context from the headers.
fn context(headers: &HeaderMap) -> Result<Map<String, Value>, Failure> {
    let text = |name: &str| -> Result<Option<String>, Failure> {
        headers
            .get(name)
            .map(|v| {
                v.to_str().map(str::to_owned).map_err(|_| Failure::bad_request(format!("header {name} is not text")))
            })
            .transpose()
    };
    let mut ctx = match text("x-context")? {
        None => Map::new(),
        Some(t) => match serde_json::from_str::<Value>(&t) {
            Ok(Value::Object(m)) => m,
            Ok(other) => {
                return Err(Failure::bad_request(format!(
                    "header X-Context must be a JSON object, not {}",
                    kind(&other)
                )));
            }
            Err(e) => return Err(Failure::bad_request(format!("header X-Context is not valid JSON: {e}"))),
        },
    };
    // The dedicated headers win over the same keys in X-Context.
    if let Some(id) = text("x-request-id")? {
        ctx.insert("request_id".to_owned(), Value::String(id));
    }
    if let Some(id) = text("x-global-request-id")? {
        ctx.insert("global_request_id".to_owned(), Value::String(id));
    }
    Ok(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_an_object_or_nothing() {
        assert_eq!(arguments(b"").unwrap(), Map::new());
        assert_eq!(arguments(b" \n").unwrap(), Map::new());
        assert_eq!(arguments(br#"{"a": 1}"#).unwrap()["a"], json!(1));
        let f = arguments(b"[1]").unwrap_err();
        assert_eq!(f.status, StatusCode::BAD_REQUEST);
        assert!(f.message.contains("not an array"), "{}", f.message);
        let f = arguments(b"{nope").unwrap_err();
        assert!(f.message.contains("not valid JSON"), "{}", f.message);
    }

    #[test]
    fn context_headers_fill_the_context() {
        let mut h = HeaderMap::new();
        h.insert("x-context", r#"{"user": "u1", "request_id": "old"}"#.parse().unwrap());
        h.insert("x-request-id", "req-1".parse().unwrap());
        let ctx = context(&h).unwrap();
        assert_eq!(ctx["user"], json!("u1"));
        assert_eq!(ctx["request_id"], json!("req-1"));
        h.insert("x-context", "[]".parse().unwrap());
        assert!(context(&h).unwrap_err().message.contains("X-Context must be a JSON object"));
    }

    #[test]
    fn oslo_errors_map_to_statuses() {
        assert_eq!(status_of("NoSuchMethod"), StatusCode::NOT_FOUND);
        assert_eq!(status_of("UnsupportedVersion"), StatusCode::CONFLICT);
        assert_eq!(status_of("DivisionByZero"), StatusCode::BAD_GATEWAY);
        let f = Failure::from(RpcError::Timeout { msg_id: "m".into() });
        assert_eq!((f.status, f.exc_type.as_str()), (StatusCode::GATEWAY_TIMEOUT, "MessagingTimeout"));
    }
}
