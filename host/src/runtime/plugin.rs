//! A loaded endpoint, core module or component: compiled once, instantiated per call (or
//! reused warm).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use serde_json::{Map, Value};
use wasmrpc_abi::{Description, GuestError};

use super::error::{CallError, GuestTrap};
use super::guest::{Encoded, GuestKind, Instance, Prepared};
use super::instance::{Failure, deadline_failure, humanize};
use crate::manifest::{InstanceMode, Limits};

/// A module ready to serve calls. Cloning is cheap; in-flight calls keep the module alive
/// after a reload replaces it.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<Inner>,
}

struct Inner {
    module: Prepared,
    description: Description,
    methods: HashSet<String>,
    sha256: String,
    module_path: PathBuf,
    mode: InstanceMode,
    limits: Limits,
    /// Idle warm instances. A std mutex: it is held only to push or pop, never across an await.
    warm: Mutex<Vec<Instance>>,
    /// Idle warm instances kept; more are dropped, returning their pool slots.
    max_idle: usize,
    loaded_at: SystemTime,
    load_time: Duration,
    compiled: super::Compiled,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("name", &self.name()).field("sha256", &self.inner.sha256).finish_non_exhaustive()
    }
}

/// The JSON the guest receives.
#[derive(Serialize)]
struct Request<'a, C: ?Sized> {
    method: &'a str,
    args: &'a Map<String, Value>,
    context: &'a C,
}

/// What `Runtime::load` hands over to build a [`Plugin`].
pub(crate) struct Parts {
    pub module: Prepared,
    pub description: Description,
    pub sha256: String,
    pub module_path: PathBuf,
    pub mode: InstanceMode,
    pub limits: Limits,
    pub max_idle: usize,
    pub load_time: Duration,
    pub compiled: super::Compiled,
}

impl Plugin {
    pub(crate) fn new(p: Parts) -> Plugin {
        let methods = p.description.methods.iter().map(|m| m.name.clone()).collect();
        Plugin {
            inner: Arc::new(Inner {
                module: p.module,
                methods,
                description: p.description,
                sha256: p.sha256,
                module_path: p.module_path,
                mode: p.mode,
                limits: p.limits,
                warm: Mutex::new(Vec::new()),
                max_idle: p.max_idle,
                loaded_at: SystemTime::now(),
                load_time: p.load_time,
                compiled: p.compiled,
            }),
        }
    }

