//! What asks for texts: `SmsRequested` in conversations. Each becomes an outbox stream
//! (`SmsPrepared` + the first `SmsSendStarted`, one append with ids derived from the asking
//! event) and a job.
//!
//! A customer's HELP (an `InboundReceived` whose text is a help keyword, on a number
//! registered for SMS, with a help text configured) is answered first in the conversation:
//! `RecordAutoReply` writes our `AutoReplyPosted` and its `SmsRequested` right after the
//! customer's text, which this follower then sends like any other — so agents and auditors
//! see the answer in the conversation, with its delivery.
//!
//! A call slot is taken *before* the append, so the follower waits while every slot is
//! busy: the number of texts prepared but not yet sent stays bounded, and the checkpoint
//! never runs ahead of what is durable.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use domain::conversation::{
    AttachmentRef, AutoReplyPosted, ConversationKind, InboundReceived, MessagePosted, OptOutKeyword,
};
use domain::{
    Aggregate, CommandMeta, Conversation, ConversationCommand, ConversationEvent, ConversationId,
    Directory, MessageId, OrgId, PhoneNumber, Text,
};
use eventlog::{AppendError, Direction, RecordedEvent, SharedEvent};
use uuid::Uuid;

use super::jobs::{self, Step};
use super::records::{message_outbox_id, outbox_event_id, outbox_stream, record};
use super::Shared;
use crate::driver::{self, Failure};
use actors::core::ExecuteOptions;
use actors::error::CommandError;
use actors::event_codec;
use domain::outbox::{OutboxEvent, SmsOrigin, SmsPrepared, SmsSendStarted};

/// Checkpoint of the `SmsRequested` follower.
pub const REQUESTS_CHECKPOINT: &str = "outbox_requests";

/// Events read back from a conversation to find the message of an `SmsRequested` (the
/// message and its requests are one append, at most a group's externals apart).
const LOOKBACK: usize = 64;
/// Conversations whose organization and last message are remembered (cleared when full).
const MAX_ORGS_CACHED: usize = 10_000;

/// Events handled together (see `driver::run_concurrent`).
const BATCH: usize = 256;

/// A conversation's last `MessagePosted` (or `AutoReplyPosted`) as the log holds it: its
/// requests follow it directly. Kept undecoded, so a message that asks for no text
/// (internal chat, most of them) costs no decoding and no opening of its text.
type Posted = SharedEvent;

#[derive(Default)]
struct Caches {
    last_posted: Mutex<HashMap<ConversationId, Posted>>,
    orgs: Mutex<HashMap<ConversationId, OrgId>>,
}

pub(super) async fn follow_requests(shared: Arc<Shared>) {
    let caches = Arc::new(Caches::default());
    let ws = shared.ws.clone();
    driver::run_concurrent(
        ws,
        REQUESTS_CHECKPOINT,
        <Conversation as Aggregate>::CATEGORY,
        BATCH,
        move |_, record| {
            let (shared, caches) = (shared.clone(), caches.clone());
            async move { on_conversation_event(&shared, &caches, record).await }
        },
    )
    .await;
}

async fn on_conversation_event(
    shared: &Arc<Shared>,
    caches: &Caches,
    record: SharedEvent,
) -> Result<(), Failure> {
    if !matches!(
        record.event_type.as_str(),
        "MessagePosted" | "SmsRequested" | "AutoReplyPosted" | "InboundReceived"
    ) {
        return Ok(());
    }
    let conversation: ConversationId = record
        .stream
        .id()
        .parse()
        .map_err(|_| Failure::Permanent(format!("not a conversation: {}", record.stream)))?;
    if matches!(
        record.event_type.as_str(),
        "MessagePosted" | "AutoReplyPosted"
    ) {
        if let Ok(mut last) = caches.last_posted.lock() {
            if last.len() >= MAX_ORGS_CACHED {
                last.clear();
            }
            last.insert(conversation, record);
        }
        return Ok(());
    }
    let event = event_codec::decode_opened::<ConversationEvent>(&record, &shared.ws.sealer)
        .await
        .map_err(Failure::Permanent)?;
    match event {
        ConversationEvent::InboundReceived(m) => {
            answer_help(shared, caches, conversation, &record, &m).await
        }
        ConversationEvent::SmsRequested(r) => {
            request(shared, caches, conversation, &record, r).await
        }
        _ => Ok(()),
    }
}

