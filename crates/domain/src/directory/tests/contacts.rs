use super::Org;
use crate::aggregate::Rejection;
use crate::directory::{
    ContactDetails, ContactOwner, ContactScope, DirectoryCommand, DirectoryRejection, Routing,
};
use crate::ids::{ContactId, InboxId};
use crate::testkit::number;
use crate::validation::InvalidInput;

fn details(name: &str, numbers: &[&str]) -> ContactDetails {
    ContactDetails {
        name: name.into(),
        company: String::new(),
        numbers: numbers.iter().map(|n| number(n)).collect(),
    }
}

fn add(contact: ContactId, scope: ContactScope, details: ContactDetails) -> DirectoryCommand {
    DirectoryCommand::AddContact {
        contact,
        scope,
        details,
    }
}

#[test]
fn any_user_adds_organization_contacts_everyone_sees() {
    let mut org = Org::new();
    let contact = ContactId::random();
    org.member_does(add(
        contact,
        ContactScope::Organization,
        details("Bob's Plumbing", &["+16135550142"]),
    ))
    .unwrap();
    assert_eq!(
        org.state().contact(&contact).unwrap().owner,
        ContactOwner::Organization
    );
    assert_eq!(org.state().contacts_visible_to(org.admin).count(), 1);
    // Integrations import through the System.
    org.system(add(
        ContactId::random(),
        ContactScope::Organization,
        details("Imported", &[]),
    ))
    .unwrap();
}

#[test]
fn personal_contacts_are_their_owners_alone() {
    let mut org = Org::new();
    let (admin, member) = (org.admin, org.member);
    let contact = ContactId::random();
    org.member_does(add(
        contact,
        ContactScope::Personal,
        details("Mum", &["+16135550143"]),
    ))
    .unwrap();
    assert_eq!(
        org.state().contact(&contact).unwrap().owner,
        ContactOwner::User(member)
    );
    assert_eq!(org.state().contacts_visible_to(member).count(), 1);
    assert_eq!(org.state().contacts_visible_to(admin).count(), 0);
}

#[test]
fn the_system_has_no_personal_phonebook() {
    let mut org = Org::new();
    assert_eq!(
        org.system(add(
            ContactId::random(),
            ContactScope::Personal,
            details("X", &[])
        )),
        Err(DirectoryRejection::UsersOnly)
    );
}

#[test]
fn a_contact_id_is_used_once() {
    let mut org = Org::new();
    let contact = ContactId::random();
    org.member_does(add(contact, ContactScope::Organization, details("A", &[])))
        .unwrap();
    assert_eq!(
        org.member_does(add(contact, ContactScope::Organization, details("B", &[]))),
        Err(DirectoryRejection::ContactAlreadyExists { contact })
    );
}

#[test]
fn contact_details_are_normalised() {
    let mut org = Org::new();
    let contact = ContactId::random();
    org.member_does(add(
        contact,
        ContactScope::Organization,
        ContactDetails {
            name: "  Bob ".into(),
            company: " Plumbing Inc ".into(),
            numbers: vec![
                number("+16135550142"),
                number("+1 613 555 0143"),
                number("+1-613-555-0142"),
            ],
        },
    ))
    .unwrap();
    let stored = &org.state().contact(&contact).unwrap().details;
    assert_eq!(stored.name, "Bob");
    assert_eq!(stored.company, "Plumbing Inc");
    assert_eq!(
        stored.numbers,
        vec![number("+16135550142"), number("+16135550143")]
    );
}

#[test]
fn contact_details_are_bounded() {
    let mut org = Org::new();
    let mut too_long = details("x", &[]);
    too_long.name = "é".repeat(201);
    assert_eq!(
        org.member_does(add(
            ContactId::random(),
            ContactScope::Organization,
            too_long
        ))
        .unwrap_err()
        .code(),
        "too_long"
    );
    let mut company = details("x", &[]);
    company.company = "c".repeat(201);
    assert_eq!(
        org.member_does(add(
            ContactId::random(),
            ContactScope::Organization,
            company
        ))
        .unwrap_err()
        .code(),
        "too_long"
    );
    let eleven: Vec<String> = (0..11).map(|i| format!("+1613555{i:04}")).collect();
    let eleven: Vec<&str> = eleven.iter().map(String::as_str).collect();
    assert_eq!(
        org.member_does(add(
            ContactId::random(),
            ContactScope::Organization,
            details("x", &eleven)
        )),
        Err(DirectoryRejection::Invalid(InvalidInput::TooMany {
            field: "numbers",
            count: 11,
            max: 10
        }))
    );
    assert_eq!(
        org.member_does(add(
            ContactId::random(),
            ContactScope::Organization,
            details(" ", &[])
        ))
        .unwrap_err()
        .code(),
        "blank"
    );
}

