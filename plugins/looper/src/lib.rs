//! Misbehaves on request: `spin` never returns (the host's deadline or fuel must stop it).

use wasmrpc_guest::{Context, endpoint};

#[derive(Default)]
pub struct Looper;

#[endpoint(version = "1.0")]
impl Looper {
    pub fn spin(&self, _ctx: &Context) -> u64 {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }

    pub fn ping(&self, _ctx: &Context) -> &'static str {
        "pong"
    }
}