/// The text (still sealed) and attachments of `r` if it is the message `message_id`.
fn content_of(r: &RecordedEvent, message_id: MessageId) -> Option<(Text, Vec<AttachmentRef>)> {
    if r.event_type != "MessagePosted" && r.event_type != "AutoReplyPosted" {
        return None;
    }
    match event_codec::decode::<ConversationEvent>(r) {
        Ok(ConversationEvent::MessagePosted(MessagePosted {
            message_id: id,
            text,
            attachments,
            ..
        })) if id == message_id => Some((text, attachments)),
        Ok(ConversationEvent::AutoReplyPosted(AutoReplyPosted {
            message_id: id,
            text,
            ..
        })) if id == message_id => Some((text, Vec::new())),
        _ => None,
    }
}

async fn request(
    shared: &Arc<Shared>,
    caches: &Caches,
    conversation: ConversationId,
    record: &RecordedEvent,
    request: domain::conversation::SmsRequested,
) -> Result<(), Failure> {
    // Taken out of the lock before its text is opened (opening may ask the keyring).
    let last = caches
        .last_posted
        .lock()
        .ok()
        .and_then(|last| last.get(&conversation).cloned());
    let cached = last.and_then(|r| content_of(&r, request.message_id));
    let (mut body, media) = match cached {
        Some(found) => found,
        None => message_content(shared, record, request.message_id).await?,
    };
    shared.ws.sealer.open(&mut body).await;
    let org = org_of(shared, caches, conversation).await?;
    // The customer's answer will continue the conversation we text them from now.
    crate::sms_threads::note(
        &shared.ws.store,
        org,
        &request.from,
        &request.to,
        conversation,
        record.event_id,
        request.at_ms,
    )
    .await
    .map_err(Failure::Transient)?;
    let id = message_outbox_id(request.message_id, &request.to);
    let prepared = SmsPrepared {
        org,
        origin: SmsOrigin::Message {
            conversation,
            message_id: request.message_id,
            requested_event: record.event_id,
        },
        from: request.from,
        to: request.to,
        body,
        media,
        at_ms: request.at_ms,
    };
    prepare(shared, id, prepared).await
}

/// Writes the prepared text and its first attempt, then starts its job; if they were
/// written before, makes sure the text's job runs.
async fn prepare(shared: &Arc<Shared>, id: Uuid, prepared: SmsPrepared) -> Result<(), Failure> {
    let permit = shared
        .calls
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| Failure::Transient("outbox closed".into()))?;
    let first = OutboxEvent::SmsSendStarted(SmsSendStarted {
        attempt: 1,
        at_ms: prepared.at_ms,
    });
    // The log keeps the text sealed, like the message it sends (the job has it readable).
    let mut stored = OutboxEvent::SmsPrepared(prepared.clone());
    shared
        .ws
        .sealer
        .seal_event(&mut stored)
        .await
        .map_err(|e| Failure::Transient(e.to_string()))?;
    let events = [
        record(&stored, outbox_event_id(id, "prepared")),
        record(&first, outbox_event_id(id, "attempt-1")),
    ]
    .into_iter()
    .collect::<Result<Vec<_>, _>>()
    .map_err(Failure::Permanent)?;
    // Until the text is in `open`, the low-water mark cannot pass it.
    let preparing = shared.preparing.read().await;
    match jobs::append(shared, &outbox_stream(id), events).await {
        Ok(r) if !r.deduplicated => {
            shared.opened(id, r.first_position);
            drop(preparing);
            let step = Step::Send {
                attempt: 1,
                started: true,
            };
            jobs::spawn(shared, id, prepared, step, Some(permit));
            Ok(())
        }
        Ok(_)
        | Err(AppendError::EventIdReused { .. })
        | Err(AppendError::PartialDuplicate { .. }) => {
            drop(preparing);
            drop(permit);
            jobs::ensure_running(shared, id)
                .await
                .map_err(Failure::Transient)
        }
        Err(e) => Err(Failure::Transient(e.to_string())),
    }
}

