//! The caller of a request, from its bearer token.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use domain::{OrgId, Role, UserId};

use crate::app::AppState;
use crate::auth::sessions::{self, Session};
use crate::error::ApiError;

/// An authenticated caller: a live session of a user who still exists in their
/// organization's directory, with the role the directory gives them now.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated {
    pub session: Session,
    pub org: OrgId,
    pub user: UserId,
    pub role: Role,
}

impl Authenticated {
    /// The command context of this caller, now.
    pub fn meta(&self) -> domain::CommandMeta {
        domain::CommandMeta::user(self.org, self.user, self.role, sessions::now_ms())
    }
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(ApiError::unauthenticated)?;
        let token = header
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(ApiError::unauthenticated)?;
        let session = state.sessions.check(&state.ws.store, token).await?;
        let user = session.user;
        if !state
            .limiter
            .allow(&user.to_string(), crate::rate_limit::Limit::API)
        {
            return Err(ApiError::rate_limited());
        }
        let role = state
            .ws
            .directories
            .query(&session.org, move |d: &domain::Directory, _| {
                d.user(&user).map(|u| u.role)
            })
            .await
            .map_err(ApiError::from)?
            .ok_or_else(ApiError::unauthenticated)?;
        Ok(Self {
            session,
            org: session.org,
            user,
            role,
        })
    }
}
