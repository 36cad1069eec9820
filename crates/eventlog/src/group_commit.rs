//! The writer thread: group commit of appends.
//!
//! Appends arrive on a bounded crossbeam channel. The writer takes everything waiting (up
//! to `max_batch_bytes`), validates each append against the stream heads (including the
//! ones earlier appends of the same batch produced), assigns versions, positions and chain
//! hashes, writes the whole batch as one RocksDB `WriteBatch` with `sync = true`, and only
//! then acknowledges each caller and publishes the events live.
//!
//! Invariants this thread owns:
//! - It is the only writer of `events` and the indexes, so versions and positions
//!   are assigned without locks and are contiguous.
//! - Each append is all-or-nothing: a refused append adds nothing to the batch; a failed
//!   batch write acknowledges every append in it with the error and advances nothing.
//! - `Shared::next_position` moves only after the batch is durable, and before the batch is
//!   published, so a subscriber that sees a batch live can also read it from storage.

use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use rocksdb::{WriteBatch, WriteOptions, DB};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::chain;
use crate::codec;
use crate::envelope::{AppendResult, EventBodyRef, EventData, EventHeaderRef, RecordedEvent};
use crate::error::{AppendError, StorageError};
use crate::expected::ExpectedVersion;
use crate::keys::{self, *};
use crate::rocks::{cf, now_us, LogOptions, Shared, StreamHead};
use crate::stream_name::StreamName;

pub(crate) enum WriterMsg {
    Append(AppendRequest),
    /// A replica's next events, placed elsewhere (see `RocksLog::replicate_blocking`).
    Replicate {
        events: Vec<Replicated>,
        ack: oneshot::Sender<Result<(), StorageError>>,
    },
    Shutdown,
}

/// An event of a replica's source log, with its place in the append that wrote it (for
/// recognising a retried append later).
#[derive(Debug, Clone)]
pub struct Replicated {
    pub event: RecordedEvent,
    /// Its index among the events of its append.
    pub index: u32,
    /// How many events its append had.
    pub count: u32,
}

pub(crate) struct AppendRequest {
    pub stream: StreamName,
    pub expected: ExpectedVersion,
    pub events: Vec<PreparedEvent>,
    pub ack: oneshot::Sender<Result<AppendResult, AppendError>>,
}

/// An event validated, content-hashed and body-encoded on the caller's thread, so the
/// writer thread only links and writes it.
pub(crate) struct PreparedEvent {
    pub data: EventData,
    pub content_hash: [u8; 32],
    pub body: Vec<u8>,
}

impl AppendRequest {
    pub(crate) fn size(&self) -> usize {
        self.events.iter().map(|e| e.data.size()).sum()
    }
}

const MAX_EVENT_TYPE_LEN: usize = 128;

/// One event of an append found stored under its id: what the append asks to write, what
/// is stored, and where the stored one stood in its own append (`index` of `count`).
pub struct StoredRetry<'a> {
    pub asked: &'a EventData,
    pub stored: &'a RecordedEvent,
    pub index: u32,
    pub count: u32,
}

