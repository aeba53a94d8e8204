//! Misbehaves on request: `boom` panics with the given message.

use wasmrpc_guest::{Context, endpoint};

#[derive(Default)]
pub struct Panicker;

#[endpoint(version = "1.0")]
impl Panicker {
    pub fn boom(&self, _ctx: &Context, message: String) -> bool {
        panic!("{message}");
    }

    pub fn ping(&self, _ctx: &Context) -> &'static str {
        "pong"
    }
}
