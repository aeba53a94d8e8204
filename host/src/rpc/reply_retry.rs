//! Replies whose reply queue is missing, retried in the background as oslo retries them (for
//! `kombu_missing_consumer_retry_timeout`), within bounds.
//!
//! A caller that named a queue that does not exist (or whose queue expired) must not cost the
//! server more than a bounded amount: a reply being retried holds neither an executor slot nor
//! its request's place in the backlog, at most [`MAX_REPLIES`] replies and [`MAX_BYTES`] bytes
//! of them are kept per server (more are dropped at once), attempts back off from 0.25 s to
//! 2 s, and the log says once per reply queue per [`REPORT_INTERVAL`] what happened to its
//! replies, without their bodies.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::locks::lock;
use crate::protocol::ReplyTo;
use crate::transport::{Body, Transport, TransportError};

/// Replies being retried at once, per server.
pub(super) const MAX_REPLIES: usize = 256;
/// Bytes of replies being retried at once, per server.
pub(super) const MAX_BYTES: usize = 64 << 20;
/// At most one log line per reply queue in this interval.
pub(super) const REPORT_INTERVAL: Duration = Duration::from_secs(10);
/// The first pause between attempts (oslo's) and the longest.
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const LONGEST_PAUSE: Duration = Duration::from_secs(2);
/// Reply queues remembered for the log; older entries are forgotten beyond this.
const REMEMBERED_QUEUES: usize = 1024;

/// A server's replies being retried.
#[derive(Debug)]
pub(super) struct ReplyRetries {
    places: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    reports: Mutex<HashMap<String, Report>>,
}

/// What happened to a reply queue's replies since its last log line.
#[derive(Debug, Default)]
struct Report {
    last: Option<Instant>,
    retrying: u64,
    dropped: u64,
    last_error: String,
}

impl Default for ReplyRetries {
    fn default() -> ReplyRetries {
        ReplyRetries {
            places: Arc::new(Semaphore::new(MAX_REPLIES)),
            bytes: Arc::new(Semaphore::new(MAX_BYTES)),
            reports: Mutex::default(),
        }
    }
}

/// What a retry needs from its server.
pub(super) struct Retry {
    pub transport: Arc<dyn Transport>,
    /// How long to keep trying.
    pub within: Duration,
    /// Fires when the server stops waiting for its calls.
    pub abort: CancellationToken,
}

impl ReplyRetries {
    /// Retries `body` for `to` in the background after `error` (the reply's queue is missing);
    /// drops it at once when the bounds are reached.
    pub(super) fn start(self: &Arc<Self>, retry: Retry, to: &ReplyTo, body: &Body, error: &TransportError) {
        // Encoded once for every attempt; its size is what the bound counts.
        let wire = body.wire();
        let size = u32::try_from(wire.len()).unwrap_or(u32::MAX);
        let place = self.places.clone().try_acquire_owned();
        let room = self.bytes.clone().try_acquire_many_owned(size);
        let (Ok(place), Ok(room)) = (place, room) else {
            self.note(&to.reply_q, Outcome::Dropped, &format!("{error}; too many replies already being retried"));
            return;
        };
        self.note(&to.reply_q, Outcome::Retrying, &error.to_string());
        let (retries, to, body) = (self.clone(), to.clone(), Body::Wire(wire));
        tokio::spawn(async move {
            let _held = (place, room);
            let give_up = Instant::now() + retry.within;
            let mut pause = FIRST_PAUSE;
            let mut last = String::new();
            while Instant::now() < give_up {
                tokio::select! {
                    () = retry.abort.cancelled() => break,
                    () = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(LONGEST_PAUSE);
                match retry.transport.send_reply(&to.reply_q, body.clone()).await {
                    Ok(()) => return,
                    Err(e) if e.is_unroutable() => last = e.to_string(),
                    Err(e) => {
                        last = e.to_string();
                        break;
                    }
                }
            }
            retries.note(&to.reply_q, Outcome::Dropped, &last);
        });
    }

    /// Counts what happened to a reply of `reply_q`; logs a summary when the queue's last line
    /// is older than [`REPORT_INTERVAL`].
    fn note(&self, reply_q: &str, outcome: Outcome, error: &str) {
        let mut reports = lock(&self.reports);
        if reports.len() >= REMEMBERED_QUEUES && !reports.contains_key(reply_q) {
            let now = Instant::now();
            reports.retain(|_, r| r.last.is_some_and(|t| now.duration_since(t) < REPORT_INTERVAL));
        }
        let report = reports.entry(reply_q.to_owned()).or_default();
        match outcome {
            Outcome::Retrying => report.retrying += 1,
            Outcome::Dropped => report.dropped += 1,
        }
        error.clone_into(&mut report.last_error);
        if report.last.is_some_and(|t| t.elapsed() < REPORT_INTERVAL) {
            return;
        }
        tracing::warn!(
            %reply_q,
            retrying = report.retrying,
            dropped = report.dropped,
            "replies to this reply queue are unroutable ({}); at most one line per {REPORT_INTERVAL:?} per queue",
            report.last_error
        );
        report.last = Some(Instant::now());
        report.retrying = 0;
        report.dropped = 0;
    }
}

enum Outcome {
    Retrying,
    Dropped,
}
