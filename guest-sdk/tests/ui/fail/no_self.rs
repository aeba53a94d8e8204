use wasmrpc_guest::{Context, endpoint};

#[derive(Default)]
pub struct E;

#[endpoint]
impl E {
    pub fn make(_ctx: &Context) -> u64 {
        1
    }
}

fn main() {}
