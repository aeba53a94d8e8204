//! RPC over RabbitMQ: the same wasmrpc client, the same broker, in the same run, against the
//! broker's ceiling (a bare lapin echo server), the wasmrpc host (fresh and warm instances)
//! and the Python oslo.messaging server. Plus Python client → Python server, for reference.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use wasmrpc::protocol::Target;
use wasmrpc::rpc::{Prepare, RpcClient};

use crate::stats::{Samples, median};

pub const URL: &str = "rabbit://guest:guest@127.0.0.1:5672/";

/// Throughput and latency of one server, sequential and with 64 calls in flight.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    pub seq_rate: f64,
    pub seq_p50_us: f64,
    pub seq_p99_us: f64,
    pub conc_rate: f64,
    pub conc_p50_us: f64,
    pub conc_p99_us: f64,
}

/// A child process, killed when dropped.
pub struct Server {
    _child: Child,
}

/// Starts `cmd` and waits until it prints a line containing `ready` (within 120 s).
pub async fn start(mut cmd: Command, what: &str) -> anyhow::Result<Server> {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).kill_on_drop(true).spawn()?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let ready = tokio::time::timeout(Duration::from_secs(120), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("ready") {
                return true;
            }
        }
        false
    })
    .await;
    anyhow::ensure!(matches!(ready, Ok(true)), "{what} did not start");
    // Keep draining its stdout so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Server { _child: child })
}

/// One table's side of the broker: a name prefix no other run uses, and the connection of the
/// wasmrpc client that calls every server of the table.
pub struct Session {
    prefix: String,
    transport: std::sync::Arc<dyn wasmrpc::transport::Transport>,
}

impl Session {
    pub async fn connect() -> anyhow::Result<Session> {
        let transport = wasmrpc::transport::connect(&wasmrpc::TransportUrl::parse(URL)?, Default::default()).await?;
        Ok(Session { prefix: format!("bench_{}", &wasmrpc::protocol::new_id()[..8]), transport })
    }

    /// A topic of this run.
    pub fn topic(&self, name: &str) -> String {
        format!("{}_{name}", self.prefix)
    }

    /// The client of `topic` (60 s per call).
    pub fn client(&self, topic: &str) -> RpcClient {
        RpcClient::new(self.transport.clone(), Target::topic(topic))
            .prepare(Prepare { timeout: Some(Duration::from_secs(60)), ..Prepare::default() })
    }

