//! Notifications against the real oslo.messaging: Python notifiers reaching Wasm listeners,
//! Wasm endpoints notifying Python listeners, filters, pools, requeue, the host's own events.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use wasmrpc::protocol::Target;
use wasmrpc::rpc::{RpcClient, RpcError};
use wasmrpc::{Host, HostConfig};
use wasmrpc_tests::broker::{BROKER, rabbit_url, unique};
use wasmrpc_tests::python::{OsloListener, oslo_notify};
use wasmrpc_tests::{ManifestDir, client_transport_with, eventually, host_config, obj};

use super::support::{CapturedLogs, capture_logs};

/// A listener manifest for the recorder plugin, writing into `out`.
fn recorder(dir: &ManifestDir, name: &str, topic: &str, out: &Path, listener_extra: &str) {
    dir.write(
        name,
        &format!(
            "name = \"{name}\"\nmodule = \"{{plugin:recorder}}\"\n\n[listener]\ntargets = [{{ topic = \"{topic}\" }}]\n{listener_extra}\n\n\
             [sandbox]\nenv = {{ WASMRPC_INSTANCE = \"{name}\" }}\n[[sandbox.dirs]]\nhost = \"{}\"\nguest = \"/out\"\nwritable = true\n",
            out.display()
        ),
    );
}

/// What the recorders wrote, as JSON.
fn records(out: &Path) -> Vec<Value> {
    let mut found: Vec<Value> = std::fs::read_dir(out)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter_map(|p| serde_json::from_slice(&std::fs::read(p).ok()?).ok())
        .collect();
    found.sort_by_key(|r| r["metadata"]["timestamp"].as_str().unwrap_or_default().to_owned());
    found
}

async fn wait_for_records(out: &Path, n: usize) -> Vec<Value> {
    eventually(Duration::from_secs(20), || async { (records(out).len() >= n).then(|| records(out)) })
        .await
        .unwrap_or_else(|| panic!("expected {n} records, got {:?}", records(out)))
}

async fn host(exchange: &str, dir: &ManifestDir, topics: &[&str]) -> Host {
    let mut config: HostConfig = host_config(&rabbit_url(), "h1", dir.path());
    config.control_exchange = exchange.to_owned();
    config.notifications.drivers = vec![wasmrpc::notification::NotificationDriver::MessagingV2];
    config.notifications.topics = topics.iter().map(|t| (*t).to_owned()).collect();
    Host::start(config).await.unwrap_or_else(|e| panic!("{e:#}"))
}

fn is_oslo_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    (s.len() == 19 || (s.len() == 26 && b[19] == b'.' && digits(20..26)))
        && digits(0..4)
        && b[4] == b'-'
        && b[10] == b' '
        && b[13] == b':'
        && digits(17..19)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_notifiers_reach_a_wasm_listener_with_both_drivers() {
    let _broker = BROKER.read().await;
    for driver in ["messagingv2", "messaging"] {
        let exchange = unique("ex");
        let topic = unique("notif");
        let out = tempfile::tempdir().unwrap();
        let dir = ManifestDir::new();
        recorder(&dir, "recorder", &topic, out.path(), "");
        let host = host(&exchange, &dir, &[]).await;
        let ctxt = json!({"user_id": "u1", "project_id": "p1", "request_id": "req-1", "auth_token": "secret"});
        oslo_notify(&json!({
            "url": rabbit_url(), "exchange": exchange, "driver": driver, "topics": [topic],
            "notifications": [
                {"publisher_id": "compute.host1", "event_type": "compute.instance.create", "priority": "info", "payload": {"k": "v", "n": 1.5}, "ctxt": ctxt},
                {"publisher_id": "compute.host1", "event_type": "compute.instance.delete", "priority": "error", "payload": ["x"]},
            ]
        }))
        .await;
        let got = wait_for_records(out.path(), 2).await;
        let create = got.iter().find(|r| r["event_type"] == json!("compute.instance.create")).unwrap();
        assert_eq!(
            (create["priority"].clone(), create["publisher_id"].clone()),
            (json!("info"), json!("compute.host1")),
            "{driver}"
        );
        assert_eq!(create["payload"], json!({"k": "v", "n": 1.5}));
        let message_id = create["metadata"]["message_id"].as_str().unwrap();
        assert!(message_id.len() == 36 && message_id.matches('-').count() == 4, "{message_id}");
        assert!(is_oslo_timestamp(create["metadata"]["timestamp"].as_str().unwrap()), "{create}");
        assert_eq!(create["ctxt"]["request_id"], json!("req-1"));
        assert_eq!(create["ctxt"]["auth_token"], Value::Null, "the notifier sends a redacted context");
        assert_eq!(create["ctxt"]["client_timeout"], Value::Null);
        let delete = got.iter().find(|r| r["event_type"] == json!("compute.instance.delete")).unwrap();
        assert_eq!((delete["priority"].clone(), delete["payload"].clone()), (json!("error"), json!(["x"])));
        host.stop().await.unwrap();
    }
}

