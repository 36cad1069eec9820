//! The body of one event's message: everything of a `RecordedEvent` but its position,
//! which is the message's stream sequence (minus one: positions are 0-based), plus its
//! place in the append that wrote it.

use eventlog::{codec, Metadata, RecordedEvent, Replicated, StreamName};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A message body (`eventlog::codec`: a format byte and bincode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireRecord {
    pub stream: StreamName,
    pub version: u64,
    pub timestamp_us: u64,
    #[serde(with = "serde_bytes")]
    pub prev_hash: [u8; 32],
    #[serde(with = "serde_bytes")]
    pub hash: [u8; 32],
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u16,
    pub metadata: Metadata,
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    /// Its index among the events of its append, and how many there were.
    pub index: u32,
    pub count: u32,
}

impl WireRecord {
    /// The stored event, at the position of stream sequence `sequence`.
    pub fn into_replicated(self, sequence: u64) -> Replicated {
        Replicated {
            index: self.index,
            count: self.count,
            event: RecordedEvent {
                stream: self.stream,
                version: self.version,
                position: sequence.saturating_sub(1),
                timestamp_us: self.timestamp_us,
                prev_hash: self.prev_hash,
                hash: self.hash,
                event_id: self.event_id,
                event_type: self.event_type,
                schema_version: self.schema_version,
                metadata: self.metadata,
                payload: self.payload,
            },
        }
    }

    /// # Errors
    /// As `eventlog::codec::encode`.
    pub fn encode(&self) -> Result<Vec<u8>, codec::CodecError> {
        codec::encode(self)
    }

    /// # Errors
    /// As `eventlog::codec::decode`: bytes that are not a record.
    pub fn decode(bytes: &[u8]) -> Result<Self, codec::CodecError> {
        codec::decode(bytes)
    }
}
