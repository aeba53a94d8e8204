//! The author's loop (issue 21): the time from saving a source file to the first call answered
//! by the new build in `wasmrpc dev`, with the build's own time beside it, for each template.
//!
//! A project from `wasmrpc new` (`--lang rust`: the crate's release profile; `--lang python`: the
//! endpoint class, built into a component by componentize-py), served by the release `wasmrpc
//! dev` on memory:// with the gateway on a free port. Each round edits the greeting and saves,
//! then calls `greet` through the gateway every few milliseconds until the answer carries the
//! edit. The build's time is what `dev` prints for it (`built NAME in …s`: the `[build]`
//! command, from start to exit); the rest is the debounce, the host compiling the new module
//! (most of it for a Python component, which carries CPython), the swap and the call. A Rust
//! project builds in `plugins/target`, where the SDK is already compiled, as a project with a
//! warm target directory does after its first build.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::io::AsyncBufReadExt as _;
use tokio::sync::mpsc;

use crate::stats::median;

/// The template a round edits.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
}

impl Lang {
    /// The project's name (its topic).
    fn name(self) -> &'static str {
        match self {
            Lang::Rust => "bench-dev",
            Lang::Python => "bench-dev-py",
        }
    }

    /// The source file a round saves, and the greeting's expression in the template.
    fn source(self) -> (&'static str, &'static str) {
        match self {
            Lang::Rust => ("src/lib.rs", r#"format!("{}, {name}!", self.greeting)"#),
            Lang::Python => ("endpoint.py", r#"return f"Hello, {name}!""#),
        }
    }

    /// The greeting's expression after edit `i`.
    fn edited(self, i: usize) -> String {
        match self {
            Lang::Rust => format!(r#"format!("{{}}, {{name}}! (edit {i})", self.greeting)"#),
            Lang::Python => format!(r#"return f"Hello, {{name}}! (edit {i})""#),
        }
    }

    fn build(self) -> &'static str {
        match self {
            Lang::Rust => "`cargo build --release`",
            Lang::Python => "componentize-py",
        }
    }
}

/// The longest a build may take before the round counts as failed.
const ROUND_LIMIT: Duration = Duration::from_secs(600);

/// Runs `edits` rounds (20 unless quick) and returns the table as markdown.
pub async fn run(lang: Lang, wasmrpc: &Path, plugins: &Path, quick: bool) -> anyhow::Result<String> {
    let edits = if quick { 5 } else { 20 };
    let name = lang.name();
    // plugins/target/wasm32-wasip1/release → plugins/target
    let target_dir: PathBuf = plugins.ancestors().nth(2).context("--plugins is not …/target/<triple>/release")?.into();
    let parent = tempfile::tempdir()?;
    let lang_arg = format!("{lang:?}").to_lowercase();
    let status = std::process::Command::new(wasmrpc)
        .args(["new", name, "--lang", &lang_arg])
        .current_dir(parent.path())
        .stdout(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "wasmrpc new failed");
    let project = parent.path().join(name);
    if let Lang::Rust = lang {
        std::os::unix::fs::symlink(&target_dir, project.join("target"))?;
        let lock = target_dir.parent().context("plugins/")?.join("Cargo.lock");
        std::fs::copy(&lock, project.join("Cargo.lock")).with_context(|| format!("copy {}", lock.display()))?;
    }

    let http = free_port()?;
    let mut child = tokio::process::Command::new(wasmrpc)
        .args(["dev", "--http", &http.to_string()])
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("run wasmrpc dev")?;
    let (lines_tx, mut lines) = mpsc::unbounded_channel();
    let stderr = child.stderr.take().context("stderr")?;
    tokio::spawn(async move {
        let mut reader = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });

    wait_for(http, name, "Hello, world!").await?;
    let (file, from) = lang.source();
    let file = project.join(file);
    let original = std::fs::read_to_string(&file)?;
    anyhow::ensure!(original.contains(from), "the {lang_arg} template's greet changed: update dev_loop.rs");
    let (mut loops, mut builds) = (Vec::new(), Vec::new());
    for i in 1..=edits {
        let expected = format!("Hello, world! (edit {i})");
        let source = original.replacen(from, &lang.edited(i), 1);
        // Drop what dev printed before this save (the previous round's lines).
        while lines.try_recv().is_ok() {}
        std::fs::write(&file, source)?;
        let saved = Instant::now();
        wait_for(http, name, &expected).await.with_context(|| format!("edit {i}"))?;
        loops.push(saved.elapsed().as_secs_f64());
        builds.push(build_seconds(name, &mut lines).await.with_context(|| format!("edit {i}: dev's build line"))?);
        eprintln!("  edit {i}: {:.2} s to the new answer, build {:.2} s", loops[i - 1], builds[i - 1]);
    }
    let _ = child.start_kill();
    let _ = child.wait().await;

    let rest: Vec<f64> = loops.iter().zip(&builds).map(|(l, b)| l - b).collect();
    let row = |name: &str, values: &[f64]| {
        let mut v = values.to_vec();
        let (min, max) = (v.iter().copied().fold(f64::MAX, f64::min), v.iter().copied().fold(0.0, f64::max));
        format!("| {name} | {:.2} s | {min:.2} s | {max:.2} s |\n", median(&mut v))
    };
    let saved = lang.source().0;
    let mut out =
        format!("| {edits} saves of `{saved}` in a `wasmrpc new --lang {lang_arg}` project | median | min | max |\n");
    out.push_str("|---|---:|---:|---:|\n");
    out.push_str(&row("save → first call answered by the new build", &loops));
    out.push_str(&row(&format!("the build ({}, as `dev` timed it)", lang.build()), &builds));
    out.push_str(&row("the rest: debounce, compiling the module, reload, the call", &rest));
    Ok(out)
}

/// The seconds in dev's next `built NAME in X.YZs` line.
async fn build_seconds(name: &str, lines: &mut mpsc::UnboundedReceiver<String>) -> anyhow::Result<f64> {
    let prefix = format!("built {name} in ");
    loop {
        let line = tokio::time::timeout(ROUND_LIMIT, lines.recv()).await?.context("dev exited")?;
        if let Some(rest) = line.strip_prefix(&prefix) {
            let seconds = rest.split('s').next().unwrap_or_default();
            return seconds.parse().with_context(|| format!("{line:?}"));
        }
        if line.contains("failed") {
            bail!("{line}");
        }
    }
}

/// Calls `greet(name="world")` until it answers `expected`.
async fn wait_for(http: SocketAddr, name: &'static str, expected: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let expected = serde_json::Value::from(expected).to_string();
    loop {
        let expected = expected.clone();
        let body = tokio::task::spawn_blocking(move || greet(http, name)).await?;
        if body.as_deref() == Some(expected.as_str()) {
            return Ok(());
        }
        if started.elapsed() > ROUND_LIMIT {
            bail!("no answer {expected} after {ROUND_LIMIT:?} (last: {body:?})");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// One `POST /v1/call/{name}/greet`: the body of a 200 answer.
fn greet(http: SocketAddr, name: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&http, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let body = r#"{"name": "world"}"#;
    write!(
        s,
        "POST /v1/call/{name}/greet HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.trim().to_owned())
}

fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}
