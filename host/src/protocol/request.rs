//! RPC requests: what `call` and `cast` put inside the envelope.
//!
//! Key order as Python writes it: `method`, `args`, [`namespace`], [`version`],
//! [`_msg_id`, `_reply_q`, `_timeout`] (calls only), `_unique_id`, then one `_context_<k>` key
//! per context entry.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use super::envelope::{DecodeError, unwrap_into, wrap_message};

/// Prefix of the flattened context keys.
const CONTEXT_PREFIX: &str = "_context_";

/// A decoded request, as a server sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The method name.
    pub method: String,
    /// Keyword arguments.
    pub args: Map<String, Value>,
    /// `namespace`, when sent.
    pub namespace: Option<String>,
    /// `version` as sent (absent means "1.0" to the dispatcher).
    pub version: Option<Value>,
    /// Call fields; `None` for a cast.
    pub reply: Option<ReplyTo>,
    /// `_unique_id`, for duplicate suppression.
    pub unique_id: Option<String>,
    /// The context, unflattened, as sent (endpoints also see [`Request::client_timeout`]).
    pub context: Map<String, Value>,
}

/// Where and how to answer a call.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyTo {
    /// `_msg_id`: the correlation id the caller waits on.
    pub msg_id: String,
    /// `_reply_q`: the queue to publish the reply to.
    pub reply_q: String,
    /// `_timeout`: the call-monitor timeout (not the call timeout); `null` when unused.
    pub call_monitor_timeout: Value,
}

impl Request {
    /// Decodes a message body.
    pub fn decode(body: &[u8]) -> Result<Request, DecodeError> {
        unwrap_into(body)
    }

    /// What oslo adds to the context as `client_timeout`: the call-monitor timeout, `null` for
    /// casts and calls without one.
    #[must_use]
    pub fn client_timeout(&self) -> Value {
        self.reply.as_ref().map_or(Value::Null, |r| r.call_monitor_timeout.clone())
    }

    /// Encodes the request inside a 2.0 envelope, byte-compatible with oslo.messaging.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        wrap_message(self)
    }
}

/// Reads a request in one pass over its keys: no intermediate map, context keys unflattened
/// on the way, as oslo's `unpack_context` does.
impl<'de> Deserialize<'de> for Request {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Request, D::Error> {
        struct RequestVisitor;

        impl<'de> Visitor<'de> for RequestVisitor {
            type Value = Request;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RPC request object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Request, A::Error> {
                let (mut method, mut args, mut namespace, mut version) = (None, Map::new(), None, None);
                let (mut msg_id, mut reply_q, mut timeout, mut unique_id) = (None, None, Value::Null, None);
                let mut context = Map::new();
                while let Some(key) = m.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "method" => match m.next_value::<Value>()? {
                            Value::String(s) => method = Some(s),
                            other => return Err(de::Error::custom(format!("`method` is not a string: {other}"))),
                        },
                        "args" => match m.next_value::<Value>()? {
                            Value::Object(a) => args = a,
                            Value::Null => {}
                            other => return Err(de::Error::custom(format!("`args` is not an object: {other}"))),
                        },
                        "namespace" => {
                            namespace = match m.next_value::<Value>()? {
                                Value::Null => None,
                                Value::String(s) => Some(s),
                                other => Some(other.to_string()),
                            }
                        }
                        "version" => version = Some(m.next_value::<Value>()?),
                        "_msg_id" => msg_id = text(m.next_value::<Value>()?),
                        "_reply_q" => reply_q = text(m.next_value::<Value>()?),
                        "_timeout" => timeout = m.next_value::<Value>()?,
                        "_unique_id" => unique_id = text(m.next_value::<Value>()?),
                        k if k.starts_with(CONTEXT_PREFIX) => {
                            let name = k[CONTEXT_PREFIX.len()..].to_owned();
                            context.insert(name, m.next_value::<Value>()?);
                        }
                        _ => {
                            m.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                let method = method.ok_or_else(|| de::Error::custom("no `method` key"))?;
                let reply = match (msg_id, reply_q) {
                    (Some(msg_id), Some(reply_q)) => Some(ReplyTo { msg_id, reply_q, call_monitor_timeout: timeout }),
                    _ => None,
                };
                Ok(Request { method, args, namespace, version, reply, unique_id, context })
            }
        }

