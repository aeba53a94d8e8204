//! Running the host as a service (issue 20): `wasmrpc serve` as operators run it, with its
//! HTTP listener (`/metrics`, `/healthz`, `/readyz`), JSON logs, SIGHUP and a broker that
//! comes and goes. Every test runs the real binary against the real broker.

use std::io::Write as _;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Map, Value, json};
use wasmrpc::protocol::Target;
use wasmrpc::rpc::{Prepare, RpcClient};
use wasmrpc_tests::broker::{BROKER, rabbit_url, unique};
use wasmrpc_tests::python::{oslo_client, python};
use wasmrpc_tests::{ManifestDir, client_transport, eventually, obj};

use crate::service::{Service, http_get};

/// The exposition parsed by the Prometheus client library (which refuses malformed text).
fn parse_metrics(text: &str) -> Vec<Value> {
    let script = wasmrpc_tests::root().join("tests/python/parse_metrics.py");
    let mut child = std::process::Command::new(python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run parse_metrics.py");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("parse_metrics.py");
    assert!(out.status.success(), "the exposition does not parse:\n{}\n{text}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Vec<Value>>(&out.stdout).expect("JSON samples")
}

/// The value of the sample `name` whose labels include `labels`, or 0 if there is none.
fn sample(samples: &[Value], name: &str, labels: &Value) -> f64 {
    samples
        .iter()
        .filter(|s| s["name"] == name)
        .filter(|s| labels.as_object().is_none_or(|want| want.iter().all(|(k, v)| &s["labels"][k] == v)))
        .map(|s| s["value"].as_f64().unwrap_or(0.0))
        .sum()
}

fn client(transport: Arc<dyn wasmrpc::transport::Transport>, topic: &str) -> RpcClient {
    RpcClient::new(transport, Target::topic(topic))
        .prepare(Prepare { timeout: Some(Duration::from_secs(10)), ..Prepare::default() })
}

/// After N calls, some failing, `/metrics` parses as Prometheus text and its call counters and
/// histogram counts equal N by outcome; a reload adds to the reload counter. The text log has
/// no colour codes (stderr is a pipe).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_calls_by_outcome_and_reloads() {
    let _broker = BROKER.read().await;
    let topic = unique("metrics");
    let dir = ManifestDir::new();
    let manifest = dir.endpoint("calculator", "calculator", &topic, "1.0", "");
    let svc = Service::spawn(dir.path(), &["--server", &unique("ops"), "--manifests", "."]);
    svc.ready(Duration::from_secs(60)).await;

    let calc = client(client_transport(&rabbit_url()).await, &topic);
    let (ok, failing) = (5, 2);
    for i in 0..ok {
        let r = calc.call(&Map::new(), "add", obj(json!({"a": i, "b": 1}))).await.expect("add");
        assert_eq!(r, json!(i + 1));
    }
    for _ in 0..failing {
        calc.call(&Map::new(), "divide", obj(json!({"a": 1, "b": 0}))).await.expect_err("divide by zero");
    }

    let (status, text) = svc.get("/metrics").await.expect("metrics answer");
    assert_eq!(status, 200);
    let samples = parse_metrics(&text);
    let ep = |method: &str, outcome: &str| json!({"endpoint": "calculator", "method": method, "outcome": outcome});
    assert_eq!(sample(&samples, "wasmrpc_calls_total", &ep("add", "ok")), f64::from(ok));
    assert_eq!(sample(&samples, "wasmrpc_calls_total", &ep("divide", "error")), f64::from(failing));
    assert_eq!(sample(&samples, "wasmrpc_calls_total", &ep("divide", "ok")), 0.0);
    assert_eq!(
        sample(
            &samples,
            "wasmrpc_call_errors_total",
            &json!({"endpoint": "calculator", "exception": "DivisionByZero"})
        ),
        f64::from(failing)
    );
    let all = json!({"endpoint": "calculator"});
    assert_eq!(sample(&samples, "wasmrpc_call_duration_seconds_count", &all), f64::from(ok + failing));
    assert_eq!(sample(&samples, "wasmrpc_call_queue_wait_seconds_count", &all), f64::from(ok + failing));
    assert_eq!(sample(&samples, "wasmrpc_endpoint_info", &all), 1.0);
    assert!(sample(&samples, "wasmrpc_guest_fuel_consumed_total", &all) > 0.0, "{text}");
    assert!(sample(&samples, "wasmrpc_guest_memory_peak_bytes", &all) >= 65536.0, "{text}");
    assert_eq!(sample(&samples, "wasmrpc_broker_connected", &Value::Null), 1.0);
    assert_eq!(sample(&samples, "wasmrpc_ready", &Value::Null), 1.0);
    assert_eq!(sample(&samples, "wasmrpc_reloads_total", &all), 0.0);

    // A changed manifest is a reload of the same endpoint.
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("{text}\n# changed\n")).unwrap();
    let reloaded = eventually(Duration::from_secs(30), || async {
        let (_, text) = svc.get("/metrics").await?;
        (sample(&parse_metrics(&text), "wasmrpc_reloads_total", &all) == 1.0).then_some(())
    })
    .await;
    assert!(reloaded.is_some(), "no reload counted");
    // The counters carry on across the reload.
    calc.call(&Map::new(), "add", obj(json!({"a": 1, "b": 1}))).await.expect("add after reload");
    let (_, text) = svc.get("/metrics").await.expect("metrics");
    assert_eq!(sample(&parse_metrics(&text), "wasmrpc_calls_total", &ep("add", "ok")), f64::from(ok + 1));

    let (clean_exit, stderr) = svc.terminate().await;
    assert!(clean_exit, "{stderr}");
    assert!(!stderr.contains('\x1b'), "colour codes in a log that is not a terminal:\n{stderr}");
}

