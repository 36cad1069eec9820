//! Conversations: start a direct or External conversation, post (by SMS/MMS too where the
//! conversation texts: from its number, withheld from numbers that opted out, images
//! resized to fit MMS), read history, mark read.
//!
//! Every route checks, through the conversation's own rules, that the caller may see (or
//! write in) it; a conversation of another organization answers 404 like one that does
//! not exist.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use domain::conversation::{ActorFacts, AttachmentRef, ConversationKind};
use domain::{
    Conversation, ConversationCommand, ConversationEvent, ConversationId, Directory, MessageId,
    OrgId, PhoneNumber, UserId,
};
use eventlog::{Direction, StreamName};
use serde::{Deserialize, Serialize};

use actors::{CommandOutcome, ExecuteOptions};

use crate::app::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::routes::idempotency::{written_as, IdempotencyKey};
use crate::routes::json::ApiJson;
use crate::routes::json::ApiPath;
use crate::routes::json::ApiQuery;

/// Most history items per page.
pub const MAX_PAGE: usize = 200;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartDirect {
    pub with: UserId,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Started {
    pub conversation_id: ConversationId,
    pub position: Option<u64>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    #[serde(default)]
    pub text: String,
    /// Attachment hashes (or ids) from `POST /v1/attachments`. In a conversation that
    /// texts, each must be a JPEG, PNG or GIF, and is resized to fit MMS before it is sent.
    #[serde(default)]
    pub attachments: Vec<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartExternal {
    /// Our business number to text from.
    pub our: String,
    /// The customer's number.
    pub their: String,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Posted {
    pub message_id: MessageId,
    pub position: Option<u64>,
    pub deduplicated: bool,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    pub up_to: u64,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct Page {
    /// Return items older than this cursor (the previous page's `next_before`); omit for
    /// the newest page.
    pub before: Option<u64>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<usize>,
}

/// How far one SMS of a message got.
///
/// Statuses only move forward: `requested` (asked of the carrier) → `queued` (the carrier
/// took it) → `sent` → `delivered`, or `failed` / `undelivered` with the carrier's error
/// code; `withheld` means it was never sent (the recipient texted STOP). A carrier may
/// skip a step — report `delivered` without `sent` first, or a late `sent` after
/// `delivered`, which changes nothing — so a client must not expect every step.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Delivery {
    /// The recipient's number (E.164).
    pub to: String,
    pub status: DeliveryStatusName,
    /// The carrier's error code of a failed or undelivered text (e.g. `30008`).
    pub error_code: Option<String>,
    /// Why it failed, in words (e.g. "Unknown error from the carrier"), for `failed`,
    /// `undelivered` and `withheld`; otherwise `null`.
    pub reason: Option<String>,
    /// When it reached this status.
    pub at_ms: u64,
}

/// The statuses of [`Delivery`], as they are spelled everywhere (history, stream frames,
/// the simulator).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatusName {
    Requested,
    Queued,
    Sent,
    Delivered,
    Failed,
    Undelivered,
    Withheld,
}

impl Delivery {
    /// The API's view of a stored delivery state.
    pub fn of(to: &PhoneNumber, view: &projections::interactions::DeliveryView) -> Self {
        use projections::interactions::DeliveryState as S;
        let status = match view.state {
            S::Requested => DeliveryStatusName::Requested,
            S::Queued => DeliveryStatusName::Queued,
            S::Sent => DeliveryStatusName::Sent,
            S::Delivered => DeliveryStatusName::Delivered,
            S::Failed => DeliveryStatusName::Failed,
            S::Undelivered => DeliveryStatusName::Undelivered,
            S::Withheld => DeliveryStatusName::Withheld,
        };
        let reason = match status {
            DeliveryStatusName::Withheld => {
                Some("The recipient has opted out (texted STOP)".to_owned())
            }
            DeliveryStatusName::Failed | DeliveryStatusName::Undelivered => Some(
                view.error_code
                    .as_deref()
                    .and_then(carrier::error_codes::describe)
                    .map(str::to_owned)
                    .or_else(|| view.reason.clone())
                    .unwrap_or_else(|| {
                        if status == DeliveryStatusName::Failed {
                            "Sending failed".to_owned()
                        } else {
                            "Not delivered".to_owned()
                        }
                    }),
            ),
            _ => None,
        };
        Self {
            to: to.to_string(),
            status,
            error_code: view.error_code.clone(),
            reason,
            at_ms: view.at_ms,
        }
    }
}

/// The timeline item an event shows as, if any (a message's `deliveries` are empty here:
/// the history fills them in, the stream sends `delivery` items as they change).
pub fn item_of(event: ConversationEvent) -> Option<Item> {
    match event {
        ConversationEvent::MessagePosted(m) => Some(Item::Message {
            message_id: m.message_id,
            seq: m.seq,
            author: m.author,
            erased: m.text.is_erased(),
            text: m.text.shown().to_owned(),
            attachments: m.attachments,
            deliveries: Vec::new(),
            at_ms: m.at_ms,
        }),
        ConversationEvent::InboundReceived(m) => Some(Item::Inbound {
            message_id: m.message_id,
            seq: m.seq,
            from: m.from.to_string(),
            erased: m.text.is_erased(),
            text: m.text.shown().to_owned(),
            attachments: m.media,
            at_ms: m.at_ms,
        }),
        ConversationEvent::AutoReplyPosted(m) => Some(Item::AutoReply {
            message_id: m.message_id,
            seq: m.seq,
            from: m.from.to_string(),
            reply_to: m.reply_to,
            erased: m.text.is_erased(),
            text: m.text.shown().to_owned(),
            deliveries: Vec::new(),
            at_ms: m.at_ms,
        }),
        ConversationEvent::MessagesRead(m) => Some(Item::Read {
            user: m.user,
            up_to: m.up_to,
            at_ms: m.at_ms,
        }),
        ConversationEvent::SystemMessageRecorded(m) => Some(Item::System {
            text: projections::interactions::model::system_text(&m.note),
            note: (&m.note).into(),
            at_ms: m.at_ms,
        }),
        ConversationEvent::CallStarted(c) => Some(Item::CallStarted {
            call_id: c.call,
            media: c.media.into(),
            by: c.by,
            at_ms: c.at_ms,
        }),
        ConversationEvent::CallEnded(c) => Some(Item::CallEnded {
            call_id: c.call,
            by: c.by,
            at_ms: c.at_ms,
        }),
        ConversationEvent::DeliveryUpdated(_) => {
            let (message_id, to, view) =
                projections::interactions::DeliveryView::from_event(&event)?;
            Some(Item::Delivery {
                message_id,
                delivery: Delivery::of(&to, &view),
            })
        }
        // An inbox conversation's steps and a channel's membership: system items.
        _ => crate::routes::wire::Note::of_step(&event).map(|(note, at_ms)| Item::System {
            text: note.step_text(),
            note,
            at_ms,
        }),
    }
}

/// One timeline item.
#[derive(Debug, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[schemars(rename = "TimelineItem")]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Item {
    Message {
        message_id: MessageId,
        seq: u64,
        author: UserId,
        text: String,
        /// The text is erased (one customer's data on request, or the organization's
        /// retention): `text` is then `[erased]`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        erased: bool,
        /// Fetch with `GET /v1/attachments/{id}?conversation=<this conversation>`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<AttachmentRef>,
        /// In a conversation that texts: how far its SMS to each external recipient got,
        /// as of the history read (live changes come as `delivery` items on the stream).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        deliveries: Vec<Delivery>,
        at_ms: u64,
    },
    Inbound {
        message_id: MessageId,
        seq: u64,
        from: String,
        text: String,
        /// The text is erased (one customer's data on request, or the organization's
        /// retention): `text` is then `[erased]`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        erased: bool,
        /// MMS media, fetched like a message's attachments.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<AttachmentRef>,
        at_ms: u64,
    },
    /// Our number's automatic answer (the HELP text) to the customer's `reply_to`, sent
    /// by SMS like any message (its delivery is recorded).
    AutoReply {
        message_id: MessageId,
        seq: u64,
        from: String,
        reply_to: MessageId,
        text: String,
        /// The text is erased (one customer's data on request, or the organization's
        /// retention): `text` is then `[erased]`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        erased: bool,
        /// How far its SMS got, as for a message.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        deliveries: Vec<Delivery>,
        at_ms: u64,
    },
    Read {
        user: UserId,
        up_to: u64,
        at_ms: u64,
    },
    /// A queue lifecycle step: `note` says which and who (e.g.
    /// `{"type": "claimed_by", "queue": …, "agent": …}`), `text` the words to show.
    System {
        note: crate::routes::wire::Note,
        text: String,
        at_ms: u64,
    },
    /// A participant started a call or video from the conversation (activity only: no
    /// media pass through Switchboard). End it with `POST .../calls/{call_id}/end`.
    CallStarted {
        call_id: domain::CallId,
        media: CallMediaIn,
        by: UserId,
        at_ms: u64,
    },
    CallEnded {
        call_id: domain::CallId,
        by: UserId,
        at_ms: u64,
    },
    /// (Stream frames only.) An SMS of message `message_id` moved on: its new state, as
    /// a message's `deliveries` show it. The history carries the current state on the
    /// message instead.
    Delivery {
        message_id: MessageId,
        #[serde(flatten)]
        delivery: Delivery,
    },
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct History {
    pub items: Vec<Item>,
    /// Pass as `before` for the next (older) page; `None` at the start.
    pub next_before: Option<u64>,
}

fn not_found() -> ApiError {
    ApiError::not_found("conversation_not_found", "no such conversation")
}

/// Ensures `caller` may see the conversation; 404 otherwise (whether it exists or not).
pub(crate) async fn visible(
    state: &AppState,
    caller: &Authenticated,
    id: ConversationId,
) -> Result<(), ApiError> {
    viewed(state, caller, id).await.map(|_| ())
}

/// As [`visible`], answering with what the caller's commands need: their facts and the
/// conversation's kind. The rule is `domain::visibility`: one look at the conversation
/// decides an internal one in place (its members; nothing copied), and gives an External
/// one's seat, whose roles are then looked up (`routes::facts::facts_of`).
pub(crate) async fn viewed(
    state: &AppState,
    caller: &Authenticated,
    id: ConversationId,
) -> Result<(ActorFacts, ConversationKind), ApiError> {
    /// What one look at the conversation tells.
    enum Look {
        Hidden,
        Seen(ConversationKind),
        NeedsRoles(ConversationKind, domain::visibility::Seat),
    }
    let (org, user) = (caller.org, caller.user);
    let look = state
        .ws
        .conversations
        .query(&id, move |c: &Conversation, _| {
            let Some(header) = c.header().filter(|h| h.org == org) else {
                return Look::Hidden;
            };
            match c.audience_without_roles(user) {
                Some(true) => Look::Seen(header.kind.clone()),
                Some(false) => Look::Hidden,
                None => c.seat().map_or(Look::Hidden, |seat| {
                    Look::NeedsRoles(header.kind.clone(), seat)
                }),
            }
        })
        .await?;
    let (kind, seat) = match look {
        Look::Hidden => return Err(not_found()),
        Look::Seen(kind) => return Ok((ActorFacts::default(), kind)),
        Look::NeedsRoles(kind, seat) => (kind, seat),
    };
    let facts = crate::routes::facts::facts_of(state, user, id, seat)
        .await?
        .ok_or_else(not_found)?;
    Ok((facts, kind))
}

pub async fn start_direct(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(req): ApiJson<StartDirect>,
) -> Result<(StatusCode, Json<Started>), ApiError> {
    let with = req.with;
    let known: BTreeSet<UserId> = state
        .ws
        .directories
        .query(&caller.org, move |d: &domain::Directory, _| {
            d.user(&with).map(|u| u.id).into_iter().collect()
        })
        .await?;
    let id = ConversationId::direct(caller.org, caller.user, with);
    let cmd = caller.meta().issue(ConversationCommand::StartDirect {
        id,
        with,
        known_users: known,
    });
    let out = state
        .ws
        .conversations
        .execute(&id, cmd, ExecuteOptions::default())
        .await?;
    let status = if out.events.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(Started {
            conversation_id: id,
            position: out.position,
        }),
    ))
}

