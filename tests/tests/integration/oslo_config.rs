//! oslo.config INI files, `WASMRPC_*` variables and flags configure the `wasmrpc` commands
//! (issue 20): a nova.conf-style file drives `wasmrpc serve` and `wasmrpc call` against the real
//! broker; errors name file and line; layers win in their documented order; older driver names.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use wasmrpc::notification::{
    Delivered, Handled, ListenerOptions, NotificationDriver, NotificationEndpoint, NotificationFilter,
    NotificationListener,
};
use wasmrpc::protocol::{NotificationTarget, Target};
use wasmrpc::rpc::{Prepare, RpcClient};
use wasmrpc::{Host, HostConfig, TransportUrl};
use wasmrpc_tests::broker::{BROKER, rabbit_url, unique};
use wasmrpc_tests::python::OsloServer;
use wasmrpc_tests::{ManifestDir, client_transport, client_transport_with, host_config, memory_url};

/// The `wasmrpc` command, run in `dir` (so no stray `wasmrpc.toml` is read), without the
/// variables a developer's shell may set.
fn wasmrpc(dir: &Path) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_wasmrpc-cli"));
    c.current_dir(dir).env_remove("RUST_LOG").env_remove("WASMRPC_TRANSPORT_URL").kill_on_drop(true);
    for (k, _) in std::env::vars() {
        if k.starts_with("WASMRPC_") && k != "WASMRPC_TEST_RABBIT_URL" {
            c.env_remove(k);
        }
    }
    c
}

async fn run(mut command: tokio::process::Command) -> Output {
    // A guard, not a measurement: each command here ends in seconds, or hangs for a minute
    // (oslo's default rpc_response_timeout) if it ignores its configuration.
    tokio::time::timeout(Duration::from_secs(40), command.output())
        .await
        .expect("the command ended")
        .expect("run wasmrpc")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// `wasmrpc call TOPIC echo {"value": VALUE}` with `args` before the topic.
async fn call_echo(dir: &Path, args: &[&str], topic: &str, value: &str) -> Output {
    let mut c = wasmrpc(dir);
    c.arg("call").args(args).args([topic, "echo", &format!("{{\"value\": \"{value}\"}}")]);
    run(c).await
}

/// The prefetch count of the consumer on queue `queue`, from the broker.
fn prefetch_of(queue: &str) -> Option<String> {
    let out = std::process::Command::new("rabbitmqctl")
        .args(["list_consumers", "-q", "queue_name", "prefetch_count"])
        .output();
    let out = out.expect("rabbitmqctl");
    text(&out.stdout).lines().find_map(|l| {
        let mut cols = l.split('\t');
        (cols.next() == Some(queue)).then(|| cols.next().unwrap_or_default().trim().to_owned())
    })
}

/// The issue's test: the file a Python service reads configures `serve` (broker, exchange,
/// server name, rabbit options, manifests) and `call` (broker, exchange, timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nova_conf_configures_serve_and_call() {
    let _broker = BROKER.read().await;
    let (exchange, topic, server) = (unique("ex"), unique("nova"), unique("compute"));
    let dir = ManifestDir::new();
    dir.endpoint("echo", "echo", &topic, "1.3", "");
    let etc = tempfile::tempdir().unwrap();
    let conf = write(
        etc.path(),
        "nova.conf",
        &format!(
            "# as deployed, with options wasmrpc does not read\n\
             [DEFAULT]\ndebug = True\nstate_path = /var/lib/nova\nhost = {server}\n\
             transport_url = {url}\ncontrol_exchange = {exchange}\nrpc_response_timeout = 20\n\n\
             [api]\nauth_strategy = keystone\n\n[database]\nconnection = mysql+pymysql://nova:pw@db/nova\n\n\
             [oslo_messaging_rabbit]\nrabbit_qos_prefetch_count = 7\nheartbeat_timeout_threshold = 30\n\n\
             [wasmrpc]\nmanifests = {manifests}\nwatch = false\n",
            url = rabbit_url(),
            manifests = dir.path().display()
        ),
    );
    let conf_arg = conf.to_str().unwrap();
    let log_path = etc.path().join("serve.log");
    let mut serve = wasmrpc(etc.path());
    serve
        .args(["serve", "--config-file", conf_arg])
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log_path).unwrap()));
    let mut host = serve.spawn().expect("spawn wasmrpc serve");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    // Until it serves (a call sent before its queue exists is dropped: ask again).
    let mut answered = None;
    for _ in 0..20 {
        let out = call_echo(etc.path(), &["--config-file", conf_arg, "--timeout", "2"], &topic, "up?").await;
        if out.status.success() {
            answered = Some(out);
            break;
        }
    }
    assert!(answered.is_some(), "the host configured by nova.conf never answered:\n{}", log());
    // Now with the file's timeout: the file gives broker and exchange, nothing else does.
    let out = call_echo(etc.path(), &["--config-file", conf_arg], &topic, "from nova.conf").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "\"from nova.conf\"\n");
    // The host's own server name and [oslo_messaging_rabbit] came from the file too.
    assert_eq!(
        prefetch_of(&format!("{topic}.{server}")).as_deref(),
        Some("7"),
        "rabbit_qos_prefetch_count:\n{}",
        log()
    );

    let _ = host.start_kill();
    let _ = host.wait().await;
}

