//! What happened in a conversation. Every variant is a stored schema: add a new type or a
//! new version, never change one in place.
//!
//! bincode encodes an enum variant by its position, so new variants go at the end and
//! existing ones are never reordered or removed.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::aggregate::DomainEvent;
use crate::command_meta::Actor;
use crate::conversation::calls::CallMedia;
use crate::conversation::content::AttachmentRef;
use crate::conversation::delivery::DeliveryStatus;
use crate::conversation::kind::ConversationKind;
use crate::ids::{CallId, ConversationId, InboxId, MessageId, OrgId, QueueId, UserId};
use crate::phone_number::PhoneNumber;
use crate::queue::{CloseReason, TimeoutKind};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConversationEvent {
    ConversationStarted(ConversationStarted),
    MessagePosted(MessagePosted),
    InboundReceived(InboundReceived),
    SmsRequested(SmsRequested),
    SmsWithheld(SmsWithheld),
    DeliveryUpdated(DeliveryUpdated),
    MessagesRead(MessagesRead),
    CallStarted(CallStarted),
    CallEnded(CallEnded),
    ChannelMemberJoined(ChannelMemberJoined),
    ChannelMembersAdded(ChannelMembersAdded),
    ChannelMemberLeft(ChannelMemberLeft),
    ChannelRenamed(ChannelRenamed),
    InboxAttached(InboxAttached),
    InboxDetached(InboxDetached),
    ConversationAssigned(ConversationAssigned),
    ConversationTransferred(ConversationTransferred),
    ReturnedToInbox(ReturnedToInbox),
    MarkedDone(MarkedDone),
    ReopenedByInboundText(ReopenedByInboundText),
    OptedOut(OptedOut),
    OptedIn(OptedIn),
    SystemMessageRecorded(SystemMessageRecorded),
}

/// Every event type name this aggregate writes, in variant order (which is how bincode
/// tells variants apart), for schema files and upcasters.
pub const CONVERSATION_EVENT_TYPES: [&str; 23] = [
    "ConversationStarted",
    "MessagePosted",
    "InboundReceived",
    "SmsRequested",
    "SmsWithheld",
    "DeliveryUpdated",
    "MessagesRead",
    "CallStarted",
    "CallEnded",
    "ChannelMemberJoined",
    "ChannelMembersAdded",
    "ChannelMemberLeft",
    "ChannelRenamed",
    "InboxAttached",
    "InboxDetached",
    "ConversationAssigned",
    "ConversationTransferred",
    "ReturnedToInbox",
    "MarkedDone",
    "ReopenedByInboundText",
    "OptedOut",
    "OptedIn",
    "SystemMessageRecorded",
];

