//! [`HostConfig`] options set by name from text, as oslo.config reads them: what an INI file's
//! `[wasmrpc]`, `[DEFAULT]` and `[oslo_messaging_notifications]` sections and the `WASMRPC_*`
//! environment variables set. One table, so a file and a variable spell and parse an option the
//! same way.
//!
//! Names are those of `wasmrpc.toml`, flattened: `[runtime] max_memory` is `max_memory`.

use std::path::Path;

use crate::manifest::{from_seconds, parse_duration, parse_size};
use crate::notification::NotificationDriver;
use crate::protocol::TransportUrl;
use crate::transport::RabbitOptions;

use super::HostConfig;

/// Every `wasmrpc.toml` option outside `[notifications]` and `[oslo_messaging_rabbit]`: the
/// `[wasmrpc]` section's options, and `WASMRPC_<NAME>` variables.
pub const WASMRPC_OPTIONS: &[&str] = &[
    "transport_url",
    "control_exchange",
    "server",
    "manifests",
    "executor_thread_pool_size",
    "control_topic",
    "drain_timeout",
    "kombu_missing_consumer_retry_timeout",
    "rpc_response_timeout",
    "watch",
    "reload_debounce",
    "allow_remote_stop",
    "rpc_ping_enabled",
    "http",
    "pooling",
    "max_instances",
    "max_memory",
    "cache_dir",
];

/// `[oslo_messaging_notifications]`'s options (`WASMRPC_NOTIFICATIONS_<NAME>` variables).
pub const NOTIFICATION_OPTIONS: &[&str] = &["driver", "topics", "transport_url", "publisher_id"];

/// Why an option could not be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionProblem {
    /// No option of that name here.
    #[error("no such option")]
    Unknown,
    /// The value does not fit the option.
    #[error("{0}")]
    Invalid(String),
}

/// oslo.config's booleans: true/false, yes/no, on/off, 1/0, in any case.
pub fn parse_bool(value: &str) -> Result<bool, OptionProblem> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(OptionProblem::Invalid(format!("expected true or false, not {value:?}"))),
    }
}

/// oslo.config's lists: comma-separated, each item trimmed, empty items dropped.
#[must_use]
pub fn parse_list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

fn invalid(e: impl std::fmt::Display) -> OptionProblem {
    OptionProblem::Invalid(e.to_string())
}

fn number<T: std::str::FromStr>(value: &str, what: &str) -> Result<T, OptionProblem> {
    value.trim().parse().map_err(|_| OptionProblem::Invalid(format!("expected {what}, not {value:?}")))
}

fn seconds(value: &str) -> Result<std::time::Duration, OptionProblem> {
    from_seconds(number(value, "a number of seconds")?).map_err(invalid)
}

/// A path relative to `base` (the INI file's directory, or the working directory).
fn path(base: &Path, value: &str) -> std::path::PathBuf {
    base.join(value.trim())
}

/// Sets one of [`WASMRPC_OPTIONS`] from its text.
pub fn set_wasmrpc(config: &mut HostConfig, name: &str, value: &str, base: &Path) -> Result<(), OptionProblem> {
    let text = value.trim();
    match name {
        "transport_url" => config.transport_url = TransportUrl::parse(text).map_err(invalid)?,
        "control_exchange" => config.control_exchange = text.to_owned(),
        "server" => config.server = text.to_owned(),
        "manifests" => config.manifests = path(base, text),
        "executor_thread_pool_size" => match number(text, "a positive integer")? {
            0 => return Err(OptionProblem::Invalid("expected a positive integer, not 0".into())),
            n => config.executor_size = n,
        },
        "control_topic" => config.control_topic = text.to_owned(),
        "drain_timeout" => config.drain_timeout = parse_duration(text).map_err(invalid)?,
        "kombu_missing_consumer_retry_timeout" => config.reply_retry = seconds(text)?,
        "rpc_response_timeout" => match seconds(text)? {
            d if d.is_zero() => return Err(OptionProblem::Invalid("expected a positive number of seconds".into())),
            d => config.rpc_response_timeout = d,
        },
        "watch" => config.watch = parse_bool(text)?,
        "reload_debounce" => config.reload_debounce = parse_duration(text).map_err(invalid)?,
        "allow_remote_stop" => config.allow_remote_stop = parse_bool(text)?,
        "rpc_ping_enabled" => config.rpc_ping_enabled = parse_bool(text)?,
        "http" => {
            config.http = match text {
                "" => None,
                addr => Some(addr.parse().map_err(|_| {
                    OptionProblem::Invalid(format!("expected an address such as 127.0.0.1:9180, not {addr:?}"))
                })?),
            };
        }
        "pooling" => config.runtime.pooling = parse_bool(text)?,
        "max_instances" => config.runtime.max_instances = number(text, "a non-negative integer")?,
        "max_memory" => config.runtime.max_memory = parse_size(text).map_err(invalid)?,
        "cache_dir" => config.runtime.cache_dir = (!text.is_empty()).then(|| path(base, text)),
        _ => return Err(OptionProblem::Unknown),
    }
    Ok(())
}