/// What the directory says about the business number a conversation texts from (its
/// `our` number), for the domain to check: registered for SMS, assigned to the sender.
/// `None` for internal conversations.
async fn sender_number(
    state: &AppState,
    caller: &Authenticated,
    id: ConversationId,
    kind: &ConversationKind,
) -> Result<Option<domain::conversation::SenderNumber>, ApiError> {
    let Some(number) = kind.our_number().cloned() else {
        return Ok(None);
    };
    let (user, line) = (caller.user, number.clone());
    let found = state
        .ws
        .directories
        .query(&caller.org, move |d: &domain::Directory, _| {
            d.number(&line).map(|n| n.sms_registered)
        })
        .await?;
    let Some(sms_registered) = found else {
        return Ok(None);
    };
    // Held by assignment, or by the queue agent who claimed this conversation.
    let assigned_to_sender =
        crate::routes::facts::holds_line(state, caller.org, user, id, number.clone()).await?;
    Ok(Some(domain::conversation::SenderNumber {
        number,
        sms_registered,
        assigned_to_sender,
    }))
}

pub async fn post_message(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<ConversationId>,
    idempotency_key: IdempotencyKey,
    ApiJson(req): ApiJson<NewMessage>,
) -> Result<(StatusCode, Json<Posted>), ApiError> {
    let key = idempotency_key.scoped(&caller, "message", id.as_uuid().as_bytes())?;
    // With a key, the message id derives from it, so the retry names the same message.
    let message_id = key.map_or_else(MessageId::random, |k| {
        MessageId::from_uuid(uuid::Uuid::new_v5(&k, b"message"))
    });
    let internal = if req.attachments.is_empty() {
        post_internal(&state, &caller, id, message_id, &req.text, key).await?
    } else {
        None
    };
    let out = match internal {
        Some(out) => out,
        None => post_general(&state, &caller, id, message_id, &req, key).await?,
    };
    // The typist's message is in: their typing indicator ends now for the others.
    if let Some(hub) = state.hub.started() {
        hub.typing_stopped(&state, caller.org, caller.user, id)
            .await;
    }
    Ok((
        StatusCode::CREATED,
        Json(Posted {
            message_id,
            position: out.position,
            deduplicated: out.deduplicated,
        }),
    ))
}

