//! On start: every text of the `outbox` category that is not done gets its job back (a
//! retry that was due or falls due later, or an attempt whose outcome a crash lost).
//!
//! The category is read from the start, keeping only texts still in progress (a text's
//! events are in order, so one that is done is forgotten at once); the memory this takes
//! is bounded by the texts in flight, the time by the outbox's history.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::jobs::{self, Step};
use super::records::{OutboxRecord, OutboxState, Pending, OUTBOX_CATEGORY};
use super::Shared;

const PAGE: usize = 1024;

/// Folds the category and starts a job for each unfinished text. Retries reading until
/// the log answers (or is closed).
pub(super) async fn resume_unfinished(shared: &Arc<Shared>) {
    let mut open: HashMap<Uuid, OutboxState> = HashMap::new();
    let mut from = 0;
    let mut pause = Duration::from_millis(50);
    loop {
        let page = match eventlog::store::nonblocking::read_category(
            &shared.ws.store,
            OUTBOX_CATEGORY,
            from,
            PAGE,
        )
        .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "outbox recovery cannot read; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        for record in &page {
            let Ok(id) = record.stream.id().parse::<Uuid>() else {
                continue;
            };
            let Ok(event) = OutboxRecord::decode(record) else {
                tracing::warn!(stream = %record.stream, "undecodable outbox record skipped");
                continue;
            };
            let state = open.entry(id).or_default();
            state.apply(&event);
            if state.pending() == Pending::Nothing && state.prepared.is_some() {
                open.remove(&id);
            }
        }
        match page.last() {
            Some(last) if page.len() == PAGE => from = last.position + 1,
            _ => break,
        }
    }
    let mut resumed = 0;
    for (id, state) in open {
        let (Some(prepared), Some(step)) = (state.prepared.clone(), Step::of(state.pending()))
        else {
            continue;
        };
        tracing::info!(outbox = %id, ?step, "resuming an unfinished text");
        jobs::spawn(shared, id, prepared, step, None);
        resumed += 1;
    }
    if resumed > 0 {
        tracing::info!(resumed, "outbox recovery done");
    }
}
