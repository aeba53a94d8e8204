use wasmrpc_guest::endpoint;

#[derive(Default)]
pub struct E;

#[endpoint]
impl E {
    pub fn ping(&self) -> &'static str {
        "pong"
    }
}

fn main() {}