        d.deserialize_map(RequestVisitor)
    }
}

fn text(v: Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s),
        _ => None,
    }
}

impl Serialize for Request {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("method", &self.method)?;
        map.serialize_entry("args", &self.args)?;
        if let Some(ns) = &self.namespace {
            map.serialize_entry("namespace", ns)?;
        }
        if let Some(v) = &self.version {
            map.serialize_entry("version", v)?;
        }
        if let Some(r) = &self.reply {
            map.serialize_entry("_msg_id", &r.msg_id)?;
            map.serialize_entry("_reply_q", &r.reply_q)?;
            map.serialize_entry("_timeout", &r.call_monitor_timeout)?;
        }
        if let Some(u) = &self.unique_id {
            map.serialize_entry("_unique_id", u)?;
        }
        let mut key = String::with_capacity(32);
        for (k, v) in &self.context {
            key.clear();
            key.push_str(CONTEXT_PREFIX);
            key.push_str(k);
            map.serialize_entry(&key, v)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Captured from oslo.messaging 18.3.1 (../shared/oslo-protocol.md §4.3):
    /// `client.call({'user': 'u1', 'request_id': 'req-1'}, 'echo', x=[1, 'a'])`.
    const CALL: &str = r#"{"oslo.version": "2.0", "oslo.message": "{\"method\": \"echo\", \"args\": {\"x\": [1, \"a\"]}, \"_msg_id\": \"f229ea8ae6714188a7c1c238494804d0\", \"_reply_q\": \"reply_9490dc64c39a4251bc8b642bed4dd172\", \"_timeout\": null, \"_unique_id\": \"243a8fafcf0842399b9aa628c085d508\", \"_context_user\": \"u1\", \"_context_request_id\": \"req-1\"}"}"#;
    /// `prepare(server='s1', version='1.2').cast({'a': 1}, 'echo', x=2)`, inner message.
    const CAST: &str = r#"{"method": "echo", "args": {"x": 2}, "version": "1.2", "_unique_id": "55d70e7b686e4224862cd9c304eb73dc", "_context_a": 1}"#;

    #[test]
    fn the_captured_call_decodes_and_re_encodes_byte_for_byte() {
        let req = Request::decode(CALL.as_bytes()).unwrap();
        assert_eq!(req.method, "echo");
        assert_eq!(Value::Object(req.args.clone()), json!({"x": [1, "a"]}));
        let reply = req.reply.clone().unwrap();
        assert_eq!(reply.msg_id, "f229ea8ae6714188a7c1c238494804d0");
        assert_eq!(reply.reply_q, "reply_9490dc64c39a4251bc8b642bed4dd172");
        assert_eq!(reply.call_monitor_timeout, Value::Null);
        assert_eq!(req.unique_id.as_deref(), Some("243a8fafcf0842399b9aa628c085d508"));
        assert_eq!(Value::Object(req.context.clone()), json!({"user": "u1", "request_id": "req-1"}));
        assert_eq!(req.client_timeout(), Value::Null);
        assert_eq!(String::from_utf8(req.encode()).unwrap(), CALL);
    }

    #[test]
    fn the_captured_cast_round_trips() {
        let req: Request = serde_json::from_str(CAST).unwrap();
        assert!(req.reply.is_none());
        assert_eq!(req.version, Some(json!("1.2")));
        assert_eq!(req.client_timeout(), Value::Null);
        assert_eq!(super::super::json::to_python_string(&req), CAST);
    }

    #[test]
    fn a_request_without_method_is_refused() {
        let err = Request::decode(br#"{"oslo.version": "2.0", "oslo.message": "{\"args\": {}}"}"#).unwrap_err();
        assert!(err.to_string().contains("method"), "{err}");
    }
}
