use wasmrpc_guest::endpoint;

#[derive(Default)]
pub struct E;

#[endpoint]
impl Clone for E {
    fn clone(&self) -> E {
        E
    }
}

fn main() {}
