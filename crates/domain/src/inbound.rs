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
    pub text: String,
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
        SmsArrived(SmsArrived) = 1,
    }
}
