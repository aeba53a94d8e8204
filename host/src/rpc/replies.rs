//! The client side of replies: one reply queue per transport (so per process, as oslo), and a
//! router from `_msg_id` to the call waiting for it. The transport hands reply bodies to the
//! router as they arrive, so a reply reaches its call without passing through another task.
//!
//! The RPC layer keeps each transport's reply queue itself ([`TransportReplies::of`]), keyed by
//! the transport's identity: a transport only declares the queue and hands over what arrives.
//!
//! Call deadlines are kept by the router too, and one sweeper task per router ends the calls
//! whose deadline passed: it sleeps until the earliest deadline it knows of, and is woken early
//! only when a call comes with an earlier one. Calls of one client share a timeout, so that is
//! rare, and a call arms no timer of its own: registering and cancelling one in tokio's timer
//! wheel costs more than the sweeper does (it pays for itself on BENCHMARKS.md's row "RPC over
//! memory://: a Rust endpoint (no Wasm)"). Each pass walks all waiting calls, so passes are at
//! least [`SWEEP_PERIOD`] apart.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{Notify, OnceCell};
use tokio::time::Instant;

use crate::locks::lock;
use crate::protocol::Reply;
use crate::transport::{Body, Transport, TransportError};

/// A transport's reply queue and router, started by the first call (oslo's driver keeps one
/// reply queue too), shared by every client of that transport.
#[derive(Debug, Default)]
pub(crate) struct TransportReplies(OnceCell<Replies>);

/// Every transport some client uses, with its replies. A transport is known by its address
/// while it lives; entries of transports that are gone are dropped at the next lookup.
static BY_TRANSPORT: Mutex<Vec<Registered>> = Mutex::new(Vec::new());

struct Registered {
    transport: Weak<dyn Transport>,
    replies: Arc<TransportReplies>,
}

impl TransportReplies {
    /// The replies of `transport`: the same for every client of it.
    pub fn of(transport: &Arc<dyn Transport>) -> Arc<TransportReplies> {
        let mut all = lock(&BY_TRANSPORT);
        all.retain(|r| r.transport.strong_count() > 0);
        let weak = Arc::downgrade(transport);
        if let Some(known) = all.iter().find(|r| r.transport.ptr_eq(&weak)) {
            return known.replies.clone();
        }
        let replies = Arc::new(TransportReplies::default());
        all.push(Registered { transport: weak, replies: replies.clone() });
        replies
    }

    /// The router, declaring the reply queue on `transport` (the one these replies are of) first
    /// if this is the first call.
    pub async fn get(&self, transport: &dyn Transport) -> Result<&Replies, TransportError> {
        self.0
            .get_or_try_init(|| async {
                let router = Arc::new(Router::default());
                let handler_router = router.clone();
                let queue = transport.listen_replies(Arc::new(move |body| handler_router.route(body))).await?;
                Ok(Replies { queue, router })
            })
            .await
    }
}

/// Routes replies arriving on the reply queue to waiting calls.
#[derive(Debug)]
pub(crate) struct Replies {
    queue: String,
    router: Arc<Router>,
}

#[derive(Debug, Default)]
struct Router {
    waiters: Mutex<Waiting>,
    sweeper: Arc<Sweeper>,
}

/// What the router and its sweeper task share.
#[derive(Debug, Default)]
struct Sweeper {
    /// Wakes the sweeper: a call with an earlier deadline than it sleeps until, or the end.
    wake: Notify,
    /// Whether a sweeper task exists. A runtime drops its tasks when it shuts down, so a
    /// transport used from a later runtime would otherwise have calls that never time out.
    running: AtomicBool,
}

#[derive(Debug, Default)]
struct Waiting {
    /// The calls waiting for replies, by `_msg_id`.
    calls: foldhash::HashMap<Arc<str>, Call>,
    /// When the sweeper looks next; `None` while it waits for a call.
    sweep_at: Option<Instant>,
}

/// A call waiting for its replies.
#[derive(Debug)]
struct Call {
    inbox: Arc<Inbox>,
    /// When the sweeper ends it.
    deadline: Instant,
}

/// A call's deadline passed before its last reply came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expired;

/// Where a call's replies wait for it: usually one, more with call-monitor heartbeats.
#[derive(Debug, Default)]
struct Inbox {
    queued: Mutex<Queued>,
    arrived: Notify,
}

#[derive(Debug, Default)]
struct Queued {
    replies: VecDeque<Arc<Reply>>,
    /// Set by the sweeper; replies already queued are still handed out first.
    expired: bool,
}

/// A registered call; unregisters itself when dropped.
pub(crate) struct Waiter {
    inbox: Arc<Inbox>,
    msg_id: Arc<str>,
    router: Arc<Router>,
}

