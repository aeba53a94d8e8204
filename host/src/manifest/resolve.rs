//! Stage two: raw manifest → [`EndpointSpec`], with every problem collected.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_spanned::Spanned;

use super::schema::{
    DurationOrString, RawBuild, RawBuildOnly, RawConfigValue, RawDir, RawListener, RawManifest, RawTarget, SizeOrString,
};
use super::toml_error::toml_problem;
use super::units::{from_seconds, parse_duration, parse_size};
use super::{
    BuildSpec, BuildTarget, ConfigEntry, ConfigSource, DEFAULT_MAX_INVOCATIONS, DirGrant, EndpointSpec, FilterSpec,
    InstanceMode, Limits, ListenerSpec, Location, MAX_CONCURRENCY, MAX_DEADLINE, NotificationGrant, OutboundGrant,
    Problem, Role, RpcTarget, Sandbox, SpecLocations,
};
use crate::protocol::{PRIORITIES, Version};

/// The only manifest format version so far.
const MANIFEST_VERSION: u32 = 1;

/// Collects problems while resolving, with positions computed from spans.
struct Resolver<'a> {
    source: &'a str,
    dir: PathBuf,
    problems: Vec<Problem>,
}

impl Resolver<'_> {
    fn at(&self, span: Range<usize>) -> Location {
        Location::of_offset(self.source, span.start)
    }

    fn problem(&mut self, span: Range<usize>, message: impl Into<String>, help: Option<&str>) {
        let mut p = Problem::new(self.at(span), message);
        p.help = help.map(str::to_owned);
        self.problems.push(p);
    }

    fn path(&self, relative: &str) -> PathBuf {
        let p = Path::new(relative);
        let joined = if p.is_absolute() { p.to_owned() } else { self.dir.join(p) };
        std::path::absolute(&joined).unwrap_or(joined)
    }

    /// A topic, server or exchange name: what AMQP routing needs it to be.
    fn routing_name(&mut self, field: &str, value: &Spanned<String>) -> String {
        let v = value.get_ref();
        // AMQP names are short strings (at most 255 bytes); the longest name made of a topic is
        // its fanout queue, `<topic>_fanout_<32 hex digits>`.
        let longest = if field == "topic" { MAX_TOPIC_BYTES } else { MAX_AMQP_NAME_BYTES };
        let help = "queue and exchange names are at most 255 bytes; a topic also names `<topic>_fanout_<uuid>`";
        if self.amqp_name(field, value, longest, help) && (v.contains(['*', '#']) || v.chars().any(char::is_whitespace))
        {
            self.problem(
                value.span(),
                format!("`{field}` {v:?} contains a wildcard or whitespace"),
                Some("AMQP topic routing treats `*` and `#` as wildcards; use letters, digits, `.`, `_` and `-`"),
            );
        }
        v.clone()
    }

    /// Whether `value` is a non-empty name of at most `longest` bytes; a problem at its place if
    /// not. A declaration with a longer name fails on the broker, after the endpoint was listed.
    fn amqp_name(&mut self, field: &str, value: &Spanned<String>, longest: usize, help: &str) -> bool {
        let v = value.get_ref();
        if v.is_empty() {
            self.problem(value.span(), format!("`{field}` is empty"), None);
            false
        } else if v.len() > longest {
            self.problem(
                value.span(),
                format!(
                    "`{field}` is {} bytes long; at most {longest} bytes fit in the AMQP names made of it",
                    v.len()
                ),
                Some(help),
            );
            false
        } else {
            true
        }
    }
}

/// The longest AMQP queue or exchange name (a short string).
const MAX_AMQP_NAME_BYTES: usize = 255;
/// The longest listener topic: its queues and routing keys are `<topic>.<priority>`, and the
/// longest priority is `critical`.
const MAX_LISTENER_TOPIC_BYTES: usize = MAX_AMQP_NAME_BYTES - ".critical".len();
/// The longest topic: its fanout queue adds `_fanout_` and 32 hex digits.
const MAX_TOPIC_BYTES: usize = MAX_AMQP_NAME_BYTES - "_fanout_".len() - 32;

