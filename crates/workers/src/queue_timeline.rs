//! Writes each SMS-queue lifecycle step into its conversation's timeline as a system
//! message (queued, claimed by, transferred to, released, closed, timed out), so the
//! conversation's own stream tells an auditor, and its readers, who handled it when.
//! An interaction closed with an automatic reply (the `CloseWithReply` wait-timeout
//! policy) also gets that reply recorded in the conversation as our number's message to
//! the customer (`RecordAutoReply`, answering their newest text), which the outbox sends
//! like any text and whose delivery is recorded.
//! Idempotency keys derive from the queue event's id: a replay after a crash writes nothing
//! twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use domain::conversation::SystemNote;
use domain::queue::QueueEvent;
use domain::{Aggregate, CommandMeta, ConversationCommand, ConversationId, OrgId, Queue, QueueId};
use eventlog::SharedEvent;
use uuid::Uuid;

use crate::driver::{self, Failure};
use actors::core::ExecuteOptions;
use actors::error::CommandError;
use actors::event_codec;
use actors::workspace::Workspace;

/// Checkpoint name of this process manager.
pub const CHECKPOINT: &str = "queue_timeline";

/// The system message a queue event stands for, if any.
pub fn note_of(queue: QueueId, event: &QueueEvent) -> Option<(ConversationId, u64, SystemNote)> {
    Some(match event {
        QueueEvent::InteractionQueued(e) => (e.conversation, e.at_ms, SystemNote::Queued { queue }),
        QueueEvent::InteractionClaimed(e) => (
            e.conversation,
            e.at_ms,
            SystemNote::ClaimedBy {
                queue,
                agent: e.agent,
            },
        ),
        QueueEvent::InteractionTransferred(e) => (
            e.conversation,
            e.at_ms,
            SystemNote::TransferredTo {
                queue,
                from: e.from,
                to: e.to,
            },
        ),
        QueueEvent::InteractionReleased(e) => (
            e.conversation,
            e.at_ms,
            SystemNote::Released { queue, by: e.by },
        ),
        QueueEvent::InteractionClosed(e) => (
            e.conversation,
            e.at_ms,
            SystemNote::Closed {
                queue,
                by: e.by,
                reason: e.reason.clone(),
            },
        ),
        QueueEvent::QueueTimedOut(e) => (
            e.conversation,
            e.at_ms,
            SystemNote::TimedOut {
                queue,
                kind: e.kind,
            },
        ),
        _ => return None,
    })
}

async fn org_of(
    ws: &Workspace,
    orgs: &Mutex<HashMap<QueueId, OrgId>>,
    queue: QueueId,
) -> Result<Option<OrgId>, Failure> {
    if let Some(org) = orgs.lock().ok().and_then(|o| o.get(&queue).copied()) {
        return Ok(Some(org));
    }
    let org = ws
        .queues
        .query(&queue, |q: &Queue, _| q.header().map(|h| h.org))
        .await
        .map_err(|e| Failure::Transient(e.to_string()))?;
    if let (Some(org), Ok(mut orgs)) = (org, orgs.lock()) {
        orgs.insert(queue, org);
    }
    Ok(org)
}

async fn record(
    ws: Workspace,
    orgs: Arc<Mutex<HashMap<QueueId, OrgId>>>,
    record: SharedEvent,
) -> Result<(), Failure> {
    let Ok(queue) = record.stream.id().parse::<QueueId>() else {
        return Err(Failure::Permanent(format!(
            "not a queue stream: {}",
            record.stream
        )));
    };
    let event = event_codec::decode::<QueueEvent>(&record).map_err(Failure::Permanent)?;
    let Some((conversation, at_ms, note)) = note_of(queue, &event) else {
        return Ok(());
    };
    let Some(org) = org_of(&ws, &orgs, queue).await? else {
        return Err(Failure::Permanent(format!("queue {queue} has no header")));
    };
    let meta = CommandMeta::system(org, at_ms);
    let options = |purpose: &[u8]| ExecuteOptions {
        idempotency_key: Some(Uuid::new_v5(&record.event_id, purpose)),
        metadata: eventlog::Metadata {
            causation_id: Some(record.event_id),
            correlation_id: record.metadata.correlation_id.or(Some(record.event_id)),
            acting_user: record.metadata.acting_user.clone(),
        },
    };
    let command = meta.issue(ConversationCommand::RecordSystemMessage { note });
    execute(&ws, conversation, command, options(b"timeline")).await?;
    if let QueueEvent::InteractionClosed(closed) = &event {
        if let Some(text) = closed.auto_reply.clone() {
            let reply_to = ws
                .conversations
                .query(&conversation, |c: &domain::Conversation, _| {
                    c.last_inbound()
                })
                .await
                .map_err(|e| Failure::Transient(e.to_string()))?
                .ok_or_else(|| {
                    Failure::Permanent(format!(
                        "no customer text in {conversation} to answer on close"
                    ))
                })?;
            let message_id =
                domain::MessageId::from_uuid(Uuid::new_v5(&record.event_id, b"close-reply"));
            let command = meta.issue(ConversationCommand::RecordAutoReply {
                message_id,
                reply_to,
                text,
            });
            execute(&ws, conversation, command, options(b"close-reply-command")).await?;
        }
    }
    Ok(())
}

async fn execute(
    ws: &Workspace,
    conversation: ConversationId,
    command: domain::Issued<ConversationCommand>,
    options: ExecuteOptions,
) -> Result<(), Failure> {
    match ws
        .conversations
        .execute(&conversation, command, options)
        .await
    {
        Ok(_) => Ok(()),
        Err(CommandError::Rejected(r)) => Err(Failure::Permanent(r.to_string())),
        Err(CommandError::Actor(a)) => Err(Failure::Transient(a.to_string())),
    }
}

/// Runs until the log closes.
pub async fn run(ws: Workspace) {
    let orgs = Arc::new(Mutex::new(HashMap::new()));
    driver::run(
        ws,
        CHECKPOINT,
        <Queue as Aggregate>::CATEGORY,
        move |ws, r| record(ws, orgs.clone(), r),
    )
    .await;
}
