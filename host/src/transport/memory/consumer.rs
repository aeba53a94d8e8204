//! A listener's side of the broker: what its queues know of it, the consumer that takes their
//! messages oldest first, direct delivery, and acknowledgements.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::broker::{Broker, Queue, Stored};
use crate::locks::lock;
use crate::transport::{
    Acknowledge, Body, DirectDelivery, DirectHandler, Incoming, Listener, ListenerControl, TransportError,
};

/// A listener reading `queues` until `stop` is cancelled; `private` queues are deleted on close.
pub(super) fn listener(
    broker: &Arc<Broker>,
    queues: Vec<Arc<Queue>>,
    stop: CancellationToken,
    private: Vec<String>,
) -> Listener {
    let link = Arc::new(Link { queues, signal: Notify::new(), direct: Mutex::new(None), stop: stop.clone() });
    for q in &link.queues {
        q.add_consumer(&link);
    }
    let consumer = Consumer { link: link.clone(), took_one: false };
    let messages = futures_lite::stream::unfold(consumer, |mut consumer| async move {
        let incoming = consumer.next().await?;
        Some((incoming, consumer))
    });
    Listener::new(messages, Arc::new(MemoryListener { broker: broker.clone(), link, stop, private }))
}

/// What a consumer's queues know of it.
pub(super) struct Link {
    pub(super) queues: Vec<Arc<Queue>>,
    /// Wakes the consumer: a message was queued.
    pub(super) signal: Notify,
    /// Takes messages as they are published, when set.
    pub(super) direct: Mutex<Option<DirectHandler>>,
    /// Cancelled when the listener closes or its transport does.
    pub(super) stop: CancellationToken,
}

/// Takes messages from its queues, oldest first, waiting when they are all empty.
struct Consumer {
    link: Arc<Link>,
    /// The previous `next` returned a message.
    took_one: bool,
}

impl Consumer {
    async fn next(&mut self) -> Option<Incoming> {
        // Competing consumers: after taking a message, let the others in before taking another,
        // so a shared queue is spread over its consumers as RabbitMQ's round-robin spreads it
        // (on one thread the first consumer would otherwise drain it alone).
        if std::mem::take(&mut self.took_one) && self.link.queues.iter().any(|q| q.shared()) {
            tokio::task::yield_now().await;
        }
        loop {
            if self.link.stop.is_cancelled() {
                return None;
            }
            if let Some(incoming) = self.take() {
                return Some(incoming);
            }
            // A message published since the look above left a permit: this returns at once.
            tokio::select! {
                biased;
                () = self.link.signal.notified() => {}
                () = self.link.stop.cancelled() => return None,
            }
        }
    }

    /// The oldest waiting message of its queues, if any.
    fn take(&mut self) -> Option<Incoming> {
        while let Some(Oldest { queue, seq }) = self.oldest() {
            let queue = &self.link.queues[queue];
            if let Some(stored) = queue.pop_if(seq) {
                self.took_one = true;
                let ack = MemoryAck { queue: queue.clone(), body: stored.body.clone(), deadline: stored.deadline, seq };
                return Some(Incoming::new(
                    stored.body,
                    queue.name.clone(),
                    stored.deadline,
                    stored.redelivered,
                    Box::new(ack),
                ));
            }
        }
        None
    }

    /// Where the message published first waits.
    fn oldest(&self) -> Option<Oldest> {
        let mut now = None;
        self.link
            .queues
            .iter()
            .enumerate()
            .filter_map(|(queue, q)| q.head(&mut now).map(|seq| Oldest { queue, seq }))
            .min_by_key(|oldest| oldest.seq)
    }
}

/// The oldest message waiting for a consumer.
struct Oldest {
    /// Which of the consumer's queues it is in.
    queue: usize,
    /// Its publish sequence number.
    seq: u64,
}

struct MemoryListener {
    broker: Arc<Broker>,
    link: Arc<Link>,
    stop: CancellationToken,
    private: Vec<String>,
}

#[async_trait::async_trait]
impl ListenerControl for MemoryListener {
    async fn close(&self) {
        self.stop.cancel();
        for q in &self.private {
            self.broker.delete_queue(q);
        }
    }

    fn direct_delivery(&self) -> Option<&dyn DirectDelivery> {
        Some(self)
    }
}

impl DirectDelivery for MemoryListener {
    fn set_handler(&self, handler: Option<DirectHandler>) {
        // Waits for a delivery under way: it holds this lock while its handler runs.
        *lock(&self.link.direct) = handler;
    }
}

impl Drop for MemoryListener {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub(super) struct MemoryAck {
    pub(super) queue: Arc<Queue>,
    /// Kept for a requeue; dropped when the message is settled, so the receiver then holds
    /// the only reference to a decoded body.
    pub(super) body: Body,
    pub(super) deadline: Option<Instant>,
    pub(super) seq: u64,
}

#[async_trait::async_trait]
impl Acknowledge for MemoryAck {
    async fn ack(self: Box<Self>) -> Result<(), TransportError> {
        Ok(())
    }

    async fn requeue(self: Box<Self>) -> Result<(), TransportError> {
        self.queue.push(Stored { seq: self.seq, body: self.body, deadline: self.deadline, redelivered: true }, true);
        Ok(())
    }

    async fn reject(self: Box<Self>) -> Result<(), TransportError> {
        Ok(())
    }
}
