//! Transports move message bodies between clients and servers; they never parse them.
//!
//! [`Transport`] is the seam oslo.messaging calls a *driver*: it knows the broker's topology
//! (which exchange and queue a target maps to, how fanout and replies are routed, when to
//! acknowledge) and nothing about what is inside a message. Two implementations:
//!
//! - `memory/`: [`MemoryTransport`], an in-process broker with the same topology as
//!   RabbitMQ (oslo's fake driver, as a product feature): topic queues shared by competing
//!   servers, `topic.server` queues, fanout to every server, reply queues, expiration,
//!   requeue. RPC requests and replies published in-process stay decoded ([`Body`]); bytes
//!   published as bytes arrive as those bytes.
//! - `rabbit/`: [`RabbitTransport`], RabbitMQ through lapin (the only module that names
//!   lapin).
//!
//! A [`Listener`] is a stream of [`Incoming`] messages, whatever the transport; what only
//! some transports can do is a capability a listener may offer ([`DirectDelivery`]).
//!
//! [`connect`] picks one from a [`TransportUrl`].

mod body;
mod memory;
mod rabbit;

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::{Stream, StreamExt};

pub use body::Body;
pub use memory::MemoryTransport;
pub use rabbit::{FailoverStrategy, OptionError, RabbitOptions, RabbitTransport};

use crate::protocol::{ListenTarget, NotificationTarget, Target, TransportDriver, TransportUrl};

/// What can go wrong moving messages.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct TransportError {
    /// What kind of failure, for callers deciding to retry, reconnect or give up.
    pub kind: ErrorKind,
    /// Details (never a password).
    pub message: String,
}

/// Kinds of [`TransportError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A `mandatory` message had no queue to go to (a reply to a vanished reply queue).
    Unroutable,
    /// The broker is unreachable or the connection dropped.
    Connection,
    /// The broker refused a declaration (e.g. `PRECONDITION_FAILED` on mismatched flags).
    Declare,
    /// The transport was closed.
    Closed,
    /// The URL or options are invalid.
    Config,
    /// The message is over `max_message_size` (ours or the broker's); only it failed.
    TooLarge,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Unroutable => "unroutable",
            ErrorKind::Connection => "connection error",
            ErrorKind::Declare => "declaration refused",
            ErrorKind::Closed => "transport closed",
            ErrorKind::Config => "invalid transport configuration",
            ErrorKind::TooLarge => "message too large",
        })
    }
}

impl TransportError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> TransportError {
        TransportError { kind, message: message.into() }
    }

    /// Whether the message had nowhere to go.
    #[must_use]
    pub fn is_unroutable(&self) -> bool {
        self.kind == ErrorKind::Unroutable
    }
}

/// A message to publish, with the AMQP properties oslo sets.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The body (encoded by the transport if it leaves the process).
    pub body: Body,
    /// Per-message TTL; oslo sets it on calls only (the call timeout).
    pub expiration: Option<Duration>,
    /// Fail with [`ErrorKind::Unroutable`] instead of dropping silently when no queue takes it.
    pub mandatory: bool,
    /// Wait for the broker to confirm it took the message (casts and notifications; a call
    /// needs no confirm, its reply is the proof).
    pub confirm: bool,
}

impl Outgoing {
    /// A body with no expiration, not mandatory, confirmed (a cast).
    #[must_use]
    pub fn new(body: impl Into<Body>) -> Outgoing {
        Outgoing { body: body.into(), expiration: None, mandatory: false, confirm: true }
    }
}

/// Receives reply bodies (see [`Transport::listen_replies`]).
pub type ReplyHandler = Arc<dyn Fn(Body) + Send + Sync>;

/// Takes a message in the publisher's task as it is published, instead of leaving it for
/// [`Listener::next`]; hands it back (`Some`) when it cannot take it now, and it is queued.
/// It runs under the broker's locks: it must not publish or wait.
pub type DirectHandler = Box<dyn Fn(Incoming) -> Option<Incoming> + Send + Sync>;

