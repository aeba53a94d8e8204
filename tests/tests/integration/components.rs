//! Endpoints built as WebAssembly components (the WIT world in wit/endpoint.wit): Python ones
//! (componentize-py, guest-sdk/python) and a Rust one (wasm32-wasip2), served by the same host
//! as core modules, called by oslo.messaging, reloaded, limited, and checked.
//!
//! A Python component takes seconds to compile; the tests share the compiled-module cache
//! (`module_cache()`), so each one compiles once per cache, not once per test.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Map, Value, json};
use wasmrpc::Host;
use wasmrpc::protocol::Target;
use wasmrpc::rpc::{Prepare, RpcClient, RpcError};
use wasmrpc_tests::broker::{BROKER, rabbit_url, unique};
use wasmrpc_tests::python::{OsloServer, oslo_client};
use wasmrpc_tests::{ManifestDir, client_transport, eventually, host_config, memory_url, obj};

use super::interop::{rabbit_client, rabbit_host};
use super::support::{CapturedLogs, capture_logs};

/// A Python example component (tests/build.rs builds them into plugins/target/python).
fn python(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("WASMRPC_PYTHON_PLUGIN_DIR")).join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} is missing: tests/build.rs builds the Python examples", path.display());
    path
}

/// A Rust component (wasm32-wasip2), e.g. `component("component_calculator")`.
fn component(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("WASMRPC_COMPONENT_DIR")).join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} is missing: tests/build.rs builds the component examples", path.display());
    path
}

/// Writes a manifest for the component at `module` on `topic`, version 1.0, plus `extra`.
fn manifest(dir: &ManifestDir, name: &str, module: &std::path::Path, topic: &str, extra: &str) -> PathBuf {
    dir.write(
        name,
        &format!(
            "name = \"{name}\"\nmodule = \"{}\"\n\n[target]\ntopic = \"{topic}\"\nversion = \"1.0\"\n{extra}\n",
            module.display()
        ),
    )
}

const WARM: &str = "[instance]\nmode = \"warm\"\n[limits]\nmemory = \"128MiB\"\n";

fn ok(v: &Value) -> &Value {
    v.get("ok").unwrap_or_else(|| panic!("expected a result, got {v}"))
}

fn remote(v: &Value) -> &Value {
    let e = v.get("error").unwrap_or_else(|| panic!("expected an error, got {v}"));
    assert_eq!(e["type"], json!("RemoteError"), "{v}");
    e
}

fn remote_error(e: RpcError) -> wasmrpc::rpc::RemoteError {
    match e {
        RpcError::Remote(r) => r,
        other => panic!("expected a remote error, got {other:?}"),
    }
}

async fn memory_host(url: &str, dir: &ManifestDir, watch: bool) -> Host {
    let mut config = host_config(url, "h", dir.path());
    config.watch = watch;
    Host::start(config).await.unwrap_or_else(|e| panic!("host: {e:#}"))
}

/// README's walk-through: a host is running on the broker; the Python calculator's component and
/// manifest are dropped into its directory; a Python oslo.messaging client then calls it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_calculator_dropped_into_a_running_host_answers_a_python_oslo_client() {
    let _broker = BROKER.read().await;
    let exchange = unique("ex");
    let topic = unique("pycalc");
    let dir = ManifestDir::new();
    let mut config = host_config(&rabbit_url(), "h1", dir.path());
    config.control_exchange = exchange.clone();
    config.watch = true;
    let host = Host::start(config).await.unwrap_or_else(|e| panic!("host: {e:#}"));

    // Dropped in: the component first, then the manifest that names it.
    let module = dir.path().join("calculator.wasm");
    std::fs::copy(python("calculator"), &module).unwrap();
    manifest(&dir, "python-calculator", &module, &topic, WARM);
    let client = rabbit_client(&exchange, &topic).await;
    let client = client.prepare(Prepare { timeout: Some(Duration::from_secs(5)), ..Prepare::default() });
    let served = eventually(Duration::from_secs(300), || async {
        client.call(&Map::new(), "add", obj(json!({"a": 1, "b": 1}))).await.ok()
    })
    .await;
    assert_eq!(served, Some(json!(2)), "the dropped-in endpoint never answered");

    let op = |method: &str, args: Value| json!({"topic": topic, "method": method, "args": args});
    let mut old = op("add", json!({"a": 1, "b": 2}));
    old["prepare"] = json!({"version": "2.0"});
    let ops = vec![
        op("add", json!({"a": 2, "b": 3})),                // 0
        op("divide", json!({"a": 1, "b": 4})),             // 1
        op("divide", json!({"a": 1, "b": 0})),             // 2
        op("nosuch", json!({})),                           // 3
        old,                                               // 4
        op("_int64", json!({"result": 1})),                // 5
        op("add", json!({"a": 2})),                        // 6
        op("multiply", json!({"a": 1_i64 << 62, "b": 4})), // 7
    ];
    let r = oslo_client(&json!({"url": rabbit_url(), "exchange": exchange, "ops": ops})).await;
    assert_eq!(ok(&r[0]), &json!(5));
    assert_eq!(ok(&r[1]), &json!(0.25));
    // The guest's own exception, with the traceback CPython wrote for it.
    let e = remote(&r[2]);
    assert_eq!((e["exc_type"].clone(), e["value"].clone()), (json!("DivisionByZero"), json!("division by zero")));
    let tb = e["traceback"].as_array().map(|t| t.iter().filter_map(Value::as_str).collect::<String>());
    assert!(tb.as_deref().is_some_and(|t| t.contains("calculator.py") && t.contains("in divide")), "{e}");
    assert_eq!(remote(&r[3])["exc_type"], json!("NoSuchMethod"));
    assert_eq!(remote(&r[4])["exc_type"], json!("UnsupportedVersion"));
    assert_eq!(remote(&r[5])["exc_type"], json!("NoSuchMethod"), "a private method is not callable");
    // Builtin exceptions cross as themselves, as from a Python server.
    let e = r[6].get("error").unwrap_or_else(|| panic!("{}", r[6]));
    assert_eq!(e["type"], json!("TypeError"), "{e}");
    assert!(e["message"].as_str().unwrap().contains("missing 1 required positional argument: 'b'"), "{e}");
    let e = r[7].get("error").unwrap_or_else(|| panic!("{}", r[7]));
    assert_eq!(e["type"], json!("OverflowError"), "{e}");
    host.stop().await.unwrap();
}

