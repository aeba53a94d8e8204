//! The WebAssembly runtime: the only module that names wasmtime.
//!
//! One [`Runtime`] per process holds the `Engine` (with its instance pool and epoch ticker)
//! and the `Linker` (WASI preview 1 plus the wasmrpc host functions). [`Runtime::load`]
//! compiles a module once, checks it against the ABI and its manifest, and returns a
//! [`Plugin`]; a call instantiates it from its `InstancePre` in a fresh, sandboxed `Store`
//! (or reuses a warm instance), with a memory limit, a deadline enforced by epoch
//! interruption, and optional fuel.
//!
//! - `store.rs`: per-store state, the sandbox (deny-by-default WASI), limiter and deadline.
//! - `instance.rs`: one live instance and the ABI mechanics of a call; trap classification.
//! - `plugin.rs`: [`Plugin`], the loaded module, fresh or warm instances.
//! - `host_api.rs`: `wasmrpc.log`, `wasmrpc.panic`, `wasmrpc.notify`.
//! - `guest_log.rs`: guest stdout/stderr into the host's log.
//! - `cache.rs`: compiled modules on disk, keyed by module digest and engine settings.
//! - `error.rs`: [`LoadError`], [`CallError`], [`TrapKind`].

mod cache;
mod error;
mod guest_log;
mod host_api;
mod instance;
mod plugin;
mod store;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmrpc_abi::{ABI_VERSION, Description, NotifyRequest, REQUIRED_EXPORTS};
use wasmtime::{
    Config, Engine, ExternType, InstanceAllocationStrategy, Linker, Module, PoolingAllocationConfig, ValType,
};

pub use cache::Compiled;
pub use error::{CallError, LoadError, TrapKind};
pub use plugin::Plugin;

use self::instance::{Exports, Failure, Live, Template};
use self::store::{GuestInfo, StoreState};
use crate::manifest::{EndpointSpec, InstanceMode, Role};
use crate::protocol::Version;

/// Where notifications emitted by guests go (implemented by the host's notifier).
pub trait Notifications: Send + Sync + fmt::Debug {
    /// Queues a notification; must not block (it runs inside a guest call).
    fn emit(&self, endpoint: &str, publisher_id: Option<&str>, request: NotifyRequest);
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
    config: RuntimeConfig,
    pooling: bool,
    cache: Option<cache::ModuleCache>,
    /// Modules by sha256: plugins loaded from the same bytes share one compiled module (its
    /// code and memory image), and concurrent loads of the same bytes compile once. Each slot
    /// has its own async lock, held while compiling; it holds a weak reference, so a module no
    /// plugin uses any more is freed.
    modules: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Weak<SharedModule>>>>>,
}

/// A compiled module, shared by the plugins loaded from the same bytes.
pub(crate) struct SharedModule {
    module: Module,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime").field("config", &self.inner.config).field("pooling", &self.inner.pooling).finish()
    }
}

/// The runtime could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the WebAssembly runtime: {0}")]
pub struct RuntimeError(String);

