//! Read models (projections) built from the log's subscriptions.
//!
//! Each read model lives in its own storage under `<data>/readmodels/<name>/` (never in
//! the log's), in numbered generations ([`home`]) so a rebuild can run beside the live one
//! and switch atomically ([`live`], generic over a [`ModelKind`]). A model applies events
//! in batches and stores each batch with its checkpoint atomically (RocksDB models: one
//! `WriteBatch`, [`db`]; the search index: the tantivy commit payload), so a restart
//! neither skips nor double-applies an event ([`runner`]).
//!
//! - [`interactions`]: each user's conversation list and each inbox's views (RocksDB).
//! - [`search`]: full-text search over message history (tantivy).
//! - [`queues`]: the SMS queues' waiting lists and the agents' Active / Pending / History
//!   views (RocksDB).

pub mod db;
pub mod error;
pub mod home;
pub mod interactions;
pub mod live;
pub mod queues;
pub mod runner;
pub mod search;

pub use error::ProjectionError;
pub use home::ModelHome;
pub use live::{Live, LiveInteractions, LiveQueues, LiveSearch, ModelKind};
pub use runner::{follow_blocking, Finished, ReadModel};
