//! The part of an actor that is not actix: its state, how it is loaded, how a command is
//! executed against it. Plain async code over the [`EventStore`] trait, so it is tested and
//! benchmarked without an actor around it.

use std::sync::Arc;

use domain::{Aggregate, Texts};
use eventlog::store::nonblocking;
use eventlog::{
    codec, AppendError, AppendFuture, Direction, EventData, EventStore, ExpectedVersion, Metadata,
    Snapshot, StreamName,
};
use uuid::Uuid;

use crate::config::ActorConfig;
use crate::error::{ActorError, CommandError};
use crate::event_codec;

/// Schema version of snapshot states written by this build. A snapshot of another version
/// is ignored and the stream replayed from the start. 2: the conversation keeps a bounded
/// window of recent messages instead of every message.
pub const SNAPSHOT_SCHEMA: u16 = 2;

/// Events read per page while replaying.
const REPLAY_PAGE: usize = 1024;

/// Attempts [`Core::execute`] makes when other writers keep moving the stream under it,
/// each against a state loaded afresh, before it gives up with [`ActorError::Conflict`].
const CONFLICT_ATTEMPTS: u32 = 12;

/// How a command is to be written.
#[derive(Debug, Clone, Default)]
pub struct ExecuteOptions {
    /// When set, the events' ids derive from it, so a retried command (same key) is
    /// recognised and written once.
    pub idempotency_key: Option<Uuid>,
    /// Correlation, causation and acting user recorded with every event.
    pub metadata: Metadata,
}

/// What a command did.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandOutcome<E> {
    /// The stream's version after the command (`None`: the stream still has no events).
    pub version: Option<u64>,
    /// Global position of the last event written, for read-your-writes; `None` when the
    /// command wrote nothing.
    pub position: Option<u64>,
    /// The events written (empty when the command's effect already held).
    pub events: Vec<E>,
    /// True when the command was recognised as a retry of one already written.
    pub deduplicated: bool,
}

/// A snapshot of a state, encoded, waiting to be written ([`Core::snapshot_due`]).
pub struct SnapshotJob(Box<dyn FnOnce() -> Result<(), eventlog::SnapshotError> + Send>);

impl SnapshotJob {
    /// Writes the snapshot on a blocking thread (it needs a tokio runtime): a snapshot is
    /// an optimisation, its failure only costs replay, so it is logged, not returned.
    pub fn spawn(self) {
        tokio::task::spawn_blocking(move || {
            if let Err(e) = (self.0)() {
                tracing::warn!(error = %e, "snapshot not written");
            }
        });
    }
}

/// What [`Core::submit`] did with a command.
pub enum Submitted<E, R: std::error::Error> {
    /// Refused, or nothing to write: the answer, now.
    Done(Result<CommandOutcome<E>, CommandError<R>>),
    /// Nothing decided yet: a text needs a key the keyring does not hold in memory (its
    /// first use), which must be read or made off the executor — run the command through
    /// [`Core::execute`] instead, which does that.
    NeedsKey,
    /// Decided and folded into the state; the append is queued behind every earlier one
    /// and `append` resolves once it is durable (or refused).
    Appending {
        append: AppendFuture,
        events: Vec<E>,
    },
}

/// An aggregate, the stream it lives in, and the version of the last event folded in.
pub struct Core<A: Aggregate> {
    pub stream: StreamName,
    pub state: A,
    /// Version of the last event applied; `None` for a stream with no events.
    pub version: Option<u64>,
    /// Id of the event at `version`, named in every append's expectation so that an
    /// append decided on this state lands only on top of exactly this state (another
    /// writer's event at the same version does not pass).
    last_event_id: Option<Uuid>,
    store: Arc<dyn EventStore>,
    config: ActorConfig,
    since_snapshot: u64,
}

impl<A: Aggregate> Core<A> {
    /// Loads the latest snapshot (if any and readable) and replays the events after it.
    ///
    /// # Errors
    /// Storage failures and undecodable events.
    pub async fn load(
        store: Arc<dyn EventStore>,
        stream: StreamName,
        config: ActorConfig,
    ) -> Result<Self, ActorError> {
        let (state, version) = Self::read_snapshot(&store, &stream).await?;
        let mut core = Self {
            stream,
            state,
            version,
            last_event_id: None,
            store,
            config,
            since_snapshot: 0,
        };
        core.catch_up().await?;
        core.learn_last_event_id().await?;
        Ok(core)
    }

