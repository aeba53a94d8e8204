//! `wasmrpc-bench`: wasmrpc measured against its baselines. `bench/run` builds everything in
//! release mode and runs `wasmrpc-bench all`, which fills `bench/BENCHMARKS.template.md` into
//! `BENCHMARKS.md`. Each part can also run alone.
//!
//! A plain harness rather than criterion: every figure here is a ratio between rows measured
//! in the same run, the end-to-end rows need servers in other processes, and the report needs
//! the numbers, not criterion's HTML.

mod chaos;
mod components;
mod dev_loop;
mod echo;
mod gateway;
mod inproc;
mod outbound;
mod python;
mod reliability;
mod reload;
mod report;
mod rpc;
mod scale;
mod soak;
mod stats;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

// The same allocator as the `wasmrpc` binary, so in-process rows measure what a host runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "wasmrpc-bench", about = "wasmrpc's benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Directory of the built plugins (wasm32-wasip1 release).
    #[arg(long, global = true, default_value = "plugins/target/wasm32-wasip1/release")]
    plugins: PathBuf,
    /// Shorter runs, for a quick look.
    #[arg(long, global = true)]
    quick: bool,
    /// The release `wasmrpc` binary.
    #[arg(long, global = true, default_value = "target/release/wasmrpc")]
    wasmrpc: PathBuf,
    /// A Python with oslo.messaging.
    #[arg(long, global = true, default_value = ".venv/bin/python")]
    python: PathBuf,
    /// The oslo.messaging baseline script.
    #[arg(long, global = true, default_value = "../shared/bench/oslo_baseline.py")]
    oslo_baseline: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Everything, written into BENCHMARKS.md.
    All {
        /// Where to write the report.
        #[arg(long, default_value = "BENCHMARKS.md")]
        out: PathBuf,
        /// The report template.
        #[arg(long, default_value = "bench/BENCHMARKS.template.md")]
        template: PathBuf,
    },
    /// In-process: bare wasmtime, wasmrpc's runtime, RPC over memory://.
    Inproc,
    /// What a Python component costs: compile, cache load, warm and fresh calls, memory.
    Components {
        /// Directory of the built Python components.
        #[arg(long, default_value = "plugins/target/python")]
        python_plugins: PathBuf,
    },
    /// RPC over RabbitMQ against the echo ceiling and the Python server.
    Rpc,
    /// A guest's outbound call over RabbitMQ against the same call made directly.
    Outbound,
    /// A Python endpoint as a wasmrpc component against a native oslo.messaging server running
    /// the same Python code, over RabbitMQ.
    Python,
    /// The HTTP gateway at 64 calls in flight against the same call in-process (memory://).
    Gateway,
    /// Hot-reload latency.
    Reload,
    /// `wasmrpc dev`: from saving a source file to the first call answered by the new build
    /// (median over 20 edits), beside the build's own time.
    DevLoop {
        /// The template: `rust` (a crate) or `python` (an endpoint class built into a component).
        #[arg(long, value_enum, default_value_t = dev_loop::Lang::Rust)]
        lang: dev_loop::Lang,
    },
    /// Start-up time and memory with many endpoints.
    Scale,
    /// The broker-ceiling echo server (used by `rpc`).
    EchoServer {
        #[arg(long)]
        topic: String,
        /// Publish replies as oslo does: mandatory, awaiting the publisher confirm.
        #[arg(long)]
        confirm: bool,
    },
    /// The RPC layer alone: `calls` calls over memory:// answered by a Rust endpoint, on one
    /// thread. For counting instructions per call (`valgrind --tool=callgrind`, see
    /// BENCHMARKS.md): no wasmtime, so valgrind can run it.
    NativeCalls {
        #[arg(long, default_value_t = 1000)]
        calls: usize,
    },
    /// The guest's own work for one warm call: Wasm operators (fuel) a second call of `request`
    /// runs on one instance of `module`, and the response. For weighing guest-side changes,
    /// which timing on this VM cannot tell apart.
    Fuel {
        /// The `.wasm` file.
        #[arg(long)]
        module: PathBuf,
        /// The request JSON, as the runtime writes it (`{"method", "args", "context"}`).
        #[arg(long)]
        request: String,
    },
    /// The fault run (issue 17): a host under load from Rust and Python clients through a broker
    /// restart, close_all_connections and 100 reloads; `scripts/chaos` runs it. `rabbitmqctl`
    /// acts on the node RABBITMQ_NODENAME names: use a broker of your own.
    Chaos {
        /// The broker [default: WASMRPC_TEST_RABBIT_URL, else the local one].
        #[arg(long)]
        url: Option<String>,
        /// Where the figures go (JSON).
        #[arg(long, default_value = "target/reliability/chaos.json")]
        out: PathBuf,
    },
    /// The soak: `calls` calls against one in-process host over memory://, RSS and open file
    /// descriptors sampled every tenth; the figures go to `out` for RELIABILITY.md.
    Soak {
        #[arg(long, default_value_t = 1_000_000)]
        calls: u64,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long, default_value = "target/reliability/soak.json")]
        out: PathBuf,
    },
    /// Writes RELIABILITY.md from its template and the figures in `figures` (`scripts/reliability`).
    Reliability {
        #[arg(long, default_value = "RELIABILITY.md")]
        out: PathBuf,
        #[arg(long, default_value = "bench/RELIABILITY.template.md")]
        template: PathBuf,
        #[arg(long, default_value = "target/reliability")]
        figures: PathBuf,
        /// The build profile the figures were measured with.
        #[arg(long, default_value = "debug")]
        profile: String,
    },
    /// Calls `add` on a topic over RabbitMQ for a while (load for profiling a host).
    Load {
        #[arg(long)]
        topic: String,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    for path in [&mut cli.plugins, &mut cli.wasmrpc, &mut cli.python, &mut cli.oslo_baseline] {
        *path = std::path::absolute(&*path)?;
    }
    if let Command::EchoServer { topic, confirm } = &cli.command {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        return rt.block_on(echo::serve("amqp://guest:guest@127.0.0.1:5672/%2f", topic, *confirm));
    }
    if let Command::NativeCalls { calls } = &cli.command {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        // In a task, as the in-process table runs (see inproc.rs).
        let took = rt.block_on(rt.spawn(inproc::native_calls(*calls)))??;
        println!("{calls} calls in {took:?}: {:.2} µs per call", took.as_secs_f64() * 1e6 / *calls as f64);
        return Ok(());
    }
    if let Command::Fuel { module, request } = &cli.command {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (fuel, response) = rt.block_on(inproc::fuel(module, request.as_bytes()))?;
        println!("{fuel} operators: {}", String::from_utf8_lossy(&response));
        return Ok(());
    }
    // The client side runs like the host does: a multi-threaded runtime.
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let bench_exe = std::env::current_exe()?;
    let root = std::path::absolute(".")?;
    rt.block_on(async {
        match &cli.command {
            Command::All { out, template } => {
                let started = std::time::Instant::now();
                eprintln!("in-process…");
                let (plugins, quick) = (cli.plugins.clone(), cli.quick);
                let inproc =
                    tokio::task::spawn_blocking(move || inproc::run_on_own_runtimes(&plugins, quick)).await??;
                eprintln!("hot reload…");
                let reload = reload::run(&cli.plugins, cli.quick).await?;
                eprintln!("scale…");
                let scale = scale::run(&cli.wasmrpc, &cli.plugins, cli.quick).await?;
                eprintln!("RPC over RabbitMQ…");
                let rpc = rpc::run(&bench_exe, &cli.wasmrpc, &cli.python, &cli.oslo_baseline, &cli.plugins, cli.quick)
                    .await?;
                eprintln!("outbound calls from a guest…");
                let outbound = outbound::run(&cli.plugins, cli.quick).await?;
                eprintln!("Python endpoints…");
                let python =
                    python::run(&cli.wasmrpc, &cli.python, &python_plugins(&cli.plugins), &root, cli.quick).await?;
                eprintln!("Python components…");
                let components = components::run(&python_plugins(&cli.plugins), cli.quick).await?;
                let tables = report::Tables {
                    inproc,
                    rpc,
                    reload,
                    scale,
                    outbound,
                    python,
                    components,
                    took: started.elapsed(),
                };
                report::write(template, out, &tables, cli.quick)?;
                eprintln!("wrote {}", out.display());
            }
            Command::Inproc => {
                // In-process costs are measured on one thread (see inproc.rs).
                let plugins = cli.plugins.clone();
                let quick = cli.quick;
                let table = tokio::task::spawn_blocking(move || inproc::run_on_own_runtimes(&plugins, quick)).await??;
                print!("{}\n{}\n", report::inproc_table(&table), report::inproc_targets(&table));
            }
            Command::Components { python_plugins } => print!("{}", components::run(python_plugins, cli.quick).await?),
            Command::Rpc => {
                let rows = rpc::run(&bench_exe, &cli.wasmrpc, &cli.python, &cli.oslo_baseline, &cli.plugins, cli.quick)
                    .await?;
                print!("{}", report::rpc_table(&rows));
            }
            Command::Gateway => print!("{}", gateway::run(&cli.plugins, cli.quick).await?),
            Command::Outbound => print!("{}", outbound::run(&cli.plugins, cli.quick).await?),
            Command::DevLoop { lang } => {
                print!("{}", dev_loop::run(*lang, &cli.wasmrpc, &cli.plugins, cli.quick).await?)
            }
            Command::Python => {
                let rows =
                    python::run(&cli.wasmrpc, &cli.python, &python_plugins(&cli.plugins), &root, cli.quick).await?;
                print!("{}", report::python_table(&rows));
            }
            Command::Reload => print!("{}", report::reload_table(&reload::run(&cli.plugins, cli.quick).await?)),
            Command::Scale => {
                print!("{}", report::scale_table(&scale::run(&cli.wasmrpc, &cli.plugins, cli.quick).await?))
            }
            Command::Soak { calls, concurrency, out } => {
                let mut soak = soak::run(&cli.plugins, *calls, *concurrency).await?;
                soak.command = format!("wasmrpc-bench soak --calls {calls} --concurrency {concurrency}");
                soak::save(&soak, out)?;
                println!("{}", serde_json::to_string_pretty(&soak)?);
            }
            Command::Reliability { out, template, figures, profile } => {
                reliability::write(template, out, figures, &report::machine(profile))?;
                eprintln!("wrote {}", out.display());
            }
            Command::Load { topic, seconds, concurrency } => {
                let n = rpc::load(topic, std::time::Duration::from_secs(*seconds), *concurrency).await?;
                println!("{n} calls in {seconds} s: {:.0}/s", n as f64 / *seconds as f64);
            }
            Command::Chaos { url, out } => {
                let url = url.clone().or_else(|| std::env::var("WASMRPC_TEST_RABBIT_URL").ok());
                let url = url.unwrap_or_else(|| "rabbit://guest:guest@127.0.0.1:5672/".into());
                let figures = chaos::run(&cli.wasmrpc, &cli.python, &cli.plugins, &url, out).await?;
                println!("{}", serde_json::to_string_pretty(&figures)?);
            }
            Command::EchoServer { .. } | Command::NativeCalls { .. } | Command::Fuel { .. } => {
                unreachable!("handled above")
            }
        }
        Ok(())
    })
}

