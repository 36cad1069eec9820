//! Domain events ↔ log envelopes.
//!
//! The payload is the event's own struct (not the enum around it) encoded by the log's
//! codec (format byte + bincode); the envelope carries the type name and schema version.
//! Reading picks the struct of the stored version from those two and upcasts it to the
//! current one (`domain::VersionedEvent`), so old logs keep reading after a schema change.

use domain::VersionedEvent;
use eventlog::{codec, EventData, Metadata, RecordedEvent};
use uuid::Uuid;

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

/// The id of the `index`-th event written for a command with this idempotency key, so a
/// retried command produces the same ids and the log recognises the retry.
pub fn derived_event_id(key: Uuid, index: usize) -> Uuid {
    Uuid::new_v5(&key, &(index as u64).to_be_bytes())
}
