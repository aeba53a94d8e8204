//! The control endpoint every host serves on its own topic (default `wasmrpc`, and
//! `wasmrpc.<server>` for one host): namespace `control`, version `2.0`.
//!
//! - `ping()` → `"pong"`
//! - `list_endpoints()` → every loaded endpoint: name, target, namespace, version, methods,
//!   module sha256, instance mode, limits, `[config]` keys (each with whether it is secret, never
//!   a value), when it was loaded (paths relative to the manifest directory: callers learn no
//!   absolute paths)
//! - `stop()` → asks the host to shut down (it drains in-flight calls first) and returns `true`;
//!   only with `allow_remote_stop` (anyone who can publish on the vhost can call it), otherwise
//!   `NoSuchMethod`, as oslo answers a method it does not have

use std::path::Path;
use std::sync::Weak;
use std::time::Instant;

use serde_json::{Map, Value, json};

use super::{Inner, read};
use crate::manifest::{InstanceMode, Role};
use crate::protocol::{RemoteFailure, Version};
use crate::rpc::{CallContext, Endpoint, EndpointTarget};

/// The control endpoint's namespace.
pub const CONTROL_NAMESPACE: &str = "control";
/// The control endpoint's version.
pub const CONTROL_VERSION: Version = Version::new(2, 0);

const METHODS: &[&str] = &["ping", "list_endpoints"];

#[derive(Debug)]
pub(super) struct ControlEndpoint {
    host: Weak<Inner>,
    target: EndpointTarget,
    allow_stop: bool,
}

impl ControlEndpoint {
    pub(super) fn new(host: Weak<Inner>, allow_stop: bool) -> ControlEndpoint {
        ControlEndpoint {
            host,
            allow_stop,
            target: EndpointTarget {
                namespace: Some(CONTROL_NAMESPACE.into()),
                legacy_namespaces: Vec::new(),
                version: CONTROL_VERSION,
            },
        }
    }
}

#[async_trait::async_trait]
impl Endpoint for ControlEndpoint {
    fn name(&self) -> &str {
        "control"
    }

    fn target(&self) -> &EndpointTarget {
        &self.target
    }

    fn has_method(&self, method: &str) -> bool {
        METHODS.contains(&method) || (self.allow_stop && method == "stop")
    }

    async fn invoke(
        &self,
        method: &str,
        args: Map<String, Value>,
        _ctx: &CallContext,
        _deadline: Option<Instant>,
    ) -> Result<Value, RemoteFailure> {
        if let Some(unexpected) = args.keys().next() {
            return Err(RemoteFailure::new(
                "TypeError",
                "builtins",
                &format!("{method}() got an unexpected keyword argument '{unexpected}'"),
            ));
        }
        let host = self.host.upgrade().ok_or_else(|| {
            RemoteFailure::new("HostStopping", super::wasm_endpoint::ERRORS_MODULE, "the host is shutting down")
        })?;
        match method {
            "ping" => Ok(json!("pong")),
            "list_endpoints" => Ok(Value::Array(host.endpoint_listing())),
            "stop" if self.allow_stop => {
                tracing::info!("stop requested through the control endpoint");
                host.shutdown.cancel();
                Ok(json!(true))
            }
            other => Err(crate::rpc::no_such_method(other)),
        }
    }
}

impl Inner {
    /// What `list_endpoints` returns: every loaded endpoint, in manifest-file order.
    pub(super) fn endpoint_listing(&self) -> Vec<Value> {
        read(&self.endpoints)
            .iter()
            .map(|l| {
                let spec = &l.spec;
                let plugin = l.plugin();
                let target = spec.rpc_target();
                let methods: Vec<&str> =
                    plugin.description().methods.iter().map(|m| m.name.as_str()).filter(|m| !m.starts_with('_')).collect();
                let (mode, max_invocations) = match spec.instance {
                    InstanceMode::Fresh => ("fresh", None),
                    InstanceMode::Warm { max_invocations } => ("warm", Some(max_invocations)),
                };
                let listener = match &spec.role {
                    Role::Listener(ls) => json!({
                        "targets": ls.targets.iter().map(|(e, t)| json!({"exchange": e, "topic": t})).collect::<Vec<_>>(),
                        "pool": ls.pool,
                        "allow_requeue": ls.allow_requeue,
                    }),
                    Role::Rpc(_) => Value::Null,
                };
                json!({
                    "name": spec.name,
                    "role": if listener.is_null() { "rpc" } else { "listener" },
                    "listener": listener,
                    "manifest": self.shown_path(&spec.manifest_path),
                    "module": self.shown_path(&spec.module_path),
                    "sha256": plugin.sha256(),
                    "topic": target.map(|t| t.topic.clone()),
                    "server": target.map(|t| t.server.clone().unwrap_or_else(|| self.config.server.clone())),
                    "exchange": target.map(|t| t.exchange.clone().unwrap_or_else(|| self.transport.control_exchange().to_owned())),
                    "namespace": target.and_then(|t| t.namespace.clone()),
                    "version": target.map(|t| t.version.to_string()),
                    "methods": methods,
                    "instance_mode": mode,
                    "max_invocations": max_invocations,
                    "max_concurrency": spec.max_concurrency,
                    "limits": {
                        "memory": spec.limits.memory,
                        "deadline": spec.limits.deadline.as_secs_f64(),
                        "fuel": spec.limits.fuel,
                    },
                    // Keys only: a value, secret or not, is the guest's to read, not every caller's.
                    "config": spec.config.iter().map(|c| json!({"key": c.key, "secret": c.secret})).collect::<Vec<_>>(),
                    "loaded_at": rfc3339(plugin.loaded_at()),
                    "load_ms": plugin.load_time().as_secs_f64() * 1000.0,
                })
            })
            .collect()
    }
}

impl Inner {
    /// A path as `list_endpoints` shows it: relative to the manifest directory, or only its file
    /// name when it lies elsewhere; where the host's files live is no caller's business.
    pub(super) fn shown_path(&self, path: &Path) -> String {
        let dir = &self.config.manifests;
        let relative = path.strip_prefix(dir).map(Path::to_owned).ok().or_else(|| {
            let (path, dir) = (std::fs::canonicalize(path).ok()?, std::fs::canonicalize(dir).ok()?);
            path.strip_prefix(dir).map(Path::to_owned).ok()
        });
        match relative {
            Some(r) if !r.as_os_str().is_empty() => r.display().to_string(),
            _ => path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        }
    }
}

fn rfc3339(t: std::time::SystemTime) -> String {
    time::OffsetDateTime::from(t).format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}
