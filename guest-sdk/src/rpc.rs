//! Call and cast to other oslo.messaging services (Python services, other wasmrpc endpoints)
//! through the host, over its own transport and in oslo's wire format.
//!
//! Only the topics the endpoint's manifest grants can be reached:
//!
//! ```toml
//! [outbound]
//! call = ["calculator", "conductor"]   # topics; `*` matches any run of characters
//! cast = ["compute.*"]
//! ```
//!
//! A call waits for its reply at most its timeout (60 s by default, as oslo's
//! `rpc_response_timeout`), and never longer than what is left of the call being handled. The
//! request carries the handled call's context: the callee sees the same `request_id` and
//! `global_request_id`. While it waits, the guest holds no host thread.
//!
//! ```no_run
//! use serde_json::json;
//! use wasmrpc_guest::rpc::{self, Target};
//! use wasmrpc_guest::{Context, RemoteError, endpoint};
//!
//! #[derive(Default)]
//! pub struct Gateway;
//!
//! #[endpoint]
//! impl Gateway {
//!     /// Adds through the calculator endpoint, then tells every compute host.
//!     pub fn add(&self, ctx: &Context, a: f64, b: f64) -> Result<f64, RemoteError> {
//!         let sum: f64 = rpc::call(ctx, &Target::topic("calculator"), "add", json!({"a": a, "b": b}))?;
//!         rpc::cast(ctx, &Target::topic("compute").fanout(), "added", json!({"sum": sum}))?;
//!         Ok(sum)
//!     }
//! }
//! ```

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use wasmrpc_abi::{RpcFailure, RpcRequest, RpcResponse, RpcTarget};

pub use wasmrpc_abi::RpcFailureKind as ErrorKind;

use crate::{Context, RemoteError, host};

/// Where a call or cast goes, as oslo's `Target` plus the client's `timeout`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Target {
    target: RpcTarget,
    timeout: Option<Duration>,
}

impl Target {
    /// The servers of `topic` (one of them answers a call).
    #[must_use]
    pub fn topic(topic: impl Into<String>) -> Target {
        Target { target: RpcTarget { topic: topic.into(), ..RpcTarget::default() }, timeout: None }
    }

    /// One server of the topic.
    #[must_use]
    pub fn server(mut self, server: impl Into<String>) -> Target {
        self.target.server = Some(server.into());
        self
    }

    /// Every server of the topic (casts only; a fanout call fails as `InvalidRequest`).
    #[must_use]
    pub fn fanout(mut self) -> Target {
        self.target.fanout = true;
        self
    }

    /// The remote endpoint's namespace.
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Target {
        self.target.namespace = Some(namespace.into());
        self
    }

    /// The API version asked for, `"X.Y"`.
    #[must_use]
    pub fn version(mut self, version: impl Into<String>) -> Target {
        self.target.version = Some(version.into());
        self
    }

    /// Another exchange than the host's control exchange.
    #[must_use]
    pub fn exchange(mut self, exchange: impl Into<String>) -> Target {
        self.target.exchange = Some(exchange.into());
        self
    }

    /// How long a call waits for its reply (the host caps it at the handled call's deadline).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Target {
        self.timeout = Some(timeout);
        self
    }
}

/// Why a call or cast produced no result.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    /// Which kind of failure.
    pub kind: ErrorKind,
    /// The remote exception class for [`ErrorKind::RemoteError`] and
    /// [`ErrorKind::NoSuchMethod`]; otherwise the kind's name.
    pub type_name: String,
    /// The Python module of the remote class.
    pub module: Option<String>,
    /// The message.
    pub message: String,
    /// The remote exception's `kwargs`.
    pub kwargs: Option<Value>,
}

impl Error {
    fn local(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error::from(RpcFailure::new(kind, message))
    }
}

impl From<RpcFailure> for Error {
    fn from(f: RpcFailure) -> Error {
        Error { kind: f.kind, type_name: f.type_name, module: f.module, message: f.message, kwargs: f.kwargs }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.type_name, self.message)
    }
}

impl std::error::Error for Error {}

/// A remote exception passes through with its own class (and module); the host's own failures
/// keep their kind's name (`NotAllowed`, `MessagingTimeout`, …).
impl From<Error> for RemoteError {
    fn from(e: Error) -> RemoteError {
        let mut r = RemoteError::new(e.type_name, e.message);
        if let Some(module) = e.module {
            r = r.with_module(module);
        }
        if let Some(kwargs) = e.kwargs {
            r = r.with_details(kwargs);
        }
        r
    }
}

/// Calls `method` on `target` with keyword arguments `args` (anything that encodes as a JSON
/// object) and decodes its result.
pub fn call<T: DeserializeOwned>(
    ctx: &Context,
    target: &Target,
    method: &str,
    args: impl Serialize,
) -> Result<T, Error> {
    let value = send(false, ctx, target, method, args)?;
    serde_json::from_value(value)
        .map_err(|e| Error::local(ErrorKind::InvalidRequest, format!("the result of {method} does not decode: {e}")))
}

/// Casts `method` to `target`: returns once the host has sent it.
pub fn cast(ctx: &Context, target: &Target, method: &str, args: impl Serialize) -> Result<(), Error> {
    send(true, ctx, target, method, args).map(drop)
}

fn send(cast: bool, ctx: &Context, target: &Target, method: &str, args: impl Serialize) -> Result<Value, Error> {
    let args = match serde_json::to_value(args) {
        Ok(Value::Object(args)) => args,
        Ok(Value::Null) => serde_json::Map::new(),
        Ok(other) => {
            return Err(Error::local(
                ErrorKind::InvalidRequest,
                format!("arguments are keyword arguments: a JSON object, not {other}"),
            ));
        }
        Err(e) => return Err(Error::local(ErrorKind::InvalidRequest, format!("arguments do not encode: {e}"))),
    };
    let request = RpcRequest {
        cast,
        target: target.target.clone(),
        method: method.to_owned(),
        args,
        context: ctx.as_map().clone(),
        timeout: target.timeout.map(|t| t.as_secs_f64()),
    };
    let bytes = serde_json::to_vec(&request)
        .map_err(|e| Error::local(ErrorKind::InvalidRequest, format!("the request does not encode: {e}")))?;
    match serde_json::from_slice::<RpcResponse>(&host::rpc(&bytes)) {
        Ok(RpcResponse::Ok(value)) => Ok(value),
        Ok(RpcResponse::Error(failure)) => Err(failure.into()),
        Err(e) => Err(Error::local(ErrorKind::Unavailable, format!("the host's answer does not decode: {e}"))),
    }
}
