//! [`NatsLog`]: the [`EventStore`] over a JetStream stream, read through a local replica.
//!
//! Writes go to the cluster: one subject per Switchboard stream, each append one message
//! or one atomic batch, conditioned on the subject's last sequence (the fence between
//! writers on different nodes) — see [`crate::publish`]. Appends to one stream are sent
//! one at a time, in the order they were submitted (a later one may build on an earlier
//! one still in flight); appends to different streams go in parallel.
//!
//! Reads come from this node's replica (`RocksLog::open_replica`), which a follower keeps
//! up with the stream (an ordered consumer from the replica's next position), so reads,
//! subscriptions and verification are the RocksDB log's own. A read of a stream first
//! waits until the replica holds everything this node knows that stream to hold (its own
//! appends, and heads it read from the cluster), so a node always reads its own writes; a
//! stream it knows nothing about yet has its head asked from the cluster first, so the
//! first read sees every write acknowledged before it, whichever node took it.
//!
//! Idempotency with no time window: an append whose expectation no longer holds (or one
//! with no expectation) first looks for its events in the stream — in the replica, once it
//! has caught up with the stream's head as the cluster reports it — and, if they are
//! there, answers the original positions, as the RocksDB log does. The server's duplicate
//! window (`Nats-Msg-Id`) covers the quick retries on top.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use eventlog::chain;
use eventlog::judge_retry;
use eventlog::{
    AppendError, AppendFuture, AppendResult, Direction, EventData, EventStore, ExpectedVersion,
    Head, LiveBatch, LogOptions, ReadError, RecordedEvent, RocksLog, Snapshot, SnapshotError,
    StorageError, StoredRetry, StreamName, VerifyReport,
};
use tokio::sync::{broadcast, mpsc, oneshot};
use uuid::Uuid;

use crate::options::{parse_version, NatsOptions, MIN_SERVER};
use crate::publish::{publish, Failed, Published};
use crate::record::WireRecord;
use crate::subject;

/// Why a node could not join its cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    #[error("cannot reach NATS at {servers}: {reason}")]
    Unreachable { servers: String, reason: String },
    #[error(
        "nats-server {found} is too old: Switchboard needs {}.{}.{} or later (atomic batches \
         with message ids); see README \"Running a cluster\"",
        MIN_SERVER.0, MIN_SERVER.1, MIN_SERVER.2
    )]
    ServerTooOld { found: String },
    #[error(
        "nats-server does not fsync every write: set `sync_interval: always` in its \
         `jetstream` block (read from {monitor})"
    )]
    NotSynced { monitor: String },
    #[error(
        "cannot read nats-server's sync setting from any monitoring endpoint ({monitors}): \
         enable its `http` port or name it with --nats-monitor"
    )]
    SyncUnknown { monitors: String },
    #[error("JetStream: {0}")]
    JetStream(String),
    #[error("the local replica: {0}")]
    Replica(#[from] eventlog::OpenError),
    #[error("cannot start the client's runtime: {0}")]
    Runtime(String),
}

/// The last event of a stream as this node knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KnownHead {
    /// Its stream sequence (its position + 1).
    seq: u64,
    version: u64,
    hash: [u8; 32],
    event_id: Uuid,
}

impl KnownHead {
    fn as_head(&self) -> Head {
        Head {
            version: self.version,
            event_id: self.event_id,
        }
    }
}

/// One message of an append: its event id and its body.
type Message = (Uuid, Vec<u8>);

struct Job {
    stream: StreamName,
    expected: ExpectedVersion,
    events: Vec<EventData>,
    ack: oneshot::Sender<Result<AppendResult, AppendError>>,
}

/// Heads kept in memory; others are read from the cluster again.
const HEAD_CACHE: usize = 100_000;
/// How long the first read of a stream waits for the cluster to name its head.
const HEAD_LOOKUP: Duration = Duration::from_secs(2);
/// Appends waiting to be sent before new ones are refused with `Overloaded`.
const QUEUE: usize = 65_536;

