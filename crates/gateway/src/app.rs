//! The application: shared state and the router.

use std::sync::Arc;

use actors::Workspace;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::Router;

use axum::http::HeaderName;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::routes;

/// The header carrying a request's id.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Largest JSON body accepted (attachments have their own upload route and limit).
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub ws: Workspace,
    /// Typing indicators between connected clients: ephemeral, never written to the log.
    pub typing: tokio::sync::broadcast::Sender<crate::routes::stream::Typing>,
    /// The contact-center views; whoever builds the state runs them (`QueueViews::run`).
    pub queue_views: actors::views::queue_views::QueueViews,
    pub limiter: Arc<crate::rate_limit::RateLimiter>,
    /// The conversation lists and inbox views (read model in its own RocksDB instance).
    pub interactions: projections::LiveInteractions,
}

impl AppState {
    /// State over `ws`, with queue views that the caller must run over the same log.
    pub fn new(
        ws: Workspace,
        queue_views: actors::views::queue_views::QueueViews,
        interactions: projections::LiveInteractions,
    ) -> Self {
        let (typing, _) = tokio::sync::broadcast::channel(4096);
        Self {
            ws,
            typing,
            queue_views,
            limiter: Arc::default(),
            interactions,
        }
    }

    pub fn store(&self) -> &Arc<dyn eventlog::EventStore> {
        &self.ws.store
    }
}

/// Every route, with body limits.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/v1/bootstrap", post(routes::bootstrap::bootstrap))
        .route("/v1/sessions", post(routes::sessions::login))
        .route("/v1/sessions/current", delete(routes::sessions::logout))
        .route("/v1/me", get(routes::me::me))
        .route("/v1/users", post(routes::users::create_user))
        .route(
            "/v1/conversations/direct",
            post(routes::conversations::start_direct),
        )
        .route(
            "/v1/conversations/{id}/messages",
            post(routes::conversations::post_message).get(routes::conversations::history),
        )
        .route(
            "/v1/conversations/{id}/read",
            post(routes::conversations::mark_read),
        )
        .route("/v1/stream", get(routes::stream::stream))
        .route("/v1/inboxes", post(routes::inboxes::create_inbox))
        .route(
            "/v1/inboxes/{id}/members",
            post(routes::inboxes::add_member),
        )
        .route(
            "/v1/conversations/{id}/assign-to-me",
            post(routes::inboxes::assign_to_me),
        )
        .route(
            "/v1/conversations/{id}/transfer",
            post(routes::inboxes::transfer),
        )
        .route(
            "/v1/conversations/{id}/return",
            post(routes::inboxes::return_to_inbox),
        )
        .route(
            "/v1/conversations/{id}/done",
            post(routes::inboxes::mark_done),
        )
        .route("/v1/conversations/channel", post(routes::channels::create))
        .route("/v1/conversations/{id}/join", post(routes::channels::join))
        .route("/v1/conversations/{id}/leave", post(routes::channels::leave))
        .route("/v1/conversations/{id}/members", post(routes::channels::add_members))
        .route("/v1/queues", post(routes::queues::create_queue))
        .route("/v1/queues/{id}/members", post(routes::queues::add_member))
        .route("/v1/queues/{id}/login", post(routes::queues::log_in))
        .route("/v1/queues/{id}/logout", post(routes::queues::log_out))
        .route(
            "/v1/queues/{id}/interactions/{conversation}/{action}",
            post(routes::queues::act),
        )
        .route("/v1/queue-views/{tab}", get(routes::queues::view))
        .route("/v1/interactions", get(routes::interactions::list))
        .route(
            "/v1/inboxes/{id}/conversations",
            get(routes::interactions::inbox_view),
        )
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        // Outermost last: every request gets an id (or keeps the caller's), a tracing span
        // carrying it, and the id echoed in the response.
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            let id = req
                .headers()
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), uri = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
        .with_state(state)
}
