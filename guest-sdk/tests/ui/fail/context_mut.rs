use wasmrpc_guest::{Context, endpoint};

#[derive(Default)]
pub struct E;

#[endpoint]
impl E {
    pub fn tag(&self, ctx: &mut Context) -> u64 {
        let _ = ctx;
        1
    }
}

fn main() {}
