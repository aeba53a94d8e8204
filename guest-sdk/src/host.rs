//! Safe wrappers over the host's imports (`wasmrpc.log`, `wasmrpc.panic`, `wasmrpc.notify`,
//! `wasmrpc.rpc`, `wasmrpc.config`).
//!
//! Off wasm (a plugin's own unit tests on the build machine) the imports do not exist; the
//! fallbacks print to stderr so the same code runs in both places.

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something odd that did not stop the call.
    Warn,
    /// Something failed.
    Error,
}

impl Level {
    fn raw(self) -> i32 {
        use wasmrpc_abi::LogLevel;
        let level = match self {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        level as i32
    }
}

/// Writes one line to the host's log at `level`, tagged with the endpoint's name.
/// The [`info!`](crate::info) family of macros formats and calls this.
pub fn log(level: Level, message: &str) {
    imp::log(level.raw(), message);
}

pub(crate) fn report_panic(message: &str) {
    imp::panic(message);
}

pub(crate) fn notify(request: &[u8]) -> i32 {
    imp::notify(request)
}

/// Sends an outbound request (JSON `RpcRequest`); returns the JSON `RpcResponse`.
pub(crate) fn rpc(request: &[u8]) -> Vec<u8> {
    imp::rpc(request)
}

/// The `[config]` value of `key`, if the manifest sets it.
pub(crate) fn config(key: &str) -> Option<String> {
    imp::config(key)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    #[link(wasm_import_module = "wasmrpc")]
    unsafe extern "C" {
        #[link_name = "log"]
        fn host_log(level: i32, ptr: *const u8, len: usize);
        #[link_name = "panic"]
        fn host_panic(ptr: *const u8, len: usize);
        #[link_name = "notify"]
        fn host_notify(ptr: *const u8, len: usize) -> i32;
        #[link_name = "rpc"]
        fn host_rpc(ptr: *const u8, len: usize) -> i64;
        #[link_name = "config"]
        fn host_config(ptr: *const u8, len: usize) -> i64;
    }

    /// Takes ownership of a buffer the host filled after getting it from `wasmrpc_alloc`.
    fn take(packed: i64) -> Vec<u8> {
        let (ptr, len) = wasmrpc_abi::unpack(packed as u64);
        if len == 0 {
            return Vec::new();
        }
        let slice = std::ptr::slice_from_raw_parts_mut(ptr as usize as *mut u8, len as usize);
        // SAFETY: the host returns a buffer it got from `wasmrpc_alloc(len)` and filled; this
        // module owns it from now on, and `alloc` made it a `Box<[u8]>` of exactly `len` bytes.
        unsafe { Box::from_raw(slice) }.into_vec()
    }

    pub(super) fn log(level: i32, message: &str) {
        // SAFETY: the host only reads `len` bytes at `ptr`, which `message` keeps alive.
        unsafe { host_log(level, message.as_ptr(), message.len()) }
    }

    pub(super) fn panic(message: &str) {
        // SAFETY: as for `log`.
        unsafe { host_panic(message.as_ptr(), message.len()) }
    }

    pub(super) fn notify(request: &[u8]) -> i32 {
        // SAFETY: as for `log`.
        unsafe { host_notify(request.as_ptr(), request.len()) }
    }

    pub(super) fn rpc(request: &[u8]) -> Vec<u8> {
        // SAFETY: as for `log`; the result is a buffer handed over to this module.
        take(unsafe { host_rpc(request.as_ptr(), request.len()) })
    }

    pub(super) fn config(key: &str) -> Option<String> {
        // SAFETY: as for `log`.
        let packed = unsafe { host_config(key.as_ptr(), key.len()) };
        if packed == wasmrpc_abi::CONFIG_ABSENT {
            return None;
        }
        Some(String::from_utf8_lossy(&take(packed)).into_owned())
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    pub(super) fn log(level: i32, message: &str) {
        eprintln!("[guest log level {level}] {message}");
    }

    pub(super) fn panic(message: &str) {
        eprintln!("[guest panic] {message}");
    }

    pub(super) fn notify(request: &[u8]) -> i32 {
        eprintln!("[guest notification] {}", String::from_utf8_lossy(request));
        wasmrpc_abi::NOTIFY_SENT
    }

    pub(super) fn rpc(_request: &[u8]) -> Vec<u8> {
        let failure = wasmrpc_abi::RpcFailure::new(
            wasmrpc_abi::RpcFailureKind::Unavailable,
            "outbound calls need the wasmrpc host (this code is not running in one)",
        );
        serde_json::to_vec(&wasmrpc_abi::RpcResponse::Error(failure)).unwrap_or_default()
    }

    /// Off wasm, `[config]` keys are read from the environment as `WASMRPC_CONFIG_<KEY>`, so a
    /// plugin's unit tests can set them.
    pub(super) fn config(key: &str) -> Option<String> {
        std::env::var(format!("WASMRPC_CONFIG_{}", key.to_uppercase())).ok()
    }
}
