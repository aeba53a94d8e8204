//! Fuzz targets for every decoder that takes outside bytes: the envelope, request, reply,
//! failure and notification decoders, the transport URL parser, the manifest parser and the
//! reader of what a guest returns. A target passes when no input makes it panic (a decoder
//! may refuse anything; it may not crash the host).
//!
//! Inputs come from proptest: arbitrary bytes, JSON built from the protocol's own keys and
//! awkward values (huge and tiny numbers, deep nesting, odd strings), valid messages, and byte
//! mutations of all of these (flips, truncations, insertions, splices). Not coverage-guided
//! (no nightly toolchain here for cargo-fuzz), so the seeds carry the structure.
//!
//! `cargo test -p wasmrpc --test fuzz` runs each target for `WASMRPC_FUZZ_CASES` inputs
//! (default 256, a few seconds in all). `scripts/fuzz <seconds>` runs each for that long and
//! prints one line per target: `fuzz <target>: <inputs> inputs, <crashes> crashes`.

use std::fmt::Debug;
use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestError, TestRunner};
use serde_json::{Map, Value, json};
use wasmrpc::protocol::{Notification, RemoteFailure, Reply, Request, TransportUrl, envelope, redact};

/// Keys the decoders look for, so generated objects often reach past the first check.
const KEYS: &[&str] = &[
    "oslo.version",
    "oslo.message",
    "method",
    "args",
    "namespace",
    "version",
    "_msg_id",
    "_reply_q",
    "_timeout",
    "_unique_id",
    "_context_user",
    "_context_request_id",
    "result",
    "failure",
    "ending",
    "priority",
    "event_type",
    "payload",
    "publisher_id",
    "message_id",
    "timestamp",
    "class",
    "module",
    "message",
    "tb",
    "kwargs",
    "ok",
    "error",
    "type_name",
    "details",
    "methods",
    "name",
    "abi_version",
    "context",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![any::<f64>(), Just(1e300), Just(-1e300), Just(1e19), Just(f64::MIN_POSITIVE), Just(-0.0)]
            .prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        "\\PC{0,12}".prop_map(Value::from),
        prop::sample::select(vec!["1.0", "2.0", "1.3", "", "info", "ERROR", "x.y", "1e300", "-1", "\n"])
            .prop_map(Value::from),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![3 => prop::sample::select(KEYS).prop_map(str::to_owned), 1 => "\\PC{0,8}"]
}

/// JSON values up to four levels deep, objects keyed mostly by protocol keys.
fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Value> {
    prop::collection::vec((key(), json_value()), 0..10).prop_map(|kv| Value::Object(kv.into_iter().collect()))
}

/// What a byte-level mutation does.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Splice(usize, usize, usize),
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len().max(1);
        match m {
            Mutation::Flip(i, x) => {
                if let Some(b) = bytes.get_mut(i % len) {
                    *b ^= x;
                }
            }
            Mutation::Truncate(i) => bytes.truncate(i % len),
            Mutation::Insert(i, more) => {
                let at = (i % len).min(bytes.len());
                bytes.splice(at..at, more.iter().copied());
            }
            Mutation::Splice(from, to, at) => {
                let (a, b) = ((from % len).min(bytes.len()), (to % len).min(bytes.len()));
                let chunk: Vec<u8> = bytes[a.min(b)..a.max(b)].to_vec();
                let at = (at % len).min(bytes.len());
                bytes.splice(at..at, chunk);
            }
        }
    }
    bytes
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let interesting = prop::sample::select(vec![
        b"\"".to_vec(),
        b"{".to_vec(),
        b"}".to_vec(),
        b"[".to_vec(),
        b"\\u0000".to_vec(),
        b"\\ud800".to_vec(),
        b"1e400".to_vec(),
        b"-".to_vec(),
        b"\xff".to_vec(),
        b",".to_vec(),
        b"null".to_vec(),
    ]);
    prop::collection::vec(
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(i, x)| Mutation::Flip(i, x)),
            any::<usize>().prop_map(Mutation::Truncate),
            (any::<usize>(), prop_oneof![interesting, prop::collection::vec(any::<u8>(), 1..8)])
                .prop_map(|(i, b)| Mutation::Insert(i, b)),
            (any::<usize>(), any::<usize>(), any::<usize>()).prop_map(|(a, b, c)| Mutation::Splice(a, b, c)),
        ],
        0..4,
    )
}

