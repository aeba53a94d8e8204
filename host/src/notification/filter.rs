//! oslo's `NotificationFilter`: regular expressions on publisher id, event type, and top-level
//! keys of context, metadata and payload, matched at the start (Python's `re.match`).

use regex::Regex;
use serde_json::{Map, Value};

use crate::manifest::FilterSpec;

/// A compiled filter. Every given field must match; a missing key or a non-string value is a
/// mismatch, as in oslo.
#[derive(Debug, Clone)]
pub struct NotificationFilter {
    publisher_id: Option<Regex>,
    event_type: Option<Regex>,
    context: Vec<(String, Regex)>,
    metadata: Vec<(String, Regex)>,
    payload: Vec<(String, Regex)>,
}

impl NotificationFilter {
    /// Compiles a manifest's `[listener.filter]`.
    pub fn new(spec: &FilterSpec) -> Result<NotificationFilter, regex::Error> {
        let anchored = |p: &str| Regex::new(&format!("^(?:{p})"));
        let all = |pairs: &[(String, String)]| -> Result<Vec<(String, Regex)>, regex::Error> {
            pairs.iter().map(|(k, p)| Ok((k.clone(), anchored(p)?))).collect()
        };
        Ok(NotificationFilter {
            publisher_id: spec.publisher_id.as_deref().map(anchored).transpose()?,
            event_type: spec.event_type.as_deref().map(anchored).transpose()?,
            context: all(&spec.context)?,
            metadata: all(&spec.metadata)?,
            payload: all(&spec.payload)?,
        })
    }

    /// Whether a notification passes.
    #[must_use]
    pub fn matches(
        &self,
        context: &Map<String, Value>,
        publisher_id: &str,
        event_type: &str,
        metadata: &Map<String, Value>,
        payload: &Value,
    ) -> bool {
        let one = |re: &Option<Regex>, s: &str| re.as_ref().is_none_or(|re| re.is_match(s));
        let keys = |rules: &[(String, Regex)], data: Option<&Map<String, Value>>| {
            rules.iter().all(|(k, re)| matches!(data.and_then(|d| d.get(k)), Some(Value::String(s)) if re.is_match(s)))
        };
        one(&self.publisher_id, publisher_id)
            && one(&self.event_type, event_type)
            && keys(&self.context, Some(context))
            && keys(&self.metadata, Some(metadata))
            && keys(&self.payload, payload.as_object())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filter(spec: FilterSpec) -> NotificationFilter {
        NotificationFilter::new(&spec).unwrap()
    }

    #[test]
    fn matches_at_the_start_like_re_match() {
        let f = filter(FilterSpec { event_type: Some(r"compute\.instance\.".into()), ..FilterSpec::default() });
        let (ctx, meta) = (Map::new(), Map::new());
        assert!(f.matches(&ctx, "p", "compute.instance.create", &meta, &json!({})));
        assert!(!f.matches(&ctx, "p", "x.compute.instance.create", &meta, &json!({})), "anchored at the start");
    }

    #[test]
    fn dict_rules_need_present_string_values() {
        let f = filter(FilterSpec { payload: vec![("state".into(), "^active$".into())], ..FilterSpec::default() });
        let (ctx, meta) = (Map::new(), Map::new());
        assert!(f.matches(&ctx, "p", "e", &meta, &json!({"state": "active", "x": 1})));
        assert!(!f.matches(&ctx, "p", "e", &meta, &json!({"state": "activex"})));
        assert!(!f.matches(&ctx, "p", "e", &meta, &json!({"other": "active"})), "missing key");
        assert!(!f.matches(&ctx, "p", "e", &meta, &json!({"state": 1})), "not a string");
        assert!(!f.matches(&ctx, "p", "e", &meta, &json!("active")), "not a dict");
    }
}
