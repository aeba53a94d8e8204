//! Broker faults and hostile traffic (issue 17): replies to queues that do not exist, messages
//! over the size limit, a broker outage, refused declarations, poison notifications. Each test
//! names the item it covers.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::io::AsyncReadExt;
use wasmrpc::protocol::{ReplyTo, Request, Target, new_id};
use wasmrpc::rpc::{Prepare, RpcError};
use wasmrpc::transport::{Body, Outgoing};
use wasmrpc_tests::broker::{BROKER, rabbit_url, unique};
use wasmrpc_tests::{ManifestDir, client_transport_with, obj};

use super::interop::rabbit_client;
use super::support::{CapturedLogs, capture_logs};

/// `wasmrpc serve` in a child process, its stderr collected until it exits.
struct Serve {
    child: tokio::process::Child,
    stderr: tokio::task::JoinHandle<String>,
}

impl Serve {
    fn start(exchange: &str, dir: &ManifestDir, extra: &[&str]) -> Serve {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wasmrpc-cli"))
            .args(["serve", "--no-watch", "--server", "s1", "--control-exchange", exchange, "--manifests"])
            .arg(dir.path())
            .args(extra)
            .env("WASMRPC_TRANSPORT_URL", rabbit_url())
            // The default filter is what this is about.
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn wasmrpc serve");
        let mut pipe = child.stderr.take().expect("piped stderr");
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text).await;
            text
        });
        Serve { child, stderr }
    }

    /// Kills it and returns what it logged.
    async fn kill(mut self) -> String {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        self.stderr.await.expect("stderr reader")
    }
}

/// Calls `echo` until it answers (the host is up), for at most a minute.
async fn until_serving(client: &wasmrpc::RpcClient) {
    let quick = client.prepare(Prepare { timeout: Some(Duration::from_secs(2)), ..Prepare::default() });
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if quick.call(&Map::new(), "echo", obj(json!({"value": "up?"}))).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the host did not start serving");
}

/// A call to `echo` whose reply goes to `reply_q`, as a caller that never declared its reply
/// queue (or whose queue expired) sends it.
fn orphan_call(reply_q: &str, value: &str) -> Outgoing {
    let request = Request {
        method: "echo".into(),
        args: obj(json!({"value": value})),
        namespace: None,
        version: None,
        reply: Some(ReplyTo { msg_id: new_id(), reply_q: reply_q.to_owned(), call_monitor_timeout: Value::Null }),
        unique_id: Some(new_id()),
        context: Map::new(),
    };
    Outgoing { body: Body::request(request), expiration: None, mandatory: false, confirm: true }
}

/// Item 2: 300 calls naming a reply queue that does not exist. Their replies are retried (oslo
/// does, for `kombu_missing_consumer_retry_timeout`), but a retried reply must not keep its
/// request's place in the backlog, and the log says once per reply queue and interval that
/// replies are unroutable, never with their bodies (lapin's own warning prints them whole).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_to_a_missing_reply_queue_neither_stall_the_topic_nor_flood_the_log() {
    let _broker = BROKER.read().await;
    let exchange = unique("ex");
    let topic = unique("noreply");
    let dir = ManifestDir::new();
    dir.endpoint("echo", "echo", &topic, "1.3", "");
    // A small executor (backlog 16): on main, 16 replies being retried hold every place.
    let serve = Serve::start(&exchange, &dir, &["--executor-size", "4"]);
    let client = rabbit_client(&exchange, &topic).await;
    until_serving(&client).await;

    let transport = client_transport_with(&rabbit_url(), &exchange).await;
    let missing = unique("nope");
    let marker = unique("BODY_MARKER");
    for _ in 0..300 {
        transport.send(&Target::topic(&topic), orphan_call(&missing, &marker)).await.unwrap();
    }
    let patient = client.prepare(Prepare { timeout: Some(Duration::from_secs(20)), ..Prepare::default() });
    let answered = patient.call(&Map::new(), "echo", obj(json!({"value": "still served"}))).await;
    // Long enough for several rounds of retries to have been logged (oslo retries every 0.25 s).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let log = serve.kill().await;
    assert_eq!(answered.ok(), Some(json!("still served")), "a normal call is answered in time:\n{log}");
    assert!(!log.contains(&marker), "no reply body in the log:\n{log}");
    let about_missing = log.lines().filter(|l| l.contains(&missing)).count();
    assert!((1..=3).contains(&about_missing), "one line per reply queue and interval, got {about_missing}:\n{log}");
    transport.close().await;
}

