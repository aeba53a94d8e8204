//! The host: loads every manifest in its directory, serves each endpoint on its target, serves
//! the control endpoint, and reloads endpoints when their files change. `wasmrpc serve`
//! (`cli/serve.rs`) runs one, and a new one on each SIGHUP.
//!
//! Endpoints are grouped by where they listen (exchange, topic, server); each group is one
//! [`RpcServer`] whose dispatcher tries the group's endpoints in manifest-file order, as an
//! oslo endpoint list. A manifest or module that fails to load is logged and skipped: a broken
//! plugin never keeps the others from serving.
//!
//! - `config.rs`: [`HostConfig`] (`wasmrpc.toml` and flags).
//! - `oslo_ini.rs`: oslo.config INI files (`--config-file`, `--config-dir`) over a [`HostConfig`].
//! - `text_options.rs`: [`HostConfig`] options by name from text (INI files, `WASMRPC_*`).
//! - `reload.rs`: hot reload: what changed (content digests), loading off the hot path,
//!   keeping the last good version, swapping endpoint lists atomically.
//! - `services.rs`: what a guest may use through the host: outbound calls and casts (checked
//!   against `[outbound]`), `[config]` values resolved at load.
//! - `wasm_endpoint.rs`: a loaded plugin as an RPC endpoint; failures as oslo sees them.
//! - `wasm_listener.rs`: a loaded plugin as a notification listener.
//! - `control.rs`: `ping`, `list_endpoints` (the endpoint listing), `stop` (when allowed).
//! - `status.rs`: [`HostStatus`], what readiness probes and metrics scrapes read.
//! - `history.rs`: [`ReloadHistory`], the last reload events (loads, failures with their
//!   messages, removals), which the console shows.

mod config;
mod control;
mod history;
pub mod oslo_ini;
mod reload;
mod services;
mod status;
pub mod text_options;
mod wasm_endpoint;
mod wasm_listener;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use config::{ConfigError, DEFAULT_CONTROL_TOPIC, DEFAULT_TRANSPORT_URL, HostConfig, NotificationsConfig};
pub use control::{CONTROL_NAMESPACE, CONTROL_VERSION};
pub use history::{HISTORY_LEN, ReloadEvent, ReloadHistory, ReloadOutcome};
pub use reload::ReloadSummary;
pub use services::{ConfigError as ConfigValueError, EndpointServices};
pub use status::{EndpointStatus, HostStatus};
pub use wasm_endpoint::{ERRORS_MODULE, WasmEndpoint, failure};
pub use wasm_listener::WasmListener;

use crate::locks::{lock, read, write};
use crate::manifest::{EndpointSpec, Role};
use crate::metrics::Metrics;
use crate::notification::{HostNotifications, ListenerOptions, NotificationListener, Notifier};
use crate::protocol::{ListenTarget, Target};
use crate::rpc::{
    Dispatcher, DrainTimeout, Endpoint, NoOpSerializer, PingEndpoint, RpcClient, RpcServer, ServerOptions,
};
use crate::runtime::{Runtime, RuntimeError};
use crate::transport::{self, Transport, TransportError};
use crate::watch::{Watch, WatchError};

/// Why the host could not start.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The transport could not connect or declare.
    #[error("transport {url}: {source}")]
    Transport {
        /// The URL, password redacted.
        url: String,
        /// What failed.
        source: TransportError,
    },
    /// The WebAssembly runtime could not start.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The manifest directory is not a directory.
    #[error("manifest directory {}: not a directory", path.display())]
    NotADirectory {
        /// The directory.
        path: PathBuf,
    },
    /// The manifest directory cannot be watched.
    #[error("manifest directory: {0}")]
    Watch(#[from] WatchError),
}

/// The brokers a host uses: RPC, and notifications (the same one unless configured apart).
#[derive(Debug, Clone)]
pub struct Transports {
    /// Calls, casts and replies.
    pub rpc: Arc<dyn Transport>,
    /// Notifications sent and listened to.
    pub notifications: Arc<dyn Transport>,
}

/// A running host. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct Host {
    inner: Arc<Inner>,
}

/// A loaded endpoint and what identifies its files' content.
#[derive(Debug, Clone)]
struct Loaded {
    spec: Arc<EndpointSpec>,
    served: Served,
    /// sha256 of the manifest text (the module's is the plugin's).
    manifest_digest: String,
}

