//! oslo.messaging's `[oslo_messaging_rabbit]` options, by the same names and with the same
//! defaults, read from `wasmrpc.toml` and from the transport URL's query (which wins).

use std::time::Duration;

/// How to pick the next broker when one fails (`kombu_failover_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailoverStrategy {
    /// In URL order, starting from a random host (oslo shuffles hosts per connection).
    RoundRobin,
    /// A random host each time.
    Shuffle,
}

/// Unacknowledged deliveries per consumer by default. An RPC server acknowledges a request as it
/// takes it into its backlog, so this bounds only what waits between the broker and the
/// backlog; oslo's default (0, unlimited) would let a flood of large messages fill memory.
pub const DEFAULT_PREFETCH: u16 = 64;

/// RabbitMQ's default `max_message_size` (128 MiB): nothing larger can be published anyway.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 128 << 20;

/// The options wasmrpc honours; see `docs/rabbitmq.md`.
#[derive(Debug, Clone, PartialEq)]
pub struct RabbitOptions {
    /// `amqp_durable_queues`: durable topic exchange and queues.
    pub amqp_durable_queues: bool,
    /// `amqp_auto_delete`: auto-delete topic exchange and queues.
    pub amqp_auto_delete: bool,
    /// `rabbit_ha_queues`: `x-ha-policy: all` on every queue (legacy).
    pub rabbit_ha_queues: bool,
    /// `rabbit_quorum_queue`: quorum topic and notification queues (forces durable).
    pub rabbit_quorum_queue: bool,
    /// `rabbit_transient_quorum_queue`: quorum reply and fanout queues (durable).
    pub rabbit_transient_quorum_queue: bool,
    /// `rabbit_quorum_delivery_limit` (`x-delivery-limit`, 0 = unset).
    pub rabbit_quorum_delivery_limit: u64,
    /// `rabbit_quorum_max_memory_length` (`x-max-in-memory-length`, 0 = unset).
    pub rabbit_quorum_max_memory_length: u64,
    /// `rabbit_quorum_max_memory_bytes` (`x-max-in-memory-bytes`, 0 = unset).
    pub rabbit_quorum_max_memory_bytes: u64,
    /// `rabbit_transient_queues_ttl` in seconds: `x-expires` of reply and fanout queues (0 = none).
    pub rabbit_transient_queues_ttl: u64,
    /// `rabbit_qos_prefetch_count` (0 = unlimited, no `basic.qos`). oslo's default is 0;
    /// wasmrpc's is [`DEFAULT_PREFETCH`], so a flood cannot fill the host's memory.
    pub rabbit_qos_prefetch_count: u16,
    /// `max_message_size` in bytes (wasmrpc's, named after RabbitMQ's setting): larger messages
    /// are dropped before they are decoded, and larger replies become error replies.
    pub max_message_size: u64,
    /// `heartbeat_timeout_threshold` in seconds (0 disables AMQP heartbeats).
    pub heartbeat_timeout_threshold: u16,
    /// `rabbit_retry_interval`: the first delay between connection attempts.
    pub rabbit_retry_interval: Duration,
    /// `rabbit_retry_backoff`: added to the delay after each failed round.
    pub rabbit_retry_backoff: Duration,
    /// `rabbit_interval_max`: the longest delay.
    pub rabbit_interval_max: Duration,
    /// `kombu_reconnect_delay`: the pause after losing a connection before reconnecting.
    pub kombu_reconnect_delay: Duration,
    /// `kombu_failover_strategy`.
    pub kombu_failover_strategy: FailoverStrategy,
    /// `kombu_missing_consumer_retry_timeout`: how long a reply to a missing queue is retried.
    pub kombu_missing_consumer_retry_timeout: Duration,
    /// `enable_cancel_on_failover`: the `x-cancel-on-ha-failover` consumer argument.
    pub enable_cancel_on_failover: bool,
    /// `ssl`: connect with TLS (give the TLS port, usually 5671, in the URL).
    pub ssl: bool,
    /// `ssl_ca_file`: PEM file of the CA that signed the broker's certificate.
    pub ssl_ca_file: Option<String>,
    /// `ssl_cert_file`: PEM client certificate (with `ssl_key_file`).
    pub ssl_cert_file: Option<String>,
    /// `ssl_key_file`: PEM client key.
    pub ssl_key_file: Option<String>,
    /// `rabbit_login_method`: `AMQPLAIN` (default), `PLAIN` or `EXTERNAL`.
    pub rabbit_login_method: String,
}

