//! oslo's RPC client: `call`, `cast`, `prepare`, `can_send_version`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::time::Instant;

use super::error::{RemoteError, RpcError};
use super::replies::TransportReplies;
use super::serializer::{NoOpSerializer, Serializer};
use crate::protocol::{RemoteFailure, ReplyTo, Request, Target, Version, new_id};
use crate::transport::{Body, Outgoing, Transport};

/// oslo's `rpc_response_timeout` default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Sends calls and casts to a target. Cheap to clone; [`RpcClient::prepare`] makes variants
/// that share the transport's reply queue.
#[derive(Debug, Clone)]
pub struct RpcClient {
    transport: Arc<dyn Transport>,
    /// The transport's reply queue, shared with every other client of it.
    replies: Arc<TransportReplies>,
    target: Target,
    timeout: Duration,
    call_monitor_timeout: Option<Duration>,
    version_cap: Option<Version>,
    serializer: Arc<dyn Serializer>,
}

/// Overrides for [`RpcClient::prepare`]; unset fields are inherited.
#[derive(Debug, Clone, Default)]
pub struct Prepare {
    /// Exchange.
    pub exchange: Option<String>,
    /// Topic.
    pub topic: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
    /// Version requested.
    pub version: Option<Version>,
    /// A specific server.
    pub server: Option<String>,
    /// Fanout (casts only).
    pub fanout: Option<bool>,
    /// Call timeout.
    pub timeout: Option<Duration>,
    /// Version cap.
    pub version_cap: Option<Version>,
    /// Call-monitor timeout: fail if the server sends no heartbeat for this long.
    pub call_monitor_timeout: Option<Duration>,
}

impl RpcClient {
    /// A client for `target` with oslo's defaults: 60 s timeout, no version cap, no call
    /// monitoring, the no-op serializer.
    #[must_use]
    pub fn new(transport: Arc<dyn Transport>, target: Target) -> RpcClient {
        RpcClient {
            replies: TransportReplies::of(&transport),
            transport,
            target,
            timeout: DEFAULT_TIMEOUT,
            call_monitor_timeout: None,
            version_cap: None,
            serializer: Arc::new(NoOpSerializer),
        }
    }

    /// With a serializer.
    #[must_use]
    pub fn with_serializer(mut self, serializer: Arc<dyn Serializer>) -> RpcClient {
        self.serializer = serializer;
        self
    }

    /// The target calls go to.
    #[must_use]
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// How long a call waits for its reply.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A variant with some settings changed.
    #[must_use]
    pub fn prepare(&self, p: Prepare) -> RpcClient {
        let mut c = self.clone();
        let t = &mut c.target;
        if let Some(v) = p.exchange {
            t.exchange = Some(v);
        }
        if let Some(v) = p.topic {
            t.topic = v;
        }
        if let Some(v) = p.namespace {
            t.namespace = Some(v);
        }
        if let Some(v) = p.version {
            t.version = Some(v);
        }
        if let Some(v) = p.server {
            t.server = Some(v);
        }
        if let Some(v) = p.fanout {
            t.fanout = v;
        }
        if let Some(v) = p.timeout {
            c.timeout = v;
        }
        if let Some(v) = p.version_cap {
            c.version_cap = Some(v);
        }
        if let Some(v) = p.call_monitor_timeout {
            c.call_monitor_timeout = Some(v);
        }
        c
    }