pub(super) fn resolve(path: &Path, source: &str) -> Result<EndpointSpec, Vec<Problem>> {
    let raw: RawManifest = toml::from_str(source).map_err(|e| vec![toml_problem(source, &e)])?;
    let dir = path.parent().map(Path::to_owned).unwrap_or_default();
    let mut r = Resolver { source, dir, problems: Vec::new() };

    if let Some(v) = &raw.manifest_version
        && *v.get_ref() != MANIFEST_VERSION
    {
        r.problem(
            v.span(),
            format!("manifest_version {} is not supported", v.get_ref()),
            Some("this host reads manifest_version = 1"),
        );
    }

    let name = raw.name.get_ref().clone();
    if !valid_name(&name) {
        r.problem(
            raw.name.span(),
            format!("invalid endpoint name {name:?}"),
            Some("use 1 to 64 letters, digits, `_`, `-` or `.`, starting with a letter or digit"),
        );
    }

    let module_path = r.path(raw.module.get_ref());
    if !module_path.is_file() {
        r.problem(
            raw.module.span(),
            format!("module file not found: {}", module_path.display()),
            Some("the path is relative to the manifest; build the plugin (`cargo build --release` in plugins/) or fix the path"),
        );
    }

    let mut locations = SpecLocations { module: r.at(raw.module.span()), ..SpecLocations::default() };
    let role = match (&raw.target, &raw.listener) {
        (Some(target), None) => resolve_target(&mut r, target, &mut locations).map(Role::Rpc),
        (None, Some(listener)) => {
            locations.listener = r.at(listener.span());
            resolve_listener(&mut r, listener).map(Role::Listener)
        }
        (Some(target), Some(_)) => {
            r.problem(
                target.span(),
                "a manifest has either `[target]` (an RPC endpoint) or `[listener]`, not both",
                None,
            );
            None
        }
        (None, None) => {
            r.problems.push(
                Problem::new(Location { line: 1, column: 1 }, "missing `[target]`")
                    .help("add `[target]` with `topic = \"…\"` and `version = \"1.0\"` (or `[listener]` for a notification listener)"),
            );
            None
        }
    };

    let declared_methods = raw.methods.as_ref().map(|m| {
        locations.methods = r.at(m.span());
        m.get_ref().clone()
    });

    let instance = resolve_instance(&mut r, &raw);
    let max_concurrency = raw.instance.max_concurrency.as_ref().and_then(|m| {
        if *m.get_ref() == 0 {
            r.problem(
                m.span(),
                "`max_concurrency` must be at least 1",
                Some("omit it to use only the server's executor bound"),
            );
            None
        } else if *m.get_ref() > MAX_CONCURRENCY {
            r.problem(
                m.span(),
                format!("`max_concurrency` {} is above the maximum of {MAX_CONCURRENCY}", m.get_ref()),
                Some("omit it to use only the server's executor bound"),
            );
            None
        } else {
            usize::try_from(*m.get_ref()).ok()
        }
    });
    let limits = resolve_limits(&mut r, &raw);
    let sandbox = resolve_sandbox(&mut r, &raw);

    let notifications = NotificationGrant {
        allow: raw.notifications.allow.iter().map(|p| p.get_ref().clone()).collect(),
        publisher_id: raw.notifications.publisher_id.clone(),
    };
    for pattern in &raw.notifications.allow {
        if pattern.get_ref().is_empty() {
            r.problem(pattern.span(), "an empty event-type pattern matches nothing", Some("write e.g. \"calc.*\""));
        }
    }
    let outbound = OutboundGrant {
        call: resolve_outbound(&mut r, "call", &raw.outbound.call),
        cast: resolve_outbound(&mut r, "cast", &raw.outbound.cast),
    };
    let config = resolve_config(&mut r, &raw);
    let build = raw.build.as_ref().and_then(|b| resolve_build(&mut r, b));

    if !r.problems.is_empty() {
        r.problems.sort_by_key(|p| (p.at.line, p.at.column));
        return Err(r.problems);
    }
    let Some(role) = role else { unreachable!("a missing role always records a problem") };
    Ok(EndpointSpec {
        name,
        manifest_path: path.to_owned(),
        module_path,
        role,
        declared_methods,
        instance,
        max_concurrency,
        limits,
        sandbox,
        notifications,
        outbound,
        config,
        build,
        locations,
    })
}

/// The part of a manifest `wasmrpc build` needs (see [`super::build_target`]).
pub(super) fn resolve_build_target(path: &Path, source: &str) -> Result<BuildTarget, Vec<Problem>> {
    let raw: RawBuildOnly = toml::from_str(source).map_err(|e| vec![toml_problem(source, &e)])?;
    let dir = path.parent().map(Path::to_owned).unwrap_or_default();
    let mut r = Resolver { source, dir, problems: Vec::new() };
    let module_path = r.path(raw.module.get_ref());
    let build = raw.build.as_ref().and_then(|b| resolve_build(&mut r, b));
    if !r.problems.is_empty() {
        return Err(r.problems);
    }
    Ok(BuildTarget { name: raw.name.into_inner(), manifest_path: path.to_owned(), module_path, build })
}

