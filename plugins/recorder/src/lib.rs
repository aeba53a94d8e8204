//! A notification listener: every notification it handles becomes a JSON file in `/out`
//! (a directory its manifest grants, writable), named `<instance>-<message_id>.json`.
//!
//! Payload flags for tests: `"requeue_once": true` answers `requeue` the first time a message
//! is seen; `"trap_once": true` traps the first time; `"trap_always": true` traps every time,
//! leaving a marker file per attempt.

use serde_json::{Value, json};
use wasmrpc_guest::{Context, NotificationResult, endpoint, warn};

#[derive(Default)]
pub struct Recorder;

fn first_time(message_id: &str, what: &str) -> bool {
    let marker = format!("/out/{message_id}.{what}");
    if std::fs::metadata(&marker).is_ok() {
        return false;
    }
    let _ = std::fs::write(&marker, b"");
    true
}

impl Recorder {
    fn record(
        &self,
        priority: &str,
        ctx: &Context,
        publisher_id: String,
        event_type: String,
        payload: Value,
        metadata: Value,
    ) -> NotificationResult {
        let message_id = metadata["message_id"].as_str().unwrap_or("unknown").to_owned();
        if payload["requeue_once"] == json!(true) && first_time(&message_id, "requeued") {
            return NotificationResult::Requeue;
        }
        if payload["trap_once"] == json!(true) && first_time(&message_id, "trapped") {
            std::process::abort();
        }
        if payload["trap_always"] == json!(true) {
            let attempt = std::fs::read_dir("/out").map_or(0, Iterator::count);
            let _ = std::fs::write(format!("/out/{message_id}.attempt{attempt}"), b"");
            std::process::abort();
        }
        let instance = std::env::var("WASMRPC_INSTANCE").unwrap_or_else(|_| "recorder".into());
        let record = json!({
            "instance": instance,
            "priority": priority,
            "ctxt": ctx,
            "publisher_id": publisher_id,
            "event_type": event_type,
            "payload": payload,
            "metadata": metadata,
        });
        if let Err(e) = std::fs::write(format!("/out/{instance}-{message_id}.json"), record.to_string()) {
            warn!("cannot record {message_id}: {e}");
            return NotificationResult::Requeue;
        }
        NotificationResult::Handled
    }
}

macro_rules! priorities {
    ($($name:ident),*) => {
        #[endpoint]
        impl Recorder {
            $(
                pub fn $name(&self, ctx: &Context, publisher_id: String, event_type: String, payload: Value, metadata: Value) -> NotificationResult {
                    self.record(stringify!($name), ctx, publisher_id, event_type, payload, metadata)
                }
            )*
        }
    };
}

priorities!(audit, debug, info, warn, error, critical, sample);
