//! One source, two builds (`versioned-a`, `versioned-b`): each answers with its own package
//! name, so a test can tell which build served a call while it swaps them under load.

use std::time::Duration;

use wasmrpc_guest::{Context, endpoint};

#[derive(Default)]
pub struct Versioned;

#[endpoint(version = "1.0")]
impl Versioned {
    pub fn version(&self, _ctx: &Context) -> &'static str {
        env!("CARGO_PKG_NAME")
    }

    /// Answers after `seconds`: a call that is in flight while the module is replaced.
    pub fn slow_version(&self, _ctx: &Context, seconds: f64) -> &'static str {
        std::thread::sleep(Duration::from_secs_f64(seconds));
        env!("CARGO_PKG_NAME")
    }
}
