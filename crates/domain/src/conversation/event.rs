//! What happened in a conversation. Every variant is a stored schema: add a new type or a
//! new version, never change one in place (see [`crate::schema`]; past versions live in
//! [`legacy`](crate::conversation::legacy)).
//!
//! The log stores a variant's inner struct under the type name and version the envelope
//! carries, so the order of the variants does not matter to it; new variants still go at
//! the end, so the enum's own serde form stays stable too.

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::command_meta::Actor;
use crate::conversation::calls::CallMedia;
use crate::conversation::content::AttachmentRef;
use crate::conversation::delivery::DeliveryStatus;
use crate::conversation::kind::ConversationKind;
use crate::conversation::legacy;
use crate::ids::{CallId, ConversationId, InboxId, MessageId, OrgId, QueueId, UserId};
use crate::phone_number::PhoneNumber;
use crate::queue::{CloseReason, TimeoutKind};
use crate::schema::versioned_events;
use crate::text::{Text, Texts};

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
    AutoReplyPosted(AutoReplyPosted),
}

/// Every event type name this aggregate writes, in variant order (the order of
/// [`VersionedEvent::SCHEMAS`](crate::schema::VersionedEvent::SCHEMAS)).
pub const CONVERSATION_EVENT_TYPES: [&str; 24] = [
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
    "AutoReplyPosted",
];

versioned_events! {
    ConversationEvent {
        ConversationStarted(ConversationStarted) = 1,
        MessagePosted(MessagePosted) = 2 [
            1: legacy::MessagePostedV1 => legacy::message_posted_v1_to_v2,
        ],
        InboundReceived(InboundReceived) = 2 [
            1: legacy::InboundReceivedV1 => legacy::inbound_received_v1_to_v2,
        ],
        SmsRequested(SmsRequested) = 1,
        SmsWithheld(SmsWithheld) = 1,
        DeliveryUpdated(DeliveryUpdated) = 2 [
            1: legacy::DeliveryUpdatedV1 => legacy::delivery_updated_v1_to_v2,
        ],
        MessagesRead(MessagesRead) = 1,
        CallStarted(CallStarted) = 1,
        CallEnded(CallEnded) = 1,
        ChannelMemberJoined(ChannelMemberJoined) = 1,
        ChannelMembersAdded(ChannelMembersAdded) = 1,
        ChannelMemberLeft(ChannelMemberLeft) = 1,
        ChannelRenamed(ChannelRenamed) = 1,
        InboxAttached(InboxAttached) = 1,
        InboxDetached(InboxDetached) = 1,
        ConversationAssigned(ConversationAssigned) = 1,
        ConversationTransferred(ConversationTransferred) = 1,
        ReturnedToInbox(ReturnedToInbox) = 1,
        MarkedDone(MarkedDone) = 1,
        ReopenedByInboundText(ReopenedByInboundText) = 1,
        OptedOut(OptedOut) = 1,
        OptedIn(OptedIn) = 1,
        SystemMessageRecorded(SystemMessageRecorded) = 1,
        AutoReplyPosted(AutoReplyPosted) = 2 [
            1: legacy::AutoReplyPostedV1 => legacy::auto_reply_posted_v1_to_v2,
        ],
    }
}

impl Texts for ConversationEvent {
    fn texts_mut(&mut self) -> Vec<&mut Text> {
        match self {
            ConversationEvent::MessagePosted(MessagePosted { text, .. })
            | ConversationEvent::InboundReceived(InboundReceived { text, .. })
            | ConversationEvent::AutoReplyPosted(AutoReplyPosted { text, .. }) => vec![text],
            _ => Vec::new(),
        }
    }

