//! oslo's RPC server (`MessageHandlingServer`): `start`, `stop`, `wait`, `reset`.
//!
//! One server listens on one target (exchange, topic, server) and dispatches to its
//! endpoints. Requests are acknowledged before they are dispatched, as oslo's RPC server does
//! (at-most-once: a crash mid-call loses the call, and the caller times out).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use super::dispatcher::Dispatcher;
use super::endpoint::CallTiming;
use super::reply_retry::{ReplyRetries, Retry};
use crate::locks::lock;
use crate::protocol::{ListenTarget, RecentIds, RemoteFailure, Reply, ReplyTo, Request};
use crate::transport::{Body, DirectHandler, ErrorKind, Incoming, Listener, Transport, TransportError};

/// oslo's `executor_thread_pool_size` default.
pub const DEFAULT_EXECUTOR_SIZE: usize = 64;
/// Bytes of requests taken off the broker and not yet finished, per server. A request holds
/// its size (at most all of it) until its call ends; when they are used up the server stops
/// taking messages, which leaves them with the broker (the prefetch bounds what waits in
/// between). Without it, a flood of large requests would fill memory, since requests are
/// acknowledged as they enter the backlog.
const BACKLOG_BYTES: usize = 64 << 20;
/// Messages taken off the broker but not yet running, per executor slot. Waiting for a busy
/// endpoint does not hold an executor slot, so one stuck endpoint cannot starve the others.
const BACKLOG_FACTOR: usize = 4;

/// How long `wait` lets cancelled calls wind down after its bound.
const ABORT_GRACE: Duration = Duration::from_secs(2);

/// Settings of one server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// At most this many calls run at once (oslo's `executor_thread_pool_size`).
    pub executor_size: usize,
    /// How long a reply is retried when its queue is missing (oslo's
    /// `kombu_missing_consumer_retry_timeout`).
    pub reply_retry: Duration,
}

impl Default for ServerOptions {
    fn default() -> ServerOptions {
        ServerOptions { executor_size: DEFAULT_EXECUTOR_SIZE, reply_retry: Duration::from_secs(60) }
    }
}

/// `wait` gave up before every call finished.
#[derive(Debug, thiserror::Error)]
#[error("{in_flight} call(s) still running after {waited:?}; they were cancelled")]
pub struct DrainTimeout {
    /// Calls that were cancelled.
    pub in_flight: usize,
    /// How long `wait` waited.
    pub waited: Duration,
}

/// An RPC server.
#[derive(Debug, Clone)]
pub struct RpcServer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    transport: Arc<dyn Transport>,
    target: ListenTarget,
    dispatcher: Arc<Dispatcher>,
    options: ServerOptions,
    /// Bounds running calls.
    executor: Arc<Semaphore>,
    /// Bounds messages taken from the broker and not yet finished.
    backlog: Arc<Semaphore>,
    /// Bounds their bytes ([`BACKLOG_BYTES`]).
    backlog_bytes: Arc<Semaphore>,
    /// Every call task, so `wait` can drain them.
    tracker: TaskTracker,
    /// Cancels calls still running when `wait`'s bound runs out.
    abort: CancellationToken,
    /// The last `_unique_id`s seen.
    recent: Mutex<RecentIds>,
    /// Replies whose queue was missing, retried without holding the backlog.
    retries: Arc<ReplyRetries>,
    state: tokio::sync::Mutex<State>,
}

#[derive(Debug, Default)]
enum State {
    #[default]
    Idle,
    Running {
        stop: CancellationToken,
        consumer: JoinHandle<Listener>,
    },
    Stopped {
        listener: Option<Listener>,
    },
}

impl RpcServer {
    /// A server for `target` dispatching to `dispatcher`; call [`RpcServer::start`] to listen.
    #[must_use]
    pub fn new(
        transport: Arc<dyn Transport>,
        target: ListenTarget,
        dispatcher: Arc<Dispatcher>,
        options: ServerOptions,
    ) -> RpcServer {
        let size = options.executor_size.max(1);
        RpcServer {
            inner: Arc::new(Inner {
                transport,
                target,
                dispatcher,
                executor: Arc::new(Semaphore::new(size)),
                backlog: Arc::new(Semaphore::new(size * BACKLOG_FACTOR)),
                backlog_bytes: Arc::new(Semaphore::new(BACKLOG_BYTES)),
                options,
                tracker: TaskTracker::new(),
                abort: CancellationToken::new(),
                recent: Mutex::default(),
                retries: Arc::default(),
                state: tokio::sync::Mutex::default(),
            }),
        }
    }