    /// The release `wasmrpc serve` on the broker, serving the manifests in `dir` (no watch), as
    /// server `prefix`; its compiled modules go to its default cache. Ready when its control
    /// endpoint answers.
    pub async fn serve(&self, wasmrpc_exe: &Path, dir: &Path) -> anyhow::Result<Server> {
        let child = Command::new(wasmrpc_exe)
            .args(["serve", "--no-watch", "--server", &self.prefix, "--transport", URL, "--manifests"])
            .arg(dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let control = RpcClient::new(self.transport.clone(), Target::topic("wasmrpc")).prepare(Prepare {
            server: Some(self.prefix.clone()),
            namespace: Some("control".into()),
            version: Some("2.0".parse()?),
            timeout: Some(Duration::from_secs(1)),
            ..Prepare::default()
        });
        for _ in 0..120 {
            if control.call(&Map::new(), "ping", Map::new()).await.is_ok() {
                return Ok(Server { _child: child });
            }
        }
        anyhow::bail!("wasmrpc serve did not start")
    }

    pub async fn close(self) {
        self.transport.close().await;
    }
}

/// Measures `client` calling `add(a, b)`: `n_seq` sequential calls, then `n_conc` calls with
/// `conc` in flight; `reps` repetitions, medians reported.
pub async fn measure(
    name: &str,
    client: &RpcClient,
    n_seq: usize,
    n_conc: usize,
    conc: usize,
    reps: usize,
) -> anyhow::Result<Row> {
    let ctx: Map<String, Value> =
        json!({"user": "u", "request_id": "req-bench"}).as_object().cloned().unwrap_or_default();
    let args: Map<String, Value> = json!({"a": 1, "b": 2}).as_object().cloned().unwrap_or_default();
    for _ in 0..200 {
        client.call(&ctx, "add", args.clone()).await?;
    }
    let (mut seq_rates, mut seq_p50, mut seq_p99) = (Vec::new(), Vec::new(), Vec::new());
    let (mut conc_rates, mut conc_p50, mut conc_p99) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps {
        let mut samples = Samples::with_capacity(n_seq);
        let started = Instant::now();
        for _ in 0..n_seq {
            let t = Instant::now();
            let r = client.call(&ctx, "add", args.clone()).await?;
            samples.push(t.elapsed());
            anyhow::ensure!(r == json!(3), "{name}: add(1, 2) = {r}");
        }
        seq_rates.push(n_seq as f64 / started.elapsed().as_secs_f64());
        seq_p50.push(samples.quantile_us(0.5));
        seq_p99.push(samples.quantile_us(0.99));

        let per_task = n_conc / conc;
        let started = Instant::now();
        let tasks: Vec<_> = (0..conc)
            .map(|_| {
                let (client, ctx, args) = (client.clone(), ctx.clone(), args.clone());
                tokio::spawn(async move {
                    let mut s = Samples::with_capacity(per_task);
                    for _ in 0..per_task {
                        let t = Instant::now();
                        client.call(&ctx, "add", args.clone()).await?;
                        s.push(t.elapsed());
                    }
                    Ok::<_, anyhow::Error>(s)
                })
            })
            .collect();
        let mut all = Samples::with_capacity(n_conc);
        for t in tasks {
            all.extend(t.await??);
        }
        conc_rates.push(all.len() as f64 / started.elapsed().as_secs_f64());
        conc_p50.push(all.quantile_us(0.5));
        conc_p99.push(all.quantile_us(0.99));
    }
    Ok(Row {
        name: name.to_owned(),
        seq_rate: median(&mut seq_rates),
        seq_p50_us: median(&mut seq_p50),
        seq_p99_us: median(&mut seq_p99),
        conc_rate: median(&mut conc_rates),
        conc_p50_us: median(&mut conc_p50),
        conc_p99_us: median(&mut conc_p99),
    })
}

/// Runs the whole table. `bench_exe` is this binary (for the echo server), `wasmrpc_exe` the
/// release `wasmrpc`, `python` an interpreter with oslo.messaging, `baseline` oslo_baseline.py.
pub async fn run(
    bench_exe: &Path,
    wasmrpc_exe: &Path,
    python: &Path,
    baseline: &Path,
    plugins: &Path,
    quick: bool,
) -> anyhow::Result<Vec<Row>> {
    let (n_seq, n_conc, reps) = if quick { (500, 3_200, 1) } else { (2_000, 12_800, 3) };
    let session = Session::connect().await?;
    let client = |topic: &str| session.client(topic);
    let mut rows = Vec::new();

    // The broker's ceiling.
    let echo_topic = session.topic("echo");
    let mut cmd = Command::new(bench_exe);
    cmd.args(["echo-server", "--topic", &echo_topic]);
    let echo = start(cmd, "the echo server").await?;
    rows.push(measure("broker ceiling: lapin echo server", &client(&echo_topic), n_seq, n_conc, 64, reps).await?);
    drop(echo);
    // The same, publishing replies as oslo (and wasmrpc) do: what confirms cost the broker.
    let confirmed_topic = session.topic("echo_confirm");
    let mut cmd = Command::new(bench_exe);
    cmd.args(["echo-server", "--confirm", "--topic", &confirmed_topic]);
    let echo = start(cmd, "the echo server").await?;
    rows.push(
        measure(
            "lapin echo server, replies confirmed as oslo does",
            &client(&confirmed_topic),
            n_seq,
            n_conc,
            64,
            reps,
        )
        .await?,
    );
    drop(echo);

    // The wasmrpc host: the release binary serving the calculator, fresh and warm.
    let dir = tempfile::tempdir()?;
    let calculator = plugins.join("calculator.wasm");
    let (fresh, warm) = (session.topic("fresh"), session.topic("warm"));
    crate::inproc::write_manifest(dir.path(), "calc-fresh", &calculator, &fresh, "")?;
    crate::inproc::write_manifest(
        dir.path(),
        "calc-warm",
        &calculator,
        &warm,
        "[instance]\nmode = \"warm\"\nmax_invocations = 1000000\nmax_concurrency = 64\n",
    )?;
    let host = session.serve(wasmrpc_exe, dir.path()).await?;
    rows.push(
        measure("wasmrpc host: calculator, fresh instance per call", &client(&fresh), n_seq, n_conc, 64, reps).await?,
    );
    rows.push(measure("wasmrpc host: calculator, warm instances", &client(&warm), n_seq, n_conc, 64, reps).await?);
    drop(host);

    // The Python server, called by the same wasmrpc client.
    let py_topic = session.topic("py");
    let mut cmd = Command::new(python);
    cmd.arg(baseline).args(["server", &py_topic]).env("PYTHONWARNINGS", "ignore");
    let py = start(cmd, "oslo_baseline.py server").await?;
    let (py_seq, py_conc) = if quick { (300, 1_280) } else { (n_seq, n_conc) };
    rows.push(measure("Python oslo.messaging server", &client(&py_topic), py_seq, py_conc, 64, reps).await?);

    // For reference: the Python client against the Python server.
    for (n, conc) in [(py_seq, 1), (py_conc, 64)] {
        let out = Command::new(python)
            .arg(baseline)
            .args(["client", &py_topic, &n.to_string(), &conc.to_string()])
            .env("PYTHONWARNINGS", "ignore")
            .output()
            .await?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        rows.push(parse_python_client(&text, conc)?);
    }
    drop(py);
    session.close().await;
    Ok(merge_python_rows(rows))
}

fn parse_python_client(text: &str, conc: usize) -> anyhow::Result<Row> {
    let line = text
        .lines()
        .find(|l| l.starts_with("oslo.messaging call:"))
        .ok_or_else(|| anyhow::anyhow!("no result from oslo_baseline.py client: {text}"))?;
    let field = |key: &str| -> anyhow::Result<f64> {
        let rest = line.split_once(key).ok_or_else(|| anyhow::anyhow!("no {key} in {line}"))?.1;
        let num: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
        Ok(num.parse()?)
    };
    let rate: f64 = line
        .split_whitespace()
        .find(|w| w.ends_with("/s"))
        .and_then(|w| w.trim_end_matches("/s").parse().ok())
        .unwrap_or(f64::NAN);
    let (p50, p99) = (field("p50=")? * 1000.0, field("p99=")? * 1000.0);
    let mut row = Row {
        name: "Python client → Python server (reference)".into(),
        seq_rate: f64::NAN,
        seq_p50_us: f64::NAN,
        seq_p99_us: f64::NAN,
        conc_rate: f64::NAN,
        conc_p50_us: f64::NAN,
        conc_p99_us: f64::NAN,
    };
    if conc == 1 {
        (row.seq_rate, row.seq_p50_us, row.seq_p99_us) = (rate, p50, p99);
    } else {
        (row.conc_rate, row.conc_p50_us, row.conc_p99_us) = (rate, p50, p99);
    }
    Ok(row)
}

/// The two Python-client runs (sequential, concurrent) become one row.
fn merge_python_rows(rows: Vec<Row>) -> Vec<Row> {
    let mut out: Vec<Row> = Vec::new();
    for r in rows {
        if let Some(prev) = out.iter_mut().find(|p| p.name == r.name) {
            if r.seq_rate.is_finite() {
                (prev.seq_rate, prev.seq_p50_us, prev.seq_p99_us) = (r.seq_rate, r.seq_p50_us, r.seq_p99_us);
            }
            if r.conc_rate.is_finite() {
                (prev.conc_rate, prev.conc_p50_us, prev.conc_p99_us) = (r.conc_rate, r.conc_p50_us, r.conc_p99_us);
            }
        } else {
            out.push(r);
        }
    }
    out
}

/// Calls `add` on `topic` with `conc` calls in flight for `duration`; returns how many.
pub async fn load(topic: &str, duration: Duration, conc: usize) -> anyhow::Result<usize> {
    let transport = wasmrpc::transport::connect(&wasmrpc::TransportUrl::parse(URL)?, Default::default()).await?;
    let client = RpcClient::new(transport.clone(), Target::topic(topic));
    let args: Map<String, Value> = json!({"a": 1, "b": 2}).as_object().cloned().unwrap_or_default();
    let until = Instant::now() + duration;
    let tasks: Vec<_> = (0..conc)
        .map(|_| {
            let (client, args) = (client.clone(), args.clone());
            tokio::spawn(async move {
                let mut n = 0usize;
                while Instant::now() < until {
                    client.call(&Map::new(), "add", args.clone()).await?;
                    n += 1;
                }
                Ok::<_, anyhow::Error>(n)
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    transport.close().await;
    Ok(total)
}
