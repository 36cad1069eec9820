//! Read models (projections) built from the log's subscriptions.
//!
//! Each read model lives in its own RocksDB instance under `<data>/readmodels/<name>/`
//! (never in the log's), in numbered generations ([`home`]) so a rebuild can run beside
//! the live one and switch atomically ([`live`]). A model applies events in batches and
//! writes each batch with its checkpoint in one `WriteBatch` ([`db`], [`runner`]), so a
//! restart neither skips nor double-applies an event.
//!
//! - [`interactions`]: each user's conversation list and each inbox's views.

pub mod db;
pub mod error;
pub mod home;
pub mod interactions;
pub mod live;
pub mod runner;

pub use error::ProjectionError;
pub use home::ModelHome;
pub use live::LiveInteractions;
pub use runner::{follow_blocking, Finished, ReadModel};
