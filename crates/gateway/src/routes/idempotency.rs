//! `Idempotency-Key`: a UUID header on a POST that creates something. A retry with the
//! same key returns the first result and writes nothing, built on the log's idempotent
//! appends: the new thing's id and its events' ids derive from the key.
//!
//! Event ids are unique across the whole log, so a key is first scoped ([`scoped`]) to
//! the caller's organization and user, to what the request does and to what it writes
//! into. Two callers who send the same key, or one caller who sends it to two
//! conversations, never name the same events: each gets their own result, and nobody
//! gets somebody else's.

use axum::http::HeaderMap;
use domain::idempotency::ResponseRecorded;

use crate::auth::Authenticated;
use crate::error::ApiError;

/// The `Idempotency-Key` header (a UUID), or none; anything else is 400
/// `invalid_idempotency_key`.
///
/// # Errors
/// `invalid_idempotency_key` (400).
pub fn key(headers: &HeaderMap) -> Result<Option<uuid::Uuid>, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| uuid::Uuid::try_parse(s.trim()).ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request("invalid_idempotency_key", "Idempotency-Key must be a UUID")
            }),
    }
}

/// The request's `Idempotency-Key`, read where the request's headers are (not from a copy
/// of them, as a `HeaderMap` argument would be). Taking it never refuses the request: a bad
/// key is reported by [`IdempotencyKey::scoped`], in the handler, so it is answered after
/// the path and the body are checked, as with the other extractors' refusals.
pub struct IdempotencyKey(Result<Option<uuid::Uuid>, ApiError>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for IdempotencyKey {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(key(&parts.headers)))
    }
}

impl IdempotencyKey {
    /// The key, if the request has one, scoped as [`scoped`] says.
    ///
    /// # Errors
    /// `invalid_idempotency_key` (400).
    pub fn scoped(
        self,
        caller: &Authenticated,
        purpose: &str,
        target: &[u8],
    ) -> Result<Option<uuid::Uuid>, ApiError> {
        Ok(self.0?.map(|k| scoped(k, caller, purpose, target)))
    }
}

/// `key` scoped to the caller, to `purpose` (what the request does) and to `target` (the
/// id of what it writes into, or nothing for a request that creates its own target).
pub fn scoped(key: uuid::Uuid, caller: &Authenticated, purpose: &str, target: &[u8]) -> uuid::Uuid {
    let mut name = Vec::with_capacity(34 + purpose.len() + target.len());
    name.extend_from_slice(caller.org.as_uuid().as_bytes());
    name.extend_from_slice(caller.user.as_uuid().as_bytes());
    name.extend_from_slice(purpose.as_bytes());
    name.push(0);
    name.extend_from_slice(target);
    uuid::Uuid::new_v5(&key, &name)
}

/// How a command of the caller is written: with its scoped key, if any, and the caller as
/// the acting user.
pub fn written_as(caller: &Authenticated, key: Option<uuid::Uuid>) -> actors::ExecuteOptions {
    actors::ExecuteOptions {
        idempotency_key: key,
        metadata: eventlog::Metadata {
            acting_user: Some(caller.user.to_string()),
            ..Default::default()
        },
    }
}

/// The log record of the answer to a keyed POST whose handler does not derive its writes
/// from the key (creating a user, an inbox or a queue, an inbox action…): the middleware
/// [`replay_or_record`] keeps the first successful response in the log as the domain's
/// [`ResponseRecorded`], and answers a retry with it, writing nothing. A fresh event id:
/// the stream is appended with `NoStream`, so the first answer stays.
/// Keys whose request is running now: a concurrent retry is answered 409
/// `idempotency_key_in_use` rather than run twice.
#[derive(Debug, Default)]
pub struct InFlight(std::sync::Mutex<std::collections::HashSet<uuid::Uuid>>);

struct Claimed<'a>(&'a InFlight, uuid::Uuid);

impl InFlight {
    fn claim(&self, key: uuid::Uuid) -> Option<Claimed<'_>> {
        let fresh = self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(key);
        // (Not `then_some`: it would build, and drop, a `Claimed` under the lock.)
        if fresh {
            Some(Claimed(self, key))
        } else {
            None
        }
    }
}

impl Drop for Claimed<'_> {
    fn drop(&mut self) {
        let mut keys = self.0 .0.lock().unwrap_or_else(|e| e.into_inner());
        keys.remove(&self.1);
    }
}