pub(crate) struct Inner {
    pub(crate) options: NatsOptions,
    log_options: LogOptions,
    pub(crate) client: async_nats::Client,
    pub(crate) js: jetstream::Context,
    pub(crate) replica: RocksLog,
    heads: Mutex<HashMap<StreamName, KnownHead>>,
    /// The highest stream sequence this node knows exists (its own appends, heads read).
    known_seq: AtomicU64,
    jobs: mpsc::Sender<Job>,
    /// Appends submitted and not yet answered; shutdown waits for them.
    outstanding: std::sync::atomic::AtomicUsize,
    /// Set by shutdown: new appends are refused.
    closing: std::sync::atomic::AtomicBool,
    last_timestamp_us: AtomicU64,
    /// Why appends fail right now (no quorum), for health checks.
    unavailable: Mutex<Option<String>>,
    snapshots: jetstream::kv::Store,
    checkpoints: jetstream::kv::Store,
    pub(crate) leases: jetstream::kv::Store,
    /// The keys message texts are sealed under, shared by the cluster (`crate::keys`).
    keyring: Arc<eventlog::keyring::Keyring>,
    pub(crate) handle: tokio::runtime::Handle,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
}

/// The event log of a cluster. Cheap to clone.
#[derive(Clone)]
pub struct NatsLog {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for NatsLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsLog")
            .field("stream", &self.inner.options.stream)
            .field("next_position", &self.inner.replica.next_position())
            .finish()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let runtime = match self.runtime.lock() {
            Ok(mut r) => r.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(runtime) = runtime {
            runtime.shutdown_background();
        }
    }
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn unavailable(reason: impl std::fmt::Display) -> StorageError {
    StorageError::Engine(format!("the cluster is unavailable: {reason}"))
}

impl NatsLog {
    /// Connects to the cluster, checks the servers (version, `sync_interval: always`),
    /// creates the stream and buckets if missing, opens (or creates) the replica in
    /// `replica_dir` and lets it catch up with the stream before returning. Call it off
    /// any async runtime (use [`NatsLog::connect`] on one).
    ///
    /// # Errors
    /// [`ConnectError`], naming what to fix.
    pub fn connect_blocking(
        options: NatsOptions,
        replica_dir: &Path,
        log_options: LogOptions,
    ) -> Result<Self, ConnectError> {
        let replica = RocksLog::open_replica(replica_dir, log_options.clone())?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("natslog")
            .enable_all()
            .build()
            .map_err(|e| ConnectError::Runtime(e.to_string()))?;
        let handle = runtime.handle().clone();
        let log = runtime.block_on(Self::setup(options, log_options, replica, handle))?;
        *log.inner.runtime.lock().expect("not poisoned") = Some(runtime);
        log.catch_up_blocking();
        Ok(log)
    }

