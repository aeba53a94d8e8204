//! The client side of replies: one reply queue per transport (so per process, as oslo), and a
//! router from `_msg_id` to the call waiting for it.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::mpsc;

use crate::protocol::Reply;
use crate::transport::{Listener, Transport, TransportError};

/// Routes replies arriving on the reply queue to waiting calls.
#[derive(Debug)]
pub(crate) struct Replies {
    queue: String,
    waiters: Mutex<HashMap<String, mpsc::UnboundedSender<Reply>>>,
}

/// A registered call; unregisters itself when dropped.
pub(crate) struct Waiter {
    pub rx: mpsc::UnboundedReceiver<Reply>,
    msg_id: String,
    replies: Arc<Replies>,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        lock(&self.replies.waiters).remove(&self.msg_id);
    }
}

impl Replies {
    /// The router of `transport`, starting its reply queue on first use.
    pub async fn of(transport: &dyn Transport) -> Result<Arc<Replies>, TransportError> {
        let any = transport
            .reply_slot()
            .0
            .get_or_try_init(|| async {
                let (queue, listener) = transport.listen_replies().await?;
                let replies = Arc::new(Replies { queue, waiters: Mutex::default() });
                tokio::spawn(route(Arc::downgrade(&replies), listener));
                Ok::<Arc<dyn Any + Send + Sync>, TransportError>(replies)
            })
            .await?;
        Ok(any.clone().downcast::<Replies>().expect("the reply slot only ever holds `Replies`"))
    }

    /// The reply queue's name (`_reply_q` in requests).
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Registers a call before its request is sent, so no reply can be missed.
    pub fn register(self: &Arc<Self>, msg_id: &str) -> Waiter {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.waiters).insert(msg_id.to_owned(), tx);
        Waiter { rx, msg_id: msg_id.to_owned(), replies: self.clone() }
    }
}

/// Acks every reply and hands it to its waiter; replies nobody waits for are dropped, as
/// Python does (servers may send stray heartbeats after a call ended).
async fn route(replies: Weak<Replies>, mut listener: Listener) {
    while let Some(incoming) = listener.next().await {
        let queue = incoming.queue.clone();
        let (body, _) = incoming.ack().await;
        let Some(replies) = replies.upgrade() else {
            break;
        };
        match Reply::decode(&body) {
            Ok(reply) => {
                let waiter = lock(&replies.waiters).get(&reply.msg_id).cloned();
                match waiter {
                    Some(tx) => {
                        let _ = tx.send(reply);
                    }
                    None => {
                        tracing::debug!(msg_id = %reply.msg_id, "no call waiting for this reply; dropped")
                    }
                }
            }
            Err(e) => tracing::warn!(%queue, "dropping an undecodable reply: {e}"),
        }
    }
    // The reply queue is gone (transport closed): waiting calls see their channel close.
    if let Some(replies) = replies.upgrade() {
        lock(&replies.waiters).clear();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
