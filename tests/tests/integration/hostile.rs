//! Issue 17: what a hostile caller, a hostile manifest or a hostile plugin gets. Each test is
//! named in RELIABILITY.md's table of hostile inputs.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::io::AsyncReadExt;
use wasmrpc::manifest::{self, ManifestError};
use wasmrpc::protocol::Target;
use wasmrpc::rpc::{Prepare, RpcClient, RpcError};
use wasmrpc::{Host, HostConfig};
use wasmrpc_tests::broker::{BROKER, rabbit_url, unique};
use wasmrpc_tests::python::oslo_client;
use wasmrpc_tests::{ManifestDir, client_transport, client_transport_with, host_config, memory_url};

/// The control endpoint of server `server`, over `url`.
async fn control(url: &str, server: &str) -> RpcClient {
    RpcClient::new(client_transport(url).await, Target::topic("wasmrpc")).prepare(Prepare {
        namespace: Some("control".into()),
        version: Some("2.0".parse().unwrap()),
        server: Some(server.into()),
        timeout: Some(Duration::from_secs(20)),
        ..Prepare::default()
    })
}

/// Whether the host has been asked to stop, without waiting.
async fn asked_to_stop(host: &Host) -> bool {
    tokio::select! {
        biased;
        () = host.stopped() => true,
        () = std::future::ready(()) => false,
    }
}

fn remote_class(r: Result<Value, RpcError>) -> String {
    match r {
        Err(RpcError::Remote(e)) => e.exc_type,
        other => panic!("expected a remote error, got {other:?}"),
    }
}

/// Item 3: any user of the vhost could stop every host with one fanout cast. `stop` is off
/// unless the host's configuration turns it on; `ping` and `list_endpoints` stay, and the
/// listing shows no absolute path.
#[tokio::test]
async fn remote_stop_is_refused_unless_configured_and_the_listing_shows_no_absolute_path() {
    let url = memory_url();
    let dir = ManifestDir::new();
    dir.endpoint("calculator", "calculator", "calculator", "1.0", "");
    let host = Host::start(host_config(&url, "guarded", dir.path())).await.unwrap();
    let ctl = control(&url, "guarded").await;
    assert_eq!(remote_class(ctl.call(&Map::new(), "stop", Map::new()).await), "NoSuchMethod");
    assert!(!asked_to_stop(&host).await, "a remote stop must not stop a host that did not allow it");
    assert_eq!(ctl.call(&Map::new(), "ping", Map::new()).await.unwrap(), json!("pong"));
    let listing = ctl.call(&Map::new(), "list_endpoints", Map::new()).await.unwrap();
    let calc = &listing[0];
    assert_eq!(
        (calc["manifest"].as_str(), calc["module"].as_str()),
        (Some("calculator.toml"), Some("calculator.wasm"))
    );
    let text = listing.to_string();
    let root = wasmrpc_tests::root().display().to_string();
    let tmp = dir.path().display().to_string();
    assert!(!text.contains(&root) && !text.contains(&tmp), "the listing reveals where files live: {text}");
    host.stop().await.unwrap();

    let mut config: HostConfig = host_config(&url, "trusting", dir.path());
    config.allow_remote_stop = true;
    let host = Host::start(config).await.unwrap();
    assert_eq!(control(&url, "trusting").await.call(&Map::new(), "stop", Map::new()).await.unwrap(), json!(true));
    tokio::time::timeout(Duration::from_secs(30), host.stopped()).await.expect("allowed: stop stops the host");
    host.stop().await.unwrap();
}

/// Item 3: with `rpc_ping_enabled`, every served target answers oslo's own probe, called by
/// the real oslo.messaging RPCClient, as an oslo server does; without it, oslo's answer to an
/// unknown method.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oslo_rpc_server_ping_is_answered_on_every_target_when_enabled() {
    let _broker = BROKER.read().await;
    let url = rabbit_url();
    let exchange = unique("ex");
    let (calc, echo) = (unique("calc"), unique("echo"));
    let dir = ManifestDir::new();
    dir.endpoint("calculator", "calculator", &calc, "1.0", "");
    dir.endpoint("echo", "echo", &echo, "1.3", "namespace = \"ns\"");
    let mut config = host_config(&url, "pinged", dir.path());
    config.control_exchange = exchange.clone();
    config.rpc_ping_enabled = true;
    let host = Host::start(config).await.unwrap();
    let ping = |topic: &str, args: Value| json!({"topic": topic, "method": "oslo_rpc_server_ping", "args": args});
    let r = oslo_client(&json!({"url": url, "exchange": exchange, "ops": [
        ping(&calc, json!({})),
        ping(&echo, json!({"probe": "kolla"})),
        {"topic": calc, "method": "oslo_rpc_server_ping", "prepare": {"server": "pinged"}},
    ]}))
    .await;
    for answer in &r {
        assert_eq!(answer, &json!({"ok": "pong"}), "{r:?}");
    }
    host.stop().await.unwrap();

    let mut config = host_config(&url, "unpinged", dir.path());
    config.control_exchange = exchange.clone();
    let host = Host::start(config).await.unwrap();
    let r = oslo_client(&json!({"url": url, "exchange": exchange, "ops": [ping(&calc, json!({}))]})).await;
    assert_eq!(r[0]["error"]["exc_type"], json!("NoSuchMethod"), "{r:?}");
    host.stop().await.unwrap();
}

