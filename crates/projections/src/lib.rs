//! Read models (projections) built from the log's subscriptions.
//!
//! Each read model lives in its own storage under `<data>/readmodels/<name>/` (never in
//! the log's), in numbered generations ([`home`]) so a rebuild can run beside the live one
//! and switch atomically ([`live`], generic over a [`ModelKind`]). A model applies events
//! in batches and stores each batch with its checkpoint atomically (RocksDB models: one
//! `WriteBatch`, [`db`]; the search index: the tantivy commit payload), so a restart
//! neither skips nor double-applies an event ([`runner`]). Every model's writer is a
//! [`batch::BatchWriter`] around the model's [`batch::Projector`] (how events change it,
//! how a batch is stored), which keeps the checkpoint and discards a failed batch whole.
//! Models read [`event::Event`]s, decoding a payload on first use; a rebuild hands every
//! model the same [`event::Page`]s, so each payload is decoded once for all of them.
//!
//! - [`interactions`]: each user's conversation list and each inbox's views (RocksDB).
//! - [`search`]: full-text search over message history (tantivy).
//! - [`queues`]: the SMS queues' waiting lists and the agents' Active / Pending / History
//!   views (RocksDB).

pub mod batch;
pub mod db;
pub mod error;
pub mod event;
pub mod home;
pub mod interactions;
pub mod live;
pub mod queues;
pub mod runner;
pub mod search;

pub use batch::{BatchWriter, Projector, Stored};
pub use error::ProjectionError;
pub use event::{Decoded, Event, Page};
pub use home::ModelHome;
pub use live::{Live, LiveInteractions, LiveQueues, LiveSearch, ModelKind};
pub use runner::{follow_blocking, Finished, ReadModel, Wanted};
