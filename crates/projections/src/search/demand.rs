//! Whether anyone searches: a server's index commits for its searchers, not on a clock
//! alone (as Elasticsearch's search-idle shards do).
//!
//! Each commit of the index costs about the same whatever it holds (a segment written,
//! then merged), and under a steady stream of messages the periodic commits were about
//! half of what search cost (measured with `cargo bench --bench gateway_load`: the
//! search threads' CPU per message, 11–15 µs before, 6–9 µs after). A commit only matters
//! to someone who searches, so:
//! - **while searched** (a search in the last [`SEARCH_IDLE_AFTER`]), the writer commits
//!   at most every refresh interval, as it always did;
//! - **search-idle**, it commits what it holds when the log goes quiet (no new event for a
//!   refresh interval), when a deletion waits (an erasure is committed as promptly as
//!   ever), or at the latest [`IDLE_COMMIT_INTERVALS`] refresh intervals after its last
//!   commit (what a restart indexes again stays bounded), whichever comes first;
//! - **a search never misses a document indexed more than a refresh interval before it**:
//!   a search that finds documents waiting longer than that ([`Demand::searching`]) first
//!   has them committed, waiting for the log's head like `after=` does (so the first
//!   search after an idle spell under load waits for one commit).
//!
//! The published position of an idle index (its read model lag) stays behind by what it
//! holds uncommitted, and catches up when the log goes quiet.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long after the last search an index counts as searched.
pub const SEARCH_IDLE_AFTER: Duration = Duration::from_secs(30);
/// How many refresh intervals a search-idle writer holds documents at most (30 s by
/// default; also bounded by [`super::writer::COMMIT_EVERY_EVENTS`] events).
pub const IDLE_COMMIT_INTERVALS: u32 = 30;

/// Milliseconds on the process's monotonic clock, from 1 (0 stands for "never").
fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let since = START.get_or_init(Instant::now).elapsed().as_millis();
    u64::try_from(since).unwrap_or(u64::MAX - 1) + 1
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What the queries of one index tell its writer, and the writer its queries: when the last
/// search started, and since when documents wait uncommitted.
#[derive(Debug, Default)]
pub struct Demand {
    /// When the last search started ([`now_ms`]; 0: none since the index opened).
    searched_ms: AtomicU64,
    /// Since when the oldest uncommitted document waits (0: none waits).
    pending_since_ms: AtomicU64,
    /// How long a document may wait before a search has it committed first: the writer's
    /// refresh interval (0 until a writer says).
    fresh_ms: AtomicU64,
}

impl Demand {
    /// A search starts now. Returns whether documents have waited uncommitted longer than
    /// the writer's refresh interval: the search must then have them committed before it
    /// reads (wait for the log's head, [`crate::live::Live::wait_for`]).
    pub fn searching(&self) -> bool {
        let now = now_ms();
        self.searched_ms.fetch_max(now, Ordering::AcqRel);
        stale(
            now,
            self.pending_since_ms.load(Ordering::Acquire),
            self.fresh_ms.load(Ordering::Acquire),
        )
    }

    /// Whether a search started within [`SEARCH_IDLE_AFTER`].
    pub fn searched_lately(&self) -> bool {
        searched_within(
            now_ms(),
            self.searched_ms.load(Ordering::Acquire),
            SEARCH_IDLE_AFTER,
        )
    }

    /// The writer's refresh interval.
    pub(super) fn set_fresh_within(&self, interval: Duration) {
        self.fresh_ms.store(ms(interval), Ordering::Release);
    }

    /// Documents wait uncommitted from now, unless some already did.
    pub(super) fn pending(&self) {
        let _ = self.pending_since_ms.compare_exchange(
            0,
            now_ms(),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// Nothing waits uncommitted (a commit, or a rollback).
    pub(super) fn settled(&self) {
        self.pending_since_ms.store(0, Ordering::Release);
    }
}

/// Whether a document waiting since `pending_since` (0: none) has waited longer than
/// `fresh` at `now` (all in ms).
fn stale(now: u64, pending_since: u64, fresh: u64) -> bool {
    pending_since != 0 && now.saturating_sub(pending_since) > fresh
}

/// Whether a search at `searched` (0: never) was within `window` of `now`.
fn searched_within(now: u64, searched: u64, window: Duration) -> bool {
    searched != 0 && now.saturating_sub(searched) <= ms(window)
}

/// When a server's writer commits the documents it holds:
/// - `periodic`: the earliest it may (its last commit plus the refresh interval);
/// - `searched` (a search lately) or `deleting` (a deletion waits): then;
/// - else when the log goes `quiet` (the last batch plus the refresh interval) or at the
///   `latest` (the last commit plus [`IDLE_COMMIT_INTERVALS`] intervals), whichever
///   first, never before `periodic`.
pub(super) fn commit_at(
    periodic: Instant,
    quiet: Instant,
    latest: Instant,
    searched: bool,
    deleting: bool,
) -> Instant {
    if searched || deleting {
        periodic
    } else {
        periodic.max(quiet.min(latest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_searched_index_or_a_waiting_deletion_commits_every_interval() {
        let t = Instant::now();
        let s = Duration::from_secs(1);
        let (periodic, quiet, latest) = (t + s, t + 20 * s, t + 30 * s);
        assert_eq!(commit_at(periodic, quiet, latest, true, false), periodic);
        assert_eq!(commit_at(periodic, quiet, latest, false, true), periodic);
    }

    #[test]
    fn an_idle_index_commits_when_the_log_goes_quiet_or_at_the_latest_never_sooner() {
        let t = Instant::now();
        let s = Duration::from_secs(1);
        // Under load the quiet time keeps moving: the latest bounds the wait.
        assert_eq!(
            commit_at(t + s, t + 40 * s, t + 30 * s, false, false),
            t + 30 * s
        );
        // The log went quiet: then.
        assert_eq!(
            commit_at(t + s, t + 2 * s, t + 30 * s, false, false),
            t + 2 * s
        );
        // Never before the interval since the last commit.
        assert_eq!(
            commit_at(t + 3 * s, t + 2 * s, t + 30 * s, false, false),
            t + 3 * s
        );
    }

    #[test]
    fn documents_are_stale_for_a_search_only_once_they_waited_longer_than_the_interval() {
        assert!(!stale(10_000, 0, 1_000), "nothing waits");
        assert!(!stale(10_000, 9_500, 1_000), "within the interval");
        assert!(!stale(10_000, 9_000, 1_000), "exactly the interval");
        assert!(stale(10_000, 8_999, 1_000));
        assert!(searched_within(10_000, 9_000, Duration::from_secs(30)));
        assert!(!searched_within(40_001, 10_000, Duration::from_secs(30)));
        assert!(
            !searched_within(10_000, 0, Duration::from_secs(30)),
            "never"
        );
    }

    #[test]
    fn a_search_is_remembered_and_sees_what_waits() {
        let d = Demand::default();
        d.set_fresh_within(Duration::from_secs(3600));
        assert!(!d.searched_lately());
        d.pending();
        assert!(!d.searching(), "waiting less than the interval");
        assert!(d.searched_lately());
        d.set_fresh_within(Duration::ZERO);
        // Any wait is longer than zero once a millisecond has passed; the clock is
        // monotonic, so give it one.
        let since = d.pending_since_ms.load(Ordering::Acquire);
        while now_ms() <= since {
            std::thread::yield_now();
        }
        assert!(d.searching(), "waiting longer than the interval");
        d.settled();
        assert!(!d.searching(), "committed");
    }
}
