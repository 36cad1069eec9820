//! `GET /healthz`: liveness for load balancers; unauthenticated by design, reveals nothing
//! but the log's position.

use axum::extract::State;
use axum::Json;

use crate::app::AppState;

pub async fn healthz(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "log_next_position": state.store().next_position() }))
}
