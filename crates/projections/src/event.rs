//! An event of the log as the read models read it: the stored record, and its payload
//! decoded on first use ([`Event::decoded`]).
//!
//! `replay rebuild all` hands one [`Page`] of events to every model's thread; the first
//! model that needs an event's payload decodes it into the page and the others read the
//! same value, so a rebuild decodes the log once, not once per model. A server's runner
//! follows the log for one model, which decodes what it asks for.

use std::sync::OnceLock;

use actors::event_codec::{decode_any, Memo};
use eventlog::{RecordedEvent, SharedRecord};

use crate::error::ProjectionError;

/// The categories of the streams read models read.
pub mod category {
    use domain::Aggregate;

    pub const CONVERSATION: &str = <domain::Conversation as Aggregate>::CATEGORY;
    pub const DIRECTORY: &str = <domain::Directory as Aggregate>::CATEGORY;
    pub const QUEUE: &str = <domain::Queue as Aggregate>::CATEGORY;
    pub const INBOUND: &str = domain::inbound::INBOUND_CATEGORY;
    pub const ERASURE: &str = domain::erasure::ERASURE_CATEGORY;
}

/// The payload of an event of a category some read model reads, with the id its stream
/// names (decoded as every live reader decodes it).
pub use actors::event_codec::Decoded;

/// A payload decoded for one model: kept with the event while the model applies it.
type OwnCell = OnceLock<Result<Decoded, String>>;
/// A payload decoded for every model of a page: boxed, so a page's cells are small
/// (8 bytes and a state each) whether or not they are ever used.
type SharedCell = OnceLock<Result<Box<Decoded>, String>>;

/// One event, as a model applies it.
pub struct Event<'a> {
    record: &'a RecordedEvent,
    shared: Option<&'a SharedCell>,
    /// The memo of a live event, which the other live readers (models, the stream hub,
    /// process managers) share.
    live: Option<&'a Memo>,
    own: OwnCell,
}

impl<'a> Event<'a> {
    /// `record`, decoded for this model alone.
    pub fn new(record: &'a RecordedEvent) -> Self {
        Self {
            record,
            shared: None,
            live: None,
            own: OnceLock::new(),
        }
    }

    /// A live event, decoded once for all its live readers (its memo).
    pub fn live(event: &'a SharedRecord) -> Self {
        Self {
            live: actors::event_codec::memo(event),
            ..Self::new(event.record())
        }
    }

    pub fn record(&self) -> &'a RecordedEvent {
        self.record
    }

    /// Whether the event's stream is of `category` (as `stream.category() == category`,
    /// without searching the name for its `-`: models ask for every event).
    pub fn is_in(&self, category: &str) -> bool {
        let name = self.record.stream.as_str();
        name.len() >= category.len()
            && name.as_bytes()[category.len()..]
                .first()
                .is_none_or(|b| *b == b'-')
            && name.starts_with(category)
    }

    /// The payload, decoded now or by an earlier caller. Check the category and type
    /// before asking: events a model skips need not be decoded at all.
    ///
    /// # Errors
    /// [`ProjectionError::Corrupt`] naming the type and position of an event that cannot
    /// be decoded.
    pub fn decoded(&self) -> Result<&Decoded, ProjectionError> {
        if let Some(memo) = self.live {
            return memo
                .decoded()
                .map_err(|e| ProjectionError::Corrupt(e.to_owned()));
        }
        let decoded = match self.shared {
            Some(cell) => cell
                .get_or_init(|| decode_any(self.record).map(Box::new))
                .as_deref(),
            None => self.own.get_or_init(|| decode_any(self.record)).as_ref(),
        };
        decoded.map_err(|e| ProjectionError::Corrupt(e.clone()))
    }
}

impl Event<'_> {
    /// The conversation event with its texts opened by `sealer`, when a live reader already
    /// opened it, or can from the keys in memory (shared with the other live readers).
    /// `None` otherwise: open a copy of what [`Event::decoded`] gives.
    pub fn opened(&self, sealer: &actors::sealing::Sealer) -> Option<&domain::ConversationEvent> {
        self.live?.opened(sealer)
    }
}

impl std::ops::Deref for Event<'_> {
    type Target = RecordedEvent;

    fn deref(&self) -> &RecordedEvent {
        self.record
    }
}

/// Events that several models apply (a rebuild's page): each payload is decoded once,
/// by the first model that asks for it.
pub struct Page {
    records: Vec<RecordedEvent>,
    decoded: Box<[SharedCell]>,
}

impl Page {
    pub fn new(records: Vec<RecordedEvent>) -> Self {
        let decoded = records.iter().map(|_| OnceLock::new()).collect();
        Self { records, decoded }
    }

    pub fn records(&self) -> &[RecordedEvent] {
        &self.records
    }

    /// The events from index `from` on.
    pub fn events_from(&self, from: usize) -> impl Iterator<Item = Event<'_>> {
        self.records[from..]
            .iter()
            .zip(&self.decoded[from..])
            .map(|(record, cell)| Event {
                record,
                shared: Some(cell),
                live: None,
                own: OnceLock::new(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_in_agrees_with_the_stream_category() {
        let record = |name: &str| RecordedEvent {
            stream: eventlog::StreamName::new(name).expect("stream name"),
            version: 0,
            position: 0,
            timestamp_us: 0,
            prev_hash: [0; 32],
            hash: [0; 32],
            event_id: uuid::Uuid::nil(),
            event_type: "E".into(),
            schema_version: 1,
            metadata: Default::default(),
            payload: Vec::new(),
        };
        for name in [
            "conversation-1",
            "conversations-1",
            "conversation-x-y",
            "convers-1",
            "queue-conversation",
            "c-1",
        ] {
            let r = record(name);
            let event = Event::new(&r);
            for category in [category::CONVERSATION, category::QUEUE, "c"] {
                assert_eq!(
                    event.is_in(category),
                    r.stream.category() == category,
                    "{name} in {category}"
                );
            }
        }
    }
}