/// Why [`post_internal`] did not post.
enum Declined {
    /// The caller may not see the conversation (or it is not there): 404.
    Hidden,
    /// Not an internal post the caller's membership decides: the general path.
    General,
}

/// Posts a message without attachments to an internal conversation (a direct message or a
/// channel) the caller sees without their roles, in one message to its actor: the look at
/// the conversation (may the caller see it? does it text customers?) and the decision see
/// the same state. `None`: not such a post (it texts customers, or the caller's roles decide
/// whether they see it); [`post_general`] takes it.
async fn post_internal(
    state: &AppState,
    caller: &Authenticated,
    id: ConversationId,
    message_id: MessageId,
    text: &str,
    key: Option<uuid::Uuid>,
) -> Result<Option<CommandOutcome<ConversationEvent>>, ApiError> {
    let (org, user, meta, text) = (caller.org, caller.user, caller.meta(), text.to_owned());
    let build = move |c: &Conversation| {
        let Some(header) = c.header().filter(|h| h.org == org) else {
            return Err(Declined::Hidden);
        };
        if header.kind.our_number().is_some() {
            return Err(Declined::General);
        }
        match c.audience_without_roles(user) {
            Some(true) => Ok(meta.issue(ConversationCommand::PostMessage {
                message_id,
                text: text.clone(),
                attachments: Vec::new(),
                from: None,
                facts: ActorFacts::default(),
                opted_out: BTreeSet::new(),
            })),
            Some(false) => Err(Declined::Hidden),
            None => Err(Declined::General),
        }
    };
    let options = written_as(caller, key);
    match state
        .ws
        .conversations
        .execute_from(&id, build, options)
        .await?
    {
        Ok(out) => Ok(Some(out)),
        Err(Declined::Hidden) => Err(not_found()),
        Err(Declined::General) => Ok(None),
    }
}

