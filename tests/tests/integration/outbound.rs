//! Guest capabilities: outbound calls and casts (to a Python oslo.messaging service and to
//! other wasmrpc endpoints) limited to what the manifest grants, the context and the deadline
//! carried through, and `[config]` values, over the real broker.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use wasmrpc::Host;
use wasmrpc::protocol::Version;
use wasmrpc::rpc::{Prepare, RpcClient};
use wasmrpc_tests::broker::{BROKER, rabbit_url, unique};
use wasmrpc_tests::python::OsloServer;
use wasmrpc_tests::{ManifestDir, obj};

use super::interop::{rabbit_client, rabbit_host};
use super::support::{CapturedLogs, capture_logs};

/// A broker world: an exchange, a host serving the calculator and a gateway, a Python service.
struct World {
    exchange: String,
    calc: String,
    python: String,
    gateway: String,
    host: Host,
    server: OsloServer,
    _dir: ManifestDir,
}

impl World {
    /// The gateway's manifest grants calls to the calculator and the Python service, and casts
    /// to the Python service; `extra` is appended to it.
    async fn start(extra: &str) -> World {
        let exchange = unique("ex");
        let (calc, python, gateway) = (unique("calc"), unique("py"), unique("gw"));
        let dir = ManifestDir::new();
        dir.endpoint("calculator", "calculator", &calc, "1.0", "");
        dir.endpoint(
            "gateway",
            "gateway",
            &gateway,
            "1.0",
            &format!(
                "[outbound]\ncall = [\"{calc}\", \"{python}\"]\ncast = [\"{python}\"]\n\
                 [config]\ncalculator_topic = \"{calc}\"\npython_topic = \"{python}\"\n{extra}"
            ),
        );
        let server = OsloServer::start(&rabbit_url(), &exchange, &python, "py1", &[]).await;
        let host = rabbit_host(&exchange, "gw-host", &dir).await;
        World { exchange, calc, python, gateway, host, server, _dir: dir }
    }

    async fn gateway(&self) -> RpcClient {
        rabbit_client(&self.exchange, &self.gateway)
            .await
            .prepare(Prepare { timeout: Some(Duration::from_secs(60)), ..Prepare::default() })
    }

    async fn stop(self) {
        self.host.stop().await.ok();
        self.server.stop().await;
    }
}

fn relay(topic: &str, method: &str, args: Value) -> Map<String, Value> {
    obj(json!({"topic": topic, "method": method, "args": args, "version": "1.3"}))
}

fn error_of(v: &Value) -> &Value {
    v.get("error").unwrap_or_else(|| panic!("expected an error, got {v}"))
}

