//! `memory://`: an in-process broker with RabbitMQ's topology, for tests and single-process
//! deployments (oslo's fake driver).
//!
//! Transports opened with the same URL in one process share one broker (`memory://` and
//! `memory://name/` are different brokers). Exchanges route exactly like the ones oslo
//! declares on RabbitMQ: topic exchanges by exact routing key, `<topic>_fanout` exchanges to
//! every bound queue, the default exchange to the queue of that name. Queues are shared by
//! their consumers (competing consumers), keep order, drop messages whose expiration passed
//! while queued, and take requeued messages back at the front.
//!
//! Consumers take messages from their queues themselves, and replies are handed to the reply
//! handler by the publisher: a call crosses from client to server and back with two task
//! wake-ups, nothing in between. A consumer may also take messages as they are published
//! ([`DirectDelivery`](super::DirectDelivery)): an RPC server does, so a request to an idle server is
//! handed to it by the publisher, without queueing it and waking the server's loop. Bodies
//! are stored as published: an RPC request or reply stays decoded (see [`Body`]).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{
    Acknowledge, Body, DirectDelivery, DirectHandler, ErrorKind, Incoming, Listener, ListenerControl, Outgoing,
    ReplyHandler, Transport, TransportError,
};
use crate::locks::lock;
use crate::protocol::{ListenTarget, Target, TransportUrl, new_id};

/// Brokers by name, so every transport for the same URL in this process meets the same one.
static BROKERS: LazyLock<Mutex<HashMap<String, Weak<Broker>>>> = LazyLock::new(Mutex::default);

/// A message waiting in a queue.
struct Stored {
    /// Publish order across the whole broker: a consumer of several queues takes the oldest
    /// head first, so a fanout cast published before a directed call is handled before it.
    seq: u64,
    body: Body,
    deadline: Option<Instant>,
    redelivered: bool,
}

/// A queue: FIFO, shared by its consumers.
struct Queue {
    name: Arc<str>,
    items: Mutex<VecDeque<Stored>>,
    /// The consumers reading this queue.
    consumers: Mutex<Vec<Weak<Link>>>,
}

impl Queue {
    fn new(name: &str) -> Arc<Queue> {
        Arc::new(Queue { name: Arc::from(name), items: Mutex::default(), consumers: Mutex::default() })
    }

    fn push(self: &Arc<Self>, stored: Stored, front: bool) {
        if !front && self.deliver_directly(&stored) {
            return;
        }
        {
            let mut items = lock(&self.items);
            if front { items.push_front(stored) } else { items.push_back(stored) }
        }
        // Every consumer gets a wake-up permit; whoever pops first takes the message, the others
        // find the queue empty and wait again. Few consumers share a queue, so this is cheap.
        let mut consumers = lock(&self.consumers);
        consumers.retain(|c| match c.upgrade() {
            Some(link) => {
                link.signal.notify_one();
                true
            }
            None => false,
        });
    }

    /// Hands a new message straight to this queue's consumer, if it is the only one, takes
    /// messages that way, and has nothing older waiting in any of its queues (so it still takes
    /// the oldest first). Shared queues always queue: their consumers take turns.
    fn deliver_directly(self: &Arc<Self>, stored: &Stored) -> bool {
        let link = {
            // A consumer that went away is forgotten here rather than at the next queued message.
            let mut consumers = lock(&self.consumers);
            consumers.retain(|c| c.strong_count() > 0);
            match consumers.as_slice() {
                [only] => only.upgrade(),
                _ => None,
            }
        };
        let Some(link) = link else { return false };
        // This queue is one of them.
        if link.queues.iter().any(|q| q.len() != 0) {
            return false;
        }
        // Held while the handler runs: once `set_handler(None)` returns, no delivery is under way.
        let direct = lock(&link.direct);
        let Some(handler) = direct.as_ref() else { return false };
        if link.stop.is_cancelled() {
            return false;
        }
        let ack =
            MemoryAck { queue: self.clone(), body: stored.body.clone(), deadline: stored.deadline, seq: stored.seq };
        let incoming = Incoming::new(stored.body.clone(), self.name.clone(), stored.deadline, false, Box::new(ack));
        handler(incoming).is_none()
    }

