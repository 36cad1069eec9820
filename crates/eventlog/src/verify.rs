//! Verification: walks the log and names the first broken link.
//!
//! For the whole log it checks that `$all` is contiguous from position 0, that every record
//! decodes and its hash matches its content, that each stream's versions are contiguous
//! and each event's `prev_hash` is the hash of the stream's previous event, and that every
//! index entry (stream, category, event id) agrees with the events.
//!
//! Everything is read from one RocksDB snapshot taken at the start, so appends that land
//! while a live server is verified are simply not part of what is checked, instead of
//! showing up as false breaks. Storage failures are errors; anything the bytes
//! themselves contradict is a [`ChainBreak`] in the report.

use std::collections::HashMap;

use crate::chain;
use crate::codec;
use crate::error::StorageError;
use crate::keys::{self, *};
use crate::rocks::{cf, Shared, StreamHead};
use crate::stream_name::StreamName;
use rocksdb::DB;

/// The first inconsistency found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// Global position of the offending event, when known.
    pub position: Option<u64>,
    pub stream: Option<String>,
    pub version: Option<u64>,
    pub reason: String,
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "broken link")?;
        if let Some(s) = &self.stream {
            write!(f, " in stream {s}")?;
        }
        if let Some(v) = self.version {
            write!(f, " at version {v}")?;
        }
        if let Some(p) = self.position {
            write!(f, " (position {p})")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// What a verification walked and what it found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub events_checked: u64,
    pub streams_checked: u64,
    /// `None` when everything verified.
    pub first_break: Option<ChainBreak>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.first_break.is_none()
    }
}

fn broken(
    position: Option<u64>,
    stream: Option<&str>,
    version: Option<u64>,
    reason: impl Into<String>,
) -> ChainBreak {
    ChainBreak {
        position,
        stream: stream.map(str::to_owned),
        version,
        reason: reason.into(),
    }
}

/// Storage errors stay errors; corruption becomes the report's break.
fn corruption_as_break(e: StorageError) -> Result<ChainBreak, StorageError> {
    match e {
        StorageError::Corrupted { location, reason } => {
            Ok(broken(None, None, None, format!("{location}: {reason}")))
        }
        other => Err(other),
    }
}

pub(crate) fn verify_all(shared: &Shared) -> Result<VerifyReport, StorageError> {
    let db = shared.db()?;
    let snap = db.snapshot();
    let mut report = VerifyReport::default();
    let mut heads: HashMap<StreamName, StreamHead> = HashMap::new();
    let result = walk_all(&db, shared.chain, &snap, &mut report, &mut heads);
    report.streams_checked = heads.len() as u64;
    match result {
        Ok(Some(b)) => report.first_break = Some(b),
        Ok(None) => report.first_break = check_index_counts(&db, &snap, report.events_checked)?,
        Err(e) => report.first_break = Some(corruption_as_break(e)?),
    }
    Ok(report)
}

type Snap<'a> = rocksdb::Snapshot<'a>;

fn walk_all(
    db: &DB,
    chain_format: chain::ChainFormat,
    snap: &Snap<'_>,
    report: &mut VerifyReport,
    heads: &mut HashMap<StreamName, StreamHead>,
) -> Result<Option<ChainBreak>, StorageError> {
    let (stream_cf, category_cf, ids_cf) = (
        cf(db, CF_STREAM_INDEX)?,
        cf(db, CF_CATEGORY_INDEX)?,
        cf(db, CF_EVENT_IDS)?,
    );
    let mut it = snap.raw_iterator_cf(cf(db, CF_EVENTS)?);
    it.seek_to_first();
    let mut expect_position = Some(0u64);
    while let (Some(k), Some(v)) = (it.key(), it.value()) {
        let key_pos = keys::decode_position_key(k);
        if key_pos.is_none() || key_pos != expect_position {
            return Ok(Some(broken(
                expect_position,
                None,
                None,
                format!("$all is not contiguous: next stored key is {key_pos:?}"),
            )));
        }
        let e = match Shared::decode_event(k, v) {
            Ok(e) => e,
            Err(err) => return Ok(Some(broken(key_pos, None, None, err.to_string()))),
        };
        let at = |reason: String| {
            Some(broken(
                Some(e.position),
                Some(e.stream.as_str()),
                Some(e.version),
                reason,
            ))
        };
        let prev = heads.get(&e.stream);
        let (want_version, want_prev) = match prev {
            None => (Some(0), chain::GENESIS),
            Some(h) => (h.version.checked_add(1), h.hash),
        };
        if Some(e.version) != want_version {
            return Ok(at(format!(
                "version {} follows {:?}",
                e.version,
                prev.map(|h| h.version)
            )));
        }
        if e.prev_hash != want_prev {
            return Ok(at(
                "prev_hash is not the hash of the stream's previous event".into(),
            ));
        }
        if chain::expected_hash_with(chain_format, &e) != e.hash {
            return Ok(at("content does not match its hash".into()));
        }
        let stream_entry =
            snap.get_pinned_cf(stream_cf, keys::prefixed_u64(e.stream.as_str(), e.version))?;
        if as_u64(stream_entry) != Some(e.position) {
            return Ok(at("stream index does not point at this event".into()));
        }
        let id_entry = snap
            .get_pinned_cf(ids_cf, e.event_id.as_bytes())?
            .and_then(|b| codec::decode_id_entry(&b).ok());
        if id_entry.map(|i| i.position) != Some(e.position) {
            return Ok(at("event-id index does not point at this event".into()));
        }
        let category_entry = snap.get_pinned_cf(
            category_cf,
            keys::prefixed_u64(e.stream.category(), e.position),
        )?;
        if as_u64(category_entry) != Some(e.version) {
            return Ok(at("category index does not list this event".into()));
        }
        heads.insert(
            e.stream.clone(),
            StreamHead {
                version: e.version,
                position: e.position,
                hash: e.hash,
                event_id: e.event_id,
            },
        );
        report.events_checked += 1;
        expect_position = e.position.checked_add(1);
        it.next();
    }
    it.status()?;
    Ok(None)
}

