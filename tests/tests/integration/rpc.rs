//! oslo.messaging's RPC semantics over `memory://`: real hosts serving real plugins, the real
//! client, the same bytes RabbitMQ would carry.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};
use wasmrpc::protocol::{Request, Target, Version};
use wasmrpc::rpc::{
    CallContext, Dispatcher, Endpoint, EndpointTarget, Prepare, RpcClient, RpcError, RpcServer, Serializer,
    ServerOptions,
};
use wasmrpc::transport::Outgoing;
use wasmrpc_tests::{ManifestDir, client_transport, memory_url, obj, start_host};

fn v(s: &str) -> Version {
    s.parse().unwrap()
}

fn ctx() -> Map<String, Value> {
    Map::new()
}

async fn client(url: &str, topic: &str) -> RpcClient {
    RpcClient::new(client_transport(url).await, Target::topic(topic))
}

fn remote(err: RpcError) -> wasmrpc::rpc::RemoteError {
    match err {
        RpcError::Remote(e) => e,
        other => panic!("expected a remote error, got {other:?}"),
    }
}

/// An echo endpoint that reports `name` from `whoami` and counts calls in one warm instance.
fn echo_manifest(dir: &ManifestDir, name: &str, topic: &str, instance: &str) {
    dir.endpoint(
        name,
        "echo",
        topic,
        "1.3",
        &format!(
            "[instance]\nmode = \"warm\"\nmax_concurrency = 1\n[sandbox]\nenv = {{ WASMRPC_INSTANCE = \"{instance}\" }}"
        ),
    );
}

#[tokio::test]
async fn call_and_cast() {
    let url = memory_url();
    let dir = ManifestDir::new();
    dir.endpoint("calculator", "calculator", "calculator", "1.0", "");
    echo_manifest(&dir, "echo", "echo", "a");
    let host = start_host(&url, "a", dir.path()).await;
    let calc = client(&url, "calculator").await;
    assert_eq!(calc.call(&ctx(), "add", obj(json!({"a": 2, "b": 3}))).await.unwrap(), json!(5));
    let echo = client(&url, "echo").await;
    for _ in 0..3 {
        echo.cast(&ctx(), "count", Map::new()).await.unwrap();
    }
    // One warm instance, one call at a time, in order: the three casts ran first.
    assert_eq!(echo.call(&ctx(), "count", Map::new()).await.unwrap(), json!(4));
    host.stop().await.unwrap();
}

#[tokio::test]
async fn directed_calls_reach_the_named_server_and_topic_calls_are_shared() {
    let url = memory_url();
    let (dir_a, dir_b) = (ManifestDir::new(), ManifestDir::new());
    echo_manifest(&dir_a, "echo", "echo", "a");
    echo_manifest(&dir_b, "echo", "echo", "b");
    let a = start_host(&url, "a", dir_a.path()).await;
    let b = start_host(&url, "b", dir_b.path()).await;
    let echo = client(&url, "echo").await;
    for server in ["a", "b", "a"] {
        let directed = echo.prepare(Prepare { server: Some(server.into()), ..Prepare::default() });
        assert_eq!(directed.call(&ctx(), "whoami", Map::new()).await.unwrap(), json!(server));
    }
    // Competing consumers on the shared topic queue: both servers answer some calls.
    let calls = (0..40).map(|_| {
        let echo = echo.clone();
        async move { echo.call(&ctx(), "whoami", Map::new()).await }
    });
    let answers: Vec<Value> = futures_join(calls).await.into_iter().map(Result::unwrap).collect();
    assert!(answers.contains(&json!("a")) && answers.contains(&json!("b")), "{answers:?}");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test]
