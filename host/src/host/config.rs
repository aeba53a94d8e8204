//! The host's configuration: `wasmrpc.toml`, overridden by command-line flags.
//!
//! ```toml
//! transport_url = "rabbit://guest:guest@127.0.0.1:5672/"
//! control_exchange = "openstack"
//! server = "host-a"                    # default: the machine's hostname
//! manifests = "manifests"              # relative to this file
//! executor_thread_pool_size = 64
//! control_topic = "wasmrpc"
//! drain_timeout = "30s"
//! rpc_response_timeout = 60            # seconds: `call`'s and guests' outbound calls' default
//! watch = true                         # reload manifests and modules when they change
//! reload_debounce = "25ms"
//! allow_remote_stop = false            # the control endpoint's `stop`: off unless trusted
//! rpc_ping_enabled = false             # oslo's `oslo_rpc_server_ping` on every target
//! http = "127.0.0.1:9180"              # /metrics, /healthz, /readyz; off by default
//!
//! [oslo_messaging_rabbit]             # oslo's option names; the URL query overrides them
//! rabbit_quorum_queue = true
//! rabbit_qos_prefetch_count = 64
//!
//! [notifications]                    # oslo's [oslo_messaging_notifications]
//! driver = ["messagingv2"]             # default none: nothing is sent
//! topics = ["notifications"]
//! transport_url = "rabbit://..."       # default: the RPC transport
//!
//! [runtime]
//! pooling = true
//! max_instances = 1000
//! max_memory = "1GiB"
//! cache_dir = "/var/cache/wasmrpc"     # default ~/.cache/wasmrpc/modules; "" disables
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer};

use crate::manifest::{Location, from_seconds, parse_duration, parse_size};
use crate::protocol::TransportUrl;
use crate::rpc::DEFAULT_EXECUTOR_SIZE;
use crate::runtime::RuntimeConfig;

/// The default transport: the local RabbitMQ with its default account.
pub const DEFAULT_TRANSPORT_URL: &str = "rabbit://guest:guest@127.0.0.1:5672/";
/// The topic of the control endpoint.
pub const DEFAULT_CONTROL_TOPIC: &str = "wasmrpc";

/// Everything `wasmrpc serve` needs, resolved.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The broker.
    pub transport_url: TransportUrl,
    /// oslo's `control_exchange`.
    pub control_exchange: String,
    /// This host's server name (`topic.server` queues, the control endpoint's `wasmrpc.<server>`).
    pub server: String,
    /// The manifest directory.
    pub manifests: PathBuf,
    /// Concurrent calls per RPC server (per topic).
    pub executor_size: usize,
    /// The control endpoint's topic.
    pub control_topic: String,
    /// How long `stop` waits for in-flight calls.
    pub drain_timeout: Duration,
    /// How long a reply is retried when its queue is missing.
    pub reply_retry: Duration,
    /// oslo's `rpc_response_timeout`: how long a call waits for its reply unless it says
    /// otherwise (`wasmrpc call` without `--timeout`, a guest's outbound call without one).
    pub rpc_response_timeout: Duration,
    /// The WebAssembly runtime.
    pub runtime: RuntimeConfig,
    /// `[oslo_messaging_rabbit]` options, by oslo's names (the URL query overrides them).
    pub rabbit_options: Vec<(String, String)>,
    /// Watch the manifests and modules and reload what changes.
    pub watch: bool,
    /// How long file events must be quiet before a reload (editors and cargo write in bursts).
    pub reload_debounce: Duration,
    /// `[notifications]`: how the host and its guests publish notifications.
    pub notifications: NotificationsConfig,
    /// Whether the control endpoint's `stop` works. Off by default: any user of the vhost can
    /// call it, and oslo has no remote stop.
    pub allow_remote_stop: bool,
    /// oslo's `rpc_ping_enabled`: every served target answers `oslo_rpc_server_ping`.
    pub rpc_ping_enabled: bool,
    /// Where `wasmrpc serve` answers `/metrics`, `/healthz` and `/readyz`; none by default.
    pub http: Option<std::net::SocketAddr>,
}

