//! Time, injected: the wall clock in production, a hand-driven clock in tests, so timer
//! tests run in milliseconds and deterministically.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// A source of "now" (milliseconds since the Unix epoch) that can be waited on.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> u64;
    /// Resolves once `now_ms() >= deadline_ms`.
    fn sleep_until(&self, deadline_ms: u64) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    fn sleep_until(&self, deadline_ms: u64) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let wait = deadline_ms.saturating_sub(self.now_ms());
        Box::pin(tokio::time::sleep(Duration::from_millis(wait)))
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
    moved: Arc<watch::Sender<u64>>,
}

impl ManualClock {
    pub fn new(start_ms: u64) -> Self {
        let (tx, _) = watch::channel(start_ms);
        Self {
            now: Arc::new(AtomicU64::new(start_ms)),
            moved: Arc::new(tx),
        }
    }

    /// Moves time forward by `ms`, waking every sleeper now due.
    pub fn advance(&self, ms: u64) {
        let now = self.now.fetch_add(ms, Ordering::AcqRel) + ms;
        self.moved.send_replace(now);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::Acquire)
    }

    fn sleep_until(&self, deadline_ms: u64) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let mut rx = self.moved.subscribe();
        let now = self.now.clone();
        Box::pin(async move {
            while now.load(Ordering::Acquire) < deadline_ms {
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        })
    }
}