    fn add_consumer(&self, link: &Arc<Link>) {
        lock(&self.consumers).push(Arc::downgrade(link));
    }

    /// The publish sequence number of the next unexpired message, if any. `now` is read on
    /// first need and kept for the caller's other queues.
    fn head(&self, now: &mut Option<Instant>) -> Option<u64> {
        let mut items = lock(&self.items);
        // RabbitMQ discards a message whose TTL ran out before delivery.
        while let Some(stored) = items.front() {
            if stored.deadline.is_none_or(|d| d > *now.get_or_insert_with(Instant::now)) {
                return Some(stored.seq);
            }
            items.pop_front();
        }
        None
    }

    /// The next message if it is still the one numbered `seq` (another consumer may have taken it).
    fn pop_if(&self, seq: u64) -> Option<Stored> {
        let mut items = lock(&self.items);
        if items.front().is_some_and(|s| s.seq == seq) { items.pop_front() } else { None }
    }

    fn shared(&self) -> bool {
        lock(&self.consumers).len() > 1
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
    bindings: Vec<Bound>,
}

/// A queue bound to an exchange.
#[derive(PartialEq, Eq)]
struct Bound {
    key: String,
    queue: String,
}

#[derive(Default)]
struct State {
    exchanges: foldhash::HashMap<String, Exchange>,
    queues: foldhash::HashMap<String, Arc<Queue>>,
    /// Reply queues: bodies go straight to the client's handler.
    reply_handlers: foldhash::HashMap<String, ReplyHandler>,
}

/// The shared broker.
#[derive(Default)]
struct Broker {
    state: Mutex<State>,
    published: AtomicU64,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Broker")
    }
}

impl Broker {
    fn declare_queue(&self, name: &str) -> Arc<Queue> {
        lock(&self.state).queues.entry(name.to_owned()).or_insert_with(|| Queue::new(name)).clone()
    }

    fn bind(&self, exchange: &str, kind: Kind, key: &str, queue: &str) {
        let mut state = lock(&self.state);
        let ex = state.exchanges.entry(exchange.to_owned()).or_insert_with(|| Exchange { kind, bindings: Vec::new() });
        let bound = Bound { key: key.to_owned(), queue: queue.to_owned() };
        if !ex.bindings.contains(&bound) {
            ex.bindings.push(bound);
        }
    }

    fn delete_queue(&self, name: &str) {
        let mut state = lock(&self.state);
        state.queues.remove(name);
        for ex in state.exchanges.values_mut() {
            ex.bindings.retain(|b| b.queue != name);
        }
    }

    /// Routes a message; returns how many queues took it.
    fn publish(&self, exchange: &str, key: &str, message: &Outgoing) -> usize {
        let state = lock(&self.state);
        if exchange.is_empty()
            && let Some(handler) = state.reply_handlers.get(key).cloned()
        {
            drop(state);
            handler(message.body.clone());
            return 1;
        }
        let deadline = message.expiration.map(|ttl| Instant::now() + ttl);
        let seq = self.published.fetch_add(1, Ordering::Relaxed);
        let store =
            |q: &Arc<Queue>| q.push(Stored { seq, body: message.body.clone(), deadline, redelivered: false }, false);
        // Pushed under the broker's lock (queue locks are only ever taken after it): no list of
        // targets to collect first.
        if exchange.is_empty() {
            return state.queues.get(key).map(&store).is_some().into();
        }
        let Some(ex) = state.exchanges.get(exchange) else { return 0 };
        let mut routed = 0;
        for bound in ex.bindings.iter().filter(|b| ex.kind == Kind::Fanout || b.key == key) {
            if let Some(q) = state.queues.get(&bound.queue) {
                store(q);
                routed += 1;
            }
        }
        routed
    }
}