/// `wasmrpc serve` on the broker, its stderr kept for inspection (read as it comes, so a
/// chatty host never blocks on a full pipe).
struct Served {
    child: tokio::process::Child,
    server: String,
    stderr: tokio::task::JoinHandle<String>,
}

impl Served {
    async fn start(dir: &ManifestDir, extra: &[&str]) -> Served {
        let server = unique("serve");
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wasmrpc-cli"))
            .args(["serve", "--no-watch", "--server", &server, "--manifests"])
            .arg(dir.path())
            .args(extra)
            .env("WASMRPC_TRANSPORT_URL", rabbit_url())
            .env("RUST_LOG", "debug,lapin=info,amq_protocol=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut pipe = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes).await.ok();
            String::from_utf8_lossy(&bytes).into_owned()
        });
        let ctl = RpcClient::new(client_transport_with(&rabbit_url(), "openstack").await, Target::topic("wasmrpc"))
            .prepare(Prepare {
                namespace: Some("control".into()),
                version: Some("2.0".parse().unwrap()),
                server: Some(server.clone()),
                timeout: Some(Duration::from_secs(2)),
                ..Prepare::default()
            });
        for _ in 0..60 {
            if ctl.call(&Map::new(), "ping", Map::new()).await.is_ok() {
                return Served { child, server, stderr };
            }
        }
        panic!("wasmrpc serve did not come up");
    }

    /// Ends the process and returns what it wrote to stderr.
    async fn stderr(mut self) -> String {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
        self.stderr.await.unwrap()
    }
}

/// Item 9: a caller's `_timeout` of 1e300 (oslo's call-monitor timeout) made the server's
/// heartbeat task panic; now the call is answered, the odd value is logged, nothing panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_monitor_timeout_of_1e300_is_answered_without_a_panic() {
    let _broker = BROKER.read().await;
    let topic = unique("calc");
    let dir = ManifestDir::new();
    dir.endpoint("calculator", "calculator", &topic, "1.0", "");
    let served = Served::start(&dir, &[]).await;
    let add = |monitor: f64| {
        json!({"topic": topic, "method": "add", "args": {"a": 2, "b": 3},
               "prepare": {"server": served.server, "call_monitor_timeout": monitor}})
    };
    let r = oslo_client(&json!({"url": rabbit_url(), "ops": [add(1e300), add(1e19)]})).await;
    assert_eq!(r, [json!({"ok": 5}), json!({"ok": 5})]);
    let stderr = served.stderr().await;
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("invalid timeout value of 1e+300"), "{stderr}");
}

fn problems(dir: &ManifestDir, text: &str) -> Vec<String> {
    let path = dir.write("numbers", text);
    match manifest::load_file(&path) {
        Err(e @ ManifestError::Invalid { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&path.display().to_string()), "the error names the file: {text}");
            let ManifestError::Invalid { problems, .. } = e else { unreachable!() };
            problems.iter().map(|p| format!("{}:{}: {}", p.at.line, p.at.column, p.message)).collect()
        }
        other => panic!("expected problems, got {other:?}"),
    }
}

/// Item 9: numbers a manifest can hold but the host cannot use (a deadline that overflows the
/// clock, a concurrency bound the semaphore panics on) are refused at their line and column.
#[test]
fn numbers_too_large_to_use_are_refused_at_their_place() {
    let dir = ManifestDir::new();
    let head = "name = \"n\"\nmodule = \"{plugin:calculator}\"\n[target]\ntopic = \"t\"\nversion = \"1.0\"\n";
    let p = problems(&dir, &format!("{head}[limits]\ndeadline = 1e19\n"));
    assert!(p.len() == 1 && p[0].starts_with("7:12: deadline") && p[0].contains("above the maximum"), "{p:?}");
    let p = problems(&dir, &format!("{head}[limits]\ndeadline = \"100000000y\"\n"));
    assert!(p.len() == 1 && p[0].starts_with("7:12: deadline"), "{p:?}");
    let p = problems(&dir, &format!("{head}[instance]\nmode = \"warm\"\nmax_concurrency = 4611686018427387904\n"));
    assert!(p.len() == 1 && p[0].starts_with("8:19: `max_concurrency` 4611686018427387904 is above"), "{p:?}");
}

