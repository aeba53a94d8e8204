//! `wasmrpc check PATH...`: validates manifests (files, or every `*.toml` in a directory) and
//! loads their modules, reporting every problem found.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::manifest;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Manifest files or directories of manifests.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    let mut problems = 0usize;
    for path in &a.paths {
        if path.is_dir() {
            match manifest::discover(path) {
                Ok(found) if found.is_empty() => {
                    eprintln!("{}: no *.toml manifests in this directory", path.display());
                    problems += 1;
                }
                Ok(found) => files.extend(found),
                Err(e) => {
                    eprintln!("{}: cannot list the directory: {e}", path.display());
                    problems += 1;
                }
            }
        } else {
            files.push(path.clone());
        }
    }
    let runtime = super::local_runtime()?;
    let mut names: HashMap<String, PathBuf> = HashMap::new();
    for file in files {
        let spec = match manifest::load_file(&file) {
            Ok(spec) => spec,
            Err(e) => {
                eprintln!("{e}");
                problems += match &e {
                    manifest::ManifestError::Invalid { problems, .. } => problems.len(),
                    manifest::ManifestError::Read { .. } => 1,
                };
                continue;
            }
        };
        if let Some(other) = names.insert(spec.name.clone(), file.clone()) {
            eprintln!("{}: endpoint name {:?} is already used by {}", file.display(), spec.name, other.display());
            problems += 1;
        }
        match runtime.load(&spec, None).await {
            Ok(plugin) => {
                let methods: Vec<&str> = plugin.description().methods.iter().map(|m| m.name.as_str()).collect();
                println!(
                    "ok {}: endpoint {} ({}), methods: {}",
                    file.display(),
                    spec.name,
                    &plugin.sha256()[..12],
                    methods.join(", ")
                );
            }
            Err(e) => {
                eprintln!("{e}");
                problems += 1;
            }
        }
    }
    if problems > 0 {
        eprintln!("{problems} problem{} found", if problems == 1 { "" } else { "s" });
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    Ok(ExitCode::SUCCESS)
}
