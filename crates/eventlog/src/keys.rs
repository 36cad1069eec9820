//! Key layouts of the column families.
//!
//! | column family | key | value |
//! |---|---|---|
//! | `events` | position (u64 BE) | [`RecordedEvent`](crate::RecordedEvent) record |
//! | `stream_index` | stream ‖ 0xFF ‖ version (u64 BE) | position (u64 record) |
//! | `category_index` | category ‖ 0xFF ‖ position (u64 BE) | version (u64 record) |
//! | `event_ids` | event id (16 bytes) | position (u64 record) |
//! | `snapshots` | stream | [`Snapshot`](crate::Snapshot) record |
//! | `meta` | ASCII name (`format`, `checkpoint/<consumer>`) | record |
//!
//! A stream's head (last version, position, chain hash) is its last `stream_index` entry and
//! the event it points at, so no separate heads record has to be written per append.
//!
//! `0xFF` never occurs in UTF-8, so `name ‖ 0xFF` is an unambiguous prefix: `a-1` and `a-10`
//! never share one. Big-endian numbers make RocksDB's bytewise order the numeric order.

pub const CF_EVENTS: &str = "events";
pub const CF_STREAM_INDEX: &str = "stream_index";
pub const CF_CATEGORY_INDEX: &str = "category_index";
pub const CF_EVENT_IDS: &str = "event_ids";
pub const CF_SNAPSHOTS: &str = "snapshots";
pub const CF_META: &str = "meta";

pub const ALL_CFS: [&str; 6] = [
    CF_EVENTS,
    CF_STREAM_INDEX,
    CF_CATEGORY_INDEX,
    CF_EVENT_IDS,
    CF_SNAPSHOTS,
    CF_META,
];

/// `meta` key holding the log's format version.
pub const META_FORMAT: &[u8] = b"format";
/// The log's [`crate::chain::ChainFormat`]; absent: `Positioned`.
pub const META_CHAIN: &[u8] = b"chain";

/// `meta` key of a consumer's checkpoint: `checkpoint/<consumer>`.
pub fn checkpoint_key(consumer: &str) -> Vec<u8> {
    let mut k = b"checkpoint/".to_vec();
    k.extend_from_slice(consumer.as_bytes());
    k
}

const SEP: u8 = 0xFF;

pub fn position_key(position: u64) -> [u8; 8] {
    position.to_be_bytes()
}

pub fn decode_position_key(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

/// `name ‖ 0xFF`: the prefix of every key of one stream (or category).
pub fn prefix(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 9);
    k.extend_from_slice(name.as_bytes());
    k.push(SEP);
    k
}

/// `name ‖ 0xFF ‖ n` (n big endian).
pub fn prefixed_u64(name: &str, n: u64) -> Vec<u8> {
    let mut k = prefix(name);
    k.extend_from_slice(&n.to_be_bytes());
    k
}

/// The number at the end of a `prefixed_u64` key whose prefix is `prefix`.
pub fn suffix_u64(prefix: &[u8], key: &[u8]) -> Option<u64> {
    let rest = key.strip_prefix(prefix)?;
    Some(u64::from_be_bytes(rest.try_into().ok()?))
}

/// The exclusive upper bound of all keys starting with `prefix` (`prefix` ends in 0xFF, so
/// bumping that byte would overflow; appending nine 0xFF bytes is past every `u64` suffix).
pub fn upper_bound(prefix: &[u8]) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&[0xFF; 9]);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_do_not_collide_and_order_numerically() {
        let a1 = prefixed_u64("a-1", 5);
        let a10 = prefixed_u64("a-10", 0);
        assert!(!a10.starts_with(&prefix("a-1")));
        assert!(prefixed_u64("a-1", 255) < prefixed_u64("a-1", 256));
        assert_eq!(suffix_u64(&prefix("a-1"), &a1), Some(5));
        assert!(upper_bound(&prefix("a-1")) > prefixed_u64("a-1", u64::MAX));
    }
}