/// Item 10: the compiled-module cache holds native code the host runs, so it is created
/// private (0700, files 0600), and a cache directory others can write is not used at all.
#[cfg(unix)]
#[tokio::test]
async fn the_module_cache_is_private_and_a_shared_one_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    use wasmrpc::runtime::Compiled;
    let parent = tempfile::tempdir().unwrap();
    let cache = parent.path().join("modules");
    let runtime = || {
        wasmrpc::Runtime::new(wasmrpc::RuntimeConfig {
            cache_dir: Some(cache.clone()),
            max_instances: 10,
            ..Default::default()
        })
        .unwrap()
    };
    let spec = manifest::load_file(&wasmrpc_tests::example_manifest("calculator")).unwrap();
    assert_eq!(runtime().load(&spec, None).await.unwrap().compiled(), Compiled::Fresh);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&cache), 0o700, "the cache directory is the host's alone");
    let entries: Vec<_> = std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(entries.len(), 2, "{entries:?}");
    for entry in &entries {
        assert_eq!(mode(entry), 0o600, "{}", entry.display());
    }
    assert_eq!(runtime().load(&spec, None).await.unwrap().compiled(), Compiled::Cached);

    // Made writable by others: anyone could have swapped the artifact and its digest.
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let plugin = runtime().load(&spec, None).await.unwrap();
    assert_eq!(plugin.compiled(), Compiled::Fresh, "a world-writable cache is never loaded from");
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).unwrap();
    // An entry writable by others is refused the same way.
    let artifact = entries.iter().find(|p| p.extension().is_some_and(|e| e == "cwasm")).unwrap();
    std::fs::set_permissions(artifact, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert_eq!(runtime().load(&spec, None).await.unwrap().compiled(), Compiled::Fresh);
}

/// Item 13: a newline in a caller's method name or in text a guest logs (here an event type
/// the manifest does not allow, which the host logs) cannot start a log line of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newlines_from_callers_and_guests_cannot_forge_a_log_line() {
    let _broker = BROKER.read().await;
    let topic = unique("echo");
    let dir = ManifestDir::new();
    dir.endpoint("echo", "echo", &topic, "1.3", "");
    let served = Served::start(&dir, &[]).await;
    let r = oslo_client(&json!({"url": rabbit_url(), "ops": [
        {"topic": topic, "method": "nope\nFORGED-BY-CALLER INFO wasmrpc: all is well", "prepare": {"server": served.server}},
        {"topic": topic, "method": "notify", "args": {"event_type": "x\r\nFORGED-BY-GUEST INFO wasmrpc: ok", "payload": {}},
         "prepare": {"server": served.server}},
        {"topic": topic, "method": "print", "args": {"line": "a\rFORGED-BY-PRINT"}, "prepare": {"server": served.server}},
    ]}))
    .await;
    assert_eq!(r[0]["error"]["exc_type"], json!("NoSuchMethod"), "{r:?}");
    assert_eq!(r[1]["error"]["exc_type"], json!("NotifyError"), "{r:?}");
    let stderr = served.stderr().await;
    assert!(stderr.contains("FORGED-BY-GUEST"), "the denied event type is logged: {stderr}");
    for line in stderr.split(['\n', '\r']) {
        assert!(!line.starts_with("FORGED"), "a forged line:\n{line}\nin:\n{stderr}");
    }
}

/// Item 13: `inherit_env` cannot hand a guest the host's transport URL (it holds the broker
/// password) or anything named like a credential.
#[test]
fn inherit_env_never_passes_the_hosts_secrets() {
    let dir = ManifestDir::new();
    let head = "name = \"n\"\nmodule = \"{plugin:echo}\"\n[target]\ntopic = \"t\"\nversion = \"1.0\"\n[sandbox]\n";
    for name in
        ["WASMRPC_TRANSPORT_URL", "TRANSPORT_URL", "DB_PASSWORD", "OS_PASSWORD", "API_TOKEN", "aws_secret_access_key"]
    {
        let p = problems(&dir, &format!("{head}inherit_env = [\"LANG\", \"{name}\"]\n"));
        assert!(p.len() == 1 && p[0].starts_with("7:24: `inherit_env` may not pass"), "{name}: {p:?}");
    }
    let spec = manifest::load_file(&dir.write("fine", &format!("{head}inherit_env = [\"LANG\", \"TZ\"]\n"))).unwrap();
    assert_eq!(spec.sandbox.inherit_env, ["LANG", "TZ"]);
}

