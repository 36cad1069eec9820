//! Following the log into a read model.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use eventlog::{
    EventStore, RecordedEvent, StartFrom, SubscribeError, Subscription, SubscriptionTarget,
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
}

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
/// [`MAX_BATCH`] events; the reader thread waits beyond that).
pub const READ_AHEAD_CHUNKS: usize = 2;

/// How often a runner waiting for events looks at its stop flag.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// Follows `$all` from the model's checkpoint and applies every event, publishing the
/// position queries see ([`ReadModel::visible`]) on `progress` after each batch. Blocks the calling thread: run it on
/// a thread of its own. `on_batch` is told (events in batch, checkpoint) after each one.
///
/// A reader thread follows the subscription and hands events over a bounded channel, so
/// reading overlaps applying. It hands over what the subscription has read at once (a
/// committed batch of the log, a page of storage) as one chunk: one wake-up of the model's
/// thread per chunk, not per event. Each batch takes every event that arrived while the
/// previous one was being written (up to [`MAX_BATCH`]): a model whose writes are slow
/// (a search index commit) falls behind by at most one write, never by one write per
/// event. `stop` is seen within 100 ms even when no event comes, and the function returns
/// only once its reader thread has ended (it no longer touches the log).
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
    // Events received and not applied yet, and how the reader ended, if it has.
    let mut pending: Vec<RecordedEvent> = Vec::with_capacity(1024);
    let mut end: Option<SubscribeError> = None;
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
        if pending.is_empty() && end.is_none() {
            // Waiting for events ends early when what the model holds back is due, or a
            // query starts waiting for some of it.
            let wait = due.map_or(STOP_CHECK, |t| {
                t.saturating_duration_since(Instant::now()).min(STOP_CHECK)
            });
            crossbeam_channel::select! {
                recv(rx) -> chunk => match chunk {
                    Ok(chunk) => end = chunk.take_into(&mut pending),
                    Err(_) => end = Some(SubscribeError::Closed),
                },
                recv(wanted.nudged) -> _ => continue,
                default(wait) => continue,
            }
        }
        while end.is_none() && pending.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(chunk) => end = chunk.take_into(&mut pending),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => end = Some(SubscribeError::Closed),
            }
        }
        let n = pending.len().min(MAX_BATCH);
        if let Some(last) = pending.get(..n).and_then(|b| b.last()).map(|e| e.position) {
            model.apply_batch(&pending[..n])?;
            on_batch(n, last);
            progress.send_replace(model.visible());
            pending.drain(..n);
        }
        if pending.is_empty() {
            match end.take() {
                None => {}
                Some(SubscribeError::Closed) => return Ok(Finished::LogClosed),
                Some(e) => return Err(ProjectionError::Log(e.to_string())),
            }
        }
    }
}

/// What the reader thread hands over at once: the events the subscription had read, then
/// how it ended, if it did.
struct Chunk {
    events: Vec<RecordedEvent>,
    end: Option<SubscribeError>,
}

impl Chunk {
    /// Moves the events to `pending`; returns the end.
    fn take_into(mut self, pending: &mut Vec<RecordedEvent>) -> Option<SubscribeError> {
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
                        // What the subscription has read already comes without waiting.
                        while chunk.end.is_none()
                            && chunk.events.len() < MAX_BATCH
                            && sub.buffered() > 0
                        {
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