/// The Python components: `plugins/target/python`, beside the wasm32-wasip1 release directory.
fn python_plugins(plugins: &std::path::Path) -> PathBuf {
    plugins.join("../../python")
}

#[cfg(test)]
mod tests {
    /// The soak as `scripts/reliability` runs it: `cargo test --workspace --bin wasmrpc-bench --
    /// --ignored --exact tests::soak` (the test build shares the workspace's compiled
    /// dependencies, so no separate build of the benchmark binary). `WASMRPC_SOAK_CALLS`
    /// (default 1,000,000) calls; the figures go to target/reliability/soak.json.
    #[tokio::test(flavor = "multi_thread")]
    #[ignore = "minutes long; scripts/reliability runs it"]
    async fn soak() {
        let calls: u64 = std::env::var("WASMRPC_SOAK_CALLS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let plugins = root.join("plugins/target/wasm32-wasip1/release");
        let mut soak = crate::soak::run(&plugins, calls, 64).await.unwrap();
        soak.command = format!("WASMRPC_SOAK_CALLS={calls} scripts/reliability (wasmrpc-bench's soak test)");
        crate::soak::save(&soak, &root.join("target/reliability/soak.json")).unwrap();
        println!("{}", serde_json::to_string_pretty(&soak).unwrap());
        assert_eq!(soak.failed, 0);
    }

    /// RELIABILITY.md from the template and target/reliability/, as `scripts/reliability` runs
    /// it (`wasmrpc-bench reliability` does the same from a built binary).
    #[test]
    #[ignore = "writes RELIABILITY.md; scripts/reliability runs it"]
    fn reliability_md() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        std::env::set_current_dir(&root).unwrap();
        crate::reliability::write(
            &root.join("bench/RELIABILITY.template.md"),
            &root.join("RELIABILITY.md"),
            &root.join("target/reliability"),
            &crate::report::machine("debug"),
        )
        .unwrap();
    }
}
