//! Following the log into a read model.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use eventlog::{
    EventStore, RecordedEvent, SharedEvent, StartFrom, SubscribeError, Subscription,
    SubscriptionTarget,
};
use tokio::sync::{oneshot, watch};

use crate::error::ProjectionError;
use crate::event::Page;

/// Events applied per write at most.
pub const MAX_BATCH: usize = 10_000;

/// A read model that applies events in batches and stores each batch together with its
/// checkpoint, so a restart neither skips nor repeats an event.
pub trait ReadModel: Send {
    fn name(&self) -> &'static str;
    /// Position of the last event applied.
    fn checkpoint(&self) -> Option<u64>;
    /// Applies `events` (in position order; ones at or below the checkpoint are ignored)
    /// and persists them with the new checkpoint atomically.
    ///
    /// # Errors
    /// Storage errors or undecodable events; nothing of the batch is then stored.
    fn apply_batch(&mut self, events: &[RecordedEvent]) -> Result<(), ProjectionError>;

    /// As [`ReadModel::apply_batch`], for events as a subscription hands them out (shared
    /// with the log's other live readers). By default a copy is applied; a model that
    /// reads its events by reference overrides it and copies nothing.
    ///
    /// # Errors
    /// As [`ReadModel::apply_batch`].
    fn apply_shared(&mut self, events: &[SharedEvent]) -> Result<(), ProjectionError> {
        let copies: Vec<RecordedEvent> = events.iter().map(|e| RecordedEvent::clone(e)).collect();
        self.apply_batch(&copies)
    }

    /// As [`ReadModel::apply_batch`], for a page other models apply too (a rebuild): a
    /// payload another model has decoded is not decoded again.
    ///
    /// # Errors
    /// As [`ReadModel::apply_batch`].
    fn apply_page(&mut self, page: &Page) -> Result<(), ProjectionError> {
        self.apply_batch(page.records())
    }

    /// Opens sealed message texts with `sealer` from now on (a model that keeps texts in
    /// the clear, the search index, needs them readable). By default ignored.
    fn open_texts_with(&mut self, _sealer: actors::sealing::Sealer) {}

    /// Position of the last event whose effect queries see (and everything before it).
    /// The checkpoint, unless the model holds applied events back to write them with a
    /// later batch (the search index commits at most every so often).
    fn visible(&self) -> Option<u64> {
        self.checkpoint()
    }

    /// When [`ReadModel::flush`] is due, if the model holds applied events back.
    fn flush_at(&self) -> Option<Instant> {
        None
    }

    /// When [`ReadModel::flush`] is due while a query waits for an event the model holds
    /// back ([`Wanted`]): by default as [`ReadModel::flush_at`]. A model that holds events
    /// back to write less often (the search index) writes them sooner for a waiting
    /// query.
    fn flush_when_wanted(&self) -> Option<Instant> {
        self.flush_at()
    }

    /// Writes what the model holds back, making it visible.
    ///
    /// # Errors
    /// Storage errors; what was held back is then discarded, as a failed batch.
    fn flush(&mut self) -> Result<(), ProjectionError> {
        Ok(())
    }

    /// How long after a batch the runner lets events gather before it applies the next
    /// one, unless a query waits for one of them ([`Wanted`]): by default the server's
    /// ([`set_server_linger`], [`LINGER`] unless set).
    fn linger(&self) -> Duration {
        Duration::from_millis(SERVER_LINGER_MS.load(Ordering::Relaxed))
    }
}

/// The server's linger in milliseconds ([`set_server_linger`]).
static SERVER_LINGER_MS: AtomicU64 = AtomicU64::new(LINGER_MS);

/// Sets how long read models started from now on linger ([`ReadModel::linger`]; default
/// [`LINGER`]; zero applies every hand-over of the log at once). Process-wide: a server
/// sets it once from its `--readmodel-linger-ms`, before its read models start.
pub fn set_server_linger(linger: Duration) {
    let ms = u64::try_from(linger.as_millis()).unwrap_or(u64::MAX);
    SERVER_LINGER_MS.store(ms, Ordering::Relaxed);
}

