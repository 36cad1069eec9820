//! On start: every text of the `outbox` category that is not done gets its job back (a
//! retry that was due or falls due later, or an attempt whose outcome a crash lost).
//!
//! The category is read from the low-water mark (checkpoint [`RECOVERY_CHECKPOINT`]), not
//! from the start: every text whose `SmsPrepared` lies below the mark is finished. While
//! the outbox runs, [`keep_low_water_mark`] moves the mark up to the oldest text still open
//! (or to the log's head when none is), so the cost of a start is the texts written since
//! the oldest unfinished one — with a steady flow of texts, the last few minutes — and
//! not every text ever sent. Texts finished meanwhile are folded and forgotten at once, so
//! the memory taken is bounded by the texts in flight.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::jobs::{self, Step};
use super::records::{OutboxState, Pending};
use super::Shared;
use actors::event_codec;
use domain::outbox::{OutboxEvent, OUTBOX_CATEGORY};

/// The position recovery reads the `outbox` category from (a checkpoint slot holding a
/// position, like the process managers' checkpoints).
pub const RECOVERY_CHECKPOINT: &str = "outbox_recovery_from";

/// How often the low-water mark is moved while running.
const MARK_EVERY: Duration = Duration::from_secs(5);

const PAGE: usize = 1024;

async fn saved_mark(shared: &Shared) -> u64 {
    let store = shared.ws.store.clone();
    tokio::task::spawn_blocking(move || store.read_checkpoint_blocking(RECOVERY_CHECKPOINT))
        .await
        .ok()
        .and_then(Result::ok)
        .flatten()
        .unwrap_or(0)
}

/// Folds the category from the low-water mark and starts a job for each unfinished text.
/// Retries reading until the log answers (or is closed).
pub(super) async fn resume_unfinished(shared: &Arc<Shared>) {
    let mut open: HashMap<Uuid, (OutboxState, Option<u64>)> = HashMap::new();
    let mut from = saved_mark(shared).await;
    let start = from;
    let mut read = 0usize;
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
        read += page.len();
        for record in &page {
            let Ok(id) = record.stream.id().parse::<Uuid>() else {
                continue;
            };
            let Ok(event) = event_codec::decode::<OutboxEvent>(record) else {
                tracing::warn!(stream = %record.stream, "undecodable outbox record skipped");
                continue;
            };
            let (state, prepared_at) = open.entry(id).or_default();
            if matches!(event, OutboxEvent::SmsPrepared(_)) {
                *prepared_at = Some(record.position);
            }
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
    for (id, (state, prepared_at)) in open {
        let (Some(prepared), Some(step), Some(at)) = (
            state.prepared.clone(),
            Step::of(state.pending()),
            prepared_at,
        ) else {
            continue;
        };
        tracing::info!(outbox = %id, ?step, "resuming an unfinished text");
        shared.opened(id, at);
        jobs::spawn(shared, id, prepared, step, None);
        resumed += 1;
    }
    tracing::info!(from = start, read, resumed, "outbox recovery done");
    move_low_water_mark(shared, start).await;
}

/// Moves the low-water mark every few seconds while the outbox runs.
pub(super) async fn keep_low_water_mark(shared: Arc<Shared>) {
    let mut saved = saved_mark(&shared).await;
    loop {
        tokio::time::sleep(MARK_EVERY).await;
        saved = move_low_water_mark(&shared, saved).await;
    }
}

/// The least position of an open text's `SmsPrepared`, or the log's head when none is
/// open; saved when it moved up from `saved`. Taken with no preparation in between its
/// append and its entry in `open`.
async fn move_low_water_mark(shared: &Shared, saved: u64) -> u64 {
    let mark = {
        let _quiet = shared.preparing.write().await;
        let head = shared.ws.store.next_position();
        let open = shared.open.lock().map(|o| o.values().min().copied());
        match open {
            Ok(Some(oldest)) => oldest.min(head),
            Ok(None) => head,
            Err(_) => return saved,
        }
    };
    if mark <= saved {
        return saved;
    }
    let store = shared.ws.store.clone();
    let written = tokio::task::spawn_blocking(move || {
        store.write_checkpoint_blocking(RECOVERY_CHECKPOINT, mark)
    })
    .await;
    if matches!(written, Ok(Ok(()))) {
        mark
    } else {
        tracing::warn!(mark, "outbox low-water mark not saved");
        saved
    }
}
