//! The configuration every command reads (`serve`, `call`, `cast`, `notify`, `listen`), layered,
//! each layer overriding the one before it per option:
//!
//! 1. the defaults;
//! 2. `wasmrpc.toml` (`--config`, else `./wasmrpc.toml` if it exists);
//! 3. oslo.config INI files (`--config-file`, repeatable, in order);
//! 4. `*.conf` in each `--config-dir`, in name order (as oslo.config reads them);
//! 5. `WASMRPC_*` environment variables: `WASMRPC_<NAME>` for each `wasmrpc.toml` option
//!    (`WASMRPC_EXECUTOR_THREAD_POOL_SIZE`, `WASMRPC_MAX_MEMORY`...), `WASMRPC_NOTIFICATIONS_<NAME>`
//!    for `[notifications]`, `WASMRPC_<OPTION>` for an `[oslo_messaging_rabbit]` option
//!    (`WASMRPC_RABBIT_QUORUM_QUEUE`);
//! 6. the command's flags.
//!
//! So TLS, quorum queues and the control exchange are written once, in the file the Python
//! services read too, and every command uses them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::host::text_options::{self, NOTIFICATION_OPTIONS, OptionProblem, WASMRPC_OPTIONS};
use crate::host::{HostConfig, oslo_ini};
use crate::protocol::TransportUrl;
use crate::transport::{self, RabbitOptions, Transport};

/// Where the configuration comes from (flattened into each command's flags).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArgs {
    /// wasmrpc.toml [default: wasmrpc.toml, if it exists].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// An oslo.config INI file such as nova.conf (repeatable; later files win).
    #[arg(long = "config-file", value_name = "FILE")]
    pub config_files: Vec<PathBuf>,
    /// A directory of oslo.config *.conf files, read in name order after --config-file (repeatable).
    #[arg(long = "config-dir", value_name = "DIR")]
    pub config_dirs: Vec<PathBuf>,
    /// Broker URL, e.g. rabbit://user:pass@host:5672/ or memory:// [default: rabbit://guest:guest@127.0.0.1:5672/].
    #[arg(long = "transport", env = "WASMRPC_TRANSPORT_URL", value_name = "URL", hide_env_values = true)]
    pub transport: Option<String>,
    /// oslo's control_exchange [default: openstack].
    #[arg(long, value_name = "NAME")]
    pub control_exchange: Option<String>,
}

/// A `WASMRPC_*` variable that cannot be used. Names the variable, never its value.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// Not UTF-8.
    #[error("environment variable {var}: not UTF-8")]
    NotUnicode {
        /// The variable.
        var: String,
    },
    /// A value that does not fit its option.
    #[error("environment variable {var}: {why}")]
    Invalid {
        /// The variable.
        var: String,
        /// What is wrong.
        why: String,
    },
}

impl ConfigArgs {
    /// The configuration, every layer applied (see the module documentation).
    pub fn load(&self) -> anyhow::Result<HostConfig> {
        self.load_with(std::env::vars_os())
    }

    /// [`ConfigArgs::load`] with these environment variables.
    fn load_with(
        &self,
        vars: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
    ) -> anyhow::Result<HostConfig> {
        let mut config = match &self.config {
            Some(path) => HostConfig::from_file(path)?,
            None if Path::new("wasmrpc.toml").is_file() => HostConfig::from_file("wasmrpc.toml".as_ref())?,
            None => HostConfig::new(),
        };
        for file in &self.config_files {
            oslo_ini::read_file(&mut config, file)?;
        }
        for dir in &self.config_dirs {
            for file in oslo_ini::files_in_dir(dir)? {
                oslo_ini::read_file(&mut config, &file)?;
            }
        }
        apply_env(&mut config, vars)?;
        // clap reads WASMRPC_TRANSPORT_URL into --transport too; same value, same place.
        if let Some(url) = &self.transport {
            config.transport_url = TransportUrl::parse(url)?;
        }
        if let Some(v) = &self.control_exchange {
            config.control_exchange.clone_from(v);
        }
        Ok(config)
    }
}

/// Connects the configuration's RPC transport, with its control exchange and rabbit options.
pub async fn connect(config: &HostConfig) -> anyhow::Result<Arc<dyn Transport>> {
    connect_to(config, &config.transport_url).await
}

/// Connects the transport `notify` and `listen` use: `--transport` (or `WASMRPC_TRANSPORT_URL`)
/// when given, as the command's one broker; else the notification `transport_url`, else the RPC
/// one, as oslo's `get_notification_transport` picks.
pub async fn connect_notifications(args: &ConfigArgs, config: &HostConfig) -> anyhow::Result<Arc<dyn Transport>> {
    match (&args.transport, &config.notifications.transport_url) {
        (None, Some(url)) => connect_to(config, url).await,
        _ => connect(config).await,
    }
}

/// Connects to `url` with the configuration's control exchange and rabbit options.
pub async fn connect_to(config: &HostConfig, url: &TransportUrl) -> anyhow::Result<Arc<dyn Transport>> {
    Ok(transport::connect(url, config.transport_options()).await?)
}

