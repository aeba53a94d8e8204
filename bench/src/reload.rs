//! Hot-reload latency: from the moment a new module is written (renamed over the old one, as
//! cargo and editors do) to the first call answered by it, with and without the
//! compiled-module cache. The debounce counts.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Map;
use wasmrpc::protocol::Target;
use wasmrpc::rpc::RpcClient;
use wasmrpc::{Host, HostConfig, RuntimeConfig};

use crate::stats::Samples;

/// Latency quantiles of one configuration, in milliseconds.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: &'static str,
    pub median_ms: f64,
    pub p95_ms: f64,
    pub reloads: usize,
}

async fn version(client: &RpcClient) -> Option<String> {
    client.call(&Map::new(), "version", Map::new()).await.ok().and_then(|v| v.as_str().map(str::to_owned))
}

async fn one(plugins: &Path, cache: Option<&Path>, reloads: usize) -> anyhow::Result<(f64, f64)> {
    let (a, b) = (std::fs::read(plugins.join("versioned_a.wasm"))?, std::fs::read(plugins.join("versioned_b.wasm"))?);
    let dir = tempfile::tempdir()?;
    let module = dir.path().join("current.wasm");
    std::fs::write(&module, &a)?;
    crate::inproc::write_manifest(dir.path(), "versioned", &module, "versioned", "")?;
    let url = format!("memory://reload-{}/", wasmrpc::protocol::new_id());
    let mut config = HostConfig::new();
    config.transport_url = wasmrpc::TransportUrl::parse(&url)?;
    config.manifests = dir.path().to_owned();
    config.runtime =
        RuntimeConfig { max_instances: 100, cache_dir: cache.map(Path::to_owned), ..RuntimeConfig::default() };
    config.watch = true;
    let host = Host::start(config).await?;
    let transport = wasmrpc::transport::connect(&wasmrpc::TransportUrl::parse(&url)?, Default::default()).await?;
    let client = RpcClient::new(transport, Target::topic("versioned"));
    let mut samples = Samples::with_capacity(reloads);
    for i in 0..reloads {
        let (bytes, expected) = if i % 2 == 0 { (&b, "versioned-b") } else { (&a, "versioned-a") };
        let tmp = dir.path().join("current.tmp");
        std::fs::write(&tmp, bytes)?;
        let written = Instant::now();
        std::fs::rename(&tmp, &module)?;
        loop {
            if version(&client).await.as_deref() == Some(expected) {
                break;
            }
            anyhow::ensure!(written.elapsed() < Duration::from_secs(60), "reload {i} never happened");
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        samples.push(written.elapsed());
        // Let the watcher go quiet before the next write.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    host.stop().await.ok();
    Ok((samples.quantile_us(0.5) / 1000.0, samples.quantile_us(0.95) / 1000.0))
}

pub async fn run(plugins: &Path, quick: bool) -> anyhow::Result<Vec<Row>> {
    let reloads = if quick { 10 } else { 40 };
    let cache = tempfile::tempdir()?;
    // Warm the cache with both builds, as a developer alternating two builds would have it.
    one(plugins, Some(cache.path()), 2).await?;
    let (m, p) = one(plugins, Some(cache.path()), reloads).await?;
    let mut rows = vec![Row { name: "with the compiled-module cache", median_ms: m, p95_ms: p, reloads }];
    let (m, p) = one(plugins, None, reloads.min(20)).await?;
    rows.push(Row {
        name: "without the cache (compiled on every reload)",
        median_ms: m,
        p95_ms: p,
        reloads: reloads.min(20),
    });
    Ok(rows)
}
