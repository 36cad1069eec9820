//! `GET /healthz`: health for load balancers and operators; unauthenticated by design,
//! reveals nothing but the log's position and, when it cannot write, why in general terms
//! (never paths or engine messages).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::app::AppState;

/// The health answer: 200 with `"ok"`, or 503 with `"unavailable"` and the reason.
#[derive(Debug, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Health {
    /// `"ok"`, or `"unavailable"` while the server cannot take writes.
    pub status: String,
    /// The position the log's next event will take.
    pub log_next_position: u64,
    /// Why the server is unavailable: a stable code (`storage_unavailable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The reason in words (e.g. "the disk holding the event log is full").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

pub async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let store = state.store();
    let log_next_position = store.next_position();
    match store.write_unavailable() {
        None => (
            StatusCode::OK,
            Json(Health {
                status: "ok".into(),
                log_next_position,
                reason: None,
                message: None,
            }),
        ),
        Some(detail) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "unavailable".into(),
                log_next_position,
                reason: Some("storage_unavailable".into()),
                message: Some(in_general_terms(&detail).into()),
            }),
        ),
    }
}

/// What a storage failure means, without the engine's detail (which names files).
fn in_general_terms(detail: &str) -> &'static str {
    if detail.contains("No space left") || detail.contains("NoSpace") {
        "the disk holding the event log is full; writes resume by themselves once there is room"
    } else {
        "the event log cannot write; writes resume by themselves once storage recovers"
    }
}