/// Sets one of [`NOTIFICATION_OPTIONS`] from its text. `driver` replaces the list (a caller
/// reading an INI file gathers a section's repeated `driver` lines first, as oslo's multi-valued
/// option does).
pub fn set_notification(config: &mut HostConfig, name: &str, value: &str) -> Result<(), OptionProblem> {
    let n = &mut config.notifications;
    match name {
        "driver" => {
            n.drivers = parse_list(value)
                .iter()
                .map(|d| d.parse::<NotificationDriver>().map_err(invalid))
                .collect::<Result<_, _>>()?;
        }
        "topics" => n.topics = parse_list(value),
        "transport_url" => {
            n.transport_url = match value.trim() {
                "" => None,
                url => Some(TransportUrl::parse(url).map_err(invalid)?),
            };
        }
        "publisher_id" => n.publisher_id = Some(value.trim().to_owned()).filter(|p| !p.is_empty()),
        _ => return Err(OptionProblem::Unknown),
    }
    Ok(())
}

/// Adds an `[oslo_messaging_rabbit]` option (later ones win when the transport reads them),
/// after checking its value. `kombu_missing_consumer_retry_timeout` also sets the host's reply
/// retry, which is where oslo reads it from.
pub fn set_rabbit(config: &mut HostConfig, name: &str, value: &str) -> Result<(), OptionProblem> {
    let value = value.trim();
    RabbitOptions::check(name, value).map_err(|e| match e {
        crate::transport::OptionError::Unknown(_) => OptionProblem::Unknown,
        other => invalid(other),
    })?;
    if name == "kombu_missing_consumer_retry_timeout" {
        config.reply_retry = seconds(value)?;
    }
    config.rabbit_options.push((name.to_owned(), value.to_owned()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn booleans_and_lists_read_as_oslo_config_reads_them() {
        for yes in ["true", "True", "YES", "on", "1"] {
            assert_eq!(parse_bool(yes), Ok(true), "{yes}");
        }
        for no in ["false", "FALSE", "no", "Off", "0"] {
            assert_eq!(parse_bool(no), Ok(false), "{no}");
        }
        assert!(parse_bool("maybe").is_err());
        assert_eq!(parse_list(" a, b ,,c "), ["a", "b", "c"]);
        assert!(parse_list("").is_empty());
    }

    #[test]
    fn every_option_is_set_from_text() {
        let mut c = HostConfig::new();
        let base = Path::new("/etc/wasmrpc");
        for (name, value) in [
            ("transport_url", "memory://x/"),
            ("control_exchange", "nova"),
            ("server", "compute-1"),
            ("manifests", "m"),
            ("executor_thread_pool_size", "8"),
            ("control_topic", "ctl"),
            ("drain_timeout", "1m"),
            ("kombu_missing_consumer_retry_timeout", "2.5"),
            ("rpc_response_timeout", "7"),
            ("watch", "no"),
            ("reload_debounce", "40ms"),
            ("allow_remote_stop", "yes"),
            ("rpc_ping_enabled", "1"),
            ("http", "127.0.0.1:9180"),
            ("pooling", "False"),
            ("max_instances", "7"),
            ("max_memory", "256MiB"),
            ("cache_dir", "cache"),
        ] {
            set_wasmrpc(&mut c, name, value, base).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let set: Vec<&str> = WASMRPC_OPTIONS.to_vec();
        assert_eq!(set.len(), 18, "every option above is listed");
        assert_eq!(c.http, Some(std::net::SocketAddr::from(([127, 0, 0, 1], 9180))));
        assert_eq!(c.transport_url.to_string(), "memory://x/");
        assert_eq!((c.control_exchange.as_str(), c.server.as_str()), ("nova", "compute-1"));
        assert_eq!(c.manifests, base.join("m"));
        assert_eq!((c.executor_size, c.control_topic.as_str()), (8, "ctl"));
        assert_eq!((c.drain_timeout, c.reply_retry), (Duration::from_secs(60), Duration::from_millis(2500)));
        assert_eq!(c.rpc_response_timeout, Duration::from_secs(7));
        assert_eq!((c.watch, c.reload_debounce), (false, Duration::from_millis(40)));
        assert!(c.allow_remote_stop && c.rpc_ping_enabled);
        assert_eq!((c.runtime.pooling, c.runtime.max_instances, c.runtime.max_memory), (false, 7, 256 << 20));
        assert_eq!(c.runtime.cache_dir, Some(base.join("cache")));
        set_wasmrpc(&mut c, "cache_dir", "", base).unwrap();
        assert_eq!(c.runtime.cache_dir, None, "an empty cache_dir disables the cache");

        set_notification(&mut c, "driver", "messagingv2, log").unwrap();
        set_notification(&mut c, "topics", "notifications,audit").unwrap();
        set_notification(&mut c, "transport_url", "memory://n/").unwrap();
        set_notification(&mut c, "publisher_id", "compute.host1").unwrap();
        assert_eq!(c.notifications.drivers, [NotificationDriver::MessagingV2, NotificationDriver::Log]);
        assert_eq!(c.notifications.topics, ["notifications", "audit"]);
        assert_eq!(c.notifications.transport_url.as_ref().map(ToString::to_string).as_deref(), Some("memory://n/"));
        assert_eq!(c.notifications.publisher_id.as_deref(), Some("compute.host1"));

        set_rabbit(&mut c, "rabbit_quorum_queue", "true").unwrap();
        set_rabbit(&mut c, "kombu_missing_consumer_retry_timeout", "3").unwrap();
        assert_eq!(c.reply_retry, Duration::from_secs(3));
        assert_eq!(c.rabbit_options[0], ("rabbit_quorum_queue".to_owned(), "true".to_owned()));
    }

    #[test]
    fn unknown_names_and_bad_values_are_told_apart() {
        let mut c = HostConfig::new();
        let base = Path::new(".");
        assert_eq!(set_wasmrpc(&mut c, "watchh", "true", base), Err(OptionProblem::Unknown));
        assert_eq!(set_notification(&mut c, "drivers", "log"), Err(OptionProblem::Unknown));
        assert_eq!(set_rabbit(&mut c, "rabbit_hostt", "x"), Err(OptionProblem::Unknown));
        for (name, value, says) in [
            ("watch", "maybe", "true or false"),
            ("executor_thread_pool_size", "many", "positive integer"),
            ("executor_thread_pool_size", "0", "positive integer"),
            ("rpc_response_timeout", "0", "positive number of seconds"),
            ("rpc_response_timeout", "-1", "invalid duration"),
            ("drain_timeout", "soon", "invalid duration"),
            ("transport_url", "carrier-pigeon://x/", "carrier-pigeon"),
        ] {
            let e = set_wasmrpc(&mut c, name, value, base).unwrap_err().to_string();
            assert!(e.contains(says), "{name} = {value}: {e}");
        }
        let e = set_notification(&mut c, "driver", "messagingv2,smoke").unwrap_err().to_string();
        assert!(e.contains("smoke"), "{e}");
        let e = set_rabbit(&mut c, "rabbit_qos_prefetch_count", "many").unwrap_err().to_string();
        assert!(e.contains("rabbit_qos_prefetch_count"), "{e}");
        assert!(c.rabbit_options.is_empty(), "a refused option is not kept");
    }
}
