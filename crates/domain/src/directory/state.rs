//! The directory's state, its [`Aggregate`] implementation, and who is acting.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::command_meta::{Actor, CommandMeta, Issued};
use crate::directory::command::DirectoryCommand;
use crate::directory::contacts::Contact;
use crate::directory::event::DirectoryEvent;
use crate::directory::numbers::BusinessNumber;
use crate::directory::rejection::DirectoryRejection;
use crate::directory::users::User;
use crate::ids::{ContactId, OrgId, UserId};
use crate::phone_number::PhoneNumber;

/// One organization's people, numbers and phonebook. Stream `directory-<org id>`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    pub(super) organization: Option<Organization>,
    pub(super) users: BTreeMap<UserId, User>,
    pub(super) numbers: BTreeMap<PhoneNumber, BusinessNumber>,
    pub(super) contacts: BTreeMap<ContactId, Contact>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    pub id: OrgId,
    pub name: String,
    pub created_at_ms: u64,
}

/// The actor of an accepted command, with the role the *directory* gives them: the
/// directory is the authority on roles, so the role a caller claims in the meta is not
/// trusted here.
pub(super) struct Acting {
    pub by: Actor,
    pub at_ms: u64,
}

impl Acting {
    pub fn require_admin(&self) -> Result<(), DirectoryRejection> {
        if self.by.has_admin_powers() {
            Ok(())
        } else {
            Err(DirectoryRejection::AdminOnly)
        }
    }
}

impl Directory {
    pub fn organization(&self) -> Option<&Organization> {
        self.organization.as_ref()
    }

    fn acting(&self, meta: &CommandMeta) -> Result<Acting, DirectoryRejection> {
        let organization = self
            .organization
            .as_ref()
            .ok_or(DirectoryRejection::OrganizationNotCreated)?;
        if organization.id != meta.org {
            return Err(DirectoryRejection::WrongOrganization);
        }
        let by = match meta.actor {
            Actor::System => Actor::System,
            Actor::User { id, .. } => {
                let user = self
                    .users
                    .get(&id)
                    .ok_or(DirectoryRejection::UnknownActor)?;
                Actor::User {
                    id,
                    role: user.role,
                }
            }
        };
        Ok(Acting {
            by,
            at_ms: meta.at_ms,
        })
    }
}

impl Aggregate for Directory {
    const CATEGORY: &'static str = "directory";
    type Command = Issued<DirectoryCommand>;
    type Event = DirectoryEvent;
    type Rejection = DirectoryRejection;

    fn decide(&self, issued: &Self::Command) -> Result<Vec<DirectoryEvent>, DirectoryRejection> {
        let Issued { meta, command } = issued;
        match command {
            DirectoryCommand::CreateOrganization {
                name,
                first_admin,
                first_admin_name,
                first_admin_extension,
            } => self.create_organization(
                meta,
                name,
                *first_admin,
                first_admin_name,
                first_admin_extension,
            ),
            DirectoryCommand::AddUser {
                user,
                name,
                extension,
                role,
            } => self.add_user(&self.acting(meta)?, *user, name, extension, *role),
            DirectoryCommand::ChangeRole { user, role } => {
                self.change_role(&self.acting(meta)?, *user, *role)
            }
            DirectoryCommand::SetTextMessagesToDeskPhone { user, enabled } => {
                self.set_text_messages_to_desk_phone(&self.acting(meta)?, *user, *enabled)
            }
            DirectoryCommand::RenameUser { user, name } => {
                self.rename_user(&self.acting(meta)?, *user, name)
            }
            DirectoryCommand::AddNumber {
                number,
                route,
                destination_exists,
            } => self.add_number(&self.acting(meta)?, number, *route, *destination_exists),
            DirectoryCommand::SetSmsRegistration { number, registered } => {
                self.set_sms_registration(&self.acting(meta)?, number, *registered)
            }
            DirectoryCommand::RouteNumber {
                number,
                to,
                destination_exists,
            } => self.route_number(&self.acting(meta)?, number, *to, *destination_exists),
            DirectoryCommand::AssignNumber { number, user } => {
                self.assign_number(&self.acting(meta)?, number, *user)
            }
            DirectoryCommand::UnassignNumber { number, user } => {
                self.unassign_number(&self.acting(meta)?, number, *user)
            }
            DirectoryCommand::AddContact {
                contact,
                scope,
                details,
            } => self.add_contact(&self.acting(meta)?, *contact, *scope, details),
            DirectoryCommand::UpdateContact { contact, details } => {
                self.update_contact(&self.acting(meta)?, *contact, details)
            }
            DirectoryCommand::DeleteContact { contact } => {
                self.delete_contact(&self.acting(meta)?, *contact)
            }
        }
    }

    fn apply(&mut self, event: &DirectoryEvent) {
        match event {
            DirectoryEvent::OrganizationCreated(e) => {
                self.organization = Some(Organization {
                    id: e.org,
                    name: e.name.clone(),
                    created_at_ms: e.at_ms,
                });
            }
            DirectoryEvent::UserAdded(e) => {
                self.users.insert(
                    e.user,
                    User {
                        id: e.user,
                        name: e.name.clone(),
                        extension: e.extension.clone(),
                        role: e.role,
                        settings: Default::default(),
                    },
                );
            }
            DirectoryEvent::RoleChanged(e) => {
                if let Some(user) = self.users.get_mut(&e.user) {
                    user.role = e.role;
                }
            }
            DirectoryEvent::UserRenamed(e) => {
                if let Some(user) = self.users.get_mut(&e.user) {
                    user.name.clone_from(&e.name);
                }
            }
            DirectoryEvent::TextMessagesToDeskPhoneSet(e) => {
                if let Some(user) = self.users.get_mut(&e.user) {
                    user.settings.text_messages_to_desk_phone = e.enabled;
                }
            }
            DirectoryEvent::NumberAdded(e) => {
                self.numbers.insert(
                    e.number.clone(),
                    BusinessNumber {
                        number: e.number.clone(),
                        sms_registered: false,
                        route: e.route,
                        assigned_to: Default::default(),
                    },
                );
            }
            DirectoryEvent::NumberSmsRegistered(e) => {
                if let Some(number) = self.numbers.get_mut(&e.number) {
                    number.sms_registered = true;
                }
            }
            DirectoryEvent::NumberSmsUnregistered(e) => {
                if let Some(number) = self.numbers.get_mut(&e.number) {
                    number.sms_registered = false;
                }
            }
            DirectoryEvent::NumberRouted(e) => {
                if let Some(number) = self.numbers.get_mut(&e.number) {
                    number.route = e.to;
                }
            }
            DirectoryEvent::NumberAssigned(e) => {
                if let Some(number) = self.numbers.get_mut(&e.number) {
                    number.assigned_to.insert(e.user);
                }
            }
            DirectoryEvent::NumberUnassigned(e) => {
                if let Some(number) = self.numbers.get_mut(&e.number) {
                    number.assigned_to.remove(&e.user);
                }
            }
            DirectoryEvent::ContactAdded(e) => {
                self.contacts.insert(
                    e.contact,
                    Contact {
                        id: e.contact,
                        owner: e.owner,
                        details: e.details.clone(),
                    },
                );
            }
            DirectoryEvent::ContactUpdated(e) => {
                if let Some(contact) = self.contacts.get_mut(&e.contact) {
                    contact.details = e.details.clone();
                }
            }
            DirectoryEvent::ContactDeleted(e) => {
                self.contacts.remove(&e.contact);
            }
        }
    }
}
