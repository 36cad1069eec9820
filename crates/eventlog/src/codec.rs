//! The one codec of the log: every stored value is `[format-version byte] ++ bincode`.
//!
//! Keys are fixed binary layouts (see `keys`), values are records. A record whose first
//! byte is not a format version this build knows is refused with
//! [`CodecError::UnsupportedFormat`] rather than guessed at, so a future format can be
//! introduced by bumping [`FORMAT_VERSION`] and teaching [`decode`] the old one.
//!
//! Decoding is bounded: bincode is configured with an allocation limit, so corrupt or
//! hostile bytes produce an error, never a panic or an unbounded allocation.

use serde::{de::DeserializeOwned, Serialize};

/// The format version written as the first byte of every stored record.
pub const FORMAT_VERSION: u8 = 1;

/// Upper bound on what one decode may allocate; larger than any record the log accepts.
pub const DECODE_LIMIT: usize = 64 * 1024 * 1024;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    #[error("empty record")]
    Empty,
    #[error("unsupported record format version {0}")]
    UnsupportedFormat(u8),
    #[error("malformed record: {0}")]
    Malformed(String),
    #[error("record has {0} trailing bytes")]
    TrailingBytes(usize),
    #[error("cannot encode record: {0}")]
    Encode(String),
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<DECODE_LIMIT>()
}

/// Encodes `value` as a record: the format-version byte followed by its bincode form.
///
/// # Errors
/// [`CodecError::Encode`] if serde refuses the value (e.g. a sequence of unknown length);
/// the log's own types never do.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(128);
    out.push(FORMAT_VERSION);
    bincode::serde::encode_into_std_write(value, &mut out, config())
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    Ok(out)
}

/// Encodes the caller-supplied half of an event record (no format byte: it is a suffix).
///
/// # Errors
/// As [`encode`].
pub(crate) fn encode_body(body: &crate::envelope::EventBodyRef<'_>) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(body.payload.len() + 64);
    bincode::serde::encode_into_std_write(body, &mut out, config())
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    Ok(out)
}

/// The record of a whole event from its header and its pre-encoded body: identical to
/// [`encode`] of the [`crate::RecordedEvent`] (serde structs are concatenations of their
/// fields in bincode).
///
/// # Errors
/// As [`encode`].
pub(crate) fn encode_event(
    header: &crate::envelope::EventHeaderRef<'_>,
    body: &[u8],
) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(1 + 128 + body.len());
    out.push(FORMAT_VERSION);
    bincode::serde::encode_into_std_write(header, &mut out, config())
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    out.extend_from_slice(body);
    Ok(out)
}

/// Decodes a record written by [`encode`]. All bytes must be consumed.
///
/// # Errors
/// [`CodecError`] for empty input, an unknown format byte, malformed or truncated bincode,
/// or trailing garbage.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (&format, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if format != FORMAT_VERSION {
        return Err(CodecError::UnsupportedFormat(format));
    }
    let (value, read) = bincode::serde::decode_from_slice::<T, _>(body, config())
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    if read != body.len() {
        return Err(CodecError::TrailingBytes(body.len() - read));
    }
    Ok(value)
}

/// Decodes a record with a serde seed (the event's type and schema version choose the
/// struct and the upcasts; see the domain's `VersionedEvent`).
///
/// # Errors
/// As [`decode`], plus whatever the seed refuses (reported as `Malformed`).
pub fn decode_seed<'a, T>(seed: T, bytes: &'a [u8]) -> Result<T::Value, CodecError>
where
    T: serde::de::DeserializeSeed<'a>,
{
    let (&format, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if format != FORMAT_VERSION {
        return Err(CodecError::UnsupportedFormat(format));
    }
    let (value, read) = bincode::serde::seed_decode_from_slice(seed, body, config())
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    if read != body.len() {
        return Err(CodecError::TrailingBytes(body.len() - read));
    }
    Ok(value)
}

/// Encodes a bare `u64` (a position or version) as a 9-byte record: format byte + big endian.
pub fn encode_u64(value: u64) -> [u8; 9] {
    let mut out = [0u8; 9];
    out[0] = FORMAT_VERSION;
    out[1..].copy_from_slice(&value.to_be_bytes());
    out
}

/// Decodes a record written by [`encode_u64`].
///
/// # Errors
/// [`CodecError`] when the length or the format byte is wrong.
pub fn decode_u64(bytes: &[u8]) -> Result<u64, CodecError> {
    match bytes {
        [] => Err(CodecError::Empty),
        [FORMAT_VERSION, rest @ ..] => {
            let arr: [u8; 8] = rest.try_into().map_err(|_| {
                CodecError::Malformed(format!("u64 record of {} bytes", bytes.len()))
            })?;
            Ok(u64::from_be_bytes(arr))
        }
        [other, ..] => Err(CodecError::UnsupportedFormat(*other)),
    }
}

/// An `event_ids` entry: where the event is, and its place in the append that wrote it
/// (so a retry is recognised only as a retry of one whole append).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdEntry {
    pub position: u64,
    /// Index of the event within its append.
    pub index: u32,
    /// Number of events of that append.
    pub count: u32,
}

