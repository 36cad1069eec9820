//! SMS queues over HTTP: admin creates a queue on a new routed number and adds agents;
//! agents log in/out, claim, release, transfer, close; from the `queues` read model, with
//! read-your-writes (`?after=<position>`): the caller's queues and whether they are logged
//! into each (`GET /v1/queues`), one queue's waiting list (`GET /v1/queues/{id}/waiting`,
//! members and admins) and the contact-center views (Active, Pending, History) with
//! per-tab search.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use domain::directory::Routing;
use domain::queue::QueueCommand;
use domain::visibility::queue_audience;
use domain::{ConversationId, QueueId, UserId};
use serde::{Deserialize, Serialize};

use actors::ExecuteOptions;

use crate::app::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::routes::interactions::RYW_TIMEOUT;
use crate::routes::json::ApiJson;
use crate::routes::json::ApiPath;
use crate::routes::json::ApiQuery;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewQueue {
    pub name: String,
    pub number: String,
    #[serde(default)]
    pub policy: crate::routes::wire::Policy,
    /// Register the number for SMS at once (default true, as `POST /v1/numbers`): only
    /// registered numbers send, so agents can answer the texts it receives.
    #[serde(default = "crate::routes::numbers::registered_by_default")]
    pub sms_registered: bool,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CreatedQueue {
    pub queue_id: QueueId,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "QueueWritten")]
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
        policy: req.policy.into(),
    });
    // Decide first so that a refusal (not admin, blank name) writes nothing.
    crate::routes::decide_first(&state.ws.queues, &id, &create).await?;
    crate::routes::numbers::claim_and_route(
        &state,
        &caller,
        number,
        Routing::Queue(id),
        req.sms_registered,
    )
    .await?;
    state
        .ws
        .queues
        .execute(&id, create, ExecuteOptions::default())
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedQueue { queue_id: id })))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "QueueMember")]
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
    ApiPath(id): ApiPath<QueueId>,
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

/// `DELETE /v1/queues/{id}/members/{user}` (admin): off the queue and logged out; what
/// they hold stays theirs until released, transferred, closed or timed out.
pub async fn remove_member(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath((id, user)): ApiPath<(QueueId, UserId)>,
) -> Result<Json<Done>, ApiError> {
    run(&state, &caller, id, QueueCommand::RemoveMember { user }).await
}

/// `PUT /v1/queues/{id}/policy` (admin): the queue's timeouts from now on (timers already
/// running keep their deadlines).
pub async fn set_policy(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<QueueId>,
    ApiJson(policy): ApiJson<crate::routes::wire::Policy>,
) -> Result<Json<Done>, ApiError> {
    let policy = policy.into();
    run(&state, &caller, id, QueueCommand::SetPolicy { policy }).await
}

pub async fn log_in(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<QueueId>,
) -> Result<Json<Done>, ApiError> {
    run(&state, &caller, id, QueueCommand::LogIn).await
}

pub async fn log_out(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<QueueId>,
) -> Result<Json<Done>, ApiError> {
    run(&state, &caller, id, QueueCommand::LogOut).await
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "QueueAction")]
#[serde(deny_unknown_fields)]
pub struct ActBody {
    pub to: Option<UserId>,
}

/// `POST /v1/queues/{id}/interactions/{conversation}/{claim|release|transfer|close}`.
pub async fn act(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath((id, conversation, action)): ApiPath<(QueueId, ConversationId, String)>,
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

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ViewQuery {
    /// Matches the customer's digits or the queue's name, in this tab only.
    pub search: Option<String>,
    /// Wait (at most [`RYW_TIMEOUT`]) until the view includes this position: read your
    /// own writes.
    pub after: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "QueueViewRow")]
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
    ApiPath(tab): ApiPath<String>,
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
    caught_up(&state, q.after).await?;
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
    .map_err(ApiError::from)?;
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

