//! What callers ask of a conversation.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::command_meta::Issued;
use crate::conversation::calls::CallMedia;
use crate::conversation::content::AttachmentRef;
use crate::conversation::delivery::DeliveryStatus;
use crate::conversation::event::SystemNote;
use crate::conversation::facts::{ActorFacts, SenderNumber};
use crate::ids::{CallId, ConversationId, InboxId, MessageId, UserId};
use crate::phone_number::PhoneNumber;

/// A [`ConversationCommand`] with who issues it and when.
pub type IssuedConversationCommand = Issued<ConversationCommand>;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConversationCommand {
    /// Opens the External conversation of (`our`, `their`); `id` must be
    /// `ConversationId::external(org, our, their)`. Accepted as a no-op when it exists.
    /// By the System (an inbound text) or by a user holding `our` (composing); `inbox` is
    /// where the directory routes `our`. A user starting from an inbox number must be on
    /// its team and gets the conversation assigned, since only the assignee may write.
    StartExternal {
        id: ConversationId,
        our: PhoneNumber,
        their: PhoneNumber,
        inbox: Option<InboxId>,
        facts: ActorFacts,
    },
    /// Opens the Direct conversation of the actor and `with`; `id` must be
    /// `ConversationId::direct(org, actor, with)`. Accepted as a no-op when it exists.
    /// `known_users`: the users named here that the directory knows.
    StartDirect {
        id: ConversationId,
        with: UserId,
        known_users: BTreeSet<UserId>,
    },
    /// Opens a channel with a fresh id; the actor is a member.
    StartChannel {
        id: ConversationId,
        name: String,
        members: BTreeSet<UserId>,
        known_users: BTreeSet<UserId>,
    },
    /// Opens a mixed group with a fresh id; the actor is a member, and `from` (registered
    /// and assigned to the actor) becomes the group's number.
    StartGroup {
        id: ConversationId,
        users: BTreeSet<UserId>,
        externals: BTreeSet<PhoneNumber>,
        from: SenderNumber,
        known_users: BTreeSet<UserId>,
    },
    /// A participant writes. Where messages also go by SMS (External, Group), `from` must
    /// be the conversation's number, SMS-registered and assigned to the sender (in an
    /// inbox conversation, being the assignee is what lets one send from the inbox's
    /// number). `opted_out`: the group's external members that opted out of texts from
    /// our number (known from their External conversations); they get no SMS.
    PostMessage {
        message_id: MessageId,
        text: String,
        attachments: Vec<AttachmentRef>,
        from: Option<SenderNumber>,
        facts: ActorFacts,
        opted_out: BTreeSet<PhoneNumber>,
    },
    /// System only: an SMS/MMS from `from` to `to` arrived. `routed_to_inbox` is where the
    /// directory routes `to` now; the conversation follows it.
    RecordInbound {
        message_id: MessageId,
        from: PhoneNumber,
        to: PhoneNumber,
        text: String,
        media: Vec<AttachmentRef>,
        routed_to_inbox: Option<InboxId>,
    },
    /// System only: our number answers the customer's message `reply_to` automatically
    /// with `text` (the HELP text) — recorded as our message and sent by SMS to the
    /// customer, even one who opted out (a HELP answer is not marketing). External only.
    RecordAutoReply {
        message_id: MessageId,
        reply_to: MessageId,
        text: String,
    },
    /// System only: the carrier reports on the SMS of `message_id` to `to`.
    RecordDelivery {
        message_id: MessageId,
        to: PhoneNumber,
        status: DeliveryStatus,
        /// The carrier's id of the text, when the report carries it (from acceptance on).
        carrier_message_id: Option<String>,
        /// The carrier's error code, when the text was undelivered or failed.
        error_code: Option<String>,
    },
    /// The actor has read every message up to sequence number `up_to`.
    MarkRead {
        up_to: u64,
        facts: ActorFacts,
    },
    StartCall {
        call: CallId,
        media: CallMedia,
        facts: ActorFacts,
    },
    EndCall {
        call: CallId,
        facts: ActorFacts,
    },
    /// Channels are open to every user of the organization.
    JoinChannel,
    /// A member brings others in.
    AddChannelMembers {
        users: BTreeSet<UserId>,
        known_users: BTreeSet<UserId>,
    },
    LeaveChannel,
    RenameChannel {
        name: String,
    },
    /// Take the inbox conversation: from Unassigned (or Done, which reopens it); an admin
    /// may also take one assigned to someone else.
    AssignToMe {
        facts: ActorFacts,
    },
    /// Hand the inbox conversation to team member `to`; by the assignee or an admin.
    Transfer {
        to: UserId,
        to_is_inbox_member: bool,
        facts: ActorFacts,
    },
    /// Back to Unassigned; by the assignee or an admin.
    ReturnToInbox {
        facts: ActorFacts,
    },
    /// By the assignee or an admin.
    MarkDone {
        facts: ActorFacts,
    },
    /// System (a process manager): record a lifecycle step in the timeline.
    RecordSystemMessage {
        note: SystemNote,
    },
    /// System (an SMS queue's overflow): hand an External conversation to a shared inbox,
    /// where it waits Unassigned.
    AttachToInbox {
        inbox: InboxId,
    },
}
