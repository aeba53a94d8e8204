//! A call's request as the host sends it (ABI v1's `{"method", "args", "context"}`), decoded as
//! little as possible.
//!
//! Each argument stays JSON text, borrowed from the request buffer, until it is decoded straight
//! into its parameter's type: no `Value` tree, no hash map. The context stays text until a
//! method looks at it ([`Context`]). Building those maps was much of a small call's work
//! (`wasmrpc-bench fuel` counts the Wasm operators of one call).

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::{Context, RemoteError};

/// The decoded request; borrows from the request buffer.
#[derive(serde::Deserialize)]
pub(crate) struct Request<'a> {
    #[serde(borrow)]
    pub method: Cow<'a, str>,
    #[serde(borrow, default)]
    pub args: Kwargs<'a>,
    #[serde(borrow, default)]
    context: Option<&'a RawValue>,
}

impl Request<'_> {
    /// The context, still undecoded; the host always sends an object.
    pub fn context(&self) -> Result<Context, RemoteError> {
        match self.context {
            None => Ok(Context::default()),
            Some(raw) if raw.get().starts_with('{') => Ok(Context::from_json(raw.get())),
            Some(raw) => Err(RemoteError::new(
                "InvalidRequest",
                format!("the host sent a context that is not an object: {}", raw.get()),
            )),
        }
    }
}

/// A call's keyword arguments in the order sent, each value still JSON text. A key sent twice
/// keeps its first place and its last value, as a Python dict built from that JSON would.
#[derive(Debug, Default)]
pub struct Kwargs<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Kwargs<'a> {
    /// Reads a JSON object of arguments (the glue's own tests build them this way).
    pub fn from_json(json: &'a str) -> Result<Kwargs<'a>, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// The names, in the order sent.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_ref())
    }

    /// The JSON text of one argument.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.get())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Kwargs<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Kwargs<'a>, D::Error> {
        struct KwargsVisitor;

        impl<'de> Visitor<'de> for KwargsVisitor {
            type Value = Kwargs<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of keyword arguments")
            }

            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Kwargs<'de>, M::Error> {
                let mut entries: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::with_capacity(map.size_hint().unwrap_or(4));
                while let Some(Name(name)) = map.next_key()? {
                    let value: &'de RawValue = map.next_value()?;
                    match entries.iter_mut().find(|(k, _)| *k == name) {
                        Some(entry) => entry.1 = value,
                        None => entries.push((name, value)),
                    }
                }
                Ok(Kwargs(entries))
            }
        }

        d.deserialize_map(KwargsVisitor)
    }
}

/// A key, borrowed from the buffer unless it had escapes to undo.
struct Name<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Name<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Name<'a>, D::Error> {
        struct NameVisitor;

        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an argument name")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E>(self, v: String) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v)))
            }
        }

        d.deserialize_str(NameVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_keep_their_order_and_text() {
        let k = Kwargs::from_json(r#"{"b": [1, 2], "a\u0041": {"x": "y"}, "c": null}"#).unwrap();
        assert_eq!(k.names().collect::<Vec<_>>(), ["b", "aA", "c"]);
        assert_eq!(k.get("b"), Some("[1, 2]"));
        assert_eq!(k.get("aA"), Some(r#"{"x": "y"}"#));
        assert_eq!(k.get("c"), Some("null"));
        assert_eq!(k.get("d"), None);
    }

    #[test]
    fn a_repeated_name_keeps_its_first_place_and_last_value() {
        let k = Kwargs::from_json(r#"{"a": 1, "b": 2, "a": 3}"#).unwrap();
        assert_eq!(k.names().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(k.get("a"), Some("3"));
    }

    #[test]
    fn the_context_waits_until_it_is_read() {
        let r: Request<'_> =
            serde_json::from_str(r#"{"method": "m", "args": {}, "context": {"user": "u", "client_timeout": null}}"#)
                .unwrap();
        let ctx = r.context().unwrap();
        assert_eq!(ctx.user(), Some("u"));
        assert_eq!(ctx.as_map().keys().collect::<Vec<_>>(), ["user", "client_timeout"]);
        let r: Request<'_> = serde_json::from_str(r#"{"method": "m", "context": [1]}"#).unwrap();
        assert_eq!(r.context().unwrap_err().type_name(), "InvalidRequest");
        let r: Request<'_> = serde_json::from_str(r#"{"method": "m"}"#).unwrap();
        assert!(r.context().unwrap().as_map().is_empty());
        assert!(r.args.names().next().is_none());
    }
}
