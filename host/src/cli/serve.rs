//! `wasmrpc serve`: run the host.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::host;

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
}

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let mut config = a.config.load()?;
    if let Some(v) = a.server {
        config.server = v;
    }
    if let Some(v) = a.manifests {
        config.manifests = v;
    }
    if let Some(v) = a.executor_size {
        config.executor_size = v;
    }
    if a.no_watch {
        config.watch = false;
    }
    config.allow_remote_stop |= a.allow_remote_stop;
    config.rpc_ping_enabled |= a.rpc_ping_enabled;
    host::run(config, shutdown_signal()).await.context("cannot serve")?;
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
