//! Guests built as WebAssembly components against the WIT world `wasmrpc:endpoint/endpoint`
//! (wit/endpoint.wit): one instance of such a guest and the mechanics of a call.
//!
//! A component serves exactly like a core module (same manifest, limits, instance modes,
//! cache, errors); only what crosses the boundary differs: `describe` and `call` take and give
//! JSON text as component-model strings instead of buffers in the guest's memory, and a
//! declared failure is the world's `remote-error` record instead of `{"error": ...}`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use wasmrpc_abi::GuestError;
use wasmtime::Store;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentType, InstancePre, Lift, TypedFunc};

use super::error::{EngineError, ModuleProblem};
use super::instance::{Failure, classify, is_trap};
use super::stats::LiveInstance;
use super::store::{GuestInfo, StoreState, WasiP2, new_store, reset_for_call, sandbox_p2};

/// The world a component must implement, for messages.
pub(crate) const WORLD: &str = "wasmrpc:endpoint/endpoint@1.0.0";

/// The exports the world requires, with their WIT signatures for messages.
const REQUIRED_EXPORTS: &[(&str, &str)] = &[
    ("describe", "func() -> string"),
    ("call", "func(method: string, context: string, args: string) -> result<string, remote-error>"),
];

/// Whether `bytes` is a component rather than a core module. Both start with `\0asm`; the
/// 16-bit layer field after the version is 0 for a core module and 1 for a component (the
/// component-model binary format), so the manifest's one `module` field serves both kinds.
#[must_use]
pub(crate) fn is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[6..8] == [1, 0]
}

/// The world's `remote-error` record.
#[derive(ComponentType, Lift, Debug)]
#[component(record)]
struct RemoteError {
    #[component(name = "exc-type")]
    exc_type: String,
    message: String,
    module: Option<String>,
    traceback: Vec<String>,
    args: Option<String>,
    details: Option<String>,
}

impl RemoteError {
    /// The same failure an ABI v1 guest declares with `{"error": ...}`; `args` and `details`
    /// travel as JSON text, and text that is not JSON breaks the contract.
    fn into_guest_error(self) -> Result<GuestError, Failure> {
        let json = |field: &str, text: Option<String>| -> Result<Option<Value>, Failure> {
            text.map(|t| serde_json::from_str(&t))
                .transpose()
                .map_err(|e| Failure::Abi(format!("remote-error.{field} is not JSON text ({e})")))
        };
        let args = match json("args", self.args)? {
            None => None,
            Some(Value::Array(args)) => Some(args),
            Some(_) => return Err(Failure::Abi("remote-error.args is not a JSON array".into())),
        };
        Ok(GuestError {
            type_name: self.exc_type,
            message: self.message,
            module: self.module,
            details: json("details", self.details)?,
            traceback: self.traceback,
            args,
        })
    }
}

type DescribeFn = TypedFunc<(), (String,)>;
type CallFn = TypedFunc<(String, String, String), (Result<String, RemoteError>,)>;

/// A compiled component with its imports resolved, and what every store of its endpoint
/// shares: everything needed to make instances of it.
pub(crate) struct PreparedComponent {
    pub engine: wasmtime::Engine,
    pub pre: InstancePre<StoreState<WasiP2>>,
    pub guest: Arc<GuestInfo>,
    /// One epoch tick: how far past its deadline a call may run before its timer drops it.
    pub tick: Duration,
    /// Keeps the shared component registered while this plugin lives.
    pub _module: Arc<super::SharedModule>,
}

/// An instance of a component with its own store: serves one call (fresh mode) or several
/// (warm mode, what CPython wants: it starts in about a millisecond, a warm call costs µs).
pub(crate) struct ComponentInstance {
    store: Store<StoreState<WasiP2>>,
    describe: DescribeFn,
    call: CallFn,
    /// Calls served so far (warm mode retires an instance after its quota).
    pub invocations: u64,
    /// Counts this instance in its endpoint's `instances_live`.
    _live: LiveInstance,
}

