//! `memory://`: an in-process broker with RabbitMQ's topology, for tests and single-process
//! deployments (oslo's fake driver).
//!
//! Transports opened with the same URL in one process share one broker (`memory://` and
//! `memory://name/` are different brokers). Exchanges route exactly like the ones oslo
//! declares on RabbitMQ: topic exchanges by exact routing key, `<topic>_fanout` exchanges to
//! every bound queue, the default exchange to the queue of that name. Queues are shared by
//! their consumers (competing consumers), keep order, drop messages whose expiration passed
//! while queued, and take requeued messages back at the front.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::{
    Acknowledge, ErrorKind, Incoming, Listener, ListenerControl, Outgoing, ReplySlot, Transport, TransportError,
};
use crate::protocol::{ListenTarget, Target, TransportUrl, new_id};

/// Brokers by name, so every transport for the same URL in this process meets the same one.
static BROKERS: LazyLock<Mutex<HashMap<String, Weak<Broker>>>> = LazyLock::new(Mutex::default);

/// A message waiting in a queue.
struct Stored {
    body: Bytes,
    deadline: Option<Instant>,
    redelivered: bool,
}

/// A queue: FIFO, shared by its consumers.
struct Queue {
    name: Arc<str>,
    items: Mutex<VecDeque<Stored>>,
    /// Wakes a consumer waiting for a message (one permit per push).
    ready: Notify,
}

impl Queue {
    fn new(name: &str) -> Arc<Queue> {
        Arc::new(Queue { name: Arc::from(name), items: Mutex::default(), ready: Notify::new() })
    }

    fn push(&self, stored: Stored) {
        lock(&self.items).push_back(stored);
        self.ready.notify_one();
    }

    fn push_front(&self, stored: Stored) {
        lock(&self.items).push_front(stored);
        self.ready.notify_one();
    }

    /// The next unexpired message, waiting for one if needed.
    async fn pop(&self) -> Stored {
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut items = lock(&self.items);
                let now = Instant::now();
                while let Some(stored) = items.pop_front() {
                    // RabbitMQ discards a message whose TTL ran out before delivery.
                    if stored.deadline.is_none_or(|d| d > now) {
                        if !items.is_empty() {
                            // Leave a permit for the next consumer: more is waiting.
                            self.ready.notify_one();
                        }
                        return stored;
                    }
                }
            }
            notified.await;
        }
    }

    fn len(&self) -> usize {
        lock(&self.items).len()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Topic,
    Fanout,
}

struct Exchange {
    kind: Kind,
    /// (binding key, queue name)
    bindings: Vec<(String, String)>,
}

#[derive(Default)]
struct State {
    exchanges: HashMap<String, Exchange>,
    queues: HashMap<String, Arc<Queue>>,
}

/// The shared broker.
#[derive(Default)]
struct Broker {
    state: Mutex<State>,
}

impl Broker {
    fn declare_queue(&self, name: &str) -> Arc<Queue> {
        lock(&self.state).queues.entry(name.to_owned()).or_insert_with(|| Queue::new(name)).clone()
    }

    fn declare_exchange(state: &mut State, name: &str, kind: Kind) {
        state.exchanges.entry(name.to_owned()).or_insert_with(|| Exchange { kind, bindings: Vec::new() });
    }

    fn bind(&self, exchange: &str, kind: Kind, key: &str, queue: &str) {
        let mut state = lock(&self.state);
        Broker::declare_exchange(&mut state, exchange, kind);
        let ex = state.exchanges.get_mut(exchange).expect("declared above");
        if !ex.bindings.iter().any(|(k, q)| k == key && q == queue) {
            ex.bindings.push((key.to_owned(), queue.to_owned()));
        }
    }

    fn delete_queue(&self, name: &str) {
        let mut state = lock(&self.state);
        state.queues.remove(name);
        for ex in state.exchanges.values_mut() {
            ex.bindings.retain(|(_, q)| q != name);
        }
    }

