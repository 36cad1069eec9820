//! `POST /v1/sessions` (log in) and `DELETE /v1/sessions/current` (log out).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::{credentials, sessions, Authenticated};
use crate::error::ApiError;
use crate::rate_limit::Limit;
use crate::routes::json::ApiJson;

/// The client's IP address, when the server was started with connection info (a
/// directly connected client; behind a proxy, the proxy's).
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(crate::peer::client_ip(parts)))
    }
}

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

/// `POST /v1/sessions`. Guessing is slowed per email *and client address*, and per client
/// address whatever the email: someone who knows an address cannot lock its owner out by
/// failing to log in as them from elsewhere.
pub async fn login(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<(StatusCode, Json<LoginResponse>), ApiError> {
    let from = client.0.map_or_else(|| "-".to_owned(), |ip| ip.to_string());
    let email = req.email.trim().to_lowercase();
    for (key, limit) in [
        (format!("login-from:{from}"), Limit::LOGIN_PER_ADDRESS),
        (format!("login:{email}|{from}"), Limit::LOGIN),
    ] {
        state
            .limiter
            .take(&key, limit)
            .map_err(ApiError::rate_limited)?;
    }
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
