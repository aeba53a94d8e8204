//! A TOML or serde error in a manifest as a located [`Problem`] with advice: "did you mean" for
//! a misspelt field, what to add for a missing one, what a size or duration looks like.

use super::{Location, Problem};

/// Fields of each table, for "did you mean" suggestions on unknown fields.
const KNOWN_FIELDS: &[&str] = &[
    "manifest_version",
    "name",
    "module",
    "methods",
    "target",
    "instance",
    "limits",
    "sandbox",
    "notifications",
    "listener",
    "topic",
    "version",
    "namespace",
    "legacy_namespaces",
    "server",
    "exchange",
    "mode",
    "max_invocations",
    "max_concurrency",
    "memory",
    "deadline",
    "fuel",
    "env",
    "inherit_env",
    "dirs",
    "host",
    "guest",
    "writable",
    "allow",
    "publisher_id",
    "targets",
    "priorities",
    "pool",
    "allow_requeue",
    "filter",
    "event_type",
    "context",
    "metadata",
    "payload",
    "build",
    "command",
    "workdir",
    "watch",
];

/// Turns a TOML/serde error into a located problem with advice.
pub(super) fn toml_problem(source: &str, e: &toml::de::Error) -> Problem {
    let at = e.span().map_or(Location { line: 1, column: 1 }, |s| Location::of_offset(source, s.start));
    let message = e.message().trim().to_owned();
    let help = if let Some(field) = between(&message, "unknown field `", "`") {
        let best = KNOWN_FIELDS.iter().map(|k| (strsim::levenshtein(field, k), *k)).filter(|(d, _)| *d <= 3).min();
        Some(match best {
            Some((_, k)) => format!("did you mean `{k}`?"),
            None => "remove it; docs/manifest.md lists every field".to_owned(),
        })
    } else if let Some(field) = between(&message, "missing field `", "`") {
        Some(match field {
            "name" => "add `name = \"my-endpoint\"`".to_owned(),
            "module" => "add `module = \"path/to/plugin.wasm\"` (relative to the manifest)".to_owned(),
            other => format!("add `{other} = …`; docs/manifest.md describes it"),
        })
    } else if message.contains("SizeOrString") {
        Some("write a size such as \"64MiB\" or a number of bytes".to_owned())
    } else if message.contains("DurationOrString") {
        Some("write a duration such as \"30s\" or a number of seconds".to_owned())
    } else {
        None
    };
    let message = if message.contains("untagged enum") { "invalid value".to_owned() } else { message };
    Problem { at, message, help }
}

fn between<'m>(text: &'m str, start: &str, end: &str) -> Option<&'m str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}
