//! The oslo.messaging 2.0 envelope: `{"oslo.version": "2.0", "oslo.message": "<inner JSON>"}`.
//!
//! The inner message is JSON encoded *as a string* inside the outer JSON (double encoding).
//! Messages without both keys are envelope-less "1.0" messages and are used as they are (the
//! `messaging` notification driver sends those).

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::json::{QuotedPythonFormatter, from_python_str, write_with};
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

/// How every 2.0 envelope starts, as Python's `json.dumps` writes it (keys in insertion order).
const PREFIX: &[u8] = br#"{"oslo.version": "2.0", "oslo.message": ""#;
/// How it ends.
const SUFFIX: &[u8] = br#""}"#;

/// Encodes `message` as Python would and wraps it, in one pass: the inner message is written
/// already escaped for the outer string (see [`QuotedPythonFormatter`]).
pub fn wrap_message<T: Serialize + ?Sized>(message: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(384);
    out.extend_from_slice(PREFIX);
    write_with(&mut out, QuotedPythonFormatter, message);
    out.extend_from_slice(SUFFIX);
    out
}

/// The inner message of a body written exactly as Python and wasmrpc write it ([`PREFIX`], the
/// escaped text, [`SUFFIX`]; only `\"` and `\\` escapes; no control characters), unescaped
/// in one pass. `None` for anything else, which takes the general path and gets the same
/// answer or the same error.
fn inner_text(body: &[u8]) -> Option<String> {
    let escaped = body.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    // Unescaping only shortens the text: write into a buffer of the input's size, then trim.
    let mut out = vec![0u8; escaped.len()];
    let (mut i, mut o) = (0, 0);
    while i < escaped.len() {
        let mut b = escaped[i];
        if b == b'\\' {
            i += 1;
            b = *escaped.get(i)?;
            if b != b'"' && b != b'\\' {
                return None; // other escapes are left to serde
            }
        } else if b == b'"' || b < 0x20 {
            // A bare quote would end the string early; raw control characters are not JSON.
            return None;
        }
        out[o] = b;
        o += 1;
        i += 1;
    }
    out.truncate(o);
    // Validated once here, so the parser can skip checking each string it reads.
    String::from_utf8(out).ok()
}

/// Decodes a message body straight into `T` (the fast path for RPC requests and replies): a
/// body in the form Python writes is unescaped in one pass and its inner message read by serde
/// without intermediate JSON values. Other bodies (other JSON layouts, no envelope, `NaN` from
/// Python, odd shapes) go through [`unwrap`] and get the same answer, or the same error.
pub fn unwrap_into<T: DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    if let Some(inner) = inner_text(body)
        && let Ok(value) = serde_json::from_str::<T>(&inner)
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

    /// The envelope as `json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(m)})`
    /// builds it: two separate encodings (the oracle for the one-pass writer).
    fn two_pass(message: &Value) -> Vec<u8> {
        #[derive(Serialize)]
        struct Envelope<'a> {
            #[serde(rename = "oslo.version")]
            version: &'a str,
            #[serde(rename = "oslo.message")]
            message: &'a str,
        }
        let inner = super::super::json::to_python_string(message);
        super::super::json::to_python_string(&Envelope { version: "2.0", message: &inner }).into_bytes()
    }

    #[test]
    fn one_pass_encoding_matches_encoding_twice() {
        let awkward = json!({
            "quote\"key": "a \"quoted\" \\ back\\slash / slash",
            "controls": "\n\t\r\u{8}\u{c}\u{1}\u{1f}\u{7f}",
            "unicode": ["é", "☃", "𝄞", "\u{2028}"],
            "numbers": [0, -1, 1.5, 1e-7, 1e16, -0.0, 12345678901234567890u64],
            "nested": {"empty": {}, "list": [], "null": null, "bools": [true, false]},
            "escaped in keys \\": "\\\\"
        });
        for message in [awkward, json!({}), json!({"method": "add", "args": {"a": 1}})] {
            let body = wrap_message(&message);
            assert_eq!(String::from_utf8(body.clone()).unwrap(), String::from_utf8(two_pass(&message)).unwrap());
            assert_eq!(unwrap_into::<Value>(&body).unwrap(), message, "the fast decoder reads it back");
            assert_eq!(Value::Object(unwrap(&body).unwrap()), message, "so does the general one");
        }
    }

    #[test]
    fn bodies_off_the_fast_path_decode_the_same() {
        let cases: [&[u8]; 6] = [
            // Escapes Python does not write for the envelope, but JSON allows.
            br#"{"oslo.version": "2.0", "oslo.message": "{\"a\": \"\/x\u0041\"}"}"#,
            // Compact separators, other key order, trailing whitespace.
            br#"{"oslo.version":"2.0","oslo.message":"{\"a\":1}"}"#,
            br#"{"oslo.message": "{\"a\": 1}", "oslo.version": "2.0"}"#,
            b"{\"oslo.version\": \"2.0\", \"oslo.message\": \"{\\\"a\\\": 1}\"}\n",
            // Raw UTF-8 in the outer string.
            "{\"oslo.version\": \"2.0\", \"oslo.message\": \"{\\\"a\\\": \\\"é\\\"}\"}".as_bytes(),
            // NaN from Python.
            br#"{"oslo.version": "2.0", "oslo.message": "{\"a\": NaN}"}"#,
        ];
        for body in cases {
            let general = Value::Object(unwrap(body).unwrap());
            assert_eq!(unwrap_into::<Value>(body).unwrap(), general, "{}", String::from_utf8_lossy(body));
        }
        // What is not JSON stays refused: a raw control character in the string, a bare quote.
        for body in [
            &b"{\"oslo.version\": \"2.0\", \"oslo.message\": \"{\\\"a\\\": \\\"x\ny\\\"}\"}"[..],
            br#"{"oslo.version": "2.0", "oslo.message": "{"a": 1}"}"#,
        ] {
            assert!(unwrap(body).is_err());
            assert!(unwrap_into::<Value>(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
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
