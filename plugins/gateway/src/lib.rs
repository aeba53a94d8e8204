//! A gateway in front of other services, through the host's outbound calls: `add` asks the
//! calculator endpoint (another wasmrpc endpoint), `python_add` a Python oslo.messaging service,
//! `announce` casts to every server of a topic, `setting` reads the manifest's `[config]`.
//! `relay` sends any call or cast and reports the outcome as data (what the tests use to
//! reach targets the manifest does or does not grant).

use std::time::Duration;

use serde_json::{Value, json};
use wasmrpc_guest::rpc::{self, Target};
use wasmrpc_guest::{Context, RemoteError, config, endpoint};

#[derive(Default)]
pub struct Gateway;

/// The topic of the Python service: `[config] python_topic`, `python` by default.
fn python_topic() -> String {
    config::get("python_topic").unwrap_or_else(|| "python".to_owned())
}

#[endpoint(version = "1.0")]
impl Gateway {
    /// `a + b`, computed by the calculator endpoint.
    pub fn add(&self, ctx: &Context, a: f64, b: f64) -> Result<f64, RemoteError> {
        let target = Target::topic(config::get("calculator_topic").unwrap_or_else(|| "calculator".to_owned()));
        Ok(rpc::call(ctx, &target.version("1.0"), "add", json!({"a": a, "b": b}))?)
    }

    /// `a + b`, computed by the Python service; its exceptions come back as they were raised.
    pub fn python_add(&self, ctx: &Context, a: Value, b: Value) -> Result<Value, RemoteError> {
        Ok(rpc::call(ctx, &Target::topic(python_topic()).version("1.3"), "add", json!({"a": a, "b": b}))?)
    }

    /// Casts `record(tag)` to every server of the Python service's topic.
    pub fn announce(&self, ctx: &Context, tag: String) -> Result<bool, RemoteError> {
        rpc::cast(ctx, &Target::topic(python_topic()).fanout(), "record", json!({"tag": tag}))?;
        Ok(true)
    }

    /// A `[config]` value (`null` if the manifest does not set it).
    pub fn setting(&self, _ctx: &Context, key: String) -> Option<String> {
        config::get(&key)
    }

    /// Sends `method(args)` to `topic` as a call (or a cast) with the given target options, and
    /// returns `{"ok": result}` or `{"error": {"kind", "type", "module", "message"}}`.
    #[allow(clippy::too_many_arguments)]
    pub fn relay(
        &self,
        ctx: &Context,
        topic: String,
        method: String,
        args: Option<Value>,
        cast: Option<bool>,
        server: Option<String>,
        fanout: Option<bool>,
        namespace: Option<String>,
        version: Option<String>,
        timeout: Option<f64>,
    ) -> Value {
        let mut target = Target::topic(topic);
        if let Some(s) = server {
            target = target.server(s);
        }
        if fanout == Some(true) {
            target = target.fanout();
        }
        if let Some(n) = namespace {
            target = target.namespace(n);
        }
        if let Some(v) = version {
            target = target.version(v);
        }
        if let Some(t) = timeout {
            target = target.timeout(Duration::from_secs_f64(t));
        }
        let args = args.unwrap_or_else(|| json!({}));
        let outcome = if cast == Some(true) {
            rpc::cast(ctx, &target, &method, args).map(|()| Value::Null)
        } else {
            rpc::call::<Value>(ctx, &target, &method, args)
        };
        match outcome {
            Ok(v) => json!({"ok": v}),
            Err(e) => json!({"error": {
                "kind": format!("{:?}", e.kind),
                "type": e.type_name,
                "module": e.module,
                "message": e.message,
            }}),
        }
    }
}
