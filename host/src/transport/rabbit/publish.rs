//! Publishing: one confirm-mode channel shared by every sender, declaring what a publish needs
//! once per channel, retrying through reconnects, with the properties oslo sets.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation};

use super::link::describe_error;
use super::topology::{Binding, ExchangeSpec};
use super::{Shared, amqp_error, declare, declare_exchange};
use crate::locks::lock;
use crate::transport::{Body, ErrorKind, Outgoing, TransportError};

/// How long a publish keeps retrying through reconnects before it gives up.
const PUBLISH_RETRY: Duration = Duration::from_secs(30);

/// The confirm-mode channel used for publishing, and what has been declared on it.
#[derive(Clone)]
pub(super) struct PublishChannel {
    channel: Channel,
    generation: u64,
    declared: Arc<Mutex<HashSet<String>>>,
}

/// oslo's message properties: JSON, UTF-8, persistent, priority 0, empty headers, and the
/// expiration (milliseconds, as text) on calls only.
fn properties(expiration: Option<Duration>) -> BasicProperties {
    let props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_content_encoding("utf-8".into())
        .with_headers(FieldTable::default())
        .with_delivery_mode(2)
        .with_priority(0);
    match expiration {
        Some(ttl) => props.with_expiration(ttl.as_millis().to_string().into()),
        None => props,
    }
}

