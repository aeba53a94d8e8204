//! `wasmrpc notify`: publish a notification, as oslo's `Notifier` does.

use std::process::ExitCode;

use crate::notification::{NotificationDriver, Notifier};
use crate::protocol::TransportUrl;
use crate::transport::{self, TransportOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The event type, e.g. compute.instance.create.
    event_type: String,
    /// The payload as JSON (default: {}).
    payload: Option<String>,
    /// audit, debug, info, warn, error, critical or sample.
    #[arg(long, default_value = "info")]
    priority: String,
    /// The publisher id.
    #[arg(long, default_value = "wasmrpc.cli")]
    publisher_id: String,
    /// Topic to publish to (repeatable) [default: notifications].
    #[arg(long = "topic", value_name = "TOPIC")]
    topics: Vec<String>,
    /// messagingv2 (2.0 envelope), messaging (v1, no envelope), log or noop.
    #[arg(long, default_value = "messagingv2")]
    driver: String,
    /// The request context as a JSON object.
    #[arg(long, value_name = "JSON")]
    context: Option<String>,
    /// Broker URL [default: rabbit://guest:guest@127.0.0.1:5672/].
    #[arg(long = "transport", env = "WASMRPC_TRANSPORT_URL", value_name = "URL", hide_env_values = true)]
    transport: Option<String>,
    /// oslo's control_exchange (where notifications go).
    #[arg(long, value_name = "NAME", default_value = "openstack")]
    control_exchange: String,
}

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let payload: serde_json::Value = match &a.payload {
        Some(text) => {
            serde_json::from_str(text).map_err(|e| anyhow::anyhow!("PAYLOAD is not valid JSON ({e}): {text}"))?
        }
        None => serde_json::json!({}),
    };
    let context = a.context.as_deref().map(|c| super::json_object("--context", Some(c))).transpose()?;
    let driver: NotificationDriver = a.driver.parse().map_err(anyhow::Error::msg)?;
    let url = TransportUrl::parse(a.transport.as_deref().unwrap_or(crate::host::DEFAULT_TRANSPORT_URL))?;
    let transport = transport::connect(
        &url,
        TransportOptions { control_exchange: a.control_exchange, ..TransportOptions::default() },
    )
    .await?;
    let notifier = Notifier::new(transport.clone(), &a.publisher_id, vec![driver], a.topics);
    let sent = notifier.notify(context.as_ref(), &a.event_type, &a.priority, payload).await;
    transport.close().await;
    sent?;
    Ok(ExitCode::SUCCESS)
}
