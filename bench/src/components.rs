//! What a Python component costs the host (issue 18): compiling it, loading it from the
//! compiled-module cache, the linear memory a warm instance holds, a call on a fresh instance
//! (CPython instantiated per call) and on a warm one. One thread, sequential calls.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Map, json};
use wasmrpc::runtime::Compiled;
use wasmrpc::{Plugin, Runtime, RuntimeConfig, manifest};

use crate::stats::Samples;

async fn load(runtime: &Runtime, dir: &Path, module: &Path, mode: &str) -> anyhow::Result<Plugin> {
    let extra = format!("[instance]\nmode = \"{mode}\"\n[limits]\nmemory = \"128MiB\"\n");
    let path = crate::inproc::write_manifest(dir, &format!("py-{mode}"), module, "pycalc", &extra)?;
    let spec = manifest::load_file(&path)?;
    Ok(runtime.load(&spec, None).await?)
}

async fn per_call(plugin: &Plugin, calls: usize) -> anyhow::Result<Samples> {
    let args = json!({"a": 2, "b": 3}).as_object().cloned().unwrap_or_default();
    let mut samples = Samples::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        plugin.call("add", &args, &Map::new(), None).await?;
        samples.push(started.elapsed());
    }
    Ok(samples)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The report as Markdown lines.
pub async fn run(python_dir: &Path, quick: bool) -> anyhow::Result<String> {
    let module = python_dir.join("calculator.wasm");
    let size = std::fs::metadata(&module)?.len();
    let cache = tempfile::tempdir()?;
    let dir = tempfile::tempdir()?;
    let config = || RuntimeConfig { cache_dir: Some(cache.path().to_owned()), ..RuntimeConfig::default() };

    // Compile (first load, empty cache), then the same bytes in a new runtime: from the cache.
    let cold = load(&Runtime::new(config())?, dir.path(), &module, "warm").await?;
    anyhow::ensure!(cold.compiled() == Compiled::Fresh, "expected a compilation");
    let runtime = Runtime::new(config())?;
    let warm = load(&runtime, dir.path(), &module, "warm").await?;
    anyhow::ensure!(warm.compiled() == Compiled::Cached, "expected a cache hit");
    let fresh = load(&runtime, dir.path(), &module, "fresh").await?;

    let calls = if quick { 50 } else { 500 };
    per_call(&warm, 20).await?; // the first call on an instance pays CPython's first-use costs
    let mut warm_calls = per_call(&warm, calls).await?;
    let mut fresh_calls = per_call(&fresh, calls / 5).await?;
    let memory = warm.stats().peak_memory_bytes;
    let artifact: u64 = std::fs::read_dir(cache.path())?
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .filter_map(|e| e.metadata().ok().map(|m| m.len()))
        .sum();
    Ok(format!(
        "| Python component (plugins/python/calculator, {:.1} MB) | value |\n|---|---|\n\
         | compile (first load: Cranelift, plus instantiate + describe) | {:.0} ms |\n\
         | compiled artifact in the cache | {:.1} MB |\n\
         | load from the cache (new runtime: deserialize, instantiate + describe) | {:.1} ms |\n\
         | warm call `add`, median / p95 | {:.1} / {:.1} µs |\n\
         | fresh-instance call `add` (CPython instantiated per call), median / p95 | {:.2} / {:.2} ms |\n\
         | linear memory of a warm instance (largest memory reached) | {:.1} MiB |\n",
        size as f64 / 1e6,
        ms(cold.load_time()),
        artifact as f64 / 1e6,
        ms(warm.load_time()),
        warm_calls.quantile_us(0.5),
        warm_calls.quantile_us(0.95),
        fresh_calls.quantile_us(0.5) / 1e3,
        fresh_calls.quantile_us(0.95) / 1e3,
        memory as f64 / (1 << 20) as f64,
    ))
}
