//! oslo.messaging's RPC model over any [`Transport`](crate::transport::Transport).
//!
//! - [`Dispatcher`]: namespace, version and method → endpoint, with oslo's exact errors.
//! - [`Endpoint`]: the trait the dispatcher calls (Wasm plugins and the control endpoint
//!   implement it), with the [`CallContext`] it sees; [`Serializer`]: oslo's four hooks.
//! - [`RpcServer`]: start / stop / wait / reset, executor bound, caller deadlines, call-monitor
//!   heartbeats, duplicate suppression; replies to a missing reply queue are retried, within
//!   bounds, in `reply_retry.rs`.
//! - [`PingEndpoint`]: oslo's `oslo_rpc_server_ping`, added to every server when enabled.
//! - [`RpcClient`]: call / cast / prepare / can_send_version; one reply queue per transport.

mod client;
mod context;
mod dispatcher;
mod endpoint;
mod error;
mod ping;
mod replies;
mod reply_retry;
mod serializer;
mod server;

pub use client::{DEFAULT_TIMEOUT, Prepare, RpcClient};
pub use context::{CLIENT_TIMEOUT, CallContext};
pub use dispatcher::{DISPATCHER_MODULE, Dispatcher, no_such_method, unsupported_version};
pub use endpoint::{CallTiming, Endpoint, EndpointTarget};
pub use error::{RemoteError, RpcError};
pub use ping::{PING_METHOD, PingEndpoint};
pub use serializer::{NoOpSerializer, Serializer};
pub use server::{DEFAULT_EXECUTOR_SIZE, DrainTimeout, RpcServer, ServerOptions};
