//! How a method's error reaches the caller.

use std::fmt;

use serde_json::Value;
use wasmrpc_abi::GuestError;

/// An error sent back to the caller as an oslo.messaging remote failure: a Python caller sees
/// `RemoteError(exc_type=type_name, value=message)`.
///
/// It deliberately does not implement `std::error::Error`, so that every `E: Error` can convert
/// into it (the same trick as `anyhow::Error`).
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteError(Box<Inner>);

/// Boxed so `Result<T, RemoteError>` stays small on the happy path.
#[derive(Debug, Clone, PartialEq)]
struct Inner {
    type_name: String,
    message: String,
    module: Option<String>,
    details: Option<Value>,
}

impl RemoteError {
    /// An error with an explicit class name and message.
    #[must_use]
    pub fn new(type_name: impl Into<String>, message: impl Into<String>) -> RemoteError {
        RemoteError(Box::new(Inner {
            type_name: type_name.into(),
            message: message.into(),
            module: None,
            details: None,
        }))
    }

    /// Sets the Python module reported for the class. `builtins` makes a Python caller raise the
    /// builtin exception itself (`ValueError`, `KeyError`, …) instead of a `RemoteError`.
    #[must_use]
    pub fn with_module(mut self, module: impl Into<String>) -> RemoteError {
        self.0.module = Some(module.into());
        self
    }

    /// Attaches structured details; an object becomes the failure's `kwargs`.
    #[must_use]
    pub fn with_details(mut self, details: Value) -> RemoteError {
        self.0.details = Some(details);
        self
    }

    /// A Python `TypeError` (module `builtins`), what a Python endpoint raises for bad arguments.
    #[must_use]
    pub fn type_error(message: impl Into<String>) -> RemoteError {
        RemoteError::new("TypeError", message).with_module("builtins")
    }

    /// The class name.
    #[must_use]
    pub fn type_name(&self) -> &str {
        &self.0.type_name
    }

    /// The message.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.0.message
    }

    pub(crate) fn into_abi(self) -> GuestError {
        let Inner { type_name, message, module, details } = *self.0;
        GuestError { type_name, message, module, details, traceback: Vec::new(), args: None }
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0.type_name, self.0.message)
    }
}

/// Conversion of a method's `Err` value into a [`RemoteError`].
///
/// Every `std::error::Error` converts with its type's own name (`DivisionByZero`, `ParseIntError`)
/// and its `Display` text; [`RemoteError`] converts as itself. Implement `std::error::Error` on
/// your type, or return a [`RemoteError`] to choose the class name freely.
pub trait IntoRemoteError {
    /// Performs the conversion.
    fn into_remote_error(self) -> RemoteError;
}

impl IntoRemoteError for RemoteError {
    fn into_remote_error(self) -> RemoteError {
        self
    }
}

impl<E: std::error::Error> IntoRemoteError for E {
    fn into_remote_error(self) -> RemoteError {
        RemoteError::new(short_type_name::<E>(), self.to_string())
    }
}

/// `core::num::ParseIntError` → `ParseIntError`; generic arguments are dropped too.
fn short_type_name<T: ?Sized>() -> &'static str {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct DivisionByZero;
    impl fmt::Display for DivisionByZero {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("division by zero")
        }
    }
    impl std::error::Error for DivisionByZero {}

    #[test]
    fn std_errors_keep_their_short_type_name_and_message() {
        let e = DivisionByZero.into_remote_error();
        assert_eq!((e.type_name(), e.message()), ("DivisionByZero", "division by zero"));
        let e = "x".parse::<i32>().unwrap_err().into_remote_error();
        assert_eq!(e.type_name(), "ParseIntError");
    }
}
