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

/// The request's key, if it has one, scoped as [`scoped`] says.
///
/// # Errors
/// `invalid_idempotency_key` (400).
pub fn scoped_key(
    headers: &HeaderMap,
    caller: &Authenticated,
    purpose: &str,
    target: &[u8],
) -> Result<Option<uuid::Uuid>, ApiError> {
    Ok(key(headers)?.map(|k| scoped(k, caller, purpose, target)))
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