fn resolve_build(r: &mut Resolver<'_>, build: &Spanned<RawBuild>) -> Option<BuildSpec> {
    let b = build.get_ref();
    if b.command.get_ref().trim().is_empty() {
        r.problem(
            b.command.span(),
            "`[build] command` is empty",
            Some("write the command that writes the module, e.g. \"cargo build --release --target wasm32-wasip1\""),
        );
    }
    let workdir = match &b.workdir {
        Some(w) => {
            let dir = r.path(w.get_ref());
            if !dir.is_dir() {
                r.problem(
                    w.span(),
                    format!("`[build] workdir` is not a directory: {}", dir.display()),
                    Some("`workdir` is relative to the manifest's directory"),
                );
            }
            dir
        }
        None => r.dir.clone(),
    };
    let watch: Vec<String> = b.watch.iter().map(|w| w.get_ref().clone()).collect();
    match BuildSpec::new(b.command.get_ref().clone(), workdir, &watch) {
        Ok(spec) => Some(spec),
        Err((index, e)) => {
            r.problem(
                b.watch[index].span(),
                format!("invalid `[build] watch` pattern {:?}: {}", watch[index], e.msg),
                Some(
                    "globs are relative to `workdir`: `*` within a name, `**` across directories, e.g. \"src/**/*.rs\"",
                ),
            );
            None
        }
    }
}

fn resolve_target(
    r: &mut Resolver<'_>,
    target: &Spanned<RawTarget>,
    locations: &mut SpecLocations,
) -> Option<RpcTarget> {
    let t = target.get_ref();
    locations.namespace = t.namespace.as_ref().map_or(r.at(target.span()), |n| r.at(n.span()));
    let topic = match &t.topic {
        Some(topic) => Some(r.routing_name("topic", topic)),
        None => {
            r.problem(
                target.span(),
                "`[target]` has no `topic`",
                Some("add `topic = \"…\"`: the topic callers send to"),
            );
            None
        }
    };
    let version = match &t.version {
        Some(v) => {
            locations.version = r.at(v.span());
            match v.get_ref().parse::<Version>() {
                Ok(version) => Some(version),
                Err(e) => {
                    r.problem(
                        v.span(),
                        e.to_string(),
                        Some("write the endpoint's API version, e.g. `version = \"1.0\"`"),
                    );
                    None
                }
            }
        }
        None => {
            locations.version = r.at(target.span());
            // oslo's endpoint default (`Target()` has version 1.0) would hide mistakes here:
            // an explicit version is what callers pin against.
            r.problem(
                target.span(),
                "`[target]` has no `version`",
                Some("add `version = \"1.0\"` (the API version this endpoint implements)"),
            );
            None
        }
    };
    let server = t.server.as_ref().map(|s| r.routing_name("server", s));
    let exchange = t.exchange.as_ref().map(|e| r.routing_name("exchange", e));
    let namespace = t.namespace.as_ref().map(|n| n.get_ref().clone());
    Some(RpcTarget {
        topic: topic?,
        version: version?,
        namespace,
        legacy_namespaces: t.legacy_namespaces.clone(),
        server,
        exchange,
    })
}

fn resolve_listener(r: &mut Resolver<'_>, listener: &Spanned<RawListener>) -> Option<ListenerSpec> {
    let l: &RawListener = listener.get_ref();
    if l.targets.is_empty() {
        r.problem(
            listener.span(),
            "`[listener]` has no targets",
            Some("add `targets = [{ topic = \"notifications\" }]`"),
        );
    }
    for t in &l.targets {
        let help = "a listener's queues and routing keys are `<topic>.<priority>`, at most 255 bytes";
        r.amqp_name("[listener] targets: topic", &t.topic, MAX_LISTENER_TOPIC_BYTES, help);
        if let Some(exchange) = &t.exchange {
            r.amqp_name(
                "[listener] targets: exchange",
                exchange,
                MAX_AMQP_NAME_BYTES,
                "exchange names are at most 255 bytes",
            );
        }
    }
    if let Some(pool) = &l.pool {
        r.amqp_name(
            "[listener] pool",
            pool,
            MAX_AMQP_NAME_BYTES,
            "a pool names the listener's queue: at most 255 bytes",
        );
    }
    let priorities = l.priorities.as_ref().map(|p| {
        let lowered: Vec<String> = p.get_ref().iter().map(|s| s.to_lowercase()).collect();
        for unknown in lowered.iter().filter(|s| !PRIORITIES.contains(&s.as_str())) {
            r.problem(
                p.span(),
                format!("unknown priority {unknown:?}"),
                Some("priorities are audit, debug, info, warn, error, critical and sample"),
            );
        }
        lowered
    });
    let filter = l.filter.as_ref().map(|f| {
        let raw = f.get_ref();
        let pairs = |m: &std::collections::BTreeMap<String, String>| {
            m.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>()
        };
        let spec = FilterSpec {
            publisher_id: raw.publisher_id.clone(),
            event_type: raw.event_type.clone(),
            context: pairs(&raw.context),
            metadata: pairs(&raw.metadata),
            payload: pairs(&raw.payload),
        };
        let all = spec
            .publisher_id
            .iter()
            .chain(&spec.event_type)
            .chain(spec.context.iter().chain(&spec.metadata).chain(&spec.payload).map(|(_, v)| v));
        for pattern in all {
            if let Err(e) = regex::Regex::new(pattern) {
                r.problem(
                    f.span(),
                    format!("invalid regular expression {pattern:?} in `[listener.filter]`: {e}"),
                    None,
                );
            }
        }
        spec
    });
    Some(ListenerSpec {
        targets: l
            .targets
            .iter()
            .map(|t| (t.exchange.as_ref().map(|e| e.get_ref().clone()), t.topic.get_ref().clone()))
            .collect(),
        priorities,
        pool: l.pool.as_ref().map(|p| p.get_ref().clone()),
        allow_requeue: l.allow_requeue,
        filter,
    })
}