async fn fanout_reaches_three_servers() {
    let url = memory_url();
    let dirs: Vec<ManifestDir> = (0..3).map(|_| ManifestDir::new()).collect();
    let mut hosts = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let name = format!("s{i}");
        echo_manifest(dir, "echo", "echo", &name);
        hosts.push(start_host(&url, &name, dir.path()).await);
    }
    let echo = client(&url, "echo").await;
    echo.prepare(Prepare { fanout: Some(true), ..Prepare::default() }).cast(&ctx(), "count", Map::new()).await.unwrap();
    for i in 0..3 {
        let directed = echo.prepare(Prepare { server: Some(format!("s{i}")), ..Prepare::default() });
        assert_eq!(directed.call(&ctx(), "count", Map::new()).await.unwrap(), json!(2), "server s{i} got the fanout");
    }
    let err = echo
        .prepare(Prepare { fanout: Some(true), ..Prepare::default() })
        .call(&ctx(), "count", Map::new())
        .await
        .unwrap_err();
    assert!(matches!(err, RpcError::InvalidTarget(_)), "a fanout call is refused: {err:?}");
    for h in hosts {
        h.stop().await.unwrap();
    }
}

#[tokio::test]
async fn namespace_and_version_select_the_endpoint_with_oslos_errors() {
    let url = memory_url();
    let dir = ManifestDir::new();
    // Same topic, two endpoints: echo 1.3 in the null namespace, test 2.0 in `ns2` (legacy `old`).
    dir.endpoint("a-echo", "echo", "multi", "1.3", "");
    dir.endpoint("b-test", "test", "multi", "2.0", "namespace = \"ns2\"\nlegacy_namespaces = [\"old\"]");
    let host = start_host(&url, "h", dir.path()).await;
    let base = client(&url, "multi").await;
    let with = |ns: Option<&str>, version: &str| {
        base.prepare(Prepare { namespace: ns.map(str::to_owned), version: Some(v(version)), ..Prepare::default() })
    };
    assert_eq!(with(None, "1.0").call(&ctx(), "echo", obj(json!({"value": 1}))).await.unwrap(), json!(1));
    assert_eq!(with(None, "1.3").call(&ctx(), "echo", obj(json!({"value": 2}))).await.unwrap(), json!(2));
    assert_eq!(base.call(&ctx(), "echo", obj(json!({"value": 3}))).await.unwrap(), json!(3), "no version means 1.0");
    assert_eq!(with(Some("ns2"), "2.0").call(&ctx(), "test", obj(json!({"arg": "x"}))).await.unwrap(), json!("x"));
    assert_eq!(with(Some("old"), "2.0").call(&ctx(), "test", obj(json!({"arg": "y"}))).await.unwrap(), json!("y"));

    let e = remote(with(None, "1.4").call(&ctx(), "echo", obj(json!({"value": 1}))).await.unwrap_err());
    assert_eq!((e.exc_type.as_str(), e.module.as_str()), ("UnsupportedVersion", "oslo_messaging.rpc.dispatcher"));
    assert_eq!(e.value, "Endpoint does not support RPC version 1.4. Attempted method: echo");
    let e = remote(with(None, "2.0").call(&ctx(), "test", obj(json!({"arg": 1}))).await.unwrap_err());
    assert_eq!(
        e.value, "Endpoint does not support RPC version 2.0. Attempted method: test",
        "2.0 lives in another namespace"
    );
    let e = remote(with(None, "1.0").call(&ctx(), "nosuch", Map::new()).await.unwrap_err());
    assert_eq!(
        (e.exc_type.as_str(), e.value.as_str()),
        ("NoSuchMethod", "Endpoint does not support RPC method nosuch")
    );
    let e = remote(with(None, "1.0").call(&ctx(), "_secret", Map::new()).await.unwrap_err());
    assert_eq!(
        (e.exc_type.as_str(), e.value.as_str()),
        ("NoSuchMethod", "Endpoint does not support RPC method _secret")
    );
    host.stop().await.unwrap();
}

