//! The WebAssembly runtime: the only module that names wasmtime.
//!
//! One [`Runtime`] per process holds the `Engine` (with its instance pool and epoch ticker)
//! and the linkers (WASI preview 1 plus the wasmrpc host functions for core modules, WASI
//! preview 2 plus the WIT `host` interface for components). [`Runtime::load`] compiles a
//! module or component once, checks it against the ABI and its manifest, and returns a
//! [`Plugin`]; a call instantiates it from its `InstancePre` in a fresh, sandboxed `Store`
//! (or reuses a warm instance), with a memory limit, a deadline enforced by epoch
//! interruption, and optional fuel.
//!
//! - `store.rs`: per-store state, the sandbox (deny-by-default WASI), limiter and deadline.
//! - `instance.rs`: one instance of a guest module and the ABI mechanics of a call; trap
//!   classification.
//! - `component.rs`: the same for a component implementing the WIT world (wit/endpoint.wit):
//!   telling one from a module, its instances, `describe`/`call`, `remote-error`.
//! - `component_host.rs`: the component linker: WASI preview 2 and the world's `host` imports.
//! - `guest.rs`: [`GuestKind`], and the dispatch between the two kinds behind [`Plugin`].
//! - `validate.rs`: what a module must be to load: the ABI's exports, its ABI version, a
//!   description that agrees with the manifest.
//! - `plugin.rs`: [`Plugin`], the loaded module, fresh or warm instances.
//! - `host_api.rs`: `wasmrpc.log`, `wasmrpc.panic`, `wasmrpc.notify`, `wasmrpc.rpc`,
//!   `wasmrpc.config`.
//! - `services.rs`: [`HostServices`], what the host lends a guest (outbound RPC, config), and
//!   [`GuestServices`].
//! - `guest_log.rs`: guest stdout/stderr into the host's log.
//! - `rate.rs`: per-endpoint rate limits on guest log lines and notifications.
//! - `cache.rs`: compiled modules on disk, keyed by module digest and engine settings.
//! - `functions.rs`: compiled functions in memory (Cranelift's incremental cache), for `dev`'s
//!   rebuilds of the same module.
//! - `error.rs`: [`LoadError`] (with [`ModuleProblem`], [`Disagreement`]), [`CallError`],
//!   [`TrapKind`], [`RuntimeError`].

mod cache;
mod component;
mod component_host;
mod error;
mod functions;
mod guest;
mod guest_log;
mod host_api;
mod instance;
mod plugin;
mod rate;
mod services;
mod stats;
mod store;
mod validate;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmrpc_abi::NotifyRequest;
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, Linker, Module, PoolingAllocationConfig};

pub use cache::Compiled;
pub use error::{CallError, Disagreement, EngineError, GuestTrap, LoadError, ModuleProblem, RuntimeError, TrapKind};
pub use guest::GuestKind;
pub use plugin::Plugin;
pub use rate::{LOG_BURST, LOG_LINES_PER_SECOND, NOTIFICATION_BURST, NOTIFICATIONS_PER_SECOND};
pub use services::{GuestServices, HostServices};
pub use stats::{GuestStats, GuestStatsSnapshot};

use self::component::PreparedComponent;
use self::guest::Prepared;
use self::instance::PreparedModule;
use self::store::{GuestInfo, StoreState, WasiP2};
use crate::manifest::{EndpointSpec, InstanceMode};

/// Where notifications emitted by guests go (implemented by the host's notifier).
pub trait Notifications: Send + Sync + fmt::Debug {
    /// Queues a notification; must not block (it runs inside a guest call). `false`: it was
    /// dropped (the queue is full), and the guest is told so.
    fn emit(&self, endpoint: &str, publisher_id: Option<&str>, request: NotifyRequest) -> bool;
}

/// Settings of the process-wide runtime.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Use the pooling instance allocator (fast instantiation). If its address-space reservation
    /// fails, the runtime logs a warning and falls back to on-demand allocation.
    pub pooling: bool,
    /// Instance slots: bounds the instances alive at once (running calls plus idle warm ones).
    pub max_instances: u32,
    /// The largest memory limit a manifest may ask for, in bytes.
    pub max_memory: u64,
    /// How often the epoch advances: the precision of deadlines, and how often a busy guest
    /// yields its thread.
    pub epoch_tick: Duration,
    /// Idle warm instances kept per endpoint when its manifest sets no `max_concurrency`.
    pub default_max_idle: usize,
    /// Where compiled modules are cached; `None` compiles every load.
    pub cache_dir: Option<std::path::PathBuf>,
    /// Keep each compiled function in memory (Cranelift's incremental cache) so a rebuilt
    /// module compiles only the functions that changed: what `wasmrpc dev` turns on, where the
    /// same module is rebuilt on every save (`functions.rs`).
    pub incremental_compilation: bool,
}

