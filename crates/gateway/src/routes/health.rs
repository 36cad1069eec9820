//! `GET /healthz`: liveness for load balancers; unauthenticated by design, reveals nothing
//! but the log's position.

use axum::extract::State;
use axum::Json;

use crate::app::AppState;

/// The liveness answer.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Health {
    /// Always `"ok"`.
    pub status: &'static str,
    /// The position the log's next event will take.
    pub log_next_position: u64,
}

pub async fn healthz(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        log_next_position: state.store().next_position(),
    })
}
