//! An EventStore-style event log on RocksDB.
//!
//! Every conversation, inbox and queue of Switchboard is an event-sourced stream in this log.
//! The log gives per-stream optimistic concurrency, one global order over all streams
//! (`$all`), idempotent appends, catch-up-then-live subscriptions, snapshots, and a hash
//! chain per stream so that tampering is evident. An append is acknowledged only after the
//! batch holding it was written with fsync (group commit).
//!
//! # Layout
//! - [`codec`]: the one place bytes are encoded and decoded (format-version byte + bincode).
//! - [`stream_name`]: validated `category-id` stream names.
//! - [`envelope`]: what callers append ([`EventData`]) and what the log stores
//!   ([`RecordedEvent`]), with metadata.
//! - [`expected`]: the expected-version rule of an append.
//! - [`hex`]: the one hex encoder.
//! - [`error`]: one error enum per operation around a shared [`StorageError`].
//! - [`chain`]: the per-stream hash chain (blake3).
//! - [`checkpoint`]: signed (Ed25519) checkpoints of `$all`, which show a removed tail.
//! - `keys`: key layouts of the column families.
//! - `group_commit`: the single writer thread that batches appends into one synced
//!   `WriteBatch`.
//! - [`rocks`]: [`RocksLog`], the RocksDB backend: open, recovery of heads, reads.
//! - [`subscription`]: catch-up then live subscriptions on `$all`, a category or a stream.
//! - [`snapshot`]: per-stream snapshots stored apart from events.
//! - [`verify`]: walks the log and names the first broken link.
//! - [`store`]: the [`EventStore`] trait the rest of the system depends on.

pub mod chain;
pub mod checkpoint;
pub mod codec;
pub mod envelope;
pub mod error;
pub mod expected;
mod group_commit;
pub mod hex;
pub mod keyring;
mod keys;
pub mod progress;
pub mod rocks;
pub mod snapshot;
pub mod store;
pub mod stream_name;
pub mod subscription;
pub mod verify;

pub use envelope::{AppendResult, EventData, Metadata, RecordedEvent};
pub use error::{AppendError, OpenError, ReadError, SnapshotError, StorageError, SubscribeError};
pub use expected::{ExpectedVersion, Head};
pub use group_commit::{judge_retry, validate as validate_append, Replicated, StoredRetry};
pub use progress::Progress;
pub use rocks::{LogOptions, RocksLog};
pub use snapshot::Snapshot;
pub use store::{AppendFuture, Direction, EventStore, LiveBatch, SharedEvent, SharedRecord};
pub use stream_name::{StreamName, StreamNameError};
pub use subscription::{StartFrom, Subscription, SubscriptionTarget};
pub use verify::{ChainBreak, VerifyReport};
