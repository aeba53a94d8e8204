//! What oslo declares on RabbitMQ, as plain data: exchanges, queues with their flags and
//! x-arguments, bindings. A peer must declare shared entities with identical flags or the
//! broker closes the channel with `PRECONDITION_FAILED`.

use super::options::RabbitOptions;
use crate::protocol::NotificationTarget;

/// An AMQP exchange type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeType {
    /// Routes by routing key.
    Topic,
    /// Routes to every bound queue.
    Fanout,
}

/// An exchange declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeSpec {
    pub name: String,
    pub kind: ExchangeType,
    pub durable: bool,
    pub auto_delete: bool,
}

/// An x-argument value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgValue {
    Int(i64),
    Text(String),
}

/// A queue declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    pub name: String,
    pub durable: bool,
    pub auto_delete: bool,
    pub arguments: Vec<(String, ArgValue)>,
}

/// A queue, the exchange it is bound to (none for the default exchange) and the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub exchange: Option<ExchangeSpec>,
    pub queue: QueueSpec,
    pub key: String,
}

/// Declarations derived from the options.
#[derive(Debug, Clone)]
pub struct Topology {
    o: RabbitOptions,
}

impl Topology {
    pub fn new(options: RabbitOptions) -> Topology {
        Topology { o: options }
    }

    /// `_get_queue_arguments(ha, ttl, quorum, config, stream=False)`.
    fn arguments(&self, ttl_seconds: u64, quorum: bool) -> Vec<(String, ArgValue)> {
        let o = &self.o;
        let mut args = Vec::new();
        if o.rabbit_ha_queues {
            args.push(("x-ha-policy".into(), ArgValue::Text("all".into())));
        }
        if quorum {
            args.push(("x-queue-type".into(), ArgValue::Text("quorum".into())));
            for (key, value) in [
                ("x-delivery-limit", o.rabbit_quorum_delivery_limit),
                ("x-max-in-memory-length", o.rabbit_quorum_max_memory_length),
                ("x-max-in-memory-bytes", o.rabbit_quorum_max_memory_bytes),
            ] {
                if value > 0 {
                    args.push((key.into(), ArgValue::Int(i64::try_from(value).unwrap_or(i64::MAX))));
                }
            }
        }
        if ttl_seconds > 0 {
            args.push(("x-expires".into(), ArgValue::Int(i64::try_from(ttl_seconds * 1000).unwrap_or(i64::MAX))));
        }
        args
    }

    /// The topic exchange (control exchange or a target's own).
    pub fn topic_exchange(&self, name: &str) -> ExchangeSpec {
        ExchangeSpec {
            name: name.into(),
            kind: ExchangeType::Topic,
            durable: self.o.durable(),
            auto_delete: self.o.amqp_auto_delete,
        }
    }

    /// `<topic>_fanout`.
    pub fn fanout_exchange(&self, topic: &str) -> ExchangeSpec {
        ExchangeSpec {
            name: format!("{topic}_fanout"),
            kind: ExchangeType::Fanout,
            durable: self.o.rabbit_transient_quorum_queue,
            auto_delete: true,
        }
    }

    /// A shared topic queue (`T`, `T.S`, or a notification queue), bound with `key`.
    pub fn topic_queue(&self, exchange: &str, queue: &str, key: &str) -> Binding {
        Binding {
            exchange: Some(self.topic_exchange(exchange)),
            queue: QueueSpec {
                name: queue.into(),
                durable: self.o.durable(),
                auto_delete: self.o.amqp_auto_delete,
                arguments: self.arguments(0, self.o.rabbit_quorum_queue),
            },
            key: key.into(),
        }
    }

    /// A private queue with x-expires: the fanout queue or the reply queue.
    fn transient_queue(&self, name: &str) -> QueueSpec {
        QueueSpec {
            name: name.into(),
            durable: self.o.rabbit_transient_quorum_queue,
            auto_delete: false,
            arguments: self.arguments(self.o.rabbit_transient_queues_ttl, self.o.rabbit_transient_quorum_queue),
        }
    }

    /// What an RPC server for (exchange, topic, server) declares and consumes.
    pub fn rpc_server(&self, exchange: &str, topic: &str, server: &str, fanout_queue: &str) -> Vec<Binding> {
        let direct = format!("{topic}.{server}");
        vec![
            self.topic_queue(exchange, topic, topic),
            self.topic_queue(exchange, &direct, &direct),
            Binding {
                exchange: Some(self.fanout_exchange(topic)),
                queue: self.transient_queue(fanout_queue),
                key: topic.into(),
            },
        ]
    }

    /// The reply queue: on the default exchange, no binding.
    pub fn reply_queue(&self, name: &str) -> Binding {
        Binding { exchange: None, queue: self.transient_queue(name), key: String::new() }
    }

