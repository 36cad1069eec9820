//! Domain events ↔ log envelopes.
//!
//! The payload is the event encoded by the log's codec (format byte + bincode); the
//! envelope carries the type name and schema version the domain declares, so readers and
//! future upcasters can tell what they hold without decoding it.

use domain::DomainEvent;
use eventlog::{codec, EventData, Metadata, RecordedEvent};
use uuid::Uuid;

/// Builds the envelope of one domain event.
///
/// # Errors
/// When the codec refuses the event (it never does for the domain's types).
pub fn encode<E: DomainEvent>(
    event: &E,
    event_id: Uuid,
    metadata: Metadata,
) -> Result<EventData, codec::CodecError> {
    Ok(EventData {
        event_id,
        event_type: event.event_type().to_owned(),
        schema_version: event.schema_version(),
        metadata,
        payload: codec::encode(event)?,
    })
}

/// Decodes a stored event's payload.
///
/// # Errors
/// When the payload is not an `E` of the current schema, or its type name disagrees with
/// the envelope.
pub fn decode<E: DomainEvent>(record: &RecordedEvent) -> Result<E, String> {
    let event: E = codec::decode(&record.payload).map_err(|e| e.to_string())?;
    if event.event_type() != record.event_type {
        return Err(format!(
            "envelope says {}, payload is {}",
            record.event_type,
            event.event_type()
        ));
    }
    Ok(event)
}

/// The id of the `index`-th event written for a command with this idempotency key, so a
/// retried command produces the same ids and the log recognises the retry.
pub fn derived_event_id(key: Uuid, index: usize) -> Uuid {
    Uuid::new_v5(&key, &(index as u64).to_be_bytes())
}
