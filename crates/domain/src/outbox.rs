//! The outbox's records of the log: what is sent to the carrier, each step written before
//! it is acted on.
//!
//! - `outbox-<id>`: one stream per outbound text (one recipient of one message, or one
//!   HELP reply) ([`OutboxEvent`]). [`SmsPrepared`] says what to send; then, per attempt,
//!   an [`SmsSendStarted`] written **before** the carrier is called (the dedupe record: an
//!   attempt that started and has no outcome is one whose result a crash lost), and its
//!   outcome: [`SmsAccepted`] (at most once per text) or [`SmsSendFailed`] (a retry time,
//!   or final).
//! - `carriermsg-<carrier message id>`: one stream per carrier message id
//!   ([`CarrierMessageEvent`]). [`CarrierMessageLinked`] names the outbound text it is (so
//!   a status report finds its conversation after a restart: no in-memory map),
//!   [`CarrierStatusReported`] records each status report as it came (webhook or
//!   simulator), before it is applied.
//!
//! The `workers` (`workers::outbox`) append and read them, with the outbox's ids, stream
//! names and deterministic event ids; the records are versioned events with their schemas
//! in `schemas/`. Before they were domain records the outbox stored each as its bare
//! struct, so they are the same bytes; only [`SmsPrepared`] had an older version (the
//! body in the clear), read through [`legacy`].
//!
//! The body of an [`SmsPrepared`] is a [`Text`]: it is stored sealed under its message's
//! key like the message itself ([`OutboxEvent`]'s [`Texts`]), and read back sealed — the
//! outbox opens it right before each call to the carrier, so a text erased meanwhile is
//! never sent.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::conversation::AttachmentRef;
use crate::schema::versioned_events;
use crate::text::{Text, Texts};
use crate::{ConversationId, MessageId, OrgId, PhoneNumber};

/// Category of the per-text outbox streams.
pub const OUTBOX_CATEGORY: &str = "outbox";

/// Category of the per-carrier-message streams.
pub const CARRIER_MESSAGE_CATEGORY: &str = "carriermsg";

/// Why a text is sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SmsOrigin {
    /// One recipient's SMS of a conversation message; `requested_event` is the id of its
    /// `SmsRequested` event (delivery records derive their idempotency keys from it).
    Message {
        conversation: ConversationId,
        message_id: MessageId,
        #[schemars(with = "String")]
        requested_event: Uuid,
    },
    /// The reply to a HELP keyword; `arrived_event` is the id of the `SmsArrived` event.
    /// Written by earlier versions only (HELP is now answered in the conversation, as an
    /// `AutoReplyPosted` sent as a `Message`); still read, resumed and sent.
    HelpReply {
        #[schemars(with = "String")]
        arrived_event: Uuid,
    },
}

/// What to send, written once, first, in the text's outbox stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SmsPrepared {
    pub org: OrgId,
    pub origin: SmsOrigin,
    pub from: PhoneNumber,
    pub to: PhoneNumber,
    /// Sealed in the log under the message's key (version 1 held it in the clear).
    pub body: Text,
    /// MMS media (already resized when the message was posted).
    pub media: Vec<AttachmentRef>,
    /// The request's time (so a repeated preparation writes identical content).
    pub at_ms: u64,
}

/// Attempt `attempt` (from 1) is about to call the carrier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SmsSendStarted {
    pub attempt: u32,
    pub at_ms: u64,
}

/// The carrier accepted the text under `carrier_message_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SmsAccepted {
    pub attempt: u32,
    pub carrier: String,
    pub carrier_message_id: String,
    /// The carrier's status on acceptance (Twilio's names: `queued`, `accepted`, ...).
    pub status: String,
    /// How we learnt it: `response` (the send call answered) or `status_callback` (a
    /// status report naming this text arrived while the answer was lost to a crash).
    pub confirmed_by: String,
    pub at_ms: u64,
}

/// Attempt `attempt` failed; another follows at `retry_at_ms`, or none (final).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SmsSendFailed {
    pub attempt: u32,
    /// The carrier's error code (or the adapter's: `timeout`, `http_503`, `erased`, ...).
    pub code: String,
    pub message: String,
    pub retry_at_ms: Option<u64>,
    pub at_ms: u64,
}