/// Largest response body recorded (POST answers are small JSON documents).
const MAX_RECORDED_RESPONSE: usize = 1 << 20;

/// The header marking a replayed answer.
pub const REPLAYED: &str = "idempotent-replayed";

fn body_too_large() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!(
            "the request body is over {} bytes",
            crate::app::MAX_JSON_BODY
        ),
    )
}

/// What identifies a request for [`ResponseRecorded::request`]: its content type and body,
/// hashed as the body streams by. A multipart body's boundary is random per attempt, so it
/// is left out of both: every occurrence of it in the body, leftmost first, is skipped.
/// (Records outlive releases: the hash must stay what it is for the same request.)
struct Fingerprint {
    hasher: blake3::Hasher,
    /// The multipart boundary, if any (never empty).
    boundary: Option<Vec<u8>>,
    /// Bytes not hashed yet because they may begin a boundary (fewer than its length).
    pending: Vec<u8>,
}

impl Fingerprint {
    fn new(content_type: &str) -> Self {
        let boundary = content_type
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("boundary="))
            .map(|b| b.trim_matches('"').as_bytes().to_vec())
            .next()
            .filter(|b| !b.is_empty());
        let mut hasher = blake3::Hasher::new();
        match &boundary {
            Some(_) => hasher.update(
                content_type
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .as_bytes(),
            ),
            None => hasher.update(content_type.as_bytes()),
        };
        hasher.update(&[0]);
        Self {
            hasher,
            boundary,
            pending: Vec::new(),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        let Some(b) = &self.boundary else {
            self.hasher.update(bytes);
            return;
        };
        self.pending.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(at) = self.pending[start..]
            .windows(b.len())
            .position(|w| w == b.as_slice())
        {
            self.hasher.update(&self.pending[start..start + at]);
            start += at + b.len();
        }
        // A boundary that starts in what is left ends after it: keep its possible start.
        let hashed = start.max((self.pending.len() + 1).saturating_sub(b.len()));
        self.hasher.update(&self.pending[start..hashed]);
        self.pending.drain(..hashed);
    }

    fn finish(mut self) -> [u8; 32] {
        self.hasher.update(&self.pending);
        *self.hasher.finalize().as_bytes()
    }
}

/// A keyed request's body, fingerprinted on its way: the handler reads it through
/// [`Teed::body`], and whatever it leaves unread is read by [`Teed::rest`] (or all of it,
/// when a recorded answer is replayed without running the handler). Nothing is buffered,
/// whatever the size of the body.
#[derive(Clone)]
struct Teed(std::sync::Arc<std::sync::Mutex<Option<Tee>>>);

struct Tee {
    body: axum::body::BodyDataStream,
    print: Fingerprint,
    /// Bytes read so far, by the handler or by [`Teed::rest`].
    read: u64,
}

impl Teed {
    fn new(body: axum::body::Body, content_type: &str) -> Self {
        Self(std::sync::Arc::new(std::sync::Mutex::new(Some(Tee {
            body: body.into_data_stream(),
            print: Fingerprint::new(content_type),
            read: 0,
        }))))
    }

    /// The body for the handler (its own limits apply as it reads).
    fn body(&self) -> axum::body::Body {
        axum::body::Body::from_stream(self.clone())
    }

    /// Reads what the handler left of the body and answers the request's fingerprint.
    /// The handler reads nothing more after this.
    ///
    /// # Errors
    /// `too_large` when the body, all of it counted, is over `limit` bytes; `bad_request`
    /// when it cannot be read.
    async fn rest(&self, limit: u64, too_large: fn() -> ApiError) -> Result<[u8; 32], ApiError> {
        use futures_util::StreamExt;
        let taken = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(mut tee) = taken else {
            return Err(ApiError::internal("the request body was taken twice"));
        };
        if tee.read > limit {
            return Err(too_large());
        }
        while let Some(chunk) = tee.body.next().await {
            let chunk = chunk.map_err(|e| ApiError::bad_request("bad_request", e.to_string()))?;
            tee.read += chunk.len() as u64;
            if tee.read > limit {
                return Err(too_large());
            }
            tee.print.update(&chunk);
        }
        Ok(tee.print.finish())
    }
}

impl futures_util::Stream for Teed {
    type Item = Result<axum::body::Bytes, axum::Error>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let mut tee = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(tee) = tee.as_mut() else {
            return Poll::Ready(None);
        };
        let next = std::pin::Pin::new(&mut tee.body).poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &next {
            tee.read += chunk.len() as u64;
            tee.print.update(chunk);
        }
        next
    }
}

