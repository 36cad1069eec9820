//! Channels: named groups of internal users. Anyone in the organization may join; members
//! add others, leave, rename it, and see everything posted.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use domain::{ConversationCommand, ConversationId, UserId};
use serde::Deserialize;

use actors::ExecuteOptions;

use crate::app::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::routes::conversations::Started;
use crate::routes::json::ApiJson;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewChannel {
    pub name: String,
    #[serde(default)]
    pub members: BTreeSet<UserId>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddMembers {
    pub users: BTreeSet<UserId>,
}

/// The subset of `users` that exist in the caller's organization (the domain refuses the
/// rest by name).
async fn known(
    state: &AppState,
    caller: &Authenticated,
    users: &BTreeSet<UserId>,
) -> Result<BTreeSet<UserId>, ApiError> {
    let users = users.clone();
    Ok(state
        .ws
        .directories
        .query(&caller.org, move |d: &domain::Directory, _| {
            users
                .iter()
                .copied()
                .filter(|u| d.user(u).is_some())
                .collect::<BTreeSet<_>>()
        })
        .await?)
}

/// `POST /v1/conversations/channel`.
pub async fn create(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(req): ApiJson<NewChannel>,
) -> Result<(StatusCode, Json<Started>), ApiError> {
    let known_users = known(&state, &caller, &req.members).await?;
    let id = ConversationId::random();
    let cmd = caller.meta().issue(ConversationCommand::StartChannel {
        id,
        name: req.name,
        members: req.members,
        known_users,
    });
    let out = state
        .ws
        .conversations
        .execute(&id, cmd, ExecuteOptions::default())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Started {
            conversation_id: id,
            position: out.position,
        }),
    ))
}

async fn run(
    state: &AppState,
    caller: &Authenticated,
    id: ConversationId,
    command: ConversationCommand,
) -> Result<axum::Json<crate::routes::Written>, ApiError> {
    let r = state
        .ws
        .conversations
        .execute(&id, caller.meta().issue(command), ExecuteOptions::default())
        .await?;
    Ok(crate::routes::Written::of(&r))
}

/// `POST /v1/conversations/{id}/join`.
pub async fn join(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<ConversationId>,
) -> Result<axum::Json<crate::routes::Written>, ApiError> {
    run(&state, &caller, id, ConversationCommand::JoinChannel).await
}

/// `POST /v1/conversations/{id}/leave`.
pub async fn leave(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<ConversationId>,
) -> Result<axum::Json<crate::routes::Written>, ApiError> {
    run(&state, &caller, id, ConversationCommand::LeaveChannel).await
}

/// `POST /v1/conversations/{id}/members`.
pub async fn add_members(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<ConversationId>,
    ApiJson(req): ApiJson<AddMembers>,
) -> Result<axum::Json<crate::routes::Written>, ApiError> {
    let known_users = known(&state, &caller, &req.users).await?;
    run(
        &state,
        &caller,
        id,
        ConversationCommand::AddChannelMembers {
            users: req.users,
            known_users,
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewName {
    pub name: String,
}

/// `POST /v1/conversations/{id}/name`: a member renames the channel. Whoever cannot see
/// the conversation (not a member, another organization) gets 404 as for its history.
///
/// # Errors
/// `conversation_not_found` (404), `not_a_channel` (403), `blank` / `too_long` (422), ...
pub async fn rename(
    State(state): State<AppState>,
    caller: Authenticated,
    crate::routes::json::ApiPath(id): crate::routes::json::ApiPath<ConversationId>,
    ApiJson(req): ApiJson<NewName>,
) -> Result<axum::Json<crate::routes::Written>, ApiError> {
    crate::routes::conversations::visible(&state, &caller, id).await?;
    run(
        &state,
        &caller,
        id,
        ConversationCommand::RenameChannel { name: req.name },
    )
    .await
}