    /// Whether `version` (default: the target's) is within the version cap.
    #[must_use]
    pub fn can_send_version(&self, version: Option<&Version>) -> bool {
        match (&self.version_cap, version.or(self.target.version.as_ref())) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(cap), Some(v)) => cap.can_serve(v),
        }
    }

    fn check_version_cap(&self) -> Result<(), RpcError> {
        if self.can_send_version(None) {
            return Ok(());
        }
        let cap = self.version_cap.expect("only a cap can refuse a version");
        Err(RpcError::VersionCap { version: self.target.version.unwrap_or(Version::new(1, 0)), cap })
    }

    /// Builds a request, with the serializer's hooks (skipped, copies and all, when it is the
    /// no-op serializer). It is encoded only if it leaves the process (see [`Body`]).
    fn request(
        &self,
        ctx: &Map<String, Value>,
        method: &str,
        args: Map<String, Value>,
        reply: Option<ReplyTo>,
    ) -> Body {
        let (args, context) = if self.serializer.is_noop() {
            (args, ctx.clone())
        } else {
            let args = args.into_iter().map(|(k, v)| (k, self.serializer.serialize_entity(ctx, v))).collect();
            (args, self.serializer.serialize_context(ctx.clone()))
        };
        Body::request(Request {
            method: method.to_owned(),
            args,
            namespace: self.target.namespace.clone(),
            version: self.target.version.map(|v| Value::String(v.to_string())),
            reply,
            unique_id: Some(new_id()),
            context,
        })
    }

    /// Fire and forget: returns once the transport accepted the message.
    pub async fn cast(&self, ctx: &Map<String, Value>, method: &str, args: Map<String, Value>) -> Result<(), RpcError> {
        self.check_version_cap()?;
        let body = self.request(ctx, method, args, None);
        self.transport.send(&self.target, Outgoing::new(body)).await?;
        Ok(())
    }

    /// Calls `method` and waits for its result, at most the timeout (a hard cap, even with
    /// heartbeats); with a call-monitor timeout, also fails when the server stays silent that
    /// long.
    pub async fn call(
        &self,
        ctx: &Map<String, Value>,
        method: &str,
        args: Map<String, Value>,
    ) -> Result<Value, RpcError> {
        if self.target.fanout {
            return Err(RpcError::InvalidTarget(format!("A call cannot be used with fanout:{}", self.target)));
        }
        self.check_version_cap()?;
        let replies = self.replies.get(self.transport.as_ref()).await?;
        let msg_id = new_id();
        let call_monitor_timeout = self.call_monitor_timeout.map_or(Value::Null, seconds_value);
        // The timeout is a hard cap; the call monitor, when set, ends the call sooner if the
        // server falls silent, and each heartbeat moves it on.
        let now = Instant::now();
        // A timeout too large to add to the clock (`--timeout 1e19`) waits as long as it can.
        let hard = now.checked_add(self.timeout).unwrap_or_else(|| far_future(now));
        let deadline = |heard_at: Instant| {
            self.call_monitor_timeout.map_or(hard, |d| heard_at.checked_add(d).map_or(hard, |t| t.min(hard)))
        };
        let waiter = replies.register(&msg_id, deadline(now));
        let reply_to = ReplyTo { msg_id, reply_q: replies.queue().to_owned(), call_monitor_timeout };
        let body = self.request(ctx, method, args, Some(reply_to));
        let message = Outgoing { body, expiration: Some(self.timeout), mandatory: false, confirm: false };
        self.transport.send(&self.target, message).await?;

        let mut result = Value::Null;
        loop {
            let Ok(reply) = waiter.recv().await else {
                return Err(RpcError::Timeout { msg_id: waiter.msg_id().to_owned() });
            };
            if let Some(failure) = &reply.failure {
                if reply.ending {
                    return Err(remote_error(failure));
                }
            } else if !reply.result.is_null() {
                // Old servers send the result and then an empty `ending` message: keep it.
                result = reply.result;
            } else if !reply.ending {
                // A call-monitor heartbeat: the server is still working on it.
                waiter.set_deadline(deadline(Instant::now()));
            }
            if reply.ending {
                return Ok(if self.serializer.is_noop() {
                    result
                } else {
                    self.serializer.deserialize_entity(ctx, result)
                });
            }
        }
    }
}

fn remote_error(failure: &str) -> RpcError {
    match RemoteFailure::from_json(failure) {
        Ok(f) => RpcError::Remote(RemoteError::from(f)),
        Err(e) => RpcError::Remote(RemoteError {
            exc_type: "RemoteError".into(),
            module: "oslo_messaging.rpc.client".into(),
            value: format!("unreadable failure from the server ({e}): {failure}"),
            traceback: Vec::new(),
            kwargs: Map::new(),
        }),
    }
}

/// `_timeout` as Python would send it: an int for whole seconds, else a float.
fn seconds_value(d: Duration) -> Value {
    if d.subsec_nanos() == 0 { Value::from(d.as_secs()) } else { Value::from(d.as_secs_f64()) }
}

/// About thirty years from `now`: as far as any timer needs to look (tokio's own limit is about
/// two years, beyond which it waits forever).
fn far_future(now: Instant) -> Instant {
    now + Duration::from_secs(30 * 365 * 24 * 60 * 60)
}
