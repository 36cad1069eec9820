//! The embedded simulator's controls, for development, demos and tests (mounted only when
//! the simulator is the carrier). Every route is for admins of the organization concerned.
//!
//! - `POST /v1/simulator/inbound {from, to, text, media?}`: text as a customer to one of
//!   the organization's numbers (`media`: attachment hashes the admin uploaded).
//! - `GET /v1/simulator/outbound`: the texts sent from the organization's numbers, oldest
//!   first, with their delivery state at the simulated carrier.
//! - `POST /v1/simulator/outcome {to?, outcome}`: what happens to texts sent to `to` from
//!   now on, or to every number without its own (`to` omitted): `{"kind": "deliver"}`,
//!   `{"kind": "fail", "error_code": "30008"}`, `{"kind": "undeliver", "error_code": ...}`,
//!   `{"kind": "delay", "ms": 500, "then": {...}}`, `{"kind": "hold"}`,
//!   `{"kind": "reject_send", "code": "http_503", "retryable": true}`. The simulator is one
//!   per server: the default applies to every organization.
//! - `POST /v1/simulator/release {carrier_message_id, outcome}`: lets a held text go on.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use carrier::simulator::{Outcome, SimMessage, Simulator};
use domain::{Directory, OrgId, PhoneNumber, Role};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::Authenticated;
use crate::carriers::{attachments, inbound, CarrierState};
use crate::error::ApiError;
use crate::routes::json::ApiJson;

fn simulator(state: &AppState) -> Result<(&CarrierState, &Simulator), ApiError> {
    let carriers = state
        .carriers
        .as_deref()
        .ok_or_else(|| ApiError::not_found("not_found", "no such route"))?;
    let sim = carriers
        .simulator()
        .ok_or_else(|| ApiError::not_found("not_found", "no such route"))?;
    Ok((carriers, sim))
}

fn admin(caller: &Authenticated) -> Result<(), ApiError> {
    if caller.role == Role::Admin {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "admin_only",
            "only an admin may use the simulator",
        ))
    }
}

/// The organization's business numbers.
async fn numbers_of(state: &AppState, org: OrgId) -> Result<Vec<PhoneNumber>, ApiError> {
    Ok(state
        .ws
        .directories
        .query(&org, |d: &Directory, _| {
            d.numbers().map(|n| n.number.clone()).collect::<Vec<_>>()
        })
        .await?)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerText {
    pub from: String,
    pub to: String,
    #[serde(default)]
    pub text: String,
    /// Attachment hashes (or ids) uploaded with `POST /v1/attachments`.
    #[serde(default)]
    pub media: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TextedIn {
    pub carrier_message_id: String,
    /// Where the `SmsArrived` landed in the log.
    pub position: Option<u64>,
}

/// `POST /v1/simulator/inbound`.
pub async fn inbound(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(req): ApiJson<CustomerText>,
) -> Result<(StatusCode, Json<TextedIn>), ApiError> {
    let (_, sim) = simulator(&state)?;
    admin(&caller)?;
    let to = crate::routes::phone_number(&req.to)?;
    let from = crate::routes::phone_number(&req.from)?;
    if crate::routes::numbers::owner(state.store(), &to).await? != Some(caller.org) {
        return Err(ApiError::not_found(
            "unknown_number",
            "this number is not one of your organization's",
        ));
    }
    let mut media = Vec::with_capacity(req.media.len());
    for key in &req.media {
        media.push(
            attachments::resolve(state.store(), caller.org, key)
                .await?
                .reference(),
        );
    }
    let sms = sim.inbound(from.as_str(), to.as_str(), &req.text, Vec::new());
    let arrival = inbound::record(
        state.store(),
        inbound::Arrived {
            org: caller.org,
            to,
            from,
            text: sms.body,
            media,
            carrier_message_id: sms.carrier_message_id.clone(),
            at_ms: crate::auth::sessions::now_ms(),
        },
    )
    .await?;
    let position = match arrival {
        inbound::Arrival::Recorded(p) => Some(p),
        inbound::Arrival::Duplicate => None,
    };
    Ok((
        StatusCode::CREATED,
        Json(TextedIn {
            carrier_message_id: sms.carrier_message_id,
            position,
        }),
    ))
}

/// One outbound text as the simulated carrier holds it.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SimulatedText {
    pub carrier_message_id: String,
    pub from: String,
    pub to: String,
    pub body: String,
    pub media_urls: Vec<String>,
    /// `queued`, `sent`, `delivered`, `failed`, `undelivered`.
    pub status: String,
    pub error_code: Option<String>,
    pub accepted_at_ms: u64,
}

impl From<SimMessage> for SimulatedText {
    fn from(m: SimMessage) -> Self {
        Self {
            carrier_message_id: m.carrier_message_id,
            from: m.from,
            to: m.to,
            body: m.body,
            media_urls: m.media.into_iter().map(|x| x.url).collect(),
            status: m.status.as_str().to_owned(),
            error_code: m.status.error_code().map(str::to_owned),
            accepted_at_ms: m
                .accepted_at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Outbound {
    pub texts: Vec<SimulatedText>,
}

/// `GET /v1/simulator/outbound`.
pub async fn outbound(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<Json<Outbound>, ApiError> {
    let (_, sim) = simulator(&state)?;
    admin(&caller)?;
    let ours = numbers_of(&state, caller.org).await?;
    let texts = sim
        .outbound()
        .into_iter()
        .filter(|m| ours.iter().any(|n| n.as_str() == m.from))
        .map(SimulatedText::from)
        .collect();
    Ok(Json(Outbound { texts }))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChooseOutcome {
    pub to: Option<String>,
    pub outcome: Outcome,
}

/// `POST /v1/simulator/outcome`.
pub async fn outcome(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(req): ApiJson<ChooseOutcome>,
) -> Result<StatusCode, ApiError> {
    let (_, sim) = simulator(&state)?;
    admin(&caller)?;
    match req.to {
        Some(to) => {
            let to = crate::routes::phone_number(&to)?;
            sim.set_outcome_for(to.as_str(), req.outcome);
        }
        None => sim.set_default_outcome(req.outcome),
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "ReleaseHeld")]
#[serde(deny_unknown_fields)]
pub struct Release {
    pub carrier_message_id: String,
    pub outcome: Outcome,
}

/// `POST /v1/simulator/release`.
pub async fn release(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(req): ApiJson<Release>,
) -> Result<StatusCode, ApiError> {
    let (_, sim) = simulator(&state)?;
    admin(&caller)?;
    let ours = numbers_of(&state, caller.org).await?;
    let not_held = || ApiError::not_found("not_held", "no such held text of yours");
    let message = sim.message(&req.carrier_message_id).ok_or_else(not_held)?;
    if !ours.iter().any(|n| n.as_str() == message.from) {
        return Err(not_held());
    }
    sim.release(&req.carrier_message_id, req.outcome)
        .map_err(|_| not_held())?;
    Ok(StatusCode::NO_CONTENT)
}
