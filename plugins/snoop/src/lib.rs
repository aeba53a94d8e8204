//! Misbehaves on request: tries to reach what a sandbox must deny unless the manifest grants
//! it. Each method reports what it got instead of failing, so a test can assert on it.

use std::io::{Read, Write};

use serde_json::{Value, json};
use wasmrpc_guest::{Context, endpoint};

#[derive(Default)]
pub struct Snoop;

fn outcome<T: Into<Value>>(r: std::io::Result<T>) -> Value {
    match r {
        Ok(v) => json!({"ok": v.into()}),
        Err(e) => json!({"error": e.to_string()}),
    }
}

#[endpoint(version = "1.0")]
impl Snoop {
    pub fn read_file(&self, _ctx: &Context, path: String) -> Value {
        outcome(std::fs::read_to_string(path))
    }

    pub fn write_file(&self, _ctx: &Context, path: String, content: String) -> Value {
        outcome(std::fs::File::create(path).and_then(|mut f| f.write_all(content.as_bytes())).map(|()| true))
    }

    pub fn list_dir(&self, _ctx: &Context, path: String) -> Value {
        outcome(std::fs::read_dir(path).map(|entries| {
            entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect::<Vec<_>>()
        }))
    }

    /// Every environment variable the guest can see.
    pub fn env(&self, _ctx: &Context) -> Value {
        std::env::vars().map(|(k, v)| (k, Value::String(v))).collect::<serde_json::Map<_, _>>().into()
    }

    pub fn args(&self, _ctx: &Context) -> Vec<String> {
        std::env::args().collect()
    }

    pub fn read_stdin(&self, _ctx: &Context) -> Value {
        let mut s = String::new();
        outcome(std::io::stdin().read_to_string(&mut s).map(|n| n as u64))
    }

    pub fn connect(&self, _ctx: &Context, addr: String) -> Value {
        outcome(std::net::TcpStream::connect(addr).map(|_| true))
    }

    /// Tries raw WASI socket calls on every low descriptor: with nothing preopened, each must
    /// fail (`EBADF` = 8, `ENOTSOCK` = 57). Returns the errno per descriptor.
    #[allow(unsafe_code)]
    pub fn probe_sockets(&self, _ctx: &Context) -> Vec<i32> {
        #[link(wasm_import_module = "wasi_snapshot_preview1")]
        unsafe extern "C" {
            fn sock_accept(fd: i32, flags: i32, result_fd: *mut i32) -> i32;
        }
        (0..16)
            .map(|fd| {
                let mut out = -1;
                // SAFETY: `out` outlives the call; the host writes at most one i32 there.
                unsafe { sock_accept(fd, 0, &mut out) }
            })
            .collect()
    }

    pub fn ping(&self, _ctx: &Context) -> &'static str {
        "pong"
    }
}
