//! oslo's `Serializer`: hooks that convert arguments, results and contexts on both sides.

use std::fmt;

use serde_json::{Map, Value};

/// The four hooks of `oslo_messaging.serializer.Serializer`, applied in oslo's order:
///
/// - client: `serialize_entity` on each argument, then `serialize_context`; the result goes
///   through `deserialize_entity`;
/// - server: `deserialize_context`, then `deserialize_entity` on each argument; the result goes
///   through `serialize_entity`.
///
/// The defaults do nothing, like oslo's `NoOpSerializer`.
pub trait Serializer: Send + Sync + fmt::Debug {
    /// An argument or result, on its way out.
    fn serialize_entity(&self, _ctx: &Map<String, Value>, entity: Value) -> Value {
        entity
    }

    /// An argument or result, on its way in.
    fn deserialize_entity(&self, _ctx: &Map<String, Value>, entity: Value) -> Value {
        entity
    }

    /// The context, on its way out.
    fn serialize_context(&self, ctx: Map<String, Value>) -> Map<String, Value> {
        ctx
    }

    /// The context, on its way in.
    fn deserialize_context(&self, ctx: Map<String, Value>) -> Map<String, Value> {
        ctx
    }

    /// True when every hook leaves its input as it is, so callers may skip them (and the copies
    /// they need). Only [`NoOpSerializer`] should say so.
    fn is_noop(&self) -> bool {
        false
    }
}

/// Leaves everything as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoOpSerializer;

impl Serializer for NoOpSerializer {
    fn is_noop(&self) -> bool {
        true
    }
}
