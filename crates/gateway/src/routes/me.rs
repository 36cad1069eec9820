//! `GET /v1/me`: the caller as the directory knows them.

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
