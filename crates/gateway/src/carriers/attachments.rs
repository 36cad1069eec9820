//! Attachments: the bytes in the blob store (named by their BLAKE3 hash), and per
//! organization an index stream `attachment-<id>` whose `AttachmentStored` event says which
//! blob the organization's attachment id is, with its sniffed type and size.
//!
//! The id is derived from (organization, hash), so storing the same bytes twice is one
//! attachment, and an organization can only name attachments someone of it stored (or
//! that arrived on its numbers). Messages reference the id (`AttachmentRef`); who may read
//! an attachment is decided by the conversations that reference it.
//!
//! - An inbound MMS item that could not be fetched (timeout, 404, too large, not what it
//!   claimed to be) is still referenced by its text, as an attachment whose stream starts
//!   with `AttachmentUnavailable` (the reason) instead of `AttachmentStored`; its type is
//!   [`UNAVAILABLE_MIME`] and its size 0, and fetching it answers 410 `media_unavailable`.
//! - Which conversations reference an attachment is indexed durably: `references` follows
//!   the `conversation` category and appends `AttachmentReferenced { conversation }` to the
//!   attachment's stream with an event id derived from (attachment, conversation), so the
//!   access check is one point lookup of that id ([`is_referenced`]), whatever the length
//!   of the conversation.
//!
//! The records are written and read by `records::attachments`; the blobs are written and
//! read here.

use std::sync::Arc;

use carrier::blobs::{BlobRef, BlobStore};
use domain::conversation::AttachmentRef;
use domain::{AttachmentId, ConversationId, OrgId};
use eventlog::EventStore;

use crate::error::ApiError;

pub use domain::attachment::{
    attachment_id, reference_event_id, unavailable_id, AttachmentReferenced, AttachmentStored,
    AttachmentUnavailable, Entry, ATTACHMENT_CATEGORY, UNAVAILABLE_MIME,
};

/// Records an inbound media item that could not be fetched; its reference for the text.
///
/// # Errors
/// Internal errors (log).
pub async fn store_unavailable(
    store: &Arc<dyn EventStore>,
    unavailable: AttachmentUnavailable,
) -> Result<AttachmentRef, ApiError> {
    records::attachments::record_unavailable(store, &unavailable).await?;
    Ok(unavailable.reference())
}

/// Whether `conversation` is indexed as referencing `id` (one lookup, no scan).
///
/// # Errors
/// Internal errors.
pub async fn is_referenced(
    store: &Arc<dyn EventStore>,
    id: AttachmentId,
    conversation: ConversationId,
) -> Result<bool, ApiError> {
    Ok(records::attachments::is_referenced(store, id, conversation).await?)
}

/// Stores `bytes` for `org`: the blob (off the executor), then its index event.
///
/// # Errors
/// Internal errors (disk, log).
pub async fn store(
    store: &Arc<dyn EventStore>,
    blobs: &BlobStore,
    org: OrgId,
    bytes: Vec<u8>,
) -> Result<AttachmentStored, ApiError> {
    let blobs = blobs.clone();
    let blob: BlobRef = tokio::task::spawn_blocking(move || blobs.put(&bytes))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    record(store, org, blob).await
}

/// Records `blob`, stored already, as an attachment of `org`: its index event.
///
/// # Errors
/// Internal errors (log).
pub async fn record(
    store: &Arc<dyn EventStore>,
    org: OrgId,
    blob: BlobRef,
) -> Result<AttachmentStored, ApiError> {
    let stored = AttachmentStored {
        org,
        hash: blob.hash,
        mime: blob.mime,
        size: blob.size,
    };
    records::attachments::record_stored(store, &stored).await?;
    Ok(stored)
}

/// What `id` is, if anyone stored it (an unavailable item is not stored: `None`).
///
/// # Errors
/// Internal errors.
pub async fn lookup(
    store: &Arc<dyn EventStore>,
    id: AttachmentId,
) -> Result<Option<AttachmentStored>, ApiError> {
    Ok(match lookup_entry(store, id).await? {
        Some(Entry::Stored(stored)) => Some(stored),
        _ => None,
    })
}

/// What `id` is: stored, or an inbound item that could not be fetched.
///
/// # Errors
/// Internal errors.
pub async fn lookup_entry(
    store: &Arc<dyn EventStore>,
    id: AttachmentId,
) -> Result<Option<Entry>, ApiError> {
    Ok(records::attachments::entry(store, id).await?)
}

/// The organization's attachment (or unavailable item) named by a blob hash (64 hex) or
/// an attachment id (UUID).
///
/// # Errors
/// `attachment_not_found` (404) when the key names nothing of this organization.
pub async fn resolve_entry(
    store: &Arc<dyn EventStore>,
    org: OrgId,
    key: &str,
) -> Result<(AttachmentId, Entry), ApiError> {
    let not_found = || ApiError::not_found("attachment_not_found", "no such attachment");
    let id = if carrier::blobs::is_valid_hash(key) {
        attachment_id(org, key)
    } else {
        key.parse::<AttachmentId>().map_err(|_| not_found())?
    };
    match lookup_entry(store, id).await? {
        Some(entry) if entry.org() == org => Ok((id, entry)),
        _ => Err(not_found()),
    }
}

/// The organization's attachment named by a blob hash (64 hex) or an attachment id (UUID).
///
/// # Errors
/// `attachment_not_found` (404) when the key names nothing this organization stored.
pub async fn resolve(
    store: &Arc<dyn EventStore>,
    org: OrgId,
    key: &str,
) -> Result<AttachmentStored, ApiError> {
    let not_found = || ApiError::not_found("attachment_not_found", "no such attachment");
    let id = if carrier::blobs::is_valid_hash(key) {
        attachment_id(org, key)
    } else {
        key.parse::<AttachmentId>().map_err(|_| not_found())?
    };
    match lookup(store, id).await? {
        Some(stored) if stored.org == org => Ok(stored),
        _ => Err(not_found()),
    }
}

/// The bytes of a stored attachment.
///
/// # Errors
/// `media_erased` (410) when the blob is gone (see `workers::media_erasure`); internal errors.
pub async fn read(blobs: &BlobStore, stored: &AttachmentStored) -> Result<Vec<u8>, ApiError> {
    let (blobs, hash) = (blobs.clone(), stored.hash.clone());
    tokio::task::spawn_blocking(move || blobs.get(&hash))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?
        .ok_or_else(erased)
}

/// The answer for an attachment whose bytes were erased.
pub fn erased() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::GONE,
        "media_erased",
        "the media was erased (the organization's retention, or its customer's erasure)",
    )
}

/// The first `len` bytes of a stored attachment (not verified: what its type and size are
/// judged from before the whole is read).
///
/// # Errors
/// `media_erased` (410) when the blob is gone; internal errors.
pub async fn read_head(
    blobs: &BlobStore,
    stored: &AttachmentStored,
    len: usize,
) -> Result<Vec<u8>, ApiError> {
    let (blobs, hash) = (blobs.clone(), stored.hash.clone());
    tokio::task::spawn_blocking(move || blobs.get_head(&hash, len))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?
        .ok_or_else(erased)
}