    /// The latest usable snapshot's state and version, or the empty state.
    async fn read_snapshot(
        store: &Arc<dyn EventStore>,
        stream: &StreamName,
    ) -> Result<(A, Option<u64>), ActorError> {
        let snapshot = {
            let (store, stream) = (store.clone(), stream.clone());
            tokio::task::spawn_blocking(move || store.read_snapshot_blocking(&stream))
                .await
                .map_err(|_| ActorError::Unavailable)??
        };
        let (state, version) = match snapshot {
            Some(s) if s.schema_version == SNAPSHOT_SCHEMA => match codec::decode::<A>(&s.state) {
                Ok(state) => (state, Some(s.version)),
                Err(e) => {
                    tracing::warn!(%stream, error = %e, "unreadable snapshot ignored; replaying");
                    (A::default(), None)
                }
            },
            _ => (A::default(), None),
        };
        Ok((state, version))
    }

    /// After a load that applied no event past the snapshot, the id of the snapshot's last
    /// event is not known yet: read it.
    async fn learn_last_event_id(&mut self) -> Result<(), ActorError> {
        let Some(version) = self.version.filter(|_| self.last_event_id.is_none()) else {
            return Ok(());
        };
        let page =
            nonblocking::read_stream(&self.store, &self.stream, version, Direction::Forward, 1)
                .await?;
        self.last_event_id = page
            .first()
            .filter(|r| r.version == version)
            .map(|r| r.event_id);
        Ok(())
    }

    /// Throws the state away and loads it again from the snapshot and the log: after a
    /// conflict, the state is rebuilt from what the log holds, never patched.
    async fn reload(&mut self) -> Result<(), ActorError> {
        let (state, version) = Self::read_snapshot(&self.store, &self.stream).await?;
        self.state = state;
        self.version = version;
        self.last_event_id = None;
        self.catch_up().await?;
        self.learn_last_event_id().await
    }

    /// Rebuilds the state from the stream's first event, ignoring any snapshot (to check a
    /// snapshot, or to measure a full replay).
    ///
    /// # Errors
    /// Storage failures and undecodable events.
    pub async fn replay_from_start(
        store: Arc<dyn EventStore>,
        stream: StreamName,
        config: ActorConfig,
    ) -> Result<Self, ActorError> {
        let mut core = Self {
            stream,
            state: A::default(),
            version: None,
            last_event_id: None,
            store,
            config,
            since_snapshot: 0,
        };
        core.catch_up().await?;
        Ok(core)
    }

    /// Applies every stored event after `version`. Returns how many were applied.
    ///
    /// # Errors
    /// Storage failures and undecodable events.
    pub async fn catch_up(&mut self) -> Result<u64, ActorError> {
        let mut applied = 0;
        loop {
            let from = self.version.map_or(0, |v| v + 1);
            let page = nonblocking::read_stream(
                &self.store,
                &self.stream,
                from,
                Direction::Forward,
                REPLAY_PAGE,
            )
            .await?;
            for record in &page {
                let event: A::Event =
                    event_codec::decode(record).map_err(|reason| ActorError::Corrupt {
                        stream: self.stream.to_string(),
                        version: record.version,
                        reason,
                    })?;
                self.state.apply(&event);
                self.version = Some(record.version);
                self.last_event_id = Some(record.event_id);
                applied += 1;
            }
            if page.len() < REPLAY_PAGE {
                break;
            }
        }
        self.since_snapshot += applied;
        Ok(applied)
    }

