//! [`RocksLog`]: the RocksDB backend of [`EventStore`].
//!
//! Reads go straight to RocksDB from the caller's thread; every write goes through the one
//! writer thread of `group_commit`. Batches are atomic and written in position order, so a
//! reader of `$all` never sees position `n + 1` without `n`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use crossbeam_channel::{Sender, TrySendError};
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Options,
    ReadOptions, DB,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, oneshot};
use uuid::Uuid;

use crate::chain::ChainFormat;
use crate::codec;
use crate::envelope::{AppendResult, EventData, RecordedEvent};
use crate::error::{AppendError, OpenError, ReadError, SnapshotError, StorageError};
use crate::expected::ExpectedVersion;
use crate::group_commit::{self, AppendRequest, Replicated, WriterMsg};
use crate::keys::{self, *};
use crate::snapshot::Snapshot;
use crate::store::{AppendFuture, Direction, EventStore, LiveBatch};
use crate::stream_name::{is_valid_category, StreamName};
use crate::verify::{self, VerifyReport};

/// Limits and tuning of a [`RocksLog`].
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Largest single event (payload + type + metadata), in bytes.
    pub max_event_bytes: usize,
    /// Largest single append, in bytes.
    pub max_append_bytes: usize,
    /// Most events in a single append.
    pub max_append_events: usize,
    /// A group-commit batch stops taking appends once it holds this many bytes.
    pub max_batch_bytes: usize,
    /// Appends waiting for the writer before new ones are refused with
    /// [`AppendError::Overloaded`].
    pub queue_capacity: usize,
    /// Bytes of appends waiting for the writer before new ones are refused with
    /// [`AppendError::Overloaded`]: memory is bounded by bytes, not only by count.
    pub max_queued_bytes: usize,
    /// Committed batches buffered for live subscribers; a subscriber further behind falls
    /// back to reading from storage.
    pub live_buffer: usize,
    /// Stream heads the writer keeps in memory; others are read from the stream index.
    pub head_cache_entries: usize,
    /// RocksDB block cache shared by all column families.
    pub block_cache_bytes: usize,
    /// Largest snapshot state, in bytes.
    pub max_snapshot_bytes: usize,
    /// After a failed batch write (a full disk, say) the writer reopens the database to
    /// recover, but only once the data directory's file system has this many bytes free:
    /// reopening needs room for a new write-ahead log and manifest, and meanwhile the open
    /// database keeps serving reads.
    pub reopen_min_free_bytes: u64,
}

impl LogOptions {
    /// Checks that everything these options let through can also be read back.
    ///
    /// # Errors
    /// [`OpenError::InvalidOptions`] naming the offending limit.
    pub fn validate(&self) -> Result<(), OpenError> {
        // Envelope fields (names, ids, hashes, metadata) on top of the payload.
        const ENVELOPE_ALLOWANCE: usize = 64 * 1024;
        let limit = codec::DECODE_LIMIT;
        if self.max_event_bytes.saturating_add(ENVELOPE_ALLOWANCE) > limit {
            return Err(OpenError::InvalidOptions(format!(
                "max_event_bytes {} leaves no room under the decode limit {limit}",
                self.max_event_bytes
            )));
        }
        if self.max_snapshot_bytes.saturating_add(ENVELOPE_ALLOWANCE) > limit {
            return Err(OpenError::InvalidOptions(format!(
                "max_snapshot_bytes {} exceeds the decode limit {limit}",
                self.max_snapshot_bytes
            )));
        }
        if self.max_append_bytes > self.max_queued_bytes {
            return Err(OpenError::InvalidOptions(
                "max_append_bytes must not exceed max_queued_bytes".into(),
            ));
        }
        Ok(())
    }
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            max_event_bytes: 1024 * 1024,
            max_append_bytes: 16 * 1024 * 1024,
            max_append_events: 10_000,
            max_batch_bytes: 8 * 1024 * 1024,
            queue_capacity: 65_536,
            max_queued_bytes: 256 * 1024 * 1024,
            live_buffer: 512,
            head_cache_entries: 200_000,
            block_cache_bytes: 128 * 1024 * 1024,
            max_snapshot_bytes: 32 * 1024 * 1024,
            reopen_min_free_bytes: 8 * 1024 * 1024,
        }
    }
}

/// The last event of a stream, as the writer needs it: version, position and chain head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamHead {
    pub version: u64,
    pub position: u64,
    pub hash: [u8; 32],
    pub event_id: Uuid,
}