    /// The endpoint's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.inner.module.guest().name
    }

    /// Whether it is a core module (ABI v1) or a component (the WIT world).
    #[must_use]
    pub fn kind(&self) -> GuestKind {
        self.inner.module.kind()
    }

    /// Hex sha256 of the module file.
    #[must_use]
    pub fn sha256(&self) -> &str {
        &self.inner.sha256
    }

    /// The module file.
    #[must_use]
    pub fn module_path(&self) -> &Path {
        &self.inner.module_path
    }

    /// What the module's `wasmrpc_describe` reported.
    #[must_use]
    pub fn description(&self) -> &Description {
        &self.inner.description
    }

    /// Whether the module has a callable method of this name.
    #[must_use]
    pub fn has_method(&self, method: &str) -> bool {
        self.inner.methods.contains(method)
    }

    /// The instance mode.
    #[must_use]
    pub fn mode(&self) -> InstanceMode {
        self.inner.mode
    }

    /// The limits.
    #[must_use]
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// What its guests have used so far (shared with every load of this endpoint that was
    /// given the same counters).
    #[must_use]
    pub fn stats(&self) -> super::GuestStatsSnapshot {
        self.inner.module.guest().stats.snapshot()
    }

    /// When the module was loaded.
    #[must_use]
    pub fn loaded_at(&self) -> SystemTime {
        self.inner.loaded_at
    }

    /// How long loading took (reading, compiling or fetching from the cache, checking).
    #[must_use]
    pub fn load_time(&self) -> Duration {
        self.inner.load_time
    }

    /// Whether loading compiled the module or found it in the cache.
    #[must_use]
    pub fn compiled(&self) -> super::Compiled {
        self.inner.compiled
    }

    /// Calls `method`. The call stops at the manifest's deadline or at `caller_deadline`,
    /// whichever comes first. A trap discards the instance; the next call gets a fresh one.
    /// `context` is anything that encodes as a JSON object.
    pub async fn call(
        &self,
        method: &str,
        args: &Map<String, Value>,
        context: &(impl Serialize + ?Sized),
        caller_deadline: Option<Instant>,
    ) -> Result<Value, CallError> {
        let encode_error = |e: serde_json::Error| self.host_error(method, e.to_string());
        let call = match self.kind() {
            GuestKind::Module => {
                Encoded::Module(serde_json::to_vec(&Request { method, args, context }).map_err(encode_error)?)
            }
            GuestKind::Component => Encoded::Component {
                method: method.to_owned(),
                context: serde_json::to_string(context).map_err(encode_error)?,
                args: serde_json::to_string(args).map_err(encode_error)?,
            },
        };
        self.run(method, call, caller_deadline).await?.map_err(CallError::Guest)
    }

    /// Runs one encoded call on an idle warm instance or a new one.
    async fn run(
        &self,
        method: &str,
        call: Encoded,
        caller_deadline: Option<Instant>,
    ) -> Result<Result<Value, GuestError>, CallError> {
        let inner = &self.inner;
        let now = Instant::now();
        let mut budget = inner.limits.deadline;
        if let Some(d) = caller_deadline {
            budget = budget.min(d.saturating_duration_since(now));
        }
        let deadline = now + budget;
        let warm = match inner.mode {
            InstanceMode::Fresh => None,
            InstanceMode::Warm { max_invocations } => Some(max_invocations),
        };
        let idle = if warm.is_some() { inner.warm.lock().unwrap_or_else(|p| p.into_inner()).pop() } else { None };
        let run = async {
            let mut instance = match idle {
                Some(instance) => instance,
                None => Instance::new(&inner.module, deadline, budget).await?,
            };
            let out = instance.invoke(call, deadline, budget, inner.limits.fuel, warm.is_some()).await?;
            Ok((instance, out))
        };
        // The epoch stops a guest running wasm at its deadline; this timer stops one waiting in
        // an import (a WASI sleep, an outbound call), one tick later so the epoch's own trap
        // wins the race for a running guest.
        let outcome = match tokio::time::timeout_at((deadline + inner.module.tick()).into(), run).await {
            Ok(outcome) => outcome,
            Err(_) => Err(deadline_failure(budget)),
        };
        match outcome {
            Ok((instance, out)) => {
                if let Some(max) = warm
                    && instance.invocations() < max
                {
                    let mut idle = inner.warm.lock().unwrap_or_else(|p| p.into_inner());
                    if idle.len() < inner.max_idle {
                        idle.push(instance);
                    }
                }
                Ok(out)
            }
            // The instance is dropped with the failed call: after a trap (or a call stopped
            // mid-way) its state cannot be trusted.
            Err(f) => Err(self.failure(method, f)),
        }
    }

    fn failure(&self, method: &str, f: Failure) -> CallError {
        let endpoint = self.name().to_owned();
        let method = method.to_owned();
        match f {
            Failure::Trap(trap) => {
                let GuestTrap { kind, message, error } = trap;
                tracing::warn!(endpoint = %endpoint, method = %method, trap = %kind, "call trapped: {message}");
                tracing::debug!(endpoint = %endpoint, method = %method, "trap details: {:?}", error.0);
                CallError::Trap { endpoint, method, kind, message }
            }
            Failure::Abi(detail) => CallError::Abi { endpoint, method, detail },
            Failure::Setup(error) => CallError::Host { endpoint, method, detail: error.to_string() },
        }
    }

    fn host_error(&self, method: &str, detail: String) -> CallError {
        CallError::Host { endpoint: self.name().to_owned(), method: method.to_owned(), detail }
    }

    /// The deadline budget as text, for messages.
    #[must_use]
    pub fn deadline_text(&self) -> String {
        humanize(self.inner.limits.deadline)
    }
}
