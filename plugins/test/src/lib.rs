//! The seed service from the oslo.messaging documentation:
//!
//! ```python
//! class TestEndpoint(object):
//!     def test(self, ctx, arg):
//!         return arg
//! ```

use serde_json::Value;
use wasmrpc_guest::{Context, endpoint};

#[derive(Default)]
pub struct TestEndpoint;

#[endpoint(version = "2.0")]
impl TestEndpoint {
    pub fn test(&self, _ctx: &Context, arg: Value) -> Value {
        arg
    }
}
