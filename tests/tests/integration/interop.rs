//! wasmrpc against the real oslo.messaging 18.x from PyPI, over the real RabbitMQ, both ways.

use std::time::Duration;

use serde_json::{Map, Value, json};
use wasmrpc::protocol::Target;
use wasmrpc::rpc::{Prepare, RpcClient, RpcError};
use wasmrpc::{Host, HostConfig};
use wasmrpc_tests::broker::{BROKER, rabbit_url, unique};
use wasmrpc_tests::python::{OsloServer, oslo_client};
use wasmrpc_tests::{ManifestDir, client_transport_with, host_config, obj};

/// A host on the broker, in `exchange`.
pub async fn rabbit_host(exchange: &str, server: &str, dir: &ManifestDir) -> Host {
    let mut config: HostConfig = host_config(&rabbit_url(), server, dir.path());
    config.control_exchange = exchange.to_owned();
    Host::start(config).await.unwrap_or_else(|e| panic!("host {server}: {e:#}"))
}

/// A wasmrpc client on the broker, in `exchange`.
pub async fn rabbit_client(exchange: &str, topic: &str) -> RpcClient {
    RpcClient::new(client_transport_with(&rabbit_url(), exchange).await, Target::topic(topic))
}

fn ok(v: &Value) -> &Value {
    v.get("ok").unwrap_or_else(|| panic!("expected a result, got {v}"))
}

fn err<'a>(v: &'a Value, class: &str) -> &'a Value {
    let e = v.get("error").unwrap_or_else(|| panic!("expected an error, got {v}"));
    assert_eq!(e["type"], json!(class), "{v}");
    e
}