#[test]
fn anyone_keeps_organization_contacts_up_to_date() {
    let mut org = Org::new();
    let contact = ContactId::random();
    org.admin_does(add(
        contact,
        ContactScope::Organization,
        details("Bob", &[]),
    ))
    .unwrap();
    let update = DirectoryCommand::UpdateContact {
        contact,
        details: details("Robert", &["+16135550142"]),
    };
    org.member_does(update.clone()).unwrap();
    assert_eq!(
        org.state().contact(&contact).unwrap().details.name,
        "Robert"
    );
    assert_eq!(org.member_does(update), Ok(vec![]), "nothing changed");
    org.member_does(DirectoryCommand::DeleteContact { contact })
        .unwrap();
    assert!(org.state().contact(&contact).is_none());
}

#[test]
fn only_the_owner_edits_or_deletes_a_personal_contact_not_even_an_admin() {
    let mut org = Org::new();
    let contact = ContactId::random();
    org.member_does(add(contact, ContactScope::Personal, details("Mum", &[])))
        .unwrap();
    assert_eq!(
        org.admin_does(DirectoryCommand::UpdateContact {
            contact,
            details: details("Hacked", &[])
        }),
        Err(DirectoryRejection::NotYourContact { contact })
    );
    assert_eq!(
        org.admin_does(DirectoryCommand::DeleteContact { contact }),
        Err(DirectoryRejection::NotYourContact { contact })
    );
    org.member_does(DirectoryCommand::UpdateContact {
        contact,
        details: details("Mom", &[]),
    })
    .unwrap();
    org.member_does(DirectoryCommand::DeleteContact { contact })
        .unwrap();
}

#[test]
fn unknown_contacts_cannot_be_edited() {
    let mut org = Org::new();
    let contact = ContactId::random();
    assert_eq!(
        org.member_does(DirectoryCommand::DeleteContact { contact }),
        Err(DirectoryRejection::UnknownContact { contact })
    );
}

#[test]
fn names_resolve_personal_then_organization_then_user() {
    let mut org = Org::new();
    let (admin, member) = (org.admin, org.member);
    let line = number("+16135550100");
    org.admin_does(DirectoryCommand::AddNumber {
        number: line.clone(),
        route: Routing::User(member),
        destination_exists: true,
    })
    .unwrap();
    assert_eq!(
        org.state().resolve_name(&line, admin).as_deref(),
        Some("Max")
    );

    let customer = number("+16135550142");
    assert_eq!(org.state().resolve_name(&customer, admin), None);
    org.admin_does(add(
        ContactId::random(),
        ContactScope::Organization,
        details("Bob's Plumbing", &["+16135550142"]),
    ))
    .unwrap();
    org.member_does(add(
        ContactId::random(),
        ContactScope::Personal,
        details("Uncle Bob", &["+16135550142"]),
    ))
    .unwrap();
    assert_eq!(
        org.state().resolve_name(&customer, member).as_deref(),
        Some("Uncle Bob")
    );
    assert_eq!(
        org.state().resolve_name(&customer, admin).as_deref(),
        Some("Bob's Plumbing")
    );
}

#[test]
fn inbox_numbers_are_not_named_by_the_directory() {
    let mut org = Org::new();
    let shared = number("+16135550200");
    org.admin_does(DirectoryCommand::AddNumber {
        number: shared.clone(),
        route: Routing::Inbox(InboxId::random()),
        destination_exists: true,
    })
    .unwrap();
    assert_eq!(org.state().resolve_name(&shared, org.admin), None);
}
