//! Write wasmrpc endpoints in Rust.
//!
//! An endpoint is a type with an `impl` block marked [`endpoint`]. Every public method becomes
//! an RPC method that oslo.messaging callers reach by name; its arguments are keyword arguments,
//! named as the parameters are, and decoded with serde.
//!
//! ```ignore
//! use wasmrpc_guest::{endpoint, Context};
//!
//! #[derive(Default)]
//! pub struct Calculator;
//!
//! #[derive(Debug)]
//! pub struct DivisionByZero;
//! impl std::fmt::Display for DivisionByZero {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
//!         f.write_str("division by zero")
//!     }
//! }
//! impl std::error::Error for DivisionByZero {}
//!
//! #[endpoint(version = "1.0")]
//! impl Calculator {
//!     pub fn divide(&self, _ctx: &Context, a: f64, b: f64) -> Result<f64, DivisionByZero> {
//!         if b == 0.0 { Err(DivisionByZero) } else { Ok(a / b) }
//!     }
//! }
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip1` (crate type `cdylib`), point a
//! manifest at the `.wasm` file, and the host serves it.
//!
//! - [`endpoint`]: the attribute; see its docs for what it accepts.
//! - [`Context`]: the request context a caller sent.
//! - [`RemoteError`] and [`IntoRemoteError`]: how a method's `Err` reaches the caller.
//! - [`info!`], [`warn!`], …: lines in the host's log, tagged with the endpoint's name.
//! - [`notifier`]: emit oslo notifications while handling a call.
//!
//! The rules of the boundary (exports, imports, encoding) are in `docs/abi.md`; this crate is
//! one implementation of them.

// The ABI moves raw pointers across the wasm boundary; the unsafe code is confined to
// `private.rs` and `host.rs`.
#![allow(unsafe_code)]

mod context;
mod error;
mod host;
pub mod notifier;
mod request;

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