    /// Routes a message; returns how many queues took it.
    fn publish(&self, exchange: &str, key: &str, message: &Outgoing) -> usize {
        let targets: Vec<Arc<Queue>> = {
            let state = lock(&self.state);
            if exchange.is_empty() {
                state.queues.get(key).cloned().into_iter().collect()
            } else {
                match state.exchanges.get(exchange) {
                    Some(ex) => ex
                        .bindings
                        .iter()
                        .filter(|(k, _)| ex.kind == Kind::Fanout || k == key)
                        .filter_map(|(_, q)| state.queues.get(q).cloned())
                        .collect(),
                    None => Vec::new(),
                }
            }
        };
        let deadline = message.expiration.map(|ttl| Instant::now() + ttl);
        for q in &targets {
            q.push(Stored { body: message.body.clone(), deadline, redelivered: false });
        }
        targets.len()
    }
}

/// The `memory://` transport.
#[derive(Debug)]
pub struct MemoryTransport {
    broker: Arc<Broker>,
    name: String,
    control_exchange: String,
    replies: ReplySlot,
    closed: CancellationToken,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Broker")
    }
}

impl MemoryTransport {
    /// Joins (or creates) the broker named by `url` (`memory://name/`).
    #[must_use]
    pub fn new(url: &TransportUrl, control_exchange: &str) -> MemoryTransport {
        let name = url.hosts.first().map(|h| h.hostname.clone()).unwrap_or_default();
        let key = format!("{name}/{}", url.virtual_host.clone().unwrap_or_default());
        let broker = {
            let mut brokers = lock(&BROKERS);
            brokers.retain(|_, weak| weak.strong_count() > 0);
            match brokers.get(&key).and_then(Weak::upgrade) {
                Some(b) => b,
                None => {
                    let b = Arc::new(Broker::default());
                    brokers.insert(key, Arc::downgrade(&b));
                    b
                }
            }
        };
        MemoryTransport {
            broker,
            name,
            control_exchange: control_exchange.to_owned(),
            replies: ReplySlot::default(),
            closed: CancellationToken::new(),
        }
    }

    /// Messages waiting in a queue (for tests and diagnostics).
    #[must_use]
    pub fn queue_depth(&self, queue: &str) -> Option<usize> {
        lock(&self.broker.state).queues.get(queue).map(|q| q.len())
    }

    fn check_open(&self) -> Result<(), TransportError> {
        if self.closed.is_cancelled() {
            return Err(TransportError::new(ErrorKind::Closed, format!("memory://{} is closed", self.name)));
        }
        Ok(())
    }

    /// Consumes `queues` into one listener; `private` queues are deleted on close.
    fn consume(&self, queues: Vec<Arc<Queue>>, private: Vec<String>) -> Listener {
        // Capacity 1: a consumer holds at most one message beyond what the server took, so
        // competing servers share a backlog instead of one of them hoarding it.
        let (tx, rx) = mpsc::channel(1);
        let stop = self.closed.child_token();
        for queue in queues {
            tokio::spawn(pump(queue, tx.clone(), stop.clone()));
        }
        Listener::new(rx, Arc::new(MemoryListener { broker: self.broker.clone(), stop, private }))
    }
}

/// Moves messages from a queue to a listener until stopped.
async fn pump(queue: Arc<Queue>, tx: mpsc::Sender<Incoming>, stop: CancellationToken) {
    loop {
        let stored = tokio::select! {
            () = stop.cancelled() => return,
            stored = queue.pop() => stored,
        };
        let ack = MemoryAck { queue: queue.clone(), body: stored.body.clone(), deadline: stored.deadline };
        let incoming =
            Incoming::new(stored.body.clone(), queue.name.clone(), stored.deadline, stored.redelivered, Box::new(ack));
        tokio::select! {
            () = stop.cancelled() => {
                queue.push_front(stored);
                return;
            }
            sent = tx.send(incoming) => {
                if let Err(mpsc::error::SendError(_)) = sent {
                    // The listener went away without closing: the message goes back.
                    queue.push_front(stored);
                    return;
                }
            }
        }
    }
}

struct MemoryListener {
    broker: Arc<Broker>,
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
}

impl Drop for MemoryListener {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

struct MemoryAck {
    queue: Arc<Queue>,
    body: Bytes,
    deadline: Option<Instant>,
}

#[async_trait::async_trait]
impl Acknowledge for MemoryAck {
    async fn ack(self: Box<Self>) -> Result<(), TransportError> {
        Ok(())
    }

    async fn requeue(self: Box<Self>) -> Result<(), TransportError> {
        self.queue.push_front(Stored { body: self.body, deadline: self.deadline, redelivered: true });
        Ok(())
    }

