//! Attachments: the bytes in the blob store (named by their BLAKE3 hash), and per
//! organization an index stream `attachment-<id>` whose `AttachmentStored` event says which
//! blob the organization's attachment id is, with its sniffed type and size.
//!
//! The id is derived from (organization, hash), so storing the same bytes twice is one
//! attachment, and an organization can only name attachments someone of it stored (or
//! that arrived on its numbers). Messages reference the id (`AttachmentRef`); who may read
//! an attachment is decided by the conversations that reference it.

use std::sync::Arc;

use carrier::blobs::{BlobRef, BlobStore};
use domain::conversation::AttachmentRef;
use domain::{AttachmentId, OrgId};
use eventlog::{codec, AppendError, Direction, EventData, EventStore, ExpectedVersion, StreamName};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiError;

/// Category of the attachment index streams.
pub const ATTACHMENT_CATEGORY: &str = "attachment";

/// Namespace of attachment ids. Fixed forever.
const ATTACHMENT_NAMESPACE: Uuid = Uuid::from_u128(0x3e4a_9d21_6b0f_4c77_8e15_a2c3_d4e5_f601);

/// The one event of an `attachment-<id>` stream (deterministic content: storing the same
/// bytes again writes nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentStored {
    pub org: OrgId,
    /// The blob: lowercase hex BLAKE3 of the bytes.
    pub hash: String,
    /// Sniffed from the bytes.
    pub mime: String,
    pub size: u64,
}

impl AttachmentStored {
    pub fn reference(&self) -> AttachmentRef {
        AttachmentRef {
            id: attachment_id(self.org, &self.hash),
            mime: self.mime.clone(),
            size_bytes: self.size,
        }
    }
}

/// The organization's id for the blob `hash`.
pub fn attachment_id(org: OrgId, hash: &str) -> AttachmentId {
    let mut name = Vec::with_capacity(16 + 64);
    name.extend_from_slice(org.as_uuid().as_bytes());
    name.extend_from_slice(hash.as_bytes());
    AttachmentId::from_uuid(Uuid::new_v5(&ATTACHMENT_NAMESPACE, &name))
}

fn stream_of(id: AttachmentId) -> Result<StreamName, ApiError> {
    StreamName::from_parts(ATTACHMENT_CATEGORY, id).map_err(ApiError::internal)
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
    let stored = AttachmentStored {
        org,
        hash: blob.hash,
        mime: blob.mime,
        size: blob.size,
    };
    let id = attachment_id(org, &stored.hash);
    let payload = codec::encode(&stored).map_err(ApiError::internal)?;
    let event = EventData::new("AttachmentStored", 1, payload)
        .with_id(Uuid::new_v5(id.as_uuid(), b"stored"));
    match store
        .append(stream_of(id)?, ExpectedVersion::Any, vec![event])
        .await
    {
        Ok(_) | Err(AppendError::EventIdReused { .. }) => Ok(stored),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// What `id` is, if anyone stored it.
///
/// # Errors
/// Internal errors.
pub async fn lookup(
    store: &Arc<dyn EventStore>,
    id: AttachmentId,
) -> Result<Option<AttachmentStored>, ApiError> {
    let first =
        eventlog::store::nonblocking::read_stream(store, &stream_of(id)?, 0, Direction::Forward, 1)
            .await
            .map_err(ApiError::internal)?;
    Ok(first
        .first()
        .filter(|r| r.event_type == "AttachmentStored" && r.schema_version == 1)
        .and_then(|r| codec::decode::<AttachmentStored>(&r.payload).ok()))
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
/// `attachment_not_found` when the blob is gone; internal errors.
pub async fn read(blobs: &BlobStore, stored: &AttachmentStored) -> Result<Vec<u8>, ApiError> {
    let (blobs, hash) = (blobs.clone(), stored.hash.clone());
    tokio::task::spawn_blocking(move || blobs.get(&hash))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("attachment_not_found", "no such attachment"))
}
