//! The sandbox: every kind of trap becomes a structured error naming endpoint, method and kind,
//! the next call works, limits hold, and WASI grants nothing the manifest does not.

use std::time::{Duration, Instant};

use serde_json::json;
use wasmrpc::{CallError, TrapKind};
use wasmrpc_tests::{ManifestDir, example_manifest};

use super::support::{CapturedLogs, call, capture_logs, load};

/// Asserts a trap of `kind` on `method`, then that a normal call on the same plugin works.
async fn assert_trap_then_recover(
    plugin: &wasmrpc::Plugin,
    method: &str,
    args: serde_json::Value,
    kind: TrapKind,
) -> String {
    let err = call(plugin, method, args).await.expect_err("the call must trap");
    let CallError::Trap { endpoint, method: m, kind: k, message } = &err else {
        panic!("expected a trap, got {err:?}")
    };
    assert_eq!((endpoint.as_str(), m.as_str(), *k), (plugin.name(), method, kind), "{err}");
    assert_eq!(call(plugin, "ping", json!({})).await.expect("the next call works"), json!("pong"));
    message.clone()
}

#[tokio::test]
async fn a_spinning_guest_is_stopped_at_its_deadline() {
    let dir = ManifestDir::new();
    let m = dir.endpoint("looper", "looper", "looper", "1.0", "[limits]\ndeadline = \"500ms\"");
    let plugin = load(&m).await;
    let started = Instant::now();
    let message = assert_trap_then_recover(&plugin, "spin", json!({}), TrapKind::Deadline).await;
    let elapsed = started.elapsed();
    assert!(message.contains("500ms"), "{message}");
    // Close to the deadline: never before it, and stopped (not left running) well within seconds.
    assert!(elapsed >= Duration::from_millis(500), "stopped early: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "stopped late: {elapsed:?}");
}

#[tokio::test]
async fn the_example_looper_stops_at_its_configured_two_seconds() {
    let plugin = load(&example_manifest("looper")).await;
    let started = Instant::now();
    assert_trap_then_recover(&plugin, "spin", json!({}), TrapKind::Deadline).await;
    assert!(started.elapsed() >= Duration::from_secs(2));
}

#[tokio::test]
async fn fuel_stops_a_spinning_guest_before_its_deadline() {
    let dir = ManifestDir::new();
    let m = dir.endpoint("looper", "looper", "looper", "1.0", "[limits]\ndeadline = \"60s\"\nfuel = 5000000");
    let plugin = load(&m).await;
    let started = Instant::now();
    assert_trap_then_recover(&plugin, "spin", json!({}), TrapKind::Fuel).await;
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn unbounded_allocation_hits_the_memory_limit() {
    let plugin = load(&example_manifest("hog")).await;
    let message = assert_trap_then_recover(&plugin, "grow", json!({"chunk_mb": 4}), TrapKind::MemoryLimit).await;
    assert!(message.contains(&(32u64 << 20).to_string()), "names the 32 MiB limit: {message}");
}

#[tokio::test]
async fn stack_overflow_out_of_bounds_and_unreachable_are_named() {
    let plugin = load(&example_manifest("hog")).await;
    assert_trap_then_recover(&plugin, "recurse", json!({}), TrapKind::StackOverflow).await;
    assert_trap_then_recover(&plugin, "poke", json!({}), TrapKind::OutOfBounds).await;
    assert_trap_then_recover(&plugin, "unreachable", json!({}), TrapKind::Unreachable).await;
}

#[tokio::test]
async fn a_panic_becomes_an_error_carrying_its_message() {
    let plugin = load(&example_manifest("panicker")).await;
    let message = assert_trap_then_recover(&plugin, "boom", json!({"message": "kaboom 42"}), TrapKind::Panic).await;
    assert!(message.starts_with("kaboom 42"), "{message}");
    assert!(message.contains("panicker/src/lib.rs"), "carries the location: {message}");
}

#[tokio::test]
async fn a_trap_in_warm_mode_discards_the_instance() {
    let dir = ManifestDir::new();
    let plugin = load(&dir.endpoint("echo", "echo", "echo", "1.3", "[instance]\nmode = \"warm\"")).await;
    assert_eq!(call(&plugin, "count", json!({})).await.unwrap(), json!(1));
    assert_eq!(call(&plugin, "count", json!({})).await.unwrap(), json!(2));
    let err = call(&plugin, "abort", json!({})).await.unwrap_err();
    assert!(matches!(err, CallError::Trap { kind: TrapKind::Unreachable, .. }), "{err:?}");
    // The trapped instance is gone: the count starts again in a new one.
    assert_eq!(call(&plugin, "count", json!({})).await.unwrap(), json!(1));
}

#[tokio::test]
async fn the_snoop_sees_no_file_no_environment_and_no_socket() {
    let plugin = load(&example_manifest("snoop")).await;
    let passwd = call(&plugin, "read_file", json!({"path": "/etc/passwd"})).await.unwrap();
    assert!(passwd.get("error").is_some(), "{passwd}");
    let relative = call(&plugin, "read_file", json!({"path": "etc/passwd"})).await.unwrap();
    assert!(relative.get("error").is_some(), "{relative}");
    let root = call(&plugin, "list_dir", json!({"path": "/"})).await.unwrap();
    assert!(root.get("error").is_some(), "{root}");
    assert_eq!(call(&plugin, "env", json!({})).await.unwrap(), json!({}));
    assert_eq!(call(&plugin, "args", json!({})).await.unwrap(), json!([]));
    let connect = call(&plugin, "connect", json!({"addr": "127.0.0.1:5672"})).await.unwrap();
    assert!(connect.get("error").is_some(), "{connect}");
    let sockets = call(&plugin, "probe_sockets", json!({})).await.unwrap();
    let errnos = sockets.as_array().unwrap();
    assert_eq!(errnos.len(), 16);
    assert!(errnos.iter().all(|e| e.as_i64() != Some(0)), "no descriptor is a socket: {sockets}");
    // stdin is closed: reading it gives end-of-file at once.
    assert_eq!(call(&plugin, "read_stdin", json!({})).await.unwrap(), json!({"ok": 0}));
    assert_eq!(call(&plugin, "ping", json!({})).await.unwrap(), json!("pong"));
}

#[tokio::test]
async fn granted_environment_and_directories_are_visible_and_read_only_by_default() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("greeting.txt"), "hello").unwrap();
    let dir = ManifestDir::new();
    let extra = format!(
        "[sandbox]\nenv = {{ REGION = \"eu-west\" }}\ninherit_env = [\"CARGO_PKG_NAME_NOT_SET\", \"PATH\"]\n\
         [[sandbox.dirs]]\nhost = \"{}\"\nguest = \"/data\"\n",
        data.path().display()
    );
    let m = dir.endpoint("snoop", "snoop", "snoop", "1.0", &extra);
    let plugin = load(&m).await;
    let env = call(&plugin, "env", json!({})).await.unwrap();
    assert_eq!(env["REGION"], json!("eu-west"));
    assert_eq!(env["PATH"], json!(std::env::var("PATH").unwrap()), "inherited by name");
    assert_eq!(env.as_object().unwrap().len(), 2, "nothing else leaks: {env}");
    assert_eq!(
        call(&plugin, "read_file", json!({"path": "/data/greeting.txt"})).await.unwrap(),
        json!({"ok": "hello"})
    );
    let write = call(&plugin, "write_file", json!({"path": "/data/new.txt", "content": "x"})).await.unwrap();
    assert!(write.get("error").is_some(), "read-only by default: {write}");
    assert!(!data.path().join("new.txt").exists());
    let outside = call(&plugin, "read_file", json!({"path": "/data/../../etc/passwd"})).await.unwrap();
    assert!(outside.get("error").is_some(), "no escape through ..: {outside}");

    let rw = ManifestDir::new();
    let extra = format!("[[sandbox.dirs]]\nhost = \"{}\"\nguest = \"/data\"\nwritable = true\n", data.path().display());
    let plugin = load(&rw.endpoint("snoop", "snoop", "snoop", "1.0", &extra)).await;
    let write = call(&plugin, "write_file", json!({"path": "/data/new.txt", "content": "written"})).await.unwrap();
    assert_eq!(write, json!({"ok": true}));
    assert_eq!(std::fs::read_to_string(data.path().join("new.txt")).unwrap(), "written");
}