/// `/readyz` is not ready while the broker is away and ready again when it is back; `/healthz`
/// answers throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_the_broker_and_healthz_stays_up() {
    let _broker = BROKER.write().await;
    let _restart = BrokerRestart;
    let topic = unique("ready");
    let dir = ManifestDir::new();
    dir.endpoint("calculator", "calculator", &topic, "1.0", "");
    let svc = Service::spawn(dir.path(), &["--server", &unique("ops"), "--manifests", "."]);
    svc.ready(Duration::from_secs(60)).await;

    rabbitmqctl("stop_app");
    let down =
        eventually(Duration::from_secs(30), || async { svc.get("/readyz").await.filter(|(s, _)| *s == 503) }).await;
    let (_, why) = down.expect("/readyz stayed ready with the broker stopped");
    assert!(why.contains("broker"), "{why}");
    assert_eq!(svc.get("/healthz").await.map(|(s, _)| s), Some(200));
    let (_, text) = svc.get("/metrics").await.expect("metrics while the broker is away");
    assert_eq!(sample(&parse_metrics(&text), "wasmrpc_broker_connected", &Value::Null), 0.0);

    rabbitmqctl("start_app");
    svc.ready(Duration::from_secs(90)).await;
    let calc = client(client_transport(&rabbit_url()).await, &topic);
    let answered = eventually(Duration::from_secs(30), || async {
        calc.call(&Map::new(), "add", obj(json!({"a": 2, "b": 2}))).await.ok()
    })
    .await;
    assert_eq!(answered, Some(json!(4)));
    let (_, text) = svc.get("/metrics").await.expect("metrics");
    assert!(sample(&parse_metrics(&text), "wasmrpc_broker_reconnects_total", &Value::Null) >= 1.0, "{text}");
    let (clean_exit, stderr) = svc.terminate().await;
    assert!(clean_exit, "{stderr}");
}

