//! One error enum per operation, around a shared [`StorageError`].
//!
//! Messages here are for operators and logs; a gateway maps variants to its own stable
//! codes and never shows storage details to clients.

use uuid::Uuid;

use crate::codec::CodecError;
use crate::expected::ExpectedVersion;
use crate::stream_name::StreamName;

/// A failure of the storage underneath, shared by every operation.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// RocksDB reported an error (I/O, corruption it detected, …).
    #[error("storage engine error: {0}")]
    Engine(String),
    /// A stored record could not be decoded or contradicts the log's invariants.
    #[error("corrupted record at {location}: {reason}")]
    Corrupted { location: String, reason: String },
    /// The log was opened read-only.
    #[error("the log is open read-only")]
    ReadOnly,
    /// The log's writer has shut down.
    #[error("the log is closed")]
    Closed,
    /// A batch write failed; the writer refuses everything after it until the log is
    /// reopened (which rebuilds positions and heads from what is really on disk).
    #[error("the log failed and must be reopened: {0}")]
    Failed(String),
}

impl From<rocksdb::Error> for StorageError {
    fn from(e: rocksdb::Error) -> Self {
        StorageError::Engine(e.into_string())
    }
}

impl StorageError {
    pub(crate) fn corrupted(location: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        StorageError::Corrupted {
            location: location.into(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn codec(location: impl Into<String>, e: CodecError) -> Self {
        Self::corrupted(location, e)
    }
}

/// Why an append was refused.
///
/// Every variant except `Storage` means nothing was written. For `Storage` (`Engine`,
/// `Failed`, `Closed` after the append was queued) the outcome is unknown: the batch may
/// have reached the write-ahead log before the failure. Retry with the same event ids; the
/// log recognises a retry of what was written.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    #[error("stream {stream}: expected version {expected:?}, actual {actual:?}")]
    WrongExpectedVersion {
        stream: StreamName,
        expected: ExpectedVersion,
        /// The stream's actual last version; `None` when it does not exist.
        actual: Option<u64>,
    },
    /// Some, but not all, of the event ids are already stored, or they are stored in
    /// another stream or another order than this append: not a retry of one append.
    #[error("event {event_id} is already stored, but this append is not a retry of the one that stored it")]
    PartialDuplicate { event_id: Uuid },
    /// An event id is already stored with different content.
    #[error("event id {event_id} was already used for an event with different content")]
    EventIdReused { event_id: Uuid },
    #[error("event id {event_id} appears twice in one append")]
    DuplicateIdInAppend { event_id: Uuid },
    #[error("an append must carry at least one event")]
    NoEvents,
    #[error("event of {size} bytes exceeds the limit of {limit}")]
    EventTooLarge { size: usize, limit: usize },
    #[error("append of {size} bytes / {count} events exceeds the limits")]
    AppendTooLarge { size: usize, count: usize },
    #[error("invalid event type name {0:?}")]
    InvalidEventType(String),
    /// The writer's queue is full; retry later (load shedding, nothing was queued).
    #[error("the log is overloaded; retry later")]
    Overloaded,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why a read failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    #[error("invalid category {0:?}")]
    InvalidCategory(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why a subscription could not continue.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The log shut down; resume from the last position seen once it is back.
    #[error("the log is closed")]
    Closed,
}

impl From<StorageError> for SubscribeError {
    fn from(e: StorageError) -> Self {
        SubscribeError::Read(ReadError::Storage(e))
    }
}

/// Why a snapshot could not be written or read.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    #[error("snapshot of {stream} at version {version} is beyond the stream's version {actual:?}")]
    BeyondStream {
        stream: StreamName,
        version: u64,
        actual: Option<u64>,
    },
    #[error("snapshot of {size} bytes exceeds the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why the log could not be opened.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error("data directory holds log format {found}, this build reads {supported}")]
    IncompatibleFormat { found: u8, supported: u8 },
    #[error("cannot start the writer thread: {0}")]
    Thread(String),
    #[error("invalid log options: {0}")]
    InvalidOptions(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}
