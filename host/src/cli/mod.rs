//! The `wasmrpc` command line: clap structs, logging set-up, dispatch to each subcommand, and
//! exit statuses. `src/main.rs` only calls [`main`].

mod build;
mod call;
mod check;
mod config;
mod dev;
mod invoke;
mod listen;
mod log_file;
mod log_line;
mod new;
mod notify;
mod serve;
mod systemd;

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

/// The call reached the endpoint and failed (a remote error, a guest error or a trap).
pub const EXIT_REMOTE: u8 = 1;
/// Bad input: arguments, manifests, configuration, an unreachable broker.
pub const EXIT_USAGE: u8 = 2;
/// The call timed out.
pub const EXIT_TIMEOUT: u8 = 3;

/// The version `--version` prints: the crate's, and the git revision it was built from.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (git ", env!("WASMRPC_GIT_REVISION"), ")");

/// An oslo.messaging-compatible RPC host whose endpoints are sandboxed WebAssembly modules.
#[derive(Debug, Parser)]
#[command(name = "wasmrpc", version = VERSION, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log lines as text (for people) or as JSON objects, one per line (for log pipelines).
    #[arg(long, global = true, value_enum, env = "WASMRPC_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Append the log to this file instead of stderr; `wasmrpc serve` reopens it on SIGHUP
    /// (for logrotate).
    #[arg(long, global = true, value_name = "FILE", env = "WASMRPC_LOG_FILE")]
    pub log_file: Option<PathBuf>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `2026-12-01T03:00:00Z INFO req{request_id=req-…}: wasmrpc::host: …`
    Text,
    /// `{"timestamp":…,"level":"INFO","fields":{…},"target":…,"span":{…}}`
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve every endpoint in the manifest directory (and the control endpoint).
    Serve(serve::Args),
    /// Call a method and print its result.
    Call(call::Args),
    /// Cast a method (no reply).
    Cast(call::Args),
    /// Publish a notification, as oslo's Notifier does.
    Notify(notify::Args),
    /// Print notifications as they arrive.
    Listen(listen::Args),
    /// Load one manifest, call a method in-process and print the JSON result.
    Invoke(invoke::Args),
    /// Validate manifests and their modules; report every problem found.
    Check(check::Args),
    /// Create a plugin project: an endpoint crate, its manifest and a README.
    New(new::Args),
    /// Run each manifest's `[build]` command (every manifest in the directory by default).
    Build(build::Args),
    /// Build, serve (memory:// and the HTTP gateway by default) and rebuild on every change.
    Dev(dev::Args),
}