    /// What this server listens on.
    #[must_use]
    pub fn target(&self) -> &ListenTarget {
        &self.inner.target
    }

    /// Its dispatcher (the host swaps endpoint lists through it).
    #[must_use]
    pub fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.inner.dispatcher
    }

    /// Calls running or waiting to run.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.inner.tracker.len()
    }

    /// Declares the queues and starts consuming. Starting a running server does nothing.
    pub async fn start(&self) -> Result<(), TransportError> {
        let mut state = self.inner.state.lock().await;
        if matches!(*state, State::Running { .. }) {
            tracing::warn!(target = %self.inner.target, "start() called on a running server; ignored");
            return Ok(());
        }
        if let State::Stopped { listener: Some(old) } = std::mem::take(&mut *state) {
            old.close().await;
        }
        let listener = self.inner.transport.listen(&self.inner.target).await?;
        if let Some(direct) = listener.direct_delivery() {
            direct.set_handler(Some(direct_handler(&self.inner)));
        }
        let stop = CancellationToken::new();
        let consumer = tokio::spawn(consume(self.inner.clone(), listener, stop.clone()));
        *state = State::Running { stop, consumer };
        tracing::info!(target = %self.inner.target, "RPC server listening");
        Ok(())
    }

    /// Stops taking new messages. Calls already taken keep running; [`RpcServer::wait`]
    /// drains them.
    pub async fn stop(&self) {
        let mut state = self.inner.state.lock().await;
        if let State::Running { stop, consumer } = std::mem::take(&mut *state) {
            stop.cancel();
            let listener = consumer.await.ok();
            if let Some(direct) = listener.as_ref().and_then(Listener::direct_delivery) {
                direct.set_handler(None);
            }
            *state = State::Stopped { listener };
        } else {
            *state = State::Stopped { listener: None };
        }
    }

    /// Waits for in-flight calls (at most `bound`), then closes the listener, deleting its
    /// private fanout queue. Calls still running after `bound` are cancelled.
    pub async fn wait(&self, bound: Duration) -> Result<(), DrainTimeout> {
        let started = Instant::now();
        let tracker = &self.inner.tracker;
        tracker.close();
        let outcome = match tokio::time::timeout(bound, tracker.wait()).await {
            Ok(()) => Ok(()),
            Err(_) => {
                let in_flight = tracker.len();
                self.inner.abort.cancel();
                // Cancelled calls end at their next wait; a call still computing is left to the
                // runtime's end rather than holding the stop past its bound.
                let _ = tokio::time::timeout(ABORT_GRACE, tracker.wait()).await;
                Err(DrainTimeout { in_flight, waited: started.elapsed() })
            }
        };
        tracker.reopen();
        let mut state = self.inner.state.lock().await;
        if let State::Stopped { listener } = &mut *state
            && let Some(listener) = listener.take()
        {
            listener.close().await;
        }
        outcome
    }

    /// oslo's SIGHUP hook; nothing to do.
    pub fn reset(&self) {}
}

