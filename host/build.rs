//! Records the git revision the binary was built from, for `wasmrpc --version` and the
//! `wasmrpc_build_info` metric. Outside a git checkout (a source tarball) it says `unknown`;
//! `WASMRPC_GIT_REVISION` set at build time (a packager's) wins.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=WASMRPC_GIT_REVISION");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new(".")).to_owned();
    // A commit moves HEAD or the branch it points to; watching both reruns this on each commit.
    // git names the files, since in a worktree `.git` is a file and they live elsewhere.
    let git = |args: &[&str]| {
        let out = Command::new("git").args(args).current_dir(&root).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    for file in ["HEAD", "packed-refs"].into_iter().chain(branch.as_deref()) {
        if let Some(path) = git(&["rev-parse", "--path-format=absolute", "--git-path", file])
            && Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let revision = std::env::var("WASMRPC_GIT_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]));
    let revision = revision.unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=WASMRPC_GIT_REVISION={revision}");
}