/// Waits (at most [`RYW_TIMEOUT`]) until the queue views include position `after`: read
/// your own writes. 503 `view_behind` if they do not in time.
async fn caught_up(state: &AppState, after: Option<u64>) -> Result<(), ApiError> {
    if let Some(p) = after {
        if !state.queues.wait_for(p, RYW_TIMEOUT).await {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "view_behind",
                "the view has not caught up yet; retry",
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AfterQuery {
    /// Wait (at most [`RYW_TIMEOUT`]) until the answer includes this position.
    pub after: Option<u64>,
}

/// One of the caller's queues.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MyQueue {
    pub queue_id: QueueId,
    pub name: String,
    /// Whether the caller is one of its agents (an admin sees every queue).
    pub member: bool,
    /// Whether the caller is logged in: only logged-in agents are offered its work.
    pub logged_in: bool,
    /// How many interactions wait in it (counted up to [`VIEW_LIMIT`]).
    pub waiting: usize,
    /// Its agents (members), and which of them are logged in.
    pub members: Vec<UserId>,
    pub logged_in_members: Vec<UserId>,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MyQueues {
    pub items: Vec<MyQueue>,
}

/// `GET /v1/queues?after=`: the queues the caller is an agent (member) of — for an admin,
/// every queue of the organization — by name, with whether they are logged into each and
/// who its agents are.
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiQuery(q): ApiQuery<AfterQuery>,
) -> Result<Json<MyQueues>, ApiError> {
    caught_up(&state, q.after).await?;
    let db = state.queues.db();
    let (org, user) = (caller.org, caller.user);
    // The organization's admins, and every queue a number of it routes to: an admin sees
    // them all (the visibility rule's queue audience).
    let (admins, routed): (BTreeSet<UserId>, Vec<QueueId>) = state
        .ws
        .directories
        .query(&org, |d: &domain::Directory, _| {
            let admins = d
                .users()
                .filter(|u| u.role == domain::Role::Admin)
                .map(|u| u.id)
                .collect();
            let routed = d
                .numbers()
                .filter_map(|n| match n.route {
                    Routing::Queue(q) => Some(q),
                    _ => None,
                })
                .collect();
            (admins, routed)
        })
        .await?;
    let routed = if admins.contains(&user) {
        routed
    } else {
        Vec::new()
    };
    let mut items = tokio::task::spawn_blocking(move || {
        let mut items = Vec::new();
        let mut queues = db.queues_of(&user)?;
        queues.extend(routed);
        queues.sort_unstable();
        queues.dedup();
        for queue in queues {
            let Some(view) = db.queue(&queue)? else {
                continue;
            };
            let member = view.members.contains(&user);
            if view.org != Some(org)
                || !queue_audience(&view.members, &admins, None).contains(&user)
            {
                continue;
            }
            items.push(MyQueue {
                queue_id: queue,
                member,
                logged_in: view.logged_in.contains(&user),
                waiting: db.waiting(&queue, VIEW_LIMIT)?.len(),
                members: view.members.iter().copied().collect(),
                logged_in_members: view.logged_in.iter().copied().collect(),
                name: view.name,
            });
        }
        Ok::<_, projections::ProjectionError>(items)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::from)?;
    items.sort_by(|a, b| (&a.name, a.queue_id).cmp(&(&b.name, b.queue_id)));
    Ok(Json(MyQueues { items }))
}

/// One interaction of a waiting list.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WaitingRow {
    pub conversation_id: ConversationId,
    /// The customer's number (External conversations).
    pub customer: Option<String>,
    /// When it started waiting (queued, or released back).
    pub since_ms: u64,
    /// The interaction's number in the queue.
    pub interaction: u64,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WaitingList {
    pub queue_id: QueueId,
    pub name: String,
    /// Oldest first: agents see as many as the queue's policy shows
    /// (`max_pending_visible`), admins up to [`VIEW_LIMIT`].
    pub items: Vec<WaitingRow>,
}

/// `GET /v1/queues/{id}/waiting?after=`: one queue's waiting list, oldest first, for its
/// members and the organization's admins.
///
/// # Errors
/// `queue_not_found` (404: no such queue in the caller's organization),
/// `not_a_queue_member` (403), `view_behind` (503).
pub async fn waiting(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<QueueId>,
    ApiQuery(q): ApiQuery<AfterQuery>,
) -> Result<Json<WaitingList>, ApiError> {
    let org = caller.org;
    // Who may look is the visibility rule's, over the queue's current agents (a
    // membership change applies at once).
    let access = state
        .ws
        .queues
        .query(&id, move |q: &domain::Queue, _| {
            q.header()
                .filter(|h| h.org == org)
                .map(|h| (h.name.clone(), h.policy.max_pending_visible))
        })
        .await?;
    let Some((name, shown)) = access else {
        return Err(ApiError::not_found("queue_not_found", "no such queue"));
    };
    let admin = caller.role == domain::Role::Admin;
    if !crate::routes::facts::sees_queue(&state, &caller, id).await? {
        return Err(ApiError::forbidden(
            "not_a_queue_member",
            "only the queue's agents and admins see its waiting list",
        ));
    }
    let limit = match shown {
        Some(max) if !admin => (max as usize).min(VIEW_LIMIT),
        _ => VIEW_LIMIT,
    };
    caught_up(&state, q.after).await?;
    let db = state.queues.db();
    let items = tokio::task::spawn_blocking(move || {
        db.waiting(&id, limit)?
            .into_iter()
            .map(|w| {
                Ok(WaitingRow {
                    conversation_id: w.conversation,
                    customer: db.customer(&w.conversation)?.map(|c| c.to_string()),
                    since_ms: w.since_ms,
                    interaction: w.interaction,
                })
            })
            .collect::<Result<Vec<_>, projections::ProjectionError>>()
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::from)?;
    Ok(Json(WaitingList {
        queue_id: id,
        name,
        items,
    }))
}
