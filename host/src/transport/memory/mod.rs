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
//! - `broker.rs`: exchanges, queues and routing.
//! - `consumer.rs`: listeners, which take messages from their queues themselves, or have them
//!   handed over as they are published ([`DirectDelivery`](super::DirectDelivery)): an RPC
//!   server does, so a request to an idle server is handed to it by the publisher, without
//!   queueing it and waking the server's loop.
//!
//! Replies are handed to the reply handler by the publisher: a call crosses from client to
//! server and back with two task wake-ups, nothing in between. Bodies are stored as published:
//! an RPC request or reply stays decoded (see [`Body`]).

mod broker;
mod consumer;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use self::broker::{Broker, Kind, Queue};
use super::{Body, ErrorKind, Listener, Outgoing, ReplyHandler, Transport, TransportError};
use crate::locks::lock;
use crate::protocol::{ListenTarget, NotificationTarget, Target, TransportUrl, new_id};

/// Brokers by name, so every transport for the same URL in this process meets the same one.
static BROKERS: LazyLock<Mutex<HashMap<String, Weak<Broker>>>> = LazyLock::new(Mutex::default);

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
        self.broker.queue_depth(queue)
    }

    fn check_open(&self) -> Result<(), TransportError> {
        if self.closed.is_cancelled() {
            return Err(TransportError::new(ErrorKind::Closed, format!("memory://{} is closed", self.name)));
        }
        Ok(())
    }

    /// A listener reading `queues`; `private` queues are deleted on close.
    fn consume(&self, queues: Vec<Arc<Queue>>, private: Vec<String>) -> Listener {
        consumer::listener(&self.broker, queues, self.closed.child_token(), private)
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
        self.broker.add_reply_handler(&name, handler);
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
        targets: &[NotificationTarget],
        priorities: &[String],
        pool: Option<&str>,
    ) -> Result<Listener, TransportError> {
        self.check_open()?;
        let mut queues: Vec<Arc<Queue>> = Vec::new();
        for NotificationTarget { exchange, topic } in targets {
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
        self.broker.remove_reply_handlers(lock(&self.reply_queues).drain(..));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::transport::{DirectHandler, Incoming};

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