/// [`LINGER`] in milliseconds.
pub const LINGER_MS: u64 = 25;

/// How long after applying a batch a runner lets the next events gather
/// ([`ReadModel::linger`]). The first events after a quiet spell are applied at once, a
/// query waiting for an event ([`Wanted`], `after=`) has it applied at once, and under a
/// steady stream of small log commits a model applies (and writes, and wakes its thread)
/// once per linger instead of once per commit: each batch costs a write and a wake-up
/// whatever it holds, which at a few thousand messages a second was most of a model's
/// work.
pub const LINGER: Duration = Duration::from_millis(LINGER_MS);

/// The positions queries wait for ([`crate::live::Live::wait_for`]), told to the runner:
/// a model that holds applied events back writes them when a query waits for one
/// ([`ReadModel::flush_when_wanted`]) instead of when its interval is up, so it can write
/// seldom without a reader waiting any longer for its own writes.
#[derive(Debug)]
pub struct Wanted {
    /// The highest position a query has waited for, plus one (0: none yet).
    position: AtomicU64,
    nudge: Sender<()>,
    nudged: Receiver<()>,
}

impl Default for Wanted {
    fn default() -> Self {
        let (nudge, nudged) = crossbeam_channel::bounded(1);
        Self {
            position: AtomicU64::new(0),
            nudge,
            nudged,
        }
    }
}

impl Wanted {
    /// A query waits for `position`: the runner, even one waiting for events, looks again
    /// at what it holds back.
    pub fn want(&self, position: u64) {
        let raised = self
            .position
            .fetch_max(position.saturating_add(1), Ordering::AcqRel)
            <= position;
        if raised {
            // Full: a nudge is pending already.
            let _ = self.nudge.try_send(());
        }
    }

    /// The position a query waits for, if the model has not applied it: after `have`.
    fn beyond(&self, have: Option<u64>) -> Option<u64> {
        let wanted = self.position.load(Ordering::Acquire).checked_sub(1)?;
        have.is_none_or(|h| h < wanted).then_some(wanted)
    }

    /// Whether a query waits for a position after `visible` that is in hand: at or before
    /// `have`, what the model has applied. Writing early for a position not applied yet
    /// would not show it to the query.
    fn in_hand(&self, visible: Option<u64>, have: Option<u64>) -> bool {
        let wanted = self.position.load(Ordering::Acquire).checked_sub(1);
        wanted.is_some_and(|w| visible.is_none_or(|v| v < w) && have.is_some_and(|h| w <= h))
    }
}

/// When what `model` holds back is due to be written, if it holds anything back.
fn flush_due(model: &dyn ReadModel, wanted: &Wanted) -> Option<Instant> {
    if wanted.in_hand(model.visible(), model.checkpoint()) {
        model.flush_when_wanted()
    } else {
        model.flush_at()
    }
}

/// Why [`follow_blocking`] returned.
#[derive(Debug, PartialEq, Eq)]
pub enum Finished {
    /// Asked to stop.
    Stopped,
    /// The log closed (shut down, or a read-only log fully read).
    LogClosed,
}

/// Chunks of events the reader thread hands over ahead of the model at most (each up to
/// [`MAX_BATCH`] events; the reader thread waits beyond that, and then hands over what the
/// log committed meanwhile as one chunk).
pub const READ_AHEAD_CHUNKS: usize = 2;