#[tokio::test]
async fn an_unknown_option_is_an_error_naming_file_and_line() {
    let etc = tempfile::tempdir().unwrap();
    for (content, line, section, name) in [
        (
            "[DEFAULT]\nsome_nova_option = 1\n\n[oslo_messaging_rabbit]\nrabbit_quorum_queu = true\n",
            5,
            "oslo_messaging_rabbit",
            "rabbit_quorum_queu",
        ),
        ("[wasmrpc]\n# where\nmanifest = /srv/manifests\n", 3, "wasmrpc", "manifest"),
        (
            "[oslo_messaging_notifications]\ndriver = messagingv2\ntopic = notifications\n",
            3,
            "oslo_messaging_notifications",
            "topic",
        ),
    ] {
        let conf = write(etc.path(), "bad.conf", content);
        let conf_arg = conf.to_str().unwrap();
        for command in [&["serve", "--config-file", conf_arg][..], &["call", "--config-file", conf_arg, "t", "m"]] {
            let mut c = wasmrpc(etc.path());
            c.args(command);
            let out = run(c).await;
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command:?}: {err}");
            assert!(
                err.contains(&format!("{}:{line}: [{section}] {name}: no such option", conf.display())),
                "{command:?}: {err}"
            );
        }
    }
}

/// A host on `exchange`, served in-process, for the layering tests.
async fn host_on(exchange: &str, topic: &str, dir: &ManifestDir) -> Host {
    dir.endpoint("echo", "echo", topic, "1.3", "");
    let mut config = host_config(&rabbit_url(), &unique("h"), dir.path());
    config.control_exchange = exchange.to_owned();
    Host::start(config).await.unwrap_or_else(|e| panic!("{e}"))
}

