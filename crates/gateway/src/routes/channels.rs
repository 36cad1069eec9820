//! Channels: named groups of internal users. Anyone in the organization may join; members
//! add others, leave, rename it, and see everything posted. `GET
//! /v1/conversations/{id}/members` lists the members of a conversation (channel, direct,
//! group) to those who may see it.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use domain::{ConversationCommand, ConversationId, UserId};
use serde::{Deserialize, Serialize};

use actors::ExecuteOptions;

use crate::app::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::routes::conversations::Started;
use crate::routes::json::ApiJson;
use crate::routes::json::ApiPath;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChannel {
    pub name: String,
    #[serde(default)]
    pub members: BTreeSet<UserId>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
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

/// `POST /v1/conversations/channel`. Its id is fresh, or derived from the
/// `Idempotency-Key` (a retry answers the same channel and writes nothing).
pub async fn create(
    State(state): State<AppState>,
    caller: Authenticated,
    idempotency_key: crate::routes::idempotency::IdempotencyKey,
    ApiJson(req): ApiJson<NewChannel>,
) -> Result<(StatusCode, Json<Started>), ApiError> {
    let key = idempotency_key.scoped(&caller, "channel", &[])?;
    let known_users = known(&state, &caller, &req.members).await?;
    let id = key.map_or_else(ConversationId::random, |k| {
        ConversationId::from_uuid(uuid::Uuid::new_v5(&k, b"conversation"))
    });
    let cmd = caller.meta().issue(ConversationCommand::StartChannel {
        id,
        name: req.name,
        members: req.members,
        known_users,
    });
    let out = state
        .ws
        .conversations
        .execute(
            &id,
            cmd,
            crate::routes::idempotency::written_as(&caller, key),
        )
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
    ApiPath(id): ApiPath<ConversationId>,
) -> Result<axum::Json<crate::routes::Written>, ApiError> {
    run(&state, &caller, id, ConversationCommand::JoinChannel).await
}

/// `POST /v1/conversations/{id}/leave`.
pub async fn leave(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<ConversationId>,
) -> Result<axum::Json<crate::routes::Written>, ApiError> {
    run(&state, &caller, id, ConversationCommand::LeaveChannel).await
}

/// `POST /v1/conversations/{id}/members`.
pub async fn add_members(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<ConversationId>,
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

#[derive(Debug, Deserialize, schemars::JsonSchema)]
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
    ApiPath(id): ApiPath<ConversationId>,
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

/// A member as the members list shows them.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MemberOut {
    pub user_id: UserId,
    pub name: String,
    pub extension: String,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MembersOut {
    pub conversation_id: ConversationId,
    /// "external", "direct", "channel" or "group".
    pub kind: String,
    /// The channel's name.
    pub name: Option<String>,
    /// Internal members by name (none for External conversations, whose internal side is
    /// whoever holds the number or the inbox team).
    pub members: Vec<MemberOut>,
    /// The external numbers in it: a group's external members, an External
    /// conversation's customer (none for internal conversations). Each texts by SMS.
    pub externals: Vec<ExternalMemberOut>,
}

/// An external member: a number, named from the phonebook when it is known.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExternalMemberOut {
    /// E.164.
    pub number: String,
    /// The contact's (or user's) name for it, if any.
    pub name: Option<String>,
}

/// `GET /v1/conversations/{id}/members`: who is in the conversation. Whoever cannot see it
/// (not a participant, another organization) gets 404 as for its history.
///
/// # Errors
/// `conversation_not_found` (404).
pub async fn members(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<ConversationId>,
) -> Result<Json<MembersOut>, ApiError> {
    let (_, kind) = crate::routes::conversations::viewed(&state, &caller, id).await?;
    let (kind_name, name) = match &kind {
        domain::conversation::ConversationKind::External { .. } => ("external", None),
        domain::conversation::ConversationKind::Direct { .. } => ("direct", None),
        domain::conversation::ConversationKind::Channel { name, .. } => {
            ("channel", Some(name.clone()))
        }
        domain::conversation::ConversationKind::Group { .. } => ("group", None),
    };
    let users = kind.internal_members().unwrap_or_default();
    let numbers: Vec<domain::PhoneNumber> = match &kind {
        domain::conversation::ConversationKind::External { their, .. } => vec![their.clone()],
        domain::conversation::ConversationKind::Group { externals, .. } => {
            externals.iter().cloned().collect()
        }
        _ => Vec::new(),
    };
    let viewer = caller.user;
    let (mut members, externals) = state
        .ws
        .directories
        .query(&caller.org, move |d: &domain::Directory, _| {
            let members = users
                .iter()
                .map(|u| MemberOut {
                    user_id: *u,
                    name: d.user(u).map_or_else(|| u.to_string(), |x| x.name.clone()),
                    extension: d
                        .user(u)
                        .map(|x| x.extension.to_string())
                        .unwrap_or_default(),
                })
                .collect::<Vec<_>>();
            let externals = numbers
                .iter()
                .map(|n| ExternalMemberOut {
                    number: n.to_string(),
                    name: d.resolve_name(n, viewer),
                })
                .collect::<Vec<_>>();
            (members, externals)
        })
        .await?;
    members.sort_by(|a, b| (&a.name, a.user_id).cmp(&(&b.name, b.user_id)));
    Ok(Json(MembersOut {
        conversation_id: id,
        kind: kind_name.to_owned(),
        name,
        members,
        externals,
    }))
}
