//! Shared set-up for the tests in this binary.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use wasmrpc::{Plugin, Runtime, RuntimeConfig, manifest};

/// One runtime (one engine) for the whole test binary, as in a real host.
pub fn runtime() -> Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            Runtime::new(RuntimeConfig { cache_dir: Some(wasmrpc_tests::module_cache()), ..RuntimeConfig::default() })
                .expect("runtime")
        })
        .clone()
}

/// Loads the endpoint described by a manifest file.
pub async fn load(manifest_path: &Path) -> Plugin {
    let spec = manifest::load_file(manifest_path).unwrap_or_else(|e| panic!("{e}"));
    runtime().load(&spec, None).await.unwrap_or_else(|e| panic!("{e}"))
}

/// Calls a method with JSON arguments and an empty context.
pub async fn call(
    plugin: &Plugin,
    method: &str,
    args: serde_json::Value,
) -> Result<serde_json::Value, wasmrpc::CallError> {
    let args = args.as_object().cloned().unwrap_or_default();
    plugin.call(method, &args, &serde_json::Map::new(), None).await
}

/// Log lines captured while a test body runs on the current thread.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A subscriber writing plain lines into `logs`; use with `tracing::subscriber::set_default`.
pub fn capture_logs(logs: &CapturedLogs) -> impl tracing::Subscriber + Send + Sync {
    let logs = logs.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || logs.clone())
        .finish()
}
