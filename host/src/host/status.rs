//! What `/readyz` and `/metrics` read from a running host: its endpoints, the manifests that
//! do not load, and its broker link.

use std::path::PathBuf;

use crate::metrics::{EndpointSnapshot, Snapshot};
use crate::runtime::GuestStatsSnapshot;
use crate::transport::TransportHealth;

/// A host's state at one moment.
#[derive(Debug, Clone)]
pub struct HostStatus {
    /// Every endpoint loaded and served.
    pub endpoints: Vec<EndpointStatus>,
    /// Manifests whose current content does not load and that have no earlier version serving.
    pub not_loaded: Vec<PathBuf>,
    /// Manifests whose current content does not load (with or without an earlier version serving).
    pub failed: usize,
    /// The broker link.
    pub broker: TransportHealth,
    /// The notification transport's link, when notifications go to a broker of their own.
    pub notification_broker: Option<TransportHealth>,
}

/// One served endpoint.
#[derive(Debug, Clone)]
pub struct EndpointStatus {
    /// Its name.
    pub name: String,
    /// `rpc` or `listener`.
    pub role: &'static str,
    /// Its module's hex sha256.
    pub sha256: String,
    /// Its guests' counters.
    pub guests: GuestStatsSnapshot,
}

impl HostStatus {
    /// Why the host is not ready to serve (nothing when it is): it must be connected to its
    /// brokers and have every manifest's endpoint loaded.
    #[must_use]
    pub fn not_ready_reasons(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if !self.broker.connected {
            reasons.push("not connected to the broker (reconnecting)".to_owned());
        }
        if self.notification_broker.is_some_and(|h| !h.connected) {
            reasons.push("not connected to the notification broker (reconnecting)".to_owned());
        }
        for path in &self.not_loaded {
            reasons.push(format!("{}: endpoint not loaded (see the log)", path.display()));
        }
        reasons
    }

    /// Whether the host serves everything it was given.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.not_ready_reasons().is_empty()
    }

    /// The host's part of a metrics scrape.
    #[must_use]
    pub fn metrics_snapshot(&self) -> Snapshot {
        Snapshot {
            endpoints: self
                .endpoints
                .iter()
                .map(|e| EndpointSnapshot {
                    name: e.name.clone(),
                    role: e.role,
                    sha256: e.sha256.clone(),
                    guests: e.guests,
                })
                .collect(),
            manifests_failed: self.failed,
            broker_connected: self.broker.connected,
            broker_reconnects: self.broker.reconnects,
            ready: self.is_ready(),
        }
    }
}
