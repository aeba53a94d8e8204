//! oslo.messaging's `Target`: where a message goes and what it may be answered by.

use std::fmt;

use super::version::Version;

/// exchange, topic, namespace, version, server and fanout, as in `oslo_messaging.Target`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Target {
    /// The exchange; `None` means the transport's control exchange.
    pub exchange: Option<String>,
    /// The topic.
    pub topic: String,
    /// The endpoint namespace the request is meant for.
    pub namespace: Option<String>,
    /// The API version requested.
    pub version: Option<Version>,
    /// A specific server (routing key `topic.server`).
    pub server: Option<String>,
    /// Every server listening on the topic (casts only).
    pub fanout: bool,
}

impl Target {
    /// A target for `topic`.
    #[must_use]
    pub fn topic(topic: impl Into<String>) -> Target {
        Target { topic: topic.into(), ..Target::default() }
    }

    /// With an exchange.
    #[must_use]
    pub fn with_exchange(mut self, exchange: impl Into<String>) -> Target {
        self.exchange = Some(exchange.into());
        self
    }

    /// With a namespace.
    #[must_use]
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Target {
        self.namespace = Some(namespace.into());
        self
    }

    /// With a version.
    #[must_use]
    pub fn with_version(mut self, version: Version) -> Target {
        self.version = Some(version);
        self
    }

    /// Directed at one server.
    #[must_use]
    pub fn with_server(mut self, server: impl Into<String>) -> Target {
        self.server = Some(server.into());
        self
    }

    /// To every server on the topic.
    #[must_use]
    pub fn with_fanout(mut self, fanout: bool) -> Target {
        self.fanout = fanout;
        self
    }

    /// The routing key of a topic send: `topic` or `topic.server`.
    #[must_use]
    pub fn routing_key(&self) -> std::borrow::Cow<'_, str> {
        match &self.server {
            Some(server) => format!("{}.{server}", self.topic).into(),
            None => self.topic.as_str().into(),
        }
    }

    /// The exchange a fanout send goes to; fanout ignores `exchange` (oslo's rule).
    #[must_use]
    pub fn fanout_exchange(&self) -> String {
        format!("{}_fanout", self.topic)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Target topic={}", self.topic)?;
        if let Some(e) = &self.exchange {
            write!(f, ", exchange={e}")?;
        }
        if let Some(s) = &self.server {
            write!(f, ", server={s}")?;
        }
        if let Some(n) = &self.namespace {
            write!(f, ", namespace={n}")?;
        }
        if let Some(v) = &self.version {
            write!(f, ", version={v}")?;
        }
        if self.fanout {
            f.write_str(", fanout=True")?;
        }
        f.write_str(">")
    }
}

/// What an RPC server listens on: its topic, its server name, and the exchange.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenTarget {
    /// `None` means the control exchange.
    pub exchange: Option<String>,
    /// The topic.
    pub topic: String,
    /// The server name (`topic.server` queue and the fanout queue belong to it).
    pub server: String,
}

/// What a notification listener listens on: a topic, and the exchange its notifications are
/// published to (oslo passes a `Target` with only these two set).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NotificationTarget {
    /// `None` means the control exchange.
    pub exchange: Option<String>,
    /// The topic (queues `<topic>.<priority>`).
    pub topic: String,
}

impl fmt::Display for ListenTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "topic {} server {}", self.topic, self.server)?;
        if let Some(e) = &self.exchange {
            write!(f, " exchange {e}")?;
        }
        Ok(())
    }
}