#[tokio::test]
async fn a_wasm_endpoint_notifies_a_python_listener_within_its_allow_list() {
    let _broker = BROKER.read().await;
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(capture_logs(&logs));
    let exchange = unique("ex");
    let (rpc_topic, notif_topic) = (unique("echo"), unique("notif"));
    let url = rabbit_url();
    let mut python = OsloListener::start(&url, &exchange, &notif_topic, None).await;
    let dir = ManifestDir::new();
    dir.endpoint("echo", "echo", &rpc_topic, "1.3", "[notifications]\nallow = [\"calc.*\"]");
    let host = host(&exchange, &dir, &[&notif_topic]).await;
    let client = RpcClient::new(client_transport_with(&url, &exchange).await, Target::topic(&rpc_topic));
    let ctx = obj(json!({"user": "u1", "request_id": "req-7", "auth_token": "tok"}));
    let sent = client
        .call(&ctx, "notify", obj(json!({"event_type": "calc.added", "payload": {"a": 2, "b": 3, "sum": 5}})))
        .await;
    assert_eq!(sent.unwrap(), json!(true));

    // The host announces its endpoints too (wasmrpc.endpoint.loaded), before the call's event.
    let mut seen = Vec::new();
    while let Some(n) = python.next(Duration::from_secs(15)).await {
        let done = n["event_type"] == json!("calc.added");
        seen.push(n);
        if done {
            break;
        }
    }
    let loaded =
        seen.iter().find(|n| n["event_type"] == json!("wasmrpc.endpoint.loaded")).unwrap_or_else(|| panic!("{seen:?}"));
    assert_eq!(
        (loaded["publisher_id"].clone(), loaded["payload"]["endpoint"].clone()),
        (json!("wasmrpc.h1"), json!("echo"))
    );
    assert_eq!(loaded["payload"]["topic"], json!(rpc_topic));
    assert_eq!(loaded["payload"]["sha256"].as_str().unwrap().len(), 64);
    let added = seen.last().unwrap();
    assert_eq!(added["event_type"], json!("calc.added"), "{seen:?}");
    assert_eq!((added["priority"].clone(), added["publisher_id"].clone()), (json!("info"), json!("echo.h1")));
    assert_eq!(added["payload"], json!({"a": 2, "b": 3, "sum": 5}));
    assert!(is_oslo_timestamp(added["metadata"]["timestamp"].as_str().unwrap()), "{added}");
    assert_eq!(added["ctxt"]["request_id"], json!("req-7"));
    assert_eq!(added["ctxt"]["auth_token"], Value::Null, "redacted");

    // Outside the allow list: nothing is published, the caller is told, the host logs why.
    let denied =
        client.call(&ctx, "notify", obj(json!({"event_type": "billing.charged", "payload": {}}))).await.unwrap_err();
    let RpcError::Remote(e) = denied else { panic!("{denied:?}") };
    assert_eq!(e.exc_type, "NotifyError");
    assert!(e.value.contains("billing.charged") && e.value.contains("not allowed"), "{}", e.value);
    client.call(&ctx, "notify", obj(json!({"event_type": "calc.marker", "payload": {}}))).await.unwrap();
    let next = python.next(Duration::from_secs(15)).await.unwrap();
    assert_eq!(next["event_type"], json!("calc.marker"), "the denied event never arrived: {next}");
    let warning = logs.text().lines().find(|l| l.contains("billing.charged")).map(str::to_owned).unwrap_or_default();
    assert!(
        warning.contains("WARN") && warning.contains("endpoint=echo") && warning.contains("allow list"),
        "{}",
        logs.text()
    );
    python.stop().await;
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_select_exactly_the_matching_notifications_and_reload_with_the_listener() {
    let _broker = BROKER.read().await;
    let exchange = unique("ex");
    let topic = unique("notif");
    let out = tempfile::tempdir().unwrap();
    let dir = ManifestDir::new();
    let filter = "[listener.filter]\npublisher_id = 'compute\\.'\nevent_type = 'compute\\.instance\\.'\npayload = { state = '^active$' }";
    recorder(&dir, "recorder", &topic, out.path(), filter);
    let mut config = host_config(&rabbit_url(), "h1", dir.path());
    config.control_exchange = exchange.clone();
    config.watch = true;
    let host = Host::start(config).await.unwrap();
    let n = |publisher: &str, event: &str, state: &str, tag: &str| json!({"publisher_id": publisher, "event_type": event, "priority": "info", "payload": {"state": state, "tag": tag}});
    let spec = |ns: Vec<Value>| json!({"url": rabbit_url(), "exchange": exchange, "driver": "messagingv2", "topics": [topic], "notifications": ns});
    oslo_notify(&spec(vec![
        n("compute.host1", "compute.instance.create", "active", "match"),
        n("compute.host1", "compute.instance.create", "inactive", "wrong-state"),
        n("network.host1", "compute.instance.create", "active", "wrong-publisher"),
        n("compute.host1", "image.upload", "active", "wrong-event"),
        n("compute.host1", "x.compute.instance.create", "active", "anchored-at-start"),
    ]))
    .await;
    let got = wait_for_records(out.path(), 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tags: Vec<Value> = records(out.path()).iter().map(|r| r["payload"]["tag"].clone()).collect();
    assert_eq!(tags, [json!("match")], "{got:?}");

    // A changed filter applies to what comes next (hot reload swaps the listener's endpoint).
    recorder(&dir, "recorder", &topic, out.path(), "[listener.filter]\nevent_type = 'image\\.'");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    oslo_notify(&spec(vec![
        n("compute.host1", "compute.instance.create", "active", "old-filter"),
        n("any", "image.upload", "x", "new-filter"),
    ]))
    .await;
    wait_for_records(out.path(), 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tags: Vec<Value> = records(out.path()).iter().map(|r| r["payload"]["tag"].clone()).collect();
    assert_eq!(tags, [json!("match"), json!("new-filter")]);
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_each_get_every_message_and_share_within() {
    let _broker = BROKER.read().await;
    let exchange = unique("ex");
    let topic = unique("notif");
    let (p1, p2) = (unique("pool"), unique("pool"));
    let out = tempfile::tempdir().unwrap();
    let dir = ManifestDir::new();
    for (name, pool) in [("p1-a", &p1), ("p1-b", &p1), ("p2-a", &p2), ("p2-b", &p2)] {
        recorder(&dir, name, &topic, out.path(), &format!("pool = \"{pool}\"\npriorities = [\"info\"]"));
    }
    let host = host(&exchange, &dir, &[]).await;
    let notifications: Vec<Value> = (0..20)
        .map(|i| json!({"publisher_id": "p", "event_type": "e", "priority": "info", "payload": {"i": i}}))
        .collect();
    oslo_notify(&json!({"url": rabbit_url(), "exchange": exchange, "driver": "messagingv2", "topics": [topic], "notifications": notifications})).await;
    let got = wait_for_records(out.path(), 40).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(records(out.path()).len(), 40, "each message once per pool, no more");
    for pool in ["p1", "p2"] {
        let mine: Vec<&Value> = got.iter().filter(|r| r["instance"].as_str().unwrap().starts_with(pool)).collect();
        let mut ids: Vec<i64> = mine.iter().map(|r| r["payload"]["i"].as_i64().unwrap()).collect();
        ids.sort_unstable();
        assert_eq!(ids, (0..20).collect::<Vec<_>>(), "pool {pool} got every message exactly once");
        for member in ["a", "b"] {
            let n = mine.iter().filter(|r| r["instance"] == json!(format!("{pool}-{member}"))).count();
            assert!(n > 0 && n < 20, "the listeners of pool {pool} share: {pool}-{member} got {n}");
        }
    }
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeued_and_trapped_notifications_are_redelivered_when_allowed() {
    let _broker = BROKER.read().await;
    let exchange = unique("ex");
    let (allowed, refused) = (unique("notif"), unique("notif"));
    let (out_a, out_r) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let dir = ManifestDir::new();
    recorder(&dir, "requeues", &allowed, out_a.path(), "allow_requeue = true");
    recorder(&dir, "acks", &refused, out_r.path(), "");
    let host = host(&exchange, &dir, &[]).await;
    let n = |payload: Value| json!({"publisher_id": "p", "event_type": "e", "priority": "info", "payload": payload});
    for topic in [&allowed, &refused] {
        oslo_notify(&json!({"url": rabbit_url(), "exchange": exchange, "driver": "messagingv2", "topics": [topic],
            "notifications": [n(json!({"requeue_once": true, "tag": "requeued"})), n(json!({"trap_once": true, "tag": "trapped"}))]})).await;
    }
    let got = wait_for_records(out_a.path(), 2).await;
    let tags: std::collections::BTreeSet<String> =
        got.iter().map(|r| r["payload"]["tag"].as_str().unwrap().to_owned()).collect();
    assert_eq!(tags.into_iter().collect::<Vec<_>>(), ["requeued", "trapped"], "both came back and were handled");
    // The recorder leaves a marker when it refuses a message the first time.
    let markers = |out: &Path| {
        std::fs::read_dir(out)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x != "json"))
            .count()
    };
    assert_eq!(markers(out_a.path()), 2, "each was first refused (requeue, trap) then redelivered");
    // Without allow_requeue, oslo acknowledges anyway: both were delivered and refused once,
    // and never came back.
    let refused_both = eventually(Duration::from_secs(20), || async { (markers(out_r.path()) == 2).then_some(()) });
    assert!(refused_both.await.is_some(), "the listener without requeue got both messages once");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(records(out_r.path()).is_empty(), "{:?}", records(out_r.path()));
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasmrpc_listen_prints_what_a_python_notifier_sends() {
    let _broker = BROKER.read().await;
    let exchange = unique("ex");
    let topic = unique("notif");
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wasmrpc-cli"))
        .args([
            "listen",
            "--json",
            "--count",
            "1",
            "--topic",
            &topic,
            "--control-exchange",
            &exchange,
            "--transport",
            &rabbit_url(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The listener declares its queue; the notifier also declares it (store and forward), so
    // the order does not matter.
    oslo_notify(&json!({"url": rabbit_url(), "exchange": exchange, "driver": "messaging", "topics": [topic],
        "notifications": [{"publisher_id": "compute.host9", "event_type": "compute.instance.resize", "priority": "warn", "payload": {"flavor": "m1.small"}}]})).await;
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("listen exits after --count")
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (line["priority"].clone(), line["publisher_id"].clone(), line["event_type"].clone()),
        (json!("warn"), json!("compute.host9"), json!("compute.instance.resize"))
    );
    assert_eq!(line["payload"], json!({"flavor": "m1.small"}));
}