fn echo_manifest(dir: &ManifestDir, topic: &str, instance: &str) {
    dir.endpoint(
        "echo",
        "echo",
        topic,
        "1.3",
        &format!(
            "[instance]\nmode = \"warm\"\nmax_concurrency = 1\n[sandbox]\nenv = {{ WASMRPC_INSTANCE = \"{instance}\" }}"
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_client_calls_wasmrpc_hosts() {
    let _broker = BROKER.read().await;
    let exchange = unique("ex");
    let (calc, echo, multi) = (unique("calc"), unique("echo"), unique("multi"));
    let (d1, d2) = (ManifestDir::new(), ManifestDir::new());
    d1.endpoint("calculator", "calculator", &calc, "1.0", "");
    echo_manifest(&d1, &echo, "h1");
    d1.endpoint("m-echo", "echo", &multi, "1.3", "");
    d1.endpoint("m-test", "test", &multi, "2.0", "namespace = \"ns2\"");
    echo_manifest(&d2, &echo, "h2");
    let h1 = rabbit_host(&exchange, "h1", &d1).await;
    let h2 = rabbit_host(&exchange, "h2", &d2).await;

    let op = |topic: &str, method: &str, args: Value| json!({"topic": topic, "method": method, "args": args});
    let with = |mut o: Value, prepare: Value| {
        o["prepare"] = prepare;
        o
    };
    let ops = vec![
        op(&calc, "add", json!({"a": 2, "b": 3})),                                  // 0
        op(&calc, "divide", json!({"a": 1, "b": 0})),                               // 1
        op(&calc, "nosuch", json!({})),                                             // 2
        with(op(&calc, "add", json!({"a": 1, "b": 2})), json!({"version": "2.0"})), // 3
        with(op(&multi, "test", json!({"arg": [1, "ü"]})), json!({"namespace": "ns2", "version": "2.0"})), // 4
        with(op(&multi, "echo", json!({"value": 7})), json!({"version": "1.1"})),   // 5
        with(op(&multi, "echo", json!({"value": 7})), json!({"version": "1.4"})),   // 6
        with(op(&echo, "whoami", json!({})), json!({"server": "h1"})),              // 7
        with(op(&echo, "whoami", json!({})), json!({"server": "h2"})),              // 8
        {
            let mut o = op(&echo, "context", json!({}));
            o["ctxt"] = json!({"user": "u1", "request_id": "req-1", "roles": ["admin"]});
            o
        }, // 9
        {
            let mut o = with(op(&echo, "count", json!({})), json!({"fanout": true}));
            o["cast"] = json!(true);
            o
        }, // 10
        json!({"sleep": 0.5}),                                                      // 11
        with(op(&echo, "count", json!({})), json!({"server": "h1"})),               // 12
        with(op(&echo, "count", json!({})), json!({"server": "h2"})),               // 13
        {
            let mut o = with(op(&echo, "count", json!({})), json!({"server": "h1"}));
            o["cast"] = json!(true);
            o
        }, // 14
        json!({"sleep": 0.5}),                                                      // 15
        with(op(&echo, "count", json!({})), json!({"server": "h1"})),               // 16
        with(op(&echo, "sleep", json!({"seconds": 3.0})), json!({"call_monitor_timeout": 2, "timeout": 20})), // 17
        with(op(&echo, "_secret", json!({})), json!({})),                           // 18
        {
            let mut o = op(&unique("nobody"), "anything", json!({}));
            o["timeout"] = json!(2);
            o
        }, // 19
        op(&calc, "fail_missing_arg", json!({})),                                   // 20
        op(&calc, "add", json!({"a": 2})),                                          // 21
    ];
    let r = oslo_client(&json!({"url": rabbit_url(), "exchange": exchange, "ops": ops})).await;
    assert_eq!(ok(&r[0]), &json!(5));
    let e = err(&r[1], "RemoteError");
    assert_eq!((e["exc_type"].clone(), e["value"].clone()), (json!("DivisionByZero"), json!("division by zero")));
    let e = err(&r[2], "RemoteError");
    assert_eq!(
        (e["exc_type"].clone(), e["value"].clone()),
        (json!("NoSuchMethod"), json!("Endpoint does not support RPC method nosuch"))
    );
    let e = err(&r[3], "RemoteError");
    assert_eq!(e["exc_type"], json!("UnsupportedVersion"));
    assert_eq!(e["value"], json!("Endpoint does not support RPC version 2.0. Attempted method: add"));
    assert_eq!(ok(&r[4]), &json!([1, "ü"]));
    assert_eq!(ok(&r[5]), &json!(7));
    assert_eq!(err(&r[6], "RemoteError")["exc_type"], json!("UnsupportedVersion"));
    assert_eq!((ok(&r[7]), ok(&r[8])), (&json!("h1"), &json!("h2")), "topic.server routing");
    assert_eq!(ok(&r[9]), &json!({"user": "u1", "request_id": "req-1", "roles": ["admin"], "client_timeout": null}));
    assert_eq!((ok(&r[12]), ok(&r[13])), (&json!(2), &json!(2)), "the fanout cast reached both hosts");
    assert_eq!(ok(&r[16]), &json!(4), "the directed cast ran on h1");
    assert_eq!(ok(&r[17]), &json!(3.0), "heartbeats kept a 3 s call alive under a 2 s call monitor");
    assert_eq!(err(&r[18], "RemoteError")["exc_type"], json!("NoSuchMethod"));
    err(&r[19], "MessagingTimeout");
    assert_eq!(err(&r[20], "RemoteError")["exc_type"], json!("NoSuchMethod"));
    // A builtin exception crosses as itself, as from a Python server.
    let e = err(&r[21], "TypeError");
    assert!(e["message"].as_str().unwrap().starts_with("add() missing 1 required positional argument: 'b'"), "{e}");
    h1.stop().await.unwrap();
    h2.stop().await.unwrap();
}

fn remote(e: RpcError) -> wasmrpc::rpc::RemoteError {
    match e {
        RpcError::Remote(r) => r,
        other => panic!("expected a remote error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wasmrpc_client_calls_python_servers() {
    let _broker = BROKER.read().await;
    let exchange = unique("ex");
    let topic = unique("py");
    let url = rabbit_url();
    let py1 = OsloServer::start(&url, &exchange, &topic, "py1", &[]).await;
    let py2 = OsloServer::start(&url, &exchange, &topic, "py2", &[]).await;
    let client = rabbit_client(&exchange, &topic).await;
    let ctx = Map::new();
    let to = |server: &str| client.prepare(Prepare { server: Some(server.into()), ..Prepare::default() });

    assert_eq!(client.call(&ctx, "add", obj(json!({"a": 2, "b": 3}))).await.unwrap(), json!(5));
    let value = json!({"nested": [1.5, "é☃", null, {"k": true}], "big": 12345678901234_i64});
    assert_eq!(client.call(&ctx, "echo", obj(json!({"value": value}))).await.unwrap(), value);
    let sent = obj(json!({"user": "u1", "request_id": "req-1"}));
    assert_eq!(
        client.call(&sent, "ctx", Map::new()).await.unwrap(),
        json!({"user": "u1", "request_id": "req-1", "client_timeout": null})
    );

    let e = remote(client.call(&ctx, "boom", obj(json!({"message": "kaput"}))).await.unwrap_err());
    assert_eq!((e.exc_type.as_str(), e.module.as_str(), e.value.as_str()), ("Boom", "__main__", "kaput"));
    assert!(e.traceback.first().is_some_and(|l| l.starts_with("Traceback")), "{:?}", e.traceback);
    assert_eq!(e.traceback.last().map(String::as_str), Some("Boom: kaput\n"));
    let e = remote(client.call(&ctx, "value_error", Map::new()).await.unwrap_err());
    assert_eq!(
        (e.exc_type.as_str(), e.module.as_str(), e.value.as_str()),
        ("ValueError", "builtins", "('bad value', 42)")
    );

    let e = remote(client.call(&ctx, "nosuch", Map::new()).await.unwrap_err());
    assert_eq!(
        (e.exc_type.as_str(), e.value.as_str()),
        ("NoSuchMethod", "Endpoint does not support RPC method nosuch")
    );
    let e = remote(client.call(&ctx, "_private", Map::new()).await.unwrap_err());
    assert_eq!(e.exc_type, "NoSuchMethod");
    let v2 = client.prepare(Prepare { version: Some("2.0".parse().unwrap()), ..Prepare::default() });
    let e = remote(v2.call(&ctx, "add", obj(json!({"a": 1, "b": 1}))).await.unwrap_err());
    assert_eq!(e.value, "Endpoint does not support RPC version 2.0. Attempted method: add");
    let ns2 = client.prepare(Prepare {
        namespace: Some("ns2".into()),
        version: Some("2.1".parse().unwrap()),
        ..Prepare::default()
    });
    assert_eq!(ns2.call(&ctx, "test", obj(json!({"arg": "x"}))).await.unwrap(), json!("x"));
    let v14 = client.prepare(Prepare { version: Some("1.4".parse().unwrap()), ..Prepare::default() });
    assert_eq!(
        remote(v14.call(&ctx, "add", obj(json!({"a": 1, "b": 1}))).await.unwrap_err()).exc_type,
        "UnsupportedVersion"
    );

    assert_eq!(to("py1").call(&ctx, "whoami", Map::new()).await.unwrap(), json!("py1"));
    assert_eq!(to("py2").call(&ctx, "whoami", Map::new()).await.unwrap(), json!("py2"));
    let fanout = client.prepare(Prepare { fanout: Some(true), ..Prepare::default() });
    fanout.cast(&ctx, "record", obj(json!({"tag": "everyone"}))).await.unwrap();
    to("py1").cast(&ctx, "record", obj(json!({"tag": "only-py1"}))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(to("py1").call(&ctx, "recorded", Map::new()).await.unwrap(), json!(["everyone", "only-py1"]));
    assert_eq!(to("py2").call(&ctx, "recorded", Map::new()).await.unwrap(), json!(["everyone"]));

    let monitored = client.prepare(Prepare {
        call_monitor_timeout: Some(Duration::from_secs(2)),
        timeout: Some(Duration::from_secs(20)),
        ..Prepare::default()
    });
    assert_eq!(monitored.call(&ctx, "slow", obj(json!({"seconds": 3.0}))).await.unwrap(), json!(3.0));
    // Python servers keep sending heartbeats after a NoSuchMethod under a call monitor; the
    // client must ignore them and keep working.
    assert_eq!(remote(monitored.call(&ctx, "nosuch", Map::new()).await.unwrap_err()).exc_type, "NoSuchMethod");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(client.call(&ctx, "add", obj(json!({"a": 1, "b": 1}))).await.unwrap(), json!(2));

    let nobody = rabbit_client(&exchange, &unique("nobody"))
        .await
        .prepare(Prepare { timeout: Some(Duration::from_secs(2)), ..Prepare::default() });
    assert!(nobody.call(&ctx, "x", Map::new()).await.unwrap_err().is_timeout());
    py1.stop().await;
    py2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_server_and_a_wasmrpc_host_share_a_topic() {
    let _broker = BROKER.read().await;
    let url = rabbit_url();
    for options in [&[][..], &["rabbit_quorum_queue=true"]] {
        let exchange = unique("ex");
        let topic = unique("shared");
        let py = OsloServer::start(&url, &exchange, &topic, "python", options).await;
        let dir = ManifestDir::new();
        echo_manifest(&dir, &topic, "wasm");
        let mut config = host_config(&url, "wasm-host", dir.path());
        config.control_exchange = exchange.clone();
        // Queue names are global to the vhost: the quorum run needs its own control topic, or
        // it would meet the non-durable `wasmrpc` queue other tests declared (406).
        config.control_topic = unique("wasmrpc");
        config.rabbit_options =
            options.iter().map(|o| o.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).unwrap()).collect();
        // Same declarations as the Python server, or the broker would refuse them (406).
        let host = Host::start(config).await.unwrap_or_else(|e| panic!("{options:?}: {e:#}"));
        // Every service of a deployment runs with the same options; the client declares the
        // exchange too.
        let query = if options.is_empty() { String::new() } else { format!("?{}", options.join("&")) };
        let transport = client_transport_with(&format!("{url}{query}"), &exchange).await;
        let client = RpcClient::new(transport, Target::topic(&topic));
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..40 {
            seen.insert(client.call(&Map::new(), "whoami", Map::new()).await.unwrap().as_str().unwrap().to_owned());
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["python", "wasm"], "{options:?}");
        host.stop().await.unwrap();
        py.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasmrpc_serve_with_the_default_url_answers_a_python_client() {
    let _broker = BROKER.read().await;
    let url = rabbit_url();
    let server = unique("serve");
    let mut serve = tokio::process::Command::new(env!("CARGO_BIN_EXE_wasmrpc-cli"));
    serve
        .args(["serve", "--allow-remote-stop", "--server", &server, "--manifests"])
        .arg(wasmrpc_tests::root().join("manifests"));
    // The default URL is what this test is about; a developer pointing the suite at another
    // broker (WASMRPC_TEST_RABBIT_URL) gets the same scenario on that broker instead.
    if url == wasmrpc::host::DEFAULT_TRANSPORT_URL {
        serve.env_remove("WASMRPC_TRANSPORT_URL");
    } else {
        serve.env("WASMRPC_TRANSPORT_URL", &url);
    }
    let mut child = serve
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Ready when the control endpoint of this server answers.
    let control = rabbit_client("openstack", "wasmrpc").await.prepare(Prepare {
        server: Some(server.clone()),
        namespace: Some("control".into()),
        version: Some("2.0".parse().unwrap()),
        timeout: Some(Duration::from_secs(2)),
        ..Prepare::default()
    });
    let mut ready = false;
    for _ in 0..30 {
        if control.call(&Map::new(), "ping", Map::new()).await.is_ok() {
            ready = true;
            break;
        }
    }
    assert!(ready, "wasmrpc serve did not come up");
    let op = json!({"topic": "calculator", "method": "add", "args": {"a": 2, "b": 3}, "prepare": {"server": server}});
    let r = oslo_client(&json!({"url": url, "ops": [op]})).await;
    assert_eq!(ok(&r[0]), &json!(5));
    assert_eq!(control.call(&Map::new(), "stop", Map::new()).await.unwrap(), json!(true));
    let status =
        tokio::time::timeout(Duration::from_secs(30), child.wait()).await.expect("serve exits after stop").unwrap();
    assert!(status.success(), "{status}");
}
