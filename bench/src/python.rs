//! A Python endpoint in wasmrpc against the native Python oslo.messaging server running the
//! same Python code (issue 18's table): the calculator of `plugins/python/calculator`, built
//! into a component and served warm by the release `wasmrpc` host, and imported as is by a real
//! oslo.messaging server (`bench/python_native_server.py`). The same wasmrpc client calls both,
//! on the same broker, in the same run, sequentially and with 64 calls in flight.

use std::path::Path;

use tokio::process::Command;
use wasmrpc::protocol::Target;
use wasmrpc::rpc::{Prepare, RpcClient};

use crate::rpc::{Row, URL, measure, start, start_host};

/// Runs the two rows. `python_plugins` holds the Python components (`plugins/target/python`),
/// `root` is the repository (for the native server's script and the examples' sources).
pub async fn run(
    wasmrpc_exe: &Path,
    python: &Path,
    python_plugins: &Path,
    root: &Path,
    quick: bool,
) -> anyhow::Result<Vec<Row>> {
    let (n_seq, n_conc, reps) = if quick { (300, 1_280, 1) } else { (2_000, 12_800, 3) };
    let prefix = format!("bench_{}", &wasmrpc::protocol::new_id()[..8]);
    let transport = wasmrpc::transport::connect(&wasmrpc::TransportUrl::parse(URL)?, Default::default()).await?;
    let client = |topic: &str| {
        RpcClient::new(transport.clone(), Target::topic(topic))
            .prepare(Prepare { timeout: Some(std::time::Duration::from_secs(60)), ..Prepare::default() })
    };
    let mut rows = Vec::new();

    // The component, warm (docs/abi.md: CPython instantiates in about a millisecond, a warm call
    // costs microseconds). Eight instances are more than two cores can keep busy.
    let dir = tempfile::tempdir()?;
    let component = python_plugins.join("calculator.wasm");
    anyhow::ensure!(
        component.exists(),
        "{} is missing: build it with `cargo test --no-run` or scripts/build-python",
        component.display()
    );
    let topic = format!("{prefix}_pycomp");
    crate::inproc::write_manifest(
        dir.path(),
        "python-calculator",
        &component,
        &topic,
        "[instance]\nmode = \"warm\"\nmax_concurrency = 8\n\n[limits]\nmemory = \"128MiB\"\n",
    )?;
    let mut cmd = Command::new(wasmrpc_exe);
    cmd.args(["serve", "--no-watch", "--server", &prefix, "--transport", URL, "--manifests"])
        .arg(dir.path())
        .env("RUST_LOG", "warn");
    // The compiled component goes to the host's default cache, so only a first run compiles.
    let host = start_host(cmd, &prefix).await?;
    rows.push(
        measure("wasmrpc host: Python calculator component, warm", &client(&topic), n_seq, n_conc, 64, reps).await?,
    );
    drop(host);

    // The same class under a real oslo.messaging server.
    let native_topic = format!("{prefix}_pynative");
    let mut cmd = Command::new(python);
    cmd.arg(root.join("bench/python_native_server.py"))
        .args([URL, &native_topic])
        .arg(root.join("plugins/python/calculator"))
        .arg("calculator:Calculator")
        .env("PYTHONWARNINGS", "ignore");
    let native = start(cmd, "python_native_server.py").await?;
    rows.push(
        measure(
            "Python oslo.messaging server: the same calculator.py",
            &client(&native_topic),
            n_seq,
            n_conc,
            64,
            reps,
        )
        .await?,
    );
    drop(native);
    transport.close().await;
    Ok(rows)
}
