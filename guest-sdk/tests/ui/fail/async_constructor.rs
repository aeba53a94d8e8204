use wasmrpc_guest::endpoint;

pub struct E;

#[endpoint]
impl E {
    async fn new() -> Self {
        E
    }

    pub fn ping(&self) -> u64 {
        1
    }
}

fn main() {}
