//! Errors of the read models.

/// Why a read model could not be opened, updated or queried.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionError {
    #[error("read model storage: {0}")]
    Storage(#[from] rocksdb::Error),
    #[error("read model data is corrupt: {0}")]
    Corrupt(String),
    #[error("read model layout is {found}, this build expects {expected}: rebuild it")]
    Layout { found: String, expected: String },
    #[error("read model files: {0}")]
    Io(#[from] std::io::Error),
    #[error("event log: {0}")]
    Log(String),
    /// The search index (tantivy) failed.
    #[error("search index: {0}")]
    Search(String),
}

impl From<tantivy::TantivyError> for ProjectionError {
    fn from(e: tantivy::TantivyError) -> Self {
        ProjectionError::Search(e.to_string())
    }
}

impl From<eventlog::codec::CodecError> for ProjectionError {
    fn from(e: eventlog::codec::CodecError) -> Self {
        ProjectionError::Corrupt(e.to_string())
    }
}