/// Takes messages off the listener while the server runs; returns the listener when stopped.
async fn consume(inner: Arc<Inner>, mut listener: Listener, stop: CancellationToken) -> Listener {
    // One wait for the stop signal across the loop: registering with the token and leaving it
    // again on every message would cost as much as the rest of the loop. It is polled only
    // when the loop has to wait; a stop during a stream of messages is seen at the loop's top.
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    let runtime = Handle::current();
    loop {
        if stop.is_cancelled() {
            break;
        }
        let mut waited = false;
        let slot = tokio::select! {
            biased;
            slot = acquire(inner.backlog.clone(), &mut waited) => slot,
            () = &mut stopped => break,
        };
        let incoming = tokio::select! {
            biased;
            next = listener.next() => match next {
                Some(incoming) => incoming,
                None => break,
            },
            () = &mut stopped => break,
        };
        let taken = Instant::now();
        // Bytes as they came off the wire; a decoded in-process request costs nothing here.
        let size = match &incoming.body {
            Body::Wire(bytes) => bytes.len().min(BACKLOG_BYTES),
            _ => 0,
        };
        let bytes = if size == 0 {
            None
        } else {
            let wanted = u32::try_from(size).expect("BACKLOG_BYTES fits in u32");
            let bytes = inner.backlog_bytes.clone();
            tokio::select! {
                biased;
                permit = bytes.acquire_many_owned(wanted) => Some(permit.expect("the server's semaphores are never closed")),
                // Not acknowledged: the broker delivers it again.
                () = &mut stopped => break,
            }
        };
        let slot = (slot, bytes);
        // Behind a pointer, which keeps the call task's future (copied when spawned) small.
        let decoded = match &incoming.body {
            // Handed over in-process, already decoded.
            Body::Request(request) => Ok(request.clone()),
            other => Request::decode(&other.wire()).map(Arc::new),
        };
        let request = match decoded {
            Ok(request) => request,
            Err(e) => {
                tracing::warn!(queue = %incoming.queue, "rejecting an undecodable message: {e}");
                let _ = incoming.reject().await;
                continue;
            }
        };
        spawn_call(&inner, &runtime, incoming, request, slot, taken);
    }
    listener
}

/// A request's place in the backlog, and its bytes (none for an in-process request).
type Place = (OwnedSemaphorePermit, Option<OwnedSemaphorePermit>);

/// Runs a request taken off the transport in a task of its own, after the duplicate check.
fn spawn_call(
    inner: &Arc<Inner>,
    runtime: &Handle,
    incoming: Incoming,
    request: Arc<Request>,
    slot: Place,
    taken: Instant,
) {
    let duplicate = is_duplicate(inner, request.unique_id.as_deref());
    // An acknowledgement can wait on the broker (RabbitMQ's goes through its connection's
    // task), so it happens in the call's own task: the consume loop goes straight back for the
    // next delivery. The call's future (over a
    // kilobyte: dispatch, reply, retry) is boxed once here; tokio would otherwise copy it whole
    // into the task and again each time the task changes stage.
    let call = Box::pin(acknowledge_then_handle(inner.clone(), incoming, request, duplicate, slot, taken));
    inner.tracker.spawn_on(call, runtime);
}

/// What an in-process transport hands a request to as it is published, when this server has
/// nothing older to take: the consume loop's work for one message, without the loop's
/// wake-up. It declines (the message is queued for the loop) when the backlog is full or the
/// body is not a decoded request. It holds the server weakly: the listener holding it is the
/// server's own.
fn direct_handler(inner: &Arc<Inner>) -> DirectHandler {
    let inner = Arc::downgrade(inner);
    // Calls run on the server's runtime, whichever task or thread published them.
    let runtime = Handle::current();
    Box::new(move |incoming| {
        let Some(inner) = inner.upgrade() else { return Some(incoming) };
        let Body::Request(request) = &incoming.body else { return Some(incoming) };
        let Ok(slot) = inner.backlog.clone().try_acquire_owned() else { return Some(incoming) };
        let slot = (slot, None);
        let request = request.clone();
        spawn_call(&inner, &runtime, incoming, request, slot, Instant::now());
        None
    })
}

/// oslo acknowledges RPC requests before dispatching them (at-most-once), and drops a
/// duplicate after acknowledging it.
async fn acknowledge_then_handle(
    inner: Arc<Inner>,
    incoming: Incoming,
    request: Arc<Request>,
    duplicate: bool,
    slot: Place,
    taken: Instant,
) {
    let queue = incoming.queue.clone();
    let deadline = incoming.deadline;
    if let Err(e) = incoming.ack().await {
        tracing::warn!(%queue, method = %request.method, "could not acknowledge; the request is dropped, as oslo does: {e}");
        return;
    }
    if duplicate {
        tracing::info!(%queue, method = %request.method, "duplicate message dropped (same _unique_id)");
        return;
    }
    match request_span(&request) {
        Some(span) => handle(inner, request, deadline, slot, taken).instrument(span).await,
        None => handle(inner, request, deadline, slot, taken).await,
    }
}

