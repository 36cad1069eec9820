//! Admin: business numbers and shared inboxes. Members: the four inbox actions on an inbox
//! conversation (Assign to Me, Transfer, Return to Inbox, Mark as Done).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use domain::directory::Routing;
use domain::{ConversationCommand, ConversationId, InboxCommand, InboxId, UserId};
use serde::{Deserialize, Serialize};

use actors::ExecuteOptions;

use crate::app::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::routes::facts::is_inbox_member;
use crate::routes::json::ApiJson;
use crate::routes::json::ApiPath;
use crate::routes::Written;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInbox {
    pub name: String,
    pub number: String,
    /// Register the number for SMS at once (default true, as `POST /v1/numbers`): only
    /// registered numbers send, so the inbox can answer the texts it receives.
    #[serde(default = "crate::routes::numbers::registered_by_default")]
    pub sms_registered: bool,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CreatedInbox {
    pub inbox_id: InboxId,
}

/// `POST /v1/inboxes` (admin): an inbox on a new business number routed to it.
pub async fn create_inbox(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(req): ApiJson<NewInbox>,
) -> Result<(StatusCode, Json<CreatedInbox>), ApiError> {
    let number = crate::routes::phone_number(&req.number)?;
    let id = InboxId::random();
    let create = caller.meta().issue(InboxCommand::CreateInbox {
        id,
        name: req.name,
        number: number.clone(),
        number_is_ours: true,
    });
    // Decide first so that a refusal (not admin, blank name) writes nothing.
    crate::routes::decide_first(&state.ws.inboxes, &id, &create).await?;
    crate::routes::numbers::claim_and_route(
        &state,
        &caller,
        number,
        Routing::Inbox(id),
        req.sms_registered,
    )
    .await?;
    state
        .ws
        .inboxes
        .execute(&id, create, ExecuteOptions::default())
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedInbox { inbox_id: id })))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    pub user: UserId,
}

/// `POST /v1/inboxes/{id}/members` (admin).
pub async fn add_member(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<InboxId>,
    ApiJson(req): ApiJson<NewMember>,
) -> Result<Json<Written>, ApiError> {
    let user = req.user;
    let user_exists = state
        .ws
        .directories
        .query(&caller.org, move |d: &domain::Directory, _| {
            d.user(&user).is_some()
        })
        .await?;
    run(
        &state,
        &caller,
        id,
        InboxCommand::AddMember { user, user_exists },
    )
    .await
}

