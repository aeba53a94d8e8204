//! The HTTP gateway's cost (issue 21): a warm calculator `add` at 64 calls in flight, through
//! `POST /v1/call/{topic}/add` on the host's HTTP listener, against the same call made
//! in-process by an `RpcClient` over the same `memory://` transport. Both sides run in this
//! process on one multi-threaded runtime, so the ratio is what the HTTP layer (hyper, axum,
//! JSON in and out, a client per request) adds to a call.
//!
//! The HTTP client is a minimal HTTP/1.1 keep-alive client over tokio (one connection per
//! in-flight slot), so little of the measured cost is the client's own.

use std::time::Instant;

use serde_json::{Map, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use wasmrpc::protocol::Target;
use wasmrpc::rpc::RpcClient;
use wasmrpc::{HostConfig, RuntimeConfig};

use crate::stats::Samples;

/// Calls in flight.
const IN_FLIGHT: usize = 64;

/// One row: calls per second and latency quantiles.
struct Row {
    name: &'static str,
    calls_per_s: f64,
    p50_us: f64,
    p99_us: f64,
}

/// Runs both rows (HTTP first, then in-process, `reps` times alternately; the best round of
/// each by throughput is reported) and returns the table as markdown.
pub async fn run(plugins: &std::path::Path, quick: bool) -> anyhow::Result<String> {
    let (per_slot, reps) = if quick { (200, 2) } else { (1_000, 3) };
    let dir = tempfile::tempdir()?;
    crate::inproc::write_manifest(
        dir.path(),
        "calc-warm",
        &plugins.join("calculator.wasm"),
        "calc_warm",
        "[instance]\nmode = \"warm\"\nmax_invocations = 100000000\nmax_concurrency = 64\n",
    )?;
    let url = format!("memory://bench-gw-{}/", wasmrpc::protocol::new_id());
    let mut config = HostConfig::new();
    config.transport_url = wasmrpc::TransportUrl::parse(&url)?;
    config.manifests = dir.path().to_owned();
    config.runtime = RuntimeConfig { max_instances: 200, ..RuntimeConfig::default() };
    config.watch = false;
    let (host, http) = crate::inproc::observed_host(config).await?;
    let addr = http.local_addr();
    let client = RpcClient::new(host.transport().clone(), Target::topic("calc_warm"));

    // Warm both paths (instances, connections, the reply queue).
    http_round(addr, 20).await?;
    rpc_round(&client, 20).await?;
    let (mut best_http, mut best_rpc): (Option<Row>, Option<Row>) = (None, None);
    for _ in 0..reps {
        let h = http_round(addr, per_slot).await?;
        if best_http.as_ref().is_none_or(|b| h.calls_per_s > b.calls_per_s) {
            best_http = Some(h);
        }
        let r = rpc_round(&client, per_slot).await?;
        if best_rpc.as_ref().is_none_or(|b| r.calls_per_s > b.calls_per_s) {
            best_rpc = Some(r);
        }
    }
    http.stop().await;
    host.stop().await.ok();
    let (h, r) = (best_http.expect("a round"), best_rpc.expect("a round"));
    let mut out = String::from("| path (warm calculator `add`, 64 in flight, memory://) | calls/s | p50 | p99 |\n");
    out.push_str("|---|---:|---:|---:|\n");
    for row in [&h, &r] {
        out.push_str(&format!(
            "| {} | {:.0} | {:.0} µs | {:.0} µs |\n",
            row.name, row.calls_per_s, row.p50_us, row.p99_us
        ));
    }
    out.push_str(&format!(
        "\nHTTP gateway / in-process: {:.2}x the throughput, {:.2}x the p50 latency ({} calls per round, best of {reps} rounds).\n",
        h.calls_per_s / r.calls_per_s,
        h.p50_us / r.p50_us,
        per_slot * IN_FLIGHT
    ));
    Ok(out)
}

/// `IN_FLIGHT` tasks each making `per_slot` calls one after another.
async fn round<F, Fut>(name: &'static str, per_slot: usize, slot: F) -> anyhow::Result<Row>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Samples>> + Send + 'static,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..IN_FLIGHT).map(|_| tokio::spawn(slot(per_slot))).collect();
    let mut all = Samples::with_capacity(per_slot * IN_FLIGHT);
    for t in tasks {
        all.extend(t.await??);
    }
    let took = started.elapsed();
    Ok(Row {
        name,
        calls_per_s: all.len() as f64 / took.as_secs_f64(),
        p50_us: all.quantile_us(0.5),
        p99_us: all.quantile_us(0.99),
    })
}

async fn rpc_round(client: &RpcClient, per_slot: usize) -> anyhow::Result<Row> {
    round("in-process `RpcClient::call`", per_slot, |n| {
        let client = client.clone();
        async move {
            let args = json!({"a": 1, "b": 2}).as_object().cloned().unwrap_or_default();
            let ctx = Map::new();
            let mut samples = Samples::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                let v = client.call(&ctx, "add", args.clone()).await?;
                samples.push(t.elapsed());
                anyhow::ensure!(v == json!(3), "add answered {v}");
            }
            Ok(samples)
        }
    })
    .await
}

async fn http_round(addr: std::net::SocketAddr, per_slot: usize) -> anyhow::Result<Row> {
    round("HTTP gateway `POST /v1/call/calc_warm/add`", per_slot, move |n| async move {
        let body = r#"{"a": 1, "b": 2}"#;
        let request = format!(
            "POST /v1/call/calc_warm/add HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut conn = BufReader::new(stream);
        let mut samples = Samples::with_capacity(n);
        let mut line = String::new();
        let mut answer = Vec::new();
        for _ in 0..n {
            let t = Instant::now();
            conn.get_mut().write_all(request.as_bytes()).await?;
            // Status line, headers (only Content-Length matters), body.
            line.clear();
            conn.read_line(&mut line).await?;
            anyhow::ensure!(line.starts_with("HTTP/1.1 200"), "the gateway answered {line:?}");
            let mut length = 0;
            loop {
                line.clear();
                conn.read_line(&mut line).await?;
                if line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse()?;
                }
            }
            answer.resize(length, 0);
            conn.read_exact(&mut answer).await?;
            samples.push(t.elapsed());
            anyhow::ensure!(answer == b"3", "add answered {:?}", String::from_utf8_lossy(&answer));
        }
        Ok(samples)
    })
    .await
}
