//! The [`EventStore`] trait: the boundary the rest of Switchboard depends on.
//!
//! Everything above the log (actors, projections, the gateway, the replay tool) talks to an
//! `Arc<dyn EventStore>`, so a second backend can be added without touching callers.
//! Methods named `*_blocking` block the calling thread on storage: call them from a
//! dedicated thread or `tokio::task::spawn_blocking`, never on an async executor thread.
//! [`EventStore::append`] never blocks: it queues the append and returns a future that
//! resolves once the append is durable. Dropping that future does not cancel the append.
//! Dropping the last handle of a [`crate::RocksLog`] waits for its writer to drain, so do
//! it (or call `shutdown`) off the executor.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use tokio::sync::broadcast;

use crate::envelope::{AppendResult, EventData, RecordedEvent};
use crate::error::{AppendError, ReadError, SnapshotError};
use crate::expected::ExpectedVersion;
use crate::snapshot::Snapshot;
use crate::stream_name::StreamName;
use crate::verify::VerifyReport;

/// Resolves when the append is durable (or refused).
pub type AppendFuture = Pin<Box<dyn Future<Output = Result<AppendResult, AppendError>> + Send>>;

/// A recorded event shared by everyone who reads it live: the writer publishes each event
/// once, and every subscription hands out the same allocation (a subscriber copies nothing).
/// It reads as the [`RecordedEvent`] it holds, and carries a memo ([`SharedRecord::memo`]) in
/// which the first reader that decodes the payload leaves the decoded form for the rest.
pub type SharedEvent = Arc<SharedRecord>;

/// The [`RecordedEvent`] behind a [`SharedEvent`], and the memo its readers share.
pub struct SharedRecord {
    record: RecordedEvent,
    memo: OnceLock<Box<dyn Any + Send + Sync>>,
}

impl SharedRecord {
    /// `record`, ready to be shared, with an empty memo.
    pub fn new(record: RecordedEvent) -> SharedEvent {
        Arc::new(Self {
            record,
            memo: OnceLock::new(),
        })
    }

    pub fn record(&self) -> &RecordedEvent {
        &self.record
    }

    /// The record of `event`: moved out if nobody else holds it, else a copy.
    pub fn unwrap_or_clone(event: SharedEvent) -> RecordedEvent {
        Arc::try_unwrap(event).map_or_else(|shared| shared.record.clone(), |own| own.record)
    }

    /// The value the first caller made of the record with `init`, made now if nobody has:
    /// every reader of a live event can share one decode of its payload. One type per
    /// process is meant to live here (the decoded form the readers agree on); asked for
    /// another type than the one stored, this is `None` (decode for yourself).
    ///
    /// Nobody waits for anyone else's `init` (a reader on an async executor must not wait
    /// for a read model's thread that the scheduler put aside): callers that race to fill
    /// an empty memo each make their own value, and the first one stored stays.
    pub fn memo<T: Any + Send + Sync>(&self, init: impl FnOnce(&RecordedEvent) -> T) -> Option<&T> {
        if self.memo.get().is_none() {
            let _ = self.memo.set(Box::new(init(&self.record)));
        }
        self.memo.get()?.downcast_ref()
    }
}

impl std::ops::Deref for SharedRecord {
    type Target = RecordedEvent;

    fn deref(&self) -> &RecordedEvent {
        &self.record
    }
}

impl std::fmt::Debug for SharedRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.record.fmt(f)
    }
}

/// The events of one committed group-commit batch, in position order, as published live.
pub type LiveBatch = Arc<Vec<SharedEvent>>;

/// Direction of a stream read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Backward,
}

