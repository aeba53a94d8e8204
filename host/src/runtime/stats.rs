//! What an endpoint's guests have used, counted as they run, for the host's metrics: instances
//! alive, fuel burned, the largest linear memory seen, and what became of their notifications.
//!
//! One [`GuestStats`] is handed to each load of an endpoint; the host keeps the same one
//! across reloads, so its counters only grow. Plain atomics: a call adds to them once, and a
//! scrape reads them.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// One endpoint's counters.
#[derive(Debug, Default)]
pub struct GuestStats {
    instances_live: AtomicI64,
    fuel_consumed: AtomicU64,
    peak_memory_bytes: AtomicU64,
    notifications_published: AtomicU64,
    notifications_dropped: AtomicU64,
    notifications_refused: AtomicU64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuestStatsSnapshot {
    /// Instances alive: running calls plus idle warm ones.
    pub instances_live: u64,
    /// Fuel (roughly, wasm instructions) burned by every call so far.
    pub fuel_consumed: u64,
    /// The largest linear memory any instance reached, in bytes.
    pub peak_memory_bytes: u64,
    /// Notifications handed to the notifier.
    pub notifications_published: u64,
    /// Notifications dropped by the rate limit or a full queue (the guest was told).
    pub notifications_dropped: u64,
    /// Notifications the manifest's allow list refused.
    pub notifications_refused: u64,
}

/// What became of one notification a guest emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotificationOutcome {
    Published,
    Dropped,
    Refused,
}

impl GuestStats {
    /// The counters now.
    #[must_use]
    pub fn snapshot(&self) -> GuestStatsSnapshot {
        GuestStatsSnapshot {
            instances_live: u64::try_from(self.instances_live.load(Relaxed)).unwrap_or(0),
            fuel_consumed: self.fuel_consumed.load(Relaxed),
            peak_memory_bytes: self.peak_memory_bytes.load(Relaxed),
            notifications_published: self.notifications_published.load(Relaxed),
            notifications_dropped: self.notifications_dropped.load(Relaxed),
            notifications_refused: self.notifications_refused.load(Relaxed),
        }
    }

    /// After a call: the fuel it burned and the memory its instance has.
    pub(crate) fn record_call(&self, fuel: u64, memory_bytes: usize) {
        self.fuel_consumed.fetch_add(fuel, Relaxed);
        self.peak_memory_bytes.fetch_max(memory_bytes as u64, Relaxed);
    }

    pub(crate) fn record_notification(&self, outcome: NotificationOutcome) {
        let counter = match outcome {
            NotificationOutcome::Published => &self.notifications_published,
            NotificationOutcome::Dropped => &self.notifications_dropped,
            NotificationOutcome::Refused => &self.notifications_refused,
        };
        counter.fetch_add(1, Relaxed);
    }
}

/// Counts an instance as alive for as long as it is held.
pub(crate) struct LiveInstance(Arc<GuestStats>);

impl LiveInstance {
    pub(crate) fn new(stats: &Arc<GuestStats>) -> LiveInstance {
        stats.instances_live.fetch_add(1, Relaxed);
        LiveInstance(stats.clone())
    }
}

impl Drop for LiveInstance {
    fn drop(&mut self) {
        self.0.instances_live.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up_and_instances_count_while_held() {
        let stats = Arc::new(GuestStats::default());
        let a = LiveInstance::new(&stats);
        let b = LiveInstance::new(&stats);
        stats.record_call(100, 65536);
        stats.record_call(50, 131_072);
        stats.record_call(1, 65536);
        stats.record_notification(NotificationOutcome::Published);
        stats.record_notification(NotificationOutcome::Refused);
        drop(a);
        let s = stats.snapshot();
        assert_eq!(s.instances_live, 1);
        assert_eq!(s.fuel_consumed, 151);
        assert_eq!(s.peak_memory_bytes, 131_072);
        assert_eq!((s.notifications_published, s.notifications_dropped, s.notifications_refused), (1, 0, 1));
        drop(b);
        assert_eq!(stats.snapshot().instances_live, 0);
    }
}