/// A host started while the broker is down waits for it (not ready, logging each attempt),
/// then serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_started_before_the_broker_waits_for_it_then_serves() {
    let _broker = BROKER.write().await;
    let _restart = BrokerRestart;
    let topic = unique("boot");
    let dir = ManifestDir::new();
    dir.endpoint("calculator", "calculator", &topic, "1.0", "");
    let url = rabbit_url();
    rabbitmqctl("stop_app");
    let svc = Service::spawn_on(&url, dir.path(), &["--server", &unique("ops"), "--manifests", "."]);
    let waiting = eventually(Duration::from_secs(30), || async {
        svc.get("/readyz").await.filter(|(s, body)| *s == 503 && body.contains("waiting for the broker"))
    })
    .await;
    assert!(waiting.is_some(), "{:?}", svc.get("/readyz").await);
    // Still there after a few attempts.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(svc.get("/healthz").await.map(|(s, _)| s), Some(200));

    rabbitmqctl("start_app");
    svc.ready(Duration::from_secs(90)).await;
    let calc = client(client_transport(&rabbit_url()).await, &topic);
    assert_eq!(calc.call(&Map::new(), "add", obj(json!({"a": 1, "b": 2}))).await.expect("add"), json!(3));
    let (clean_exit, stderr) = svc.terminate().await;
    assert!(clean_exit, "{stderr}");
    assert!(stderr.contains("the broker is not reachable yet"), "{stderr}");
}

