//! Attachment records: per organization an index stream `attachment-<id>` whose first
//! event says which blob the organization's attachment id is (`AttachmentStored`) or that
//! an inbound media item could not be fetched (`AttachmentUnavailable`); the workers'
//! reference index appends `AttachmentReferenced` after it. Ids are derived, so every
//! write here is idempotent. The records are the domain's [`AttachmentEvent`]s; the blobs
//! themselves are files, not the log's.

use std::sync::Arc;

use actors::event_codec;
use domain::attachment::{
    attachment_id, reference_event_id, AttachmentEvent, AttachmentStored, AttachmentUnavailable,
    Entry, ATTACHMENT_CATEGORY,
};
use domain::{AttachmentId, ConversationId};
use eventlog::{AppendError, Direction, EventData, EventStore, ExpectedVersion, StreamName};
use uuid::Uuid;

use crate::RecordError;

fn stream_of(id: AttachmentId) -> Result<StreamName, RecordError> {
    StreamName::from_parts(ATTACHMENT_CATEGORY, id).map_err(RecordError::internal)
}

/// The log record of `event` of attachment `id`: its event id derives from the attachment
/// and `what` happened to it.
fn record(
    id: AttachmentId,
    what: &[u8],
    event: &AttachmentEvent,
) -> Result<EventData, RecordError> {
    event_codec::encode(
        event,
        Uuid::new_v5(id.as_uuid(), what),
        eventlog::Metadata::default(),
    )
    .map_err(RecordError::internal)
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
    let event = AttachmentEvent::AttachmentUnavailable(unavailable.clone());
    append_once(store, id, record(id, b"unavailable", &event)?).await
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
    let event = AttachmentEvent::AttachmentStored(stored.clone());
    append_once(store, id, record(id, b"stored", &event)?).await
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
    let Some(r) = first.first() else {
        return Ok(None);
    };
    Ok(match event_codec::decode::<AttachmentEvent>(r) {
        Ok(AttachmentEvent::AttachmentStored(stored)) => Some(Entry::Stored(stored)),
        Ok(AttachmentEvent::AttachmentUnavailable(unavailable)) => {
            Some(Entry::Unavailable(unavailable))
        }
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

#[cfg(test)]
mod tests {
    use domain::OrgId;
    use eventlog::{codec, LogOptions, RecordedEvent, RocksLog};
    use serde::Serialize;

    use super::*;

    /// The records as this module wrote them by hand before they went through the domain
    /// events: the structs (verbatim) encoded bare, version 1.
    #[derive(Serialize)]
    struct OldAttachmentStored {
        org: OrgId,
        hash: String,
        mime: String,
        size: u64,
    }

    #[derive(Serialize)]
    struct OldAttachmentUnavailable {
        org: OrgId,
        carrier_message_id: String,
        index: u32,
        code: String,
        reason: String,
        claimed_mime: Option<String>,
    }

    fn stored(org: OrgId) -> (AttachmentStored, OldAttachmentStored) {
        let hash = "ab".repeat(32);
        (
            AttachmentStored {
                org,
                hash: hash.clone(),
                mime: "image/png".into(),
                size: 42,
            },
            OldAttachmentStored {
                org,
                hash,
                mime: "image/png".into(),
                size: 42,
            },
        )
    }

    fn unavailable(org: OrgId) -> (AttachmentUnavailable, OldAttachmentUnavailable) {
        (
            AttachmentUnavailable {
                org,
                carrier_message_id: "MM1".into(),
                index: 1,
                code: "media_fetch_timeout".into(),
                reason: "no answer".into(),
                claimed_mime: Some("image/jpeg".into()),
            },
            OldAttachmentUnavailable {
                org,
                carrier_message_id: "MM1".into(),
                index: 1,
                code: "media_fetch_timeout".into(),
                reason: "no answer".into(),
                claimed_mime: Some("image/jpeg".into()),
            },
        )
    }

    fn open() -> (tempfile::TempDir, Arc<dyn EventStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn EventStore> =
            Arc::new(RocksLog::open(dir.path().join("log"), LogOptions::default()).unwrap());
        (dir, store)
    }

    async fn first(store: &Arc<dyn EventStore>, id: AttachmentId) -> RecordedEvent {
        eventlog::store::nonblocking::read_stream(
            store,
            &stream_of(id).unwrap(),
            0,
            Direction::Forward,
            8,
        )
        .await
        .unwrap()
        .remove(0)
    }

    #[tokio::test]
    async fn the_records_are_the_bytes_written_before() {
        let (_dir, store) = open();
        let org = OrgId::random();
        let (new, old) = stored(org);
        record_stored(&store, &new).await.unwrap();
        let id = attachment_id(org, &new.hash);
        let written = first(&store, id).await;
        assert_eq!(
            (
                written.event_type.as_str(),
                written.schema_version,
                written.event_id
            ),
            ("AttachmentStored", 1, Uuid::new_v5(id.as_uuid(), b"stored"))
        );
        assert_eq!(written.payload, codec::encode(&old).unwrap());

        let (new, old) = unavailable(org);
        record_unavailable(&store, &new).await.unwrap();
        let written = first(&store, new.id()).await;
        assert_eq!(
            (
                written.event_type.as_str(),
                written.schema_version,
                written.event_id
            ),
            (
                "AttachmentUnavailable",
                1,
                Uuid::new_v5(new.id().as_uuid(), b"unavailable")
            )
        );
        assert_eq!(written.payload, codec::encode(&old).unwrap());
    }

    #[tokio::test]
    async fn records_written_by_hand_before_still_read() {
        let (_dir, store) = open();
        let org = OrgId::random();
        let (new, old) = stored(org);
        let id = attachment_id(org, &new.hash);
        let event = EventData::new("AttachmentStored", 1, codec::encode(&old).unwrap())
            .with_id(Uuid::new_v5(id.as_uuid(), b"stored"));
        append_once(&store, id, event).await.unwrap();
        assert_eq!(
            entry(&store, id).await.unwrap(),
            Some(Entry::Stored(new.clone()))
        );
        // Recording it again through the new path writes nothing: the same event.
        record_stored(&store, &new).await.unwrap();
        let all = eventlog::store::nonblocking::read_stream(
            &store,
            &stream_of(id).unwrap(),
            0,
            Direction::Forward,
            8,
        )
        .await
        .unwrap();
        assert_eq!(all.len(), 1);

        let (new, old) = unavailable(org);
        let event = EventData::new("AttachmentUnavailable", 1, codec::encode(&old).unwrap())
            .with_id(Uuid::new_v5(new.id().as_uuid(), b"unavailable"));
        append_once(&store, new.id(), event).await.unwrap();
        assert_eq!(
            entry(&store, new.id()).await.unwrap(),
            Some(Entry::Unavailable(new))
        );
    }
}