impl Default for RuntimeConfig {
    fn default() -> RuntimeConfig {
        RuntimeConfig {
            pooling: true,
            max_instances: 1000,
            max_memory: 1 << 30,
            epoch_tick: Duration::from_millis(10),
            default_max_idle: 8,
            cache_dir: None,
            incremental_compilation: false,
        }
    }
}

/// The engine, linker and settings shared by every plugin. Cloning is cheap.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<StoreState>,
    /// The linker of components: WASI preview 2 and the world's `host` interface.
    components: wasmtime::component::Linker<StoreState<WasiP2>>,
    config: RuntimeConfig,
    pooling: bool,
    cache: Option<cache::ModuleCache>,
    /// Modules by sha256: plugins loaded from the same bytes share one compiled module (its
    /// code and memory image), and concurrent loads of the same bytes compile once. Each slot
    /// has its own async lock, held while compiling; it holds a weak reference, so a module no
    /// plugin uses any more is freed.
    modules: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Weak<SharedModule>>>>>,
}

/// A compiled module or component, shared by the plugins loaded from the same bytes.
pub(crate) struct SharedModule {
    code: Code,
}

/// Compiled code of either kind of guest.
#[derive(Clone)]
pub(crate) enum Code {
    Module(Module),
    Component(Component),
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime").field("config", &self.inner.config).field("pooling", &self.inner.pooling).finish()
    }
}