impl StreamHead {
    /// What an append's expectation is checked against.
    pub fn as_head(&self) -> crate::expected::Head {
        crate::expected::Head {
            version: self.version,
            event_id: self.event_id,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct LogMeta {
    format: u8,
    created_at_us: u64,
}

/// State shared by readers, subscriptions and the writer thread.
pub(crate) struct Shared {
    /// The open database; `None` only while the writer reopens it after a failed write
    /// (reads then fail with [`StorageError::Failed`] for that moment). Readers hold their
    /// own `Arc` for the length of one call, so the writer can wait them out and close it.
    db: RwLock<Option<Arc<DB>>>,
    pub options: LogOptions,
    /// Position the next committed event gets. Only the writer advances it, after the
    /// batch is durable and before publishing it live.
    pub next_position: AtomicU64,
    /// Live fan-out of committed batches; taken (dropped) when the writer stops, however
    /// it stops, so subscribers see the log close.
    pub live: Mutex<Option<broadcast::Sender<LiveBatch>>>,
    pub path: PathBuf,
    /// Bytes of appends submitted and not yet taken by the writer.
    pub queued_bytes: AtomicUsize,
    /// Serialises snapshot read-compare-write, so an older snapshot never replaces a newer.
    pub snapshot_lock: Mutex<()>,
    /// Why the writer refuses appends, while it does (a failed batch write it has not
    /// recovered from yet): what health checks report.
    pub write_failure: Mutex<Option<String>>,
    /// How this log's chains link (stored in `meta` when the log is created).
    pub chain: ChainFormat,
    /// A replica takes events whose places were assigned elsewhere
    /// ([`RocksLog::replicate_blocking`]) and refuses appends.
    pub replica: bool,
}

struct Writer {
    tx: Sender<WriterMsg>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct Inner {
    shared: Arc<Shared>,
    writer: Option<Writer>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(w) = &self.writer {
            shutdown_writer(w);
        }
    }
}

fn shutdown_writer(w: &Writer) {
    // The writer drains everything queued before the shutdown message, then exits. The
    // lock is held while joining, so a concurrent second call also returns only once the
    // writer is done.
    let _ = w.tx.send(WriterMsg::Shutdown);
    let mut handle = match w.thread.lock() {
        Ok(h) => h,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(h) = handle.take() {
        let _ = h.join();
    }
}

/// An event log in a RocksDB directory. Cheap to clone; all clones share one writer.
#[derive(Clone)]
pub struct RocksLog {
    inner: Arc<Inner>,
    /// The keys sealed parts of its events are under ([`RocksLog::with_keyring`]).
    keyring: Option<Arc<crate::keyring::Keyring>>,
}

impl std::fmt::Debug for RocksLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksLog")
            .field("path", &self.inner.shared.path)
            .field("next_position", &self.next_position())
            .finish()
    }
}

fn cf_options(name: &str, cache: &Cache) -> Options {
    let mut block = BlockBasedOptions::default();
    block.set_block_cache(cache);
    let mut o = Options::default();
    match name {
        CF_EVENTS => {
            o.set_compression_type(DBCompressionType::Lz4);
        }
        CF_EVENT_IDS => {
            // Every append looks its ids up, and nearly all are new: bloom filters on the
            // tables and on the memtable answer "absent" without a search.
            block.set_bloom_filter(10.0, false);
            o.set_memtable_prefix_bloom_ratio(0.05);
            o.set_memtable_whole_key_filtering(true);
            o.set_write_buffer_size(RANDOM_KEYS_MEMTABLE_BYTES);
            // Random keys only ever looked up whole: the memtable is a hash table on the
            // whole id (a bucket per id, in practice), so an insert is a hash, not a
            // search of a skip list (which was the writer's largest single cost). A
            // scan in key order must ask for it (`ReadOptions::set_total_order_seek`).
            o.set_prefix_extractor(rocksdb::SliceTransform::create_fixed_prefix(16));
            o.set_memtable_factory(rocksdb::MemtableFactory::HashLinkList {
                bucket_count: EVENT_ID_BUCKETS,
            });
        }
        CF_SNAPSHOTS | CF_META => {
            block.set_bloom_filter(10.0, false);
        }
        _ => {}
    }
    o.set_block_based_table_factory(&block);
    match name {
        // Positions only grow: each insert goes next to the last one.
        CF_EVENTS => with_insert_hints(&mut o, 1),
        // Within a category too (`category ‖ 0xFF ‖ position`; 8 bytes tell this log's
        // categories apart, and two that shared them would only share a hint).
        CF_CATEGORY_INDEX => with_insert_hints(&mut o, 8),
        // Within a stream too (`stream ‖ 0xFF ‖ version`): see [`STREAM_HINT_PREFIX`].
        CF_STREAM_INDEX => with_insert_hints(&mut o, STREAM_HINT_PREFIX),
        _ => o,
    }
}

/// The prefix by which `stream_index` inserts are hinted: 49 bytes, the length of the
/// busiest streams' names (`conversation-` and a 36-character id), so a conversation's
/// next version goes in next to its last one instead of being searched for among every
/// stream's. A shorter name's prefix takes its `0xFF` and the high bytes of the version,
/// which stay the same for a long while (`session-<id>`: below 2³² versions); a longer
/// name's is 49 bytes of it, still one stream's in practice. A prefix shared by two
/// streams, or one that changes, costs only a hint that is wrong: RocksDB checks it.
pub const STREAM_HINT_PREFIX: usize = "conversation-".len() + 36;

/// Hash buckets of the `event_ids` memtable: about its entries at
/// [`RANDOM_KEYS_MEMTABLE_BYTES`] (1 MiB of them, in the memtable's arena).
pub const EVENT_ID_BUCKETS: usize = 1 << 17;

/// The memtable size of the column families whose keys are random (event ids): an
/// insert searches the memtable's skip list, and a smaller one keeps that search in the
/// CPU's caches. RocksDB's default is 64 MiB.
pub const RANDOM_KEYS_MEMTABLE_BYTES: usize = 8 << 20;

/// `o` with memtable insert hints: a key is inserted starting from where the last key
/// with the same first `prefix_cap` bytes went, rather than from the top of the skip list
/// (for a column family whose keys grow under a prefix). Written keys and what reads see
/// are the same either way.
///
/// # Panics
/// Never: the option string is static and valid.
pub fn with_insert_hints(o: &mut Options, prefix_cap: usize) -> Options {
    o.get_options_from_string(format!(
        "memtable_insert_with_hint_prefix_extractor=rocksdb.CappedPrefix.{prefix_cap}"
    ))
    .expect("a valid option string")
}

/// How a log is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Primary,
    ReadOnly,
    Replica,
}

/// The chain format stored in `db`, written for a new log (`Unpositioned` for a
/// replica). A replica over a primary's directory, or the reverse, is refused.
fn chain_format(db: &DB, mode: Mode) -> Result<ChainFormat, OpenError> {
    let meta = cf(db, CF_META)?;
    let stored = db.get_cf(meta, META_CHAIN).map_err(StorageError::from)?;
    let stored = match stored {
        Some(bytes) => Some(
            codec::decode::<ChainFormat>(&bytes)
                .map_err(|e| StorageError::codec("meta/chain", e))?,
        ),
        None => None,
    };
    let wanted = match mode {
        Mode::Replica => ChainFormat::Unpositioned,
        Mode::Primary | Mode::ReadOnly => ChainFormat::Positioned,
    };
    match (stored, mode) {
        (Some(found), Mode::ReadOnly) => Ok(found),
        (Some(found), _) if found == wanted => Ok(found),
        (Some(_), _) => Err(OpenError::InvalidOptions(format!(
            "this directory holds a log with {stored:?} chains; it cannot be opened as a {mode:?} log"
        ))),
        (None, Mode::ReadOnly) => Ok(ChainFormat::Positioned),
        (None, _) => {
            let events_stored = {
                let mut it = db.raw_iterator_cf(cf(db, CF_EVENTS)?);
                it.seek_to_first();
                it.valid()
            };
            if events_stored && mode == Mode::Replica {
                return Err(OpenError::InvalidOptions(
                    "this directory holds a primary log; a replica needs its own".into(),
                ));
            }
            if mode == Mode::Replica {
                let bytes = codec::encode(&wanted).map_err(|e| StorageError::codec("meta/chain", e))?;
                db.put_cf(meta, META_CHAIN, bytes).map_err(StorageError::from)?;
            }
            Ok(wanted)
        }
    }
}

pub(crate) fn open_db(
    path: &Path,
    options: &LogOptions,
    read_only: bool,
) -> Result<DB, StorageError> {
    let cache = Cache::new_lru_cache(options.block_cache_bytes);
    let mut db_opts = Options::default();
    db_opts.create_if_missing(!read_only);
    db_opts.create_missing_column_families(!read_only);
    db_opts.set_max_background_jobs(2);
    db_opts.set_bytes_per_sync(1024 * 1024);
    // A hash memtable (`event_ids`) takes one writer's inserts at a time; the log has one
    // writer thread anyway (snapshots and checkpoints written elsewhere queue behind it).
    db_opts.set_allow_concurrent_memtable_write(false);
    let cfs = ALL_CFS
        .iter()
        .map(|name| ColumnFamilyDescriptor::new(*name, cf_options(name, &cache)));
    let db = if read_only {
        DB::open_cf_descriptors_read_only(&db_opts, path, cfs, false)?
    } else {
        DB::open_cf_descriptors(&db_opts, path, cfs)?
    };
    Ok(db)
}

/// A column family's handle in `db`.
///
/// # Errors
/// [`StorageError::Corrupted`] when the database lacks it.
pub(crate) fn cf<'a>(db: &'a DB, name: &str) -> Result<&'a ColumnFamily, StorageError> {
    db.cf_handle(name)
        .ok_or_else(|| StorageError::corrupted(name, "column family missing"))
}

