//! oslo's RPC dispatcher: picks the endpoint for a request by namespace, version and method.
//!
//! Endpoints are tried in order. The first whose namespace matches, whose version can serve
//! the requested one and which has the method (not `_private`) is invoked. If some endpoint
//! matched namespace and version but none has the method, the caller gets `NoSuchMethod`;
//! if none matched, `UnsupportedVersion`. Class names, module and messages are those of
//! `oslo_messaging.rpc.dispatcher`, so a Python caller cannot tell the difference.

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use serde_json::Value;

use super::context::CallContext;
use super::endpoint::Endpoint;
use super::serializer::Serializer;
use crate::protocol::{RemoteFailure, Request, Version};

/// The module of oslo's dispatcher exceptions.
pub const DISPATCHER_MODULE: &str = "oslo_messaging.rpc.dispatcher";

/// An ordered list of endpoints, replaceable atomically (hot reload swaps it while calls run:
/// a call keeps the endpoint it selected).
#[derive(Debug)]
pub struct Dispatcher {
    endpoints: ArcSwap<Vec<Arc<dyn Endpoint>>>,
    serializer: Arc<dyn Serializer>,
}

impl Dispatcher {
    /// A dispatcher over `endpoints`, tried in this order.
    #[must_use]
    pub fn new(endpoints: Vec<Arc<dyn Endpoint>>, serializer: Arc<dyn Serializer>) -> Dispatcher {
        Dispatcher { endpoints: ArcSwap::from_pointee(endpoints), serializer }
    }

    /// The current endpoints.
    #[must_use]
    pub fn endpoints(&self) -> Arc<Vec<Arc<dyn Endpoint>>> {
        self.endpoints.load_full()
    }

    /// Replaces the endpoint list; calls already dispatched finish on what they selected.
    pub fn replace(&self, endpoints: Vec<Arc<dyn Endpoint>>) {
        self.endpoints.store(Arc::new(endpoints));
    }

    /// Chooses the endpoint for a request, or the failure a Python server would send.
    pub fn select(&self, request: &Request) -> Result<Arc<dyn Endpoint>, RemoteFailure> {
        let method = request.method.as_str();
        // `message.get('version', '1.0')`: absent means 1.0; anything unreadable matches nothing.
        let (requested, version): (std::borrow::Cow<'_, str>, Option<Version>) = match &request.version {
            None => ("1.0".into(), Some(Version::new(1, 0))),
            Some(Value::String(s)) => (s.as_str().into(), s.parse().ok()),
            Some(Value::Null) => ("None".into(), None),
            Some(other) => {
                let text = other.to_string();
                let version = text.parse().ok();
                (text.into(), version)
            }
        };
        let mut found_compatible = false;
        for endpoint in self.endpoints.load().iter() {
            let target = endpoint.target();
            let compatible = version.as_ref().is_some_and(|v| target.version.can_serve(v));
            if !(target.accepts_namespace(request.namespace.as_deref()) && compatible) {
                continue;
            }
            // DefaultRPCAccessPolicy: names starting with `_` are never callable.
            if endpoint.has_method(method) && !method.starts_with('_') {
                return Ok(endpoint.clone());
            }
            found_compatible = true;
        }
        Err(if found_compatible { no_such_method(method) } else { unsupported_version(&requested, method) })
    }

    /// Runs the selected endpoint with the serializer hooks in oslo's order.
    pub async fn invoke(
        &self,
        endpoint: &dyn Endpoint,
        request: &mut Request,
        deadline: Option<Instant>,
    ) -> Result<Value, RemoteFailure> {
        // The request is spent once dispatched: its context and arguments move to the endpoint.
        let ctx = CallContext::new(std::mem::take(&mut request.context), request.client_timeout());
        let args = std::mem::take(&mut request.args);
        if self.serializer.is_noop() {
            return endpoint.invoke(&request.method, args, &ctx, deadline).await;
        }
        let ctx = self.serializer.deserialize_context(ctx.into_map());
        let args = args.into_iter().map(|(k, v)| (k, self.serializer.deserialize_entity(&ctx, v))).collect();
        let ctx = CallContext::from_map(ctx);
        let result = endpoint.invoke(&request.method, args, &ctx, deadline).await?;
        Ok(self.serializer.serialize_entity(&ctx.into_map(), result))
    }
}

/// `NoSuchMethod(method)`.
#[must_use]
pub fn no_such_method(method: &str) -> RemoteFailure {
    RemoteFailure::new("NoSuchMethod", DISPATCHER_MODULE, &format!("Endpoint does not support RPC method {method}"))
}

/// `UnsupportedVersion(version, method=method)`.
#[must_use]
pub fn unsupported_version(version: &str, method: &str) -> RemoteFailure {
    RemoteFailure::new(
        "UnsupportedVersion",
        DISPATCHER_MODULE,
        &format!("Endpoint does not support RPC version {version}. Attempted method: {method}"),
    )
}
