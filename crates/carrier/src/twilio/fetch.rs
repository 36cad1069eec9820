//! Fetching inbound MMS media from the carrier.

use std::time::Duration;

use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};

/// Why inbound media could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaFetchError {
    /// The URL is not an http(s) URL.
    #[error("media URL is not a valid http(s) URL")]
    InvalidUrl,
    /// No complete answer within the timeout.
    #[error("fetching media timed out")]
    Timeout,
    /// Connection or transfer failure.
    #[error("fetching media failed: {0}")]
    Transport(String),
    /// The server answered with a non-success status.
    #[error("media server answered HTTP {0}")]
    Status(u16),
    /// The body is larger than allowed (refused while streaming).
    #[error("media is larger than {max_bytes} bytes")]
    TooLarge {
        /// The limit.
        max_bytes: usize,
    },
}

impl MediaFetchError {
    /// Stable machine-readable code: `media_url_invalid`, `media_fetch_timeout`,
    /// `media_fetch_failed`, `media_fetch_status`, `media_too_large`.
    pub fn code(&self) -> &'static str {
        match self {
            MediaFetchError::InvalidUrl => "media_url_invalid",
            MediaFetchError::Timeout => "media_fetch_timeout",
            MediaFetchError::Transport(_) => "media_fetch_failed",
            MediaFetchError::Status(_) => "media_fetch_status",
            MediaFetchError::TooLarge { .. } => "media_too_large",
        }
    }

    /// Whether trying again later may succeed (timeouts, transport errors, 5xx, 429, 404
    /// — Twilio media can take a moment to become available).
    pub fn is_retryable(&self) -> bool {
        match self {
            MediaFetchError::Timeout | MediaFetchError::Transport(_) => true,
            MediaFetchError::Status(s) => *s >= 500 || *s == 429 || *s == 404 || *s == 408,
            MediaFetchError::InvalidUrl | MediaFetchError::TooLarge { .. } => false,
        }
    }
}

/// Downloads media at `url` (following redirects; reqwest drops the `Authorization` header
/// when a redirect leaves the host), with HTTP basic `auth` (`(username, password)`, for
/// Twilio the account SID and auth token) if given. Refuses bodies over `max_bytes` — by
/// `Content-Length` up front and by counting while streaming — and gives up after
/// `timeout` overall. Returns the bytes and the server's `Content-Type` (a claim only:
/// sniff the bytes before trusting it).
pub async fn fetch_media(
    client: &reqwest::Client,
    url: &str,
    auth: Option<(&str, &str)>,
    max_bytes: usize,
    timeout: Duration,
) -> Result<(Vec<u8>, Option<String>), MediaFetchError> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return Err(MediaFetchError::InvalidUrl);
    }
    match tokio::time::timeout(timeout, fetch(client, url, auth, max_bytes, timeout)).await {
        Ok(result) => result,
        Err(_) => Err(MediaFetchError::Timeout),
    }
}

async fn fetch(
    client: &reqwest::Client,
    url: &str,
    auth: Option<(&str, &str)>,
    max_bytes: usize,
    timeout: Duration,
) -> Result<(Vec<u8>, Option<String>), MediaFetchError> {
    let mut request = client.get(url).timeout(timeout);
    if let Some((user, password)) = auth {
        request = request.basic_auth(user, Some(password));
    }
    let mut response = request.send().await.map_err(transport_error)?;
    let status = response.status();
    if !status.is_success() {
        return Err(MediaFetchError::Status(status.as_u16()));
    }
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max_bytes as u64) {
        return Err(MediaFetchError::TooLarge { max_bytes });
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // At most max_bytes (checked above), so it fits.
    let capacity = declared.and_then(|l| usize::try_from(l).ok()).unwrap_or(0);
    let mut body = Vec::with_capacity(capacity);
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > max_bytes {
            return Err(MediaFetchError::TooLarge { max_bytes });
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, content_type))
}

fn transport_error(e: reqwest::Error) -> MediaFetchError {
    if e.is_timeout() {
        MediaFetchError::Timeout
    } else if e.is_builder() {
        MediaFetchError::InvalidUrl
    } else {
        MediaFetchError::Transport(super::error_chain(&e))
    }
}
