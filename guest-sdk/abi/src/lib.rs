#![doc = include_str!("../README.md")]
//!
//! ## In short
//!
//! A guest is a core wasm module (wasm32-wasip1) that exports [`MEMORY`],
//! [`ABI_VERSION_EXPORT`], [`ALLOC_EXPORT`], [`DEALLOC_EXPORT`], [`DESCRIBE_EXPORT`] and
//! [`CALL_EXPORT`]. The host writes a JSON [`CallRequest`] into guest memory and receives a JSON
//! [`CallResponse`]; buffers travel as a `(ptr, len)` pair packed into one `i64`
//! (see [`pack`] and [`unpack`]).

#![warn(missing_docs)]

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The ABI version this crate describes. A host refuses a module reporting any other version.
pub const ABI_VERSION: u32 = 1;

/// `memory`: the guest's linear memory, through which all buffers travel.
pub const MEMORY: &str = "memory";
/// `wasmrpc_abi_version() -> i32`: the ABI version the guest was built for.
pub const ABI_VERSION_EXPORT: &str = "wasmrpc_abi_version";
/// `wasmrpc_alloc(len: i32) -> i32`: a writable buffer of `len` bytes (0 on failure).
pub const ALLOC_EXPORT: &str = "wasmrpc_alloc";
/// `wasmrpc_dealloc(ptr: i32, len: i32)`: releases a buffer returned by the guest.
pub const DEALLOC_EXPORT: &str = "wasmrpc_dealloc";
/// `wasmrpc_describe() -> i64`: packed `(ptr, len)` of a JSON [`Description`].
pub const DESCRIBE_EXPORT: &str = "wasmrpc_describe";
/// `wasmrpc_call(ptr: i32, len: i32) -> i64`: takes ownership of the request buffer, returns
/// the packed `(ptr, len)` of a JSON [`CallResponse`].
pub const CALL_EXPORT: &str = "wasmrpc_call";

/// Every export the host requires, with its signature as the docs spell it.
pub const REQUIRED_EXPORTS: &[(&str, &str)] = &[
    (MEMORY, "memory"),
    (ABI_VERSION_EXPORT, "func () -> i32"),
    (ALLOC_EXPORT, "func (i32) -> i32"),
    (DEALLOC_EXPORT, "func (i32, i32)"),
    (DESCRIBE_EXPORT, "func () -> i64"),
    (CALL_EXPORT, "func (i32, i32) -> i64"),
];

/// The import module holding the host functions.
pub const HOST_MODULE: &str = "wasmrpc";
/// `wasmrpc.log(level: i32, ptr: i32, len: i32)`: a UTF-8 line for the host's log.
pub const LOG_IMPORT: &str = "log";
/// `wasmrpc.panic(ptr: i32, len: i32)`: records a panic message just before the guest traps,
/// so the caller gets the message instead of a bare `unreachable`.
pub const PANIC_IMPORT: &str = "panic";
/// `wasmrpc.notify(ptr: i32, len: i32) -> i32`: emits a notification described by a JSON
/// [`NotifyRequest`]; returns one of the `NOTIFY_*` status codes.
pub const NOTIFY_IMPORT: &str = "notify";

/// `wasmrpc.rpc(ptr: i32, len: i32) -> i64`: sends the call or cast described by a JSON
/// [`RpcRequest`] and waits for its outcome, returning the packed `(ptr, len)` of a JSON
/// [`RpcResponse`] in a buffer the host obtained from the guest's `wasmrpc_alloc` (the guest
/// releases it with `wasmrpc_dealloc`). Only targets the manifest's `[outbound]` grants are
/// reached; the guest's deadline bounds the wait.
pub const RPC_IMPORT: &str = "rpc";
/// `wasmrpc.config(ptr: i32, len: i32) -> i64`: the value of the `[config]` key named by the
/// UTF-8 bytes at `(ptr, len)`, as the packed `(ptr, len)` of a UTF-8 buffer from the guest's
/// `wasmrpc_alloc`, or [`CONFIG_ABSENT`] when the manifest has no such key.
pub const CONFIG_IMPORT: &str = "config";
/// What `wasmrpc.config` returns for a key the manifest does not set.
pub const CONFIG_ABSENT: i64 = -1;

