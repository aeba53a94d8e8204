//! The HTTP gateway (issue 21): `POST /v1/call/{topic}/{method}` and `/v1/cast/...` on the
//! listener `wasmrpc serve --http` opens. Every test runs the real binary against the real
//! broker and real wasm plugins, and talks plain HTTP/1.1 to it.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::{Value, json};
use wasmrpc_tests::broker::{BROKER, unique};
use wasmrpc_tests::{ManifestDir, eventually};

use crate::service::Service;

/// POSTs `body` to `path` on `svc`'s listener with `headers`: the status and the body (JSON
/// when it parses, else a string; null when empty).
async fn post(svc: &Service, path: &str, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> (u16, Value) {
    let (addr, path, body) = (svc.http, path.to_owned(), body.into());
    let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let answer = tokio::task::spawn_blocking({
        let path = path.clone();
        move || http_post(addr, &path, &headers, &body)
    })
    .await
    .expect("http task");
    answer.unwrap_or_else(|| panic!("no HTTP answer to POST {path}"))
}

/// One HTTP/1.1 request on its own connection. The body is written from another thread, so a
/// server that answers before reading all of it (413) is still heard.
pub(crate) fn http_post(
    addr: SocketAddr,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Option<(u16, Value)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let mut head =
        format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).ok()?;
    let mut w = s.try_clone().ok()?;
    let body = body.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&body);
    });
    let mut response = Vec::new();
    let _ = s.read_to_end(&mut response);
    let _ = writer.join();
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    let value = if body.is_empty() { Value::Null } else { serde_json::from_str(&body).unwrap_or(Value::String(body)) };
    Some((status, value))
}

/// Results, oslo's errors with their statuses, the context headers, a timeout, an unknown
/// topic, a cast, and the requests the gateway refuses: one host serving calculator and echo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_calls_and_casts_over_http_and_maps_oslo_errors() {
    let _broker = BROKER.read().await;
    let (calc, echo) = (unique("gw_calc"), unique("gw_echo"));
    let dir = ManifestDir::new();
    dir.endpoint("calculator", "calculator", &calc, "1.0", "");
    dir.endpoint("echo", "echo", &echo, "1.3", "");
    let svc = Service::spawn(dir.path(), &["--server", &unique("gw"), "--manifests", "."]);
    svc.ready(Duration::from_secs(60)).await;

    // A result.
    let (status, body) = post(&svc, &format!("/v1/call/{calc}/add"), &[], r#"{"a": 2, "b": 3}"#).await;
    assert_eq!((status, &body), (200, &json!(5)));

    // A guest's typed error: its oslo type, with the remote traceback, as 502.
    let (status, body) = post(&svc, &format!("/v1/call/{calc}/divide"), &[], r#"{"a": 1, "b": 0}"#).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["type"], "DivisionByZero", "{body}");
    assert!(body["error"]["message"].is_string() && body["error"]["traceback"].is_array(), "{body}");

    // NoSuchMethod: 404 (a private method is as absent as a missing one).
    for method in ["nope", "_secret"] {
        let (status, body) = post(&svc, &format!("/v1/call/{echo}/{method}"), &[], "").await;
        assert_eq!((status, &body["error"]["type"]), (404, &json!("NoSuchMethod")), "{method}: {body}");
        assert_eq!(body["error"]["module"], "oslo_messaging.rpc.dispatcher", "{body}");
    }

    // UnsupportedVersion: 409.
    let (status, body) = post(&svc, &format!("/v1/call/{echo}/echo?version=2.0"), &[], r#"{"value": 1}"#).await;
    assert_eq!((status, &body["error"]["type"]), (409, &json!("UnsupportedVersion")), "{body}");

    // The request id headers and X-Context reach the guest's context.
    let headers =
        [("X-Request-Id", "req-gw-1"), ("X-Global-Request-Id", "req-global-1"), ("X-Context", r#"{"user": "alice"}"#)];
    let (status, body) = post(&svc, &format!("/v1/call/{echo}/context"), &headers, "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["request_id"], &body["global_request_id"], &body["user"]),
        (&json!("req-gw-1"), &json!("req-global-1"), &json!("alice")),
        "{body}"
    );

    // A call that outlasts ?timeout=1: 504 MessagingTimeout.
    let (status, body) = post(&svc, &format!("/v1/call/{echo}/sleep?timeout=1"), &[], r#"{"seconds": 3}"#).await;
    assert_eq!((status, &body["error"]["type"]), (504, &json!("MessagingTimeout")), "{body}");
    // An unknown topic: nothing consumes the message, so the call times out too.
    let (status, body) = post(&svc, &format!("/v1/call/{}/add?timeout=1", unique("nobody")), &[], "").await;
    assert_eq!((status, &body["error"]["type"]), (504, &json!("MessagingTimeout")), "{body}");

    // A cast: 202 at once, and the guest runs it.
    let line = unique("cast_line");
    let (status, _) = post(&svc, &format!("/v1/cast/{echo}/print"), &[], json!({"line": line}).to_string()).await;
    assert_eq!(status, 202);

    // Bodies the gateway refuses, each with a message naming the problem.
    let (status, body) = post(&svc, &format!("/v1/call/{calc}/add"), &[], "{\"a\": 1,").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("not valid JSON"), "{body}");
    let (status, body) = post(&svc, &format!("/v1/call/{calc}/add"), &[], "[1, 2]").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("must be a JSON object"), "{body}");
    let (status, body) = post(&svc, &format!("/v1/call/{calc}/add"), &[("X-Context", "nope")], "").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("X-Context"), "{body}");
    let (status, body) = post(&svc, &format!("/v1/call/{calc}/add?timeout=soon"), &[], "").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = post(&svc, &format!("/v1/call/{calc}/add?fanout=true"), &[], "").await;
    assert_eq!(status, 400, "{body}");
    let big = json!({"value": "x".repeat(2 * 1024 * 1024)}).to_string();
    let (status, body) = post(&svc, &format!("/v1/call/{echo}/echo"), &[], big).await;
    assert_eq!((status, &body["error"]["type"]), (413, &json!("PayloadTooLarge")), "{body}");

    // The cast ran (its line is in the host's log, where guests' output goes).
    let found = eventually(Duration::from_secs(10), || async {
        let (status, body) = post(&svc, &format!("/v1/call/{echo}/echo"), &[], r#"{"value": 1}"#).await;
        (status == 200 && body == json!(1)).then_some(())
    })
    .await;
    assert!(found.is_some());
    let (_, log) = svc.terminate().await;
    assert!(log.contains(&line), "the cast's line is not in the log:\n{log}");
}
