//! The per-stream hash chain.
//!
//! `hash = blake3(domain tag ‖ prev_hash ‖ every field of the event, length-prefixed)`.
//! The hash is computed over an explicit, stable byte layout rather than over the codec's
//! output, so a future change of storage format does not change (and cannot silently
//! break) existing chains. The position is covered too, so moving an event in `$all` is
//! evident.

use crate::envelope::{Metadata, RecordedEvent};
use crate::stream_name::StreamName;

/// The `prev_hash` of a stream's first event.
pub const GENESIS: [u8; 32] = [0; 32];

const DOMAIN: &[u8] = b"switchboard.eventlog.chain.v1";

/// The fields an event hash covers.
pub struct HashInput<'a> {
    pub prev_hash: &'a [u8; 32],
    pub stream: &'a StreamName,
    pub version: u64,
    pub position: u64,
    pub event_id: &'a uuid::Uuid,
    pub event_type: &'a str,
    pub schema_version: u16,
    pub timestamp_us: u64,
    pub metadata: &'a Metadata,
    pub payload: &'a [u8],
}

fn put_bytes(h: &mut blake3::Hasher, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

fn put_opt(h: &mut blake3::Hasher, bytes: Option<&[u8]>) {
    match bytes {
        None => {
            h.update(&[0]);
        }
        Some(b) => {
            h.update(&[1]);
            put_bytes(h, b);
        }
    }
}

/// Computes the chain hash of one event.
pub fn hash(input: &HashInput<'_>) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    put_bytes(&mut h, DOMAIN);
    h.update(input.prev_hash);
    put_bytes(&mut h, input.stream.as_str().as_bytes());
    h.update(&input.version.to_le_bytes());
    h.update(&input.position.to_le_bytes());
    h.update(input.event_id.as_bytes());
    put_bytes(&mut h, input.event_type.as_bytes());
    h.update(&input.schema_version.to_le_bytes());
    h.update(&input.timestamp_us.to_le_bytes());
    put_opt(
        &mut h,
        input
            .metadata
            .causation_id
            .as_ref()
            .map(|u| &u.as_bytes()[..]),
    );
    put_opt(
        &mut h,
        input
            .metadata
            .correlation_id
            .as_ref()
            .map(|u| &u.as_bytes()[..]),
    );
    put_opt(
        &mut h,
        input.metadata.acting_user.as_deref().map(str::as_bytes),
    );
    put_bytes(&mut h, input.payload);
    *h.finalize().as_bytes()
}

/// Recomputes the hash a stored event should carry.
pub fn expected_hash(event: &RecordedEvent) -> [u8; 32] {
    hash(&HashInput {
        prev_hash: &event.prev_hash,
        stream: &event.stream,
        version: event.version,
        position: event.position,
        event_id: &event.event_id,
        event_type: &event.event_type,
        schema_version: event.schema_version,
        timestamp_us: event.timestamp_us,
        metadata: &event.metadata,
        payload: &event.payload,
    })
}

/// Hex form of a hash, for reports.
pub fn to_hex(hash: &[u8; 32]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> RecordedEvent {
        let mut e = RecordedEvent {
            stream: StreamName::new("inbox-1").unwrap(),
            version: 0,
            position: 5,
            event_id: uuid::Uuid::from_u128(3),
            event_type: "Assigned".into(),
            schema_version: 1,
            timestamp_us: 10,
            metadata: Metadata::default(),
            payload: b"abc".to_vec(),
            prev_hash: GENESIS,
            hash: [0; 32],
        };
        e.hash = expected_hash(&e);
        e
    }

    #[test]
    fn any_field_change_changes_the_hash() {
        let e = event();
        let base = expected_hash(&e);
        let mut m = e.clone();
        m.payload[0] ^= 1;
        assert_ne!(expected_hash(&m), base);
        let mut m = e.clone();
        m.position += 1;
        assert_ne!(expected_hash(&m), base);
        let mut m = e.clone();
        m.metadata.acting_user = Some(String::new());
        assert_ne!(expected_hash(&m), base, "None and Some(\"\") must differ");
        let mut m = e;
        m.prev_hash[31] = 1;
        assert_ne!(expected_hash(&m), base);
    }
}