/// The notification was handed to the host's notifier.
pub const NOTIFY_SENT: i32 = 0;
/// The manifest does not allow this event type (or any notification at all); nothing was sent.
pub const NOTIFY_DENIED: i32 = 1;
/// The request was not valid JSON of the [`NotifyRequest`] shape.
pub const NOTIFY_INVALID: i32 = 2;
/// The endpoint is over its notification rate limit (or the host's queue is full); nothing was
/// sent. The host counts and logs drops.
pub const NOTIFY_DROPPED: i32 = 3;

/// Packs a guest buffer into the `i64` the exports return: pointer high, length low.
#[must_use]
pub fn pack(ptr: u32, len: u32) -> u64 {
    (u64::from(ptr) << 32) | u64::from(len)
}

/// Splits a packed buffer into `(ptr, len)`.
#[must_use]
pub fn unpack(packed: u64) -> (u32, u32) {
    ((packed >> 32) as u32, packed as u32)
}

/// Log levels accepted by the `log` import, in increasing severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// 0
    Trace = 0,
    /// 1
    Debug = 1,
    /// 2
    Info = 2,
    /// 3
    Warn = 3,
    /// 4
    Error = 4,
}

impl LogLevel {
    /// The level for a raw `i32` from the guest; out-of-range values are treated as `Info`
    /// rather than dropped, so a sloppy guest still gets its line logged.
    #[must_use]
    pub fn from_raw(raw: i32) -> LogLevel {
        match raw {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            _ => LogLevel::Info,
        }
    }
}

/// What the host writes into the guest for one call.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CallRequest {
    /// The method name, as the caller sent it.
    pub method: String,
    /// Keyword arguments (oslo.messaging has no positional arguments).
    #[serde(default)]
    pub args: Map<String, Value>,
    /// The request context, as oslo.messaging hands it to a Python endpoint.
    #[serde(default)]
    pub context: Map<String, Value>,
}

/// What the guest returns for one call: exactly one of `ok` or `error`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum CallResponse {
    /// The method's return value.
    Ok(Value),
    /// The method failed; this becomes an oslo remote failure.
    Error(GuestError),
}

/// A failure the guest reports on purpose (as opposed to a trap).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GuestError {
    /// The exception class name the caller sees, e.g. `DivisionByZero`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Human-readable message.
    pub message: String,
    /// The Python module of the class. Absent means the host picks one for the endpoint;
    /// `builtins` makes a Python caller re-raise the builtin exception itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// Structured details; an object becomes the failure's `kwargs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    /// The guest's own formatted traceback (Python guests send theirs); empty: the host writes
    /// one naming the endpoint and the method.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traceback: Vec<String>,
    /// The exception's `args`; absent: `[message]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<Value>>,
}

/// What `wasmrpc_describe` returns: the endpoint's shape, checked against its manifest.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Description {
    /// Must equal [`ABI_VERSION`].
    pub abi_version: u32,
    /// The endpoint's own name (informational, e.g. the Rust type name).
    #[serde(default)]
    pub endpoint: String,
    /// The RPC API version the code implements, if it declares one (`"X.Y"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The namespace the code implements, if it declares one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The callable methods.
    #[serde(default)]
    pub methods: Vec<MethodDescription>,
}

/// One callable method.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MethodDescription {
    /// The name callers use.
    pub name: String,
    /// Keyword argument names, in declaration order.
    #[serde(default)]
    pub params: Vec<String>,
}

/// What a guest passes to the `notify` import.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NotifyRequest {
    /// `audit`, `debug`, `info`, `warn`, `error`, `critical` or `sample`.
    pub priority: String,
    /// e.g. `calc.added`.
    pub event_type: String,
    /// Any JSON value.
    pub payload: Value,
    /// The context of the call being handled (sent as `_context_*` keys).
    #[serde(default)]
    pub context: Map<String, Value>,
}

/// What a guest passes to the `rpc` import: one outbound call or cast.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RpcRequest {
    /// A cast (fire and forget) instead of a call.
    #[serde(default)]
    pub cast: bool,
    /// Where it goes.
    pub target: RpcTarget,
    /// The remote method.
    pub method: String,
    /// Keyword arguments.
    #[serde(default)]
    pub args: Map<String, Value>,
    /// The context of the call being handled; the host builds the outbound context from it.
    #[serde(default)]
    pub context: Map<String, Value>,
    /// Seconds to wait for a call's reply (default 60, oslo's `rpc_response_timeout`); the host
    /// caps it at what is left of the guest's own deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<f64>,
}