impl Default for RabbitOptions {
    fn default() -> RabbitOptions {
        RabbitOptions {
            amqp_durable_queues: false,
            amqp_auto_delete: false,
            rabbit_ha_queues: false,
            rabbit_quorum_queue: false,
            rabbit_transient_quorum_queue: false,
            rabbit_quorum_delivery_limit: 0,
            rabbit_quorum_max_memory_length: 0,
            rabbit_quorum_max_memory_bytes: 0,
            rabbit_transient_queues_ttl: 1800,
            rabbit_qos_prefetch_count: DEFAULT_PREFETCH,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            heartbeat_timeout_threshold: 60,
            rabbit_retry_interval: Duration::from_secs(1),
            rabbit_retry_backoff: Duration::from_secs(2),
            rabbit_interval_max: Duration::from_secs(30),
            kombu_reconnect_delay: Duration::from_secs(1),
            kombu_failover_strategy: FailoverStrategy::RoundRobin,
            kombu_missing_consumer_retry_timeout: Duration::from_secs(60),
            enable_cancel_on_failover: false,
            ssl: false,
            ssl_ca_file: None,
            ssl_cert_file: None,
            ssl_key_file: None,
            rabbit_login_method: "AMQPLAIN".into(),
        }
    }
}

/// Options oslo has but wasmrpc does not implement; refused rather than silently ignored.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("rabbit_stream_fanout", "stream fanout queues are not supported; leave it false"),
    ("use_queue_manager", "stable queue names from a queue manager are not supported; leave it false"),
    ("kombu_compression", "compressed messages are not supported; leave it unset"),
];

/// Options accepted for compatibility that change nothing here.
const IGNORED: &[&str] = &[
    "rpc_conn_pool_size",
    "conn_pool_min_size",
    "conn_pool_ttl",
    "kombu_reconnect_splay",
    "heartbeat_rate",
    "direct_mandatory_flag",
    "ssl_version",
    "ssl_enforce_fips_mode",
    "hostname",
    "processname",
];

/// Why `[oslo_messaging_rabbit]` options (or a URL query) cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OptionError {
    /// A value of the wrong form.
    #[error("option {name} = {value:?}: expected {expected}")]
    BadValue {
        /// The option.
        name: String,
        /// Its value as written.
        value: String,
        /// What it takes.
        expected: &'static str,
    },
    /// An option oslo has and wasmrpc does not implement, set to something other than off.
    #[error("option {name}: {why}")]
    Unsupported {
        /// The option.
        name: String,
        /// Why, and what to set instead.
        why: &'static str,
    },
    /// An option oslo does not have either.
    #[error("no such option {0:?} in [oslo_messaging_rabbit]; docs/rabbitmq.md lists the supported ones")]
    Unknown(String),
    /// Quorum and HA queues at once.
    #[error("rabbit_quorum_queue and rabbit_ha_queues are both enabled: a queue is quorum or HA (mirrored), not both")]
    QuorumAndHa,
    /// A client certificate without its key, or the other way round.
    #[error("ssl_cert_file and ssl_key_file go together")]
    CertWithoutKey,
}

impl RabbitOptions {
    /// oslo's reconnect backoff: the pause after `failed_rounds` failed rounds of attempts,
    /// `rabbit_retry_interval` growing by `rabbit_retry_backoff` a round, at most
    /// `rabbit_interval_max`.
    #[must_use]
    pub fn backoff(&self, failed_rounds: u32) -> Duration {
        (self.rabbit_retry_interval + self.rabbit_retry_backoff * failed_rounds).min(self.rabbit_interval_max)
    }

    /// Applies `name = value` pairs in order (later ones win).
    pub fn apply<'a>(
        mut self,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<RabbitOptions, OptionError> {
        for (name, value) in pairs {
            self.set(name, value)?;
        }
        if self.rabbit_quorum_queue && self.rabbit_ha_queues {
            return Err(OptionError::QuorumAndHa);
        }
        if self.ssl_cert_file.is_some() != self.ssl_key_file.is_some() {
            return Err(OptionError::CertWithoutKey);
        }
        Ok(self)
    }

    /// Checks one `name = value` alone (not how it combines with others, which
    /// [`RabbitOptions::apply`] checks): a configuration file reports a bad one at its line.
    pub fn check(name: &str, value: &str) -> Result<(), OptionError> {
        RabbitOptions::default().set(name, value)
    }