/// `DELETE /v1/inboxes/{id}/members/{user}` (admin): off the team; what they hold stays
/// assigned to them until transferred, returned or done.
pub async fn remove_member(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath((id, user)): ApiPath<(InboxId, UserId)>,
) -> Result<Json<Written>, ApiError> {
    run(&state, &caller, id, InboxCommand::RemoveMember { user }).await
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InboxPatch {
    pub name: String,
}

/// `PATCH /v1/inboxes/{id}` (admin): renames it.
pub async fn rename(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<InboxId>,
    ApiJson(req): ApiJson<InboxPatch>,
) -> Result<Json<Written>, ApiError> {
    run(
        &state,
        &caller,
        id,
        InboxCommand::RenameInbox { name: req.name },
    )
    .await
}

/// Runs an admin command on inbox `id`; an inbox of another organization answers as if
/// it did not exist.
async fn run(
    state: &AppState,
    caller: &Authenticated,
    id: InboxId,
    command: InboxCommand,
) -> Result<Json<Written>, ApiError> {
    let org = caller.org;
    let ours = state
        .ws
        .inboxes
        .query(&id, move |i: &domain::Inbox, _| {
            i.header().is_some_and(|h| h.org == org)
        })
        .await?;
    if !ours {
        return Err(ApiError::not_found("inbox_not_found", "no such inbox"));
    }
    let r = state
        .ws
        .inboxes
        .execute(&id, caller.meta().issue(command), ExecuteOptions::default())
        .await?;
    Ok(Written::of(&r))
}

/// One inbox as `GET /v1/inboxes` lists it.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InboxOut {
    pub inbox_id: InboxId,
    pub name: String,
    pub number: String,
    /// The team, by user id.
    pub members: Vec<UserId>,
    /// The caller is on the team.
    pub member: bool,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InboxList {
    pub items: Vec<InboxOut>,
}

/// `GET /v1/inboxes`: the inboxes of the caller's organization whose team they are on
/// (every one for an admin), by name, with their teams.
///
/// # Errors
/// Internal errors.
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<Json<InboxList>, ApiError> {
    let ids = state
        .ws
        .directories
        .query(&caller.org, |d: &domain::Directory, _| {
            d.numbers()
                .filter_map(|n| match n.route {
                    Routing::Inbox(inbox) => Some(inbox),
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
        .await?;
    let (org, user) = (caller.org, caller.user);
    // Which the caller sees is the visibility rule's inbox audience (the team, and the
    // organization's admins), over the inboxes' current teams.
    let mut table = workers::visibility::Audiences::default();
    let mut items = Vec::with_capacity(ids.len());
    for id in ids {
        let known =
            workers::visibility::learn(&mut table, &state.ws, |a| a.inbox_readers(id).err())
                .await?;
        if !known || !table.sees_inbox(org, id, user).unwrap_or(false) {
            continue;
        }
        let out = state
            .ws
            .inboxes
            .query(&id, move |i: &domain::Inbox, _| {
                let h = i.header().filter(|h| h.org == org)?;
                Some(InboxOut {
                    inbox_id: h.id,
                    name: h.name.clone(),
                    number: h.number.to_string(),
                    members: i.members().iter().copied().collect(),
                    member: i.is_member(user),
                })
            })
            .await?;
        items.extend(out);
    }
    items.sort_by(|a, b| {
        (a.name.to_lowercase(), a.inbox_id).cmp(&(b.name.to_lowercase(), b.inbox_id))
    });
    Ok(Json(InboxList { items }))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferTo {
    pub to: UserId,
}

async fn act(
    state: &AppState,
    caller: &Authenticated,
    id: ConversationId,
    make: impl FnOnce(domain::conversation::ActorFacts) -> ConversationCommand,
) -> Result<Json<Written>, ApiError> {
    // Whoever may not see it is told it does not exist; the conversation decides the rest.
    let (facts, _) = crate::routes::conversations::viewed(state, caller, id).await?;
    let r = state
        .ws
        .conversations
        .execute(
            &id,
            caller.meta().issue(make(facts)),
            ExecuteOptions::default(),
        )
        .await?;
    Ok(Written::of(&r))
}

pub async fn assign_to_me(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<ConversationId>,
) -> Result<Json<Written>, ApiError> {
    act(&state, &caller, id, |facts| {
        ConversationCommand::AssignToMe { facts }
    })
    .await
}

pub async fn transfer(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<ConversationId>,
    ApiJson(req): ApiJson<TransferTo>,
) -> Result<Json<Written>, ApiError> {
    let inbox = state
        .ws
        .conversations
        .query(&id, |c: &domain::Conversation, _| {
            c.inbox().map(|a| a.inbox)
        })
        .await?;
    let to_is_inbox_member = match inbox {
        Some(inbox) => is_inbox_member(&state, inbox, req.to).await?,
        None => false,
    };
    act(&state, &caller, id, |facts| ConversationCommand::Transfer {
        to: req.to,
        to_is_inbox_member,
        facts,
    })
    .await
}

pub async fn return_to_inbox(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<ConversationId>,
) -> Result<Json<Written>, ApiError> {
    act(&state, &caller, id, |facts| {
        ConversationCommand::ReturnToInbox { facts }
    })
    .await
}

pub async fn mark_done(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<ConversationId>,
) -> Result<Json<Written>, ApiError> {
    act(&state, &caller, id, |facts| ConversationCommand::MarkDone {
        facts,
    })
    .await
}
