//! What an RPC client call can end in, besides a result.

use std::fmt;

use serde_json::{Map, Value};

use crate::protocol::{RemoteFailure, Version};
use crate::transport::TransportError;

/// The remote side raised an exception (oslo's `RemoteError`).
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteError {
    /// The exception class name (`exc_type`).
    pub exc_type: String,
    /// The module of the class.
    pub module: String,
    /// The message (`value`).
    pub value: String,
    /// The remote traceback.
    pub traceback: Vec<String>,
    /// `kwargs` of oslo-style exceptions.
    pub kwargs: Map<String, Value>,
}

impl From<RemoteFailure> for RemoteError {
    fn from(f: RemoteFailure) -> RemoteError {
        RemoteError { exc_type: f.class, module: f.module, value: f.message, traceback: f.tb, kwargs: f.kwargs }
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.exc_type, self.value)
    }
}

/// Why a call or cast did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The server answered with an exception.
    #[error("remote error: {0}")]
    Remote(RemoteError),
    /// No final reply in time (oslo's `MessagingTimeout`, worded as oslo.messaging 18.3.1's
    /// `ReplyWaiters.get` words it for Python callers).
    #[error("Timed out waiting for a reply to message ID {msg_id}")]
    Timeout {
        /// The call's `_msg_id`.
        msg_id: String,
    },
    /// The target cannot be used this way (oslo's `InvalidTarget`), e.g. a fanout call.
    #[error("invalid target: {0}")]
    InvalidTarget(String),
    /// The requested version is above the client's cap (oslo's `RPCVersionCapError`).
    #[error(
        "Requested message version, {version} is incompatible.  It needs to be equal in major version and less than or equal in minor version as the specified version cap {cap}."
    )]
    VersionCap {
        /// The version asked for.
        version: Version,
        /// The cap.
        cap: Version,
    },
    /// The transport failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

impl RpcError {
    /// Whether this is a timeout (the CLI exits with its own status for it).
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(self, RpcError::Timeout { .. })
    }
}
