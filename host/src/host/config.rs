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
//! watch = true                         # reload manifests and modules when they change
//! reload_debounce = "25ms"
//!
//! [oslo_messaging_rabbit]             # oslo's option names; the URL query overrides them
//! rabbit_quorum_queue = true
//! rabbit_qos_prefetch_count = 64
//!
//! [notifications]                    # oslo's [oslo_messaging_notifications]
//! driver = ["messagingv2"]             # default none: nothing is sent
//! topics = ["notifications"]
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

use crate::manifest::{parse_duration, parse_size};
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
}

/// oslo's `[oslo_messaging_notifications]`, under `[notifications]` in `wasmrpc.toml`.
#[derive(Debug, Clone, Default)]
pub struct NotificationsConfig {
    /// Drivers; empty (the default, as in oslo) sends nothing.
    pub drivers: Vec<crate::notification::Driver>,
    /// Topics; empty means `["notifications"]`.
    pub topics: Vec<String>,
    /// The host's publisher id (default `wasmrpc.<server>`); endpoints publish as `<name>.<server>`.
    pub publisher_id: Option<String>,
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
            runtime: RuntimeConfig { cache_dir: default_cache_dir(), ..RuntimeConfig::default() },
            rabbit_options: Vec::new(),
            watch: true,
            reload_debounce: Duration::from_millis(25),
            notifications: NotificationsConfig::default(),
        }
    }

    /// Reads `wasmrpc.toml` over the defaults; relative paths are relative to the file.
    pub fn from_file(path: &Path) -> Result<HostConfig, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{}: cannot read: {e}", path.display())))?;
        let raw: RawConfig = toml::from_str(&text).map_err(|e| {
            let at = e.span().map(|s| crate::manifest::Location::of_offset(&text, s.start)).unwrap_or_default();
            ConfigError(format!("{}:{}:{}: {}", path.display(), at.line, at.column, e.message().trim()))
        })?;
        let fail = |what: String| ConfigError(format!("{}: {what}", path.display()));
        let mut c = HostConfig::new();
        if let Some(url) = raw.transport_url {
            c.transport_url = TransportUrl::parse(&url).map_err(|e| fail(e.to_string()))?;
        }
        if let Some(v) = raw.control_exchange {
            c.control_exchange = v;
        }
        if let Some(v) = raw.server {
            c.server = v;
        }
        if let Some(v) = raw.manifests {
            c.manifests = path.parent().unwrap_or(Path::new(".")).join(v);
        }
        if let Some(v) = raw.executor_thread_pool_size {
            c.executor_size = v;
        }
        if let Some(v) = raw.control_topic {
            c.control_topic = v;
        }
        if let Some(v) = raw.drain_timeout {
            c.drain_timeout = parse_duration(&v).map_err(|e| fail(e.to_string()))?;
        }
        if let Some(v) = raw.watch {
            c.watch = v;
        }
        if let Some(v) = raw.reload_debounce {
            c.reload_debounce = parse_duration(&v).map_err(|e| fail(e.to_string()))?;
        }
        if let Some(v) = raw.kombu_missing_consumer_retry_timeout {
            c.reply_retry = Duration::from_secs_f64(v);
        }
        if let Some(table) = raw.oslo_messaging_rabbit {
            c.rabbit_options = table
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
                .apply(c.rabbit_options.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .map_err(|e| fail(format!("[oslo_messaging_rabbit]: {e}")))?;
        }
        if let Some(n) = raw.notifications {
            c.notifications.drivers = n
                .driver
                .iter()
                .map(|d| d.parse())
                .collect::<Result<_, String>>()
                .map_err(|e| fail(format!("[notifications]: {e}")))?;
            c.notifications.topics = n.topics;
            c.notifications.publisher_id = n.publisher_id;
        }
        if let Some(r) = raw.runtime {
            if let Some(v) = r.pooling {
                c.runtime.pooling = v;
            }
            if let Some(v) = r.max_instances {
                c.runtime.max_instances = v;
            }
            if let Some(v) = r.max_memory {
                c.runtime.max_memory = parse_size(&v).map_err(|e| fail(e.to_string()))?;
            }
            match r.cache_dir.as_deref() {
                None => {}
                Some("") => c.runtime.cache_dir = None,
                Some(dir) => c.runtime.cache_dir = Some(path.parent().unwrap_or(Path::new(".")).join(dir)),
            }
        }
        Ok(c)
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
#[error("{0}")]
pub struct ConfigError(pub String);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    transport_url: Option<String>,
    control_exchange: Option<String>,
    server: Option<String>,
    manifests: Option<String>,
    executor_thread_pool_size: Option<usize>,
    control_topic: Option<String>,
    drain_timeout: Option<String>,
    kombu_missing_consumer_retry_timeout: Option<f64>,
    watch: Option<bool>,
    reload_debounce: Option<String>,
    runtime: Option<RawRuntime>,
    oslo_messaging_rabbit: Option<toml::Table>,
    notifications: Option<RawNotifications>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotifications {
    #[serde(default)]
    driver: Vec<String>,
    #[serde(default)]
    topics: Vec<String>,
    publisher_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuntime {
    pooling: Option<bool>,
    max_instances: Option<u32>,
    max_memory: Option<String>,
    cache_dir: Option<String>,
}
