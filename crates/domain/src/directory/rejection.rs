//! Why the directory refused a command.

use crate::aggregate::{Rejection, RejectionKind};
use crate::directory::extension::Extension;
use crate::directory::numbers::Routing;
use crate::ids::{ContactId, UserId};
use crate::phone_number::PhoneNumber;
use crate::validation::InvalidInput;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryRejection {
    #[error("the organization does not exist yet")]
    OrganizationNotCreated,
    #[error("the organization already exists")]
    OrganizationAlreadyCreated,
    #[error("this directory belongs to another organization")]
    WrongOrganization,
    #[error("only the system may do this")]
    SystemOnly,
    #[error("only a user may do this")]
    UsersOnly,
    #[error("the acting user is not in this organization")]
    UnknownActor,
    #[error("only an admin may do this")]
    AdminOnly,
    #[error("user {user} is not in this organization")]
    UnknownUser { user: UserId },
    #[error("user {user} already exists")]
    UserAlreadyExists { user: UserId },
    #[error("extension {extension} is already used by user {by}")]
    ExtensionTaken { extension: Extension, by: UserId },
    #[error("the organization must keep at least one admin")]
    LastAdmin,
    #[error("number {number} is already one of the organization's numbers")]
    NumberAlreadyAdded { number: PhoneNumber },
    #[error("number {number} is not one of the organization's numbers")]
    UnknownNumber { number: PhoneNumber },
    #[error("the inbox or queue to route to does not exist or does not serve this number")]
    UnknownDestination,
    /// Inbox and queue numbers are sent from through those workflows (an inbox reply
    /// needs the conversation assigned to you), so no user holds one directly.
    #[error("number {number} is routed to an inbox or queue and cannot be assigned to a user")]
    NotAPersonalNumber {
        number: PhoneNumber,
        routed_to: Routing,
    },
    /// A number routed to a user is that user's line; route it elsewhere first.
    #[error("number {number} is routed to this user, who must keep it")]
    RoutedUserMustKeepNumber { number: PhoneNumber },
    #[error("contact {contact} already exists")]
    ContactAlreadyExists { contact: ContactId },
    #[error("contact {contact} does not exist")]
    UnknownContact { contact: ContactId },
    #[error("contact {contact} is another user's personal contact")]
    NotYourContact { contact: ContactId },
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
}

impl Rejection for DirectoryRejection {
    fn code(&self) -> &'static str {
        match self {
            DirectoryRejection::OrganizationNotCreated => "organization_not_created",
            DirectoryRejection::OrganizationAlreadyCreated => "organization_already_created",
            DirectoryRejection::WrongOrganization => "wrong_organization",
            DirectoryRejection::SystemOnly => "system_only",
            DirectoryRejection::UsersOnly => "users_only",
            DirectoryRejection::UnknownActor => "unknown_actor",
            DirectoryRejection::AdminOnly => "admin_only",
            DirectoryRejection::UnknownUser { .. } => "unknown_user",
            DirectoryRejection::UserAlreadyExists { .. } => "user_already_exists",
            DirectoryRejection::ExtensionTaken { .. } => "extension_taken",
            DirectoryRejection::LastAdmin => "last_admin",
            DirectoryRejection::NumberAlreadyAdded { .. } => "number_already_added",
            DirectoryRejection::UnknownNumber { .. } => "unknown_number",
            DirectoryRejection::UnknownDestination => "unknown_destination",
            DirectoryRejection::NotAPersonalNumber { .. } => "not_a_personal_number",
            DirectoryRejection::RoutedUserMustKeepNumber { .. } => "routed_user_must_keep_number",
            DirectoryRejection::ContactAlreadyExists { .. } => "contact_already_exists",
            DirectoryRejection::UnknownContact { .. } => "unknown_contact",
            DirectoryRejection::NotYourContact { .. } => "not_your_contact",
            DirectoryRejection::Invalid(invalid) => invalid.code(),
        }
    }

    fn kind(&self) -> RejectionKind {
        match self {
            DirectoryRejection::OrganizationNotCreated => RejectionKind::NotFound,
            DirectoryRejection::OrganizationAlreadyCreated => RejectionKind::Conflict,
            DirectoryRejection::WrongOrganization => RejectionKind::OtherOrganization,
            DirectoryRejection::SystemOnly => RejectionKind::Forbidden,
            DirectoryRejection::UsersOnly => RejectionKind::Forbidden,
            DirectoryRejection::UnknownActor => RejectionKind::NotFound,
            DirectoryRejection::AdminOnly => RejectionKind::Forbidden,
            DirectoryRejection::UnknownUser { .. } => RejectionKind::NotFound,
            DirectoryRejection::UserAlreadyExists { .. } => RejectionKind::Conflict,
            DirectoryRejection::ExtensionTaken { .. } => RejectionKind::Conflict,
            DirectoryRejection::LastAdmin => RejectionKind::Conflict,
            DirectoryRejection::NumberAlreadyAdded { .. } => RejectionKind::Conflict,
            DirectoryRejection::UnknownNumber { .. } => RejectionKind::NotFound,
            DirectoryRejection::UnknownDestination => RejectionKind::NotFound,
            DirectoryRejection::NotAPersonalNumber { .. } => RejectionKind::Forbidden,
            DirectoryRejection::RoutedUserMustKeepNumber { .. } => RejectionKind::Conflict,
            DirectoryRejection::ContactAlreadyExists { .. } => RejectionKind::Conflict,
            DirectoryRejection::UnknownContact { .. } => RejectionKind::NotFound,
            DirectoryRejection::NotYourContact { .. } => RejectionKind::Forbidden,
            DirectoryRejection::Invalid(_) => RejectionKind::Invalid,
        }
    }
}