impl Waiter {
    /// The next reply to this call, or [`Expired`] once its deadline has passed.
    pub async fn recv(&self) -> Result<Reply, Expired> {
        loop {
            // `notify_one` leaves a permit when nobody waits yet, so a reply (or the sweeper)
            // arriving between this check and the wait below is not missed.
            {
                let mut queued = lock(&self.inbox.queued);
                if let Some(reply) = queued.replies.pop_front() {
                    // An in-process server has let go of its reference by now, except on
                    // another thread still returning from the send: then this copies.
                    return Ok(Arc::unwrap_or_clone(reply));
                }
                if queued.expired {
                    return Err(Expired);
                }
            }
            self.inbox.arrived.notified().await;
        }
    }

    /// Moves the call's deadline (a call-monitor heartbeat arrived). A later deadline needs
    /// nothing more: the sweeper finds the call still running when it looks, and sleeps on.
    pub fn set_deadline(&self, deadline: Instant) {
        let mut waiting = lock(&self.router.waiters);
        if let Some(call) = waiting.calls.get_mut(&self.msg_id) {
            call.deadline = deadline;
            self.router.wake_for(&mut waiting, deadline);
        }
    }

    /// The call's `_msg_id`.
    pub fn msg_id(&self) -> &str {
        &self.msg_id
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        lock(&self.router.waiters).calls.remove(&self.msg_id);
    }
}

impl Replies {
    /// The reply queue's name (`_reply_q` in requests).
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Registers a call before its request is sent, so no reply can be missed; past `deadline`
    /// the call's [`Waiter::recv`] says [`Expired`].
    pub fn register(&self, msg_id: &str, deadline: Instant) -> Waiter {
        let msg_id = Arc::<str>::from(msg_id);
        let inbox = Arc::new(Inbox::default());
        // The first call starts the sweeper, and so does a call from a later runtime.
        self.router.keep_sweeping();
        let mut waiting = lock(&self.router.waiters);
        waiting.calls.insert(msg_id.clone(), Call { inbox: inbox.clone(), deadline });
        self.router.wake_for(&mut waiting, deadline);
        drop(waiting);
        Waiter { inbox, msg_id, router: self.router.clone() }
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
                let waiter = lock(&self.waiters).calls.get(reply.msg_id.as_str()).map(|call| call.inbox.clone());
                match waiter {
                    Some(inbox) => {
                        lock(&inbox.queued).replies.push_back(reply);
                        inbox.arrived.notify_one();
                    }
                    None => tracing::debug!(msg_id = %reply.msg_id, "no call waiting for this reply; dropped"),
                }
            }
            Err(e) => tracing::warn!("dropping an undecodable reply: {e}"),
        }
    }
}

impl Router {
    /// Wakes the sweeper if `deadline` comes before it looks next.
    fn wake_for(&self, waiting: &mut Waiting, deadline: Instant) {
        if waiting.sweep_at.is_none_or(|at| deadline < at) {
            waiting.sweep_at = Some(deadline);
            self.sweeper.wake.notify_one();
        }
    }

    /// Starts a sweeper on the current runtime unless one exists (one atomic load when it does).
    fn keep_sweeping(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        if self.sweeper.running.load(Ordering::Acquire) || self.sweeper.running.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some(tokio::spawn(sweep(Arc::downgrade(self), Running(self.sweeper.clone()))))
    }

    /// Ends the calls whose deadline is not after `now` and returns when to look next.
    fn expire(&self, now: Instant) -> Option<Instant> {
        let mut waiting = lock(&self.waiters);
        // An expired call leaves the map here, so a late reply finds nobody and is dropped.
        waiting.calls.retain(|_, call| {
            if call.deadline > now {
                return true;
            }
            lock(&call.inbox.queued).expired = true;
            call.inbox.arrived.notify_one();
            false
        });
        waiting.sweep_at = waiting.calls.values().map(|call| call.deadline).min();
        waiting.sweep_at
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        self.sweeper.wake.notify_one();
    }
}

/// Marks the sweeper gone however its task ends: returned, or dropped with its runtime, even
/// before its first poll (the future owns this from its creation).
struct Running(Arc<Sweeper>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Release);
    }
}

/// The least time between two passes of the sweeper. A pass walks every waiting call, so when
/// many calls time out at nearly the same time (a dead server under load) they are ended in
/// batches instead of one pass per deadline; a call ends at most this much after its deadline.
const SWEEP_PERIOD: Duration = Duration::from_millis(10);

