//! `wasmrpc serve`: run the host as a service.
//!
//! - At start-up a broker that is not there yet is waited for, with oslo's reconnect backoff
//!   and a log line per attempt (not ready meanwhile), rather than exiting: at boot the host
//!   and RabbitMQ start in any order.
//! - SIGHUP re-reads the configuration and every manifest, as oslo.service's reload does: a
//!   new host starts with them, takes over, and the old one drains its in-flight calls, so no
//!   call is dropped. A configuration that does not load leaves the running host alone. The
//!   log file is reopened (logrotate).
//! - SIGTERM and Ctrl-C drain in-flight calls (up to `drain_timeout`), then exit.
//! - Under systemd (`Type=notify`) each of these is reported; `--http` serves probes and
//!   metrics throughout.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::signal::unix::{Signal, SignalKind, signal};

use super::{log_file::LogFile, systemd};
use crate::host::{Host, HostConfig, HostError};
use crate::http::{HttpServer, Serving};
use crate::metrics::Metrics;
use crate::transport::{ErrorKind, RabbitOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: super::config::ConfigArgs,
    /// This host's server name [default: the hostname].
    #[arg(long, value_name = "NAME")]
    server: Option<String>,
    /// Directory of endpoint manifests [default: manifests].
    #[arg(long, value_name = "DIR")]
    manifests: Option<PathBuf>,
    /// Concurrent calls per topic (oslo's executor_thread_pool_size) [default: 64].
    #[arg(long, value_name = "N")]
    executor_size: Option<usize>,
    /// Do not watch manifests and modules for changes (no hot reload).
    #[arg(long)]
    no_watch: bool,
    /// Let the control endpoint's `stop` stop this host (off by default: anyone on the vhost could).
    #[arg(long)]
    allow_remote_stop: bool,
    /// Answer oslo's `oslo_rpc_server_ping` on every served target (oslo's `rpc_ping_enabled`).
    #[arg(long)]
    rpc_ping_enabled: bool,
    /// Serve /metrics (Prometheus), /healthz and /readyz on this address, e.g. 127.0.0.1:9180
    /// [default: off].
    #[arg(long, value_name = "ADDR", env = "WASMRPC_HTTP")]
    http: Option<SocketAddr>,
}

impl Args {
    /// The layered configuration (files, environment, flags). Read again on SIGHUP.
    fn config(&self) -> anyhow::Result<HostConfig> {
        let mut config = self.config.load()?;
        if let Some(v) = &self.server {
            config.server.clone_from(v);
        }
        if let Some(v) = &self.manifests {
            config.manifests.clone_from(v);
        }
        if let Some(v) = self.executor_size {
            config.executor_size = v;
        }
        if self.no_watch {
            config.watch = false;
        }
        config.allow_remote_stop |= self.allow_remote_stop;
        config.rpc_ping_enabled |= self.rpc_ping_enabled;
        if self.http.is_some() {
            config.http = self.http;
        }
        Ok(config)
    }
}

/// The signals the service acts on.
struct Signals {
    hangup: Signal,
    terminate: Signal,
    interrupt: Signal,
}

