//! The reload history: what happened to each manifest's endpoint, newest last, the last
//! [`HISTORY_LEN`] events of a host. The console shows it, so a person sees why an edit did not
//! take (the load error, or the compiler's output in `wasmrpc dev`) without reading the log.
//!
//! The reload path records loads, failures and removals; [`ReloadHistory::record`] is public so
//! that whatever drives the host (`wasmrpc dev`'s builds) can add its own events to the same
//! story.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Serialize, Serializer};

use crate::locks::lock;

/// How many events a host keeps; older ones are dropped first.
pub const HISTORY_LEN: usize = 100;

/// What happened to an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReloadOutcome {
    /// A version was loaded and now serves: the first one, or one that replaced `previous_sha256`.
    Loaded {
        /// The module's hex sha256.
        sha256: String,
        /// The module it replaced, if one was serving.
        previous_sha256: Option<String>,
    },
    /// The manifest's current content does not load; the last good version (if any) serves on.
    Failed {
        /// Why, as the log says it.
        message: String,
    },
    /// The module could not be built (`wasmrpc dev`); the last good version (if any) serves on.
    BuildFailed {
        /// The build command's output (the compiler's errors).
        output: String,
    },
    /// The manifest is gone and its endpoint no longer serves.
    Removed,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadEvent {
    /// Numbers events in the order they were recorded, from 1; tells a new event from an old
    /// one with the same content.
    pub seq: u64,
    /// When.
    #[serde(serialize_with = "rfc3339")]
    pub at: SystemTime,
    /// The endpoint's name (the manifest's file stem when the manifest does not parse).
    pub endpoint: String,
    /// The manifest.
    #[serde(serialize_with = "lossy")]
    pub manifest: PathBuf,
    /// What happened.
    #[serde(flatten)]
    pub outcome: ReloadOutcome,
}

/// A host's reload events, bounded.
#[derive(Debug, Default)]
pub struct ReloadHistory {
    // A std mutex: each critical section is one push or one copy, never across an await.
    events: Mutex<Events>,
}

#[derive(Debug, Default)]
struct Events {
    list: VecDeque<ReloadEvent>,
    last_seq: u64,
}

impl ReloadHistory {
    /// Records that `outcome` happened to `endpoint` (served from `manifest`) now.
    pub fn record(&self, endpoint: impl Into<String>, manifest: impl Into<PathBuf>, outcome: ReloadOutcome) {
        let mut events = lock(&self.events);
        events.last_seq += 1;
        let event = ReloadEvent {
            seq: events.last_seq,
            at: SystemTime::now(),
            endpoint: endpoint.into(),
            manifest: manifest.into(),
            outcome,
        };
        if events.list.len() == HISTORY_LEN {
            events.list.pop_front();
        }
        events.list.push_back(event);
    }

    /// The events kept, oldest first.
    #[must_use]
    pub fn events(&self) -> Vec<ReloadEvent> {
        lock(&self.events).list.iter().cloned().collect()
    }

    /// Puts the events of `earlier`, the host this one takes over from on SIGHUP, before this
    /// one's, so the history reads across the reload. Numbering goes on from `earlier`'s: an
    /// event recorded now still has a higher `seq` than any a console has already seen.
    pub fn continue_from(&self, earlier: &ReloadHistory) {
        // One lock at a time: the two histories' locks are never held together.
        let (older, older_seq) = {
            let e = lock(&earlier.events);
            (e.list.clone(), e.last_seq)
        };
        let mut events = lock(&self.events);
        let own = std::mem::replace(&mut events.list, older);
        for mut event in own {
            event.seq += older_seq;
            events.list.push_back(event);
        }
        while events.list.len() > HISTORY_LEN {
            events.list.pop_front();
        }
        events.last_seq += older_seq;
    }
}

fn rfc3339<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let text =
        time::OffsetDateTime::from(*t).format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    s.serialize_str(&text)
}

/// A path as text, whatever bytes it has: a history is for reading, and one odd file name must
/// not make the whole of it unserializable.
fn lossy<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keeps_the_last_events_in_order() {
        let history = ReloadHistory::default();
        for i in 0..HISTORY_LEN + 5 {
            history.record(format!("e{i}"), "m.toml", ReloadOutcome::Removed);
        }
        let events = history.events();
        assert_eq!(events.len(), HISTORY_LEN);
        assert_eq!((events[0].seq, events[0].endpoint.as_str()), (6, "e5"));
        assert_eq!(events.last().map(|e| e.seq), Some(105));
    }

    #[test]
    fn a_host_taking_over_continues_the_earlier_ones_history() {
        let earlier = ReloadHistory::default();
        for i in 0..HISTORY_LEN - 1 {
            earlier.record(format!("old{i}"), "a/m.toml", ReloadOutcome::Removed);
        }
        // The new host recorded its own loads before it took over.
        let later = ReloadHistory::default();
        later.record("new0", "b/m.toml", ReloadOutcome::Removed);
        later.record("new1", "b/m.toml", ReloadOutcome::Removed);
        later.continue_from(&earlier);
        later.record("new2", "b/m.toml", ReloadOutcome::Removed);
        let events = later.events();
        assert_eq!(events.len(), HISTORY_LEN);
        let names: Vec<&str> = events.iter().map(|e| e.endpoint.as_str()).collect();
        assert_eq!((names[0], names[HISTORY_LEN - 4]), ("old2", "old98"));
        assert_eq!(&names[HISTORY_LEN - 3..], ["new0", "new1", "new2"]);
        assert!(events.windows(2).all(|w| w[0].seq < w[1].seq), "seq keeps rising: {events:?}");
        assert_eq!(events.last().map(|e| e.seq), Some(HISTORY_LEN as u64 + 2));
    }

    #[test]
    fn serializes_flat_with_the_outcome_as_a_tag() {
        let history = ReloadHistory::default();
        history.record("calc", "calc.toml", ReloadOutcome::BuildFailed { output: "error[E0425]".into() });
        history.record("calc", "calc.toml", ReloadOutcome::Loaded { sha256: "ab".into(), previous_sha256: None });
        history.record("calc", "calc.toml", ReloadOutcome::Removed);
        let v = serde_json::to_value(history.events()).unwrap();
        assert_eq!((&v[2]["outcome"], &v[2]["manifest"]), (&json!("removed"), &json!("calc.toml")));
        assert_eq!(v[0]["outcome"], json!("build_failed"));
        assert_eq!(v[0]["output"], json!("error[E0425]"));
        assert_eq!((&v[1]["outcome"], &v[1]["sha256"], &v[1]["seq"]), (&json!("loaded"), &json!("ab"), &json!(2)));
        assert!(v[1]["at"].as_str().unwrap().ends_with('Z'), "{v}");
    }
}
