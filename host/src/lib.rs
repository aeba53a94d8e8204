//! wasmrpc: an oslo.messaging-compatible RPC host whose endpoints are sandboxed WebAssembly
//! modules.
//!
//! # Layout
//!
//! A call flows transport → protocol → rpc (dispatcher) → runtime (the plugin) and back;
//! `host` loads the manifests and wires the pieces:
//!
//! - [`manifest`]: TOML manifests → validated [`manifest::EndpointSpec`]s (no wasmtime).
//! - [`runtime`]: the only module that names wasmtime: one engine, compiled modules,
//!   sandboxed instances, traps turned into structured errors.
//! - [`protocol`]: oslo.messaging's wire format (envelopes, requests, replies, failures,
//!   transport URLs, versions). Pure data.
//! - [`transport`]: moves bodies through a broker: `memory://` in process, `rabbit://` over
//!   RabbitMQ. Never parses them.
//! - [`notification`]: oslo's notifier and notification listeners (Wasm endpoints too).
//! - [`rpc`]: oslo's RPC model: dispatcher, server (start/stop/wait), client (call/cast).
//! - [`host`]: wires it together: manifests → plugins → endpoints grouped by target → one
//!   RPC server each, plus the control endpoint; hot reload.
//! - [`watch`]: the only module that names notify: debounced file changes for hot reload and
//!   for `wasmrpc dev`'s rebuilds.
//! - [`builds`]: runs a manifest's `[build]` command (`wasmrpc build`, `wasmrpc dev`) and keeps
//!   the last builds' outcomes and output.
//! - [`metrics`]: the Prometheus metrics the call path and reloads count, and the exposition.
//! - [`http`]: with [`gateway`] and `console`, the only modules that name axum: the operator's
//!   listener (`/metrics`, `/healthz`, `/readyz`), and on it the HTTP gateway to oslo RPC
//!   (`/v1/call`, `/v1/cast`) and the console (`/`, its page compiled in, polling `/v1/status`).
//! - `locks`: the crate's one way to take a `std::sync` lock, poisoned or not.
//! - [`cli`]: the `wasmrpc` command line (`src/main.rs` only calls [`cli::main`]).

pub mod builds;
pub mod cli;
mod console;
pub mod gateway;
pub mod host;
pub mod http;
mod locks;
pub mod manifest;
pub mod metrics;
pub mod notification;
pub mod protocol;
pub mod rpc;
pub mod runtime;
pub mod transport;
pub mod watch;

pub use host::{Host, HostConfig};
pub use manifest::EndpointSpec;
pub use protocol::{Target, TransportUrl, Version};
pub use rpc::{RpcClient, RpcError, RpcServer};
pub use runtime::{CallError, LoadError, Plugin, Runtime, RuntimeConfig, TrapKind};