    fn has_texts(&self) -> bool {
        matches!(
            self,
            ConversationEvent::MessagePosted(_)
                | ConversationEvent::InboundReceived(_)
                | ConversationEvent::AutoReplyPosted(_)
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConversationStarted {
    pub id: ConversationId,
    pub org: OrgId,
    /// The kind with its participants at the start.
    pub kind: ConversationKind,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MessagePosted {
    pub message_id: MessageId,
    /// Position of the message in the conversation, from 1; read markers refer to it.
    pub seq: u64,
    pub author: UserId,
    /// Sealed in the log under the key of the conversation's customers and the day.
    pub text: Text,
    pub attachments: Vec<AttachmentRef>,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InboundReceived {
    pub message_id: MessageId,
    pub seq: u64,
    pub from: PhoneNumber,
    /// Sealed in the log under the key of the conversation's customers and the day.
    pub text: Text,
    /// MMS media, already stored in the attachment store.
    pub media: Vec<AttachmentRef>,
    pub at_ms: u64,
}

/// The carrier adapter should send message `message_id` from `from` to `to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SmsRequested {
    pub message_id: MessageId,
    pub to: PhoneNumber,
    pub from: PhoneNumber,
    pub at_ms: u64,
}

/// No SMS of `message_id` goes to `to`, because `to` opted out of texts from our number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SmsWithheld {
    pub message_id: MessageId,
    pub to: PhoneNumber,
    pub at_ms: u64,
}

/// The carrier reported how far the SMS of `message_id` to `to` got.
///
/// Version 2; version 1 had neither `carrier_message_id` nor `error_code`
/// ([`legacy::DeliveryUpdatedV1`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeliveryUpdated {
    pub message_id: MessageId,
    pub to: PhoneNumber,
    pub status: DeliveryStatus,
    /// The carrier's id of the text, once the carrier accepted it.
    pub carrier_message_id: Option<String>,
    /// The carrier's error code when the text was undelivered or failed.
    pub error_code: Option<String>,
    pub at_ms: u64,
}

/// `user` has read every message up to `up_to`; the sender's read receipts come from this.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MessagesRead {
    pub user: UserId,
    pub up_to: u64,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CallStarted {
    pub call: CallId,
    pub media: CallMedia,
    pub by: UserId,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CallEnded {
    pub call: CallId,
    pub by: UserId,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelMemberJoined {
    pub user: UserId,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelMembersAdded {
    /// Only the users who were not members already.
    pub users: BTreeSet<UserId>,
    pub by: UserId,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelMemberLeft {
    pub user: UserId,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelRenamed {
    pub name: String,
    pub by: UserId,
    pub at_ms: u64,
}

/// The conversation's number is routed to `inbox`: it is now worked there, Unassigned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InboxAttached {
    pub inbox: InboxId,
    pub at_ms: u64,
}

/// The conversation's number is no longer routed to `inbox`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InboxDetached {
    pub inbox: InboxId,
    pub at_ms: u64,
}

/// `to` took the conversation (Assign to Me); `taken_from` names the previous holder when
/// an admin took it from them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConversationAssigned {
    pub to: UserId,
    pub taken_from: Option<UserId>,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConversationTransferred {
    /// The assignee before, if there was one.
    pub from: Option<UserId>,
    pub to: UserId,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReturnedToInbox {
    pub from: Option<UserId>,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MarkedDone {
    pub was_assigned_to: Option<UserId>,
    pub by: Actor,
    pub at_ms: u64,
}

/// Inbound message `message_id` arrived while the conversation was Done; it is
/// Unassigned again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReopenedByInboundText {
    pub message_id: MessageId,
    pub at_ms: u64,
}

/// `number` texted a stop keyword: no SMS goes to it from this conversation's number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OptedOut {
    pub number: PhoneNumber,
    pub at_ms: u64,
}

/// `number` texted a start keyword after opting out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OptedIn {
    pub number: PhoneNumber,
    pub at_ms: u64,
}

/// A lifecycle step of the conversation's handling (an SMS queue's queued / claimed by /
/// transferred to / released / closed / timed out), shown in the timeline as a centred
/// grey pill. Not a message: it has no seq and does not count as unread.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SystemMessageRecorded {
    pub note: SystemNote,
    pub at_ms: u64,
}

/// Our number answered the customer's message `reply_to` automatically (the configured
/// HELP text): an outbound message of the conversation like any other (it has a seq, and
/// its SMS is requested in the same decision, so its delivery is recorded), written by the
/// System, not by a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AutoReplyPosted {
    pub message_id: MessageId,
    pub seq: u64,
    /// Our business number, which sends it.
    pub from: PhoneNumber,
    /// The customer's message it answers.
    pub reply_to: MessageId,
    /// Sealed in the log under the key of the conversation's customer and the day.
    pub text: Text,
    pub at_ms: u64,
}

/// What a system message says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