/// The one rule of idempotent appends, for every implementation of the log: an append of
/// `asked` events to `stream` whose ids are found stored (`stored`, in the append's order)
/// is a retry when it is exactly one earlier append — same stream, same order, all of it,
/// same content — and then its original result is the answer. `Ok(None)` when none of its
/// ids is stored.
///
/// # Errors
/// `PartialDuplicate` when only some ids are stored or they were written otherwise;
/// `EventIdReused` when an id is stored with other content.
pub fn judge_retry(
    stream: &StreamName,
    asked: usize,
    stored: &[StoredRetry<'_>],
) -> Result<Option<AppendResult>, AppendError> {
    let (Some(first), Some(last)) = (stored.first(), stored.last()) else {
        return Ok(None);
    };
    let (first, last) = (first.stored, last.stored);
    if stored.len() != asked {
        return Err(AppendError::PartialDuplicate {
            event_id: first.event_id,
        });
    }
    for (i, r) in stored.iter().enumerate() {
        let s = r.stored;
        let same_append = &s.stream == stream
            && usize::try_from(r.index).is_ok_and(|x| x == i)
            && usize::try_from(r.count).is_ok_and(|c| c == asked)
            && u64::try_from(i)
                .ok()
                .and_then(|i| first.version.checked_add(i))
                == Some(s.version);
        if !same_append {
            return Err(AppendError::PartialDuplicate {
                event_id: s.event_id,
            });
        }
        if !r.asked.same_content_as(s) {
            return Err(AppendError::EventIdReused {
                event_id: s.event_id,
            });
        }
    }
    Ok(Some(AppendResult {
        first_version: first.version,
        last_version: last.version,
        first_position: first.position,
        last_position: last.position,
        deduplicated: true,
    }))
}

/// Checks an append against the limits, needing no state: runs on the caller's thread.
///
/// # Errors
/// The [`AppendError`] naming the limit broken; nothing is then written.
pub fn validate(events: &[EventData], opts: &LogOptions) -> Result<(), AppendError> {
    if events.is_empty() {
        return Err(AppendError::NoEvents);
    }
    let size: usize = events.iter().map(EventData::size).sum();
    if size > opts.max_append_bytes || events.len() > opts.max_append_events {
        return Err(AppendError::AppendTooLarge {
            size,
            count: events.len(),
        });
    }
    let mut seen = FxHashSet::default();
    for e in events {
        if e.size() > opts.max_event_bytes {
            return Err(AppendError::EventTooLarge {
                size: e.size(),
                limit: opts.max_event_bytes,
            });
        }
        if e.event_type.is_empty()
            || e.event_type.len() > MAX_EVENT_TYPE_LEN
            || e.event_type
                .chars()
                .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(AppendError::InvalidEventType(e.event_type.clone()));
        }
        if events.len() > 1 && !seen.insert(e.event_id) {
            return Err(AppendError::DuplicateIdInAppend {
                event_id: e.event_id,
            });
        }
    }
    Ok(())
}

/// Validates `events` and prepares them for the writer.
pub(crate) fn prepare_events(
    events: Vec<EventData>,
    opts: &LogOptions,
) -> Result<Vec<PreparedEvent>, AppendError> {
    validate(&events, opts)?;
    events
        .into_iter()
        .map(|data| {
            let body = codec::encode_body(&EventBodyRef::from(&data))
                .map_err(|e| StorageError::codec("events/new", e))?;
            Ok(PreparedEvent {
                content_hash: chain::content_hash_of(&data),
                body,
                data,
            })
        })
        .collect()
}

/// Stream heads the writer has seen, bounded; a miss reads the stream index.
struct HeadCache {
    map: FxHashMap<StreamName, StreamHead>,
    capacity: usize,
}

impl HeadCache {
    fn insert(&mut self, stream: StreamName, head: StreamHead) {
        if self.map.len() >= self.capacity && !self.map.contains_key(&stream) {
            // Evict about a quarter, arbitrarily: heads are always recoverable from storage.
            let keep = self.capacity - self.capacity / 4;
            let mut n = 0;
            self.map.retain(|_, _| {
                n += 1;
                n <= keep
            });
        }
        self.map.insert(stream, head);
    }
}

/// What the appends already accepted into the current batch changed, so later appends in
/// the same batch see them.
#[derive(Default)]
struct BatchOverlay {
    heads: FxHashMap<StreamName, StreamHead>,
    /// Event id → index into `events`.
    /// Only for ids that occur more than once in the batch (`repeated`): any other id can
    /// not have been added by an earlier append of the same batch.
    ids: FxHashMap<Uuid, (usize, codec::IdEntry)>,
    repeated: FxHashSet<Uuid>,
    events: Vec<RecordedEvent>,
}

/// Closes the live feed when the writer stops, however it stops (a panic included), so
/// live subscribers learn the log closed instead of waiting forever.
struct CloseLiveOnExit(Arc<Shared>);

impl Drop for CloseLiveOnExit {
    fn drop(&mut self) {
        let mut live = match self.0.live.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        live.take();
    }
}

/// While failed, how often the writer tries to recover when no append arrives.
const RECOVERY_PROBE: Duration = Duration::from_secs(1);
/// A synced batch write that takes longer than this is logged (a warning naming its time
/// and size): every append of the batch waited that long, so a disk that stalls shows in
/// the log and not only in callers' latencies.
const SLOW_COMMIT: Duration = Duration::from_millis(50);
/// Least time between two recovery attempts.
const RECOVERY_GAP: Duration = Duration::from_millis(250);