/// Read options for an iterator that will read about `limit` entries: long scans (catch-up,
/// replay, rebuilds) read ahead and do not evict the hot working set from the block cache.
fn scan_options(limit: usize) -> ReadOptions {
    let mut ro = ReadOptions::default();
    if limit > 256 {
        ro.set_readahead_size(2 * 1024 * 1024);
        ro.fill_cache(false);
    }
    ro
}

/// Bytes available to this process on the file system holding `path`; `None` when it
/// cannot be told.
fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a valid NUL-terminated string and `stat` points to writable
    // memory of the right type; statvfs fills it completely when it returns 0.
    #[allow(unsafe_code, reason = "statvfs has no safe wrapper in std")]
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so `stat` is initialised.
    #[allow(unsafe_code, reason = "reading what statvfs wrote")]
    let stat = unsafe { stat.assume_init() };
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

pub(crate) fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl RocksLog {
    /// The same log, sealing with (and reporting, [`EventStore::keyring`]) `keyring`.
    #[must_use]
    pub fn with_keyring(mut self, keyring: Arc<crate::keyring::Keyring>) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// Opens (or creates) the log in `path` and starts its writer thread.
    ///
    /// Recovery is cheap: the last position is the last key of `events`; a stream's head is
    /// read lazily from its last `stream_index` entry, which every batch writes atomically
    /// with the events.
    ///
    /// # Errors
    /// [`OpenError`] when RocksDB cannot open the directory, it holds another format, or the
    /// writer thread cannot be started.
    pub fn open(path: impl AsRef<Path>, options: LogOptions) -> Result<Self, OpenError> {
        Self::open_inner(path.as_ref(), options, Mode::Primary)
    }

    /// Opens (or creates) a *replica*: a local copy of a log whose events are ordered,
    /// versioned and hashed elsewhere (a JetStream stream; chains
    /// [`ChainFormat::Unpositioned`]). It refuses appends; its follower hands it the
    /// events in position order with [`RocksLog::replicate_blocking`], which checks that
    /// they continue `$all` and each stream's chain before storing them. Reads,
    /// subscriptions and verification work as on any log. Its writes are not fsynced: a
    /// replica lost in a crash catches up again from the source.
    ///
    /// # Errors
    /// As [`RocksLog::open`]; [`OpenError::IncompatibleFormat`] for a directory that holds
    /// a log of the other chain format.
    pub fn open_replica(path: impl AsRef<Path>, options: LogOptions) -> Result<Self, OpenError> {
        Self::open_inner(path.as_ref(), options, Mode::Replica)
    }

    /// Opens the log read-only (no writer; appends fail with [`StorageError::ReadOnly`]).
    /// Safe while another process has the log open for writing; it sees the log as it was
    /// when opened.
    ///
    /// # Errors
    /// As [`RocksLog::open`].
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        Self::open_inner(path.as_ref(), LogOptions::default(), Mode::ReadOnly)
    }

    fn open_inner(path: &Path, options: LogOptions, mode: Mode) -> Result<Self, OpenError> {
        options.validate()?;
        let read_only = mode == Mode::ReadOnly;
        let db = open_db(path, &options, read_only)?;
        let chain = chain_format(&db, mode)?;
        let (live_tx, _) = broadcast::channel(options.live_buffer.max(1));
        let shared = Arc::new(Shared {
            db: RwLock::new(Some(Arc::new(db))),
            options,
            next_position: AtomicU64::new(0),
            live: Mutex::new(if read_only { None } else { Some(live_tx) }),
            path: path.to_path_buf(),
            queued_bytes: AtomicUsize::new(0),
            snapshot_lock: Mutex::new(()),
            write_failure: Mutex::new(None),
            chain,
            replica: mode == Mode::Replica,
        });
        shared.check_format(read_only)?;
        let last = shared.last_event()?;
        let next_position = match &last {
            None => 0,
            Some(e) => e
                .position
                .checked_add(1)
                .ok_or_else(|| StorageError::corrupted("events", "last position is u64::MAX"))?,
        };
        shared.next_position.store(next_position, Ordering::Release);
        let writer = if read_only {
            None
        } else {
            let (tx, rx) = crossbeam_channel::bounded(shared.options.queue_capacity.max(1));
            let last_timestamp = last.map_or(0, |e| e.timestamp_us);
            let thread = std::thread::Builder::new()
                .name("eventlog-writer".into())
                .spawn({
                    let shared = shared.clone();
                    move || group_commit::run(shared, rx, last_timestamp)
                })
                .map_err(|e| OpenError::Thread(e.to_string()))?;
            Some(Writer {
                tx,
                thread: Mutex::new(Some(thread)),
            })
        };
        tracing::info!(path = %path.display(), next_position, ?mode, "event log opened");
        Ok(Self {
            inner: Arc::new(Inner { shared, writer }),
            keyring: None,
        })
    }

    /// This log as the trait object the rest of the system uses.
    pub fn into_store(self) -> Arc<dyn EventStore> {
        Arc::new(self)
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.inner.shared.path
    }

    /// Stops accepting appends, waits until every append queued before this call is
    /// durable and acknowledged, then closes live subscriptions. Idempotent.
    pub fn shutdown(&self) {
        if let Some(w) = &self.inner.writer {
            shutdown_writer(w);
        }
    }

    /// Writes a consistent copy of the log into `dir` (which must not exist yet) while it
    /// runs: a RocksDB checkpoint, hard links on the same file system and copies on
    /// another, holding every event acknowledged before the call. Answers the copy's
    /// `$all` length (its next position).
    ///
    /// # Errors
    /// Storage failure, or `dir` exists.
    pub fn checkpoint_to(&self, dir: &Path) -> Result<u64, StorageError> {
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| StorageError::Engine(format!("{}: {e}", parent.display())))?;
        }
        {
            let db = self.inner.shared.db()?;
            let checkpoint = rocksdb::checkpoint::Checkpoint::new(&db)?;
            checkpoint.create_checkpoint(dir)?;
        }
        let copy = Self::open_read_only(dir)
            .map_err(|e| StorageError::Engine(format!("reopening the copy: {e}")))?;
        Ok(copy.next_position())
    }

    /// Per column family: (name, estimated keys, live SST bytes), for `replay stats`.
    ///
    /// # Errors
    /// Storage failure.
    pub fn column_family_stats(&self) -> Result<Vec<(String, u64, u64)>, StorageError> {
        let db = self.inner.shared.db()?;
        ALL_CFS
            .iter()
            .map(|name| {
                let cf = cf(&db, name)?;
                let keys = db
                    .property_int_value_cf(cf, "rocksdb.estimate-num-keys")?
                    .unwrap_or(0);
                let bytes = db
                    .property_int_value_cf(cf, "rocksdb.live-sst-files-size")?
                    .unwrap_or(0);
                Ok((name.to_string(), keys, bytes))
            })
            .collect()
    }

    /// Stores `events` — the next ones of the source log, in position order, with the
    /// positions, versions and hashes the source gave them — and publishes them live.
    /// Events at positions already stored are skipped (a follower may hand an event over
    /// twice); a gap, or an event that does not continue its stream's version and chain,
    /// is refused with nothing stored.
    ///
    /// # Errors
    /// [`StorageError::ReadOnly`] on a log that is not a replica,
    /// [`StorageError::Corrupted`] for events that do not continue the log, storage
    /// failures.
    pub fn replicate_blocking(&self, events: Vec<Replicated>) -> Result<(), StorageError> {
        let writer = self
            .inner
            .writer
            .as_ref()
            .filter(|_| self.inner.shared.replica)
            .ok_or(StorageError::ReadOnly)?;
        let (ack, rx) = oneshot::channel();
        writer
            .tx
            .send(WriterMsg::Replicate { events, ack })
            .map_err(|_| StorageError::Closed)?;
        rx.blocking_recv().map_err(|_| StorageError::Closed)?
    }

    /// The log's chain format.
    pub fn chain_format(&self) -> ChainFormat {
        self.inner.shared.chain
    }

    /// The stored event with this id, and its place in the append that wrote it
    /// (`(index, count)`).
    ///
    /// # Errors
    /// Storage failure or a corrupted record.
    pub fn find_event_in_append_blocking(
        &self,
        id: Uuid,
    ) -> Result<Option<(RecordedEvent, u32, u32)>, StorageError> {
        Ok(self
            .inner
            .shared
            .find_event_entry(id)?
            .map(|(e, entry)| (e, entry.index, entry.count)))
    }

    fn submit(&self, req: AppendRequest, blocking: bool) -> Result<(), AppendError> {
        let writer = self
            .inner
            .writer
            .as_ref()
            .filter(|_| !self.inner.shared.replica)
            .ok_or(AppendError::Storage(StorageError::ReadOnly))?;
        let shared = &self.inner.shared;
        let bytes = req.size();
        if shared.queued_bytes.fetch_add(bytes, Ordering::AcqRel) + bytes
            > shared.options.max_queued_bytes
        {
            shared.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
            return Err(AppendError::Overloaded);
        }
        let msg = WriterMsg::Append(req);
        let sent = if blocking {
            writer
                .tx
                .send(msg)
                .map_err(|_| AppendError::Storage(StorageError::Closed))
        } else {
            writer.tx.try_send(msg).map_err(|e| match e {
                TrySendError::Full(_) => AppendError::Overloaded,
                TrySendError::Disconnected(_) => AppendError::Storage(StorageError::Closed),
            })
        };
        if sent.is_err() {
            shared.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
        }
        sent
    }

    /// Validates, hashes and encodes on the caller's thread, leaving the writer only the
    /// work that needs the stream's head.
    fn request(
        &self,
        stream: StreamName,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<
        (
            AppendRequest,
            oneshot::Receiver<Result<AppendResult, AppendError>>,
        ),
        AppendError,
    > {
        let events = group_commit::prepare_events(events, &self.inner.shared.options)?;
        let (ack, rx) = oneshot::channel();
        Ok((
            AppendRequest {
                stream,
                expected,
                events,
                ack,
            },
            rx,
        ))
    }
}

