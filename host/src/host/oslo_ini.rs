//! oslo.config INI files (`--config-file`, `--config-dir`), as nova or neutron read them, so an
//! operator points wasmrpc at the file their Python services already use.
//!
//! - `[DEFAULT]`: `transport_url`, `control_exchange`, `executor_thread_pool_size`,
//!   `rpc_response_timeout`, `rpc_ping_enabled`, `host` (this host's server name), and the
//!   deprecated `notification_driver`, `notification_topics`, `notification_transport_url`.
//!   Anything else there is some other service's option (nova.conf has hundreds): skipped.
//! - `[oslo_messaging_rabbit]`: the rabbit options, by oslo's names.
//! - `[oslo_messaging_notifications]`: `driver` (multi-valued: repeated lines add up),
//!   `topics`, `transport_url` (a separate notification broker), `publisher_id`; `retry` is
//!   accepted and has no effect.
//! - `[wasmrpc]`: every `wasmrpc.toml` option (flattened: `max_memory`, not `[runtime]`).
//! - Any other section (`[api]`, `[database]`...) is skipped.
//!
//! The three sections wasmrpc reads whole are strict: an unknown option there is an error naming
//! the file and line, since a typo would otherwise be silently ignored. Within a file `[DEFAULT]`
//! is read first, so `[wasmrpc]` wins over it; across files the later one wins per option, as
//! oslo.config does. Paths in `[wasmrpc]` are relative to the file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ini::{Ini, ParseOption};

use super::HostConfig;
use super::text_options::{self, OptionProblem, parse_list};
use crate::notification::NotificationDriver;

/// An INI file that cannot be used. Messages name the file and line; never a value (a
/// `transport_url` holds a password).
#[derive(Debug, thiserror::Error)]
pub enum IniError {
    /// The file or directory could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not INI syntax.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the INI reader said.
        message: String,
    },
    /// An option outside any `[section]` (oslo.config refuses them too).
    #[error("{}:{line}: option {name} is not in a section: put it under [DEFAULT] or [wasmrpc]", path.display())]
    NoSection {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The option.
        name: String,
    },
    /// An unknown option in a section wasmrpc reads whole, or a value that does not fit.
    #[error("{}:{line}: [{section}] {name}: {}", path.display(), explain(problem))]
    Option {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The section.
        section: String,
        /// The option.
        name: String,
        /// What is wrong.
        problem: OptionProblem,
    },
}

fn explain(problem: &OptionProblem) -> String {
    match problem {
        OptionProblem::Unknown => "no such option; docs/configuration.md lists them".to_owned(),
        OptionProblem::Invalid(why) => why.clone(),
    }
}

