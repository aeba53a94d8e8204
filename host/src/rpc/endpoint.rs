//! The seam between dispatch and whatever answers calls: Wasm plugins, the control endpoint,
//! or a closure in a test.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tokio::sync::Semaphore;

use super::CallContext;
use crate::protocol::{RemoteFailure, Version};

/// What an endpoint serves: oslo's endpoint `target` (namespace and version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointTarget {
    /// The namespace (None is oslo's null namespace).
    pub namespace: Option<String>,
    /// Further namespaces accepted (`legacy_namespaces`).
    pub legacy_namespaces: Vec<String>,
    /// The API version implemented.
    pub version: Version,
}

impl EndpointTarget {
    /// `namespace in target.accepted_namespaces`.
    #[must_use]
    pub fn accepts_namespace(&self, namespace: Option<&str>) -> bool {
        self.namespace.as_deref() == namespace
            || namespace.is_some_and(|n| self.legacy_namespaces.iter().any(|l| l == n))
    }
}

/// Something that answers RPC methods.
#[async_trait::async_trait]
pub trait Endpoint: Send + Sync + fmt::Debug {
    /// A name for logs and listings.
    fn name(&self) -> &str;

    /// Namespace and version served.
    fn target(&self) -> &EndpointTarget;

    /// oslo's `hasattr(endpoint, method)`. The dispatcher refuses `_private` names itself.
    fn has_method(&self, method: &str) -> bool;

    /// Runs a method. `deadline` is when the caller stops waiting, if known.
    async fn invoke(
        &self,
        method: &str,
        args: Map<String, Value>,
        ctx: &CallContext,
        deadline: Option<Instant>,
    ) -> Result<Value, RemoteFailure>;

    /// A bound on this endpoint's concurrent calls, on top of the server's executor.
    fn concurrency(&self) -> Option<Arc<Semaphore>> {
        None
    }

    /// Told by the server after each call it ran: how it ended (the failure, if it failed)
    /// and how long it waited and ran. The host's endpoints count it in their metrics.
    fn observe(&self, _method: &str, _outcome: Result<(), &RemoteFailure>, _timing: CallTiming) {}
}

/// Where a call's time went, as its server saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallTiming {
    /// From being taken off the transport to starting to run (waiting for the endpoint's and
    /// the executor's slots).
    pub queued: Duration,
    /// Running (the endpoint's `invoke`).
    pub ran: Duration,
}
