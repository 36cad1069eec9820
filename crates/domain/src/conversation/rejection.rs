//! Why a conversation refused a command.

use crate::aggregate::{Rejection, RejectionKind};
use crate::ids::{AttachmentId, CallId, ConversationId, MessageId, UserId};
use crate::phone_number::PhoneNumber;
use crate::validation::InvalidInput;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConversationRejection {
    #[error("the conversation has not been started")]
    NotStarted,
    #[error("the conversation was already started differently")]
    AlreadyStarted,
    #[error("this conversation belongs to another organization")]
    WrongOrganization,
    #[error("this conversation's id must be {expected}")]
    IdDoesNotMatch { expected: ConversationId },
    #[error("only a user may do this")]
    UsersOnly,
    #[error("only the system may do this")]
    SystemOnly,
    #[error("you are not a participant of this conversation")]
    NotAParticipant,
    #[error("user {user} is not in this organization")]
    UnknownUser { user: UserId },
    #[error("a direct conversation needs another user")]
    CannotMessageYourself,
    #[error("{number} is one of our numbers, not an external one")]
    ExternalIsOurNumber { number: PhoneNumber },
    #[error("a group needs at least one external number")]
    GroupNeedsExternal,
    #[error(
        "a group needs at least three participants; text one number in its External conversation"
    )]
    GroupTooSmall,
    #[error("at most {max} members are allowed")]
    TooManyMembers { max: usize },
    #[error("this is not a channel")]
    NotAChannel,
    #[error("the last member of a channel cannot leave")]
    LastMemberCannotLeave,
    #[error("only External conversations receive SMS")]
    NotExternal,
    #[error("the inbound message is not between this conversation's numbers")]
    InboundAddressMismatch,
    #[error("a message needs text or an attachment")]
    EmptyMessage,
    #[error("attachment {attachment} is {size_bytes} bytes; at most {max_bytes} are allowed")]
    AttachmentTooLarge {
        attachment: AttachmentId,
        size_bytes: u64,
        max_bytes: u64,
    },
    #[error("{mime:?} is not a MIME type")]
    InvalidMimeType { mime: String },
    #[error("{mime} cannot be sent by MMS; send a JPEG, PNG or GIF image")]
    UnsupportedMmsType { mime: String },
    #[error("message id {message_id} is already used by another message")]
    DuplicateMessageId { message_id: MessageId },
    #[error("texting needs a From number")]
    FromNumberRequired,
    #[error("the From number is not SMS-registered")]
    FromNumberNotSmsRegistered,
    #[error("the From number is not assigned to you")]
    FromNumberNotAssignedToYou,
    #[error("this conversation texts from {expected}")]
    WrongFromNumber { expected: PhoneNumber },
    #[error("{number} opted out of texts from this number")]
    RecipientOptedOut { number: PhoneNumber },
    #[error("no SMS of message {message_id} was sent to {to}")]
    NoSuchSmsRequest {
        message_id: MessageId,
        to: PhoneNumber,
    },
    #[error("the conversation's last message is {last}")]
    ReadBeyondLastMessage { last: u64 },
    #[error("call id {call} is already used by another call")]
    DuplicateCallId { call: CallId },
    #[error("no call {call} in this conversation")]
    NoSuchCall { call: CallId },
    #[error("this conversation is not worked in an inbox")]
    NotAnInboxConversation,
    #[error("you are not a team member of this inbox")]
    NotAnInboxMember,
    #[error("user {user} is not a team member of this inbox")]
    TargetNotAnInboxMember { user: UserId },
    #[error("the conversation is assigned to user {to}")]
    AlreadyAssigned { to: UserId },
    #[error("the conversation is not assigned to you")]
    NotAssignedToYou,
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
}

