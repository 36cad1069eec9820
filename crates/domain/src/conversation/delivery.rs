//! SMS delivery status per (message, recipient): requested → queued → sent → delivered,
//! or failed / undelivered with the carrier's reason.
//!
//! Carrier callbacks arrive late, twice, and out of order. A status therefore only ever
//! moves forward, and the first final status wins; a report that would move it back or
//! sideways is accepted and writes nothing, so the carrier adapter never retries it. So
//! is a report for a message that has left the state's window (see `window`).
//!
//! A report may carry the carrier's id of the text and, for an undelivered or failed text,
//! its error code; both go into the [`DeliveryUpdated`] event, for the read models and
//! auditors. The state keeps only the status: no decision depends on them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::command_meta::{Actor, CommandMeta};
use crate::conversation::event::{ConversationEvent, DeliveryUpdated};
use crate::conversation::rejection::ConversationRejection;
use crate::conversation::state::Conversation;
use crate::ids::MessageId;
use crate::limits::{
    MAX_CARRIER_ERROR_CODE_CHARS, MAX_CARRIER_MESSAGE_ID_CHARS, MAX_DELIVERY_REASON_CHARS,
};
use crate::phone_number::PhoneNumber;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeliveryStatus {
    /// We asked the carrier adapter to send it.
    Requested,
    /// The carrier accepted it.
    Queued,
    /// The carrier sent it to the handset network.
    Sent,
    Delivered,
    Failed {
        reason: String,
    },
    Undelivered {
        reason: String,
    },
}

impl DeliveryStatus {
    /// How far along the way the status is; final statuses share the last stage.
    pub fn stage(&self) -> u8 {
        match self {
            DeliveryStatus::Requested => 0,
            DeliveryStatus::Queued => 1,
            DeliveryStatus::Sent => 2,
            DeliveryStatus::Delivered
            | DeliveryStatus::Failed { .. }
            | DeliveryStatus::Undelivered { .. } => 3,
        }
    }

    pub fn is_final(&self) -> bool {
        self.stage() == 3
    }

    /// Carriers' reasons can be long; only the start is worth keeping.
    fn with_bounded_reason(&self) -> Self {
        let bound = |reason: &str| reason.chars().take(MAX_DELIVERY_REASON_CHARS).collect();
        match self {
            DeliveryStatus::Failed { reason } => DeliveryStatus::Failed {
                reason: bound(reason),
            },
            DeliveryStatus::Undelivered { reason } => DeliveryStatus::Undelivered {
                reason: bound(reason),
            },
            other => other.clone(),
        }
    }
}

/// What a delivery report says about the text at the carrier, besides its status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct CarrierRefs<'a> {
    /// The carrier's id of the text.
    pub message_id: Option<&'a str>,
    /// The carrier's error code of an undelivered or failed text.
    pub error_code: Option<&'a str>,
}

/// A carrier's value as the event keeps it: an empty one is none, a longer one than any
/// carrier sends is cut at `max` characters (so a faulty adapter cannot grow the log).
fn bounded(value: Option<&str>, max: usize) -> Option<String> {
    value
        .filter(|value| !value.is_empty())
        .map(|value| value.chars().take(max).collect())
}

impl Conversation {
    pub(super) fn record_delivery(
        &self,
        meta: &CommandMeta,
        message_id: MessageId,
        to: &PhoneNumber,
        status: &DeliveryStatus,
        carrier: CarrierRefs<'_>,
    ) -> Result<Vec<ConversationEvent>, ConversationRejection> {
        self.started(meta)?;
        if meta.actor != Actor::System {
            return Err(ConversationRejection::SystemOnly);
        }
        let no_such_request = || ConversationRejection::NoSuchSmsRequest {
            message_id,
            to: to.clone(),
        };
        let Some(message) = self.messages.get(&message_id) else {
            // Once messages have left the window an unknown id is most likely one of them:
            // a late or repeated callback, accepted like any stale report (see `window`).
            return if self.messages.pruned_through_seq() > 0 {
                Ok(vec![])
            } else {
                Err(no_such_request())
            };
        };
        let current = message.deliveries.get(to).ok_or_else(no_such_request)?;
        if status.stage() <= current.stage() {
            return Ok(vec![]);
        }
        Ok(vec![ConversationEvent::DeliveryUpdated(DeliveryUpdated {
            message_id,
            to: to.clone(),
            status: status.with_bounded_reason(),
            carrier_message_id: bounded(carrier.message_id, MAX_CARRIER_MESSAGE_ID_CHARS),
            error_code: bounded(carrier.error_code, MAX_CARRIER_ERROR_CODE_CHARS),
            at_ms: meta.at_ms,
        })])
    }
}
