//! The fault run (issue 17): a `wasmrpc serve` host under load from the Rust client and from
//! the Python oslo.messaging client (`bench/chaos_load.py`), while the broker restarts
//! (`rabbitmqctl stop_app` / `start_app`), drops every connection
//! (`rabbitmqctl close_all_connections`), and every endpoint is reloaded 100 times.
//!
//! `rabbitmqctl` acts on the node `RABBITMQ_NODENAME` names (the caller's environment), so
//! point `--url` and it at a broker nobody else uses. The figures go to a JSON file (the format
//! is documented on [`Figures`]) that the RELIABILITY.md generator reads.

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use wasmrpc::RpcClient;
use wasmrpc::protocol::Target;
use wasmrpc::rpc::{Prepare, RpcError};

/// The call timeout of every client: calls must end by it.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// A call still running this long after its timeout counts as hung.
const HUNG_AFTER: Duration = Duration::from_secs(5);
/// How long the broker stays down in the restart.
const OUTAGE: Duration = Duration::from_secs(5);

/// What the run measured (written as JSON):
///
/// - `clients.{rust,python}`: `answered`, `failed` (by error class), `hung` (still running
///   [`HUNG_AFTER`] past the call timeout); for Rust also `failed_by_phase` (by the phase the
///   call started in: `load`, `broker restart`, `close_all_connections`, `reloads`, `flood`),
///   for Python `late_publishing` (calls late by oslo's own publish time: its publisher retries
///   the connection through an outage and the call timeout's timer starts only after the
///   publish; counted apart from `hung`, see `chaos_load.py`), `late_at` and `late_publishing_at`
///   (start times of the calls of each kind), `late_detail` (each late call's kind, outcome,
///   and when its publish ended and when it ended, in seconds from its start).
/// - `faults[]`: `fault` (`broker restart`, `close_all_connections`), `serving_again_s`: from the
///   broker being back (`start_app` returned, or the connections closed) to the first call
///   answered by the host through a fresh client call.
/// - `reloads`: `rounds` (each rewrites every manifest), `endpoints`, `applied` (the host's
///   "endpoint reloaded" log lines), `rust_calls` started during the rounds, and `failed`: calls
///   of either client started during the rounds that failed.
/// - `flood`: `messages` casts of `bytes_each` bytes published at once (besides the load), the
///   host's resident memory before (`rss_before_mib`) and at its peak (`rss_peak_mib`), and
///   `buffer_bound_mib`: what the host may hold of them by design (prefetch × size on the
///   topic queue, plus the RPC server's 64 MiB backlog budget).
/// - `stop_s`: SIGTERM to exit, after the run.
#[derive(Debug, Serialize)]
pub struct Figures {
    pub date: String,
    pub concurrency_per_client: usize,
    pub call_timeout_s: f64,
    pub clients: Map<String, Value>,
    pub faults: Vec<Value>,
    pub reloads: Value,
    pub flood: Value,
    /// When each phase started (seconds since the epoch), to place Python's `late_at`.
    pub phase_starts: Map<String, Value>,
    pub stop_s: f64,
}

/// One Rust call's outcome.
struct Outcome {
    started: SystemTime,
    ended: SystemTime,
    /// `None` when answered; else the error class.
    error: Option<String>,
}