/// Middleware: `Idempotency-Key` on the POSTs whose handlers do not take the key
/// themselves — the router wraps the handler of each operation that declares
/// `Idempotency::Recorded` in it, with that operation.
///
/// The key is scoped to the caller and to the request's method and path. The first
/// successful response (2xx) is appended to the log (stream `idempotency-<scoped key>`)
/// before it is answered; a retry with the same key and the same request gets that
/// response again with `Idempotent-Replayed: true`, and nothing is written. A retry with
/// another body is refused (422 `idempotency_key_reused`); one that arrives while the
/// first still runs gets 409 `idempotency_key_in_use`. A refused first attempt (4xx, 5xx)
/// is not recorded: it wrote nothing, so a retry runs afresh.
///
/// The request is identified by a hash of its content type and body ([`Fingerprint`]),
/// taken as the body streams through to the handler ([`Teed`]), so a keyed upload is no
/// more held in memory than any other; a body whose `Content-Length` is over the route's
/// limit is refused (413) before any of it is read.
///
/// Left to the handler: a request without a key, or without a valid bearer token (it
/// answers 401 as usual, whatever the key: authentication is judged before the key).
pub async fn replay_or_record(
    axum::extract::State((state, op)): axum::extract::State<(
        crate::app::AppState,
        &'static crate::openapi::Operation,
    )>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match replay_or_record_inner(&state, op, req, next).await {
        Ok(r) => r,
        Err(e) => axum::response::IntoResponse::into_response(e),
    }
}

