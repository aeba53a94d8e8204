//! The guest ABI is language-neutral: hand-written WAT guests (no SDK) load and answer through
//! the same runtime, and modules that break the ABI are refused with a clear reason.

use serde_json::json;
use wasmrpc::LoadError;
use wasmrpc_tests::ManifestDir;

use super::support::{CapturedLogs, call, capture_logs, runtime};

const DESCRIPTION: &str =
    r#"{"abi_version":1,"endpoint":"wat","version":"1.0","methods":[{"name":"echo_request","params":[]}]}"#;

/// A complete guest in WAT: a bump allocator, a static description, and a call that logs a line
/// and returns `{"ok": <the request it was given>}`. `abi` is what `wasmrpc_abi_version` returns.
fn wat_guest(abi: i32, extra: &str) -> String {
    let desc = DESCRIPTION.replace('"', "\\\"");
    format!(
        r#"(module
  (import "wasmrpc" "log" (func $log (param i32 i32 i32)))
  {extra}
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 0) "{desc}")
  (data (i32.const 1024) "{{\"ok\":")
  (data (i32.const 1100) "hello from hand-written WAT")
  (func (export "wasmrpc_abi_version") (result i32) (i32.const {abi}))
  (func $alloc (export "wasmrpc_alloc") (param $len i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $len)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.const 1)
        (i32.div_u (global.get $heap) (i32.const 65536)))))))
    (local.get $p))
  (func (export "wasmrpc_dealloc") (param i32 i32))
  (func (export "wasmrpc_describe") (result i64) (i64.const {len}))
  (func (export "wasmrpc_call") (param $ptr i32) (param $len i32) (result i64)
    (local $out i32)
    (call $log (i32.const 2) (i32.const 1100) (i32.const 27))
    (local.set $out (call $alloc (i32.add (local.get $len) (i32.const 7))))
    (memory.copy (local.get $out) (i32.const 1024) (i32.const 6))
    (memory.copy (i32.add (local.get $out) (i32.const 6)) (local.get $ptr) (local.get $len))
    (i32.store8 (i32.add (local.get $out) (i32.add (local.get $len) (i32.const 6))) (i32.const 125))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
            (i64.extend_i32_u (i32.add (local.get $len) (i32.const 7))))))"#,
        len = DESCRIPTION.len()
    )
}

/// Writes `wat` as a module and a manifest for it; returns the manifest path.
fn install(dir: &ManifestDir, wat: &str, target: &str) -> std::path::PathBuf {
    let wasm = wat::parse_str(wat).expect("valid WAT");
    let module = dir.path().join("guest.wasm");
    std::fs::write(&module, wasm).unwrap();
    dir.write("wat", &format!("name = \"wat\"\nmodule = \"guest.wasm\"\n\n[target]\n{target}\n"))
}

async fn load_error(manifest: &std::path::Path) -> LoadError {
    let spec = wasmrpc::manifest::load_file(manifest).unwrap_or_else(|e| panic!("{e}"));
    runtime().load(&spec, None).await.expect_err("the module must be refused")
}

#[tokio::test]
async fn a_hand_written_wat_guest_is_callable_through_the_same_runtime() {
    let dir = ManifestDir::new();
    let manifest = install(&dir, &wat_guest(1, ""), "topic = \"wat\"\nversion = \"1.0\"");
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(capture_logs(&logs));
    let spec = wasmrpc::manifest::load_file(&manifest).unwrap();
    let plugin = runtime().load(&spec, None).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(plugin.has_method("echo_request"));
    let mut context = serde_json::Map::new();
    context.insert("user".into(), json!("u1"));
    let args = json!({"x": [1, "a"], "ü": "ß"}).as_object().cloned().unwrap();
    let got = plugin.call("echo_request", &args, &context, None).await.unwrap();
    assert_eq!(got, json!({"method": "echo_request", "args": {"x": [1, "a"], "ü": "ß"}, "context": {"user": "u1"}}));
    assert!(logs.text().contains("hello from hand-written WAT"), "the log import works from WAT:\n{}", logs.text());
}

