//! Remote failures: the exception a server reports, JSON-encoded as a string inside a reply.
//!
//! `{"class", "module", "message", "tb", "args", "kwargs"}` as oslo's
//! `serialize_remote_exception` writes it. A Python caller re-raises builtins and whitelisted
//! modules and turns everything else into `RemoteError(exc_type=class, value=message, traceback=tb)`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::json::{NotAnObject, object_from_python_str, to_python_string};

/// A remote exception.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteFailure {
    /// The exception class name.
    pub class: String,
    /// The Python module of the class (`builtins` for builtin exceptions).
    pub module: String,
    /// `str(exception)`.
    pub message: String,
    /// The formatted traceback, one string per line group.
    #[serde(default)]
    pub tb: Vec<String>,
    /// `exception.args`.
    #[serde(default)]
    pub args: Vec<Value>,
    /// `exception.kwargs` (oslo/nova-style exceptions), else `{}`.
    #[serde(default)]
    pub kwargs: Map<String, Value>,
}

impl RemoteFailure {
    /// A failure with `args = [message]`, no kwargs, and a traceback naming the class.
    #[must_use]
    pub fn new(class: &str, module: &str, message: &str) -> RemoteFailure {
        RemoteFailure {
            class: class.to_owned(),
            module: module.to_owned(),
            message: message.to_owned(),
            tb: traceback(class, module, message, None),
            args: vec![Value::String(message.to_owned())],
            kwargs: Map::new(),
        }
    }

    /// Replaces the traceback with one whose frame names where the failure happened.
    #[must_use]
    pub fn raised_in(mut self, place: &str) -> RemoteFailure {
        self.tb = traceback(&self.class, &self.module, &self.message, Some(place));
        self
    }

    /// The JSON string that goes into a reply's `failure`.
    #[must_use]
    pub fn to_json(&self) -> String {
        to_python_string(self)
    }

    /// Reads a reply's `failure` string.
    pub fn from_json(text: &str) -> Result<RemoteFailure, InvalidFailure> {
        let map = object_from_python_str(text)?;
        serde_json::from_value(Value::Object(map)).map_err(InvalidFailure::Shape)
    }
}

/// Why a reply's `failure` string could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InvalidFailure {
    /// It is not a JSON object.
    #[error(transparent)]
    NotAnObject(#[from] NotAnObject),
    /// An object, without the keys and types of a serialized exception.
    #[error(transparent)]
    Shape(serde_json::Error),
}

/// A traceback in Python's shape, so tools that print `tb` show something sensible.
fn traceback(class: &str, module: &str, message: &str, place: Option<&str>) -> Vec<String> {
    // Python's traceback module leaves out `builtins` and `__main__`.
    let qualified =
        if module == "builtins" || module == "__main__" { class.to_owned() } else { format!("{module}.{class}") };
    let mut tb = vec!["Traceback (most recent call last):\n".to_owned()];
    if let Some(place) = place {
        tb.push(format!("  File \"{place}\", in wasmrpc\n"));
    }
    tb.push(format!("{qualified}: {message}\n"));
    tb
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape from ../shared/oslo-protocol.md §6.1.
    const CAPTURED: &str = r#"{"class": "MyError", "module": "mymod", "message": "myerror {'code': 42, 'name': 'x'}", "tb": ["Traceback (most recent call last):\n", "  File ...\n", "mymod.MyError: myerror ...\n"], "args": ["myerror {'code': 42, 'name': 'x'}"], "kwargs": {"code": 42, "name": "x"}}"#;

    #[test]
    fn the_documented_failure_decodes_and_re_encodes_byte_for_byte() {
        let f = RemoteFailure::from_json(CAPTURED).unwrap();
        assert_eq!((f.class.as_str(), f.module.as_str()), ("MyError", "mymod"));
        assert_eq!(f.kwargs["code"], 42);
        assert_eq!(f.to_json(), CAPTURED);
    }

    #[test]
    fn unreadable_failures_say_why() {
        let err = RemoteFailure::from_json(r#""just text""#).unwrap_err();
        assert!(matches!(err, InvalidFailure::NotAnObject(NotAnObject::OtherValue { found: "a string" })), "{err:?}");
        assert_eq!(err.to_string(), "expected a JSON object, found a string");
        assert!(matches!(RemoteFailure::from_json("{"), Err(InvalidFailure::NotAnObject(NotAnObject::Syntax(_)))));
        let err = RemoteFailure::from_json(r#"{"class": "E"}"#).unwrap_err();
        assert!(matches!(err, InvalidFailure::Shape(_)) && err.to_string().contains("module"), "{err}");
    }

    #[test]
    fn new_failures_look_like_python_ones() {
        let f = RemoteFailure::new(
            "NoSuchMethod",
            "oslo_messaging.rpc.dispatcher",
            "Endpoint does not support RPC method x",
        );
        assert_eq!(f.args, vec![Value::String("Endpoint does not support RPC method x".into())]);
        assert_eq!(
            f.tb.last().unwrap(),
            "oslo_messaging.rpc.dispatcher.NoSuchMethod: Endpoint does not support RPC method x\n"
        );
        assert_eq!(RemoteFailure::new("TypeError", "builtins", "bad").tb.last().unwrap(), "TypeError: bad\n");
    }
}
