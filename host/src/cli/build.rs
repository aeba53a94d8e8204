//! `wasmrpc build [MANIFEST...]`: runs each manifest's `[build]` command (every manifest in the
//! manifest directory by default), its output streamed, and stops at the first that fails.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use crate::builds::{self, BuildEvent, BuildLog, BuildOutcome, Echo};
use crate::manifest::{self, BuildTarget};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Manifests to build [default: every *.toml in --manifests].
    manifests: Vec<PathBuf>,
    /// The manifest directory read when no MANIFEST is given.
    #[arg(long = "manifests", value_name = "DIR", default_value = "manifests")]
    dir: PathBuf,
}

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let paths = if a.manifests.is_empty() {
        let found = manifest::discover(&a.dir).with_context(|| format!("cannot list {}", a.dir.display()))?;
        anyhow::ensure!(!found.is_empty(), "no manifests (*.toml) in {}", a.dir.display());
        found
    } else {
        a.manifests
    };
    // Every manifest is read before anything is built: a typo in the last one should not cost
    // a build of the first.
    let targets = paths.iter().map(|p| manifest::build_target(p)).collect::<Result<Vec<_>, _>>()?;
    let log = BuildLog::new(targets.len());
    for target in &targets {
        if target.build.is_none() {
            eprintln!("{}: no [build] section; skipped", shown(&target.manifest_path));
            continue;
        }
        let Some(event) = build_one(target, &log, Echo::Passthrough).await else { continue };
        if let BuildOutcome::Failed { status } = &event.outcome {
            eprintln!("wasmrpc: the build of {} ({}) failed: {status}", target.name, shown(&target.manifest_path));
            return Ok(ExitCode::from(super::EXIT_REMOTE));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs one build with a line before and after it (shared with `wasmrpc dev`).
pub(super) async fn build_one(target: &BuildTarget, log: &BuildLog, echo: Echo) -> Option<BuildEvent> {
    let build = target.build.as_ref()?;
    eprintln!("building {}: {} (in {})", target.name, build.command, shown(&build.workdir));
    let event = builds::run(target, log, echo).await?;
    let took = seconds(event.took.unwrap_or_default());
    if event.outcome == BuildOutcome::Succeeded {
        if target.module_path.is_file() {
            eprintln!("built {} in {took}", target.name);
        } else {
            eprintln!(
                "built {} in {took}, but its module {} is not there: check the manifest's `module` against what \
                 the command writes",
                target.name,
                shown(&target.module_path)
            );
        }
    }
    Some(event)
}

fn seconds(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

/// `path` relative to the current directory when it is below it (shorter lines).
fn shown(path: &Path) -> String {
    let relative = std::env::current_dir().ok().and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_owned));
    match relative {
        Some(r) if r.as_os_str().is_empty() => ".".to_owned(),
        Some(r) => r.display().to_string(),
        None => path.display().to_string(),
    }
}
