//! `wasmrpc serve` as operators run it: the real binary as a child process, on the test broker,
//! with its HTTP listener on a free port (`operations.rs`, `gateway.rs`).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use wasmrpc_tests::broker::rabbit_url;
use wasmrpc_tests::eventually;

/// `wasmrpc serve` with `--http` on a free port; stderr kept (read as it comes).
pub struct Service {
    child: tokio::process::Child,
    /// Where its HTTP listener is.
    pub http: SocketAddr,
    stderr: tokio::task::JoinHandle<String>,
}

impl Service {
    /// Starts it in `cwd` with `args` after `serve`; does not wait for it to be ready.
    pub fn spawn(cwd: &Path, args: &[&str]) -> Service {
        Service::spawn_on(&rabbit_url(), cwd, args)
    }

    /// [`Service::spawn`] on `url`, whether or not the broker is up.
    pub fn spawn_on(url: &str, cwd: &Path, args: &[&str]) -> Service {
        let http = free_port();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wasmrpc-cli"))
            .current_dir(cwd)
            .arg("serve")
            .args(args)
            .args(["--http", &http.to_string()])
            .env("WASMRPC_TRANSPORT_URL", url)
            .env("RUST_LOG", "info")
            .env_remove("NO_COLOR")
            .env("XDG_CACHE_HOME", std::env::temp_dir().join("wasmrpc-test-xdg-cache"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("run wasmrpc serve");
        let mut pipe = child.stderr.take().expect("stderr");
        let stderr = tokio::spawn(async move {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes).await.ok();
            String::from_utf8_lossy(&bytes).into_owned()
        });
        Service { child, http, stderr }
    }

    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let addr = self.http;
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || http_get(addr, &path)).await.expect("http task")
    }

    /// Waits until `/readyz` says 200.
    pub async fn ready(&self, within: Duration) {
        let ready = eventually(within, || async { self.get("/readyz").await.filter(|(s, _)| *s == 200) }).await;
        assert!(ready.is_some(), "not ready within {within:?}: {:?}", self.get("/readyz").await);
    }

    pub fn signal(&self, name: &str) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill").args([&format!("-{name}"), &pid]).status().expect("kill");
        assert!(status.success());
    }

    /// SIGTERM, then waits for the exit and returns the exit status' success and stderr.
    pub async fn terminate(mut self) -> (bool, String) {
        self.signal("TERM");
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
        let ok = matches!(status, Ok(Ok(s)) if s.success());
        if !ok {
            let _ = self.child.start_kill();
        }
        (ok, self.stderr.await.expect("stderr task"))
    }
}

pub(crate) fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// A plain HTTP/1.0 GET: the status and body, or `None` if nothing answers.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Some((status, body))
}
