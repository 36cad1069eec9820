//! Twilio's webhooks (mounted when Twilio is the carrier). No bearer token: each request
//! is authenticated by `X-Twilio-Signature`, an HMAC-SHA1 keyed by the auth token over the
//! full public URL (the configured public base URL + the request's path and query) and the
//! sorted form parameters. A missing or wrong signature is answered 403
//! `invalid_signature` and nothing is written.
//!
//! - `POST /v1/carriers/twilio/inbound`: a customer's text. Deduped on `MessageSid`; MMS
//!   media (`NumMedia`, `MediaUrl<i>`) is fetched into the attachment store (transient
//!   failures — timeouts, 5xx, 429, 404 while Twilio prepares the media — are retried a
//!   few times); recorded as `SmsArrived` of the organization owning `To`. An item that
//!   still cannot be had (or is too large, or is not the type it claims) never costs the
//!   text: it is recorded as an unavailable attachment with the reason
//!   (`carriers::attachments::AttachmentUnavailable`). Answered with empty TwiML.
//! - `POST /v1/carriers/twilio/status?sms=<outbox id>`: a delivery status report, written
//!   to the carrier message's stream (see `workers::outbox::status`).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use carrier::twilio::{parse_form, parse_inbound, parse_status, TwilioCarrier, SIGNATURE_HEADER};
use carrier::InboundMedia;
use domain::conversation::AttachmentRef;
use domain::limits::MAX_ATTACHMENT_LEN;
use domain::OrgId;

use crate::app::AppState;
use crate::carriers::{attachments, inbound, CarrierState};
use crate::error::ApiError;

/// The empty TwiML answer: no reply from Twilio's side.
const EMPTY_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";

/// Attempts per media item (Twilio's media can take a moment to become available).
const MEDIA_ATTEMPTS: u32 = 3;

fn twiml() -> Response {
    (
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        EMPTY_TWIML,
    )
        .into_response()
}

fn invalid_signature() -> ApiError {
    ApiError::forbidden(
        "invalid_signature",
        "the X-Twilio-Signature header is missing or wrong",
    )
}

fn invalid_webhook(e: &carrier::twilio::WebhookError) -> ApiError {
    ApiError::bad_request("invalid_webhook", format!("{e} ({})", e.code()))
}

/// The carrier state when Twilio is the carrier.
fn twilio(state: &AppState) -> Result<(&CarrierState, &TwilioCarrier), ApiError> {
    let carriers = state
        .carriers
        .as_deref()
        .ok_or_else(|| ApiError::not_found("not_found", "no such route"))?;
    let twilio = carriers
        .twilio()
        .ok_or_else(|| ApiError::not_found("not_found", "no such route"))?;
    Ok((carriers, twilio))
}

/// The form parameters, if the signature over them and the public URL is right.
fn signed_params(
    carriers: &CarrierState,
    twilio: &TwilioCarrier,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<(String, String)>, ApiError> {
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(invalid_signature)?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path}", carriers.public_url);
    let params = parse_form(body);
    if twilio.validate_signature(&url, &params, signature) {
        Ok(params)
    } else {
        tracing::warn!(%url, "Twilio webhook with a bad signature refused");
        Err(invalid_signature())
    }
}

/// `POST /v1/carriers/twilio/inbound`.
pub async fn inbound(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (carriers, twilio) = twilio(&state)?;
    let params = signed_params(carriers, twilio, &uri, &headers, &body)?;
    let sms = parse_inbound(&params).map_err(|e| invalid_webhook(&e))?;
    let to = crate::routes::phone_number(&sms.to)?;
    let from = crate::routes::phone_number(&sms.from)?;
    let Some(org) = crate::routes::numbers::owner(state.store(), &to).await? else {
        return Err(ApiError::not_found(
            "unknown_number",
            "no organization holds this number",
        ));
    };
    if inbound::already_arrived(state.store(), &sms.carrier_message_id).await? {
        return Ok(twiml());
    }
    let mut media = Vec::with_capacity(sms.media.len());
    for (index, item) in sms.media.iter().enumerate() {
        match fetch_and_store(&state, carriers, twilio, org, item).await {
            Ok(a) => media.push(a),
            // The text is still recorded, with the item marked unavailable and why.
            Err(e) => {
                tracing::warn!(
                    sid = %sms.carrier_message_id,
                    url = %item.url,
                    code = e.code,
                    error = %e.message,
                    "inbound media not stored"
                );
                let unavailable = attachments::AttachmentUnavailable {
                    org,
                    carrier_message_id: sms.carrier_message_id.clone(),
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    code: e.code.to_owned(),
                    reason: e.message,
                    claimed_mime: item.content_type.clone(),
                };
                media.push(attachments::store_unavailable(state.store(), unavailable).await?);
            }
        }
    }
    inbound::record(
        state.store(),
        inbound::Arrived {
            org,
            to,
            from,
            text: sms.body,
            media,
            carrier_message_id: sms.carrier_message_id,
            at_ms: crate::auth::sessions::now_ms(),
        },
    )
    .await?;
    Ok(twiml())
}

