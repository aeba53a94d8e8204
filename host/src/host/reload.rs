//! Hot reload: drop a manifest and its module into the directory and it is served; change
//! either and the new version replaces the old without dropping a call.
//!
//! A reload compares content, not timestamps: a manifest whose text and module bytes have the
//! same digests as what is loaded is left alone. Changed ones are compiled off the async
//! workers (or taken from the compiled-module cache) and checked like at start-up; only then is
//! the endpoint list of their server swapped, atomically. Calls already running keep the
//! version they started with, and the old module is freed when the last of them ends. A
//! manifest or module that fails leaves the last good version serving; the failure is logged
//! once per content. A removed manifest's endpoint stops taking calls and its in-flight calls
//! finish.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;

use super::{
    EndpointServices, FailedManifest, Host, HostError, Inner, Loaded, ReloadOutcome, Served, WasmEndpoint,
    WasmListener, lock, read, write,
};
use crate::manifest::{self, EndpointSpec, ManifestError, Role};
use crate::notification::{HostNotifications, as_sink};
use crate::runtime::{GuestServices, LoadError, digest};
use crate::transport::TransportError;
use crate::watch::{Changes, Watch};

/// What one reload did, by endpoint name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Endpoints served for the first time.
    pub loaded: Vec<String>,
    /// Endpoints now served by a new version.
    pub reloaded: Vec<String>,
    /// Endpoints no longer served.
    pub unloaded: Vec<String>,
    /// Manifests that failed (their last good version, if any, still serves).
    pub failed: Vec<PathBuf>,
}

