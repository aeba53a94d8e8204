use wasmrpc_guest::{Context, endpoint};

#[derive(Default)]
pub struct E;

#[endpoint]
impl E {
    pub fn sum(&self, _ctx: &Context, (a, b): (i64, i64)) -> i64 {
        a + b
    }
}

fn main() {}
