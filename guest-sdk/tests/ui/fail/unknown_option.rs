use wasmrpc_guest::{Context, endpoint};

#[derive(Default)]
pub struct E;

#[endpoint(topic = "calc")]
impl E {
    pub fn ping(&self, _ctx: &Context) -> u64 {
        1
    }
}

fn main() {}