pub(crate) fn run(shared: Arc<Shared>, rx: Receiver<WriterMsg>, last_timestamp_us: u64) {
    let _close_live = CloseLiveOnExit(shared.clone());
    let mut writer = GroupWriter {
        heads: HeadCache {
            map: FxHashMap::default(),
            capacity: shared.options.head_cache_entries.max(1),
        },
        last_timestamp_us,
        failed: None,
        last_recovery: None,
        shared,
    };
    let mut shutting_down = false;
    while !shutting_down {
        let received = if writer.failed.is_some() {
            // Failed: wake up now and then to try to recover, so health checks see the
            // log come back even while nobody appends.
            match rx.recv_timeout(RECOVERY_PROBE) {
                Err(RecvTimeoutError::Timeout) => {
                    writer.try_recover();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => Err(crossbeam_channel::RecvError),
                Ok(msg) => Ok(msg),
            }
        } else {
            rx.recv()
        };
        let first = match received {
            Ok(WriterMsg::Append(req)) => req,
            Ok(WriterMsg::Replicate { events, ack }) => {
                let _ = ack.send(writer.replicate(events));
                continue;
            }
            Ok(WriterMsg::Shutdown) | Err(_) => break,
        };
        let mut bytes = first.size();
        let mut batch = vec![first];
        while bytes < writer.shared.options.max_batch_bytes {
            match rx.try_recv() {
                Ok(WriterMsg::Append(req)) => {
                    bytes += req.size();
                    batch.push(req);
                }
                Ok(WriterMsg::Replicate { ack, .. }) => {
                    // A log is either a replica or a primary: never both kinds of writes.
                    let _ = ack.send(Err(StorageError::ReadOnly));
                }
                Ok(WriterMsg::Shutdown) => {
                    shutting_down = true;
                    break;
                }
                Err(_) => break,
            }
        }
        writer
            .shared
            .queued_bytes
            .fetch_sub(bytes, Ordering::AcqRel);
        writer.commit(batch);
    }
    // Appends queued after the shutdown message are refused: their senders see Closed.
    drop(rx);
    tracing::info!("event log writer stopped");
}

struct GroupWriter {
    shared: Arc<Shared>,
    heads: HeadCache,
    last_timestamp_us: u64,
    /// Set by a failed batch write. After it, what is on disk is uncertain (the batch may
    /// be in the write-ahead log), so positions and heads in memory cannot be trusted:
    /// everything is refused until the database is reopened ([`GroupWriter::try_recover`])
    /// and positions and heads are read again from disk.
    failed: Option<String>,
    /// When recovery was last tried.
    last_recovery: Option<Instant>,
}

type Ack = oneshot::Sender<Result<AppendResult, AppendError>>;

impl GroupWriter {
    /// After a failed batch write: once the file system has room again, reopens the
    /// database, takes positions and heads from what is really on disk, publishes the
    /// failed batch if it turned out durable after all (its callers were told its outcome
    /// was unknown, and a retry with the same ids finds it), and takes appends again.
    fn try_recover(&mut self) {
        if self.failed.is_none()
            || self
                .last_recovery
                .is_some_and(|at| at.elapsed() < RECOVERY_GAP)
        {
            return;
        }
        self.last_recovery = Some(Instant::now());
        if !self.shared.has_room_to_reopen() {
            return;
        }
        if let Err(e) = self.shared.reopen() {
            tracing::warn!(error = %e, "event log not reopened yet");
            return;
        }
        let recovered = self.shared.last_event().and_then(|last| {
            let next = last.as_ref().map_or(0, |e| e.position.saturating_add(1));
            let published = self.shared.next_position.load(Ordering::Acquire);
            let unpublished = if next > published {
                let count = usize::try_from(next - published).unwrap_or(usize::MAX);
                self.shared.read_all(published, count)?
            } else {
                Vec::new()
            };
            Ok((last.map_or(0, |e| e.timestamp_us), next, unpublished))
        });
        let (last_timestamp_us, next, unpublished) = match recovered {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "event log reopened but not readable yet");
                return;
            }
        };
        self.heads.map.clear();
        self.last_timestamp_us = self.last_timestamp_us.max(last_timestamp_us);
        self.shared.next_position.store(next, Ordering::Release);
        if !unpublished.is_empty() {
            tracing::warn!(
                events = unpublished.len(),
                "the batch whose write failed is on disk after all; publishing it"
            );
            self.publish(unpublished);
        }
        self.failed = None;
        self.shared.set_write_failure(None);
        tracing::info!(
            next_position = next,
            "event log recovered; taking appends again"
        );
    }

    /// Stores a replica's next events (see `RocksLog::replicate_blocking`): each must
    /// continue `$all` and its stream (version, previous hash) and carry the hash of its
    /// content under the log's chain format; one `WriteBatch`, not fsynced.
    fn replicate(&mut self, events: Vec<Replicated>) -> Result<(), StorageError> {
        let db = self.shared.db()?;
        let mut next = self.shared.next_position.load(Ordering::Acquire);
        let mut heads: FxHashMap<StreamName, StreamHead> = FxHashMap::default();
        let mut wb = WriteBatch::default();
        let mut stored = Vec::with_capacity(events.len());
        let (events_cf, stream_cf, category_cf, ids_cf) = (
            cf(&db, CF_EVENTS)?,
            cf(&db, CF_STREAM_INDEX)?,
            cf(&db, CF_CATEGORY_INDEX)?,
            cf(&db, CF_EVENT_IDS)?,
        );
        for Replicated {
            event: e,
            index,
            count,
        } in events
        {
            if e.position < next {
                continue;
            }
            let at = || format!("replica/{}", e.position);
            if e.position != next {
                return Err(StorageError::corrupted(
                    at(),
                    format!("gap: the replica is at {next}"),
                ));
            }
            let head = match heads.get(&e.stream) {
                Some(h) => Some(*h),
                None => match self.heads.map.get(&e.stream) {
                    Some(h) => Some(*h),
                    None => self.shared.head(&e.stream)?,
                },
            };
            let (want_version, want_prev) = head.map_or((0, chain::GENESIS), |h| {
                (h.version.saturating_add(1), h.hash)
            });
            if e.version != want_version || e.prev_hash != want_prev {
                return Err(StorageError::corrupted(
                    at(),
                    format!(
                        "{}@{} does not continue its stream (expected version {want_version})",
                        e.stream, e.version
                    ),
                ));
            }
            if chain::expected_hash_with(self.shared.chain, &e) != e.hash {
                return Err(StorageError::corrupted(
                    at(),
                    "content does not match its hash",
                ));
            }
            wb.put_cf(
                events_cf,
                keys::position_key(e.position),
                codec::encode(&e).map_err(|err| StorageError::codec(at(), err))?,
            );
            wb.put_cf(
                stream_cf,
                keys::prefixed_u64(e.stream.as_str(), e.version),
                codec::encode_u64(e.position),
            );
            wb.put_cf(
                category_cf,
                keys::prefixed_u64(e.stream.category(), e.position),
                codec::encode_u64(e.version),
            );
            wb.put_cf(
                ids_cf,
                e.event_id.as_bytes(),
                codec::encode_id_entry(codec::IdEntry {
                    position: e.position,
                    index,
                    count,
                }),
            );
            heads.insert(
                e.stream.clone(),
                StreamHead {
                    version: e.version,
                    position: e.position,
                    hash: e.hash,
                    event_id: e.event_id,
                },
            );
            next += 1;
            stored.push(e);
        }
        if stored.is_empty() {
            return Ok(());
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(false);
        db.write_opt(wb, &wo)?;
        drop(db);
        for (stream, head) in heads {
            self.heads.insert(stream, head);
        }
        self.shared.next_position.store(next, Ordering::Release);
        self.publish(stored);
        Ok(())
    }

    fn publish(&self, events: Vec<RecordedEvent>) {
        let batch = Arc::new(
            events
                .into_iter()
                .map(crate::store::SharedRecord::new)
                .collect(),
        );
        if let Ok(live) = self.shared.live.lock() {
            if let Some(tx) = live.as_ref() {
                // No receivers is fine; slow receivers lag and catch up from storage.
                let _ = tx.send(batch);
            }
        }
    }

    fn commit(&mut self, batch: Vec<AppendRequest>) {
        self.try_recover();
        if let Some(reason) = &self.failed {
            for req in batch {
                let _ = req.ack.send(Err(AppendError::Storage(StorageError::Failed(
                    reason.clone(),
                ))));
            }
            return;
        }
        let db = match self.shared.db() {
            Ok(db) => db,
            Err(e) => {
                for req in batch {
                    let _ = req.ack.send(Err(AppendError::Storage(e.clone())));
                }
                return;
            }
        };
        let mut overlay = BatchOverlay::default();
        let mut wb = WriteBatch::default();
        let mut acks: Vec<(Ack, AppendResult)> = Vec::with_capacity(batch.len());
        // Commit timestamps never go backwards, even if the wall clock does.
        let now = now_us().max(self.last_timestamp_us);
        let first_position = self.shared.next_position.load(Ordering::Acquire);
        // One batched lookup tells which event ids are already stored; almost always none,
        // and then no append in the batch needs a per-event lookup.
        let mut ids: Vec<Uuid> = batch
            .iter()
            .flat_map(|r| r.events.iter().map(|e| e.data.event_id))
            .collect();
        let stored = match self.shared.stored_ids(&mut ids) {
            Ok(found) => found.into_iter().collect::<FxHashSet<_>>(),
            Err(e) => {
                for req in batch {
                    let _ = req.ack.send(Err(AppendError::Storage(e.clone())));
                }
                return;
            }
        };
        // `stored_ids` sorted `ids`: an id retried within one batch sits next to itself.
        overlay.repeated = ids
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| w[0])
            .collect();
        for req in batch {
            let AppendRequest {
                stream,
                expected,
                events,
                ack,
            } = req;
            match self.prepare(
                &db,
                stream,
                expected,
                events,
                &stored,
                &mut overlay,
                &mut wb,
                first_position,
                now,
            ) {
                Ok(result) => acks.push((ack, result)),
                Err(e) => {
                    let _ = ack.send(Err(e));
                }
            }
        }
        if overlay.events.is_empty() {
            for (ack, result) in acks {
                let _ = ack.send(Ok(result));
            }
            return;
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        // Keys of one batch are mostly ascending runs (positions): let the memtable reuse
        // its insert position.
        wo.set_memtable_insert_hint_per_batch(true);
        let (bytes, started) = (wb.size_in_bytes(), Instant::now());
        let written = db.write_opt(wb, &wo);
        let took = started.elapsed();
        if took > SLOW_COMMIT {
            tracing::warn!(
                ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
                events = overlay.events.len(),
                bytes,
                "slow group commit: the synced write took longer than {} ms",
                SLOW_COMMIT.as_millis()
            );
        }
        if let Err(e) = written {
            let err = StorageError::from(e);
            tracing::error!(error = %err, "group commit failed; refusing appends until reopened");
            self.failed = Some(err.to_string());
            self.shared.set_write_failure(Some(err.to_string()));
            self.last_recovery = Some(Instant::now());
            for (ack, _) in acks {
                let _ = ack.send(Err(AppendError::Storage(err.clone())));
            }
            return;
        }
        drop(db);
        self.last_timestamp_us = now;
        for (stream, head) in overlay.heads {
            self.heads.insert(stream, head);
        }
        let next = first_position + overlay.events.len() as u64;
        self.shared.next_position.store(next, Ordering::Release);
        self.publish(overlay.events);
        for (ack, result) in acks {
            let _ = ack.send(Ok(result));
        }
    }

    fn head(
        &self,
        stream: &StreamName,
        overlay: &BatchOverlay,
    ) -> Result<Option<StreamHead>, StorageError> {
        if let Some(h) = overlay
            .heads
            .get(stream)
            .or_else(|| self.heads.map.get(stream))
        {
            return Ok(Some(*h));
        }
        self.shared.head(stream)
    }

    fn stored_event(
        &self,
        id: Uuid,
        stored: &FxHashSet<Uuid>,
        overlay: &BatchOverlay,
    ) -> Result<Option<(RecordedEvent, codec::IdEntry)>, StorageError> {
        if let Some(&(i, entry)) = overlay.ids.get(&id) {
            return Ok(Some((overlay.events[i].clone(), entry)));
        }
        if !stored.contains(&id) {
            return Ok(None);
        }
        self.shared.find_event_entry(id)
    }

    /// Decides whether `req` is a retry of an append already stored. `Ok(Some)` is the
    /// original result; `Ok(None)` means no id is stored yet.
    fn find_retry(
        &self,
        stream: &StreamName,
        events: &[PreparedEvent],
        known: &FxHashSet<Uuid>,
        overlay: &BatchOverlay,
    ) -> Result<Option<AppendResult>, AppendError> {
        let mut stored = Vec::new();
        for e in events.iter().map(|p| &p.data) {
            if let Some(s) = self.stored_event(e.event_id, known, overlay)? {
                stored.push((e, s));
            } else if let Some((_, (first, _))) = stored.first() {
                return Err(AppendError::PartialDuplicate {
                    event_id: first.event_id,
                });
            }
        }
        let stored: Vec<StoredRetry<'_>> = stored
            .iter()
            .map(|(asked, (s, entry))| StoredRetry {
                asked,
                stored: s,
                index: entry.index,
                count: entry.count,
            })
            .collect();
        judge_retry(stream, events.len(), &stored)
    }

    /// Validates one append and, if it is accepted, adds its records to `wb` and
    /// `overlay`. On any error nothing of it is added.
    #[allow(clippy::too_many_arguments)]
    fn prepare(
        &self,
        db: &DB,
        stream: StreamName,
        expected: ExpectedVersion,
        events: Vec<PreparedEvent>,
        known_ids: &FxHashSet<Uuid>,
        overlay: &mut BatchOverlay,
        wb: &mut WriteBatch,
        first_position: u64,
        now: u64,
    ) -> Result<AppendResult, AppendError> {
        if let Some(original) = self.find_retry(&stream, &events, known_ids, overlay)? {
            return Ok(original);
        }
        let head = self.head(&stream, overlay)?;
        let actual = head.map(|h| h.version);
        if !expected.is_satisfied_by(head.map(|h| h.as_head())) {
            return Err(AppendError::WrongExpectedVersion {
                stream,
                expected,
                actual,
            });
        }
        // Build every record first, so a failure leaves the batch untouched.
        // The id index stores the count (and each event's index in it) as a u32.
        let Ok(id_count) = u32::try_from(events.len()) else {
            return Err(AppendError::AppendTooLarge {
                size: events.iter().map(|p| p.data.size()).sum(),
                count: events.len(),
            });
        };
        let count = u64::from(id_count);
        let overflow = |what: &str| {
            AppendError::Storage(StorageError::corrupted(
                format!("{what} of {stream}"),
                "would pass u64::MAX",
            ))
        };
        let first_version = match actual {
            None => 0,
            Some(v) => v.checked_add(1).ok_or_else(|| overflow("version"))?,
        };
        let first_new_position = first_position
            .checked_add(overlay.events.len() as u64)
            .ok_or_else(|| overflow("position"))?;
        first_version
            .checked_add(count)
            .and(first_new_position.checked_add(count))
            .ok_or_else(|| overflow("version"))?;
        let mut prev_hash = head.map_or(chain::GENESIS, |h| h.hash);
        let mut records = Vec::with_capacity(events.len());
        let mut encoded = Vec::with_capacity(events.len());
        for (i, p) in (0u64..).zip(events) {
            let (version, position) = (first_version + i, first_new_position + i);
            let hash =
                chain::link_hash(&prev_hash, &stream, version, position, now, &p.content_hash);
            let header = EventHeaderRef {
                stream: &stream,
                version,
                position,
                timestamp_us: now,
                prev_hash: &prev_hash,
                hash: &hash,
            };
            encoded.push(
                codec::encode_event(&header, &p.body)
                    .map_err(|e| StorageError::codec(format!("events/{position}"), e))?,
            );
            let e = p.data;
            let rec = RecordedEvent {
                stream: stream.clone(),
                version,
                position,
                event_id: e.event_id,
                event_type: e.event_type,
                schema_version: e.schema_version,
                timestamp_us: now,
                metadata: e.metadata,
                payload: e.payload,
                prev_hash,
                hash,
            };
            records.push(rec);
            prev_hash = hash;
        }
        let (first, last) = (&records[0], &records[records.len() - 1]);
        let new_head = StreamHead {
            version: last.version,
            position: last.position,
            hash: last.hash,
            event_id: last.event_id,
        };
        let result = AppendResult {
            first_version: first.version,
            last_version: last.version,
            first_position: first.position,
            last_position: last.position,
            deduplicated: false,
        };

        let cf = |name| cf(db, name);
        let (events_cf, stream_cf, category_cf, ids_cf) = (
            cf(CF_EVENTS)?,
            cf(CF_STREAM_INDEX)?,
            cf(CF_CATEGORY_INDEX)?,
            cf(CF_EVENT_IDS)?,
        );
        let (name, category) = (stream.as_str(), stream.category());
        for ((index, rec), bytes) in (0u32..).zip(records).zip(encoded) {
            let entry = codec::IdEntry {
                position: rec.position,
                index,
                count: id_count,
            };
            wb.put_cf(events_cf, keys::position_key(rec.position), bytes);
            wb.put_cf(
                stream_cf,
                keys::prefixed_u64(name, rec.version),
                codec::encode_u64(rec.position),
            );
            wb.put_cf(
                category_cf,
                keys::prefixed_u64(category, rec.position),
                codec::encode_u64(rec.version),
            );
            wb.put_cf(
                ids_cf,
                rec.event_id.as_bytes(),
                codec::encode_id_entry(entry),
            );
            if overlay.repeated.contains(&rec.event_id) {
                overlay
                    .ids
                    .insert(rec.event_id, (overlay.events.len(), entry));
            }
            overlay.events.push(rec);
        }
        overlay.heads.insert(stream, new_head);
        Ok(result)
    }
}
