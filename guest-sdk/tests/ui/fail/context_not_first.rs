use wasmrpc_guest::{Context, endpoint};

#[derive(Default)]
pub struct E;

#[endpoint]
impl E {
    pub fn add(&self, a: i64, ctx: &Context) -> i64 {
        let _ = ctx;
        a
    }
}

fn main() {}
