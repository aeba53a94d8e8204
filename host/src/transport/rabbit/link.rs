//! Connections that survive: every broker host in the URL, failover in oslo's order, AMQP
//! heartbeats, TLS, and reconnection with oslo's backoff (`rabbit_retry_interval`, growing by
//! `rabbit_retry_backoff` per failed round, capped at `rabbit_interval_max`).

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo, SASLMechanism};
use lapin::{Connection, ConnectionProperties};
use tokio_util::sync::CancellationToken;

use super::options::{FailoverStrategy, RabbitOptions};
use crate::protocol::TransportUrl;
use crate::transport::{ErrorKind, TransportError, TransportHealth};

/// How long one connection attempt may take before the next host is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One broker address.
struct Broker {
    uri: AMQPUri,
    /// `host:port`, for logs (never the credentials).
    display: String,
}

/// Knows the brokers and how to connect to one.
pub(super) struct Connector {
    brokers: Vec<Broker>,
    options: RabbitOptions,
    tls: Option<OwnedTLSConfig>,
    connection_name: String,
}

impl Connector {
    pub(super) fn new(url: &TransportUrl, options: &RabbitOptions) -> Result<Connector, TransportError> {
        let config = |m: String| TransportError::new(ErrorKind::Config, m);
        let mechanism = match options.rabbit_login_method.as_str() {
            "PLAIN" => SASLMechanism::Plain,
            "EXTERNAL" => SASLMechanism::External,
            _ => SASLMechanism::AMQPlain,
        };
        // oslo: an empty virtual host (`rabbit://h/`) and none at all both mean the default `/`.
        let vhost = match url.virtual_host.as_deref() {
            None | Some("") => "/".to_owned(),
            Some(v) => v.to_owned(),
        };
        let mut hosts = url.hosts.clone();
        if hosts.is_empty() {
            // `rabbit://` alone: oslo connects to guest:guest@localhost:5672.
            hosts.push(crate::protocol::TransportHost {
                hostname: "localhost".into(),
                port: None,
                username: None,
                password: None,
            });
        }
        let brokers = hosts
            .into_iter()
            .map(|h| {
                let port = h.port.unwrap_or(5672);
                let uri = AMQPUri {
                    scheme: if options.ssl { AMQPScheme::AMQPS } else { AMQPScheme::AMQP },
                    authority: AMQPAuthority {
                        userinfo: AMQPUserInfo {
                            username: h.username.clone().unwrap_or_else(|| "guest".into()),
                            password: h.password.clone().unwrap_or_else(|| "guest".into()),
                        },
                        host: h.hostname.clone(),
                        port,
                    },
                    vhost: vhost.clone(),
                    query: AMQPQueryString {
                        heartbeat: Some(options.heartbeat_timeout_threshold),
                        connection_timeout: Some(CONNECT_TIMEOUT.as_millis() as u64),
                        auth_mechanism: Some(mechanism),
                        ..AMQPQueryString::default()
                    },
                };
                let display = if h.hostname.contains(':') {
                    format!("[{}]:{port}", h.hostname)
                } else {
                    format!("{}:{port}", h.hostname)
                };
                Broker { uri, display }
            })
            .collect();
        let tls = if options.ssl {
            let read = |path: &str| std::fs::read(path).map_err(|e| config(format!("cannot read {path}: {e}")));
            let cert_chain = match &options.ssl_ca_file {
                Some(path) => {
                    Some(String::from_utf8(read(path)?).map_err(|_| config(format!("{path} is not a PEM file")))?)
                }
                None => None,
            };
            let identity = match (&options.ssl_cert_file, &options.ssl_key_file) {
                (Some(cert), Some(key)) => Some(OwnedIdentity::PKCS8 { pem: read(cert)?, key: read(key)? }),
                _ => None,
            };
            Some(OwnedTLSConfig { identity, cert_chain })
        } else {
            None
        };
        let program = std::env::args()
            .next()
            .and_then(|a| std::path::Path::new(&a).file_name().map(|f| f.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "wasmrpc".into());
        let connection_name = format!("{program}:{}:{}", std::process::id(), uuid::Uuid::new_v4());
        Ok(Connector { brokers, options: options.clone(), tls, connection_name })
    }

    /// The brokers, as `host:port` (for messages).
    pub(super) fn describe(&self) -> String {
        self.brokers.iter().map(|b| b.display.as_str()).collect::<Vec<_>>().join(",")
    }

    /// Tries each broker once, in failover order; the first connection wins.
    pub(super) async fn connect_once(&self, role: &str) -> Result<Connection, TransportError> {
        let start = random_index(self.brokers.len());
        let mut last = String::new();
        for i in 0..self.brokers.len() {
            let index = match self.options.kombu_failover_strategy {
                FailoverStrategy::RoundRobin => (start + i) % self.brokers.len(),
                FailoverStrategy::Shuffle => random_index(self.brokers.len()),
            };
            let broker = &self.brokers[index];
            let props =
                ConnectionProperties::default().with_connection_name(format!("{} {role}", self.connection_name).into());
            let attempt = async {
                let runtime = lapin::runtime::default_runtime()?;
                Connection::connect_uri_with_config(
                    broker.uri.clone(),
                    props,
                    self.tls.clone().unwrap_or_default(),
                    runtime,
                )
                .await
            };
            match tokio::time::timeout(CONNECT_TIMEOUT * 2, attempt).await {
                Ok(Ok(conn)) => {
                    tracing::info!(broker = %broker.display, role, "connected to the AMQP server");
                    return Ok(conn);
                }
                Ok(Err(e)) => last = format!("{}: {}", broker.display, describe_error(&e)),
                Err(_) => last = format!("{}: no answer within {:?}", broker.display, CONNECT_TIMEOUT * 2),
            }
            tracing::warn!(role, "AMQP server {last}");
        }
        Err(TransportError::new(
            ErrorKind::Connection,
            format!("cannot reach any AMQP server of {} ({last})", self.describe()),
        ))
    }

    /// The pause after `failed_rounds` failed rounds: oslo's backoff.
    fn backoff(&self, failed_rounds: u32) -> Duration {
        self.options.backoff(failed_rounds)
    }
}

/// A connection that is replaced when it dies. Users hold the generation they got, so a dead
/// connection is replaced once, not once per user.
pub(super) struct Link {
    connector: Arc<Connector>,
    role: &'static str,
    closed: CancellationToken,
    current: tokio::sync::Mutex<Option<Connected>>,
    /// The newest connection, readable without waiting behind a reconnect round that holds
    /// `current` (health probes ask while the broker is away).
    latest: ArcSwapOption<Connected>,
}

/// A live connection of a [`Link`], and which of its connections it is.
#[derive(Clone)]
pub(super) struct Connected {
    pub(super) connection: Arc<Connection>,
    /// 1 for the first connection, one more for each replacement.
    pub(super) generation: u64,
}

impl Link {
    pub(super) fn new(connector: Arc<Connector>, role: &'static str, closed: CancellationToken) -> Link {
        Link { connector, role, closed, current: tokio::sync::Mutex::new(None), latest: ArcSwapOption::empty() }
    }