/// Why a manifest's endpoint could not be loaded (the last good version, if any, keeps serving).
#[derive(Debug, thiserror::Error)]
enum EndpointError {
    /// The manifest cannot be read or is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The module cannot be read, compiled, or does not fit the ABI or its manifest.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A `[config]` value cannot be resolved.
    #[error(transparent)]
    Config(#[from] super::services::ConfigError),
    /// `[listener.filter]` has a pattern the filter cannot compile.
    #[error("{}: [listener.filter]: {source}", manifest.display())]
    Filter {
        /// The manifest.
        manifest: PathBuf,
        /// What the regex compiler said.
        source: regex::Error,
    },
}

/// What a manifest file comes to after a reload looked at it.
enum Verdict {
    /// Serve this (unchanged, new, or the last good version after a failure).
    Serve(Loaded),
    /// Serve nothing for this file (it failed and nothing was loaded before, or it is gone).
    Nothing,
}

impl Host {
    /// Re-reads the manifest directory and applies what changed. With `changes`, only the
    /// manifests (and modules) named in it are looked at; `None` looks at everything.
    pub async fn reload(&self, changes: Option<&Changes>) -> Result<ReloadSummary, TransportError> {
        let _one_at_a_time = self.inner.reloading.lock().await;
        let mut summary = ReloadSummary::default();
        let dir = &self.inner.config.manifests;
        let paths: Vec<PathBuf> = match manifest::discover(dir) {
            Ok(p) => p.into_iter().map(|p| std::path::absolute(&p).unwrap_or(p)).collect(),
            Err(e) => {
                tracing::error!(dir = %dir.display(), "cannot list the manifest directory: {e}");
                return Ok(summary);
            }
        };
        let current: HashMap<PathBuf, Loaded> =
            read(&self.inner.endpoints).iter().map(|l| (l.spec.manifest_path.clone(), l.clone())).collect();

        // Look at the relevant manifests concurrently (compilation runs on blocking threads), a
        // few at a time: each load briefly instantiates its module, and hundreds at once would
        // spread over as many instance slots, each keeping pages resident.
        let parallel = std::thread::available_parallelism().map_or(2, std::num::NonZero::get) * 4;
        let permits = Arc::new(tokio::sync::Semaphore::new(parallel));
        let mut tasks = tokio::task::JoinSet::new();
        for (index, path) in paths.iter().enumerate() {
            let loaded = current.get(path).cloned();
            if !self.inner.is_relevant(changes, path, loaded.as_ref()) {
                continue;
            }
            let host = self.clone();
            let path = path.clone();
            let permits = permits.clone();
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                (index, host.inner.evaluate(&path, loaded.as_ref()).await)
            });
        }
        let mut verdicts: HashMap<usize, Verdict> = HashMap::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((index, verdict)) => {
                    verdicts.insert(index, verdict);
                }
                Err(e) => tracing::error!("a reload task failed: {e}"),
            }
        }

        let mut next: Vec<Loaded> = Vec::new();
        let mut names: BTreeSet<String> = BTreeSet::new();
        for (index, path) in paths.iter().enumerate() {
            let serve = match verdicts.remove(&index) {
                Some(Verdict::Serve(l)) => Some(l),
                Some(Verdict::Nothing) => None,
                None => current.get(path).cloned(),
            };
            let Some(l) = serve else {
                if lock(&self.inner.failed).contains_key(path) {
                    summary.failed.push(path.clone());
                }
                continue;
            };
            if !names.insert(l.spec.name.clone()) {
                let message = format!(
                    "endpoint name {:?} is already used by an earlier manifest; this one is not served",
                    l.spec.name
                );
                tracing::error!("{}: {message}", path.display());
                self.inner.history.record(&l.spec.name, path, ReloadOutcome::Failed { message });
                summary.failed.push(path.clone());
                continue;
            }
            match current.get(path) {
                None => summary.loaded.push(l.spec.name.clone()),
                Some(old) if !old.same(&l) => summary.reloaded.push(l.spec.name.clone()),
                Some(_) => {}
            }
            if lock(&self.inner.failed).contains_key(path) {
                summary.failed.push(path.clone());
            }
            next.push(l);
        }
        for (path, old) in &current {
            if !next.iter().any(|l| l.same(old) || l.spec.manifest_path == *path) {
                tracing::info!(endpoint = %old.spec.name, sha256 = %old.sha256(), manifest = %path.display(), "endpoint unloaded");
                self.inner.host_event("unloaded", "info", old, None);
                self.inner.history.record(&old.spec.name, path, ReloadOutcome::Removed);
                summary.unloaded.push(old.spec.name.clone());
            }
        }
        lock(&self.inner.failed).retain(|p, _| paths.contains(p));

        *write(&self.inner.endpoints) = next;
        let unserved = self.reconcile().await;
        if !unserved.is_empty() {
            // Not listed as served: `list_endpoints` shows what answers. A later reload tries
            // them again (they are neither loaded nor failed, so a full reload loads them).
            let why = |name: &str| unserved.iter().find(|(n, _)| n == name).map(|(_, why)| why);
            let mut endpoints = write(&self.inner.endpoints);
            for l in &*endpoints {
                if let Some(why) = why(&l.spec.name) {
                    summary.failed.push(l.spec.manifest_path.clone());
                    let message = format!("endpoint not served: {why}");
                    self.inner.history.record(&l.spec.name, &l.spec.manifest_path, ReloadOutcome::Failed { message });
                }
            }
            endpoints.retain(|l| why(&l.spec.name).is_none());
            drop(endpoints);
            summary.loaded.retain(|n| why(n).is_none());
            summary.reloaded.retain(|n| why(n).is_none());
        }
        self.watch_modules();
        Ok(summary)
    }

    /// Starts the watcher and the task that reloads on its changes.
    pub(super) fn start_watching(&self) -> Result<(), HostError> {
        let dir = &self.inner.config.manifests;
        let (watch, mut changes) = Watch::start(dir, self.inner.config.reload_debounce)?;
        *lock(&self.inner.watch) = Some(watch);
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            while let Some(batch) = changes.recv().await {
                let Some(inner) = weak.upgrade() else { return };
                if inner.shutdown.is_cancelled() {
                    return;
                }
                if let Err(e) = (Host { inner }).reload(Some(&batch)).await {
                    tracing::error!("reload could not update the servers: {e}");
                }
            }
        });
        Ok(())
    }

    /// Watches the directories of every module and `[config]` file a manifest points to.
    fn watch_modules(&self) {
        let guard = lock(&self.inner.watch);
        let Some(watch) = guard.as_ref() else { return };
        let mut files: Vec<PathBuf> = read(&self.inner.endpoints).iter().flat_map(|l| input_files(&l.spec)).collect();
        files.extend(lock(&self.inner.failed).values().flat_map(|f| f.files.iter().cloned()));
        watch.watch_files(files.iter().map(PathBuf::as_path));
    }
}