#[tokio::test]
async fn warm_instances_keep_state_up_to_their_invocation_bound() {
    let dir = ManifestDir::new();
    let warm =
        load(&dir.endpoint("warm", "echo", "echo", "1.3", "[instance]\nmode = \"warm\"\nmax_invocations = 3")).await;
    let mut counts = Vec::new();
    for _ in 0..7 {
        counts.push(call(&warm, "count", json!({})).await.unwrap());
    }
    assert_eq!(counts, [1, 2, 3, 1, 2, 3, 1].map(|n| json!(n)));
    let fresh = load(&dir.endpoint("fresh", "echo", "echo", "1.3", "")).await;
    for _ in 0..3 {
        assert_eq!(call(&fresh, "count", json!({})).await.unwrap(), json!(1), "a fresh instance per call");
    }
}

#[tokio::test]
async fn guest_output_and_log_macros_reach_the_host_log_with_the_endpoint_name() {
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(capture_logs(&logs));
    let plugin = load(&example_manifest("echo")).await;
    call(&plugin, "print", json!({"line": "to stdout"})).await.unwrap();
    call(&plugin, "sleep", json!({"seconds": 0.0})).await.unwrap();
    let text = logs.text();
    let line = |needle: &str| {
        text.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("no {needle:?} in:\n{text}")).to_owned()
    };
    assert!(line("to stdout").contains("endpoint=echo") && line("to stdout").contains("stdout"));
    assert!(line("to stdout (stderr)").contains("stream=\"stderr\""));
    assert!(line("sleeping 0 s").contains("INFO"), "info! goes to the host log at info");
}