/// The text (still sealed) and attachments of message `message_id`, read back from the
/// conversation.
async fn message_content(
    shared: &Shared,
    record: &RecordedEvent,
    message_id: MessageId,
) -> Result<(Text, Vec<AttachmentRef>), Failure> {
    let mut from = record.version;
    loop {
        let page = eventlog::store::nonblocking::read_stream(
            &shared.ws.store,
            &record.stream,
            from,
            Direction::Backward,
            LOOKBACK,
        )
        .await
        .map_err(|e| Failure::Transient(e.to_string()))?;
        if let Some(found) = page.iter().find_map(|r| content_of(r, message_id)) {
            return Ok(found);
        }
        match page.last() {
            Some(last) if page.len() == LOOKBACK && last.version > 0 => from = last.version - 1,
            _ => {
                return Err(Failure::Permanent(format!(
                    "no MessagePosted for {message_id} before {}@{}",
                    record.stream, record.version
                )))
            }
        }
    }
}

async fn org_of(
    shared: &Shared,
    caches: &Caches,
    conversation: ConversationId,
) -> Result<OrgId, Failure> {
    if let Some(org) = caches
        .orgs
        .lock()
        .ok()
        .and_then(|o| o.get(&conversation).copied())
    {
        return Ok(org);
    }
    let org = shared
        .ws
        .conversations
        .query(&conversation, |c: &Conversation, _| {
            c.header().map(|h| h.org)
        })
        .await
        .map_err(|e| Failure::Transient(e.to_string()))?
        .ok_or_else(|| Failure::Permanent(format!("conversation {conversation} not started")))?;
    if let Ok(mut orgs) = caches.orgs.lock() {
        if orgs.len() >= MAX_ORGS_CACHED {
            orgs.clear();
        }
        orgs.insert(conversation, org);
    }
    Ok(org)
}

/// The id of our automatic answer to the customer's message stored as event `inbound`.
pub fn auto_reply_message_id(inbound: Uuid) -> MessageId {
    MessageId::from_uuid(Uuid::new_v5(&inbound, b"help-reply"))
}

/// A customer's HELP gets the configured help text from the number they texted, recorded
/// in the conversation first (`RecordAutoReply`, idempotent on the inbound event).
async fn answer_help(
    shared: &Arc<Shared>,
    caches: &Caches,
    conversation: ConversationId,
    record: &RecordedEvent,
    inbound: &InboundReceived,
) -> Result<(), Failure> {
    let Some(help_text) = shared.config.help_text.clone() else {
        return Ok(());
    };
    let Some(words) = inbound.text.as_plain() else {
        return Ok(());
    };
    if OptOutKeyword::parse(words) != Some(OptOutKeyword::Help) {
        return Ok(());
    }
    let org = org_of(shared, caches, conversation).await?;
    let Some(our) = our_number(shared, conversation).await? else {
        return Ok(());
    };
    let number = our.clone();
    let registered = shared
        .ws
        .directories
        .query(&org, move |d: &Directory, _| {
            d.number(&number).is_some_and(|n| n.sms_registered)
        })
        .await
        .map_err(|e| Failure::Transient(e.to_string()))?;
    if !registered {
        tracing::info!(%our, "HELP not answered: the number is not registered for SMS");
        return Ok(());
    }
    let command =
        CommandMeta::system(org, inbound.at_ms).issue(ConversationCommand::RecordAutoReply {
            message_id: auto_reply_message_id(record.event_id),
            reply_to: inbound.message_id,
            text: help_text,
        });
    let options = ExecuteOptions {
        idempotency_key: Some(Uuid::new_v5(&record.event_id, b"help-reply-command")),
        metadata: eventlog::Metadata {
            causation_id: Some(record.event_id),
            correlation_id: Some(record.event_id),
            acting_user: None,
        },
    };
    match shared
        .ws
        .conversations
        .execute(&conversation, command, options)
        .await
    {
        Ok(_) => Ok(()),
        Err(CommandError::Rejected(r)) => Err(Failure::Permanent(r.to_string())),
        Err(e) => Err(Failure::Transient(e.to_string())),
    }
}

/// Our number of an External conversation.
async fn our_number(
    shared: &Shared,
    conversation: ConversationId,
) -> Result<Option<PhoneNumber>, Failure> {
    shared
        .ws
        .conversations
        .query(&conversation, |c: &Conversation, _| match c.kind() {
            Some(ConversationKind::External { our, .. }) => Some(our.clone()),
            _ => None,
        })
        .await
        .map_err(|e| Failure::Transient(e.to_string()))
}