/// The sweeper: ends calls past their deadline until the router is gone.
async fn sweep(router: Weak<Router>, running: Running) {
    let wake = &running.0.wake;
    loop {
        let swept = Instant::now();
        let next = match router.upgrade() {
            Some(router) => router.expire(swept),
            None => return,
        };
        let resume = swept + SWEEP_PERIOD;
        match next {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at.max(resume)) => continue,
                    () = wake.notified() => {}
                }
            }
            None => wake.notified().await,
        }
        // Woken by a call with an earlier deadline (or the router's end).
        if Instant::now() < resume {
            tokio::time::sleep_until(resume).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A router with its sweeper, as `TransportReplies::get` makes them, without a transport.
    fn replies() -> (Replies, tokio::task::JoinHandle<()>) {
        let router = Arc::new(Router::default());
        let sweeper = router.keep_sweeping().expect("a new router has no sweeper");
        (Replies { queue: "reply_q".into(), router }, sweeper)
    }

    fn id(n: u32) -> String {
        format!("{n:032x}")
    }

    #[tokio::test(start_paused = true)]
    async fn calls_end_at_their_deadlines_and_heartbeats_move_them() {
        let (replies, _sweeper) = replies();
        let start = Instant::now();
        let secs = |s: u64| start + std::time::Duration::from_secs(s);
        let late = replies.register(&id(1), secs(3));
        // Earlier than what the sweeper sleeps until: it must be woken for this one.
        let soon = replies.register(&id(2), secs(1));
        assert_eq!(soon.recv().await, Err(Expired));
        assert_eq!(start.elapsed().as_secs(), 1, "ended at its own deadline, not the other's");

        // A reply that comes in time is handed out; then a heartbeat moves the deadline on.
        replies.router.route(Body::Reply(Arc::new(Reply::result(&id(1), 5.into()))));
        assert_eq!(late.recv().await.map(|r| r.result), Ok(5.into()));
        late.set_deadline(secs(6));
        assert_eq!(late.recv().await, Err(Expired));
        assert_eq!(start.elapsed().as_secs(), 6, "the sweeper looked at 3 s and slept on");

        // The expired call left the router: a late reply finds nobody.
        assert!(lock(&replies.router.waiters).calls.is_empty());
        replies.router.route(Body::Reply(Arc::new(Reply::result(&id(1), 6.into()))));
        assert_eq!(
            tokio::time::timeout(std::time::Duration::from_secs(1), late.recv()).await.ok(),
            Some(Err(Expired)),
            "an expired call stays expired"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn replies_queued_before_the_deadline_come_first() {
        let (replies, _sweeper) = replies();
        let waiter = replies.register(&id(7), Instant::now() + std::time::Duration::from_millis(10));
        replies.router.route(Body::Reply(Arc::new(Reply::result(&id(7), 1.into()))));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(waiter.recv().await.map(|r| r.result), Ok(1.into()));
        assert_eq!(waiter.recv().await, Err(Expired));
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_close_together_end_in_one_pass() {
        let (replies, _sweeper) = replies();
        let start = Instant::now();
        let calls: Vec<Waiter> =
            (1..=5).map(|i| replies.register(&id(i), start + Duration::from_millis(u64::from(i)))).collect();
        let mut ended = Vec::new();
        for call in &calls {
            assert_eq!(call.recv().await, Err(Expired));
            ended.push(start.elapsed());
        }
        // The sweeper looked once when the first call came; its next pass is a period later.
        assert!(ended.iter().all(|t| *t == ended[0]), "one pass ended them all: {ended:?}");
        assert!(ended[0] >= SWEEP_PERIOD && ended[0] < SWEEP_PERIOD * 2, "{ended:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_sweeper_ends_with_its_router() {
        let (replies, sweeper) = replies();
        let waiter = replies.register(&id(9), Instant::now() + std::time::Duration::from_secs(60));
        drop((waiter, replies));
        tokio::time::timeout(std::time::Duration::from_secs(1), sweeper)
            .await
            .expect("the sweeper stops once the router is gone")
            .expect("the sweeper does not panic");
    }

    #[test]
    fn calls_still_end_after_the_runtime_that_ran_the_sweeper_is_gone() {
        let first = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        // The sweeper is spawned there and dropped with it, without ever having run.
        let (replies, _) = first.block_on(async { replies() });
        drop(first);
        let second = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        second.block_on(async {
            let waiter = replies.register(&id(3), Instant::now() + Duration::from_secs(1));
            let ended = tokio::time::timeout(Duration::from_secs(5), waiter.recv()).await;
            assert_eq!(ended, Ok(Err(Expired)), "a new sweeper ended the call");
        });
    }

    #[tokio::test]
    async fn every_client_of_a_transport_shares_its_reply_queue() {
        use crate::protocol::{TransportUrl, new_id};
        use crate::transport::MemoryTransport;
        let url = TransportUrl::parse(&format!("memory://replies-{}/", new_id())).expect("a memory URL");
        let a: Arc<dyn Transport> = Arc::new(MemoryTransport::new(&url, "openstack"));
        let b: Arc<dyn Transport> = Arc::new(MemoryTransport::new(&url, "openstack"));
        let (a1, a2, b1) = (TransportReplies::of(&a), TransportReplies::of(&a), TransportReplies::of(&b));
        assert!(Arc::ptr_eq(&a1, &a2) && !Arc::ptr_eq(&a1, &b1));
        let queue = a1.get(a.as_ref()).await.expect("declared").queue().to_owned();
        assert_eq!(a2.get(a.as_ref()).await.expect("declared").queue(), queue, "one reply queue per transport");
        assert_ne!(b1.get(b.as_ref()).await.expect("declared").queue(), queue);

        drop(a);
        let _ = TransportReplies::of(&b);
        assert!(
            lock(&BY_TRANSPORT).iter().all(|r| !Arc::ptr_eq(&r.replies, &a1)),
            "a transport that is gone is forgotten"
        );
    }
}
