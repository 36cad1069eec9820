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

pub mod db;
pub mod error;
pub mod home;
pub mod interactions;
pub mod live;
pub mod runner;
pub mod search;

pub use error::ProjectionError;
pub use home::ModelHome;
pub use live::{Live, LiveInteractions, LiveSearch, ModelKind};
pub use runner::{follow_blocking, Finished, ReadModel};