fn rabbitmqctl(args: &[&str]) -> String {
    let out = std::process::Command::new("rabbitmqctl").args(args).output().expect("rabbitmqctl");
    assert!(out.status.success(), "rabbitmqctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts the broker's app again however the test ends.
struct StartAppOnDrop;

impl Drop for StartAppOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rabbitmqctl").arg("start_app").output();
    }
}

/// Item 6: during a broker outage every call ends by its timeout (a timeout or a connection
/// error), casts end too, and the host stops within its drain timeout.
#[tokio::test]
async fn during_a_broker_outage_calls_end_by_their_timeout_and_the_host_stops_within_its_drain() {
    let _broker = BROKER.write().await;
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(capture_logs(&logs));
    let exchange = unique("ex");
    let topic = unique("outage");
    let dir = ManifestDir::new();
    dir.endpoint("echo", "echo", &topic, "1.3", "");
    let mut config = wasmrpc_tests::host_config(&rabbit_url(), "s1", dir.path());
    config.control_exchange = exchange.clone();
    config.drain_timeout = Duration::from_secs(2);
    let host = wasmrpc::Host::start(config).await.unwrap();
    let client = rabbit_client(&exchange, &topic)
        .await
        .prepare(Prepare { timeout: Some(Duration::from_secs(3)), ..Prepare::default() });
    assert_eq!(client.call(&Map::new(), "echo", obj(json!({"value": 1}))).await.unwrap(), json!(1));

    let _restart = StartAppOnDrop;
    rabbitmqctl(&["stop_app"]);
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let c = client.clone();
            tokio::spawn(async move { c.call(&Map::new(), "echo", obj(json!({"value": i}))).await })
        })
        .collect();
    for call in calls {
        // Bounded generously: what matters is that it ends, not when.
        let outcome = tokio::time::timeout(Duration::from_secs(30), call)
            .await
            .expect("a call during an outage ends (3 s timeout)")
            .unwrap();
        match outcome {
            Err(RpcError::Timeout { .. } | RpcError::Transport(_)) => {}
            other => panic!("a timeout or a connection error, not {other:?}"),
        }
    }
    let cast =
        tokio::time::timeout(Duration::from_secs(90), client.cast(&Map::new(), "echo", obj(json!({"value": 2}))))
            .await
            .expect("a cast during an outage ends");
    assert!(cast.is_err(), "the cast could not be sent: {cast:?}");
    let stopping = tokio::time::timeout(Duration::from_secs(30), host.stop()).await;
    assert!(stopping.is_ok(), "the host stops during an outage (drain timeout 2 s)");
    drop(_restart);
}

/// `rabbitmqctl list_queues` as JSON rows of `fields`.
fn list(what: &str, fields: &[&str]) -> Vec<Value> {
    let mut args = vec![what, "-q", "--formatter", "json"];
    args.extend_from_slice(fields);
    serde_json::from_str(&rabbitmqctl(&args)).expect("JSON from rabbitmqctl")
}

fn queue_depth(name: &str) -> Option<i64> {
    list("list_queues", &["name", "messages"]).into_iter().find(|r| r["name"] == json!(name))?["messages"].as_i64()
}

/// Item 5: a request over `max_message_size` is dropped before it is decoded (logged,
/// acknowledged so it is not redelivered), the topic keeps serving, and consumers have a
/// bounded prefetch by default.
#[tokio::test]
async fn requests_over_max_message_size_are_dropped_before_decoding_and_prefetch_is_bounded() {
    let _broker = BROKER.read().await;
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(capture_logs(&logs));
    let exchange = unique("ex");
    let topic = unique("big");
    let dir = ManifestDir::new();
    dir.endpoint("echo", "echo", &topic, "1.3", "");
    let mut config = wasmrpc_tests::host_config(&rabbit_url(), "s1", dir.path());
    config.control_exchange = exchange.clone();
    config.rabbit_options = vec![("max_message_size".into(), "65536".into())];
    let host = wasmrpc::Host::start(config).await.unwrap_or_else(|e| panic!("{e:#}"));

    let consumers = list("list_consumers", &["queue_name", "prefetch_count"]);
    let prefetch =
        consumers.iter().find(|c| c["queue_name"] == json!(topic)).expect("the topic's consumer")["prefetch_count"]
            .as_i64();
    assert!(prefetch.is_some_and(|p| p > 0), "a bounded prefetch by default: {consumers:?}");

    let client = rabbit_client(&exchange, &topic)
        .await
        .prepare(Prepare { timeout: Some(Duration::from_secs(3)), ..Prepare::default() });
    let big = "x".repeat(100_000);
    let refused = client.call(&Map::new(), "echo", obj(json!({"value": big}))).await;
    assert!(matches!(refused, Err(RpcError::Timeout { .. })), "dropped, so never answered: {refused:?}");
    assert_eq!(client.call(&Map::new(), "echo", obj(json!({"value": "small"}))).await.unwrap(), json!("small"));
    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains("over max_message_size"))
        .unwrap_or_else(|| panic!("the drop is logged:\n{text}"));
    assert!(line.contains(&topic) && line.contains("65536"), "names the queue and the limit: {line}");
    assert!(!line.contains(&big[..64]), "no body in the log: {line}");
    assert_eq!(queue_depth(&topic), Some(0), "acknowledged, not redelivered");
    host.stop().await.unwrap();
}

