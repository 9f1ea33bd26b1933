//! The one source of "now", injected so tests can pin and move time.

use std::sync::Arc;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use futures_util::future::BoxFuture;
use tokio::sync::watch;

/// Where the service reads the current instant from, and waits for a future one.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;

    /// Resolves once `now() >= at`: what makes a window close on time with no write.
    fn sleep_until(&self, at: DateTime<Utc>) -> BoxFuture<'static, ()>;
}

/// Truncates to microseconds, the precision both backends store, so an instant compares the
/// same in SQL and in Rust.
pub fn to_storage_precision(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(at)
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        to_storage_precision(Utc::now())
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let wait = (at - Utc::now()).to_std().unwrap_or_default();
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock that stands still until told to move; for tests and simulations.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<watch::Sender<DateTime<Utc>>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Arc::new(watch::Sender::new(to_storage_precision(start))),
        }
    }

    /// Moves to `at`, waking whatever waits for an instant up to it.
    pub fn set(&self, at: DateTime<Utc>) {
        self.now.send_replace(to_storage_precision(at));
    }

    pub fn advance(&self, by: TimeDelta) {
        self.now
            .send_modify(|now| *now = to_storage_precision(*now + by));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let mut changes = self.now.subscribe();
        Box::pin(async move {
            // The sender lives as long as the clock; if it is gone, time stops: never wake.
            if changes.wait_for(|now| *now >= at).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = DateTime::parse_from_rfc3339("2026-11-24T13:37:00Z")
            .unwrap()
            .to_utc();
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(TimeDelta::seconds(5));
        assert_eq!(clock.now(), start + TimeDelta::seconds(5));
    }

    #[tokio::test]
    async fn manual_sleep_wakes_when_time_is_moved_past_it() {
        let start = DateTime::parse_from_rfc3339("2026-11-24T13:37:00Z")
            .unwrap()
            .to_utc();
        let clock = ManualClock::new(start);
        let wake = tokio::spawn(clock.sleep_until(start + TimeDelta::hours(1)));
        clock.advance(TimeDelta::minutes(59));
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!wake.is_finished());
        clock.advance(TimeDelta::minutes(1));
        tokio::time::timeout(std::time::Duration::from_secs(5), wake)
            .await
            .unwrap()
            .unwrap();
    }

    #[test]
    fn storage_precision_drops_nanoseconds() {
        let at = DateTime::parse_from_rfc3339("2026-11-24T13:37:00.123456789Z")
            .unwrap()
            .to_utc();
        let expected = DateTime::parse_from_rfc3339("2026-11-24T13:37:00.123456Z")
            .unwrap()
            .to_utc();
        assert_eq!(to_storage_precision(at), expected);
    }
}
