//! The loop every process manager runs: follow a category from the stored checkpoint,
//! handle each event, move the checkpoint only after the handler is done.
//!
//! A handler's failure is either permanent (the event cannot be decoded, the domain refused:
//! trying again cannot help, so it is logged for operators and passed) or transient (an
//! actor was busy or unreachable, storage hiccuped: retried with backoff, never skipped).

use std::future::Future;
use std::time::Duration;

use eventlog::{RecordedEvent, StartFrom, Subscription, SubscriptionTarget};

use crate::workspace::Workspace;

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
    let store = ws.store.clone();
    let saved = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.read_checkpoint_blocking(checkpoint))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten()
    };
    let from = saved.map_or(StartFrom::Beginning, StartFrom::After);
    let target = SubscriptionTarget::Category(category.to_owned());
    let mut sub = match Subscription::new(store.clone(), target, from) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(checkpoint, error = %e, "process manager cannot subscribe");
            return;
        }
    };
    loop {
        let record = match sub.next().await {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(checkpoint, error = %e, "process manager stopped");
                return;
            }
        };
        let position = record.position;
        let mut backoff = Duration::from_millis(50);
        loop {
            match handle(ws.clone(), record.clone()).await {
                Ok(()) => break,
                Err(Failure::Permanent(reason)) => {
                    tracing::error!(checkpoint, position, %reason, "event passed over");
                    break;
                }
                Err(Failure::Transient(reason)) => {
                    tracing::warn!(checkpoint, position, %reason, "handling failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        let store = store.clone();
        let saved = tokio::task::spawn_blocking(move || {
            store.write_checkpoint_blocking(checkpoint, position)
        })
        .await;
        if !matches!(saved, Ok(Ok(()))) {
            tracing::warn!(checkpoint, position, "checkpoint not saved");
        }
    }
}