/// oslo's `[oslo_messaging_notifications]`, under `[notifications]` in `wasmrpc.toml`.
#[derive(Debug, Clone, Default)]
pub struct NotificationsConfig {
    /// Drivers; empty (the default, as in oslo) sends nothing.
    pub drivers: Vec<crate::notification::NotificationDriver>,
    /// Topics; empty means `["notifications"]`.
    pub topics: Vec<String>,
    /// The host's publisher id (default `wasmrpc.<server>`); endpoints publish as `<name>.<server>`.
    pub publisher_id: Option<String>,
    /// A separate broker for notifications (oslo's notification `transport_url`); `None` shares
    /// the RPC transport.
    pub transport_url: Option<TransportUrl>,
}

impl HostConfig {
    /// Defaults: the local RabbitMQ, exchange `openstack`, the hostname, `manifests/`.
    #[must_use]
    pub fn new() -> HostConfig {
        HostConfig {
            transport_url: TransportUrl::parse(DEFAULT_TRANSPORT_URL).expect("the default URL parses"),
            control_exchange: "openstack".into(),
            server: gethostname::gethostname().to_string_lossy().into_owned(),
            manifests: PathBuf::from("manifests"),
            executor_size: DEFAULT_EXECUTOR_SIZE,
            control_topic: DEFAULT_CONTROL_TOPIC.into(),
            drain_timeout: Duration::from_secs(30),
            reply_retry: Duration::from_secs(60),
            rpc_response_timeout: crate::rpc::DEFAULT_TIMEOUT,
            runtime: RuntimeConfig { cache_dir: default_cache_dir(), ..RuntimeConfig::default() },
            rabbit_options: Vec::new(),
            watch: true,
            reload_debounce: Duration::from_millis(25),
            notifications: NotificationsConfig::default(),
            allow_remote_stop: false,
            rpc_ping_enabled: false,
            http: None,
        }
    }

    /// What a transport connected for this configuration is given: the control exchange and
    /// the `[oslo_messaging_rabbit]` options.
    #[must_use]
    pub fn transport_options(&self) -> crate::transport::TransportOptions {
        crate::transport::TransportOptions {
            control_exchange: self.control_exchange.clone(),
            rabbit: self.rabbit_options.clone(),
        }
    }

    /// Reads `wasmrpc.toml` over the defaults; relative paths are relative to the file.
    pub fn from_file(path: &Path) -> Result<HostConfig, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let file: ConfigFile = toml::from_str(&text).map_err(|error| ConfigError::Invalid {
            path: path.to_owned(),
            at: error.span().map_or(Location { line: 1, column: 1 }, |s| Location::of_offset(&text, s.start)),
            error,
        })?;
        Ok(file.resolve(path.parent().unwrap_or(Path::new("."))))
    }
}

impl Default for HostConfig {
    fn default() -> HostConfig {
        HostConfig::new()
    }
}

/// `$XDG_CACHE_HOME/wasmrpc/modules`, else `$HOME/.cache/wasmrpc/modules`.
fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("wasmrpc").join("modules"))
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The configuration file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key, or a value that does not fit its key.
    #[error("{}:{}:{}: {}", path.display(), at.line, at.column, error.message().trim())]
    Invalid {
        /// The configuration file.
        path: PathBuf,
        /// Where in the file.
        at: Location,
        /// What the TOML reader (or the value's parser) said. Not this error's `source()`: its
        /// `Display` is a multi-line report quoting the file, and its message is already above.
        error: toml::de::Error,
    },
}

