//! `POST /v1/bootstrap`: the first-run path. Creates an organization with its first admin
//! (who gets a login) and returns a session token for them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use domain::directory::Extension;
use domain::{CommandMeta, DirectoryCommand, OrgId, UserId};
use serde::{Deserialize, Serialize};

use actors::ExecuteOptions;

use crate::app::AppState;
use crate::auth::{credentials, sessions};
use crate::error::ApiError;
use crate::routes::json::ApiJson;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BootstrapRequest {
    pub organization: String,
    pub name: String,
    pub extension: String,
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BootstrapResponse {
    pub organization_id: OrgId,
    pub user_id: UserId,
    pub token: String,
    pub expires_at_ms: u64,
}

pub async fn bootstrap(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<BootstrapRequest>,
) -> Result<(StatusCode, Json<BootstrapResponse>), ApiError> {
    // Unauthenticated and hashing a password: limited for the whole server, so a flood
    // of sign-ups cannot take the CPU.
    state
        .limiter
        .take("bootstrap", crate::rate_limit::Limit::BOOTSTRAP)
        .map_err(ApiError::rate_limited)?;
    // Everything that can be checked before writing is checked first: bad input writes
    // nothing.
    let email = credentials::normalise_email(&req.email)?;
    credentials::check_password(&req.password)?;
    let extension = Extension::parse(&req.extension).map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_extension",
            "an extension is 2 to 8 digits",
        )
    })?;
    let (org, user) = (OrgId::random(), UserId::random());
    let create = DirectoryCommand::CreateOrganization {
        name: req.organization,
        first_admin: user,
        first_admin_name: req.name,
        first_admin_extension: extension,
    };
    let meta = CommandMeta::system(org, sessions::now_ms());
    crate::routes::decide_first(&state.ws.directories, &org, &meta.issue(create.clone())).await?;
    // The login is claimed before the organization exists, so a taken email leaves
    // nothing behind but an unused login record of a directory that was never created.
    credentials::register(state.store(), &email, &req.password, org, user).await?;
    state
        .ws
        .directories
        .execute(&org, meta.issue(create), ExecuteOptions::default())
        .await?;
    let (token, expires_at_ms) =
        sessions::start(state.store(), org, user, state.session_ttl_ms).await?;
    Ok((
        StatusCode::CREATED,
        Json(BootstrapResponse {
            organization_id: org,
            user_id: user,
            token,
            expires_at_ms,
        }),
    ))
}
