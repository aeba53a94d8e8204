//! Per-endpoint rate limits on what a guest can make the host do for free: lines in the host's
//! log and notifications to the broker. A guest over a limit has the extra dropped, counted,
//! and summarised in one warning per interval (not one per drop, which would flood the log
//! the limit protects); a dropped notification is reported to the guest as dropped.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota};

/// Guest log lines per second, per endpoint (all its instances together), after a burst.
pub const LOG_LINES_PER_SECOND: u32 = 200;
/// Guest log lines an endpoint may write at once before the rate applies.
pub const LOG_BURST: u32 = 1000;
/// Notifications per second, per endpoint, after a burst.
pub const NOTIFICATIONS_PER_SECOND: u32 = 100;
/// Notifications an endpoint may emit at once before the rate applies.
pub const NOTIFICATION_BURST: u32 = 200;
/// At most one drop summary per endpoint in this interval.
const SUMMARY_INTERVAL: Duration = Duration::from_secs(10);

/// One endpoint's limits and drop counts.
#[derive(Debug)]
pub(crate) struct GuestRates {
    /// The endpoint, for the summaries.
    endpoint: std::sync::Arc<str>,
    logs: DefaultDirectRateLimiter,
    notifications: DefaultDirectRateLimiter,
    dropped_logs: AtomicU64,
    dropped_notifications: AtomicU64,
    /// When the last summary was logged (`None`: never).
    summarised: Mutex<Option<Instant>>,
}

impl GuestRates {
    pub(crate) fn new(endpoint: std::sync::Arc<str>) -> GuestRates {
        let quota = |rate: u32, burst: u32| {
            Quota::per_second(NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN))
                .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
        };
        GuestRates {
            endpoint,
            logs: DefaultDirectRateLimiter::direct(quota(LOG_LINES_PER_SECOND, LOG_BURST)),
            notifications: DefaultDirectRateLimiter::direct(quota(NOTIFICATIONS_PER_SECOND, NOTIFICATION_BURST)),
            dropped_logs: AtomicU64::new(0),
            dropped_notifications: AtomicU64::new(0),
            summarised: Mutex::new(None),
        }
    }

    /// Whether a log line may be written now; counts it as dropped if not.
    pub(crate) fn log_line(&self) -> bool {
        self.admit(&self.logs, &self.dropped_logs)
    }

    /// Whether a notification may be sent now; counts it as dropped if not.
    pub(crate) fn notification(&self) -> bool {
        self.admit(&self.notifications, &self.dropped_notifications)
    }

    /// Drops counted so far and not yet summarised: (log lines, notifications).
    #[cfg(test)]
    fn pending(&self) -> (u64, u64) {
        (self.dropped_logs.load(Ordering::Relaxed), self.dropped_notifications.load(Ordering::Relaxed))
    }

    fn admit(&self, limiter: &DefaultDirectRateLimiter, dropped: &AtomicU64) -> bool {
        if limiter.check().is_ok() {
            // Drops counted after the last summary are reported once the interval is over,
            // by the next line or notification, dropped or not (or when the endpoint unloads).
            if self.dropped_logs.load(Ordering::Relaxed) + self.dropped_notifications.load(Ordering::Relaxed) > 0 {
                self.summarise();
            }
            return true;
        }
        dropped.fetch_add(1, Ordering::Relaxed);
        self.summarise();
        false
    }

    /// Logs the drops counted since the last summary, at most once per interval.
    fn summarise(&self) {
        let now = Instant::now();
        {
            let mut last = self.summarised.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.is_some_and(|t| now.duration_since(t) < SUMMARY_INTERVAL) {
                return;
            }
            *last = Some(now);
        }
        self.report();
    }

    /// Logs and resets the drop counts, if any.
    fn report(&self) {
        let logs = self.dropped_logs.swap(0, Ordering::Relaxed);
        let notifications = self.dropped_notifications.swap(0, Ordering::Relaxed);
        if logs + notifications == 0 {
            return;
        }
        tracing::warn!(
            endpoint = %self.endpoint,
            dropped_log_lines = logs,
            dropped_notifications = notifications,
            "guest over its rate limits ({LOG_LINES_PER_SECOND} log lines/s, {NOTIFICATIONS_PER_SECOND} notifications/s); \
             the excess is dropped and summarised here at most every {}s",
            SUMMARY_INTERVAL.as_secs()
        );
    }
}

impl Drop for GuestRates {
    fn drop(&mut self) {
        self.report();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_excess_is_dropped_and_counted() {
        let rates = GuestRates::new("e".into());
        let sent = (0..NOTIFICATION_BURST * 3).filter(|_| rates.notification()).count() as u32;
        // The burst, plus whatever the rate refilled while the loop ran (a few at most).
        assert!((NOTIFICATION_BURST..NOTIFICATION_BURST + 50).contains(&sent), "{sent}");
        let logged = (0..LOG_BURST * 2).filter(|_| rates.log_line()).count() as u32;
        assert!((LOG_BURST..LOG_BURST + 50).contains(&logged), "{logged}");
        // The first drop was summarised at once (and reset the counts); the rest wait for the
        // next interval.
        let (logs, notifications) = rates.pending();
        assert_eq!(notifications + u64::from(sent), u64::from(NOTIFICATION_BURST * 3) - 1);
        assert_eq!(logs + u64::from(logged), u64::from(LOG_BURST * 2));
    }
}