#[tokio::test]
async fn the_context_round_trips_with_client_timeout_added() {
    let url = memory_url();
    let dir = ManifestDir::new();
    dir.endpoint("echo", "echo", "echo", "1.3", "");
    let host = start_host(&url, "h", dir.path()).await;
    let echo = client(&url, "echo").await;
    let sent = obj(json!({"user": "u1", "request_id": "req-1", "roles": ["admin", "member"], "is_admin": true}));
    let got = echo.call(&sent, "context", Map::new()).await.unwrap();
    assert_eq!(
        got,
        json!({"user": "u1", "request_id": "req-1", "roles": ["admin", "member"], "is_admin": true, "client_timeout": null})
    );
    let monitored = echo.prepare(Prepare { call_monitor_timeout: Some(Duration::from_secs(10)), ..Prepare::default() });
    assert_eq!(monitored.call(&sent, "context", Map::new()).await.unwrap()["client_timeout"], json!(10));
    host.stop().await.unwrap();
}

#[tokio::test]
async fn guest_errors_arrive_as_remote_errors_with_the_guests_type() {
    let url = memory_url();
    let dir = ManifestDir::new();
    dir.endpoint("calculator", "calculator", "calculator", "1.0", "");
    dir.endpoint("echo", "echo", "echo", "1.3", "");
    dir.endpoint("panicker", "panicker", "panicker", "1.0", "");
    let host = start_host(&url, "h", dir.path()).await;
    let e = remote(
        client(&url, "calculator").await.call(&ctx(), "divide", obj(json!({"a": 1, "b": 0}))).await.unwrap_err(),
    );
    assert_eq!(
        (e.exc_type.as_str(), e.module.as_str(), e.value.as_str()),
        ("DivisionByZero", "wasmrpc.endpoints.calculator", "division by zero")
    );
    let e = remote(
        client(&url, "echo")
            .await
            .call(&ctx(), "fail", obj(json!({"kind": "NotFound", "message": "no such thing"})))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.exc_type.as_str(), e.value.as_str()), ("NotFound", "no such thing"));
    assert_eq!(Value::Object(e.kwargs), json!({"code": 42}), "details become kwargs");
    let e = remote(
        client(&url, "panicker").await.call(&ctx(), "boom", obj(json!({"message": "aargh"}))).await.unwrap_err(),
    );
    assert_eq!((e.exc_type.as_str(), e.module.as_str()), ("GuestPanic", "wasmrpc.errors"));
    assert!(e.value.contains("endpoint panicker method boom") && e.value.contains("aargh"), "{}", e.value);
    host.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_call_nobody_answers_times_out() {
    let url = memory_url();
    let nobody = client(&url, "nobody-listens")
        .await
        .prepare(Prepare { timeout: Some(Duration::from_secs(30)), ..Prepare::default() });
    let started = tokio::time::Instant::now();
    let err = nobody.call(&ctx(), "anything", Map::new()).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(err.to_string().starts_with("Timed out waiting for a reply to message ID "), "{err}");
    assert_eq!(started.elapsed(), Duration::from_secs(30), "virtual time: exactly the timeout");
}

#[tokio::test]
async fn a_thousand_concurrent_calls_from_one_client_are_all_answered() {
    let url = memory_url();
    let dir = ManifestDir::new();
    dir.endpoint("calculator", "calculator", "calculator", "1.0", "");
    let host = start_host(&url, "h", dir.path()).await;
    let calc = client(&url, "calculator").await;
    let calls = (0..1000).map(|i| {
        let calc = calc.clone();
        async move { (i, calc.call(&ctx(), "multiply", obj(json!({"a": i, "b": 3}))).await) }
    });
    for (i, result) in futures_join(calls).await {
        assert_eq!(result.unwrap(), json!(i * 3));
    }
    host.stop().await.unwrap();
}

#[tokio::test]
async fn stop_and_wait_let_in_flight_calls_finish() {
    let url = memory_url();
    let dir = ManifestDir::new();
    dir.endpoint("echo", "echo", "echo", "1.3", "");
    let host = start_host(&url, "h", dir.path()).await;
    let echo = client(&url, "echo").await;
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let echo = echo.clone();
            tokio::spawn(async move { echo.call(&ctx(), "sleep", obj(json!({"seconds": 0.5}))).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    host.stop().await.expect("every in-flight call finished within the drain bound");
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap(), json!(0.5));
    }
    let after = echo.prepare(Prepare { timeout: Some(Duration::from_millis(300)), ..Prepare::default() });
    assert!(
        after.call(&ctx(), "echo", obj(json!({"value": 1}))).await.unwrap_err().is_timeout(),
        "a stopped host takes nothing new"
    );
}

