//! Domain events ↔ log envelopes.
//!
//! The payload is the event's own struct (not the enum around it) encoded by the log's
//! codec (format byte + bincode); the envelope carries the type name and schema version.
//! Reading picks the struct of the stored version from those two and upcasts it to the
//! current one (`domain::VersionedEvent`), so old logs keep reading after a schema change.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use domain::directory::DirectoryEvent;
use domain::erasure::ErasureEvent;
use domain::inbound::InboundEvent;
use domain::queue::QueueEvent;
use domain::{
    Aggregate, ConversationEvent, ConversationId, InboxEvent, InboxId, OrgId, QueueId,
    VersionedEvent,
};
use eventlog::keyring::Keyring;
use eventlog::{codec, EventData, Metadata, RecordedEvent, SharedRecord};
use uuid::Uuid;

use crate::sealing::Sealer;

/// Builds the envelope of one domain event.
///
/// # Errors
/// When the codec refuses the event (it never does for the domain's types).
pub fn encode<E: VersionedEvent>(
    event: &E,
    event_id: Uuid,
    metadata: Metadata,
) -> Result<EventData, codec::CodecError> {
    Ok(EventData {
        event_id,
        event_type: event.event_type().to_owned(),
        schema_version: event.schema_version(),
        metadata,
        payload: codec::encode(&event.payload())?,
    })
}

/// Decodes a stored event's payload.
///
/// # Errors
/// When the envelope names a type or version `E` does not know, or the payload is not
/// that struct.
pub fn decode<E: VersionedEvent>(record: &RecordedEvent) -> Result<E, String> {
    let seed = E::payload_seed(&record.event_type, record.schema_version)
        .map_err(|e| format!("{} ({})", e, e.code()))?;
    codec::decode_seed(seed, &record.payload).map_err(|e| e.to_string())
}

/// Decodes a stored event and opens its texts with `sealer` (erased ones read as
/// [`domain::Text::Erased`]); may wait on the keyring's storage (a key not in memory).
///
/// # Errors
/// As [`decode`].
pub fn decode_opened_blocking<E: VersionedEvent>(
    record: &RecordedEvent,
    sealer: &crate::sealing::Sealer,
) -> Result<E, String> {
    let mut event = decode::<E>(record)?;
    sealer.open_event_blocking(&mut event);
    Ok(event)
}

/// [`decode_opened_blocking`] for async code: the keyring's storage, when a key is not in
/// memory, is read on a blocking thread.
///
/// # Errors
/// As [`decode`].
pub async fn decode_opened<E: VersionedEvent>(
    record: &RecordedEvent,
    sealer: &crate::sealing::Sealer,
) -> Result<E, String> {
    let mut event = decode::<E>(record)?;
    sealer.open_event(&mut event).await;
    Ok(event)
}

/// The payload of an event of a category that the live readers (read models, the stream
/// hub, process managers) decode, with the id its stream names.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Decoded {
    Conversation(ConversationId, ConversationEvent),
    Directory(OrgId, DirectoryEvent),
    Queue(QueueId, QueueEvent),
    Inbox(InboxId, InboxEvent),
    Inbound(InboundEvent),
    Erasure(ErasureEvent),
    /// Another category, or a stream whose id is not one of its category.
    Other,
}

/// Decodes the payload of `record` by its stream's category.
///
/// # Errors
/// Naming the type and position of an event of one of these categories that cannot be
/// decoded.
pub fn decode_any(record: &RecordedEvent) -> Result<Decoded, String> {
    fn payload<E: VersionedEvent>(record: &RecordedEvent) -> Result<E, String> {
        decode::<E>(record)
            .map_err(|e| format!("{} at position {}: {e}", record.event_type, record.position))
    }
    let id = record.stream.id();
    Ok(match record.stream.category() {
        domain::Conversation::CATEGORY => match id.parse() {
            Ok(id) => Decoded::Conversation(id, payload(record)?),
            Err(_) => Decoded::Other,
        },
        domain::Directory::CATEGORY => match id.parse() {
            Ok(id) => Decoded::Directory(id, payload(record)?),
            Err(_) => Decoded::Other,
        },
        domain::Queue::CATEGORY => match id.parse() {
            Ok(id) => Decoded::Queue(id, payload(record)?),
            Err(_) => Decoded::Other,
        },
        domain::Inbox::CATEGORY => match id.parse() {
            Ok(id) => Decoded::Inbox(id, payload(record)?),
            Err(_) => Decoded::Other,
        },
        domain::inbound::INBOUND_CATEGORY => Decoded::Inbound(payload(record)?),
        domain::erasure::ERASURE_CATEGORY => Decoded::Erasure(payload(record)?),
        _ => Decoded::Other,
    })
}