    /// Installs a connection made elsewhere (the first one, made while connecting the transport).
    pub(super) async fn install(&self, connection: Connection) {
        let live = Connected { connection: Arc::new(connection), generation: 1 };
        self.latest.store(Some(Arc::new(live.clone())));
        *self.current.lock().await = Some(live);
    }

    /// The live connection, reconnecting (forever, with backoff) if needed.
    pub(super) async fn get(&self) -> Result<Connected, TransportError> {
        self.connected(true).await
    }

    /// Like [`Link::get`], but makes a single round of attempts.
    pub(super) async fn try_get(&self) -> Result<Connected, TransportError> {
        self.connected(false).await
    }

    /// The live connection, or a new one. Patient, it retries rounds with oslo's backoff until
    /// one works or the transport closes. The lock is held for one round at a time, never
    /// across the pauses: while the broker is away, closing and the users that make a single
    /// round are not kept waiting behind a reconnect that lasts as long as the outage.
    async fn connected(&self, patient: bool) -> Result<Connected, TransportError> {
        let mut failed_rounds: u32 = 0;
        loop {
            {
                let mut current = self.current.lock().await;
                if let Some(live) = current.as_ref()
                    && live.connection.status().connected()
                {
                    return Ok(live.clone());
                }
                if self.closed.is_cancelled() {
                    return Err(TransportError::new(ErrorKind::Closed, "the transport was closed"));
                }
                let generation = current.as_ref().map_or(1, |dead| dead.generation + 1);
                match self.connector.connect_once(self.role).await {
                    Ok(connection) => {
                        let live = Connected { connection: Arc::new(connection), generation };
                        self.latest.store(Some(Arc::new(live.clone())));
                        *current = Some(live.clone());
                        return Ok(live);
                    }
                    Err(e) if !patient => return Err(e),
                    Err(e) => {
                        let delay = self.connector.backoff(failed_rounds);
                        tracing::warn!(role = self.role, "{e}; trying again in {:.1} s", delay.as_secs_f64());
                    }
                }
            }
            let delay = self.connector.backoff(failed_rounds);
            failed_rounds = failed_rounds.saturating_add(1);
            tokio::select! {
                () = self.closed.cancelled() => return Err(TransportError::new(ErrorKind::Closed, "the transport was closed")),
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// The connection if it is up now, without connecting or waiting for a reconnect.
    pub(super) fn live(&self) -> Option<Connected> {
        let current = self.current.try_lock().ok()?;
        current.as_ref().filter(|live| live.connection.status().connected()).cloned()
    }

    /// Whether the newest connection is up, and how many times it was replaced; `None` before
    /// the link was first used.
    pub(super) fn health(&self) -> Option<TransportHealth> {
        self.latest.load().as_ref().map(|live| TransportHealth {
            connected: live.connection.status().connected(),
            reconnects: live.generation - 1,
        })
    }

    /// Closes the connection (on transport close).
    pub(super) async fn close(&self) {
        if let Some(live) = self.current.lock().await.take() {
            let _ = live.connection.close(200, "closing".into()).await;
        }
    }
}

/// A short, password-free description of a lapin error.
pub(super) fn describe_error(e: &lapin::Error) -> String {
    match e.kind() {
        lapin::ErrorKind::IOError(io) => io.to_string(),
        lapin::ErrorKind::ProtocolError(amqp) => amqp.to_string(),
        other => format!("{other:?}"),
    }
}

fn random_index(n: usize) -> usize {
    if n <= 1 { 0 } else { (uuid::Uuid::new_v4().as_u128() % n as u128) as usize }
}
