//! Conversations: start a direct or External conversation, post (by SMS/MMS too where the
//! conversation texts: from its number, withheld from numbers that opted out, images
//! resized to fit MMS), read history, mark read.
//!
//! Every route checks, through the conversation's own rules, that the caller may see (or
//! write in) it; a conversation of another organization answers 404 like one that does
//! not exist.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use domain::conversation::{ActorFacts, AttachmentRef, ConversationKind};
use domain::{
    Conversation, ConversationCommand, ConversationEvent, ConversationId, Directory, MessageId,
    OrgId, PhoneNumber, UserId,
};
use eventlog::{Direction, StreamName};
use serde::{Deserialize, Serialize};

use actors::ExecuteOptions;

use crate::app::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::routes::json::ApiJson;
use crate::routes::json::ApiQuery;

/// Most history items per page.
pub const MAX_PAGE: usize = 200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartDirect {
    pub with: UserId,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Started {
    pub conversation_id: ConversationId,
    pub position: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    #[serde(default)]
    pub text: String,
    /// Attachment hashes (or ids) from `POST /v1/attachments`. In a conversation that
    /// texts, each must be a JPEG, PNG or GIF, and is resized to fit MMS before it is sent.
    #[serde(default)]
    pub attachments: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartExternal {
    /// Our business number to text from.
    pub our: String,
    /// The customer's number.
    pub their: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Posted {
    pub message_id: MessageId,
    pub position: Option<u64>,
    pub deduplicated: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    pub up_to: u64,
}

#[derive(Debug, Deserialize)]
pub struct Page {
    /// Return items older than this cursor (a stream version); omit for the newest.
    pub before: Option<u64>,
    pub limit: Option<usize>,
}

/// The timeline item an event shows as, if any.
pub fn item_of(event: ConversationEvent) -> Option<Item> {
    match event {
        ConversationEvent::MessagePosted(m) => Some(Item::Message {
            message_id: m.message_id,
            seq: m.seq,
            author: m.author,
            text: m.text,
            attachments: m.attachments,
            at_ms: m.at_ms,
        }),
        ConversationEvent::InboundReceived(m) => Some(Item::Inbound {
            message_id: m.message_id,
            seq: m.seq,
            from: m.from.to_string(),
            text: m.text,
            attachments: m.media,
            at_ms: m.at_ms,
        }),
        ConversationEvent::MessagesRead(m) => Some(Item::Read {
            user: m.user,
            up_to: m.up_to,
            at_ms: m.at_ms,
        }),
        ConversationEvent::SystemMessageRecorded(m) => Some(Item::System {
            note: format!("{:?}", m.note),
            at_ms: m.at_ms,
        }),
        _ => None,
    }
}

/// One timeline item.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Item {
    Message {
        message_id: MessageId,
        seq: u64,
        author: UserId,
        text: String,
        /// Fetch with `GET /v1/attachments/{id}?conversation=<this conversation>`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<AttachmentRef>,
        at_ms: u64,
    },
    Inbound {
        message_id: MessageId,
        seq: u64,
        from: String,
        text: String,
        /// MMS media, fetched like a message's attachments.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<AttachmentRef>,
        at_ms: u64,
    },
    Read {
        user: UserId,
        up_to: u64,
        at_ms: u64,
    },
    System {
        note: String,
        at_ms: u64,
    },
}

#[derive(Debug, Serialize, Deserialize)]
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
    let (org, user) = (caller.org, caller.user);
    let facts = crate::routes::facts::facts_for(state, org, user, id).await?;
    let ok = state
        .ws
        .conversations
        .query(&id, move |c: &Conversation, _| {
            c.header().is_some_and(|h| h.org == org) && c.can_view(user, &facts)
        })
        .await?;
    if ok {
        Ok(())
    } else {
        Err(not_found())
    }
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

/// An `Idempotency-Key` header (a UUID) makes a retried POST return the first result and
/// write nothing.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<uuid::Uuid>, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| uuid::Uuid::try_parse(s.trim()).ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request("invalid_idempotency_key", "Idempotency-Key must be a UUID")
            }),
    }
}

