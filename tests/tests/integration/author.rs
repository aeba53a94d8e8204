//! The plugin author's loop: `wasmrpc new` writes a project from the template, `wasmrpc build`
//! builds it for wasm32-wasip1 unchanged (the manifest's `[build]`), a host serves the
//! generated manifest, and `wasmrpc dev` rebuilds and reloads it as its sources change.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::io::AsyncBufReadExt as _;
use wasmrpc::protocol::Target;
use wasmrpc::rpc::{RpcClient, RpcError};
use wasmrpc_tests::{client_transport, eventually, memory_url, obj, root, start_host};

use crate::gateway::http_post;
use crate::service::free_port;

/// Flags meant for the test build that must not reach a wasm build (as in tests/build.rs).
const HOST_BUILD_VARS: &[&str] =
    &["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_BUILD_TARGET", "RUSTC_WORKSPACE_WRAPPER"];

/// `wasmrpc ARGS` in `dir`, with the environment of [`generated_build_env`].
fn wasmrpc(args: &[&str], dir: &Path) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmrpc-cli"));
    cmd.args(args).current_dir(dir).env_remove("RUST_LOG");
    generated_build_env(&mut cmd);
    cmd.output().expect("run wasmrpc")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The cargo target directory every generated project here builds in: `plugins/target`, where
/// tests/build.rs already built the SDK and its dependencies for wasm32-wasip1 with the same
/// profile and lock file, so a generated crate's build compiles only the crate itself.
fn shared_target_dir() -> PathBuf {
    root().join("plugins/target")
}

/// The environment a generated project's build runs in (passed through `wasmrpc build` and
/// `wasmrpc dev` to cargo): the shared target directory, and none of the test build's flags.
fn generated_build_env(cmd: &mut Command) {
    cmd.env("CARGO_TARGET_DIR", shared_target_dir());
    for var in HOST_BUILD_VARS {
        cmd.env_remove(var);
    }
}

/// Makes `project` build in the shared target directory: its lock file a copy of the plugins'
/// (the same dependency versions, so nothing is compiled again), and its `target/` a link to
/// the shared directory, where the manifest's `module = "../target/…"` finds what cargo wrote
/// with CARGO_TARGET_DIR set.
fn share_target(project: &Path) {
    #[cfg(unix)]
    std::os::unix::fs::symlink(shared_target_dir(), project.join("target")).unwrap();
    std::fs::copy(root().join("plugins/Cargo.lock"), project.join("Cargo.lock")).unwrap();
}