/// Which exchange the call used says which layer won: only the right one reaches the host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_beats_the_file_and_a_flag_beats_the_environment() {
    let _broker = BROKER.read().await;
    let (right, wrong, topic) = (unique("right"), unique("wrong"), unique("layers"));
    let dir = ManifestDir::new();
    let host = host_on(&right, &topic, &dir).await;
    let etc = tempfile::tempdir().unwrap();
    let conf = write(
        etc.path(),
        "app.conf",
        &format!("[DEFAULT]\ntransport_url = {}\ncontrol_exchange = {wrong}\n", rabbit_url()),
    );
    let file = ["--config-file", conf.to_str().unwrap(), "--timeout", "3"];

    let out = call_echo(etc.path(), &file, &topic, "file").await;
    assert_eq!(out.status.code(), Some(3), "the file's exchange has no server: a timeout. {}", text(&out.stderr));

    let mut c = wasmrpc(etc.path());
    c.env("WASMRPC_CONTROL_EXCHANGE", &right).arg("call").args(file).args([&topic, "echo", r#"{"value": "env"}"#]);
    let out = run(c).await;
    assert!(out.status.success(), "the variable beats the file: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "\"env\"\n");

    let mut c = wasmrpc(etc.path());
    c.env("WASMRPC_CONTROL_EXCHANGE", &wrong).arg("call").args(file).args([
        "--control-exchange",
        &right,
        &topic,
        "echo",
        r#"{"value": "flag"}"#,
    ]);
    let out = run(c).await;
    assert!(out.status.success(), "the flag beats the variable: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "\"flag\"\n");

    let mut c = wasmrpc(etc.path());
    c.env("WASMRPC_EXECUTOR_THREAD_POOL_SIZE", "lots").arg("call").args(file).args([&topic, "echo"]);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("environment variable WASMRPC_EXECUTOR_THREAD_POOL_SIZE: "),
        "{}",
        text(&out.stderr)
    );
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_response_timeout_from_a_file_is_calls_default() {
    let _broker = BROKER.read().await;
    let etc = tempfile::tempdir().unwrap();
    let conf = write(
        etc.path(),
        "app.conf",
        &format!("[DEFAULT]\ntransport_url = {}\nrpc_response_timeout = 1\n", rabbit_url()),
    );
    // Nobody serves this topic: the call ends at the file's 1 s, not oslo's default 60 s (the
    // guard in `run` fails the test at 40 s).
    let out = call_echo(etc.path(), &["--config-file", conf.to_str().unwrap()], &unique("nobody"), "x").await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).to_lowercase().contains("timed out"), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_driver_names_work_and_other_drivers_say_what_to_use() {
    let _broker = BROKER.read().await;
    let etc = tempfile::tempdir().unwrap();
    // fake:// is the in-process transport: a notification to nobody is sent.
    let mut c = wasmrpc(etc.path());
    c.env("RUST_LOG", "info").args(["notify", "--transport", "fake://", "compute.instance.create"]);
    let out = run(c).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr).matches("fake://").count(), 1, "said once: {}", text(&out.stderr));

    // pika:// is RabbitMQ, as rabbit://.
    let (exchange, topic) = (unique("ex"), unique("pika"));
    let dir = ManifestDir::new();
    let host = host_on(&exchange, &topic, &dir).await;
    let pika = rabbit_url().replacen("rabbit://", "pika://", 1);
    let out = call_echo(etc.path(), &["--transport", &pika, "--control-exchange", &exchange], &topic, "via pika").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "\"via pika\"\n");
    assert!(text(&out.stderr).contains("pika://") && text(&out.stderr).contains("rabbit://"), "{}", text(&out.stderr));
    host.stop().await.unwrap();

    for (url, says) in [
        ("amqp://guest:s3cret@127.0.0.1:5672/", "AMQP 1.0"),
        ("kafka://guest:s3cret@127.0.0.1:9092/", "notifications only"),
        ("zmq://127.0.0.1/", "removed"),
    ] {
        let scheme = url.split("://").next().unwrap();
        let out = call_echo(etc.path(), &["--transport", url], "t", "x").await;
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(&format!("the {scheme}:// driver is not supported: ")), "{err}");
        assert!(err.contains(says) && err.contains("use rabbit://") && !err.contains("s3cret"), "{err}");
    }
    // In a file, the error names the line too.
    let conf = write(etc.path(), "old.conf", "[DEFAULT]\n\ntransport_url = kafka://k1:9092/\n");
    let out = call_echo(etc.path(), &["--config-file", conf.to_str().unwrap()], "t", "x").await;
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("{}:3: [DEFAULT] transport_url: ", conf.display())) && err.contains("kafka"),
        "{err}"
    );
}

/// Collects what it is handed.
#[derive(Debug)]
struct Collect(mpsc::UnboundedSender<Delivered>);

#[async_trait::async_trait]
impl NotificationEndpoint for Collect {
    fn name(&self) -> &str {
        "collect"
    }

    fn handles(&self, _priority: &str) -> bool {
        true
    }

    fn filter(&self) -> Option<&NotificationFilter> {
        None
    }

