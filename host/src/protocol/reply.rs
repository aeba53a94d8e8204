//! RPC replies: `{"result", "failure", "ending", "_msg_id", "_unique_id"}` in an envelope.
//!
//! `failure` is a JSON *string* (the serialized remote exception) or `null`, and must be present:
//! Python callers index it. Call-monitor heartbeats are replies with `ending: false` and nulls.

use serde::Serialize;
use serde_json::Value;

use super::envelope::{DecodeError, unwrap_into, wrap_message};
use super::failure::RemoteFailure;

/// One reply message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reply {
    /// The return value (null in failures and heartbeats).
    pub result: Value,
    /// The remote exception, JSON-encoded as a string.
    pub failure: Option<String>,
    /// Whether this is the last message for the call.
    pub ending: bool,
    /// The `_msg_id` of the request.
    #[serde(rename = "_msg_id")]
    pub msg_id: String,
    /// A fresh id per reply.
    #[serde(rename = "_unique_id")]
    pub unique_id: String,
}

impl Reply {
    /// A successful final reply.
    #[must_use]
    pub fn result(msg_id: &str, result: Value) -> Reply {
        Reply { result, failure: None, ending: true, msg_id: msg_id.to_owned(), unique_id: new_id() }
    }

    /// A failed final reply.
    #[must_use]
    pub fn failure(msg_id: &str, failure: &RemoteFailure) -> Reply {
        Reply {
            result: Value::Null,
            failure: Some(failure.to_json()),
            ending: true,
            msg_id: msg_id.to_owned(),
            unique_id: new_id(),
        }
    }

    /// A call-monitor heartbeat: "still working on it".
    #[must_use]
    pub fn heartbeat(msg_id: &str) -> Reply {
        Reply { result: Value::Null, failure: None, ending: false, msg_id: msg_id.to_owned(), unique_id: new_id() }
    }

    /// Whether this is a heartbeat rather than an answer.
    #[must_use]
    pub fn is_heartbeat(&self) -> bool {
        !self.ending && self.result.is_null() && self.failure.is_none()
    }

    /// The enveloped body.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        wrap_message(self)
    }

    /// Decodes a reply body. Tolerates what older or sloppier peers send: a missing `failure`,
    /// a failure object instead of a string, a missing `ending` (legacy replies without it are
    /// final).
    pub fn decode(body: &[u8]) -> Result<Reply, DecodeError> {
        let wire: WireReply = unwrap_into(body)?;
        let msg_id = match wire.msg_id {
            Some(Value::String(s)) => s,
            _ => return Err(DecodeError::BadField("the reply has no `_msg_id`".into())),
        };
        let failure = match wire.failure {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => Some(other.to_string()),
        };
        let unique_id = match wire.unique_id {
            Some(Value::String(s)) => s,
            _ => String::new(),
        };
        Ok(Reply { result: wire.result, failure, ending: wire.ending.unwrap_or(true), msg_id, unique_id })
    }
}

/// A reply as it may arrive: every key optional, checked after reading.
#[derive(serde::Deserialize)]
struct WireReply {
    #[serde(default)]
    result: Value,
    #[serde(default)]
    failure: Option<Value>,
    #[serde(default)]
    ending: Option<bool>,
    #[serde(rename = "_msg_id", default)]
    msg_id: Option<Value>,
    #[serde(rename = "_unique_id", default)]
    unique_id: Option<Value>,
}

/// A new `uuid4().hex`: 32 lowercase hex digits, as oslo's ids.
#[must_use]
pub fn new_id() -> String {
    // Encoded into a buffer rather than through `Display` (three per call; the formatting
    // machinery cost more than the random bytes).
    let mut buf = [0u8; uuid::fmt::Simple::LENGTH];
    uuid::Uuid::new_v4().simple().encode_lower(&mut buf).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_uuid4_hex_as_python_writes_them() {
        let (a, b) = (new_id(), new_id());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)), "{a}");
        assert_eq!(&a[12..13], "4", "version 4: {a}");
        assert_ne!(a, b);
    }

    /// Captured from oslo.messaging 18.3.1 (../shared/oslo-protocol.md §5.1).
    const SUCCESS: &str = r#"{"oslo.version": "2.0", "oslo.message": "{\"result\": {\"ctxt\": {\"user\": \"u1\", \"request_id\": \"req-1\", \"client_timeout\": null}, \"x\": [1, \"a\"]}, \"failure\": null, \"ending\": true, \"_msg_id\": \"f229ea8ae6714188a7c1c238494804d0\", \"_unique_id\": \"32412379ad464dfc9cc0e0ade6fe2060\"}"}"#;

    #[test]
    fn the_captured_reply_decodes_and_re_encodes_byte_for_byte() {
        let reply = Reply::decode(SUCCESS.as_bytes()).unwrap();
        assert!(reply.ending && reply.failure.is_none());
        assert_eq!(reply.result["x"], json!([1, "a"]));
        assert_eq!(String::from_utf8(reply.encode()).unwrap(), SUCCESS);
    }

    #[test]
    fn heartbeats_and_failures_have_every_key() {
        let hb = Reply::heartbeat("m1");
        assert!(hb.is_heartbeat());
        let text = String::from_utf8(hb.encode()).unwrap();
        assert!(
            text.contains(r#"\"result\": null, \"failure\": null, \"ending\": false, \"_msg_id\": \"m1\""#),
            "{text}"
        );
        let failure = RemoteFailure::new(
            "NoSuchMethod",
            "oslo_messaging.rpc.dispatcher",
            "Endpoint does not support RPC method x",
        );
        let reply = Reply::decode(&Reply::failure("m2", &failure).encode()).unwrap();
        assert_eq!(RemoteFailure::from_json(reply.failure.as_deref().unwrap()).unwrap(), failure);
    }

    #[test]
    fn lenient_with_legacy_replies() {
        // An oslo 1.0-style body: no envelope, no `failure`, no `ending`.
        let r = Reply::decode(br#"{"_msg_id": "m", "result": 5}"#).unwrap();
        assert!(r.ending && r.failure.is_none() && r.result == json!(5));
    }
}
