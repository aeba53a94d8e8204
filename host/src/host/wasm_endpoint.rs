//! A loaded plugin as an RPC [`Endpoint`]: what the dispatcher calls.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};
use tokio::sync::Semaphore;

use crate::manifest::{EndpointSpec, RpcTarget};
use crate::metrics::{EndpointMetrics, Metrics};
use crate::protocol::RemoteFailure;
use crate::rpc::{CallContext, CallTiming, Endpoint, EndpointTarget};
use crate::runtime::{CallError, Plugin};

/// The module of the exception classes for traps and host faults.
pub const ERRORS_MODULE: &str = "wasmrpc.errors";

/// One manifest's module, served on its target.
#[derive(Debug)]
pub struct WasmEndpoint {
    spec: Arc<EndpointSpec>,
    plugin: Plugin,
    target: EndpointTarget,
    concurrency: Option<Arc<Semaphore>>,
    /// Its methods' call counters, when the host keeps metrics.
    metrics: Option<EndpointMetrics>,
}

impl WasmEndpoint {
    /// Wraps a loaded plugin for an RPC manifest.
    #[must_use]
    pub fn new(spec: Arc<EndpointSpec>, rpc: &RpcTarget, plugin: Plugin) -> WasmEndpoint {
        let target = EndpointTarget {
            namespace: rpc.namespace.clone(),
            legacy_namespaces: rpc.legacy_namespaces.clone(),
            version: rpc.version,
        };
        let concurrency = spec.max_concurrency.map(|n| Arc::new(Semaphore::new(n)));
        WasmEndpoint { spec, plugin, target, concurrency, metrics: None }
    }

    /// Counts its calls in `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: &Arc<Metrics>) -> WasmEndpoint {
        let methods = self.plugin.description().methods.iter().map(|m| m.name.as_str());
        self.metrics = Some(metrics.endpoint(&self.spec.name, methods));
        self
    }

    /// The manifest.
    #[must_use]
    pub fn spec(&self) -> &Arc<EndpointSpec> {
        &self.spec
    }

    /// The loaded module.
    #[must_use]
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }
}

#[async_trait::async_trait]
impl Endpoint for WasmEndpoint {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn target(&self) -> &EndpointTarget {
        &self.target
    }

    fn has_method(&self, method: &str) -> bool {
        self.plugin.has_method(method)
    }

    async fn invoke(
        &self,
        method: &str,
        args: Map<String, Value>,
        ctx: &CallContext,
        deadline: Option<Instant>,
    ) -> Result<Value, RemoteFailure> {
        self.plugin.call(method, &args, ctx, deadline).await.map_err(|e| failure(&self.spec.name, method, e))
    }

    fn concurrency(&self) -> Option<Arc<Semaphore>> {
        self.concurrency.clone()
    }

    fn observe(&self, method: &str, outcome: Result<(), &RemoteFailure>, timing: CallTiming) {
        if let Some(m) = &self.metrics {
            m.observe(method, outcome, timing);
        }
    }
}

/// What the caller sees for a failed call: the guest's own error as it declared it, or a
/// `wasmrpc.errors` class naming the trap, the endpoint and the method.
#[must_use]
pub fn failure(endpoint: &str, method: &str, error: CallError) -> RemoteFailure {
    let place = format!("wasm://{endpoint}/{method}");
    match error {
        CallError::Guest(g) => {
            let module = g.module.unwrap_or_else(|| format!("wasmrpc.endpoints.{endpoint}"));
            let mut f = RemoteFailure::new(&g.type_name, &module, &g.message).raised_in(&place);
            if let Some(Value::Object(details)) = g.details {
                f.kwargs = details;
            }
            // A Python guest sends its own traceback and args: the caller sees what a native
            // oslo server would have sent.
            if !g.traceback.is_empty() {
                f.tb = g.traceback;
            }
            if let Some(args) = g.args {
                f.args = args;
            }
            f
        }
        CallError::Trap { kind, .. } => {
            RemoteFailure::new(kind.class_name(), ERRORS_MODULE, &error.to_string()).raised_in(&place)
        }
        CallError::Abi { .. } => {
            RemoteFailure::new("GuestAbiError", ERRORS_MODULE, &error.to_string()).raised_in(&place)
        }
        CallError::Host { .. } => {
            RemoteFailure::new("EndpointUnavailable", ERRORS_MODULE, &error.to_string()).raised_in(&place)
        }
    }
}