/// Sets the broker's `max_message_size` (for channels opened from now on) and restores
/// RabbitMQ's default when dropped.
struct BrokerMaxMessageSize;

impl BrokerMaxMessageSize {
    fn set(bytes: u64) -> BrokerMaxMessageSize {
        rabbitmqctl(&["eval", &format!("application:set_env(rabbit, max_message_size, {bytes}).")]);
        BrokerMaxMessageSize
    }
}

impl Drop for BrokerMaxMessageSize {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rabbitmqctl")
            .args(["eval", "application:set_env(rabbit, max_message_size, 134217728)."])
            .output();
    }
}

/// Item 7: a guest's reply larger than the broker takes becomes an error reply to its caller;
/// the replies of other calls, which share the publishing channel, keep arriving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_over_the_brokers_size_limit_fails_its_own_call_and_nothing_else() {
    let _broker = BROKER.write().await;
    let _limit = BrokerMaxMessageSize::set(1 << 20);
    let exchange = unique("ex");
    let (echo, hog) = (unique("echo"), unique("hog"));
    let dir = ManifestDir::new();
    dir.endpoint("echo", "echo", &echo, "1.3", "");
    dir.endpoint("hog", "hog", &hog, "1.0", "");
    let host = super::interop::rabbit_host(&exchange, "s1", &dir).await;
    let timeout = Prepare { timeout: Some(Duration::from_secs(20)), ..Prepare::default() };
    let echo_client = rabbit_client(&exchange, &echo).await.prepare(timeout.clone());
    let hog_client = rabbit_client(&exchange, &hog).await.prepare(timeout);

    let mut small = Vec::new();
    let mut large = Vec::new();
    for round in 0..4 {
        for i in 0..25 {
            let c = echo_client.clone();
            small.push(tokio::spawn(async move { (i, c.call(&Map::new(), "echo", obj(json!({"value": i}))).await) }));
        }
        let c = hog_client.clone();
        large.push(tokio::spawn(async move { c.call(&Map::new(), "fill", obj(json!({"bytes": 2 << 20}))).await }));
        if round == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for call in small {
        let (i, outcome) = call.await.unwrap();
        assert_eq!(outcome.ok(), Some(json!(i)), "every small reply arrives");
    }
    for call in large {
        match call.await.unwrap() {
            Err(RpcError::Remote(e)) => {
                assert!(e.value.contains("too large") && e.value.contains("bytes"), "a clear error: {e}");
            }
            other => panic!("an error reply, not {other:?}"),
        }
    }
    // The publishing channel still works for later replies.
    assert_eq!(echo_client.call(&Map::new(), "echo", obj(json!({"value": "after"}))).await.unwrap(), json!("after"));
    host.stop().await.unwrap();
}

