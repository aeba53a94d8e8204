//! The control endpoint every host serves on its own topic (default `wasmrpc`, and
//! `wasmrpc.<server>` for one host): namespace `control`, version `2.0`.
//!
//! - `ping()` → `"pong"`
//! - `list_endpoints()` → every loaded endpoint: name, target, namespace, version, methods,
//!   module sha256, instance mode, limits, when it was loaded
//! - `stop()` → asks the host to shut down (it drains in-flight calls first) and returns `true`

use std::sync::Weak;
use std::time::Instant;

use serde_json::{Map, Value, json};

use super::Inner;
use crate::protocol::{RemoteFailure, Version};
use crate::rpc::{CallContext, Endpoint, EndpointTarget};

/// The control endpoint's namespace.
pub const CONTROL_NAMESPACE: &str = "control";
/// The control endpoint's version.
pub const CONTROL_VERSION: Version = Version::new(2, 0);

const METHODS: &[&str] = &["ping", "list_endpoints", "stop"];

#[derive(Debug)]
pub(super) struct ControlEndpoint {
    host: Weak<Inner>,
    target: EndpointTarget,
}

impl ControlEndpoint {
    pub(super) fn new(host: Weak<Inner>) -> ControlEndpoint {
        ControlEndpoint {
            host,
            target: EndpointTarget {
                namespace: Some(CONTROL_NAMESPACE.into()),
                legacy_namespaces: Vec::new(),
                version: CONTROL_VERSION,
            },
        }
    }
}

#[async_trait::async_trait]
impl Endpoint for ControlEndpoint {
    fn name(&self) -> &str {
        "control"
    }

    fn target(&self) -> &EndpointTarget {
        &self.target
    }

    fn has_method(&self, method: &str) -> bool {
        METHODS.contains(&method)
    }

    async fn invoke(
        &self,
        method: &str,
        args: Map<String, Value>,
        _ctx: &CallContext,
        _deadline: Option<Instant>,
    ) -> Result<Value, RemoteFailure> {
        if let Some(unexpected) = args.keys().next() {
            return Err(RemoteFailure::new(
                "TypeError",
                "builtins",
                &format!("{method}() got an unexpected keyword argument '{unexpected}'"),
            ));
        }
        let host = self.host.upgrade().ok_or_else(|| {
            RemoteFailure::new("HostStopping", super::wasm_endpoint::ERRORS_MODULE, "the host is shutting down")
        })?;
        match method {
            "ping" => Ok(json!("pong")),
            "list_endpoints" => Ok(Value::Array(host.endpoint_listing())),
            "stop" => {
                tracing::info!("stop requested through the control endpoint");
                host.shutdown.cancel();
                Ok(json!(true))
            }
            other => Err(crate::rpc::no_such_method(other)),
        }
    }
}
