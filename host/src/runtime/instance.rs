//! One instance of a guest module and the mechanics of a call through the ABI.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmrpc_abi::unpack;
use wasmtime::{Extern, Instance, InstancePre, Memory, ModuleExport, Store, Trap, TypedFunc, WasmParams, WasmResults};

use super::error::{DeadlineExceeded, EngineError, GuestTrap, MemoryLimitExceeded, TrapKind};
use super::stats::LiveInstance;
use super::store::{GuestInfo, StoreState, new_store, reset_for_call, sandbox_p1};

/// Largest response read back from a guest (its memory limit bounds it anyway).
const MAX_RESPONSE: u32 = 256 << 20;

/// Export handles resolved once per module, so instances skip string lookups.
#[derive(Clone)]
pub(crate) struct Exports {
    pub memory: ModuleExport,
    pub abi_version: ModuleExport,
    pub alloc: ModuleExport,
    pub dealloc: ModuleExport,
    pub describe: ModuleExport,
    pub call: ModuleExport,
}

/// A compiled module with its imports resolved (wasmtime's `InstancePre`) and what every store
/// of its endpoint shares: everything needed to make instances of it.
pub(crate) struct PreparedModule {
    pub engine: wasmtime::Engine,
    pub pre: InstancePre<StoreState>,
    pub exports: Exports,
    pub guest: Arc<GuestInfo>,
    /// One epoch tick: how far past its deadline a call may run before its timer drops it.
    pub tick: Duration,
    /// Keeps the shared module registered while this plugin lives.
    pub _module: Arc<super::SharedModule>,
}

/// An instance of a guest module with its own store: serves one call (fresh mode) or several
/// (warm mode).
///
/// Only the exports every call uses are resolved when the instance is made: checking a
/// function's type goes through the engine's type registry (a lock and reference counts), and
/// a fresh instance serves one call, so the others are looked up when first needed.
pub(crate) struct GuestInstance {
    pub store: Store<StoreState>,
    instance: Instance,
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    call: TypedFunc<(i32, i32), i64>,
    /// `wasmrpc_dealloc`, once a warm call has handed a buffer back.
    dealloc: Option<TypedFunc<(i32, i32), ()>>,
    dealloc_export: ModuleExport,
    /// Calls served so far (warm mode retires an instance after its quota).
    pub invocations: u64,
    /// Counts this instance in its endpoint's `instances_live`.
    _live: LiveInstance,
}

/// Why a call into an instance failed.
pub(crate) enum Failure {
    /// The guest trapped; the instance must be discarded.
    Trap(GuestTrap),
    /// The guest returned a buffer the host cannot read.
    Abi(String),
    /// The host could not set up an instance (sandbox, instance pool).
    Setup(EngineError),
}

impl GuestInstance {
    /// Instantiates the module. Instantiation runs under the given deadline too.
    pub async fn new(t: &PreparedModule, deadline: Instant, budget: Duration) -> Result<GuestInstance, Failure> {
        let wasi = sandbox_p1(&t.guest).map_err(|e| Failure::Setup(EngineError(e)))?;
        let mut store = new_store(&t.engine, &t.guest, deadline, wasi);
        reset_for_call(&mut store, deadline, budget, u64::MAX).map_err(|e| Failure::Setup(EngineError(e)))?;
        let instance = match t.pre.instantiate_async(&mut store).await {
            Ok(i) => i,
            Err(e) if is_trap(&e) || store.data().deadline_hit => {
                return Err(classify(Some(store.data()), e));
            }
            // Not the guest's doing: typically every slot of the instance pool is in use.
            Err(e) => return Err(Failure::Setup(EngineError(e))),
        };
        let e = &t.exports;
        let memory = match instance.get_module_export(&mut store, &e.memory) {
            Some(Extern::Memory(m)) => m,
            _ => return Err(Failure::Abi("`memory` is not a memory".into())),
        };
        Ok(GuestInstance {
            alloc: typed_func(&mut store, instance, &e.alloc, "wasmrpc_alloc")?,
            call: typed_func(&mut store, instance, &e.call, "wasmrpc_call")?,
            dealloc: None,
            dealloc_export: e.dealloc,
            instance,
            memory,
            _live: LiveInstance::new(&store.data().guest.stats),
            store,
            invocations: 0,
        })
    }

    /// `wasmrpc_abi_version()`.
    pub async fn abi_version(&mut self, exports: &Exports) -> Result<i32, Failure> {
        let f: TypedFunc<(), i32> =
            typed_func(&mut self.store, self.instance, &exports.abi_version, "wasmrpc_abi_version")?;
        f.call_async(&mut self.store, ()).await.map_err(|e| classify(Some(self.store.data()), e))
    }

    /// `wasmrpc_describe()`, returning the raw JSON.
    pub async fn describe(&mut self, exports: &Exports) -> Result<Vec<u8>, Failure> {
        let f: TypedFunc<(), i64> = typed_func(&mut self.store, self.instance, &exports.describe, "wasmrpc_describe")?;
        let packed = f.call_async(&mut self.store, ()).await.map_err(|e| classify(Some(self.store.data()), e))?;
        self.take_buffer(packed as u64, true).await
    }

    /// One call: writes `request`, runs `wasmrpc_call`, reads the response. With `release`,
    /// the response buffer is handed back to the guest (warm instances live on; a fresh
    /// instance is dropped whole, so it skips that call).
    pub async fn invoke(
        &mut self,
        request: &[u8],
        deadline: Instant,
        budget: Duration,
        fuel: Option<u64>,
        release: bool,
    ) -> Result<Vec<u8>, Failure> {
        let fuel = fuel.unwrap_or(u64::MAX);
        reset_for_call(&mut self.store, deadline, budget, fuel).map_err(|e| classify(Some(self.store.data()), e))?;
        self.invocations += 1;
        let outcome = self.run_call(request, release).await;
        // Counted whatever the outcome: a trapped call burned its fuel too.
        let burned = fuel.saturating_sub(self.store.get_fuel().unwrap_or(fuel));
        self.store.data().guest.stats.record_call(burned, self.memory.data_size(&self.store));
        outcome
    }