/// The span a call's log lines (the guest's own included) carry when its caller sent oslo's
/// request ids, as oslo.log prints `[req-... ...]` on every line of a request.
fn request_span(request: &Request) -> Option<tracing::Span> {
    let id = |key| request.context.get(key).and_then(Value::as_str);
    let (request_id, global) = (id("request_id"), id("global_request_id"));
    if request_id.is_none() && global.is_none() {
        return None;
    }
    // Only the ids sent are recorded: an empty field would print as `global_request_id=""`.
    let span =
        tracing::info_span!("req", request_id = tracing::field::Empty, global_request_id = tracing::field::Empty);
    if let Some(id) = request_id {
        span.record("request_id", id);
    }
    if let Some(id) = global {
        span.record("global_request_id", id);
    }
    Some(span)
}

/// Whether a request's `_unique_id` is among the last ones seen (a duplicate, to drop).
fn is_duplicate(inner: &Inner, unique_id: Option<&str>) -> bool {
    unique_id.is_some_and(|id| lock(&inner.recent).seen_before(id))
}

async fn handle(inner: Arc<Inner>, mut request: Arc<Request>, deadline: Option<Instant>, _slot: Place, taken: Instant) {
    let expired = |what: &str| {
        let late = deadline.is_some_and(|d| Instant::now() >= d);
        if late {
            tracing::info!(method = %request.method, "the caller's deadline passed {what}; the call is not run");
        }
        late
    };
    if expired("before it was dequeued") {
        return;
    }
    let endpoint = match inner.dispatcher.select(&request) {
        Ok(endpoint) => endpoint,
        Err(failure) => {
            tracing::debug!(method = %request.method, "{}: {}", failure.class, failure.message);
            if let Some(to) = &request.reply {
                send_reply(&inner, to, Reply::failure(&to.msg_id, &failure)).await;
            }
            return;
        }
    };
    // The endpoint's own bound first, then an executor slot: calls waiting for a busy
    // endpoint do not occupy slots other endpoints could use.
    let mut waited = false;
    let endpoint_slot = match endpoint.concurrency() {
        Some(sem) => Some(acquire(sem, &mut waited).await),
        None => None,
    };
    let running = acquire(inner.executor.clone(), &mut waited).await;
    if waited && expired("while it waited for an executor slot") {
        return;
    }
    let started = Instant::now();
    let heartbeat = request.reply.as_ref().and_then(|to| start_heartbeat(&inner, to, &request.method));
    let outcome = tokio::select! {
        // The call first: most finish in their first poll, before the abort signal is even
        // registered with.
        biased;
        // Settled, so this is the only reference unless a fanout gave the same in-process
        // request to several servers: then it is copied.
        outcome = inner.dispatcher.invoke(endpoint.as_ref(), Arc::make_mut(&mut request), deadline) => outcome,
        () = inner.abort.cancelled() => {
            tracing::warn!(method = %request.method, endpoint = endpoint.name(), "call cancelled: the server stopped waiting for it");
            return;
        }
    };
    if let Some(hb) = heartbeat {
        hb.abort();
    }
    let timing = CallTiming { queued: started.saturating_duration_since(taken), ran: started.elapsed() };
    endpoint.observe(&request.method, outcome.as_ref().map(|_| ()), timing);
    // The call is done: its slots go to the next call while the reply is published.
    drop((running, endpoint_slot));
    let Some(to) = &request.reply else {
        if let Err(f) = outcome {
            tracing::info!(method = %request.method, endpoint = endpoint.name(), "cast failed: {}: {}", f.class, f.message);
        }
        return;
    };
    let reply = match outcome {
        Ok(result) => Reply::result(&to.msg_id, result),
        Err(failure) => Reply::failure(&to.msg_id, &failure),
    };
    send_reply(&inner, to, reply).await;
}

