//! In-process costs: bare wasmtime (the floor), wasmrpc's runtime, and a whole RPC over
//! `memory://` (client → transport → server → dispatcher → Wasm → reply), for the calculator;
//! and the same RPC answered by a Rust endpoint, the RPC layer alone.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value, json};
use wasmrpc::protocol::{ListenTarget, RemoteFailure, Target};
use wasmrpc::rpc::{
    CallContext, Dispatcher, Endpoint, EndpointTarget, NoOpSerializer, RpcClient, RpcServer, ServerOptions,
};
use wasmrpc::{Host, HostConfig, Runtime, RuntimeConfig, Version, manifest};
use wasmtime::{
    Config, Engine, Extern, InstanceAllocationStrategy, InstancePre, Linker, Memory, Module, ModuleExport, Store,
    TypedFunc,
};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;

use crate::stats::{Samples, median};

/// The request wasmrpc's runtime writes into the guest for `add(a=1, b=2)`.
const REQUEST: &[u8] = br#"{"method":"add","args":{"a":1,"b":2},"context":{}}"#;
/// The same call as the RPC layer hands it over: the dispatcher adds oslo's `client_timeout`
/// to the (empty) context the client sent.
const RPC_REQUEST: &[u8] = br#"{"method":"add","args":{"a":1,"b":2},"context":{"client_timeout":null}}"#;

/// The in-process table.
pub struct Table {
    pub rows: Vec<Row>,
    /// The guest's own work per call, if the single-threaded rows ran.
    pub guest: Option<GuestWork>,
}

/// Wasm operators one warm `add` runs in the guest, counted with fuel (one unit per operator):
/// unlike time, this does not move with the machine.
#[derive(Debug, Clone, Copy)]
pub struct GuestWork {
    /// For [`REQUEST`].
    pub bare: u64,
    /// For [`RPC_REQUEST`].
    pub rpc: u64,
}

/// One row of the in-process table.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: &'static str,
    pub per_call_us: f64,
    pub p99_us: f64,
}

/// Bare wasmtime with the same engine settings as wasmrpc's runtime (pooling, epochs, fuel),
/// exports resolved once per module, and only the functions a call needs type-checked per
/// instance: the cheapest way we know to make an instance and call it.
struct Bare {
    engine: Engine,
    pre: InstancePre<WasiP1Ctx>,
    memory: ModuleExport,
    alloc: ModuleExport,
    call: ModuleExport,
    dealloc: ModuleExport,
}

fn bare(module_path: &Path, runtime: &RuntimeConfig) -> anyhow::Result<Bare> {
    let mut cfg = Config::new();
    cfg.epoch_interruption(true);
    cfg.consume_fuel(true);
    #[cfg(feature = "profiling")]
    cfg.profiler(wasmtime::ProfilingStrategy::PerfMap);
    if runtime.pooling {
        cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(wasmrpc::runtime::pool_config(runtime)));
    }
    let engine = Engine::new(&cfg)?;
    let module = Module::from_file(&engine, module_path)?;
    let mut linker: Linker<WasiP1Ctx> = Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |cx| cx)?;
    // The guest imports wasmrpc.log/panic; the baseline provides them as no-ops.
    linker.func_wrap("wasmrpc", "log", |_: i32, _: i32, _: i32| {})?;
    linker.func_wrap("wasmrpc", "panic", |_: i32, _: i32| {})?;
    linker.func_wrap("wasmrpc", "notify", |_: i32, _: i32| 0i32)?;
    let pre = linker.instantiate_pre(&module)?;
    let export = |name: &str| module.get_export_index(name).ok_or_else(|| anyhow::anyhow!("no export {name}"));
    Ok(Bare {
        memory: export("memory")?,
        alloc: export("wasmrpc_alloc")?,
        call: export("wasmrpc_call")?,
        dealloc: export("wasmrpc_dealloc")?,
        engine,
        pre,
    })
}

struct BareInstance {
    store: Store<WasiP1Ctx>,
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    call: TypedFunc<(i32, i32), i64>,
    /// Resolved only for warm instances, which hand their response buffers back.
    dealloc: Option<TypedFunc<(i32, i32), ()>>,
}

