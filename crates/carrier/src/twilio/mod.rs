//! A Twilio-compatible carrier adapter.
//!
//! * Outbound: [`TwilioCarrier`] posts to
//!   `{base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json` (form-encoded `To`,
//!   `From`, `Body`, repeated `MediaUrl`, `StatusCallback`; HTTP basic auth with the
//!   account SID and auth token). The base URL is configurable, so any Twilio-compatible
//!   service (or a fake in tests) can stand in.
//! * Inbound: [`validate_signature`] for `X-Twilio-Signature`, then [`parse_inbound`] /
//!   [`parse_status`] on the form parameters ([`parse_form`] decodes a raw body), and
//!   [`fetch_media`] for MMS media.
//!
//! Twilio has **no idempotency header for message creation**: a request that timed out may
//! have created the message. Deduplication is the outbox's job — it keeps a dedupe record
//! per [`OutboundSms::idempotency_key`](crate::OutboundSms) and checks it before retrying
//! after a crash. The key is therefore not sent to the carrier.
//!
//! TLS: `https://` base URLs (the real Twilio) go through rustls with the `ring` provider
//! and Mozilla's roots compiled in ([`crate::tls`]); [`TwilioConfig::extra_roots_pem`]
//! adds trust anchors (a private Twilio-compatible service, a TLS-inspecting proxy).
//! Plain `http://` (a local fake, a TLS-terminating proxy) works as well.

mod fetch;
mod signature;
mod webhook;

use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use serde::Deserialize;

pub use fetch::{fetch_media, MediaFetchError};
pub use signature::{compute_signature, validate_signature, SIGNATURE_HEADER};
pub use webhook::{parse_form, parse_inbound, parse_status, WebhookError, MAX_MEDIA};

use crate::{Accepted, Carrier, CarrierStatus, OutboundSms, SendError, SendFuture};

/// Twilio's production API.
pub const DEFAULT_BASE_URL: &str = "https://api.twilio.com";
/// Default per-request timeout.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// At most this much of an error response body is read.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// At most this much of a success response body is read.
const MAX_SUCCESS_BODY: usize = 1024 * 1024;

/// Settings of a [`TwilioCarrier`]. `Debug` redacts the auth token.
#[derive(Clone, PartialEq, Eq)]
pub struct TwilioConfig {
    /// Scheme and host (and optional path prefix) of the API, e.g. `https://api.twilio.com`.
    pub base_url: String,
    /// The account SID (`AC…`): the basic-auth user and part of the URL path.
    pub account_sid: String,
    /// The auth token: basic-auth password and signature key.
    pub auth_token: String,
    /// Overall limit for one API request, connecting through reading the answer.
    pub request_timeout: Duration,
    /// Extra trusted root certificates (PEM), besides the bundled Mozilla roots.
    pub extra_roots_pem: Option<Vec<u8>>,
}

impl TwilioConfig {
    /// Settings for the real Twilio API with the default timeout.
    pub fn new(account_sid: impl Into<String>, auth_token: impl Into<String>) -> TwilioConfig {
        TwilioConfig {
            base_url: DEFAULT_BASE_URL.to_owned(),
            account_sid: account_sid.into(),
            auth_token: auth_token.into(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            extra_roots_pem: None,
        }
    }
}

impl fmt::Debug for TwilioConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("base_url", &self.base_url)
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"<redacted>")
            .field("request_timeout", &self.request_timeout)
            .field(
                "extra_roots_pem",
                &self.extra_roots_pem.as_ref().map(|p| p.len()),
            )
            .finish()
    }
}

/// Unusable [`TwilioConfig`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TwilioConfigError {
    /// The base URL is not `http://…` or `https://…` with a host.
    #[error("invalid carrier base URL {0:?}")]
    InvalidBaseUrl(String),
    /// The TLS configuration could not be built (e.g. unreadable extra roots).
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsConfigError),
    /// The account SID is empty or has characters other than ASCII letters and digits.
    #[error("invalid account SID")]
    InvalidAccountSid,
    /// The auth token is empty.
    #[error("missing auth token")]
    MissingAuthToken,
    /// The request timeout is zero.
    #[error("request timeout must be positive")]
    InvalidTimeout,
    /// The HTTP client could not be built.
    #[error("could not build the HTTP client: {0}")]
    Client(String),
}