    /// Decides `command` against the current state and appends the outcome, expecting the
    /// stream's last event to be the one the state ends with. On a conflict (someone else
    /// wrote the stream) it loads the state again and decides once more, with a growing
    /// pause between attempts, until the command is either written or refused by the
    /// domain; only a stream that keeps moving for [`CONFLICT_ATTEMPTS`] attempts is
    /// reported as [`ActorError::Conflict`] (nothing written).
    ///
    /// # Errors
    /// The domain's rejection, or [`ActorError`].
    pub async fn execute(
        &mut self,
        command: &A::Command,
        options: &ExecuteOptions,
    ) -> Result<CommandOutcome<A::Event>, CommandError<A::Rejection>> {
        if let Some(outcome) = self.already_executed(options).await? {
            return Ok(outcome);
        }
        for attempt in 0..CONFLICT_ATTEMPTS {
            if attempt > 0 {
                conflict_pause(attempt).await;
                self.reload().await?;
            }
            let events = self.state.decide(command).map_err(CommandError::Rejected)?;
            if events.is_empty() {
                return Ok(CommandOutcome {
                    version: self.version,
                    position: None,
                    events,
                    deduplicated: false,
                });
            }
            let sealed = self.sealed(&events).await?;
            let data = self.encode(&sealed, options)?;
            let last_id = data.last().map(|e| e.event_id);
            let expected = ExpectedVersion::after_event(self.version, self.last_event_id);
            match self.store.append(self.stream.clone(), expected, data).await {
                Ok(r) if r.deduplicated => {
                    // Written before (by a run of this command we did not see finish):
                    // the stream already holds the events; take them from there.
                    self.catch_up().await?;
                    return Ok(CommandOutcome {
                        version: self.version,
                        position: Some(r.last_position),
                        events: Vec::new(),
                        deduplicated: true,
                    });
                }
                Ok(r) => {
                    for e in &events {
                        self.state.apply(e);
                    }
                    self.version = Some(r.last_version);
                    self.last_event_id = last_id;
                    self.since_snapshot += events.len() as u64;
                    self.maybe_snapshot();
                    return Ok(CommandOutcome {
                        version: self.version,
                        position: Some(r.last_position),
                        events,
                        deduplicated: false,
                    });
                }
                Err(AppendError::WrongExpectedVersion { .. }) => {
                    tracing::debug!(stream = %self.stream, attempt, "conflict; deciding again");
                }
                Err(e) => return Err(ActorError::Append(e).into()),
            }
        }
        Err(ActorError::Conflict.into())
    }

    /// Decides `command` against the current state — which includes the events of
    /// commands still being appended — folds its events in at once and queues their
    /// append with the version they follow as expected version, without waiting. Commands
    /// on one stream are thus decided in order, each against the state the previous left,
    /// while their appends share group commits instead of waiting one fsync each.
    ///
    /// The state runs ahead of the log until the append resolves: if it fails, the state
    /// holds events the log does not, and the caller must drop this core and load it
    /// again (every later append decided on top of it fails with a version conflict).
    /// Commands with an idempotency key go through [`Core::execute`], which looks for an
    /// earlier run first.
    pub fn submit(
        &mut self,
        command: &A::Command,
        options: &ExecuteOptions,
    ) -> Submitted<A::Event, A::Rejection> {
        let events = match self.state.decide(command) {
            Ok(events) => events,
            Err(rejection) => return Submitted::Done(Err(CommandError::Rejected(rejection))),
        };
        if events.is_empty() {
            return Submitted::Done(Ok(CommandOutcome {
                version: self.version,
                position: None,
                events,
                deduplicated: false,
            }));
        }
        let Some(sealed) = self.sealed_cached(&events) else {
            return Submitted::NeedsKey;
        };
        let data = match self.encode(&sealed, options) {
            Ok(data) => data,
            Err(e) => return Submitted::Done(Err(e.into())),
        };
        drop(sealed);
        let expected = ExpectedVersion::after_event(self.version, self.last_event_id);
        self.last_event_id = data.last().map(|e| e.event_id);
        let append = self.store.append(self.stream.clone(), expected, data);
        for e in &events {
            self.state.apply(e);
        }
        let first = self.version.map_or(0, |v| v + 1);
        self.version = Some(first + events.len() as u64 - 1);
        self.since_snapshot += events.len() as u64;
        Submitted::Appending { append, events }
    }

