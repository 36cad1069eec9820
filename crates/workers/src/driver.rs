//! The loop every process manager runs: follow a category from the stored checkpoint,
//! handle each event, move the checkpoint only after the handler is done, and publish how
//! far it got under the checkpoint's name in the workspace's [`eventlog::Progress`] (after
//! each event or batch handled, and whenever it waits with nothing left to handle, so a
//! follower whose category is quiet still reaches the log's head).
//!
//! A handler's failure is either permanent (the event cannot be decoded, the domain refused:
//! trying again cannot help, so it is logged for operators and passed) or transient (an
//! actor was busy or unreachable, storage hiccuped: retried with backoff, never skipped).
//!
//! [`run`] handles one event at a time. [`run_concurrent`] takes what the subscription has
//! read already (up to a batch), handles the events of different streams at once and
//! those of one stream in order: for handlers whose every event waits on a durable write,
//! so that writes share fsyncs.
//!
//! Both save the checkpoint at most once per [`SAVE_INTERVAL`] (a [`Saver`]), and once
//! they wait idle with something handled and unsaved, when that interval is up; never per
//! event or per batch. A checkpoint save is a write to the log's database, which waits for
//! the group commit in progress (its fsync): saved after each small live batch, it cost a
//! blocking thread and a write per follower per batch. A crash repeats at most the events
//! handled since the last save (about a second's worth), which handlers tolerate as they
//! tolerate a crash between handling an event and saving it. A graceful shutdown asks them
//! to stop (the workspace's [`actors::workspace::Stopping`]): they save what they have
//! handled and end, without starting on what they have read meanwhile. A log that closes
//! also has everything handled saved first.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use tokio::time::Instant;

use eventlog::{SharedEvent, StartFrom, StreamName, Subscription, SubscriptionTarget};

use actors::workspace::{StopWatch, Workspace};

/// How handling one event went wrong.
#[derive(Debug)]
pub enum Failure {
    /// Trying again cannot help; the event is passed.
    Permanent(String),
    /// Try again after a pause.
    Transient(String),
}

/// Runs `handle` over every event of `category` after `checkpoint`'s stored position,
/// until the log closes.
pub async fn run<F, Fut>(ws: Workspace, checkpoint: &'static str, category: &str, handle: F)
where
    F: Fn(Workspace, SharedEvent) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let Some(mut sub) = subscribe(&ws, checkpoint, category).await else {
        return;
    };
    let progress = ws.progress.publisher(checkpoint);
    let mut saver = Saver::new(&ws, checkpoint);
    loop {
        let Some(record) = saver.next(&ws, &mut sub).await else {
            return;
        };
        let position = record.position;
        handle_with_retries(&ws, checkpoint, record, &handle).await;
        eventlog::progress::publish(&progress, position);
        saver.handled(&ws, position).await;
    }
}

/// How often a follower saves its checkpoint at most (see the module docs).
pub const SAVE_INTERVAL: Duration = Duration::from_secs(1);

/// When a follower saves its checkpoint: at most once per [`SAVE_INTERVAL`] while it
/// handles events, when the interval is up while it waits idle with something unsaved,
/// when a shutdown asks it to stop, and when its log closes.
struct Saver {
    checkpoint: &'static str,
    /// The last position handled and not saved yet.
    unsaved: Option<u64>,
    /// When the checkpoint may be saved next.
    due: Instant,
    /// The shutdown's request; the follower counts as running while this lives.
    stop: StopWatch,
}

impl Saver {
    fn new(ws: &Workspace, checkpoint: &'static str) -> Self {
        Self {
            checkpoint,
            unsaved: None,
            due: Instant::now() + SAVE_INTERVAL,
            stop: ws.stopping.watch(),
        }
    }

    /// `position` (and everything before it) is handled: saved now if the interval is up.
    async fn handled(&mut self, ws: &Workspace, position: u64) {
        self.unsaved = Some(position);
        if Instant::now() >= self.due {
            self.save(ws).await;
        }
    }

    async fn save(&mut self, ws: &Workspace) {
        if let Some(position) = self.unsaved.take() {
            save_checkpoint(ws, self.checkpoint, position).await;
        }
        self.due = Instant::now() + SAVE_INTERVAL;
    }