    fn set(&mut self, name: &str, value: &str) -> Result<(), OptionError> {
        let bad =
            |expected: &'static str| OptionError::BadValue { name: name.to_owned(), value: value.to_owned(), expected };
        let boolean = || parse_bool(value).ok_or_else(|| bad("true or false"));
        let int = || value.trim().parse::<u64>().map_err(|_| bad("a non-negative integer"));
        let seconds = || {
            value
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .ok_or_else(|| bad("a number of seconds"))
        };
        let text = || (!value.is_empty()).then(|| value.to_owned());
        match name {
            "amqp_durable_queues" => self.amqp_durable_queues = boolean()?,
            "amqp_auto_delete" => self.amqp_auto_delete = boolean()?,
            "rabbit_ha_queues" => self.rabbit_ha_queues = boolean()?,
            "rabbit_quorum_queue" => self.rabbit_quorum_queue = boolean()?,
            "rabbit_transient_quorum_queue" => self.rabbit_transient_quorum_queue = boolean()?,
            "rabbit_quorum_delivery_limit" => self.rabbit_quorum_delivery_limit = int()?,
            "rabbit_quorum_max_memory_length" => self.rabbit_quorum_max_memory_length = int()?,
            "rabbit_quorum_max_memory_bytes" => self.rabbit_quorum_max_memory_bytes = int()?,
            "rabbit_transient_queues_ttl" => self.rabbit_transient_queues_ttl = int()?,
            "rabbit_qos_prefetch_count" => {
                self.rabbit_qos_prefetch_count = u16::try_from(int()?).map_err(|_| bad("at most 65535"))?;
            }
            "max_message_size" => {
                self.max_message_size = match int()? {
                    0 => return Err(bad("a positive number of bytes")),
                    n => n,
                };
            }
            "heartbeat_timeout_threshold" => {
                self.heartbeat_timeout_threshold = u16::try_from(int()?).map_err(|_| bad("at most 65535"))?;
            }
            "rabbit_retry_interval" => self.rabbit_retry_interval = seconds()?,
            "rabbit_retry_backoff" => self.rabbit_retry_backoff = seconds()?,
            "rabbit_interval_max" => self.rabbit_interval_max = seconds()?,
            "kombu_reconnect_delay" => self.kombu_reconnect_delay = seconds()?,
            "kombu_missing_consumer_retry_timeout" | "kombu_reconnect_timeout" => {
                self.kombu_missing_consumer_retry_timeout = seconds()?;
            }
            "kombu_failover_strategy" => {
                self.kombu_failover_strategy = match value {
                    "round-robin" => FailoverStrategy::RoundRobin,
                    "shuffle" => FailoverStrategy::Shuffle,
                    _ => return Err(bad("round-robin or shuffle")),
                };
            }
            "enable_cancel_on_failover" => self.enable_cancel_on_failover = boolean()?,
            "ssl" => self.ssl = boolean()?,
            "ssl_ca_file" => self.ssl_ca_file = text(),
            "ssl_cert_file" => self.ssl_cert_file = text(),
            "ssl_key_file" => self.ssl_key_file = text(),
            "rabbit_login_method" => {
                let method = value.to_ascii_uppercase();
                if !["AMQPLAIN", "PLAIN", "EXTERNAL"].contains(&method.as_str()) {
                    return Err(bad("AMQPLAIN, PLAIN or EXTERNAL"));
                }
                self.rabbit_login_method = method;
            }
            other => {
                if let Some((_, why)) = UNSUPPORTED.iter().find(|(n, _)| *n == other) {
                    if parse_bool(value) != Some(false) && !value.is_empty() {
                        return Err(OptionError::Unsupported { name: other.to_owned(), why });
                    }
                } else if !IGNORED.contains(&other) {
                    return Err(OptionError::Unknown(other.to_owned()));
                }
            }
        }
        Ok(())
    }

    /// Durable flag of the topic exchange and queues.
    #[must_use]
    pub fn durable(&self) -> bool {
        self.amqp_durable_queues || self.rabbit_quorum_queue
    }
}

/// oslo.config's booleans: true/false, yes/no, on/off, 1/0, any case.
fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_like_oslo_config() {
        let o = RabbitOptions::default()
            .apply([
                ("rabbit_quorum_queue", "True"),
                ("rabbit_qos_prefetch_count", "10"),
                ("rabbit_retry_interval", "0.5"),
            ])
            .unwrap();
        assert!(o.rabbit_quorum_queue && o.durable());
        assert_eq!(o.rabbit_qos_prefetch_count, 10);
        assert_eq!(RabbitOptions::default().rabbit_qos_prefetch_count, DEFAULT_PREFETCH, "bounded by default");
        let sized = RabbitOptions::default().apply([("max_message_size", "1048576")]).unwrap();
        assert_eq!((RabbitOptions::default().max_message_size, sized.max_message_size), (128 << 20, 1 << 20));
        assert!(RabbitOptions::default().apply([("max_message_size", "0")]).is_err());
        assert_eq!(o.rabbit_retry_interval, Duration::from_millis(500));
        assert!(RabbitOptions::default().apply([("no_such", "1")]).unwrap_err().to_string().contains("no such option"));
        assert!(RabbitOptions::default().apply([("ssl", "maybe")]).unwrap_err().to_string().contains("true or false"));
        assert_eq!(
            RabbitOptions::default().apply([("rabbit_quorum_queue", "1"), ("rabbit_ha_queues", "1")]),
            Err(OptionError::QuorumAndHa)
        );
        assert!(matches!(
            RabbitOptions::default().apply([("rabbit_stream_fanout", "true")]),
            Err(OptionError::Unsupported { .. })
        ));
        assert!(RabbitOptions::default().apply([("rabbit_stream_fanout", "false"), ("heartbeat_rate", "3")]).is_ok());
    }
}