async fn fetch_and_store(
    state: &AppState,
    carriers: &CarrierState,
    twilio: &TwilioCarrier,
    org: OrgId,
    item: &InboundMedia,
) -> Result<AttachmentRef, ApiError> {
    let mut pause = Duration::from_millis(200);
    let mut attempt = 1;
    let (bytes, served_type) = loop {
        match twilio
            .fetch_inbound_media(&item.url, MAX_ATTACHMENT_LEN)
            .await
        {
            Ok(fetched) => break fetched,
            Err(e) if e.is_retryable() && attempt < MEDIA_ATTEMPTS => {
                attempt += 1;
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(e) => {
                return Err(ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    e.code(),
                    e.to_string(),
                ))
            }
        }
    };
    if bytes.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "empty_attachment",
            "the media is empty",
        ));
    }
    let claimed = item.content_type.as_deref().or(served_type.as_deref());
    if let Some(mismatch) = type_mismatch(claimed, carrier::blobs::sniff(&bytes)) {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "media_type_mismatch",
            mismatch,
        ));
    }
    let stored = attachments::store(state.store(), &carriers.blobs, org, bytes).await?;
    Ok(stored.reference())
}

/// Media claimed to be an image, video or audio whose bytes are not (an error page served
/// with 200, a truncated file): why, or `None` when the bytes agree with the claim (or
/// nothing that can be checked was claimed).
fn type_mismatch(claimed: Option<&str>, sniffed: Option<&str>) -> Option<String> {
    let claimed = claimed?.split(';').next()?.trim().to_ascii_lowercase();
    let top = claimed.split('/').next()?;
    if !matches!(top, "image" | "video" | "audio") {
        return None;
    }
    let agrees = sniffed.is_some_and(|s| s.split('/').next() == Some(top));
    (!agrees).then(|| {
        format!(
            "claimed {claimed}, but the bytes are {}",
            sniffed.unwrap_or("not a recognised type")
        )
    })
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct StatusQuery {
    /// The outbox id our status callback URL carries.
    pub sms: Option<String>,
}

/// `POST /v1/carriers/twilio/status`.
pub async fn status(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    crate::routes::json::ApiQuery(query): crate::routes::json::ApiQuery<StatusQuery>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let (carriers, twilio) = twilio(&state)?;
    let params = signed_params(carriers, twilio, &uri, &headers, &body)?;
    let report = parse_status(&params).map_err(|e| invalid_webhook(&e))?;
    let hint = query.sms.as_deref().and_then(|s| s.parse().ok());
    workers::outbox::report_status(state.store(), &report, hint)
        .await
        .map_err(|e| match e {
            workers::outbox::status::ReportError::InvalidMessageId => {
                ApiError::bad_request("invalid_webhook", "invalid MessageSid")
            }
            other => ApiError::internal(other),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::type_mismatch;

    #[test]
    fn media_must_be_what_it_claims() {
        assert_eq!(type_mismatch(Some("image/png"), Some("image/png")), None);
        assert_eq!(type_mismatch(Some("image/jpeg"), Some("image/png")), None);
        assert_eq!(type_mismatch(Some("text/vcard"), None), None);
        assert_eq!(type_mismatch(None, None), None);
        assert!(type_mismatch(Some("image/png"), None).is_some());
        assert!(type_mismatch(Some("Image/PNG; q=1"), Some("text/html")).is_some());
        assert!(type_mismatch(Some("video/mp4"), Some("image/gif")).is_some());
    }
}
