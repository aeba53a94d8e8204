//! Endpoint manifests: TOML in, a validated [`EndpointSpec`] out. No wasmtime here.
//!
//! Parsing has two stages, as in Spin: `schema.rs` mirrors the file with serde
//! (`deny_unknown_fields`, so a typo is an error), `resolve.rs` fills defaults, makes paths
//! absolute and checks every rule, collecting all problems rather than stopping at the first;
//! `toml_error.rs` turns a TOML error into a located problem with a suggestion; `units.rs`
//! parses sizes and durations; `config.rs` holds `[config]` entries and the [`Secret`] type;
//! `build.rs` holds `[build]` (the command `wasmrpc build` and `wasmrpc dev` run, and its watch
//! globs).
//! `docs/manifest.md` documents each field.

mod build;
mod config;
mod error;
mod resolve;
mod schema;
mod toml_error;
mod units;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use build::{BuildSpec, WatchRoot};
pub use config::{ConfigEntry, ConfigSource, Secret};
pub use error::{Location, ManifestError, Problem};
pub use units::{UnitError, from_seconds, parse_duration, parse_size};

use crate::protocol::Version;

/// Default linear-memory limit of an instance.
pub const DEFAULT_MEMORY: u64 = 64 << 20;
/// Default per-call deadline.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);
/// Default bound on calls served by one warm instance before it is replaced.
pub const DEFAULT_MAX_INVOCATIONS: u64 = 10_000;
/// The longest deadline a manifest may set: a deadline is added to the clock, and one that does
/// not fit (`deadline = 1e19`) would overflow it; a day is far beyond any RPC a caller waits on.
pub const MAX_DEADLINE: Duration = Duration::from_secs(24 * 60 * 60);
/// The largest `max_concurrency`: each permit is a semaphore slot and an idle warm instance
/// kept, so a typo like `max_concurrency = 1e18` must not reach the semaphore (which panics).
pub const MAX_CONCURRENCY: u64 = 100_000;

/// A validated manifest: everything the host needs to load and serve one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointSpec {
    /// The endpoint's name, unique within a host.
    pub name: String,
    /// The manifest file (absolute).
    pub manifest_path: PathBuf,
    /// The wasm module (absolute).
    pub module_path: PathBuf,
    /// Serve RPC calls on a target, or consume notifications.
    pub role: Role,
    /// Methods the manifest requires the module to provide.
    pub declared_methods: Option<Vec<String>>,
    /// How instances are created.
    pub instance: InstanceMode,
    /// At most this many calls of this endpoint run at once (beyond the server's executor bound).
    pub max_concurrency: Option<usize>,
    /// Resource limits per instance and per call.
    pub limits: Limits,
    /// What the sandbox grants.
    pub sandbox: Sandbox,
    /// Which notifications the endpoint may emit.
    pub notifications: NotificationGrant,
    /// Which targets the endpoint's guest may call and cast to.
    pub outbound: OutboundGrant,
    /// `[config]`, in key order: what the guest reads through the host.
    pub config: Vec<ConfigEntry>,
    /// `[build]`: how the module is made, if the manifest says.
    pub build: Option<BuildSpec>,
    /// Where some fields are written, for errors found when the module is loaded.
    pub locations: SpecLocations,
}

/// What building an endpoint needs from its manifest: read without requiring the module to
/// exist (it is what the build makes) and without the rest of the manifest's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildTarget {
    /// The endpoint's name.
    pub name: String,
    /// The manifest file (absolute).
    pub manifest_path: PathBuf,
    /// The module the build is expected to write (absolute; may not exist yet).
    pub module_path: PathBuf,
    /// `[build]`, if any.
    pub build: Option<BuildSpec>,
}

/// Positions of fields that loading checks against the module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpecLocations {
    /// `module = …`
    pub module: Location,
    /// `[target] version = …`
    pub version: Location,
    /// `[target] namespace = …` (or the `[target]` table).
    pub namespace: Location,
    /// `methods = …`
    pub methods: Location,
    /// `[listener]`
    pub listener: Location,
}

/// What an endpoint does.
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    /// An RPC endpoint served on a target.
    Rpc(RpcTarget),
    /// A notification listener.
    Listener(ListenerSpec),
}

/// The `[target]` of an RPC endpoint (oslo's `Target` plus the endpoint's own version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcTarget {
    /// The topic the endpoint is served on.
    pub topic: String,
    /// The API version the endpoint implements.
    pub version: Version,
    /// The namespace (None is oslo's null namespace).
    pub namespace: Option<String>,
    /// Other namespaces accepted for compatibility.
    pub legacy_namespaces: Vec<String>,
    /// Serve as this server name instead of the host's.
    pub server: Option<String>,
    /// Use this exchange instead of the host's control exchange.
    pub exchange: Option<String>,
}

/// `[listener]`: oslo's notification listener, with the module as its endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerSpec {
    /// `(exchange, topic)` pairs; `None` is the control exchange.
    pub targets: Vec<(Option<String>, String)>,
    /// Priorities handled (lowercase); `None` means every priority the module exports.
    pub priorities: Option<Vec<String>>,
    /// The pool (one shared queue per pool).
    pub pool: Option<String>,
    /// Whether a `requeue` answer (or a trap) puts the message back.
    pub allow_requeue: bool,
    /// Which notifications reach the module.
    pub filter: Option<FilterSpec>,
}