/// How often a runner waiting for events looks at its stop flag.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// Follows `$all` from the model's checkpoint and applies every event, publishing the
/// position queries see ([`ReadModel::visible`]) on `progress` after each batch. Blocks the calling thread: run it on
/// a thread of its own. `on_batch` is told (events in batch, checkpoint) after each one.
///
/// A reader thread follows the subscription and hands events over a bounded channel, so
/// reading overlaps applying. It hands over what the subscription has read at once (a
/// committed batch of the log, a page of storage) as one chunk. Each batch takes every
/// event that arrived while the previous one was being written, or during the model's
/// [`ReadModel::linger`] after it (up to [`MAX_BATCH`]): a model whose writes are slow (a
/// search index commit) falls behind by at most one write, never by one write per event,
/// and under a stream of small commits the model's thread wakes and writes once per
/// linger, not once per commit. Events a query waits for ([`Wanted`]) and the first after
/// a quiet spell are applied without lingering. `stop` is seen within 100 ms even when no
/// event comes, and the function returns only once its reader thread has ended (it no
/// longer touches the log).
///
/// # Errors
/// The model's errors, or storage errors of the log.
pub fn follow_blocking(
    store: Arc<dyn EventStore>,
    model: &mut dyn ReadModel,
    progress: &watch::Sender<Option<u64>>,
    wanted: &Wanted,
    stop: &AtomicBool,
    mut on_batch: impl FnMut(usize, u64),
) -> Result<Finished, ProjectionError> {
    let from = model
        .checkpoint()
        .map_or(StartFrom::Beginning, StartFrom::After);
    progress.send_replace(model.visible());
    let sub = Subscription::new(store, SubscriptionTarget::All, from)
        .map_err(|e| ProjectionError::Log(e.to_string()))?
        .with_page_size(4096);
    let reader = Reader::start(model.name(), sub)?;
    let rx = &reader.events;
    let linger = model.linger();
    // Events received and not applied yet, and how the reader ended, if it has.
    let mut pending: Vec<SharedEvent> = Vec::with_capacity(1024);
    let mut end: Option<SubscribeError> = None;
    // When the last batch was applied: the next one waits for the linger to be up.
    let mut applied: Option<Instant> = None;
    loop {
        if stop.load(Ordering::Acquire) {
            return Ok(Finished::Stopped);
        }
        // What the model holds back is written once due: between batches under load, or
        // when waiting for events.
        let due = flush_due(model, wanted);
        if due.is_some_and(|t| t <= Instant::now()) {
            model.flush()?;
            progress.send_replace(model.visible());
            continue;
        }
        // What the reader has handed over comes without waiting.
        while end.is_none() && pending.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(chunk) => end = chunk.take_into(&mut pending),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => end = Some(SubscribeError::Closed),
            }
        }
        if pending.is_empty() {
            match end.take() {
                None => {}
                Some(SubscribeError::Closed) => return Ok(Finished::LogClosed),
                Some(e) => return Err(ProjectionError::Log(e.to_string())),
            }
        }
        // A query waits for an event the model has not applied.
        let awaited = wanted.beyond(model.checkpoint());
        let received = pending.last().map(|e| e.position);
        let lingering = applied
            .map(|t| t + linger)
            .filter(|&until| until > Instant::now());
        let apply_now = end.is_some()
            || pending.len() >= MAX_BATCH
            || lingering.is_none()
            || awaited.is_some_and(|w| received.is_some_and(|r| w <= r));
        if pending.is_empty() || !apply_now {
            // Wait for events (with none in hand), or for the linger to be up (with some):
            // the reader's hand-overs wake this thread only while it has none, or while a
            // query waits for one it has not received; a query starting to wait, what
            // the model holds back falling due, or the stop flag end any wait.
            let until = if pending.is_empty() { None } else { lingering };
            let wait = [until, due]
                .into_iter()
                .flatten()
                .min()
                .map_or(STOP_CHECK, |t| {
                    t.saturating_duration_since(Instant::now()).min(STOP_CHECK)
                });
            if pending.is_empty() || awaited.is_some() {
                crossbeam_channel::select! {
                    recv(rx) -> chunk => match chunk {
                        Ok(chunk) => end = chunk.take_into(&mut pending),
                        Err(_) => end = Some(SubscribeError::Closed),
                    },
                    recv(wanted.nudged) -> _ => {},
                    default(wait) => {},
                }
            } else {
                crossbeam_channel::select! {
                    recv(wanted.nudged) -> _ => {},
                    default(wait) => {},
                }
            }
            continue;
        }
        let n = pending.len().min(MAX_BATCH);
        if let Some(last) = pending.get(..n).and_then(|b| b.last()).map(|e| e.position) {
            model.apply_shared(&pending[..n])?;
            applied = Some(Instant::now());
            on_batch(n, last);
            progress.send_replace(model.visible());
            pending.drain(..n);
        }
    }
}

