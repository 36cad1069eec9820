//! Following the log into a read model.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

use eventlog::{
    EventStore, RecordedEvent, StartFrom, SubscribeError, Subscription, SubscriptionTarget,
};
use tokio::sync::watch;

use crate::error::ProjectionError;

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
}

/// Why [`follow_blocking`] returned.
#[derive(Debug, PartialEq, Eq)]
pub enum Finished {
    /// Asked to stop.
    Stopped,
    /// The log closed (shut down, or a read-only log fully read).
    LogClosed,
}

/// Events read ahead of the model at most (the reader thread waits beyond that).
pub const READ_AHEAD: usize = 2 * MAX_BATCH;

/// How often a runner waiting for events looks at its stop flag.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// Follows `$all` from the model's checkpoint and applies every event, publishing the
/// position reached on `progress` after each batch. Blocks the calling thread: run it on
/// a thread of its own. `on_batch` is told (events in batch, checkpoint) after each one.
///
/// A reader thread follows the subscription and hands events over a bounded channel, so
/// reading overlaps applying, and each batch takes every event that arrived while the
/// previous one was being written (up to [`MAX_BATCH`]): a model whose writes are slow
/// (a search index commit) falls behind by at most one write, never by one write per
/// event. `stop` is seen within 100 ms even when no event comes.
///
/// # Errors
/// The model's errors, or storage errors of the log.
pub fn follow_blocking(
    store: Arc<dyn EventStore>,
    model: &mut dyn ReadModel,
    progress: &watch::Sender<Option<u64>>,
    stop: &AtomicBool,
    mut on_batch: impl FnMut(usize, u64),
) -> Result<Finished, ProjectionError> {
    let from = model
        .checkpoint()
        .map_or(StartFrom::Beginning, StartFrom::After);
    progress.send_replace(model.checkpoint());
    let mut sub = Subscription::new(store, SubscriptionTarget::All, from)
        .map_err(|e| ProjectionError::Log(e.to_string()))?
        .with_page_size(4096);
    let (tx, rx) = mpsc::sync_channel::<Result<RecordedEvent, SubscribeError>>(READ_AHEAD);
    // The reader ends at its next event once this function has returned (its send fails),
    // or when the log closes.
    std::thread::Builder::new()
        .name(format!("readmodel-{}-read", model.name()))
        .spawn(move || loop {
            let next = sub.next_blocking();
            let end = next.is_err();
            if tx.send(next).is_err() || end {
                return;
            }
        })?;
    let mut batch = Vec::with_capacity(1024);
    loop {
        if stop.load(Ordering::Acquire) {
            return Ok(Finished::Stopped);
        }
        let mut end = match rx.recv_timeout(STOP_CHECK) {
            Ok(Ok(e)) => {
                batch.push(e);
                None
            }
            Ok(Err(e)) => Some(e),
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => Some(SubscribeError::Closed),
        };
        while end.is_none() && batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Ok(e)) => batch.push(e),
                Ok(Err(e)) => end = Some(e),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => end = Some(SubscribeError::Closed),
            }
        }
        if let Some(last) = batch.last().map(|e| e.position) {
            model.apply_batch(&batch)?;
            on_batch(batch.len(), last);
            progress.send_replace(Some(last));
            batch.clear();
        }
        match end {
            None => {}
            Some(SubscribeError::Closed) => return Ok(Finished::LogClosed),
            Some(e) => return Err(ProjectionError::Log(e.to_string())),
        }
    }
}