// Current-thread: the captured log subscriber is per thread.
#[tokio::test]
async fn the_rust_component_calculator_answers_and_reaches_the_host_log() {
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(capture_logs(&logs));
    let url = memory_url();
    let dir = ManifestDir::new();
    let extra = "[notifications]\nallow = [\"calc.division_by_zero\"]\n";
    manifest(&dir, "component-calculator", &component("component_calculator"), "rcalc", extra);
    let host = memory_host(&url, &dir, false).await;
    let client = RpcClient::new(client_transport(&url).await, Target::topic("rcalc"));
    let ctx = Map::new();
    assert_eq!(client.call(&ctx, "add", obj(json!({"a": 2, "b": 3}))).await.unwrap(), json!(5));
    assert_eq!(client.call(&ctx, "multiply", obj(json!({"a": 6, "b": 7}))).await.unwrap(), json!(42));
    let e = remote_error(client.call(&ctx, "divide", obj(json!({"a": 1, "b": 0}))).await.unwrap_err());
    assert_eq!((e.exc_type.as_str(), e.value.as_str()), ("DivisionByZero", "division by zero"));
    // The guest's `host.log` line is in the host's log, tagged with the endpoint.
    let line = logs.text().lines().find(|l| l.contains("asked to divide 1 by zero")).map(str::to_owned);
    assert!(
        line.as_deref().is_some_and(|l| l.contains("WARN") && l.contains("component-calculator")),
        "{}",
        logs.text()
    );
    host.stop().await.unwrap();
}

async fn version(client: &RpcClient) -> Result<String, RpcError> {
    client.call(&Map::new(), "version", Map::new()).await.map(|v| v.as_str().unwrap_or_default().to_owned())
}

async fn wait_for_version(client: &RpcClient, expected: &str) {
    let seen =
        eventually(Duration::from_secs(60), || async { (version(client).await.ok()? == expected).then_some(()) }).await;
    assert!(seen.is_some(), "the host never served {expected}");
}