impl TwilioConfigError {
    /// Stable machine-readable code: `invalid_base_url`, `tls_config`,
    /// `invalid_account_sid`, `missing_auth_token`, `invalid_timeout`, `http_client`.
    pub fn code(&self) -> &'static str {
        match self {
            TwilioConfigError::InvalidBaseUrl(_) => "invalid_base_url",
            TwilioConfigError::Tls(_) => "tls_config",
            TwilioConfigError::InvalidAccountSid => "invalid_account_sid",
            TwilioConfigError::MissingAuthToken => "missing_auth_token",
            TwilioConfigError::InvalidTimeout => "invalid_timeout",
            TwilioConfigError::Client(_) => "http_client",
        }
    }
}

/// The Twilio-compatible [`Carrier`]. Cheap to share (`Arc<dyn Carrier>`); holds one
/// pooled HTTP client.
#[derive(Clone)]
pub struct TwilioCarrier {
    client: reqwest::Client,
    base_url: String,
    messages_url: String,
    account_sid: String,
    auth_token: String,
    timeout: Duration,
}

impl fmt::Debug for TwilioCarrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioCarrier")
            .field("messages_url", &self.messages_url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl TwilioCarrier {
    /// Validates `config` and builds the HTTP client.
    pub fn new(config: TwilioConfig) -> Result<TwilioCarrier, TwilioConfigError> {
        let base_url = config.base_url.trim().trim_end_matches('/').to_owned();
        let lower = base_url.to_ascii_lowercase();
        let host = lower
            .strip_prefix("http://")
            .or_else(|| lower.strip_prefix("https://"));
        if host.is_none_or(|h| h.is_empty() || h.starts_with('/'))
            || base_url
                .chars()
                .any(|c| c.is_whitespace() || c == '?' || c == '#')
        {
            return Err(TwilioConfigError::InvalidBaseUrl(config.base_url));
        }
        if config.account_sid.is_empty()
            || config.account_sid.len() > 64
            || !config
                .account_sid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric())
        {
            return Err(TwilioConfigError::InvalidAccountSid);
        }
        if config.auth_token.is_empty() {
            return Err(TwilioConfigError::MissingAuthToken);
        }
        if config.request_timeout.is_zero() {
            return Err(TwilioConfigError::InvalidTimeout);
        }
        let tls = crate::tls::client_config(config.extra_roots_pem.as_deref())?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("switchboard-carrier/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TwilioConfigError::Client(error_chain(&e)))?;
        let messages_url = format!(
            "{base_url}/2010-04-01/Accounts/{}/Messages.json",
            config.account_sid
        );
        Ok(TwilioCarrier {
            client,
            base_url,
            messages_url,
            account_sid: config.account_sid,
            auth_token: config.auth_token,
            timeout: config.request_timeout,
        })
    }

    /// The URL messages are posted to.
    pub fn messages_url(&self) -> &str {
        &self.messages_url
    }

    /// The underlying HTTP client (for [`fetch_media`] to reuse its connection pool).
    pub fn http_client(&self) -> &reqwest::Client {
        &self.client
    }

    /// [`validate_signature`] with this account's auth token.
    pub fn validate_signature(
        &self,
        url: &str,
        params: &[(String, String)],
        signature: &str,
    ) -> bool {
        validate_signature(&self.auth_token, url, params, signature)
    }

    /// [`fetch_media`] for an inbound-MMS media URL, with this client and timeout. The
    /// account credentials are sent only to URLs under the configured base URL, never to
    /// another host.
    pub async fn fetch_inbound_media(
        &self,
        url: &str,
        max_bytes: usize,
    ) -> Result<(Vec<u8>, Option<String>), MediaFetchError> {
        let ours = url
            .strip_prefix(self.base_url.as_str())
            .is_some_and(|rest| rest.starts_with('/'));
        let auth = ours.then_some((self.account_sid.as_str(), self.auth_token.as_str()));
        fetch_media(&self.client, url, auth, max_bytes, self.timeout).await
    }

    /// Sends one message; what [`Carrier::send`] does.
    pub async fn send_sms(&self, sms: &OutboundSms) -> Result<Accepted, SendError> {
        let form = encode_message_form(sms);

        let attempt = async {
            let response = self
                .client
                .post(&self.messages_url)
                .basic_auth(&self.account_sid, Some(&self.auth_token))
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(ACCEPT, "application/json")
                .body(form)
                .send()
                .await
                .map_err(request_error)?;
            interpret(response).await
        };
        let result = match tokio::time::timeout(self.timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(SendError::Retryable {
                code: "timeout".into(),
                message: format!("no answer from the carrier within {:?}", self.timeout),
                retry_after: None,
            }),
        };
        match &result {
            Ok(accepted) => tracing::debug!(
                key = %sms.idempotency_key,
                sid = %accepted.carrier_message_id,
                status = %accepted.status,
                "carrier accepted message"
            ),
            Err(e) => tracing::warn!(
                key = %sms.idempotency_key,
                code = e.carrier_code(),
                retryable = e.is_retryable(),
                "carrier send failed: {}",
                e.message()
            ),
        }
        result
    }
}

/// The form body of a message-create request (the serializer is not `Send`, so it must
/// not live across an await).
fn encode_message_form(sms: &OutboundSms) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("To", &sms.to);
    form.append_pair("From", &sms.from);
    if !sms.body.is_empty() {
        form.append_pair("Body", &sms.body);
    }
    for media in &sms.media {
        form.append_pair("MediaUrl", &media.url);
    }
    if let Some(callback) = &sms.status_callback {
        form.append_pair("StatusCallback", callback);
    }
    form.finish()
}