/// An EventStore-style log: streams with optimistic concurrency, a global order, reads,
/// live notifications, snapshots and verification.
pub trait EventStore: Send + Sync + 'static {
    /// The keys that seal parts of the events written here (message texts; see
    /// [`crate::keyring`]), outside the log; `None` where nothing is sealed.
    fn keyring(&self) -> Option<Arc<crate::keyring::Keyring>> {
        None
    }

    /// Appends `events` to `stream` atomically if `expected` holds. Resolves after fsync.
    fn append(
        &self,
        stream: StreamName,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> AppendFuture;

    /// As [`EventStore::append`], blocking the calling thread until durable.
    ///
    /// # Panics
    /// When called on an async executor thread (tokio refuses to block one): use
    /// [`EventStore::append`] there.
    ///
    /// # Errors
    /// [`AppendError`]; in every case nothing was written.
    fn append_blocking(
        &self,
        stream: StreamName,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, AppendError>;

    /// Up to `limit` events of `stream` starting at version `from` (inclusive), forward or
    /// backward. Backward from `u64::MAX` reads from the end.
    ///
    /// # Errors
    /// [`ReadError`] on storage failure or corruption.
    fn read_stream_blocking(
        &self,
        stream: &StreamName,
        from: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, ReadError>;

    /// Up to `limit` events of `$all` from global position `from` (inclusive).
    ///
    /// # Errors
    /// [`ReadError`] on storage failure or corruption.
    fn read_all_blocking(&self, from: u64, limit: usize) -> Result<Vec<RecordedEvent>, ReadError>;

    /// Up to `limit` events of every stream of `category`, in global order, from position
    /// `from` (inclusive).
    ///
    /// # Errors
    /// [`ReadError::InvalidCategory`], or storage failure.
    fn read_category_blocking(
        &self,
        category: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, ReadError>;

    /// The stream's last version, `None` if it has no events.
    ///
    /// # Errors
    /// [`ReadError`] on storage failure.
    fn stream_version_blocking(&self, stream: &StreamName) -> Result<Option<u64>, ReadError>;

    /// The stored event with this id, if any.
    ///
    /// # Errors
    /// [`ReadError`] on storage failure.
    fn find_event_blocking(&self, event_id: uuid::Uuid)
        -> Result<Option<RecordedEvent>, ReadError>;

    /// Position the next committed event will get (= number of events in `$all`). Never
    /// blocks.
    fn next_position(&self) -> u64;

    /// A receiver of every batch committed from now on; `None` once the log is closed.
    fn live(&self) -> Option<broadcast::Receiver<LiveBatch>>;

    /// Why the log cannot take appends right now (its storage failed and has not
    /// recovered yet), for health checks; `None` when it can. The detail is for
    /// operators, not clients.
    fn write_unavailable(&self) -> Option<String> {
        None
    }

    /// Stores `snapshot` for `stream` unless a newer one is already stored.
    ///
    /// # Errors
    /// [`SnapshotError::BeyondStream`] when the snapshot covers versions the stream does not
    /// have; storage failure.
    fn write_snapshot_blocking(
        &self,
        stream: &StreamName,
        snapshot: Snapshot,
    ) -> Result<(), SnapshotError>;

    /// The latest snapshot of `stream`.
    ///
    /// # Errors
    /// Storage failure or a corrupted record.
    fn read_snapshot_blocking(
        &self,
        stream: &StreamName,
    ) -> Result<Option<Snapshot>, SnapshotError>;

    /// The position a named consumer (a process manager) has processed up to.
    ///
    /// # Errors
    /// Storage failure or a corrupted record.
    fn read_checkpoint_blocking(&self, consumer: &str) -> Result<Option<u64>, ReadError>;

    /// Records that `consumer` has processed everything up to `position`. Not synced: a
    /// checkpoint lost in a crash only makes the consumer see some events again, which
    /// its effects must tolerate anyway (they are idempotent).
    ///
    /// # Errors
    /// Storage failure; [`crate::StorageError::ReadOnly`] on a read-only log.
    fn write_checkpoint_blocking(&self, consumer: &str, position: u64) -> Result<(), ReadError>;

    /// Verifies one stream's hash chain and index.
    ///
    /// # Errors
    /// [`ReadError`] when storage fails; a broken chain is reported in the [`VerifyReport`].
    fn verify_stream_blocking(&self, stream: &StreamName) -> Result<VerifyReport, ReadError>;

    /// Verifies the whole log: `$all` contiguous, every chain, every index entry.
    ///
    /// # Errors
    /// [`ReadError`] when storage fails; a broken chain is reported in the [`VerifyReport`].
    fn verify_all_blocking(&self) -> Result<VerifyReport, ReadError>;
}

/// Async forms of the blocking reads, run on tokio's blocking pool.
pub mod nonblocking {
    use super::*;

    async fn run<T: Send + 'static>(
        f: impl FnOnce() -> Result<T, ReadError> + Send + 'static,
    ) -> Result<T, ReadError> {
        tokio::task::spawn_blocking(f).await.map_err(|e| {
            ReadError::Storage(crate::error::StorageError::Engine(format!(
                "read task failed: {e}"
            )))
        })?
    }

    /// [`EventStore::read_stream_blocking`] off the executor.
    ///
    /// # Errors
    /// As the blocking form.
    pub async fn read_stream(
        store: &Arc<dyn EventStore>,
        stream: &StreamName,
        from: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, ReadError> {
        let (store, stream) = (store.clone(), stream.clone());
        run(move || store.read_stream_blocking(&stream, from, direction, limit)).await
    }

    /// [`EventStore::read_all_blocking`] off the executor.
    ///
    /// # Errors
    /// As the blocking form.
    pub async fn read_all(
        store: &Arc<dyn EventStore>,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, ReadError> {
        let store = store.clone();
        run(move || store.read_all_blocking(from, limit)).await
    }

    /// [`EventStore::read_category_blocking`] off the executor.
    ///
    /// # Errors
    /// As the blocking form.
    pub async fn read_category(
        store: &Arc<dyn EventStore>,
        category: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, ReadError> {
        let (store, category) = (store.clone(), category.to_owned());
        run(move || store.read_category_blocking(&category, from, limit)).await
    }
}