fn closed<T>(_: T) -> AppendError {
    AppendError::Storage(StorageError::Closed)
}

impl EventStore for RocksLog {
    fn keyring(&self) -> Option<Arc<crate::keyring::Keyring>> {
        self.keyring.clone()
    }

    fn append(
        &self,
        stream: StreamName,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> AppendFuture {
        let submitted = self
            .request(stream, expected, events)
            .and_then(|(req, rx)| self.submit(req, false).map(|()| rx));
        Box::pin(async move { submitted?.await.map_err(closed)? })
    }

    fn append_blocking(
        &self,
        stream: StreamName,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, AppendError> {
        let (req, rx) = self.request(stream, expected, events)?;
        self.submit(req, true)?;
        rx.blocking_recv().map_err(closed)?
    }

    fn read_stream_blocking(
        &self,
        stream: &StreamName,
        from: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, ReadError> {
        Ok(self
            .inner
            .shared
            .read_stream(stream, from, direction, limit)?)
    }

    fn read_all_blocking(&self, from: u64, limit: usize) -> Result<Vec<RecordedEvent>, ReadError> {
        Ok(self.inner.shared.read_all(from, limit)?)
    }

    fn read_category_blocking(
        &self,
        category: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, ReadError> {
        if !is_valid_category(category) {
            return Err(ReadError::InvalidCategory(category.to_owned()));
        }
        Ok(self.inner.shared.read_category(category, from, limit)?)
    }

    fn stream_version_blocking(&self, stream: &StreamName) -> Result<Option<u64>, ReadError> {
        Ok(self.inner.shared.last_indexed(stream)?.map(|(v, _)| v))
    }

    fn find_event_blocking(&self, event_id: Uuid) -> Result<Option<RecordedEvent>, ReadError> {
        Ok(self.inner.shared.find_event(event_id)?)
    }

    fn next_position(&self) -> u64 {
        self.inner.shared.next_position.load(Ordering::Acquire)
    }

    fn live(&self) -> Option<broadcast::Receiver<LiveBatch>> {
        let guard = self.inner.shared.live.lock().ok()?;
        guard.as_ref().map(|tx| tx.subscribe())
    }

    fn write_unavailable(&self) -> Option<String> {
        match self.inner.shared.write_failure.lock() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn write_snapshot_blocking(
        &self,
        stream: &StreamName,
        snapshot: Snapshot,
    ) -> Result<(), SnapshotError> {
        if self.inner.writer.is_none() {
            return Err(StorageError::ReadOnly.into());
        }
        self.inner.shared.write_snapshot(stream, snapshot)
    }

    fn read_snapshot_blocking(
        &self,
        stream: &StreamName,
    ) -> Result<Option<Snapshot>, SnapshotError> {
        Ok(self.inner.shared.read_snapshot(stream)?)
    }

    fn read_checkpoint_blocking(&self, consumer: &str) -> Result<Option<u64>, ReadError> {
        let db = self.inner.shared.db()?;
        let key = keys::checkpoint_key(consumer);
        let got = db
            .get_pinned_cf(cf(&db, CF_META)?, &key)
            .map_err(StorageError::from)?;
        let checkpoint = match got {
            None => None,
            Some(v) => Some(
                codec::decode_u64(&v)
                    .map_err(|e| StorageError::codec(format!("meta/checkpoint/{consumer}"), e))?,
            ),
        };
        Ok(checkpoint)
    }

    fn write_checkpoint_blocking(&self, consumer: &str, position: u64) -> Result<(), ReadError> {
        if self.inner.writer.is_none() {
            return Err(StorageError::ReadOnly.into());
        }
        let db = self.inner.shared.db()?;
        db.put_cf(
            cf(&db, CF_META)?,
            keys::checkpoint_key(consumer),
            codec::encode_u64(position),
        )
        .map_err(StorageError::from)?;
        Ok(())
    }

    fn verify_stream_blocking(&self, stream: &StreamName) -> Result<VerifyReport, ReadError> {
        Ok(verify::verify_stream(&self.inner.shared, stream)?)
    }

    fn verify_all_blocking(&self) -> Result<VerifyReport, ReadError> {
        Ok(verify::verify_all(&self.inner.shared)?)
    }
}

impl Shared {
    /// The open database, for the length of one operation.
    ///
    /// # Errors
    /// [`StorageError::Failed`] while the writer reopens it.
    pub fn db(&self) -> Result<Arc<DB>, StorageError> {
        let guard = match self.db.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        guard
            .clone()
            .ok_or_else(|| StorageError::Failed("the log is being reopened".into()))
    }

    /// Takes the database out (readers now wait for [`Shared::put_db`]), for closing.
    pub(crate) fn take_db(&self) -> Option<Arc<DB>> {
        match self.db.write() {
            Ok(mut g) => g.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
    }

    /// Closes the database and opens it again from what is on disk: after a failed batch
    /// write, the only way to know what the write-ahead log really holds. Waits (bounded)
    /// for readers to let go of the old handle; reads fail while it is closed.
    ///
    /// # Errors
    /// The open's error (the database then stays closed until the next attempt), or
    /// [`StorageError::Failed`] when readers held on to the old handle too long (it is
    /// kept open).
    pub(crate) fn reopen(&self) -> Result<(), StorageError> {
        if let Some(mut old) = self.take_db() {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                match Arc::try_unwrap(old) {
                    Ok(db) => {
                        drop(db);
                        break;
                    }
                    Err(still_shared) if std::time::Instant::now() < deadline => {
                        old = still_shared;
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                    Err(still_shared) => {
                        self.put_db(still_shared);
                        return Err(StorageError::Failed(
                            "readers kept the database busy; not reopened".into(),
                        ));
                    }
                }
            }
        }
        let db = open_db(&self.path, &self.options, false)?;
        self.put_db(Arc::new(db));
        Ok(())
    }

    /// Whether the data directory's file system has room enough to reopen the database.
    pub(crate) fn has_room_to_reopen(&self) -> bool {
        free_bytes(&self.path).is_none_or(|free| free >= self.options.reopen_min_free_bytes)
    }

    pub(crate) fn set_write_failure(&self, failure: Option<String>) {
        match self.write_failure.lock() {
            Ok(mut g) => *g = failure,
            Err(poisoned) => *poisoned.into_inner() = failure,
        }
    }

    pub(crate) fn put_db(&self, db: Arc<DB>) {
        match self.db.write() {
            Ok(mut g) => *g = Some(db),
            Err(poisoned) => *poisoned.into_inner() = Some(db),
        }
    }

    fn check_format(&self, read_only: bool) -> Result<(), OpenError> {
        let db = self.db()?;
        let meta = cf(&db, CF_META)?;
        match db.get_cf(meta, META_FORMAT).map_err(StorageError::from)? {
            Some(bytes) => {
                let m: LogMeta =
                    codec::decode(&bytes).map_err(|e| StorageError::codec("meta/format", e))?;
                if m.format != codec::FORMAT_VERSION {
                    return Err(OpenError::IncompatibleFormat {
                        found: m.format,
                        supported: codec::FORMAT_VERSION,
                    });
                }
            }
            None if !read_only => {
                let m = LogMeta {
                    format: codec::FORMAT_VERSION,
                    created_at_us: now_us(),
                };
                let bytes = codec::encode(&m).map_err(|e| StorageError::codec("meta/format", e))?;
                let mut wo = rocksdb::WriteOptions::default();
                wo.set_sync(true);
                db.put_cf_opt(meta, META_FORMAT, bytes, &wo)
                    .map_err(StorageError::from)?;
            }
            None => {}
        }
        Ok(())
    }

    pub fn decode_event(key: &[u8], value: &[u8]) -> Result<RecordedEvent, StorageError> {
        let position = keys::decode_position_key(key)
            .ok_or_else(|| StorageError::corrupted("events", "malformed key"))?;
        let event: RecordedEvent = codec::decode(value)
            .map_err(|e| StorageError::codec(format!("events/{position}"), e))?;
        if event.position != position {
            return Err(StorageError::corrupted(
                format!("events/{position}"),
                format!("record claims position {}", event.position),
            ));
        }
        Ok(event)
    }

    pub(crate) fn last_event(&self) -> Result<Option<RecordedEvent>, StorageError> {
        let db = self.db()?;
        let mut it = db.raw_iterator_cf(cf(&db, CF_EVENTS)?);
        it.seek_to_last();
        match (it.key(), it.value()) {
            (Some(k), Some(v)) => Ok(Some(Self::decode_event(k, v)?)),
            _ => {
                it.status()?;
                Ok(None)
            }
        }
    }

    /// The stream's last (version, position), from its last index entry.
    pub fn last_indexed(&self, stream: &StreamName) -> Result<Option<(u64, u64)>, StorageError> {
        let name = stream.as_str();
        let positions = self.index_scan(
            CF_STREAM_INDEX,
            name,
            u64::MAX,
            Direction::Backward,
            1,
            |v, bytes| {
                codec::decode_u64(bytes)
                    .map(|p| (v, p))
                    .map_err(|e| StorageError::codec(format!("stream_index/{stream}/{v}"), e))
            },
        )?;
        Ok(positions.first().copied())
    }

    /// The stream's head: its last version and position, and that event's chain hash.
    pub fn head(&self, stream: &StreamName) -> Result<Option<StreamHead>, StorageError> {
        let Some((version, position)) = self.last_indexed(stream)? else {
            return Ok(None);
        };
        let event = self.event_at(position)?.ok_or_else(|| {
            StorageError::corrupted(
                format!("stream_index/{stream}/{version}"),
                "points at a missing event",
            )
        })?;
        if &event.stream != stream || event.version != version {
            return Err(StorageError::corrupted(
                format!("stream_index/{stream}/{version}"),
                format!("points at {}@{}", event.stream, event.version),
            ));
        }
        Ok(Some(StreamHead {
            version,
            position,
            hash: event.hash,
            event_id: event.event_id,
        }))
    }

    /// Which of `ids` are stored, in one batched lookup.
    pub fn stored_ids(&self, ids: &mut [Uuid]) -> Result<Vec<Uuid>, StorageError> {
        let db = self.db()?;
        ids.sort_unstable();
        let cf = cf(&db, CF_EVENT_IDS)?;
        let keys: Vec<&[u8]> = ids.iter().map(|id| &id.as_bytes()[..]).collect();
        let mut found = Vec::new();
        for (id, got) in ids.iter().zip(db.batched_multi_get_cf(cf, keys, true)) {
            if got?.is_some() {
                found.push(*id);
            }
        }
        Ok(found)
    }

    pub fn event_at(&self, position: u64) -> Result<Option<RecordedEvent>, StorageError> {
        let db = self.db()?;
        let key = keys::position_key(position);
        let got = db.get_pinned_cf(cf(&db, CF_EVENTS)?, key)?;
        let event = match got {
            None => None,
            Some(v) => Some(Self::decode_event(&key, &v)?),
        };
        Ok(event)
    }

    pub fn find_event(&self, id: Uuid) -> Result<Option<RecordedEvent>, StorageError> {
        Ok(self.find_event_entry(id)?.map(|(e, _)| e))
    }

    /// The stored event with this id and its place in the append that wrote it.
    pub fn find_event_entry(
        &self,
        id: Uuid,
    ) -> Result<Option<(RecordedEvent, codec::IdEntry)>, StorageError> {
        let db = self.db()?;
        let Some(bytes) = db.get_pinned_cf(cf(&db, CF_EVENT_IDS)?, id.as_bytes())? else {
            return Ok(None);
        };
        let entry = codec::decode_id_entry(&bytes)
            .map_err(|e| StorageError::codec(format!("event_ids/{id}"), e))?;
        let event = self.event_at(entry.position)?.ok_or_else(|| {
            StorageError::corrupted(format!("event_ids/{id}"), "points at a missing event")
        })?;
        if event.event_id != id {
            return Err(StorageError::corrupted(
                format!("event_ids/{id}"),
                "points at another event",
            ));
        }
        Ok(Some((event, entry)))
    }

    /// Fetches the events at `positions` (all ascending or all descending) with one
    /// iterator: consecutive positions cost a `next`/`prev`, others a seek.
    fn events_at(
        &self,
        positions: &[u64],
        direction: Direction,
    ) -> Result<Vec<RecordedEvent>, StorageError> {
        let db = self.db()?;
        let mut out = Vec::with_capacity(positions.len());
        let mut it = db.raw_iterator_cf_opt(cf(&db, CF_EVENTS)?, scan_options(positions.len()));
        let mut positioned = false;
        for &p in positions {
            let key = keys::position_key(p);
            if !(positioned && it.key() == Some(&key[..])) {
                it.seek(key);
                positioned = true;
            }
            match (it.key(), it.value()) {
                (Some(k), Some(v)) if k == key => out.push(Self::decode_event(k, v)?),
                _ => {
                    it.status()?;
                    return Err(StorageError::corrupted(
                        format!("events/{p}"),
                        "indexed event is missing",
                    ));
                }
            }
            match direction {
                Direction::Forward => it.next(),
                Direction::Backward => it.prev(),
            }
        }
        Ok(out)
    }

    pub fn read_all(&self, from: u64, limit: usize) -> Result<Vec<RecordedEvent>, StorageError> {
        let db = self.db()?;
        let mut out = Vec::with_capacity(limit.min(4096));
        if limit == 0 {
            return Ok(out);
        }
        let mut it = db.raw_iterator_cf_opt(cf(&db, CF_EVENTS)?, scan_options(limit));
        it.seek(keys::position_key(from));
        let mut expect = Some(from);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let e = Self::decode_event(k, v)?;
            if Some(e.position) != expect {
                return Err(StorageError::corrupted(
                    format!("events/{expect:?}"),
                    format!("gap in $all: next stored position is {}", e.position),
                ));
            }
            expect = e.position.checked_add(1);
            out.push(e);
            if out.len() >= limit {
                return Ok(out);
            }
            it.next();
        }
        it.status()?;
        Ok(out)
    }

    /// Positions from an index keyed `name ‖ 0xFF ‖ n`, from `n = from`.
    fn index_scan<T>(
        &self,
        index: &str,
        name: &str,
        from: u64,
        direction: Direction,
        limit: usize,
        // (key suffix, index value) → output
        position_of: impl Fn(u64, &[u8]) -> Result<T, StorageError>,
    ) -> Result<Vec<T>, StorageError> {
        let db = self.db()?;
        let prefix = keys::prefix(name);
        let mut ro = scan_options(limit);
        ro.set_iterate_lower_bound(prefix.clone());
        ro.set_iterate_upper_bound(keys::upper_bound(&prefix));
        let mut it = db.raw_iterator_cf_opt(self::cf(&db, index)?, ro);
        let start = keys::prefixed_u64(name, from);
        match direction {
            Direction::Forward => it.seek(&start),
            Direction::Backward => it.seek_for_prev(&start),
        }
        let mut out = Vec::new();
        while out.len() < limit {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            let n = keys::suffix_u64(&prefix, k)
                .ok_or_else(|| StorageError::corrupted(index, "malformed index key"))?;
            out.push(position_of(n, v)?);
            match direction {
                Direction::Forward => it.next(),
                Direction::Backward => it.prev(),
            }
        }
        it.status()?;
        Ok(out)
    }

    pub fn read_stream(
        &self,
        stream: &StreamName,
        from: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StorageError> {
        let positions = self.index_scan(
            CF_STREAM_INDEX,
            stream.as_str(),
            from,
            direction,
            limit,
            |v, bytes| {
                codec::decode_u64(bytes)
                    .map_err(|e| StorageError::codec(format!("stream_index/{stream}/{v}"), e))
            },
        )?;
        let events = self.events_at(&positions, direction)?;
        // The index says which events these are; the events must agree, and versions are
        // contiguous from 0, so a forward read starts exactly at `from`.
        let Some(first) = events.first() else {
            return Ok(events);
        };
        if direction == Direction::Forward && first.version != from {
            return Err(StorageError::corrupted(
                format!("stream_index/{stream}/{from}"),
                format!("missing; the index continues at version {}", first.version),
            ));
        }
        let mut expect = Some(first.version);
        for e in &events {
            if &e.stream != stream || Some(e.version) != expect {
                return Err(StorageError::corrupted(
                    format!("stream_index/{stream}/{expect:?}"),
                    format!("points at {}@{}", e.stream, e.version),
                ));
            }
            expect = match direction {
                Direction::Forward => e.version.checked_add(1),
                Direction::Backward => e.version.checked_sub(1),
            };
        }
        Ok(events)
    }

    pub fn read_category(
        &self,
        category: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StorageError> {
        let positions = self.index_scan(
            CF_CATEGORY_INDEX,
            category,
            from,
            Direction::Forward,
            limit,
            |p, _| Ok(p),
        )?;
        let events = self.events_at(&positions, Direction::Forward)?;
        if let Some(e) = events.iter().find(|e| e.stream.category() != category) {
            return Err(StorageError::corrupted(
                format!("category_index/{category}/{}", e.position),
                format!("points at stream {}", e.stream),
            ));
        }
        Ok(events)
    }

    pub fn read_snapshot(&self, stream: &StreamName) -> Result<Option<Snapshot>, StorageError> {
        let db = self.db()?;
        let got = db.get_pinned_cf(cf(&db, CF_SNAPSHOTS)?, stream.as_str())?;
        let snapshot = match got {
            None => None,
            Some(bytes) => Some(
                codec::decode(&bytes)
                    .map_err(|e| StorageError::codec(format!("snapshots/{stream}"), e))?,
            ),
        };
        Ok(snapshot)
    }

    pub fn write_snapshot(
        &self,
        stream: &StreamName,
        snapshot: Snapshot,
    ) -> Result<(), SnapshotError> {
        if snapshot.state.len() > self.options.max_snapshot_bytes {
            return Err(SnapshotError::TooLarge {
                size: snapshot.state.len(),
                limit: self.options.max_snapshot_bytes,
            });
        }
        let _serialised = match self.snapshot_lock.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let actual = self.last_indexed(stream)?.map(|(v, _)| v);
        if actual.is_none_or(|v| snapshot.version > v) {
            return Err(SnapshotError::BeyondStream {
                stream: stream.clone(),
                version: snapshot.version,
                actual,
            });
        }
        if let Some(existing) = self.read_snapshot(stream)? {
            if existing.version > snapshot.version {
                return Ok(());
            }
        }
        let bytes = codec::encode(&snapshot)
            .map_err(|e| StorageError::codec(format!("snapshots/{stream}"), e))?;
        let db = self.db()?;
        // Not synced: a snapshot lost in a crash is rebuilt by replay.
        db.put_cf(cf(&db, CF_SNAPSHOTS)?, stream.as_str(), bytes)
            .map_err(StorageError::from)?;
        Ok(())
    }
}
