//! The broker: exchanges that route by oslo's rules, and queues that keep messages in publish
//! order for their consumers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use super::consumer::{Link, MemoryAck};
use crate::locks::lock;
use crate::transport::{Body, Incoming, Outgoing, ReplyHandler};

/// A message waiting in a queue.
pub(super) struct Stored {
    /// Publish order across the whole broker: a consumer of several queues takes the oldest
    /// head first, so a fanout cast published before a directed call is handled before it.
    pub(super) seq: u64,
    pub(super) body: Body,
    pub(super) deadline: Option<Instant>,
    pub(super) redelivered: bool,
}

/// A queue: FIFO, shared by its consumers.
pub(super) struct Queue {
    pub(super) name: Arc<str>,
    items: Mutex<VecDeque<Stored>>,
    /// The consumers reading this queue.
    consumers: Mutex<Vec<Weak<Link>>>,
}

impl Queue {
    fn new(name: &str) -> Arc<Queue> {
        Arc::new(Queue { name: Arc::from(name), items: Mutex::default(), consumers: Mutex::default() })
    }

    pub(super) fn push(self: &Arc<Self>, stored: Stored, front: bool) {
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

    pub(super) fn add_consumer(&self, link: &Arc<Link>) {
        lock(&self.consumers).push(Arc::downgrade(link));
    }

    /// The publish sequence number of the next unexpired message, if any. `now` is read on
    /// first need and kept for the caller's other queues.
    pub(super) fn head(&self, now: &mut Option<Instant>) -> Option<u64> {
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
    pub(super) fn pop_if(&self, seq: u64) -> Option<Stored> {
        let mut items = lock(&self.items);
        if items.front().is_some_and(|s| s.seq == seq) { items.pop_front() } else { None }
    }

    pub(super) fn shared(&self) -> bool {
        lock(&self.consumers).len() > 1
    }

    pub(super) fn len(&self) -> usize {
        lock(&self.items).len()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Topic,
    Fanout,
}

pub(super) struct Exchange {
    kind: Kind,
    bindings: Vec<Bound>,
}

/// A queue bound to an exchange.
#[derive(PartialEq, Eq)]
pub(super) struct Bound {
    key: String,
    queue: String,
}

#[derive(Default)]
pub(super) struct State {
    exchanges: foldhash::HashMap<String, Exchange>,
    queues: foldhash::HashMap<String, Arc<Queue>>,
    /// Reply queues: bodies go straight to the client's handler.
    reply_handlers: foldhash::HashMap<String, ReplyHandler>,
}

/// The shared broker.
#[derive(Default)]
pub(super) struct Broker {
    state: Mutex<State>,
    published: AtomicU64,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Broker")
    }
}

impl Broker {
    /// Messages waiting in a queue.
    pub(super) fn queue_depth(&self, queue: &str) -> Option<usize> {
        lock(&self.state).queues.get(queue).map(|q| q.len())
    }

    /// Hands what is published to the reply queue `name` to `handler`.
    pub(super) fn add_reply_handler(&self, name: &str, handler: ReplyHandler) {
        lock(&self.state).reply_handlers.insert(name.to_owned(), handler);
    }

    /// Removes reply queues.
    pub(super) fn remove_reply_handlers(&self, names: impl IntoIterator<Item = String>) {
        let mut state = lock(&self.state);
        for name in names {
            state.reply_handlers.remove(&name);
        }
    }

    pub(super) fn declare_queue(&self, name: &str) -> Arc<Queue> {
        lock(&self.state).queues.entry(name.to_owned()).or_insert_with(|| Queue::new(name)).clone()
    }

    pub(super) fn bind(&self, exchange: &str, kind: Kind, key: &str, queue: &str) {
        let mut state = lock(&self.state);
        let ex = state.exchanges.entry(exchange.to_owned()).or_insert_with(|| Exchange { kind, bindings: Vec::new() });
        let bound = Bound { key: key.to_owned(), queue: queue.to_owned() };
        if !ex.bindings.contains(&bound) {
            ex.bindings.push(bound);
        }
    }

    pub(super) fn delete_queue(&self, name: &str) {
        let mut state = lock(&self.state);
        state.queues.remove(name);
        for ex in state.exchanges.values_mut() {
            ex.bindings.retain(|b| b.queue != name);
        }
    }

    /// Routes a message; returns how many queues took it.
    pub(super) fn publish(&self, exchange: &str, key: &str, message: &Outgoing) -> usize {
        let state = lock(&self.state);
        if exchange.is_empty()
            && let Some(handler) = state.reply_handlers.get(key).cloned()
        {
            drop(state);
            handler(message.body.clone());
            return 1;
        }
        let deadline = message.expiration.and_then(|ttl| Instant::now().checked_add(ttl));
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
