//! A wake-up signal for exactly one waiting task: what a call's reply inbox and a `memory://`
//! consumer wait on.
//!
//! tokio's `Notify` serves any number of waiters, so each wait enters a waiter list under a
//! mutex and each notification takes that mutex again; with one such hand-off on each side of
//! an in-process call, that was ~4% of the call's instructions. One waiter needs only an
//! [`AtomicWaker`] and a flag. Like `Notify::notify_one`, a notification with nobody waiting
//! leaves a permit, so the next wait returns at once and nothing sent between a look at the
//! queue and the wait is missed.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use atomic_waker::AtomicWaker;

/// A one-permit signal for a single waiter.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    waker: AtomicWaker,
    permit: AtomicBool,
}

impl Signal {
    /// Wakes the waiter, or leaves a permit for its next wait.
    pub fn notify(&self) {
        self.permit.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Waits for a notification (returns at once if one is pending), consuming it. Only one
    /// task may wait at a time: a second waiter would replace the first one's waker.
    pub async fn notified(&self) {
        poll_fn(|cx| {
            if self.permit.swap(false, Ordering::Acquire) {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            // A notification between the look above and the registration woke no one: look again.
            if self.permit.swap(false, Ordering::Acquire) { Poll::Ready(()) } else { Poll::Pending }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::task::{Context, Wake, Waker};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_notification_before_the_wait_is_kept_once() {
        let s = Signal::default();
        s.notify();
        s.notify();
        tokio::time::timeout(Duration::from_secs(5), s.notified()).await.expect("the permit was kept");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), s.notified()).await.is_err(),
            "two notifications leave one permit, as Notify::notify_one does"
        );
    }

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_waiting_task_is_woken_by_the_next_notification() {
        let s = Signal::default();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut wait = pin!(s.notified());
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        s.notify();
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "the waiter's waker was called");
        assert!(wait.as_mut().poll(&mut cx).is_ready());
        s.notify();
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "nobody waits now: only a permit is left");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiter_is_woken_from_another_thread_every_time() {
        let s = Arc::new(Signal::default());
        let ping = Arc::new(Signal::default());
        let waiter = {
            let (s, ping) = (s.clone(), ping.clone());
            tokio::spawn(async move {
                for _ in 0..10_000 {
                    s.notified().await;
                    ping.notify();
                }
            })
        };
        for _ in 0..10_000 {
            s.notify();
            tokio::time::timeout(Duration::from_secs(5), ping.notified()).await.expect("no wake-up was lost");
        }
        waiter.await.unwrap();
    }
}