/// A listener's messages handed to a [`DirectHandler`] in the publisher's task, as they are
/// published, whenever nothing older waits for the listener: no queueing, and no wake-up of
/// the task reading [`Listener::next`]. Only `memory://` can: a RabbitMQ delivery arrives on
/// the connection's task anyway. An RPC server uses it when its listener has it.
///
/// It pays for itself on BENCHMARKS.md's "RPC over memory://" rows (the RPC layer alone is the
/// row "RPC over memory://: a Rust endpoint (no Wasm)").
pub trait DirectDelivery: Send + Sync {
    /// Sets the handler, or clears it (`None`): then it returns once a delivery under way has
    /// finished, and later messages are queued.
    fn set_handler(&self, handler: Option<DirectHandler>);
}

/// Settles a received message with the broker.
#[async_trait::async_trait]
pub trait Acknowledge: Send + Sync {
    /// Done with it.
    async fn ack(self: Box<Self>) -> Result<(), TransportError>;
    /// Put it back for redelivery.
    async fn requeue(self: Box<Self>) -> Result<(), TransportError>;
    /// Drop it (undecodable).
    async fn reject(self: Box<Self>) -> Result<(), TransportError>;
}

/// A received message.
pub struct Incoming {
    /// The body as published.
    pub body: Body,
    /// The queue it came from (for logs).
    pub queue: Arc<str>,
    /// When the sender stops waiting (from the message's expiration), if known.
    pub deadline: Option<Instant>,
    /// Whether the broker delivered it before.
    pub redelivered: bool,
    acker: Box<dyn Acknowledge>,
}

impl fmt::Debug for Incoming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming").field("queue", &self.queue).field("body", &self.body).finish_non_exhaustive()
    }
}

impl Incoming {
    pub(crate) fn new(
        body: Body,
        queue: Arc<str>,
        deadline: Option<Instant>,
        redelivered: bool,
        acker: Box<dyn Acknowledge>,
    ) -> Incoming {
        Incoming { body, queue, deadline, redelivered, acker }
    }

    /// Acknowledges: done with it.
    pub async fn ack(self) -> Result<(), TransportError> {
        self.acker.ack().await
    }

    /// Puts the message back on its queue.
    pub async fn requeue(self) -> Result<(), TransportError> {
        self.acker.requeue().await
    }

    /// Drops the message (it cannot be processed).
    pub async fn reject(self) -> Result<(), TransportError> {
        self.acker.reject().await
    }
}

/// Stops a listener's consumers and cleans up what it declared for itself.
#[async_trait::async_trait]
pub trait ListenerControl: Send + Sync {
    /// Stops consuming and removes private queues (the fanout queue). Idempotent.
    async fn close(&self);

    /// The transport's [`DirectDelivery`] for this listener, if it has that capability.
    fn direct_delivery(&self) -> Option<&dyn DirectDelivery> {
        None
    }
}

/// A stream of received messages. Dropping it stops consumption; [`Listener::close`] also
/// deletes the private queues it declared, as oslo does when a server's `wait()` ends.
pub struct Listener {
    messages: Pin<Box<dyn Stream<Item = Incoming> + Send>>,
    control: Arc<dyn ListenerControl>,
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener").finish_non_exhaustive()
    }
}

impl Listener {
    pub(crate) fn new(
        messages: impl Stream<Item = Incoming> + Send + 'static,
        control: Arc<dyn ListenerControl>,
    ) -> Listener {
        Listener { messages: Box::pin(messages), control }
    }

    /// The next message; `None` once the listener is closed.
    pub async fn next(&mut self) -> Option<Incoming> {
        self.messages.next().await
    }

    /// The transport's [`DirectDelivery`] for this listener, if it has that capability.
    #[must_use]
    pub fn direct_delivery(&self) -> Option<&dyn DirectDelivery> {
        self.control.direct_delivery()
    }

    /// A handle that can stop this listener from elsewhere.
    #[must_use]
    pub fn control(&self) -> Arc<dyn ListenerControl> {
        self.control.clone()
    }

    /// Stops consuming and deletes private queues.
    pub async fn close(self) {
        self.control.close().await;
    }
}

