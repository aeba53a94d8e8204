//! wasmrpc: an oslo.messaging-compatible RPC host whose endpoints are sandboxed WebAssembly
//! modules.
//!
//! # Layout
//!
//! A call flows transport → protocol → rpc (dispatcher) → runtime (the plugin) and back:
//!
//! - [`manifest`]: TOML manifests → validated [`manifest::EndpointSpec`]s (no wasmtime).
//! - [`runtime`]: the only module that names wasmtime: one engine, compiled modules,
//!   sandboxed instances, traps turned into structured errors.
//! - [`protocol`]: oslo.messaging's wire format (envelopes, requests, replies, failures,
//!   transport URLs, versions). Pure data.
//!
//! - [`cli`]: the `wasmrpc` command line (`src/main.rs` only calls [`cli::main`]).

pub mod cli;
pub mod manifest;
pub mod protocol;
pub mod runtime;

pub use manifest::EndpointSpec;
pub use runtime::{CallError, LoadError, Plugin, Runtime, RuntimeConfig, TrapKind};