/// `wasmrpc.toml` as written: every key optional (its default is [`HostConfig::new`]'s),
/// unknown keys refused, values parsed where they are read so that errors carry their position.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ConfigFile {
    #[serde(deserialize_with = "transport_url")]
    transport_url: TransportUrl,
    control_exchange: String,
    server: String,
    /// Relative to the file; absent means [`HostConfig::new`]'s (relative to the working directory).
    manifests: Option<PathBuf>,
    executor_thread_pool_size: usize,
    control_topic: String,
    #[serde(deserialize_with = "duration")]
    drain_timeout: Duration,
    #[serde(deserialize_with = "seconds")]
    kombu_missing_consumer_retry_timeout: Duration,
    #[serde(deserialize_with = "seconds")]
    rpc_response_timeout: Duration,
    watch: bool,
    #[serde(deserialize_with = "duration")]
    reload_debounce: Duration,
    runtime: RuntimeSection,
    #[serde(deserialize_with = "rabbit_options")]
    oslo_messaging_rabbit: Vec<(String, String)>,
    notifications: NotificationsSection,
    allow_remote_stop: bool,
    rpc_ping_enabled: bool,
    http: Option<std::net::SocketAddr>,
}

/// `[runtime]`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RuntimeSection {
    pooling: bool,
    max_instances: u32,
    #[serde(deserialize_with = "size")]
    max_memory: u64,
    /// Relative to the file; `""` disables the cache; absent means the default directory.
    cache_dir: Option<String>,
}

/// `[notifications]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct NotificationsSection {
    #[serde(deserialize_with = "drivers")]
    driver: Vec<crate::notification::NotificationDriver>,
    topics: Vec<String>,
    publisher_id: Option<String>,
    #[serde(deserialize_with = "optional_transport_url")]
    transport_url: Option<TransportUrl>,
}

impl Default for ConfigFile {
    fn default() -> ConfigFile {
        let d = HostConfig::new();
        ConfigFile {
            transport_url: d.transport_url,
            control_exchange: d.control_exchange,
            server: d.server,
            manifests: None,
            executor_thread_pool_size: d.executor_size,
            control_topic: d.control_topic,
            drain_timeout: d.drain_timeout,
            kombu_missing_consumer_retry_timeout: d.reply_retry,
            rpc_response_timeout: d.rpc_response_timeout,
            watch: d.watch,
            reload_debounce: d.reload_debounce,
            runtime: RuntimeSection::default(),
            oslo_messaging_rabbit: d.rabbit_options,
            notifications: NotificationsSection::default(),
            allow_remote_stop: d.allow_remote_stop,
            rpc_ping_enabled: d.rpc_ping_enabled,
            http: d.http,
        }
    }
}

impl Default for RuntimeSection {
    fn default() -> RuntimeSection {
        let d = RuntimeConfig::default();
        RuntimeSection { pooling: d.pooling, max_instances: d.max_instances, max_memory: d.max_memory, cache_dir: None }
    }
}

impl ConfigFile {
    /// The configuration, with relative paths anchored at `base` (the file's directory).
    fn resolve(self, base: &Path) -> HostConfig {
        let cache_dir = match self.runtime.cache_dir.as_deref() {
            None => default_cache_dir(),
            Some("") => None,
            Some(dir) => Some(base.join(dir)),
        };
        HostConfig {
            transport_url: self.transport_url,
            control_exchange: self.control_exchange,
            server: self.server,
            manifests: self.manifests.map_or_else(|| HostConfig::new().manifests, |m| base.join(m)),
            executor_size: self.executor_thread_pool_size,
            control_topic: self.control_topic,
            drain_timeout: self.drain_timeout,
            reply_retry: self.kombu_missing_consumer_retry_timeout,
            rpc_response_timeout: self.rpc_response_timeout,
            runtime: RuntimeConfig {
                pooling: self.runtime.pooling,
                max_instances: self.runtime.max_instances,
                max_memory: self.runtime.max_memory,
                cache_dir,
                ..RuntimeConfig::default()
            },
            rabbit_options: self.oslo_messaging_rabbit,
            watch: self.watch,
            reload_debounce: self.reload_debounce,
            notifications: NotificationsConfig {
                drivers: self.notifications.driver,
                topics: self.notifications.topics,
                publisher_id: self.notifications.publisher_id,
                transport_url: self.notifications.transport_url,
            },
            allow_remote_stop: self.allow_remote_stop,
            rpc_ping_enabled: self.rpc_ping_enabled,
            http: self.http,
        }
    }
}

