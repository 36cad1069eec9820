//! Per-caller rate limits: a token bucket per key (a user; for the unauthenticated login
//! route an email from one client address, and a client address). Over the limit a
//! request gets 429 with `Retry-After` and does nothing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Limits of one bucket.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Requests allowed in a burst.
    pub burst: f64,
    /// Requests per second sustained.
    pub per_second: f64,
}

impl Limit {
    pub const API: Limit = Limit {
        burst: 100.0,
        per_second: 50.0,
    };
    /// Password guesses at one email from one client address.
    pub const LOGIN: Limit = Limit {
        burst: 10.0,
        per_second: 0.2,
    };
    /// Logins from one client address, whatever the email (credential stuffing).
    pub const LOGIN_PER_ADDRESS: Limit = Limit {
        burst: 30.0,
        per_second: 1.0,
    };
    /// `POST /v1/bootstrap` (unauthenticated, hashes a password), for the whole server.
    pub const BOOTSTRAP: Limit = Limit {
        burst: 20.0,
        per_second: 1.0,
    };
}

struct Bucket {
    tokens: f64,
    at: Instant,
    /// The bucket's own limit: idle buckets are judged by it when evicting.
    limit: Limit,
}

/// Token buckets by key.
#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Buckets kept before idle (full) ones are dropped.
const MAX_KEYS: usize = 100_000;

impl RateLimiter {
    /// Takes one token for `key`; `false` when none is left.
    pub fn allow(&self, key: &str, limit: Limit) -> bool {
        self.take(key, limit).is_ok()
    }

    /// Takes one token for `key`, or says how long until one is there.
    ///
    /// # Errors
    /// The wait until the bucket holds a token again.
    pub fn take(&self, key: &str, limit: Limit) -> Result<(), std::time::Duration> {
        let now = Instant::now();
        let mut buckets = match self.buckets.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * b.limit.per_second
                    < b.limit.burst
            });
        }
        let b = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: limit.burst,
            at: now,
            limit,
        });
        b.tokens =
            (b.tokens + now.duration_since(b.at).as_secs_f64() * limit.per_second).min(limit.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(std::time::Duration::from_secs_f64(
                (1.0 - b.tokens) / limit.per_second.max(f64::MIN_POSITIVE),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused() {
        let l = RateLimiter::default();
        let limit = Limit {
            burst: 3.0,
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
            burst: 1.0,
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
