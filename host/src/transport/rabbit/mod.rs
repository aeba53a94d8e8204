//! `rabbit://`: RabbitMQ through lapin, speaking what oslo.messaging's rabbit driver speaks.
//! This module is the only one that names lapin.
//!
//! - `options.rs`: oslo's `[oslo_messaging_rabbit]` options (pure).
//! - `topology.rs`: the exchanges, queues and bindings oslo declares (pure, unit-tested against
//!   captures from the Python library).
//! - `link.rs`: connections with failover, heartbeats, TLS and reconnection.
//! - `publish.rs`: publishing, with publisher confirms and the properties oslo sets.
//! - `consume.rs`: consuming, one channel per listener, re-declared and re-consumed after
//!   every reconnect.
//!
//! Two connections per transport, as oslo keeps publishing and listening apart: one publishes
//! (a confirm-mode channel shared by every sender), one carries every listener's channel.

mod consume;
mod link;
mod options;
mod publish;
mod topology;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};
use tokio_util::sync::CancellationToken;

pub use options::{FailoverStrategy, OptionError, RabbitOptions};

use self::consume::Sink;
use self::link::{Connector, Link, describe_error};
use self::publish::{Declare, PublishChannel};
use self::topology::{ArgValue, Binding, ExchangeSpec, ExchangeType, Topology};
use super::{Body, ErrorKind, Listener, Outgoing, ReplyHandler, Transport, TransportError, TransportHealth};
use crate::protocol::{ListenTarget, NotificationTarget, Target, TransportUrl, new_id};

/// The `rabbit://` transport.
pub struct RabbitTransport {
    shared: Arc<Shared>,
}

/// What the transport's publishing and its listeners' tasks share.
struct Shared {
    /// The URL, password redacted.
    url: String,
    control_exchange: String,
    options: RabbitOptions,
    topology: Topology,
    publisher: Link,
    consumers: Link,
    /// The channel every publish goes through (see `publish.rs`).
    publishing: tokio::sync::Mutex<Option<PublishChannel>>,
    closed: CancellationToken,
    /// Listener tasks, so closing can let them wind down before the connections go.
    listeners: tokio_util::task::TaskTracker,
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
        targets: &[NotificationTarget],
        priorities: &[String],
        pool: Option<&str>,
    ) -> Result<Listener, TransportError> {
        let s = &self.shared;
        let bindings = s.topology.notification_listener(&s.control_exchange, targets, priorities, pool);
        s.consume(bindings, Vec::new()).await
    }

    /// The listeners' connection decides: it is what a server needs to take calls. Before any
    /// listener, the publisher's.
    fn health(&self) -> TransportHealth {
        let s = &self.shared;
        s.consumers
            .health()
            .or_else(|| s.publisher.health())
            .unwrap_or(TransportHealth { connected: false, reconnects: 0 })
    }

    async fn close(&self) {
        let s = &self.shared;
        s.closed.cancel();
        // Let listeners drop their channels first: closing a connection while its channels are
        // still closing makes lapin report a connection error.
        s.listeners.close();
        let _ = tokio::time::timeout(Duration::from_secs(2), s.listeners.wait()).await;
        // Bounded: a broker that does not answer (away, or blocking this connection) must not
        // keep the host from stopping.
        let bound = Duration::from_secs(2);
        let _ = tokio::time::timeout(bound, s.close_publish_channel()).await;
        let _ = tokio::time::timeout(bound, s.publisher.close()).await;
        let _ = tokio::time::timeout(bound, s.consumers.close()).await;
    }
}
