//! What a message carries: its bytes, or, while it stays inside this process, the decoded RPC
//! message itself.
//!
//! RabbitMQ only ever sees bytes: a decoded body is encoded (byte for byte what Python writes)
//! when it leaves the process. `memory://` hands a decoded request or reply from client to
//! server as it is, as oslo's fake driver hands over its dicts: encoding doubly nested JSON
//! and parsing it back would be the largest part of an in-process call, and decoding an
//! encoded message gives back the same message (the test below checks it).

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::protocol::{Reply, Request};

/// A message body.
#[derive(Clone)]
pub enum Body {
    /// Encoded, as on the wire (`application/json`, UTF-8).
    Wire(Bytes),
    /// An RPC request not encoded (yet).
    Request(Arc<Request>),
    /// An RPC reply not encoded (yet).
    Reply(Arc<Reply>),
}

impl Body {
    /// A request, to be encoded only if it leaves the process.
    #[must_use]
    pub fn request(request: Request) -> Body {
        Body::Request(Arc::new(request))
    }

    /// A reply, to be encoded only if it leaves the process.
    #[must_use]
    pub fn reply(reply: Reply) -> Body {
        Body::Reply(Arc::new(reply))
    }

    /// The bytes on the wire, encoding a decoded body.
    #[must_use]
    pub fn wire(&self) -> Bytes {
        match self {
            Body::Wire(bytes) => bytes.clone(),
            Body::Request(request) => request.encode().into(),
            Body::Reply(reply) => reply.encode().into(),
        }
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Body {
        Body::Wire(bytes)
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Body {
        Body::Wire(bytes.into())
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Wire(bytes) => write!(f, "Wire({} bytes)", bytes.len()),
            Body::Request(request) => write!(f, "Request({})", request.method),
            Body::Reply(reply) => write!(f, "Reply({})", reply.msg_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::protocol::{RemoteFailure, ReplyTo};

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("an object")
    }

    /// What memory:// hands over decoded must be what a receiver would decode from the wire.
    #[test]
    fn a_decoded_body_is_what_the_wire_would_carry() {
        let awkward = json!({
            "s": "quote \" backslash \\ tab \t nul \u{0} del \u{7f} é 😀",
            "n": [0, -1, 1.5, 1e-7, 12345678901234567890u64, -9223372036854775808i64, 0.1],
            "nested": {"z": null, "a": [true, false, {}], "": []},
        });
        let request = Request {
            method: "echo".into(),
            args: object(json!({"x": awkward, "b": 2})),
            namespace: Some("ns".into()),
            version: Some(json!("1.3")),
            reply: Some(ReplyTo { msg_id: "m1".into(), reply_q: "reply_q1".into(), call_monitor_timeout: json!(2.5) }),
            unique_id: Some("u1".into()),
            context: object(json!({"user": "ü", "roles": ["a", "b"], "project_id": null})),
        };
        let wire = Body::request(request.clone()).wire();
        assert_eq!(Request::decode(&wire).unwrap(), request);

        let cast = Request { reply: None, namespace: None, version: None, ..request };
        assert_eq!(Request::decode(&Body::request(cast.clone()).wire()).unwrap(), cast);

        for reply in [
            Reply::result("m1", awkward.clone()),
            Reply::failure("m1", &RemoteFailure::new("ValueError", "builtins", "bad \"value\"")),
            Reply::heartbeat("m1"),
        ] {
            assert_eq!(Reply::decode(&Body::reply(reply.clone()).wire()).unwrap(), reply);
        }
    }
}