/// What the directory says about the business number a conversation texts from (its
/// `our` number), for the domain to check: registered for SMS, assigned to the sender.
/// `None` for internal conversations.
async fn sender_number(
    state: &AppState,
    caller: &Authenticated,
    id: ConversationId,
) -> Result<Option<domain::conversation::SenderNumber>, ApiError> {
    let our = state
        .ws
        .conversations
        .query(&id, |c: &Conversation, _| {
            c.kind().and_then(|k| k.our_number().cloned())
        })
        .await?;
    let Some(number) = our else {
        return Ok(None);
    };
    let user = caller.user;
    Ok(state
        .ws
        .directories
        .query(&caller.org, move |d: &domain::Directory, _| {
            d.number(&number)
                .map(|n| domain::conversation::SenderNumber {
                    number: n.number.clone(),
                    sms_registered: n.sms_registered,
                    assigned_to_sender: n.is_assigned_to(user),
                })
        })
        .await?)
}

pub async fn post_message(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<ConversationId>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<NewMessage>,
) -> Result<(StatusCode, Json<Posted>), ApiError> {
    visible(&state, &caller, id).await?;
    let facts = crate::routes::facts::facts_for(&state, caller.org, caller.user, id).await?;
    let key = idempotency_key(&headers)?;
    // With a key, the message id derives from it, so the retry names the same message.
    let message_id = key.map_or_else(MessageId::random, |k| {
        MessageId::from_uuid(uuid::Uuid::new_v5(&k, b"message"))
    });
    let kind = state
        .ws
        .conversations
        .query(&id, |c: &Conversation, _| c.kind().cloned())
        .await?;
    let from = sender_number(&state, &caller, id).await?;
    let opted_out = match &kind {
        Some(ConversationKind::Group { our, externals, .. }) => {
            group_opt_outs(&state, caller.org, our, externals).await?
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
    let texts = kind.as_ref().is_some_and(ConversationKind::sends_sms);
    let stored =
        crate::routes::attachments::named(&state, caller.org, &req.attachments, texts).await?;
    let attachments = if texts && !stored.is_empty() {
        // Decided with the attachments as they will be sent before any resized copy is
        // written, so a refused post writes nothing.
        let provisional = crate::routes::attachments::as_mms(&stored);
        crate::routes::decide_first(&state.ws.conversations, &id, &post(provisional)).await?;
        crate::routes::attachments::mms_ready(&state, caller.org, stored).await?
    } else {
        stored.iter().map(|a| a.reference()).collect()
    };
    let options = ExecuteOptions {
        idempotency_key: key,
        metadata: eventlog::Metadata {
            acting_user: Some(caller.user.to_string()),
            ..Default::default()
        },
    };
    let out = state
        .ws
        .conversations
        .execute(&id, post(attachments), options)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Posted {
            message_id,
            position: out.position,
            deduplicated: out.deduplicated,
        }),
    ))
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
    Path(id): Path<ConversationId>,
    ApiJson(req): ApiJson<MarkRead>,
) -> Result<Json<crate::routes::Written>, ApiError> {
    visible(&state, &caller, id).await?;
    let cmd = caller.meta().issue(ConversationCommand::MarkRead {
        up_to: req.up_to,
        facts: ActorFacts::default(),
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
    Path(id): Path<ConversationId>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<History>, ApiError> {
    visible(&state, &caller, id).await?;
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
    .map_err(ApiError::internal)?;
    let next_before = match records.last() {
        Some(r) if r.version > 0 && records.len() == limit => Some(r.version),
        _ => None,
    };
    let mut items = Vec::with_capacity(records.len());
    for r in records.iter().rev() {
        let event: ConversationEvent =
            actors::event_codec::decode(r).map_err(ApiError::internal)?;
        items.extend(item_of(event));
    }
    Ok(Json(History { items, next_before }))
}