fn now_s(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn rabbitmqctl(args: &[&str]) -> anyhow::Result<()> {
    let out = std::process::Command::new("rabbitmqctl").args(args).output().context("rabbitmqctl")?;
    if !out.status.success() {
        bail!("rabbitmqctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn manifest(name: &str, plugin: &Path, topic: &str, round: usize) -> String {
    format!(
        "# reload round {round}\nname = \"{name}\"\nmodule = \"{}\"\n\n[target]\ntopic = \"{topic}\"\nversion = \"1.3\"\n",
        plugin.display()
    )
}

/// Seconds until serving again, or `null` (with the error printed) when it did not within the
/// bound: the run carries on and reports it.
fn seconds(back: &anyhow::Result<Duration>) -> Value {
    match back {
        Ok(d) => json!(d.as_secs_f64()),
        Err(e) => {
            eprintln!("chaos: {e}");
            Value::Null
        }
    }
}

/// Polls with fresh calls until the host answers; returns how long it took.
async fn until_serving(client: &RpcClient, within: Duration) -> anyhow::Result<Duration> {
    let quick = client.prepare(Prepare { timeout: Some(Duration::from_secs(2)), ..Prepare::default() });
    let started = Instant::now();
    while started.elapsed() < within {
        let mut args = Map::new();
        args.insert("value".into(), json!("probe"));
        if quick.call(&Map::new(), "echo", args).await.is_ok() {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the host did not serve again within {within:?}")
}

/// Runs the faults; writes the figures to `out` and returns them.
pub async fn run(wasmrpc: &Path, python: &Path, plugins: &Path, url: &str, out: &Path) -> anyhow::Result<Figures> {
    let concurrency = 64;
    let id = &wasmrpc::protocol::new_id()[..8];
    let (exchange, topic) = (format!("chaos_{id}"), format!("chaos_echo_{id}"));
    let dir = tempfile::tempdir()?;
    let echo = plugins.join("echo.wasm");
    // Every endpoint: the echo the load calls, and a second endpoint on another topic.
    let endpoints = [("echo", topic.clone()), ("echo-b", format!("chaos_b_{id}"))];
    let write_all = |round: usize| -> anyhow::Result<()> {
        for (name, t) in &endpoints {
            std::fs::write(dir.path().join(format!("{name}.toml")), manifest(name, &echo, t, round))?;
        }
        Ok(())
    };
    write_all(0)?;
    let out_dir = out.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(out_dir)?;
    let host_log = out_dir.join("chaos-host.log");
    let mut host = tokio::process::Command::new(wasmrpc)
        .args(["serve", "--server", &format!("chaos-{id}"), "--control-exchange", &exchange, "--manifests"])
        .arg(dir.path())
        .env("WASMRPC_TRANSPORT_URL", url)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&host_log)?)
        .kill_on_drop(true)
        .spawn()
        .context("start wasmrpc serve")?;

    let transport = wasmrpc::transport::connect(
        &wasmrpc::TransportUrl::parse(url)?,
        wasmrpc::transport::TransportOptions { control_exchange: exchange.clone(), ..Default::default() },
    )
    .await?;
    let client = RpcClient::new(transport.clone(), Target::topic(&topic))
        .prepare(Prepare { timeout: Some(CALL_TIMEOUT), ..Prepare::default() });
    until_serving(&client, Duration::from_secs(60)).await?;
    eprintln!("chaos: host serving; starting the load");

    // Rust load.
    let load_start = SystemTime::now();
    let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for n in 0..concurrency {
        let (client, outcomes, stop) = (client.clone(), outcomes.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut i = 0u64;
            let mut hung = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let value = format!("rs-{n}-{i}");
                let mut args = Map::new();
                args.insert("value".into(), json!(value));
                let started = SystemTime::now();
                let error =
                    match tokio::time::timeout(CALL_TIMEOUT + HUNG_AFTER, client.call(&Map::new(), "echo", args)).await
                    {
                        Err(_) => {
                            hung += 1;
                            Some("Hung".to_owned())
                        }
                        Ok(Ok(v)) if v == json!(value) => None,
                        Ok(Ok(v)) => Some(format!("WrongAnswer({v})")),
                        Ok(Err(RpcError::Timeout { .. })) => Some("MessagingTimeout".to_owned()),
                        Ok(Err(RpcError::Transport(e))) => Some(format!("TransportError({:?})", e.kind)),
                        Ok(Err(RpcError::Remote(e))) => Some(format!("RemoteError({})", e.exc_type)),
                        Ok(Err(e)) => Some(format!("{e}")),
                    };
                let failed = error.is_some();
                outcomes.lock().expect("not poisoned").push(Outcome { started, ended: SystemTime::now(), error });
                if failed {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            hung
        }));
    }

    // Python load.
    let spec = json!({"url": url, "exchange": exchange, "topic": topic, "concurrency": concurrency, "timeout": CALL_TIMEOUT.as_secs()});
    let mut py = tokio::process::Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("chaos_load.py"))
        .arg(spec.to_string())
        .env("PYTHONWARNINGS", "ignore")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("start chaos_load.py")?;
    let mut py_out = BufReader::new(py.stdout.take().expect("piped")).lines();
    py_out.next_line().await?.context("chaos_load.py did not start")?;
    tokio::time::sleep(Duration::from_secs(5)).await;

    let mut faults = Vec::new();
    eprintln!("chaos: broker restart");
    let restart_start = SystemTime::now();
    rabbitmqctl(&["stop_app"])?;
    tokio::time::sleep(OUTAGE).await;
    rabbitmqctl(&["start_app"])?;
    let back = until_serving(&client, Duration::from_secs(120)).await;
    faults.push(json!({"fault": "broker restart (stop_app, 5 s, start_app)", "serving_again_s": seconds(&back)}));
    tokio::time::sleep(Duration::from_secs(5)).await;

    eprintln!("chaos: close_all_connections");
    let close_start = SystemTime::now();
    rabbitmqctl(&["close_all_connections", "chaos"])?;
    let back = until_serving(&client, Duration::from_secs(120)).await;
    faults.push(json!({"fault": "close_all_connections", "serving_again_s": seconds(&back)}));
    tokio::time::sleep(Duration::from_secs(5)).await;

    eprintln!("chaos: reloads");
    let rounds = 100;
    let reload_start = SystemTime::now();
    for round in 1..=rounds {
        write_all(round)?;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let reload_end = SystemTime::now();
    // Every call started during the reloads ends before the flood starts.
    tokio::time::sleep(CALL_TIMEOUT + HUNG_AFTER).await;

    eprintln!("chaos: flood of large requests");
    let flood_start = SystemTime::now();
    // Its own connection, as another client's would be: the load's calls do not queue behind it.
    let flooder = wasmrpc::transport::connect(
        &wasmrpc::TransportUrl::parse(url)?,
        wasmrpc::transport::TransportOptions { control_exchange: exchange.clone(), ..Default::default() },
    )
    .await?;
    let flood = flood(&flooder, &topic, host.id()).await?;
    flooder.close().await;

    // Stop the loads.
    stop.store(true, Ordering::Relaxed);
    let mut rust_hung = 0;
    for w in workers {
        rust_hung += w.await?;
    }
    let mut stdin = py.stdin.take().expect("piped");
    stdin.write_all(b"stop\n").await?;
    drop(stdin);
    let py_summary: Value = match tokio::time::timeout(CALL_TIMEOUT * 3, py_out.next_line()).await {
        Ok(Ok(Some(line))) => serde_json::from_str(&line)?,
        _ => json!({"error": "chaos_load.py gave no summary"}),
    };
    let _ = py.wait().await;

    // SIGTERM, and how long the host takes to exit.
    let stopping = Instant::now();
    if let Some(pid) = host.id() {
        let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    }
    let _ = tokio::time::timeout(Duration::from_secs(60), host.wait()).await;
    let stop_s = stopping.elapsed().as_secs_f64();
    transport.close().await;

    let outcomes = std::mem::take(&mut *outcomes.lock().expect("not poisoned"));
    let mut rust_failed: Map<String, Value> = Map::new();
    for o in outcomes.iter().filter_map(|o| o.error.as_ref()) {
        let n = rust_failed.entry(o.clone()).or_insert(json!(0));
        *n = json!(n.as_u64().unwrap_or(0) + 1);
    }
    let answered = outcomes.iter().filter(|o| o.error.is_none()).count();
    // Calls started while the manifests were being rewritten (they all ended before the flood).
    let in_reloads = |started: f64, _ended: f64| started >= now_s(reload_start) && started <= now_s(reload_end);
    let rust_reload_calls: Vec<&Outcome> =
        outcomes.iter().filter(|o| in_reloads(now_s(o.started), now_s(o.ended))).collect();
    let rust_reload_failed = rust_reload_calls.iter().filter(|o| o.error.is_some()).count();
    let empty = Vec::new();
    let py_failures = py_summary["failures"].as_array().unwrap_or(&empty);
    let mut py_failed: Map<String, Value> = Map::new();
    for f in py_failures {
        let class = f["class"].as_str().unwrap_or("?").to_owned();
        let n = py_failed.entry(class).or_insert(json!(0));
        *n = json!(n.as_u64().unwrap_or(0) + 1);
    }
    let py_reload_failed = py_failures
        .iter()
        .filter(|f| in_reloads(f["started"].as_f64().unwrap_or(0.0), f["ended"].as_f64().unwrap_or(0.0)))
        .count();
    // Where the Rust client's failures fell: by the phase the call started in.
    let marks = [
        ("load", now_s(load_start)),
        ("broker restart", now_s(restart_start)),
        ("close_all_connections", now_s(close_start)),
        ("reloads", now_s(reload_start)),
        ("flood", now_s(flood_start)),
    ];
    let mut by_phase: Map<String, Value> = Map::new();
    for o in outcomes.iter().filter(|o| o.error.is_some()) {
        let t = now_s(o.started);
        let phase = marks.iter().rev().find(|(_, at)| t >= *at).map_or("load", |(p, _)| *p);
        let entry = by_phase.entry(phase.to_owned()).or_insert_with(|| json!({}));
        let class = o.error.clone().unwrap_or_default();
        entry[&class] = json!(entry[&class].as_u64().unwrap_or(0) + 1);
    }
    let log = std::fs::read_to_string(&host_log).unwrap_or_default();
    let applied = log.lines().filter(|l| l.contains("endpoint reloaded")).count();

    let mut clients = Map::new();
    clients.insert(
        "rust".into(),
        json!({"answered": answered, "failed": rust_failed, "hung": rust_hung, "failed_by_phase": by_phase}),
    );
    clients.insert(
        "python".into(),
        json!({
            "answered": py_summary["answered"],
            "failed": py_failed,
            "hung": py_summary["hung"],
            "late_publishing": py_summary["late_publishing"],
            "late_at": py_summary["late_at"],
            "late_publishing_at": py_summary["late_publishing_at"],
            "late_detail": py_summary["late_detail"],
        }),
    );
    let figures = Figures {
        date: utc_date(),
        concurrency_per_client: concurrency,
        call_timeout_s: CALL_TIMEOUT.as_secs_f64(),
        clients,
        faults,
        flood,
        phase_starts: marks.iter().map(|(p, at)| ((*p).to_owned(), json!(at))).collect(),
        reloads: json!({
            "rounds": rounds,
            "endpoints": endpoints.len(),
            "applied": applied,
            "rust_calls": rust_reload_calls.len(),
            "failed": rust_reload_failed + py_reload_failed,
        }),
        stop_s,
    };
    std::fs::write(out, serde_json::to_string_pretty(&figures)? + "\n")?;
    Ok(figures)
}

/// Today's date (UTC), from `date`, for the report.
fn utc_date() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Publishes large casts to the echo topic and samples the host's memory until they are taken.
async fn flood(
    transport: &Arc<dyn wasmrpc::transport::Transport>,
    topic: &str,
    host: Option<u32>,
) -> anyhow::Result<Value> {
    const MESSAGES: usize = 100;
    const BYTES: usize = 4 << 20;
    let pid = host.context("the host's pid")?;
    let before = crate::scale::rss_mib(pid).unwrap_or(0.0);
    let peak = Arc::new(Mutex::new(before));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                let now = crate::scale::rss_mib(pid).unwrap_or(0.0);
                {
                    let mut p = peak.lock().expect("not poisoned");
                    *p = p.max(now);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    // Encoded once, off the runtime: encoding 4 MiB in each send would starve this process's
    // own load tasks and make their timers late (the host would be blamed for it).
    let target = Target::topic(topic);
    let body = tokio::task::spawn_blocking(|| {
        let mut args = Map::new();
        args.insert("value".into(), json!("x".repeat(BYTES)));
        let request = wasmrpc::protocol::Request {
            method: "echo".into(),
            args,
            namespace: None,
            version: None,
            reply: None,
            unique_id: None,
            context: Map::new(),
        };
        wasmrpc::transport::Body::request(request).wire()
    })
    .await?;
    let mut sends = Vec::new();
    for _ in 0..8 {
        let (transport, target, body) = (transport.clone(), target.clone(), body.clone());
        sends.push(tokio::spawn(async move {
            for _ in 0..MESSAGES / 8 {
                transport.send(&target, wasmrpc::transport::Outgoing::new(body.clone())).await?;
            }
            Ok::<(), wasmrpc::transport::TransportError>(())
        }));
    }
    for s in sends {
        s.await??;
    }
    // Until the topic queue is empty (the host took every message), at most two minutes.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        let out = std::process::Command::new("rabbitmqctl")
            .args(["list_queues", "-q", "--formatter", "json", "name", "messages"])
            .output()?;
        let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if rows.iter().any(|r| r["name"] == json!(topic) && r["messages"] == json!(0)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    sampling.store(false, Ordering::Relaxed);
    sampler.await?;
    let peak = *peak.lock().expect("not poisoned");
    let mib = |b: usize| b as f64 / f64::from(1 << 20);
    Ok(json!({
        "messages": MESSAGES / 8 * 8,
        "bytes_each": BYTES,
        "rss_before_mib": before,
        "rss_peak_mib": peak,
        "buffer_bound_mib": 64.0 * mib(BYTES) + 64.0,
    }))
}
