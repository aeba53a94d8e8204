//! Per-store state: the WASI sandbox, the memory limiter, the deadline and what the host
//! imports need to know about the endpoint.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::error::{DeadlineExceeded, MemoryLimitExceeded};
use super::guest_log::GuestOutput;
use super::rate::GuestRates;
use super::stats::GuestStats;
use super::{HostServices, Notifications};
use crate::manifest::{DirGrant, NotificationGrant};

/// The most table elements an instance may have (Rust guests use a few hundred).
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// What every store of one endpoint shares.
#[derive(Debug)]
pub(crate) struct GuestInfo {
    /// The endpoint's name, for logs and errors.
    pub name: Arc<str>,
    /// Environment as granted (fixed values plus inherited ones, read once at load).
    pub env: Vec<(String, String)>,
    /// Preopened directories.
    pub dirs: Vec<DirGrant>,
    /// Maximum linear memory in bytes.
    pub memory_limit: usize,
    /// Which notifications the guest may emit, and where they go.
    pub grant: NotificationGrant,
    /// The host's notifier, if one is configured.
    pub notifications: Option<Arc<dyn Notifications>>,
    /// Outbound calls and configuration values, if the host lends them.
    pub services: Option<Arc<dyn HostServices>>,
    /// Rate limits on the guest's log lines and notifications.
    pub rates: Arc<GuestRates>,
    /// Usage counters for the host's metrics.
    pub stats: Arc<GuestStats>,
}

/// The `T` of every `Store<T>` this runtime creates. `W` is the WASI context: preview 1 for
/// core modules ([`WasiP1Ctx`]), preview 2 for components ([`WasiP2`]); everything else (limits,
/// deadline, what the host imports need) is the same for both kinds.
pub(crate) struct StoreState<W = WasiP1Ctx> {
    pub wasi: W,
    pub limiter: Limiter,
    pub guest: Arc<GuestInfo>,
    /// When the running call must stop.
    pub deadline: Instant,
    /// The budget the deadline was computed from, for the error message.
    pub budget: Duration,
    /// Set by the epoch callback when it stops a call, so the trap is classified right.
    pub deadline_hit: bool,
    /// Set by the `panic` import just before the guest traps.
    pub panic_message: Option<String>,
}

/// Enforces the manifest's memory limit. Returning an error (rather than refusing the growth)
/// traps at the `memory.grow`, so the caller gets "memory limit exceeded" instead of whatever
/// the guest's allocator does on failure.
pub(crate) struct Limiter {
    memory_limit: usize,
    /// The largest size a memory of this store grew to: how a component's memory use is
    /// reported (its core memories are not exports the host can look at).
    pub largest: usize,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            return Err(MemoryLimitExceeded { desired, limit: self.memory_limit }.into());
        }
        self.largest = self.largest.max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// A store with the endpoint's sandbox, limiter and deadline handling installed; reset it with
/// [`reset_for_call`]
/// before each call. `deadline` is only a starting value (it saves a clock read).
pub(crate) fn new_store<W: Send + 'static>(
    engine: &wasmtime::Engine,
    guest: &Arc<GuestInfo>,
    deadline: Instant,
    wasi: W,
) -> Store<StoreState<W>> {
    let state = StoreState {
        wasi,
        limiter: Limiter { memory_limit: guest.memory_limit, largest: 0 },
        guest: guest.clone(),
        deadline,
        budget: Duration::ZERO,
        deadline_hit: false,
        panic_message: None,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    // The epoch ticks every few milliseconds; on each tick a running guest lands here. Past its
    // deadline the call traps; otherwise it yields to tokio, so a spinning guest never holds a
    // worker thread for more than one tick.
    store.epoch_deadline_callback(|mut ctx| {
        let state = ctx.data_mut();
        if Instant::now() >= state.deadline {
            state.deadline_hit = true;
            return Err(DeadlineExceeded(state.budget).into());
        }
        Ok(UpdateDeadline::Yield(1))
    });
    store
}

/// Readies a store for one call: its deadline, its fuel, and a clean panic slot.
pub(crate) fn reset_for_call<W>(
    store: &mut Store<StoreState<W>>,
    deadline: Instant,
    budget: Duration,
    fuel: u64,
) -> wasmtime::Result<()> {
    let state = store.data_mut();
    state.deadline = deadline;
    state.budget = budget;
    state.deadline_hit = false;
    state.panic_message = None;
    // Deadlines are relative to the current epoch, so they are set again before every call.
    store.set_epoch_deadline(1);
    // The engine meters fuel for every module (it is a compile-time setting); endpoints without
    // a fuel limit get an amount they cannot use up (the caller passes u64::MAX).
    store.set_fuel(fuel)
}

/// The WASI preview 1 context of a core module ([`sandbox`]).
pub(crate) fn sandbox_p1(guest: &GuestInfo) -> wasmtime::Result<WasiP1Ctx> {
    Ok(sandbox(guest)?.build_p1())
}

/// The WASI preview 2 context of a component, built from the same grants as preview 1's.
pub(crate) fn sandbox_p2(guest: &GuestInfo) -> wasmtime::Result<WasiP2> {
    Ok(WasiP2 { ctx: sandbox(guest)?.build(), table: ResourceTable::new() })
}

/// A component's WASI state: the context and the table of the resources (streams, files) its
/// guest holds.
pub(crate) struct WasiP2 {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for StoreState<WasiP2> {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi.ctx, table: &mut self.wasi.table }
    }
}

/// The WASI context: deny by default. stdin is closed, there are no arguments, no sockets,
/// no environment variables and no directories except what the manifest grants; stdout and
/// stderr go to the host's log. Clocks and randomness stay available.
fn sandbox(guest: &GuestInfo) -> wasmtime::Result<WasiCtxBuilder> {
    let mut b = WasiCtxBuilder::new();
    b.stdout(GuestOutput::stdout(guest.name.clone(), guest.rates.clone()))
        .stderr(GuestOutput::stderr(guest.name.clone(), guest.rates.clone()))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    for (k, v) in &guest.env {
        b.env(k, v);
    }
    for dir in &guest.dirs {
        let perms = if dir.writable { FsPerms::ReadWrite } else { FsPerms::ReadOnly };
        b.preopened_dir(&dir.host, &dir.guest, perms)?;
    }
    Ok(b)
}