/// The `*.conf` files of a `--config-dir`, in name order (oslo.config's order).
pub fn files_in_dir(dir: &Path) -> Result<Vec<PathBuf>, IniError> {
    let read = |source| IniError::Read { path: dir.to_owned(), source };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read)? {
        let path = entry.map_err(read)?.path();
        if path.extension().is_some_and(|e| e == "conf") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads an INI file over `config`.
pub fn read_file(config: &mut HostConfig, path: &Path) -> Result<(), IniError> {
    let text = std::fs::read_to_string(path).map_err(|source| IniError::Read { path: path.to_owned(), source })?;
    apply(config, &text, path)
}

/// Applies an INI file's text (read from `path`) over `config`.
pub fn apply(config: &mut HostConfig, text: &str, path: &Path) -> Result<(), IniError> {
    // oslo.config's parser: no backslash escapes (a password may hold one), indented lines
    // continue a value; quotes are stripped below, only when they enclose the whole value.
    let options = ParseOption {
        enabled_quote: false,
        enabled_escape: false,
        enabled_indented_mutiline_value: true,
        enabled_preserve_key_leading_whitespace: false,
    };
    let ini = Ini::load_from_str_opt(text, options).map_err(|e| IniError::Syntax {
        path: path.to_owned(),
        line: e.line,
        column: e.col,
        message: e.msg.into_owned(),
    })?;
    let file = File { path, lines: KeyLines::new(text), base: path.parent().unwrap_or(Path::new(".")) };
    let mut entries: Vec<(&str, &str, &str)> = Vec::new();
    for (section, properties) in ini.iter() {
        for (key, value) in properties.iter() {
            match section {
                None => {
                    return Err(IniError::NoSection {
                        path: path.to_owned(),
                        line: file.lines.line(None, key),
                        name: key.to_owned(),
                    });
                }
                Some(section) => entries.push((section, key, value)),
            }
        }
    }
    // [DEFAULT] first: a wasmrpc section of the same file is more specific.
    entries.sort_by_key(|(section, _, _)| *section != "DEFAULT");
    let mut drivers: Option<Vec<NotificationDriver>> = None;
    for (section, key, value) in entries {
        let value = unquote(value);
        let outcome = match (section, key) {
            ("DEFAULT", "host") => text_options::set_wasmrpc(config, "server", value, file.base),
            (
                "DEFAULT",
                "transport_url"
                | "control_exchange"
                | "executor_thread_pool_size"
                | "rpc_response_timeout"
                | "rpc_ping_enabled",
            ) => text_options::set_wasmrpc(config, key, value, file.base),
            ("DEFAULT", "notification_driver") | ("oslo_messaging_notifications", "driver") => {
                add_drivers(drivers.get_or_insert_default(), value)
            }
            ("DEFAULT", "notification_topics") => text_options::set_notification(config, "topics", value),
            ("DEFAULT", "notification_transport_url") => text_options::set_notification(config, "transport_url", value),
            ("DEFAULT", _) => Ok(()),
            ("wasmrpc", _) => text_options::set_wasmrpc(config, key, value, file.base),
            ("oslo_messaging_rabbit", _) => text_options::set_rabbit(config, key, value),
            // oslo's notifier retries (`retry`, default forever); wasmrpc's publishes confirmed
            // and reports a failure at once.
            ("oslo_messaging_notifications", "retry") => Ok(()),
            ("oslo_messaging_notifications", _) => text_options::set_notification(config, key, value),
            _ => Ok(()),
        };
        outcome.map_err(|problem| file.error(section, key, problem))?;
    }
    if let Some(drivers) = drivers {
        config.notifications.drivers = drivers;
    }
    Ok(())
}

/// `driver` lines add up, as oslo's multi-valued option does.
fn add_drivers(drivers: &mut Vec<NotificationDriver>, value: &str) -> Result<(), OptionProblem> {
    for name in parse_list(value) {
        drivers.push(name.parse().map_err(|e| OptionProblem::Invalid(format!("{e}")))?);
    }
    Ok(())
}

/// oslo.config strips quotes that enclose the whole value.
fn unquote(value: &str) -> &str {
    let v = value.trim();
    for q in ['"', '\''] {
        if v.len() >= 2
            && let Some(inner) = v.strip_prefix(q).and_then(|v| v.strip_suffix(q))
        {
            return inner;
        }
    }
    v
}

struct File<'a> {
    path: &'a Path,
    lines: KeyLines,
    base: &'a Path,
}

impl File<'_> {
    fn error(&self, section: &str, key: &str, problem: OptionProblem) -> IniError {
        IniError::Option {
            path: self.path.to_owned(),
            line: self.lines.line(Some(section), key),
            section: section.to_owned(),
            name: key.to_owned(),
            problem,
        }
    }
}

/// Where each option is written (rust-ini does not say): `(section, key)` to the lines that set
/// it, in order.
struct KeyLines(HashMap<(Option<String>, String), Vec<usize>>);

