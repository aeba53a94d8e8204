use wasmrpc_guest::endpoint;

pub struct E;

#[endpoint]
impl E {
    fn init() {}

    pub fn ping(&self) -> u64 {
        1
    }
}

fn main() {}
