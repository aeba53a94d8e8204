//! The soak: many calls against one host, watching the process's memory and file descriptors
//! for growth. In process over `memory://` (the host and its client share the process, so the
//! figures include the client's), the calculator in a warm instance that is replaced every
//! 10,000 calls (the default), `concurrency` calls in flight.
//!
//! A leak per call shows as RSS or descriptors climbing between the 10% and 100% samples; the
//! first 10% is warm-up (pools, caches, instances).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value, json};
use wasmrpc::protocol::Target;
use wasmrpc::rpc::RpcClient;
use wasmrpc::{Host, HostConfig};

/// One sample: after `calls` calls.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub calls: u64,
    pub rss_mib: f64,
    pub open_fds: usize,
    pub seconds: f64,
}

/// What the soak measured.
#[derive(Debug, Clone, Serialize)]
pub struct Soak {
    /// The command that measured it.
    pub command: String,
    pub calls: u64,
    pub concurrency: usize,
    pub failed: u64,
    pub seconds: f64,
    /// One sample per tenth of the calls.
    pub samples: Vec<Sample>,
    pub transport: &'static str,
    pub build: &'static str,
}

pub async fn run(plugins: &Path, calls: u64, concurrency: usize) -> anyhow::Result<Soak> {
    let dir = tempfile::tempdir()?;
    let module = plugins.join("calculator.wasm");
    std::fs::write(
        dir.path().join("calc.toml"),
        format!(
            "name = \"calc\"\nmodule = {:?}\n[target]\ntopic = \"soak\"\nversion = \"1.0\"\n[instance]\nmode = \"warm\"\nmax_concurrency = {concurrency}\n",
            module.display().to_string()
        ),
    )?;
    let url = format!("memory://soak-{}/", wasmrpc::protocol::new_id());
    let mut config = HostConfig::new();
    config.transport_url = wasmrpc::TransportUrl::parse(&url)?;
    config.manifests = dir.path().to_owned();
    config.watch = false;
    config.runtime.cache_dir = None;
    let host = Host::start(config).await?;
    let transport = wasmrpc::transport::connect(&wasmrpc::TransportUrl::parse(&url)?, Default::default()).await?;
    let client = RpcClient::new(transport, Target::topic("soak"));

    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
    let tenth = (calls / 10).max(1);
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, next, done, failed, samples) =
            (client.clone(), next.clone(), done.clone(), failed.clone(), samples.clone());
        workers.push(tokio::spawn(async move {
            let ctx = Map::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= calls {
                    return;
                }
                let args: Map<String, Value> = json!({"a": i, "b": 1}).as_object().cloned().unwrap_or_default();
                match client.call(&ctx, "add", args).await {
                    Ok(v) if v.as_f64() == Some((i + 1) as f64) => {}
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n % tenth == 0 {
                    let sample = Sample {
                        calls: n,
                        rss_mib: crate::scale::rss_mib(std::process::id()).unwrap_or(f64::NAN),
                        open_fds: open_fds().unwrap_or(0),
                        seconds: started.elapsed().as_secs_f64(),
                    };
                    eprintln!(
                        "soak: {n} calls, RSS {:.1} MiB, {} fds, {:.0} s",
                        sample.rss_mib, sample.open_fds, sample.seconds
                    );
                    samples.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(sample);
                }
            }
        }));
    }
    for w in workers {
        w.await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    // Let in-flight replies and instance returns settle before the host goes.
    tokio::time::sleep(Duration::from_millis(100)).await;
    host.stop().await.ok();
    let mut samples = std::mem::take(&mut *samples.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    samples.sort_by_key(|s| s.calls);
    Ok(Soak {
        command: String::new(),
        calls,
        concurrency,
        failed: failed.load(Ordering::Relaxed),
        seconds,
        samples,
        transport: "memory:// (host and client in one process)",
        build: if cfg!(debug_assertions) { "debug" } else { "release" },
    })
}

/// Writes the soak's figures as JSON for `wasmrpc-bench reliability`.
pub fn save(soak: &Soak, out: &PathBuf) -> anyhow::Result<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out, serde_json::to_vec_pretty(soak)?)?;
    Ok(())
}

fn open_fds() -> anyhow::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/fd")?.count())
}
