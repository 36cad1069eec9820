//! Random command sequences against the directory. The harness checks after every step
//! that replay and snapshots equal the live state; here we check the invariants.

use std::collections::BTreeSet;

use proptest::prelude::*;
use uuid::Uuid;

use super::ext;
use crate::command_meta::{CommandMeta, Role};
use crate::directory::{
    ContactDetails, ContactOwner, ContactScope, Directory, DirectoryCommand, Routing,
    DIRECTORY_EVENT_TYPES,
};
use crate::ids::{ContactId, InboxId, OrgId, QueueId, UserId};
use crate::limits::MAX_CONTACT_NUMBERS;
use crate::phone_number::PhoneNumber;
use crate::testkit::{assert_variant_order, number, Harness};

const ORG: OrgId = OrgId::from_uuid(Uuid::from_u128(0xA));

fn user(i: u8) -> UserId {
    UserId::from_uuid(Uuid::from_u128(0x100 + u128::from(i)))
}

fn line(i: u8) -> PhoneNumber {
    number(&format!("+1613555010{i}"))
}

fn routing() -> impl Strategy<Value = Routing> {
    prop_oneof![
        (0..4u8).prop_map(|i| Routing::User(user(i))),
        (0..2u128).prop_map(|i| Routing::Inbox(InboxId::from_uuid(Uuid::from_u128(0x200 + i)))),
        Just(Routing::Queue(QueueId::from_uuid(Uuid::from_u128(0x300)))),
    ]
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Admin), Just(Role::Member)]
}

fn details() -> impl Strategy<Value = ContactDetails> {
    (
        prop_oneof![Just("Bob"), Just("  "), Just("Alice")],
        proptest::collection::vec(0..4u8, 0..4),
    )
        .prop_map(|(name, numbers)| ContactDetails {
            name: name.into(),
            company: String::new(),
            numbers: numbers.into_iter().map(line).collect(),
        })
}

fn command() -> impl Strategy<Value = DirectoryCommand> {
    let contact = (0..3u128).prop_map(|i| ContactId::from_uuid(Uuid::from_u128(0x400 + i)));
    prop_oneof![
        (0..4u8, 0..4u8, role()).prop_map(|(u, e, role)| DirectoryCommand::AddUser {
            user: user(u),
            name: "U".into(),
            extension: ext(&format!("10{e}")),
            role,
        }),
        (0..4u8, role()).prop_map(|(u, role)| DirectoryCommand::ChangeRole {
            user: user(u),
            role
        }),
        (0..4u8, any::<bool>()).prop_map(|(u, enabled)| {
            DirectoryCommand::SetTextMessagesToDeskPhone {
                user: user(u),
                enabled,
            }
        }),
        (0..4u8, routing(), any::<bool>()).prop_map(|(n, route, destination_exists)| {
            DirectoryCommand::AddNumber {
                number: line(n),
                route,
                destination_exists,
            }
        }),
        (0..4u8, any::<bool>()).prop_map(|(n, registered)| DirectoryCommand::SetSmsRegistration {
            number: line(n),
            registered
        }),
        (0..4u8, routing(), any::<bool>()).prop_map(|(n, to, destination_exists)| {
            DirectoryCommand::RouteNumber {
                number: line(n),
                to,
                destination_exists,
            }
        }),
        (0..4u8, 0..4u8).prop_map(|(n, u)| DirectoryCommand::AssignNumber {
            number: line(n),
            user: user(u)
        }),
        (0..4u8, 0..4u8).prop_map(|(n, u)| DirectoryCommand::UnassignNumber {
            number: line(n),
            user: user(u)
        }),
        (contact.clone(), any::<bool>(), details()).prop_map(|(contact, personal, details)| {
            DirectoryCommand::AddContact {
                contact,
                scope: if personal {
                    ContactScope::Personal
                } else {
                    ContactScope::Organization
                },
                details,
            }
        }),
        (contact.clone(), details())
            .prop_map(|(contact, details)| DirectoryCommand::UpdateContact { contact, details }),
        contact.prop_map(|contact| DirectoryCommand::DeleteContact { contact }),
    ]
}

/// Who issues a command: one of the pool's users (claiming any role) or the System.
fn meta() -> impl Strategy<Value = (Option<u8>, Role)> {
    (proptest::option::weighted(0.9, 0..4u8), role())
}

fn check_invariants(directory: &Directory) {
    if directory.organization().is_none() {
        return;
    }
    assert!(
        directory.admin_count() >= 1,
        "an organization always has an admin"
    );
    let extensions: BTreeSet<_> = directory.users().map(|u| &u.extension).collect();
    assert_eq!(
        extensions.len(),
        directory.users().count(),
        "extensions are unique"
    );
    for n in directory.numbers() {
        for holder in &n.assigned_to {
            assert!(directory.user(holder).is_some(), "holders are users");
        }
        match n.route {
            Routing::User(u) => {
                assert!(directory.user(&u).is_some());
                assert!(n.is_assigned_to(u), "a personal number's user holds it");
            }
            Routing::Inbox(_) | Routing::Queue(_) => {
                assert!(
                    n.assigned_to.is_empty(),
                    "nobody holds an inbox or queue number"
                );
            }
        }
    }
    for u in directory.users() {
        for contact in directory.contacts_visible_to(u.id) {
            assert!(!contact.details.name.trim().is_empty());
            assert!(contact.details.numbers.len() <= MAX_CONTACT_NUMBERS);
            if let ContactOwner::User(owner) = contact.owner {
                assert_eq!(
                    owner, u.id,
                    "personal contacts are visible to their owner only"
                );
            }
        }
    }
}

proptest! {
    #[test]
    fn random_commands_keep_the_directory_consistent(
        steps in proptest::collection::vec((meta(), command()), 1..60)
    ) {
        let mut directory = Harness::<Directory>::new();
        directory
            .handle(&CommandMeta::system(ORG, 0).issue(DirectoryCommand::CreateOrganization {
                name: "Acme".into(),
                first_admin: user(0),
                first_admin_name: "Ada".into(),
                first_admin_extension: ext("100"),
            }))
            .unwrap();
        for (at_ms, ((actor, role), command)) in (1..).zip(steps) {
            let meta = match actor {
                Some(i) => CommandMeta::user(ORG, user(i), role, at_ms),
                None => CommandMeta::system(ORG, at_ms),
            };
            let _ = directory.handle(&meta.issue(command));
            check_invariants(&directory.state);
        }
        for event in &directory.log {
            assert_variant_order(event, &DIRECTORY_EVENT_TYPES);
        }
    }
}
