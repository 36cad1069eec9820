//! Following the log into a read model.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use eventlog::{EventStore, RecordedEvent, StartFrom, Subscription, SubscriptionTarget};
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

/// Follows `$all` from the model's checkpoint and applies every event, publishing the
/// position reached on `progress` after each batch. Blocks the calling thread: run it on
/// a thread of its own. `on_batch` is told (events in batch, checkpoint) after each one.
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
    let mut batch = Vec::with_capacity(1024);
    loop {
        if stop.load(Ordering::Acquire) {
            return Ok(Finished::Stopped);
        }
        match sub.next_blocking() {
            Ok(e) => batch.push(e),
            Err(eventlog::SubscribeError::Closed) => return Ok(Finished::LogClosed),
            Err(e) => return Err(ProjectionError::Log(e.to_string())),
        }
        while batch.len() < MAX_BATCH && sub.buffered() > 0 {
            match sub.next_blocking() {
                Ok(e) => batch.push(e),
                Err(e) => return Err(ProjectionError::Log(e.to_string())),
            }
        }
        model.apply_batch(&batch)?;
        let last = batch.last().map(|e| e.position).unwrap_or_default();
        on_batch(batch.len(), last);
        progress.send_replace(Some(last));
        batch.clear();
    }
}
