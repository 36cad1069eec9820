//! Retention of message texts and erasure of one customer's data (admins).
//!
//! - `GET /v1/retention`, `PUT /v1/retention`: how many days the organization keeps
//!   message texts (`null`: for ever). Setting it applies it at once.
//! - `GET /v1/erasures`, `POST /v1/erasures`: erase every text one customer (an external
//!   number) wrote or was sent — by destroying the keys they are sealed under
//!   (`workers::retention`); the log's bytes and hash chains stay as written,
//!   and the texts read as `[erased]` everywhere (history, lists, search, webhooks,
//!   `replay conversation`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use domain::erasure::{valid_retention, ErasureState, MAX_RETENTION_DAYS};
use serde::{Deserialize, Serialize};

use workers::retention::{self, RetentionError};

use crate::app::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::routes::json::ApiJson;

fn admin(caller: &Authenticated) -> Result<(), ApiError> {
    caller.require_admin("sets the retention or erases a customer's data")
}

fn failed(e: RetentionError) -> ApiError {
    match e {
        RetentionError::NotSealed => ApiError::new(
            StatusCode::CONFLICT,
            "erasure_unavailable",
            "message texts are not sealed on this server (its log has no keyring), so they \
             cannot be erased",
        ),
        RetentionError::Failed(e) => ApiError::internal(e),
    }
}

/// The organization's retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Whole days message texts are kept after the day they were written (1 to 36,500);
    /// `null`: kept for ever. A text is erased between `message_days` and
    /// `message_days + 1` days after it was written.
    pub message_days: Option<u32>,
}

/// The retention and what applying it did.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RetentionOut {
    pub message_days: Option<u32>,
    /// Texts written before this day (`YYYY-MM-DD`, UTC) are erased; `null` while none.
    pub erased_before: Option<String>,
    /// Keys destroyed by this request (`PUT` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys_destroyed: Option<usize>,
}

fn date_of_day(day: u32) -> String {
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = i64::from(day) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn out(state: &ErasureState, keys: Option<usize>) -> RetentionOut {
    RetentionOut {
        message_days: state.retention_days,
        erased_before: state.retained_from_day.map(date_of_day),
        keys_destroyed: keys,
    }
}

/// `GET /v1/retention` (admin).
///
/// # Errors
/// `admin_only`.
pub async fn get(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<Json<RetentionOut>, ApiError> {
    admin(&caller)?;
    let s = retention::state(&state.ws, caller.org)
        .await
        .map_err(failed)?;
    Ok(Json(out(&s, None)))
}

/// `PUT /v1/retention` (admin): sets the retention and applies it at once.
///
/// # Errors
/// `admin_only`, `invalid_retention` (422), `erasure_unavailable` (409).
pub async fn put(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(req): ApiJson<Retention>,
) -> Result<Json<RetentionOut>, ApiError> {
    admin(&caller)?;
    if req.message_days.is_some_and(|d| !valid_retention(d)) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_retention",
            format!("message_days is 1 to {MAX_RETENTION_DAYS}, or null to keep texts for ever"),
        ));
    }
    let (s, keys) = retention::set_retention(&state.ws, caller.org, req.message_days, caller.user)
        .await
        .map_err(failed)?;
    Ok(Json(out(&s, Some(keys))))
}

/// `POST /v1/erasures` body.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewErasure {
    /// The customer's number (E.164).
    pub number: String,
}

/// One erasure.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ErasureOut {
    pub number: String,
    pub at_ms: u64,
    /// Keys destroyed (`POST` only): one per day the customer texted or was texted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys_destroyed: Option<usize>,
    /// Position of the erasure's record in the log (`POST` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
}

/// `GET /v1/erasures` answer.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ErasureList {
    /// Oldest first.
    pub items: Vec<ErasureOut>,
}

/// `GET /v1/erasures` (admin): every erasure of the organization.
///
/// # Errors
/// `admin_only`.
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<Json<ErasureList>, ApiError> {
    admin(&caller)?;
    let s = retention::state(&state.ws, caller.org)
        .await
        .map_err(failed)?;
    let items = s
        .erased
        .into_iter()
        .map(|(number, at_ms)| ErasureOut {
            number: number.to_string(),
            at_ms,
            keys_destroyed: None,
            position: None,
        })
        .collect();
    Ok(Json(ErasureList { items }))
}

/// `POST /v1/erasures` (admin): erases one customer's texts now.
///
/// # Errors
/// `admin_only`, `invalid_phone_number` (422), `erasure_unavailable` (409).
pub async fn create(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(req): ApiJson<NewErasure>,
) -> Result<(StatusCode, Json<ErasureOut>), ApiError> {
    admin(&caller)?;
    let number = crate::routes::phone_number(&req.number)?;
    let erased = retention::erase_customer(&state.ws, caller.org, number.clone(), caller.user)
        .await
        .map_err(failed)?;
    Ok((
        StatusCode::CREATED,
        Json(ErasureOut {
            number: number.to_string(),
            at_ms: erased.at_ms,
            keys_destroyed: Some(erased.keys),
            position: Some(erased.position),
        }),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn days_are_civil_dates() {
        assert_eq!(super::date_of_day(0), "1970-01-01");
        assert_eq!(super::date_of_day(19_723), "2024-01-01");
        assert_eq!(super::date_of_day(20_793), "2026-12-06");
    }
}
