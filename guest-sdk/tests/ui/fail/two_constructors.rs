use wasmrpc_guest::endpoint;

pub struct E;

#[endpoint]
impl E {
    fn new() -> Self {
        E
    }

    fn init() -> Self {
        E
    }

    pub fn ping(&self) -> u64 {
        1
    }
}

fn main() {}