/// What the Python service's `record` has received (casts are asynchronous: wait for `want`).
async fn recorded(world: &World, want: usize) -> Value {
    let py = rabbit_client(&world.exchange, &world.python).await;
    let py = py.prepare(Prepare { version: Some(Version::new(1, 3)), ..Prepare::default() });
    let started = Instant::now();
    loop {
        let got = py.call(&Map::new(), "recorded", Map::new()).await.unwrap();
        if got.as_array().is_some_and(|a| a.len() >= want) || started.elapsed() > Duration::from_secs(10) {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_calls_python_and_wasmrpc_services_and_casts() {
    let _broker = BROKER.read().await;
    let world = World::start("").await;
    let gw = world.gateway().await;
    let none = Map::new();
    // Another wasmrpc endpoint, and a Python oslo.messaging service.
    assert_eq!(gw.call(&none, "add", obj(json!({"a": 2, "b": 3}))).await.unwrap(), json!(5.0));
    assert_eq!(gw.call(&none, "python_add", obj(json!({"a": 2, "b": 3}))).await.unwrap(), json!(5));
    // The Python exception comes back typed, and the guest passes it on with its own class.
    let out = gw.call(&none, "relay", relay(&world.python, "boom", json!({"message": "kaboom"}))).await.unwrap();
    let e = error_of(&out);
    assert_eq!((e["kind"].clone(), e["type"].clone()), (json!("RemoteError"), json!("Boom")), "{out}");
    assert!(e["message"].as_str().unwrap().contains("kaboom"), "{out}");
    let out = gw.call(&none, "relay", relay(&world.python, "nosuch", json!({}))).await.unwrap();
    assert_eq!(error_of(&out)["kind"], json!("NoSuchMethod"), "{out}");
    let err = gw.call(&none, "python_add", obj(json!({"a": 2, "b": "x"}))).await.unwrap_err();
    assert!(err.to_string().contains("TypeError"), "{err}");
    // A remote error from another wasmrpc endpoint.
    let mut divide = relay(&world.calc, "divide", json!({"a": 1, "b": 0}));
    divide.insert("version".into(), json!("1.0"));
    let out = gw.call(&none, "relay", divide).await.unwrap();
    let e = error_of(&out);
    assert_eq!(
        (e["type"].clone(), e["module"].clone()),
        (json!("DivisionByZero"), json!("wasmrpc.endpoints.calculator"))
    );
    // A reply that does not come in time.
    let mut slow = relay(&world.python, "slow", json!({"seconds": 5}));
    slow.insert("timeout".into(), json!(0.5));
    let out = gw.call(&none, "relay", slow).await.unwrap();
    assert_eq!(error_of(&out)["kind"], json!("MessagingTimeout"), "{out}");
    // A fanout cast reaches the Python service.
    assert_eq!(gw.call(&none, "announce", obj(json!({"tag": "t1"}))).await.unwrap(), json!(true));
    assert_eq!(recorded(&world, 1).await, json!(["t1"]));
    world.stop().await;
}

/// Logs are captured on this thread, so the host runs on it too (current-thread runtime).
#[tokio::test]
async fn a_target_outside_the_grant_publishes_nothing_and_is_refused() {
    let _broker = BROKER.read().await;
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(capture_logs(&logs));
    let world = World::start("").await;
    // A second Python service the gateway may not reach.
    let forbidden = unique("forbidden");
    let other = OsloServer::start(&rabbit_url(), &world.exchange, &forbidden, "py2", &[]).await;
    let gw = world.gateway().await;
    let none = Map::new();
    let mut cast = relay(&forbidden, "record", json!({"tag": "sneaky"}));
    cast.insert("cast".into(), json!(true));
    let out = gw.call(&none, "relay", cast).await.unwrap();
    let e = error_of(&out);
    assert_eq!((e["kind"].clone(), e["type"].clone()), (json!("NotAllowed"), json!("NotAllowed")), "{out}");
    assert!(e["message"].as_str().unwrap().contains(&forbidden), "names the topic: {out}");
    let out = gw.call(&none, "relay", relay(&forbidden, "add", json!({"a": 1, "b": 1}))).await.unwrap();
    assert_eq!(error_of(&out)["kind"], json!("NotAllowed"), "{out}");
    // Granted for calls, not casts: the grant is per kind.
    let mut cast_calc = relay(&world.calc, "add", json!({"a": 1, "b": 1}));
    cast_calc.insert("cast".into(), json!(true));
    assert_eq!(error_of(&gw.call(&none, "relay", cast_calc).await.unwrap())["kind"], json!("NotAllowed"));
    // Nothing reached the forbidden service: it recorded no cast.
    let py2 = rabbit_client(&world.exchange, &forbidden).await;
    let py2 = py2.prepare(Prepare { version: Some(Version::new(1, 3)), ..Prepare::default() });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(py2.call(&none, "recorded", Map::new()).await.unwrap(), json!([]));
    let text = logs.text();
    assert!(
        text.lines().any(|l| l.contains("outbound cast refused") && l.contains(&forbidden) && l.contains("gateway")),
        "a log line names the endpoint and the refused topic:\n{text}"
    );
    other.stop().await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callee_sees_the_callers_request_ids() {
    let _broker = BROKER.read().await;
    let world = World::start("").await;
    let gw = world.gateway().await;
    let ctx = obj(json!({"user": "u1", "request_id": "req-inbound", "global_request_id": "req-global"}));
    let out = gw.call(&ctx, "relay", relay(&world.python, "ctx", json!({}))).await.unwrap();
    let seen = &out["ok"];
    assert_eq!(
        (seen["request_id"].clone(), seen["global_request_id"].clone(), seen["user"].clone()),
        (json!("req-inbound"), json!("req-global"), json!("u1")),
        "{out}"
    );
    // Without a request id, the outbound call gets one as oslo.context would make it.
    let out = gw.call(&Map::new(), "relay", relay(&world.python, "ctx", json!({}))).await.unwrap();
    let id = out["ok"]["request_id"].as_str().unwrap_or_default();
    assert!(id.starts_with("req-") && id.len() == 40, "{out}");
    assert_eq!(out["ok"]["global_request_id"], Value::Null, "{out}");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbound_call_ends_by_the_callers_deadline() {
    let _broker = BROKER.read().await;
    let world = World::start("[limits]\ndeadline = \"2s\"").await;
    let gw = world.gateway().await;
    // The guest asks for 30 s, the Python method takes 20 s: what is left of the 2 s deadline wins.
    let mut slow = relay(&world.python, "slow", json!({"seconds": 20}));
    slow.insert("timeout".into(), json!(30));
    let started = Instant::now();
    let outcome = gw.call(&Map::new(), "relay", slow).await;
    let elapsed = started.elapsed();
    match &outcome {
        Ok(out) => assert_eq!(error_of(out)["kind"], json!("MessagingTimeout"), "{out}"),
        Err(e) => assert!(e.to_string().contains("DeadlineExceeded"), "{e}"),
    }
    assert!(elapsed < Duration::from_secs(12), "the call outlived its 2 s deadline: {elapsed:?}");
    world.stop().await;
}

/// A → B → A → echo.sleep(60): the whole chain ends by A's deadline, and every endpoint
/// answers afterwards (no slot is left held).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_ends_at_the_first_callers_deadline() {
    let _broker = BROKER.read().await;
    let exchange = unique("ex");
    let (a, b, echo) = (unique("ga"), unique("gb"), unique("echo"));
    let dir = ManifestDir::new();
    dir.endpoint("echo", "echo", &echo, "1.3", "");
    let grant = format!("[outbound]\ncall = [\"{a}\", \"{b}\", \"{echo}\"]");
    dir.endpoint("gw-a", "gateway", &a, "1.0", &format!("{grant}\n[limits]\ndeadline = \"3s\""));
    dir.endpoint("gw-b", "gateway", &b, "1.0", &format!("{grant}\n[limits]\ndeadline = \"60s\""));
    let host = rabbit_host(&exchange, "cycle-host", &dir).await;
    let client = rabbit_client(&exchange, &a)
        .await
        .prepare(Prepare { timeout: Some(Duration::from_secs(60)), ..Prepare::default() });
    let sleep = json!({"topic": echo, "method": "sleep", "args": {"seconds": 60}, "version": "1.3"});
    let back_to_a = json!({"topic": a, "method": "relay", "args": sleep, "version": "1.0"});
    let to_b = obj(json!({"topic": b, "method": "relay", "args": back_to_a, "version": "1.0"}));
    let started = Instant::now();
    let outcome = client.call(&Map::new(), "relay", to_b).await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(20), "the chain outlived A's 3 s deadline: {elapsed:?} ({outcome:?})");
    // Every endpoint answers again.
    let ping = |topic: &str, version: &str| {
        obj(json!({"topic": topic, "method": "echo", "args": {"value": 1}, "version": version}))
    };
    let out = client.call(&Map::new(), "relay", ping(&echo, "1.3")).await.unwrap();
    assert_eq!(out, json!({"ok": 1}));
    let b_client = rabbit_client(&exchange, &b).await;
    assert_eq!(b_client.call(&Map::new(), "relay", ping(&echo, "1.3")).await.unwrap(), json!({"ok": 1}));
    host.stop().await.ok();
}

/// Two worker threads, 64 calls whose guests each wait on an outbound call to an endpoint that
/// sleeps 1 s: the guests wait together, not in turn (64 s if each held a thread in turn, never
/// if two of them held both threads), and another endpoint answers meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_waiting_on_outbound_calls_hold_no_worker_thread() {
    let _broker = BROKER.read().await;
    let exchange = unique("ex");
    let (gateway, echo, calc) = (unique("gw"), unique("echo"), unique("calc"));
    let dir = ManifestDir::new();
    dir.endpoint("echo", "echo", &echo, "1.3", "");
    dir.endpoint("calculator", "calculator", &calc, "1.0", "");
    dir.endpoint("gateway", "gateway", &gateway, "1.0", &format!("[outbound]\ncall = [\"{echo}\"]"));
    let host = rabbit_host(&exchange, "waiters-host", &dir).await;
    let gw = rabbit_client(&exchange, &gateway)
        .await
        .prepare(Prepare { timeout: Some(Duration::from_secs(120)), ..Prepare::default() });
    let calculator = rabbit_client(&exchange, &calc).await;
    let sleep = obj(json!({"topic": echo, "method": "sleep", "args": {"seconds": 1.0}, "version": "1.3"}));
    let finished = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut waiters = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let (gw, sleep, finished) = (gw.clone(), sleep.clone(), finished.clone());
        waiters.spawn(async move {
            let out = gw.call(&Map::new(), "relay", sleep).await;
            finished.fetch_add(1, Ordering::SeqCst);
            out
        });
    }
    // The calculator answers while the guests wait.
    let mut answered_meanwhile = 0;
    while finished.load(Ordering::SeqCst) == 0 && started.elapsed() < Duration::from_secs(120) {
        let sum = calculator.call(&Map::new(), "add", obj(json!({"a": 2, "b": 3}))).await.unwrap();
        assert_eq!(sum, json!(5));
        if finished.load(Ordering::SeqCst) == 0 {
            answered_meanwhile += 1;
        }
    }
    while let Some(joined) = waiters.join_next().await {
        assert_eq!(joined.unwrap().expect("every relayed sleep is answered"), json!({"ok": 1.0}));
    }
    let elapsed = started.elapsed();
    assert!(answered_meanwhile > 0, "the calculator never answered while the guests waited");
    // Generous for a busy machine, and far below the 32 s of two threads taking turns.
    assert!(elapsed < Duration::from_secs(10), "64 outbound calls of 1 s each took {elapsed:?}");
    host.stop().await.ok();
}
