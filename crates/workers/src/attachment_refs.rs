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
use domain::attachment::{reference_event_id, AttachmentReferenced, ATTACHMENT_CATEGORY};
use domain::{Aggregate, AttachmentId, Conversation, ConversationEvent, ConversationId};
use eventlog::{
    codec, AppendError, EventData, EventStore, ExpectedVersion, RecordedEvent, StreamName,
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

async fn index(store: &Arc<dyn EventStore>, record: &RecordedEvent) -> Result<(), Failure> {
    if record.event_type != "MessagePosted" && record.event_type != "InboundReceived" {
        return Ok(());
    }
    let conversation: ConversationId = record
        .stream
        .id()
        .parse()
        .map_err(|_| Failure::Permanent(format!("not a conversation: {}", record.stream)))?;
    let attached = match event_codec::decode::<ConversationEvent>(record) {
        Ok(ConversationEvent::MessagePosted(m)) => m.attachments,
        Ok(ConversationEvent::InboundReceived(m)) => m.media,
        Ok(_) => return Ok(()),
        Err(e) => return Err(Failure::Permanent(e)),
    };
    for a in attached {
        record_reference(store, a.id, conversation)
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
    let payload =
        codec::encode(&AttachmentReferenced { conversation }).map_err(|e| e.to_string())?;
    let event = EventData::new("AttachmentReferenced", 1, payload)
        .with_id(reference_event_id(id, conversation));
    match store
        .append(stream, ExpectedVersion::Any, vec![event])
        .await
    {
        Ok(_) | Err(AppendError::EventIdReused { .. }) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use domain::attachment::{AttachmentErased, AttachmentEvent};
    use domain::VersionedEvent;

    use super::*;

    /// The records are written as their bare structs (`codec::encode`); read as the domain's
    /// versioned events (what `replay` and upcasting go through), the bytes are the same.
    #[test]
    fn the_records_as_written_are_the_domain_events_payloads() {
        let referenced = AttachmentReferenced {
            conversation: ConversationId::random(),
        };
        let erased = AttachmentErased {
            reason: "customer_erased".to_owned(),
            cause: uuid::Uuid::new_v4(),
        };
        assert_eq!(
            codec::encode(&referenced).unwrap(),
            codec::encode(&AttachmentEvent::AttachmentReferenced(referenced.clone()).payload())
                .unwrap()
        );
        assert_eq!(
            codec::encode(&erased).unwrap(),
            codec::encode(&AttachmentEvent::AttachmentErased(erased.clone()).payload()).unwrap()
        );
    }
}