    /// [`NatsLog::connect_blocking`] from an async context.
    ///
    /// # Errors
    /// As [`NatsLog::connect_blocking`].
    pub async fn connect(
        options: NatsOptions,
        replica_dir: &Path,
        log_options: LogOptions,
    ) -> Result<Self, ConnectError> {
        let dir = replica_dir.to_path_buf();
        let (tx, rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("natslog-connect".into())
            .spawn(move || {
                let _ = tx.send(Self::connect_blocking(options, &dir, log_options));
            })
            .map_err(|e| ConnectError::Runtime(e.to_string()))?;
        rx.await
            .map_err(|_| ConnectError::Runtime("the connecting thread died".into()))?
    }

    async fn setup(
        options: NatsOptions,
        log_options: LogOptions,
        replica: RocksLog,
        handle: tokio::runtime::Handle,
    ) -> Result<Self, ConnectError> {
        let servers = options.servers.join(",");
        let client = async_nats::ConnectOptions::new()
            .name(&options.client_name)
            .request_timeout(Some(options.request_timeout))
            .connection_timeout(Duration::from_secs(5))
            .connect(options.servers.clone())
            .await
            .map_err(|e| ConnectError::Unreachable {
                servers: servers.clone(),
                reason: e.to_string(),
            })?;
        let info = client.server_info();
        if parse_version(&info.version).is_none_or(|v| v < MIN_SERVER) {
            return Err(ConnectError::ServerTooOld {
                found: info.version,
            });
        }
        crate::checks::require_sync_always(&options.monitors).await?;
        let js = jetstream::new(client.clone());
        // A cluster just started may not have elected its metadata leader yet: retry for a
        // while before giving up.
        let deadline = Instant::now() + Duration::from_secs(60);
        let stream_config = jetstream::stream::Config {
            name: options.stream.clone(),
            subjects: vec![subject::all(&options.subject_prefix)],
            storage: jetstream::stream::StorageType::File,
            num_replicas: options.replicas,
            retention: jetstream::stream::RetentionPolicy::Limits,
            discard: jetstream::stream::DiscardPolicy::New,
            duplicate_window: Duration::from_secs(120),
            allow_direct: true,
            allow_atomic_publish: true,
            // The log is append-only: nobody removes events through the API.
            deny_delete: true,
            deny_purge: true,
            ..Default::default()
        };
        loop {
            match js.create_or_update_stream(stream_config.clone()).await {
                Ok(_) => break,
                Err(e) if Instant::now() < deadline => {
                    tracing::info!(error = %e, "JetStream not ready; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(ConnectError::JetStream(format!("creating the stream: {e}"))),
            }
        }
        let bucket = |purpose: &str, max_age: Duration| jetstream::kv::Config {
            bucket: options.bucket(purpose),
            history: 1,
            num_replicas: options.replicas,
            storage: jetstream::stream::StorageType::File,
            max_age,
            ..Default::default()
        };
        let kv = |config: jetstream::kv::Config| {
            let js = js.clone();
            async move {
                loop {
                    match js.create_or_update_key_value(config.clone()).await {
                        Ok(store) => return Ok(store),
                        Err(e) if Instant::now() < deadline => {
                            tracing::info!(error = %e, "JetStream not ready; retrying");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                        Err(e) => {
                            return Err(ConnectError::JetStream(format!(
                                "creating bucket {}: {e}",
                                config.bucket
                            )))
                        }
                    }
                }
            }
        };
        let snapshots = kv(bucket("snapshots", Duration::ZERO)).await?;
        let checkpoints = kv(bucket("checkpoints", Duration::ZERO)).await?;
        let leases = kv(bucket("leases", crate::lease::LEASE_TTL)).await?;
        let keyring = crate::keys::keyring(kv(bucket("keys", Duration::ZERO)).await?, &handle);
        let (jobs, rx) = mpsc::channel(QUEUE);
        let inner = Arc::new(Inner {
            options,
            log_options,
            client,
            js,
            replica,
            heads: Mutex::new(HashMap::new()),
            known_seq: AtomicU64::new(0),
            jobs,
            outstanding: std::sync::atomic::AtomicUsize::new(0),
            closing: std::sync::atomic::AtomicBool::new(false),
            last_timestamp_us: AtomicU64::new(0),
            unavailable: Mutex::new(None),
            snapshots,
            checkpoints,
            leases,
            keyring,
            handle,
            runtime: Mutex::new(None),
        });
        let last = inner
            .js
            .get_stream(&inner.options.stream)
            .await
            .map_err(|e| ConnectError::JetStream(e.to_string()))?
            .info()
            .await
            .map_err(|e| ConnectError::JetStream(e.to_string()))?
            .state
            .last_sequence;
        inner.known_seq.fetch_max(last, Ordering::AcqRel);
        tokio::spawn(schedule(Arc::downgrade(&inner), rx));
        tokio::spawn(crate::follow::follow(Arc::downgrade(&inner)));
        Ok(Self { inner })
    }

    /// Waits until the replica holds everything the stream held when this node connected.
    fn catch_up_blocking(&self) {
        let target = self.inner.known_seq.load(Ordering::Acquire);
        let started = Instant::now();
        let mut reported = Instant::now();
        while self.inner.replica.next_position() < target {
            if reported.elapsed() > Duration::from_secs(5) {
                tracing::info!(
                    at = self.inner.replica.next_position(),
                    of = target,
                    "the local replica is catching up with the cluster"
                );
                reported = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        tracing::info!(
            next_position = target,
            took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "the local replica is up to date with the cluster"
        );
    }

    /// The local replica (what reads and subscriptions see).
    pub fn replica(&self) -> &RocksLog {
        &self.inner.replica
    }

    /// This log as the trait object the rest of the system uses.
    pub fn into_store(self) -> Arc<dyn EventStore> {
        Arc::new(self)
    }

    /// The stream's last sequence as the cluster reports it now (for tests and tools).
    ///
    /// # Errors
    /// The cluster could not be asked.
    pub fn cluster_last_sequence_blocking(&self) -> Result<u64, StorageError> {
        let inner = self.inner.clone();
        self.block_on(async move {
            let mut stream = inner
                .js
                .get_stream(&inner.options.stream)
                .await
                .map_err(unavailable)?;
            Ok(stream
                .info()
                .await
                .map_err(unavailable)?
                .state
                .last_sequence)
        })
    }

    /// Stops taking appends, waits until every append submitted before is answered and
    /// the replica holds them (so subscribers see them), then stops following the cluster
    /// and closes the replica (subscriptions learn the log closed). Idempotent.
    pub fn shutdown(&self) {
        self.inner.closing.store(true, Ordering::Release);
        let deadline = Instant::now() + self.inner.options.unavailable_after * 2;
        while self.inner.outstanding.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = self.wait_replica_blocking(self.inner.known_seq.load(Ordering::Acquire));
        let runtime = match self.inner.runtime.lock() {
            Ok(mut r) => r.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(runtime) = runtime {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
        self.inner.replica.shutdown();
    }

    /// Runs `fut` on the client's runtime and waits for it: for the blocking methods,
    /// which are never called on that runtime's threads.
    fn block_on<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.inner.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .expect("the client's runtime runs while the log is open")
    }

    /// Waits (bounded) until the replica holds the event at stream sequence `seq`.
    fn wait_replica_blocking(&self, seq: u64) -> Result<(), StorageError> {
        let deadline = Instant::now() + self.inner.options.replica_wait;
        let mut pause = Duration::from_micros(200);
        while self.inner.replica.next_position() < seq {
            if Instant::now() > deadline {
                return Err(StorageError::Failed(format!(
                    "the local replica is behind the cluster (at {}, needs {seq})",
                    self.inner.replica.next_position()
                )));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
        Ok(())
    }

    fn known_head(&self, stream: &StreamName) -> Option<KnownHead> {
        self.inner.heads.lock().ok()?.get(stream).copied()
    }

    /// The head of a stream this node knows nothing about, as the cluster has it (and
    /// remembered), so the first read of a stream another node wrote an instant ago sees
    /// that write: a client that created a conversation through one node can use it through
    /// any other. `None` if the stream is empty, or if the cluster does not answer within
    /// [`HEAD_LOOKUP`] (without a quorum, reads go on from what the replica holds).
    fn head_from_cluster_blocking(&self, stream: &StreamName) -> Option<KnownHead> {
        let inner = self.inner.clone();
        let name = stream.clone();
        let fetched = self.block_on(async move {
            tokio::time::timeout(HEAD_LOOKUP, inner.fetch_head(&name)).await
        });
        match fetched {
            Ok(Ok(head)) => head,
            Ok(Err(e)) => {
                tracing::debug!(%stream, error = ?e, "reading from the replica: no head from the cluster");
                None
            }
            Err(_) => {
                tracing::debug!(%stream, "reading from the replica: the cluster did not answer for its head");
                None
            }
        }
    }
}

impl Inner {
    fn cached_head(&self, stream: &StreamName) -> Option<KnownHead> {
        self.heads.lock().ok()?.get(stream).copied()
    }

    fn remember(&self, stream: &StreamName, head: KnownHead) {
        self.known_seq.fetch_max(head.seq, Ordering::AcqRel);
        if let Ok(mut heads) = self.heads.lock() {
            if heads.len() >= HEAD_CACHE && !heads.contains_key(stream) {
                heads.clear();
            }
            let newer = heads.get(stream).is_none_or(|h| h.seq <= head.seq);
            if newer {
                heads.insert(stream.clone(), head);
            }
        }
    }

    fn forget(&self, stream: &StreamName) {
        if let Ok(mut heads) = self.heads.lock() {
            heads.remove(stream);
        }
    }

    fn set_unavailable(&self, reason: Option<String>) {
        match self.unavailable.lock() {
            Ok(mut g) => *g = reason,
            Err(poisoned) => *poisoned.into_inner() = reason,
        }
    }

    /// The stream's last event as the cluster's leader has it (not a replica that may
    /// lag), remembered.
    async fn fetch_head(&self, stream: &StreamName) -> Result<Option<KnownHead>, Failed> {
        let subject = subject::of(&self.options.subject_prefix, stream);
        let js_stream = self
            .js
            .get_stream_no_info(&self.options.stream)
            .await
            .map_err(|e| Failed::Unavailable(e.to_string()))?;
        match js_stream.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => {
                let record = WireRecord::decode(&message.payload)
                    .map_err(|e| Failed::Refused(format!("unreadable record: {e}")))?;
                let head = KnownHead {
                    seq: message.sequence,
                    version: record.version,
                    hash: record.hash,
                    event_id: record.event_id,
                };
                self.remember(stream, head);
                Ok(Some(head))
            }
            Err(e) if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => {
                self.forget(stream);
                Ok(None)
            }
            Err(e) => Err(Failed::Unavailable(e.to_string())),
        }
    }

    /// Waits (bounded) until the replica holds the event at stream sequence `seq`.
    async fn wait_replica(&self, seq: u64) -> Result<(), StorageError> {
        let deadline = Instant::now() + self.options.replica_wait;
        let mut pause = Duration::from_micros(200);
        while self.replica.next_position() < seq {
            if Instant::now() > deadline {
                return Err(StorageError::Failed(format!(
                    "the local replica is behind the cluster (at {}, needs {seq})",
                    self.replica.next_position()
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Whether `events` were written to `stream` before, exactly as one append: the
    /// original result if so. Looks in the replica once it holds the stream up to `head`.
    async fn find_retry(
        &self,
        stream: &StreamName,
        events: &[EventData],
        head: Option<KnownHead>,
    ) -> Result<Option<AppendResult>, AppendError> {
        let Some(head) = head else {
            return Ok(None);
        };
        self.wait_replica(head.seq).await?;
        let replica = self.replica.clone();
        let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
        let found = tokio::task::spawn_blocking(move || {
            ids.into_iter()
                .map(|id| replica.find_event_in_append_blocking(id))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| StorageError::Engine(format!("lookup task failed: {e}")))??;
        let stored: Vec<(&EventData, (RecordedEvent, u32, u32))> = events
            .iter()
            .zip(found)
            .filter_map(|(e, f)| f.map(|f| (e, f)))
            .collect();
        let stored: Vec<StoredRetry<'_>> = stored
            .iter()
            .map(|(asked, (s, index, count))| StoredRetry {
                asked,
                stored: s,
                index: *index,
                count: *count,
            })
            .collect();
        judge_retry(stream, events.len(), &stored)
    }

    /// The messages of an append on top of `head`: versions, chain links, timestamps.
    fn build(
        &self,
        stream: &StreamName,
        head: Option<KnownHead>,
        events: &[EventData],
    ) -> Result<(Vec<Message>, KnownHead), AppendError> {
        let timestamp_us = {
            let now = now_us();
            let last = self.last_timestamp_us.fetch_max(now, Ordering::AcqRel);
            now.max(last)
        };
        let mut version = head.map_or(0, |h| h.version.saturating_add(1));
        let mut prev_hash = head.map_or(chain::GENESIS, |h| h.hash);
        let count = u32::try_from(events.len()).map_err(|_| AppendError::AppendTooLarge {
            size: 0,
            count: events.len(),
        })?;
        let mut messages = Vec::with_capacity(events.len());
        let mut last = None;
        let max_payload = self.client.server_info().max_payload;
        for (index, e) in (0u32..).zip(events) {
            let content = chain::content_hash_of(e);
            let hash =
                chain::link_hash_unpositioned(&prev_hash, stream, version, timestamp_us, &content);
            let record = WireRecord {
                stream: stream.clone(),
                version,
                timestamp_us,
                prev_hash,
                hash,
                event_id: e.event_id,
                event_type: e.event_type.clone(),
                schema_version: e.schema_version,
                metadata: e.metadata.clone(),
                payload: e.payload.clone(),
                index,
                count,
            };
            let body = record
                .encode()
                .map_err(|err| StorageError::Engine(err.to_string()))?;
            // Headers and subject take a little of the server's message limit too.
            if body.len() + 1024 > max_payload {
                return Err(AppendError::EventTooLarge {
                    size: body.len(),
                    limit: max_payload.saturating_sub(1024),
                });
            }
            messages.push((e.event_id, body));
            last = Some((version, hash, e.event_id));
            prev_hash = hash;
            version = version.saturating_add(1);
        }
        let (version, hash, event_id) = last.ok_or(AppendError::NoEvents)?;
        Ok((
            messages,
            KnownHead {
                seq: 0,
                version,
                hash,
                event_id,
            },
        ))
    }

    /// One append, start to end: expectations, idempotency, publishing, retries.
    async fn append_one(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: &[EventData],
    ) -> Result<AppendResult, AppendError> {
        let subject = subject::of(&self.options.subject_prefix, stream);
        let deadline = Instant::now() + self.options.unavailable_after;
        let mut pause = Duration::from_millis(50);
        let mut conflicts = 0u32;
        loop {
            // A cached head may be behind what other nodes wrote: an expectation it does
            // not satisfy is judged again against the leader's head before it is refused.
            let cached = self.cached_head(stream);
            let head = match cached {
                Some(head) => Ok(Some(head)),
                None => self.fetch_head(stream).await,
            };
            let head = match head {
                Ok(head) => head,
                Err(Failed::Unavailable(reason)) if Instant::now() < deadline => {
                    tracing::debug!(%reason, "cluster unavailable; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                    continue;
                }
                Err(Failed::Unavailable(reason)) => {
                    self.set_unavailable(Some(reason.clone()));
                    return Err(unavailable(reason).into());
                }
                Err(other) => return Err(StorageError::Engine(format!("{other:?}")).into()),
            };
            let satisfied = expected.is_satisfied_by(head.map(|h| h.as_head()));
            if !satisfied && cached.is_some() {
                self.forget(stream);
                continue;
            }
            let maybe_retry = !satisfied
                || matches!(
                    expected,
                    ExpectedVersion::Any | ExpectedVersion::StreamExists
                )
                || head.is_some_and(|h| events.iter().any(|e| e.event_id == h.event_id));
            if maybe_retry {
                if let Some(original) = self.find_retry(stream, events, head).await? {
                    return Ok(original);
                }
            }
            if !satisfied {
                return Err(AppendError::WrongExpectedVersion {
                    stream: stream.clone(),
                    expected,
                    actual: head.map(|h| h.version),
                });
            }
            let (messages, mut new_head) = self.build(stream, head, events)?;
            let expected_seq = head.map_or(0, |h| h.seq);
            match publish(&self.client, &subject, messages, expected_seq).await {
                Ok(Published::Stored { last_seq }) => {
                    self.set_unavailable(None);
                    new_head.seq = last_seq;
                    self.remember(stream, new_head);
                    let n = events.len() as u64;
                    let first_version = head.map_or(0, |h| h.version.saturating_add(1));
                    return Ok(AppendResult {
                        first_version,
                        last_version: new_head.version,
                        first_position: last_seq.saturating_sub(n),
                        last_position: last_seq.saturating_sub(1),
                        deduplicated: false,
                    });
                }
                Ok(Published::Duplicate { seq }) => {
                    // Stored before within the duplicate window: find the original.
                    self.known_seq.fetch_max(seq, Ordering::AcqRel);
                    self.forget(stream);
                    let head = self.fetch_head(stream).await.ok().flatten();
                    if let Some(original) = self.find_retry(stream, events, head).await? {
                        return Ok(original);
                    }
                    return Err(AppendError::PartialDuplicate {
                        event_id: events[0].event_id,
                    });
                }
                Err(Failed::Conflict | Failed::DuplicateInBatch) => {
                    conflicts += 1;
                    self.forget(stream);
                    if conflicts > 64 {
                        return Err(unavailable("the stream keeps moving").into());
                    }
                }
                Err(Failed::Incomplete | Failed::Unavailable(_)) if Instant::now() < deadline => {
                    // Unknown outcome: read the head again; a retry that finds its events
                    // stored answers them.
                    self.forget(stream);
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(Failed::Incomplete) => {
                    // Refused as unavailable, so health says so too (it read "ok" while
                    // every write failed this way when the cluster lost its quorum).
                    let reason = "batches keep being dropped".to_owned();
                    self.set_unavailable(Some(reason.clone()));
                    return Err(unavailable(reason).into());
                }
                Err(Failed::Unavailable(reason)) => {
                    self.set_unavailable(Some(reason.clone()));
                    return Err(unavailable(reason).into());
                }
                Err(Failed::Refused(reason)) => {
                    return Err(StorageError::Engine(format!("refused: {reason}")).into());
                }
            }
        }
    }
}

/// Sends appends in submission order per stream, streams in parallel.
async fn schedule(inner: std::sync::Weak<Inner>, mut jobs: mpsc::Receiver<Job>) {
    let mut waiting: HashMap<StreamName, VecDeque<Job>> = HashMap::new();
    let mut running: HashSet<StreamName> = HashSet::new();
    let (done_tx, mut done) = mpsc::unbounded_channel::<StreamName>();
    let start = |inner: &Arc<Inner>, job: Job| {
        let (inner, done_tx) = (inner.clone(), done_tx.clone());
        tokio::spawn(async move {
            let result = inner
                .append_one(&job.stream, job.expected, &job.events)
                .await;
            let _ = job.ack.send(result);
            inner.outstanding.fetch_sub(1, Ordering::AcqRel);
            let _ = done_tx.send(job.stream);
        });
    };
    loop {
        tokio::select! {
            job = jobs.recv() => {
                let Some(job) = job else { break };
                let Some(inner) = inner.upgrade() else { break };
                if running.contains(&job.stream) {
                    waiting.entry(job.stream.clone()).or_default().push_back(job);
                } else {
                    running.insert(job.stream.clone());
                    start(&inner, job);
                }
            }
            Some(stream) = done.recv() => {
                let next = waiting.get_mut(&stream).and_then(VecDeque::pop_front);
                match (next, inner.upgrade()) {
                    (Some(job), Some(inner)) => start(&inner, job),
                    _ => {
                        running.remove(&stream);
                        waiting.remove(&stream);
                    }
                }
            }
        }
    }
}

fn snapshot_key(stream: &StreamName) -> String {
    eventlog::hex::encode(stream.as_str().as_bytes())
}

fn checkpoint_key(consumer: &str) -> String {
    format!("c_{}", eventlog::hex::encode(consumer.as_bytes()))
}

impl EventStore for NatsLog {
    fn keyring(&self) -> Option<Arc<eventlog::keyring::Keyring>> {
        Some(self.inner.keyring.clone())
    }

    fn append(
        &self,
        stream: StreamName,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> AppendFuture {
        if let Err(e) = eventlog::validate_append(&events, &self.inner.log_options) {
            return Box::pin(async move { Err(e) });
        }
        if self.inner.closing.load(Ordering::Acquire) {
            return Box::pin(async move { Err(AppendError::Storage(StorageError::Closed)) });
        }
        let (ack, rx) = oneshot::channel();
        self.inner.outstanding.fetch_add(1, Ordering::AcqRel);
        let queued = self.inner.jobs.try_send(Job {
            stream,
            expected,
            events,
            ack,
        });
        if queued.is_err() {
            self.inner.outstanding.fetch_sub(1, Ordering::AcqRel);
        }
        Box::pin(async move {
            match queued {
                Ok(()) => rx
                    .await
                    .map_err(|_| AppendError::Storage(StorageError::Closed))?,
                Err(mpsc::error::TrySendError::Full(_)) => Err(AppendError::Overloaded),
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    Err(AppendError::Storage(StorageError::Closed))
                }
            }
        })
    }

    fn append_blocking(
        &self,
        stream: StreamName,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, AppendError> {
        let append = self.append(stream, expected, events);
        self.block_on(append)
    }

    fn read_stream_blocking(
        &self,
        stream: &StreamName,
        from: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, ReadError> {
        let head = match self.known_head(stream) {
            Some(head) => Some(head),
            None => self.head_from_cluster_blocking(stream),
        };
        if let Some(head) = head {
            self.wait_replica_blocking(head.seq)?;
        }
        self.inner
            .replica
            .read_stream_blocking(stream, from, direction, limit)
    }

    fn read_all_blocking(&self, from: u64, limit: usize) -> Result<Vec<RecordedEvent>, ReadError> {
        self.inner.replica.read_all_blocking(from, limit)
    }

    fn read_category_blocking(
        &self,
        category: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, ReadError> {
        self.inner
            .replica
            .read_category_blocking(category, from, limit)
    }

    fn stream_version_blocking(&self, stream: &StreamName) -> Result<Option<u64>, ReadError> {
        let inner = self.inner.clone();
        let stream = stream.clone();
        let head = self.block_on(async move { inner.fetch_head(&stream).await });
        match head {
            Ok(head) => Ok(head.map(|h| h.version)),
            Err(e) => Err(unavailable(format!("{e:?}")).into()),
        }
    }

    fn find_event_blocking(&self, event_id: Uuid) -> Result<Option<RecordedEvent>, ReadError> {
        self.wait_replica_blocking(self.inner.known_seq.load(Ordering::Acquire))?;
        self.inner.replica.find_event_blocking(event_id)
    }

    fn next_position(&self) -> u64 {
        self.inner.replica.next_position()
    }

    fn live(&self) -> Option<broadcast::Receiver<LiveBatch>> {
        self.inner.replica.live()
    }

    fn write_unavailable(&self) -> Option<String> {
        match self.inner.unavailable.lock() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn write_snapshot_blocking(
        &self,
        stream: &StreamName,
        snapshot: Snapshot,
    ) -> Result<(), SnapshotError> {
        let actual = self.stream_version_blocking(stream).map_err(|e| match e {
            ReadError::Storage(s) => SnapshotError::Storage(s),
            other => SnapshotError::Storage(StorageError::Engine(other.to_string())),
        })?;
        if actual.is_none_or(|v| snapshot.version > v) {
            return Err(SnapshotError::BeyondStream {
                stream: stream.clone(),
                version: snapshot.version,
                actual,
            });
        }
        let bytes =
            eventlog::codec::encode(&snapshot).map_err(|e| StorageError::Engine(e.to_string()))?;
        let limit = self
            .inner
            .client
            .server_info()
            .max_payload
            .saturating_sub(4096)
            .min(self.inner.log_options.max_snapshot_bytes);
        if bytes.len() > limit {
            return Err(SnapshotError::TooLarge {
                size: bytes.len(),
                limit,
            });
        }
        let (inner, key) = (self.inner.clone(), snapshot_key(stream));
        self.block_on(async move {
            // Unless a newer one is stored: compare-and-set on the key's revision, again
            // when another writer got there in between.
            for _ in 0..16 {
                let entry = inner
                    .snapshots
                    .entry(key.clone())
                    .await
                    .map_err(unavailable)?;
                let stored_version = entry.as_ref().and_then(|e| {
                    eventlog::codec::decode::<Snapshot>(&e.value)
                        .ok()
                        .map(|s| s.version)
                });
                if stored_version.is_some_and(|v| v > snapshot.version) {
                    return Ok(());
                }
                let written = match entry {
                    Some(e) => inner
                        .snapshots
                        .update(key.clone(), bytes.clone().into(), e.revision)
                        .await
                        .is_ok(),
                    None => inner
                        .snapshots
                        .create(key.clone(), bytes.clone().into())
                        .await
                        .is_ok(),
                };
                if written {
                    return Ok(());
                }
            }
            Err(unavailable("snapshot writers keep racing"))
        })
        .map_err(SnapshotError::Storage)
    }

    fn read_snapshot_blocking(
        &self,
        stream: &StreamName,
    ) -> Result<Option<Snapshot>, SnapshotError> {
        let (inner, key) = (self.inner.clone(), snapshot_key(stream));
        let value = self
            .block_on(async move { inner.snapshots.get(key).await })
            .map_err(unavailable)?;
        match value {
            None => Ok(None),
            Some(bytes) => eventlog::codec::decode(&bytes).map(Some).map_err(|e| {
                SnapshotError::Storage(StorageError::Corrupted {
                    location: format!("snapshot of {stream}"),
                    reason: e.to_string(),
                })
            }),
        }
    }

    fn read_checkpoint_blocking(&self, consumer: &str) -> Result<Option<u64>, ReadError> {
        let (inner, key) = (self.inner.clone(), checkpoint_key(consumer));
        let value = self
            .block_on(async move { inner.checkpoints.get(key).await })
            .map_err(unavailable)?;
        match value {
            None => Ok(None),
            Some(bytes) => {
                let raw: [u8; 8] =
                    bytes
                        .as_ref()
                        .try_into()
                        .map_err(|_| StorageError::Corrupted {
                            location: format!("checkpoint {consumer}"),
                            reason: "not 8 bytes".into(),
                        })?;
                Ok(Some(u64::from_be_bytes(raw)))
            }
        }
    }

    fn write_checkpoint_blocking(&self, consumer: &str, position: u64) -> Result<(), ReadError> {
        let (inner, key) = (self.inner.clone(), checkpoint_key(consumer));
        self.block_on(async move {
            inner
                .checkpoints
                .put(key, position.to_be_bytes().to_vec().into())
                .await
        })
        .map_err(unavailable)?;
        Ok(())
    }

    fn verify_stream_blocking(&self, stream: &StreamName) -> Result<VerifyReport, ReadError> {
        if let Some(head) = self.known_head(stream) {
            self.wait_replica_blocking(head.seq)?;
        }
        self.inner.replica.verify_stream_blocking(stream)
    }

    fn verify_all_blocking(&self) -> Result<VerifyReport, ReadError> {
        self.inner.replica.verify_all_blocking()
    }
}
