//! Per-user settings: **Text messages to desk phone** (also push inbound SMS to the desk
//! phone; the apps receive every inbound SMS whatever it says).
//!
//! - `GET /v1/me/settings`, `PUT /v1/me/settings`: the caller's own.
//! - `PUT /v1/users/{id}/settings`: another user's, by the directory's rule (the user
//!   themself or an admin); a user of another organization is `unknown_user` (404).

use axum::extract::State;
use axum::Json;
use domain::{DirectoryCommand, UserId};
use serde::{Deserialize, Serialize};

use actors::ExecuteOptions;

use crate::app::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::routes::json::{ApiJson, ApiPath};
use crate::routes::Written;

/// A user's settings, as read and as written (`PUT` takes every field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub text_messages_to_desk_phone: bool,
}

/// `GET /v1/me/settings`.
pub async fn get_settings(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<Json<Settings>, ApiError> {
    let user = caller.user;
    let found = state
        .ws
        .directories
        .query(&caller.org, move |d: &domain::Directory, _| {
            d.user(&user).map(|u| Settings {
                text_messages_to_desk_phone: u.settings.text_messages_to_desk_phone,
            })
        })
        .await?;
    found.map(Json).ok_or_else(ApiError::unauthenticated)
}

async fn set(
    state: &AppState,
    caller: &Authenticated,
    user: UserId,
    settings: Settings,
) -> Result<Json<Written>, ApiError> {
    let cmd = caller
        .meta()
        .issue(DirectoryCommand::SetTextMessagesToDeskPhone {
            user,
            enabled: settings.text_messages_to_desk_phone,
        });
    let out = state
        .ws
        .directories
        .execute(&caller.org, cmd, ExecuteOptions::default())
        .await?;
    Ok(Written::of(&out))
}

/// `PUT /v1/me/settings`.
pub async fn put_my_settings(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(req): ApiJson<Settings>,
) -> Result<Json<Written>, ApiError> {
    set(&state, &caller, caller.user, req).await
}

/// `PUT /v1/users/{id}/settings` (the user themself, or an admin).
///
/// # Errors
/// `admin_only` (403), `unknown_user` (404), ...
pub async fn put_user_settings(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(user): ApiPath<UserId>,
    ApiJson(req): ApiJson<Settings>,
) -> Result<Json<Written>, ApiError> {
    set(&state, &caller, user, req).await
}
