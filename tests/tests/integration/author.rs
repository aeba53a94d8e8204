//! The plugin author's loop: `wasmrpc new` writes a project from the template, cargo builds
//! it for wasm32-wasip1 unchanged, and a host serves the generated manifest.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Map, json};
use wasmrpc::protocol::Target;
use wasmrpc::rpc::{RpcClient, RpcError};
use wasmrpc_tests::{client_transport, memory_url, obj, root, start_host};

fn wasmrpc(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasmrpc-cli"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("run wasmrpc")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `cargo build --release --target wasm32-wasip1` in `project`, as its README says. The
/// project's `target/` is a link to `plugins/target` and its lock file a copy of the plugins',
/// so the SDK and its dependencies, already built for the example plugins with the same
/// profile, are not compiled again.
fn cargo_build(project: &Path) {
    #[cfg(unix)]
    std::os::unix::fs::symlink(root().join("plugins/target"), project.join("target")).unwrap();
    std::fs::copy(root().join("plugins/Cargo.lock"), project.join("Cargo.lock")).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(project).args(["build", "--release", "--target", "wasm32-wasip1"]);
    // As in tests/build.rs: flags meant for the test build must not reach the wasm build.
    for var in
        ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_TARGET_DIR", "CARGO_BUILD_TARGET", "RUSTC_WORKSPACE_WRAPPER"]
    {
        cmd.env_remove(var);
    }
    let out = cmd.output().expect("run cargo");
    assert!(out.status.success(), "the generated project does not build:\n{}", text(&out.stderr));
}

#[tokio::test]
async fn a_new_project_builds_unchanged_and_serves_its_methods() {
    let parent = tempfile::tempdir().unwrap();
    let out = wasmrpc(&["new", "hello-author"], parent.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    for next in [
        "cd hello-author\n",
        "cargo build --release --target wasm32-wasip1\n",
        " invoke manifests/hello-author.toml greet '{\"name\": \"world\"}'\n",
    ] {
        assert!(printed.contains(next), "`new` prints {next:?}:\n{printed}");
    }
    let project = parent.path().join("hello-author");
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    assert!(readme.contains("cd hello-author\ncargo build --release --target wasm32-wasip1\n"), "{readme}");

    cargo_build(&project);

    // The third command, as printed.
    let out = wasmrpc(&["invoke", "manifests/hello-author.toml", "greet", r#"{"name": "world"}"#], &project);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "\"Hello, world!\"\n");

    // Served by a host over memory://, from the generated manifests/ directory.
    let url = memory_url();
    let host = start_host(&url, "a", &project.join("manifests")).await;
    let client = RpcClient::new(client_transport(&url).await, Target::topic("hello-author"));
    let greet = |name: &str| obj(json!({ "name": name }));
    assert_eq!(client.call(&Map::new(), "greet", greet("Ada")).await.unwrap(), json!("Hello, Ada!"));
    let ctx = obj(json!({"user": "ada", "request_id": "req-1"}));
    assert_eq!(client.call(&ctx, "whoami", Map::new()).await.unwrap(), json!("ada"));
    match client.call(&Map::new(), "greet", greet("")).await {
        Err(RpcError::Remote(e)) => {
            assert_eq!(
                (e.exc_type.as_str(), e.module.as_str(), e.value.as_str()),
                ("ValueError", "builtins", "name is empty")
            );
        }
        other => panic!("expected a ValueError, got {other:?}"),
    }
    // `new()` read GREETING from the manifest's sandbox, and ran for this call's fresh
    // instance: the calls above were counted in other instances.
    assert_eq!(client.call(&Map::new(), "stats", Map::new()).await.unwrap(), json!({"calls": 0, "greeting": "Hello"}));
    host.stop().await.unwrap();
}

#[test]
fn new_refuses_to_overwrite_and_to_guess() {
    let parent = tempfile::tempdir().unwrap();
    std::fs::create_dir(parent.path().join("taken")).unwrap();
    std::fs::write(parent.path().join("taken/keep.txt"), "mine").unwrap();
    let out = wasmrpc(&["new", "taken"], parent.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("taken already exists"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(parent.path().join("taken/keep.txt")).unwrap(), "mine");

    let out = wasmrpc(&["new", "Bad Name"], parent.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("invalid project name \"Bad Name\""), "{}", text(&out.stderr));

    let out = wasmrpc(&["new", "py", "--lang", "python"], parent.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not yet: Python endpoints arrive with Python components"),
        "{}",
        text(&out.stderr)
    );
    assert!(!parent.path().join("py").exists());
}
