//! The gateway's one error type: a status, a stable machine-readable code, a message.
//!
//! Domain rejections keep the domain's own stable code; the status follows what kind of
//! refusal it is. Storage and internal failures are logged with their detail and answered
//! with a generic 500 or 503: a client never sees paths or engine messages.

use actors::{ActorError, CommandError};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::{Rejection, RejectionKind};
use serde::Serialize;

/// An error answered to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for `Retry-After` (429 and 503 say 1 when not set).
    pub retry_after_s: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_s: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a valid bearer token is required",
        )
    }

    /// 429 `rate_limited`, with `Retry-After` the whole seconds until a request is
    /// allowed again (at least 1).
    pub fn rate_limited(wait: std::time::Duration) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests; slow down",
        );
        let whole_s = wait
            .as_secs()
            .saturating_add(u64::from(wait.subsec_nanos() > 0));
        e.retry_after_s = Some(whole_s.max(1));
        e
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// An internal failure: the detail goes to the log, the client gets a generic answer.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server could not complete the request",
        )
    }

    /// The domain refused: its code, and the status of its kind of refusal.
    pub fn rejected<R: Rejection>(r: &R) -> Self {
        let status = match r.kind() {
            // Another tenant's data: answered as if it did not exist.
            RejectionKind::OtherOrganization => {
                return Self::not_found("not_found", "no such resource")
            }
            RejectionKind::Forbidden => StatusCode::FORBIDDEN,
            RejectionKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            RejectionKind::NotFound => StatusCode::NOT_FOUND,
            RejectionKind::Conflict => StatusCode::CONFLICT,
        };
        Self::new(status, r.code(), r.to_string())
    }
}

impl ApiError {
    /// 503 `storage_unavailable`: the log cannot write (or read) right now — a full disk,
    /// a store being reopened, a cluster without a quorum. Nothing was written, or (for a
    /// write whose outcome is unknown) a retry with the same `Idempotency-Key` is safe.
    pub fn storage_unavailable(detail: impl std::fmt::Display) -> Self {
        tracing::warn!(%detail, "storage unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "storage is unavailable right now; retry shortly",
        )
    }

    fn busy() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "the server is overloaded; retry shortly",
        )
    }
}

impl From<eventlog::StorageError> for ApiError {
    fn from(e: eventlog::StorageError) -> Self {
        match e {
            // What is stored contradicts itself: a bug or damage, not a passing state.
            eventlog::StorageError::Corrupted { .. } => Self::internal(e),
            other => Self::storage_unavailable(other),
        }
    }
}

impl From<eventlog::ReadError> for ApiError {
    fn from(e: eventlog::ReadError) -> Self {
        match e {
            eventlog::ReadError::Storage(s) => s.into(),
            other => Self::internal(other),
        }
    }
}

impl From<eventlog::AppendError> for ApiError {
    fn from(e: eventlog::AppendError) -> Self {
        match e {
            eventlog::AppendError::Overloaded => Self::busy(),
            eventlog::AppendError::Storage(s) => s.into(),
            other => Self::internal(other),
        }
    }
}

impl From<projections::ProjectionError> for ApiError {
    fn from(e: projections::ProjectionError) -> Self {
        match e {
            // A read model's storage refusing (a full disk…) passes; it is not a bug.
            projections::ProjectionError::Storage(_) | projections::ProjectionError::Io(_) => {
                Self::storage_unavailable(e)
            }
            other => Self::internal(other),
        }
    }
}

impl From<workers::webhooks::ReadFailure> for ApiError {
    fn from(e: workers::webhooks::ReadFailure) -> Self {
        match e {
            workers::webhooks::ReadFailure::Log(e) => e.into(),
            workers::webhooks::ReadFailure::Record(e) => Self::internal(e),
        }
    }
}

impl From<records::RecordError> for ApiError {
    fn from(e: records::RecordError) -> Self {
        match e {
            records::RecordError::Append(e) => e.into(),
            records::RecordError::Read(e) => e.into(),
            records::RecordError::Internal(e) => Self::internal(e),
        }
    }
}

impl From<ActorError> for ApiError {
    fn from(e: ActorError) -> Self {
        match e {
            ActorError::Busy | ActorError::Conflict => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the server is busy with this conversation; retry shortly",
            ),
            ActorError::Append(e) => e.into(),
            ActorError::Read(e) => e.into(),
            ActorError::Snapshot(eventlog::SnapshotError::Storage(e)) => e.into(),
            other => Self::internal(other),
        }
    }
}

impl<R: Rejection> From<CommandError<R>> for ApiError {
    fn from(e: CommandError<R>) -> Self {
        match e {
            CommandError::Rejected(r) => Self::rejected(&r),
            CommandError::Actor(a) => a.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            code: self.code,
            message: &self.message,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after_s {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        } else if self.status == StatusCode::SERVICE_UNAVAILABLE
            || self.status == StatusCode::TOO_MANY_REQUESTS
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{ConversationRejection, DirectoryRejection, QueueRejection, UserId};

    #[test]
    fn a_rejection_answers_the_status_of_its_kind() {
        let cases: [(ApiError, StatusCode, &str); 6] = [
            (
                ApiError::rejected(&DirectoryRejection::AdminOnly),
                StatusCode::FORBIDDEN,
                "admin_only",
            ),
            (
                ApiError::rejected(&ConversationRejection::EmptyMessage),
                StatusCode::UNPROCESSABLE_ENTITY,
                "empty_message",
            ),
            (
                ApiError::rejected(&ConversationRejection::NotStarted),
                StatusCode::NOT_FOUND,
                "conversation_not_started",
            ),
            (
                ApiError::rejected(&QueueRejection::AlreadyClaimed {
                    by: UserId::random(),
                }),
                StatusCode::CONFLICT,
                "already_claimed",
            ),
            (
                ApiError::rejected(&ConversationRejection::Invalid(
                    domain::validation::InvalidInput::Blank { field: "name" },
                )),
                StatusCode::UNPROCESSABLE_ENTITY,
                "blank",
            ),
            // Another organization's: nothing named, as if it did not exist.
            (
                ApiError::rejected(&QueueRejection::WrongOrganization),
                StatusCode::NOT_FOUND,
                "not_found",
            ),
        ];
        for (e, status, code) in cases {
            assert_eq!((e.status, e.code), (status, code), "{}", e.message);
        }
    }
}