/// Encodes an [`IdEntry`] as a 17-byte record: format byte + big-endian fields.
pub fn encode_id_entry(e: IdEntry) -> [u8; 17] {
    let mut out = [0u8; 17];
    out[0] = FORMAT_VERSION;
    out[1..9].copy_from_slice(&e.position.to_be_bytes());
    out[9..13].copy_from_slice(&e.index.to_be_bytes());
    out[13..17].copy_from_slice(&e.count.to_be_bytes());
    out
}

/// Decodes a record written by [`encode_id_entry`].
///
/// # Errors
/// [`CodecError`] when the length or the format byte is wrong.
pub fn decode_id_entry(bytes: &[u8]) -> Result<IdEntry, CodecError> {
    match bytes {
        [] => Err(CodecError::Empty),
        [FORMAT_VERSION, rest @ ..] if rest.len() == 16 => {
            let u64_at = |i: usize| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&rest[i..i + 8]);
                u64::from_be_bytes(b)
            };
            let u32_at = |i: usize| {
                let mut b = [0u8; 4];
                b.copy_from_slice(&rest[i..i + 4]);
                u32::from_be_bytes(b)
            };
            Ok(IdEntry {
                position: u64_at(0),
                index: u32_at(8),
                count: u32_at(12),
            })
        }
        [FORMAT_VERSION, ..] => Err(CodecError::Malformed(format!(
            "id entry of {} bytes",
            bytes.len()
        ))),
        [other, ..] => Err(CodecError::UnsupportedFormat(*other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Metadata, RecordedEvent};
    use crate::stream_name::StreamName;
    use proptest::prelude::*;

    fn sample() -> RecordedEvent {
        RecordedEvent {
            stream: StreamName::new("conversation-1").unwrap(),
            version: 3,
            position: 42,
            timestamp_us: 1_700_000_000_000_000,
            prev_hash: [9; 32],
            hash: [8; 32],
            event_id: uuid::Uuid::from_u128(7),
            event_type: "MessagePosted".into(),
            schema_version: 2,
            metadata: Metadata {
                causation_id: Some(uuid::Uuid::from_u128(1)),
                correlation_id: None,
                acting_user: Some("user-9".into()),
            },
            payload: vec![1, 2, 3, 250],
        }
    }

    #[test]
    fn round_trips_an_event() {
        let bytes = encode(&sample()).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode::<RecordedEvent>(&bytes).unwrap(), sample());
    }

    /// The writer encodes header and body separately; together they must be exactly the
    /// record of the whole event.
    #[test]
    fn header_then_body_encodes_the_whole_event() {
        let e = sample();
        let data = crate::EventData {
            event_id: e.event_id,
            event_type: e.event_type.clone(),
            schema_version: e.schema_version,
            metadata: e.metadata.clone(),
            payload: e.payload.clone(),
        };
        let body = encode_body(&crate::envelope::EventBodyRef::from(&data)).unwrap();
        let header = crate::envelope::EventHeaderRef {
            stream: &e.stream,
            version: e.version,
            position: e.position,
            timestamp_us: e.timestamp_us,
            prev_hash: &e.prev_hash,
            hash: &e.hash,
        };
        assert_eq!(encode_event(&header, &body).unwrap(), encode(&e).unwrap());
    }

    #[test]
    fn refuses_unknown_format_and_trailing_bytes() {
        let mut bytes = encode(&sample()).unwrap();
        bytes.push(0);
        assert_eq!(
            decode::<RecordedEvent>(&bytes),
            Err(CodecError::TrailingBytes(1))
        );
        bytes[0] = 99;
        assert_eq!(
            decode::<RecordedEvent>(&bytes),
            Err(CodecError::UnsupportedFormat(99))
        );
        assert_eq!(decode::<RecordedEvent>(&[]), Err(CodecError::Empty));
    }

    #[test]
    fn id_entries_round_trip_and_reject_bad_lengths() {
        let e = IdEntry {
            position: 9,
            index: 2,
            count: 3,
        };
        assert_eq!(decode_id_entry(&encode_id_entry(e)).unwrap(), e);
        assert!(decode_id_entry(&encode_id_entry(e)[..16]).is_err());
        assert!(decode_id_entry(&[]).is_err());
    }

    #[test]
    fn u64_records_round_trip_and_reject_bad_lengths() {
        assert_eq!(decode_u64(&encode_u64(u64::MAX)).unwrap(), u64::MAX);
        assert!(decode_u64(&[FORMAT_VERSION, 1, 2]).is_err());
        assert!(decode_u64(&[2, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Random bytes never panic the decoder; they either decode or give an error.
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode::<RecordedEvent>(&bytes);
            let _ = decode::<crate::snapshot::Snapshot>(&bytes);
            let _ = decode_u64(&bytes);
            let _ = decode_id_entry(&bytes);
        }

        /// Every truncation and every single-byte flip of a valid record is handled without
        /// panic; truncations are always errors.
        #[test]
        fn truncated_or_flipped_records_never_panic(cut in 0usize..200, flip in 0usize..200, bit in 0u8..8) {
            let bytes = encode(&sample()).unwrap();
            let cut = cut.min(bytes.len() - 1);
            prop_assert!(decode::<RecordedEvent>(&bytes[..cut]).is_err());
            let mut flipped = bytes.clone();
            let i = flip % flipped.len();
            flipped[i] ^= 1 << bit;
            let _ = decode::<RecordedEvent>(&flipped);
        }
    }
}
