//! `wasmrpc dev [DIR]`: the author's loop in one command. Builds every endpoint once, serves
//! the manifests (on `memory://`, so no broker is needed) with the HTTP gateway on a loopback
//! port, and rebuilds an endpoint when one of its `[build] watch` sources changes.
//!
//! A rebuild only writes the module; the host's own hot reload (it watches every module file)
//! then swaps it in, exactly as it would for a module copied in by hand: there is one reload
//! path. A failed build changes no module, so the last good version keeps serving, and the
//! compiler's errors are printed. Each endpoint builds one at a time: changes during a build
//! queue exactly one more build (a [`Notify`] holds at most one permit), which sees them all.
//!
//! Builds are read from the manifests at start; a manifest added or a `[build]` edited later
//! is served (hot reload) but rebuilt only after `dev` restarts.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;

use super::build::build_one;
use crate::builds::{BuildLog, BuildOutcome, Echo};
use crate::host::{Host, HostConfig, ReloadOutcome};
use crate::http::{HttpServer, Serving};
use crate::manifest::{self, BuildTarget};
use crate::metrics::Metrics;
use crate::protocol::TransportUrl;
use crate::watch::Watch;

/// The listener's address unless `--http` says otherwise (a free port if it is taken).
const DEFAULT_HTTP: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
/// How long sources must be quiet before a rebuild: an editor's save (write, rename, chmod)
/// and a `git checkout` of several files become one build.
const SOURCE_DEBOUNCE: Duration = Duration::from_millis(100);
/// Builds kept in the [`BuildLog`].
pub const BUILD_HISTORY: usize = 50;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The manifest directory, or a project directory holding `manifests/` [default: manifests].
    dir: Option<PathBuf>,
    /// The broker: memory:// serves in this process, with no broker (only the HTTP gateway
    /// reaches it); rabbit://user:pass@host:5672/ serves on RabbitMQ.
    #[arg(long, value_name = "URL", default_value = "memory://")]
    transport: String,
    /// The HTTP listener (the gateway at /v1/, /metrics, /healthz, /readyz)
    /// [default: 127.0.0.1:8080, or a free loopback port if that is taken].
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// This host's server name [default: the hostname].
    #[arg(long, value_name = "NAME")]
    server: Option<String>,
}

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let dir = manifest_dir(a.dir.as_deref());
    let mut config = HostConfig::new();
    config.transport_url = TransportUrl::parse(&a.transport)?;
    config.manifests.clone_from(&dir);
    if let Some(server) = a.server {
        config.server = server;
    }
    config.watch = true;
    // A save rebuilds the same module with most functions unchanged: compile only the others.
    config.runtime.incremental_compilation = true;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;

    let targets = build_targets(&dir)?;
    let log = BuildLog::new(BUILD_HISTORY);
    for target in &targets {
        // The module's directory exists before the host starts, so the host's module watch
        // covers it even when this first build fails and a later one writes the module.
        if let Some(parent) = target.module_path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        if let Some(event) = build_one(target, &log, Echo::Passthrough).await
            && let BuildOutcome::Failed { status } = &event.outcome
        {
            eprintln!("the build of {} failed ({status}); it is served once a build succeeds", target.name);
        }
    }

    let metrics = Arc::new(Metrics::new());
    let serving = Arc::new(Serving::default());
    let host = Host::start_observed(config, metrics.clone()).await.context("cannot serve")?;
    serving.serve(host.clone());
    let http = match a.http {
        Some(addr) => HttpServer::start(addr, serving.clone(), metrics.clone()).await?,
        None => match HttpServer::start(DEFAULT_HTTP, serving.clone(), metrics.clone()).await {
            Ok(http) => http,
            Err(_) => HttpServer::start(SocketAddr::new(DEFAULT_HTTP.ip(), 0), serving.clone(), metrics).await?,
        },
    };
    print!("{}", banner(&host, &a.transport, http.local_addr()));

    let rebuilds = Rebuilds::start(&targets, &log)?;
    let failures = tokio::spawn(forward_failures(log.clone(), host.clone()));
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
        () = host.stopped() => {}
    }
    drop(rebuilds);
    failures.abort();
    serving.stopping();
    if let Err(e) = host.stop().await {
        tracing::warn!("stopped: {e}");
    }
    http.stop().await;
    Ok(ExitCode::SUCCESS)
}

/// Puts each failed build, with the compiler's output, in the host's reload history, where the
/// console shows it beside the reloads: the builds before the host started, then each one as
/// it ends.
async fn forward_failures(log: BuildLog, host: Host) {
    let mut changed = log.subscribe();
    // Builds of several plugins may end out of order: remember which ended builds were handled.
    let mut handled = std::collections::HashSet::new();
    loop {
        let events = log.recent();
        handled.retain(|id| events.iter().any(|e| e.id == *id));
        for event in events {
            if event.took.is_none() || !handled.insert(event.id) {
                continue;
            }
            if let BuildOutcome::Failed { status } = &event.outcome {
                let output = format!("{}\n{} ({status})", event.output_tail.trim_end(), event.command);
                host.history().record(event.endpoint, event.manifest, ReloadOutcome::BuildFailed { output });
            }
        }
        if changed.changed().await.is_err() {
            return;
        }
    }
}

