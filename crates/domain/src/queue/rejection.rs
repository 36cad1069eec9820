//! Why a queue refused a command.

use crate::aggregate::{Rejection, RejectionKind};
use crate::ids::{ConversationId, UserId};
use crate::validation::InvalidInput;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueueRejection {
    #[error("the queue does not exist")]
    QueueNotCreated,
    #[error("the queue already exists")]
    QueueAlreadyCreated,
    #[error("the queue belongs to another organization")]
    WrongOrganization,
    #[error("only an admin may do this")]
    AdminOnly,
    #[error("only the system may do this")]
    SystemOnly,
    #[error("only a member of the queue may do this")]
    NotAQueueMember,
    #[error("log in to the queue first")]
    NotLoggedIn,
    #[error("{user} is not logged in to the queue")]
    TargetNotLoggedIn { user: UserId },
    #[error("the conversation is not waiting in this queue")]
    NotWaiting { conversation: ConversationId },
    #[error("already claimed by {by}")]
    AlreadyClaimed { by: UserId },
    #[error("the conversation is not claimed in this queue")]
    NotClaimed { conversation: ConversationId },
    #[error("the conversation is claimed by someone else")]
    NotYourInteraction,
    #[error("a timer cannot fire before its deadline")]
    TimerNotDue,
    #[error(transparent)]
    Invalid(InvalidInput),
}

impl Rejection for QueueRejection {
    fn code(&self) -> &'static str {
        match self {
            QueueRejection::QueueNotCreated => "queue_not_created",
            QueueRejection::QueueAlreadyCreated => "queue_already_created",
            QueueRejection::WrongOrganization => "wrong_organization",
            QueueRejection::AdminOnly => "admin_only",
            QueueRejection::SystemOnly => "system_only",
            QueueRejection::NotAQueueMember => "not_a_queue_member",
            QueueRejection::NotLoggedIn => "not_logged_in",
            QueueRejection::TargetNotLoggedIn { .. } => "target_not_logged_in",
            QueueRejection::NotWaiting { .. } => "not_waiting",
            QueueRejection::AlreadyClaimed { .. } => "already_claimed",
            QueueRejection::NotClaimed { .. } => "not_claimed",
            QueueRejection::NotYourInteraction => "not_your_interaction",
            QueueRejection::TimerNotDue => "timer_not_due",
            QueueRejection::Invalid(invalid) => invalid.code(),
        }
    }

    fn kind(&self) -> RejectionKind {
        match self {
            QueueRejection::QueueNotCreated => RejectionKind::NotFound,
            QueueRejection::QueueAlreadyCreated => RejectionKind::Conflict,
            QueueRejection::WrongOrganization => RejectionKind::OtherOrganization,
            QueueRejection::AdminOnly => RejectionKind::Forbidden,
            QueueRejection::SystemOnly => RejectionKind::Forbidden,
            QueueRejection::NotAQueueMember => RejectionKind::Forbidden,
            QueueRejection::NotLoggedIn => RejectionKind::Forbidden,
            QueueRejection::TargetNotLoggedIn { .. } => RejectionKind::Conflict,
            QueueRejection::NotWaiting { .. } => RejectionKind::Forbidden,
            QueueRejection::AlreadyClaimed { .. } => RejectionKind::Conflict,
            QueueRejection::NotClaimed { .. } => RejectionKind::Forbidden,
            QueueRejection::NotYourInteraction => RejectionKind::Forbidden,
            QueueRejection::TimerNotDue => RejectionKind::Conflict,
            QueueRejection::Invalid(_) => RejectionKind::Invalid,
        }
    }
}
