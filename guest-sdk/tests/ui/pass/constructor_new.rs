//! A type without `Default`: the block's `new()` makes the endpoint value.

use std::sync::atomic::{AtomicU32, Ordering};

use wasmrpc_guest::__private::{Endpoint, Kwargs};
use wasmrpc_guest::{Context, endpoint};

static MADE: AtomicU32 = AtomicU32::new(0);

pub struct Counter {
    step: u64,
    n: u64,
}

#[endpoint]
impl Counter {
    /// Public, yet not an RPC method: it is the constructor.
    pub fn new() -> Self {
        MADE.fetch_add(1, Ordering::SeqCst);
        Counter { step: 10, n: 0 }
    }

    pub fn bump(&mut self) -> u64 {
        self.n += self.step;
        self.n
    }
}

fn main() {
    let names: Vec<String> = Counter::description().methods.into_iter().map(|m| m.name).collect();
    assert_eq!(names, ["bump"]);
    assert_eq!(MADE.load(Ordering::SeqCst), 0, "describing does not construct");
    let mut c = Counter::create().unwrap();
    assert_eq!(MADE.load(Ordering::SeqCst), 1);
    let ctx = Context::default();
    c.dispatch("bump", Kwargs::default(), &ctx).unwrap();
    assert_eq!(c.dispatch("bump", Kwargs::default(), &ctx).unwrap().as_bytes(), br#"{"ok":20}"#);
    assert!(c.dispatch("new", Kwargs::default(), &ctx).is_err(), "the constructor is not callable");
}