fn rename_over(path: &std::path::Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

// Current-thread: the captured log subscriber is per thread.
#[tokio::test]
async fn a_python_endpoint_reloads_under_calls_and_a_broken_component_keeps_the_last_good() {
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(capture_logs(&logs));
    let (a, b) = (std::fs::read(python("versioned-a")).unwrap(), std::fs::read(python("versioned-b")).unwrap());
    let url = memory_url();
    let dir = ManifestDir::new();
    let module = dir.path().join("current.wasm");
    std::fs::write(&module, &a).unwrap();
    manifest(&dir, "versioned", &module, "pyversioned", WARM);
    // B is loaded at start too (on another topic), so reloading to B's bytes shares its compiled
    // component instead of compiling it (minutes in a debug host with a cold cache).
    manifest(&dir, "versioned-b", &python("versioned-b"), "pyversioned-b", WARM);
    let host = memory_host(&url, &dir, true).await;
    let client = RpcClient::new(client_transport(&url).await, Target::topic("pyversioned"));
    assert_eq!(version(&client).await.unwrap(), "python-a");

    let done = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let (client, done) = (client.clone(), done.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                while !done.load(Ordering::Relaxed) || answers.len() < 100 {
                    answers.push(version(&client).await);
                }
                answers
            })
        })
        .collect();
    for round in 0..8 {
        rename_over(&module, if round % 2 == 0 { &b } else { &a });
        // Each build must come in before the next replaces it, so both serve under load.
        wait_for_version(&client, if round % 2 == 0 { "python-b" } else { "python-a" }).await;
    }
    done.store(true, Ordering::Relaxed);
    let mut seen = std::collections::BTreeMap::new();
    for caller in callers {
        for answer in caller.await.unwrap() {
            let v = answer.unwrap_or_else(|e| panic!("a call failed during the reloads: {e}"));
            assert!(v == "python-a" || v == "python-b", "{v}");
            *seen.entry(v).or_insert(0) += 1;
        }
    }
    assert_eq!(seen.len(), 2, "both builds answered: {seen:?}");

    // A component that does not implement the world: refused, A keeps serving.
    let failures = |logs: &CapturedLogs| logs.text().lines().filter(|l| l.contains("reload failed")).count();
    let before = failures(&logs);
    rename_over(&module, &std::fs::read(component("component_broken")).unwrap());
    let logged = eventually(Duration::from_secs(30), || async { (failures(&logs) > before).then_some(()) }).await;
    assert!(logged.is_some(), "{}", logs.text());
    let line = logs.text().lines().rfind(|l| l.contains("reload failed")).unwrap().to_owned();
    assert!(line.contains("missing `call`"), "{line}");
    assert_eq!(version(&client).await.unwrap(), "python-a", "the last good build still serves");
    // A damaged component: refused too.
    let before = failures(&logs);
    rename_over(&module, &a[..a.len() / 2]);
    let logged = eventually(Duration::from_secs(30), || async { (failures(&logs) > before).then_some(()) }).await;
    assert!(logged.is_some(), "{}", logs.text());
    assert_eq!(version(&client).await.unwrap(), "python-a");
    // Fixed: B comes in.
    rename_over(&module, &b);
    wait_for_version(&client, "python-b").await;
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_and_the_memory_limit_stop_a_hostile_python_guest_while_others_serve() {
    let url = memory_url();
    let dir = ManifestDir::new();
    let hostile = "[instance]\nmode = \"warm\"\n[limits]\nmemory = \"64MiB\"\ndeadline = \"2s\"\n";
    manifest(&dir, "python-hostile", &python("hostile"), "hostile", hostile);
    manifest(&dir, "python-calculator", &python("calculator"), "pycalc", WARM);
    let host = memory_host(&url, &dir, false).await;
    let transport = client_transport(&url).await;
    let bad = RpcClient::new(transport.clone(), Target::topic("hostile"));
    let calc = RpcClient::new(transport, Target::topic("pycalc"));
    let ctx = Map::new();

    let spin = tokio::spawn({
        let bad = bad.clone();
        async move { bad.call(&Map::new(), "spin", Map::new()).await }
    });
    // While the hostile guest spins, another endpoint answers.
    assert_eq!(calc.call(&ctx, "add", obj(json!({"a": 2, "b": 3}))).await.unwrap(), json!(5));
    let e = remote_error(spin.await.unwrap().unwrap_err());
    assert_eq!(e.exc_type, "DeadlineExceeded", "{e:?}");

    let e = remote_error(bad.call(&ctx, "grow", obj(json!({"chunk_mb": 4}))).await.unwrap_err());
    assert_eq!(e.exc_type, "MemoryLimitExceeded", "{e:?}");

    // The hostile endpoint itself serves again on a new instance.
    assert_eq!(bad.call(&ctx, "ping", Map::new()).await.unwrap(), json!("pong"));
    assert_eq!(calc.call(&ctx, "subtract", obj(json!({"a": 2, "b": 3}))).await.unwrap(), json!(-1));
    host.stop().await.unwrap();
}

