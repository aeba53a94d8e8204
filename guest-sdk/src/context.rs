//! The request context: what oslo.messaging callers send as `_context_*` keys.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The context of the call being handled.
///
/// OpenStack services put an oslo.context `RequestContext` here (`user`, `project_id`,
/// `request_id`, `roles`, …); the host adds `client_timeout` as oslo does. Unknown keys are
/// kept, so a method can return the whole context unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Context(Map<String, Value>);

impl Context {
    /// Wraps a context map.
    #[must_use]
    pub fn from_map(map: Map<String, Value>) -> Context {
        Context(map)
    }

    /// The raw value of a key.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// A string-valued key.
    #[must_use]
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
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
        &self.0
    }

    /// The whole context, owned.
    #[must_use]
    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }
}