/// A permit, without building the waiting future when one is free (the common case); sets
/// `waited` when there was none.
async fn acquire(semaphore: Arc<Semaphore>, waited: &mut bool) -> OwnedSemaphorePermit {
    match semaphore.clone().try_acquire_owned() {
        Ok(permit) => permit,
        Err(_) => {
            *waited = true;
            Box::pin(semaphore.acquire_owned()).await.expect("the server's semaphores are never closed")
        }
    }
}

/// The longest call-monitor heartbeat interval honoured (half a caller's `_timeout`); tokio's
/// timers take about two years at most, and no caller waits that long for a reply.
const MAX_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Sends `ending: false` heartbeats every `int(_timeout) / 2` seconds while the call runs, as
/// oslo's dispatcher watchdog does; none when that interval is below one second.
fn start_heartbeat(inner: &Arc<Inner>, to: &ReplyTo, method: &str) -> Option<JoinHandle<()>> {
    let timeout = match &to.call_monitor_timeout {
        Value::Null => return None,
        Value::Number(n) => n.as_f64().unwrap_or(0.0).trunc(),
        Value::Bool(b) => f64::from(u8::from(*b)),
        other => {
            tracing::warn!("Client provided an invalid timeout value of {other}");
            return None;
        }
    };
    if timeout == 0.0 {
        return None;
    }
    // A `_timeout` of 1e300 (or NaN, or negative) is no interval a timer can take: the caller
    // gets no heartbeats, as for one below a second, and the host does not panic.
    let period = match Duration::try_from_secs_f64(timeout / 2.0) {
        Ok(period) if period >= Duration::from_secs(1) && period <= MAX_HEARTBEAT_INTERVAL => period,
        _ => {
            tracing::warn!("Client provided an invalid timeout value of {}", to.call_monitor_timeout);
            return None;
        }
    };
    let (inner, to, method) = (inner.clone(), to.clone(), method.to_owned());
    Some(tokio::spawn(async move {
        loop {
            tokio::time::sleep(period).await;
            tracing::debug!(%method, "sending a call-monitor heartbeat");
            let body = Body::reply(Reply::heartbeat(&to.msg_id));
            if let Err(e) = inner.transport.send_reply(&to.reply_q, body).await {
                tracing::debug!("call-monitor heartbeat failed: {e}");
                return;
            }
        }
    }))
}

/// Publishes a reply. One whose queue is missing is retried in the background for a while (oslo
/// retries every 0.25 s for `kombu_missing_consumer_retry_timeout`), without the call's place in
/// the backlog: see `reply_retry.rs`.
async fn send_reply(inner: &Arc<Inner>, to: &ReplyTo, reply: Reply) {
    let body = Body::reply(reply);
    let sent = tokio::select! {
        sent = inner.transport.send_reply(&to.reply_q, body.clone()) => sent,
        // A broker outage must not keep `wait` past its bound.
        () = inner.abort.cancelled() => {
            tracing::warn!(reply_q = %to.reply_q, msg_id = %to.msg_id, "reply abandoned: the server stopped waiting for it");
            return;
        }
    };
    match sent {
        Ok(()) => {}
        Err(e) if e.is_unroutable() => {
            let retry = Retry {
                transport: inner.transport.clone(),
                within: inner.options.reply_retry,
                abort: inner.abort.clone(),
            };
            inner.retries.start(retry, to, &body, &e);
        }
        Err(e) if e.kind == ErrorKind::TooLarge => {
            tracing::warn!(reply_q = %to.reply_q, msg_id = %to.msg_id, "{e}; the caller gets an error reply instead");
            // The rpc layer's own error class, in the module the host's errors use.
            let failure = RemoteFailure::new(
                "MessageTooLarge",
                "wasmrpc.errors",
                &format!("the reply is too large to send: {}", e.message),
            );
            if let Err(e) =
                inner.transport.send_reply(&to.reply_q, Body::reply(Reply::failure(&to.msg_id, &failure))).await
            {
                tracing::warn!(reply_q = %to.reply_q, msg_id = %to.msg_id, "the error reply could not be sent either: {e}");
            }
        }
        Err(e) => tracing::warn!(reply_q = %to.reply_q, msg_id = %to.msg_id, "the reply could not be sent: {e}"),
    }
}
