//! `GET /v1/me`: the caller as the directory knows them; `PUT /v1/me/password`: a new
//! password, which signs out every other session of the caller.

use axum::extract::State;
use axum::Json;
use domain::{OrgId, UserId};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Me {
    pub user_id: UserId,
    pub organization_id: OrgId,
    pub organization: String,
    pub name: String,
    pub extension: String,
    pub role: crate::routes::wire::RoleName,
}

pub async fn me(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<Json<Me>, ApiError> {
    let user = caller.user;
    let found = state
        .ws
        .directories
        .query(&caller.org, move |d: &domain::Directory, _| {
            let org = d.organization()?;
            let u = d.user(&user)?;
            Some(Me {
                user_id: u.id,
                organization_id: org.id,
                organization: org.name.clone(),
                name: u.name.clone(),
                extension: u.extension.to_string(),
                role: u.role.into(),
            })
        })
        .await?;
    found.map(Json).ok_or_else(ApiError::unauthenticated)
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The caller's login, confirmed with the current password.
    pub email: String,
    pub current_password: String,
    /// 12 to 256 characters.
    pub new_password: String,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PasswordChanged {
    /// How many other sessions of the caller were signed out; this one stays.
    pub signed_out_sessions: usize,
}

/// `PUT /v1/me/password`. Guessing is slowed as logins are (per user and per address).
pub async fn change_password(
    State(state): State<AppState>,
    client: crate::routes::sessions::ClientAddr,
    caller: Authenticated,
    crate::routes::json::ApiJson(req): crate::routes::json::ApiJson<PasswordChange>,
) -> Result<Json<PasswordChanged>, ApiError> {
    use crate::rate_limit::Limit;
    let from = client.0.map_or_else(|| "-".to_owned(), |ip| ip.to_string());
    for (key, limit) in [
        (format!("login-from:{from}"), Limit::LOGIN_PER_ADDRESS),
        (format!("password:{}", caller.user), Limit::LOGIN),
    ] {
        state
            .limiter
            .take(&key, limit)
            .map_err(ApiError::rate_limited)?;
    }
    crate::auth::credentials::change_password(
        state.store(),
        caller.user,
        &req.email,
        &req.current_password,
        &req.new_password,
    )
    .await?;
    let signed_out_sessions = state
        .sessions
        .revoke_all_but(state.store(), caller.user, caller.session.id)
        .await?;
    Ok(Json(PasswordChanged {
        signed_out_sessions,
    }))
}