enum Received {
    Reload,
    Stop,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            hangup: signal(SignalKind::hangup())?,
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    async fn next(&mut self) -> Received {
        tokio::select! {
            _ = self.hangup.recv() => Received::Reload,
            _ = self.terminate.recv() => Received::Stop,
            _ = self.interrupt.recv() => Received::Stop,
        }
    }
}

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let config = a.config()?;
    let mut signals = Signals::new().context("cannot handle signals")?;
    let metrics = Arc::new(Metrics::new());
    let serving = Arc::new(Serving::default());
    let http = match config.http {
        Some(addr) => Some(HttpServer::start(addr, serving.clone(), metrics.clone()).await?),
        None => None,
    };
    systemd::start_watchdog();
    let Some(mut host) = start(config, &metrics, &serving, &mut signals).await? else {
        // Told to stop while waiting for the broker.
        if let Some(http) = http {
            http.stop().await;
        }
        return Ok(ExitCode::SUCCESS);
    };
    serving.serve(host.clone());
    systemd::ready("serving");
    loop {
        tokio::select! {
            received = signals.next() => match received {
                Received::Reload => host = reload(&a, host, &metrics, &serving).await,
                Received::Stop => {
                    tracing::info!("shutting down");
                    break;
                }
            },
            () = host.stopped() => break,
        }
    }
    serving.stopping();
    systemd::stopping();
    let drain = host.config().drain_timeout;
    match host.stop().await {
        Ok(()) => tracing::info!("stopped; every in-flight call finished"),
        Err(e) => tracing::warn!("stopped after waiting {drain:?}: {e}"),
    }
    if let Some(http) = http {
        http.stop().await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Starts the host, waiting for the broker with oslo's backoff (`rabbit_retry_interval`, plus
/// `rabbit_retry_backoff` per failed round, at most `rabbit_interval_max`) for as long as it
/// takes. `None`: a stop signal came first. Anything but an unreachable broker is fatal.
async fn start(
    config: HostConfig,
    metrics: &Arc<Metrics>,
    serving: &Serving,
    signals: &mut Signals,
) -> anyhow::Result<Option<Host>> {
    let backoff = RabbitOptions::default()
        .apply(config.rabbit_options.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .unwrap_or_default();
    let mut failed: u32 = 0;
    loop {
        let error = match Host::start_observed(config.clone(), metrics.clone()).await {
            Ok(host) => return Ok(Some(host)),
            Err(HostError::Transport { url, source }) if source.kind == ErrorKind::Connection => {
                format!("transport {url}: {source}")
            }
            Err(e) => return Err(anyhow::Error::new(e).context("cannot serve")),
        };
        // At least a moment: a zero interval must not spin on a broker that refuses at once.
        let delay = backoff.backoff(failed).max(Duration::from_millis(100));
        failed = failed.saturating_add(1);
        tracing::warn!(attempt = failed, "the broker is not reachable yet ({error}); trying again in {delay:?}");
        let why = format!("waiting for the broker (attempt {failed})");
        systemd::status(&why);
        serving.waiting(why);
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            received = signals.next() => if let Received::Stop = received {
                tracing::info!("shutting down before the broker was reached");
                return Ok(None);
            },
        }
    }
}

/// SIGHUP: a host with the configuration and manifests as they are now takes over, then the
/// old one drains. Returns the host serving afterwards (the old one if the new cannot start).
async fn reload(a: &Args, old: Host, metrics: &Arc<Metrics>, serving: &Serving) -> Host {
    systemd::reloading();
    LogFile::reopen_current();
    tracing::info!("SIGHUP: re-reading the configuration and every manifest");
    let started = match a.config() {
        Ok(config) => {
            if config.http != old.config().http {
                tracing::warn!("the `http` address changed; it takes effect at the next restart");
            }
            Host::start_observed(config, metrics.clone()).await.map_err(anyhow::Error::new)
        }
        Err(e) => Err(e),
    };
    let host = match started {
        Ok(new) => {
            // The console's reload history reads across the handover.
            new.history().continue_from(old.history());
            serving.serve(new.clone());
            let drain = old.config().drain_timeout;
            // The new host is already taking calls; the old one finishes what it holds.
            tokio::spawn(async move {
                match old.stop().await {
                    Ok(()) => tracing::info!("the previous configuration's host drained and stopped"),
                    Err(e) => tracing::warn!("the previous configuration's host stopped after waiting {drain:?}: {e}"),
                }
            });
            tracing::info!("reloaded: serving with the new configuration");
            new
        }
        Err(e) => {
            tracing::error!("reload failed; the running configuration keeps serving: {}", super::one_line(&e));
            old
        }
    };
    systemd::ready("serving");
    host
}