/// Posts a message: the conversation looked at first (visibility with the caller's roles,
/// the number it texts from, the group's opt-outs, the attachments as they will be sent),
/// then the command.
async fn post_general(
    state: &AppState,
    caller: &Authenticated,
    id: ConversationId,
    message_id: MessageId,
    req: &NewMessage,
    key: Option<uuid::Uuid>,
) -> Result<CommandOutcome<ConversationEvent>, ApiError> {
    let (facts, kind) = viewed(state, caller, id).await?;
    let from = sender_number(state, caller, id, &kind).await?;
    let opted_out = match &kind {
        ConversationKind::Group { our, externals, .. } => {
            group_opt_outs(state, caller.org, our, externals).await?
        }
        _ => BTreeSet::new(),
    };
    let post = |attachments: Vec<AttachmentRef>| {
        caller.meta().issue(ConversationCommand::PostMessage {
            message_id,
            text: req.text.clone(),
            attachments,
            from: from.clone(),
            facts,
            opted_out: opted_out.clone(),
        })
    };
    let texts = kind.sends_sms();
    let stored =
        crate::routes::attachments::named(state, caller.org, &req.attachments, texts).await?;
    let attachments = if texts && !stored.is_empty() {
        // Decided with the attachments as they will be sent before any resized copy is
        // written, so a refused post writes nothing.
        let provisional = crate::routes::attachments::as_mms(&stored);
        crate::routes::decide_first(&state.ws.conversations, &id, &post(provisional)).await?;
        crate::routes::attachments::mms_ready(state, caller.org, stored).await?
    } else {
        stored.iter().map(|a| a.reference()).collect()
    };
    Ok(state
        .ws
        .conversations
        .execute(&id, post(attachments), written_as(caller, key))
        .await?)
}

