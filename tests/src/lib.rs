//! Helpers for wasmrpc's integration tests: where the built plugins are, manifests written for
//! a test, and (further down) the real broker and the real oslo.messaging.

use std::path::{Path, PathBuf};

pub mod broker;
pub mod python;

/// The repository root.
#[must_use]
pub fn root() -> PathBuf {
    PathBuf::from(env!("WASMRPC_ROOT"))
}

/// The built module of an example plugin, e.g. `plugin("calculator")`.
#[must_use]
pub fn plugin(name: &str) -> PathBuf {
    let path = Path::new(env!("WASMRPC_PLUGIN_DIR")).join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} is missing: tests/build.rs builds the plugins", path.display());
    path
}

/// The example manifest of a plugin, e.g. `example_manifest("calculator")`.
#[must_use]
pub fn example_manifest(name: &str) -> PathBuf {
    root().join("manifests").join(format!("{name}.toml"))
}

/// A directory of manifests written for one test; removed on drop.
#[derive(Debug)]
pub struct ManifestDir {
    dir: tempfile::TempDir,
}

impl ManifestDir {
    /// An empty directory.
    #[must_use]
    pub fn new() -> ManifestDir {
        ManifestDir { dir: tempfile::tempdir().expect("temp dir") }
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `<file>.toml` with the given text; `{plugin:NAME}` in it becomes the module path
    /// of plugin NAME.
    pub fn write(&self, file: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{file}.toml"));
        std::fs::write(&path, expand(text)).expect("write manifest");
        path
    }

    /// A manifest for `plugin` on `topic` with `version`, plus extra TOML appended.
    pub fn endpoint(&self, name: &str, plugin_name: &str, topic: &str, version: &str, extra: &str) -> PathBuf {
        self.write(
            name,
            &format!("name = \"{name}\"\nmodule = \"{{plugin:{plugin_name}}}\"\n\n[target]\ntopic = \"{topic}\"\nversion = \"{version}\"\n{extra}\n"),
        )
    }
}

impl Default for ManifestDir {
    fn default() -> ManifestDir {
        ManifestDir::new()
    }
}

fn expand(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{plugin:") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("unterminated {plugin:…}") + start;
        let name = &rest[start + "{plugin:".len()..end];
        out.push_str(&plugin(name).display().to_string());
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The compiled-module cache the tests share (keys include the module digest and the engine
/// settings, so sharing is safe).
#[must_use]
pub fn module_cache() -> PathBuf {
    std::env::temp_dir().join("wasmrpc-test-module-cache")
}

/// Polls `check` until it returns `Some`, for at most `within`; a behaviour check, not a
/// timing one, so `within` is generous.
pub async fn eventually<T, F, Fut>(within: std::time::Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = std::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if started.elapsed() > within {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A `memory://` URL no other test uses.
#[must_use]
pub fn memory_url() -> String {
    format!("memory://test-{}/", wasmrpc::protocol::new_id())
}

/// A host configuration for tests: the given transport, server name and manifest directory,
/// a small instance pool, short drains.
#[must_use]
pub fn host_config(url: &str, server: &str, manifests: &Path) -> wasmrpc::HostConfig {
    let mut config = wasmrpc::HostConfig::new();
    config.transport_url = wasmrpc::TransportUrl::parse(url).expect("test URL");
    config.server = server.to_owned();
    config.manifests = manifests.to_owned();
    config.runtime.max_instances = 200;
    config.runtime.cache_dir = Some(module_cache());
    // Tests that exercise hot reload turn watching on themselves.
    config.watch = false;
    config.drain_timeout = std::time::Duration::from_secs(10);
    config.reply_retry = std::time::Duration::from_secs(2);
    config
}

/// Starts a host serving `manifests` on `url` as `server`.
pub async fn start_host(url: &str, server: &str, manifests: &Path) -> wasmrpc::Host {
    wasmrpc::Host::start(host_config(url, server, manifests)).await.unwrap_or_else(|e| panic!("host {server}: {e}"))
}

/// A client transport for `url`.
pub async fn client_transport(url: &str) -> std::sync::Arc<dyn wasmrpc::transport::Transport> {
    client_transport_with(url, "openstack").await
}

/// A client transport for `url` with a control exchange.
pub async fn client_transport_with(url: &str, exchange: &str) -> std::sync::Arc<dyn wasmrpc::transport::Transport> {
    let url = wasmrpc::TransportUrl::parse(url).expect("test URL");
    let options = wasmrpc::transport::TransportOptions { control_exchange: exchange.to_owned(), ..Default::default() };
    wasmrpc::transport::connect(&url, options).await.unwrap_or_else(|e| panic!("connect {url}: {e}"))
}

/// A JSON object from a `json!` literal.
#[must_use]
pub fn obj(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match v {
        serde_json::Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}
