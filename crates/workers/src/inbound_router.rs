//! Routes arrived texts (`inbound-<org>`) into External conversations.
//!
//! For each `SmsArrived`: ask the organization's directory how the number is routed, start
//! the External conversation of (our number, their number) if needed (attached to the
//! inbox when the number routes to one), record the text in it, and for a queue-enabled
//! number hand the conversation to the queue. The message id and the
//! idempotency keys derive from the arrived event's id, so reprocessing is harmless.

use domain::directory::Routing;
use domain::inbound::{InboundEvent, INBOUND_CATEGORY};
use domain::queue::{QueueCommand, QueueRejection};
use domain::{
    CommandMeta, ConversationCommand, ConversationId, ConversationRejection, MessageId, QueueId,
};
use eventlog::RecordedEvent;
use uuid::Uuid;

use crate::driver::{self, Failure};
use actors::core::ExecuteOptions;
use actors::error::{ActorError, CommandError};
use actors::event_codec;
use actors::workspace::Workspace;

/// Checkpoint name of this process manager.
pub const CHECKPOINT: &str = "inbound_router";

/// What happened to one arrived text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    /// Recorded in this conversation.
    Recorded(ConversationId),
    /// Recorded in this conversation and handed to this SMS queue.
    Queued(ConversationId, QueueId),
    /// The number is not one of the organization's: nothing to record.
    UnknownNumber,
    /// The organization's directory does not exist.
    UnknownOrganization,
}

/// Why routing one event failed (it will be retried).
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("undecodable inbound event at position {position}: {reason}")]
    Corrupt { position: u64, reason: String },
    #[error("conversation refused the text: {0}")]
    Rejected(ConversationRejection),
    #[error("queue refused the text: {0}")]
    QueueRejected(QueueRejection),
    #[error("reading the texting thread: {0}")]
    Thread(String),
    #[error(transparent)]
    Actor(#[from] ActorError),
}

impl From<CommandError<ConversationRejection>> for RouteError {
    fn from(e: CommandError<ConversationRejection>) -> Self {
        match e {
            CommandError::Rejected(r) => RouteError::Rejected(r),
            CommandError::Actor(a) => RouteError::Actor(a),
        }
    }
}

/// Routes one arrived text. Safe to call again for the same event.
///
/// # Errors
/// [`RouteError`] when the event cannot be decoded, a conversation refuses it, or an actor
/// cannot be reached.
pub async fn route(ws: &Workspace, record: &RecordedEvent) -> Result<Routed, RouteError> {
    let InboundEvent::SmsArrived(sms) =
        event_codec::decode_opened::<InboundEvent>(record, &ws.sealer)
            .await
            .map_err(|reason| RouteError::Corrupt {
                position: record.position,
                reason,
            })?;
    // Erased between its arrival and now (its customer's data erased on request, or the
    // retention passed while routing was behind): the conversation records it as erased.
    let text = sms.text.shown().to_owned();
    let to = sms.to.clone();
    let route = ws
        .directories
        .query(&sms.org, move |d, version| {
            version.map(|_| d.number(&to).map(|n| n.route))
        })
        .await?;
    let route = match route {
        None => return Ok(Routed::UnknownOrganization),
        Some(None) => return Ok(Routed::UnknownNumber),
        Some(Some(r)) => r,
    };
    let inbox = match route {
        Routing::Inbox(i) => Some(i),
        Routing::User(_) | Routing::Queue(_) => None,
    };
    let id = ConversationId::external(sms.org, &sms.to, &sms.from);
    let meta = CommandMeta::system(sms.org, sms.at_ms);
    let key = |purpose: &[u8]| Uuid::new_v5(&record.event_id, purpose);
    let options = |purpose: &[u8]| ExecuteOptions {
        idempotency_key: Some(key(purpose)),
        metadata: eventlog::Metadata {
            causation_id: Some(record.event_id),
            correlation_id: record.metadata.correlation_id.or(Some(record.event_id)),
            acting_user: None,
        },
    };
    // A mixed group our number texted them from last: the text continues it (see
    // `sms_threads`), unless the group refuses it; then it goes to their External
    // conversation as usual.
    let thread = crate::sms_threads::current(&ws.store, sms.org, &sms.to, &sms.from)
        .await
        .map_err(RouteError::Thread)?;
    if let Some(group) = thread {
        let record_inbound = ConversationCommand::RecordInbound {
            message_id: MessageId::from_uuid(key(b"message")),
            from: sms.from.clone(),
            to: sms.to.clone(),
            text: text.clone(),
            media: sms.media.clone(),
            routed_to_inbox: None,
        };
        match ws
            .conversations
            .execute(&group, meta.issue(record_inbound), options(b"record"))
            .await
        {
            Ok(_) => return Ok(Routed::Recorded(group)),
            Err(CommandError::Rejected(r)) => {
                tracing::info!(%group, rejection = %r, "text not taken by its thread's group");
            }
            Err(CommandError::Actor(e)) => return Err(e.into()),
        }
    }
    let start = ConversationCommand::StartExternal {
        id,
        our: sms.to.clone(),
        their: sms.from.clone(),
        inbox,
        facts: Default::default(),
    };
    ws.conversations
        .execute(&id, meta.issue(start), options(b"start"))
        .await?;
    let record_inbound = ConversationCommand::RecordInbound {
        message_id: MessageId::from_uuid(key(b"message")),
        from: sms.from,
        to: sms.to,
        text,
        media: sms.media,
        routed_to_inbox: inbox,
    };
    ws.conversations
        .execute(&id, meta.issue(record_inbound), options(b"record"))
        .await?;
    if let Routing::Queue(queue) = route {
        // The history stays in the conversation; the queue decides who handles it: a new
        // interaction waits, a follow-up on a claimed one goes to its claimer.
        let enqueue = QueueCommand::Enqueue { conversation: id };
        ws.queues
            .execute(&queue, meta.issue(enqueue), options(b"enqueue"))
            .await
            .map_err(|e| match e {
                CommandError::Rejected(r) => RouteError::QueueRejected(r),
                CommandError::Actor(a) => RouteError::Actor(a),
            })?;
        return Ok(Routed::Queued(id, queue));
    }
    Ok(Routed::Recorded(id))
}

/// Runs the router until the log closes: from the stored checkpoint, every arrived text is
/// routed and then checkpointed. A failure is retried with backoff, never skipped, unless
/// retrying cannot help (undecodable, refused by the domain).
pub async fn run(ws: Workspace) {
    driver::run(ws, CHECKPOINT, INBOUND_CATEGORY, |ws, record| async move {
        match route(&ws, &record).await {
            Ok(outcome) => {
                tracing::debug!(position = record.position, ?outcome, "inbound text routed");
                Ok(())
            }
            Err(
                e @ (RouteError::Corrupt { .. }
                | RouteError::Rejected(_)
                | RouteError::QueueRejected(_)),
            ) => Err(Failure::Permanent(e.to_string())),
            Err(e) => Err(Failure::Transient(e.to_string())),
        }
    })
    .await;
}
