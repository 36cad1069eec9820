//! `GET /metrics`: Prometheus text exposition (the `prometheus` crate).
//!
//! - `http_requests_total{method,route,status}` and
//!   `http_request_duration_seconds{method,route}`: every request, by route template
//!   (never the raw path, so ids do not explode the label set);
//! - `websocket_connections`: open `/v1/stream` connections;
//! - `eventlog_next_position`: the next position the log will assign (events written);
//! - `readmodel_position{model}` and `readmodel_lag_events{model}`: how far each read
//!   model (`interactions`, `queues`, `search`) has applied the log (positions applied,
//!   so `position + lag = eventlog_next_position`), and how far behind it is;
//! - `follower_position{follower}` and `follower_lag_events{follower}`: the same for each
//!   follower started on this node (the process managers, by checkpoint name). A cluster
//!   runs the leader's followers on one node at a time: on a node that lost the lead
//!   their series stay where they stopped.
//!
//! Scraping needs authentication like every other route: an admin's bearer token, or the
//! scrape token the server was started with (`--metrics-token`).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::app::AppState;
use crate::error::ApiError;

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    durations: HistogramVec,
    pub websockets: IntGauge,
    log_position: IntGauge,
    model_position: IntGaugeVec,
    model_lag: IntGaugeVec,
    follower_position: IntGaugeVec,
    follower_lag: IntGaugeVec,
    /// A token a scraper may present instead of an admin session.
    pub scrape_token: Option<String>,
    /// The operator's organization, once known: the first one created on this server.
    operator: std::sync::OnceLock<domain::OrgId>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(None)
    }
}

impl Metrics {
    /// # Panics
    /// Never: the metric names and labels are static and valid.
    pub fn new(scrape_token: Option<String>) -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route and status"),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let durations = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            ),
            &["method", "route"],
        )
        .expect("valid metric");
        let websockets = IntGauge::new("websocket_connections", "open /v1/stream connections")
            .expect("valid metric");
        let log_position = IntGauge::new(
            "eventlog_next_position",
            "the next position the event log assigns (events written)",
        )
        .expect("valid metric");
        let model_position = IntGaugeVec::new(
            Opts::new(
                "readmodel_position",
                "log positions a read model has applied (the next one it will apply)",
            ),
            &["model"],
        )
        .expect("valid metric");
        let model_lag = IntGaugeVec::new(
            Opts::new(
                "readmodel_lag_events",
                "events a read model has still to apply",
            ),
            &["model"],
        )
        .expect("valid metric");
        let follower_position = IntGaugeVec::new(
            Opts::new(
                "follower_position",
                "log positions a follower has handled (the next one it will handle)",
            ),
            &["follower"],
        )
        .expect("valid metric");
        let follower_lag = IntGaugeVec::new(
            Opts::new(
                "follower_lag_events",
                "events a follower has still to handle",
            ),
            &["follower"],
        )
        .expect("valid metric");
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(durations.clone()),
            Box::new(websockets.clone()),
            Box::new(log_position.clone()),
            Box::new(model_position.clone()),
            Box::new(model_lag.clone()),
            Box::new(follower_position.clone()),
            Box::new(follower_lag.clone()),
        ] {
            registry.register(c).expect("registered once");
        }
        Self {
            registry,
            requests,
            durations,
            websockets,
            log_position,
            model_position,
            model_lag,
            follower_position,
            follower_lag,
            scrape_token: scrape_token.filter(|t| !t.is_empty()),
            operator: std::sync::OnceLock::new(),
        }
    }

    fn render(&self, state: &AppState) -> String {
        let next = state.store().next_position();
        self.log_position
            .set(i64::try_from(next).unwrap_or(i64::MAX));
        let models = [
            (
                projections::interactions::NAME,
                Some(state.interactions.position()),
            ),
            (projections::queues::NAME, Some(state.queues.position())),
            (
                projections::search::NAME,
                state.search.as_ref().map(projections::LiveSearch::position),
            ),
        ];
        for (model, position) in models {
            // A server without a search model has no series for it (rather than a lag
            // that only grows).
            let Some(position) = position else { continue };
            gauge_pair(&self.model_position, &self.model_lag, model, position, next);
        }
        for (follower, position) in state.ws.progress.positions() {
            gauge_pair(
                &self.follower_position,
                &self.follower_lag,
                &follower,
                position,
                next,
            );
        }
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Sets `label`'s position, as positions applied (the next one wanted, comparable with
/// the log's `next` position), and its lag behind `next`.
fn gauge_pair(
    position_gauge: &IntGaugeVec,
    lag_gauge: &IntGaugeVec,
    label: &str,
    position: Option<u64>,
    next: u64,
) {
    let applied = position.map_or(0, |p| p + 1);
    position_gauge
        .with_label_values(&[label])
        .set(i64::try_from(applied).unwrap_or(i64::MAX));
    lag_gauge
        .with_label_values(&[label])
        .set(i64::try_from(next.saturating_sub(applied)).unwrap_or(i64::MAX));
}

/// Counts and times every request by its route template.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    // No allocation per request: a standard method clones as a constant, a matched path
    // is an `Arc<str>`.
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let response = next.run(req).await;
    let (method, status) = (method.as_str(), response.status());
    metrics
        .requests
        .with_label_values(&[method, route, status.as_str()])
        .inc();
    metrics
        .durations
        .with_label_values(&[method, route])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics` (an admin session or the scrape token).
pub async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(ApiError::unauthenticated)?;
    let scrape_ok = state
        .metrics
        .scrape_token
        .as_deref()
        .is_some_and(|t| crate::auth::constant_time_eq(t.as_bytes(), token.as_bytes()));
    if !scrape_ok {
        let session = state.sessions.check(state.store(), token).await?;
        let (org, user) = (session.org, session.user);
        // The figures are the whole server's: for the operator, not for every tenant.
        if operator(&state).await? != Some(org) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "operator_only",
                "metrics are for the operator's admins and scrapers",
            ));
        }
        let admin = state
            .ws
            .directories
            .query(&org, move |d: &domain::Directory, _| {
                d.user(&user).is_some_and(|u| u.role == domain::Role::Admin)
            })
            .await?;
        if !admin {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "admin_only",
                "metrics are for admins and scrapers",
            ));
        }
    }
    let body = state.metrics.render(&state);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response())
}

/// The operator's organization: the first one created on this server (the first
/// `directory` stream of the log), or `None` before any.
async fn operator(state: &AppState) -> Result<Option<domain::OrgId>, ApiError> {
    if let Some(org) = state.metrics.operator.get() {
        return Ok(Some(*org));
    }
    let first = eventlog::store::nonblocking::read_category(
        state.store(),
        <domain::Directory as domain::Aggregate>::CATEGORY,
        0,
        1,
    )
    .await
    .map_err(ApiError::from)?;
    let Some(record) = first.first() else {
        return Ok(None);
    };
    let org: domain::OrgId = record.stream.id().parse().map_err(ApiError::internal)?;
    Ok(Some(*state.metrics.operator.get_or_init(|| org)))
}
