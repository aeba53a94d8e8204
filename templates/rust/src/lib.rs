//! The `{{name}}` endpoint. Every `pub fn` of the `#[endpoint]` block is an RPC method that
//! oslo.messaging callers reach by name on topic `{{name}}`, with keyword arguments named as
//! the parameters are.

use serde::Serialize;
use wasmrpc_guest::{Context, RemoteError, endpoint, info};

pub struct {{type_name}} {
    greeting: String,
    calls: u64,
}

/// What `stats` returns: any `Serialize` type is a result.
#[derive(Serialize)]
pub struct Stats {
    calls: u64,
    greeting: String,
}

#[endpoint(version = "1.0")]
impl {{type_name}} {
    /// Makes the endpoint value when an instance handles its first call. By default every call
    /// gets a fresh instance; with `[instance] mode = "warm"` in the manifest, an instance and
    /// this value serve many calls.
    fn new() -> Self {
        let greeting = std::env::var("GREETING").unwrap_or_else(|_| "Hello".to_owned());
        {{type_name}} { greeting, calls: 0 }
    }

    /// `greet(name="world")` returns "Hello, world!".
    pub fn greet(&mut self, name: String) -> Result<String, RemoteError> {
        self.calls += 1;
        if name.is_empty() {
            // A Python caller gets a ValueError.
            return Err(RemoteError::new("ValueError", "name is empty").with_module("builtins"));
        }
        Ok(format!("{}, {name}!", self.greeting))
    }

    /// The caller's user, from the request context oslo.messaging sends with every call.
    pub fn whoami(&mut self, ctx: &Context) -> Option<String> {
        self.calls += 1;
        info!("whoami from request {}", ctx.request_id().unwrap_or("-"));
        ctx.user().map(str::to_owned)
    }

    /// Calls this instance has handled.
    pub fn stats(&self) -> Stats {
        Stats {
            calls: self.calls,
            greeting: self.greeting.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greets_by_name_and_refuses_an_empty_one() {
        let mut endpoint = {{type_name}}::new();
        let greeting = endpoint.greet("world".into()).unwrap();
        assert!(greeting.ends_with(", world!"), "{greeting}");
        let error = endpoint.greet(String::new()).unwrap_err();
        assert_eq!(error.type_name(), "ValueError");
        assert_eq!(endpoint.stats().calls, 2);
    }
}
