//! `POST /v1/users` (admin): add a user to the caller's organization, with a login.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use domain::directory::Extension;
use domain::{CommandMeta, DirectoryCommand, Role, UserId};
use serde::{Deserialize, Serialize};

use actors::ExecuteOptions;

use crate::app::AppState;
use crate::auth::{credentials, sessions, Authenticated};
use crate::error::ApiError;
use crate::routes::json::ApiJson;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub name: String,
    pub extension: String,
    pub role: Role,
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize)]
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
        role: req.role,
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
