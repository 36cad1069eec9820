//! Which events of the log become which notifications, and what their bodies say.
//!
//! Every body carries `type`, `organization_id`, `at_ms` (when it happened) and
//! `position` (the causing event's place in the log, increasing), plus the fields below;
//! the queueing adds `delivery_id`.

use domain::conversation::{Conversation, ConversationEvent, DeliveryStatus};
use domain::directory::Routing;
use domain::queue::{Queue, QueueEvent};
use domain::{ConversationId, Directory, InboxId, OrgId, PhoneNumber, QueueId, UserId};
use eventlog::{RecordedEvent, SharedRecord};
use serde_json::{json, Value};

use crate::driver::Failure;
use actors::Workspace;
use domain::queue::CloseReason;

use super::{load, Endpoint};

/// The notifications an endpoint may subscribe to.
pub const EVENTS: &[&str] = &[
    // A customer's text reached one of our numbers.
    "message.inbound",
    // A text of ours to customers: a teammate's message or an auto reply.
    "message.sent",
    // The carrier's news of a text of ours (queued, sent, delivered, failed, …).
    "delivery.updated",
    // A customer's text, for the desk phone of each holder of the number who asked.
    "desk_phone.sms",
    // An inbox conversation was assigned (Assign to Me) or transferred.
    "conversation.assigned",
    // An inbox conversation went back to Unassigned.
    "conversation.returned",
    // An inbox conversation was marked Done.
    "conversation.done",
    // A Done inbox conversation reopened on the customer's text.
    "conversation.reopened",
    // Queues: an interaction waits, is claimed, released, transferred or closed.
    "queue.queued",
    "queue.claimed",
    "queue.released",
    "queue.transferred",
    "queue.closed",
];

/// One notification of an event: its type, who it is for (empty: the organization) and
/// its body.
pub(super) struct Notice {
    pub event: &'static str,
    pub recipient: Vec<u8>,
    pub body: Value,
    /// The key of the message text the body quotes: the delivery stores it sealed.
    pub key: Option<domain::TextKey>,
}

impl Notice {
    fn new(
        event: &'static str,
        org: OrgId,
        record: &RecordedEvent,
        at_ms: u64,
        fields: Value,
    ) -> Self {
        let mut body = json!({
            "type": event,
            "organization_id": org,
            "position": record.position,
            "at_ms": at_ms,
        });
        if let (Some(b), Value::Object(f)) = (body.as_object_mut(), fields) {
            b.extend(f);
        }
        Self {
            event,
            recipient: Vec::new(),
            body,
            key: None,
        }
    }
}

/// The conversation event types that notify.
const CONVERSATION_TYPES: [&str; 8] = [
    "InboundReceived",
    "MessagePosted",
    "AutoReplyPosted",
    "DeliveryUpdated",
    "ConversationAssigned",
    "ConversationTransferred",
    "ReturnedToInbox",
    "MarkedDone",
];

fn status_name(s: &DeliveryStatus) -> &'static str {
    match s {
        DeliveryStatus::Requested => "requested",
        DeliveryStatus::Queued => "queued",
        DeliveryStatus::Sent => "sent",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Failed { .. } => "failed",
        DeliveryStatus::Undelivered { .. } => "undelivered",
    }
}

fn numbers(list: &[&PhoneNumber]) -> Vec<String> {
    list.iter().map(|n| n.to_string()).collect()
}

/// The organization an event belongs to, its endpoints, and the notifications they take.
pub(super) type Notices = Option<(OrgId, Vec<Endpoint>, Vec<Notice>)>;

/// The types some endpoint takes.
fn subscribed(endpoints: &[Endpoint]) -> Vec<String> {
    endpoints
        .iter()
        .flat_map(|e| e.events.iter().cloned())
        .collect()
}

/// Conversations the follower has learned have no business number (direct messages and
/// channels: a conversation's kind never changes). Their messages notify nothing, so
/// they are passed on their stream name alone: no text opened, no actor asked. Most
/// messages are internal chat.
#[derive(Default)]
pub(super) struct InternalChats(std::sync::Mutex<std::collections::HashSet<ConversationId>>);