impl Bare {
    /// A new instance; a `warm` one will be called again, so it also resolves `wasmrpc_dealloc`.
    async fn instance(&self, warm: bool) -> anyhow::Result<BareInstance> {
        let mut store = Store::new(&self.engine, WasiCtxBuilder::new().build_p1());
        store.set_epoch_deadline(1_000_000);
        store.set_fuel(u64::MAX)?;
        let instance = self.pre.instantiate_async(&mut store).await?;
        let Some(Extern::Memory(memory)) = instance.get_module_export(&mut store, &self.memory) else {
            anyhow::bail!("no memory")
        };
        let func = |store: &mut Store<WasiP1Ctx>, export| {
            instance
                .get_module_export(&mut *store, export)
                .and_then(Extern::into_func)
                .ok_or_else(|| anyhow::anyhow!("not a function"))
        };
        Ok(BareInstance {
            alloc: func(&mut store, &self.alloc)?.typed(&store)?,
            call: func(&mut store, &self.call)?.typed(&store)?,
            dealloc: if warm { Some(func(&mut store, &self.dealloc)?.typed(&store)?) } else { None },
            memory,
            store,
        })
    }
}

impl BareInstance {
    async fn call(&mut self, request: &[u8], release: bool) -> anyhow::Result<Vec<u8>> {
        self.store.set_epoch_deadline(1_000_000);
        self.store.set_fuel(u64::MAX)?;
        let ptr = self.alloc.call_async(&mut self.store, request.len() as i32).await?;
        self.memory.write(&mut self.store, ptr as usize, request)?;
        let packed = self.call.call_async(&mut self.store, (ptr, request.len() as i32)).await? as u64;
        let (p, l) = ((packed >> 32) as usize, (packed & 0xffff_ffff) as usize);
        let out = self.memory.data(&self.store)[p..p + l].to_vec();
        if let Some(dealloc) = self.dealloc.as_ref().filter(|_| release) {
            dealloc.call_async(&mut self.store, (p as i32, l as i32)).await?;
        }
        Ok(out)
    }

    /// Fuel one warm call of `request` uses, after a first call has done the instance's
    /// one-time set-up.
    async fn fuel(&mut self, request: &[u8]) -> anyhow::Result<u64> {
        self.call(request, true).await?;
        self.call(request, true).await?;
        Ok(u64::MAX - self.store.get_fuel()?)
    }
}

/// Wasm operators one warm call of `request` runs on an instance of `module`, and its response.
pub async fn fuel(module: &Path, request: &[u8]) -> anyhow::Result<(u64, Vec<u8>)> {
    let b = bare(module, &RuntimeConfig { max_instances: 4, ..RuntimeConfig::default() })?;
    let mut instance = b.instance(true).await?;
    let fuel = instance.fuel(request).await?;
    Ok((fuel, instance.call(request, true).await?))
}

/// Runs `op` `n` times after a warm-up of `n / 10`; returns (per-call µs, p99 µs).
async fn measure<F, Fut>(n: usize, mut op: F) -> anyhow::Result<(f64, f64)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    // WASMRPC_BENCH_REPEAT=k runs k times as many calls (for profiling one row).
    let n = n * std::env::var("WASMRPC_BENCH_REPEAT").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    for _ in 0..n / 10 {
        op().await?; // warm-up
    }
    let mut samples = Samples::with_capacity(n);
    let started = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        op().await?;
        samples.push(t.elapsed());
    }
    Ok((started.elapsed().as_secs_f64() * 1e6 / n as f64, samples.quantile_us(0.99)))
}