/// Events of the `outbox-<id>` streams.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutboxEvent {
    SmsPrepared(SmsPrepared),
    SmsSendStarted(SmsSendStarted),
    SmsAccepted(SmsAccepted),
    SmsSendFailed(SmsSendFailed),
}

versioned_events! {
    OutboxEvent {
        SmsPrepared(SmsPrepared) = 2 [
            1: legacy::SmsPreparedV1 => legacy::sms_prepared_v1_to_v2,
        ],
        SmsSendStarted(SmsSendStarted) = 1,
        SmsAccepted(SmsAccepted) = 1,
        SmsSendFailed(SmsSendFailed) = 1,
    }
}

/// The body of a prepared text: sealed before it is written (`Sealer::seal_event`), the
/// same bytes as sealing the body alone. Opening it is the outbox's, right before each
/// call to the carrier.
impl Texts for OutboxEvent {
    fn texts_mut(&mut self) -> Vec<&mut Text> {
        match self {
            OutboxEvent::SmsPrepared(SmsPrepared { body, .. }) => vec![body],
            OutboxEvent::SmsSendStarted(_)
            | OutboxEvent::SmsAccepted(_)
            | OutboxEvent::SmsSendFailed(_) => Vec::new(),
        }
    }

    fn has_texts(&self) -> bool {
        matches!(self, OutboxEvent::SmsPrepared(_))
    }
}

/// Carrier message `carrier_message_id` (the stream's id) is this outbound text.
/// Deterministic content: whoever links it writes the same event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CarrierMessageLinked {
    /// The text's outbox id.
    #[schemars(with = "String")]
    pub outbox: Uuid,
    pub org: OrgId,
    pub origin: SmsOrigin,
    pub to: PhoneNumber,
}

/// A status report for the stream's carrier message, as it arrived. Its time is the
/// event's commit time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CarrierStatusReported {
    /// The status by Twilio's name (`sent`, `delivered`, `undelivered`, ...).
    pub status: String,
    pub error_code: Option<String>,
    /// The outbox id the status callback URL carried (`?sms=`), if any: it lets a report
    /// confirm a text whose acceptance was lost to a crash.
    #[schemars(with = "Option<String>")]
    pub outbox_hint: Option<Uuid>,
}

/// Events of the `carriermsg-<sid>` streams.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CarrierMessageEvent {
    CarrierMessageLinked(CarrierMessageLinked),
    CarrierStatusReported(CarrierStatusReported),
}

versioned_events! {
    CarrierMessageEvent {
        CarrierMessageLinked(CarrierMessageLinked) = 1,
        CarrierStatusReported(CarrierStatusReported) = 1,
    }
}

/// No texts: a link names a text by its outbox id, a report holds statuses and codes.
impl Texts for CarrierMessageEvent {
    fn texts_mut(&mut self) -> Vec<&mut Text> {
        Vec::new()
    }
}

/// Version 1 of [`SmsPrepared`], as the outbox wrote it before texts were sealed: the
/// body in the clear. Read only: nothing writes version 1 any more.
///
/// Frozen: nothing here ever changes (the files in `schemas/` must keep matching).
pub mod legacy {
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    use super::{SmsOrigin, SmsPrepared};
    use crate::conversation::AttachmentRef;
    use crate::text::Text;
    use crate::{OrgId, PhoneNumber};

    /// [`SmsPrepared`] version 1: the body a plain string.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[schemars(rename = "SmsPrepared")]
    pub struct SmsPreparedV1 {
        pub org: OrgId,
        pub origin: SmsOrigin,
        pub from: PhoneNumber,
        pub to: PhoneNumber,
        pub body: String,
        pub media: Vec<AttachmentRef>,
        pub at_ms: u64,
    }

    /// A version 1 body stays in the clear: it was never sealed, so it has no key.
    pub fn sms_prepared_v1_to_v2(v1: SmsPreparedV1) -> SmsPrepared {
        let SmsPreparedV1 {
            org,
            origin,
            from,
            to,
            body,
            media,
            at_ms,
        } = v1;
        SmsPrepared {
            org,
            origin,
            from,
            to,
            body: Text::unsealed(body),
            media,
            at_ms,
        }
    }
}
