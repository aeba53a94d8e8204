//! A Python endpoint in wasmrpc against the native Python oslo.messaging server running the
//! same Python code (issue 18's table): the calculator of `plugins/python/calculator`, built
//! into a component and served warm by the release `wasmrpc` host, and imported as is by a real
//! oslo.messaging server (`bench/python_native_server.py`). The same wasmrpc client calls both,
//! on the same broker, in the same run, sequentially and with 64 calls in flight.

use std::path::Path;

use tokio::process::Command;

use crate::rpc::{Row, Session, URL, measure, start};

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
    let session = Session::connect().await?;
    let client = |topic: &str| session.client(topic);
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
    let topic = session.topic("pycomp");
    crate::inproc::write_manifest(
        dir.path(),
        "python-calculator",
        &component,
        &topic,
        "[instance]\nmode = \"warm\"\nmax_concurrency = 8\n\n[limits]\nmemory = \"128MiB\"\n",
    )?;
    // The compiled component goes to the host's default cache, so only a first run compiles.
    let host = session.serve(wasmrpc_exe, dir.path()).await?;
    rows.push(
        measure("wasmrpc host: Python calculator component, warm", &client(&topic), n_seq, n_conc, 64, reps).await?,
    );
    drop(host);

    // The same class under a real oslo.messaging server.
    let native_topic = session.topic("pynative");
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
    session.close().await;
    Ok(rows)
}
