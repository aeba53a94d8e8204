use wasmrpc_guest::{Context, endpoint};

#[derive(Default)]
pub struct E;

pub struct Opaque;

#[endpoint]
impl E {
    pub fn take(&self, _ctx: &Context, thing: Opaque) -> u64 {
        let _ = thing;
        1
    }
}

fn main() {}
