//! The durable index of which conversations reference which attachments.
//!
//! A process manager follows the `conversation` category (checkpoint `attachment_refs`)
//! and, for every `MessagePosted` with attachments and `InboundReceived` with media, appends
//! `AttachmentReferenced { conversation }` to each attachment's stream, with an event id
//! derived from (attachment, conversation): a repeat after a crash writes nothing, and the
//! access check is one lookup of that id (`is_referenced` in the gateway). On a data
//! directory from before the index, the follower starts from the beginning and fills it.
//!
//! The follower's published progress tells how far the index has got, so that a request for an attachment
//! just posted can wait (bounded) until the index has seen the conversation's newest event
//! instead of answering 404 too early.

use std::sync::Arc;

use actors::{event_codec, Workspace};
use domain::attachment::{
    reference_event_id, AttachmentEvent, AttachmentReferenced, ATTACHMENT_CATEGORY,
};
use domain::{Aggregate, AttachmentId, Conversation, ConversationEvent, ConversationId};
use eventlog::{
    AppendError, EventData, EventStore, ExpectedVersion, Metadata, SharedRecord, StreamName,
};

use crate::driver::{self, Failure};

/// Checkpoint of the index follower.
pub const CHECKPOINT: &str = "attachment_refs";

/// Runs the index follower until the log closes. It publishes how far it got under
/// [`CHECKPOINT`] in the workspace's progress, which the gateway's attachment route waits on.
pub async fn run(ws: Workspace) {
    driver::run(
        ws,
        CHECKPOINT,
        <Conversation as Aggregate>::CATEGORY,
        move |ws, record| async move { index(&ws.store, &record).await },
    )
    .await;
}

async fn index(store: &Arc<dyn EventStore>, record: &SharedRecord) -> Result<(), Failure> {
    if record.event_type != "MessagePosted" && record.event_type != "InboundReceived" {
        return Ok(());
    }
    let conversation: ConversationId = record
        .stream
        .id()
        .parse()
        .map_err(|_| Failure::Permanent(format!("not a conversation: {}", record.stream)))?;
    let attached: Vec<AttachmentId> = match event_codec::conversation_event(record)
        .map_err(Failure::Permanent)?
        .as_ref()
    {
        ConversationEvent::MessagePosted(m) => m.attachments.iter().map(|a| a.id).collect(),
        ConversationEvent::InboundReceived(m) => m.media.iter().map(|a| a.id).collect(),
        _ => return Ok(()),
    };
    for id in attached {
        record_reference(store, id, conversation)
            .await
            .map_err(Failure::Transient)?;
    }
    Ok(())
}

/// Records that `conversation` references `id` (a repeat writes nothing).
///
/// # Errors
/// The log refused or failed.
pub async fn record_reference(
    store: &Arc<dyn EventStore>,
    id: AttachmentId,
    conversation: ConversationId,
) -> Result<(), String> {
    let stream = StreamName::from_parts(ATTACHMENT_CATEGORY, id).map_err(|e| e.to_string())?;
    let event = reference(id, conversation)?;
    match store
        .append(stream, ExpectedVersion::Any, vec![event])
        .await
    {
        Ok(_) | Err(AppendError::EventIdReused { .. }) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// The log record saying that `conversation` references `id` (its id derives from both).
fn reference(id: AttachmentId, conversation: ConversationId) -> Result<EventData, String> {
    let event = AttachmentEvent::AttachmentReferenced(AttachmentReferenced { conversation });
    event_codec::encode(
        &event,
        reference_event_id(id, conversation),
        Metadata::default(),
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use eventlog::{codec, Direction, LogOptions, RocksLog};
    use serde::Serialize;

    use super::*;

    /// The record as this module wrote it by hand before it went through the domain event:
    /// the struct (verbatim) encoded bare, version 1.
    #[derive(Serialize)]
    struct OldAttachmentReferenced {
        conversation: ConversationId,
    }

    fn old_reference(id: AttachmentId, conversation: ConversationId) -> EventData {
        let payload = codec::encode(&OldAttachmentReferenced { conversation }).unwrap();
        EventData::new("AttachmentReferenced", 1, payload)
            .with_id(reference_event_id(id, conversation))
    }

    #[test]
    fn the_reference_is_the_bytes_written_before() {
        let (id, conversation) = (AttachmentId::random(), ConversationId::random());
        let (new, old) = (
            reference(id, conversation).unwrap(),
            old_reference(id, conversation),
        );
        assert_eq!(
            (new.event_type.as_str(), new.schema_version, new.event_id),
            ("AttachmentReferenced", 1, old.event_id)
        );
        assert_eq!(new.payload, old.payload);
        assert_eq!(new.metadata, old.metadata);
    }

    #[tokio::test]
    async fn a_reference_written_by_hand_before_reads_and_is_not_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn EventStore> =
            Arc::new(RocksLog::open(dir.path().join("log"), LogOptions::default()).unwrap());
        let (id, conversation) = (AttachmentId::random(), ConversationId::random());
        let stream = StreamName::from_parts(ATTACHMENT_CATEGORY, id).unwrap();
        store
            .append(
                stream.clone(),
                ExpectedVersion::NoStream,
                vec![old_reference(id, conversation)],
            )
            .await
            .unwrap();
        record_reference(&store, id, conversation).await.unwrap();
        let stored =
            eventlog::store::nonblocking::read_stream(&store, &stream, 0, Direction::Forward, 8)
                .await
                .unwrap();
        assert_eq!(stored.len(), 1, "the same event: nothing written");
        assert_eq!(
            event_codec::decode::<AttachmentEvent>(&stored[0]).unwrap(),
            AttachmentEvent::AttachmentReferenced(AttachmentReferenced { conversation })
        );
    }
}