/// Applies the `WASMRPC_*` variables among `vars`, in name order; others (`WASMRPC_LOG`, a
/// test's own) are left alone.
fn apply_env(
    config: &mut HostConfig,
    vars: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Result<(), EnvError> {
    let mut ours: Vec<(String, std::ffi::OsString)> = vars
        .into_iter()
        .filter_map(|(k, v)| k.into_string().ok().filter(|k| k.starts_with("WASMRPC_")).map(|k| (k, v)))
        .collect();
    ours.sort();
    let cwd = Path::new(".");
    for (var, value) in ours {
        let name = var["WASMRPC_".len()..].to_ascii_lowercase();
        let notification = name.strip_prefix("notifications_").filter(|n| NOTIFICATION_OPTIONS.contains(n));
        let rabbit = || !matches!(RabbitOptions::check(&name, ""), Err(transport::OptionError::Unknown(_)));
        if !WASMRPC_OPTIONS.contains(&name.as_str()) && notification.is_none() && !rabbit() {
            continue;
        }
        let value = value.into_string().map_err(|_| EnvError::NotUnicode { var: var.clone() })?;
        let outcome = match notification {
            Some(n) => text_options::set_notification(config, n, &value),
            None if WASMRPC_OPTIONS.contains(&name.as_str()) => text_options::set_wasmrpc(config, &name, &value, cwd),
            None => text_options::set_rabbit(config, &name, &value),
        };
        outcome.map_err(|problem| EnvError::Invalid {
            var: var.clone(),
            why: match problem {
                OptionProblem::Unknown => "no such option".into(),
                OptionProblem::Invalid(why) => why,
            },
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Result<HostConfig, EnvError> {
        let mut c = HostConfig::new();
        apply_env(&mut c, pairs.iter().map(|(k, v)| ((*k).into(), (*v).into()))).map(|()| c)
    }

    #[test]
    fn wasmrpc_variables_set_every_kind_of_option() {
        let c = env(&[
            ("WASMRPC_EXECUTOR_THREAD_POOL_SIZE", "5"),
            ("WASMRPC_DRAIN_TIMEOUT", "2s"),
            ("WASMRPC_RPC_RESPONSE_TIMEOUT", "9"),
            ("WASMRPC_MAX_MEMORY", "64MiB"),
            ("WASMRPC_NOTIFICATIONS_DRIVER", "messagingv2"),
            ("WASMRPC_RABBIT_QUORUM_QUEUE", "true"),
            ("WASMRPC_TEST_RABBIT_URL", "not ours: ignored"),
            ("PATH", "/bin"),
        ])
        .unwrap();
        assert_eq!((c.executor_size, c.drain_timeout), (5, Duration::from_secs(2)));
        assert_eq!((c.rpc_response_timeout, c.runtime.max_memory), (Duration::from_secs(9), 64 << 20));
        assert_eq!(c.notifications.drivers, [crate::notification::NotificationDriver::MessagingV2]);
        assert_eq!(c.rabbit_options, [("rabbit_quorum_queue".to_owned(), "true".to_owned())]);
    }

    #[test]
    fn an_invalid_value_names_the_variable_and_not_the_value() {
        let e = env(&[("WASMRPC_EXECUTOR_THREAD_POOL_SIZE", "lots")]).unwrap_err().to_string();
        assert!(e.starts_with("environment variable WASMRPC_EXECUTOR_THREAD_POOL_SIZE: expected"), "{e}");
        let e = env(&[("WASMRPC_TRANSPORT_URL", "amqp://u:s3cret@h/")]).unwrap_err().to_string();
        assert!(e.starts_with("environment variable WASMRPC_TRANSPORT_URL: ") && !e.contains("s3cret"), "{e}");
    }

    #[test]
    fn layers_apply_in_order_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let toml = dir.path().join("wasmrpc.toml");
        std::fs::write(&toml, "control_exchange = \"toml\"\nexecutor_thread_pool_size = 2\ncontrol_topic = \"t\"\n")
            .unwrap();
        let ini = dir.path().join("nova.conf");
        std::fs::write(&ini, "[DEFAULT]\ncontrol_exchange = ini\nexecutor_thread_pool_size = 3\n").unwrap();
        let conf_d = dir.path().join("conf.d");
        std::fs::create_dir(&conf_d).unwrap();
        std::fs::write(conf_d.join("10.conf"), "[DEFAULT]\nexecutor_thread_pool_size = 4\n").unwrap();
        let args = ConfigArgs {
            config: Some(toml),
            config_files: vec![ini],
            config_dirs: vec![conf_d],
            transport: None,
            control_exchange: Some("flag".into()),
        };
        let vars = [("WASMRPC_EXECUTOR_THREAD_POOL_SIZE".into(), "5".into())];
        assert_eq!(args.load_with(vars).unwrap().executor_size, 5, "the environment after the files");
        let c = args.load_with([]).unwrap();
        assert_eq!(c.control_topic, "t", "from wasmrpc.toml");
        assert_eq!(c.executor_size, 4, "the config dir after the INI file after wasmrpc.toml");
        assert_eq!(c.control_exchange, "flag");
    }
}
