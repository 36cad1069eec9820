//! The check that a conversation references an attachment, against the durable index
//! `workers::attachment_refs` keeps.
//!
//! The follower (in `workers`) follows the `conversation` category (checkpoint `attachment_refs`)
//! and, for every `MessagePosted` with attachments and `InboundReceived` with media, appends
//! `AttachmentReferenced { conversation }` to each attachment's stream, with an event id
//! derived from (attachment, conversation): a repeat after a crash writes nothing, and the
//! access check is one lookup of that id ([`attachments::is_referenced`]). On a data
//! directory from before the index, the follower starts from the beginning and fills it.
//!
//! The follower's published progress tells how far the index has got, so that a request for an attachment
//! just posted can wait (bounded) until the index has seen the conversation's newest event
//! instead of answering 404 too early.

use std::sync::Arc;
use std::time::Duration;

use domain::{Aggregate, Conversation, ConversationId};
use eventlog::{Direction, EventStore, StreamName};
pub use workers::attachment_refs::CHECKPOINT;

use crate::carriers::attachments;
use crate::error::ApiError;

/// How long a request waits for the index to catch up with a conversation.
const CATCH_UP: Duration = Duration::from_secs(3);

/// Whether `conversation` references attachment `id`. When the index has not yet seen the
/// conversation's newest event (it was just written, or the index is filling after an
/// upgrade), waits up to a few seconds for it.
///
/// # Errors
/// 503 `view_behind` when the index is still behind after the wait; internal errors.
pub async fn references(
    store: &Arc<dyn EventStore>,
    progress: &eventlog::Progress,
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
    if tokio::time::timeout(CATCH_UP, progress.reached(CHECKPOINT, head))
        .await
        .is_err()
    {
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "view_behind",
            "the attachment index is catching up; try again",
        ));
    }
    attachments::is_referenced(store, id, conversation).await
}