impl Runtime {
    /// Builds the engine (trying the pooling allocator first), the linker and the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let mut cfg = Config::new();
        cfg.epoch_interruption(true);
        // Fuel is compiled into the code, so it is on for every module; unmetered endpoints get
        // u64::MAX. It costs a few percent on hot loops (wasmtime-notes.md §3).
        cfg.consume_fuel(true);
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
                Engine::new(&cfg).map_err(|e| RuntimeError(format!("{e:#}")))?
            }
            Err(e) => return Err(RuntimeError(format!("{e:#}"))),
        };
        let mut linker: Linker<StoreState> = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut StoreState| &mut s.wasi)
            .map_err(|e| RuntimeError(format!("{e:#}")))?;
        host_api::add_to_linker(&mut linker).map_err(|e| RuntimeError(format!("{e:#}")))?;
        spawn_epoch_ticker(&engine, config.epoch_tick);
        let cache = config.cache_dir.clone().map(|dir| cache::ModuleCache::new(dir, &engine));
        Ok(Runtime { inner: Arc::new(Inner { engine, linker, config, pooling, cache, modules: Default::default() }) })
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
        let bytes = tokio::fs::read(&spec.module_path).await.map_err(|source| LoadError::Read {
            endpoint: spec.name.clone(),
            path: spec.module_path.clone(),
            source,
        })?;
        self.load_bytes(spec, bytes, notifications).await
    }

    /// [`Runtime::load`] with the module's bytes already read.
    pub async fn load_bytes(
        &self,
        spec: &EndpointSpec,
        bytes: Vec<u8>,
        notifications: Option<Arc<dyn Notifications>>,
    ) -> Result<Plugin, LoadError> {
        let started = Instant::now();
        let path = &spec.module_path;
        let problem = |problem: String| LoadError::Module { endpoint: spec.name.clone(), path: path.clone(), problem };
        let sha256 = digest(&bytes);
        let (shared, compiled) = self
            .module(bytes, &sha256)
            .await
            .map_err(|e| problem(format!("is not a valid WebAssembly module: {e}")))?;
        let module = shared.module.clone();
        let exports = check_exports(&module).map_err(problem)?;
        let pre = self
            .inner
            .linker
            .instantiate_pre(&module)
            .map_err(|e| problem(format!("needs an import this host does not provide ({e:#}); wasmrpc provides wasi_snapshot_preview1 and wasmrpc.log/panic/notify")))?;
        if spec.limits.memory > self.inner.config.max_memory {
            return Err(LoadError::Limit {
                manifest: spec.manifest_path.clone(),
                message: format!(
                    "[limits] memory = {} bytes is more than this host allows ({} bytes); lower it or raise `max_memory` in wasmrpc.toml",
                    spec.limits.memory, self.inner.config.max_memory
                ),
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
            notifications,
        });
        let template = Template { engine: self.inner.engine.clone(), pre, exports, guest, _module: shared };
        let description = probe(&template, spec.limits.deadline).await.map_err(problem)?;
        check_description(spec, &description)?;
        let max_idle = match spec.instance {
            InstanceMode::Fresh => 0,
            InstanceMode::Warm { .. } => spec.max_concurrency.unwrap_or(self.inner.config.default_max_idle),
        };
        Ok(Plugin::new(plugin::Parts {
            template,
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
    async fn module(&self, bytes: Vec<u8>, sha256: &str) -> Result<(Arc<SharedModule>, Compiled), String> {
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
        let (module, compiled) = self.compile(bytes, sha256.to_owned()).await?;
        let shared = Arc::new(SharedModule { module });
        *slot = Arc::downgrade(&shared);
        Ok((shared, compiled))
    }

    /// Compiles (or loads from the cache) on a blocking thread: Cranelift takes ~100 ms for a
    /// typical guest, far too long for an async worker.
    async fn compile(&self, bytes: Vec<u8>, sha256: String) -> Result<(Module, Compiled), String> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(cache) = &inner.cache
                && let Some(module) = cache.get(&inner.engine, &sha256)
            {
                return Ok((module, Compiled::Cached));
            }
            let module = Module::new(&inner.engine, &bytes).map_err(|e| format!("{e:#}"))?;
            if let Some(cache) = &inner.cache {
                cache.put(&module, &sha256);
            }
            Ok((module, Compiled::Fresh))
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

/// The pooling allocator for `config`, sized by `max_instances` and `max_memory` and tuned for
/// many short-lived instances (shared with the benchmark's bare-wasmtime baseline, so both run
/// on the same allocator).
///
/// By default a freed slot's memory is reset with `madvise`, so the next instance page-faults
/// on every page it touches (stack, heap, data) and the `madvise` itself shoots down TLBs on
/// the other cores: profiled, that was most of a fresh instance's cost. With PAGEMAP_SCAN
/// (Linux 6.7+) wasmtime finds the pages the instance actually dirtied and restores just those
/// with `memcpy`, keeping them mapped: no faults, no shootdowns. Up to 1 MiB per memory is kept
/// resident that way (a call of the example plugins dirties a few dozen KiB); beyond it, or on
/// kernels without the ioctl, the default applies. Decommits are batched to amortise the
/// syscalls that remain. At most 32 idle slots stay warm.
#[must_use]
pub fn pool_config(config: &RuntimeConfig) -> PoolingAllocationConfig {
    let n = config.max_instances;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_core_instances(n)
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

/// Checks that every export the ABI requires exists with the right type.
fn check_exports(module: &Module) -> Result<Exports, String> {
    let mut missing = Vec::new();
    for (name, signature) in REQUIRED_EXPORTS {
        let found = module.get_export(name);
        let ok = match (&found, *name) {
            (Some(ExternType::Memory(_)), wasmrpc_abi::MEMORY) => true,
            (Some(ExternType::Func(f)), _) => {
                let params: Vec<String> = f.params().map(|p| val_name(&p)).collect();
                let results: Vec<String> = f.results().map(|r| val_name(&r)).collect();
                let actual = match results.as_slice() {
                    [] => format!("func ({})", params.join(", ")),
                    _ => format!("func ({}) -> {}", params.join(", "), results.join(", ")),
                };
                actual == *signature
            }
            _ => false,
        };
        if !ok {
            missing.push(format!("`{name}` ({signature})"));
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "does not provide what the wasmrpc ABI requires: missing or mistyped {}; see docs/abi.md (guests built with wasmrpc-guest get them from #[endpoint])",
            missing.join(", ")
        ));
    }
    let index = |name: &str| module.get_export_index(name).ok_or_else(|| format!("lost export `{name}`"));
    Ok(Exports {
        memory: index(wasmrpc_abi::MEMORY)?,
        abi_version: index(wasmrpc_abi::ABI_VERSION_EXPORT)?,
        alloc: index(wasmrpc_abi::ALLOC_EXPORT)?,
        dealloc: index(wasmrpc_abi::DEALLOC_EXPORT)?,
        describe: index(wasmrpc_abi::DESCRIBE_EXPORT)?,
        call: index(wasmrpc_abi::CALL_EXPORT)?,
    })
}

fn val_name(v: &ValType) -> String {
    match v {
        ValType::I32 => "i32".into(),
        ValType::I64 => "i64".into(),
        ValType::F32 => "f32".into(),
        ValType::F64 => "f64".into(),
        other => format!("{other}"),
    }
}

/// Instantiates once to ask the ABI version and the description.
async fn probe(template: &Template, deadline: Duration) -> Result<Description, String> {
    let budget = deadline.min(Duration::from_secs(10));
    let started = Instant::now() + budget;
    let explain = |f: Failure| match f {
        Failure::Trap(kind, message, _) => {
            format!("trapped while being probed ({kind}: {message})")
        }
        Failure::Abi(m) => format!("broke the ABI while being probed: {m}"),
        Failure::Setup(m) => format!("could not be instantiated: {m}"),
    };
    let mut live = Live::new(template, started, budget).await.map_err(explain)?;
    let version = live.abi_version(&template.exports).await.map_err(explain)?;
    if version != ABI_VERSION as i32 {
        return Err(format!(
            "was built for wasmrpc ABI version {version}, but this host speaks version {ABI_VERSION}; rebuild it against a wasmrpc-guest release for ABI {ABI_VERSION}"
        ));
    }
    let raw = live.describe(&template.exports).await.map_err(explain)?;
    let description: Description = serde_json::from_slice(&raw)
        .map_err(|e| format!("returned an unreadable description from wasmrpc_describe: {e}"))?;
    if description.abi_version != ABI_VERSION {
        return Err(format!(
            "describes itself as ABI version {}, but this host speaks version {ABI_VERSION}",
            description.abi_version
        ));
    }
    Ok(description)
}

/// The description must agree with the manifest: methods it lists, version, namespace.
fn check_description(spec: &EndpointSpec, d: &Description) -> Result<(), LoadError> {
    let inconsistent =
        |at, message: String| LoadError::Inconsistent { manifest: spec.manifest_path.clone(), at, message };
    let exported: BTreeSet<&str> = d.methods.iter().map(|m| m.name.as_str()).collect();
    let available = || exported.iter().copied().collect::<Vec<_>>().join(", ");
    if let Some(declared) = &spec.declared_methods {
        let missing: Vec<&str> = declared.iter().map(String::as_str).filter(|m| !exported.contains(m)).collect();
        if !missing.is_empty() {
            return Err(inconsistent(
                spec.locations.methods,
                format!(
                    "`methods` lists {} but the module does not provide {}; it has: {}",
                    missing.join(", "),
                    if missing.len() == 1 { "it" } else { "them" },
                    available()
                ),
            ));
        }
    }
    match &spec.role {
        Role::Rpc(target) => {
            if let Some(v) = &d.version {
                let module_version: Version = v.parse().map_err(|e| {
                    inconsistent(spec.locations.version, format!("the module declares an unreadable version: {e}"))
                })?;
                if !module_version.can_serve(&target.version) {
                    return Err(inconsistent(
                        spec.locations.version,
                        format!(
                            "`version = \"{}\"` but the module implements version {module_version}; set `version = \"{module_version}\"` or rebuild the module",
                            target.version
                        ),
                    ));
                }
            }
            if let Some(ns) = &d.namespace
                && target.namespace.as_deref() != Some(ns.as_str())
            {
                return Err(inconsistent(
                    spec.locations.namespace,
                    format!(
                        "the module implements namespace {ns:?} but the manifest serves {:?}; set `namespace = {ns:?}` in [target]",
                        target.namespace
                    ),
                ));
            }
        }
        Role::Listener(listener) => {
            let handled: Vec<&str> =
                crate::protocol::PRIORITIES.iter().copied().filter(|p| exported.contains(p)).collect();
            if handled.is_empty() {
                return Err(inconsistent(
                    spec.locations.listener,
                    format!(
                        "a listener module must provide a method per priority it handles (info, error, …); it has: {}",
                        available()
                    ),
                ));
            }
            if let Some(wanted) = &listener.priorities {
                let missing: Vec<&str> = wanted.iter().map(String::as_str).filter(|p| !exported.contains(p)).collect();
                if !missing.is_empty() {
                    return Err(inconsistent(
                        spec.locations.listener,
                        format!(
                            "`priorities` lists {} but the module has no method for it; it has: {}",
                            missing.join(", "),
                            available()
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
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