fn resolve_instance(r: &mut Resolver<'_>, raw: &RawManifest) -> InstanceMode {
    let max = raw.instance.max_invocations.as_ref();
    match raw.instance.mode.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
        None | Some(("fresh", _)) => {
            if let Some(m) = max {
                r.problem(
                    m.span(),
                    "`max_invocations` only applies to `mode = \"warm\"`",
                    Some("remove it, or set `mode = \"warm\"`"),
                );
            }
            InstanceMode::Fresh
        }
        Some(("warm", _)) => {
            let max_invocations = max.map_or(DEFAULT_MAX_INVOCATIONS, |m| *m.get_ref());
            if max_invocations == 0 {
                r.problem(max.map_or(0..0, Spanned::span), "`max_invocations` must be at least 1", None);
            }
            InstanceMode::Warm { max_invocations }
        }
        Some((other, span)) => {
            r.problem(
                span,
                format!("unknown instance mode {other:?}"),
                Some("use \"fresh\" (a new instance per call) or \"warm\" (reuse instances)"),
            );
            InstanceMode::Fresh
        }
    }
}

fn resolve_limits(r: &mut Resolver<'_>, raw: &RawManifest) -> Limits {
    let mut limits = Limits::default();
    if let Some(m) = &raw.limits.memory {
        let parsed = match m.get_ref() {
            SizeOrString::Bytes(b) => Ok(*b),
            SizeOrString::Text(t) => parse_size(t),
        };
        match parsed {
            Ok(bytes) if bytes < 64 << 10 => {
                r.problem(
                    m.span(),
                    format!("memory limit {bytes} bytes is below one wasm page (64 KiB)"),
                    Some("write e.g. \"64MiB\""),
                );
            }
            Ok(bytes) => limits.memory = bytes,
            Err(e) => r.problem(m.span(), e.to_string(), Some("write e.g. `memory = \"64MiB\"`")),
        }
    }
    if let Some(d) = &raw.limits.deadline {
        let parsed = match d.get_ref() {
            DurationOrString::Seconds(s) => from_seconds(*s),
            DurationOrString::Text(t) => parse_duration(t),
        };
        match parsed {
            Ok(d) if d.is_zero() => {
                r.problem(raw.limits.deadline.as_ref().map_or(0..0, Spanned::span), "deadline must be positive", None)
            }
            Ok(d) if d > MAX_DEADLINE => r.problem(
                raw.limits.deadline.as_ref().map_or(0..0, Spanned::span),
                format!("deadline {d:?} is above the maximum of {}", humantime::format_duration(MAX_DEADLINE)),
                Some("write e.g. `deadline = \"30s\"`"),
            ),
            Ok(deadline) => limits.deadline = deadline,
            Err(e) => r.problem(d.span(), e.to_string(), Some("write e.g. `deadline = \"30s\"`")),
        }
    }
    if let Some(f) = &raw.limits.fuel {
        if *f.get_ref() == 0 {
            r.problem(f.span(), "fuel must be positive", Some("omit `fuel` to rely on the deadline alone"));
        }
        limits.fuel = Some(*f.get_ref());
    }
    limits
}

