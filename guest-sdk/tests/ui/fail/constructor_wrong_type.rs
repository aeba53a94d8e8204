use wasmrpc_guest::endpoint;

pub struct E;

#[endpoint]
impl E {
    fn new() -> u32 {
        1
    }

    pub fn ping(&self) -> u64 {
        1
    }
}

fn main() {}