/// The external members of a group who opted out of texts from its number, as their
/// External conversations with that number record it.
async fn group_opt_outs(
    state: &AppState,
    org: OrgId,
    our: &PhoneNumber,
    externals: &BTreeSet<PhoneNumber>,
) -> Result<BTreeSet<PhoneNumber>, ApiError> {
    let mut opted_out = BTreeSet::new();
    for their in externals {
        let external = ConversationId::external(org, our, their);
        let number = their.clone();
        let out = state
            .ws
            .conversations
            .query(&external, move |c: &Conversation, _| {
                c.is_opted_out(&number)
            })
            .await?;
        if out {
            opted_out.insert(their.clone());
        }
    }
    Ok(opted_out)
}

/// `POST /v1/conversations/external`: the External conversation of one of our numbers and
/// a customer's, started if needed (by a user holding the number, or on its inbox's team).
pub async fn start_external(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(req): ApiJson<StartExternal>,
) -> Result<(StatusCode, Json<Started>), ApiError> {
    let our = crate::routes::phone_number(&req.our)?;
    let their = crate::routes::phone_number(&req.their)?;
    let (number, user) = (our.clone(), caller.user);
    let line = state
        .ws
        .directories
        .query(&caller.org, move |d: &Directory, _| {
            d.number(&number)
                .map(|n| (n.inbox(), n.is_assigned_to(user)))
        })
        .await?;
    let Some((inbox, holds_our_number)) = line else {
        return Err(ApiError::not_found(
            "unknown_number",
            "this number is not one of your organization's",
        ));
    };
    let inbox_member = match inbox {
        Some(inbox) => crate::routes::facts::is_inbox_member(&state, inbox, caller.user).await?,
        None => false,
    };
    let id = ConversationId::external(caller.org, &our, &their);
    let cmd = caller.meta().issue(ConversationCommand::StartExternal {
        id,
        our,
        their,
        inbox,
        facts: ActorFacts {
            holds_our_number,
            inbox_member,
            admin: false,
            queue_reader: false,
        },
    });
    let out = state
        .ws
        .conversations
        .execute(&id, cmd, ExecuteOptions::default())
        .await?;
    let status = if out.events.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(Started {
            conversation_id: id,
            position: out.position,
        }),
    ))
}

pub async fn mark_read(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<ConversationId>,
    ApiJson(req): ApiJson<MarkRead>,
) -> Result<Json<crate::routes::Written>, ApiError> {
    // External and inbox conversations are seen through the caller's facts (their line,
    // their inbox team), so the command needs them too.
    let (facts, _) = viewed(&state, &caller, id).await?;
    let cmd = caller.meta().issue(ConversationCommand::MarkRead {
        up_to: req.up_to,
        facts,
    });
    let r = state
        .ws
        .conversations
        .execute(&id, cmd, ExecuteOptions::default())
        .await?;
    Ok(crate::routes::Written::of(&r))
}

