//! The oslo.messaging 2.0 envelope: `{"oslo.version": "2.0", "oslo.message": "<inner JSON>"}`.
//!
//! The inner message is JSON encoded *as a string* inside the outer JSON (double encoding).
//! Messages without both keys are envelope-less "1.0" messages and are used as they are (the
//! `messaging` notification driver sends those).

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::json::{from_python_str, to_python_string};
use super::version::Version;

/// The envelope version wasmrpc writes.
pub const ENVELOPE_VERSION: &str = "2.0";

/// Why a message body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The body is not JSON.
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    /// The body (or the inner message) is JSON but not an object.
    #[error("the {0} is not a JSON object")]
    NotObject(&'static str),
    /// `oslo.version` names an envelope this side cannot read.
    #[error("unsupported envelope version {0:?} (expected \"2.0\")")]
    UnsupportedEnvelope(String),
    /// `oslo.message` is not a string holding JSON.
    #[error("`oslo.message` is not a JSON string: {0}")]
    BadInner(String),
    /// A required key is missing or has the wrong type.
    #[error("{0}")]
    BadField(String),
}

#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(rename = "oslo.version")]
    version: &'a str,
    #[serde(rename = "oslo.message")]
    message: &'a str,
}

/// Wraps an encoded inner message (Python-formatted JSON text) in a 2.0 envelope.
#[must_use]
pub fn wrap(inner: &str) -> Vec<u8> {
    to_python_string(&Envelope { version: ENVELOPE_VERSION, message: inner }).into_bytes()
}

/// Encodes `message` as Python would and wraps it.
pub fn wrap_message<T: Serialize + ?Sized>(message: &T) -> Vec<u8> {
    wrap(&to_python_string(message))
}

/// The envelope, read without building a map; the inner text is borrowed when it can be.
#[derive(Deserialize)]
struct EnvelopeIn<'a> {
    #[serde(rename = "oslo.version", borrow, default)]
    version: Option<Cow<'a, str>>,
    #[serde(rename = "oslo.message", borrow, default)]
    message: Option<Cow<'a, str>>,
}

/// Decodes a message body straight into `T` (the fast path for RPC requests and replies):
/// the envelope and the inner message are read by serde without intermediate JSON values.
/// Bodies the fast path cannot read (no envelope, `NaN` from Python, odd shapes) go through
/// [`unwrap`] and get the same answer, or the same error.
pub fn unwrap_into<T: DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    if let Ok(EnvelopeIn { version: Some(version), message: Some(message) }) =
        serde_json::from_slice::<EnvelopeIn<'_>>(body)
        && version == ENVELOPE_VERSION
        && let Ok(value) = serde_json::from_str::<T>(&message)
    {
        return Ok(value);
    }
    let map = unwrap(body)?;
    T::deserialize(Value::Object(map)).map_err(|e| DecodeError::BadField(e.to_string()))
}

/// Decodes a message body: an enveloped 2.0 message, or an envelope-less 1.0 one.
pub fn unwrap(body: &[u8]) -> Result<Map<String, Value>, DecodeError> {
    let text = std::str::from_utf8(body).map_err(|e| DecodeError::NotJson(e.to_string()))?;
    let outer = match from_python_str(text) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(DecodeError::NotObject("body")),
        Err(e) => return Err(DecodeError::NotJson(e.to_string())),
    };
    if !(outer.contains_key("oslo.version") && outer.contains_key("oslo.message")) {
        return Ok(outer);
    }
    let version = outer.get("oslo.version").and_then(Value::as_str).unwrap_or_default();
    let supported = version.parse::<Version>().is_ok_and(|v| Version::new(2, 0).can_serve(&v));
    if !supported {
        return Err(DecodeError::UnsupportedEnvelope(version.to_owned()));
    }
    let Some(Value::String(inner)) = outer.get("oslo.message") else {
        return Err(DecodeError::BadInner("not a string".into()));
    };
    match from_python_str(inner) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(DecodeError::NotObject("inner message")),
        Err(e) => Err(DecodeError::BadInner(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wraps_with_double_encoding_in_python_format() {
        let body = wrap_message(&json!({"a": "é", "b": [1, 2]}));
        assert_eq!(
            String::from_utf8(body.clone()).unwrap(),
            r#"{"oslo.version": "2.0", "oslo.message": "{\"a\": \"\\u00e9\", \"b\": [1, 2]}"}"#
        );
        assert_eq!(Value::Object(unwrap(&body).unwrap()), json!({"a": "é", "b": [1, 2]}));
    }

    #[test]
    fn messages_without_an_envelope_are_taken_as_they_are() {
        let m = unwrap(br#"{"event_type": "x", "oslo.version": "2.0"}"#).unwrap();
        assert_eq!(m["event_type"], json!("x"));
    }

    #[test]
    fn other_envelope_versions_and_garbage_are_refused() {
        for (body, expected) in [
            (&br#"{"oslo.version": "2", "oslo.message": "{}"}"#[..], DecodeError::UnsupportedEnvelope("2".into())),
            (br#"{"oslo.version": "3.0", "oslo.message": "{}"}"#, DecodeError::UnsupportedEnvelope("3.0".into())),
            (br#"[1]"#, DecodeError::NotObject("body")),
            (br#"{"oslo.version": "2.0", "oslo.message": "[1]"}"#, DecodeError::NotObject("inner message")),
        ] {
            assert_eq!(unwrap(body).unwrap_err(), expected);
        }
        assert!(matches!(unwrap(b"not json"), Err(DecodeError::NotJson(_))));
        assert!(matches!(
            unwrap(br#"{"oslo.version": "2.0", "oslo.message": {"a": 1}}"#),
            Err(DecodeError::BadInner(_))
        ));
    }
}