fn transport_url<'de, D: Deserializer<'de>>(d: D) -> Result<TransportUrl, D::Error> {
    TransportUrl::parse(&String::deserialize(d)?).map_err(de::Error::custom)
}

fn optional_transport_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<TransportUrl>, D::Error> {
    transport_url(d).map(Some)
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    parse_duration(&String::deserialize(d)?).map_err(de::Error::custom)
}

fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    from_seconds(f64::deserialize(d)?).map_err(de::Error::custom)
}

fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    parse_size(&String::deserialize(d)?).map_err(de::Error::custom)
}

fn drivers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<crate::notification::NotificationDriver>, D::Error> {
    Vec::<String>::deserialize(d)?.iter().map(|name| name.parse().map_err(de::Error::custom)).collect()
}

/// `[oslo_messaging_rabbit]`: oslo's option names and values, as text (the transport reads them
/// again, after the URL's query); checked here so that a bad one is reported at the table.
fn rabbit_options<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    let options: Vec<(String, String)> = toml::Table::deserialize(d)?
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => format!("{other:?}"),
            };
            (k, text)
        })
        .collect();
    crate::transport::RabbitOptions::default()
        .apply(options.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(de::Error::custom)?;
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<HostConfig, ConfigError> {
        let dir = tempfile::tempdir().map_err(|source| ConfigError::Read { path: "tempdir".into(), source })?;
        let path = dir.path().join("wasmrpc.toml");
        std::fs::write(&path, text).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
        HostConfig::from_file(&path)
    }

    /// `line:column: message` of an invalid file.
    fn invalid(text: &str) -> String {
        match read(text) {
            Err(ConfigError::Invalid { at, error, .. }) => format!("{}:{}: {}", at.line, at.column, error.message()),
            other => panic!("expected an invalid file, got {other:?}"),
        }
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        let c = read("").unwrap();
        let d = HostConfig::new();
        assert_eq!(c.transport_url.to_string(), d.transport_url.to_string());
        assert_eq!((c.manifests, c.executor_size, c.drain_timeout), (d.manifests, d.executor_size, d.drain_timeout));
        assert_eq!((c.watch, c.reload_debounce, c.reply_retry), (d.watch, d.reload_debounce, d.reply_retry));
        assert_eq!(c.rpc_response_timeout, Duration::from_secs(60), "oslo's default");
        assert!(c.notifications.transport_url.is_none(), "notifications share the RPC transport");
        assert_eq!((c.runtime.max_instances, c.runtime.max_memory), (1000, 1 << 30));
        assert_eq!(c.runtime.cache_dir, d.runtime.cache_dir);
        assert!(c.rabbit_options.is_empty() && c.notifications.drivers.is_empty());
        assert!(!c.allow_remote_stop && !c.rpc_ping_enabled, "remote stop and oslo's ping are opt-in");
    }

    #[test]
    fn every_key_is_read_and_paths_are_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wasmrpc.toml");
        std::fs::write(
            &path,
            "transport_url = \"memory://x/\"\ncontrol_exchange = \"nova\"\nserver = \"host-a\"\nmanifests = \"m\"\n\
             executor_thread_pool_size = 8\ncontrol_topic = \"ctl\"\ndrain_timeout = \"1m\"\n\
             kombu_missing_consumer_retry_timeout = 2.5\nrpc_response_timeout = 7\nwatch = false\nreload_debounce = \"40ms\"\n\
             allow_remote_stop = true\nrpc_ping_enabled = true\n\
             [runtime]\npooling = false\nmax_instances = 7\nmax_memory = \"256MiB\"\ncache_dir = \"cache\"\n\
             [oslo_messaging_rabbit]\nrabbit_qos_prefetch_count = 16\nrabbit_quorum_queue = true\n\
             [notifications]\ndriver = [\"messagingv2\"]\ntopics = [\"n\"]\npublisher_id = \"p\"\n\
             transport_url = \"memory://n/\"\n",
        )
        .unwrap();
        let c = HostConfig::from_file(&path).unwrap();
        assert_eq!(c.transport_url.to_string(), "memory://x/");
        assert_eq!((c.control_exchange.as_str(), c.server.as_str()), ("nova", "host-a"));
        assert_eq!(c.manifests, dir.path().join("m"));
        assert_eq!((c.executor_size, c.control_topic.as_str()), (8, "ctl"));
        assert_eq!((c.drain_timeout, c.reply_retry), (Duration::from_secs(60), Duration::from_millis(2500)));
        assert_eq!((c.watch, c.reload_debounce), (false, Duration::from_millis(40)));
        assert_eq!(c.rpc_response_timeout, Duration::from_secs(7));
        assert_eq!(c.notifications.transport_url.map(|u| u.to_string()).as_deref(), Some("memory://n/"));
        assert!(c.allow_remote_stop && c.rpc_ping_enabled);
        assert_eq!((c.runtime.pooling, c.runtime.max_instances, c.runtime.max_memory), (false, 7, 256 << 20));
        assert_eq!(c.runtime.cache_dir, Some(dir.path().join("cache")));
        let options: Vec<(&str, &str)> = c.rabbit_options.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(options, [("rabbit_qos_prefetch_count", "16"), ("rabbit_quorum_queue", "true")]);
        assert_eq!(c.notifications.drivers, [crate::notification::NotificationDriver::MessagingV2]);
        assert_eq!(
            (c.notifications.topics, c.notifications.publisher_id),
            (vec!["n".to_owned()], Some("p".to_owned()))
        );
        assert_eq!(read("[runtime]\ncache_dir = \"\"\n").unwrap().runtime.cache_dir, None);
    }

    #[test]
    fn unknown_keys_are_located() {
        assert!(invalid("watch = true\nwatchh = true\n").starts_with("2:1: unknown field `watchh`"));
        assert!(invalid("[runtime]\n\nmax_memroy = \"1GiB\"\n").starts_with("3:1: unknown field `max_memroy`"));
        assert!(invalid("[runtime]\nepoch_tick = \"1ms\"\n").starts_with("2:1: unknown field `epoch_tick`"));
    }

    #[test]
    fn bad_values_are_located_and_explained() {
        let e = invalid("watch = true\ndrain_timeout = \"soon\"\n");
        assert!(e.starts_with("2:17: invalid duration \"soon\""), "{e}");
        let e = invalid("[runtime]\nmax_memory = \"lots\"\n");
        assert!(e.starts_with("2:14: invalid size \"lots\""), "{e}");
        let e = invalid("kombu_missing_consumer_retry_timeout = -1.0\n");
        assert!(e.starts_with("1:40: invalid duration of -1 seconds"), "{e}");
        let e = invalid("\ntransport_url = \"carrier-pigeon://x/\"\n");
        assert!(e.starts_with("2:17: ") && e.contains("carrier-pigeon"), "{e}");
        let e = invalid("[notifications]\ndriver = [\"messagingv2\", \"smoke\"]\n");
        assert!(e.starts_with("2:10: unknown notification driver \"smoke\""), "{e}");
        let e = invalid("watch = true\n[oslo_messaging_rabbit]\nrabbit_qos_prefetch_count = \"many\"\n");
        assert!(e.starts_with("2:1: ") && e.contains("rabbit_qos_prefetch_count"), "{e}");
        let e = invalid("executor_thread_pool_size = \"64\"\n");
        assert!(e.starts_with("1:29: invalid type"), "{e}");
    }

    #[test]
    fn an_unreadable_file_is_named() {
        let e = HostConfig::from_file(Path::new("/nonexistent/wasmrpc.toml")).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e:?}");
        assert!(e.to_string().starts_with("/nonexistent/wasmrpc.toml: cannot read: "), "{e}");
    }
}