pub async fn history(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<ConversationId>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<History>, ApiError> {
    let (_, kind) = viewed(&state, &caller, id).await?;
    let limit = page.limit.unwrap_or(50).clamp(1, MAX_PAGE);
    let stream = StreamName::from_parts("conversation", id).map_err(ApiError::internal)?;
    let from = match page.before {
        Some(0) => {
            return Ok(Json(History {
                items: Vec::new(),
                next_before: None,
            }))
        }
        Some(b) => b - 1,
        None => u64::MAX,
    };
    let records = eventlog::store::nonblocking::read_stream(
        state.store(),
        &stream,
        from,
        Direction::Backward,
        limit,
    )
    .await
    .map_err(ApiError::from)?;
    let next_before = match records.last() {
        Some(r) if r.version > 0 && records.len() == limit => Some(r.version),
        _ => None,
    };
    let mut items = Vec::with_capacity(records.len());
    // Delivery states the page itself records (fresher than the read model can be).
    let mut recorded = std::collections::HashMap::new();
    for r in records.iter().rev() {
        let event: ConversationEvent = actors::event_codec::decode_opened(r, state.sealer())
            .await
            .map_err(ApiError::internal)?;
        if let Some((message, to, view)) =
            projections::interactions::DeliveryView::from_event(&event)
        {
            recorded.insert((message, to), view);
            continue;
        }
        items.extend(item_of(event));
    }
    if kind.sends_sms() {
        fill_deliveries(&state, id, &mut items, recorded).await?;
    }
    Ok(Json(History { items, next_before }))
}

/// Sets each outbound message's `deliveries`: the read model's states, or the page's own
/// where those are further along.
async fn fill_deliveries(
    state: &AppState,
    id: ConversationId,
    items: &mut [Item],
    mut recorded: std::collections::HashMap<
        (MessageId, PhoneNumber),
        projections::interactions::DeliveryView,
    >,
) -> Result<(), ApiError> {
    let outbound: Vec<MessageId> = items
        .iter()
        .filter_map(|item| match item {
            Item::Message { message_id, .. } | Item::AutoReply { message_id, .. } => {
                Some(*message_id)
            }
            _ => None,
        })
        .collect();
    if outbound.is_empty() {
        return Ok(());
    }
    let db = state.interactions.db();
    let stored = tokio::task::spawn_blocking(move || {
        outbound
            .into_iter()
            .map(|m| db.deliveries(&id, &m).map(|d| (m, d)))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(ApiError::internal)??;
    let mut by_message: std::collections::HashMap<MessageId, Vec<Delivery>> =
        std::collections::HashMap::new();
    for (message, views) in stored {
        for (to, view) in views {
            let newer = recorded
                .remove(&(message, to.clone()))
                .filter(|page| page.stage() > view.stage());
            let view = newer.as_ref().unwrap_or(&view);
            by_message
                .entry(message)
                .or_default()
                .push(Delivery::of(&to, view));
        }
    }
    for ((message, to), view) in recorded {
        by_message
            .entry(message)
            .or_default()
            .push(Delivery::of(&to, &view));
    }
    for item in items.iter_mut() {
        if let Item::Message {
            message_id,
            deliveries,
            ..
        }
        | Item::AutoReply {
            message_id,
            deliveries,
            ..
        } = item
        {
            if let Some(mut found) = by_message.remove(message_id) {
                found.sort_by(|a, b| a.to.cmp(&b.to));
                *deliveries = found;
            }
        }
    }
    Ok(())
}

// Mixed groups and call activity.

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartGroup {
    /// Our business number the group texts from: SMS-registered and assigned to the
    /// caller.
    pub from: String,
    /// The other internal members (the caller is always one).
    #[serde(default)]
    pub users: BTreeSet<UserId>,
    /// The external members' numbers (at least one); each gets every message by SMS/MMS.
    pub externals: Vec<String>,
}

/// `POST /v1/conversations/group`: a mixed group of internal users and external numbers
/// (at least three participants, the caller included), texting from `from`. Its id is
/// fresh, or derived from the `Idempotency-Key` (a retry answers the same group and writes
/// nothing).
///
/// # Errors
/// `invalid_phone_number` (422), `unknown_number` (404, not one of the organization's),
/// `unknown_user` (404), `from_number_not_sms_registered` /
/// `from_number_not_assigned_to_you` (409/403), `group_needs_external`,
/// `group_too_small`, `external_is_our_number` (409), `too_many` / `too_many_members`.
pub async fn start_group(
    State(state): State<AppState>,
    caller: Authenticated,
    idempotency_key: IdempotencyKey,
    ApiJson(req): ApiJson<StartGroup>,
) -> Result<(StatusCode, Json<Started>), ApiError> {
    let key = idempotency_key.scoped(&caller, "group", &[])?;
    let from = crate::routes::phone_number(&req.from)?;
    let externals = req
        .externals
        .iter()
        .map(|n| crate::routes::phone_number(n))
        .collect::<Result<BTreeSet<_>, _>>()?;
    let (user, named) = (caller.user, req.users.clone());
    let (sender, known_users) = state
        .ws
        .directories
        .query(&caller.org, move |d: &Directory, _| {
            let known = named
                .iter()
                .copied()
                .filter(|u| d.user(u).is_some())
                .collect::<BTreeSet<_>>();
            (d.sender_number(&from, user), known)
        })
        .await?;
    let Some(from) = sender else {
        return Err(ApiError::not_found(
            "unknown_number",
            "this number is not one of your organization's",
        ));
    };
    let id = key.map_or_else(ConversationId::random, |k| {
        ConversationId::from_uuid(uuid::Uuid::new_v5(&k, b"conversation"))
    });
    let cmd = caller.meta().issue(ConversationCommand::StartGroup {
        id,
        users: req.users,
        externals,
        from,
        known_users,
    });
    let out = state
        .ws
        .conversations
        .execute(&id, cmd, written_as(&caller, key))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Started {
            conversation_id: id,
            position: out.position,
        }),
    ))
}

