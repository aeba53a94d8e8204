use wasmrpc_guest::endpoint;

#[derive(Default)]
pub struct E;

#[endpoint]
impl E {
    pub fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
}

fn main() {}
