use wasmrpc_guest::{Context, endpoint};

#[derive(Default)]
pub struct E;

#[endpoint]
impl E {
    pub async fn wait(&self, _ctx: &Context) -> u64 {
        1
    }
}

fn main() {}