    async fn handle(&self, n: Delivered) -> Result<Handled, Box<dyn std::error::Error + Send + Sync>> {
        let _ = self.0.send(n);
        Ok(Handled::Handled)
    }
}

async fn collect(url: &str, topic: &str) -> (NotificationListener, mpsc::UnboundedReceiver<Delivered>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let options = ListenerOptions {
        targets: vec![NotificationTarget { exchange: None, topic: topic.to_owned() }],
        priorities: vec!["info".into()],
        pool: None,
        allow_requeue: false,
        executor_size: 1,
    };
    let listener =
        NotificationListener::start(&client_transport(url).await, options, Arc::new(Collect(tx))).await.unwrap();
    (listener, rx)
}

/// `[oslo_messaging_notifications] transport_url`: the host's notifications go to that broker,
/// not the RPC one, as oslo's notification transport does.
#[tokio::test]
async fn notifications_go_to_their_own_transport_when_one_is_configured() {
    let (rpc, notify, topic) = (memory_url(), memory_url(), unique("events"));
    let (rpc_listener, mut on_rpc) = collect(&rpc, &topic).await;
    let (notify_listener, mut on_notify) = collect(&notify, &topic).await;
    let dir = ManifestDir::new();
    dir.endpoint("echo", "echo", &unique("t"), "1.3", "");
    let mut config: HostConfig = host_config(&rpc, "h1", dir.path());
    config.notifications.drivers = vec![NotificationDriver::MessagingV2];
    config.notifications.topics = vec![topic.clone()];
    config.notifications.transport_url = Some(TransportUrl::parse(&notify).unwrap());
    let host = Host::start(config).await.unwrap();

    let loaded = tokio::time::timeout(Duration::from_secs(20), on_notify.recv()).await.unwrap().unwrap();
    assert_eq!(loaded.event_type, "wasmrpc.endpoint.loaded");
    assert_eq!(loaded.payload["endpoint"], Value::from("echo"), "{:?}", loaded.payload);
    host.stop().await.unwrap();
    // The RPC broker's listener was there first; the one event went elsewhere.
    assert!(on_rpc.try_recv().is_err(), "nothing on the RPC transport");
    rpc_listener.stop(Duration::from_secs(1)).await;
    notify_listener.stop(Duration::from_secs(1)).await;
}

/// `rpc_response_timeout` is also the default timeout of a guest's outbound call (one that names
/// none), as it is an oslo client's: the Python method takes 20 s, the host's timeout is 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_response_timeout_is_a_guests_outbound_default() {
    let _broker = BROKER.read().await;
    let (exchange, python, gateway) = (unique("ex"), unique("py"), unique("gw"));
    let dir = ManifestDir::new();
    dir.endpoint(
        "gateway",
        "gateway",
        &gateway,
        "1.0",
        &format!(
            "[outbound]\ncall = [\"{python}\"]\n[config]\ncalculator_topic = \"none\"\npython_topic = \"{python}\"\n"
        ),
    );
    let server = OsloServer::start(&rabbit_url(), &exchange, &python, "py1", &[]).await;
    let mut config = host_config(&rabbit_url(), &unique("gw-host"), dir.path());
    config.control_exchange.clone_from(&exchange);
    config.rpc_response_timeout = Duration::from_secs(1);
    let host = Host::start(config).await.unwrap_or_else(|e| panic!("{e}"));
    // Without the host's 1 s the guest would wait out this client's 15 s (and fail it).
    let gw = RpcClient::new(client_transport_with(&rabbit_url(), &exchange).await, Target::topic(&gateway))
        .prepare(Prepare { timeout: Some(Duration::from_secs(15)), ..Prepare::default() });
    let relay = json!({"topic": python, "method": "slow", "args": {"seconds": 20}, "version": "1.3"});
    let out = gw.call(&serde_json::Map::new(), "relay", relay.as_object().unwrap().clone()).await.unwrap();
    assert_eq!(out["error"]["kind"], json!("MessagingTimeout"), "{out}");
    host.stop().await.ok();
    server.stop().await;
}