/// SIGHUP with a changed manifest directory and a changed option applies both, and calls made
/// all the while all succeed. The log file is reopened (logrotate moved it away).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_a_new_manifest_directory_and_option_without_failing_a_call() {
    let _broker = BROKER.read().await;
    let (calc_topic, echo_topic) = (unique("hup_calc"), unique("hup_echo"));
    let root = ManifestDir::new();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let manifest = |name: &str, plugin: &str, topic: &str| {
        format!(
            "name = \"{name}\"\nmodule = \"{}\"\n[target]\ntopic = \"{topic}\"\nversion = \"1.0\"\n",
            wasmrpc_tests::plugin(plugin).display()
        )
    };
    std::fs::write(a.join("calculator.toml"), manifest("calculator", "calculator", &calc_topic)).unwrap();
    std::fs::write(b.join("calculator.toml"), manifest("calculator", "calculator", &calc_topic)).unwrap();
    std::fs::write(b.join("echo.toml"), manifest("echo", "echo", &echo_topic)).unwrap();
    let config = root.path().join("wasmrpc.toml");
    std::fs::write(&config, "manifests = \"a\"\nrpc_ping_enabled = false\n").unwrap();
    let log = root.path().join("wasmrpc.log");
    let svc = Service::spawn(
        root.path(),
        &["--server", &unique("ops"), "--config", "wasmrpc.toml", "--log-file", log.to_str().unwrap()],
    );
    svc.ready(Duration::from_secs(60)).await;

    // Calls all the while.
    let transport = client_transport(&rabbit_url()).await;
    let calc = client(transport.clone(), &calc_topic);
    let (stop, answered, failed) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut callers = Vec::new();
    for _ in 0..4 {
        let (calc, stop, answered, failed) = (calc.clone(), stop.clone(), answered.clone(), failed.clone());
        callers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match calc.call(&Map::new(), "add", obj(json!({"a": 1, "b": 1}))).await {
                    Ok(v) if v == json!(2) => answered.fetch_add(1, Ordering::Relaxed),
                    other => {
                        eprintln!("call failed during SIGHUP: {other:?}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    std::fs::rename(&log, root.path().join("wasmrpc.log.1")).unwrap();
    std::fs::write(&config, "manifests = \"b\"\nrpc_ping_enabled = true\n").unwrap();
    svc.signal("HUP");
    let echo = client(transport.clone(), &echo_topic);
    let echoed = eventually(Duration::from_secs(60), || async {
        echo.call(&Map::new(), "echo", obj(json!({"value": "hi"}))).await.ok()
    })
    .await;
    assert_eq!(echoed, Some(json!("hi")), "the new manifest directory is not served");
    let ping = eventually(Duration::from_secs(30), || async {
        calc.call(&Map::new(), "oslo_rpc_server_ping", Map::new()).await.ok()
    })
    .await;
    assert_eq!(ping, Some(json!("pong")), "rpc_ping_enabled was not applied");
    // Calls go on through the handover and after it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for c in callers {
        c.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "calls failed during the SIGHUP reload");
    assert!(answered.load(Ordering::Relaxed) > 0);
    // The console's reload history goes on across the handover: the first host's load of the
    // calculator (from a/), then the new host's loads of the calculator and echo (from b/).
    let (_, status) = http_get(svc.http, "/v1/status").expect("/v1/status answers");
    let status: Value = serde_json::from_str(&status).unwrap();
    let loads: Vec<&str> = status["history"]
        .as_array()
        .expect("a history")
        .iter()
        .filter(|e| e["outcome"] == json!("loaded"))
        .filter_map(|e| e["endpoint"].as_str())
        .collect();
    assert_eq!(loads.iter().filter(|e| **e == "calculator").count(), 2, "{loads:?}");
    assert!(loads.contains(&"echo"), "{loads:?}");

    let (clean_exit, stderr) = svc.terminate().await;
    assert!(clean_exit, "{stderr}");
    let new_log = std::fs::read_to_string(&log).expect("the log file was reopened after the SIGHUP");
    assert!(new_log.contains("reloaded"), "{new_log}");
}

/// With `--log-format json`, every line is a JSON object, and the lines of a call (the guest's
/// own included) carry the `request_id` and `global_request_id` a Python oslo client sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_request_id_a_python_oslo_client_sent() {
    let _broker = BROKER.read().await;
    let topic = unique("jsonlog");
    let dir = ManifestDir::new();
    dir.endpoint("echo", "echo", &topic, "1.3", "");
    let svc = Service::spawn(dir.path(), &["--server", &unique("ops"), "--manifests", ".", "--log-format", "json"]);
    svc.ready(Duration::from_secs(60)).await;
    let request_id = format!("req-{}", wasmrpc::protocol::new_id());
    let global_id = format!("req-{}", wasmrpc::protocol::new_id());
    let results = oslo_client(&json!({
        "url": rabbit_url(),
        "ops": [{"topic": topic, "method": "print", "args": {"line": "guest says hello"},
                 "ctxt": {"request_id": request_id, "global_request_id": global_id}}],
    }))
    .await;
    assert_eq!(results, vec![json!({"ok": true})]);
    let (clean_exit, stderr) = svc.terminate().await;
    assert!(clean_exit, "{stderr}");
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let guest = lines
        .iter()
        .find(|l| l["fields"]["message"].as_str().is_some_and(|m| m.contains("guest says hello")))
        .unwrap_or_else(|| panic!("the guest's line is missing:\n{stderr}"));
    let req = guest["spans"]
        .as_array()
        .and_then(|spans| spans.iter().find(|s| s["name"] == "req"))
        .unwrap_or_else(|| panic!("no req span: {guest}"));
    assert_eq!(req["request_id"], json!(request_id), "{guest}");
    assert_eq!(req["global_request_id"], json!(global_id), "{guest}");
    // The host's own lines of that call carry them too, and no WASI span buries them.
    assert_eq!(guest["span"]["name"], "req", "{guest}");
}

/// `wasmrpc --version` names the git revision it was built from.
#[test]
fn version_names_the_git_revision() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmrpc-cli")).arg("--version").output().unwrap();
    assert!(out.status.success());
    let version = String::from_utf8_lossy(&out.stdout).into_owned();
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(wasmrpc_tests::root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match head {
        Some(head) => assert!(version.contains(&format!("(git {head})")), "{version} does not name {head}"),
        // A source tarball: the build says so rather than inventing a revision.
        None => assert!(version.contains("(git unknown)"), "{version}"),
    }
}

fn rabbitmqctl(command: &str) {
    let out = std::process::Command::new("rabbitmqctl").arg(command).output().expect("rabbitmqctl");
    assert!(out.status.success(), "rabbitmqctl {command}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Starts the broker's app again if a test stopped it and then failed.
struct BrokerRestart;

impl Drop for BrokerRestart {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rabbitmqctl").arg("start_app").output();
    }
}
