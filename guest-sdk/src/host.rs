//! Safe wrappers over the host's imports (`wasmrpc.log`, `wasmrpc.panic`, `wasmrpc.notify`).
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
}