impl Runtime {
    /// Builds the engine (trying the pooling allocator first), the linker and the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let mut cfg = Config::new();
        cfg.epoch_interruption(true);
        // Fuel is compiled into the code, so it is on for every module; unmetered endpoints get
        // u64::MAX. Hot loops pay for the metering (wasmtime-notes.md §3).
        cfg.consume_fuel(true);
        if config.incremental_compilation {
            cfg.enable_incremental_compilation(Arc::new(functions::FunctionCache::default()))
                .map_err(|e| RuntimeError::Engine(EngineError(e)))?;
        }
        let mut pooling = false;
        if config.pooling {
            cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool_config(&config)));
            pooling = true;
        }
        let engine = match Engine::new(&cfg) {
            Ok(engine) => engine,
            Err(e) if pooling => {
                tracing::warn!(
                    "the pooling instance allocator could not reserve its address space ({e:#}); \
                     falling back to on-demand allocation: every instantiation will be slower. \
                     Lower `max_instances` in wasmrpc.toml or raise the process's address-space limit"
                );
                pooling = false;
                cfg.allocation_strategy(InstanceAllocationStrategy::OnDemand);
                Engine::new(&cfg).map_err(|e| RuntimeError::Engine(EngineError(e)))?
            }
            Err(e) => return Err(RuntimeError::Engine(EngineError(e))),
        };
        let mut linker: Linker<StoreState> = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut StoreState| &mut s.wasi)
            .map_err(|e| RuntimeError::Linker(EngineError(e)))?;
        host_api::add_to_linker(&mut linker).map_err(|e| RuntimeError::Linker(EngineError(e)))?;
        let components = component_host::linker(&engine).map_err(|e| RuntimeError::Linker(EngineError(e)))?;
        spawn_epoch_ticker(&engine, config.epoch_tick);
        let cache = config.cache_dir.clone().map(|dir| cache::ModuleCache::new(dir, &engine));
        let modules = Default::default();
        Ok(Runtime { inner: Arc::new(Inner { engine, linker, components, config, pooling, cache, modules }) })
    }

    /// Whether the pooling allocator is in use (false after a fallback).
    #[must_use]
    pub fn is_pooling(&self) -> bool {
        self.inner.pooling
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Loads the module of `spec`: compiles it (on a blocking thread), checks its exports and
    /// imports, asks its ABI version and description, and checks them against the manifest.
    pub async fn load(
        &self,
        spec: &EndpointSpec,
        notifications: Option<Arc<dyn Notifications>>,
    ) -> Result<Plugin, LoadError> {
        let bytes = read_module(&spec.module_path).await.map_err(|source| LoadError::Read {
            endpoint: spec.name.clone(),
            path: spec.module_path.clone(),
            source,
        })?;
        self.load_bytes(spec, bytes, GuestServices { notifications, host: None, stats: Arc::default() }).await
    }

    /// [`Runtime::load`] with the module's bytes already read, and what the host lends its
    /// guests.
    pub async fn load_bytes(
        &self,
        spec: &EndpointSpec,
        bytes: Vec<u8>,
        services: GuestServices,
    ) -> Result<Plugin, LoadError> {
        if bytes.len() as u64 > MAX_MODULE_SIZE {
            return Err(LoadError::Read {
                endpoint: spec.name.clone(),
                path: spec.module_path.clone(),
                source: too_large(bytes.len() as u64),
            });
        }
        let started = Instant::now();
        let path = &spec.module_path;
        let problem = |problem| LoadError::Module { endpoint: spec.name.clone(), path: path.clone(), problem };
        let sha256 = digest(&bytes);
        let (shared, compiled) = self.module(bytes, &sha256).await.map_err(problem)?;
        if spec.limits.memory > self.inner.config.max_memory {
            return Err(LoadError::MemoryLimit {
                manifest: spec.manifest_path.clone(),
                asked: spec.limits.memory,
                allowed: self.inner.config.max_memory,
            });
        }
        let mut env = spec.sandbox.env.clone();
        env.extend(spec.sandbox.inherit_env.iter().filter_map(|k| std::env::var(k).ok().map(|v| (k.clone(), v))));
        let guest = Arc::new(GuestInfo {
            name: Arc::from(spec.name.as_str()),
            env,
            dirs: spec.sandbox.dirs.clone(),
            memory_limit: usize::try_from(spec.limits.memory).unwrap_or(usize::MAX),
            grant: spec.notifications.clone(),
            notifications: services.notifications,
            services: services.host,
            rates: Arc::new(rate::GuestRates::new(Arc::from(spec.name.as_str()))),
            stats: services.stats,
        });
        let engine = self.inner.engine.clone();
        let tick = self.inner.config.epoch_tick;
        let prepared = match shared.code.clone() {
            Code::Module(module) => {
                let exports = validate::check_exports(&module).map_err(problem)?;
                let pre = (self.inner.linker.instantiate_pre(&module))
                    .map_err(|e| problem(ModuleProblem::UnknownImport(EngineError(e))))?;
                Prepared::Module(PreparedModule { engine, pre, exports, guest, tick, _module: shared })
            }
            Code::Component(component) => {
                component::check_exports(&component, &engine).map_err(problem)?;
                let pre = (self.inner.components.instantiate_pre(&component))
                    .map_err(|e| problem(ModuleProblem::UnknownComponentImport(EngineError(e))))?;
                Prepared::Component(PreparedComponent { engine, pre, guest, tick, _module: shared })
            }
        };
        let description = validate::probe(&prepared, spec.limits.deadline).await.map_err(problem)?;
        validate::check_description(spec, &description)?;
        let max_idle = match spec.instance {
            InstanceMode::Fresh => 0,
            InstanceMode::Warm { .. } => spec.max_concurrency.unwrap_or(self.inner.config.default_max_idle),
        };
        Ok(Plugin::new(plugin::Parts {
            module: prepared,
            description,
            sha256,
            module_path: path.clone(),
            mode: spec.instance,
            limits: spec.limits,
            max_idle,
            load_time: started.elapsed(),
            compiled,
        }))
    }

    /// The compiled module for these bytes: one already loaded, or compiled (or read from the
    /// cache) now, once however many loads ask for it at the same time.
    async fn module(&self, bytes: Vec<u8>, sha256: &str) -> Result<(Arc<SharedModule>, Compiled), ModuleProblem> {
        let slot = {
            let mut modules = crate::locks::lock(&self.inner.modules);
            // Forget modules nobody uses (unless someone is compiling them right now).
            modules.retain(|_, slot| {
                Arc::strong_count(slot) > 1 || slot.try_lock().map_or(true, |w| w.strong_count() > 0)
            });
            modules.entry(sha256.to_owned()).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if let Some(shared) = slot.upgrade() {
            return Ok((shared, Compiled::Shared));
        }
        let (code, compiled) = self.compile(bytes, sha256.to_owned()).await?;
        let shared = Arc::new(SharedModule { code });
        *slot = Arc::downgrade(&shared);
        Ok((shared, compiled))
    }

    /// Compiles (or loads from the cache) on a blocking thread: Cranelift takes far too long
    /// for an async worker. The binary's header tells a component from a core module.
    async fn compile(&self, bytes: Vec<u8>, sha256: String) -> Result<(Code, Compiled), ModuleProblem> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let kind = if component::is_component(&bytes) { GuestKind::Component } else { GuestKind::Module };
            if let Some(cache) = &inner.cache
                && let Some(module) = cache.get(&inner.engine, &sha256, kind)
            {
                return Ok((module, Compiled::Cached));
            }
            let invalid = |e| ModuleProblem::Invalid(EngineError(e));
            let module = match kind {
                GuestKind::Module => Code::Module(Module::new(&inner.engine, &bytes).map_err(invalid)?),
                GuestKind::Component => Code::Component(Component::new(&inner.engine, &bytes).map_err(invalid)?),
            };
            if let Some(cache) = &inner.cache {
                cache.put(&module, &sha256);
            }
            Ok((module, Compiled::Fresh))
        })
        .await
        .map_err(ModuleProblem::CompileTask)?
    }
}

