//! The attachment records of the log: per organization an index stream
//! `attachment-<id>` whose first event says which blob the organization's attachment id is
//! ([`AttachmentStored`]) or that an inbound media item could not be fetched
//! ([`AttachmentUnavailable`]), followed by one [`AttachmentReferenced`] per conversation
//! that references it, and [`AttachmentErased`] once erasure deleted what it needed. Ids
//! are derived, so every write of them is idempotent. The store operations are in the
//! gateway (uploads) and the `workers` (the reference index, media erasure); the records
//! are versioned events ([`AttachmentEvent`]) with their schemas in `schemas/`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::conversation::AttachmentRef;
use crate::schema::versioned_events;
use crate::text::{Text, Texts};
use crate::{AttachmentId, ConversationId, OrgId};

/// Category of the attachment index streams.
pub const ATTACHMENT_CATEGORY: &str = "attachment";

/// Namespace of attachment ids. Fixed forever.
const ATTACHMENT_NAMESPACE: Uuid = Uuid::from_u128(0x3e4a_9d21_6b0f_4c77_8e15_a2c3_d4e5_f601);

/// The one event of an `attachment-<id>` stream (deterministic content: storing the same
/// bytes again writes nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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

/// The type recorded for an inbound media item that could not be fetched.
pub const UNAVAILABLE_MIME: &str = "application/vnd.switchboard.unavailable";

/// The first event of an `attachment-<id>` stream for an inbound MMS item that could not be
/// fetched (deterministic content: a retried webhook writes nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AttachmentUnavailable {
    pub org: OrgId,
    /// The carrier's id of the message, and the item's place in it.
    pub carrier_message_id: String,
    pub index: u32,
    /// Why: `media_fetch_status`, `media_fetch_timeout`, `media_too_large`,
    /// `media_type_mismatch`, ...
    pub code: String,
    pub reason: String,
    /// The type the carrier claimed, if any.
    pub claimed_mime: Option<String>,
}

impl AttachmentUnavailable {
    pub fn id(&self) -> AttachmentId {
        unavailable_id(self.org, &self.carrier_message_id, self.index)
    }

    pub fn reference(&self) -> AttachmentRef {
        AttachmentRef {
            id: self.id(),
            mime: UNAVAILABLE_MIME.to_owned(),
            size_bytes: 0,
        }
    }
}

/// What an `attachment-<id>` stream says the attachment is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Stored(AttachmentStored),
    Unavailable(AttachmentUnavailable),
}

impl Entry {
    pub fn org(&self) -> OrgId {
        match self {
            Entry::Stored(s) => s.org,
            Entry::Unavailable(u) => u.org,
        }
    }
}

/// The id of item `index` of carrier message `carrier_message_id` that could not be
/// fetched.
pub fn unavailable_id(org: OrgId, carrier_message_id: &str, index: u32) -> AttachmentId {
    let mut name = Vec::with_capacity(16 + 64);
    name.extend_from_slice(b"unavailable\0");
    name.extend_from_slice(org.as_uuid().as_bytes());
    name.extend_from_slice(carrier_message_id.as_bytes());
    name.push(0);
    name.extend_from_slice(&index.to_be_bytes());
    AttachmentId::from_uuid(Uuid::new_v5(&ATTACHMENT_NAMESPACE, &name))
}

/// `conversation` references attachment `id` (one event per pair, ever).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AttachmentReferenced {
    pub conversation: ConversationId,
}

/// The id of the event saying that `conversation` references `id`.
pub fn reference_event_id(id: AttachmentId, conversation: ConversationId) -> Uuid {
    let mut name = Vec::with_capacity(20);
    name.extend_from_slice(b"ref\0");
    name.extend_from_slice(conversation.as_uuid().as_bytes());
    Uuid::new_v5(id.as_uuid(), &name)
}

/// Media erasure deleted (or let go of) this attachment's blob: written once per attachment
/// and erasure record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AttachmentErased {
    pub reason: String,
    /// The `erasure-<org>` event that caused it.
    #[schemars(with = "String")]
    pub cause: Uuid,
}

/// Events of the `attachment-<id>` streams.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttachmentEvent {
    AttachmentStored(AttachmentStored),
    AttachmentUnavailable(AttachmentUnavailable),
    AttachmentReferenced(AttachmentReferenced),
    AttachmentErased(AttachmentErased),
}

versioned_events! {
    AttachmentEvent {
        AttachmentStored(AttachmentStored) = 1,
        AttachmentUnavailable(AttachmentUnavailable) = 1,
        AttachmentReferenced(AttachmentReferenced) = 1,
        AttachmentErased(AttachmentErased) = 1,
    }
}

/// No texts: an attachment's records name blobs and conversations, never a message body.
impl Texts for AttachmentEvent {
    fn texts_mut(&mut self) -> Vec<&mut Text> {
        Vec::new()
    }
}