/// Message bodies: raw bytes, bare JSON, JSON inside an oslo envelope, valid `seeds`, each
/// possibly mutated.
fn bodies(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let shapes = prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..256),
        2 => json_object().prop_map(|v| serde_json::to_vec(&v).unwrap_or_default()),
        3 => json_object().prop_map(|v| serde_json::to_vec(&json!({"oslo.version": "2.0", "oslo.message": v.to_string()})).unwrap_or_default()),
        3 => prop::sample::select(seeds),
    ];
    (shapes, mutations()).prop_map(|(b, m)| mutate(b, &m))
}

fn request_seeds() -> Vec<Vec<u8>> {
    vec![
        br#"{"oslo.version": "2.0", "oslo.message": "{\"method\": \"add\", \"args\": {\"a\": 1}, \"namespace\": null, \"version\": \"1.0\", \"_msg_id\": \"m1\", \"_reply_q\": \"reply_x\", \"_timeout\": 1e300, \"_unique_id\": \"u\", \"_context_user\": \"bob\"}"}"#.to_vec(),
        br#"{"method": "echo", "args": {"value": [1, 2, {"x": null}]}, "version": "1.3", "_context_roles": ["a"]}"#.to_vec(),
    ]
}

fn reply_seeds() -> Vec<Vec<u8>> {
    vec![
        br#"{"oslo.version": "2.0", "oslo.message": "{\"result\": 5, \"failure\": null, \"ending\": true, \"_msg_id\": \"m1\"}"}"#.to_vec(),
        br#"{"oslo.version": "2.0", "oslo.message": "{\"result\": null, \"failure\": \"{\\\"class\\\": \\\"ValueError\\\", \\\"module\\\": \\\"builtins\\\", \\\"message\\\": \\\"x\\\", \\\"tb\\\": [], \\\"kwargs\\\": {}}\", \"ending\": true, \"_msg_id\": \"m2\"}"}"#.to_vec(),
    ]
}

fn notification_seeds() -> Vec<Vec<u8>> {
    vec![
        br#"{"oslo.version": "2.0", "oslo.message": "{\"message_id\": \"1\", \"publisher_id\": \"p\", \"event_type\": \"e.x\", \"priority\": \"INFO\", \"payload\": {\"a\": 1}, \"timestamp\": \"2026-11-30 12:00:00.000000\", \"_context_user\": \"u\"}"}"#.to_vec(),
        br#"{"message_id": "1", "publisher_id": "p", "event_type": "e", "priority": "warn", "payload": null, "timestamp": "x"}"#.to_vec(),
    ]
}

fn failure_seeds() -> Vec<Vec<u8>> {
    vec![
        br#"{"class": "ValueError", "module": "builtins", "message": "bad", "tb": ["a", "b"], "kwargs": {"code": 1}}"#
            .to_vec(),
        br#"{"class": "RemoteError", "module": "oslo_messaging.rpc.client", "message": null, "tb": "x"}"#.to_vec(),
    ]
}

fn guest_result_seeds() -> Vec<Vec<u8>> {
    vec![
        br#"{"ok": {"sum": 5}}"#.to_vec(),
        br#"{"error": {"type_name": "ValueError", "message": "x", "details": {"code": 42}}}"#.to_vec(),
        br#"{"abi_version": 1, "name": "calc", "version": "1.0", "namespace": null, "methods": [{"name": "add"}]}"#
            .to_vec(),
        br#"{"priority": "info", "event_type": "calc.added", "payload": {"sum": 5}, "context": {"request_id": "r"}}"#
            .to_vec(),
    ]
}