/// What the live readers of one event decode once between them: its payload as stored
/// (texts sealed), and, for the first reader that opens it, its conversation event with
/// the texts opened. Kept in the event's memo ([`SharedRecord::memo`]) for as long as anyone
/// holds the event.
#[derive(Debug)]
pub struct Memo {
    decoded: Result<Decoded, String>,
    opened: OnceLock<Opened>,
}

/// A conversation event opened with one keyring (`None`: a key it needs was not in
/// memory, so readers open their own copy, which may read the keyring's storage).
#[derive(Debug)]
struct Opened {
    keyring: Option<Arc<Keyring>>,
    event: Option<ConversationEvent>,
}

impl Memo {
    /// The payload as stored, texts sealed.
    ///
    /// # Errors
    /// As [`decode_any`].
    pub fn decoded(&self) -> Result<&Decoded, &str> {
        self.decoded.as_ref().map_err(String::as_str)
    }

    /// The conversation event with its texts opened by `sealer` from the keys its keyring
    /// holds in memory (opened once, by the first reader that asks). `None` for another
    /// category, when a key is not in memory, or when the memo was opened with another
    /// keyring: open a copy of [`Memo::decoded`]'s event then.
    pub fn opened(&self, sealer: &Sealer) -> Option<&ConversationEvent> {
        let Ok(Decoded::Conversation(_, event)) = &self.decoded else {
            return None;
        };
        let Some(ring) = sealer.keyring() else {
            // Without a keyring, opening leaves the event as it is.
            return Some(event);
        };
        // Not `get_or_init`: a reader racing with another opens its own copy rather than
        // wait for it (see `SharedRecord::memo`); the first one stored stays.
        if self.opened.get().is_none() {
            let mut event = event.clone();
            let all = sealer.open_event_cached(&mut event);
            let _ = self.opened.set(Opened {
                keyring: Some(ring.clone()),
                event: all.then_some(event),
            });
        }
        let opened = self.opened.get()?;
        let same = opened
            .keyring
            .as_ref()
            .is_some_and(|k| Arc::ptr_eq(k, ring));
        opened.event.as_ref().filter(|_| same)
    }
}

/// The memo of a live event: its payload decoded by the first reader that asks, and
/// shared by the rest. `None` only if something else was kept in the event's memo (then
/// decode with [`decode_any`]).
pub fn memo(event: &SharedRecord) -> Option<&Memo> {
    event.memo(|record| Memo {
        decoded: decode_any(record),
        opened: OnceLock::new(),
    })
}

/// The conversation event of a live event, texts sealed: borrowed from its memo, or
/// decoded here when the memo holds no conversation event.
///
/// # Errors
/// As [`decode`].
pub fn conversation_event(event: &SharedRecord) -> Result<Cow<'_, ConversationEvent>, String> {
    match memo(event).map(Memo::decoded) {
        Some(Ok(Decoded::Conversation(_, e))) => Ok(Cow::Borrowed(e)),
        _ => decode(event.record()).map(Cow::Owned),
    }
}

/// The conversation event of a live event with its texts opened: borrowed from its memo
/// when the keys were in memory, or opened here (which may read the keyring's storage).
///
/// # Errors
/// As [`decode`].
pub async fn conversation_opened<'a>(
    event: &'a SharedRecord,
    sealer: &Sealer,
) -> Result<Cow<'a, ConversationEvent>, String> {
    if let Some(opened) = memo(event).and_then(|m| m.opened(sealer)) {
        return Ok(Cow::Borrowed(opened));
    }
    let mut own = conversation_event(event)?.into_owned();
    sealer.open_event(&mut own).await;
    Ok(Cow::Owned(own))
}

