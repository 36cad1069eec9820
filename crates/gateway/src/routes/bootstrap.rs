//! `POST /v1/bootstrap`: the first-run path. Creates an organization with its first admin
//! (who gets a login) and returns a session token for them.
//!
//! Who may create an organization is the operator's decision ([`Signups`]): by default
//! only the first one, while the server has none (claimed atomically in the log, so two
//! first runs at once create one organization); with `--allow-signups` anyone; and always
//! whoever presents the operator token (`Authorization: Bearer <--operator-token>`).
//! `GET /v1/bootstrap` tells a client (the web client's login page) whether it is open.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use domain::directory::Extension;
use domain::{CommandMeta, DirectoryCommand, OrgId, UserId};
use serde::{Deserialize, Serialize};

use actors::ExecuteOptions;

use crate::app::AppState;
use crate::auth::{credentials, sessions};
use crate::error::ApiError;
use crate::routes::json::ApiJson;

/// Who may create organizations.
#[derive(Debug, Clone, Default)]
pub struct Signups {
    /// Anyone may (`--allow-signups`); otherwise only the first, while none exists.
    pub open: bool,
    /// Whoever presents this bearer token may, always (`--operator-token`).
    pub operator_token: Option<String>,
}

/// Whether `POST /v1/bootstrap` would take a request without the operator token now.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BootstrapStatus {
    pub open: bool,
}

/// How a bootstrap request is let in.
enum Admission {
    /// Sign-ups are open, or the operator asked.
    Free,
    /// Only as the server's first organization.
    FirstOnly,
}

fn admission(state: &AppState, headers: &HeaderMap) -> Admission {
    let signups = &state.signups;
    let operator = signups.operator_token.as_deref().is_some_and(|token| {
        headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| crate::auth::constant_time_eq(given.as_bytes(), token.as_bytes()))
    });
    if signups.open || operator {
        Admission::Free
    } else {
        Admission::FirstOnly
    }
}

/// Whether any organization exists on this server (a `directory` stream in the log).
async fn any_organization(state: &AppState) -> Result<bool, ApiError> {
    let first = eventlog::store::nonblocking::read_category(
        state.store(),
        <domain::Directory as domain::Aggregate>::CATEGORY,
        0,
        1,
    )
    .await?;
    Ok(!first.is_empty())
}

fn closed() -> ApiError {
    ApiError::forbidden(
        "signups_closed",
        "this server already has an organization; its operator creates new ones",
    )
}

/// `GET /v1/bootstrap`: whether creating an organization is open to anyone now.
pub async fn status(State(state): State<AppState>) -> Result<Json<BootstrapStatus>, ApiError> {
    let open = state.signups.open || !any_organization(&state).await?;
    Ok(Json(BootstrapStatus { open }))
}

/// Claims the place of the server's first organization for `org`; refused once taken.
async fn claim_first(state: &AppState, org: OrgId) -> Result<(), ApiError> {
    if records::claims::claim_first_organization(state.store(), org).await? {
        Ok(())
    } else {
        Err(closed())
    }
}

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
    headers: HeaderMap,
    ApiJson(req): ApiJson<BootstrapRequest>,
) -> Result<(StatusCode, Json<BootstrapResponse>), ApiError> {
    // Unauthenticated and hashing a password: limited for the whole server, so a flood
    // of sign-ups cannot take the CPU.
    state
        .limiter
        .take("bootstrap", crate::rate_limit::Limit::BOOTSTRAP)
        .map_err(ApiError::rate_limited)?;
    let admission = admission(&state, &headers);
    if matches!(admission, Admission::FirstOnly) && any_organization(&state).await? {
        return Err(closed());
    }
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
    if matches!(admission, Admission::FirstOnly) {
        claim_first(&state, org).await?;
    }
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
