use wasmrpc_guest::{Context, endpoint};

#[derive(Default)]
pub struct E;

#[endpoint]
impl E {
    pub fn greet(&self, _ctx: &Context, name: &str) -> String {
        format!("hello {name}")
    }
}

fn main() {}
