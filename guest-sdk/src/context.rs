//! The request context: what oslo.messaging callers send as `_context_*` keys.

use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The context of the call being handled.
///
/// OpenStack services put an oslo.context `RequestContext` here (`user`, `project_id`,
/// `request_id`, `roles`, …); the host adds `client_timeout` as oslo does. Unknown keys are
/// kept, so a method can return the whole context unchanged.
#[derive(Clone)]
pub struct Context {
    /// The JSON object the host sent. It is decoded on first use: most methods never look at
    /// their context, and decoding even the host's one-key context into a map is a large part
    /// of a small call's work.
    json: Box<str>,
    map: OnceLock<Map<String, Value>>,
}

impl Default for Context {
    fn default() -> Context {
        Context::from_map(Map::new())
    }
}

impl PartialEq for Context {
    fn eq(&self, other: &Context) -> bool {
        self.as_map() == other.as_map()
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Context").field(self.as_map()).finish()
    }
}

impl Serialize for Context {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_map().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Context {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Context, D::Error> {
        Map::deserialize(d).map(Context::from_map)
    }
}

impl Context {
    /// Wraps a context map.
    #[must_use]
    pub fn from_map(map: Map<String, Value>) -> Context {
        Context { json: Box::default(), map: OnceLock::from(map) }
    }

    /// A context from the JSON object the host sent, decoded when first read.
    pub(crate) fn from_json(json: &str) -> Context {
        Context { json: json.into(), map: OnceLock::new() }
    }

    /// The raw value of a key.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map().get(key)
    }

    /// A string-valued key.
    #[must_use]
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.as_map().get(key).and_then(Value::as_str)
    }

    /// `user` (oslo.context's user id).
    #[must_use]
    pub fn user(&self) -> Option<&str> {
        self.get_str("user")
    }

    /// `project_id`.
    #[must_use]
    pub fn project_id(&self) -> Option<&str> {
        self.get_str("project_id")
    }

    /// `request_id`.
    #[must_use]
    pub fn request_id(&self) -> Option<&str> {
        self.get_str("request_id")
    }

    /// The whole context.
    #[must_use]
    pub fn as_map(&self) -> &Map<String, Value> {
        self.map.get_or_init(|| decode(&self.json))
    }

    /// The whole context, owned.
    #[must_use]
    pub fn into_map(self) -> Map<String, Value> {
        self.map.into_inner().unwrap_or_else(|| decode(&self.json))
    }
}

/// The request decoder lets only an object through, and any JSON object decodes into a map; an
/// empty one stands in for the impossible failure.
fn decode(json: &str) -> Map<String, Value> {
    serde_json::from_str(json).unwrap_or_default()
}