impl Carrier for TwilioCarrier {
    fn name(&self) -> &'static str {
        "twilio"
    }

    fn send(&self, sms: OutboundSms) -> SendFuture<'_> {
        Box::pin(async move { self.send_sms(&sms).await })
    }
}

#[derive(Deserialize)]
struct MessageResource {
    sid: Option<String>,
    status: Option<String>,
    #[serde(default)]
    error_code: serde_json::Value,
}

#[derive(Deserialize)]
struct ErrorResource {
    #[serde(default)]
    code: serde_json::Value,
    message: Option<String>,
}

async fn interpret(mut response: reqwest::Response) -> Result<Accepted, SendError> {
    let status = response.status();
    let retry_after = parse_retry_after(response.headers());
    let limit = if status.is_success() {
        MAX_SUCCESS_BODY
    } else {
        MAX_ERROR_BODY
    };
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(request_error)? {
        let room = limit.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= limit {
            break;
        }
    }

    if status.is_success() {
        let parsed: Option<MessageResource> = serde_json::from_slice(&body).ok();
        let Some(MessageResource {
            sid: Some(sid),
            status: message_status,
            error_code,
        }) = parsed.filter(|m| m.sid.as_deref().is_some_and(|s| !s.is_empty()))
        else {
            // The message may well have been created; retrying blindly could send it
            // twice, so this is not retryable. The outbox records it as failed.
            return Err(SendError::Permanent {
                code: "invalid_carrier_response".into(),
                message: format!(
                    "HTTP {} without a message sid: {}",
                    status.as_u16(),
                    snippet(&body)
                ),
            });
        };
        let error_code = json_code(&error_code);
        let status = CarrierStatus::from_twilio(
            message_status.as_deref().unwrap_or("queued"),
            error_code.as_deref(),
        );
        return Ok(Accepted {
            carrier_message_id: sid,
            status,
        });
    }

    let error: Option<ErrorResource> = serde_json::from_slice(&body).ok();
    let code = error
        .as_ref()
        .and_then(|e| json_code(&e.code))
        .unwrap_or_else(|| format!("http_{}", status.as_u16()));
    let message = error
        .and_then(|e| e.message)
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| {
            let text = snippet(&body);
            if text.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {text}")
            }
        });
    if is_retryable_status(status) {
        Err(SendError::Retryable {
            code,
            message,
            retry_after,
        })
    } else {
        Err(SendError::Permanent { code, message })
    }
}

