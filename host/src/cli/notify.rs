//! `wasmrpc notify`: publish a notification, as oslo's `Notifier` does.

use std::process::ExitCode;

use crate::notification::{NotificationDriver, Notifier};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The event type, e.g. compute.instance.create.
    event_type: String,
    /// The payload as JSON (default: {}).
    payload: Option<String>,
    /// audit, debug, info, warn, error, critical or sample.
    #[arg(long, default_value = "info")]
    priority: String,
    /// The publisher id [default: the configuration's publisher_id, else wasmrpc.cli].
    #[arg(long)]
    publisher_id: Option<String>,
    /// Topic to publish to (repeatable) [default: the configuration's topics, else notifications].
    #[arg(long = "topic", value_name = "TOPIC")]
    topics: Vec<String>,
    /// messagingv2 (2.0 envelope), messaging (v1, no envelope), log or noop [default: the
    /// configuration's drivers, else messagingv2].
    #[arg(long)]
    driver: Option<String>,
    /// The request context as a JSON object.
    #[arg(long, value_name = "JSON")]
    context: Option<String>,
    #[command(flatten)]
    config: super::config::ConfigArgs,
}

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let payload: serde_json::Value = match &a.payload {
        Some(text) => {
            serde_json::from_str(text).map_err(|e| anyhow::anyhow!("PAYLOAD is not valid JSON ({e}): {text}"))?
        }
        None => serde_json::json!({}),
    };
    let context = a.context.as_deref().map(|c| super::json_object("--context", Some(c))).transpose()?;
    let config = a.config.load()?;
    let drivers = match &a.driver {
        Some(d) => vec![d.parse::<NotificationDriver>().map_err(anyhow::Error::msg)?],
        None if config.notifications.drivers.is_empty() => vec![NotificationDriver::MessagingV2],
        None => config.notifications.drivers.clone(),
    };
    let topics = if a.topics.is_empty() { config.notifications.topics.clone() } else { a.topics };
    let publisher_id =
        a.publisher_id.or_else(|| config.notifications.publisher_id.clone()).unwrap_or_else(|| "wasmrpc.cli".into());
    let transport = super::config::connect_notifications(&a.config, &config).await?;
    let notifier = Notifier::new(transport.clone(), &publisher_id, drivers, topics);
    let sent = notifier.notify(context.as_ref(), &a.event_type, &a.priority, payload).await;
    transport.close().await;
    sent?;
    Ok(ExitCode::SUCCESS)
}
