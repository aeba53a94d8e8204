//! systemd's readiness protocol (`Type=notify`), through the sd-notify crate: ready once
//! serving, reloading during SIGHUP, stopping while draining, a status line, and the watchdog
//! when the unit sets `WatchdogSec`. Outside systemd (`NOTIFY_SOCKET` unset) every call does
//! nothing.

use std::time::Duration;

use sd_notify::NotifyState;

/// Serving; `status` is what `systemctl status` shows.
pub(super) fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Not serving yet: `status` says why (waiting for the broker).
pub(super) fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// Re-reading the configuration (systemd's `Type=notify-reload` wants the monotonic time).
pub(super) fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// Draining before exit.
pub(super) fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("draining in-flight calls")]);
}

/// Pings the watchdog at half its interval for as long as the process runs, when the unit
/// asks for one: a process whose async runtime is wedged stops pinging and systemd restarts it.
pub(super) fn start_watchdog() {
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return;
    }
    let period = Duration::from_micros(usec) / 2;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            send(&[NotifyState::Watchdog]);
        }
    });
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::debug!("sd_notify: {e}");
    }
}
