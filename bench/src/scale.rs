//! Scale: how long `wasmrpc serve` takes to be ready, and its resident memory, with 1, 100 and
//! 500 endpoints (generated manifests over copies of the example plugins), cold (empty module
//! cache) and with the cache filled.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// One measurement.
#[derive(Debug, Clone)]
pub struct Row {
    pub endpoints: usize,
    /// Each copy made unique (a custom section), so nothing is shared between endpoints.
    pub distinct: bool,
    pub cached: bool,
    pub ready_ms: f64,
    pub rss_mib: f64,
}

const PLUGINS: &[&str] = &["calculator", "echo", "test"];

/// Writes `n` manifests, each over its own copy of an example plugin. With `distinct`, each
/// copy gets a custom section naming it, so every module has its own digest: no compiled code
/// or memory image is shared, and the cache holds `n` entries.
fn generate(dir: &Path, plugins: &Path, n: usize, distinct: bool) -> anyhow::Result<()> {
    for i in 0..n {
        let plugin = PLUGINS[i % PLUGINS.len()];
        let copy = dir.join(format!("{plugin}-{i}.wasm"));
        let mut bytes = std::fs::read(plugins.join(format!("{plugin}.wasm")))?;
        if distinct {
            bytes.extend(custom_section("wasmrpc-bench-copy", format!("{i}").as_bytes()));
        }
        std::fs::write(&copy, bytes)?;
        let version = match plugin {
            "echo" => "1.3",
            "test" => "2.0",
            _ => "1.0",
        };
        std::fs::write(
            dir.join(format!("ep-{i:04}.toml")),
            format!(
                "name = \"ep-{i}\"\nmodule = \"{}\"\n[target]\ntopic = \"scale_{i}\"\nversion = \"{version}\"\n",
                copy.display()
            ),
        )?;
    }
    Ok(())
}

/// A wasm custom section (id 0): ignored by engines, part of the module's digest.
fn custom_section(name: &str, payload: &[u8]) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut body = Vec::new();
    leb(name.len(), &mut body);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    let mut section = vec![0u8];
    leb(body.len(), &mut section);
    section.extend(body);
    section
}

/// Resident memory of `pid` in MiB, from /proc (the scale, soak and chaos runs all read it).
pub(crate) fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS"))?;
    Ok(kb / 1024.0)
}

/// Starts the host and waits for "wasmrpc host serving" on its log.
async fn one(wasmrpc_exe: &Path, manifests: &Path, cache: &Path) -> anyhow::Result<(f64, f64)> {
    let config = manifests.parent().unwrap_or(manifests).join("wasmrpc.toml");
    std::fs::write(
        &config,
        format!("transport_url = \"memory://\"\nwatch = false\n[runtime]\ncache_dir = \"{}\"\n", cache.display()),
    )?;
    let started = Instant::now();
    let mut child = Command::new(wasmrpc_exe)
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--manifests")
        .arg(manifests)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stderr.take().expect("piped")).lines();
    let ready = tokio::time::timeout(Duration::from_secs(600), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("wasmrpc host serving") {
                return true;
            }
        }
        false
    })
    .await;
    anyhow::ensure!(matches!(ready, Ok(true)), "wasmrpc serve did not get ready");
    let ready_ms = started.elapsed().as_secs_f64() * 1000.0;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    // Idle: let start-up garbage settle before reading the resident size.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss = rss_mib(child.id().unwrap_or_default())?;
    child.kill().await.ok();
    Ok((ready_ms, rss))
}

pub async fn run(wasmrpc_exe: &Path, plugins: &Path, quick: bool) -> anyhow::Result<Vec<Row>> {
    let sizes: &[(usize, bool)] = if quick {
        &[(1, false), (100, false), (100, true)]
    } else {
        &[(1, false), (100, false), (500, false), (100, true), (500, true)]
    };
    let mut rows = Vec::new();
    for &(n, distinct) in sizes {
        let root = tempfile::tempdir()?;
        let manifests = root.path().join("manifests");
        std::fs::create_dir(&manifests)?;
        generate(&manifests, plugins, n, distinct)?;
        let cache = root.path().join("cache");
        for cached in [false, true] {
            // Cold: an empty cache. Cached: the cold run filled it.
            let (ready_ms, rss_mib) = one(wasmrpc_exe, &manifests, &cache).await?;
            rows.push(Row { endpoints: n, distinct, cached, ready_ms, rss_mib });
        }
    }
    Ok(rows)
}
