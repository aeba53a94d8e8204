use wasmrpc_guest::endpoint;

#[derive(Default)]
pub struct E;

#[endpoint]
impl E {
    pub fn make() -> u64 {
        1
    }
}

fn main() {}