impl Rejection for ConversationRejection {
    fn code(&self) -> &'static str {
        match self {
            ConversationRejection::NotStarted => "conversation_not_started",
            ConversationRejection::AlreadyStarted => "conversation_already_started",
            ConversationRejection::WrongOrganization => "wrong_organization",
            ConversationRejection::IdDoesNotMatch { .. } => "id_does_not_match",
            ConversationRejection::UsersOnly => "users_only",
            ConversationRejection::SystemOnly => "system_only",
            ConversationRejection::NotAParticipant => "not_a_participant",
            ConversationRejection::UnknownUser { .. } => "unknown_user",
            ConversationRejection::CannotMessageYourself => "cannot_message_yourself",
            ConversationRejection::ExternalIsOurNumber { .. } => "external_is_our_number",
            ConversationRejection::GroupNeedsExternal => "group_needs_external",
            ConversationRejection::GroupTooSmall => "group_too_small",
            ConversationRejection::TooManyMembers { .. } => "too_many_members",
            ConversationRejection::NotAChannel => "not_a_channel",
            ConversationRejection::LastMemberCannotLeave => "last_member_cannot_leave",
            ConversationRejection::NotExternal => "not_external",
            ConversationRejection::InboundAddressMismatch => "inbound_address_mismatch",
            ConversationRejection::EmptyMessage => "empty_message",
            ConversationRejection::AttachmentTooLarge { .. } => "attachment_too_large",
            ConversationRejection::InvalidMimeType { .. } => "invalid_mime_type",
            ConversationRejection::UnsupportedMmsType { .. } => "unsupported_mms_type",
            ConversationRejection::DuplicateMessageId { .. } => "duplicate_message_id",
            ConversationRejection::FromNumberRequired => "from_number_required",
            ConversationRejection::FromNumberNotSmsRegistered => "from_number_not_sms_registered",
            ConversationRejection::FromNumberNotAssignedToYou => "from_number_not_assigned_to_you",
            ConversationRejection::WrongFromNumber { .. } => "wrong_from_number",
            ConversationRejection::RecipientOptedOut { .. } => "recipient_opted_out",
            ConversationRejection::NoSuchSmsRequest { .. } => "no_such_sms_request",
            ConversationRejection::ReadBeyondLastMessage { .. } => "read_beyond_last_message",
            ConversationRejection::DuplicateCallId { .. } => "duplicate_call_id",
            ConversationRejection::NoSuchCall { .. } => "no_such_call",
            ConversationRejection::NotAnInboxConversation => "not_an_inbox_conversation",
            ConversationRejection::NotAnInboxMember => "not_an_inbox_member",
            ConversationRejection::TargetNotAnInboxMember { .. } => "target_not_an_inbox_member",
            ConversationRejection::AlreadyAssigned { .. } => "already_assigned",
            ConversationRejection::NotAssignedToYou => "not_assigned_to_you",
            ConversationRejection::Invalid(invalid) => invalid.code(),
        }
    }

    fn kind(&self) -> RejectionKind {
        match self {
            ConversationRejection::NotStarted => RejectionKind::NotFound,
            ConversationRejection::AlreadyStarted => RejectionKind::Conflict,
            ConversationRejection::WrongOrganization => RejectionKind::OtherOrganization,
            ConversationRejection::IdDoesNotMatch { .. } => RejectionKind::Conflict,
            ConversationRejection::UsersOnly => RejectionKind::Forbidden,
            ConversationRejection::SystemOnly => RejectionKind::Forbidden,
            ConversationRejection::NotAParticipant => RejectionKind::Forbidden,
            ConversationRejection::UnknownUser { .. } => RejectionKind::NotFound,
            ConversationRejection::CannotMessageYourself => RejectionKind::Conflict,
            ConversationRejection::ExternalIsOurNumber { .. } => RejectionKind::Conflict,
            ConversationRejection::GroupNeedsExternal => RejectionKind::Conflict,
            ConversationRejection::GroupTooSmall => RejectionKind::Conflict,
            ConversationRejection::TooManyMembers { .. } => RejectionKind::Conflict,
            ConversationRejection::NotAChannel => RejectionKind::Forbidden,
            ConversationRejection::LastMemberCannotLeave => RejectionKind::Conflict,
            ConversationRejection::NotExternal => RejectionKind::Forbidden,
            ConversationRejection::InboundAddressMismatch => RejectionKind::Conflict,
            ConversationRejection::EmptyMessage => RejectionKind::Invalid,
            ConversationRejection::AttachmentTooLarge { .. } => RejectionKind::Invalid,
            ConversationRejection::InvalidMimeType { .. } => RejectionKind::Invalid,
            ConversationRejection::UnsupportedMmsType { .. } => RejectionKind::Invalid,
            ConversationRejection::DuplicateMessageId { .. } => RejectionKind::Conflict,
            ConversationRejection::FromNumberRequired => RejectionKind::Conflict,
            ConversationRejection::FromNumberNotSmsRegistered => RejectionKind::Conflict,
            ConversationRejection::FromNumberNotAssignedToYou => RejectionKind::Conflict,
            ConversationRejection::WrongFromNumber { .. } => RejectionKind::Conflict,
            ConversationRejection::RecipientOptedOut { .. } => RejectionKind::Conflict,
            ConversationRejection::NoSuchSmsRequest { .. } => RejectionKind::Conflict,
            ConversationRejection::ReadBeyondLastMessage { .. } => RejectionKind::Conflict,
            ConversationRejection::DuplicateCallId { .. } => RejectionKind::Conflict,
            ConversationRejection::NoSuchCall { .. } => RejectionKind::Conflict,
            ConversationRejection::NotAnInboxConversation => RejectionKind::Forbidden,
            ConversationRejection::NotAnInboxMember => RejectionKind::Forbidden,
            ConversationRejection::TargetNotAnInboxMember { .. } => RejectionKind::Conflict,
            ConversationRejection::AlreadyAssigned { .. } => RejectionKind::Conflict,
            ConversationRejection::NotAssignedToYou => RejectionKind::Forbidden,
            ConversationRejection::Invalid(_) => RejectionKind::Invalid,
        }
    }
}
