//! The `rabbit://` transport against the real broker: oslo's topology, scale-out over two
//! hosts, servers of a topic coming and going, rejection of undecodable messages, surviving a
//! broker restart.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use wasmrpc::rpc::Prepare;
use wasmrpc::transport::Outgoing;
use wasmrpc_tests::broker::{BROKER, rabbit_url, unique};
use wasmrpc_tests::{ManifestDir, client_transport_with, obj};

use super::interop::{rabbit_client, rabbit_host};
use super::support::{CapturedLogs, capture_logs};

/// `rabbitmqctl list_queues` as JSON rows (name, durable, auto_delete, arguments, messages).
fn list_queues() -> Vec<Value> {
    let out = std::process::Command::new("rabbitmqctl")
        .args(["list_queues", "-q", "--formatter", "json", "name", "durable", "auto_delete", "arguments", "messages"])
        .output()
        .expect("rabbitmqctl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON from rabbitmqctl")
}

fn queue(rows: &[Value], pred: impl Fn(&str) -> bool) -> Value {
    rows.iter()
        .find(|r| pred(r["name"].as_str().unwrap()))
        .cloned()
        .unwrap_or_else(|| panic!("no such queue in {rows:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_are_declared_exactly_as_oslo_declares_them() {
    let _broker = BROKER.read().await;
    let exchange = unique("ex");
    let topic = unique("topo");
    let dir = ManifestDir::new();
    dir.endpoint("echo", "echo", &topic, "1.3", "");
    let host = rabbit_host(&exchange, "s1", &dir).await;
    let client = rabbit_client(&exchange, &topic).await;
    client.call(&Map::new(), "echo", obj(json!({"value": 1}))).await.unwrap();
    let rows = list_queues();
    for name in [topic.clone(), format!("{topic}.s1")] {
        let q = queue(&rows, |n| n == name);
        // rabbitmqctl prints empty arguments as [].
        assert_eq!(
            (q["durable"].clone(), q["auto_delete"].clone(), q["arguments"].clone()),
            (json!(false), json!(false), json!([])),
            "{name}: {q}"
        );
    }
    let fanout = queue(&rows, |n| n.starts_with(&format!("{topic}_fanout_")));
    let suffix = fanout["name"].as_str().unwrap().rsplit('_').next().unwrap().to_owned();
    assert!(suffix.len() == 32 && suffix.chars().all(|c| c.is_ascii_hexdigit()), "T_fanout_<uuid hex>: {fanout}");
    assert_eq!((fanout["durable"].clone(), fanout["auto_delete"].clone()), (json!(false), json!(false)));
    assert_eq!(fanout["arguments"], json!([["x-expires", "long", 1800000]]));
    host.stop().await.unwrap();
    // oslo deletes the server's fanout queue when it stops; the topic queues stay.
    let rows = list_queues();
    assert!(!rows.iter().any(|r| r["name"] == fanout["name"]), "the fanout queue is deleted on stop");
    assert!(rows.iter().any(|r| r["name"] == json!(topic)));
}

/// A topic's fanout exchange is auto-delete: it goes with the last queue bound to it. Servers of
/// one topic starting while others stop must not fail when it vanishes between their declaring
/// it and binding their own fanout queue to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_start_while_others_stop_though_their_fanout_exchange_comes_and_goes() {
    let _broker = BROKER.read().await;
    let exchange = unique("ex");
    let topic = unique("churn");
    let transport = client_transport_with(&rabbit_url(), &exchange).await;
    let churners: Vec<_> = (0..8)
        .map(|i| {
            let (transport, topic) = (transport.clone(), topic.clone());
            tokio::spawn(async move {
                let target = wasmrpc::protocol::ListenTarget { exchange: None, topic, server: format!("s{i}") };
                for round in 0..25 {
                    let listener = transport.listen(&target).await.map_err(|e| format!("s{i}, round {round}: {e}"))?;
                    listener.close().await;
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for churner in churners {
        churner.await.unwrap().unwrap();
    }
    transport.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_share_a_topic_answer_directed_calls_and_both_get_fanout() {
    let _broker = BROKER.read().await;
    let exchange = unique("ex");
    let topic = unique("scale");
    let (da, db) = (ManifestDir::new(), ManifestDir::new());
    for (dir, name) in [(&da, "a"), (&db, "b")] {
        dir.endpoint(
            "echo",
            "echo",
            &topic,
            "1.3",
            &format!(
                "[instance]\nmode = \"warm\"\nmax_concurrency = 1\n[sandbox]\nenv = {{ WASMRPC_INSTANCE = \"{name}\" }}"
            ),
        );
    }
    let a = rabbit_host(&exchange, "a", &da).await;
    let b = rabbit_host(&exchange, "b", &db).await;
    let client = rabbit_client(&exchange, &topic).await;
    let ctx = Map::new();
    let calls = (0..40).map(|_| {
        let c = client.clone();
        tokio::spawn(async move { c.call(&Map::new(), "whoami", Map::new()).await.unwrap() })
    });
    let mut answers = Vec::new();
    for c in calls.collect::<Vec<_>>() {
        answers.push(c.await.unwrap());
    }
    let on_a = answers.iter().filter(|v| **v == json!("a")).count();
    assert!(on_a > 0 && on_a < 40, "calls spread over both hosts: {on_a} of 40 on a");
    for server in ["a", "b"] {
        let to = client.prepare(Prepare { server: Some(server.into()), ..Prepare::default() });
        assert_eq!(to.call(&ctx, "whoami", Map::new()).await.unwrap(), json!(server));
    }
    // Counts per warm instance: fanout reaches both.
    let before: Vec<Value> = futures(["a", "b"].map(|s| {
        let to = client.prepare(Prepare { server: Some(s.into()), ..Prepare::default() });
        async move { to.call(&Map::new(), "count", Map::new()).await.unwrap() }
    }))
    .await;
    client.prepare(Prepare { fanout: Some(true), ..Prepare::default() }).cast(&ctx, "count", Map::new()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (i, server) in ["a", "b"].into_iter().enumerate() {
        let to = client.prepare(Prepare { server: Some(server.into()), ..Prepare::default() });
        let after = to.call(&ctx, "count", Map::new()).await.unwrap();
        assert_eq!(after.as_i64().unwrap(), before[i].as_i64().unwrap() + 2, "server {server} got the fanout cast");
    }
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

async fn futures<F: std::future::Future<Output = Value> + Send + 'static>(fs: [F; 2]) -> Vec<Value> {
    let handles: Vec<_> = fs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn undecodable_messages_are_rejected_with_the_queue_named() {
    let _broker = BROKER.read().await;
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(capture_logs(&logs));
    let exchange = unique("ex");
    let topic = unique("garbage");
    let dir = ManifestDir::new();
    dir.endpoint("echo", "echo", &topic, "1.3", "");
    let host = rabbit_host(&exchange, "s1", &dir).await;
    let transport = client_transport_with(&rabbit_url(), &exchange).await;
    let target = wasmrpc::protocol::Target::topic(&topic);
    for body in [
        &b"not json at all"[..],
        br#"{"oslo.version": "3.0", "oslo.message": "{}"}"#,
        br#"{"oslo.version": "2.0", "oslo.message": "{\"args\": {}}"}"#,
    ] {
        transport.send(&target, Outgoing::new(body.to_vec())).await.unwrap();
    }
    let client = rabbit_client(&exchange, &topic).await;
    assert_eq!(
        client.call(&Map::new(), "echo", obj(json!({"value": "still here"}))).await.unwrap(),
        json!("still here")
    );
    let text = logs.text();
    let rejected =
        text.lines().filter(|l| l.contains("rejecting an undecodable message") && l.contains(&topic)).count();
    assert_eq!(rejected, 3, "{text}");
    assert!(text.contains("unsupported envelope version \"3.0\"") && text.contains("no `method` key"), "{text}");
    let depth = list_queues().into_iter().find(|r| r["name"] == json!(topic)).unwrap()["messages"].clone();
    assert_eq!(depth, json!(0), "rejected, not requeued");
    host.stop().await.unwrap();
}

fn rabbitmqctl(args: &[&str]) {
    let out = std::process::Command::new("rabbitmqctl").args(args).output().expect("rabbitmqctl");
    assert!(out.status.success(), "rabbitmqctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A host serving echo on `topic`, and a client transport, both reconnecting quickly (oslo's
/// option names, as an operator would set them for tests). The directory must outlive the host.
async fn quickly_reconnecting_echo(
    exchange: &str,
    topic: &str,
) -> (wasmrpc::Host, std::sync::Arc<dyn wasmrpc::transport::Transport>, ManifestDir) {
    let dir = ManifestDir::new();
    dir.endpoint("echo", "echo", topic, "1.3", "");
    let mut config = wasmrpc_tests::host_config(&rabbit_url(), "s1", dir.path());
    config.control_exchange = exchange.to_owned();
    config.rabbit_options = vec![
        ("rabbit_retry_interval".into(), "0.5".into()),
        ("rabbit_retry_backoff".into(), "0.5".into()),
        ("rabbit_interval_max".into(), "2".into()),
        ("kombu_reconnect_delay".into(), "0.2".into()),
    ];
    let host = wasmrpc::Host::start(config).await.unwrap();
    let url = wasmrpc::TransportUrl::parse(&format!(
        "{}?rabbit_retry_interval=0.5&rabbit_interval_max=2&kombu_reconnect_delay=0.2",
        rabbit_url()
    ))
    .unwrap();
    let options = wasmrpc::transport::TransportOptions { control_exchange: exchange.to_owned(), ..Default::default() };
    let transport = wasmrpc::transport::connect(&url, options).await.unwrap();
    (host, transport, dir)
}

#[tokio::test]
async fn a_broker_restart_leaves_the_host_serving_and_in_flight_calls_time_out() {
    let _broker = BROKER.write().await;
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(capture_logs(&logs));
    let exchange = unique("ex");
    let topic = unique("restart");
    let (host, transport, _dir) = quickly_reconnecting_echo(&exchange, &topic).await;
    let client = wasmrpc::RpcClient::new(transport, wasmrpc::protocol::Target::topic(&topic))
        .prepare(Prepare { timeout: Some(Duration::from_secs(3)), ..Prepare::default() });
    assert_eq!(client.call(&Map::new(), "echo", obj(json!({"value": 1}))).await.unwrap(), json!(1));

    // Calls in flight while the broker goes away: each must end (timeout), none may hang.
    let in_flight: Vec<_> = (0..5)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.call(&Map::new(), "sleep", obj(json!({"seconds": 1.0}))).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    rabbitmqctl(&["stop_app"]);
    for call in in_flight {
        let outcome =
            tokio::time::timeout(Duration::from_secs(10), call).await.expect("an in-flight call never hangs").unwrap();
        assert!(outcome.is_err(), "the reply was lost with the broker: {outcome:?}");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    rabbitmqctl(&["start_app"]);
    let back = Instant::now();
    let mut answered = None;
    while back.elapsed() < Duration::from_secs(60) {
        if let Ok(v) = client.call(&Map::new(), "echo", obj(json!({"value": "again"}))).await {
            answered = Some((v, back.elapsed()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (v, after) = answered.expect("the host serves again after the broker returns");
    assert_eq!(v, json!("again"));
    eprintln!("answered again {after:?} after start_app");
    let text = logs.text();
    assert!(text.contains("lost the broker connection"), "the host logs the loss:\n{text}");
    assert!(text.contains("consuming again after reconnecting"), "{text}");
    host.stop().await.ok();
}

/// Issue 17: the client's reply consumer acknowledged each reply before handing it on, in its
/// delivery loop. An acknowledgement sent as the broker went away could wait forever, so that
/// loop never saw the connection drop, never declared the reply queue again, and every later
/// reply was unroutable. 64 calls in flight through a broker restart: calls are answered again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_under_load_is_answered_again_after_a_broker_restart() {
    let _broker = BROKER.write().await;
    let exchange = unique("ex");
    let topic = unique("loaded");
    let (host, transport, _dir) = quickly_reconnecting_echo(&exchange, &topic).await;
    let client = wasmrpc::RpcClient::new(transport, wasmrpc::protocol::Target::topic(&topic))
        .prepare(Prepare { timeout: Some(Duration::from_secs(5)), ..Prepare::default() });

    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = tokio::task::JoinSet::new();
    for i in 0..64 {
        let (client, answered, stop) = (client.clone(), answered.clone(), stop.clone());
        load.spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let out = client.call(&Map::new(), "echo", obj(json!({"value": i}))).await;
                match out {
                    Ok(v) => {
                        assert_eq!(v, json!(i), "a reply reached the wrong call");
                        answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
    }
    let count = || answered.load(std::sync::atomic::Ordering::SeqCst);
    let under_load =
        wasmrpc_tests::eventually(Duration::from_secs(30), || async { (count() > 1000).then_some(()) }).await;
    assert!(under_load.is_some(), "the load never got going: {} answered", count());
    rabbitmqctl(&["stop_app"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    rabbitmqctl(&["start_app"]);
    let back = Instant::now();
    let before = count();
    // Calls are answered again, and a new call too (not only ones that had been in flight).
    let again = wasmrpc_tests::eventually(Duration::from_secs(90), || async {
        let fresh = client.call(&Map::new(), "echo", obj(json!({"value": "again"}))).await.ok()?;
        (fresh == json!("again") && count() > before + 100).then_some(())
    })
    .await;
    let after = back.elapsed();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    while load.join_next().await.transpose().expect("no load task panicked").is_some() {}
    assert!(again.is_some(), "no reply reached the client in 90 s after start_app ({} answered before)", before);
    eprintln!("answered again {after:?} after start_app");
    host.stop().await.ok();
}