fn is_retryable_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

fn request_error(e: reqwest::Error) -> SendError {
    let message = error_chain(&e);
    if e.is_timeout() {
        SendError::Retryable {
            code: "timeout".into(),
            message,
            retry_after: None,
        }
    } else if e.is_connect() {
        SendError::Retryable {
            code: "connection_failed".into(),
            message,
            retry_after: None,
        }
    } else if e.is_builder() {
        SendError::Permanent {
            code: "invalid_request".into(),
            message,
        }
    } else {
        SendError::Retryable {
            code: "transport_error".into(),
            message,
            retry_after: None,
        }
    }
}

/// `Retry-After` as delay-seconds or an HTTP date (a date in the past means now).
fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// A Twilio error code from JSON: a number or a non-empty string.
fn json_code(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// An error and its sources, joined with `: `.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(parse_retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(parse_retry_after(&h), Some(Duration::ZERO), "past date");
        let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&future).unwrap());
        let d = parse_retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&h), None);
    }

    #[test]
    fn json_codes() {
        assert_eq!(json_code(&serde_json::json!(21211)), Some("21211".into()));
        assert_eq!(json_code(&serde_json::json!("30003")), Some("30003".into()));
        assert_eq!(json_code(&serde_json::json!(null)), None);
        assert_eq!(json_code(&serde_json::json!("")), None);
    }

    fn config(base_url: &str) -> TwilioConfig {
        TwilioConfig {
            base_url: base_url.into(),
            account_sid: "AC123".into(),
            auth_token: "secret-token".into(),
            request_timeout: Duration::from_secs(1),
            extra_roots_pem: None,
        }
    }

    #[test]
    fn config_validation() {
        let ok = TwilioCarrier::new(config("http://127.0.0.1:8080/")).unwrap();
        assert_eq!(
            ok.messages_url(),
            "http://127.0.0.1:8080/2010-04-01/Accounts/AC123/Messages.json"
        );
        let prefixed = TwilioCarrier::new(config("http://proxy.local/twilio")).unwrap();
        assert_eq!(
            prefixed.messages_url(),
            "http://proxy.local/twilio/2010-04-01/Accounts/AC123/Messages.json"
        );
        for bad in [
            "",
            "ftp://x",
            "http://",
            "127.0.0.1:8080",
            "http://h/x?y",
            "http:///x",
        ] {
            assert_eq!(
                TwilioCarrier::new(config(bad)).unwrap_err().code(),
                "invalid_base_url",
                "{bad:?}"
            );
        }
        let mut c = config("http://h");
        c.account_sid = "AC/../x".into();
        assert_eq!(
            TwilioCarrier::new(c).unwrap_err(),
            TwilioConfigError::InvalidAccountSid
        );
        let mut c = config("http://h");
        c.auth_token.clear();
        assert_eq!(
            TwilioCarrier::new(c).unwrap_err().code(),
            "missing_auth_token"
        );
        let mut c = config("http://h");
        c.request_timeout = Duration::ZERO;
        assert_eq!(TwilioCarrier::new(c).unwrap_err().code(), "invalid_timeout");
    }

    #[test]
    fn https_is_accepted_and_bad_extra_roots_refused() {
        let carrier = TwilioCarrier::new(config(DEFAULT_BASE_URL)).unwrap();
        assert_eq!(
            carrier.messages_url(),
            "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json"
        );
        let mut c = config(DEFAULT_BASE_URL);
        c.extra_roots_pem = Some(b"not a certificate".to_vec());
        assert_eq!(TwilioCarrier::new(c).unwrap_err().code(), "tls_config");
    }

    #[test]
    fn debug_redacts_token() {
        let text = format!("{:?}", config("http://h"));
        assert!(!text.contains("secret-token"), "{text}");
        let carrier = TwilioCarrier::new(config("http://h")).unwrap();
        assert!(!format!("{carrier:?}").contains("secret-token"));
    }
}
