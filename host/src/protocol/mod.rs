//! oslo.messaging's wire format and vocabulary. Pure data: no I/O, no tokio, no wasmtime.

mod version;

pub use version::{InvalidVersion, Version};

/// Notification priorities, lowercase, as listener methods are named.
pub const PRIORITIES: &[&str] = &[
    "audit", "debug", "info", "warn", "error", "critical", "sample",
];
