use wasmrpc_guest::{Context, endpoint};

#[derive(Default)]
pub struct E;

#[endpoint]
impl E {
    pub fn keep(&self, ctx: Context) -> u64 {
        let _ = ctx;
        1
    }
}

fn main() {}
