//! The application: shared state and the router.

use std::sync::Arc;

use actors::Workspace;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, patch, post, put};
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
        Arc::make_mut(&mut self.0).session_ttl_ms = (ttl.as_millis() as u64).max(1_000);
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

/// Every route, with body limits.
pub fn router(state: AppState) -> Router {
    let carrier_routes = carrier_routes(&state);
    Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/metrics", get(crate::metrics::metrics))
        .route("/openapi.json", get(crate::openapi::openapi))
        .route("/asyncapi.json", get(crate::asyncapi::asyncapi))
        .route(
            "/v1/bootstrap",
            get(routes::bootstrap::status).post(routes::bootstrap::bootstrap),
        )
        .route("/v1/sessions", post(routes::sessions::login))
        .route("/v1/sessions/current", delete(routes::sessions::logout))
        .route("/v1/me", get(routes::me::me))
        .route("/v1/me/password", put(routes::me::change_password))
        .route(
            "/v1/users",
            get(routes::users::list).post(routes::users::create_user),
        )
        .route("/v1/users/{id}/role", post(routes::users::change_role))
        .route("/v1/users/{id}/name", put(routes::users::rename))
        .route(
            "/v1/users/{id}/settings",
            put(routes::settings::put_user_settings),
        )
        .route(
            "/v1/me/settings",
            get(routes::settings::get_settings).put(routes::settings::put_my_settings),
        )
        .route(
            "/v1/numbers",
            get(routes::numbers::list).post(routes::numbers::add_number),
        )
        .route(
            "/v1/numbers/{number}/assignees",
            post(routes::numbers::assign),
        )
        .route(
            "/v1/numbers/{number}/assignees/{user}",
            delete(routes::numbers::unassign),
        )
        .route("/v1/numbers/{number}/route", post(routes::numbers::route))
        .route(
            "/v1/numbers/{number}/sms-registration",
            post(routes::numbers::set_sms_registration),
        )
        .route(
            "/v1/conversations/external",
            post(routes::conversations::start_external),
        )
        .route(
            "/v1/conversations/direct",
            post(routes::conversations::start_direct),
        )
        .route(
            "/v1/conversations/group",
            post(routes::conversations::start_group),
        )
        .route(
            "/v1/conversations/{id}/calls",
            post(routes::conversations::start_call),
        )
        .route(
            "/v1/conversations/{id}/calls/{call}/end",
            post(routes::conversations::end_call),
        )
        .route("/v1/conversations/{id}", get(routes::interactions::one))
        .route("/v1/conversations/{id}/name", post(routes::channels::rename))
        .route(
            "/v1/conversations/{id}/messages",
            post(routes::conversations::post_message).get(routes::conversations::history),
        )
        .route(
            "/v1/conversations/{id}/read",
            post(routes::conversations::mark_read),
        )
        .route("/v1/stream", get(routes::stream::stream))
        .route(
            "/v1/inboxes",
            get(routes::inboxes::list).post(routes::inboxes::create_inbox),
        )
        .route("/v1/inboxes/{id}", patch(routes::inboxes::rename))
        .route(
            "/v1/inboxes/{id}/members",
            post(routes::inboxes::add_member),
        )
        .route(
            "/v1/inboxes/{id}/members/{user}",
            delete(routes::inboxes::remove_member),
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
        .route(
            "/v1/conversations/{id}/members",
            post(routes::channels::add_members).get(routes::channels::members),
        )
        .route(
            "/v1/queues",
            get(routes::queues::list).post(routes::queues::create_queue),
        )
        .route("/v1/queues/{id}/waiting", get(routes::queues::waiting))
        .route("/v1/queues/{id}/members", post(routes::queues::add_member))
        .route(
            "/v1/queues/{id}/members/{user}",
            delete(routes::queues::remove_member),
        )
        .route("/v1/queues/{id}/policy", put(routes::queues::set_policy))
        .route("/v1/queues/{id}/login", post(routes::queues::log_in))
        .route("/v1/queues/{id}/logout", post(routes::queues::log_out))
        .route(
            "/v1/queues/{id}/interactions/{conversation}/{action}",
            post(routes::queues::act),
        )
        .route("/v1/queue-views/{tab}", get(routes::queues::view))
        .route("/v1/interactions", get(routes::interactions::list))
        .route("/v1/channels", get(routes::interactions::channels))
        .route(
            "/v1/inboxes/{id}/conversations",
            get(routes::interactions::inbox_view),
        )
        .route("/v1/search", get(routes::search::search))
        .route(
            "/v1/contacts",
            get(routes::contacts::list).post(routes::contacts::create),
        )
        .route("/v1/contacts/search", get(routes::contacts::search))
        .route(
            "/v1/contacts/{id}",
            get(routes::contacts::get)
                .patch(routes::contacts::patch)
                .put(routes::contacts::replace)
                .delete(routes::contacts::delete),
        )
        .route(
            "/v1/numbers/{number}/name",
            get(routes::contacts::number_name),
        )
        .route(
            "/v1/retention",
            get(routes::retention::get).put(routes::retention::put),
        )
        .route(
            "/v1/erasures",
            get(routes::retention::list).post(routes::retention::create),
        )
        .route(
            "/v1/webhooks",
            get(routes::webhooks::list).post(routes::webhooks::create),
        )
        .route(
            "/v1/webhooks/{id}",
            delete(routes::webhooks::remove),
        )
        .route(
            "/v1/webhooks/{id}/deliveries",
            get(routes::webhooks::list_deliveries),
        )
        .route(
            "/v1/webhooks/{id}/deliveries/{delivery_id}",
            get(routes::webhooks::get_delivery),
        )
        .route(
            "/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver",
            post(routes::webhooks::redeliver),
        )
        .merge(carrier_routes)
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
        // `Idempotency-Key` on the POSTs whose handlers do not take it themselves.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            routes::idempotency::replay_or_record,
        ))
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

/// Attachments, and the routes of the configured carrier: Twilio's webhooks (no bearer
/// token: signed) or the simulator's controls. Mounted only with a carrier edge.
fn carrier_routes(state: &AppState) -> Router<AppState> {
    let Some(carriers) = &state.carriers else {
        return Router::new();
    };
    let router = Router::new()
        .route(
            "/v1/attachments",
            post(routes::attachments::upload)
                .layer(DefaultBodyLimit::max(routes::attachments::MAX_UPLOAD_BODY)),
        )
        .route("/v1/attachments/{key}", get(routes::attachments::fetch))
        .route(
            "/v1/carriers/media/{id}/{token}",
            get(routes::attachments::carrier_media),
        );
    match &carriers.kind {
        crate::carriers::CarrierKind::Twilio(_) => router
            .route("/v1/carriers/twilio/inbound", post(routes::twilio::inbound))
            .route("/v1/carriers/twilio/status", post(routes::twilio::status)),
        crate::carriers::CarrierKind::Simulator(_) => router
            .route("/v1/simulator/inbound", post(routes::simulator::inbound))
            .route("/v1/simulator/outbound", get(routes::simulator::outbound))
            .route("/v1/simulator/outcome", post(routes::simulator::outcome))
            .route("/v1/simulator/release", post(routes::simulator::release)),
    }
}
