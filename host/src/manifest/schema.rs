//! The manifest as written: serde structs that mirror the TOML, unknown fields refused.
//!
//! Nothing here checks more than types; `resolve.rs` turns this into an [`EndpointSpec`]
//! (absolute paths, defaults filled, cross-field rules checked).
//!
//! [`EndpointSpec`]: super::EndpointSpec

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_spanned::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawManifest {
    /// Example: `manifest_version = 1` (optional; the only version today).
    pub manifest_version: Option<Spanned<u32>>,
    /// Example: `name = "calculator"`.
    pub name: Spanned<String>,
    /// Example: `module = "../plugins/target/wasm32-wasip1/release/calculator.wasm"`.
    pub module: Spanned<String>,
    /// Example: `methods = ["add", "subtract"]`: methods the module must provide.
    pub methods: Option<Spanned<Vec<String>>>,
    /// `[target]`: where an RPC endpoint is served (absent for a notification listener).
    pub target: Option<Spanned<RawTarget>>,
    #[serde(default)]
    pub instance: RawInstance,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub sandbox: RawSandbox,
    #[serde(default)]
    pub notifications: RawNotifications,
    pub listener: Option<Spanned<RawListener>>,
    #[serde(default)]
    pub outbound: RawOutbound,
    /// Example: `[config] region = "eu-west"`, `password = { env = "DB_PASSWORD", secret = true }`.
    #[serde(default)]
    pub config: BTreeMap<String, Spanned<RawConfigValue>>,
    /// `[build]`: how `wasmrpc build` and `wasmrpc dev` make the module.
    pub build: Option<Spanned<RawBuild>>,
}

/// `[build]`, as Spin has it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBuild {
    /// Example: `command = "cargo build --release --target wasm32-wasip1"` (run by `sh -c`).
    pub command: Spanned<String>,
    /// Example: `workdir = ".."`: relative to the manifest's directory (the default).
    pub workdir: Option<Spanned<String>>,
    /// Example: `watch = ["src/**/*.rs", "Cargo.toml"]`: globs relative to `workdir`.
    #[serde(default)]
    pub watch: Vec<Spanned<String>>,
}

/// Just enough of a manifest to build its module: read by `wasmrpc build` before the module
/// exists, so nothing else is looked at (unknown fields are the full parse's to report).
#[derive(Debug, Deserialize)]
pub(super) struct RawBuildOnly {
    pub name: Spanned<String>,
    pub module: Spanned<String>,
    pub build: Option<Spanned<RawBuild>>,
}

/// `[outbound]`: the targets a guest may call and cast to.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOutbound {
    /// Example: `call = ["conductor", "compute.*"]`: topics (`*` matches any run of characters).
    #[serde(default)]
    pub call: Vec<Spanned<String>>,
    /// Example: `cast = ["compute.*"]`.
    #[serde(default)]
    pub cast: Vec<Spanned<String>>,
}

/// One `[config]` value: a literal or a table naming where it comes from.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawConfigValue {
    Text(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
    Table(RawConfigTable),
}

/// `{ env = "NAME" }`, `{ file = "path" }` or `{ value = "…" }`, each optionally `secret = true`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfigTable {
    pub env: Option<String>,
    pub file: Option<String>,
    pub value: Option<String>,
    #[serde(default)]
    pub secret: bool,
}

/// `[target]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTarget {
    /// Example: `topic = "calculator"`.
    pub topic: Option<Spanned<String>>,
    /// Example: `version = "1.0"`.
    pub version: Option<Spanned<String>>,
    /// Example: `namespace = "calc"`.
    pub namespace: Option<Spanned<String>>,
    /// Example: `legacy_namespaces = ["old"]`.
    #[serde(default)]
    pub legacy_namespaces: Vec<String>,
    /// Example: `server = "host-a"` (default: the host's `--server`).
    pub server: Option<Spanned<String>>,
    /// Example: `exchange = "nova"` (default: the host's control exchange).
    pub exchange: Option<Spanned<String>>,
}

/// `[instance]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInstance {
    /// Example: `mode = "warm"` (default `"fresh"`).
    pub mode: Option<Spanned<String>>,
    /// Example: `max_invocations = 1000` (warm mode only).
    pub max_invocations: Option<Spanned<u64>>,
    /// Example: `max_concurrency = 8`.
    pub max_concurrency: Option<Spanned<u64>>,
}

/// `[limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    /// Example: `memory = "64MiB"` or a number of bytes.
    pub memory: Option<Spanned<SizeOrString>>,
    /// Example: `deadline = "30s"` or a number of seconds.
    pub deadline: Option<Spanned<DurationOrString>>,
    /// Example: `fuel = 100000000`.
    pub fuel: Option<Spanned<u64>>,
}

/// `[sandbox]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSandbox {
    /// Example: `env = { REGION = "eu-west" }`: variables set to these values.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Example: `inherit_env = ["LANG"]`: variables copied from the host's environment.
    #[serde(default)]
    pub inherit_env: Vec<Spanned<String>>,
    /// Example: `[[sandbox.dirs]] host = "data"`, `guest = "/data"`, `writable = false`.
    #[serde(default)]
    pub dirs: Vec<Spanned<RawDir>>,
}

/// One `[[sandbox.dirs]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDir {
    pub host: String,
    pub guest: String,
    #[serde(default)]
    pub writable: bool,
}

/// `[notifications]`: what the endpoint may emit.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotifications {
    /// Example: `allow = ["calc.*"]`: event types (`*` matches any run of characters).
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
    /// Example: `publisher_id = "calculator.host-a"` (default `<name>.<server>`).
    pub publisher_id: Option<String>,
}

/// `[listener]`: the module handles notifications instead of RPC calls.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawListener {
    /// Example: `targets = [{ topic = "notifications" }, { topic = "monitor", exchange = "nova" }]`.
    pub targets: Vec<RawListenerTarget>,
    /// Example: `priorities = ["info", "error"]` (default: every priority the module exports).
    pub priorities: Option<Spanned<Vec<String>>>,
    /// Example: `pool = "audit-pool"`.
    pub pool: Option<Spanned<String>>,
    /// Example: `allow_requeue = true`.
    #[serde(default)]
    pub allow_requeue: bool,
    /// `[listener.filter]`.
    pub filter: Option<Spanned<RawFilter>>,
}

/// One listener target.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawListenerTarget {
    pub topic: Spanned<String>,
    pub exchange: Option<Spanned<String>>,
}

/// `[listener.filter]`, as oslo's `NotificationFilter`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFilter {
    pub publisher_id: Option<String>,
    pub event_type: Option<String>,
    #[serde(default)]
    pub context: BTreeMap<String, String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub payload: BTreeMap<String, String>,
}

/// A size: bytes as an integer, or a string with a unit (`"64MiB"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum SizeOrString {
    Bytes(u64),
    Text(String),
}

/// A duration: seconds as a number, or a string with a unit (`"30s"`, `"500ms"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum DurationOrString {
    Seconds(f64),
    Text(String),
}
