//! `/v1/webhooks`: an organization's admins register, list and remove outbound webhook
//! endpoints and read and redeliver their deliveries. The registrations, the follower
//! that turns events into deliveries and the dispatcher are `workers::webhooks`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use domain::webhook::{WebhookAdded, WebhookEvent, WebhookRemoved};
use domain::OrgId;
use eventlog::Direction;
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use workers::webhooks::deliveries::{
    enqueue, log_stream, read_delivery, read_listed, DeliveryDetail, DeliveryList, DeliveryPage,
    DeliveryView, Folded, Queued, MAX_PAGE, MAX_SCAN,
};
use workers::webhooks::{self, Endpoint, EVENTS, MAX_WEBHOOKS};

use crate::app::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::routes::json::{ApiJson, ApiQuery};

fn admin(caller: &Authenticated) -> Result<(), ApiError> {
    caller.require_admin("manages webhooks")
}

/// `POST /v1/webhooks` body.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    pub url: String,
    /// Some of [`EVENTS`].
    pub events: Vec<String>,
}

/// An endpoint as listed (never with its secret).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct WebhookView {
    #[schemars(with = "String")]
    pub webhook_id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub created_at_ms: u64,
}

/// `POST /v1/webhooks` answer: the endpoint and its signing secret, shown this once.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// Hex; the key of `Switchboard-Signature`'s HMAC.
    pub secret: String,
}

/// `GET /v1/webhooks` answer.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct WebhookList {
    pub items: Vec<WebhookView>,
}

fn view(e: &Endpoint) -> WebhookView {
    WebhookView {
        webhook_id: e.id,
        url: e.url.clone(),
        events: e.events.clone(),
        created_at_ms: e.at_ms,
    }
}

async fn append(
    state: &AppState,
    org: OrgId,
    version: Option<u64>,
    event: &WebhookEvent,
) -> Result<(), ApiError> {
    match webhooks::append(state.store(), org, version, event).await {
        Ok(()) => Ok(()),
        Err(eventlog::AppendError::WrongExpectedVersion { .. }) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "concurrent_change",
            "the webhooks changed meanwhile; try again",
        )),
        Err(e) => Err(ApiError::from(e)),
    }
}

/// `POST /v1/webhooks` (admin).
///
/// # Errors
/// `admin_only`, `invalid_webhook_url`, `unknown_webhook_event`, `too_many_webhooks`.
pub async fn create(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(req): ApiJson<NewWebhook>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    admin(&caller)?;
    let url = webhooks::check_url(req.url.trim(), state.webhooks.allow_private).map_err(|why| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_webhook_url",
            format!("the webhook URL {why}"),
        )
    })?;
    let mut events = req.events;
    events.sort();
    events.dedup();
    if events.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_webhook_event",
            format!("subscribe to at least one of {EVENTS:?}"),
        ));
    }
    if let Some(e) = events.iter().find(|e| !EVENTS.contains(&e.as_str())) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_webhook_event",
            format!("{e:?} is not one of {EVENTS:?}"),
        ));
    }
    let (endpoints, version) = webhooks::load(state.store(), caller.org).await?;
    if endpoints.len() >= MAX_WEBHOOKS {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_webhooks",
            format!("an organization has at most {MAX_WEBHOOKS} webhooks"),
        ));
    }
    let mut secret = [0u8; 32];
    OsRng.fill_bytes(&mut secret);
    let added = Endpoint {
        id: Uuid::new_v4(),
        url: url.to_string(),
        events,
        secret,
        at_ms: crate::auth::sessions::now_ms(),
    };
    let event = WebhookEvent::WebhookAdded(WebhookAdded {
        id: added.id,
        url: added.url.clone(),
        events: added.events.clone(),
        secret,
        by: caller.user,
        at_ms: added.at_ms,
    });
    append(&state, caller.org, version, &event).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook {
            webhook: view(&added),
            secret: eventlog::hex::encode(&secret),
        }),
    ))
}

/// `GET /v1/webhooks` (admin).
///
/// # Errors
/// `admin_only`.
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<Json<WebhookList>, ApiError> {
    admin(&caller)?;
    let (endpoints, _) = webhooks::load(state.store(), caller.org).await?;
    Ok(Json(WebhookList {
        items: endpoints.iter().map(view).collect(),
    }))
}

/// `DELETE /v1/webhooks/{id}` (admin).
///
/// # Errors
/// `admin_only`, `unknown_webhook` (404, also for another organization's).
pub async fn remove(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    admin(&caller)?;
    let unknown = || ApiError::not_found("unknown_webhook", "there is no such webhook");
    let id = Uuid::try_parse(&id).map_err(|_| unknown())?;
    let (endpoints, version) = webhooks::load(state.store(), caller.org).await?;
    if !endpoints.iter().any(|e| e.id == id) {
        return Err(unknown());
    }
    let event = WebhookEvent::WebhookRemoved(WebhookRemoved {
        id,
        by: caller.user,
        at_ms: crate::auth::sessions::now_ms(),
    });
    append(&state, caller.org, version, &event).await?;
    // Its pending deliveries are cancelled now (the dispatcher would cancel each at its
    // next attempt anyway, so a failure here only delays that).
    match webhooks::deliveries::cancel_pending(state.store(), id).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(webhook = %id, cancelled = n, "pending deliveries cancelled"),
        Err(e) => tracing::warn!(webhook = %id, error = %e, "pending deliveries not cancelled"),
    }
    Ok(StatusCode::NO_CONTENT)
}

// The delivery log.

fn unknown_webhook() -> ApiError {
    ApiError::not_found("unknown_webhook", "there is no such webhook")
}

fn unknown_delivery() -> ApiError {
    ApiError::not_found("unknown_delivery", "this webhook has no such delivery")
}