impl DomainEvent for ConversationEvent {
    fn event_type(&self) -> &'static str {
        match self {
            ConversationEvent::ConversationStarted(_) => "ConversationStarted",
            ConversationEvent::MessagePosted(_) => "MessagePosted",
            ConversationEvent::InboundReceived(_) => "InboundReceived",
            ConversationEvent::SmsRequested(_) => "SmsRequested",
            ConversationEvent::SmsWithheld(_) => "SmsWithheld",
            ConversationEvent::DeliveryUpdated(_) => "DeliveryUpdated",
            ConversationEvent::MessagesRead(_) => "MessagesRead",
            ConversationEvent::CallStarted(_) => "CallStarted",
            ConversationEvent::CallEnded(_) => "CallEnded",
            ConversationEvent::ChannelMemberJoined(_) => "ChannelMemberJoined",
            ConversationEvent::ChannelMembersAdded(_) => "ChannelMembersAdded",
            ConversationEvent::ChannelMemberLeft(_) => "ChannelMemberLeft",
            ConversationEvent::ChannelRenamed(_) => "ChannelRenamed",
            ConversationEvent::InboxAttached(_) => "InboxAttached",
            ConversationEvent::InboxDetached(_) => "InboxDetached",
            ConversationEvent::ConversationAssigned(_) => "ConversationAssigned",
            ConversationEvent::ConversationTransferred(_) => "ConversationTransferred",
            ConversationEvent::ReturnedToInbox(_) => "ReturnedToInbox",
            ConversationEvent::MarkedDone(_) => "MarkedDone",
            ConversationEvent::ReopenedByInboundText(_) => "ReopenedByInboundText",
            ConversationEvent::OptedOut(_) => "OptedOut",
            ConversationEvent::OptedIn(_) => "OptedIn",
            ConversationEvent::SystemMessageRecorded(_) => "SystemMessageRecorded",
        }
    }

    fn schema_version(&self) -> u16 {
        1
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationStarted {
    pub id: ConversationId,
    pub org: OrgId,
    /// The kind with its participants at the start.
    pub kind: ConversationKind,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagePosted {
    pub message_id: MessageId,
    /// Position of the message in the conversation, from 1; read markers refer to it.
    pub seq: u64,
    pub author: UserId,
    pub text: String,
    pub attachments: Vec<AttachmentRef>,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundReceived {
    pub message_id: MessageId,
    pub seq: u64,
    pub from: PhoneNumber,
    pub text: String,
    /// MMS media, already stored in the attachment store.
    pub media: Vec<AttachmentRef>,
    pub at_ms: u64,
}

/// The carrier adapter should send message `message_id` from `from` to `to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsRequested {
    pub message_id: MessageId,
    pub to: PhoneNumber,
    pub from: PhoneNumber,
    pub at_ms: u64,
}

/// No SMS of `message_id` goes to `to`, because `to` opted out of texts from our number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsWithheld {
    pub message_id: MessageId,
    pub to: PhoneNumber,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryUpdated {
    pub message_id: MessageId,
    pub to: PhoneNumber,
    pub status: DeliveryStatus,
    pub at_ms: u64,
}

/// `user` has read every message up to `up_to`; the sender's read receipts come from this.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagesRead {
    pub user: UserId,
    pub up_to: u64,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallStarted {
    pub call: CallId,
    pub media: CallMedia,
    pub by: UserId,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallEnded {
    pub call: CallId,
    pub by: UserId,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelMemberJoined {
    pub user: UserId,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelMembersAdded {
    /// Only the users who were not members already.
    pub users: BTreeSet<UserId>,
    pub by: UserId,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelMemberLeft {
    pub user: UserId,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRenamed {
    pub name: String,
    pub by: UserId,
    pub at_ms: u64,
}

/// The conversation's number is routed to `inbox`: it is now worked there, Unassigned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxAttached {
    pub inbox: InboxId,
    pub at_ms: u64,
}

/// The conversation's number is no longer routed to `inbox`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxDetached {
    pub inbox: InboxId,
    pub at_ms: u64,
}

/// `to` took the conversation (Assign to Me); `taken_from` names the previous holder when
/// an admin took it from them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationAssigned {
    pub to: UserId,
    pub taken_from: Option<UserId>,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationTransferred {
    /// The assignee before, if there was one.
    pub from: Option<UserId>,
    pub to: UserId,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnedToInbox {
    pub from: Option<UserId>,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkedDone {
    pub was_assigned_to: Option<UserId>,
    pub by: Actor,
    pub at_ms: u64,
}

/// Inbound message `message_id` arrived while the conversation was Done; it is
/// Unassigned again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReopenedByInboundText {
    pub message_id: MessageId,
    pub at_ms: u64,
}

/// `number` texted a stop keyword: no SMS goes to it from this conversation's number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptedOut {
    pub number: PhoneNumber,
    pub at_ms: u64,
}

/// `number` texted a start keyword after opting out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptedIn {
    pub number: PhoneNumber,
    pub at_ms: u64,
}

/// A lifecycle step of the conversation's handling (an SMS queue's queued / claimed by /
/// transferred to / released / closed / timed out), shown in the timeline as a centred
/// grey pill. Not a message: it has no seq and does not count as unread.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemMessageRecorded {
    pub note: SystemNote,
    pub at_ms: u64,
}

/// What a system message says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SystemNote {
    Queued {
        queue: QueueId,
    },
    ClaimedBy {
        queue: QueueId,
        agent: UserId,
    },
    TransferredTo {
        queue: QueueId,
        from: UserId,
        to: UserId,
    },
    Released {
        queue: QueueId,
        by: Option<UserId>,
    },
    Closed {
        queue: QueueId,
        by: Option<UserId>,
        reason: CloseReason,
    },
    TimedOut {
        queue: QueueId,
        kind: TimeoutKind,
    },
}