    /// `events` with their texts sealed (only events with texts are copied), reading or
    /// making keys not in memory on a blocking thread. A key that cannot be made (the
    /// keyring's storage is unreachable) is the storage's failure, and nothing is written.
    async fn sealed<'e>(
        &self,
        events: &'e [A::Event],
    ) -> Result<Vec<std::borrow::Cow<'e, A::Event>>, ActorError> {
        let sealer = crate::sealing::Sealer::of(&*self.store);
        let mut sealed = Vec::with_capacity(events.len());
        for e in events {
            sealed.push(if e.has_texts() && sealer.keyring().is_some() {
                let mut e = e.clone();
                sealer
                    .seal_event(&mut e)
                    .await
                    .map_err(|e| ActorError::Append(eventlog::AppendError::Storage(e.into())))?;
                std::borrow::Cow::Owned(e)
            } else {
                std::borrow::Cow::Borrowed(e)
            });
        }
        Ok(sealed)
    }

    /// As [`Core::sealed`] with the keys in the keyring's memory only: `None` when a text
    /// needs another (nothing may block the actor's thread).
    fn sealed_cached<'e>(
        &self,
        events: &'e [A::Event],
    ) -> Option<Vec<std::borrow::Cow<'e, A::Event>>> {
        let sealer = crate::sealing::Sealer::of(&*self.store);
        let mut sealed = Vec::with_capacity(events.len());
        for e in events {
            sealed.push(if e.has_texts() && sealer.keyring().is_some() {
                let mut e = e.clone();
                if !sealer.seal_event_cached(&mut e) {
                    return None;
                }
                std::borrow::Cow::Owned(e)
            } else {
                std::borrow::Cow::Borrowed(e)
            });
        }
        Some(sealed)
    }

    fn encode(
        &self,
        sealed: &[std::borrow::Cow<'_, A::Event>],
        options: &ExecuteOptions,
    ) -> Result<Vec<EventData>, ActorError> {
        sealed
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let id = options
                    .idempotency_key
                    .map_or_else(Uuid::new_v4, |k| event_codec::derived_event_id(k, i));
                event_codec::encode(e.as_ref(), id, options.metadata.clone())
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ActorError::Corrupt {
                stream: self.stream.to_string(),
                version: self.version.map_or(0, |v| v + 1),
                reason: e.to_string(),
            })
    }

    /// A command with an idempotency key whose first event is already in this stream was
    /// executed before: report that instead of deciding again against a newer state.
    async fn already_executed(
        &mut self,
        options: &ExecuteOptions,
    ) -> Result<Option<CommandOutcome<A::Event>>, ActorError> {
        let Some(key) = options.idempotency_key else {
            return Ok(None);
        };
        let id = event_codec::derived_event_id(key, 0);
        let store = self.store.clone();
        let found = tokio::task::spawn_blocking(move || store.find_event_blocking(id))
            .await
            .map_err(|_| ActorError::Unavailable)??;
        match found {
            Some(e) if e.stream == self.stream => {
                self.catch_up().await?;
                Ok(Some(CommandOutcome {
                    version: self.version,
                    position: Some(e.position),
                    events: Vec::new(),
                    deduplicated: true,
                }))
            }
            _ => Ok(None),
        }
    }

    /// Writes a snapshot in the background if enough events were applied since the last.
    /// Call it only when no append of this core is in flight: a snapshot must not run
    /// ahead of the log.
    pub fn maybe_snapshot(&mut self) {
        if let Some(job) = self.snapshot_due() {
            job.spawn();
        }
    }

    /// The snapshot of the state as it is now, if enough events were applied since the
    /// last: to be written once every event it holds is durable (after the append of the
    /// command just submitted succeeded; [`SnapshotJob::spawn`]), and dropped otherwise.
    pub fn snapshot_due(&mut self) -> Option<SnapshotJob> {
        let every = self.config.snapshot_every;
        if every == 0 || self.since_snapshot < every {
            return None;
        }
        let job = self.snapshot_job()?;
        self.since_snapshot = 0;
        Some(SnapshotJob(Box::new(job)))
    }

    fn snapshot_job(
        &self,
    ) -> Option<impl FnOnce() -> Result<(), eventlog::SnapshotError> + Send + 'static> {
        let version = self.version?;
        let state = match codec::encode(&self.state) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(stream = %self.stream, error = %e, "state not encodable; no snapshot");
                return None;
            }
        };
        let (store, stream) = (self.store.clone(), self.stream.clone());
        Some(move || {
            store.write_snapshot_blocking(
                &stream,
                Snapshot {
                    version,
                    schema_version: SNAPSHOT_SCHEMA,
                    state,
                    taken_at_us: std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
                },
            )
        })
    }

    /// Writes a snapshot now and waits for it (tests, benchmarks, shutdown).
    ///
    /// # Errors
    /// Storage failure.
    pub async fn snapshot_now(&mut self) -> Result<(), ActorError> {
        if let Some(job) = self.snapshot_job() {
            tokio::task::spawn_blocking(job)
                .await
                .map_err(|_| ActorError::Unavailable)??;
            self.since_snapshot = 0;
        }
        Ok(())
    }
}

/// The pause before conflict attempt `attempt` (1-based): doubling from 1 ms up to 128 ms,
/// with jitter so that writers who collided do not collide again in step.
async fn conflict_pause(attempt: u32) {
    let base_ms = 1u64 << attempt.saturating_sub(1).min(7);
    let jitter_ms = u64::try_from(Uuid::new_v4().as_u128() % u128::from(base_ms)).unwrap_or(0);
    tokio::time::sleep(std::time::Duration::from_millis(base_ms + jitter_ms)).await;
}