    async fn run_call(&mut self, request: &[u8], release: bool) -> Result<Vec<u8>, Failure> {
        let len = i32::try_from(request.len()).map_err(|_| Failure::Abi("request larger than 2 GiB".into()))?;
        let ptr =
            self.alloc.call_async(&mut self.store, len).await.map_err(|e| classify(Some(self.store.data()), e))?;
        if ptr == 0 && len > 0 {
            return Err(Failure::Abi("wasmrpc_alloc returned 0".into()));
        }
        self.memory
            .write(&mut self.store, ptr as u32 as usize, request)
            .map_err(|_| Failure::Abi("wasmrpc_alloc returned a buffer outside memory".into()))?;
        let packed = self
            .call
            .call_async(&mut self.store, (ptr, len))
            .await
            .map_err(|e| classify(Some(self.store.data()), e))?;
        self.take_buffer(packed as u64, release).await
    }

    async fn take_buffer(&mut self, packed: u64, release: bool) -> Result<Vec<u8>, Failure> {
        let (ptr, len) = unpack(packed);
        if len > MAX_RESPONSE {
            return Err(Failure::Abi(format!("response of {len} bytes is over the {MAX_RESPONSE}-byte limit")));
        }
        let out = self
            .memory
            .data(&self.store)
            .get(ptr as usize..ptr as usize + len as usize)
            .ok_or_else(|| Failure::Abi(format!("response buffer {ptr:#x}+{len} lies outside memory")))?
            .to_vec();
        if release {
            let dealloc = match &self.dealloc {
                Some(f) => f.clone(),
                None => {
                    let f = typed_func(&mut self.store, self.instance, &self.dealloc_export, "wasmrpc_dealloc")?;
                    self.dealloc.insert(f).clone()
                }
            };
            dealloc
                .call_async(&mut self.store, (ptr as i32, len as i32))
                .await
                .map_err(|e| classify(Some(self.store.data()), e))?;
        }
        Ok(out)
    }
}

/// The exported function `name` of `instance`, checked against the ABI's signature.
fn typed_func<P: WasmParams, R: WasmResults>(
    store: &mut Store<StoreState>,
    instance: Instance,
    export: &ModuleExport,
    name: &str,
) -> Result<TypedFunc<P, R>, Failure> {
    instance
        .get_module_export(&mut *store, export)
        .and_then(Extern::into_func)
        .ok_or_else(|| Failure::Abi(format!("`{name}` is not a function")))?
        .typed(&*store)
        .map_err(|err| Failure::Abi(format!("`{name}` has the wrong signature: {err}")))
}

/// The failure of a call its timer stopped: the epoch only interrupts a guest that is running
/// wasm, so a guest waiting in an import (a WASI sleep, an outbound call) is stopped by dropping
/// the call's future at its deadline plus one tick. The instance goes with it.
pub(crate) fn deadline_failure(budget: Duration) -> Failure {
    Failure::Trap(GuestTrap {
        kind: TrapKind::Deadline,
        message: format!("stopped after its deadline of {}", humanize(budget)),
        error: EngineError(DeadlineExceeded(budget).into()),
    })
}

pub(crate) fn is_trap(e: &wasmtime::Error) -> bool {
    e.is::<Trap>() || e.is::<MemoryLimitExceeded>() || e.is::<DeadlineExceeded>()
}

/// Names the trap behind an error from wasmtime (for either kind of guest).
pub(crate) fn classify<W>(state: Option<&StoreState<W>>, error: wasmtime::Error) -> Failure {
    let deadline_hit = state.is_some_and(|s| s.deadline_hit);
    let panic = state.and_then(|s| s.panic_message.clone());
    let (kind, message) = if deadline_hit || error.is::<DeadlineExceeded>() {
        let budget = state.map_or(Duration::ZERO, |s| s.budget);
        (TrapKind::Deadline, format!("stopped after its deadline of {}", humanize(budget)))
    } else if let Some(m) = error.downcast_ref::<MemoryLimitExceeded>() {
        (TrapKind::MemoryLimit, m.to_string())
    } else if let Some(trap) = error.downcast_ref::<Trap>() {
        match trap {
            Trap::UnreachableCodeReached if panic.is_some() => (TrapKind::Panic, panic.unwrap_or_default()),
            Trap::UnreachableCodeReached => (TrapKind::Unreachable, trap.to_string()),
            Trap::OutOfFuel => (TrapKind::Fuel, "the call used up its fuel".to_owned()),
            Trap::StackOverflow => (TrapKind::StackOverflow, "the call stack overflowed".to_owned()),
            Trap::MemoryOutOfBounds | Trap::TableOutOfBounds => (TrapKind::OutOfBounds, trap.to_string()),
            Trap::Interrupt => (TrapKind::Deadline, "interrupted".to_owned()),
            other => (TrapKind::Other, other.to_string()),
        }
    } else if let Some(panic) = panic {
        (TrapKind::Panic, panic)
    } else {
        (TrapKind::Other, format!("{error:#}"))
    };
    Failure::Trap(GuestTrap { kind, message, error: EngineError(error) })
}

/// `2s`, `250ms`, `1.5s`.
pub(crate) fn humanize(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{}ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}