/// Item 11: one endpoint whose queue the broker refuses (declared before as a quorum queue)
/// fails alone, with a log line naming it; the host starts, serves the others, and a reload
/// still applies later changes.
#[tokio::test]
async fn a_refused_queue_declaration_fails_only_its_endpoint() {
    let _broker = BROKER.read().await;
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(capture_logs(&logs));
    let exchange = unique("ex");
    let (clash, fine, later) = (unique("clash"), unique("fine"), unique("later"));
    // Someone declared the topic's queue as a quorum queue (from another exchange, so only the
    // queue clashes): a classic declaration of it is refused.
    let quorum =
        client_transport_with(&format!("{}?rabbit_quorum_queue=true", rabbit_url()), &unique("quorum_ex")).await;
    let squatter = quorum
        .listen(&wasmrpc::protocol::ListenTarget { exchange: None, topic: clash.clone(), server: "q".into() })
        .await
        .unwrap();
    let dir = ManifestDir::new();
    dir.endpoint("a-clash", "echo", &clash, "1.3", "");
    dir.endpoint("b-fine", "echo", &fine, "1.3", "");
    let host = super::interop::rabbit_host(&exchange, "s1", &dir).await;
    let call = |topic: &str| {
        let topic = topic.to_owned();
        let exchange = exchange.clone();
        async move {
            rabbit_client(&exchange, &topic)
                .await
                .prepare(Prepare { timeout: Some(Duration::from_secs(10)), ..Prepare::default() })
                .call(&Map::new(), "echo", obj(json!({"value": "hi"})))
                .await
        }
    };
    assert_eq!(call(&fine).await.unwrap(), json!("hi"), "the other endpoint serves");
    let text = logs.text();
    assert!(
        text.lines().any(|l| l.contains("a-clash") && l.contains(&clash) && l.contains("ERROR")),
        "a log line names the endpoint:\n{text}"
    );
    let names: Vec<Value> = host.endpoint_listing().iter().map(|e| e["name"].clone()).collect();
    assert!(!names.contains(&json!("a-clash")) && names.contains(&json!("b-fine")), "{names:?}");

    dir.endpoint("c-later", "echo", &later, "1.3", "");
    host.reload(None).await.expect("a reload carries on past the refused endpoint");
    assert_eq!(call(&later).await.unwrap(), json!("hi"), "a later change is applied");
    squatter.close().await;
    host.stop().await.unwrap();
    quorum.close().await;
}

/// Item 11: a topic too long to be an AMQP queue name is refused by the manifest, at its line.
#[test]
fn a_topic_too_long_for_amqp_is_refused_with_its_position() {
    let dir = ManifestDir::new();
    let path = dir.endpoint("long", "echo", &"t".repeat(250), "1.3", "");
    let e = wasmrpc::manifest::load_file(&path).expect_err("too long a topic").to_string();
    assert!(e.contains(&format!("{}:5:", path.display())) && e.contains("`topic`") && e.contains("bytes"), "{e}");
}

/// Item 12: a notification that always traps, on a listener that allows requeue, is
/// redelivered a bounded number of times, then rejected with a log line.
#[tokio::test]
async fn a_poison_notification_is_redelivered_a_bounded_number_of_times_then_rejected() {
    let _broker = BROKER.read().await;
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(capture_logs(&logs));
    let exchange = unique("ex");
    let topic = unique("poison");
    let out = tempfile::tempdir().unwrap();
    let dir = ManifestDir::new();
    dir.write(
        "poisoned",
        &format!(
            "name = \"poisoned\"\nmodule = \"{{plugin:recorder}}\"\n\n[listener]\ntargets = [{{ topic = \"{topic}\" }}]\nallow_requeue = true\n\n\
             [[sandbox.dirs]]\nhost = \"{}\"\nguest = \"/out\"\nwritable = true\n",
            out.path().display()
        ),
    );
    let host = super::interop::rabbit_host(&exchange, "s1", &dir).await;
    let notifier = client_transport_with(&rabbit_url(), &exchange).await;
    let poison = wasmrpc::protocol::Notification::new("p", "e", "INFO", json!({"trap_always": true}), Map::new());
    notifier.send_notification(None, &topic, "info", poison.encode_v2().into()).await.unwrap();
    let queue = format!("{topic}.info");
    let rejected = wasmrpc_tests::eventually(Duration::from_secs(60), || async {
        logs.text().lines().find(|l| l.contains("redelivered") && l.contains("rejected")).map(str::to_owned)
    })
    .await
    .unwrap_or_else(|| panic!("the poison message is given up on:\n{}", logs.text()));
    assert!(rejected.contains(&queue) && rejected.contains("poisoned"), "names the queue and endpoint: {rejected}");
    let attempts = std::fs::read_dir(out.path()).unwrap().count();
    assert!((2..=10).contains(&attempts), "redelivered, a bounded number of times: {attempts}");
    assert_eq!(queue_depth(&queue), Some(0), "rejected, not left on the queue");
    host.stop().await.unwrap();
    notifier.close().await;
}
