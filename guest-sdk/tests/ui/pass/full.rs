use std::fmt;

use wasmrpc_guest::__private::{Endpoint, Kwargs};
use wasmrpc_guest::{Context, RemoteError, endpoint};

#[derive(Default)]
pub struct Counter {
    n: u64,
}

#[derive(Debug)]
pub struct TooBig;
impl fmt::Display for TooBig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("too big")
    }
}
impl std::error::Error for TooBig {}

#[endpoint(version = "1.2", namespace = "counting")]
impl Counter {
    pub fn bump(&mut self, _ctx: &Context, by: u64, label: Option<String>) -> Result<u64, TooBig> {
        if by > 100 {
            return Err(TooBig);
        }
        self.n += by;
        let _ = label;
        Ok(self.n)
    }

    pub fn name(&self, ctx: &Context) -> Option<String> {
        ctx.user().map(str::to_owned)
    }

    pub fn nothing(&self, _ctx: &Context) {}

    pub fn custom(&self, _ctx: &Context) -> Result<(), RemoteError> {
        Err(RemoteError::new("Custom", "always"))
    }

    /// Public in Rust but private to callers: its name starts with `_`.
    pub fn _internal(&self, _ctx: &Context) -> u64 {
        self.n
    }

    fn helper(&self) -> u64 {
        self.n
    }
}

fn main() {
    let d = Counter::description();
    let names: Vec<&str> = d.methods.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["bump", "name", "nothing", "custom"]);
    assert_eq!(d.methods[0].params, ["by", "label"]);
    assert_eq!(d.version.as_deref(), Some("1.2"));
    assert_eq!(d.namespace.as_deref(), Some("counting"));
    let mut c = Counter::default();
    let ctx = Context::default();
    let args = Kwargs::from_json(r#"{"by": 3}"#).unwrap();
    assert_eq!(c.dispatch("bump", args, &ctx).unwrap().as_bytes(), br#"{"ok":3}"#);
    let args = Kwargs::from_json(r#"{"by": 300}"#).unwrap();
    assert_eq!(c.dispatch("bump", args, &ctx).unwrap_err().type_name(), "TooBig");
    assert!(c.dispatch("_internal", Default::default(), &ctx).is_err());
    assert_eq!(c.helper(), 3);
}