/// The Python gateway (plugins/python/gateway) over the broker: it calls another wasmrpc
/// endpoint and a Python oslo.messaging service, casts, and reads its `[config]`, within what
/// its manifest grants; each failure reaches the Python code as the exception an oslo client
/// raises.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_guest_calls_and_casts_within_its_grants_and_reads_its_config() {
    let _broker = BROKER.read().await;
    let exchange = unique("ex");
    let (calc, py, gw, forbidden) = (unique("calc"), unique("py"), unique("pygw"), unique("forbidden"));
    let dir = ManifestDir::new();
    dir.endpoint("calculator", "calculator", &calc, "1.0", "");
    let grants = format!(
        "{WARM}[outbound]\ncall = [\"{calc}\", \"{py}\"]\ncast = [\"{py}\"]\n[config]\ncalculator_topic = \"{calc}\"\n"
    );
    manifest(&dir, "python-gateway", &python("gateway"), &gw, &grants);
    let server = OsloServer::start(&rabbit_url(), &exchange, &py, "py1", &[]).await;
    let other = OsloServer::start(&rabbit_url(), &exchange, &forbidden, "py2", &[]).await;
    let host = rabbit_host(&exchange, "h-pygw", &dir).await;
    let client = rabbit_client(&exchange, &gw).await;
    let client = client.prepare(Prepare { timeout: Some(Duration::from_secs(60)), ..Prepare::default() });
    let call = |method: &'static str, args: Value| {
        let client = client.clone();
        async move { client.call(&Map::new(), method, obj(args)).await }
    };
    let relay = |topic: &str, method: &str, args: Value| json!({"topic": topic, "method": method, "args": args});

    // Another wasmrpc endpoint, on the topic the manifest's [config] names.
    assert_eq!(call("add", json!({"a": 2, "b": 3})).await.unwrap().as_f64(), Some(5.0));
    assert_eq!(call("setting", json!({"key": "calculator_topic"})).await.unwrap(), json!(calc));
    assert_eq!(call("setting", json!({"key": "unset"})).await.unwrap(), Value::Null);
    // The Python service: a result, its exception as RemoteError, a builtin as itself.
    assert_eq!(call("relay", relay(&py, "add", json!({"a": 2, "b": 3}))).await.unwrap(), json!({"ok": 5}));
    let out = call("relay", relay(&py, "boom", json!({"message": "kaboom"}))).await.unwrap();
    assert_eq!(
        (out["error"]["class"].clone(), out["error"]["exc_type"].clone()),
        (json!("RemoteError"), json!("Boom"))
    );
    assert!(out["error"]["message"].as_str().is_some_and(|m| m.contains("kaboom")), "{out}");
    let e = remote_error(call("relay", relay(&py, "value_error", json!({}))).await.unwrap_err());
    assert_eq!((e.exc_type.as_str(), e.module.as_str()), ("ValueError", "builtins"), "{e:?}");
    let out = call("relay", relay(&calc, "divide", json!({"a": 1, "b": 0}))).await.unwrap();
    assert_eq!(out["error"]["exc_type"], json!("DivisionByZero"), "{out}");
    // A reply that does not come in time.
    let mut slow = relay(&py, "slow", json!({"seconds": 5}));
    slow["timeout"] = json!(0.5);
    assert_eq!(call("relay", slow).await.unwrap()["error"]["class"], json!("MessagingTimeout"));
    // Outside the grant: refused, nothing sent.
    let out = call("relay", relay(&forbidden, "record", json!({"tag": "sneaky"}))).await.unwrap();
    assert_eq!(out["error"]["class"], json!("NotAllowed"), "{out}");
    assert!(out["error"]["message"].as_str().is_some_and(|m| m.contains(&forbidden)), "names the topic: {out}");
    // A fanout cast reaches the Python service; the forbidden one received nothing.
    assert_eq!(call("announce", json!({"topic": py, "tag": "t1"})).await.unwrap(), json!(true));
    let py_client = rabbit_client(&exchange, &py).await;
    let recorded = eventually(Duration::from_secs(10), || async {
        let got = py_client.call(&Map::new(), "recorded", Map::new()).await.ok()?;
        (got != json!([])).then_some(got)
    })
    .await;
    assert_eq!(recorded, Some(json!(["t1"])));
    let other_client = rabbit_client(&exchange, &forbidden).await;
    assert_eq!(other_client.call(&Map::new(), "recorded", Map::new()).await.unwrap(), json!([]));
    host.stop().await.unwrap();
    server.stop().await;
    other.stop().await;
}

#[test]
fn check_names_the_export_a_broken_component_lacks() {
    let dir = ManifestDir::new();
    manifest(&dir, "broken", &component("component_broken"), "broken", "");
    manifest(&dir, "component-calculator", &component("component_calculator"), "rcalc", "");
    let out = Command::new(env!("CARGO_BIN_EXE_wasmrpc-cli"))
        .args(["check", dir.path().to_str().unwrap()])
        .env_remove("RUST_LOG")
        .output()
        .expect("run wasmrpc");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let line = err.lines().find(|l| l.starts_with("endpoint broken:")).unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains("does not implement the WIT world wasmrpc:endpoint/endpoint"), "{line}");
    assert!(line.contains("missing `call`"), "{line}");
    assert!(!line.contains("`describe`"), "describe is there: {line}");
    assert!(err.contains("1 problem found"), "{err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("endpoint component-calculator"), "the good component passes: {stdout}");
}
