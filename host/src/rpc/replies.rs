//! The client side of replies: one reply queue per transport (so per process, as oslo), and a
//! router from `_msg_id` to the call waiting for it. The transport hands reply bodies to the
//! router as they arrive, so a reply reaches its call without passing through another task.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::protocol::Reply;
use crate::transport::{Body, Transport, TransportError};

/// Routes replies arriving on the reply queue to waiting calls.
#[derive(Debug)]
pub(crate) struct Replies {
    queue: String,
    router: Arc<Router>,
}

#[derive(Debug, Default)]
struct Router {
    waiters: Mutex<foldhash::HashMap<IdKey, Arc<Inbox>>>,
}

/// A call's `_msg_id` as a map key: the 32 hex digits of [`crate::protocol::new_id`], held
/// inline so registering a call allocates no string.
type IdKey = [u8; ID_LEN];
const ID_LEN: usize = 32;

fn key(msg_id: &str) -> Option<IdKey> {
    msg_id.as_bytes().try_into().ok()
}

/// Where a call's replies wait for it: usually one, more with call-monitor heartbeats. Lighter
/// than a channel, which allocates a block of slots per call.
#[derive(Debug, Default)]
struct Inbox {
    replies: Mutex<Queued>,
    arrived: Notify,
}

/// The first reply has a place of its own, so the usual single reply allocates nothing.
#[derive(Debug, Default)]
struct Queued {
    first: Option<Arc<Reply>>,
    more: VecDeque<Arc<Reply>>,
}

impl Queued {
    fn push(&mut self, reply: Arc<Reply>) {
        if self.first.is_none() && self.more.is_empty() {
            self.first = Some(reply);
        } else {
            self.more.push_back(reply);
        }
    }

    fn pop(&mut self) -> Option<Arc<Reply>> {
        self.first.take().or_else(|| self.more.pop_front())
    }
}

/// A registered call; unregisters itself when dropped.
pub(crate) struct Waiter {
    inbox: Arc<Inbox>,
    key: IdKey,
    router: Arc<Router>,
}

impl Waiter {
    /// The next reply to this call.
    pub async fn recv(&self) -> Reply {
        loop {
            // `notify_one` leaves a permit when nobody waits yet, so a reply arriving between
            // this check and the wait below is not missed.
            if let Some(reply) = lock(&self.inbox.replies).pop() {
                // An in-process server has let go of its reference by now, except on another
                // thread still returning from the send: then this copies.
                return Arc::unwrap_or_clone(reply);
            }
            self.inbox.arrived.notified().await;
        }
    }

    /// The call's `_msg_id`.
    pub fn msg_id(&self) -> &str {
        std::str::from_utf8(&self.key).unwrap_or_default()
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        lock(&self.router.waiters).remove(&self.key);
    }
}

impl Replies {
    /// The router of `transport`, starting its reply queue on first use.
    pub async fn of(transport: &dyn Transport) -> Result<Arc<Replies>, TransportError> {
        let any = transport
            .reply_slot()
            .0
            .get_or_try_init(|| async {
                let router = Arc::new(Router::default());
                let handler_router = router.clone();
                let queue = transport.listen_replies(Arc::new(move |body| handler_router.route(body))).await?;
                Ok::<Arc<dyn Any + Send + Sync>, TransportError>(Arc::new(Replies { queue, router }))
            })
            .await?;
        Ok(any.clone().downcast::<Replies>().expect("the reply slot only ever holds `Replies`"))
    }

    /// The reply queue's name (`_reply_q` in requests).
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Registers a call before its request is sent, so no reply can be missed. `msg_id` is a
    /// [`crate::protocol::new_id`].
    pub fn register(&self, msg_id: &str) -> Waiter {
        let key = key(msg_id).expect("call ids come from new_id(): 32 hex digits");
        let inbox = Arc::new(Inbox::default());
        lock(&self.router.waiters).insert(key, inbox.clone());
        Waiter { inbox, key, router: self.router.clone() }
    }
}

impl Router {
    /// Hands a reply to its waiter. Replies nobody waits for are dropped, as Python does
    /// (servers may send stray heartbeats after a call ended).
    fn route(&self, body: Body) {
        let reply = match body {
            // Handed over in-process, decoded.
            Body::Reply(reply) => Ok(reply),
            other => Reply::decode(&other.wire()).map(Arc::new),
        };
        match reply {
            Ok(reply) => {
                let waiter = key(&reply.msg_id).and_then(|k| lock(&self.waiters).get(&k).cloned());
                match waiter {
                    Some(inbox) => {
                        lock(&inbox.replies).push(reply);
                        inbox.arrived.notify_one();
                    }
                    None => tracing::debug!(msg_id = %reply.msg_id, "no call waiting for this reply; dropped"),
                }
            }
            Err(e) => tracing::warn!("dropping an undecodable reply: {e}"),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(n: i64) -> Arc<Reply> {
        Arc::new(Reply::result("0123456789abcdef0123456789abcdef", n.into()))
    }

    #[test]
    fn an_inbox_gives_replies_back_in_arrival_order() {
        let mut q = Queued::default();
        q.push(reply(1));
        q.push(reply(2));
        assert_eq!(q.pop().map(|r| r.result.clone()), Some(1.into()));
        // Arrives while the second still waits: behind it, not in the freed first place.
        q.push(reply(3));
        let rest: Vec<_> = std::iter::from_fn(|| q.pop()).map(|r| r.result.clone()).collect();
        assert_eq!(rest, [serde_json::Value::from(2), 3.into()]);
        q.push(reply(4));
        assert_eq!(q.pop().map(|r| r.result.clone()), Some(4.into()));
        assert!(q.pop().is_none());
    }

    #[test]
    fn only_ids_of_our_form_are_keys() {
        let id = crate::protocol::new_id();
        assert_eq!(key(&id).map(|k| k.to_vec()), Some(id.as_bytes().to_vec()));
        assert!(key("short").is_none());
        assert!(key(&format!("{id}0")).is_none());
    }
}