/// Each row's results, one per round, in the order the rows first ran.
#[derive(Default)]
struct Rounds(Vec<(&'static str, Vec<f64>, Vec<f64>)>);

impl Rounds {
    fn add(&mut self, name: &'static str, (us, p99): (f64, f64)) {
        match self.0.iter_mut().find(|(n, ..)| *n == name) {
            Some((_, all_us, all_p99)) => {
                all_us.push(us);
                all_p99.push(p99);
            }
            None => self.0.push((name, vec![us], vec![p99])),
        }
    }

    /// Each row's median round (its p99 is the median of the rounds' p99s).
    fn rows(self) -> Vec<Row> {
        self.0
            .into_iter()
            .map(|(name, mut us, mut p99)| Row { name, per_call_us: median(&mut us), p99_us: median(&mut p99) })
            .collect()
    }
}

/// The in-process table. `plugins` holds the built `.wasm` files; `quick` shortens the runs.
/// Runs the table: every row on a single-threaded runtime (the cost of the work itself), then
/// the RPC rows again on a two-worker runtime, where client and server tasks wake each other
/// across threads.
///
/// The rows run in a spawned task, as a service's callers do. Under `block_on` itself, every
/// wake-up of the caller would also poll tokio's I/O driver (an `epoll_wait` per call).
pub fn run_on_own_runtimes(plugins: &Path, quick: bool) -> anyhow::Result<Table> {
    let single = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut table = single.block_on(single.spawn(run(plugins.to_owned(), quick, false)))??;
    drop(single);
    let multi = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    table.rows.extend(multi.block_on(multi.spawn(run(plugins.to_owned(), quick, true)))??.rows);
    Ok(table)
}

fn wanted(name: &str) -> bool {
    std::env::var("WASMRPC_BENCH_ONLY").map_or(true, |only| name.contains(&only))
}

/// Sets every row up, then measures them in rounds: each row once per round, `reps` rounds,
/// each row reporting its median round. This VM's speed drifts by 1.5–2× over seconds; in
/// rounds a slow spell falls on every row alike instead of on whichever row ran then, so the
/// rows stay comparable with each other.
async fn run(plugins: std::path::PathBuf, quick: bool, rpc_only: bool) -> anyhow::Result<Table> {
    let (n_fresh, n_warm, reps) = if quick { (2_000, 20_000, 3) } else { (20_000, 200_000, 5) };
    let calculator = plugins.join("calculator.wasm");
    // WASMRPC_BENCH_ON_DEMAND=1 turns the pooling allocator off everywhere: valgrind cannot map
    // its pool, and instruction counts of the other work per call need valgrind.
    let pooling = std::env::var_os("WASMRPC_BENCH_ON_DEMAND").is_none();
    let runtime_config = RuntimeConfig { max_instances: 200, pooling, ..RuntimeConfig::default() };

    let b = bare(&calculator, &runtime_config)?;
    let guest = if rpc_only {
        None
    } else {
        let mut instance = b.instance(true).await?;
        Some(GuestWork { bare: instance.fuel(REQUEST).await?, rpc: instance.fuel(RPC_REQUEST).await? })
    };
    let bare_fresh = wanted("bare wasmtime: fresh") && !rpc_only;
    // `measure` awaits each call before it starts the next, so `try_lock` always succeeds: one
    // uncontended atomic, a few nanoseconds of the baseline.
    let bare_warm = if wanted("bare wasmtime: warm") && !rpc_only {
        Some(tokio::sync::Mutex::new(b.instance(true).await?))
    } else {
        None
    };

    // wasmrpc's runtime, called directly (no RPC).
    let dir = tempfile::tempdir()?;
    let fresh_manifest = write_manifest(dir.path(), "calc-fresh", &calculator, "calc_fresh", "")?;
    let warm_manifest = write_manifest(
        dir.path(),
        "calc-warm",
        &calculator,
        "calc_warm",
        "[instance]\nmode = \"warm\"\nmax_invocations = 1000000\nmax_concurrency = 64\n",
    )?;
    let runtime = Runtime::new(runtime_config.clone())?;
    let args: Map<String, Value> = json!({"a": 1, "b": 2}).as_object().cloned().unwrap_or_default();
    let ctx = Map::new();
    let mut plugins = Vec::new();
    for (name, path) in [
        ("wasmrpc runtime: fresh instance + call", &fresh_manifest),
        ("wasmrpc runtime: warm instance call", &warm_manifest),
    ] {
        if wanted(name) && !rpc_only {
            plugins.push((name, runtime.load(&manifest::load_file(path)?, None).await?));
        }
    }

    // A whole RPC over memory://.
    let url = format!("memory://bench-{}/", wasmrpc::protocol::new_id());
    let mut config = HostConfig::new();
    config.transport_url = wasmrpc::TransportUrl::parse(&url)?;
    config.manifests = dir.path().to_owned();
    config.runtime = runtime_config;
    config.watch = false;
    // The same warm endpoint on two more hosts, alike but for metrics: one keeps none, the
    // other keeps them and has its HTTP listener scraped every second (Prometheus scrapes every
    // 15 s by default). The pair is what `--http` costs a call.
    let mut side_hosts = Vec::new();
    for (row, observed) in [(UNOBSERVED_ROW, false), (OBSERVED_ROW, true)] {
        if !wanted(row) || rpc_only {
            continue;
        }
        let dir = tempfile::tempdir()?;
        let topic = if observed { "calc_warm_observed" } else { "calc_warm_unobserved" };
        write_manifest(
            dir.path(),
            topic,
            &calculator,
            topic,
            "[instance]\nmode = \"warm\"\nmax_invocations = 1000000\nmax_concurrency = 64\n",
        )?;
        let mut c = config.clone();
        c.manifests = dir.path().to_owned();
        side_hosts.push((row, topic, SideHost::start(c, observed).await?, dir));
    }
    let host = Host::start(config).await?;
    let transport = wasmrpc::transport::connect(&config_url(&url)?, Default::default()).await?;
    let rpc_rows = if rpc_only {
        [
            ("RPC over memory://, 2 worker threads: fresh instance", "calc_fresh"),
            ("RPC over memory://, 2 worker threads: warm instance", "calc_warm"),
        ]
    } else {
        [("RPC over memory://: fresh instance", "calc_fresh"), ("RPC over memory://: warm instance", "calc_warm")]
    };
    let clients: Vec<_> = rpc_rows
        .into_iter()
        .filter(|(name, _)| wanted(name))
        .map(|(name, topic)| (name, RpcClient::new(transport.clone(), Target::topic(topic))))
        .collect();
    // The RPC layer alone: the same call answered by a Rust endpoint, no Wasm.
    let native_name = "RPC over memory://: a Rust endpoint (no Wasm)";
    let native = if wanted(native_name) && !rpc_only { Some(native_add(&transport).await?) } else { None };

    let side_clients: Vec<_> = side_hosts
        .iter()
        .map(|(row, topic, ..)| (*row, RpcClient::new(transport.clone(), Target::topic(*topic))))
        .collect();
    let mut rounds = Rounds::default();
    for _ in 0..reps {
        if bare_fresh {
            let r =
                measure(n_fresh, || async { b.instance(false).await?.call(REQUEST, false).await.map(drop) }).await?;
            rounds.add("bare wasmtime: fresh instance + call", r);
        }
        if let Some(warm) = &bare_warm {
            let r = measure(n_warm, || async { warm.try_lock()?.call(REQUEST, true).await.map(drop) }).await?;
            rounds.add("bare wasmtime: warm instance call", r);
        }
        for (name, plugin) in &plugins {
            let n = if name.contains("fresh") { n_fresh } else { n_warm };
            let call = || async { plugin.call("add", &args, &ctx, None).await.map(drop).map_err(Into::into) };
            rounds.add(name, measure(n, call).await?);
        }
        for (name, client) in &clients {
            let n = if name.contains("fresh") { n_fresh } else { n_warm / 4 };
            let call = || async { client.call(&ctx, "add", args.clone()).await.map(drop).map_err(Into::into) };
            rounds.add(name, measure(n, call).await?);
        }
        if let Some((client, _)) = &native {
            let call = || async { client.call(&ctx, "add", args.clone()).await.map(drop).map_err(Into::into) };
            rounds.add(native_name, measure(n_warm / 4, call).await?);
        }
        for (row, client) in &side_clients {
            let call = || async { client.call(&ctx, "add", args.clone()).await.map(drop).map_err(Into::into) };
            rounds.add(row, measure(n_warm / 4, call).await?);
        }
    }
    for (_, _, side, _dir) in side_hosts {
        side.stop().await;
    }
    if let Some((_, server)) = native {
        server.stop().await;
    }
    host.stop().await.ok();
    Ok(Table { rows: rounds.rows(), guest })
}

/// A warm call to a host of its own that keeps no metrics: the baseline of [`OBSERVED_ROW`].
const UNOBSERVED_ROW: &str = "RPC over memory://: warm instance, a host of its own, metrics off";
/// The same, on a host that keeps metrics and is being scraped.
const OBSERVED_ROW: &str =
    "RPC over memory://: warm instance, a host of its own, metrics on (--http, scraped every second)";

/// A host of the metrics pair, and (metrics on) its HTTP listener and a scraper.
struct SideHost {
    host: Host,
    observed: Option<(wasmrpc::http::HttpServer, tokio::task::JoinHandle<()>)>,
}

impl SideHost {
    async fn start(config: HostConfig, observed: bool) -> anyhow::Result<SideHost> {
        if !observed {
            return Ok(SideHost { host: Host::start(config).await?, observed: None });
        }
        let (host, http) = observed_host(config).await?;
        let addr = http.local_addr();
        let scraper = tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                let _ = tokio::task::spawn_blocking(move || scrape(addr)).await;
            }
        });
        Ok(SideHost { host, observed: Some((http, scraper)) })
    }

    async fn stop(self) {
        if let Some((http, scraper)) = self.observed {
            scraper.abort();
            http.stop().await;
        }
        self.host.stop().await.ok();
    }
}