impl Shared {
    /// The publishing channel, (re)opened in confirm mode when needed. Reconnecting happens
    /// outside the publishing lock: senders waiting for a broker that is away give up at their
    /// own deadlines, and closing the transport never waits behind a reconnect.
    async fn publish_channel(&self) -> Result<PublishChannel, TransportError> {
        if let Some(p) = self.publishing.lock().await.as_ref()
            && p.channel.status().connected()
        {
            return Ok(p.clone());
        }
        let live = self.publisher.get().await?;
        let mut current = self.publishing.lock().await;
        if let Some(p) = current.as_ref()
            && p.channel.status().connected()
        {
            return Ok(p.clone()); // another sender opened one meanwhile
        }
        let channel = live.connection.create_channel().await.map_err(|e| amqp_error("cannot open a channel", &e))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| amqp_error("cannot enable publisher confirms", &e))?;
        let p = PublishChannel { channel, generation: live.generation, declared: Arc::default() };
        *current = Some(p.clone());
        Ok(p)
    }

    /// Closes the publishing channel (the transport is closing).
    pub(super) async fn close_publish_channel(&self) {
        if let Some(p) = self.publishing.lock().await.take() {
            let _ = p.channel.close(200, "closing".into()).await;
        }
    }

    /// Forgets the publishing channel so the next publish opens a new one.
    async fn drop_publish_channel(&self) {
        if let Some(p) = self.publishing.lock().await.take() {
            tracing::debug!(generation = p.generation, "publishing channel dropped");
        }
    }

    /// Publishes, declaring `binding`'s exchange (and queue, for notifications) first, once per
    /// channel. Retries through reconnects for a while. With `confirm`, waits for the broker's
    /// confirm, and reports a mandatory message the broker returned as unroutable.
    pub(super) async fn publish(
        &self,
        declare_first: Option<Declare<'_>>,
        exchange: &str,
        key: &str,
        message: &Outgoing,
    ) -> Result<(), TransportError> {
        // Encoded once, however many attempts it takes (a body already encoded is only shared).
        let message = &Outgoing { body: Body::Wire(message.body.wire()), ..message.clone() };
        let give_up = Instant::now() + message.expiration.unwrap_or(PUBLISH_RETRY).min(PUBLISH_RETRY);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            // Each attempt ends by the deadline, whatever the broker does: reconnecting can
            // otherwise wait for a broker that is away for as long as it is away.
            let outcome = tokio::select! {
                outcome = tokio::time::timeout_at(give_up.into(), self.publish_once(declare_first.as_ref(), exchange, key, message)) => outcome,
                () = self.closed.cancelled() => return Err(TransportError::new(ErrorKind::Closed, "the transport was closed")),
            };
            let Ok(outcome) = outcome else {
                return Err(TransportError::new(
                    ErrorKind::Connection,
                    format!(
                        "could not publish to exchange {exchange:?} with key {key:?} within {:.1} s: the broker is unreachable",
                        message.expiration.unwrap_or(PUBLISH_RETRY).min(PUBLISH_RETRY).as_secs_f64()
                    ),
                ));
            };
            match outcome {
                Ok(()) => return Ok(()),
                Err(e)
                    if e.kind == ErrorKind::Connection && Instant::now() < give_up && !self.closed.is_cancelled() =>
                {
                    tracing::warn!(%exchange, %key, attempt, "publish failed ({e}); retrying after reconnecting");
                    self.drop_publish_channel().await;
                    let pause = self.options.rabbit_retry_interval.min(Duration::from_secs(1));
                    tokio::time::sleep_until(give_up.min(Instant::now() + pause).into()).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn publish_once(
        &self,
        declare_first: Option<&Declare<'_>>,
        exchange: &str,
        key: &str,
        message: &Outgoing,
    ) -> Result<(), TransportError> {
        let PublishChannel { channel, declared, .. } = self.publish_channel().await?;
        if let Some(what) = declare_first {
            let id = what.id();
            let known = lock(&declared).contains(&id);
            if !known {
                let mut result = match what {
                    Declare::Exchange(ex) => declare_exchange(&channel, ex).await,
                    Declare::Queue(binding) => declare(&channel, binding).await,
                };
                // oslo's fallback: a durable exchange refused because a non-durable one exists
                // (another service declared it first) is declared non-durable instead.
                if let (Err(e), Declare::Exchange(ex)) = (&result, what)
                    && ex.durable
                    && describe_error(e).contains("inequivalent arg 'durable'")
                {
                    tracing::info!(exchange = %ex.name, "retrying to declare the exchange as non durable");
                    self.drop_publish_channel().await;
                    let fresh = self.publish_channel().await?.channel;
                    result = declare_exchange(&fresh, &ExchangeSpec { durable: false, ..ex.clone() }).await;
                    if result.is_ok() {
                        lock(&declared).insert(id.clone());
                        return self.publish_on(&fresh, exchange, key, message).await;
                    }
                }
                if let Err(e) = result {
                    // A refused declaration closes the channel: open a new one next time.
                    self.drop_publish_channel().await;
                    return Err(amqp_error(&format!("declaring {id}"), &e));
                }
                lock(&declared).insert(id);
            }
        }
        self.publish_on(&channel, exchange, key, message).await
    }

    async fn publish_on(
        &self,
        channel: &Channel,
        exchange: &str,
        key: &str,
        message: &Outgoing,
    ) -> Result<(), TransportError> {
        let options = BasicPublishOptions { mandatory: message.mandatory, immediate: false };
        let body = message.body.wire();
        let limit = self.options.max_message_size;
        if body.len() as u64 > limit {
            return Err(too_large(body.len() as u64, limit, "max_message_size"));
        }
        let confirm = channel
            .basic_publish(exchange.into(), key.into(), options, &body, properties(message.expiration))
            .await
            .map_err(|e| publish_error("publish", &e, body.len()))?;
        if !message.confirm {
            // Nothing waits for the broker's confirm; a failure only shows in the log.
            tokio::spawn(async move {
                if let Err(e) = confirm.await {
                    tracing::debug!("publish not confirmed: {}", describe_error(&e));
                }
            });
            return Ok(());
        }
        match confirm.await.map_err(|e| publish_error("publisher confirm", &e, body.len()))? {
            Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
            Confirmation::Ack(Some(_)) | Confirmation::Nack(Some(_)) => Err(TransportError::new(
                ErrorKind::Unroutable,
                format!("no queue took the message (exchange {exchange:?}, key {key:?})"),
            )),
            Confirmation::Nack(None) => {
                Err(TransportError::new(ErrorKind::Connection, "the broker refused the message (nack)"))
            }
        }
    }
}

/// A message over a size limit: the caller gets this error, and nothing else fails.
fn too_large(size: u64, limit: u64, whose: &str) -> TransportError {
    TransportError::new(
        ErrorKind::TooLarge,
        format!("the message is too large: {size} bytes, and the {whose} is {limit} bytes"),
    )
}

/// A failed publish or confirm. The broker closes the shared publishing channel when it
/// refuses a message for its size (`message size N is larger than ... max size M`): that
/// message gets [`ErrorKind::TooLarge`]; every other message caught on the channel gets a
/// connection error, so it is published again on a new channel.
fn publish_error(context: &str, e: &lapin::Error, size: usize) -> TransportError {
    let text = describe_error(e);
    match size_refusal(&text) {
        Some((refused, limit)) if refused == size as u64 => too_large(refused, limit, "broker's max_message_size"),
        Some(_) => TransportError::new(
            ErrorKind::Connection,
            format!("{context}: the publishing channel closed after the broker refused another message ({text})"),
        ),
        None => amqp_error(context, e),
    }
}

/// `(N, M)` from RabbitMQ's "message size N is larger than [configured] max size M".
fn size_refusal(text: &str) -> Option<(u64, u64)> {
    let number_after = |marker: &str| -> Option<u64> {
        let rest = &text[text.find(marker)? + marker.len()..];
        rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    };
    Some((number_after("message size ")?, number_after("max size ")?))
}

/// What a publisher declares before its first publish on a channel.
pub(super) enum Declare<'a> {
    /// The target exchange (RPC sends).
    Exchange(ExchangeSpec),
    /// A queue bound to its exchange (the notifier's default queue).
    Queue(&'a Binding),
}

impl Declare<'_> {
    fn id(&self) -> String {
        match self {
            Declare::Exchange(ex) => format!("exchange {}", ex.name),
            Declare::Queue(b) => {
                format!("queue {} on {}", b.queue.name, b.exchange.as_ref().map_or("", |e| e.name.as_str()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::size_refusal;

    #[test]
    fn the_brokers_size_refusal_is_read_from_its_message() {
        let text = "PRECONDITION_FAILED - message size 2097164 is larger than configured max size 1048576";
        assert_eq!(size_refusal(text), Some((2_097_164, 1_048_576)));
        assert_eq!(size_refusal("PRECONDITION_FAILED - message size 9 is larger than max size 8"), Some((9, 8)));
        assert_eq!(size_refusal("PRECONDITION_FAILED - inequivalent arg 'durable'"), None);
    }
}
