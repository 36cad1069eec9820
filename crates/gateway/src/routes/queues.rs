//! SMS queues over HTTP: admin creates a queue on a new routed number and adds agents;
//! agents log in/out, claim, release, transfer, close; the contact-center views (Active,
//! Pending, History: the `queues` read model) with per-tab search and read-your-writes
//! (`?after=<position>`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use domain::directory::Routing;
use domain::queue::{QueueCommand, QueuePolicy};
use domain::{ConversationId, QueueId, UserId};
use serde::{Deserialize, Serialize};

use actors::ExecuteOptions;

use crate::app::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::routes::interactions::RYW_TIMEOUT;
use crate::routes::json::ApiJson;
use crate::routes::json::ApiQuery;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewQueue {
    pub name: String,
    pub number: String,
    #[serde(default)]
    pub policy: QueuePolicy,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CreatedQueue {
    pub queue_id: QueueId,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Done {
    /// Position of the last event written, for `?after=` on the views.
    pub position: Option<u64>,
}

/// `POST /v1/queues` (admin).
pub async fn create_queue(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(req): ApiJson<NewQueue>,
) -> Result<(StatusCode, Json<CreatedQueue>), ApiError> {
    let number = crate::routes::phone_number(&req.number)?;
    let id = QueueId::random();
    let create = caller.meta().issue(QueueCommand::CreateQueue {
        id,
        name: req.name,
        number: number.clone(),
        policy: req.policy,
    });
    // Decide first so that a refusal (not admin, blank name) writes nothing.
    crate::routes::decide_first(&state.ws.queues, &id, &create).await?;
    crate::routes::numbers::claim_and_route(&state, &caller, number, Routing::Queue(id)).await?;
    state
        .ws
        .queues
        .execute(&id, create, ExecuteOptions::default())
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedQueue { queue_id: id })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub user: UserId,
}

async fn run(
    state: &AppState,
    caller: &Authenticated,
    queue: QueueId,
    command: QueueCommand,
) -> Result<Json<Done>, ApiError> {
    // A queue of another organization answers as if it did not exist.
    let org = caller.org;
    let ours = state
        .ws
        .queues
        .query(&queue, move |q: &domain::Queue, _| {
            q.header().is_some_and(|h| h.org == org)
        })
        .await?;
    if !ours {
        return Err(ApiError::not_found("queue_not_found", "no such queue"));
    }
    let out = state
        .ws
        .queues
        .execute(
            &queue,
            caller.meta().issue(command),
            ExecuteOptions::default(),
        )
        .await?;
    Ok(Json(Done {
        position: out.position,
    }))
}

pub async fn add_member(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<QueueId>,
    ApiJson(req): ApiJson<Member>,
) -> Result<Json<Done>, ApiError> {
    run(
        &state,
        &caller,
        id,
        QueueCommand::AddMember { user: req.user },
    )
    .await
}

pub async fn log_in(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<QueueId>,
) -> Result<Json<Done>, ApiError> {
    run(&state, &caller, id, QueueCommand::LogIn).await
}

pub async fn log_out(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<QueueId>,
) -> Result<Json<Done>, ApiError> {
    run(&state, &caller, id, QueueCommand::LogOut).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActBody {
    pub to: Option<UserId>,
}

/// `POST /v1/queues/{id}/interactions/{conversation}/{claim|release|transfer|close}`.
pub async fn act(
    State(state): State<AppState>,
    caller: Authenticated,
    Path((id, conversation, action)): Path<(QueueId, ConversationId, String)>,
    body: axum::body::Bytes,
) -> Result<Json<Done>, ApiError> {
    // The body is optional (only transfer needs one).
    let body: ActBody = if body.iter().all(u8::is_ascii_whitespace) {
        ActBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                e.to_string(),
            )
        })?
    };
    let command = match action.as_str() {
        "claim" => QueueCommand::Claim { conversation },
        "release" => QueueCommand::Release { conversation },
        "close" => QueueCommand::Close { conversation },
        "transfer" => QueueCommand::Transfer {
            conversation,
            to: body.to.ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "missing_target",
                    "transfer needs `to`",
                )
            })?,
        },
        _ => return Err(ApiError::not_found("unknown_action", "no such action")),
    };
    run(&state, &caller, id, command).await
}

#[derive(Debug, Deserialize)]
pub struct ViewQuery {
    pub search: Option<String>,
    /// Wait (at most [`RYW_TIMEOUT`]) until the view includes this position: read your
    /// own writes.
    pub after: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Row {
    pub queue_id: QueueId,
    pub queue: String,
    pub conversation_id: ConversationId,
    pub customer: Option<String>,
    pub agent: Option<UserId>,
    pub at_ms: u64,
}

/// Most rows the Active and Pending tabs answer.
pub const VIEW_LIMIT: usize = 500;
/// Most rows the History tab answers.
pub const HISTORY_LIMIT: usize = 100;

#[derive(Clone, Copy)]
enum Tab {
    Active,
    Pending,
    History,
}

/// `GET /v1/queue-views/{active|pending|history}?search=&after=`, from the queue views
/// read model ([`projections::queues`]).
pub async fn view(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(tab): Path<String>,
    ApiQuery(q): ApiQuery<ViewQuery>,
) -> Result<Json<Vec<Row>>, ApiError> {
    let tab = match tab.as_str() {
        "active" => Tab::Active,
        "pending" => Tab::Pending,
        "history" => Tab::History,
        _ => {
            return Err(ApiError::not_found(
                "unknown_view",
                "views are active, pending and history",
            ))
        }
    };
    if let Some(p) = q.after {
        if !state.queues.wait_for(p, RYW_TIMEOUT).await {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "view_behind",
                "the view has not caught up yet; retry",
            ));
        }
    }
    let db = state.queues.db();
    let user = caller.user;
    let rows = tokio::task::spawn_blocking(move || {
        let search = q.search.as_deref();
        match tab {
            Tab::Active => db.active(user, search, VIEW_LIMIT),
            Tab::Pending => db.pending(user, search, VIEW_LIMIT),
            Tab::History => db.history(user, search, HISTORY_LIMIT),
        }
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    Ok(Json(
        rows.into_iter()
            .map(|r| Row {
                queue_id: r.queue,
                queue: r.queue_name,
                conversation_id: r.conversation,
                customer: r.customer.map(|c| c.to_string()),
                agent: r.agent,
                at_ms: r.at_ms,
            })
            .collect(),
    ))
}
