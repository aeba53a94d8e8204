//! oslo.messaging's wire format and vocabulary. Pure data: no I/O, no tokio, no wasmtime.
//!
//! - [`json`]: JSON exactly as Python's `json.dumps` writes it, and a reader for what it may write.
//! - [`envelope`]: the 2.0 envelope (double-encoded inner message).
//! - [`Request`], [`Reply`], [`RemoteFailure`]: RPC messages.
//! - [`Notification`]: notifications, with oslo's timestamp format.
//! - [`Target`], [`ListenTarget`], [`NotificationTarget`]: where messages go.
//! - [`TransportUrl`]: `rabbit://…` and `memory://` URLs, passwords redacted when printed.
//! - [`Version`]: `"X.Y"` API versions and oslo's compatibility rule.
//! - `RecentIds`: oslo's window of recent `_unique_id`s, for dropping duplicates.

pub mod envelope;
mod failure;
pub mod json;
mod notification;
mod recent_ids;
mod reply;
mod request;
mod target;
mod url;
mod version;

pub use envelope::DecodeError;
pub use failure::{InvalidFailure, RemoteFailure};
pub use notification::{Notification, PRIORITY_NAMES, priority, timestamp};
pub(crate) use recent_ids::RecentIds;
pub use reply::{Reply, new_id};
pub use request::{ReplyTo, Request};
pub use target::{ListenTarget, NotificationTarget, Target};
pub use url::{InvalidUrl, TransportDriver, TransportHost, TransportUrl, UrlProblem, redact};
pub use version::{InvalidVersion, Version};

/// Notification priorities, lowercase, as listener methods are named.
pub const PRIORITIES: &[&str] = &["audit", "debug", "info", "warn", "error", "critical", "sample"];