fn resolve_sandbox(r: &mut Resolver<'_>, raw: &RawManifest) -> Sandbox {
    let s = &raw.sandbox;
    for name in s.env.keys() {
        if name.is_empty() || name.contains('=') {
            r.problems.push(Problem::new(
                Location { line: 1, column: 1 },
                format!("invalid environment variable name {name:?} in `[sandbox] env`"),
            ));
        }
    }
    for name in &s.inherit_env {
        if name.get_ref().is_empty() || name.get_ref().contains('=') {
            r.problem(name.span(), format!("invalid environment variable name {:?}", name.get_ref()), None);
        } else if host_secret(name.get_ref()) {
            r.problem(
                name.span(),
                format!(
                    "`inherit_env` may not pass {:?}: it names a secret of the host's, or its transport URL",
                    name.get_ref()
                ),
                Some("give the guest only what it needs, in `[sandbox] env`"),
            );
        }
    }
    let mut dirs = Vec::new();
    for d in &s.dirs {
        let RawDir { host, guest, writable } = d.get_ref();
        let host_path = r.path(host);
        if !host_path.is_dir() {
            r.problem(
                d.span(),
                format!("preopened directory not found: {}", host_path.display()),
                Some("`host` is relative to the manifest and must be an existing directory"),
            );
        }
        if guest.is_empty() {
            r.problem(d.span(), "`guest` is empty", Some("write the path the guest opens, e.g. \"/data\""));
        }
        dirs.push(DirGrant { host: host_path, guest: guest.clone(), writable: *writable });
    }
    Sandbox {
        env: s.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        inherit_env: s.inherit_env.iter().map(|n| n.get_ref().clone()).collect(),
        dirs,
    }
}

/// `[outbound] call` or `cast`: topic patterns, `*` the only wildcard.
fn resolve_outbound(r: &mut Resolver<'_>, field: &str, patterns: &[Spanned<String>]) -> Vec<String> {
    for pattern in patterns {
        let p = pattern.get_ref();
        if p.is_empty() {
            r.problem(
                pattern.span(),
                format!("an empty `[outbound] {field}` pattern matches nothing"),
                Some("write a topic, e.g. \"conductor\" or \"compute.*\""),
            );
        } else if p.contains('#') || p.chars().any(char::is_whitespace) {
            r.problem(
                pattern.span(),
                format!("`[outbound] {field}` pattern {p:?} contains `#` or whitespace"),
                Some("a pattern is a topic name where `*` matches any run of characters"),
            );
        }
    }
    patterns.iter().map(|p| p.get_ref().clone()).collect()
}

/// `[config]`: each key a literal, `{ env = … }`, `{ file = … }` or `{ value = … }`.
fn resolve_config(r: &mut Resolver<'_>, raw: &RawManifest) -> Vec<ConfigEntry> {
    let mut entries = Vec::new();
    for (key, value) in &raw.config {
        let at = r.at(value.span());
        let (source, secret) = match value.get_ref() {
            RawConfigValue::Text(v) => (ConfigSource::Literal(v.clone()), false),
            RawConfigValue::Integer(v) => (ConfigSource::Literal(v.to_string()), false),
            RawConfigValue::Float(v) => (ConfigSource::Literal(v.to_string()), false),
            RawConfigValue::Bool(v) => (ConfigSource::Literal(v.to_string()), false),
            RawConfigValue::Table(t) => {
                let source = match (&t.env, &t.file, &t.value) {
                    (Some(name), None, None) => {
                        if name.is_empty() || name.contains('=') {
                            r.problem(
                                value.span(),
                                format!("`[config] {key}`: invalid environment variable name {name:?}"),
                                None,
                            );
                        }
                        ConfigSource::Env(name.clone())
                    }
                    (None, Some(file), None) => ConfigSource::File(r.path(file)),
                    (None, None, Some(v)) => ConfigSource::Literal(v.clone()),
                    _ => {
                        r.problem(
                            value.span(),
                            format!("`[config] {key}` needs exactly one of `env`, `file` or `value`"),
                            Some("write e.g. `{ env = \"DB_PASSWORD\", secret = true }` or `{ file = \"ca.pem\" }`"),
                        );
                        continue;
                    }
                };
                (source, t.secret)
            }
        };
        entries.push(ConfigEntry { key: key.clone(), source, secret, at });
    }
    entries
}

/// Variables a manifest may never copy from the host's environment: the host's own settings
/// (`WASMRPC_TRANSPORT_URL` holds the broker password) and anything named like a credential.
fn host_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper.starts_with("WASMRPC_")
        || ["PASSWORD", "PASSWD", "SECRET", "TOKEN", "CREDENTIAL", "API_KEY", "PRIVATE_KEY", "TRANSPORT_URL"]
            .iter()
            .any(|word| upper.contains(word))
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}
