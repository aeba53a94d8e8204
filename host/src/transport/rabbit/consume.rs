//! Consuming: one channel per listener, its queues declared and consumed, deliveries forwarded
//! to the listener (or straight to the reply handler), and everything declared and consumed
//! again after a reconnect, as oslo does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::StreamExt;
use lapin::Channel;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions, QueueDeleteOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::link::describe_error;
use super::topology::Binding;
use super::{Shared, amqp_error, declare};
use crate::transport::{
    Acknowledge, Body, ErrorKind, Incoming, Listener, ListenerControl, ReplyHandler, TransportError,
};

impl Shared {
    /// Declares `bindings` and consumes every queue into one listener; reconnects and
    /// re-declares as long as the listener lives. `private` queues are deleted on close.
    pub(super) async fn consume(
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
    pub(super) async fn start_consuming(
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
        let live = if patient { self.consumers.get().await? } else { self.consumers.try_get().await? };
        let channel = live.connection.create_channel().await.map_err(|e| amqp_error("cannot open a channel", &e))?;
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
            consumers.push(QueueConsumer { queue: Arc::from(b.queue.name.as_str()), consumer });
        }
        Ok(Session { channel, generation: live.generation, consumers })
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

struct Session {
    channel: Channel,
    generation: u64,
    consumers: Vec<QueueConsumer>,
}

/// A queue's consumer on a session's channel.
struct QueueConsumer {
    queue: Arc<str>,
    consumer: lapin::Consumer,
}

/// Where deliveries go.
#[derive(Clone)]
pub(super) enum Sink {
    /// To a listener, which settles them.
    Channel(mpsc::Sender<Incoming>),
    /// Straight to a reply handler, then acknowledged beside the loop (the reply queue).
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
                let Incoming { body, acker, .. } = incoming;
                handler(body);
                // Not awaited here: an ack sent as the connection goes can wait forever, and
                // this loop must see the connection drop to declare the reply queue again;
                // until it does, every later reply is unroutable. A lost ack is harmless: the
                // unacknowledged reply is redelivered and dropped (nobody waits for it).
                tokio::spawn(async move {
                    if let Err(e) = acker.ack().await {
                        tracing::debug!("a reply was not acknowledged: {e}");
                    }
                });
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
                        let queues: Vec<&str> = s.consumers.iter().map(|c| &*c.queue).collect();
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
        let reason = forward(current.consumers, &sink, &stop, shared.options.max_message_size).await;
        if stop.is_cancelled() || sink.is_closed() {
            let _ = channel.close(200, "listener stopped".into()).await;
            return;
        }
        tracing::warn!(generation = current.generation, "lost the broker connection ({reason}); reconnecting");
    }
}

/// Forwards from every consumer of a session; returns why it ended.
async fn forward(consumers: Vec<QueueConsumer>, sink: &Sink, stop: &CancellationToken, max_size: u64) -> String {
    let mut tasks = tokio::task::JoinSet::new();
    for QueueConsumer { queue, mut consumer } in consumers {
        let sink = sink.clone();
        tasks.spawn(async move {
            while let Some(delivery) = consumer.next().await {
                match delivery {
                    Ok(d) => {
                        if let Some(incoming) = incoming(&queue, d, max_size).await
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
/// rejected here, with a log line naming the queue and the reason. Messages over
/// `max_message_size` are dropped before anything reads them: logged and acknowledged, so
/// they are not redelivered (nor dead-lettered: they could be a flood).
async fn incoming(queue: &Arc<str>, d: Delivery, max_size: u64) -> Option<Incoming> {
    let size = d.data.len() as u64;
    if size > max_size {
        tracing::warn!(%queue, "dropping a message of {size} bytes, over max_message_size ({max_size} bytes); not decoded");
        let _ = bounded("ack", d.acker.ack(BasicAckOptions::default())).await;
        return None;
    }
    let reason = match d.properties.content_type().as_ref().map(|c| c.as_str().to_owned()) {
        Some(ct) if ct != "application/json" => Some(format!("content type {ct:?} is not application/json")),
        _ => d.properties.headers().as_ref().and_then(|h| {
            h.inner().get("compression").map(|_| "compressed bodies (kombu_compression) are not supported".to_owned())
        }),
    };
    if let Some(reason) = reason {
        tracing::warn!(%queue, "rejecting a message: {reason}");
        let _ = bounded("reject", d.acker.reject(BasicRejectOptions { requeue: false })).await;
        return None;
    }
    let deadline = d
        .properties
        .expiration()
        .as_ref()
        .and_then(|e| e.as_str().parse::<u64>().ok())
        // An expiration too far away to add to the clock is no deadline at all.
        .and_then(|ms| Instant::now().checked_add(Duration::from_millis(ms)));
    Some(Incoming::new(
        Body::Wire(Bytes::from(d.data)),
        queue.clone(),
        deadline,
        d.redelivered,
        Box::new(RabbitAck(d.acker)),
    ))
}

struct RabbitAck(lapin::Acker);

/// How long an acknowledgement may wait on the broker. lapin's can wait forever when the
/// connection goes as it is sent; whoever awaits it (a server's call task, which holds a
/// backlog slot meanwhile, or a listener) must get an answer. After a lost connection the
/// broker redelivers what was not acknowledged, so giving up loses nothing.
const SETTLE_BOUND: Duration = Duration::from_secs(30);

/// `settle` (an ack or a reject), bounded by [`SETTLE_BOUND`].
async fn bounded<T>(
    what: &str,
    settle: impl std::future::Future<Output = Result<T, lapin::Error>>,
) -> Result<(), TransportError> {
    match tokio::time::timeout(SETTLE_BOUND, settle).await {
        Ok(done) => done.map(drop).map_err(|e| amqp_error(what, &e)),
        Err(_) => Err(TransportError::new(
            ErrorKind::Connection,
            format!("{what}: no answer from the broker in {SETTLE_BOUND:?}"),
        )),
    }
}

#[async_trait::async_trait]
impl Acknowledge for RabbitAck {
    async fn ack(self: Box<Self>) -> Result<(), TransportError> {
        bounded("ack", self.0.ack(BasicAckOptions::default())).await
    }

    async fn requeue(self: Box<Self>) -> Result<(), TransportError> {
        bounded("requeue", self.0.reject(BasicRejectOptions { requeue: true })).await
    }

    async fn reject(self: Box<Self>) -> Result<(), TransportError> {
        bounded("reject", self.0.reject(BasicRejectOptions { requeue: false })).await
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
        // oslo deletes a server's fanout queue when its listener closes. Not during an outage:
        // closing must not wait for the broker, and the queue expires by itself (x-expires).
        let Some(live) = self.shared.consumers.live() else { return };
        if let Ok(channel) = live.connection.create_channel().await {
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// An acknowledgement that never completes, as lapin's does when the connection goes as it
    /// is sent (its internal loop drops the request unanswered).
    struct Stuck;

    #[async_trait::async_trait]
    impl Acknowledge for Stuck {
        async fn ack(self: Box<Self>) -> Result<(), TransportError> {
            std::future::pending().await
        }
        async fn requeue(self: Box<Self>) -> Result<(), TransportError> {
            std::future::pending().await
        }
        async fn reject(self: Box<Self>) -> Result<(), TransportError> {
            std::future::pending().await
        }
    }

    /// The reply loop hands every reply on though their acknowledgements never complete.
    #[tokio::test(start_paused = true)]
    async fn a_stuck_acknowledgement_holds_up_no_later_reply() {
        let handed = Arc::new(AtomicUsize::new(0));
        let counter = handed.clone();
        let sink = Sink::Handler(Arc::new(move |_body| {
            counter.fetch_add(1, Ordering::SeqCst);
        }));
        for _ in 0..3 {
            let reply = Incoming::new(
                Body::Wire(Bytes::from_static(b"{}")),
                Arc::from("reply_q"),
                None,
                false,
                Box::new(Stuck),
            );
            let delivered = tokio::time::timeout(Duration::from_secs(3600), sink.deliver(reply)).await;
            assert_eq!(delivered, Ok(true), "the loop waited on an acknowledgement");
        }
        assert_eq!(handed.load(Ordering::SeqCst), 3);
    }

    /// Whoever awaits a settlement gets an answer by the bound.
    #[tokio::test(start_paused = true)]
    async fn a_settlement_the_broker_never_answers_ends_by_the_bound() {
        let started = tokio::time::Instant::now();
        let outcome = bounded("ack", std::future::pending::<Result<bool, lapin::Error>>()).await;
        let e = outcome.expect_err("an unanswered ack is an error");
        assert!(e.to_string().contains("no answer from the broker"), "{e}");
        assert_eq!(started.elapsed(), SETTLE_BOUND);
    }
}