/// Internal conversations remembered at most; beyond, the set starts over (a forgotten
/// one costs one actor query again).
const INTERNAL_KEPT: usize = 100_000;

impl InternalChats {
    fn contains(&self, id: &ConversationId) -> bool {
        self.0.lock().is_ok_and(|set| set.contains(id))
    }

    fn learn(&self, id: ConversationId) {
        if let Ok(mut set) = self.0.lock() {
            if set.len() >= INTERNAL_KEPT {
                set.clear();
            }
            set.insert(id);
        }
    }
}

/// The notifications of a conversation event.
pub(super) async fn of_conversation(
    ws: &Workspace,
    internal: &InternalChats,
    record: &SharedRecord,
) -> Result<Notices, Failure> {
    let reopened = record.event_type == "ReopenedByInboundText";
    if !CONVERSATION_TYPES.contains(&record.event_type.as_str()) && !reopened {
        return Ok(None);
    }
    let conversation: ConversationId = record
        .stream
        .id()
        .parse()
        .map_err(|_| Failure::Permanent(format!("not a conversation: {}", record.stream)))?;
    let a_message = matches!(
        record.event_type.as_str(),
        "MessagePosted" | "InboundReceived"
    );
    if a_message && internal.contains(&conversation) {
        return Ok(None);
    }
    let event = actors::event_codec::conversation_opened(record, &ws.sealer)
        .await
        .map_err(Failure::Permanent)?;
    // A text quoted in a body makes the body the customer's data too.
    let text_key = match &*event {
        ConversationEvent::InboundReceived(m) => m.text.key().cloned(),
        ConversationEvent::MessagePosted(m) => m.text.key().cloned(),
        ConversationEvent::AutoReplyPosted(m) => m.text.key().cloned(),
        _ => None,
    };
    let header = ws
        .conversations
        .query(&conversation, |c: &Conversation, _| {
            c.header().map(|h| {
                (
                    h.org,
                    h.kind.our_number().cloned(),
                    h.kind
                        .external_numbers()
                        .into_iter()
                        .cloned()
                        .collect::<Vec<_>>(),
                    c.inbox().map(|a| a.inbox),
                )
            })
        })
        .await
        .map_err(|e| Failure::Transient(e.to_string()))?;
    let Some((org, our, theirs, inbox)) = header else {
        return Ok(None);
    };
    // Internal chat notifies nothing: no read of the endpoints for it (most messages).
    let texts_customers = our.is_some();
    if !texts_customers {
        internal.learn(conversation);
    }
    let notifies = match &*event {
        ConversationEvent::InboundReceived(_) | ConversationEvent::MessagePosted(_) => {
            texts_customers
        }
        _ => true,
    };
    if !notifies {
        return Ok(None);
    }
    let (endpoints, _) = load(&ws.store, org)
        .await
        .map_err(|e| Failure::Transient(e.to_string()))?;
    let wanted = subscribed(&endpoints);
    let wanted = |e: &str| wanted.iter().any(|w| w == e);
    if endpoints.is_empty() {
        return Ok(None);
    }
    let theirs: Vec<&PhoneNumber> = theirs.iter().collect();
    let our_s = our.as_ref().map(ToString::to_string);
    let inbox_fields =
        |inbox: Option<InboxId>| json!({ "conversation_id": conversation, "inbox_id": inbox });
    let mut notices = Vec::new();
    let mut add = |event: &'static str, at_ms: u64, fields: Value| {
        let mut fields = fields;
        fields["conversation_id"] = json!(conversation);
        notices.push(Notice::new(event, org, record, at_ms, fields));
    };
    match &*event {
        ConversationEvent::InboundReceived(m) => {
            let Some(our) = our.clone() else {
                return Ok(None);
            };
            add(
                "message.inbound",
                m.at_ms,
                json!({
                    "message_id": m.message_id,
                    "from": m.from.as_str(),
                    "to": our.as_str(),
                    "text": m.text.shown(),
                    "erased": m.text.is_erased(),
                    "attachments": m.media.len(),
                }),
            );
            if wanted("desk_phone.sms") {
                for (user, extension) in desk_phones(ws, org, &our).await? {
                    let mut n = Notice::new(
                        "desk_phone.sms",
                        org,
                        record,
                        m.at_ms,
                        json!({
                            "user_id": user,
                            "extension": extension,
                            "conversation_id": conversation,
                            "from": m.from.as_str(),
                            "to": our.as_str(),
                            "text": m.text.shown(),
                            "erased": m.text.is_erased(),
                        }),
                    );
                    n.recipient = user.as_uuid().as_bytes().to_vec();
                    notices.push(n);
                }
            }
        }
        ConversationEvent::MessagePosted(m) if our.is_some() => add(
            "message.sent",
            m.at_ms,
            json!({
                "message_id": m.message_id,
                "author_id": m.author,
                "auto_reply": false,
                "from": our_s,
                "to": numbers(&theirs),
                "text": m.text.shown(),
                "erased": m.text.is_erased(),
                "attachments": m.attachments.len(),
            }),
        ),
        ConversationEvent::AutoReplyPosted(m) => add(
            "message.sent",
            m.at_ms,
            json!({
                "message_id": m.message_id,
                "author_id": null,
                "auto_reply": true,
                "from": m.from.as_str(),
                "to": numbers(&theirs),
                "text": m.text.shown(),
                "erased": m.text.is_erased(),
                "attachments": 0,
            }),
        ),
        ConversationEvent::DeliveryUpdated(d) => {
            let reason = match &d.status {
                DeliveryStatus::Failed { reason } | DeliveryStatus::Undelivered { reason } => d
                    .error_code
                    .as_deref()
                    .and_then(carrier::error_codes::describe)
                    .map(str::to_owned)
                    .or_else(|| Some(reason.clone())),
                _ => None,
            };
            add(
                "delivery.updated",
                d.at_ms,
                json!({
                    "message_id": d.message_id,
                    "to": d.to.as_str(),
                    "status": status_name(&d.status),
                    "error_code": d.error_code,
                    "reason": reason,
                    "carrier_message_id": d.carrier_message_id,
                }),
            );
        }
        ConversationEvent::ConversationAssigned(a) => {
            let mut f = inbox_fields(inbox);
            f["how"] = json!("assigned");
            f["assigned_to"] = json!(a.to);
            f["previous_assignee"] = json!(a.taken_from);
            f["by_user_id"] = json!(a.to);
            add("conversation.assigned", a.at_ms, f);
        }
        ConversationEvent::ConversationTransferred(t) => {
            let mut f = inbox_fields(inbox);
            f["how"] = json!("transferred");
            f["assigned_to"] = json!(t.to);
            f["previous_assignee"] = json!(t.from);
            f["by_user_id"] = json!(t.by.user_id());
            add("conversation.assigned", t.at_ms, f);
        }
        ConversationEvent::ReturnedToInbox(r) => {
            let mut f = inbox_fields(inbox);
            f["previous_assignee"] = json!(r.from);
            f["by_user_id"] = json!(r.by.user_id());
            add("conversation.returned", r.at_ms, f);
        }
        ConversationEvent::MarkedDone(d) => {
            let mut f = inbox_fields(inbox);
            f["previous_assignee"] = json!(d.was_assigned_to);
            f["by_user_id"] = json!(d.by.user_id());
            add("conversation.done", d.at_ms, f);
        }
        ConversationEvent::ReopenedByInboundText(r) => {
            let mut f = inbox_fields(inbox);
            f["message_id"] = json!(r.message_id);
            add("conversation.reopened", r.at_ms, f);
        }
        _ => {}
    }
    notices.retain(|n| wanted(n.event));
    for n in &mut notices {
        n.key.clone_from(&text_key);
    }
    Ok(Some((org, endpoints, notices)))
}

