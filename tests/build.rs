//! Builds the example plugins (the `plugins/` workspace) for wasm32-wasip1, so a plain
//! `cargo test` from the root works on a fresh clone, and tells the tests where they are.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ lives in the workspace root").to_owned();
    let plugins = root.join("plugins");
    watch(&root, &plugins);

    // The plugins have their own workspace and target directory, so this nested cargo never
    // waits on the lock of the build that runs this script.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&plugins)
        .args(["build", "--release", "--target", "wasm32-wasip1", "--manifest-path"])
        .arg(plugins.join("Cargo.toml"));
    // Flags and target settings meant for the host build must not leak into the wasm build.
    for var in
        ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_TARGET_DIR", "CARGO_BUILD_TARGET", "RUSTC_WORKSPACE_WRAPPER"]
    {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("cannot run cargo to build the plugins");
    if !status.success() {
        panic!(
            "building the plugins failed (see above). Is the wasm32-wasip1 target installed? \
             rust-toolchain.toml lists it; `rustup target add wasm32-wasip1` installs it by hand."
        );
    }
    let out = plugins.join("target").join("wasm32-wasip1").join("release");
    println!("cargo:rustc-env=WASMRPC_PLUGIN_DIR={}", out.display());
    println!("cargo:rustc-env=WASMRPC_ROOT={}", root.display());
}

/// Reruns when plugin or SDK sources change (not on `plugins/target`, which this script writes).
fn watch(root: &Path, plugins: &Path) {
    let mut paths: Vec<PathBuf> = vec![
        plugins.join("Cargo.toml"),
        plugins.join("Cargo.lock"),
        root.join("guest-sdk/src"),
        root.join("guest-sdk/Cargo.toml"),
        root.join("guest-sdk/abi/src"),
        root.join("guest-sdk/macros/src"),
    ];
    if let Ok(entries) = std::fs::read_dir(plugins) {
        for entry in entries.flatten() {
            let p = entry.path();
            if p.join("Cargo.toml").is_file() {
                paths.push(p.join("Cargo.toml"));
                paths.push(p.join("src"));
            } else if p.is_dir() && p.file_name().is_some_and(|n| n != "target" && n != ".cargo") {
                paths.push(p); // shared sources, e.g. plugins/versioned
            }
        }
    }
    for p in paths {
        println!("cargo:rerun-if-changed={}", p.display());
    }
}
