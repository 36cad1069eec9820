//! The application: shared state and the router.

use std::sync::Arc;

use actors::Workspace;
use axum::extract::DefaultBodyLimit;
use axum::Router;

use axum::http::HeaderName;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::routes;

/// The header carrying a request's id.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Largest JSON body accepted (attachments have their own upload route and limit).
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// What every handler can reach: one shared [`AppParts`], so that handing it to a
/// request (axum clones the state for every extractor) is one reference count, not one
/// per part.
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// The parts of an [`AppState`].
#[derive(Clone)]
pub struct AppParts {
    pub ws: Workspace,
    /// Routes live events and typing indicators to WebSocket connections (started on
    /// the first connection).
    pub hub: crate::hub::HubSlot,
    /// Sessions verified so far (authenticating a request reads no storage).
    pub sessions: Arc<crate::auth::sessions::SessionCache>,
    /// How long a login lasts ([`crate::auth::sessions::SESSION_TTL_MS`] by default).
    pub session_ttl_ms: u64,
    /// Users' roles as the directory gave them (see [`crate::auth::extractor::RoleCache`]).
    pub roles: Arc<crate::auth::extractor::RoleCache>,
    /// The SMS queues' waiting lists and contact-center views (read model in its own
    /// RocksDB instance).
    pub queues: projections::LiveQueues,
    pub limiter: Arc<crate::rate_limit::RateLimiter>,
    /// The conversation lists and inbox views (read model in its own RocksDB instance).
    pub interactions: projections::LiveInteractions,
    /// Request counters and latencies, read-model lag (`GET /metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The carrier edge (attachment store, webhooks, simulator); `None` without one.
    pub carriers: Option<Arc<crate::carriers::CarrierState>>,
    /// Full-text message search (tantivy read model); `None`: `/v1/search` answers 503.
    pub search: Option<projections::LiveSearch>,
    /// Keyed POSTs running now (see [`routes::idempotency::replay_or_record`]).
    pub idempotency: Arc<routes::idempotency::InFlight>,
    /// Which webhook endpoints may be registered (see `workers::webhooks`).
    pub webhooks: workers::webhooks::WebhookConfig,
    /// Who may create organizations (see [`routes::bootstrap`]).
    pub signups: routes::bootstrap::Signups,
}

impl AppState {
    /// State over `ws`, with read models following the same log.
    pub fn new(
        ws: Workspace,
        queues: projections::LiveQueues,
        interactions: projections::LiveInteractions,
    ) -> Self {
        Self(Arc::new(AppParts {
            ws,
            hub: crate::hub::HubSlot::default(),
            sessions: Arc::default(),
            session_ttl_ms: crate::auth::sessions::SESSION_TTL_MS,
            roles: Arc::default(),
            queues,
            limiter: Arc::default(),
            interactions,
            metrics: Arc::default(),
            carriers: None,
            search: None,
            idempotency: Arc::default(),
            webhooks: workers::webhooks::WebhookConfig::default(),
            signups: routes::bootstrap::Signups::default(),
        }))
    }

    /// The same state with the search read model (see [`projections::LiveSearch`]).
    pub fn with_search(mut self, search: projections::LiveSearch) -> Self {
        Arc::make_mut(&mut self.0).search = Some(search);
        self
    }

    /// The same state with a carrier edge (see [`crate::carriers::CarrierEdge::start`]).
    pub fn with_carriers(mut self, carriers: Arc<crate::carriers::CarrierState>) -> Self {
        Arc::make_mut(&mut self.0).carriers = Some(carriers);
        self
    }

    /// The same state with this hub (e.g. with other limits).
    #[must_use]
    pub fn with_hub(mut self, hub: crate::hub::HubSlot) -> Self {
        Arc::make_mut(&mut self.0).hub = hub;
        self
    }

    /// The same state with logins lasting `ttl` (at least a second).
    #[must_use]
    pub fn with_session_ttl(mut self, ttl: std::time::Duration) -> Self {
        Arc::make_mut(&mut self.0).session_ttl_ms = u64::try_from(ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1_000);
        self
    }

    /// The same state with this webhook configuration.
    #[must_use]
    pub fn with_webhooks(mut self, webhooks: workers::webhooks::WebhookConfig) -> Self {
        Arc::make_mut(&mut self.0).webhooks = webhooks;
        self
    }

    /// The same state with this sign-up policy.
    #[must_use]
    pub fn with_signups(mut self, signups: routes::bootstrap::Signups) -> Self {
        Arc::make_mut(&mut self.0).signups = signups;
        self
    }

    /// The same state with these metrics (e.g. with a scrape token).
    #[must_use]
    pub fn with_metrics(mut self, metrics: crate::metrics::Metrics) -> Self {
        Arc::make_mut(&mut self.0).metrics = Arc::new(metrics);
        self
    }

    pub fn store(&self) -> &Arc<dyn eventlog::EventStore> {
        &self.ws.store
    }

    /// Opens the sealed texts of events read from the log (see `actors::sealing`).
    pub fn sealer(&self) -> &actors::sealing::Sealer {
        &self.ws.sealer
    }
}

/// Every route of [`crate::openapi::OPERATIONS`] this server mounts (a carrier's routes only
/// with that carrier), and the web client's files; body limits; `Idempotency-Key` on the
/// rows that record their answers.
pub fn router(state: AppState) -> Router {
    let carrier = state.carriers.as_ref().map(|c| c.kind.carrier().name());
    let mut api = Router::new();
    for op in crate::openapi::OPERATIONS {
        if !op.mounted_with(carrier) {
            continue;
        }
        let mut handler = (op.handler)();
        if op.idempotency == crate::openapi::Idempotency::Recorded {
            handler = handler.layer(axum::middleware::from_fn_with_state(
                (state.clone(), op),
                routes::idempotency::replay_or_record,
            ));
        }
        // Rows of one path are merged into one method router (axum panics on a method
        // routed twice, so a duplicated row cannot go unnoticed).
        api = api.route(op.path, handler);
    }
    api
        .merge(routes::web::router())
        // Unknown paths and methods answer in the API's error shape too.
        .fallback(|| async { crate::error::ApiError::not_found("route_not_found", "there is no such route") })
        .method_not_allowed_fallback(|| async {
            crate::error::ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::metrics::track,
        ))
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
