use wasmrpc_guest::endpoint;

#[derive(Default)]
pub struct E;

pub struct Opaque;

#[endpoint]
impl E {
    pub fn make(&self) -> Opaque {
        Opaque
    }
}

fn main() {}
