//! Attachment records: per organization an index stream `attachment-<id>` whose first
//! event says which blob the organization's attachment id is (`AttachmentStored`) or that
//! an inbound media item could not be fetched (`AttachmentUnavailable`); the workers'
//! reference index appends `AttachmentReferenced` after it. Ids are derived, so every
//! write here is idempotent. The blobs themselves are files, not the log's.

use std::sync::Arc;

use domain::attachment::{
    attachment_id, reference_event_id, AttachmentStored, AttachmentUnavailable, Entry,
    ATTACHMENT_CATEGORY,
};
use domain::{AttachmentId, ConversationId};
use eventlog::{codec, AppendError, Direction, EventData, EventStore, ExpectedVersion, StreamName};
use uuid::Uuid;

use crate::RecordError;

fn stream_of(id: AttachmentId) -> Result<StreamName, RecordError> {
    StreamName::from_parts(ATTACHMENT_CATEGORY, id).map_err(RecordError::internal)
}

/// Appends `event` as the first of `id`'s stream, once: a repeat (same event id) writes
/// nothing.
async fn append_once(
    store: &Arc<dyn EventStore>,
    id: AttachmentId,
    event: EventData,
) -> Result<(), RecordError> {
    match store
        .append(stream_of(id)?, ExpectedVersion::Any, vec![event])
        .await
    {
        Ok(_) | Err(AppendError::EventIdReused { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Records an inbound media item that could not be fetched.
///
/// # Errors
/// The log's.
pub async fn record_unavailable(
    store: &Arc<dyn EventStore>,
    unavailable: &AttachmentUnavailable,
) -> Result<(), RecordError> {
    let id = unavailable.id();
    // The payload is the bare struct: the same bytes as the domain event's (a test in
    // `workers::attachment_refs` says so).
    let payload = codec::encode(unavailable).map_err(RecordError::internal)?;
    let event = EventData::new("AttachmentUnavailable", 1, payload)
        .with_id(Uuid::new_v5(id.as_uuid(), b"unavailable"));
    append_once(store, id, event).await
}

/// Records a stored blob as an attachment of its organization.
///
/// # Errors
/// The log's.
pub async fn record_stored(
    store: &Arc<dyn EventStore>,
    stored: &AttachmentStored,
) -> Result<(), RecordError> {
    let id = attachment_id(stored.org, &stored.hash);
    let payload = codec::encode(stored).map_err(RecordError::internal)?;
    let event = EventData::new("AttachmentStored", 1, payload)
        .with_id(Uuid::new_v5(id.as_uuid(), b"stored"));
    append_once(store, id, event).await
}

/// What `id` is: stored, or an inbound item that could not be fetched.
///
/// # Errors
/// The log's.
pub async fn entry(
    store: &Arc<dyn EventStore>,
    id: AttachmentId,
) -> Result<Option<Entry>, RecordError> {
    let first =
        eventlog::store::nonblocking::read_stream(store, &stream_of(id)?, 0, Direction::Forward, 1)
            .await?;
    let Some(r) = first.first().filter(|r| r.schema_version == 1) else {
        return Ok(None);
    };
    Ok(match r.event_type.as_str() {
        "AttachmentStored" => codec::decode(&r.payload).ok().map(Entry::Stored),
        "AttachmentUnavailable" => codec::decode(&r.payload).ok().map(Entry::Unavailable),
        _ => None,
    })
}

/// Whether `conversation` is indexed as referencing `id`: one lookup of the reference's
/// event id (no scan of the conversation).
///
/// # Errors
/// The log's.
pub async fn is_referenced(
    store: &Arc<dyn EventStore>,
    id: AttachmentId,
    conversation: ConversationId,
) -> Result<bool, RecordError> {
    let event = reference_event_id(id, conversation);
    let store = store.clone();
    Ok(
        tokio::task::spawn_blocking(move || store.find_event_blocking(event))
            .await
            .map_err(RecordError::internal)??
            .is_some(),
    )
}
