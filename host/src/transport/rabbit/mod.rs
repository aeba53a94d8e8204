//! `rabbit://`: RabbitMQ through lapin, speaking what oslo.messaging's rabbit driver speaks.
//! This module is the only one that names lapin.
//!
//! - `options.rs`: oslo's `[oslo_messaging_rabbit]` options (pure).
//! - `topology.rs`: the exchanges, queues and bindings oslo declares (pure, unit-tested against
//!   captures from the Python library).
//! - `link.rs`: connections with failover, heartbeats, TLS and reconnection.
//! - here: publishing (with publisher confirms, the properties oslo sets) and consuming (one
//!   channel per listener, re-declared and re-consumed after every reconnect).
//!
//! Two connections per transport, as oslo keeps publishing and listening apart: one publishes
//! (a confirm-mode channel shared by every sender), one carries every listener's channel.

mod link;
mod options;
mod topology;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, ExchangeKind};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use options::{FailoverStrategy, OptionError, RabbitOptions};

use self::link::{Connector, Link, describe_error};
use self::topology::{ArgValue, Binding, ExchangeSpec, ExchangeType, Topology};
use super::{
    Acknowledge, Body, ErrorKind, Incoming, Listener, ListenerControl, Outgoing, ReplyHandler, Transport,
    TransportError,
};
use crate::locks::lock;
use crate::protocol::{ListenTarget, Target, TransportUrl, new_id};

/// How long a publish keeps retrying through reconnects before it gives up.
const PUBLISH_RETRY: Duration = Duration::from_secs(30);

/// The `rabbit://` transport.
pub struct RabbitTransport {
    shared: Arc<Shared>,
}

struct Shared {
    /// The URL, password redacted.
    url: String,
    control_exchange: String,
    options: RabbitOptions,
    topology: Topology,
    publisher: Link,
    consumers: Link,
    publishing: tokio::sync::Mutex<Option<PublishChannel>>,
    closed: CancellationToken,
    /// Listener tasks, so closing can let them wind down before the connections go.
    listeners: tokio_util::task::TaskTracker,
}

/// The confirm-mode channel used for publishing, and what has been declared on it.
struct PublishChannel {
    channel: Channel,
    generation: u64,
    declared: Arc<Mutex<HashSet<String>>>,
}

impl std::fmt::Debug for RabbitTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitTransport").field("url", &self.shared.url).finish_non_exhaustive()
    }
}

impl RabbitTransport {
    /// Parses the options (wasmrpc.toml's, then the URL query's) and connects both links,
    /// making one round of attempts over the URL's hosts.
    pub async fn connect(
        url: &TransportUrl,
        control_exchange: &str,
        config_options: &[(String, String)],
    ) -> Result<RabbitTransport, TransportError> {
        let pairs = config_options.iter().chain(url.query.iter()).map(|(k, v)| (k.as_str(), v.as_str()));
        let options = RabbitOptions::default()
            .apply(pairs)
            .map_err(|e| TransportError::new(ErrorKind::Config, format!("{url}: {e}")))?;
        let connector = Arc::new(Connector::new(url, &options)?);
        let closed = CancellationToken::new();
        let shared = Arc::new(Shared {
            url: url.to_string(),
            control_exchange: control_exchange.to_owned(),
            topology: Topology::new(options.clone()),
            options,
            publisher: Link::new(connector.clone(), "publisher", closed.clone()),
            consumers: Link::new(connector.clone(), "listener", closed.clone()),
            publishing: tokio::sync::Mutex::new(None),
            closed,
            listeners: tokio_util::task::TaskTracker::new(),
        });
        let first = connector.connect_once("publisher").await.map_err(|e| {
            TransportError::new(
                e.kind,
                format!("cannot connect to {} ({}): {}", shared.url, connector.describe(), e.message),
            )
        })?;
        shared.publisher.install(first).await;
        Ok(RabbitTransport { shared })
    }

    /// The parsed options.
    #[must_use]
    pub fn options(&self) -> &RabbitOptions {
        &self.shared.options
    }
}

/// oslo's message properties: JSON, UTF-8, persistent, priority 0, empty headers, and the
/// expiration (milliseconds, as text) on calls only.
fn properties(expiration: Option<Duration>) -> BasicProperties {
    let props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_content_encoding("utf-8".into())
        .with_headers(FieldTable::default())
        .with_delivery_mode(2)
        .with_priority(0);
    match expiration {
        Some(ttl) => props.with_expiration(ttl.as_millis().to_string().into()),
        None => props,
    }
}

