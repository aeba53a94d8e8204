#![doc = include_str!("../README.md")]
//!
//! ## Map
//!
//! - [`endpoint`]: the attribute, with the rules for methods and constructors.
//! - [`Context`]: the request context.
//! - [`RemoteError`], [`IntoRemoteError`]: errors as the caller sees them.
//! - [`info!`], [`warn!`], [`error!`], [`debug!`], [`trace!`], [`log`], [`Level`]: the host's log.
//! - [`notifier`]: [`Notifier`] and [`NotificationResult`].
//! - [`rpc`]: calls and casts to other services ([`rpc::call`], [`rpc::cast`]), as the
//!   manifest's `[outbound]` grants.
//! - [`config`]: the manifest's `[config]` values ([`config::get`]).
#![warn(missing_docs)]
// The ABI moves raw pointers across the wasm boundary; the unsafe code is confined to
// `__private.rs` and `host.rs`.
#![allow(unsafe_code)]

pub mod config;
mod context;
mod error;
mod host;
pub mod notifier;
mod request;
pub mod rpc;

#[doc(hidden)]
pub mod __private;

pub use context::Context;
pub use error::{IntoRemoteError, RemoteError};
pub use host::{Level, log};
pub use notifier::{NotificationResult, Notifier};
pub use wasmrpc_macros::endpoint;

/// Logs a line at `trace` level in the host's log.
#[macro_export]
macro_rules! trace { ($($arg:tt)*) => { $crate::log($crate::Level::Trace, &::std::format!($($arg)*)) }; }
/// Logs a line at `debug` level in the host's log.
#[macro_export]
macro_rules! debug { ($($arg:tt)*) => { $crate::log($crate::Level::Debug, &::std::format!($($arg)*)) }; }
/// Logs a line at `info` level in the host's log.
#[macro_export]
macro_rules! info { ($($arg:tt)*) => { $crate::log($crate::Level::Info, &::std::format!($($arg)*)) }; }
/// Logs a line at `warn` level in the host's log.
#[macro_export]
macro_rules! warn { ($($arg:tt)*) => { $crate::log($crate::Level::Warn, &::std::format!($($arg)*)) }; }
/// Logs a line at `error` level in the host's log.
#[macro_export]
macro_rules! error { ($($arg:tt)*) => { $crate::log($crate::Level::Error, &::std::format!($($arg)*)) }; }
