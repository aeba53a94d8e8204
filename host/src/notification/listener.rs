//! oslo's notification listener: consumes `<topic>.<priority>` queues (or one queue per
//! pool), hands each notification to its endpoint's method for that priority, and acknowledges
//! *after* handling; a `requeue` answer (or a failure) puts the message back when requeue is
//! allowed, as oslo does. A message that keeps failing is not put back forever: after
//! [`MAX_DELIVERIES`] failed deliveries it is rejected, with a log line (a poison message).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::filter::NotificationFilter;
use crate::locks::lock;
use crate::protocol::{Notification, NotificationTarget, RecentIds};
use crate::transport::{Incoming, Listener, Transport, TransportError};

/// Deliveries of one notification that end in a failure or `requeue` before it is rejected.
pub const MAX_DELIVERIES: u32 = 5;
/// The pause before putting a failed notification back, per failed delivery so far: a poison
/// message does not spin a core between its deliveries.
const REQUEUE_PAUSE: Duration = Duration::from_millis(100);
/// Notifications whose failed deliveries are counted at once; beyond this the counts start over
/// (a bound on memory, not on redeliveries: each count still ends at [`MAX_DELIVERIES`]).
const COUNTED: usize = 10_000;

/// What an endpoint says about a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Done: acknowledge it.
    Handled,
    /// Put it back (only if the listener allows requeue; otherwise it is acknowledged).
    Requeue,
}

/// One notification as an endpoint receives it: oslo's `(ctxt, publisher_id, event_type,
/// payload, metadata)` and the (lowercase) priority that picks the method.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    /// Lowercase priority: `info`, `error`, ….
    pub priority: String,
    /// The context, with `client_timeout` as oslo unpacks it.
    pub ctx: Map<String, Value>,
    /// Who sent it, e.g. `compute.host1`.
    pub publisher_id: String,
    /// What happened, e.g. `compute.instance.create.end`.
    pub event_type: String,
    /// The event's data.
    pub payload: Value,
    /// `message_id` and `timestamp`.
    pub metadata: Map<String, Value>,
}

/// Something that handles notifications (a Wasm listener, or a closure in a test).
#[async_trait::async_trait]
pub trait NotificationEndpoint: Send + Sync + fmt::Debug {
    /// A name for logs.
    fn name(&self) -> &str;
    /// Whether it has a method for this (lowercase) priority.
    fn handles(&self, priority: &str) -> bool;
    /// The filter selecting what reaches it.
    fn filter(&self) -> Option<&NotificationFilter>;
    /// Handles one notification; an error counts as `Requeue`, as an exception does in oslo.
    async fn handle(&self, notification: Delivered) -> Result<Handled, Box<dyn std::error::Error + Send + Sync>>;
}

/// Where and how a listener listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerOptions {
    /// Where to listen.
    pub targets: Vec<NotificationTarget>,
    /// Lowercase priorities to consume.
    pub priorities: Vec<String>,
    /// One shared queue named after the pool.
    pub pool: Option<String>,
    /// Whether `Requeue` puts messages back.
    pub allow_requeue: bool,
    /// Notifications handled at once.
    pub executor_size: usize,
}

/// A running notification listener.
#[derive(Debug, Clone)]
pub struct NotificationListener {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    options: ListenerOptions,
    endpoint: ArcSwap<Arc<dyn NotificationEndpoint>>,
    executor: Arc<Semaphore>,
    tracker: TaskTracker,
    stop: CancellationToken,
    /// The last `_unique_id`s handled (requeued ones are not).
    recent: Mutex<RecentIds>,
    /// Failed deliveries so far, by `message_id`, of notifications that were put back.
    failures: Mutex<HashMap<String, u32>>,
    listener: tokio::sync::Mutex<Option<tokio::task::JoinHandle<Listener>>>,
}

impl NotificationListener {
    /// Declares the queues and starts consuming.
    pub async fn start(
        transport: &Arc<dyn Transport>,
        options: ListenerOptions,
        endpoint: Arc<dyn NotificationEndpoint>,
    ) -> Result<NotificationListener, TransportError> {
        let listener =
            transport.listen_notifications(&options.targets, &options.priorities, options.pool.as_deref()).await?;
        let inner = Arc::new(Inner {
            executor: Arc::new(Semaphore::new(options.executor_size.max(1))),
            options,
            endpoint: ArcSwap::from_pointee(endpoint),
            tracker: TaskTracker::new(),
            stop: CancellationToken::new(),
            recent: Mutex::default(),
            failures: Mutex::default(),
            listener: tokio::sync::Mutex::new(None),
        });
        let consumer = tokio::spawn(consume(inner.clone(), listener));
        *inner.listener.lock().await = Some(consumer);
        tracing::info!(endpoint = inner.endpoint.load().name(), targets = ?inner.options.targets, pool = ?inner.options.pool, "notification listener consuming");
        Ok(NotificationListener { inner })
    }

    /// The options it was started with.
    #[must_use]
    pub fn options(&self) -> &ListenerOptions {
        &self.inner.options
    }

