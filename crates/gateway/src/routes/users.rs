//! The organization's users.
//!
//! - `POST /v1/users` (admin): add a user to the caller's organization, with a login.
//! - `GET /v1/users` (any member): every user of the caller's organization, by name.
//! - `POST /v1/users/{id}/role` (admin): make a user an admin or a member; the last admin
//!   cannot be demoted. A user of another organization is `unknown_user` (404).
//! - `PUT /v1/users/{id}/name` (the user themself, or an admin): a new display name.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use domain::directory::Extension;
use domain::{CommandMeta, DirectoryCommand, UserId};
use serde::{Deserialize, Serialize};

use actors::ExecuteOptions;

use crate::app::AppState;
use crate::auth::{credentials, sessions, Authenticated};
use crate::error::ApiError;
use crate::routes::json::{ApiJson, ApiPath};
use crate::routes::wire::RoleName;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub name: String,
    pub extension: String,
    pub role: RoleName,
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CreatedUser {
    pub user_id: UserId,
}

pub async fn create_user(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(req): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<CreatedUser>), ApiError> {
    let email = credentials::normalise_email(&req.email)?;
    credentials::check_password(&req.password)?;
    let extension = Extension::parse(&req.extension).map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_extension",
            "an extension is 2 to 8 digits",
        )
    })?;
    let user = UserId::random();
    let meta = CommandMeta::user(caller.org, caller.user, caller.role, sessions::now_ms());
    let add = meta.issue(DirectoryCommand::AddUser {
        user,
        name: req.name,
        extension,
        role: req.role.into(),
    });
    // Decide first (admin only, extension free, name valid) so a refusal writes nothing.
    crate::routes::decide_first(&state.ws.directories, &caller.org, &add).await?;
    credentials::register(state.store(), &email, &req.password, caller.org, user).await?;
    state
        .ws
        .directories
        .execute(&caller.org, add, ExecuteOptions::default())
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedUser { user_id: user })))
}

/// One user as the directory lists them.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserOut {
    pub user_id: UserId,
    pub name: String,
    pub extension: String,
    pub role: RoleName,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserList {
    pub items: Vec<UserOut>,
}

/// `GET /v1/users`: the caller's organization's users, by name (then extension).
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<Json<UserList>, ApiError> {
    let mut items = state
        .ws
        .directories
        .query(&caller.org, |d: &domain::Directory, _| {
            d.users()
                .map(|u| UserOut {
                    user_id: u.id,
                    name: u.name.clone(),
                    extension: u.extension.to_string(),
                    role: u.role.into(),
                })
                .collect::<Vec<_>>()
        })
        .await?;
    items.sort_by(|a, b| {
        (a.name.to_lowercase(), &a.extension).cmp(&(b.name.to_lowercase(), &b.extension))
    });
    Ok(Json(UserList { items }))
}

/// `PUT /v1/users/{id}/name` (the user themself, or an admin): lists, messages and
/// members show it at once (names are resolved when answering, never stored elsewhere).
///
/// # Errors
/// `admin_only` (403) for another user's name, `unknown_user` (404), `blank` / `too_long`
/// (422).
pub async fn rename(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(user): ApiPath<UserId>,
    ApiJson(req): ApiJson<crate::routes::channels::NewName>,
) -> Result<Json<crate::routes::Written>, ApiError> {
    let cmd = caller.meta().issue(DirectoryCommand::RenameUser {
        user,
        name: req.name,
    });
    let out = state
        .ws
        .directories
        .execute(&caller.org, cmd, ExecuteOptions::default())
        .await?;
    Ok(crate::routes::Written::of(&out))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    pub role: RoleName,
}

/// `POST /v1/users/{id}/role` (admin).
///
/// # Errors
/// `admin_only` (403), `unknown_user` (404), `last_admin` (409), ...
pub async fn change_role(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(user): ApiPath<UserId>,
    ApiJson(req): ApiJson<NewRole>,
) -> Result<Json<crate::routes::Written>, ApiError> {
    let cmd = caller.meta().issue(DirectoryCommand::ChangeRole {
        user,
        role: req.role.into(),
    });
    let change = state
        .ws
        .directories
        .execute(&caller.org, cmd, ExecuteOptions::default());
    let out = state.roles.changing(caller.org, user, change).await?;
    Ok(crate::routes::Written::of(&out))
}