/// The files an endpoint's content comes from besides its manifest: its module and the files
/// its `[config]` reads. A change to any of them reloads it.
fn input_files(spec: &EndpointSpec) -> Vec<PathBuf> {
    std::iter::once(spec.module_path.clone()).chain(spec.config_files().map(Path::to_owned)).collect()
}

/// The digest of the manifest's text and of every file its `[config]` reads, so a changed
/// referenced file counts as a changed manifest.
async fn manifest_digest(text: &str, spec: Option<&EndpointSpec>) -> String {
    let mut parts = digest(text.as_bytes());
    for file in spec.into_iter().flat_map(EndpointSpec::config_files) {
        parts.push(':');
        parts.push_str(&tokio::fs::read(file).await.map_or_else(|_| "-".to_owned(), |b| digest(&b)));
    }
    parts
}

impl Inner {
    /// Whether a reload for `changes` must look at this manifest.
    fn is_relevant(&self, changes: Option<&Changes>, path: &Path, loaded: Option<&Loaded>) -> bool {
        let Some(c) = changes else { return true };
        if c.rescan || c.paths.contains(path) {
            return true;
        }
        let files = match loaded {
            Some(l) => input_files(&l.spec),
            None => lock(&self.failed).get(path).map(|f| f.files.clone()).unwrap_or_default(),
        };
        files.iter().any(|f| c.paths.contains(f))
    }