    /// A notification listener's queues: `<topic>.<priority>` each, or one queue named `pool`;
    /// a target with no exchange is on `control_exchange`.
    pub fn notification_listener(
        &self,
        control_exchange: &str,
        targets: &[NotificationTarget],
        priorities: &[String],
        pool: Option<&str>,
    ) -> Vec<Binding> {
        let mut out = Vec::new();
        for NotificationTarget { exchange, topic } in targets {
            let exchange = exchange.as_deref().unwrap_or(control_exchange);
            for priority in priorities {
                let key = format!("{topic}.{priority}");
                out.push(self.topic_queue(exchange, pool.unwrap_or(&key), &key));
            }
        }
        out
    }

    /// Whether consumers carry `x-cancel-on-ha-failover`.
    pub fn cancel_on_failover(&self) -> bool {
        self.o.enable_cancel_on_failover
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> ArgValue {
        ArgValue::Text(s.into())
    }

    /// ../shared/oslo-protocol.md §3.1, captured from oslo.messaging 18.3.1 with defaults.
    #[test]
    fn default_rpc_server_topology_matches_oslo() {
        let t = Topology::new(RabbitOptions::default());
        let b = t.rpc_server("myex", "t1", "s1", "t1_fanout_a6e9");
        assert_eq!(
            b[0].exchange,
            Some(ExchangeSpec { name: "myex".into(), kind: ExchangeType::Topic, durable: false, auto_delete: false })
        );
        assert_eq!(b[0].queue, QueueSpec { name: "t1".into(), durable: false, auto_delete: false, arguments: vec![] });
        assert_eq!((b[1].queue.name.as_str(), b[1].key.as_str()), ("t1.s1", "t1.s1"));
        assert_eq!(
            b[2].exchange,
            Some(ExchangeSpec {
                name: "t1_fanout".into(),
                kind: ExchangeType::Fanout,
                durable: false,
                auto_delete: true
            })
        );
        assert_eq!(b[2].queue.arguments, vec![("x-expires".into(), ArgValue::Int(1_800_000))]);
        assert_eq!(b[2].key, "t1");
    }

    /// §3.4: quorum, transient quorum.
    #[test]
    fn quorum_options_change_flags_like_oslo() {
        let o = RabbitOptions::default()
            .apply([("rabbit_quorum_queue", "true"), ("rabbit_transient_quorum_queue", "true")])
            .unwrap();
        let t = Topology::new(o);
        let b = t.rpc_server("openstack", "t1", "s1", "t1_fanout_x");
        assert_eq!(
            b[0].queue,
            QueueSpec {
                name: "t1".into(),
                durable: true,
                auto_delete: false,
                arguments: vec![("x-queue-type".into(), text("quorum"))]
            }
        );
        assert!(b[0].exchange.as_ref().unwrap().durable);
        let fanout = b[2].exchange.as_ref().unwrap();
        assert!(fanout.durable && fanout.auto_delete);
        assert_eq!(
            b[2].queue.arguments,
            vec![("x-queue-type".into(), text("quorum")), ("x-expires".into(), ArgValue::Int(1_800_000))]
        );
        let reply = t.reply_queue("reply_x");
        assert!(reply.queue.durable && reply.exchange.is_none());
    }

    /// §3.4: amqp_durable_queues, amqp_auto_delete, ttl 0.
    #[test]
    fn durable_auto_delete_and_no_ttl() {
        let o = RabbitOptions::default()
            .apply([
                ("amqp_durable_queues", "true"),
                ("amqp_auto_delete", "true"),
                ("rabbit_transient_queues_ttl", "0"),
            ])
            .unwrap();
        let t = Topology::new(o);
        let b = t.rpc_server("openstack", "t1", "s1", "f");
        assert!(b[0].queue.durable && b[0].queue.auto_delete);
        assert!(!b[2].queue.durable && b[2].queue.arguments.is_empty());
    }

    /// §3.3: with a pool, every binding goes into the one queue named after it.
    #[test]
    fn pooled_notification_listeners_share_one_queue() {
        let t = Topology::new(RabbitOptions::default());
        let target = NotificationTarget { exchange: None, topic: "notifications".into() };
        let b = t.notification_listener(
            "openstack",
            std::slice::from_ref(&target),
            &["info".into(), "error".into()],
            Some("mypool"),
        );
        assert_eq!(
            b.iter().map(|b| (b.queue.name.as_str(), b.key.as_str())).collect::<Vec<_>>(),
            [("mypool", "notifications.info"), ("mypool", "notifications.error")]
        );
        let b = t.notification_listener("openstack", &[target], &["info".into()], None);
        assert_eq!(b[0].queue.name, "notifications.info");
    }
}