/// What a manifest's module does.
#[derive(Debug, Clone)]
enum Served {
    Rpc(Arc<WasmEndpoint>),
    Listener(Arc<WasmListener>),
}

impl Loaded {
    fn plugin(&self) -> &crate::runtime::Plugin {
        match &self.served {
            Served::Rpc(e) => e.plugin(),
            Served::Listener(l) => l.plugin(),
        }
    }

    fn sha256(&self) -> &str {
        self.plugin().sha256()
    }

    /// Whether both hold the very same loaded module (not a reload of it).
    fn same(&self, other: &Loaded) -> bool {
        match (&self.served, &other.served) {
            (Served::Rpc(a), Served::Rpc(b)) => Arc::ptr_eq(a, b),
            (Served::Listener(a), Served::Listener(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// A manifest whose current content failed to load.
#[derive(Debug)]
struct FailedManifest {
    /// The digests of the manifest and module that failed, so the same failure is logged once.
    fingerprint: String,
    /// The module and `[config]` files it names, if it parsed, so changes to them are noticed.
    files: Vec<PathBuf>,
}

/// A listener endpoint's running notification listener, and the options it was started with.
#[derive(Debug)]
struct RunningListener {
    listener: NotificationListener,
    options: ListenerOptions,
}

/// What a listener endpoint should be served with after a reload.
struct WantedListener {
    endpoint: Arc<WasmListener>,
    options: ListenerOptions,
}

impl Inner {
    /// The RPC client guests' outbound calls go through: the host's transport and its shared
    /// reply queue; a call that names no timeout waits `rpc_response_timeout`.
    fn outbound_client(&self) -> RpcClient {
        let timeout = Some(self.config.rpc_response_timeout);
        RpcClient::new(self.transport.clone(), Target::default())
            .prepare(crate::rpc::Prepare { timeout, ..crate::rpc::Prepare::default() })
    }
}

#[derive(Debug)]
struct Inner {
    config: HostConfig,
    transport: Arc<dyn Transport>,
    /// Where notifications go and listener endpoints listen: `transport` itself unless
    /// `[notifications] transport_url` names another broker (oslo's notification transport).
    notification_transport: Arc<dyn Transport>,
    runtime: Runtime,
    /// Loaded endpoints in manifest-file order. Replaced whole by each reload.
    endpoints: RwLock<Vec<Loaded>>,
    /// Manifests whose current content failed to load, by path.
    failed: Mutex<HashMap<PathBuf, FailedManifest>>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
    /// One RPC server per listen target.
    servers: tokio::sync::Mutex<BTreeMap<ListenTarget, RpcServer>>,
    /// One notification listener per listener endpoint, by endpoint name.
    listeners: tokio::sync::Mutex<BTreeMap<String, RunningListener>>,
    /// The host's notifier (guests emit through it), when a driver is configured.
    notifications: Option<HostNotifications>,
    control: tokio::sync::Mutex<Option<RpcServer>>,
    /// The file watcher; dropping it stops watching.
    watch: Mutex<Option<Watch>>,
    /// Cancelled when the host should stop (the control endpoint's `stop`).
    shutdown: CancellationToken,
    /// Where calls, reloads and guests' usage are counted, if the host keeps metrics.
    metrics: Option<Arc<Metrics>>,
    /// What reloads did, for the console.
    history: ReloadHistory,
}

impl Host {
    /// Connects the transports named in `config` and starts serving.
    pub async fn start(config: HostConfig) -> Result<Host, HostError> {
        let transports = Host::connect(&config).await?;
        Host::serve(config, transports, None).await
    }

    /// [`Host::start`], counting calls, reloads and guests' usage in `metrics`.
    pub async fn start_observed(config: HostConfig, metrics: Arc<Metrics>) -> Result<Host, HostError> {
        let transports = Host::connect(&config).await?;
        Host::serve(config, transports, Some(metrics)).await
    }

    /// Connects the transport named in `config`, and the notification transport if
    /// `[oslo_messaging_notifications] transport_url` names another (one round of attempts
    /// over each one's brokers).
    pub async fn connect(config: &HostConfig) -> Result<Transports, HostError> {
        let options = config.transport_options();
        let connect = |url: &crate::protocol::TransportUrl| {
            let options = options.clone();
            let url = url.clone();
            async move {
                transport::connect(&url, options)
                    .await
                    .map_err(|source| HostError::Transport { url: url.to_string(), source })
            }
        };
        let rpc = connect(&config.transport_url).await?;
        let notifications = match &config.notifications.transport_url {
            Some(url) => match connect(url).await {
                Ok(t) => t,
                Err(e) => {
                    rpc.close().await;
                    return Err(e);
                }
            },
            None => rpc.clone(),
        };
        Ok(Transports { rpc, notifications })
    }

    /// Starts serving over an existing transport (tests share one `memory://` broker this way).
    pub async fn with_transport(config: HostConfig, transport: Arc<dyn Transport>) -> Result<Host, HostError> {
        Host::serve(config, Transports { rpc: transport.clone(), notifications: transport }, None).await
    }

    /// Starts serving RPC over `transport`, and notifications (sent and listened to) over
    /// `notification_transport`, which may be the same.
    pub async fn with_transports(
        config: HostConfig,
        transport: Arc<dyn Transport>,
        notification_transport: Arc<dyn Transport>,
    ) -> Result<Host, HostError> {
        Host::serve(config, Transports { rpc: transport, notifications: notification_transport }, None).await
    }

    /// Starts serving over `transports`, counting in `metrics` if given.
    pub async fn serve(
        config: HostConfig,
        transports: Transports,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Host, HostError> {
        let Transports { rpc: transport, notifications: notification_transport } = transports;
        let runtime = Runtime::new(config.runtime.clone())?;
        let notifier = Notifier::new(
            notification_transport.clone(),
            &config.notifications.publisher_id.clone().unwrap_or_else(|| format!("wasmrpc.{}", config.server)),
            config.notifications.drivers.clone(),
            config.notifications.topics.clone(),
        );
        let notifications = notifier.is_enabled().then(|| HostNotifications::start(notifier, &config.server));
        let host = Host {
            inner: Arc::new(Inner {
                config,
                transport,
                notification_transport,
                runtime,
                endpoints: RwLock::default(),
                failed: Mutex::default(),
                reloading: tokio::sync::Mutex::new(()),
                servers: tokio::sync::Mutex::default(),
                listeners: tokio::sync::Mutex::default(),
                notifications,
                control: tokio::sync::Mutex::default(),
                watch: Mutex::default(),
                shutdown: CancellationToken::new(),
                metrics,
                history: ReloadHistory::default(),
            }),
        };
        let dir = host.inner.config.manifests.clone();
        if !dir.is_dir() {
            return Err(HostError::NotADirectory { path: dir });
        }
        if host.inner.config.watch {
            host.start_watching()?;
        }
        host.reload(None).await.map_err(|error| host.transport_error(error))?;
        host.start_control().await.map_err(|error| host.transport_error(error))?;
        let count = read(&host.inner.endpoints).len();
        tracing::info!(
            server = %host.inner.config.server,
            transport = %host.inner.config.transport_url,
            endpoints = count,
            watching = host.inner.config.watch,
            "wasmrpc host serving"
        );
        Ok(host)
    }

    fn transport_error(&self, source: TransportError) -> HostError {
        HostError::Transport { url: self.inner.config.transport_url.to_string(), source }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &HostConfig {
        &self.inner.config
    }

    /// The transport (its password never prints).
    #[must_use]
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.inner.transport
    }

    /// What readiness probes and metrics scrapes read.
    #[must_use]
    pub fn status(&self) -> HostStatus {
        let endpoints: Vec<EndpointStatus> = read(&self.inner.endpoints)
            .iter()
            .map(|l| EndpointStatus {
                name: l.spec.name.clone(),
                role: match l.served {
                    Served::Rpc(_) => "rpc",
                    Served::Listener(_) => "listener",
                },
                sha256: l.sha256().to_owned(),
                guests: l.plugin().stats(),
            })
            .collect();
        let failed = lock(&self.inner.failed);
        let loaded = read(&self.inner.endpoints);
        let mut not_loaded: Vec<PathBuf> =
            failed.keys().filter(|path| !loaded.iter().any(|l| &l.spec.manifest_path == *path)).cloned().collect();
        not_loaded.sort();
        HostStatus {
            endpoints,
            not_loaded,
            failed: failed.len(),
            broker: self.inner.transport.health(),
            notification_broker: (!Arc::ptr_eq(&self.inner.transport, &self.inner.notification_transport))
                .then(|| self.inner.notification_transport.health()),
        }
    }

    /// The listing the control endpoint returns.
    #[must_use]
    pub fn endpoint_listing(&self) -> Vec<Value> {
        self.inner.endpoint_listing()
    }

    /// Each RPC endpoint's topic and methods (public ones, with their keyword parameters), in
    /// manifest order: what `wasmrpc dev` shows an example call of.
    #[must_use]
    pub fn rpc_methods(&self) -> Vec<(String, Vec<wasmrpc_abi::MethodDescription>)> {
        read(&self.inner.endpoints)
            .iter()
            .filter_map(|l| {
                let topic = l.spec.rpc_target()?.topic.clone();
                let methods =
                    l.plugin().description().methods.iter().filter(|m| !m.name.starts_with('_')).cloned().collect();
                Some((topic, methods))
            })
            .collect()
    }

    /// The reload history, where `wasmrpc dev` adds its builds' failures.
    #[must_use]
    pub fn history(&self) -> &ReloadHistory {
        &self.inner.history
    }

    /// The reload history as the console shows it: oldest first, manifest paths as
    /// `list_endpoints` shows them (relative to the manifest directory).
    #[must_use]
    pub fn reload_history(&self) -> Vec<ReloadEvent> {
        let mut events = self.inner.history.events();
        for e in &mut events {
            e.manifest = PathBuf::from(self.inner.shown_path(&e.manifest));
        }
        events
    }

    /// Resolves when something asked the host to stop (the control endpoint's `stop`).
    pub async fn stopped(&self) {
        self.inner.shutdown.cancelled().await;
    }

    /// Asks the host to stop; [`Host::stop`] does the stopping.
    pub fn request_stop(&self) {
        self.inner.shutdown.cancel();
    }

    /// Stops watching and every server, drains in-flight calls (up to the configured drain
    /// timeout), and deletes the private fanout queues.
    pub async fn stop(&self) -> Result<(), DrainTimeout> {
        lock(&self.inner.watch).take();
        self.inner.shutdown.cancel();
        let _no_reload = self.inner.reloading.lock().await;
        let mut servers: Vec<RpcServer> = self.inner.servers.lock().await.values().cloned().collect();
        servers.extend(self.inner.control.lock().await.clone());
        for s in &servers {
            s.stop().await;
        }
        let deadline = Instant::now() + self.inner.config.drain_timeout;
        let listeners: Vec<NotificationListener> =
            std::mem::take(&mut *self.inner.listeners.lock().await).into_values().map(|r| r.listener).collect();
        for l in listeners {
            l.stop(deadline.saturating_duration_since(Instant::now())).await;
        }
        let mut outcome = Ok(());
        for s in &servers {
            if let Err(e) = s.wait(deadline.saturating_duration_since(Instant::now())).await {
                tracing::warn!(target = %s.target(), "{e}");
                outcome = Err(e);
            }
        }
        self.inner.transport.close().await;
        if !Arc::ptr_eq(&self.inner.transport, &self.inner.notification_transport) {
            self.inner.notification_transport.close().await;
        }
        outcome
    }

    /// Makes the running servers match the loaded endpoints: new targets get a server,
    /// existing ones get their endpoint list swapped atomically, and targets left without
    /// endpoints stop taking calls and drain in the background.
    ///
    /// Each target and listener succeeds or fails alone: one the broker refuses (a queue
    /// declared elsewhere with other arguments) is logged with its endpoints' names, and the
    /// rest carry on. Returns the endpoints that could not be served: their names, and why.
    async fn reconcile(&self) -> Vec<(String, String)> {
        let mut groups: BTreeMap<ListenTarget, Vec<Arc<dyn Endpoint>>> = BTreeMap::new();
        let mut wanted_listeners: BTreeMap<String, WantedListener> = BTreeMap::new();
        for l in read(&self.inner.endpoints).iter() {
            match (&l.spec.role, &l.served) {
                (Role::Rpc(t), Served::Rpc(endpoint)) => {
                    let key = ListenTarget {
                        exchange: t.exchange.clone(),
                        topic: t.topic.clone(),
                        server: t.server.clone().unwrap_or_else(|| self.inner.config.server.clone()),
                    };
                    groups.entry(key).or_default().push(endpoint.clone());
                }
                (Role::Listener(spec), Served::Listener(listener)) => {
                    let options = listener.options(spec, self.inner.config.executor_size);
                    wanted_listeners
                        .insert(l.spec.name.clone(), WantedListener { endpoint: listener.clone(), options });
                }
                _ => unreachable!("a manifest's role decides what is served"),
            }
        }
        let mut unserved = self.reconcile_listeners(wanted_listeners).await;
        let mut servers = self.inner.servers.lock().await;
        let gone: Vec<ListenTarget> = servers.keys().filter(|t| !groups.contains_key(*t)).cloned().collect();
        for target in gone {
            if let Some(server) = servers.remove(&target) {
                let drain = self.inner.config.drain_timeout;
                tokio::spawn(async move {
                    server.stop().await;
                    if let Err(e) = server.wait(drain).await {
                        tracing::warn!(target = %server.target(), "{e}");
                    }
                    tracing::info!(target = %server.target(), "no endpoint left on this target; stopped serving it");
                });
            }
        }
        for (target, mut endpoints) in groups {
            self.add_ping(&mut endpoints);
            match servers.get(&target) {
                Some(server) => server.dispatcher().replace(endpoints),
                None => {
                    let names: Vec<String> = endpoints.iter().map(|e| e.name().to_owned()).collect();
                    let dispatcher = Arc::new(Dispatcher::new(endpoints, Arc::new(NoOpSerializer)));
                    let server =
                        RpcServer::new(self.inner.transport.clone(), target.clone(), dispatcher, self.server_options());
                    match server.start().await {
                        Ok(()) => {
                            servers.insert(target, server);
                        }
                        Err(e) => {
                            let why = format!("cannot listen on its target {target}: {e}");
                            for name in names {
                                tracing::error!(endpoint = %name, "endpoint not served: {why}");
                                unserved.push((name, why.clone()));
                            }
                        }
                    }
                }
            }
        }
        unserved
    }

    /// Listeners: same options → the endpoint is swapped in place; new or changed options → a
    /// new listener (the old one stops and drains in the background); gone → stopped.
    async fn reconcile_listeners(&self, wanted: BTreeMap<String, WantedListener>) -> Vec<(String, String)> {
        let mut unserved = Vec::new();
        let mut running = self.inner.listeners.lock().await;
        let drain = self.inner.config.drain_timeout;
        let stale: Vec<String> = running
            .iter()
            .filter(|(name, r)| wanted.get(*name).is_none_or(|w| w.options != r.options))
            .map(|(n, _)| n.clone())
            .collect();
        for name in stale {
            if let Some(RunningListener { listener, .. }) = running.remove(&name) {
                tokio::spawn(async move { listener.stop(drain).await });
            }
        }
        for (name, WantedListener { endpoint, options }) in wanted {
            match running.get(&name) {
                Some(r) => r.listener.replace(endpoint),
                None => {
                    match NotificationListener::start(&self.inner.notification_transport, options.clone(), endpoint)
                        .await
                    {
                        Ok(listener) => {
                            running.insert(name, RunningListener { listener, options });
                        }
                        Err(e) => {
                            tracing::error!(endpoint = %name, targets = ?options.targets, "endpoint not served: cannot listen for its notifications: {e}");
                            unserved.push((name, format!("cannot listen for its notifications: {e}")));
                        }
                    }
                }
            }
        }
        unserved
    }

    async fn start_control(&self) -> Result<(), TransportError> {
        let target = ListenTarget {
            exchange: None,
            topic: self.inner.config.control_topic.clone(),
            server: self.inner.config.server.clone(),
        };
        let endpoint: Arc<dyn Endpoint> =
            Arc::new(control::ControlEndpoint::new(Arc::downgrade(&self.inner), self.inner.config.allow_remote_stop));
        let mut endpoints = vec![endpoint];
        self.add_ping(&mut endpoints);
        let dispatcher = Arc::new(Dispatcher::new(endpoints, Arc::new(NoOpSerializer)));
        let server = RpcServer::new(self.inner.transport.clone(), target, dispatcher, self.server_options());
        server.start().await?;
        *self.inner.control.lock().await = Some(server);
        Ok(())
    }

    /// oslo's `rpc_ping_enabled`: the ping endpoint goes last in every server's list, so an
    /// endpoint of the target's own that has the method keeps it (oslo then adds none).
    fn add_ping(&self, endpoints: &mut Vec<Arc<dyn Endpoint>>) {
        if self.inner.config.rpc_ping_enabled {
            endpoints.push(Arc::new(PingEndpoint::new()));
        }
    }

    fn server_options(&self) -> ServerOptions {
        ServerOptions { executor_size: self.inner.config.executor_size, reply_retry: self.inner.config.reply_retry }
    }
}
