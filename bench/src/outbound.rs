//! A guest's outbound call over RabbitMQ against the same call made directly: what the host's
//! outbound path (the `rpc` import, grants, context, the host's RPC client) adds per hop.
//!
//! Three rows, measured in rounds like the in-process table: a client calls a Rust `add`
//! endpoint directly (D); the client calls the gateway guest, which makes that same call
//! (G); the client calls the gateway guest on a method that calls nothing (L). The outbound
//! hop adds G − L − D beyond the plain call it makes; the target is ≤ 20% of D.

use std::path::Path;
use std::time::Instant;

use serde_json::{Map, Value, json};
use wasmrpc::protocol::{Target, new_id};
use wasmrpc::rpc::RpcClient;
use wasmrpc::transport::TransportOptions;
use wasmrpc::{Host, HostConfig};

use crate::stats::{Samples, median};

/// Runs the rows and returns the markdown table.
pub async fn run(plugins: &Path, quick: bool) -> anyhow::Result<String> {
    let (n, reps) = if quick { (300, 3) } else { (2_000, 5) };
    let url =
        std::env::var("WASMRPC_BENCH_RABBIT_URL").unwrap_or_else(|_| "rabbit://guest:guest@127.0.0.1:5672/".into());
    let url = wasmrpc::TransportUrl::parse(&url)?;
    let exchange = format!("bench_out_{}", &new_id()[..8]);
    let (native, gateway) = (format!("{exchange}_native"), format!("{exchange}_gateway"));
    let transport = wasmrpc::transport::connect(
        &url,
        TransportOptions { control_exchange: exchange.clone(), ..TransportOptions::default() },
    )
    .await?;
    let (direct, server) = crate::inproc::native_add_on(&transport, &native).await?;

    let dir = tempfile::tempdir()?;
    let module = plugins.join("gateway.wasm");
    std::fs::write(
        dir.path().join("gateway.toml"),
        format!(
            "name = \"gateway\"\nmodule = \"{}\"\n[target]\ntopic = \"{gateway}\"\nversion = \"1.0\"\n\
             [instance]\nmode = \"warm\"\nmax_invocations = 1000000\n\
             [outbound]\ncall = [\"{native}\"]\n[config]\ncalculator_topic = \"{native}\"\n",
            module.display()
        ),
    )?;
    let mut config = HostConfig::new();
    config.transport_url = url;
    config.control_exchange = exchange.clone();
    config.manifests = dir.path().to_owned();
    config.watch = false;
    let host = Host::start(config).await?;
    let guest = RpcClient::new(transport.clone(), Target::topic(&gateway));

    let ctx = Map::new();
    let add: Map<String, Value> = json!({"a": 1, "b": 2}).as_object().cloned().unwrap_or_default();
    let local: Map<String, Value> = json!({"key": "calculator_topic"}).as_object().cloned().unwrap_or_default();
    let rows: [(&str, &RpcClient, &str, &Map<String, Value>); 3] = [
        ("client → Rust endpoint (direct call, D)", &direct, "add", &add),
        ("client → guest → Rust endpoint (outbound call, G)", &guest, "add", &add),
        ("client → guest, no outbound call (L)", &guest, "setting", &local),
    ];
    for (_, client, method, args) in &rows {
        for _ in 0..n / 10 {
            client.call(&ctx, method, (*args).clone()).await?;
        }
    }
    let mut p50s: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
    let mut p99s: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
    for _ in 0..reps {
        for (i, (_, client, method, args)) in rows.iter().enumerate() {
            let mut samples = Samples::with_capacity(n);
            for _ in 0..n {
                let started = Instant::now();
                client.call(&ctx, method, (*args).clone()).await?;
                samples.push(started.elapsed());
            }
            p50s[i].push(samples.quantile_us(0.5));
            p99s[i].push(samples.quantile_us(0.99));
        }
    }
    host.stop().await.ok();
    server.stop().await;

    let p50: Vec<f64> = p50s.iter_mut().map(|v| median(v)).collect();
    let p99: Vec<f64> = p99s.iter_mut().map(|v| median(v)).collect();
    let mut out = String::from("| sequential calls over RabbitMQ | p50 µs | p99 µs |\n|---|---:|---:|\n");
    for (i, (name, ..)) in rows.iter().enumerate() {
        out.push_str(&format!("| {name} | {:.0} | {:.0} |\n", p50[i], p99[i]));
    }
    let added = p50[1] - p50[2] - p50[0];
    out.push_str(&format!(
        "\nThe outbound hop adds G − L − D = {added:.0} µs at p50 beyond the call it makes: {:.0}% of the \
         direct call's p50 (target ≤ 20%). {n} calls per row per round, median of {reps} rounds.\n",
        100.0 * added / p50[0]
    ));
    Ok(out)
}