/// Parses the command line, runs the subcommand, and returns its exit status.
pub fn main() -> ExitCode {
    let args = Cli::parse();
    if let Err(e) = init_logging(&args) {
        eprintln!("wasmrpc: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wasmrpc: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wasmrpc: {}", one_line(&e));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// The error and its causes on one line, each said once: our errors spell out their source in
/// their own text (so a log line is complete), and `{:#}` would print it again.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}

/// lapin's target for returned messages (see `init_logging`).
const LAPIN_RETURNS_OFF: &str = "lapin::returned_messages=off";
/// wasmtime-wasi's per-call spans and chatter (see `init_logging`).
const WASI_SPANS_OFF: &str = "wasmtime_wasi=warn";

/// Logs go to stderr or `--log-file`, as text or JSON; `RUST_LOG` overrides the default filter
/// of each command (except that lapin's returned-message warnings, which print bodies, stay
/// off). Colours only on a terminal, and never with `NO_COLOR` set (no-color.org): escape
/// codes in a file or in journald are noise.
fn init_logging(cli: &Cli) -> Result<(), String> {
    let default = match cli.command {
        // The result or the one-line error says it all; still show what the guest logs.
        Command::Invoke(_) => "error,wasmrpc::guest=info",
        Command::Check(_) | Command::Call(_) | Command::Cast(_) | Command::Notify(_) | Command::Listen(_) => {
            "warn,wasmrpc::guest=info"
        }
        Command::New(_) | Command::Build(_) => "warn",
        Command::Serve(_) | Command::Dev(_) => "info",
    };
    let from_env = std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty());
    let mut filter = match &from_env {
        Some(v) => EnvFilter::try_new(v).map_err(|e| format!("RUST_LOG={v}: {e}"))?,
        None => EnvFilter::new(default),
    };
    // wasmtime-wasi opens an info-level span for every WASI call a guest makes; on a guest's
    // own log line it would bury the call's request ids (`req{...}:fd_write{ciovs=...}`).
    // Asked for by name in RUST_LOG, they stay.
    if !from_env.as_deref().is_some_and(|v| v.contains("wasmtime_wasi")) {
        filter = filter.add_directive(WASI_SPANS_OFF.parse().map_err(|e| format!("{WASI_SPANS_OFF}: {e}"))?);
    }
    let filter = filter
        // lapin warns of every message the broker returns with the message whole, body included,
        // again at each retry: a caller naming a missing reply queue would fill the log with
        // reply bodies. The RPC server reports unroutable replies itself, without bodies.
        .add_directive(LAPIN_RETURNS_OFF.parse().map_err(|e| format!("{LAPIN_RETURNS_OFF}: {e}"))?);
    let (writer, terminal) = match &cli.log_file {
        Some(path) => {
            let file = log_file::LogFile::install(path)
                .map_err(|e| format!("cannot open the log file {}: {e}", path.display()))?;
            (BoxMakeWriter::new(Arc::clone(&file)), false)
        }
        None => (BoxMakeWriter::new(std::io::stderr), std::io::stderr().is_terminal()),
    };
    let writer = log_line::OneLinePerEvent(writer);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match cli.log_format {
        LogFormat::Text => {
            let colour = terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            builder.with_ansi(colour).init();
        }
        // The spans carry a call's request ids (see `rpc::server`): `span` is the innermost,
        // `spans` all of them.
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(true).init(),
    }
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Call(args) => call::run(args, false).await,
        Command::Cast(args) => call::run(args, true).await,
        Command::Notify(args) => notify::run(args).await,
        Command::Listen(args) => listen::run(args).await,
        Command::Invoke(args) => invoke::run(args).await,
        Command::Check(args) => check::run(args).await,
        Command::New(args) => new::run(args).await,
        Command::Build(args) => build::run(args).await,
        Command::Dev(args) => dev::run(args).await,
    }
}

/// The runtime `check` and `invoke` load one manifest with: `serve`'s compiled-module cache
/// (the default directory), so a module, above all a Python component with CPython in it, is
/// compiled once for all three commands rather than on every run.
fn local_runtime() -> anyhow::Result<crate::Runtime> {
    let cache_dir = crate::HostConfig::new().runtime.cache_dir;
    Ok(crate::Runtime::new(crate::RuntimeConfig { max_instances: 16, cache_dir, ..crate::RuntimeConfig::default() })?)
}

/// Parses a JSON object given on the command line.
pub fn json_object(what: &str, text: Option<&str>) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let Some(text) = text else {
        return Ok(serde_json::Map::new());
    };
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(other) => {
            anyhow::bail!("{what} must be a JSON object such as '{{\"a\": 1}}', not {other}")
        }
        Err(e) => anyhow::bail!("{what} is not valid JSON ({e}): {text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn an_error_chain_is_one_line_without_repeats() {
        let io = std::io::Error::other("disk on fire");
        let e = anyhow::Error::new(crate::runtime::LoadError::Read {
            endpoint: "calc".into(),
            path: "calc.wasm".into(),
            source: io,
        })
        .context("cannot load calc.toml");
        assert_eq!(one_line(&e), "cannot load calc.toml: endpoint calc: cannot read module calc.wasm: disk on fire");
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(one_line(&e), "outer: inner");
    }
}
