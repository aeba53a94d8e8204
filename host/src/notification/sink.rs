//! The host's notifier as seen by guests and by the host itself: notifications go through a
//! bounded queue to a background task, so a guest emitting one never waits for the broker.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use wasmrpc_abi::NotifyRequest;

use super::notifier::Notifier;
use crate::runtime::Notifications;

/// Notifications waiting to be published; beyond this, new ones are dropped with a warning.
const QUEUE: usize = 1024;

struct Pending {
    notifier: Notifier,
    request: NotifyRequest,
}

/// Publishes guest and host notifications in the background.
#[derive(Debug, Clone)]
pub struct HostNotifications {
    notifier: Notifier,
    server: String,
    tx: mpsc::Sender<Pending>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("event_type", &self.request.event_type).finish()
    }
}

impl HostNotifications {
    /// Starts the publishing task. `notifier`'s publisher id is the host's own (`wasmrpc.<server>`).
    #[must_use]
    pub fn start(notifier: Notifier, server: &str) -> HostNotifications {
        let (tx, mut rx) = mpsc::channel::<Pending>(QUEUE);
        tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                let ctx = (!p.request.context.is_empty()).then_some(&p.request.context);
                if let Err(e) =
                    p.notifier.notify(ctx, &p.request.event_type, &p.request.priority, p.request.payload).await
                {
                    tracing::warn!(publisher_id = p.notifier.publisher_id(), event_type = %p.request.event_type, "notification not sent: {e}");
                }
            }
        });
        HostNotifications { notifier, server: server.to_owned(), tx }
    }

    /// `false` when the notification was dropped.
    fn queue(&self, notifier: Notifier, request: NotifyRequest) -> bool {
        match self.tx.try_send(Pending { notifier, request }) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(p)) => {
                tracing::warn!(event_type = %p.request.event_type, "notification queue full; dropped");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// The host's own event about an endpoint (`wasmrpc.endpoint.loaded`, …).
    pub fn host_event(&self, event: &str, priority: &str, payload: Value) {
        let request = NotifyRequest {
            priority: priority.into(),
            event_type: format!("wasmrpc.endpoint.{event}"),
            payload,
            context: Default::default(),
        };
        self.queue(self.notifier.clone(), request);
    }

    /// An endpoint's event payload: name, target and sha256.
    #[must_use]
    pub fn endpoint_payload(name: &str, topic: Option<&str>, sha256: Option<&str>, extra: Value) -> Value {
        let mut payload = json!({"endpoint": name, "topic": topic, "sha256": sha256});
        if let (Some(p), Value::Object(extra)) = (payload.as_object_mut(), extra) {
            p.extend(extra);
        }
        payload
    }
}

impl Notifications for HostNotifications {
    fn emit(&self, endpoint: &str, publisher_id: Option<&str>, request: NotifyRequest) -> bool {
        let publisher = publisher_id.map_or_else(|| format!("{endpoint}.{}", self.server), str::to_owned);
        self.queue(self.notifier.prepare(&publisher), request)
    }
}

/// Makes the trait object the runtime expects.
#[must_use]
pub fn as_sink(n: &HostNotifications) -> Arc<dyn Notifications> {
    Arc::new(n.clone())
}