impl KeyLines {
    fn new(text: &str) -> KeyLines {
        let mut lines: HashMap<(Option<String>, String), Vec<usize>> = HashMap::new();
        let mut section = None;
        for (i, line) in text.lines().enumerate() {
            // An indented line continues the value above.
            if line.starts_with([' ', '\t']) {
                continue;
            }
            let line = line.trim();
            if line.is_empty() || line.starts_with(['#', ';']) {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.split_once(']')).map(|(name, _)| name) {
                section = Some(name.trim().to_owned());
            } else if let Some(end) = line.find(['=', ':']) {
                lines.entry((section.clone(), line[..end].trim().to_owned())).or_default().push(i + 1);
            }
        }
        KeyLines(lines)
    }

    /// The last line setting `key` (the one in effect), or 1 if it cannot be found.
    fn line(&self, section: Option<&str>, key: &str) -> usize {
        self.0.get(&(section.map(str::to_owned), key.to_owned())).and_then(|lines| lines.last()).copied().unwrap_or(1)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn read(text: &str) -> Result<HostConfig, IniError> {
        let mut c = HostConfig::new();
        apply(&mut c, text, Path::new("/etc/nova/nova.conf")).map(|()| c)
    }

    /// A nova.conf as deployed: options wasmrpc reads among many it does not.
    const NOVA_CONF: &str = "\
# nova.conf
[DEFAULT]
debug = True
state_path = /var/lib/nova
host = compute-1
transport_url = rabbit://nova:s3cret@10.0.0.5:5672,nova:s3cret@10.0.0.6:5672/nova
control_exchange = nova
executor_thread_pool_size = 32
rpc_response_timeout = 180
my_ip = 10.0.0.21

[api]
auth_strategy = keystone

[database]
connection = mysql+pymysql://nova:pw@db/nova

[oslo_messaging_rabbit]
rabbit_quorum_queue = true
heartbeat_timeout_threshold = 30
ssl = False

[oslo_messaging_notifications]
driver = messagingv2
driver = log
topics = notifications, versioned_notifications
transport_url = rabbit://notify:pw@10.0.0.7:5672/

[wasmrpc]
manifests = wasmrpc.d
";

    #[test]
    fn a_nova_conf_is_read_and_its_other_options_skipped() {
        let c = read(NOVA_CONF).unwrap();
        assert_eq!(c.server, "compute-1");
        assert_eq!(c.transport_url.to_string(), "rabbit://nova:****@10.0.0.5:5672,nova:****@10.0.0.6:5672/nova");
        assert_eq!(c.transport_url.hosts[0].password.as_deref(), Some("s3cret"));
        assert_eq!((c.control_exchange.as_str(), c.executor_size), ("nova", 32));
        assert_eq!(c.rpc_response_timeout, Duration::from_secs(180));
        let rabbit: Vec<(&str, &str)> = c.rabbit_options.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(rabbit, [("rabbit_quorum_queue", "true"), ("heartbeat_timeout_threshold", "30"), ("ssl", "False")]);
        assert_eq!(c.notifications.drivers, [NotificationDriver::MessagingV2, NotificationDriver::Log]);
        assert_eq!(c.notifications.topics, ["notifications", "versioned_notifications"]);
        let n = c.notifications.transport_url.unwrap();
        assert_eq!(n.to_string(), "rabbit://notify:****@10.0.0.7:5672/");
        assert_eq!(c.manifests, Path::new("/etc/nova/wasmrpc.d"), "relative to the file");
    }

    #[test]
    fn unknown_options_in_wasmrpc_sections_are_errors_naming_file_and_line() {
        for (text, line, section, name) in [
            ("[DEFAULT]\nfoo = 1\n\n[wasmrpc]\nwatch = true\nwatchh = true\n", 6, "wasmrpc", "watchh"),
            (
                "[oslo_messaging_rabbit]\n# quorum\nrabbit_quorum_queu = true\n",
                3,
                "oslo_messaging_rabbit",
                "rabbit_quorum_queu",
            ),
            (
                "[api]\nx = 1\n[oslo_messaging_notifications]\n  \ntopic = n\n",
                5,
                "oslo_messaging_notifications",
                "topic",
            ),
        ] {
            let e = read(text).unwrap_err();
            assert!(
                matches!(&e, IniError::Option { line: l, section: s, name: n, problem: OptionProblem::Unknown, .. }
                    if *l == line && s == section && n == name),
                "{e:?}"
            );
            let shown = e.to_string();
            assert!(
                shown.starts_with(&format!("/etc/nova/nova.conf:{line}: [{section}] {name}: no such option")),
                "{shown}"
            );
        }
    }

    #[test]
    fn bad_values_are_located_and_never_show_the_url() {
        let e = read("[DEFAULT]\nexecutor_thread_pool_size = lots\n").unwrap_err().to_string();
        assert!(e.starts_with("/etc/nova/nova.conf:2: [DEFAULT] executor_thread_pool_size: expected"), "{e}");
        let e = read("[DEFAULT]\n\ntransport_url = amqp://u:s3cret@h/\n").unwrap_err().to_string();
        assert!(e.starts_with("/etc/nova/nova.conf:3: [DEFAULT] transport_url: ") && !e.contains("s3cret"), "{e}");
        let e = read("[oslo_messaging_notifications]\ndriver = messagingv2\ndriver = smoke\n").unwrap_err().to_string();
        assert!(e.starts_with("/etc/nova/nova.conf:3: ") && e.contains("smoke"), "{e}");
        let e = read("watch = true\n[wasmrpc]\n").unwrap_err().to_string();
        assert!(e.starts_with("/etc/nova/nova.conf:1: option watch is not in a section"), "{e}");
        let e = read("[wasmrpc\nwatch = true\n");
        assert!(matches!(e, Err(IniError::Syntax { .. })), "{e:?}");
    }

    #[test]
    fn oslo_value_syntax() {
        let c = read(
            "[wasmrpc]\nwatch = NO\nallow_remote_stop = Yes\nrpc_ping_enabled = 1\ncontrol_topic = \"ctl\"\n\
             [oslo_messaging_notifications]\ntopics = a,\n  b\n",
        )
        .unwrap();
        assert!(!c.watch && c.allow_remote_stop && c.rpc_ping_enabled);
        assert_eq!(c.control_topic, "ctl", "enclosing quotes are stripped");
        assert_eq!(c.notifications.topics, ["a", "b"], "a list continues on an indented line");
        let c = read("[DEFAULT]\ntransport_url = rabbit://u:p\\w@h/\n").unwrap();
        assert_eq!(c.transport_url.hosts[0].password.as_deref(), Some("p\\w"), "no backslash escapes");
    }

    #[test]
    fn the_wasmrpc_section_wins_over_default_and_later_files_win() {
        let c = read("[wasmrpc]\ncontrol_exchange = mine\n[DEFAULT]\ncontrol_exchange = nova\n").unwrap();
        assert_eq!(c.control_exchange, "mine");
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.conf"), dir.path().join("b.conf"));
        std::fs::write(&a, "[DEFAULT]\ncontrol_exchange = first\nexecutor_thread_pool_size = 3\n").unwrap();
        std::fs::write(&b, "[DEFAULT]\ncontrol_exchange = second\n").unwrap();
        std::fs::write(dir.path().join("c.txt"), "not read").unwrap();
        let files = files_in_dir(dir.path()).unwrap();
        assert_eq!(files, [a.clone(), b.clone()], "*.conf in name order");
        let mut c = HostConfig::new();
        for f in &files {
            read_file(&mut c, f).unwrap();
        }
        assert_eq!((c.control_exchange.as_str(), c.executor_size), ("second", 3), "later wins per option");
        let e = read_file(&mut c, &dir.path().join("missing.conf")).unwrap_err().to_string();
        assert!(e.contains("missing.conf: cannot read"), "{e}");
        assert!(files_in_dir(&dir.path().join("nodir")).is_err());
    }
}