/// The id of the `index`-th event written for a command with this idempotency key, so a
/// retried command produces the same ids and the log recognises the retry.
pub fn derived_event_id(key: Uuid, index: usize) -> Uuid {
    Uuid::new_v5(&key, &(index as u64).to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::conversation::MessagePosted;
    use domain::text::{Text, TextKey};
    use domain::{MessageId, PhoneNumber, UserId};
    use eventlog::StreamName;

    /// A live `MessagePosted` whose text is sealed with `sealer`'s keyring.
    fn posted(sealer: &Sealer, words: &str) -> eventlog::SharedEvent {
        let customer = PhoneNumber::parse("+16135550101").unwrap();
        let mut event = ConversationEvent::MessagePosted(MessagePosted {
            message_id: MessageId::random(),
            seq: 1,
            author: UserId::random(),
            text: Text::new(words, TextKey::new(OrgId::random(), vec![customer], 1)),
            attachments: Vec::new(),
            at_ms: 1,
        });
        sealer.seal_event_blocking(&mut event).unwrap();
        let data = encode(&event, Uuid::new_v4(), Metadata::default()).unwrap();
        let conversation = ConversationId::random();
        let stream = StreamName::new(format!("conversation-{conversation}")).unwrap();
        SharedRecord::new(RecordedEvent::unchained(stream, 7, data))
    }

    fn text(event: &ConversationEvent) -> &Text {
        match event {
            ConversationEvent::MessagePosted(m) => &m.text,
            other => panic!("not a message: {other:?}"),
        }
    }

    #[test]
    fn live_readers_decode_and_open_an_event_once_between_them() {
        let dir = tempfile::tempdir().unwrap();
        let ring = Arc::new(Keyring::open(dir.path()).unwrap());
        let sealer = Sealer::new(ring.clone());
        let event = posted(&sealer, "where is my order");

        // Every reader gets the same decode, texts sealed as stored.
        let first = memo(&event).expect("the memo holds a Memo");
        let second = memo(&event).expect("the memo holds a Memo");
        assert!(std::ptr::eq(first, second));
        let Ok(Decoded::Conversation(_, stored)) = first.decoded() else {
            panic!("a conversation event: {:?}", first.decoded());
        };
        assert!(matches!(text(stored), Text::Sealed { .. }));
        assert!(matches!(
            conversation_event(&event).unwrap(),
            Cow::Borrowed(e) if std::ptr::eq(e, stored)
        ));

        // Opened once with the keyring, and that opening is shared too.
        let opened = first.opened(&sealer).expect("the key is in memory");
        assert_eq!(text(opened).as_plain(), Some("where is my order"));
        assert!(std::ptr::eq(opened, second.opened(&sealer).unwrap()));
        assert!(std::ptr::eq(
            opened,
            second.opened(&Sealer::new(ring)).unwrap()
        ));

        // A reader with another keyring does not get what this one opened; one without a
        // keyring gets the event as stored (it opens nothing).
        let elsewhere = tempfile::tempdir().unwrap();
        let other = Sealer::new(Arc::new(Keyring::open(elsewhere.path()).unwrap()));
        assert!(first.opened(&other).is_none());
        let clear = first.opened(&Sealer::clear()).unwrap();
        assert!(std::ptr::eq(clear, stored));
    }

    #[test]
    fn an_event_that_cannot_be_decoded_is_an_error_for_every_reader() {
        let sealer = Sealer::clear();
        let good = posted(&sealer, "hello");
        let mut broken = good.record().clone();
        broken.payload.truncate(3);
        let broken = SharedRecord::new(broken);
        let memo = memo(&broken).unwrap();
        let reason = memo.decoded().unwrap_err();
        assert!(reason.contains("MessagePosted at position 7"), "{reason}");
        assert!(memo.opened(&sealer).is_none());
        assert!(conversation_event(&broken).is_err());
    }
}
