use wasmrpc_guest::endpoint;

#[derive(Default)]
pub struct E;

#[endpoint]
impl E {
    pub fn check(&self, n: u64) -> Result<u64, u32> {
        if n > 3 { Err(7) } else { Ok(n) }
    }
}

fn main() {}