/// A host that keeps metrics, with its HTTP listener on a free loopback port (as `wasmrpc
/// serve --http` runs it).
pub async fn observed_host(config: HostConfig) -> anyhow::Result<(Host, wasmrpc::http::HttpServer)> {
    let metrics = Arc::new(wasmrpc::metrics::Metrics::new());
    let host = Host::start_observed(config, metrics.clone()).await?;
    let serving = Arc::new(wasmrpc::http::Serving::default());
    serving.serve(host.clone());
    let http = wasmrpc::http::HttpServer::start("127.0.0.1:0".parse()?, serving, metrics).await?;
    Ok((host, http))
}

/// One GET /metrics, read whole.
fn scrape(addr: std::net::SocketAddr) -> std::io::Result<()> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr)?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    s.read_to_end(&mut Vec::new()).map(drop)
}

/// A server for a Rust `add` endpoint on `transport`, and a client calling it.
async fn native_add(transport: &Arc<dyn wasmrpc::transport::Transport>) -> anyhow::Result<(RpcClient, RpcServer)> {
    native_add_on(transport, "native_add").await
}

/// A server for a Rust `add` endpoint (version 1.0) on `topic`, and a client calling it.
pub async fn native_add_on(
    transport: &Arc<dyn wasmrpc::transport::Transport>,
    topic: &str,
) -> anyhow::Result<(RpcClient, RpcServer)> {
    let target = ListenTarget { exchange: None, topic: topic.into(), server: "bench".into() };
    let endpoint: Arc<dyn Endpoint> = Arc::new(NativeAdd(EndpointTarget {
        namespace: None,
        legacy_namespaces: Vec::new(),
        version: Version::new(1, 0),
    }));
    let dispatcher = Arc::new(Dispatcher::new(vec![endpoint], Arc::new(NoOpSerializer)));
    let server = RpcServer::new(transport.clone(), target, dispatcher, ServerOptions::default());
    server.start().await?;
    Ok((RpcClient::new(transport.clone(), Target::topic(topic)), server))
}

