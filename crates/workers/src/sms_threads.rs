//! Which conversation a customer's text continues, when our number texts them from more
//! than one: their External conversation, or a mixed group they are a member of.
//!
//! Texts carry no thread: a customer who answers a group's text answers our number, just
//! as when they answer a one-to-one text. So the reply continues the conversation our
//! number **last texted them from**, as a person would read their phone. The outbox notes
//! that conversation per (organization, our number, their number) in the stream
//! `smsthread-<id>` each time it changes (one `SmsThreadMoved` event), before the text
//! goes to the carrier; the inbound router reads the latest one. No event means their
//! External conversation, so texting one-to-one only never writes here. The event is the
//! domain's ([`domain::sms_thread`]), with its schema in `schemas/`.

use std::sync::Arc;

use actors::event_codec;
use domain::sms_thread::{SmsThreadEvent, SmsThreadMoved, SMS_THREAD_CATEGORY};
use domain::{ConversationId, OrgId, PhoneNumber};
use eventlog::{Direction, EventData, EventStore, ExpectedVersion, Metadata, StreamName};
use uuid::Uuid;

/// The stream's category.
pub const CATEGORY: &str = SMS_THREAD_CATEGORY;

/// Namespace of the streams' ids. Fixed forever.
const THREAD_NAMESPACE: Uuid = Uuid::from_u128(0x5d3c_9a51_7e0b_4f0e_a7c2_61b8_d4e9_0c13);

/// The stream of (our number, their number) in `org`.
///
/// # Panics
/// Never: the name is a UUID.
pub fn stream(org: OrgId, our: &PhoneNumber, their: &PhoneNumber) -> StreamName {
    let mut name = Vec::with_capacity(64);
    name.extend_from_slice(org.as_uuid().as_bytes());
    name.extend_from_slice(our.as_str().as_bytes());
    name.push(0);
    name.extend_from_slice(their.as_str().as_bytes());
    let id = Uuid::new_v5(&THREAD_NAMESPACE, &name);
    StreamName::from_parts(CATEGORY, id.simple()).expect("a UUID is a valid stream id")
}

/// The conversation our number last texted `their` from, if it was not their External
/// conversation (`None`: their External conversation).
///
/// # Errors
/// Storage errors and an undecodable record, as text.
pub async fn current(
    store: &Arc<dyn EventStore>,
    org: OrgId,
    our: &PhoneNumber,
    their: &PhoneNumber,
) -> Result<Option<ConversationId>, String> {
    let stream = stream(org, our, their);
    let last =
        eventlog::store::nonblocking::read_stream(store, &stream, u64::MAX, Direction::Backward, 1)
            .await
            .map_err(|e| e.to_string())?;
    let Some(last) = last.first() else {
        return Ok(None);
    };
    let SmsThreadEvent::SmsThreadMoved(moved) = event_codec::decode::<SmsThreadEvent>(last)?;
    Ok(
        (moved.conversation != ConversationId::external(org, our, their))
            .then_some(moved.conversation),
    )
}

/// Notes that our number texts `their` from `conversation` now, unless that is already
/// the latest; `cause` (the request's event id) makes a repeat write nothing.
///
/// # Errors
/// Storage errors, as text.
pub async fn note(
    store: &Arc<dyn EventStore>,
    org: OrgId,
    our: &PhoneNumber,
    their: &PhoneNumber,
    conversation: ConversationId,
    cause: Uuid,
    at_ms: u64,
) -> Result<(), String> {
    let now = current(store, org, our, their).await?;
    let external = ConversationId::external(org, our, their);
    if now.unwrap_or(external) == conversation {
        return Ok(());
    }
    let moved = SmsThreadEvent::SmsThreadMoved(SmsThreadMoved {
        conversation,
        at_ms,
    });
    let event = record(&moved, cause)?;
    match store
        .append(stream(org, our, their), ExpectedVersion::Any, vec![event])
        .await
    {
        Ok(_)
        | Err(eventlog::AppendError::EventIdReused { .. })
        | Err(eventlog::AppendError::PartialDuplicate { .. }) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// The log record of a note caused by event `cause` (its id derives from it).
fn record(moved: &SmsThreadEvent, cause: Uuid) -> Result<EventData, String> {
    event_codec::encode(
        moved,
        Uuid::new_v5(&cause, b"sms-thread"),
        Metadata::default(),
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use eventlog::{codec, LogOptions, RocksLog};
    use serde::Serialize;

    use super::*;

    /// The note as this module wrote it before it was a domain event: its own struct
    /// (verbatim), encoded bare, version 1.
    #[derive(Serialize)]
    struct OldSmsThreadMoved {
        conversation: ConversationId,
        at_ms: u64,
    }

    fn old_record(conversation: ConversationId, at_ms: u64, cause: Uuid) -> EventData {
        let payload = codec::encode(&OldSmsThreadMoved {
            conversation,
            at_ms,
        })
        .unwrap();
        EventData::new("SmsThreadMoved", 1, payload).with_id(Uuid::new_v5(&cause, b"sms-thread"))
    }

    fn number(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s).unwrap()
    }

    #[test]
    fn the_note_is_the_bytes_written_before() {
        let (conversation, cause) = (ConversationId::random(), Uuid::new_v4());
        let new = record(
            &SmsThreadEvent::SmsThreadMoved(SmsThreadMoved {
                conversation,
                at_ms: 9,
            }),
            cause,
        )
        .unwrap();
        let old = old_record(conversation, 9, cause);
        assert_eq!(
            (new.event_type.as_str(), new.schema_version, new.event_id),
            ("SmsThreadMoved", 1, old.event_id)
        );
        assert_eq!(new.payload, old.payload);
        assert_eq!(new.metadata, old.metadata);
    }

    #[tokio::test]
    async fn notes_written_before_they_were_domain_events_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn EventStore> =
            Arc::new(RocksLog::open(dir.path().join("log"), LogOptions::default()).unwrap());
        let (org, our, their) = (
            OrgId::random(),
            number("+15550001000"),
            number("+15550002000"),
        );
        let group = ConversationId::random();
        store
            .append(
                stream(org, &our, &their),
                ExpectedVersion::NoStream,
                vec![old_record(group, 5, Uuid::new_v4())],
            )
            .await
            .unwrap();
        assert_eq!(
            current(&store, org, &our, &their).await.unwrap(),
            Some(group)
        );

        // A new note after the old one, and back to their External conversation.
        let external = ConversationId::external(org, &our, &their);
        note(&store, org, &our, &their, external, Uuid::new_v4(), 6)
            .await
            .unwrap();
        assert_eq!(current(&store, org, &our, &their).await.unwrap(), None);
        // Noting what holds already writes nothing.
        note(&store, org, &our, &their, external, Uuid::new_v4(), 7)
            .await
            .unwrap();
        let notes = eventlog::store::nonblocking::read_stream(
            &store,
            &stream(org, &our, &their),
            0,
            Direction::Forward,
            8,
        )
        .await
        .unwrap();
        assert_eq!(notes.len(), 2);
    }
}