    async fn reject(self: Box<Self>) -> Result<(), TransportError> {
        Ok(())
    }
}

#[async_trait::async_trait]
impl Transport for MemoryTransport {
    fn control_exchange(&self) -> &str {
        &self.control_exchange
    }

    async fn send(&self, target: &Target, message: Outgoing) -> Result<(), TransportError> {
        self.check_open()?;
        let (exchange, key) = if target.fanout {
            (target.fanout_exchange(), String::new())
        } else {
            (target.exchange.clone().unwrap_or_else(|| self.control_exchange.clone()), target.routing_key())
        };
        let routed = self.broker.publish(&exchange, &key, &message);
        if routed == 0 && message.mandatory {
            return Err(TransportError::new(
                ErrorKind::Unroutable,
                format!("no queue is bound to exchange {exchange:?} with key {key:?}"),
            ));
        }
        Ok(())
    }

    async fn listen(&self, target: &ListenTarget) -> Result<Listener, TransportError> {
        self.check_open()?;
        let exchange = target.exchange.clone().unwrap_or_else(|| self.control_exchange.clone());
        let topic = target.topic.as_str();
        let server_key = format!("{topic}.{}", target.server);
        let fanout_exchange = format!("{topic}_fanout");
        let fanout_queue = format!("{topic}_fanout_{}", new_id());
        let mut queues = Vec::new();
        for (ex, kind, key, queue) in [
            (exchange.as_str(), Kind::Topic, topic, topic),
            (exchange.as_str(), Kind::Topic, server_key.as_str(), server_key.as_str()),
            (fanout_exchange.as_str(), Kind::Fanout, topic, fanout_queue.as_str()),
        ] {
            queues.push(self.broker.declare_queue(queue));
            self.broker.bind(ex, kind, key, queue);
        }
        Ok(self.consume(queues, vec![fanout_queue]))
    }

    async fn listen_replies(&self) -> Result<(String, Listener), TransportError> {
        self.check_open()?;
        let name = format!("reply_{}", new_id());
        let queue = self.broker.declare_queue(&name);
        Ok((name.clone(), self.consume(vec![queue], vec![name])))
    }

    async fn send_reply(&self, reply_q: &str, body: Bytes) -> Result<(), TransportError> {
        self.check_open()?;
        let routed =
            self.broker.publish("", reply_q, &Outgoing { body, expiration: None, mandatory: true, confirm: true });
        if routed == 0 {
            return Err(TransportError::new(ErrorKind::Unroutable, format!("reply queue {reply_q} does not exist")));
        }
        Ok(())
    }

    async fn send_notification(
        &self,
        exchange: Option<&str>,
        topic: &str,
        priority: &str,
        body: Bytes,
    ) -> Result<(), TransportError> {
        self.check_open()?;
        let exchange = exchange.unwrap_or(&self.control_exchange);
        let key = format!("{topic}.{priority}");
        // The notifier declares the default `<topic>.<priority>` queue: store and forward.
        self.broker.declare_queue(&key);
        self.broker.bind(exchange, Kind::Topic, &key, &key);
        self.broker.publish(exchange, &key, &Outgoing::new(body));
        Ok(())
    }

    async fn listen_notifications(
        &self,
        targets: &[(Option<String>, String)],
        priorities: &[String],
        pool: Option<&str>,
    ) -> Result<Listener, TransportError> {
        self.check_open()?;
        let mut queues: Vec<Arc<Queue>> = Vec::new();
        for (exchange, topic) in targets {
            let exchange = exchange.as_deref().unwrap_or(&self.control_exchange);
            for priority in priorities {
                let key = format!("{topic}.{priority}");
                let queue = pool.unwrap_or(&key);
                let q = self.broker.declare_queue(queue);
                self.broker.bind(exchange, Kind::Topic, &key, queue);
                if !queues.iter().any(|existing| Arc::ptr_eq(existing, &q)) {
                    queues.push(q);
                }
            }
        }
        Ok(self.consume(queues, Vec::new()))
    }

    fn reply_slot(&self) -> &ReplySlot {
        &self.replies
    }

    async fn close(&self) {
        self.closed.cancel();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave the data half-updated (single pushes and
    // pops), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