#[tokio::test]
async fn a_stuck_endpoint_does_not_delay_another() {
    let url = memory_url();
    let dir = ManifestDir::new();
    dir.endpoint("calculator", "calculator", "calculator", "1.0", "");
    // Same topic as the looper, different namespace.
    dir.endpoint("echo", "echo", "shared", "1.3", "");
    dir.endpoint(
        "looper",
        "looper",
        "shared",
        "1.0",
        "namespace = \"spin\"\n[instance]\nmax_concurrency = 2\n[limits]\ndeadline = \"4s\"",
    );
    let host = start_host(&url, "h", dir.path()).await;
    let spinner =
        client(&url, "shared").await.prepare(Prepare { namespace: Some("spin".into()), ..Prepare::default() });
    let stuck: Vec<_> = (0..20)
        .map(|_| {
            let s = spinner.clone();
            tokio::spawn(async move { s.call(&ctx(), "spin", Map::new()).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Both answer long before the spinning calls' 4 s deadline, or these calls time out.
    let quick = Prepare { timeout: Some(Duration::from_secs(2)), ..Prepare::default() };
    let calc = client(&url, "calculator").await.prepare(quick.clone());
    assert_eq!(calc.call(&ctx(), "add", obj(json!({"a": 1, "b": 1}))).await.unwrap(), json!(2));
    let echo = client(&url, "shared").await.prepare(quick);
    assert_eq!(echo.call(&ctx(), "echo", obj(json!({"value": "free"}))).await.unwrap(), json!("free"));
    for s in stuck.into_iter().take(2) {
        let e = remote(s.await.unwrap().unwrap_err());
        assert_eq!(e.exc_type, "DeadlineExceeded");
    }
    host.stop().await.ok();
}

#[tokio::test]
async fn duplicate_unique_ids_are_dropped_and_expired_calls_are_not_run() {
    let url = memory_url();
    let dir = ManifestDir::new();
    echo_manifest(&dir, "echo", "echo", "h");
    let host = start_host(&url, "h", dir.path()).await;
    let transport = client_transport(&url).await;
    let mut request = Request {
        method: "count".into(),
        args: Map::new(),
        namespace: None,
        version: None,
        reply: None,
        unique_id: Some("0123456789abcdef0123456789abcdef".into()),
        context: Map::new(),
    };
    for _ in 0..2 {
        transport.send(&Target::topic("echo"), Outgoing::new(request.encode())).await.unwrap();
    }
    request.unique_id = Some("fedcba9876543210fedcba9876543210".into());
    transport.send(&Target::topic("echo"), Outgoing::new(request.encode())).await.unwrap();
    let echo = client(&url, "echo").await;
    assert_eq!(echo.call(&ctx(), "count", Map::new()).await.unwrap(), json!(3), "two casts ran, the duplicate did not");

    // One call at a time: a call queued behind a slow one, whose caller gave up, is not run.
    let slow = tokio::spawn({
        let echo = echo.clone();
        async move { echo.call(&ctx(), "sleep", obj(json!({"seconds": 1.0}))).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let impatient = echo.prepare(Prepare { timeout: Some(Duration::from_millis(300)), ..Prepare::default() });
    assert!(impatient.call(&ctx(), "count", Map::new()).await.unwrap_err().is_timeout());
    slow.await.unwrap().unwrap();
    assert_eq!(
        echo.call(&ctx(), "count", Map::new()).await.unwrap(),
        json!(4),
        "the expired call never ran (it would have made this 5)"
    );
    host.stop().await.unwrap();
}

#[tokio::test]
async fn call_monitor_heartbeats_keep_a_slow_call_alive() {
    let url = memory_url();
    let dir = ManifestDir::new();
    dir.endpoint("echo", "echo", "echo", "1.3", "");
    let host = start_host(&url, "h", dir.path()).await;
    let echo = client(&url, "echo").await;
    // The call takes 3 s; the monitor gives up after 2 s of silence. Heartbeats every 1 s
    // (int(2)/2) keep it alive.
    let monitored = echo.prepare(Prepare {
        call_monitor_timeout: Some(Duration::from_secs(2)),
        timeout: Some(Duration::from_secs(20)),
        ..Prepare::default()
    });
    assert_eq!(monitored.call(&ctx(), "sleep", obj(json!({"seconds": 3.0}))).await.unwrap(), json!(3.0));
    // The overall timeout is a hard cap, heartbeats or not.
    let capped = monitored.prepare(Prepare { timeout: Some(Duration::from_millis(2500)), ..Prepare::default() });
    assert!(capped.call(&ctx(), "sleep", obj(json!({"seconds": 3.5}))).await.unwrap_err().is_timeout());
    host.stop().await.ok();
}

#[tokio::test]
async fn the_control_endpoint_pings_lists_and_stops() {
    let url = memory_url();
    let dir = ManifestDir::new();
    dir.endpoint("calculator", "calculator", "calculator", "1.0", "[instance]\nmax_concurrency = 4");
    let mut config = wasmrpc_tests::host_config(&url, "ctl-host", dir.path());
    config.allow_remote_stop = true;
    let host = wasmrpc::Host::start(config).await.unwrap();
    let control = client(&url, "wasmrpc").await.prepare(Prepare {
        namespace: Some("control".into()),
        version: Some(v("2.0")),
        server: Some("ctl-host".into()),
        ..Prepare::default()
    });
    assert_eq!(control.call(&ctx(), "ping", Map::new()).await.unwrap(), json!("pong"));
    let listing = control.call(&ctx(), "list_endpoints", Map::new()).await.unwrap();
    let calc = &listing.as_array().unwrap()[0];
    assert_eq!(calc["name"], json!("calculator"));
    assert_eq!(
        (calc["topic"].clone(), calc["version"].clone(), calc["namespace"].clone()),
        (json!("calculator"), json!("1.0"), Value::Null)
    );
    assert_eq!(calc["methods"], json!(["add", "subtract", "multiply", "divide"]));
    assert_eq!(calc["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(calc["instance_mode"], json!("fresh"));
    assert_eq!(calc["limits"], json!({"memory": 67108864, "deadline": 30.0, "fuel": null}));
    assert_eq!(calc["max_concurrency"], json!(4));
    assert_eq!(control.call(&ctx(), "stop", Map::new()).await.unwrap(), json!(true));
    tokio::time::timeout(Duration::from_secs(5), host.stopped()).await.expect("stop() asks the host to stop");
    host.stop().await.unwrap();
}

#[tokio::test]
async fn the_version_cap_is_enforced_before_sending() {
    let url = memory_url();
    let capped = client(&url, "calc").await.prepare(Prepare {
        version_cap: Some(v("1.2")),
        version: Some(v("1.3")),
        ..Prepare::default()
    });
    assert!(!capped.can_send_version(None));
    assert!(capped.can_send_version(Some(&v("1.1"))));
    let err = capped.cast(&ctx(), "add", Map::new()).await.unwrap_err();
    assert!(matches!(err, RpcError::VersionCap { .. }), "{err:?}");
    assert!(err.to_string().contains("version cap 1.2"), "{err}");
}

/// Records the order the serializer hooks run in.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<String>>);

impl Serializer for Recorder {
    fn serialize_entity(&self, _ctx: &Map<String, Value>, entity: Value) -> Value {
        self.0.lock().unwrap().push(format!("serialize_entity {entity}"));
        entity
    }
    fn deserialize_entity(&self, _ctx: &Map<String, Value>, entity: Value) -> Value {
        self.0.lock().unwrap().push(format!("deserialize_entity {entity}"));
        entity
    }
    fn serialize_context(&self, ctx: Map<String, Value>) -> Map<String, Value> {
        self.0.lock().unwrap().push("serialize_context".into());
        ctx
    }
    fn deserialize_context(&self, mut ctx: Map<String, Value>) -> Map<String, Value> {
        self.0.lock().unwrap().push("deserialize_context".into());
        ctx.insert("deserialized".into(), json!(true));
        ctx
    }
}

/// A native endpoint for testing the RPC layer without Wasm: `double(x)` and the context it saw.
#[derive(Debug)]
struct Doubler {
    target: EndpointTarget,
    seen: Mutex<Option<Map<String, Value>>>,
}

#[async_trait::async_trait]
impl Endpoint for Doubler {
    fn name(&self) -> &str {
        "doubler"
    }
    fn target(&self) -> &EndpointTarget {
        &self.target
    }
    fn has_method(&self, method: &str) -> bool {
        method == "double"
    }
    async fn invoke(
        &self,
        _method: &str,
        args: Map<String, Value>,
        ctx: &CallContext,
        _deadline: Option<std::time::Instant>,
    ) -> Result<Value, wasmrpc::protocol::RemoteFailure> {
        *self.seen.lock().unwrap() = Some(ctx.clone().into_map());
        Ok(json!(args["x"].as_i64().unwrap() * 2))
    }
}

#[tokio::test]
async fn serializer_hooks_run_in_oslos_order_on_both_sides() {
    let url = memory_url();
    let transport = client_transport(&url).await;
    let server_side = Arc::new(Recorder::default());
    let doubler = Arc::new(Doubler {
        target: EndpointTarget { namespace: None, legacy_namespaces: vec![], version: v("1.0") },
        seen: Mutex::default(),
    });
    let dispatcher = Arc::new(Dispatcher::new(vec![doubler.clone()], server_side.clone()));
    let target = wasmrpc::protocol::ListenTarget { exchange: None, topic: "ser".into(), server: "s".into() };
    let server = RpcServer::new(transport.clone(), target, dispatcher, ServerOptions::default());
    server.start().await.unwrap();

    let client_side = Arc::new(Recorder::default());
    let client = RpcClient::new(transport.clone(), Target::topic("ser")).with_serializer(client_side.clone());
    assert_eq!(client.call(&obj(json!({"user": "u"})), "double", obj(json!({"x": 21}))).await.unwrap(), json!(42));
    assert_eq!(*client_side.0.lock().unwrap(), ["serialize_entity 21", "serialize_context", "deserialize_entity 42"]);
    assert_eq!(*server_side.0.lock().unwrap(), ["deserialize_context", "deserialize_entity 21", "serialize_entity 42"]);
    let seen = doubler.seen.lock().unwrap().clone().unwrap();
    assert_eq!(Value::Object(seen), json!({"user": "u", "client_timeout": null, "deserialized": true}));
    server.stop().await;
    server.wait(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_stopped_server_leaves_requests_queued_and_takes_them_when_restarted() {
    let url = memory_url();
    let transport = client_transport(&url).await;
    let doubler = Arc::new(Doubler {
        target: EndpointTarget { namespace: None, legacy_namespaces: vec![], version: v("1.0") },
        seen: Mutex::default(),
    });
    let dispatcher = Arc::new(Dispatcher::new(vec![doubler], Arc::new(wasmrpc::rpc::NoOpSerializer)));
    let target = wasmrpc::protocol::ListenTarget { exchange: None, topic: "restart".into(), server: "s".into() };
    let server = RpcServer::new(transport.clone(), target, dispatcher, ServerOptions::default());
    server.start().await.unwrap();
    let client = RpcClient::new(transport.clone(), Target::topic("restart"));
    // An idle server on memory:// is handed each request as it is published.
    assert_eq!(client.call(&ctx(), "double", obj(json!({"x": 1}))).await.unwrap(), json!(2));

    server.stop().await;
    let waiting = tokio::spawn(async move { client.call(&ctx(), "double", obj(json!({"x": 21}))).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "a stopped server takes nothing, directly or from its queue");
    server.start().await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("answered after the restart");
    assert_eq!(answer.unwrap().unwrap(), json!(42));
    server.stop().await;
    server.wait(Duration::from_secs(5)).await.unwrap();
}

/// Runs futures concurrently and collects their outputs in order.
async fn futures_join<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}
