//! A loaded plugin as a notification listener endpoint.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::manifest::{EndpointSpec, ListenerSpec};
use crate::notification::{Delivered, Handled, ListenerOptions, NotificationEndpoint, NotificationFilter};
use crate::protocol::PRIORITIES;
use crate::runtime::Plugin;

/// A manifest's `[listener]` module.
#[derive(Debug)]
pub struct WasmListener {
    spec: Arc<EndpointSpec>,
    plugin: Plugin,
    priorities: Vec<String>,
    filter: Option<NotificationFilter>,
}

impl WasmListener {
    /// Wraps a loaded plugin for a listener manifest; fails if a filter pattern does not compile.
    pub fn new(spec: Arc<EndpointSpec>, listener: &ListenerSpec, plugin: Plugin) -> Result<WasmListener, regex::Error> {
        let priorities = match &listener.priorities {
            Some(p) => p.clone(),
            None => PRIORITIES.iter().filter(|p| plugin.has_method(p)).map(|p| (*p).to_owned()).collect(),
        };
        let filter = listener.filter.as_ref().map(NotificationFilter::new).transpose()?;
        Ok(WasmListener { spec, plugin, priorities, filter })
    }

    /// The loaded module.
    #[must_use]
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// Where and how to listen.
    #[must_use]
    pub fn options(&self, listener: &ListenerSpec, executor_size: usize) -> ListenerOptions {
        ListenerOptions {
            targets: listener
                .targets
                .iter()
                .map(|(exchange, topic)| crate::protocol::NotificationTarget {
                    exchange: exchange.clone(),
                    topic: topic.clone(),
                })
                .collect(),
            priorities: self.priorities.clone(),
            pool: listener.pool.clone(),
            allow_requeue: listener.allow_requeue,
            executor_size,
        }
    }
}

#[async_trait::async_trait]
impl NotificationEndpoint for WasmListener {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn handles(&self, priority: &str) -> bool {
        self.priorities.iter().any(|p| p == priority) && self.plugin.has_method(priority)
    }

    fn filter(&self) -> Option<&NotificationFilter> {
        self.filter.as_ref()
    }

    async fn handle(&self, n: Delivered) -> Result<Handled, Box<dyn std::error::Error + Send + Sync>> {
        let mut args = Map::new();
        args.insert("publisher_id".into(), Value::String(n.publisher_id));
        args.insert("event_type".into(), Value::String(n.event_type));
        args.insert("payload".into(), n.payload);
        args.insert("metadata".into(), Value::Object(n.metadata));
        match self.plugin.call(&n.priority, &args, &n.ctx, None).await {
            Ok(Value::String(s)) if s == "requeue" => Ok(Handled::Requeue),
            Ok(_) => Ok(Handled::Handled),
            // A trap or a guest error counts as requeue, as an exception does in oslo.
            Err(e) => Err(e.into()),
        }
    }
}