/// The pooling allocator for `config`, sized by `max_instances` and `max_memory` and tuned for
/// many short-lived instances (shared with the benchmark's bare-wasmtime baseline, so both run
/// on the same allocator).
///
/// By default a freed slot's memory is reset with `madvise`, so the next instance page-faults
/// on every page it touches (stack, heap, data) and the `madvise` itself shoots down TLBs on
/// the other cores. With PAGEMAP_SCAN (Linux 6.7+) wasmtime finds the pages the instance
/// actually dirtied and restores just those with `memcpy`, keeping them mapped: no faults, no
/// shootdowns. Up to 1 MiB per memory is kept resident that way (more than a call of the
/// example plugins dirties); beyond it, or on kernels without the ioctl, the default applies.
/// Decommits are batched to amortise the syscalls that remain. At most 32 idle slots stay
/// warm. BENCHMARKS.md has what each setting buys.
#[must_use]
pub fn pool_config(config: &RuntimeConfig) -> PoolingAllocationConfig {
    let n = config.max_instances;
    let mut pool = PoolingAllocationConfig::default();
    // A component instance takes one component slot plus a core-instance slot (and memory and
    // table slots) per core module inside it: a Python component holds several, so it uses
    // more of the pool than a core module does; `max_instances` bounds both kinds.
    pool.total_component_instances(n)
        .total_core_instances(n)
        .total_memories(n)
        .total_tables(n)
        .total_stacks(n)
        .max_memory_size(usize::try_from(config.max_memory).unwrap_or(usize::MAX))
        .pagemap_scan(wasmtime::Enabled::Auto)
        .linear_memory_keep_resident(1 << 20)
        .table_keep_resident(64 << 10)
        .decommit_batch_size(8)
        // Slots keep their pages resident; bound how many idle ones linger so a host with many
        // endpoints does not grow a slot per endpoint (default 100).
        .max_unused_warm_slots(32);
    pool
}

/// Advances the epoch every `tick` until the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine, tick: Duration) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new().name("wasmrpc-epoch".into()).spawn(move || {
        loop {
            std::thread::sleep(tick);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!("cannot start the epoch ticker thread ({e}): deadlines will not be enforced");
    }
}

/// The hex sha256 of `bytes` (how modules are identified in logs, listings and the cache).
#[must_use]
pub fn digest(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The largest module file loaded: a module is read whole and compiled, so a huge file in the
/// plugin directory would cost the host its memory before any check. Python components are
/// tens of MiB; this leaves room for far larger ones.
pub const MAX_MODULE_SIZE: u64 = 256 << 20;

/// Reads a module file, refusing one over [`MAX_MODULE_SIZE`] before reading it (and while
/// reading, should it grow meanwhile).
pub async fn read_module(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt as _;
    let file = tokio::fs::File::open(path).await?;
    let size = file.metadata().await?.len();
    if size > MAX_MODULE_SIZE {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or_default());
    file.take(MAX_MODULE_SIZE + 1).read_to_end(&mut bytes).await?;
    if bytes.len() as u64 > MAX_MODULE_SIZE {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

fn too_large(size: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!(
            "the module is {size} bytes, over the limit of {MAX_MODULE_SIZE} bytes ({} MiB)",
            MAX_MODULE_SIZE >> 20
        ),
    )
}