/// The u64 an index value holds, if it decodes.
fn as_u64(got: Option<rocksdb::DBPinnableSlice<'_>>) -> Option<u64> {
    got.and_then(|b| codec::decode_u64(&b).ok())
}

fn count_keys(db: &DB, snap: &Snap<'_>, name: &str) -> Result<u64, StorageError> {
    // Every key, whatever the family's prefix extractor (`event_ids`' hash memtable).
    let mut all = rocksdb::ReadOptions::default();
    all.set_total_order_seek(true);
    let mut it = snap.raw_iterator_cf_opt(cf(db, name)?, all);
    it.seek_to_first();
    let mut n = 0;
    while it.valid() {
        n += 1;
        it.next();
    }
    it.status()?;
    Ok(n)
}

/// Every event has its index entries (checked while walking); equal counts mean no index
/// entry points anywhere else.
fn check_index_counts(
    db: &DB,
    snap: &Snap<'_>,
    events: u64,
) -> Result<Option<ChainBreak>, StorageError> {
    for name in [CF_STREAM_INDEX, CF_CATEGORY_INDEX, CF_EVENT_IDS] {
        let n = count_keys(db, snap, name)?;
        if n != events {
            return Ok(Some(broken(
                None,
                None,
                None,
                format!("{name} holds {n} entries for {events} events"),
            )));
        }
    }
    Ok(None)
}

pub(crate) fn verify_stream(
    shared: &Shared,
    stream: &StreamName,
) -> Result<VerifyReport, StorageError> {
    let db = shared.db()?;
    let snap = db.snapshot();
    let mut report = VerifyReport {
        streams_checked: 1,
        ..VerifyReport::default()
    };
    let name = stream.as_str();
    let prefix = keys::prefix(name);
    let mut ro = rocksdb::ReadOptions::default();
    ro.set_iterate_lower_bound(prefix.clone());
    ro.set_iterate_upper_bound(keys::upper_bound(&prefix));
    let events_cf = cf(&db, CF_EVENTS)?;
    let mut it = snap.raw_iterator_cf_opt(cf(&db, CF_STREAM_INDEX)?, ro);
    it.seek(&prefix);
    let mut prev: Option<StreamHead> = None;
    while let (Some(k), Some(v)) = (it.key(), it.value()) {
        let want_version = match prev {
            None => Some(0),
            Some(h) => h.version.checked_add(1),
        };
        let version = keys::suffix_u64(&prefix, k);
        let mut fail = |position: Option<u64>, reason: String| {
            report.first_break = Some(broken(position, Some(name), version, reason));
        };
        if version.is_none() || version != want_version {
            fail(
                None,
                format!("index versions are not contiguous at {version:?}"),
            );
            return Ok(report);
        }
        let Ok(position) = codec::decode_u64(v) else {
            fail(None, "undecodable stream index entry".into());
            return Ok(report);
        };
        let key = keys::position_key(position);
        let Some(bytes) = snap.get_pinned_cf(events_cf, key)? else {
            fail(Some(position), "indexed event is missing".into());
            return Ok(report);
        };
        let e = match Shared::decode_event(&key, &bytes) {
            Ok(e) => e,
            Err(err) => {
                fail(Some(position), err.to_string());
                return Ok(report);
            }
        };
        let want_prev = prev.map_or(chain::GENESIS, |h| h.hash);
        let reason = if &e.stream != stream || Some(e.version) != version {
            Some("index points at another event")
        } else if e.prev_hash != want_prev {
            Some("prev_hash is not the hash of the stream's previous event")
        } else if chain::expected_hash_with(shared.chain, &e) != e.hash {
            Some("content does not match its hash")
        } else {
            None
        };
        if let Some(reason) = reason {
            fail(Some(position), reason.into());
            return Ok(report);
        }
        prev = Some(StreamHead {
            version: e.version,
            position,
            hash: e.hash,
            event_id: e.event_id,
        });
        report.events_checked += 1;
        it.next();
    }
    it.status()?;
    Ok(report)
}
