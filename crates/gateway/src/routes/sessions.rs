//! `POST /v1/sessions` (log in) and `DELETE /v1/sessions/current` (log out).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::{credentials, sessions, Authenticated};
use crate::error::ApiError;
use crate::routes::json::ApiJson;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoginResponse {
    pub token: String,
    pub expires_at_ms: u64,
}

pub async fn login(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<(StatusCode, Json<LoginResponse>), ApiError> {
    // Password guessing is slowed per email, whoever asks.
    let key = format!("login:{}", req.email.trim().to_lowercase());
    state
        .limiter
        .take(&key, crate::rate_limit::Limit::LOGIN)
        .map_err(ApiError::rate_limited)?;
    let (org, user) = credentials::verify(state.store(), &req.email, &req.password).await?;
    let (token, expires_at_ms) =
        sessions::start(state.store(), org, user, state.session_ttl_ms).await?;
    Ok((
        StatusCode::CREATED,
        Json(LoginResponse {
            token,
            expires_at_ms,
        }),
    ))
}

pub async fn logout(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<StatusCode, ApiError> {
    state
        .sessions
        .revoke(state.store(), caller.session.id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
