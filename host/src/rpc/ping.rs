//! oslo's `PingEndpoint`: with `rpc_ping_enabled`, every oslo RPC server also answers
//! `oslo_rpc_server_ping(**kwargs)` with `"pong"` (openstack-helm and kolla health probes call
//! it). Like oslo's, it has no target of its own: namespace `None`, version `1.0`, so it
//! answers calls that name no namespace and a 1.x version up to 1.0 (or none).

use std::time::Instant;

use serde_json::{Map, Value};

use super::context::CallContext;
use super::endpoint::{Endpoint, EndpointTarget};
use crate::protocol::{RemoteFailure, Version};

/// The method oslo's probe calls.
pub const PING_METHOD: &str = "oslo_rpc_server_ping";

/// Answers [`PING_METHOD`] with `"pong"`, whatever its keyword arguments.
#[derive(Debug)]
pub struct PingEndpoint {
    target: EndpointTarget,
}

impl PingEndpoint {
    /// oslo's `PingEndpoint()`: the default target.
    #[must_use]
    pub fn new() -> PingEndpoint {
        PingEndpoint {
            target: EndpointTarget { namespace: None, legacy_namespaces: Vec::new(), version: Version::new(1, 0) },
        }
    }
}

impl Default for PingEndpoint {
    fn default() -> PingEndpoint {
        PingEndpoint::new()
    }
}

#[async_trait::async_trait]
impl Endpoint for PingEndpoint {
    fn name(&self) -> &str {
        "oslo_rpc_server_ping"
    }

    fn target(&self) -> &EndpointTarget {
        &self.target
    }

    fn has_method(&self, method: &str) -> bool {
        method == PING_METHOD
    }

    async fn invoke(
        &self,
        method: &str,
        _args: Map<String, Value>,
        _ctx: &CallContext,
        _deadline: Option<Instant>,
    ) -> Result<Value, RemoteFailure> {
        if method == PING_METHOD { Ok(Value::from("pong")) } else { Err(super::no_such_method(method)) }
    }
}
