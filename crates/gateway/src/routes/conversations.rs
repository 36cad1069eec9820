//! Conversations: start a direct conversation, post, read history, mark read.
//!
//! Every route checks, through the conversation's own rules, that the caller may see (or
//! write in) it; a conversation of another organization answers 404 like one that does
//! not exist.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use domain::conversation::ActorFacts;
use domain::{
    Conversation, ConversationCommand, ConversationEvent, ConversationId, MessageId, UserId,
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
    pub text: String,
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
            at_ms: m.at_ms,
        }),
        ConversationEvent::InboundReceived(m) => Some(Item::Inbound {
            message_id: m.message_id,
            seq: m.seq,
            from: m.from.to_string(),
            text: m.text,
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
        at_ms: u64,
    },
    Inbound {
        message_id: MessageId,
        seq: u64,
        from: String,
        text: String,
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
async fn visible(
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
    let cmd = caller.meta().issue(ConversationCommand::PostMessage {
        message_id,
        text: req.text,
        attachments: Vec::new(),
        from: None,
        facts,
        opted_out: BTreeSet::new(),
    });
    let options = ExecuteOptions {
        idempotency_key: key,
        metadata: eventlog::Metadata {
            acting_user: Some(caller.user.to_string()),
            ..Default::default()
        },
    };
    let out = state.ws.conversations.execute(&id, cmd, options).await?;
    Ok((
        StatusCode::CREATED,
        Json(Posted {
            message_id,
            position: out.position,
            deduplicated: out.deduplicated,
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