/// Transport URLs: every separator a URL has, percent escapes, IPv6 brackets, ports.
fn urls() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-z0-9]{0,6}",
        prop::sample::select(vec![
            "rabbit://",
            "kombu://",
            "memory://",
            "amqp://",
            ":",
            "@",
            "/",
            "?",
            ",",
            "&",
            "=",
            "%",
            "%2F",
            "%zz",
            "[",
            "]",
            "[::1]",
            ":5672",
            ":99999",
            ":-1",
            "#",
            "+",
            " ",
            "\u{0}",
            "é",
        ])
        .prop_map(str::to_owned),
    ];
    let text = prop::collection::vec(piece, 0..16).prop_map(|p| p.concat());
    prop_oneof![
        3 => ("rabbit://|kombu://|memory://", text.clone()).prop_map(|(s, t)| format!("{s}{t}")),
        1 => text,
        1 => "\\PC{0,40}",
    ]
}

const MANIFEST: &str = "name = \"calc\"\nmodule = \"calc.wasm\"\nmethods = [\"add\"]\n\n[target]\ntopic = \"calculator\"\nversion = \"1.0\"\nnamespace = \"ns\"\nexchange = \"nova\"\nserver = \"s\"\n\n[instance]\nmode = \"warm\"\nmax_invocations = 10\nmax_concurrency = 4\n\n[limits]\nmemory = \"64MiB\"\ndeadline = \"30s\"\nfuel = 1000\n\n[sandbox]\nenv = { A = \"1\" }\ninherit_env = [\"LANG\"]\n\n[notifications]\nallow = [\"calc.*\"]\n\n[listener]\ntargets = [{ topic = \"n\" }]\npool = \"p\"\n";

/// Manifests: the full example mutated, with lines swapped for generated `key = value` lines.
fn manifests() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        prop::sample::select(vec![
            "1e19",
            "1e300",
            "-1",
            "0",
            "nan",
            "inf",
            "18446744073709551615",
            "\"\"",
            "\"1e19s\"",
            "\"100000000y\"",
            "\"1.5GiB\"",
            "\"99999999999999999999GiB\"",
            "[]",
            "{}",
            "true",
            "\"\\n\"",
            "\"warm\"",
            "[{ topic = \"\" }]",
        ])
        .prop_map(str::to_owned),
        "\"\\PC{0,10}\"",
    ];
    let key = prop::sample::select(vec![
        "name",
        "module",
        "methods",
        "topic",
        "version",
        "namespace",
        "exchange",
        "server",
        "mode",
        "max_invocations",
        "max_concurrency",
        "memory",
        "deadline",
        "fuel",
        "env",
        "inherit_env",
        "allow",
        "publisher_id",
        "targets",
        "priorities",
        "pool",
        "allow_requeue",
        "filter",
        "[target]",
        "[limits]",
        "[instance]",
        "[[sandbox.dirs]]",
    ]);
    let line = (key, value).prop_map(|(k, v)| if k.starts_with('[') { k.to_owned() } else { format!("{k} = {v}") });
    (prop::collection::vec((any::<prop::sample::Index>(), line), 0..6), mutations()).prop_map(|(edits, m)| {
        let mut lines: Vec<String> = MANIFEST.lines().map(str::to_owned).collect();
        for (at, line) in edits {
            let i = at.index(lines.len());
            lines[i] = line;
        }
        String::from_utf8_lossy(&mutate(lines.join("\n").into_bytes(), &m)).into_owned()
    })
}

/// The result of one fuzz run of one target.
struct Outcome {
    inputs: u64,
    crashes: u64,
}

