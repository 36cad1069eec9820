//! Per-caller rate limits: a token bucket per key (a user; for the unauthenticated login
//! route an email from one client address, and a client address). Over the limit a
//! request gets 429 with `Retry-After` and does nothing.
//!
//! The buckets are `governor`'s (GCRA, lock-free per key): one keyed limiter per [`Limit`],
//! so each key is judged by its own limit, also when idle keys are dropped.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

/// Limits of one bucket.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Requests allowed in a burst (at least 1).
    pub burst: u32,
    /// Requests per second sustained.
    pub per_second: f64,
}

impl Limit {
    pub const API: Limit = Limit {
        burst: 100,
        per_second: 50.0,
    };
    /// Password guesses at one email from one client address.
    pub const LOGIN: Limit = Limit {
        burst: 10,
        per_second: 0.2,
    };
    /// Logins from one client address, whatever the email (credential stuffing).
    pub const LOGIN_PER_ADDRESS: Limit = Limit {
        burst: 30,
        per_second: 1.0,
    };
    /// `POST /v1/bootstrap` (unauthenticated, hashes a password), for the whole server.
    pub const BOOTSTRAP: Limit = Limit {
        burst: 20,
        per_second: 1.0,
    };
}

type Keyed = DefaultKeyedRateLimiter<String>;

/// Token buckets by key, one `governor` limiter per distinct [`Limit`].
#[derive(Default)]
pub struct RateLimiter {
    limiters: Mutex<HashMap<(u64, u64), Arc<Keyed>>>,
}

/// Keys kept by one limiter before those whose buckets are full again are dropped.
const MAX_KEYS: usize = 100_000;

impl Limit {
    /// The `governor` quota: `burst` at once, one more every `1 / per_second` s.
    fn quota(self) -> Quota {
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        let period = Duration::from_secs_f64(1.0 / self.per_second.max(1e-6));
        Quota::with_period(period.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst)
    }
}

impl RateLimiter {
    fn limiter(&self, limit: Limit) -> Arc<Keyed> {
        let mut limiters = self.limiters.lock().unwrap_or_else(|e| e.into_inner());
        limiters
            .entry((u64::from(limit.burst), limit.per_second.to_bits()))
            .or_insert_with(|| Arc::new(Keyed::keyed(limit.quota())))
            .clone()
    }

    /// Takes one token for `key`; `false` when none is left.
    pub fn allow(&self, key: &str, limit: Limit) -> bool {
        self.take(key, limit).is_ok()
    }

    /// Takes one token for `key`, or says how long until one is there.
    ///
    /// # Errors
    /// The wait until the bucket holds a token again.
    pub fn take(&self, key: &str, limit: Limit) -> Result<(), Duration> {
        let limiter = self.limiter(limit);
        if limiter.len() >= MAX_KEYS {
            limiter.retain_recent();
        }
        limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused() {
        let l = RateLimiter::default();
        let limit = Limit {
            burst: 3,
            per_second: 0.001,
        };
        assert!((0..3).all(|_| l.allow("u", limit)));
        assert!(!l.allow("u", limit));
        assert!(l.allow("other", limit), "buckets are per key");
    }

    #[test]
    fn a_refusal_says_how_long_until_the_next_token() {
        let l = RateLimiter::default();
        let limit = Limit {
            burst: 1,
            per_second: 0.2,
        };
        assert!(l.take("u", limit).is_ok());
        let wait = l.take("u", limit).unwrap_err();
        assert!(
            wait > std::time::Duration::from_millis(4_900)
                && wait <= std::time::Duration::from_secs(5),
            "{wait:?}"
        );
    }
}
