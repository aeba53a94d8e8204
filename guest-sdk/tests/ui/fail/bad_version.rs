use wasmrpc_guest::{Context, endpoint};

#[derive(Default)]
pub struct E;

#[endpoint(version = "1")]
impl E {
    pub fn ping(&self, _ctx: &Context) -> u64 {
        1
    }
}

fn main() {}
