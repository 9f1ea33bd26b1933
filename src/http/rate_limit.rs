//! Rate limiting per caller: per credential when the server requires credentials, per client
//! IP otherwise. Over the limit: 429 `RATE_LIMITED` with `Retry-After`.

use std::{
    net::SocketAddr,
    num::NonZeroU32,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::Response,
};
use governor::{
    DefaultKeyedRateLimiter, Quota,
    clock::{Clock, DefaultClock},
};

use super::negotiate::{Format, error_response};
use crate::auth::Principal;

/// A keyed token bucket (GCRA), or nothing when disabled.
pub struct RateLimit {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
    checks: AtomicU64,
}

impl RateLimit {
    /// `per_minute` requests a minute with bursts of `burst`; 0 disables the limit.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let limiter = NonZeroU32::new(per_minute).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            DefaultKeyedRateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst))
        });
        Self {
            limiter,
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }

    /// Counts one request for `key`; `Err` holds how long to wait.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        // Forget idle callers now and then, so the table stays small.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 10_000 == 9_999 {
            limiter.retain_recent();
        }
        limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

/// Whom a request counts against.
pub fn key(principal: &Principal, client: SocketAddr) -> String {
    if principal.id == "anonymous" {
        format!("ip:{}", client.ip())
    } else {
        principal.id.clone()
    }
}

/// The 429 answer.
pub fn too_many(wait: Duration, format: Format) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = error_response(
        StatusCode::TOO_MANY_REQUESTS,
        format,
        "RATE_LIMITED",
        "too many requests; retry later",
    );
    if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refusal_per_key() {
        let limit = RateLimit::new(60, 3);
        for _ in 0..3 {
            assert!(limit.check("a").is_ok());
        }
        let wait = limit.check("a").unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        assert!(
            limit.check("b").is_ok(),
            "another caller has its own bucket"
        );
    }

    #[test]
    fn zero_disables() {
        let limit = RateLimit::new(0, 0);
        assert!((0..1000).all(|_| limit.check("a").is_ok()));
    }
}