    /// The subscription's next event; meanwhile what is unsaved is saved once its interval
    /// is up. `None` once a shutdown asks the follower to stop or the log has closed (what
    /// was handled is then saved).
    async fn next(&mut self, ws: &Workspace, sub: &mut Subscription) -> Option<SharedEvent> {
        // What the subscription has read already comes without waiting: no need to watch
        // for a stop or the interval meanwhile (checked once per event, not raced).
        if sub.buffered() > 0 && !self.stop.is_requested() {
            if let Ok(record) = sub.next().await {
                return Some(record);
            }
        }
        loop {
            let idle_with_unsaved = self.unsaved.is_some() && sub.buffered() == 0;
            // `Subscription::next` is cancel-safe: nothing is lost when another branch wins.
            let next = tokio::select! {
                biased;
                () = self.stop.requested() => {
                    self.save(ws).await;
                    tracing::debug!(checkpoint = self.checkpoint, "process manager stopped for the shutdown");
                    return None;
                }
                next = sub.next() => next,
                () = tokio::time::sleep_until(self.due), if idle_with_unsaved => {
                    self.save(ws).await;
                    continue;
                }
            };
            match next {
                Ok(record) => return Some(record),
                Err(e) => {
                    self.save(ws).await;
                    tracing::info!(checkpoint = self.checkpoint, error = %e, "process manager stopped");
                    return None;
                }
            }
        }
    }
}

/// As [`run`], but up to `max_batch` events already read are handled together: each
/// stream's events in order, different streams' at once. The checkpoint moves only past
/// whole batches.
pub async fn run_concurrent<F, Fut>(
    ws: Workspace,
    checkpoint: &'static str,
    category: &str,
    max_batch: usize,
    handle: F,
) where
    F: Fn(Workspace, SharedEvent) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Failure>> + Send + 'static,
{
    let Some(mut sub) = subscribe(&ws, checkpoint, category).await else {
        return;
    };
    let progress = ws.progress.publisher(checkpoint);
    let mut saver = Saver::new(&ws, checkpoint);
    loop {
        let mut batch = Vec::new();
        loop {
            let Some(record) = saver.next(&ws, &mut sub).await else {
                return;
            };
            batch.push(record);
            if batch.len() >= max_batch.max(1) || sub.buffered() == 0 {
                break;
            }
        }
        let Some(position) = batch.last().map(|r| r.position) else {
            continue;
        };
        let mut by_stream: HashMap<StreamName, Vec<SharedEvent>> = HashMap::new();
        for record in batch {
            by_stream
                .entry(record.stream.clone())
                .or_default()
                .push(record);
        }
        // Each stream's events in order, the streams at once, on this task: most events
        // need no waiting (a follower passing over what it does not handle), so a task
        // spawned per stream would cost a spawn and a wake-up for each to do nothing.
        let mut handling: FuturesUnordered<_> = by_stream
            .into_values()
            .map(|records| {
                let (ws, handle) = (&ws, &handle);
                AssertUnwindSafe(async move {
                    for record in records {
                        handle_with_retries(ws, checkpoint, record, handle).await;
                    }
                })
                .catch_unwind()
            })
            .collect();
        while let Some(done) = handling.next().await {
            if done.is_err() {
                tracing::error!(checkpoint, "process manager handler panicked");
            }
        }
        eventlog::progress::publish(&progress, position);
        saver.handled(&ws, position).await;
    }
}

async fn subscribe(
    ws: &Workspace,
    checkpoint: &'static str,
    category: &str,
) -> Option<Subscription> {
    let store = ws.store.clone();
    let saved = tokio::task::spawn_blocking(move || store.read_checkpoint_blocking(checkpoint))
        .await
        .ok()
        .and_then(Result::ok)
        .flatten();
    let from = saved.map_or(StartFrom::Beginning, StartFrom::After);
    let target = SubscriptionTarget::Category(category.to_owned());
    let progress = ws.progress.publisher(checkpoint);
    if let Some(saved) = saved {
        eventlog::progress::publish(&progress, saved);
    }
    match Subscription::new(ws.store.clone(), target, from) {
        Ok(s) => Some(s.with_progress(progress)),
        Err(e) => {
            tracing::error!(checkpoint, error = %e, "process manager cannot subscribe");
            None
        }
    }
}

/// Handles one event: a permanent failure is logged and passed, a transient one retried.
async fn handle_with_retries<F, Fut>(
    ws: &Workspace,
    checkpoint: &'static str,
    record: SharedEvent,
    handle: &F,
) where
    F: Fn(Workspace, SharedEvent) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let position = record.position;
    let mut backoff = Duration::from_millis(50);
    loop {
        match handle(ws.clone(), record.clone()).await {
            Ok(()) => return,
            Err(Failure::Permanent(reason)) => {
                tracing::error!(checkpoint, position, %reason, "event passed over");
                return;
            }
            Err(Failure::Transient(reason)) => {
                tracing::warn!(checkpoint, position, %reason, "handling failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn save_checkpoint(ws: &Workspace, checkpoint: &'static str, position: u64) {
    let store = ws.store.clone();
    let saved =
        tokio::task::spawn_blocking(move || store.write_checkpoint_blocking(checkpoint, position))
            .await;
    if !matches!(saved, Ok(Ok(()))) {
        tracing::warn!(checkpoint, position, "checkpoint not saved");
    }
}
