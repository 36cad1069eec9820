//! Past versions of conversation event payloads, as old logs hold them, each with the
//! function that upcasts it to the next version.
//!
//! Frozen: a struct here never changes again (its file in `schemas/` must keep matching,
//! a test checks). Should a type nested in one of them change (a [`DeliveryStatus`], a
//! [`PhoneNumber`]), the struct keeps a frozen copy of the old nested type instead.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conversation::content::AttachmentRef;
use crate::conversation::delivery::DeliveryStatus;
use crate::conversation::event::{
    AutoReplyPosted, DeliveryUpdated, InboundReceived, MessagePosted,
};
use crate::ids::{MessageId, UserId};
use crate::phone_number::PhoneNumber;
use crate::text::Text;

/// [`DeliveryUpdated`] version 1: before the carrier's message id and error code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "DeliveryUpdated")]
pub struct DeliveryUpdatedV1 {
    pub message_id: MessageId,
    pub to: PhoneNumber,
    pub status: DeliveryStatus,
    pub at_ms: u64,
}

/// Version 1 knew neither the carrier's id nor its error code.
pub fn delivery_updated_v1_to_v2(v1: DeliveryUpdatedV1) -> DeliveryUpdated {
    let DeliveryUpdatedV1 {
        message_id,
        to,
        status,
        at_ms,
    } = v1;
    DeliveryUpdated {
        message_id,
        to,
        status,
        carrier_message_id: None,
        error_code: None,
        at_ms,
    }
}

// [`MessagePosted`] version 1: the text in the clear, before texts were sealed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "MessagePosted")]
pub struct MessagePostedV1 {
    pub message_id: MessageId,
    /// Position of the message in the conversation, from 1; read markers refer to it.
    pub seq: u64,
    pub author: UserId,
    pub text: String,
    pub attachments: Vec<AttachmentRef>,
    pub at_ms: u64,
}

/// A version 1 text stays in the clear: it was never sealed, so it cannot be erased.
pub fn message_posted_v1_to_v2(v1: MessagePostedV1) -> MessagePosted {
    let MessagePostedV1 {
        message_id,
        seq,
        author,
        text,
        attachments,
        at_ms,
    } = v1;
    MessagePosted {
        message_id,
        seq,
        author,
        text: Text::unsealed(text),
        attachments,
        at_ms,
    }
}

// [`InboundReceived`] version 1: the text in the clear.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "InboundReceived")]
pub struct InboundReceivedV1 {
    pub message_id: MessageId,
    pub seq: u64,
    pub from: PhoneNumber,
    pub text: String,
    /// MMS media, already stored in the attachment store.
    pub media: Vec<AttachmentRef>,
    pub at_ms: u64,
}

/// A version 1 text stays in the clear.
pub fn inbound_received_v1_to_v2(v1: InboundReceivedV1) -> InboundReceived {
    let InboundReceivedV1 {
        message_id,
        seq,
        from,
        text,
        media,
        at_ms,
    } = v1;
    InboundReceived {
        message_id,
        seq,
        from,
        text: Text::unsealed(text),
        media,
        at_ms,
    }
}

// [`AutoReplyPosted`] version 1: the text in the clear.
/// Our number answered the customer's message `reply_to` automatically (the configured
/// HELP text): an outbound message of the conversation like any other (it has a seq, and
/// its SMS is requested in the same decision, so its delivery is recorded), written by the
/// System, not by a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "AutoReplyPosted")]
pub struct AutoReplyPostedV1 {
    pub message_id: MessageId,
    pub seq: u64,
    /// Our business number, which sends it.
    pub from: PhoneNumber,
    /// The customer's message it answers.
    pub reply_to: MessageId,
    pub text: String,
    pub at_ms: u64,
}

/// A version 1 text stays in the clear.
pub fn auto_reply_posted_v1_to_v2(v1: AutoReplyPostedV1) -> AutoReplyPosted {
    let AutoReplyPostedV1 {
        message_id,
        seq,
        from,
        reply_to,
        text,
        at_ms,
    } = v1;
    AutoReplyPosted {
        message_id,
        seq,
        from,
        reply_to,
        text: Text::unsealed(text),
        at_ms,
    }
}