/// Call or video, as the API names it (`"audio"`, `"video"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallMediaIn {
    Audio,
    Video,
}

impl From<CallMediaIn> for domain::conversation::CallMedia {
    fn from(m: CallMediaIn) -> Self {
        match m {
            CallMediaIn::Audio => domain::conversation::CallMedia::Audio,
            CallMediaIn::Video => domain::conversation::CallMedia::Video,
        }
    }
}

impl From<domain::conversation::CallMedia> for CallMediaIn {
    fn from(m: domain::conversation::CallMedia) -> Self {
        match m {
            domain::conversation::CallMedia::Audio => CallMediaIn::Audio,
            domain::conversation::CallMedia::Video => CallMediaIn::Video,
        }
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCall {
    pub media: CallMediaIn,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StartedCall {
    pub call_id: domain::CallId,
    pub position: Option<u64>,
    pub deduplicated: bool,
}

/// `POST /v1/conversations/{id}/calls`: the caller starts a call or video from the
/// conversation; it is recorded in the timeline (`call_started`). Starting one speaks for
/// the conversation, so it takes the right to write (in an inbox: being the assignee).
/// The call id is fresh, or derived from the `Idempotency-Key`.
///
/// # Errors
/// `conversation_not_found` (404), `not_assigned_to_you` (403), `invalid_body` (422).
pub async fn start_call(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<ConversationId>,
    idempotency_key: IdempotencyKey,
    ApiJson(req): ApiJson<NewCall>,
) -> Result<(StatusCode, Json<StartedCall>), ApiError> {
    let (facts, _) = viewed(&state, &caller, id).await?;
    let key = idempotency_key.scoped(&caller, "call", id.as_uuid().as_bytes())?;
    let call = key.map_or_else(domain::CallId::random, |k| {
        domain::CallId::from_uuid(uuid::Uuid::new_v5(&k, b"call"))
    });
    let cmd = caller.meta().issue(ConversationCommand::StartCall {
        call,
        media: req.media.into(),
        facts,
    });
    let out = state
        .ws
        .conversations
        .execute(&id, cmd, written_as(&caller, key))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(StartedCall {
            call_id: call,
            position: out.position,
            deduplicated: out.deduplicated,
        }),
    ))
}

/// `POST /v1/conversations/{id}/calls/{call}/end`: any participant who sees the
/// conversation ends the call (`call_ended`); ending an ended call changes nothing.
///
/// # Errors
/// `conversation_not_found` (404), `call_not_found` (404).
pub async fn end_call(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath((id, call)): ApiPath<(ConversationId, domain::CallId)>,
) -> Result<Json<crate::routes::Written>, ApiError> {
    let (facts, _) = viewed(&state, &caller, id).await?;
    let cmd = caller
        .meta()
        .issue(ConversationCommand::EndCall { call, facts });
    let out = state
        .ws
        .conversations
        .execute(&id, cmd, written_as(&caller, None))
        .await
        .map_err(|e| match ApiError::from(e) {
            e if e.code == "no_such_call" => {
                ApiError::not_found("call_not_found", "no such call in this conversation")
            }
            e => e,
        })?;
    Ok(crate::routes::Written::of(&out))
}
