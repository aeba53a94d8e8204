//! `[config]`: literal, environment and file values reach the guest; secrets never show in
//! logs, the endpoint listing or errors; a changed referenced file reloads the endpoint.

use std::time::Duration;

use serde_json::{Map, Value, json};
use wasmrpc::HostConfig;
use wasmrpc::protocol::Target;
use wasmrpc::rpc::{Prepare, RpcClient};
use wasmrpc_tests::{ManifestDir, client_transport, eventually, host_config, memory_url, obj};

use super::support::{CapturedLogs, capture_logs};

/// The host's control endpoint, as an operator's tool would call it.
async fn control(url: &str) -> RpcClient {
    RpcClient::new(client_transport(url).await, Target::topic("wasmrpc")).prepare(Prepare {
        namespace: Some("control".into()),
        version: Some("2.0".parse().unwrap()),
        server: Some("h".into()),
        ..Prepare::default()
    })
}

async fn setting(client: &RpcClient, key: &str) -> Value {
    client.call(&Map::new(), "setting", obj(json!({"key": key}))).await.unwrap()
}

/// Logs are captured on this thread, so the host runs on it too (current-thread runtime).
#[tokio::test]
async fn config_values_reach_the_guest_secrets_never_show_and_a_changed_file_reloads() {
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(capture_logs(&logs));
    let url = memory_url();
    let dir = ManifestDir::new();
    let region = dir.path().join("region.txt");
    std::fs::write(&region, "eu-west\n").unwrap();
    std::fs::write(dir.path().join("token.txt"), "hunter2-file\n").unwrap();
    let home = std::env::var("HOME").expect("HOME is set");
    dir.endpoint(
        "gateway",
        "gateway",
        "gw",
        "1.0",
        "[config]\nplain = \"literal\"\nretries = 3\nhome = { env = \"HOME\" }\nregion = { file = \"region.txt\" }\n\
         token = { file = \"token.txt\", secret = true }\npin = { value = \"hunter2-literal\", secret = true }",
    );
    // A manifest whose secret cannot be resolved: the error names the key and the variable.
    dir.endpoint(
        "broken",
        "gateway",
        "gw-broken",
        "1.0",
        "[config]\npassword = { env = \"WASMRPC_TEST_SURELY_UNSET_VARIABLE\", secret = true }",
    );
    let mut config: HostConfig = host_config(&url, "h", dir.path());
    config.watch = true;
    let host = wasmrpc::Host::start(config).await.unwrap();
    let client = RpcClient::new(client_transport(&url).await, Target::topic("gw"));

    assert_eq!(setting(&client, "plain").await, json!("literal"));
    assert_eq!(setting(&client, "retries").await, json!("3"));
    assert_eq!(setting(&client, "home").await, json!(home));
    assert_eq!(setting(&client, "region").await, json!("eu-west"), "one trailing newline is dropped");
    assert_eq!(setting(&client, "absent").await, Value::Null);
    assert_eq!(setting(&client, "token").await, json!("hunter2-file"));
    assert_eq!(setting(&client, "pin").await, json!("hunter2-literal"));

    // The listing names every key and whether it is secret, and no value.
    let listing = control(&url).await.call(&Map::new(), "list_endpoints", Map::new()).await.unwrap();
    let gateway = listing.as_array().unwrap().iter().find(|e| e["name"] == json!("gateway")).expect("listed");
    assert_eq!(
        gateway["config"],
        json!([
            {"key": "home", "secret": false},
            {"key": "pin", "secret": true},
            {"key": "plain", "secret": false},
            {"key": "region", "secret": false},
            {"key": "retries", "secret": false},
            {"key": "token", "secret": true},
        ]),
        "{listing}"
    );
    let text = listing.to_string();
    assert!(!text.contains("hunter2") && !text.contains("eu-west") && !text.contains("literal"), "{text}");
    let text = logs.text();
    assert!(
        text.contains(
            "broken.toml:8:12: `[config] password`: environment variable WASMRPC_TEST_SURELY_UNSET_VARIABLE is not set"
        ),
        "the load error names the place, key and variable:\n{text}"
    );

    // The referenced file changes: the endpoint reloads and the guest reads the new value.
    std::fs::write(&region, "us-east\n").unwrap();
    let seen = eventually(Duration::from_secs(30), || async {
        (setting(&client, "region").await == json!("us-east")).then_some(())
    })
    .await;
    assert!(seen.is_some(), "the endpoint was not reloaded after its config file changed");
    let text = logs.text();
    assert!(text.contains("endpoint reloaded"), "{text}");
    assert!(!text.contains("hunter2"), "a secret reached the log:\n{text}");
    host.stop().await.ok();
}