/// The `memory://` transport.
#[derive(Debug)]
pub struct MemoryTransport {
    broker: Arc<Broker>,
    name: String,
    control_exchange: String,
    /// Reply queues this transport declared (removed on close).
    reply_queues: Mutex<Vec<String>>,
    closed: CancellationToken,
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
            reply_queues: Mutex::default(),
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

    /// A listener reading `queues`; `private` queues are deleted on close.
    fn consume(&self, queues: Vec<Arc<Queue>>, private: Vec<String>) -> Listener {
        let stop = self.closed.child_token();
        let link = Arc::new(Link { queues, signal: Notify::new(), direct: Mutex::new(None), stop: stop.clone() });
        for q in &link.queues {
            q.add_consumer(&link);
        }
        let consumer = Consumer { link: link.clone(), took_one: false };
        let messages = futures_lite::stream::unfold(consumer, |mut consumer| async move {
            let incoming = consumer.next().await?;
            Some((incoming, consumer))
        });
        Listener::new(messages, Arc::new(MemoryListener { broker: self.broker.clone(), link, stop, private }))
    }
}

/// What a consumer's queues know of it.
struct Link {
    queues: Vec<Arc<Queue>>,
    /// Wakes the consumer: a message was queued.
    signal: Notify,
    /// Takes messages as they are published, when set.
    direct: Mutex<Option<DirectHandler>>,
    /// Cancelled when the listener closes or its transport does.
    stop: CancellationToken,
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
        while let Some((i, seq)) = self.oldest() {
            let queue = &self.link.queues[i];
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
}

impl Consumer {
    /// The index of the queue whose next message was published first, and that message's number.
    fn oldest(&self) -> Option<(usize, u64)> {
        let mut now = None;
        self.link
            .queues
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q.head(&mut now).map(|seq| (i, seq)))
            .min_by_key(|(_, seq)| *seq)
    }
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

struct MemoryAck {
    queue: Arc<Queue>,
    /// Kept for a requeue; dropped when the message is settled, so the receiver then holds
    /// the only reference to a decoded body.
    body: Body,
    deadline: Option<Instant>,
    seq: u64,
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

#[async_trait::async_trait]
impl Transport for MemoryTransport {
    fn control_exchange(&self) -> &str {
        &self.control_exchange
    }

