//! Hot reload: modules replaced under load without a failed call, broken files that leave the
//! last good version serving, manifests added and removed while the host runs, and the
//! compiled-module cache.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Map, Value, json};
use wasmrpc::protocol::Target;
use wasmrpc::rpc::{Prepare, RpcClient};
use wasmrpc::{Host, HostConfig};
use wasmrpc_tests::broker::{BROKER, rabbit_url, unique};
use wasmrpc_tests::{
    ManifestDir, client_transport, client_transport_with, eventually, host_config, memory_url, obj, plugin,
};

use super::support::{CapturedLogs, capture_logs};

const A: &str = "versioned-a";
const B: &str = "versioned-b";

fn build(name: &str) -> Vec<u8> {
    std::fs::read(plugin(&name.replace('-', "_"))).unwrap()
}

/// Replaces `path` the way `cp` does: truncate and write in place.
fn write_in_place(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

/// Replaces `path` the way editors and `cargo` do: write a temporary file, rename it over.
fn rename_over(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A manifest directory with `versioned.toml` serving `current.wasm` (build A) on `topic`.
fn versioned_dir(topic: &str) -> (ManifestDir, PathBuf) {
    let dir = ManifestDir::new();
    let module = dir.path().join("current.wasm");
    std::fs::write(&module, build(A)).unwrap();
    dir.write(
        "versioned",
        &format!("name = \"versioned\"\nmodule = \"current.wasm\"\n[target]\ntopic = \"{topic}\"\nversion = \"1.0\"\n"),
    );
    (dir, module)
}

async fn watching_host(url: &str, dir: &ManifestDir) -> Host {
    let mut config: HostConfig = host_config(url, "h", dir.path());
    config.watch = true;
    Host::start(config).await.unwrap()
}

async fn version(client: &RpcClient) -> Result<String, wasmrpc::RpcError> {
    client.call(&Map::new(), "version", Map::new()).await.map(|v| v.as_str().unwrap().to_owned())
}

async fn wait_for_version(client: &RpcClient, expected: &str) {
    let seen =
        eventually(Duration::from_secs(30), || async { (version(client).await.ok()? == expected).then_some(()) }).await;
    assert!(seen.is_some(), "the host never served {expected}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_a_module_under_load_fails_no_call() {
    let url = memory_url();
    let (dir, module) = versioned_dir("versioned");
    let host = watching_host(&url, &dir).await;
    let client = RpcClient::new(client_transport(&url).await, Target::topic("versioned"));
    assert_eq!(version(&client).await.unwrap(), A);

    let done = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let mut answers = Vec::new();
                while !done.load(Ordering::Relaxed) || answers.len() < 750 {
                    answers.push(version(&client).await);
                }
                answers
            })
        })
        .collect();
    let (a, b) = (build(A), build(B));
    for round in 0..20 {
        let bytes = if round % 2 == 0 { &b } else { &a };
        if round % 4 < 2 {
            rename_over(&module, bytes)
        } else {
            write_in_place(&module, bytes)
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    done.store(true, Ordering::Relaxed);
    let mut total = 0;
    let mut seen = std::collections::BTreeSet::new();
    for caller in callers {
        for answer in caller.await.unwrap() {
            let v = answer.unwrap_or_else(|e| panic!("a call failed during the reloads: {e}"));
            assert!(v == A || v == B, "{v}");
            seen.insert(v);
            total += 1;
        }
    }
    assert!(total >= 3000, "{total} calls");
    assert_eq!(seen.len(), 2, "both builds answered: {seen:?}");
    // The last write was build A.
    wait_for_version(&client, A).await;
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_calls_finish_on_the_old_version() {
    let url = memory_url();
    let (dir, module) = versioned_dir("versioned");
    let host = watching_host(&url, &dir).await;
    let client = RpcClient::new(client_transport(&url).await, Target::topic("versioned"));
    let slow = tokio::spawn({
        let client = client.clone();
        async move { client.call(&Map::new(), "slow_version", obj(json!({"seconds": 1.5}))).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    rename_over(&module, &build(B));
    wait_for_version(&client, B).await;
    assert_eq!(slow.await.unwrap().unwrap(), json!(A), "the call that started on A finished on A");
    host.stop().await.unwrap();
}

#[tokio::test]
async fn broken_files_keep_the_last_good_version_until_fixed() {
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(capture_logs(&logs));
    let url = memory_url();
    let (dir, module) = versioned_dir("versioned");
    let host = watching_host(&url, &dir).await;
    let client = RpcClient::new(client_transport(&url).await, Target::topic("versioned"));
    let failures = |logs: &CapturedLogs| logs.text().lines().filter(|l| l.contains("reload failed")).count();

    // A corrupt module: still A, one error naming the file and the reason.
    write_in_place(&module, b"\0asm\x01\0\0\0 this is not a module");
    assert!(
        eventually(Duration::from_secs(10), || async { (failures(&logs) == 1).then_some(()) }).await.is_some(),
        "{}",
        logs.text()
    );
    assert_eq!(version(&client).await.unwrap(), A);
    let line = logs.text().lines().find(|l| l.contains("reload failed")).unwrap().to_owned();
    assert!(
        line.contains("versioned.toml")
            && line.contains("current.wasm")
            && line.contains("not a valid WebAssembly module"),
        "{line}"
    );
    // Touching it again changes nothing and logs nothing new.
    write_in_place(&module, b"\0asm\x01\0\0\0 this is not a module");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(failures(&logs), 1, "the same failure is logged once");

    // Fixed module: B comes in.
    rename_over(&module, &build(B));
    wait_for_version(&client, B).await;

    // A manifest with a syntax error: still B, one error with file and line.
    let manifest = dir.path().join("versioned.toml");
    let good = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, good.replace("version = \"1.0\"", "version = \"1.0")).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async { (failures(&logs) == 2).then_some(()) }).await.is_some(),
        "{}",
        logs.text()
    );
    assert_eq!(version(&client).await.unwrap(), B);
    assert!(
        logs.text().lines().filter(|l| l.contains("reload failed")).nth(1).unwrap().contains("versioned.toml:5:"),
        "{}",
        logs.text()
    );
    // Fixing it (and going back to A) brings the new version in.
    rename_over(&module, &build(A));
    std::fs::write(&manifest, &good).unwrap();
    wait_for_version(&client, A).await;
    host.stop().await.unwrap();
}

#[tokio::test]
async fn a_touch_without_change_reloads_nothing_and_every_reload_is_logged() {
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(capture_logs(&logs));
    let url = memory_url();
    let (dir, module) = versioned_dir("versioned");
    let mut config = host_config(&url, "h", dir.path());
    config.watch = false;
    let host = Host::start(config).await.unwrap();
    let bytes = std::fs::read(&module).unwrap();
    write_in_place(&module, &bytes);
    let summary = host.reload(None).await.unwrap();
    assert!(summary.reloaded.is_empty() && summary.loaded.is_empty() && summary.unloaded.is_empty(), "{summary:?}");
    rename_over(&module, &build(B));
    let summary = host.reload(None).await.unwrap();
    assert_eq!(summary.reloaded, ["versioned"]);
    let text = logs.text();
    let line = text.lines().find(|l| l.contains("endpoint reloaded")).unwrap();
    let (a_sha, b_sha) = (wasmrpc::runtime::digest(&build(A)), wasmrpc::runtime::digest(&build(B)));
    assert!(
        line.contains(&format!("old_sha256={a_sha}"))
            && line.contains(&format!("new_sha256={b_sha}"))
            && line.contains("took_ms="),
        "{line}"
    );
    // The control endpoint's listing shows the new digest.
    assert_eq!(host.endpoint_listing()[0]["sha256"], json!(b_sha));
    std::fs::remove_file(dir.path().join("versioned.toml")).unwrap();
    let summary = host.reload(None).await.unwrap();
    assert_eq!(summary.unloaded, ["versioned"]);
    assert!(logs.text().lines().any(|l| l.contains("endpoint unloaded") && l.contains(&b_sha)));
    host.stop().await.unwrap();
}

/// Adds, moves and removes manifests on a running host.
async fn add_move_remove(url: &str, exchange: &str) {
    let dir = ManifestDir::new();
    let (calc, t1, t2) = (unique("calc"), unique("t1"), unique("t2"));
    let mut config = host_config(url, "h", dir.path());
    config.control_exchange = exchange.to_owned();
    config.control_topic = unique("ctl");
    config.watch = true;
    let host = Host::start(config).await.unwrap_or_else(|e| panic!("{e:#}"));
    let transport = client_transport_with(url, exchange).await;
    let quick = Prepare { timeout: Some(Duration::from_millis(500)), ..Prepare::default() };
    let client = |topic: &str| RpcClient::new(transport.clone(), Target::topic(topic)).prepare(quick.clone());
    let answers = |topic: String, method: &'static str, args: Value| {
        let c = client(&topic);
        async move { c.call(&Map::new(), method, obj(args)).await.ok() }
    };

    dir.endpoint("calculator", "calculator", &calc, "1.0", "");
    let got = eventually(Duration::from_secs(20), || answers(calc.clone(), "add", json!({"a": 2, "b": 3}))).await;
    assert_eq!(got, Some(json!(5)), "a new manifest is served");
    dir.endpoint("echo", "echo", &t1, "1.3", "");
    assert!(eventually(Duration::from_secs(20), || answers(t1.clone(), "echo", json!({"value": 1}))).await.is_some());

    // A changed target moves the endpoint.
    dir.endpoint("echo", "echo", &t2, "1.3", "");
    assert!(eventually(Duration::from_secs(20), || answers(t2.clone(), "echo", json!({"value": 2}))).await.is_some());
    assert!(
        client(&t1).call(&Map::new(), "echo", obj(json!({"value": 3}))).await.unwrap_err().is_timeout(),
        "the old topic is no longer served"
    );

    // A removed manifest stops being served; the others go on.
    std::fs::remove_file(dir.path().join("calculator.toml")).unwrap();
    let gone = eventually(Duration::from_secs(20), || {
        let c = client(&calc);
        async move {
            c.call(&Map::new(), "add", obj(json!({"a": 1, "b": 1}))).await.err().filter(wasmrpc::RpcError::is_timeout)
        }
    })
    .await;
    assert!(gone.is_some(), "the removed endpoint is no longer served");
    assert_eq!(answers(t2.clone(), "echo", json!({"value": 4})).await, Some(json!(4)));
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_come_and_go_on_memory() {
    add_move_remove(&memory_url(), "openstack").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_come_and_go_on_rabbitmq() {
    let _broker = BROKER.read().await;
    add_move_remove(&rabbit_url(), &unique("ex")).await;
}

#[tokio::test]
async fn the_module_cache_skips_compilation_and_refuses_damaged_entries() {
    let cache = tempfile::tempdir().unwrap();
    let runtime = wasmrpc::Runtime::new(wasmrpc::RuntimeConfig {
        cache_dir: Some(cache.path().to_owned()),
        max_instances: 10,
        ..Default::default()
    })
    .unwrap();
    let spec = wasmrpc::manifest::load_file(&wasmrpc_tests::example_manifest("calculator")).unwrap();
    let first = runtime.load(&spec, None).await.unwrap();
    assert_eq!(first.compiled(), wasmrpc::runtime::Compiled::Fresh);
    // While `first` lives, another load of the same bytes shares its compiled module.
    assert_eq!(runtime.load(&spec, None).await.unwrap().compiled(), wasmrpc::runtime::Compiled::Shared);
    drop(first);
    let second = runtime.load(&spec, None).await.unwrap();
    assert_eq!(second.compiled(), wasmrpc::runtime::Compiled::Cached);
    let args = obj(json!({"a": 20, "b": 22}));
    assert_eq!(second.call("add", &args, &Map::new(), None).await.unwrap(), json!(42));

    // Damage the artifact: detected by its digest, recompiled, never run.
    let artifact = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .unwrap();
    let mut bytes = std::fs::read(&artifact).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&artifact, &bytes).unwrap();
    drop(second);
    let third = runtime.load(&spec, None).await.unwrap();
    assert_eq!(third.compiled(), wasmrpc::runtime::Compiled::Fresh);
    let rewritten = std::fs::read(&artifact).unwrap();
    let recorded = std::fs::read_to_string(artifact.with_extension("sha256")).unwrap();
    assert_eq!(wasmrpc::runtime::digest(&rewritten), recorded.trim(), "the entry was replaced by a sound one");
    assert_eq!(third.call("add", &args, &Map::new(), None).await.unwrap(), json!(42));
    // An entry for another engine's settings (here: another wasmtime build) is never even looked at:
    // the key holds the engine's compatibility hash, and wasmtime re-checks the header on load.
    let foreign = artifact.with_file_name(format!(
        "{}-0000000000000000.cwasm",
        wasmrpc::runtime::digest(&std::fs::read(&spec.module_path).unwrap())
    ));
    std::fs::write(&foreign, b"foreign").unwrap();
    drop(third);
    assert_eq!(runtime.load(&spec, None).await.unwrap().compiled(), wasmrpc::runtime::Compiled::Cached);
}
