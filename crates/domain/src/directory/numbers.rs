//! Business phone numbers: SMS registration, routing, and which users may send from them.
//!
//! Routing says where inbound texts go; assignment says who may send. They meet in two
//! invariants kept by every decision here:
//! - a number routed to a user is assigned to that user (it is their line);
//! - a number routed to an inbox or queue is assigned to nobody (replies go through the
//!   inbox or queue workflow, which decides who may speak).

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conversation::SenderNumber;
use crate::directory::event::{
    DirectoryEvent, NumberAdded, NumberAssigned, NumberRouted, NumberSmsRegistered,
    NumberSmsUnregistered, NumberUnassigned,
};
use crate::directory::rejection::DirectoryRejection;
use crate::directory::state::{Acting, Directory};
use crate::ids::{InboxId, QueueId, UserId};
use crate::phone_number::PhoneNumber;

/// Where texts to a business number go. Exactly one destination at any time.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Routing {
    /// A personal number: its user's External conversations.
    User(UserId),
    /// A shared team inbox.
    Inbox(InboxId),
    /// An SMS queue.
    Queue(QueueId),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessNumber {
    pub number: PhoneNumber,
    /// Only registered numbers may send SMS.
    pub sms_registered: bool,
    pub route: Routing,
    /// The users who may send from this number.
    pub assigned_to: BTreeSet<UserId>,
}

impl BusinessNumber {
    pub fn is_assigned_to(&self, user: UserId) -> bool {
        self.assigned_to.contains(&user)
    }

    /// The inbox texts to this number land in, if it is an inbox number.
    pub fn inbox(&self) -> Option<InboxId> {
        match self.route {
            Routing::Inbox(inbox) => Some(inbox),
            Routing::User(_) | Routing::Queue(_) => None,
        }
    }
}

impl Directory {
    pub fn number(&self, number: &PhoneNumber) -> Option<&BusinessNumber> {
        self.numbers.get(number)
    }

    pub fn numbers(&self) -> impl Iterator<Item = &BusinessNumber> {
        self.numbers.values()
    }

    /// Every number `user` may send from, registered or not.
    pub fn numbers_of(&self, user: UserId) -> impl Iterator<Item = &BusinessNumber> {
        self.numbers
            .values()
            .filter(move |n| n.is_assigned_to(user))
    }

    /// The numbers `user` can text from now (assigned and SMS-registered): the choices of
    /// the compose window's From menu.
    pub fn sms_numbers_of(&self, user: UserId) -> Vec<&BusinessNumber> {
        self.numbers_of(user).filter(|n| n.sms_registered).collect()
    }

    /// The fact a conversation needs to decide whether `user` may text from `number`.
    /// `None` when the number is not the organization's.
    pub fn sender_number(&self, number: &PhoneNumber, user: UserId) -> Option<SenderNumber> {
        self.numbers.get(number).map(|n| SenderNumber {
            number: n.number.clone(),
            sms_registered: n.sms_registered,
            assigned_to_sender: n.is_assigned_to(user),
        })
    }

    fn existing_number(&self, number: &PhoneNumber) -> Result<&BusinessNumber, DirectoryRejection> {
        self.numbers
            .get(number)
            .ok_or_else(|| DirectoryRejection::UnknownNumber {
                number: number.clone(),
            })
    }

    fn check_destination(
        &self,
        route: Routing,
        destination_exists: bool,
    ) -> Result<(), DirectoryRejection> {
        match route {
            Routing::User(user) if !self.users.contains_key(&user) => {
                Err(DirectoryRejection::UnknownUser { user })
            }
            Routing::User(_) => Ok(()),
            Routing::Inbox(_) | Routing::Queue(_) if !destination_exists => {
                Err(DirectoryRejection::UnknownDestination)
            }
            Routing::Inbox(_) | Routing::Queue(_) => Ok(()),
        }
    }

