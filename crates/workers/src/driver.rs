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
//! [`run`] handles one event at a time and saves the checkpoint after the events the
//! subscription had read already (at most [`SAVE_EVERY`]). [`run_concurrent`] takes what the subscription has
//! read already (up to a batch), handles the events of different streams at once and
//! those of one stream in order, and moves the checkpoint after the whole batch: for
//! handlers whose every event waits on a durable write, so that writes share fsyncs.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use eventlog::{RecordedEvent, StartFrom, StreamName, Subscription, SubscriptionTarget};

use actors::workspace::Workspace;

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
    F: Fn(Workspace, RecordedEvent) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let Some(mut sub) = subscribe(&ws, checkpoint, category).await else {
        return;
    };
    let progress = ws.progress.publisher(checkpoint);
    // Handled, not saved yet: (position, how many events).
    let mut unsaved: Option<(u64, usize)> = None;
    loop {
        let record = match sub.next().await {
            Ok(r) => r,
            Err(e) => {
                if let Some((position, _)) = unsaved {
                    save_checkpoint(&ws, checkpoint, position).await;
                }
                tracing::info!(checkpoint, error = %e, "process manager stopped");
                return;
            }
        };
        let position = record.position;
        handle_with_retries(&ws, checkpoint, record, &handle).await;
        eventlog::progress::publish(&progress, position);
        let count = unsaved.map_or(0, |(_, n)| n) + 1;
        if sub.buffered() == 0 || count >= SAVE_EVERY {
            save_checkpoint(&ws, checkpoint, position).await;
            unsaved = None;
        } else {
            unsaved = Some((position, count));
        }
    }
}

/// [`run`] saves its checkpoint once nothing more is read already, and at least every this
/// many events: under load one write per batch, not per event. A crash repeats at most
/// the events handled since the last save, which handlers tolerate as they tolerate a
/// crash between handling an event and saving it.
pub const SAVE_EVERY: usize = 256;

/// As [`run`], but up to `max_batch` events already read are handled together: each
/// stream's events in order, different streams' at once. The checkpoint moves after the
/// whole batch.
pub async fn run_concurrent<F, Fut>(
    ws: Workspace,
    checkpoint: &'static str,
    category: &str,
    max_batch: usize,
    handle: F,
) where
    F: Fn(Workspace, RecordedEvent) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Failure>> + Send + 'static,
{
    let Some(mut sub) = subscribe(&ws, checkpoint, category).await else {
        return;
    };
    let handle = Arc::new(handle);
    let progress = ws.progress.publisher(checkpoint);
    loop {
        let mut batch = Vec::new();
        loop {
            match sub.next().await {
                Ok(r) => batch.push(r),
                Err(e) => {
                    tracing::info!(checkpoint, error = %e, "process manager stopped");
                    return;
                }
            }
            if batch.len() >= max_batch.max(1) || sub.buffered() == 0 {
                break;
            }
        }
        let Some(position) = batch.last().map(|r| r.position) else {
            continue;
        };
        let mut by_stream: HashMap<StreamName, Vec<RecordedEvent>> = HashMap::new();
        for record in batch {
            by_stream
                .entry(record.stream.clone())
                .or_default()
                .push(record);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (_, records) in by_stream {
            let (ws, handle) = (ws.clone(), handle.clone());
            tasks.spawn(async move {
                for record in records {
                    handle_with_retries(&ws, checkpoint, record, &*handle).await;
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done {
                tracing::error!(checkpoint, error = %e, "process manager task failed");
            }
        }
        save_checkpoint(&ws, checkpoint, position).await;
        eventlog::progress::publish(&progress, position);
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
    record: RecordedEvent,
    handle: &F,
) where
    F: Fn(Workspace, RecordedEvent) -> Fut,
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
