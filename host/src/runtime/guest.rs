//! The two kinds of guest behind one [`super::Plugin`]: ABI v1 core modules (instance.rs) and
//! WIT components (component.rs). The manifest, limits, cache, reload and errors are shared;
//! only instantiation and the mechanics of a call differ, and they are dispatched here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use wasmrpc_abi::{CallResponse, GuestError};

use super::component::{ComponentInstance, PreparedComponent};
use super::instance::{Failure, GuestInstance, PreparedModule};
use super::store::GuestInfo;

/// Which kind of WebAssembly binary an endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestKind {
    /// A core module speaking ABI v1 (docs/abi.md).
    Module,
    /// A component implementing the WIT world `wasmrpc:endpoint/endpoint` (wit/endpoint.wit).
    Component,
}

impl std::fmt::Display for GuestKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GuestKind::Module => "module",
            GuestKind::Component => "component",
        })
    }
}

/// A compiled guest, ready to make instances.
pub(crate) enum Prepared {
    Module(PreparedModule),
    Component(PreparedComponent),
}

impl Prepared {
    pub fn guest(&self) -> &Arc<GuestInfo> {
        match self {
            Prepared::Module(m) => &m.guest,
            Prepared::Component(c) => &c.guest,
        }
    }

    pub fn tick(&self) -> Duration {
        match self {
            Prepared::Module(m) => m.tick,
            Prepared::Component(c) => c.tick,
        }
    }

    pub fn kind(&self) -> GuestKind {
        match self {
            Prepared::Module(_) => GuestKind::Module,
            Prepared::Component(_) => GuestKind::Component,
        }
    }
}

/// One call, encoded for the kind of guest that runs it: ABI v1 takes one JSON request, the
/// world takes the method, the context and the arguments apart.
pub(crate) enum Encoded {
    Module(Vec<u8>),
    Component { method: String, context: String, args: String },
}

/// An instance of either kind.
pub(crate) enum Instance {
    Module(GuestInstance),
    Component(ComponentInstance),
}

impl Instance {
    /// Instantiates `prepared` under the given deadline.
    pub async fn new(prepared: &Prepared, deadline: Instant, budget: Duration) -> Result<Instance, Failure> {
        Ok(match prepared {
            Prepared::Module(m) => Instance::Module(GuestInstance::new(m, deadline, budget).await?),
            Prepared::Component(c) => Instance::Component(ComponentInstance::new(c, deadline, budget).await?),
        })
    }

    /// Calls served so far.
    pub fn invocations(&self) -> u64 {
        match self {
            Instance::Module(i) => i.invocations,
            Instance::Component(i) => i.invocations,
        }
    }

    /// Runs one call: the method's value, or the failure the guest declared. With `release`
    /// (warm mode), an ABI v1 guest gets its response buffer back.
    pub async fn invoke(
        &mut self,
        call: Encoded,
        deadline: Instant,
        budget: Duration,
        fuel: Option<u64>,
        release: bool,
    ) -> Result<Result<Value, GuestError>, Failure> {
        match (self, call) {
            (Instance::Module(i), Encoded::Module(request)) => {
                let out = i.invoke(&request, deadline, budget, fuel, release).await?;
                match serde_json::from_slice::<CallResponse>(&out) {
                    Ok(CallResponse::Ok(value)) => Ok(Ok(value)),
                    Ok(CallResponse::Error(e)) => Ok(Err(e)),
                    Err(e) => Err(Failure::Abi(format!("unreadable response ({e})"))),
                }
            }
            (Instance::Component(i), Encoded::Component { method, context, args }) => {
                i.invoke(method, context, args, deadline, budget, fuel).await
            }
            // Plugin encodes for its own kind; this is a host bug, reported, never a panic.
            _ => Err(Failure::Abi("the call was encoded for the other kind of guest".into())),
        }
    }
}
