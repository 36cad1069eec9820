//! Why an inbox refused a command.

use crate::aggregate::{Rejection, RejectionKind};
use crate::ids::UserId;
use crate::phone_number::PhoneNumber;
use crate::validation::InvalidInput;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InboxRejection {
    #[error("the inbox does not exist")]
    InboxNotCreated,
    #[error("the inbox already exists")]
    InboxAlreadyCreated,
    #[error("this inbox belongs to another organization")]
    WrongOrganization,
    #[error("only an admin may do this")]
    AdminOnly,
    #[error("{number} is not one of the organization's numbers")]
    NotOurNumber { number: PhoneNumber },
    #[error("user {user} is not in this organization")]
    UnknownUser { user: UserId },
    #[error("an inbox has at most {max} team members")]
    TooManyMembers { max: usize },
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
}

impl Rejection for InboxRejection {
    fn code(&self) -> &'static str {
        match self {
            InboxRejection::InboxNotCreated => "inbox_not_created",
            InboxRejection::InboxAlreadyCreated => "inbox_already_created",
            InboxRejection::WrongOrganization => "wrong_organization",
            InboxRejection::AdminOnly => "admin_only",
            InboxRejection::NotOurNumber { .. } => "not_our_number",
            InboxRejection::UnknownUser { .. } => "unknown_user",
            InboxRejection::TooManyMembers { .. } => "too_many_members",
            InboxRejection::Invalid(invalid) => invalid.code(),
        }
    }

    fn kind(&self) -> RejectionKind {
        match self {
            InboxRejection::InboxNotCreated => RejectionKind::NotFound,
            InboxRejection::InboxAlreadyCreated => RejectionKind::Conflict,
            InboxRejection::WrongOrganization => RejectionKind::OtherOrganization,
            InboxRejection::AdminOnly => RejectionKind::Forbidden,
            InboxRejection::NotOurNumber { .. } => RejectionKind::Forbidden,
            InboxRejection::UnknownUser { .. } => RejectionKind::NotFound,
            InboxRejection::TooManyMembers { .. } => RejectionKind::Conflict,
            InboxRejection::Invalid(_) => RejectionKind::Invalid,
        }
    }
}