/// oslo's `NotificationFilter`: regular expressions matched at the start of each field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FilterSpec {
    /// Regex on the publisher id.
    pub publisher_id: Option<String>,
    /// Regex on the event type.
    pub event_type: Option<String>,
    /// key → regex on top-level context keys.
    pub context: Vec<(String, String)>,
    /// key → regex on metadata keys (`message_id`, `timestamp`).
    pub metadata: Vec<(String, String)>,
    /// key → regex on top-level payload keys.
    pub payload: Vec<(String, String)>,
}

/// How the host creates instances of the module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceMode {
    /// A new instance for every call: no state survives a call (the default).
    Fresh,
    /// Instances are reused, each for at most `max_invocations` calls.
    Warm {
        /// Calls per instance before it is replaced.
        max_invocations: u64,
    },
}

/// Per-instance and per-call limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum linear memory in bytes.
    pub memory: u64,
    /// Maximum wall-clock time of one call.
    pub deadline: Duration,
    /// Fuel per call (roughly, wasm instructions), if metered.
    pub fuel: Option<u64>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { memory: DEFAULT_MEMORY, deadline: DEFAULT_DEADLINE, fuel: None }
    }
}

/// What the WASI sandbox grants. Everything not listed is denied.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sandbox {
    /// Environment variables with fixed values.
    pub env: Vec<(String, String)>,
    /// Environment variables copied from the host when the endpoint loads.
    pub inherit_env: Vec<String>,
    /// Preopened directories.
    pub dirs: Vec<DirGrant>,
}

/// One preopened directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    /// Absolute host path.
    pub host: PathBuf,
    /// The path the guest opens.
    pub guest: String,
    /// Read-write instead of the default read-only.
    pub writable: bool,
}

/// Event types an endpoint may emit (`[notifications] allow`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NotificationGrant {
    /// Patterns; `*` matches any run of characters. Empty means nothing may be emitted.
    pub allow: Vec<String>,
    /// Overrides the default publisher id `<name>.<server>`.
    pub publisher_id: Option<String>,
}

impl NotificationGrant {
    /// Whether `event_type` matches one of the allowed patterns.
    #[must_use]
    pub fn allows(&self, event_type: &str) -> bool {
        self.allow.iter().any(|pattern| glob_match(pattern, event_type))
    }
}

/// Topics an endpoint's guest may reach (`[outbound]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutboundGrant {
    /// Topic patterns calls may go to; `*` matches any run of characters.
    pub call: Vec<String>,
    /// Topic patterns casts may go to.
    pub cast: Vec<String>,
}

impl OutboundGrant {
    /// Whether a call (or, with `cast`, a cast) to `topic` is granted.
    #[must_use]
    pub fn allows(&self, cast: bool, topic: &str) -> bool {
        let patterns = if cast { &self.cast } else { &self.call };
        patterns.iter().any(|pattern| glob_match(pattern, topic))
    }
}

/// `*` matches any (possibly empty) run of characters; everything else matches itself.
fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

impl EndpointSpec {
    /// The files `[config]` reads (`{ file = … }`), in key order.
    pub fn config_files(&self) -> impl Iterator<Item = &Path> {
        self.config.iter().filter_map(|c| match &c.source {
            ConfigSource::File(path) => Some(path.as_path()),
            _ => None,
        })
    }

    /// The RPC target, if this is an RPC endpoint.
    #[must_use]
    pub fn rpc_target(&self) -> Option<&RpcTarget> {
        match &self.role {
            Role::Rpc(t) => Some(t),
            Role::Listener(_) => None,
        }
    }
}

/// Reads and validates a manifest file.
pub fn load_file(path: &Path) -> Result<EndpointSpec, ManifestError> {
    from_str(path, &read(path)?)
}

/// Validates manifest text; `path` names it in errors and anchors relative paths.
pub fn from_str(path: &Path, source: &str) -> Result<EndpointSpec, ManifestError> {
    checked(path, source, resolve::resolve)
}

/// Reads a manifest's [`BuildTarget`]: its name, module path and `[build]`, checked; the rest of
/// the manifest is not.
pub fn build_target(path: &Path) -> Result<BuildTarget, ManifestError> {
    build_target_from_str(path, &read(path)?)
}

/// [`build_target`] of manifest text.
pub fn build_target_from_str(path: &Path, source: &str) -> Result<BuildTarget, ManifestError> {
    checked(path, source, resolve::resolve_build_target)
}

fn read(path: &Path) -> Result<String, ManifestError> {
    std::fs::read_to_string(path).map_err(|source| ManifestError::Read { path: path.to_owned(), source })
}

/// Runs `resolve` on `source` with the manifest's absolute path, which its problems then name.
fn checked<T>(
    path: &Path,
    source: &str,
    resolve: fn(&Path, &str) -> Result<T, Vec<Problem>>,
) -> Result<T, ManifestError> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    resolve(&path, source).map_err(|problems| ManifestError::Invalid { path, problems })
}

/// Every `*.toml` file directly in `dir`, sorted by name (the order endpoints are tried in).
pub fn discover(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
        .collect();
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs_match_like_shell_patterns_without_classes() {
        assert!(glob_match("calc.*", "calc.added"));
        assert!(glob_match("calc.*", "calc."));
        assert!(!glob_match("calc.*", "calculator.added"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(glob_match("*.end", "x.end"));
        assert!(!glob_match("ab*ba", "aba"));
    }
}
