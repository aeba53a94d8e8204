//! The `wasmrpc` command line: clap structs, logging set-up, dispatch to each subcommand, and
//! exit statuses. `src/main.rs` only calls [`main`].

mod call;
mod check;
mod config;
mod invoke;
mod listen;
mod log_line;
mod new;
mod notify;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// The call reached the endpoint and failed (a remote error, a guest error or a trap).
pub const EXIT_REMOTE: u8 = 1;
/// Bad input: arguments, manifests, configuration, an unreachable broker.
pub const EXIT_USAGE: u8 = 2;
/// The call timed out.
pub const EXIT_TIMEOUT: u8 = 3;

/// An oslo.messaging-compatible RPC host whose endpoints are sandboxed WebAssembly modules.
#[derive(Debug, Parser)]
#[command(name = "wasmrpc", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
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
}

/// Parses the command line, runs the subcommand, and returns its exit status.
pub fn main() -> ExitCode {
    let args = Cli::parse();
    init_logging(&args);
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

/// Logs go to stderr; `RUST_LOG` overrides the default filter of each command (except that
/// lapin's returned-message warnings, which print bodies, stay off).
fn init_logging(cli: &Cli) {
    let default = match cli.command {
        // The result or the one-line error says it all; still show what the guest logs.
        Command::Invoke(_) => "error,wasmrpc::guest=info",
        Command::Check(_) | Command::Call(_) | Command::Cast(_) | Command::Notify(_) | Command::Listen(_) => {
            "warn,wasmrpc::guest=info"
        }
        Command::New(_) => "warn",
        Command::Serve(_) => "info",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(default))
        // lapin warns of every message the broker returns with the message whole, body included,
        // again at each retry: a caller naming a missing reply queue would fill the log with
        // reply bodies. The RPC server reports unroutable replies itself, without bodies.
        .add_directive(LAPIN_RETURNS_OFF.parse().expect("a valid directive"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(log_line::OneLinePerEvent(std::io::stderr)).init();
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
    }
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