/// oslo's `Target` for an outbound call or cast.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RpcTarget {
    /// The topic, e.g. `conductor`.
    pub topic: String,
    /// A specific server, e.g. `compute-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// To every server of the topic (casts only).
    #[serde(default)]
    pub fanout: bool,
    /// The namespace of the remote endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The API version asked for (`"X.Y"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The exchange (default: the host's control exchange).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<String>,
}

/// The outcome of an outbound call or cast: exactly one of `ok` or `error`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum RpcResponse {
    /// The call's result (`null` for a cast).
    Ok(Value),
    /// Why there is no result.
    Error(RpcFailure),
}

/// Why an outbound call or cast produced no result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RpcFailure {
    /// Which kind of failure.
    pub kind: RpcFailureKind,
    /// For [`RpcFailureKind::Remote`] and [`RpcFailureKind::NoSuchMethod`], the remote exception
    /// class (`exc_type`); otherwise the kind's own name.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The Python module of the remote class, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// Human-readable message.
    pub message: String,
    /// The remote exception's `kwargs`, when it has any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kwargs: Option<Value>,
}

/// The kinds of [`RpcFailure`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum RpcFailureKind {
    /// The manifest's `[outbound]` does not grant this target; nothing was sent.
    NotAllowed,
    /// No reply in time (oslo's `MessagingTimeout`), or no time left before the guest's deadline.
    MessagingTimeout,
    /// The remote endpoint has no such method (oslo's `NoSuchMethod`).
    NoSuchMethod,
    /// The remote method raised an exception (oslo's `RemoteError`).
    RemoteError,
    /// The request itself is unusable (a bad version, a fanout call, unreadable JSON).
    InvalidRequest,
    /// The host could not send it (no outbound transport, the broker is unreachable).
    Unavailable,
}

impl RpcFailureKind {
    /// The name of the kind, as in [`RpcFailure::type_name`] for non-remote failures.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            RpcFailureKind::NotAllowed => "NotAllowed",
            RpcFailureKind::MessagingTimeout => "MessagingTimeout",
            RpcFailureKind::NoSuchMethod => "NoSuchMethod",
            RpcFailureKind::RemoteError => "RemoteError",
            RpcFailureKind::InvalidRequest => "InvalidRequest",
            RpcFailureKind::Unavailable => "Unavailable",
        }
    }
}

impl RpcFailure {
    /// A failure of `kind` named after the kind itself.
    #[must_use]
    pub fn new(kind: RpcFailureKind, message: impl Into<String>) -> RpcFailure {
        RpcFailure { kind, type_name: kind.name().to_owned(), module: None, message: message.into(), kwargs: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips_the_full_range() {
        for (p, l) in [(0, 0), (1, 2), (u32::MAX, u32::MAX), (0x1234_5678, 9)] {
            assert_eq!(unpack(pack(p, l)), (p, l));
        }
    }

    #[test]
    fn call_response_is_externally_tagged_in_lowercase() {
        let ok = serde_json::to_string(&CallResponse::Ok(Value::from(5))).unwrap();
        assert_eq!(ok, r#"{"ok":5}"#);
        let err: CallResponse = serde_json::from_str(r#"{"error":{"type":"E","message":"m"}}"#).unwrap();
        assert_eq!(
            err,
            CallResponse::Error(GuestError {
                type_name: "E".into(),
                message: "m".into(),
                module: None,
                details: None,
                traceback: Vec::new(),
                args: None,
            })
        );
    }

    #[test]
    fn rpc_failures_name_their_kind() {
        let f = RpcFailure::new(RpcFailureKind::NotAllowed, "no");
        let text = serde_json::to_string(&RpcResponse::Error(f.clone())).unwrap();
        assert_eq!(text, r#"{"error":{"kind":"NotAllowed","type":"NotAllowed","message":"no"}}"#);
        assert_eq!(serde_json::from_str::<RpcResponse>(&text).unwrap(), RpcResponse::Error(f));
    }
}