#[tokio::test]
async fn a_module_built_for_another_abi_version_is_refused() {
    let dir = ManifestDir::new();
    let err = load_error(&install(&dir, &wat_guest(2, ""), "topic = \"wat\"\nversion = \"1.0\"")).await;
    let text = err.to_string();
    assert!(text.contains("ABI version 2") && text.contains("speaks version 1"), "{text}");
    assert!(text.contains("guest.wasm"), "names the module: {text}");
}

#[tokio::test]
async fn missing_exports_are_listed() {
    let dir = ManifestDir::new();
    let wat = wat_guest(1, "").replace("(export \"wasmrpc_call\")", "").replace("(export \"wasmrpc_describe\")", "");
    let text = load_error(&install(&dir, &wat, "topic = \"wat\"\nversion = \"1.0\"")).await.to_string();
    assert!(text.contains("`wasmrpc_call` (func (i32, i32) -> i64)") && text.contains("`wasmrpc_describe`"), "{text}");
    assert!(!text.contains("`wasmrpc_alloc`"), "only what is missing: {text}");
}

#[tokio::test]
async fn an_import_the_host_does_not_provide_is_named() {
    let dir = ManifestDir::new();
    let wat = wat_guest(1, r#"(import "env" "open_socket" (func (param i32) (result i32)))"#);
    let text = load_error(&install(&dir, &wat, "topic = \"wat\"\nversion = \"1.0\"")).await.to_string();
    assert!(text.contains("open_socket") && text.contains("does not provide"), "{text}");
}

#[tokio::test]
async fn a_file_that_is_not_wasm_is_refused() {
    let dir = ManifestDir::new();
    std::fs::write(dir.path().join("guest.wasm"), b"#!/bin/sh\necho not wasm\n").unwrap();
    let manifest =
        dir.write("wat", "name = \"wat\"\nmodule = \"guest.wasm\"\n[target]\ntopic = \"wat\"\nversion = \"1.0\"\n");
    let text = load_error(&manifest).await.to_string();
    assert!(text.contains("is not a valid WebAssembly module"), "{text}");
}

#[tokio::test]
async fn a_manifest_that_disagrees_with_the_description_is_refused_at_its_line() {
    let dir = ManifestDir::new();
    let text = load_error(&install(&dir, &wat_guest(1, ""), "topic = \"wat\"\nversion = \"2.0\"")).await.to_string();
    assert!(text.contains("wat.toml:6:11") && text.contains("implements version 1.0"), "{text}");

    let dir = ManifestDir::new();
    let wasm = wat::parse_str(wat_guest(1, "")).unwrap();
    std::fs::write(dir.path().join("guest.wasm"), wasm).unwrap();
    let manifest = dir.write(
        "wat",
        "name = \"wat\"\nmodule = \"guest.wasm\"\nmethods = [\"echo_request\", \"launch\"]\n[target]\ntopic = \"wat\"\nversion = \"1.0\"\n",
    );
    let text = load_error(&manifest).await.to_string();
    assert!(
        text.contains("wat.toml:3:11") && text.contains("launch") && text.contains("it has: echo_request"),
        "{text}"
    );
}

#[tokio::test]
async fn sdk_guests_answer_keyword_arguments_like_python() {
    let plugin = super::support::load(&wasmrpc_tests::example_manifest("calculator")).await;
    assert_eq!(call(&plugin, "add", json!({"a": 2, "b": 3})).await.unwrap(), json!(5));
    assert_eq!(call(&plugin, "add", json!({"b": 0.5, "a": 2})).await.unwrap(), json!(2.5));
    assert_eq!(call(&plugin, "divide", json!({"a": 7, "b": 2})).await.unwrap(), json!(3.5));
    let err = call(&plugin, "divide", json!({"a": 1, "b": 0})).await.unwrap_err();
    let wasmrpc::CallError::Guest(e) = err else { panic!("{err:?}") };
    assert_eq!((e.type_name.as_str(), e.message.as_str()), ("DivisionByZero", "division by zero"));
    let err = call(&plugin, "add", json!({"a": 1})).await.unwrap_err();
    let wasmrpc::CallError::Guest(e) = err else { panic!("{err:?}") };
    assert_eq!(e.type_name, "TypeError");
    assert_eq!(e.module.as_deref(), Some("builtins"));
    assert_eq!(e.message, "add() missing 1 required positional argument: 'b'");
}