/// `DIR`, or `DIR/manifests` when that is a directory (so `wasmrpc dev hello` serves the
/// project `wasmrpc new hello` wrote).
fn manifest_dir(dir: Option<&Path>) -> PathBuf {
    let dir = dir.unwrap_or(Path::new("manifests"));
    let inner = dir.join("manifests");
    if inner.is_dir() { inner } else { dir.to_owned() }
}

/// The build of every manifest in `dir` that has one. A manifest that cannot be read is left
/// to the host, which reports it with the rest of its problems.
fn build_targets(dir: &Path) -> anyhow::Result<Vec<BuildTarget>> {
    let paths = manifest::discover(dir).with_context(|| format!("cannot list the manifests in {}", dir.display()))?;
    Ok(paths
        .iter()
        .filter_map(|path| match manifest::build_target(path) {
            Ok(t) if t.build.is_some() => Some(t),
            Ok(t) => {
                eprintln!("{}: no [build] section; it is served but never rebuilt", t.manifest_path.display());
                None
            }
            Err(_) => None,
        })
        .collect())
}

/// What is served, where, and a call to paste.
fn banner(host: &Host, transport: &str, http: SocketAddr) -> String {
    let mut out = format!("\nwasmrpc dev: serving on {transport}; HTTP gateway at http://{http}/v1/\n");
    let methods = host.rpc_methods();
    for (topic, methods) in &methods {
        let names: Vec<&str> = methods.iter().map(|m| m.name.as_str()).collect();
        out.push_str(&format!("  {topic}: {}\n", names.join(", ")));
    }
    if let Some((topic, Some(method))) = methods.first().map(|(t, m)| (t, m.first())) {
        let args: serde_json::Map<String, serde_json::Value> =
            method.params.iter().map(|p| (p.clone(), serde_json::Value::from("world"))).collect();
        out.push_str(&format!(
            "Try:\n  curl -s -X POST http://{http}/v1/call/{topic}/{} -d '{}'\n",
            method.name,
            serde_json::Value::Object(args)
        ));
    }
    out.push_str("Watching the build sources; save a file to rebuild. Ctrl-C stops.\n\n");
    out
}

/// The source watcher and one build loop per endpoint; dropping it stops both.
struct Rebuilds {
    _watch: Option<Watch>,
    tasks: tokio::task::JoinSet<()>,
}

impl Drop for Rebuilds {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

impl Rebuilds {
    fn start(targets: &[BuildTarget], log: &BuildLog) -> anyhow::Result<Rebuilds> {
        let mut tasks = tokio::task::JoinSet::new();
        let mut roots: Vec<(PathBuf, bool)> = Vec::new();
        let mut loops: Vec<(BuildTarget, Arc<Notify>)> = Vec::new();
        for target in targets {
            let Some(build) = &target.build else { continue };
            for root in build.watch_roots() {
                match roots.iter_mut().find(|(d, _)| *d == root.dir) {
                    Some((_, recursive)) => *recursive |= root.recursive,
                    None => roots.push((root.dir, root.recursive)),
                }
            }
            let wake = Arc::new(Notify::new());
            tasks.spawn(build_loop(target.clone(), log.clone(), wake.clone()));
            loops.push((target.clone(), wake));
        }
        if roots.is_empty() {
            return Ok(Rebuilds { _watch: None, tasks });
        }
        let (watch, mut changes) = Watch::sources(&roots, SOURCE_DEBOUNCE)?;
        tasks.spawn(async move {
            while let Some(batch) = changes.recv().await {
                for (target, wake) in &loops {
                    let Some(build) = &target.build else { continue };
                    let changed: Vec<&PathBuf> = batch.paths.iter().filter(|p| build.watches(p)).collect();
                    if batch.rescan || !changed.is_empty() {
                        let what = changed.first().map_or_else(|| "sources".to_owned(), |p| p.display().to_string());
                        eprintln!("{what} changed: rebuilding {}", target.name);
                        wake.notify_one();
                    }
                }
            }
        });
        Ok(Rebuilds { _watch: Some(watch), tasks })
    }
}

/// Builds `target` each time `wake` is notified, one build at a time.
async fn build_loop(target: BuildTarget, log: BuildLog, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        let Some(event) = build_one(&target, &log, Echo::Passthrough).await else { return };
        if let BuildOutcome::Failed { status } = &event.outcome {
            eprintln!("the build of {} failed ({status}); the last good version, if any, keeps serving", target.name);
        }
    }
}
