//! The deadline bounds a whole call, whatever the guest waits on (a WASI sleep, any import),
//! and a guest waiting holds no worker thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use wasmrpc::{CallError, TrapKind};
use wasmrpc_tests::{ManifestDir, example_manifest};

use super::support::{call, load, runtime};

/// `poll_oneoff` on one relative monotonic clock of `nanos`: a WASI sleep, as `std::thread::sleep`
/// makes it. The subscription is at 2048, the event at 2112, the count at 2144.
fn wasi_sleep(nanos: u64) -> String {
    format!(
        "(i64.store (i32.const 2048) (i64.const 0))
    (i32.store8 (i32.const 2056) (i32.const 0))
    (i32.store (i32.const 2064) (i32.const 1))
    (i64.store (i32.const 2072) (i64.const {nanos}))
    (i64.store (i32.const 2080) (i64.const 0))
    (i32.store16 (i32.const 2088) (i32.const 0))
    (drop (call $poll_oneoff (i32.const 2048) (i32.const 2112) (i32.const 1) (i32.const 2144)))"
    )
}

/// A guest whose `wasmrpc_describe` sleeps an hour in WASI before answering.
fn sleepy_describe() -> String {
    let desc = r#"{"abi_version":1,"endpoint":"sleepy","version":"1.0","methods":[{"name":"m","params":[]}]}"#;
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{escaped}")
  (func (export "wasmrpc_abi_version") (result i32) (i32.const 1))
  (func (export "wasmrpc_alloc") (param i32) (result i32) (i32.const 4096))
  (func (export "wasmrpc_dealloc") (param i32 i32))
  (func (export "wasmrpc_describe") (result i64)
    {sleep}
    (i64.const {len}))
  (func (export "wasmrpc_call") (param i32 i32) (result i64) (i64.const 0)))"#,
        escaped = desc.replace('"', "\\\""),
        sleep = wasi_sleep(3600 * 1_000_000_000),
        len = desc.len()
    )
}

#[tokio::test]
async fn a_guest_sleeping_past_its_deadline_is_stopped_at_the_deadline() {
    let dir = ManifestDir::new();
    let m = dir.endpoint("echo", "echo", "echo", "1.3", "[limits]\ndeadline = \"500ms\"\n[instance]\nmode = \"warm\"");
    let plugin = load(&m).await;
    let started = Instant::now();
    let err = call(&plugin, "sleep", json!({"seconds": 30.0})).await.expect_err("the sleep must be stopped");
    let elapsed = started.elapsed();
    let CallError::Trap { kind, message, .. } = &err else { panic!("expected a deadline trap, got {err:?}") };
    assert_eq!(*kind, TrapKind::Deadline, "{err}");
    assert!(message.contains("500ms"), "{message}");
    assert!(elapsed >= Duration::from_millis(500), "stopped early: {elapsed:?}");
    // Before the fix the call ran the whole 30 s sleep.
    assert!(elapsed < Duration::from_secs(15), "the sleep was not stopped: {elapsed:?}");
    // The stopped instance was discarded; the next call gets a sound one.
    assert_eq!(call(&plugin, "echo", json!({"value": 7})).await.unwrap(), json!(7));
}

#[tokio::test]
async fn a_describe_that_sleeps_cannot_hang_a_load() {
    let dir = ManifestDir::new();
    std::fs::write(dir.path().join("guest.wasm"), wat::parse_str(sleepy_describe()).expect("valid WAT")).unwrap();
    let manifest = dir.write(
        "sleepy",
        "name = \"sleepy\"\nmodule = \"guest.wasm\"\n[target]\ntopic = \"sleepy\"\nversion = \"1.0\"\n[limits]\ndeadline = \"1s\"\n",
    );
    let spec = wasmrpc::manifest::load_file(&manifest).unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let runtime = runtime();
    let loading = runtime.load(&spec, None);
    // Before the fix the load waited out the guest's hour-long sleep.
    let err = tokio::time::timeout(Duration::from_secs(60), loading)
        .await
        .expect("the load must end by the probe's deadline")
        .expect_err("a describe past its deadline is refused");
    let text = err.to_string();
    assert!(text.contains("trapped while being probed") && text.contains("deadline"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
}

/// Two worker threads, 64 guests each sleeping 1 s in WASI: they wait together, not in turn,
/// and another endpoint answers meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_guests_hold_no_worker_thread() {
    let echo = load(&example_manifest("echo")).await;
    let calculator = load(&example_manifest("calculator")).await;
    let finished = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut sleeps = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let echo = echo.clone();
        let finished = finished.clone();
        sleeps.spawn(async move {
            let out = call(&echo, "sleep", json!({"seconds": 1.0})).await;
            finished.fetch_add(1, Ordering::SeqCst);
            out
        });
    }
    // The calculator answers while the sleeps are pending.
    let mut answered_meanwhile = 0;
    while finished.load(Ordering::SeqCst) == 0 && started.elapsed() < Duration::from_secs(60) {
        assert_eq!(call(&calculator, "add", json!({"a": 2, "b": 3})).await.unwrap(), json!(5));
        if finished.load(Ordering::SeqCst) == 0 {
            answered_meanwhile += 1;
        }
    }
    while let Some(joined) = sleeps.join_next().await {
        assert_eq!(joined.unwrap().expect("every sleep succeeds"), json!(1.0));
    }
    let elapsed = started.elapsed();
    assert!(answered_meanwhile > 0, "the calculator never answered while the guests slept");
    // 64 s if the sleeps held the threads in turn; generous for a busy machine otherwise.
    assert!(elapsed < Duration::from_secs(20), "64 one-second sleeps took {elapsed:?}");
}
