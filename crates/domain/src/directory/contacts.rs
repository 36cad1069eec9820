//! The phonebook: organization-wide contacts any user may keep up to date, and personal
//! contacts only their owner sees and edits. Also how a number is shown as a name.

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::directory::command::ContactDetails;
use crate::directory::event::{ContactAdded, ContactDeleted, ContactUpdated, DirectoryEvent};
use crate::directory::numbers::Routing;
use crate::directory::rejection::DirectoryRejection;
use crate::directory::state::{Acting, Directory};
use crate::ids::{ContactId, UserId};
use crate::limits::{MAX_COMPANY_NAME_CHARS, MAX_CONTACT_NAME_CHARS, MAX_CONTACT_NUMBERS};
use crate::phone_number::PhoneNumber;
use crate::validation::{max_count, optional_name, required_name, InvalidInput};

/// Where a new contact goes, as a command asks for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContactScope {
    /// The shared phonebook.
    Organization,
    /// The acting user's own phonebook.
    Personal,
}

/// Whose a stored contact is.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum ContactOwner {
    Organization,
    User(UserId),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub id: ContactId,
    pub owner: ContactOwner,
    pub details: ContactDetails,
}

impl Contact {
    pub fn is_visible_to(&self, viewer: UserId) -> bool {
        match self.owner {
            ContactOwner::Organization => true,
            ContactOwner::User(owner) => owner == viewer,
        }
    }
}

impl Directory {
    pub fn contact(&self, id: &ContactId) -> Option<&Contact> {
        self.contacts.get(id)
    }

    /// The organization's contacts and `viewer`'s personal ones.
    pub fn contacts_visible_to(&self, viewer: UserId) -> impl Iterator<Item = &Contact> {
        self.contacts
            .values()
            .filter(move |c| c.is_visible_to(viewer))
    }

    /// The name to show for `number` to `viewer`: their own contact first (they named it
    /// themselves), then an organization contact, then the user whose line it is. Among
    /// several matching contacts of one kind the lowest id wins, so every screen shows the
    /// same name. Inbox and queue numbers are named by those aggregates, not here.
    pub fn resolve_name(&self, number: &PhoneNumber, viewer: UserId) -> Option<String> {
        let matching = |owner: ContactOwner| {
            self.contacts
                .values()
                .find(|c| c.owner == owner && c.details.numbers.contains(number))
                .map(|c| c.details.name.clone())
        };
        matching(ContactOwner::User(viewer))
            .or_else(|| matching(ContactOwner::Organization))
            .or_else(|| {
                let line = self.numbers.get(number)?;
                let user = match line.route {
                    Routing::User(user) => Some(user),
                    Routing::Inbox(_) | Routing::Queue(_) => None,
                }
                .or_else(|| line.assigned_to.iter().next().copied())?;
                self.users.get(&user).map(|u| u.name.clone())
            })
    }

    pub(super) fn add_contact(
        &self,
        acting: &Acting,
        contact: ContactId,
        scope: ContactScope,
        details: &ContactDetails,
    ) -> Result<Vec<DirectoryEvent>, DirectoryRejection> {
        let owner = match scope {
            ContactScope::Organization => ContactOwner::Organization,
            ContactScope::Personal => {
                ContactOwner::User(acting.by.user_id().ok_or(DirectoryRejection::UsersOnly)?)
            }
        };
        if self.contacts.contains_key(&contact) {
            return Err(DirectoryRejection::ContactAlreadyExists { contact });
        }
        Ok(vec![DirectoryEvent::ContactAdded(ContactAdded {
            contact,
            owner,
            details: normalised(details)?,
            by: acting.by,
            at_ms: acting.at_ms,
        })])
    }

    pub(super) fn update_contact(
        &self,
        acting: &Acting,
        contact: ContactId,
        details: &ContactDetails,
    ) -> Result<Vec<DirectoryEvent>, DirectoryRejection> {
        let current = self.editable_contact(acting, contact)?;
        let details = normalised(details)?;
        if current.details == details {
            return Ok(vec![]);
        }
        Ok(vec![DirectoryEvent::ContactUpdated(ContactUpdated {
            contact,
            details,
            by: acting.by,
            at_ms: acting.at_ms,
        })])
    }

    pub(super) fn delete_contact(
        &self,
        acting: &Acting,
        contact: ContactId,
    ) -> Result<Vec<DirectoryEvent>, DirectoryRejection> {
        self.editable_contact(acting, contact)?;
        Ok(vec![DirectoryEvent::ContactDeleted(ContactDeleted {
            contact,
            by: acting.by,
            at_ms: acting.at_ms,
        })])
    }

    /// A personal contact is private to its owner: not even an admin edits it.
    fn editable_contact(
        &self,
        acting: &Acting,
        contact: ContactId,
    ) -> Result<&Contact, DirectoryRejection> {
        let current = self
            .contacts
            .get(&contact)
            .ok_or(DirectoryRejection::UnknownContact { contact })?;
        match current.owner {
            ContactOwner::Organization => Ok(current),
            ContactOwner::User(owner) if acting.by.user_id() == Some(owner) => Ok(current),
            ContactOwner::User(_) => Err(DirectoryRejection::NotYourContact { contact }),
        }
    }
}

fn normalised(details: &ContactDetails) -> Result<ContactDetails, InvalidInput> {
    let name = required_name("name", &details.name, MAX_CONTACT_NAME_CHARS)?;
    let company = optional_name("company", &details.company, MAX_COMPANY_NAME_CHARS)?;
    let mut seen = BTreeSet::new();
    let numbers: Vec<PhoneNumber> = details
        .numbers
        .iter()
        .filter(|n| seen.insert(*n))
        .cloned()
        .collect();
    max_count("numbers", numbers.len(), MAX_CONTACT_NUMBERS)?;
    Ok(ContactDetails {
        name,
        company,
        numbers,
    })
}
