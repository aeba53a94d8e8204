//! oslo.messaging's notification API: the [`Notifier`], notification listeners whose endpoints
//! are Wasm modules, oslo's filters, and the host's notifier that guests emit through.
//! Named `notification` so it never shadows the `notify` crate.

mod filter;
mod listener;
mod notifier;
mod sink;

pub use filter::NotificationFilter;
pub use listener::{Delivered, Handled, ListenerOptions, NotificationEndpoint, NotificationListener};
pub use notifier::{NotificationDriver, Notifier, UnknownNotificationDriver};
pub use sink::{HostNotifications, as_sink};
