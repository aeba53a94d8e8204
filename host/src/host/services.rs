//! What the host lends an endpoint's guest ([`HostServices`]): outbound calls and casts over
//! the host's own transport and RPC client, limited to the topics the manifest's `[outbound]`
//! grants, and the endpoint's `[config]` values, resolved when it loads.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use wasmrpc_abi::{RpcFailure, RpcFailureKind, RpcRequest, RpcResponse};

use crate::manifest::{ConfigSource, EndpointSpec, Location, OutboundGrant, Secret};
use crate::protocol::Version;
use crate::rpc::{CLIENT_TIMEOUT, Prepare, RpcClient, RpcError};
use crate::runtime::HostServices;

/// A `[config]` value that cannot be resolved. It names the key, the variable or the file,
/// never a value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `{ env = "NAME" }` names a variable the host's environment does not have (or not as
    /// UTF-8).
    #[error(
        "{}:{}:{}: `[config] {key}`: environment variable {name} is not set (or is not UTF-8)",
        manifest.display(), at.line, at.column
    )]
    MissingEnv {
        /// The manifest.
        manifest: PathBuf,
        /// Where the key is written.
        at: Location,
        /// The key.
        key: String,
        /// The variable.
        name: String,
    },
    /// `{ file = "path" }` cannot be read as UTF-8 text.
    #[error(
        "{}:{}:{}: `[config] {key}`: cannot read {}: {source}",
        manifest.display(), at.line, at.column, path.display()
    )]
    File {
        /// The manifest.
        manifest: PathBuf,
        /// Where the key is written.
        at: Location,
        /// The key.
        key: String,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// One endpoint's services: its grants, the host's RPC client and its resolved configuration.
pub struct EndpointServices {
    endpoint: String,
    grant: OutboundGrant,
    client: RpcClient,
    /// Every value is kept as a [`Secret`], so none can reach a log through `Debug`.
    config: BTreeMap<String, Secret>,
}

impl std::fmt::Debug for EndpointServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointServices")
            .field("endpoint", &self.endpoint)
            .field("grant", &self.grant)
            .field("config_keys", &self.config.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl EndpointServices {
    /// Resolves the manifest's `[config]` (environment variables and files are read now).
    pub fn new(spec: &EndpointSpec, client: RpcClient) -> Result<EndpointServices, ConfigError> {
        let mut config = BTreeMap::new();
        for entry in &spec.config {
            let value = match &entry.source {
                ConfigSource::Literal(v) => v.clone(),
                ConfigSource::Env(name) => std::env::var(name).map_err(|_| ConfigError::MissingEnv {
                    manifest: spec.manifest_path.clone(),
                    at: entry.at,
                    key: entry.key.clone(),
                    name: name.clone(),
                })?,
                ConfigSource::File(path) => {
                    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::File {
                        manifest: spec.manifest_path.clone(),
                        at: entry.at,
                        key: entry.key.clone(),
                        path: path.clone(),
                        source,
                    })?;
                    // A file written by an editor or `echo` ends in a newline nobody means.
                    text.strip_suffix('\n').map_or(text.clone(), |t| t.strip_suffix('\r').unwrap_or(t).to_owned())
                }
            };
            config.insert(entry.key.clone(), Secret::new(value));
        }
        Ok(EndpointServices { endpoint: spec.name.clone(), grant: spec.outbound.clone(), client, config })
    }

    fn refuse(&self, cast: bool, topic: &str, method: &str) -> RpcResponse {
        let kind = if cast { "cast" } else { "call" };
        tracing::warn!(
            endpoint = %self.endpoint,
            topic = %topic,
            method = %method,
            "outbound {kind} refused: the manifest's `[outbound] {kind}` does not grant this topic; nothing was sent"
        );
        fail(
            RpcFailureKind::NotAllowed,
            format!("endpoint {}: `[outbound] {kind}` in its manifest does not grant topic {topic:?}", self.endpoint),
        )
    }
}

#[async_trait::async_trait]
impl HostServices for EndpointServices {
    async fn rpc(&self, request: RpcRequest, deadline: Instant) -> RpcResponse {
        let RpcRequest { cast, target, method, args, context, timeout } = request;
        if !self.grant.allows(cast, &target.topic) {
            return self.refuse(cast, &target.topic, &method);
        }
        let version = match target.version.as_deref().map(str::parse::<Version>).transpose() {
            Ok(v) => v,
            Err(e) => return fail(RpcFailureKind::InvalidRequest, format!("target version: {e}")),
        };
        let asked = match timeout {
            // The host's `rpc_response_timeout`, as an oslo client's default.
            None => self.client.timeout(),
            Some(t) => match Duration::try_from_secs_f64(t) {
                Ok(d) if !d.is_zero() => d,
                _ => {
                    return fail(
                        RpcFailureKind::InvalidRequest,
                        format!("timeout {t} is not a positive number of seconds"),
                    );
                }
            },
        };
        // A call may not outlive the call that makes it: its timeout (and its message's
        // expiration, the callee's deadline) is what is left of the guest's own.
        let left = deadline.saturating_duration_since(Instant::now());
        if !cast && left.is_zero() {
            return fail(RpcFailureKind::MessagingTimeout, "no time is left before the calling endpoint's deadline");
        }
        let client = self.client.prepare(Prepare {
            exchange: target.exchange,
            topic: Some(target.topic),
            namespace: target.namespace,
            version,
            server: target.server,
            fanout: Some(target.fanout),
            timeout: Some(asked.min(left)),
            ..Prepare::default()
        });
        let ctx = outbound_context(context);
        let outcome = if cast {
            client.cast(&ctx, &method, args).await.map(|()| Value::Null)
        } else {
            client.call(&ctx, &method, args).await
        };
        match outcome {
            Ok(value) => RpcResponse::Ok(value),
            Err(e) => RpcResponse::Error(failure(e)),
        }
    }

    fn config(&self, key: &str) -> Option<&str> {
        self.config.get(key).map(Secret::expose)
    }
}

/// The context an outbound request carries, as a Python service would send the context it
/// received (`RequestContext.from_dict(ctx).to_dict()`): the same keys and `request_id` (a new
/// `req-<uuid>` when there is none, as oslo.context makes one), `global_request_id` carried
/// (`null` when there is none), and without the inbound call's `client_timeout`.
fn outbound_context(mut ctx: Map<String, Value>) -> Map<String, Value> {
    ctx.shift_remove(CLIENT_TIMEOUT);
    if !ctx.get("request_id").is_some_and(Value::is_string) {
        ctx.insert("request_id".into(), Value::String(format!("req-{}", uuid::Uuid::new_v4())));
    }
    ctx.entry("global_request_id").or_insert(Value::Null);
    ctx
}

fn fail(kind: RpcFailureKind, message: impl Into<String>) -> RpcResponse {
    RpcResponse::Error(RpcFailure::new(kind, message))
}

/// An RPC client's error as the guest sees it: typed, with the remote class and message.
fn failure(error: RpcError) -> RpcFailure {
    match error {
        RpcError::Remote(r) => {
            let kind =
                if r.exc_type == "NoSuchMethod" { RpcFailureKind::NoSuchMethod } else { RpcFailureKind::RemoteError };
            RpcFailure {
                kind,
                type_name: r.exc_type,
                module: Some(r.module),
                message: r.value,
                kwargs: (!r.kwargs.is_empty()).then_some(Value::Object(r.kwargs)),
            }
        }
        e @ RpcError::Timeout { .. } => RpcFailure::new(RpcFailureKind::MessagingTimeout, e.to_string()),
        e @ (RpcError::InvalidTarget(_) | RpcError::VersionCap { .. }) => {
            RpcFailure::new(RpcFailureKind::InvalidRequest, e.to_string())
        }
        e @ RpcError::Transport(_) => RpcFailure::new(RpcFailureKind::Unavailable, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_outbound_context_keeps_the_request_id_and_drops_client_timeout() {
        let ctx = json!({"user": "u1", "request_id": "req-1", "global_request_id": "req-0", "client_timeout": 30});
        let out = outbound_context(ctx.as_object().cloned().unwrap());
        assert_eq!(Value::Object(out), json!({"user": "u1", "request_id": "req-1", "global_request_id": "req-0"}));
        let out = outbound_context(Map::new());
        assert!(out["request_id"].as_str().is_some_and(|id| id.starts_with("req-") && id.len() == 40), "{out:?}");
        assert_eq!(out["global_request_id"], Value::Null);
    }
}