/// A broker, as the RPC and notification layers see it (oslo.messaging's driver).
#[async_trait::async_trait]
pub trait Transport: Send + Sync + fmt::Debug + 'static {
    /// The exchange used when a target names none (oslo's `control_exchange`).
    fn control_exchange(&self) -> &str;

    /// Publishes an RPC request: to `<exchange>` with key `topic` or `topic.server`, or to
    /// `<topic>_fanout` when `target.fanout`. Declares the exchange as oslo's client does.
    async fn send(&self, target: &Target, message: Outgoing) -> Result<(), TransportError>;

    /// Starts consuming what an RPC server receives: the shared `topic` queue, its own
    /// `topic.server` queue and a private fanout queue.
    async fn listen(&self, target: &ListenTarget) -> Result<Listener, TransportError>;

    /// Declares this process's reply queue (`reply_<hex>`) and hands every reply body to
    /// `handler` as it arrives (acknowledged first, as oslo's reply consumer does). Returns the
    /// queue's name. A handler rather than a stream: a reply goes straight to the call waiting
    /// for it, without a hop through another task.
    async fn listen_replies(&self, handler: ReplyHandler) -> Result<String, TransportError>;

    /// Publishes a reply to `reply_q` on the default exchange, `mandatory`.
    async fn send_reply(&self, reply_q: &str, body: Body) -> Result<(), TransportError>;

    /// Publishes a notification to `<exchange>` with key `<topic>.<priority>`, declaring the
    /// `<topic>.<priority>` queue first, as oslo's notifier does.
    async fn send_notification(
        &self,
        exchange: Option<&str>,
        topic: &str,
        priority: &str,
        body: Bytes,
    ) -> Result<(), TransportError>;

    /// Consumes notifications for `targets` and `priorities`: one queue per
    /// `<topic>.<priority>`, or a single queue named after `pool`.
    async fn listen_notifications(
        &self,
        targets: &[NotificationTarget],
        priorities: &[String],
        pool: Option<&str>,
    ) -> Result<Listener, TransportError>;

    /// Closes connections; later calls fail with [`ErrorKind::Closed`].
    async fn close(&self);

    /// Whether the broker is reachable now, without waiting on a reconnect in progress (for
    /// health probes and metrics). An in-process transport is always connected.
    fn health(&self) -> TransportHealth {
        TransportHealth { connected: true, reconnects: 0 }
    }
}

/// A transport's link to its broker, as [`Transport::health`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportHealth {
    /// The connection the listeners use is up.
    pub connected: bool,
    /// Times it was replaced after it died.
    pub reconnects: u64,
}

/// Options shared by every transport.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// oslo's `control_exchange` (default `openstack`).
    pub control_exchange: String,
    /// `[oslo_messaging_rabbit]` options from the configuration file, by oslo's names; the URL
    /// query overrides them.
    pub rabbit: Vec<(String, String)>,
}

impl Default for TransportOptions {
    fn default() -> TransportOptions {
        TransportOptions { control_exchange: "openstack".into(), rabbit: Vec::new() }
    }
}

/// Connects the transport a URL names. An older name of a driver (`fake://`, `pika://`) works,
/// and is logged once per process so the operator can update the configuration.
pub async fn connect(url: &TransportUrl, options: TransportOptions) -> Result<Arc<dyn Transport>, TransportError> {
    static FAKE: std::sync::Once = std::sync::Once::new();
    static PIKA: std::sync::Once = std::sync::Once::new();
    match url.alias_of() {
        Some(now) if url.scheme == "fake" => FAKE.call_once(|| {
            tracing::info!("transport URL scheme fake:// (oslo's fake driver) is served by {now}://, the in-process transport");
        }),
        Some(now) => PIKA.call_once(|| {
            tracing::warn!("transport URL scheme pika:// (oslo's retired pika driver) is served by {now}://, the same RabbitMQ broker; write {now}:// instead");
        }),
        None => {}
    }
    match url.driver {
        TransportDriver::Memory => Ok(Arc::new(MemoryTransport::new(url, &options.control_exchange))),
        TransportDriver::Rabbit => {
            Ok(Arc::new(RabbitTransport::connect(url, &options.control_exchange, &options.rabbit).await?))
        }
    }
}
