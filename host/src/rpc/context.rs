//! The context an endpoint receives: what the caller sent, plus `client_timeout` (the call's
//! call-monitor timeout, `null` when unused), as oslo hands it to Python endpoints.
//!
//! The two parts stay apart until something reads them as one: merging them into one map on
//! every call costs a map insert (the key hashed, three allocations, and their frees), and the
//! endpoints that need the merged context mostly encode it or look up a key, which works as
//! well on the two parts. It pays for itself on BENCHMARKS.md's row "RPC over memory://: a
//! Rust endpoint (no Wasm)".

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

/// The key oslo adds to every context an endpoint sees.
pub const CLIENT_TIMEOUT: &str = "client_timeout";

/// An endpoint's view of a call's context.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallContext {
    entries: Map<String, Value>,
    /// `client_timeout`, when it comes after `entries` rather than within them.
    appended: Option<Value>,
}

impl CallContext {
    /// The context a caller sent, with `client_timeout` set as oslo sets it: in place if the
    /// caller sent that key too, last otherwise.
    #[must_use]
    pub fn new(mut sent: Map<String, Value>, client_timeout: Value) -> CallContext {
        // indexmap compares an empty or one-key map's key directly: no hashing for small contexts.
        match sent.get_mut(CLIENT_TIMEOUT) {
            Some(slot) => {
                *slot = client_timeout;
                CallContext { entries: sent, appended: None }
            }
            None => CallContext { entries: sent, appended: Some(client_timeout) },
        }
    }

    /// A context that is already complete (what a serializer's `deserialize_context` returned).
    #[must_use]
    pub fn from_map(map: Map<String, Value>) -> CallContext {
        CallContext { entries: map, appended: None }
    }

    /// One key's value.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Value> {
        match &self.appended {
            Some(timeout) if key == CLIENT_TIMEOUT => Some(timeout),
            _ => self.entries.get(key),
        }
    }

    /// The number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len() + usize::from(self.appended.is_some())
    }

    /// Whether there are no keys at all (never, for a context built by [`CallContext::new`]).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The keys and values, in the order a Python endpoint would see them.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        let appended = self.appended.as_ref().map(|v| (CLIENT_TIMEOUT, v));
        self.entries.iter().map(|(k, v)| (k.as_str(), v)).chain(appended)
    }

    /// The context as one map.
    #[must_use]
    pub fn into_map(self) -> Map<String, Value> {
        let mut map = self.entries;
        if let Some(timeout) = self.appended {
            map.insert(CLIENT_TIMEOUT.to_owned(), timeout);
        }
        map
    }
}

/// Encodes as the one JSON object it stands for.
impl Serialize for CallContext {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("an object")
    }

    #[test]
    fn client_timeout_comes_last_as_oslo_adds_it() {
        let ctx = CallContext::new(object(json!({"user": "u1", "request_id": "req-1"})), json!(30));
        assert_eq!(serde_json::to_string(&ctx).unwrap(), r#"{"user":"u1","request_id":"req-1","client_timeout":30}"#);
        assert_eq!(ctx.get("client_timeout"), Some(&json!(30)));
        assert_eq!(ctx.get("user"), Some(&json!("u1")));
        assert_eq!(ctx.get("roles"), None);
        assert_eq!(ctx.len(), 3);
        assert_eq!(Value::Object(ctx.into_map()), json!({"user": "u1", "request_id": "req-1", "client_timeout": 30}));
    }

    #[test]
    fn a_sent_client_timeout_is_replaced_where_it_stands() {
        let ctx = CallContext::new(object(json!({"client_timeout": "x", "user": "u1"})), Value::Null);
        assert_eq!(serde_json::to_string(&ctx).unwrap(), r#"{"client_timeout":null,"user":"u1"}"#);
        assert_eq!(ctx.get("client_timeout"), Some(&Value::Null));
        assert_eq!(ctx.iter().map(|(k, _)| k).collect::<Vec<_>>(), ["client_timeout", "user"]);
        assert_eq!(ctx.clone().into_map().len(), 2);
    }

    #[test]
    fn a_complete_context_is_taken_as_it_is() {
        let ctx = CallContext::from_map(object(json!({"a": 1})));
        assert_eq!(ctx.get("client_timeout"), None);
        assert_eq!(serde_json::to_string(&ctx).unwrap(), r#"{"a":1}"#);
        assert!(CallContext::default().is_empty());
    }
}