    pub(super) fn add_number(
        &self,
        acting: &Acting,
        number: &PhoneNumber,
        route: Routing,
        destination_exists: bool,
    ) -> Result<Vec<DirectoryEvent>, DirectoryRejection> {
        acting.require_admin()?;
        if self.numbers.contains_key(number) {
            return Err(DirectoryRejection::NumberAlreadyAdded {
                number: number.clone(),
            });
        }
        self.check_destination(route, destination_exists)?;
        let mut events = vec![DirectoryEvent::NumberAdded(NumberAdded {
            number: number.clone(),
            route,
            by: acting.by,
            at_ms: acting.at_ms,
        })];
        if let Routing::User(user) = route {
            events.push(assigned(acting, number, user));
        }
        Ok(events)
    }

    pub(super) fn set_sms_registration(
        &self,
        acting: &Acting,
        number: &PhoneNumber,
        registered: bool,
    ) -> Result<Vec<DirectoryEvent>, DirectoryRejection> {
        acting.require_admin()?;
        if self.existing_number(number)?.sms_registered == registered {
            return Ok(vec![]);
        }
        let number = number.clone();
        let (by, at_ms) = (acting.by, acting.at_ms);
        Ok(vec![if registered {
            DirectoryEvent::NumberSmsRegistered(NumberSmsRegistered { number, by, at_ms })
        } else {
            DirectoryEvent::NumberSmsUnregistered(NumberSmsUnregistered { number, by, at_ms })
        }])
    }

    pub(super) fn route_number(
        &self,
        acting: &Acting,
        number: &PhoneNumber,
        to: Routing,
        destination_exists: bool,
    ) -> Result<Vec<DirectoryEvent>, DirectoryRejection> {
        acting.require_admin()?;
        let current = self.existing_number(number)?;
        if current.route == to {
            return Ok(vec![]);
        }
        self.check_destination(to, destination_exists)?;
        let mut events = vec![DirectoryEvent::NumberRouted(NumberRouted {
            number: number.clone(),
            to,
            by: acting.by,
            at_ms: acting.at_ms,
        })];
        match to {
            Routing::User(user) if !current.is_assigned_to(user) => {
                events.push(assigned(acting, number, user));
            }
            Routing::User(_) => {}
            Routing::Inbox(_) | Routing::Queue(_) => {
                events.extend(current.assigned_to.iter().map(|&user| {
                    DirectoryEvent::NumberUnassigned(NumberUnassigned {
                        number: number.clone(),
                        user,
                        by: acting.by,
                        at_ms: acting.at_ms,
                    })
                }));
            }
        }
        Ok(events)
    }

    pub(super) fn assign_number(
        &self,
        acting: &Acting,
        number: &PhoneNumber,
        user: UserId,
    ) -> Result<Vec<DirectoryEvent>, DirectoryRejection> {
        acting.require_admin()?;
        let current = self.existing_number(number)?;
        if !self.users.contains_key(&user) {
            return Err(DirectoryRejection::UnknownUser { user });
        }
        if let Routing::Inbox(_) | Routing::Queue(_) = current.route {
            return Err(DirectoryRejection::NotAPersonalNumber {
                number: number.clone(),
                routed_to: current.route,
            });
        }
        if current.is_assigned_to(user) {
            return Ok(vec![]);
        }
        Ok(vec![assigned(acting, number, user)])
    }

    pub(super) fn unassign_number(
        &self,
        acting: &Acting,
        number: &PhoneNumber,
        user: UserId,
    ) -> Result<Vec<DirectoryEvent>, DirectoryRejection> {
        acting.require_admin()?;
        let current = self.existing_number(number)?;
        if current.route == Routing::User(user) {
            return Err(DirectoryRejection::RoutedUserMustKeepNumber {
                number: number.clone(),
            });
        }
        if !current.is_assigned_to(user) {
            return Ok(vec![]);
        }
        Ok(vec![DirectoryEvent::NumberUnassigned(NumberUnassigned {
            number: number.clone(),
            user,
            by: acting.by,
            at_ms: acting.at_ms,
        })])
    }
}

fn assigned(acting: &Acting, number: &PhoneNumber, user: UserId) -> DirectoryEvent {
    DirectoryEvent::NumberAssigned(NumberAssigned {
        number: number.clone(),
        user,
        by: acting.by,
        at_ms: acting.at_ms,
    })
}
