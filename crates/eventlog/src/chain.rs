//! The per-stream hash chain.
//!
//! Two steps, so the expensive part runs on the caller's thread and not on the single
//! writer thread:
//! - `content = blake3("…content.v1" ‖ event_id ‖ type ‖ schema version ‖ metadata ‖ payload)`
//!   is computed when an append is submitted;
//! - `hash = blake3("…link.v1" ‖ prev_hash ‖ stream ‖ version ‖ position ‖ timestamp ‖ content)`
//!   is computed by the writer once it has assigned the event its place.
//!
//! Every field is length-prefixed in an explicit, stable byte layout rather than taken
//! from the codec's output, so a future change of storage format does not change (and
//! cannot silently break) existing chains. The position is covered too, so moving an event
//! in `$all` is evident.
//!
//! A log whose positions are assigned after the writer hashes (a replicated log, where
//! the cluster orders appends: see [`ChainFormat::Unpositioned`]) links without the
//! position, under its own domain string so the two formulas can never be confused; the
//! stream, the version and the previous event's hash still bind each event to its place
//! in its stream.

use crate::envelope::{EventData, Metadata, RecordedEvent};
use crate::stream_name::StreamName;

/// The `prev_hash` of a stream's first event.
pub const GENESIS: [u8; 32] = [0; 32];

const CONTENT_DOMAIN: &[u8] = b"switchboard.eventlog.content.v1";
const LINK_DOMAIN: &[u8] = b"switchboard.eventlog.link.v1";
const UNPOSITIONED_LINK_DOMAIN: &[u8] = b"switchboard.eventlog.link-unpositioned.v1";

/// Which link formula a log's chains use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum ChainFormat {
    /// The position in `$all` is part of each link ([`link_hash`]): a log whose writer
    /// assigns positions (RocksDB).
    #[default]
    Positioned,
    /// The position is not ([`link_hash_unpositioned`]): a log whose positions a cluster
    /// assigns after the event is hashed (NATS JetStream's sequence).
    Unpositioned,
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

/// Hash of what the caller supplied for one event.
pub fn content_hash(
    event_id: &uuid::Uuid,
    event_type: &str,
    schema_version: u16,
    metadata: &Metadata,
    payload: &[u8],
) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    put_bytes(&mut h, CONTENT_DOMAIN);
    h.update(event_id.as_bytes());
    put_bytes(&mut h, event_type.as_bytes());
    h.update(&schema_version.to_le_bytes());
    put_opt(
        &mut h,
        metadata.causation_id.as_ref().map(|u| &u.as_bytes()[..]),
    );
    put_opt(
        &mut h,
        metadata.correlation_id.as_ref().map(|u| &u.as_bytes()[..]),
    );
    put_opt(&mut h, metadata.acting_user.as_deref().map(str::as_bytes));
    put_bytes(&mut h, payload);
    *h.finalize().as_bytes()
}

/// [`content_hash`] of an event about to be appended.
pub fn content_hash_of(e: &EventData) -> [u8; 32] {
    content_hash(
        &e.event_id,
        &e.event_type,
        e.schema_version,
        &e.metadata,
        &e.payload,
    )
}

/// The chain link: an event's place in its stream and in `$all`, bound to its content and
/// to the previous event's hash.
pub fn link_hash(
    prev_hash: &[u8; 32],
    stream: &StreamName,
    version: u64,
    position: u64,
    timestamp_us: u64,
    content: &[u8; 32],
) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    put_bytes(&mut h, LINK_DOMAIN);
    h.update(prev_hash);
    put_bytes(&mut h, stream.as_str().as_bytes());
    h.update(&version.to_le_bytes());
    h.update(&position.to_le_bytes());
    h.update(&timestamp_us.to_le_bytes());
    h.update(content);
    *h.finalize().as_bytes()
}

/// The link of a log whose positions are assigned after hashing: as [`link_hash`] without
/// the position.
pub fn link_hash_unpositioned(
    prev_hash: &[u8; 32],
    stream: &StreamName,
    version: u64,
    timestamp_us: u64,
    content: &[u8; 32],
) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    put_bytes(&mut h, UNPOSITIONED_LINK_DOMAIN);
    h.update(prev_hash);
    put_bytes(&mut h, stream.as_str().as_bytes());
    h.update(&version.to_le_bytes());
    h.update(&timestamp_us.to_le_bytes());
    h.update(content);
    *h.finalize().as_bytes()
}

/// Recomputes the hash a stored event should carry under `format`.
pub fn expected_hash_with(format: ChainFormat, e: &RecordedEvent) -> [u8; 32] {
    match format {
        ChainFormat::Positioned => expected_hash(e),
        ChainFormat::Unpositioned => link_hash_unpositioned(
            &e.prev_hash,
            &e.stream,
            e.version,
            e.timestamp_us,
            &content_hash(
                &e.event_id,
                &e.event_type,
                e.schema_version,
                &e.metadata,
                &e.payload,
            ),
        ),
    }
}

/// Recomputes the hash a stored event should carry.
pub fn expected_hash(e: &RecordedEvent) -> [u8; 32] {
    let content = content_hash(
        &e.event_id,
        &e.event_type,
        e.schema_version,
        &e.metadata,
        &e.payload,
    );
    link_hash(
        &e.prev_hash,
        &e.stream,
        e.version,
        e.position,
        e.timestamp_us,
        &content,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> RecordedEvent {
        let mut e = RecordedEvent {
            stream: StreamName::new("inbox-1").unwrap(),
            version: 0,
            position: 5,
            timestamp_us: 10,
            prev_hash: GENESIS,
            hash: [0; 32],
            event_id: uuid::Uuid::from_u128(3),
            event_type: "Assigned".into(),
            schema_version: 1,
            metadata: Metadata::default(),
            payload: b"abc".to_vec(),
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
        let mut m = e.clone();
        m.prev_hash[31] = 1;
        assert_ne!(expected_hash(&m), base);
        // Unpositioned: every field but the position counts, and it differs from the
        // positioned link of the same event.
        let u = expected_hash_with(ChainFormat::Unpositioned, &e);
        assert_ne!(u, base);
        let mut moved = e.clone();
        moved.position += 7;
        assert_eq!(expected_hash_with(ChainFormat::Unpositioned, &moved), u);
        let mut m = e;
        m.version += 1;
        assert_ne!(expected_hash_with(ChainFormat::Unpositioned, &m), u);
    }
}
