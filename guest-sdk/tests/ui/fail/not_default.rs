use wasmrpc_guest::{Context, endpoint};

pub struct E;

#[endpoint]
impl E {
    pub fn ping(&self, _ctx: &Context) -> u64 {
        1
    }
}

fn main() {}