impl ComponentInstance {
    /// Instantiates the component (running its start code, e.g. CPython's snapshot restore)
    /// under the given deadline.
    pub async fn new(t: &PreparedComponent, deadline: Instant, budget: Duration) -> Result<ComponentInstance, Failure> {
        let wasi = sandbox_p2(&t.guest).map_err(|e| Failure::Setup(EngineError(e)))?;
        let mut store = new_store(&t.engine, &t.guest, deadline, wasi);
        reset_for_call(&mut store, deadline, budget, u64::MAX).map_err(|e| Failure::Setup(EngineError(e)))?;
        let instance = match t.pre.instantiate_async(&mut store).await {
            Ok(i) => i,
            Err(e) if is_trap(&e) || store.data().deadline_hit => return Err(classify(Some(store.data()), e)),
            // Not the guest's doing: typically every slot of the instance pool is in use.
            Err(e) => return Err(Failure::Setup(EngineError(e))),
        };
        let describe = instance
            .get_typed_func::<(), (String,)>(&mut store, "describe")
            .map_err(|e| Failure::Abi(format!("`describe` does not match the world {WORLD}: {e}")))?;
        let call = instance
            .get_typed_func::<(String, String, String), (Result<String, RemoteError>,)>(&mut store, "call")
            .map_err(|e| Failure::Abi(format!("`call` does not match the world {WORLD}: {e}")))?;
        Ok(ComponentInstance {
            _live: LiveInstance::new(&store.data().guest.stats),
            store,
            describe,
            call,
            invocations: 0,
        })
    }

    /// `describe()`, the description's JSON text.
    pub async fn describe(&mut self) -> Result<String, Failure> {
        let (text,) =
            self.describe.call_async(&mut self.store, ()).await.map_err(|e| classify(Some(self.store.data()), e))?;
        Ok(text)
    }

    /// One call: `call(method, context, args)`, the result parsed.
    pub async fn invoke(
        &mut self,
        method: String,
        context: String,
        args: String,
        deadline: Instant,
        budget: Duration,
        fuel: Option<u64>,
    ) -> Result<Result<Value, GuestError>, Failure> {
        let fuel = fuel.unwrap_or(u64::MAX);
        reset_for_call(&mut self.store, deadline, budget, fuel).map_err(|e| classify(Some(self.store.data()), e))?;
        self.invocations += 1;
        let outcome = self.call.call_async(&mut self.store, (method, context, args)).await;
        // Counted whatever the outcome: a trapped call burned its fuel too.
        let burned = fuel.saturating_sub(self.store.get_fuel().unwrap_or(fuel));
        let state = self.store.data();
        state.guest.stats.record_call(burned, state.limiter.largest);
        match outcome.map_err(|e| classify(Some(state), e))? {
            (Ok(text),) => serde_json::from_str(&text)
                .map(Ok)
                .map_err(|e| Failure::Abi(format!("`call` returned text that is not JSON ({e})"))),
            (Err(remote),) => Ok(Err(remote.into_guest_error()?)),
        }
    }
}

/// Checks that the component exports what the world requires, naming what is missing.
/// (The exports' exact types are checked when the probe instance looks them up.)
pub(crate) fn check_exports(component: &Component, engine: &wasmtime::Engine) -> Result<(), ModuleProblem> {
    let ty = component.component_type();
    let missing: Vec<String> = REQUIRED_EXPORTS
        .iter()
        .filter(|(name, _)| {
            !ty.exports(engine)
                .any(|(export, item)| export == *name && matches!(item.ty, ComponentItem::ComponentFunc(_)))
        })
        .map(|(name, signature)| format!("`{name}` ({signature})"))
        .collect();
    if missing.is_empty() { Ok(()) } else { Err(ModuleProblem::MissingWorldExports(missing)) }
}