async fn replay_or_record_inner(
    state: &crate::app::AppState,
    op: &crate::openapi::Operation,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<axum::response::Response, ApiError> {
    use axum::http::{header, HeaderValue, StatusCode};
    use axum::response::IntoResponse;

    // Most requests carry no key: nothing to look up for them.
    if req.method() != axum::http::Method::POST || !req.headers().contains_key("idempotency-key") {
        return Ok(next.run(req).await);
    }
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(session) = (match token {
        Some(t) => state.sessions.check(state.store(), t).await.ok(),
        None => None,
    }) else {
        return Ok(next.run(req).await);
    };
    // Only now, for an authenticated caller, is the key itself judged: an unauthenticated
    // request is answered 401 by the handler whatever its key.
    let Some(key) = key(req.headers())? else {
        return Ok(next.run(req).await);
    };
    let mut scope = Vec::with_capacity(48 + req.uri().path().len());
    scope.extend_from_slice(session.org.as_uuid().as_bytes());
    scope.extend_from_slice(session.user.as_uuid().as_bytes());
    scope.extend_from_slice(b"POST ");
    scope.extend_from_slice(req.uri().path().as_bytes());
    let scoped = uuid::Uuid::new_v5(&key, &scope);

    // Over the limit by its own account: refused before any of the body is read.
    let (limit, too_large): (usize, fn() -> ApiError) = if op.body == "multipart" {
        (
            crate::routes::attachments::MAX_UPLOAD_BODY,
            crate::routes::attachments::too_large,
        )
    } else {
        (crate::app::MAX_JSON_BODY, body_too_large)
    };
    let limit = limit as u64;
    if crate::routes::attachments::declared_length(req.headers()).is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let (parts, body) = req.into_parts();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let body = Teed::new(body, content_type);

    let Some(_claimed) = state.idempotency.claim(scoped) else {
        let mut e = ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_key_in_use",
            "a request with this Idempotency-Key is still running",
        );
        e.retry_after_s = Some(1);
        return Err(e);
    };
    if let Some(first) = records::idempotency::recorded(state.store(), scoped).await? {
        if first.request != body.rest(limit, too_large).await? {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used with another request",
            ));
        }
        // A replay is a request like any other for the caller's rate limit.
        state
            .limiter
            .take_api(session.user)
            .map_err(ApiError::rate_limited)?;
        let status = StatusCode::from_u16(first.status).map_err(ApiError::internal)?;
        let mut response = (status, first.body).into_response();
        let headers = response.headers_mut();
        for (name, value) in [
            (header::CONTENT_TYPE, first.content_type),
            (header::LOCATION, first.location),
        ] {
            if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                headers.insert(name, v);
            }
        }
        headers.insert(REPLAYED, HeaderValue::from_static("true"));
        return Ok(response);
    }

    let response = next
        .run(axum::extract::Request::from_parts(parts, body.body()))
        .await;
    if !response.status().is_success() {
        return Ok(response);
    }
    // What identifies the request: all of it, the part the handler did not read included.
    let request = body.rest(limit, too_large).await?;
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, MAX_RECORDED_RESPONSE)
        .await
        .map_err(ApiError::internal)?;
    let header_of = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let answer = ResponseRecorded {
        request,
        status: parts.status.as_u16(),
        content_type: header_of(header::CONTENT_TYPE),
        location: header_of(header::LOCATION),
        body: body.to_vec(),
        at_ms: crate::auth::sessions::now_ms(),
    };
    // The request's effects are durable already; if its record is not, a retry runs it
    // again (and the handler's own checks refuse what would duplicate), so the answer
    // still goes out.
    if let Err(e) = records::idempotency::record(state.store(), scoped, answer).await {
        tracing::warn!(error = %e, "idempotency record not written");
    }
    Ok(axum::response::Response::from_parts(parts, body.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fingerprint as it was computed over a whole body before it was streamed: the
    /// hashes in recorded answers are these, so the streamed one must equal it.
    fn whole_body_fingerprint(content_type: &str, body: &[u8]) -> [u8; 32] {
        let boundary = content_type
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("boundary="))
            .map(|b| b.trim_matches('"').as_bytes().to_vec())
            .next();
        let mut h = blake3::Hasher::new();
        match boundary {
            Some(b) if !b.is_empty() => {
                h.update(
                    content_type
                        .split(';')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .as_bytes(),
                );
                h.update(&[0]);
                let mut rest = body;
                while let Some(at) = rest.windows(b.len()).position(|w| w == b.as_slice()) {
                    h.update(&rest[..at]);
                    rest = &rest[at + b.len()..];
                }
                h.update(rest);
            }
            _ => {
                h.update(content_type.as_bytes());
                h.update(&[0]);
                h.update(body);
            }
        }
        *h.finalize().as_bytes()
    }

    fn streamed(content_type: &str, pieces: &[&[u8]]) -> [u8; 32] {
        let mut print = Fingerprint::new(content_type);
        for p in pieces {
            print.update(p);
        }
        print.finish()
    }

    #[test]
    fn a_streamed_fingerprint_is_the_whole_body_one_whatever_the_pieces() {
        let cases: &[(&str, &[u8])] = &[
            ("application/json", b"{\"name\":\"Desk\"}"),
            (
                "multipart/form-data; boundary=xyz",
                b"--xyz\r\nA\r\n--xyz--\r\n",
            ),
            // Boundaries back to back, overlapping candidates, a quoted boundary.
            ("multipart/form-data; boundary=aab", b"aaab-aabaab-aaaab-aa"),
            (
                "multipart/form-data; boundary=\"q r\"",
                b"--q r\r\nq rq r q\r\n--q r--",
            ),
            (
                "multipart/form-data; boundary=",
                b"--\r\nno boundary at all",
            ),
            ("text/plain", b""),
        ];
        for (content_type, body) in cases {
            let whole = whole_body_fingerprint(content_type, body);
            assert_eq!(streamed(content_type, &[body]), whole, "{content_type}");
            // Every way of cutting the body in two, and in three.
            for i in 0..=body.len() {
                let (a, rest) = body.split_at(i);
                assert_eq!(
                    streamed(content_type, &[a, rest]),
                    whole,
                    "{content_type} at {i}"
                );
                for j in 0..=rest.len() {
                    let (b, c) = rest.split_at(j);
                    assert_eq!(
                        streamed(content_type, &[a, b, c]),
                        whole,
                        "{content_type} at {i}, {j}"
                    );
                }
            }
            // A byte at a time.
            let bytes: Vec<&[u8]> = body.chunks(1).collect();
            assert_eq!(streamed(content_type, &bytes), whole, "{content_type}");
        }
        // The boundary is what is left out: two bodies that differ only in it are one
        // request, and a body that differs elsewhere is not.
        let a = streamed(
            "multipart/form-data; boundary=one",
            &[b"--one\r\nx\r\n--one--"],
        );
        let b = streamed(
            "multipart/form-data; boundary=two",
            &[b"--two\r\nx", b"\r\n--two--"],
        );
        let c = streamed(
            "multipart/form-data; boundary=two",
            &[b"--two\r\ny\r\n--two--"],
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
