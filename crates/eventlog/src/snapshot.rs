//! Per-stream snapshots, stored apart from events in their own column family.
//!
//! A snapshot is an optimisation, never the truth: the events are. Only the latest snapshot
//! of a stream is kept, and a snapshot never replaces a newer one, so an actor that lost a
//! race with its own successor cannot roll the stored state back.

use serde::{Deserialize, Serialize};

/// A stream's state as of one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The last stream version folded into `state`.
    pub version: u64,
    /// Version of the state's schema; a reader that does not know it replays from scratch.
    pub schema_version: u16,
    /// The encoded state; opaque to the log.
    pub state: Vec<u8>,
    /// When it was taken, microseconds since the Unix epoch.
    pub taken_at_us: u64,
}