/// Runs `check` over inputs from `strategy`: `WASMRPC_FUZZ_CASES` inputs, or batches for
/// `WASMRPC_FUZZ_SECONDS` seconds when that is set. Every crash is printed with its (shrunk)
/// input.
fn fuzz<S>(name: &str, strategy: S, check: impl Fn(S::Value)) -> Outcome
where
    S: Strategy,
    S::Value: Debug,
{
    let seconds: Option<u64> = std::env::var("WASMRPC_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok());
    let cases: u32 = std::env::var("WASMRPC_FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(256);
    let batch = if seconds.is_some() { 2000 } else { cases };
    let until = seconds.map(|s| Instant::now() + Duration::from_secs(s));
    let mut outcome = Outcome { inputs: 0, crashes: 0 };
    loop {
        let config = Config { cases: batch, failure_persistence: None, ..Config::default() };
        // A fresh random seed per batch; a crash shrinks to a small input and ends its batch.
        let mut runner = TestRunner::new(config);
        let tried = std::cell::Cell::new(0u64);
        let result = runner.run(&strategy, |input| {
            tried.set(tried.get() + 1);
            check(input);
            Ok(())
        });
        outcome.inputs += tried.get();
        match result {
            Ok(()) => {}
            Err(TestError::Fail(why, input)) => {
                outcome.crashes += 1;
                eprintln!("fuzz {name}: CRASH on {input:?}: {why}");
            }
            Err(TestError::Abort(why)) => eprintln!("fuzz {name}: aborted: {why}"),
        }
        if until.is_none_or(|u| Instant::now() >= u) {
            break;
        }
    }
    println!("fuzz {name}: {} inputs, {} crashes", outcome.inputs, outcome.crashes);
    outcome
}

fn assert_no_crash(o: &Outcome) {
    assert_eq!(o.crashes, 0, "a decoder panicked; the input is printed above");
}

#[test]
fn envelope() {
    let mut seeds = request_seeds();
    seeds.extend(reply_seeds());
    assert_no_crash(&fuzz("envelope", bodies(seeds), |b| {
        let _ = envelope::unwrap(&b);
    }));
}

#[test]
fn request() {
    assert_no_crash(&fuzz("request", bodies(request_seeds()), |b| {
        if let Ok(r) = Request::decode(&b) {
            let _ = (r.encode(), r.client_timeout());
        }
    }));
}

#[test]
fn reply() {
    assert_no_crash(&fuzz("reply", bodies(reply_seeds()), |b| {
        if let Ok(r) = Reply::decode(&b) {
            let _ = (r.encode(), r.is_heartbeat());
        }
    }));
}

#[test]
fn failure() {
    assert_no_crash(&fuzz("failure", bodies(failure_seeds()), |b| {
        if let Ok(f) = RemoteFailure::from_json(&String::from_utf8_lossy(&b)) {
            let _ = f.to_json();
        }
    }));
}

#[test]
fn notification() {
    assert_no_crash(&fuzz("notification", bodies(notification_seeds()), |b| {
        if let Ok(n) = Notification::decode(&b) {
            let _ = (n.encode_v2(), n.encode_v1());
        }
    }));
}

#[test]
fn transport_url() {
    assert_no_crash(&fuzz("transport_url", urls(), |text| {
        let _ = redact(&text);
        match TransportUrl::parse(&text) {
            Ok(u) => {
                let _ = (u.to_string(), format!("{u:?}"));
            }
            Err(e) => {
                let _ = (e.to_string(), format!("{e:?}"));
            }
        }
    }));
}

#[test]
fn manifest() {
    assert_no_crash(&fuzz("manifest", manifests(), |text| {
        if let Err(e) = wasmrpc::manifest::from_str(Path::new("/fuzz/calc.toml"), &text) {
            let _ = e.to_string();
        }
    }));
}

#[test]
fn guest_result() {
    let packed = any::<u64>();
    assert_no_crash(&fuzz("guest_result", (bodies(guest_result_seeds()), packed), |(b, packed)| {
        let _ = serde_json::from_slice::<wasmrpc_abi::CallResponse>(&b);
        let _ = serde_json::from_slice::<wasmrpc_abi::Description>(&b);
        let _ = serde_json::from_slice::<wasmrpc_abi::NotifyRequest>(&b);
        let _ = wasmrpc_abi::unpack(packed);
    }));
}
