//! oslo's `Notifier`: publishes notifications through a transport's drivers.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::protocol::{Notification, priority};
use crate::transport::{Transport, TransportError};

/// A notification driver (oslo's `[oslo_messaging_notifications] driver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationDriver {
    /// The 2.0 envelope (what current services use).
    MessagingV2,
    /// Envelope-less 1.0 messages.
    Messaging,
    /// Writes notifications to the host's log instead of the broker.
    Log,
    /// Sends nothing.
    Noop,
}

/// A driver name that is not one of [`NotificationDriver`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown notification driver {0:?}: use messagingv2, messaging, log or noop")]
pub struct UnknownNotificationDriver(pub String);

impl FromStr for NotificationDriver {
    type Err = UnknownNotificationDriver;

    fn from_str(s: &str) -> Result<NotificationDriver, UnknownNotificationDriver> {
        match s {
            "messagingv2" => Ok(NotificationDriver::MessagingV2),
            "messaging" => Ok(NotificationDriver::Messaging),
            "log" => Ok(NotificationDriver::Log),
            "noop" => Ok(NotificationDriver::Noop),
            other => Err(UnknownNotificationDriver(other.to_owned())),
        }
    }
}

impl fmt::Display for NotificationDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotificationDriver::MessagingV2 => "messagingv2",
            NotificationDriver::Messaging => "messaging",
            NotificationDriver::Log => "log",
            NotificationDriver::Noop => "noop",
        })
    }
}

/// Sends notifications: to every configured topic (default `notifications`), through every
/// driver, with routing key `<topic>.<priority>`.
///
/// Delivery follows oslo's `retry = -1` as far as a transport allows: the RabbitMQ transport
/// retries through reconnects for up to 30 s; a notification that still cannot be sent is
/// reported to the caller (and logged by the host's notifier), never retried later.
#[derive(Clone)]
pub struct Notifier {
    transport: Arc<dyn Transport>,
    publisher_id: String,
    drivers: Vec<NotificationDriver>,
    topics: Vec<String>,
    exchange: Option<String>,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("publisher_id", &self.publisher_id)
            .field("drivers", &self.drivers)
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// A notifier; `topics` empty means `["notifications"]`.
    #[must_use]
    pub fn new(
        transport: Arc<dyn Transport>,
        publisher_id: &str,
        drivers: Vec<NotificationDriver>,
        topics: Vec<String>,
    ) -> Notifier {
        let topics = if topics.is_empty() { vec!["notifications".to_owned()] } else { topics };
        Notifier { transport, publisher_id: publisher_id.to_owned(), drivers, topics, exchange: None }
    }

    /// The same notifier with another publisher id (oslo's `prepare`).
    #[must_use]
    pub fn prepare(&self, publisher_id: &str) -> Notifier {
        Notifier { publisher_id: publisher_id.to_owned(), ..self.clone() }
    }

    /// Publishes to `exchange` instead of the control exchange.
    #[must_use]
    pub fn with_exchange(mut self, exchange: &str) -> Notifier {
        self.exchange = Some(exchange.to_owned());
        self
    }

    /// oslo's `is_enabled()`: false with no driver, or only `noop`.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.drivers.iter().any(|d| *d != NotificationDriver::Noop)
    }

    /// The publisher id.
    #[must_use]
    pub fn publisher_id(&self) -> &str {
        &self.publisher_id
    }

    /// Sends one notification at `priority` (`info`, `warn`, `error`, …). `context` goes out as
    /// `_context_*` keys (oslo sends a request context's redacted copy, and nothing for a plain
    /// dict: pass `None` for the latter).
    pub async fn notify(
        &self,
        context: Option<&Map<String, Value>>,
        event_type: &str,
        priority_name: &str,
        payload: Value,
    ) -> Result<(), TransportError> {
        let Some(upper) = priority(priority_name) else {
            return Err(TransportError::new(
                crate::transport::ErrorKind::Config,
                format!("unknown priority {priority_name:?}: use audit, debug, info, warn, error, critical or sample"),
            ));
        };
        let ctx = context.map(redacted).unwrap_or_default();
        let notification = Notification::new(&self.publisher_id, event_type, upper, payload, ctx);
        let key_priority = upper.to_ascii_lowercase();
        for driver in &self.drivers {
            let body = match driver {
                NotificationDriver::MessagingV2 => notification.encode_v2(),
                NotificationDriver::Messaging => notification.encode_v1(),
                NotificationDriver::Log => {
                    tracing::info!(target: "wasmrpc::notification", event_type, priority = upper, "{}", String::from_utf8_lossy(&notification.encode_v1()));
                    continue;
                }
                NotificationDriver::Noop => continue,
            };
            for topic in &self.topics {
                self.transport
                    .send_notification(self.exchange.as_deref(), topic, &key_priority, body.clone().into())
                    .await?;
            }
        }
        Ok(())
    }
}

/// What oslo.context's `redacted_copy()` does to a request context: no auth token; and the
/// RPC layer's `client_timeout` is not part of a request context.
fn redacted(ctx: &Map<String, Value>) -> Map<String, Value> {
    let mut out = ctx.clone();
    out.remove("client_timeout");
    if out.contains_key("auth_token") {
        out.insert("auth_token".into(), Value::Null);
    }
    out
}
