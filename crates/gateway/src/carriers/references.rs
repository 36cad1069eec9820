//! The durable index of which conversations reference which attachments.
//!
//! A process manager follows the `conversation` category (checkpoint `attachment_refs`)
//! and, for every `MessagePosted` with attachments and `InboundReceived` with media, appends
//! `AttachmentReferenced { conversation }` to each attachment's stream, with an event id
//! derived from (attachment, conversation): a repeat after a crash writes nothing, and the
//! access check is one lookup of that id ([`attachments::is_referenced`]). On a data
//! directory from before the index, the follower starts from the beginning and fills it.
//!
//! [`IndexProgress`] tells how far the index has got, so that a request for an attachment
//! just posted can wait (bounded) until the index has seen the conversation's newest event
//! instead of answering 404 too early.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actors::process::driver::{self, Failure};
use actors::{event_codec, Workspace};
use domain::{Aggregate, Conversation, ConversationEvent, ConversationId};
use eventlog::{Direction, EventStore, RecordedEvent, StreamName};

use crate::carriers::attachments;
use crate::error::ApiError;

/// Checkpoint of the index follower.
pub const CHECKPOINT: &str = "attachment_refs";

/// How long a request waits for the index to catch up with a conversation.
const CATCH_UP: Duration = Duration::from_secs(3);

/// The first global position the index has not handled yet: every conversation event
/// below it is indexed.
#[derive(Clone, Debug, Default)]
pub struct IndexProgress(Arc<AtomicU64>);

impl IndexProgress {
    pub fn handled_below(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    fn handled(&self, position: u64) {
        self.0.fetch_max(position + 1, Ordering::AcqRel);
    }
}

/// Runs the index follower until the log closes.
pub async fn run(ws: Workspace, progress: IndexProgress) {
    let store = ws.store.clone();
    if let Ok(Ok(Some(saved))) =
        tokio::task::spawn_blocking(move || store.read_checkpoint_blocking(CHECKPOINT)).await
    {
        progress.handled(saved);
    }
    driver::run(
        ws,
        CHECKPOINT,
        <Conversation as Aggregate>::CATEGORY,
        move |ws, record| {
            let progress = progress.clone();
            async move {
                let result = index(&ws.store, &record).await;
                if result.is_ok() {
                    progress.handled(record.position);
                }
                result
            }
        },
    )
    .await;
}

async fn index(store: &Arc<dyn EventStore>, record: &RecordedEvent) -> Result<(), Failure> {
    if record.event_type != "MessagePosted" && record.event_type != "InboundReceived" {
        return Ok(());
    }
    let conversation: ConversationId = record
        .stream
        .id()
        .parse()
        .map_err(|_| Failure::Permanent(format!("not a conversation: {}", record.stream)))?;
    let attached = match event_codec::decode::<ConversationEvent>(record) {
        Ok(ConversationEvent::MessagePosted(m)) => m.attachments,
        Ok(ConversationEvent::InboundReceived(m)) => m.media,
        Ok(_) => return Ok(()),
        Err(e) => return Err(Failure::Permanent(e)),
    };
    for a in attached {
        attachments::record_reference(store, a.id, conversation)
            .await
            .map_err(Failure::Transient)?;
    }
    Ok(())
}

/// Whether `conversation` references attachment `id`. When the index has not yet seen the
/// conversation's newest event (it was just written, or the index is filling after an
/// upgrade), waits up to a few seconds for it.
///
/// # Errors
/// 503 `view_behind` when the index is still behind after the wait; internal errors.
pub async fn references(
    store: &Arc<dyn EventStore>,
    progress: &IndexProgress,
    conversation: ConversationId,
    id: domain::AttachmentId,
) -> Result<bool, ApiError> {
    if attachments::is_referenced(store, id, conversation).await? {
        return Ok(true);
    }
    let stream = StreamName::from_parts(<Conversation as Aggregate>::CATEGORY, conversation)
        .map_err(ApiError::internal)?;
    let newest =
        eventlog::store::nonblocking::read_stream(store, &stream, u64::MAX, Direction::Backward, 1)
            .await
            .map_err(ApiError::from)?;
    let Some(head) = newest.first().map(|r| r.position) else {
        return Ok(false);
    };
    let deadline = tokio::time::Instant::now() + CATCH_UP;
    while progress.handled_below() <= head {
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "view_behind",
                "the attachment index is catching up; try again",
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    attachments::is_referenced(store, id, conversation).await
}
