//! Emit oslo.messaging notifications while handling a call, and answer them as a listener.
//!
//! A listener module has a method per priority it handles, named like oslo's (`info`, `error`,
//! …), taking the context and `publisher_id`, `event_type`, `payload`, `metadata`, and returning
//! a [`NotificationResult`].
//!
//! The host publishes them with the endpoint's publisher id, to the topics its notifier is
//! configured with, but only for event types the endpoint's manifest lists under
//! `[notifications] allow`; anything else is dropped and the host logs why.
//!
//! ```
//! use serde_json::{Value, json};
//! use wasmrpc_guest::notifier::{NotificationResult, Notifier, NotifyError};
//! use wasmrpc_guest::{Context, endpoint, info};
//!
//! #[derive(Default)]
//! pub struct Calculator;
//!
//! #[endpoint]
//! impl Calculator {
//!     /// Emits `calc.added` (if the manifest allows it) and returns the sum.
//!     pub fn add(&self, ctx: &Context, a: f64, b: f64) -> Result<f64, NotifyError> {
//!         Notifier.info(ctx, "calc.added", json!({"sum": a + b}))?;
//!         Ok(a + b)
//!     }
//! }
//!
//! // A listener is an endpoint too, in a module of its own; its manifest has `[listener]`.
//! #[derive(Default)]
//! pub struct Audit;
//!
//! impl Audit {
//!     /// The method for priority `info`.
//!     pub fn info(
//!         &self,
//!         _ctx: &Context,
//!         publisher_id: String,
//!         event_type: String,
//!         payload: Value,
//!         metadata: Value,
//!     ) -> NotificationResult {
//!         info!("{publisher_id} sent {event_type}: {payload} ({metadata})");
//!         NotificationResult::Handled
//!     }
//! }
//! ```

use std::fmt;

use serde::Serialize;
use wasmrpc_abi::{NOTIFY_DENIED, NOTIFY_DROPPED, NOTIFY_SENT, NotifyRequest};

use crate::{Context, host};

/// What a notification listener's method returns (oslo's `NotificationResult`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationResult {
    /// Done: the host acknowledges the message.
    Handled,
    /// Put it back for redelivery (if the manifest sets `allow_requeue`).
    Requeue,
}

/// Why a notification was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyError {
    /// The manifest does not allow this event type; the host logged a warning.
    Denied {
        /// The event type that was refused.
        event_type: String,
    },
    /// The payload could not be serialized, or the host rejected the request.
    Invalid(String),
    /// The endpoint is over its notification rate limit (or the host's queue is full): the
    /// notification was not sent. The host counted and logged it.
    Dropped {
        /// The event type that was dropped.
        event_type: String,
    },
}

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotifyError::Denied { event_type } => {
                write!(f, "notification `{event_type}` is not allowed by this endpoint's manifest")
            }
            NotifyError::Invalid(why) => write!(f, "invalid notification: {why}"),
            NotifyError::Dropped { event_type } => {
                write!(f, "notification `{event_type}` was dropped: this endpoint is over its notification rate limit")
            }
        }
    }
}

impl std::error::Error for NotifyError {}

/// The endpoint's notifier. It has no state: publisher id, topics and driver are the host's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Notifier;

macro_rules! priorities {
    ($($(#[$doc:meta])* $name:ident),*) => {$(
        $(#[$doc])*
        pub fn $name(&self, ctx: &Context, event_type: &str, payload: impl Serialize) -> Result<(), NotifyError> {
            self.notify(stringify!($name), ctx, event_type, payload)
        }
    )*};
}

impl Notifier {
    priorities!(
        /// Priority `AUDIT`.
        audit,
        /// Priority `DEBUG`.
        debug,
        /// Priority `INFO`.
        info,
        /// Priority `WARN`.
        warn,
        /// Priority `ERROR`.
        error,
        /// Priority `CRITICAL`.
        critical,
        /// Priority `SAMPLE`.
        sample
    );

    fn notify(
        &self,
        priority: &str,
        ctx: &Context,
        event_type: &str,
        payload: impl Serialize,
    ) -> Result<(), NotifyError> {
        let payload = serde_json::to_value(payload).map_err(|e| NotifyError::Invalid(e.to_string()))?;
        let request = NotifyRequest {
            priority: priority.to_owned(),
            event_type: event_type.to_owned(),
            payload,
            context: ctx.as_map().clone(),
        };
        let bytes = serde_json::to_vec(&request).map_err(|e| NotifyError::Invalid(e.to_string()))?;
        match host::notify(&bytes) {
            NOTIFY_SENT => Ok(()),
            NOTIFY_DENIED => Err(NotifyError::Denied { event_type: event_type.to_owned() }),
            NOTIFY_DROPPED => Err(NotifyError::Dropped { event_type: event_type.to_owned() }),
            other => Err(NotifyError::Invalid(format!("host refused the request (status {other})"))),
        }
    }
}
