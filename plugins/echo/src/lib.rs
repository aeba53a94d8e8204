//! Echoes what it is given: values, the request context, and where it runs. `sleep` holds a
//! call for a while (for call-monitor heartbeats, draining and concurrency tests), `count`
//! keeps state between calls (visible in warm-reuse mode), and `_secret` is private: callers
//! must get `NoSuchMethod`.

use std::time::Duration;

use serde_json::{Value, json};
use wasmrpc_guest::{Context, Notifier, RemoteError, endpoint, info};

#[derive(Default)]
pub struct Echo {
    calls: u64,
}

#[endpoint(version = "1.3")]
impl Echo {
    pub fn echo(&self, _ctx: &Context, value: Value) -> Value {
        value
    }

    pub fn context(&self, ctx: &Context) -> Context {
        ctx.clone()
    }

    /// `WASMRPC_INSTANCE` from the environment the manifest grants, or null.
    pub fn whoami(&self, _ctx: &Context) -> Option<String> {
        std::env::var("WASMRPC_INSTANCE").ok()
    }

    pub fn sleep(&self, _ctx: &Context, seconds: f64) -> f64 {
        info!("sleeping {seconds} s");
        std::thread::sleep(Duration::from_secs_f64(seconds));
        seconds
    }

    pub fn count(&mut self, _ctx: &Context) -> u64 {
        self.calls += 1;
        self.calls
    }

    pub fn fail(&self, _ctx: &Context, kind: String, message: String) -> Result<Value, RemoteError> {
        Err(RemoteError::new(kind, message).with_details(json!({"code": 42})))
    }

    pub fn print(&self, _ctx: &Context, line: String) -> bool {
        println!("{line}");
        eprintln!("{line} (stderr)");
        true
    }

    /// Emits a notification at `priority` while handling the call; a denied event type is an
    /// error (`NotifyError`) the caller sees.
    pub fn notify(
        &self,
        ctx: &Context,
        event_type: String,
        payload: Value,
        priority: Option<String>,
    ) -> Result<bool, RemoteError> {
        let n = Notifier;
        let sent = match priority.as_deref().unwrap_or("info") {
            "audit" => n.audit(ctx, &event_type, payload),
            "warn" => n.warn(ctx, &event_type, payload),
            "error" => n.error(ctx, &event_type, payload),
            "critical" => n.critical(ctx, &event_type, payload),
            "debug" => n.debug(ctx, &event_type, payload),
            "sample" => n.sample(ctx, &event_type, payload),
            _ => n.info(ctx, &event_type, payload),
        };
        sent.map(|()| true).map_err(|e| RemoteError::new("NotifyError", e.to_string()))
    }

    /// Traps (for tests of what happens to an instance after a trap).
    pub fn abort(&self, _ctx: &Context) -> bool {
        std::process::abort()
    }

    pub fn _secret(&self, _ctx: &Context) -> &'static str {
        "private methods are never callable"
    }
}
