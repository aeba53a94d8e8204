//! Builds the example plugins, so a plain `cargo test` from the root works on a fresh clone, and
//! tells the tests where they are: the `plugins/` workspace for wasm32-wasip1 (ABI v1 modules),
//! its component examples for wasm32-wasip2, and the Python examples in `plugins/python/` as
//! components (`scripts/build-python`, which skips a component whose inputs have not changed:
//! a Python build takes ~20 s).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// The Python examples: the directory under `plugins/python/`, the endpoint (`MODULE:CLASS`),
/// and the component's name in `plugins/target/python/`.
const PYTHON_EXAMPLES: &[(&str, &str, &str)] = &[
    ("calculator", "calculator:Calculator", "calculator"),
    ("test", "endpoints:TestEndpoint", "test"),
    ("test", "endpoints:TestServerEndpoint", "test-server"),
    ("hostile", "hostile:Hostile", "hostile"),
    ("versioned", "versioned:VersionA", "versioned-a"),
    ("versioned", "versioned:VersionB", "versioned-b"),
    ("gateway", "gateway:Gateway", "gateway"),
];

/// The Rust components (wasm32-wasip2 members of the `plugins/` workspace): an example, and one
/// that does not implement the world, for the tests of what loading refuses.
const COMPONENT_EXAMPLES: &[&str] = &["component-calculator", "component-broken"];

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ lives in the workspace root").to_owned();
    let plugins = root.join("plugins");
    watch(&root, &plugins);

    // The Python builds run while cargo builds the Rust plugins: they use a core each.
    let python = start_python_builds(&root, &plugins);
    cargo_build(&plugins, "wasm32-wasip1", &[]).unwrap_or_else(|()| {
        panic!(
            "building the plugins failed (see above). Is the wasm32-wasip1 target installed? \
             rust-toolchain.toml lists it; `rustup target add wasm32-wasip1` installs it by hand."
        )
    });
    cargo_build(&plugins, "wasm32-wasip2", COMPONENT_EXAMPLES).unwrap_or_else(|()| {
        panic!(
            "building the component plugins failed (see above). Is the wasm32-wasip2 target installed? \
             rust-toolchain.toml lists it; `rustup target add wasm32-wasip2` installs it by hand."
        )
    });
    for (name, child) in python {
        let status = child.and_then(|mut c| c.wait());
        if !status.as_ref().is_ok_and(|s| s.success()) {
            panic!(
                "building the Python example {name} failed ({status:?}; its output is above). \
                 scripts/build-python needs python3 and installs componentize-py into .venv from \
                 guest-sdk/python/requirements.txt"
            );
        }
    }

    let target = plugins.join("target");
    println!("cargo:rustc-env=WASMRPC_PLUGIN_DIR={}", target.join("wasm32-wasip1").join("release").display());
    println!("cargo:rustc-env=WASMRPC_COMPONENT_DIR={}", target.join("wasm32-wasip2").join("release").display());
    println!("cargo:rustc-env=WASMRPC_PYTHON_PLUGIN_DIR={}", target.join("python").display());
    println!("cargo:rustc-env=WASMRPC_ROOT={}", root.display());
}

/// `cargo build --release` in `plugins/` for `target` (the workspace's default members, or
/// `packages`). The plugins have their own workspace and target directory, so this nested cargo
/// never waits on the lock of the build that runs this script.
fn cargo_build(plugins: &Path, target: &str, packages: &[&str]) -> Result<(), ()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(plugins)
        .args(["build", "--release", "--target", target, "--manifest-path"])
        .arg(plugins.join("Cargo.toml"));
    for p in packages {
        cmd.args(["-p", p]);
    }
    // Flags and target settings meant for the host build must not leak into the wasm build.
    for var in
        ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_TARGET_DIR", "CARGO_BUILD_TARGET", "RUSTC_WORKSPACE_WRAPPER"]
    {
        cmd.env_remove(var);
    }
    match cmd.status() {
        Ok(s) if s.success() => Ok(()),
        _ => Err(()),
    }
}

/// Starts `scripts/build-python` for every Python example, all at once.
fn start_python_builds(root: &Path, plugins: &Path) -> Vec<(&'static str, std::io::Result<Child>)> {
    let out = plugins.join("target").join("python");
    PYTHON_EXAMPLES
        .iter()
        .map(|(dir, entry, name)| {
            let child = Command::new(root.join("scripts").join("build-python"))
                .arg(plugins.join("python").join(dir))
                .arg(entry)
                .arg("-o")
                .arg(out.join(format!("{name}.wasm")))
                .env_remove("VIRTUAL_ENV")
                .spawn();
            (*name, child)
        })
        .collect()
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
        root.join("guest-sdk/python/wasmrpc"),
        root.join("guest-sdk/python/requirements.txt"),
        root.join("wit"),
        root.join("scripts/build-python"),
    ];
    if let Ok(entries) = std::fs::read_dir(plugins) {
        for entry in entries.flatten() {
            let p = entry.path();
            if p.join("Cargo.toml").is_file() {
                paths.push(p.join("Cargo.toml"));
                // A watched path that does not exist (versioned-a's sources live in
                // plugins/versioned) would rerun this script on every build.
                if p.join("src").is_dir() {
                    paths.push(p.join("src"));
                }
            } else if p.is_dir() && p.file_name().is_some_and(|n| n != "target" && n != ".cargo") {
                paths.push(p); // shared sources (plugins/versioned) and the Python examples
            }
        }
    }
    for p in paths {
        println!("cargo:rerun-if-changed={}", p.display());
    }
}
