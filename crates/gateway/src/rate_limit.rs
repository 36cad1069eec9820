//! Per-caller rate limits: a token bucket per key (a user; for the unauthenticated login
//! route an email from one client address, and a client address). Over the limit a
//! request gets 429 with `Retry-After` and does nothing.
//!
//! The buckets are `governor`'s (GCRA, lock-free per key): one keyed limiter per [`Limit`],
//! so each key is judged by its own limit, also when idle keys are dropped.
//!
//! Every authenticated request takes a token from its user's [`Limit::API`] bucket, so that
//! path ([`RateLimiter::take_api`]) takes no lock but the bucket's shard and allocates
//! nothing: its limiter is made with the [`RateLimiter`] and keyed by the user id itself.

use std::collections::HashMap;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::UserId;
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

/// Token buckets by key, one `governor` limiter per distinct [`Limit`].
pub struct RateLimiter {
    /// Users' [`Limit::API`] buckets.
    api: Bounded<UserId>,
    /// Every other limit's, made when first asked for (logins, bootstrap: rare).
    limiters: Mutex<HashMap<LimitKey, Arc<Bounded<String>>>>,
}

/// A [`Limit`] as a map key: its burst and the bits of its rate.
type LimitKey = (u64, u64);

impl Default for RateLimiter {
    fn default() -> Self {
        Self {
            api: Bounded::new(Limit::API),
            limiters: Mutex::default(),
        }
    }
}

/// Keys kept by one limiter before those whose buckets are full again are dropped.
const MAX_KEYS: usize = 100_000;

/// How many takes go by between two looks at a limiter's key count: counting locks every
/// shard of the map, so it is not done per request. A limiter holds at most this many keys
/// over [`MAX_KEYS`] before the full buckets are dropped.
const COUNT_EVERY: u64 = 1024;

/// A keyed limiter whose idle keys are dropped once it holds about [`MAX_KEYS`].
struct Bounded<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    takes: AtomicU64,
}

impl<K: Hash + Eq + Clone> Bounded<K> {
    fn new(limit: Limit) -> Self {
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(limit.quota()),
            takes: AtomicU64::new(0),
        }
    }

    fn take(&self, key: &K) -> Result<(), Duration> {
        if self
            .takes
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(COUNT_EVERY)
            && self.limiter.len() >= MAX_KEYS
        {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.limiter.len()
    }
}

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
    fn limiter(&self, limit: Limit) -> Arc<Bounded<String>> {
        let mut limiters = self.limiters.lock().unwrap_or_else(|e| e.into_inner());
        limiters
            .entry((u64::from(limit.burst), limit.per_second.to_bits()))
            .or_insert_with(|| Arc::new(Bounded::new(limit)))
            .clone()
    }

    /// Takes one token from `user`'s [`Limit::API`] bucket, or says how long until one is
    /// there.
    ///
    /// # Errors
    /// The wait until the bucket holds a token again.
    pub fn take_api(&self, user: UserId) -> Result<(), Duration> {
        self.api.take(&user)
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
        self.limiter(limit).take(&key.to_owned())
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
        let started = std::time::Instant::now();
        assert!(l.take("u", limit).is_ok());
        let wait = l.take("u", limit).unwrap_err();
        // Five seconds from the first take, less however long the machine took to get to
        // the second (with a little room for the limiter's clock, which is not `Instant`'s).
        let room = Duration::from_millis(10);
        let since = started.elapsed();
        assert!(
            wait <= Duration::from_secs(5) && wait + since + room >= Duration::from_secs(5),
            "{wait:?} after {since:?}"
        );
    }

    #[test]
    fn api_buckets_are_per_user() {
        let l = RateLimiter::default();
        let (a, b) = (UserId::random(), UserId::random());
        // Taken until refused (the bucket refills at 50 a second, so how many go through
        // depends on the machine's speed; that one is refused does not).
        let refused = (0..1_000_000).find_map(|_| l.take_api(a).err());
        let wait = refused.expect("a user who takes as fast as they can is refused");
        assert!(
            wait <= Duration::from_millis(20),
            "one token in 1/50 s: {wait:?}"
        );
        assert!(l.take_api(b).is_ok(), "buckets are per user");
    }

    #[test]
    fn a_limiter_drops_full_buckets_once_it_holds_too_many_keys() {
        // Buckets that refill within a nanosecond are full again by the time the count
        // is looked at, so all but the newest are dropped.
        let limit = Limit {
            burst: 1,
            per_second: 1e9,
        };
        let l = RateLimiter::default();
        let keys = MAX_KEYS + usize::try_from(COUNT_EVERY).unwrap_or(usize::MAX);
        for i in 0..=keys {
            assert!(l.take(&i.to_string(), limit).is_ok());
        }
        let held = l.limiter(limit).len();
        assert!(held < keys, "{held} keys held after {keys} takes");
    }
}