/// Item 13: a module file over the size limit is refused before it is read, with the limit
/// named; the host serves the other endpoints.
#[tokio::test]
async fn a_module_over_the_size_limit_is_refused_before_it_is_read() {
    let dir = ManifestDir::new();
    let huge = dir.path().join("huge.wasm");
    // Sparse: no disk used, but 300 MiB to anyone who reads it.
    std::fs::File::create(&huge).unwrap().set_len(300 << 20).unwrap();
    dir.write("huge", "name = \"huge\"\nmodule = \"huge.wasm\"\n[target]\ntopic = \"huge\"\nversion = \"1.0\"\n");
    let spec = manifest::load_file(&dir.path().join("huge.toml")).unwrap();
    let e = crate::support::runtime().load(&spec, None).await.unwrap_err().to_string();
    assert!(e.contains("over the limit of 268435456 bytes"), "{e}");

    dir.endpoint("calculator", "calculator", "calc", "1.0", "");
    let url = memory_url();
    let host = Host::start(host_config(&url, "h", dir.path())).await.unwrap();
    let names: Vec<Value> = host.endpoint_listing().iter().map(|e| e["name"].clone()).collect();
    assert_eq!(names, [json!("calculator")]);
    host.stop().await.unwrap();
}

/// Item 8: a guest writing log lines and emitting notifications as fast as it can gets the
/// excess dropped, is told which notifications were dropped, and the host logs a summary of
/// the drops (not one line per drop).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_guest_is_rate_limited_and_told_what_was_dropped() {
    let _broker = BROKER.read().await;
    let topic = unique("hog");
    let dir = ManifestDir::new();
    dir.endpoint("hog", "hog", &topic, "1.0", "[notifications]\nallow = [\"flood.*\"]");
    let config = tempfile::tempdir().unwrap();
    let config_file = config.path().join("wasmrpc.toml");
    let notifications = unique("flood");
    std::fs::write(
        &config_file,
        format!("[notifications]\ndriver = [\"messagingv2\"]\ntopics = [\"{notifications}\"]\n"),
    )
    .unwrap();
    let served = Served::start(&dir, &["--config", config_file.to_str().unwrap()]).await;
    let call = |method: &str, args: Value| json!({"topic": topic, "method": method, "args": args, "prepare": {"server": served.server}, "timeout": 60});
    let r = oslo_client(&json!({"url": rabbit_url(), "ops": [
        call("flood_notifications", json!({"event_type": "flood.x", "count": 2000})),
        call("flood_logs", json!({"count": 3000})),
    ]}))
    .await;
    let n = &r[0]["ok"];
    let (sent, dropped) = (n["sent"].as_u64().unwrap(), n["dropped"].as_u64().unwrap());
    assert_eq!((sent + dropped, n["other"].as_u64()), (2000, Some(0)), "{r:?}");
    assert!(sent >= u64::from(wasmrpc::runtime::NOTIFICATION_BURST) && dropped > 0, "{r:?}");
    assert_eq!(r[1]["ok"], json!(3000), "{r:?}");
    let stderr = served.stderr().await;
    let logged = stderr.lines().filter(|l| l.contains("flood line") || l.contains("flood stdout line")).count();
    assert!(
        (wasmrpc::runtime::LOG_BURST as usize..6000).contains(&logged),
        "6000 lines written, {logged} logged: the excess must be dropped"
    );
    let summaries: Vec<&str> = stderr.lines().filter(|l| l.contains("over its rate limits")).collect();
    assert!(
        !summaries.is_empty() && summaries.len() < 10,
        "drops are summarised, not logged one by one: {summaries:?}"
    );
    assert!(summaries[0].contains("dropped_notifications="), "{summaries:?}");
}

/// Item 4: passwords with `/`, `?`, `,` or `@` in them, unencoded or percent-encoded, never
/// show in what `wasmrpc call` prints, whether the URL parses or the broker refuses it.
#[test]
fn the_cli_never_prints_a_transport_password() {
    let _broker = BROKER.blocking_read();
    let url = wasmrpc::TransportUrl::parse(&rabbit_url()).unwrap();
    let host = &url.hosts[0];
    let at = format!("{}:{}", host.hostname, host.port.unwrap_or(5672));
    for transport in [
        "rabbit://guest:ab/SeCrEt@127.0.0.1/".to_owned(),
        "rabbit://guest:12/SeCrEt@127.0.0.1/".to_owned(),
        "rabbit://guest:ab,SeCrEt@127.0.0.1/".to_owned(),
        "rabbit://guest:ab?SeCrEt@127.0.0.1/".to_owned(),
        // Parses; the broker refuses the password.
        format!("rabbit://guest:ab%2FSeCrEt@{at}/"),
        format!("rabbit://guest:ab@SeCrEt@{at}/"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmrpc-cli"))
            .args(["call", "x", "y", "--timeout", "5", "--transport", &transport])
            .env("RUST_LOG", "debug")
            .output()
            .unwrap();
        let shown = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "{transport}: {shown}");
        assert!(
            !shown.contains("SeCrEt") && !shown.contains("ab/") && !shown.contains("ab%2F"),
            "{transport}:\n{shown}"
        );
    }
}
