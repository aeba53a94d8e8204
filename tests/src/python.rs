//! The real oslo.messaging from PyPI, in a virtualenv at `.venv` (created on first use from
//! `tests/python/requirements.txt`; `.ci/run` creates it up front). `WASMRPC_PYTHON` points
//! the tests at another interpreter that has oslo.messaging installed.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::root;

/// The interpreter with oslo.messaging, installing it on first use.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON.get_or_init(find_or_install).clone().unwrap_or_else(|e| panic!("{e}"))
}

fn find_or_install() -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var("WASMRPC_PYTHON") {
        return Ok(PathBuf::from(p));
    }
    let venv = root().join(".venv");
    let python = venv.join("bin").join("python");
    let has_oslo = |p: &PathBuf| {
        std::process::Command::new(p)
            .args(["-c", "import oslo_messaging, prometheus_client"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if python.is_file() && has_oslo(&python) {
        return Ok(python);
    }
    let run = |cmd: &mut std::process::Command, what: &str| -> Result<(), String> {
        let status = cmd.status().map_err(|e| format!("{what}: {e}"))?;
        if status.success() { Ok(()) } else { Err(format!("{what} failed ({status})")) }
    };
    eprintln!("installing oslo.messaging into {} (once)", venv.display());
    run(std::process::Command::new("python3").args(["-m", "venv"]).arg(&venv), "python3 -m venv .venv")?;
    run(
        std::process::Command::new(venv.join("bin").join("pip"))
            .args(["install", "-q", "-r"])
            .arg(root().join("tests/python/requirements.txt")),
        "pip install -r tests/python/requirements.txt",
    )?;
    if has_oslo(&python) { Ok(python) } else { Err("oslo.messaging is still not importable from .venv".into()) }
}

fn script(name: &str) -> PathBuf {
    root().join("tests/python").join(name)
}

/// Runs `oslo_client.py` with a spec; returns one JSON result per operation.
pub async fn oslo_client(spec: &Value) -> Vec<Value> {
    let out = Command::new(python())
        .arg(script("oslo_client.py"))
        .arg(spec.to_string())
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .await
        .expect("run oslo_client.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "oslo_client.py failed:\n{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

/// Sends notifications with oslo's Notifier (`oslo_notify.py`).
pub async fn oslo_notify(spec: &Value) {
    let out = Command::new(python())
        .arg(script("oslo_notify.py"))
        .arg(spec.to_string())
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .await
        .expect("run oslo_notify.py");
    assert!(out.status.success(), "oslo_notify.py failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

/// A running `oslo_listener.py`: what it received, as JSON values.
#[derive(Debug)]
pub struct OsloListener {
    child: Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl OsloListener {
    /// Starts a Python notification listener on `topic` (optionally in `pool`).
    pub async fn start(url: &str, exchange: &str, topic: &str, pool: Option<&str>) -> OsloListener {
        let mut args = vec![url, exchange, topic];
        args.extend(pool);
        let (child, lines) = start_service("oslo_listener.py", &args).await;
        OsloListener { child, lines }
    }

    /// The next notification it printed, waiting at most `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Value> {
        let line = tokio::time::timeout(within, self.lines.next_line()).await.ok()?.ok()??;
        Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}")))
    }

    /// Stops it.
    pub async fn stop(mut self) {
        stop_service(&mut self.child).await;
    }
}

/// A running `oslo_server.py`; stopped (gracefully) when dropped.
#[derive(Debug)]
pub struct OsloServer {
    child: Child,
}

impl OsloServer {
    /// Starts a Python RPC server for `topic` as `server`, with extra `[oslo_messaging_rabbit]`
    /// options as `name=value`; returns once it is listening.
    pub async fn start(url: &str, exchange: &str, topic: &str, server: &str, options: &[&str]) -> OsloServer {
        let mut args = vec![url, exchange, topic, server];
        args.extend(options);
        let (child, _) = start_service("oslo_server.py", &args).await;
        OsloServer { child }
    }

    /// Stops it: closing stdin makes it stop, wait and clean up like a real service.
    pub async fn stop(mut self) {
        stop_service(&mut self.child).await;
    }
}

/// Starts a long-running script (a server or listener) and waits for the `ready` line it
/// prints once listening. Its stderr (the exceptions it logs) shows with WASMRPC_TEST_VERBOSE=1.
async fn start_service(name: &str, args: &[&str]) -> (Child, tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) {
    let mut child = Command::new(python())
        .arg(script(name))
        .args(args)
        .env("PYTHONWARNINGS", "ignore")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(if std::env::var_os("WASMRPC_TEST_VERBOSE").is_some() { Stdio::inherit() } else { Stdio::null() })
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let ready = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.trim() == "ready" {
                return true;
            }
        }
        false
    })
    .await;
    assert!(matches!(ready, Ok(true)), "{name} did not become ready");
    (child, lines)
}

/// Closing stdin makes a script stop, wait and clean up like a real service; killed if it
/// takes longer than 15 s.
async fn stop_service(child: &mut Child) {
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.shutdown().await;
    }
    if tokio::time::timeout(Duration::from_secs(15), child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}