    async fn send(&self, target: &Target, message: Outgoing) -> Result<(), TransportError> {
        self.check_open()?;
        let fanout;
        let (exchange, key) = if target.fanout {
            fanout = target.fanout_exchange();
            (fanout.as_str(), "".into())
        } else {
            (target.exchange.as_deref().unwrap_or(&self.control_exchange), target.routing_key())
        };
        let routed = self.broker.publish(exchange, &key, &message);
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

    async fn listen_replies(&self, handler: ReplyHandler) -> Result<String, TransportError> {
        self.check_open()?;
        let name = format!("reply_{}", new_id());
        lock(&self.broker.state).reply_handlers.insert(name.clone(), handler);
        lock(&self.reply_queues).push(name.clone());
        Ok(name)
    }

    async fn send_reply(&self, reply_q: &str, body: Body) -> Result<(), TransportError> {
        self.check_open()?;
        let message = Outgoing { body, expiration: None, mandatory: true, confirm: true };
        if self.broker.publish("", reply_q, &message) == 0 {
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
        self.broker.publish(exchange, &key, &Outgoing::new(Body::Wire(body)));
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

    async fn close(&self) {
        self.closed.cancel();
        // This transport's reply queues go away with it.
        let mut state = lock(&self.broker.state);
        for name in lock(&self.reply_queues).drain(..) {
            state.reply_handlers.remove(&name);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    use super::*;

    fn transport() -> MemoryTransport {
        let url = TransportUrl::parse(&format!("memory://direct-{}/", new_id())).expect("a memory URL");
        MemoryTransport::new(&url, "openstack")
    }

    fn listen_target(server: &str) -> ListenTarget {
        ListenTarget { exchange: None, topic: "t".into(), server: server.into() }
    }

    async fn publish(t: &MemoryTransport, text: &'static str) {
        t.send(&Target::topic("t"), Outgoing::new(Bytes::from_static(text.as_bytes()))).await.expect("routed");
    }

    fn text(incoming: &Incoming) -> String {
        String::from_utf8(incoming.body.wire().to_vec()).expect("UTF-8")
    }

    /// Records what it takes; takes nothing while `refuse` is set.
    fn recorder(taken: &Arc<Mutex<Vec<String>>>, refuse: &Arc<AtomicBool>) -> DirectHandler {
        let (taken, refuse) = (taken.clone(), refuse.clone());
        Box::new(move |incoming| {
            if refuse.load(Ordering::SeqCst) {
                return Some(incoming);
            }
            lock(&taken).push(text(&incoming));
            None
        })
    }

    async fn next(listener: &mut Listener) -> String {
        let incoming =
            tokio::time::timeout(Duration::from_secs(5), listener.next()).await.expect("a message").expect("open");
        text(&incoming)
    }

    #[tokio::test]
    async fn direct_delivery_takes_only_what_nothing_older_waits_for() {
        let t = transport();
        let mut listener = t.listen(&listen_target("s1")).await.unwrap();
        let (taken, refuse) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(false)));
        listener.direct_delivery().expect("memory:// has it").set_handler(Some(recorder(&taken, &refuse)));

        publish(&t, "1").await;
        assert_eq!(*lock(&taken), ["1"], "taken as it was published");
        assert_eq!(t.queue_depth("t"), Some(0));

        refuse.store(true, Ordering::SeqCst);
        publish(&t, "2").await;
        assert_eq!(t.queue_depth("t"), Some(1), "refused, so queued");
        refuse.store(false, Ordering::SeqCst);
        publish(&t, "3").await;
        assert_eq!(t.queue_depth("t"), Some(2), "queued behind the older message, not taken past it");
        assert_eq!(next(&mut listener).await, "2");
        assert_eq!(next(&mut listener).await, "3");

        // Older in another of the listener's queues (its fanout queue) counts too.
        refuse.store(true, Ordering::SeqCst);
        let fanout = Target { fanout: true, ..Target::topic("t") };
        t.send(&fanout, Outgoing::new(Bytes::from_static(b"fan"))).await.unwrap();
        refuse.store(false, Ordering::SeqCst);
        publish(&t, "5").await;
        assert_eq!(t.queue_depth("t"), Some(1), "queued behind the fanout message");
        assert_eq!(next(&mut listener).await, "fan");
        assert_eq!(next(&mut listener).await, "5");

        listener.direct_delivery().expect("memory:// has it").set_handler(None);
        publish(&t, "4").await;
        assert_eq!(t.queue_depth("t"), Some(1), "direct delivery is off");
        assert_eq!(next(&mut listener).await, "4");
        assert_eq!(*lock(&taken), ["1"]);
    }

    #[tokio::test]
    async fn a_shared_queue_and_a_closed_listener_get_no_direct_delivery() {
        let t = transport();
        let (taken, refuse) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(false)));
        let first = t.listen(&listen_target("s1")).await.unwrap();
        first.direct_delivery().expect("memory:// has it").set_handler(Some(recorder(&taken, &refuse)));
        let mut second = t.listen(&listen_target("s2")).await.unwrap();
        publish(&t, "shared").await;
        assert!(lock(&taken).is_empty(), "two consumers share the topic queue: they take turns from it");
        assert_eq!(next(&mut second).await, "shared");

        second.close().await;
        publish(&t, "alone").await;
        assert_eq!(*lock(&taken), ["alone"], "the remaining consumer has the queue to itself");

        first.control().close().await;
        publish(&t, "closed").await;
        assert_eq!(*lock(&taken), ["alone"], "a closed listener takes nothing");
        assert_eq!(t.queue_depth("t"), Some(1));
    }
}