    /// Decides what to serve for one manifest file.
    async fn evaluate(&self, path: &Path, current: Option<&Loaded>) -> Verdict {
        let keep = || current.cloned().map_or(Verdict::Nothing, Verdict::Serve);
        let text = match tokio::fs::read_to_string(path).await {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Verdict::Nothing,
            Err(e) => {
                tracing::error!(manifest = %path.display(), "cannot read the manifest: {e}");
                return keep();
            }
        };
        // The manifest and, if it parses, its module's bytes (or why they cannot be read).
        let parsed = match manifest::from_str(path, &text) {
            Ok(spec) => {
                let module = crate::runtime::read_module(&spec.module_path).await;
                Ok((spec, module))
            }
            Err(e) => Err(e),
        };
        let manifest_digest = manifest_digest(&text, parsed.as_ref().ok().map(|(spec, _)| spec)).await;
        let module_digest = match &parsed {
            Ok((_, Ok(bytes))) => digest(bytes),
            _ => "-".to_owned(),
        };
        if let Some(c) = current
            && c.manifest_digest == manifest_digest
            && c.sha256() == module_digest
        {
            return keep(); // touched, not changed
        }
        let fingerprint = format!("{manifest_digest}:{module_digest}");
        // A manifest that fails because its module is not built yet still names the module:
        // watch it, so the build that writes it (`wasmrpc dev`'s first) loads the endpoint.
        let files = match &parsed {
            Ok((s, _)) => input_files(s),
            Err(_) => manifest::build_target_from_str(path, &text).map(|t| vec![t.module_path]).unwrap_or_default(),
        };
        if lock(&self.failed).get(path).is_some_and(|f| f.fingerprint == fingerprint) {
            return keep(); // the same broken content: already reported
        }
        let name = current.map(|c| c.spec.name.clone()).or_else(|| parsed.as_ref().ok().map(|(s, _)| s.name.clone()));
        match self.load(parsed).await {
            Ok((spec, served)) => {
                lock(&self.failed).remove(path);
                let loaded = Loaded { spec: spec.clone(), served, manifest_digest };
                let plugin = loaded.plugin();
                let compiled = plugin.compiled();
                let took_ms = plugin.load_time().as_secs_f64() * 1000.0;
                match current {
                    Some(old) => {
                        tracing::info!(
                            endpoint = %spec.name,
                            old_sha256 = %old.sha256(),
                            new_sha256 = %plugin.sha256(),
                            took_ms,
                            ?compiled,
                            "endpoint reloaded"
                        );
                        self.host_event("reloaded", "info", &loaded, Some(json!({"old_sha256": old.sha256()})));
                        self.history.record(
                            &spec.name,
                            path,
                            ReloadOutcome::Loaded {
                                sha256: plugin.sha256().to_owned(),
                                previous_sha256: Some(old.sha256().to_owned()),
                            },
                        );
                        if let Some(m) = &self.metrics {
                            m.reloaded(&spec.name);
                        }
                    }
                    None => {
                        tracing::info!(endpoint = %spec.name, sha256 = %plugin.sha256(), took_ms, ?compiled, "endpoint loaded");
                        self.host_event("loaded", "info", &loaded, None);
                        self.history.record(
                            &spec.name,
                            path,
                            ReloadOutcome::Loaded { sha256: plugin.sha256().to_owned(), previous_sha256: None },
                        );
                    }
                }
                Verdict::Serve(loaded)
            }
            Err(error) => {
                lock(&self.failed).insert(path.to_owned(), FailedManifest { fingerprint, files });
                if let Some(m) = &self.metrics {
                    m.reload_failed(name.as_deref().unwrap_or(&path.display().to_string()));
                }
                let endpoint = name.unwrap_or_else(|| {
                    path.file_stem().map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned())
                });
                self.history.record(endpoint, path, ReloadOutcome::Failed { message: error.to_string() });
                if let Some(n) = &self.notifications {
                    let name = current.map_or_else(|| path.display().to_string(), |c| c.spec.name.clone());
                    let payload = json!({"endpoint": name, "manifest": path.display().to_string(), "error": error.to_string(), "serving_sha256": current.map(Loaded::sha256)});
                    n.host_event("load_failed", "error", payload);
                }
                match current {
                    Some(old) => tracing::error!(
                        manifest = %path.display(),
                        endpoint = %old.spec.name,
                        serving_sha256 = %old.sha256(),
                        "reload failed; the last good version keeps serving: {error}"
                    ),
                    None => tracing::error!(manifest = %path.display(), "endpoint not loaded: {error}"),
                }
                keep()
            }
        }
    }

    /// Loads a parsed manifest with its module's bytes.
    async fn load(
        &self,
        parsed: Result<(EndpointSpec, std::io::Result<Vec<u8>>), ManifestError>,
    ) -> Result<(Arc<EndpointSpec>, Served), EndpointError> {
        let (spec, module) = parsed?;
        let spec = Arc::new(spec);
        let bytes = module.map_err(|source| LoadError::Read {
            endpoint: spec.name.clone(),
            path: spec.module_path.clone(),
            source,
        })?;
        let services = GuestServices {
            notifications: self.notifications.as_ref().map(as_sink),
            host: Some(Arc::new(EndpointServices::new(&spec, self.outbound_client())?)),
            stats: self.metrics.as_ref().map(|m| m.guest_stats(&spec.name)).unwrap_or_default(),
        };
        let plugin = self.runtime.load_bytes(&spec, bytes, services).await?;
        let served = match &spec.role {
            Role::Rpc(target) => {
                let endpoint = WasmEndpoint::new(spec.clone(), target, plugin);
                Served::Rpc(Arc::new(match &self.metrics {
                    Some(metrics) => endpoint.with_metrics(metrics),
                    None => endpoint,
                }))
            }
            Role::Listener(listener) => {
                let listener = WasmListener::new(spec.clone(), listener, plugin)
                    .map_err(|source| EndpointError::Filter { manifest: spec.manifest_path.clone(), source })?;
                Served::Listener(Arc::new(listener))
            }
        };
        Ok((spec, served))
    }

    /// The host's own notification about an endpoint, when a notification driver is configured.
    fn host_event(&self, event: &str, priority: &str, loaded: &Loaded, extra: Option<serde_json::Value>) {
        if let Some(n) = &self.notifications {
            let topic = loaded.spec.rpc_target().map(|t| t.topic.as_str());
            let payload = HostNotifications::endpoint_payload(
                &loaded.spec.name,
                topic,
                Some(loaded.sha256()),
                extra.unwrap_or_default(),
            );
            n.host_event(event, priority, payload);
        }
    }
}
