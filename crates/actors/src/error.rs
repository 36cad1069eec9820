//! What a command or a query sent to an actor can fail with.

use eventlog::{AppendError, ReadError, SnapshotError};

/// Why an actor could not answer (apart from the domain saying no).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ActorError {
    /// The actor's queue is full; retry later. Nothing was done.
    #[error("busy: too many requests queued for this stream")]
    Busy,
    /// The stream changed under the actor twice in a row (another writer); nothing written.
    #[error("concurrent modification of the stream; retry")]
    Conflict,
    /// A stored event of the stream cannot be decoded.
    #[error("stream {stream} holds an undecodable event at version {version}: {reason}")]
    Corrupt {
        stream: String,
        version: u64,
        reason: String,
    },
    /// The log refused or failed the append (storage, overload, shutdown).
    #[error("append failed: {0}")]
    Append(#[from] AppendError),
    #[error("read failed: {0}")]
    Read(#[from] ReadError),
    #[error("snapshot failed: {0}")]
    Snapshot(#[from] SnapshotError),
    /// The actor system is shutting down or the actor could not be reached.
    #[error("actor unavailable")]
    Unavailable,
}

/// Why a command failed: the domain's rejection, or the machinery's.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommandError<R: std::error::Error> {
    /// The domain refused the command; nothing was written.
    #[error(transparent)]
    Rejected(R),
    #[error(transparent)]
    Actor(#[from] ActorError),
}

impl<R: std::error::Error> CommandError<R> {
    /// The domain's rejection, if that is what this is.
    pub fn rejection(&self) -> Option<&R> {
        match self {
            CommandError::Rejected(r) => Some(r),
            CommandError::Actor(_) => None,
        }
    }
}
