//! SMS delivery status per (message, recipient): requested → queued → sent → delivered,
//! or failed / undelivered with the carrier's reason.
//!
//! Carrier callbacks arrive late, twice, and out of order. A status therefore only ever
//! moves forward, and the first final status wins; a report that would move it back or
//! sideways is accepted and writes nothing, so the carrier adapter never retries it. So
//! is a report for a message that has left the state's window (see `window`).

use serde::{Deserialize, Serialize};

use crate::command_meta::{Actor, CommandMeta};
use crate::conversation::event::{ConversationEvent, DeliveryUpdated};
use crate::conversation::rejection::ConversationRejection;
use crate::conversation::state::Conversation;
use crate::ids::MessageId;
use crate::limits::MAX_DELIVERY_REASON_CHARS;
use crate::phone_number::PhoneNumber;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

impl Conversation {
    pub(super) fn record_delivery(
        &self,
        meta: &CommandMeta,
        message_id: MessageId,
        to: &PhoneNumber,
        status: &DeliveryStatus,
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
            at_ms: meta.at_ms,
        })])
    }
}
