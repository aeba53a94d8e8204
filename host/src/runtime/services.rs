//! What a guest may reach beyond its sandbox, through the host: outbound calls and casts, and
//! its configuration values. The runtime defines the trait and forwards what the guest asks;
//! `host` implements it with the RPC client and the manifest's grants, so `runtime` never names
//! `rpc` or oslo.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use wasmrpc_abi::{RpcRequest, RpcResponse};

use super::Notifications;
use super::stats::GuestStats;

/// One endpoint's host services.
#[async_trait::async_trait]
pub trait HostServices: Send + Sync + fmt::Debug {
    /// Sends the call or cast `request` (if the manifest grants its target) and waits for its
    /// outcome; `deadline` is the guest's own, which a call's timeout must not outlive.
    async fn rpc(&self, request: RpcRequest, deadline: Instant) -> RpcResponse;

    /// The resolved value of the `[config]` key, if the manifest sets it.
    fn config(&self, key: &str) -> Option<&str>;
}

/// What the host lends an endpoint's guests, handed to [`super::Runtime::load_bytes`].
#[derive(Debug, Clone, Default)]
pub struct GuestServices {
    /// Where its notifications go (the host's notifier), if a driver is configured.
    pub notifications: Option<Arc<dyn Notifications>>,
    /// Outbound calls and configuration values; without them every outbound call is refused
    /// as unavailable and every key is absent.
    pub host: Option<Arc<dyn HostServices>>,
    /// Where its guests' usage is counted; the host passes the same one to every load of an
    /// endpoint so the counts survive reloads.
    pub stats: Arc<GuestStats>,
}
