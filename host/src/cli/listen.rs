//! `wasmrpc listen`: print notifications as they arrive, one per line (or JSON with `--json`).

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::notification::{
    Delivered, Handled, ListenerOptions, NotificationEndpoint, NotificationFilter, NotificationListener,
};
use crate::protocol::PRIORITIES;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Topic to listen to (repeatable) [default: the configuration's topics, else notifications].
    #[arg(long = "topic", value_name = "TOPIC")]
    topics: Vec<String>,
    /// Priority to listen to (repeatable) [default: all of them].
    #[arg(long = "priority", value_name = "PRIORITY")]
    priorities: Vec<String>,
    /// Listen in this pool (one queue per pool; listeners in a pool share messages).
    #[arg(long)]
    pool: Option<String>,
    /// The exchange [default: the control exchange].
    #[arg(long)]
    exchange: Option<String>,
    /// One JSON object per notification instead of a readable line.
    #[arg(long)]
    json: bool,
    /// Exit after this many notifications.
    #[arg(long, value_name = "N")]
    count: Option<usize>,
    #[command(flatten)]
    config: super::config::ConfigArgs,
}

#[derive(Debug)]
struct Printer {
    json: bool,
    seen: AtomicUsize,
    limit: Option<usize>,
    done: Notify,
}

#[async_trait::async_trait]
impl NotificationEndpoint for Printer {
    fn name(&self) -> &str {
        "wasmrpc listen"
    }

    fn handles(&self, _priority: &str) -> bool {
        true
    }

    fn filter(&self) -> Option<&NotificationFilter> {
        None
    }

    async fn handle(&self, n: Delivered) -> Result<Handled, Box<dyn std::error::Error + Send + Sync>> {
        let line = if self.json {
            json!({"priority": n.priority, "publisher_id": n.publisher_id, "event_type": n.event_type, "payload": n.payload, "ctxt": n.ctx, "metadata": n.metadata}).to_string()
        } else {
            let ts = n.metadata.get("timestamp").and_then(Value::as_str).unwrap_or("-");
            format!("{ts} {} {} {} {}", n.priority.to_uppercase(), n.publisher_id, n.event_type, n.payload)
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
        let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        if self.limit.is_some_and(|limit| n >= limit) {
            self.done.notify_one();
        }
        Ok(Handled::Handled)
    }
}

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let config = a.config.load()?;
    let transport = super::config::connect_notifications(&a.config, &config).await?;
    let topics = match (a.topics.is_empty(), config.notifications.topics.is_empty()) {
        (false, _) => a.topics,
        (true, false) => config.notifications.topics.clone(),
        (true, true) => vec!["notifications".to_owned()],
    };
    let priorities: Vec<String> = if a.priorities.is_empty() {
        PRIORITIES.iter().map(|p| (*p).to_owned()).collect()
    } else {
        a.priorities.iter().map(|p| p.to_lowercase()).collect()
    };
    if let Some(bad) = priorities.iter().find(|p| !PRIORITIES.contains(&p.as_str())) {
        anyhow::bail!("unknown priority {bad:?}: use audit, debug, info, warn, error, critical or sample");
    }
    let options = ListenerOptions {
        targets: topics
            .into_iter()
            .map(|topic| crate::protocol::NotificationTarget { exchange: a.exchange.clone(), topic })
            .collect(),
        priorities,
        pool: a.pool,
        allow_requeue: false,
        // One at a time, so lines come out in arrival order.
        executor_size: 1,
    };
    let printer = Arc::new(Printer { json: a.json, seen: AtomicUsize::new(0), limit: a.count, done: Notify::new() });
    let listener = NotificationListener::start(&transport, options, printer.clone()).await?;
    eprintln!("listening; Ctrl-C to stop");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = printer.done.notified() => {}
    }
    listener.stop(std::time::Duration::from_secs(2)).await;
    transport.close().await;
    Ok(ExitCode::SUCCESS)
}
