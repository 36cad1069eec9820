//! The envelope: what callers append and what the log stores.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::stream_name::StreamName;

/// Who and what caused an event. Opaque to the log; kept for audit and tracing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The id of the command or event that caused this one.
    pub causation_id: Option<Uuid>,
    /// The id shared by everything one original request caused.
    pub correlation_id: Option<Uuid>,
    /// The user on whose behalf the event was written (`None` for the system itself).
    pub acting_user: Option<String>,
}

/// An event as a caller submits it for appending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventData {
    /// Client-chosen id; appending the same id again is recognised as a retry.
    pub event_id: Uuid,
    /// A past-tense type name, e.g. `MessagePosted`.
    pub event_type: String,
    /// Version of the payload's schema (see `schemas/`), for upcasting on read.
    pub schema_version: u16,
    pub metadata: Metadata,
    /// The encoded event body; the log never looks inside.
    pub payload: Vec<u8>,
}

impl EventData {
    /// An event with a fresh random id and empty metadata.
    pub fn new(event_type: impl Into<String>, schema_version: u16, payload: Vec<u8>) -> Self {
        Self {
            event_id: Uuid::new_v4(),
            event_type: event_type.into(),
            schema_version,
            metadata: Metadata::default(),
            payload,
        }
    }

    /// The same event with the given id (for idempotent retries).
    pub fn with_id(mut self, event_id: Uuid) -> Self {
        self.event_id = event_id;
        self
    }

    /// The same event with the given metadata.
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Bytes this event counts for against the size limits.
    pub fn size(&self) -> usize {
        self.payload.len()
            + self.event_type.len()
            + self.metadata.acting_user.as_ref().map_or(0, String::len)
            + 64
    }

    /// Whether a stored event carries the same content as this one (a true retry).
    pub fn same_content_as(&self, stored: &RecordedEvent) -> bool {
        self.event_id == stored.event_id
            && self.event_type == stored.event_type
            && self.schema_version == stored.schema_version
            && self.metadata == stored.metadata
            && self.payload == stored.payload
    }
}

/// An event as stored: the caller's data plus its place in the log and its hash-chain links.
///
/// Field order is the stored layout: the header the writer assigns (stream … hash) comes
/// first and the body the caller supplied (event_id … payload) last, so the caller's side
/// can encode the body once ([`EventBodyRef`]) and the writer only appends it to the
/// encoded header ([`EventHeaderRef`]); a test pins that this equals encoding the whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedEvent {
    pub stream: StreamName,
    /// 0-based, contiguous within the stream.
    pub version: u64,
    /// 0-based, contiguous over the whole log (`$all`).
    pub position: u64,
    /// Commit time, microseconds since the Unix epoch, assigned by the writer.
    pub timestamp_us: u64,
    /// Hash of the stream's previous event (all zeros for version 0).
    #[serde(with = "serde_bytes")]
    pub prev_hash: [u8; 32],
    /// Hash linking this event's content to `prev_hash` (see [`crate::chain`]).
    #[serde(with = "serde_bytes")]
    pub hash: [u8; 32],
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u16,
    pub metadata: Metadata,
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

impl RecordedEvent {
    /// `data` as if stored at `position` in `stream` (version 0, time 0, no hash chain):
    /// for tests and tools that decode a payload without a log.
    pub fn unchained(stream: StreamName, position: u64, data: EventData) -> Self {
        Self {
            stream,
            version: 0,
            position,
            timestamp_us: 0,
            prev_hash: [0; 32],
            hash: [0; 32],
            event_id: data.event_id,
            event_type: data.event_type,
            schema_version: data.schema_version,
            metadata: data.metadata,
            payload: data.payload,
        }
    }
}

/// The writer-assigned first half of a stored [`RecordedEvent`], for encoding.
#[derive(Serialize)]
pub(crate) struct EventHeaderRef<'a> {
    pub stream: &'a StreamName,
    pub version: u64,
    pub position: u64,
    pub timestamp_us: u64,
    #[serde(with = "serde_bytes")]
    pub prev_hash: &'a [u8; 32],
    #[serde(with = "serde_bytes")]
    pub hash: &'a [u8; 32],
}

/// The caller-supplied second half of a stored [`RecordedEvent`], for encoding.
#[derive(Serialize)]
pub(crate) struct EventBodyRef<'a> {
    pub event_id: &'a Uuid,
    pub event_type: &'a str,
    pub schema_version: u16,
    pub metadata: &'a Metadata,
    #[serde(with = "serde_bytes")]
    pub payload: &'a [u8],
}

impl<'a> From<&'a EventData> for EventBodyRef<'a> {
    fn from(e: &'a EventData) -> Self {
        Self {
            event_id: &e.event_id,
            event_type: &e.event_type,
            schema_version: e.schema_version,
            metadata: &e.metadata,
            payload: &e.payload,
        }
    }
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendResult {
    /// Version of the first event appended.
    pub first_version: u64,
    /// Version of the last event appended; the stream's version after the append.
    pub last_version: u64,
    /// Global position of the first event appended.
    pub first_position: u64,
    /// Global position of the last event appended.
    pub last_position: u64,
    /// True when every event was already stored: nothing was written and these are the
    /// original positions.
    pub deduplicated: bool,
}