/// The caller's organization's endpoint `id` (admins only).
async fn endpoint_of(
    state: &AppState,
    caller: &Authenticated,
    id: &str,
) -> Result<Endpoint, ApiError> {
    admin(caller)?;
    let id = Uuid::try_parse(id).map_err(|_| unknown_webhook())?;
    let (endpoints, _) = webhooks::load(state.store(), caller.org).await?;
    endpoints
        .into_iter()
        .find(|e| e.id == id)
        .ok_or_else(unknown_webhook)
}

/// Delivery `delivery` of `endpoint`.
async fn delivery_of(
    state: &AppState,
    endpoint: &Endpoint,
    org: OrgId,
    delivery: &str,
) -> Result<Folded, ApiError> {
    let id = Uuid::try_parse(delivery).map_err(|_| unknown_delivery())?;
    match read_delivery(state.store(), id).await? {
        Some(f) if f.queued.webhook == endpoint.id && f.queued.org == org => Ok(f),
        _ => Err(unknown_delivery()),
    }
}

/// `GET /v1/webhooks/{id}/deliveries` (admin): the endpoint's deliveries, newest first.
///
/// # Errors
/// `admin_only`, `unknown_webhook`.
pub async fn list_deliveries(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<DeliveryPage>,
) -> Result<Json<DeliveryList>, ApiError> {
    let endpoint = endpoint_of(&state, &caller, &id).await?;
    let limit = page.limit.unwrap_or(50).clamp(1, MAX_PAGE);
    let from = match page.before {
        Some(0) => {
            return Ok(Json(DeliveryList {
                items: Vec::new(),
                next_before: None,
            }))
        }
        Some(before) => before - 1,
        None => u64::MAX,
    };
    let mut items = Vec::new();
    let mut scanned = 0;
    let mut cursor = from;
    let next_before = loop {
        // Newest first, a page of lines at a time, until `limit` deliveries match.
        let want = (limit - items.len() + 1).min(MAX_PAGE + 1);
        let lines = eventlog::store::nonblocking::read_stream(
            state.store(),
            &log_stream(endpoint.id),
            cursor,
            Direction::Backward,
            want,
        )
        .await
        .map_err(ApiError::from)?;
        let more = lines.len() == want;
        let lines = &lines[..lines.len().min(want - 1)];
        let mut ids = Vec::with_capacity(lines.len());
        for line in lines {
            let listed = read_listed(line).map_err(ApiError::internal)?;
            ids.push(listed.delivery);
        }
        let folded = futures_util::future::try_join_all(
            ids.iter().map(|id| read_delivery(state.store(), *id)),
        )
        .await?;
        scanned += lines.len();
        items.extend(
            folded
                .into_iter()
                .flatten()
                .map(|f| f.view)
                .filter(|v| page.status.is_none_or(|s| v.status == s)),
        );
        let last = lines.last().map(|l| l.version);
        match last {
            Some(v) if more && v > 0 => {
                if items.len() >= limit || scanned >= MAX_SCAN {
                    break Some(v);
                }
                cursor = v - 1;
            }
            _ => break None,
        }
    };
    Ok(Json(DeliveryList { items, next_before }))
}

/// `GET /v1/webhooks/{id}/deliveries/{delivery_id}` (admin): one delivery with its body
/// and every attempt.
///
/// # Errors
/// `admin_only`, `unknown_webhook`, `unknown_delivery`.
pub async fn get_delivery(
    State(state): State<AppState>,
    caller: Authenticated,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<Json<DeliveryDetail>, ApiError> {
    let endpoint = endpoint_of(&state, &caller, &id).await?;
    let f = delivery_of(&state, &endpoint, caller.org, &delivery).await?;
    Ok(Json(DeliveryDetail {
        request_body: serde_json::from_str(&f.queued.body).unwrap_or(serde_json::Value::Null),
        delivery: f.view,
        attempt_log: f.attempts,
    }))
}

/// `POST /v1/webhooks/{id}/deliveries/{delivery_id}/redeliver` (admin): sends the same
/// body again as a new delivery (a new `Switchboard-Delivery` id), whatever became of the
/// first.
///
/// # Errors
/// `admin_only`, `unknown_webhook`, `unknown_delivery`.
pub async fn redeliver(
    State(state): State<AppState>,
    caller: Authenticated,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<(StatusCode, Json<DeliveryView>), ApiError> {
    let endpoint = endpoint_of(&state, &caller, &id).await?;
    let original = delivery_of(&state, &endpoint, caller.org, &delivery).await?;
    if original.queued.erased {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "delivery_erased",
            "the message text this delivery quotes was erased; it cannot be sent again",
        ));
    }
    let new_id = Uuid::new_v4();
    let mut body: serde_json::Value =
        serde_json::from_str(&original.queued.body).map_err(ApiError::internal)?;
    if let Some(map) = body.as_object_mut() {
        map.insert("delivery_id".to_owned(), serde_json::json!(new_id));
    }
    let queued = Queued {
        delivery: new_id,
        webhook: endpoint.id,
        org: caller.org,
        event: original.queued.event.clone(),
        body: serde_json::to_string(&body).map_err(ApiError::internal)?,
        cause: None,
        redelivery_of: Some(original.queued.delivery),
        by: Some(caller.user),
        at_ms: crate::auth::sessions::now_ms(),
        key: original.queued.key.clone(),
        erased: false,
    };
    enqueue(state.store(), queued)
        .await
        .map_err(ApiError::internal)?;
    let view = read_delivery(state.store(), new_id)
        .await?
        .ok_or_else(|| ApiError::internal("a queued delivery cannot be read back"))?
        .view;
    Ok((StatusCode::ACCEPTED, Json(view)))
}
