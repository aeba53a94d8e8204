//! `wasmrpc invoke MANIFEST METHOD [JSON_ARGS] [--context JSON]`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::{CallError, manifest};
use anyhow::Context as _;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The endpoint's manifest.
    manifest: PathBuf,
    /// The method to call.
    method: String,
    /// Keyword arguments as a JSON object, e.g. '{"a": 2, "b": 3}'.
    args: Option<String>,
    /// The request context as a JSON object.
    #[arg(long)]
    context: Option<String>,
}

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let args = super::json_object("JSON_ARGS", a.args.as_deref())?;
    let context = super::json_object("--context", a.context.as_deref())?;
    let spec = manifest::load_file(&a.manifest)?;
    let runtime = super::local_runtime()?;
    let plugin = runtime.load(&spec, None).await.with_context(|| format!("cannot load {}", a.manifest.display()))?;
    if a.method.starts_with('_') || !plugin.has_method(&a.method) {
        let methods: Vec<&str> = plugin.description().methods.iter().map(|m| m.name.as_str()).collect();
        eprintln!("wasmrpc: endpoint {} has no method {:?}; it has: {}", spec.name, a.method, methods.join(", "));
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    match plugin.call(&a.method, &args, &context, None).await {
        Ok(value) => {
            println!("{value}");
            Ok(ExitCode::SUCCESS)
        }
        Err(CallError::Guest(e)) => {
            eprintln!("wasmrpc: {}.{} failed: {}: {}", spec.name, a.method, e.type_name, e.message);
            Ok(ExitCode::from(super::EXIT_REMOTE))
        }
        Err(e) => {
            eprintln!("wasmrpc: {e}");
            Ok(ExitCode::from(super::EXIT_REMOTE))
        }
    }
}