/// Who holds `our` number and wants texts on their desk phone: (user, extension).
async fn desk_phones(
    ws: &Workspace,
    org: OrgId,
    our: &PhoneNumber,
) -> Result<Vec<(UserId, String)>, Failure> {
    let number = our.clone();
    ws.directories
        .query(&org, move |d: &Directory, _| {
            let Some(n) = d.number(&number) else {
                return Vec::new();
            };
            let mut holders = n.assigned_to.clone();
            if let Routing::User(u) = n.route {
                holders.insert(u);
            }
            holders
                .into_iter()
                .filter_map(|u| d.user(&u).map(|user| (u, user)))
                .filter(|(_, user)| user.settings.text_messages_to_desk_phone)
                .map(|(u, user)| (u, user.extension.to_string()))
                .collect()
        })
        .await
        .map_err(|e| Failure::Transient(e.to_string()))
}

/// The queue event types that notify.
const QUEUE_TYPES: [&str; 5] = [
    "InteractionQueued",
    "InteractionClaimed",
    "InteractionReleased",
    "InteractionTransferred",
    "InteractionClosed",
];

/// The notifications of a queue event.
pub(super) async fn of_queue(ws: &Workspace, record: &RecordedEvent) -> Result<Notices, Failure> {
    if !QUEUE_TYPES.contains(&record.event_type.as_str()) {
        return Ok(None);
    }
    let event = actors::event_codec::decode::<QueueEvent>(record).map_err(Failure::Permanent)?;
    let queue: QueueId = record
        .stream
        .id()
        .parse()
        .map_err(|_| Failure::Permanent(format!("not a queue: {}", record.stream)))?;
    let header = ws
        .queues
        .query(&queue, |q: &Queue, _| {
            q.header()
                .map(|h| (h.org, h.name.clone(), h.number.to_string()))
        })
        .await
        .map_err(|e| Failure::Transient(e.to_string()))?;
    let Some((org, name, number)) = header else {
        return Ok(None);
    };
    let (endpoints, _) = load(&ws.store, org)
        .await
        .map_err(|e| Failure::Transient(e.to_string()))?;
    if endpoints.is_empty() {
        return Ok(None);
    }
    let wanted = subscribed(&endpoints);
    let common = |conversation: ConversationId, interaction: u64| {
        json!({
            "queue_id": queue,
            "queue_name": name,
            "queue_number": number,
            "conversation_id": conversation,
            "interaction": interaction,
        })
    };
    let (event, at_ms, fields) = match event {
        QueueEvent::InteractionQueued(q) => {
            let mut f = common(q.conversation, q.interaction);
            f["wait_deadline_ms"] = json!(q.wait_deadline_ms);
            ("queue.queued", q.at_ms, f)
        }
        QueueEvent::InteractionClaimed(c) => {
            let mut f = common(c.conversation, c.interaction);
            f["agent_id"] = json!(c.agent);
            ("queue.claimed", c.at_ms, f)
        }
        QueueEvent::InteractionReleased(r) => {
            let mut f = common(r.conversation, r.interaction);
            f["by_user_id"] = json!(r.by);
            ("queue.released", r.at_ms, f)
        }
        QueueEvent::InteractionTransferred(t) => {
            let mut f = common(t.conversation, t.interaction);
            f["from_agent_id"] = json!(t.from);
            f["to_agent_id"] = json!(t.to);
            f["by_user_id"] = json!(t.by);
            ("queue.transferred", t.at_ms, f)
        }
        QueueEvent::InteractionClosed(c) => {
            let mut f = common(c.conversation, c.interaction);
            f["by_user_id"] = json!(c.by);
            f["reason"] = json!(close_reason(&c.reason));
            ("queue.closed", c.at_ms, f)
        }
        _ => return Ok(None),
    };
    let notices = if wanted.iter().any(|w| w == event) {
        vec![Notice::new(event, org, record, at_ms, fields)]
    } else {
        Vec::new()
    };
    Ok(Some((org, endpoints, notices)))
}

/// A closed interaction's reason as notifications name it (as the HTTP API does).
fn close_reason(r: &CloseReason) -> &'static str {
    match r {
        CloseReason::ByAgent => "by_agent",
        CloseReason::WaitTimeout => "wait_timeout",
        CloseReason::IdleTimeout => "idle_timeout",
        CloseReason::Overflowed => "overflowed",
    }
}
