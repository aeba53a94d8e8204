//! Notifications as oslo.messaging's notifier writes them.
//!
//! ```json
//! {"message_id": "<uuid4 with dashes>", "publisher_id": "compute.host1",
//!  "event_type": "compute.instance.create", "priority": "INFO", "payload": {...},
//!  "timestamp": "2026-11-26 19:36:59.161958", "_unique_id": "<hex>", "_context_<k>": ...}
//! ```
//!
//! `messagingv2` wraps this in the 2.0 envelope; `messaging` (v1) sends it as the body itself.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use super::envelope::{DecodeError, unwrap, wrap_message};
use super::json::to_python_string;
use super::reply::new_id;

/// The priorities and the strings oslo puts in messages (`warn` and `warning` are both `WARN`).
pub const PRIORITY_NAMES: &[(&str, &str)] = &[
    ("audit", "AUDIT"),
    ("debug", "DEBUG"),
    ("info", "INFO"),
    ("warn", "WARN"),
    ("warning", "WARN"),
    ("error", "ERROR"),
    ("critical", "CRITICAL"),
    ("sample", "SAMPLE"),
];

/// The message priority for a method or option name (`info` → `INFO`), if it is one.
#[must_use]
pub fn priority(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    PRIORITY_NAMES.iter().find(|(n, _)| *n == lower).map(|(_, p)| *p)
}

/// One notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// `str(uuid4())`, with dashes.
    pub message_id: String,
    /// Who sent it, e.g. `compute.host1`.
    pub publisher_id: String,
    /// e.g. `compute.instance.create`.
    pub event_type: String,
    /// Upper case, e.g. `INFO`.
    pub priority: String,
    /// Any JSON.
    pub payload: Value,
    /// `YYYY-MM-DD HH:MM:SS[.ffffff]`, naive UTC.
    pub timestamp: String,
    /// `_unique_id` (hex, no dashes).
    pub unique_id: Option<String>,
    /// The context (`_context_*` keys).
    pub context: Map<String, Value>,
}

impl Notification {
    /// A new notification stamped now, with fresh ids.
    #[must_use]
    pub fn new(
        publisher_id: &str,
        event_type: &str,
        priority: &str,
        payload: Value,
        context: Map<String, Value>,
    ) -> Notification {
        Notification {
            message_id: uuid::Uuid::new_v4().hyphenated().to_string(),
            publisher_id: publisher_id.to_owned(),
            event_type: event_type.to_owned(),
            priority: priority.to_owned(),
            payload,
            timestamp: timestamp(time::OffsetDateTime::now_utc()),
            unique_id: Some(new_id()),
            context,
        }
    }

    /// The `messagingv2` body: the 2.0 envelope.
    #[must_use]
    pub fn encode_v2(&self) -> Vec<u8> {
        wrap_message(self)
    }

    /// The `messaging` (v1) body: the message itself, no envelope.
    #[must_use]
    pub fn encode_v1(&self) -> Vec<u8> {
        to_python_string(self).into_bytes()
    }

    /// Decodes either form; the context keys are unflattened.
    pub fn decode(body: &[u8]) -> Result<Notification, DecodeError> {
        let mut m = unwrap(body)?;
        let mut context = Map::new();
        let keys: Vec<String> = m.keys().filter(|k| k.starts_with("_context_")).cloned().collect();
        for key in keys {
            if let Some(v) = m.remove(&key) {
                context.insert(key["_context_".len()..].to_owned(), v);
            }
        }
        let mut text = |key: &str| match m.remove(key) {
            Some(Value::String(s)) => Ok(s),
            Some(Value::Null) | None => Err(DecodeError::BadField(format!("the notification has no `{key}`"))),
            Some(other) => Ok(other.to_string()),
        };
        Ok(Notification {
            message_id: text("message_id")?,
            publisher_id: text("publisher_id").unwrap_or_default(),
            event_type: text("event_type")?,
            priority: text("priority")?,
            timestamp: text("timestamp").unwrap_or_default(),
            unique_id: text("_unique_id").ok(),
            payload: m.remove("payload").unwrap_or(Value::Null),
            context,
        })
    }
}

impl Serialize for Notification {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("message_id", &self.message_id)?;
        map.serialize_entry("publisher_id", &self.publisher_id)?;
        map.serialize_entry("event_type", &self.event_type)?;
        map.serialize_entry("priority", &self.priority)?;
        map.serialize_entry("payload", &self.payload)?;
        map.serialize_entry("timestamp", &self.timestamp)?;
        if let Some(u) = &self.unique_id {
            map.serialize_entry("_unique_id", u)?;
        }
        for (k, v) in &self.context {
            map.serialize_entry(&format!("_context_{k}"), v)?;
        }
        map.end()
    }
}

/// `str(datetime)` of a naive UTC time: the fraction is left out when it is zero.
#[must_use]
pub fn timestamp(t: time::OffsetDateTime) -> String {
    let (date, clock) = (t.date(), t.time());
    let base = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        date.year(),
        u8::from(date.month()),
        date.day(),
        clock.hour(),
        clock.minute(),
        clock.second()
    );
    match clock.microsecond() {
        0 => base,
        us => format!("{base}.{us:06}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Captured from oslo.messaging 18.3.1 (../shared/oslo-protocol.md §9.1).
    const CAPTURED: &str = r#"{"message_id": "4c8a912c-8843-4bcd-9cc5-773bec9f814b", "publisher_id": "compute.host1", "event_type": "compute.instance.create", "priority": "INFO", "payload": {"k": "v"}, "timestamp": "2026-11-26 19:36:59.161958", "_unique_id": "3cd853fffa8d432fa3ca058b1e0c0508"}"#;

    #[test]
    fn the_captured_notification_round_trips_in_both_forms() {
        let n = Notification::decode(CAPTURED.as_bytes()).unwrap();
        assert_eq!(
            (n.publisher_id.as_str(), n.event_type.as_str(), n.priority.as_str()),
            ("compute.host1", "compute.instance.create", "INFO")
        );
        assert_eq!(n.payload, json!({"k": "v"}));
        assert_eq!(String::from_utf8(n.encode_v1()).unwrap(), CAPTURED);
        let v2 = n.encode_v2();
        assert!(
            String::from_utf8(v2.clone())
                .unwrap()
                .starts_with(r#"{"oslo.version": "2.0", "oslo.message": "{\"message_id\": "#)
        );
        assert_eq!(Notification::decode(&v2).unwrap(), n);
    }

    #[test]
    fn timestamps_are_str_of_a_naive_utc_datetime() {
        let t = time::macros::datetime!(2026-11-26 19:36:59.161958 UTC);
        assert_eq!(timestamp(t), "2026-11-26 19:36:59.161958");
        let whole = time::macros::datetime!(2026-01-02 03:04:05 UTC);
        assert_eq!(timestamp(whole), "2026-01-02 03:04:05", "no fraction when the microseconds are 0");
        let n = Notification::new("p", "e", "INFO", json!(null), Map::new());
        assert!(n.message_id.len() == 36 && n.message_id.matches('-').count() == 4);
        assert_eq!(n.unique_id.as_ref().unwrap().len(), 32);
    }

    #[test]
    fn priorities_map_like_oslos_methods() {
        assert_eq!(priority("warning"), Some("WARN"));
        assert_eq!(priority("INFO"), Some("INFO"));
        assert_eq!(priority("loud"), None);
    }
}