/// `n` sequential calls of the Rust `add` endpoint over a fresh memory:// transport (after a
/// warm-up of `n / 10`); returns the time the `n` took.
pub async fn native_calls(n: usize) -> anyhow::Result<std::time::Duration> {
    let url = format!("memory://native-{}/", wasmrpc::protocol::new_id());
    let transport = wasmrpc::transport::connect(&config_url(&url)?, Default::default()).await?;
    let (client, server) = native_add(&transport).await?;
    let args: Map<String, Value> = json!({"a": 1, "b": 2}).as_object().cloned().unwrap_or_default();
    let ctx = Map::new();
    for _ in 0..n / 10 {
        client.call(&ctx, "add", args.clone()).await?;
    }
    let started = Instant::now();
    for _ in 0..n {
        client.call(&ctx, "add", args.clone()).await?;
    }
    let took = started.elapsed();
    server.stop().await;
    Ok(took)
}

/// `add(a, b)` in Rust: what the calculator plugin does, without Wasm.
#[derive(Debug)]
struct NativeAdd(EndpointTarget);

#[async_trait::async_trait]
impl Endpoint for NativeAdd {
    fn name(&self) -> &str {
        "native-add"
    }

    fn target(&self) -> &EndpointTarget {
        &self.0
    }

    fn has_method(&self, method: &str) -> bool {
        method == "add"
    }

    async fn invoke(
        &self,
        _method: &str,
        args: Map<String, Value>,
        _ctx: &CallContext,
        _deadline: Option<std::time::Instant>,
    ) -> Result<Value, RemoteFailure> {
        let arg = |k: &str| args.get(k).and_then(Value::as_i64).unwrap_or_default();
        Ok(Value::from(arg("a") + arg("b")))
    }
}

fn config_url(url: &str) -> anyhow::Result<wasmrpc::TransportUrl> {
    Ok(wasmrpc::TransportUrl::parse(url)?)
}

/// Writes a calculator manifest serving `module` on `topic`.
pub fn write_manifest(
    dir: &Path,
    name: &str,
    module: &Path,
    topic: &str,
    extra: &str,
) -> anyhow::Result<std::path::PathBuf> {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "name = \"{name}\"\nmodule = \"{}\"\n\n[target]\ntopic = \"{topic}\"\nversion = \"1.0\"\n{extra}",
            module.display()
        ),
    )?;
    Ok(path)
}