/// What the reader thread hands over at once: the events the subscription had read, then
/// how it ended, if it did.
struct Chunk {
    events: Vec<SharedEvent>,
    end: Option<SubscribeError>,
}

impl Chunk {
    /// Moves the events to `pending`; returns the end.
    fn take_into(mut self, pending: &mut Vec<SharedEvent>) -> Option<SubscribeError> {
        pending.append(&mut self.events);
        self.end
    }
}

/// The reader thread of [`follow_blocking`]: follows the subscription and hands its events
/// over a bounded channel, a chunk at a time. Dropping it stops the thread and waits until
/// it has ended, also when it is waiting for the log's next event.
struct Reader {
    events: Receiver<Chunk>,
    /// Dropped to stop the thread.
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Reader {
    fn start(model: &str, mut sub: Subscription) -> std::io::Result<Self> {
        let (tx, events) = crossbeam_channel::bounded(READ_AHEAD_CHUNKS);
        let (stop, mut stopped) = oneshot::channel::<()>();
        // The subscription waits for new events asynchronously, so that waiting can be
        // abandoned when asked to stop.
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        let thread = std::thread::Builder::new()
            .name(format!("readmodel-{model}-read"))
            .spawn(move || {
                runtime.block_on(async move {
                    loop {
                        let first = tokio::select! {
                            next = sub.next() => next,
                            _ = &mut stopped => return,
                        };
                        let mut chunk = Chunk {
                            events: Vec::new(),
                            end: None,
                        };
                        match first {
                            Ok(e) => chunk.events.push(e),
                            Err(e) => chunk.end = Some(e),
                        }
                        // What the subscription has read already, and what the log
                        // has committed meanwhile (while the model lingered and this
                        // thread waited for room), comes without waiting.
                        while chunk.end.is_none() && chunk.events.len() < MAX_BATCH {
                            if sub.buffered() == 0 && !sub.absorb_ready() {
                                break;
                            }
                            match sub.next().await {
                                Ok(e) => chunk.events.push(e),
                                Err(e) => chunk.end = Some(e),
                            }
                        }
                        let ended = chunk.end.is_some();
                        // Blocks while the channel is full; fails once the receiver is
                        // dropped.
                        if tx.send(chunk).is_err() || ended {
                            return;
                        }
                    }
                });
            })?;
        Ok(Self {
            events,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        // A reader blocked on a full channel is freed by dropping the receiver; one waiting
        // for the log, by the stop signal.
        let (_, closed) = crossbeam_channel::bounded(0);
        drop(std::mem::replace(&mut self.events, closed));
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("a read model's reader thread panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eventlog::{EventData, ExpectedVersion, LogOptions, RocksLog, StreamName};
    use std::sync::Mutex;

    /// Counts what it is given, in batches; lingers as long as it is told.
    struct Counting {
        linger: Duration,
        checkpoint: Option<u64>,
        batches: Batches,
    }

    /// Each batch applied: when, and its events' positions.
    type Batches = Arc<Mutex<Vec<(Instant, Vec<u64>)>>>;

    impl ReadModel for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }
        fn checkpoint(&self) -> Option<u64> {
            self.checkpoint
        }
        fn apply_batch(&mut self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
            let positions: Vec<u64> = events.iter().map(|e| e.position).collect();
            self.checkpoint = positions.last().copied().or(self.checkpoint);
            self.batches
                .lock()
                .unwrap()
                .push((Instant::now(), positions));
            Ok(())
        }
        fn linger(&self) -> Duration {
            self.linger
        }
    }

    fn append(log: &RocksLog, n: usize) -> u64 {
        let stream = StreamName::new("thing-1").unwrap();
        let events = (0..n)
            .map(|i| EventData::new("Happened", 1, vec![u8::try_from(i).unwrap()]))
            .collect();
        log.append_blocking(stream, ExpectedVersion::Any, events)
            .unwrap()
            .last_position
    }

    struct Running {
        visible: watch::Receiver<Option<u64>>,
        wanted: Arc<Wanted>,
        stop: Arc<AtomicBool>,
        batches: Batches,
        thread: JoinHandle<Finished>,
    }

    fn run(log: &Arc<RocksLog>, linger: Duration) -> Running {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let mut model = Counting {
            linger,
            checkpoint: None,
            batches: batches.clone(),
        };
        let (tx, visible) = watch::channel(None);
        let wanted = Arc::new(Wanted::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (store, wanted, stop) = (
                log.clone() as Arc<dyn EventStore>,
                wanted.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                follow_blocking(store, &mut model, &tx, &wanted, &stop, |_, _| {}).unwrap()
            })
        };
        Running {
            visible,
            wanted,
            stop,
            batches,
            thread,
        }
    }

    /// Waits (bounded by a minute, never by a guess at how long it takes) until `position`
    /// is visible.
    fn seen(r: &mut Running, position: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !r.visible.borrow().is_some_and(|p| p >= position) {
            assert!(
                Instant::now() < deadline,
                "position {position} never applied"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn stop(r: Running) -> Finished {
        r.stop.store(true, Ordering::Release);
        r.thread.join().unwrap()
    }

    fn log() -> (tempfile::TempDir, Arc<RocksLog>) {
        let dir = tempfile::tempdir().unwrap();
        let log = RocksLog::open(dir.path().join("log"), LogOptions::default()).unwrap();
        (dir, Arc::new(log))
    }

    fn positions(r: &Running) -> Vec<Vec<u64>> {
        r.batches
            .lock()
            .unwrap()
            .iter()
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// A model lingering for an hour: the first events after a quiet spell are applied at
    /// once; events arriving within the linger wait until a query waits for one of them,
    /// and are then applied together, in one batch.
    #[test]
    fn events_gather_during_the_linger_and_a_waiting_query_has_them_applied_at_once() {
        let (_dir, log) = log();
        let mut r = run(&log, Duration::from_secs(3600));
        let first = append(&log, 1);
        seen(&mut r, first);
        let mut last = first;
        for _ in 0..3 {
            last = append(&log, 2);
        }
        // Nothing of it is applied while the hour runs, however long the log takes to
        // hand it over: a query's wait is what applies it.
        assert_eq!(positions(&r).len(), 1, "applied within the linger");
        r.wanted.want(last);
        seen(&mut r, last);
        assert_eq!(
            positions(&r),
            vec![vec![first], (first + 1..=last).collect()]
        );
        assert_eq!(stop(r), Finished::Stopped);
    }

    /// Events no query waits for are applied once the linger is up, and not before: never
    /// sooner than a linger after the batch before (however late they arrived).
    #[test]
    fn held_events_are_applied_when_the_linger_is_up() {
        let linger = Duration::from_millis(200);
        let (_dir, log) = log();
        let mut r = run(&log, linger);
        let first = append(&log, 1);
        seen(&mut r, first);
        let second = append(&log, 3);
        seen(&mut r, second);
        assert_eq!(positions(&r).concat(), (first..=second).collect::<Vec<_>>());
        let batches = r.batches.lock().unwrap().clone();
        for pair in batches.windows(2) {
            assert!(pair[1].0 >= pair[0].0 + linger, "applied within the linger");
        }
        assert_eq!(stop(r), Finished::Stopped);
    }
}
