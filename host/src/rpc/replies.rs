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
    waiters: Mutex<foldhash::HashMap<String, Arc<Inbox>>>,
}

/// Where a call's replies wait for it: usually one, more with call-monitor heartbeats. Lighter
/// than a channel, which allocates a block of slots per call.
#[derive(Debug, Default)]
struct Inbox {
    replies: Mutex<VecDeque<Reply>>,
    arrived: Notify,
}

/// A registered call; unregisters itself when dropped.
pub(crate) struct Waiter {
    inbox: Arc<Inbox>,
    msg_id: String,
    router: Arc<Router>,
}

impl Waiter {
    /// The next reply to this call.
    pub async fn recv(&self) -> Reply {
        loop {
            // `notify_one` leaves a permit when nobody waits yet, so a reply arriving between
            // this check and the wait below is not missed.
            if let Some(reply) = lock(&self.inbox.replies).pop_front() {
                return reply;
            }
            self.inbox.arrived.notified().await;
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        lock(&self.router.waiters).remove(&self.msg_id);
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

    /// Registers a call before its request is sent, so no reply can be missed.
    pub fn register(&self, msg_id: &str) -> Waiter {
        let inbox = Arc::new(Inbox::default());
        lock(&self.router.waiters).insert(msg_id.to_owned(), inbox.clone());
        Waiter { inbox, msg_id: msg_id.to_owned(), router: self.router.clone() }
    }
}

impl Router {
    /// Hands a reply to its waiter. Replies nobody waits for are dropped, as Python does
    /// (servers may send stray heartbeats after a call ended).
    fn route(&self, body: Body) {
        let reply = match body {
            // Handed over in-process: the server holds no other reference by now.
            Body::Reply(reply) => Ok(Arc::unwrap_or_clone(reply)),
            other => Reply::decode(&other.wire()),
        };
        match reply {
            Ok(reply) => {
                let waiter = lock(&self.waiters).get(&reply.msg_id).cloned();
                match waiter {
                    Some(inbox) => {
                        lock(&inbox.replies).push_back(reply);
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