#[tokio::test]
async fn a_new_project_builds_unchanged_and_serves_its_methods() {
    let parent = tempfile::tempdir().unwrap();
    let out = wasmrpc(&["new", "hello-author"], parent.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    for next in ["cd hello-author\n", " dev\n", "curl -s -X POST http://127.0.0.1:8080/v1/call/hello-author/greet"] {
        assert!(printed.contains(next), "`new` prints {next:?}:\n{printed}");
    }
    let project = parent.path().join("hello-author");
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    assert!(readme.contains("cd hello-author\nwasmrpc dev\ncurl -s -X POST"), "{readme}");

    // `wasmrpc build`: the manifest's `[build]`, its output streamed.
    share_target(&project);
    let out = wasmrpc(&["build"], &project);
    assert!(out.status.success(), "the generated project does not build:\n{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("built hello-author in "), "{}", text(&out.stderr));

    // Without `dev`: the manifest loaded in-process.
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

/// The Python template through the author's loop: `new --lang python` → `build` (componentize-py
/// through the manifest's `[build]`) → `dev` → calls through the gateway, answered as the class
/// says (a warm instance: its state lives on between calls), then a saved edit of
/// `endpoint.py` answers from the rebuilt component in the same `dev` process, and one with a
/// syntax error leaves that component answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_python_project_builds_and_dev_serves_and_reloads_it() {
    let parent = tempfile::tempdir().unwrap();
    let out = wasmrpc(&["new", "hello-py", "--lang", "python"], parent.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("a Python endpoint class"), "{}", text(&out.stdout));
    let project = parent.path().join("hello-py");
    let out = wasmrpc(&["build"], &project);
    assert!(out.status.success(), "the generated Python project does not build:\n{}", text(&out.stderr));
    assert!(project.join("hello-py.wasm").is_file());

    let dev = Dev::spawn(&project);
    dev.wait_for_answer("hello-py", "Hello, world!").await;
    let context = [("X-Context", r#"{"user": "ada"}"#)];
    assert_eq!(dev.call("hello-py", "whoami", &context, "").await, Some((200, json!("ada"))));
    let (status, body) = dev.call("hello-py", "greet", &[], r#"{"name": ""}"#).await.expect("an answer");
    assert_ne!(status, 200, "{body}");
    assert_eq!(
        (&body["error"]["type"], &body["error"]["module"], &body["error"]["message"]),
        (&json!("ValueError"), &json!("builtins"), &json!("name is empty")),
        "{body}"
    );
    assert_eq!(dev.call("hello-py", "stats", &[], "").await, Some((200, json!({"calls": 3}))));

    // A saved edit: componentize-py rebuilds, the host compiles and swaps the new component.
    edit(&project.join("endpoint.py"), &[(r#"return f"Hello, {name}!""#, r#"return f"Hello, {name}! (v2)""#)]);
    dev.wait_for_answer("hello-py", "Hello, world! (v2)").await;
    assert!(dev.output().matches("built hello-py in ").count() >= 2, "{}", dev.output());

    // A Python syntax error fails the build with Python's message; the last good one answers.
    edit(&project.join("endpoint.py"), &[(r#"return f"Hello, {name}! (v2)""#, r#"return f"Hello, {name}! (v3)"("#)]);
    let out = dev.wait_for_output("the build of hello-py failed", 1).await;
    assert!(out.contains("SyntaxError: '(' was never closed"), "Python's error is shown:\n{out}");
    assert_eq!(dev.greet("hello-py").await, Some((200, json!("Hello, world! (v2)"))), "{out}");
    dev.stop().await;
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
}

/// `wasmrpc build`: each manifest's command in its workdir, output streamed, a manifest without
/// `[build]` skipped with a line saying so, and a failure that stops the run and names the
/// manifest and the exit status. Shell commands stand in for cargo here.
#[test]
fn build_runs_each_manifests_command_and_stops_at_a_failure() {
    let project = tempfile::tempdir().unwrap();
    let manifests = project.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    let manifest = |file: &str, build: &str| {
        let text =
            format!("name = \"{file}\"\nmodule = \"{file}.wasm\"\n[target]\ntopic = \"t\"\nversion = \"1.0\"\n{build}");
        std::fs::write(manifests.join(format!("{file}.toml")), text).unwrap();
    };
    manifest("a-plain", "");
    manifest("b-works", "[build]\ncommand = \"echo building b in $(pwd); touch built-b\"\nworkdir = \"..\"\n");
    manifest("c-fails", "[build]\ncommand = \"echo 'error: c is broken' >&2; exit 7\"\n");
    manifest("d-after", "[build]\ncommand = \"touch built-d\"\n");

    let out = wasmrpc(&["build"], project.path());
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("manifests/a-plain.toml: no [build] section; skipped"), "{stderr}");
    // b ran in its workdir (`..` of the manifest), its output passed on.
    let root = project.path().canonicalize().unwrap();
    assert!(stdout.contains(&format!("building b in {}", root.display())), "{stdout}");
    assert!(root.join("built-b").is_file());
    assert!(stderr.contains("error: c is broken"), "{stderr}");
    assert!(stderr.contains("the build of c-fails (manifests/c-fails.toml) failed: exit status: 7"), "{stderr}");
    assert!(!manifests.join("built-d").exists(), "nothing builds after a failure");

    // Named manifests only.
    let out = wasmrpc(&["build", "manifests/d-after.toml"], project.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(manifests.join("built-d").is_file());

    // A typo in `[build]` is a manifest error with its line, before anything runs.
    manifest("e-typo", "[build]\ncommand = \"touch built-e\"\nwatches = [\"src/*.rs\"]\n");
    let out = wasmrpc(&["build", "manifests/d-after.toml", "manifests/e-typo.toml"], project.path());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("e-typo.toml:8:1: unknown field `watches`"), "{stderr}");
    assert!(stderr.contains("did you mean `watch`?"), "{stderr}");
    assert!(!manifests.join("built-e").exists());
}

/// `wasmrpc dev` as the author runs it: a child process in the project, its HTTP listener on a
/// free port, its stdout and stderr collected as they come.
struct Dev {
    child: tokio::process::Child,
    http: SocketAddr,
    output: Arc<Mutex<String>>,
}

impl Dev {
    fn spawn(project: &Path) -> Dev {
        let http = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmrpc-cli"));
        cmd.current_dir(project)
            .args(["dev", "--http", &http.to_string()])
            .env_remove("RUST_LOG")
            .env("XDG_CACHE_HOME", std::env::temp_dir().join("wasmrpc-test-xdg-cache"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        generated_build_env(&mut cmd);
        let mut child = tokio::process::Command::from(cmd).kill_on_drop(true).spawn().expect("run wasmrpc dev");
        let output = Arc::new(Mutex::new(String::new()));
        for pipe in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let output = output.clone();
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(pipe).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut o = output.lock().unwrap();
                    o.push_str(&line);
                    o.push('\n');
                }
            });
        }
        Dev { child, http, output }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// `method` called through the gateway with `headers` and the JSON `body`: the status and
    /// the answer, or None if nothing answers.
    async fn call(&self, topic: &str, method: &str, headers: &[(&str, &str)], body: &str) -> Option<(u16, Value)> {
        let (addr, path) = (self.http, format!("/v1/call/{topic}/{method}"));
        let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let body = body.as_bytes().to_vec();
        tokio::task::spawn_blocking(move || http_post(addr, &path, &headers, &body)).await.unwrap()
    }

    /// `greet(name="world")` through the gateway.
    async fn greet(&self, topic: &str) -> Option<(u16, Value)> {
        self.call(topic, "greet", &[], r#"{"name": "world"}"#).await
    }

    /// Waits until `greet` answers `expected` (a rebuild takes a release build of the crate).
    async fn wait_for_answer(&self, topic: &str, expected: &str) {
        let answered = eventually(Duration::from_secs(300), || async {
            self.greet(topic).await.filter(|(status, body)| *status == 200 && body == expected)
        })
        .await;
        assert!(
            answered.is_some(),
            "never answered {expected:?}; last answer {:?}; dev said:\n{}",
            self.greet(topic).await,
            self.output()
        );
    }

    /// Waits until dev's output has `needle` `count` times.
    async fn wait_for_output(&self, needle: &str, count: usize) -> String {
        let found = eventually(Duration::from_secs(300), || async {
            let out = self.output();
            (out.matches(needle).count() >= count).then_some(out)
        })
        .await;
        found.unwrap_or_else(|| panic!("dev never printed {needle:?} {count} times:\n{}", self.output()))
    }

    async fn stop(mut self) -> String {
        let pid = self.child.id().expect("running").to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
        assert!(matches!(status, Ok(Ok(s)) if s.success()), "dev did not stop cleanly: {status:?}");
        self.output()
    }
}

/// Replaces each `from` with its `to` in `file`, then saves it once, as an editor does.
fn edit(file: &Path, changes: &[(&str, &str)]) {
    let mut source = std::fs::read_to_string(file).unwrap();
    for (from, to) in changes {
        assert!(source.contains(from), "{} has no {from:?}", file.display());
        source = source.replacen(from, to, 1);
    }
    std::fs::write(file, source).unwrap();
}

/// `new` → `build` → `dev` → a call through the gateway, then the edit loop in one `dev`
/// process: a saved edit changes the next answer, a syntax error prints the compiler's errors
/// and leaves the last good build answering, and fixing it recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_rebuilds_on_save_and_keeps_the_last_good_build_serving() {
    let parent = tempfile::tempdir().unwrap();
    let out = wasmrpc(&["new", "dev-loop"], parent.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let project = parent.path().join("dev-loop");
    share_target(&project);
    let out = wasmrpc(&["build"], &project);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let dev = Dev::spawn(&project);
    dev.wait_for_answer("dev-loop", "Hello, world!").await;
    let banner = dev.output();
    assert!(banner.contains(&format!("curl -s -X POST http://{}/v1/call/dev-loop/greet", dev.http)), "{banner}");

    // A saved edit: the next answers come from the new build, in the same process.
    let lib = project.join("src/lib.rs");
    edit(&lib, &[(r#"format!("{}, {name}!", self.greeting)"#, r#"format!("{}, {name}! (v2)", self.greeting)"#)]);
    dev.wait_for_answer("dev-loop", "Hello, world! (v2)").await;

    // A syntax error: the compiler's error in dev's output, and the last good build answers.
    edit(&lib, &[("pub fn greet(&mut self, name: String)", "pub fn greet(&mut self, name: String,,)")]);
    let out = dev.wait_for_output("the build of dev-loop failed", 1).await;
    assert!(out.contains("error: expected parameter name"), "the compiler's error is shown:\n{out}");
    assert!(out.contains("src/lib.rs:"), "with its place:\n{out}");
    assert_eq!(dev.greet("dev-loop").await, Some((200, json!("Hello, world! (v2)"))), "{out}");
    // The console's reload history has the failed build, with the compiler's error.
    let addr = dev.http;
    let history = eventually(Duration::from_secs(10), || async move {
        let (_, body) =
            tokio::task::spawn_blocking(move || super::service::http_get(addr, "/v1/status")).await.ok()??;
        let status: Value = serde_json::from_str(&body).ok()?;
        let events = status["history"].as_array()?.clone();
        events.into_iter().find(|e| e.to_string().contains("expected parameter name"))
    })
    .await;
    let event = history.expect("a failed build in /v1/status's history");
    assert!(event.to_string().contains("build_failed") || event.to_string().contains("BuildFailed"), "{event}");

    // Fixed: served again, from a build that has the fix.
    edit(&lib, &[("name: String,,)", "name: String)"), ("{name}! (v2)", "{name}! (v3)")]);
    dev.wait_for_answer("dev-loop", "Hello, world! (v3)").await;
    dev.stop().await;
}
