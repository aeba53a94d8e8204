//! Misbehaves on request: `grow` allocates until something stops it, `recurse` overflows the
//! stack, `poke` reads far outside linear memory, `unreachable` executes `unreachable`, `fill`
//! answers a small request with a reply as large as asked,
//! `flood_logs` and `flood_notifications` write log lines and emit notifications as fast as
//! they can.

use serde_json::{Value, json};
use wasmrpc_guest::notifier::NotifyError;
use wasmrpc_guest::{Context, Notifier, endpoint};

#[derive(Default)]
pub struct Hog {
    hoard: Vec<Vec<u8>>,
}

/// Recursion that keeps everything in wasm locals, so it exhausts the wasm call stack itself
/// (not Rust's shadow stack in linear memory, which would end in an out-of-bounds access).
#[inline(never)]
fn deeper(n: u64) -> u64 {
    if std::hint::black_box(n) == u64::MAX { n } else { deeper(n + 1).wrapping_add(1) }
}

#[endpoint(version = "1.0")]
impl Hog {
    /// Allocates `chunk_mb` MiB at a time, forever.
    pub fn grow(&mut self, _ctx: &Context, chunk_mb: u64) -> usize {
        loop {
            let mut chunk = vec![0u8; (chunk_mb as usize) << 20];
            chunk[0] = 1;
            self.hoard.push(chunk);
            if self.hoard.len() == usize::MAX {
                return self.hoard.len();
            }
        }
    }

    pub fn recurse(&self, _ctx: &Context) -> u64 {
        deeper(0)
    }

    #[allow(unsafe_code)]
    pub fn poke(&self, _ctx: &Context) -> u8 {
        let addr = std::hint::black_box(0xFFFF_FFF0usize) as *const u8;
        // SAFETY: none; reading outside linear memory is the point (the host must trap it).
        unsafe { addr.read_volatile() }
    }

    pub fn unreachable(&self, _ctx: &Context) -> bool {
        std::process::abort()
    }

    /// A string of `bytes` bytes: a reply larger than the broker takes.
    pub fn fill(&self, _ctx: &Context, bytes: u64) -> String {
        "x".repeat(bytes as usize)
    }

    /// Writes `count` log lines through the host's `log` import and `count` to stdout.
    pub fn flood_logs(&self, _ctx: &Context, count: u64) -> u64 {
        for i in 0..count {
            wasmrpc_guest::info!("flood line {i}");
            println!("flood stdout line {i}");
        }
        count
    }

    /// Emits `count` notifications of `event_type`; says how many the host sent, dropped or
    /// refused otherwise.
    pub fn flood_notifications(&self, ctx: &Context, event_type: String, count: u64) -> Value {
        let (mut sent, mut dropped, mut other) = (0u64, 0u64, 0u64);
        for i in 0..count {
            match Notifier.info(ctx, &event_type, json!({"i": i})) {
                Ok(()) => sent += 1,
                Err(NotifyError::Dropped { .. }) => dropped += 1,
                Err(_) => other += 1,
            }
        }
        json!({"sent": sent, "dropped": dropped, "other": other})
    }

    pub fn ping(&self, _ctx: &Context) -> &'static str {
        "pong"
    }
}