    /// Swaps the endpoint (hot reload); notifications already being handled finish on the old one.
    pub fn replace(&self, endpoint: Arc<dyn NotificationEndpoint>) {
        self.inner.endpoint.store(Arc::new(endpoint));
    }

    /// Stops consuming and waits (at most `bound`) for notifications being handled.
    pub async fn stop(&self, bound: Duration) {
        self.inner.stop.cancel();
        let consumer = self.inner.listener.lock().await.take();
        self.inner.tracker.close();
        let _ = tokio::time::timeout(bound, self.inner.tracker.wait()).await;
        if let Some(consumer) = consumer
            && let Ok(listener) = consumer.await
        {
            listener.close().await;
        }
    }
}

async fn consume(inner: Arc<Inner>, mut listener: Listener) -> Listener {
    loop {
        let permit = tokio::select! {
            () = inner.stop.cancelled() => break,
            p = inner.executor.clone().acquire_owned() => p.expect("never closed"),
        };
        let incoming = tokio::select! {
            () = inner.stop.cancelled() => break,
            next = listener.next() => match next { Some(i) => i, None => break },
        };
        let inner = inner.clone();
        inner.tracker.clone().spawn(async move {
            handle(&inner, incoming).await;
            drop(permit);
        });
    }
    listener
}

async fn handle(inner: &Inner, incoming: Incoming) {
    let queue = incoming.queue.clone();
    let notification = match Notification::decode(&incoming.body.wire()) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(%queue, "rejecting an undecodable notification: {e}");
            let _ = incoming.reject().await;
            return;
        }
    };
    if seen(inner, notification.unique_id.as_deref()) {
        tracing::info!(%queue, event_type = %notification.event_type, "duplicate notification dropped (same _unique_id)");
        let _ = incoming.ack().await;
        return;
    }
    let endpoint = inner.endpoint.load_full();
    let mut ctx = notification.context;
    // oslo's listeners unpack the context as RPC servers do: client_timeout comes along.
    ctx.entry("client_timeout").or_insert(Value::Null);
    let mut metadata = Map::new();
    metadata.insert("message_id".into(), Value::String(notification.message_id));
    metadata.insert("timestamp".into(), Value::String(notification.timestamp));
    let delivered = Delivered {
        priority: notification.priority.to_lowercase(),
        ctx,
        publisher_id: notification.publisher_id,
        event_type: notification.event_type,
        payload: notification.payload,
        metadata,
    };
    let unique_id = notification.unique_id;
    let message_id = delivered.metadata.get("message_id").and_then(Value::as_str).unwrap_or_default().to_owned();
    let d = &delivered;
    let wanted = endpoint.handles(&d.priority)
        && endpoint.filter().is_none_or(|f| f.matches(&d.ctx, &d.publisher_id, &d.event_type, &d.metadata, &d.payload));
    let outcome = if wanted {
        let event_type = delivered.event_type.clone();
        endpoint.handle(delivered).await.unwrap_or_else(|e| {
            tracing::warn!(endpoint = endpoint.name(), %event_type, "notification handling failed: {e}");
            Handled::Requeue
        })
    } else {
        Handled::Handled
    };
    let settled = match outcome {
        Handled::Requeue if inner.options.allow_requeue => {
            let failed = count_failure(inner, &message_id);
            if failed >= MAX_DELIVERIES {
                tracing::error!(
                    endpoint = endpoint.name(),
                    %queue,
                    %message_id,
                    "a notification failed {failed} times, redelivered each time; rejected as a poison message"
                );
                incoming.reject().await
            } else {
                tokio::time::sleep(REQUEUE_PAUSE * failed).await;
                incoming.requeue().await
            }
        }
        Handled::Requeue => {
            tracing::debug!(endpoint = endpoint.name(), "requeue asked but not allowed; acknowledged");
            remember(inner, unique_id);
            incoming.ack().await
        }
        Handled::Handled => {
            if inner.options.allow_requeue {
                lock(&inner.failures).remove(&message_id);
            }
            remember(inner, unique_id);
            incoming.ack().await
        }
    };
    if let Err(e) = settled {
        tracing::warn!(%queue, "could not settle a notification: {e}");
    }
}

/// Whether this `_unique_id` is among the last ones acknowledged, as oslo's listener keeps
/// them. Requeued messages are not remembered: their redelivery must be handled.
fn seen(inner: &Inner, unique_id: Option<&str>) -> bool {
    unique_id.is_some_and(|id| lock(&inner.recent).contains(id))
}

/// Counts a failed delivery of `message_id`; returns the failures so far.
fn count_failure(inner: &Inner, message_id: &str) -> u32 {
    let mut failures = lock(&inner.failures);
    if failures.len() >= COUNTED && !failures.contains_key(message_id) {
        failures.clear();
    }
    let count = failures.entry(message_id.to_owned()).or_default();
    *count += 1;
    let failed = *count;
    if failed >= MAX_DELIVERIES {
        failures.remove(message_id);
    }
    failed
}

fn remember(inner: &Inner, unique_id: Option<String>) {
    if let Some(id) = unique_id {
        lock(&inner.recent).insert(id);
    }
}
