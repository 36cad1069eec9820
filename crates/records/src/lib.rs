//! The log's records that no aggregate decides, each family behind typed operations: which
//! stream holds what, the expected versions and event ids that make a write safe to
//! repeat or refuse a race, and how stored records (of every version) read back as the
//! domain's versioned events (`domain::session`, `domain::credential`, `domain::claim`,
//! `domain::idempotency`, `domain::attachment`, `domain::inbound`).
//!
//! The gateway calls these and never appends to the log itself: aggregates' events go
//! through `actors`, these records through this crate, and the followers' records through
//! `workers`. What a record means for a request (authentication, HTTP answers) stays in
//! the gateway.
//!
//! - [`sessions`]: `session-<id>` (started, revoked) and each user's index
//!   `sessions-<user>` (opened).
//! - [`credentials`]: `credential-<email>` (registered, password changed).
//! - [`claims`]: `number-<E.164>` and `bootstrap-first` (which organization a number, or
//!   the server's first place, belongs to).
//! - [`idempotency`]: `idempotency-<scoped key>` (a recorded answer).
//! - [`attachments`]: `attachment-<id>` (stored, unavailable; referenced is the workers').
//! - [`inbound`]: `inbound-<org>` (a text as the carrier handed it over).

pub mod attachments;
pub mod claims;
pub mod credentials;
pub mod idempotency;
pub mod inbound;
pub mod sessions;

use eventlog::{AppendError, ReadError};

/// Why a record could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A record that does not decode, a name that is not a stream name, a task that died.
    #[error("{0}")]
    Internal(String),
}

impl RecordError {
    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }
}

/// The first record of `stream`, if it has any: the one that counts for records written
/// once (a claim, a recorded answer), whatever came after.
///
/// # Errors
/// The log's.
pub(crate) async fn first_record(
    store: &std::sync::Arc<dyn eventlog::EventStore>,
    stream: &eventlog::StreamName,
) -> Result<Option<eventlog::RecordedEvent>, RecordError> {
    let first = eventlog::store::nonblocking::read_stream(
        store,
        stream,
        0,
        eventlog::Direction::Forward,
        1,
    )
    .await?;
    Ok(first.into_iter().next())
}

/// Milliseconds since the Unix epoch (0 before it; saturating far after).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
