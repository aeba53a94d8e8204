//! The request context is optional: a method takes `&Context` right after `self`, or not at all.

use wasmrpc_guest::__private::{Endpoint, Kwargs};
use wasmrpc_guest::{Context, endpoint};

#[derive(Default)]
pub struct E;

#[endpoint]
impl E {
    pub fn ping(&self) -> &'static str {
        "pong"
    }

    pub fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    pub fn user(&self, ctx: &Context) -> Option<String> {
        ctx.user().map(str::to_owned)
    }

    pub fn tagged(&mut self, ctx: &wasmrpc_guest::Context, tag: Option<String>) -> String {
        format!("{}:{}", ctx.user().unwrap_or("-"), tag.unwrap_or_default())
    }
}

fn call(e: &mut E, method: &str, args: &str, ctx: &Context) -> String {
    let reply = e.dispatch(method, Kwargs::from_json(args).unwrap(), ctx).unwrap();
    String::from_utf8(reply.as_bytes().to_vec()).unwrap()
}

fn main() {
    let d = E::description();
    assert_eq!(d.methods[1].params, ["a", "b"], "the context is not an argument");
    assert!(d.methods[2].params.is_empty());
    let mut e = E::create().unwrap();
    let ctx: Context = serde_json::from_str(r#"{"user": "u1"}"#).unwrap();
    assert_eq!(call(&mut e, "ping", "{}", &ctx), r#"{"ok":"pong"}"#);
    assert_eq!(call(&mut e, "add", r#"{"a": 2, "b": 3}"#, &ctx), r#"{"ok":5}"#);
    assert_eq!(call(&mut e, "user", "{}", &ctx), r#"{"ok":"u1"}"#);
    assert_eq!(call(&mut e, "tagged", r#"{"tag": "t"}"#, &ctx), r#"{"ok":"u1:t"}"#);
    // Without a context parameter, `ctx` is still not an argument a caller may pass.
    let err = e.dispatch("ping", Kwargs::from_json(r#"{"ctx": 1}"#).unwrap(), &ctx).unwrap_err();
    assert_eq!(err.message(), "ping() got an unexpected keyword argument 'ctx'");
}
