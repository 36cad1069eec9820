//! Texts as the carrier hands them over, before they are routed.
//!
//! The carrier adapter appends one [`InboundEvent::SmsArrived`] per received text to the
//! organization's `inbound-<org>` stream (no aggregate: arrival is a fact, not a decision).
//! The inbound router (a process manager in the actor layer) reads that category and
//! records each text in the right External conversation, as the number's routing says.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conversation::AttachmentRef;
use crate::ids::OrgId;
use crate::phone_number::PhoneNumber;
use crate::schema::versioned_events;
use crate::text::{Text, Texts};

/// Stream category of arrived texts.
pub const INBOUND_CATEGORY: &str = "inbound";

/// A text that reached one of our numbers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SmsArrived {
    pub org: OrgId,
    /// Our business number it was sent to.
    pub to: PhoneNumber,
    /// The external sender.
    pub from: PhoneNumber,
    /// Sealed in the log under the key of the sender and the day.
    pub text: Text,
    /// MMS media, already stored.
    pub media: Vec<AttachmentRef>,
    /// The carrier's id of the message (for dedupe at the carrier edge and for audit).
    pub carrier_message_id: String,
    pub at_ms: u64,
}

/// Events of the `inbound-<org>` streams.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InboundEvent {
    SmsArrived(SmsArrived),
}

versioned_events! {
    InboundEvent {
        SmsArrived(SmsArrived) = 2 [
            1: SmsArrivedV1 => sms_arrived_v1_to_v2,
        ],
    }
}

impl Texts for InboundEvent {
    fn texts_mut(&mut self) -> Vec<&mut Text> {
        match self {
            InboundEvent::SmsArrived(SmsArrived { text, .. }) => vec![text],
        }
    }

    fn has_texts(&self) -> bool {
        true
    }
}

// [`SmsArrived`] version 1 (frozen): the text in the clear, before texts were sealed.
/// A text that reached one of our numbers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "SmsArrived")]
pub struct SmsArrivedV1 {
    pub org: OrgId,
    /// Our business number it was sent to.
    pub to: PhoneNumber,
    /// The external sender.
    pub from: PhoneNumber,
    pub text: String,
    /// MMS media, already stored.
    pub media: Vec<AttachmentRef>,
    /// The carrier's id of the message (for dedupe at the carrier edge and for audit).
    pub carrier_message_id: String,
    pub at_ms: u64,
}

/// A version 1 text stays in the clear.
pub fn sms_arrived_v1_to_v2(v1: SmsArrivedV1) -> SmsArrived {
    let SmsArrivedV1 {
        org,
        to,
        from,
        text,
        media,
        carrier_message_id,
        at_ms,
    } = v1;
    SmsArrived {
        org,
        to,
        from,
        text: Text::unsealed(text),
        media,
        carrier_message_id,
        at_ms,
    }
}