fn field_table(args: &[(String, ArgValue)]) -> FieldTable {
    let mut table = FieldTable::default();
    for (k, v) in args {
        let value = match v {
            ArgValue::Int(i) => AMQPValue::LongLongInt(*i),
            ArgValue::Text(s) => AMQPValue::LongString(s.as_str().into()),
        };
        table.insert(k.as_str().into(), value);
    }
    table
}

fn amqp_error(context: &str, e: &lapin::Error) -> TransportError {
    let kind = if e.is_amqp_soft_error() { ErrorKind::Declare } else { ErrorKind::Connection };
    TransportError::new(kind, format!("{context}: {}", describe_error(e)))
}

async fn declare_exchange(channel: &Channel, ex: &ExchangeSpec) -> Result<(), lapin::Error> {
    let kind = match ex.kind {
        ExchangeType::Topic => ExchangeKind::Topic,
        ExchangeType::Fanout => ExchangeKind::Fanout,
    };
    let options = ExchangeDeclareOptions {
        durable: ex.durable,
        auto_delete: ex.auto_delete,
        ..ExchangeDeclareOptions::default()
    };
    channel.exchange_declare(ex.name.as_str().into(), kind, options, FieldTable::default()).await
}

/// Declares the queue (and its exchange and binding).
async fn declare(channel: &Channel, b: &Binding) -> Result<(), lapin::Error> {
    if let Some(ex) = &b.exchange {
        declare_exchange(channel, ex).await?;
    }
    let q = &b.queue;
    let options =
        QueueDeclareOptions { durable: q.durable, auto_delete: q.auto_delete, ..QueueDeclareOptions::default() };
    channel.queue_declare(q.name.as_str().into(), options, field_table(&q.arguments)).await?;
    if let Some(ex) = &b.exchange {
        channel
            .queue_bind(
                q.name.as_str().into(),
                ex.name.as_str().into(),
                b.key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

impl Shared {
    /// The publishing channel, (re)opened in confirm mode when needed.
    async fn publish_channel(&self, patient: bool) -> Result<(Channel, Arc<Mutex<HashSet<String>>>), TransportError> {
        let mut current = self.publishing.lock().await;
        if let Some(p) = current.as_ref()
            && p.channel.status().connected()
        {
            return Ok((p.channel.clone(), p.declared.clone()));
        }
        let (conn, generation) = if patient { self.publisher.get().await? } else { self.publisher.try_get().await? };
        let channel = conn.create_channel().await.map_err(|e| amqp_error("cannot open a channel", &e))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| amqp_error("cannot enable publisher confirms", &e))?;
        let declared = Arc::new(Mutex::new(HashSet::new()));
        *current = Some(PublishChannel { channel: channel.clone(), generation, declared: declared.clone() });
        Ok((channel, declared))
    }

    /// Forgets the publishing channel so the next publish opens a new one.
    async fn drop_publish_channel(&self) {
        if let Some(p) = self.publishing.lock().await.take() {
            tracing::debug!(generation = p.generation, "publishing channel dropped");
        }
    }

    /// Publishes, declaring `binding`'s exchange (and queue, for notifications) first, once per
    /// channel. Retries through reconnects for a while. With `confirm`, waits for the broker's
    /// confirm, and reports a mandatory message the broker returned as unroutable.
    async fn publish(
        &self,
        declare_first: Option<Declare<'_>>,
        exchange: &str,
        key: &str,
        message: &Outgoing,
    ) -> Result<(), TransportError> {
        // Encoded once, however many attempts it takes (a body already encoded is only shared).
        let message = &Outgoing { body: Body::Wire(message.body.wire()), ..message.clone() };
        let give_up = Instant::now() + message.expiration.unwrap_or(PUBLISH_RETRY).min(PUBLISH_RETRY);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self.publish_once(declare_first.as_ref(), exchange, key, message).await {
                Ok(()) => return Ok(()),
                Err(e)
                    if e.kind == ErrorKind::Connection && Instant::now() < give_up && !self.closed.is_cancelled() =>
                {
                    tracing::warn!(%exchange, %key, attempt, "publish failed ({e}); retrying after reconnecting");
                    self.drop_publish_channel().await;
                    tokio::time::sleep(self.options.rabbit_retry_interval.min(Duration::from_secs(1))).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn publish_once(
        &self,
        declare_first: Option<&Declare<'_>>,
        exchange: &str,
        key: &str,
        message: &Outgoing,
    ) -> Result<(), TransportError> {
        let (channel, declared) = self.publish_channel(true).await?;
        if let Some(what) = declare_first {
            let id = what.id();
            let known = lock(&declared).contains(&id);
            if !known {
                let mut result = match what {
                    Declare::Exchange(ex) => declare_exchange(&channel, ex).await,
                    Declare::Queue(binding) => declare(&channel, binding).await,
                };
                // oslo's fallback: a durable exchange refused because a non-durable one exists
                // (another service declared it first) is declared non-durable instead.
                if let (Err(e), Declare::Exchange(ex)) = (&result, what)
                    && ex.durable
                    && describe_error(e).contains("inequivalent arg 'durable'")
                {
                    tracing::info!(exchange = %ex.name, "retrying to declare the exchange as non durable");
                    self.drop_publish_channel().await;
                    let (fresh, _) = self.publish_channel(true).await?;
                    result = declare_exchange(&fresh, &ExchangeSpec { durable: false, ..ex.clone() }).await;
                    if result.is_ok() {
                        lock(&declared).insert(id.clone());
                        return self.publish_on(&fresh, exchange, key, message).await;
                    }
                }
                if let Err(e) = result {
                    // A refused declaration closes the channel: open a new one next time.
                    self.drop_publish_channel().await;
                    return Err(amqp_error(&format!("declaring {id}"), &e));
                }
                lock(&declared).insert(id);
            }
        }
        self.publish_on(&channel, exchange, key, message).await
    }

    async fn publish_on(
        &self,
        channel: &Channel,
        exchange: &str,
        key: &str,
        message: &Outgoing,
    ) -> Result<(), TransportError> {
        let options = BasicPublishOptions { mandatory: message.mandatory, immediate: false };
        let body = message.body.wire();
        let confirm = channel
            .basic_publish(exchange.into(), key.into(), options, &body, properties(message.expiration))
            .await
            .map_err(|e| amqp_error("publish", &e))?;
        if !message.confirm {
            // Nothing waits for the broker's confirm; a failure only shows in the log.
            tokio::spawn(async move {
                if let Err(e) = confirm.await {
                    tracing::debug!("publish not confirmed: {}", describe_error(&e));
                }
            });
            return Ok(());
        }
        match confirm.await.map_err(|e| amqp_error("publisher confirm", &e))? {
            Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
            Confirmation::Ack(Some(_)) | Confirmation::Nack(Some(_)) => Err(TransportError::new(
                ErrorKind::Unroutable,
                format!("no queue took the message (exchange {exchange:?}, key {key:?})"),
            )),
            Confirmation::Nack(None) => {
                Err(TransportError::new(ErrorKind::Connection, "the broker refused the message (nack)"))
            }
        }
    }

    /// Declares `bindings` and consumes every queue into one listener; reconnects and
    /// re-declares as long as the listener lives. `private` queues are deleted on close.
    async fn consume(
        self: &Arc<Self>,
        bindings: Vec<Binding>,
        private: Vec<String>,
    ) -> Result<Listener, TransportError> {
        let (tx, mut rx) = mpsc::channel(64);
        let stop = self.start_consuming(bindings, Sink::Channel(tx)).await?;
        let messages = futures_lite::stream::poll_fn(move |cx| rx.poll_recv(cx));
        Ok(Listener::new(messages, Arc::new(RabbitListener { shared: self.clone(), stop, private })))
    }

    /// Declares and consumes `bindings` into `sink` until the returned token is cancelled
    /// (or the transport closes).
    async fn start_consuming(
        self: &Arc<Self>,
        bindings: Vec<Binding>,
        sink: Sink,
    ) -> Result<CancellationToken, TransportError> {
        let session = self.open_session(&bindings, false).await?;
        let stop = self.closed.child_token();
        self.listeners.spawn(run_listener(self.clone(), bindings, session, sink, stop.clone()));
        Ok(stop)
    }

    /// A channel with the queues declared and consumed.
    ///
    /// A topic's fanout exchange is auto-delete: it goes when the last queue bound to it goes.
    /// Another server of the topic stopping between our declaring the exchange and binding our
    /// queue to it makes the bind fail with 404, which closes the channel; declaring everything
    /// again on a new channel settles it.
    async fn open_session(&self, bindings: &[Binding], patient: bool) -> Result<Session, TransportError> {
        const ATTEMPTS: usize = 5;
        let mut attempt = 1;
        loop {
            match self.try_open_session(bindings, patient).await {
                Ok(session) => return Ok(session),
                Err(Opening::ExchangeVanished(e)) if attempt < ATTEMPTS => {
                    tracing::debug!("{e}; declaring again (attempt {attempt} of {ATTEMPTS})");
                    attempt += 1;
                }
                Err(Opening::ExchangeVanished(e) | Opening::Failed(e)) => return Err(e),
            }
        }
    }

    async fn try_open_session(&self, bindings: &[Binding], patient: bool) -> Result<Session, Opening> {
        let (conn, generation) = if patient { self.consumers.get().await? } else { self.consumers.try_get().await? };
        let channel = conn.create_channel().await.map_err(|e| amqp_error("cannot open a channel", &e))?;
        if self.options.rabbit_qos_prefetch_count > 0 {
            channel
                .basic_qos(self.options.rabbit_qos_prefetch_count, BasicQosOptions::default())
                .await
                .map_err(|e| amqp_error("basic.qos", &e))?;
        }
        let mut consume_args = FieldTable::default();
        if self.topology.cancel_on_failover() {
            consume_args.insert("x-cancel-on-ha-failover".into(), AMQPValue::Boolean(true));
        }
        let mut consumers = Vec::new();
        let mut queues: Vec<&str> = Vec::new();
        for b in bindings {
            declare(&channel, b).await.map_err(|e| {
                let what = b.exchange.as_ref().map_or_else(
                    || format!("queue {}", b.queue.name),
                    |ex| format!("queue {} on exchange {}", b.queue.name, ex.name),
                );
                let error = amqp_error(&format!("declaring {what}"), &e);
                if is_not_found(&e) { Opening::ExchangeVanished(error) } else { Opening::Failed(error) }
            })?;
            if queues.contains(&b.queue.name.as_str()) {
                continue; // a pool queue bound several times is consumed once
            }
            queues.push(&b.queue.name);
            let consumer = channel
                .basic_consume(
                    b.queue.name.as_str().into(),
                    ShortString::from(""),
                    BasicConsumeOptions::default(),
                    consume_args.clone(),
                )
                .await
                .map_err(|e| amqp_error(&format!("consuming {}", b.queue.name), &e))?;
            consumers.push((Arc::<str>::from(b.queue.name.as_str()), consumer));
        }
        Ok(Session { channel, generation, consumers })
    }
}

/// Why an attempt to open a consuming session failed.
enum Opening {
    /// An exchange a queue binds to was gone by the time of the bind: another attempt declares
    /// it again.
    ExchangeVanished(TransportError),
    Failed(TransportError),
}

impl From<TransportError> for Opening {
    fn from(e: TransportError) -> Opening {
        Opening::Failed(e)
    }
}

/// A 404: during a declaration, only a bind to a missing exchange gets one.
fn is_not_found(e: &lapin::Error) -> bool {
    matches!(e.kind(), lapin::ErrorKind::ProtocolError(amqp) if matches!(amqp.kind(), AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)))
}

/// What a publisher declares before its first publish on a channel.
enum Declare<'a> {
    /// The target exchange (RPC sends).
    Exchange(ExchangeSpec),
    /// A queue bound to its exchange (the notifier's default queue).
    Queue(&'a Binding),
}

impl Declare<'_> {
    fn id(&self) -> String {
        match self {
            Declare::Exchange(ex) => format!("exchange {}", ex.name),
            Declare::Queue(b) => {
                format!("queue {} on {}", b.queue.name, b.exchange.as_ref().map_or("", |e| e.name.as_str()))
            }
        }
    }
}

struct Session {
    channel: Channel,
    generation: u64,
    consumers: Vec<(Arc<str>, lapin::Consumer)>,
}

/// Where deliveries go.
#[derive(Clone)]
enum Sink {
    /// To a listener, which settles them.
    Channel(mpsc::Sender<Incoming>),
    /// Straight to a reply handler, acknowledged first (the reply queue).
    Handler(ReplyHandler),
}

impl Sink {
    fn is_closed(&self) -> bool {
        match self {
            Sink::Channel(tx) => tx.is_closed(),
            Sink::Handler(_) => false,
        }
    }

    /// Delivers; false when the listener is gone.
    async fn deliver(&self, incoming: Incoming) -> bool {
        match self {
            Sink::Channel(tx) => tx.send(incoming).await.is_ok(),
            Sink::Handler(handler) => {
                let (body, _) = incoming.ack().await;
                handler(body);
                true
            }
        }
    }
}

/// Forwards deliveries until the listener stops; after a lost connection, reconnects (with
/// backoff) and declares and consumes everything again, as oslo does.
async fn run_listener(
    shared: Arc<Shared>,
    bindings: Vec<Binding>,
    first: Session,
    sink: Sink,
    stop: CancellationToken,
) {
    let mut session = Some(first);
    loop {
        let current = match session.take() {
            Some(s) => s,
            None => {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(shared.options.kombu_reconnect_delay) => {}
                }
                match tokio::select! { () = stop.cancelled() => return, s = shared.open_session(&bindings, true) => s }
                {
                    Ok(s) => {
                        let queues: Vec<&str> = s.consumers.iter().map(|(q, _)| &**q).collect();
                        tracing::info!(queues = ?queues, "consuming again after reconnecting");
                        s
                    }
                    Err(e) => {
                        tracing::warn!("cannot restore consumers: {e}");
                        continue;
                    }
                }
            }
        };
        let channel = current.channel.clone();
        let reason = forward(current.consumers, &sink, &stop).await;
        if stop.is_cancelled() || sink.is_closed() {
            let _ = channel.close(200, "listener stopped".into()).await;
            return;
        }
        tracing::warn!(generation = current.generation, "lost the broker connection ({reason}); reconnecting");
    }
}

/// Forwards from every consumer of a session; returns why it ended.
async fn forward(consumers: Vec<(Arc<str>, lapin::Consumer)>, sink: &Sink, stop: &CancellationToken) -> String {
    let mut tasks = tokio::task::JoinSet::new();
    for (queue, mut consumer) in consumers {
        let sink = sink.clone();
        tasks.spawn(async move {
            while let Some(delivery) = consumer.next().await {
                match delivery {
                    Ok(d) => {
                        if let Some(incoming) = incoming(&queue, d).await
                            && !sink.deliver(incoming).await
                        {
                            return "the listener was dropped".to_owned();
                        }
                    }
                    Err(e) => return format!("queue {queue}: {}", describe_error(&e)),
                }
            }
            format!("the broker cancelled the consumer of {queue}")
        });
    }
    let reason = tokio::select! {
        () = stop.cancelled() => "stopped".to_owned(),
        done = tasks.join_next() => done.map_or_else(|| "no queues".to_owned(), |r| r.unwrap_or_else(|e| e.to_string())),
    };
    tasks.abort_all();
    reason
}

/// A delivery as an [`Incoming`]; messages oslo would reject (not JSON, compressed) are
/// rejected here, with a log line naming the queue and the reason.
async fn incoming(queue: &Arc<str>, d: Delivery) -> Option<Incoming> {
    let reason = match d.properties.content_type().as_ref().map(|c| c.as_str().to_owned()) {
        Some(ct) if ct != "application/json" => Some(format!("content type {ct:?} is not application/json")),
        _ => d.properties.headers().as_ref().and_then(|h| {
            h.inner().get("compression").map(|_| "compressed bodies (kombu_compression) are not supported".to_owned())
        }),
    };
    if let Some(reason) = reason {
        tracing::warn!(%queue, "rejecting a message: {reason}");
        let _ = d.acker.reject(BasicRejectOptions { requeue: false }).await;
        return None;
    }
    let deadline = d
        .properties
        .expiration()
        .as_ref()
        .and_then(|e| e.as_str().parse::<u64>().ok())
        .map(|ms| Instant::now() + Duration::from_millis(ms));
    Some(Incoming::new(
        Body::Wire(Bytes::from(d.data)),
        queue.clone(),
        deadline,
        d.redelivered,
        Box::new(RabbitAck(d.acker)),
    ))
}

struct RabbitAck(lapin::Acker);

#[async_trait::async_trait]
impl Acknowledge for RabbitAck {
    async fn ack(self: Box<Self>) -> Result<(), TransportError> {
        self.0.ack(BasicAckOptions::default()).await.map(drop).map_err(|e| amqp_error("ack", &e))
    }

    async fn requeue(self: Box<Self>) -> Result<(), TransportError> {
        self.0.reject(BasicRejectOptions { requeue: true }).await.map(drop).map_err(|e| amqp_error("requeue", &e))
    }

    async fn reject(self: Box<Self>) -> Result<(), TransportError> {
        self.0.reject(BasicRejectOptions { requeue: false }).await.map(drop).map_err(|e| amqp_error("reject", &e))
    }
}

struct RabbitListener {
    shared: Arc<Shared>,
    stop: CancellationToken,
    private: Vec<String>,
}

#[async_trait::async_trait]
impl ListenerControl for RabbitListener {
    async fn close(&self) {
        self.stop.cancel();
        if self.private.is_empty() || self.shared.closed.is_cancelled() {
            return;
        }
        // oslo deletes a server's fanout queue when its listener closes.
        let Ok((conn, _)) = self.shared.consumers.try_get().await else { return };
        if let Ok(channel) = conn.create_channel().await {
            for q in &self.private {
                if let Err(e) = channel.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await {
                    tracing::debug!(queue = %q, "could not delete: {}", describe_error(&e));
                }
            }
            let _ = channel.close(200, "done".into()).await;
        }
    }
}

impl Drop for RabbitListener {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[async_trait::async_trait]
impl Transport for RabbitTransport {
    fn control_exchange(&self) -> &str {
        &self.shared.control_exchange
    }

    async fn send(&self, target: &Target, message: Outgoing) -> Result<(), TransportError> {
        let s = &self.shared;
        if target.fanout {
            let ex = s.topology.fanout_exchange(&target.topic);
            let name = ex.name.clone();
            s.publish(Some(Declare::Exchange(ex)), &name, "", &message).await
        } else {
            let exchange = target.exchange.as_deref().unwrap_or(&s.control_exchange);
            s.publish(
                Some(Declare::Exchange(s.topology.topic_exchange(exchange))),
                exchange,
                &target.routing_key(),
                &message,
            )
            .await
        }
    }

    async fn listen(&self, target: &ListenTarget) -> Result<Listener, TransportError> {
        let s = &self.shared;
        let exchange = target.exchange.as_deref().unwrap_or(&s.control_exchange);
        let fanout_queue = format!("{}_fanout_{}", target.topic, new_id());
        let bindings = s.topology.rpc_server(exchange, &target.topic, &target.server, &fanout_queue);
        s.consume(bindings, vec![fanout_queue]).await
    }

    async fn listen_replies(&self, handler: ReplyHandler) -> Result<String, TransportError> {
        let name = format!("reply_{}", new_id());
        // Stops with the transport; oslo never deletes the reply queue either (x-expires does).
        self.shared.start_consuming(vec![self.shared.topology.reply_queue(&name)], Sink::Handler(handler)).await?;
        Ok(name)
    }

    async fn send_reply(&self, reply_q: &str, body: Body) -> Result<(), TransportError> {
        // The default exchange, mandatory, confirmed: a vanished reply queue comes back as
        // unroutable, and the server retries as oslo does.
        let message = Outgoing { body, expiration: None, mandatory: true, confirm: true };
        self.shared.publish(None, "", reply_q, &message).await
    }

    async fn send_notification(
        &self,
        exchange: Option<&str>,
        topic: &str,
        priority: &str,
        body: Bytes,
    ) -> Result<(), TransportError> {
        let s = &self.shared;
        let exchange = exchange.unwrap_or(&s.control_exchange);
        let key = format!("{topic}.{priority}");
        // Store and forward: the notifier declares the `<topic>.<priority>` queue itself.
        let binding = s.topology.topic_queue(exchange, &key, &key);
        let message = Outgoing { body: Body::Wire(body), expiration: None, mandatory: false, confirm: true };
        s.publish(Some(Declare::Queue(&binding)), exchange, &key, &message).await
    }

    async fn listen_notifications(
        &self,
        targets: &[(Option<String>, String)],
        priorities: &[String],
        pool: Option<&str>,
    ) -> Result<Listener, TransportError> {
        let s = &self.shared;
        let targets: Vec<(String, String)> =
            targets.iter().map(|(e, t)| (e.clone().unwrap_or_else(|| s.control_exchange.clone()), t.clone())).collect();
        s.consume(s.topology.notification_listener(&targets, priorities, pool), Vec::new()).await
    }

    async fn close(&self) {
        let s = &self.shared;
        s.closed.cancel();
        // Let listeners drop their channels first: closing a connection while its channels are
        // still closing makes lapin report a connection error.
        s.listeners.close();
        let _ = tokio::time::timeout(Duration::from_secs(2), s.listeners.wait()).await;
        if let Some(p) = s.publishing.lock().await.take() {
            let _ = p.channel.close(200, "closing".into()).await;
        }
        s.publisher.close().await;
        s.consumers.close().await;
    }
}
