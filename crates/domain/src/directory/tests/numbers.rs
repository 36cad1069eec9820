use super::Org;
use crate::aggregate::Rejection;
use crate::conversation::SenderNumber;
use crate::directory::{DirectoryCommand, DirectoryEvent, DirectoryRejection, Routing};
use crate::ids::{InboxId, QueueId, UserId};
use crate::phone_number::PhoneNumber;
use crate::testkit::number;

fn add(number: &PhoneNumber, route: Routing) -> DirectoryCommand {
    DirectoryCommand::AddNumber {
        number: number.clone(),
        route,
        destination_exists: true,
    }
}

fn register(number: &PhoneNumber, registered: bool) -> DirectoryCommand {
    DirectoryCommand::SetSmsRegistration {
        number: number.clone(),
        registered,
    }
}

fn route(number: &PhoneNumber, to: Routing) -> DirectoryCommand {
    DirectoryCommand::RouteNumber {
        number: number.clone(),
        to,
        destination_exists: true,
    }
}

/// The org with a number routed to the member.
fn with_member_line() -> (Org, PhoneNumber) {
    let mut org = Org::new();
    let line = number("+16135550100");
    let member = org.member;
    org.admin_does(add(&line, Routing::User(member))).unwrap();
    (org, line)
}

#[test]
fn an_admin_adds_a_personal_number_which_its_user_holds() {
    let (org, line) = with_member_line();
    let added = org.state().number(&line).unwrap();
    assert_eq!(added.route, Routing::User(org.member));
    assert!(added.is_assigned_to(org.member));
    assert!(!added.sms_registered, "numbers start unregistered");
}

#[test]
fn a_member_cannot_add_numbers() {
    let mut org = Org::new();
    let member = org.member;
    assert_eq!(
        org.member_does(add(&number("+16135550100"), Routing::User(member))),
        Err(DirectoryRejection::AdminOnly)
    );
}

#[test]
fn a_number_is_added_once() {
    let (mut org, line) = with_member_line();
    let admin = org.admin;
    assert_eq!(
        org.admin_does(add(&line, Routing::User(admin))),
        Err(DirectoryRejection::NumberAlreadyAdded { number: line })
    );
}

#[test]
fn a_number_routes_to_a_known_destination() {
    let mut org = Org::new();
    let stranger = UserId::random();
    assert_eq!(
        org.admin_does(add(&number("+16135550100"), Routing::User(stranger))),
        Err(DirectoryRejection::UnknownUser { user: stranger })
    );
    let rejection = org
        .admin_does(DirectoryCommand::AddNumber {
            number: number("+16135550100"),
            route: Routing::Inbox(InboxId::random()),
            destination_exists: false,
        })
        .unwrap_err();
    assert_eq!(rejection.code(), "unknown_destination");
    let inbox = InboxId::random();
    org.admin_does(add(&number("+16135550100"), Routing::Inbox(inbox)))
        .unwrap();
    let added = org.state().number(&number("+16135550100")).unwrap();
    assert_eq!(added.inbox(), Some(inbox));
    assert!(added.assigned_to.is_empty());
}

#[test]
fn an_admin_or_the_system_sets_sms_registration() {
    let (mut org, line) = with_member_line();
    assert!(matches!(
        org.admin_does(register(&line, true)).unwrap()[..],
        [DirectoryEvent::NumberSmsRegistered(_)]
    ));
    assert!(org.state().number(&line).unwrap().sms_registered);
    assert_eq!(
        org.admin_does(register(&line, true)),
        Ok(vec![]),
        "already registered"
    );
    assert!(matches!(
        org.system(register(&line, false)).unwrap()[..],
        [DirectoryEvent::NumberSmsUnregistered(_)]
    ));
    assert!(!org.state().number(&line).unwrap().sms_registered);
}

#[test]
fn a_member_cannot_register_numbers() {
    let (mut org, line) = with_member_line();
    assert_eq!(
        org.member_does(register(&line, true)),
        Err(DirectoryRejection::AdminOnly)
    );
}

#[test]
fn unknown_numbers_cannot_be_registered() {
    let mut org = Org::new();
    let rejection = org
        .admin_does(register(&number("+16135550999"), true))
        .unwrap_err();
    assert_eq!(rejection.code(), "unknown_number");
}

#[test]
fn routing_to_an_inbox_or_queue_takes_the_number_from_its_users() {
    let (mut org, line) = with_member_line();
    let admin = org.admin;
    org.admin_does(DirectoryCommand::AssignNumber {
        number: line.clone(),
        user: admin,
    })
    .unwrap();
    let events = org
        .admin_does(route(&line, Routing::Inbox(InboxId::random())))
        .unwrap();
    assert_eq!(
        events.len(),
        3,
        "routed, then two unassignments: {events:?}"
    );
    assert!(org.state().number(&line).unwrap().assigned_to.is_empty());
    org.admin_does(route(&line, Routing::Queue(QueueId::random())))
        .unwrap();
}

#[test]
fn routing_to_a_user_gives_them_the_number() {
    let (mut org, line) = with_member_line();
    let (admin, member) = (org.admin, org.member);
    org.admin_does(route(&line, Routing::User(admin))).unwrap();
    let routed = org.state().number(&line).unwrap();
    assert_eq!(routed.route, Routing::User(admin));
    assert!(routed.is_assigned_to(admin));
    assert!(
        routed.is_assigned_to(member),
        "the previous holder keeps sending rights"
    );
}

#[test]
fn routing_where_a_number_already_goes_writes_nothing() {
    let (mut org, line) = with_member_line();
    let member = org.member;
    assert_eq!(
        org.admin_does(route(&line, Routing::User(member))),
        Ok(vec![])
    );
}

#[test]
fn a_member_cannot_route_numbers() {
    let (mut org, line) = with_member_line();
    let member = org.member;
    assert_eq!(
        org.member_does(route(&line, Routing::User(member))),
        Err(DirectoryRejection::AdminOnly)
    );
}

#[test]
fn routing_needs_an_existing_destination() {
    let (mut org, line) = with_member_line();
    assert_eq!(
        org.admin_does(DirectoryCommand::RouteNumber {
            number: line,
            to: Routing::Queue(QueueId::random()),
            destination_exists: false,
        }),
        Err(DirectoryRejection::UnknownDestination)
    );
}

#[test]
fn a_personal_number_can_be_shared_with_another_user() {
    let (mut org, line) = with_member_line();
    let admin = org.admin;
    let assign = DirectoryCommand::AssignNumber {
        number: line.clone(),
        user: admin,
    };
    org.admin_does(assign.clone()).unwrap();
    assert!(org.state().number(&line).unwrap().is_assigned_to(admin));
    assert_eq!(org.admin_does(assign), Ok(vec![]), "already assigned");
}

#[test]
fn inbox_and_queue_numbers_are_not_assigned_to_users() {
    let mut org = Org::new();
    let member = org.member;
    let shared = number("+16135550200");
    let inbox = InboxId::random();
    org.admin_does(add(&shared, Routing::Inbox(inbox))).unwrap();
    assert_eq!(
        org.admin_does(DirectoryCommand::AssignNumber {
            number: shared.clone(),
            user: member
        }),
        Err(DirectoryRejection::NotAPersonalNumber {
            number: shared,
            routed_to: Routing::Inbox(inbox)
        })
    );
}

#[test]
fn numbers_are_assigned_to_known_users_by_admins() {
    let (mut org, line) = with_member_line();
    let stranger = UserId::random();
    assert_eq!(
        org.admin_does(DirectoryCommand::AssignNumber {
            number: line.clone(),
            user: stranger
        }),
        Err(DirectoryRejection::UnknownUser { user: stranger })
    );
    let admin = org.admin;
    assert_eq!(
        org.member_does(DirectoryCommand::AssignNumber {
            number: line,
            user: admin
        }),
        Err(DirectoryRejection::AdminOnly)
    );
}

#[test]
fn a_shared_holder_can_be_unassigned() {
    let (mut org, line) = with_member_line();
    let admin = org.admin;
    org.admin_does(DirectoryCommand::AssignNumber {
        number: line.clone(),
        user: admin,
    })
    .unwrap();
    let unassign = DirectoryCommand::UnassignNumber {
        number: line.clone(),
        user: admin,
    };
    org.admin_does(unassign.clone()).unwrap();
    assert!(!org.state().number(&line).unwrap().is_assigned_to(admin));
    assert_eq!(org.admin_does(unassign), Ok(vec![]), "already unassigned");
}

#[test]
fn the_user_a_number_routes_to_keeps_it() {
    let (mut org, line) = with_member_line();
    let member = org.member;
    assert_eq!(
        org.admin_does(DirectoryCommand::UnassignNumber {
            number: line.clone(),
            user: member
        }),
        Err(DirectoryRejection::RoutedUserMustKeepNumber { number: line })
    );
}

#[test]
fn the_from_menu_lists_registered_numbers_of_the_user() {
    let (mut org, line) = with_member_line();
    let member = org.member;
    let second = number("+16135550101");
    org.admin_does(add(&second, Routing::User(member))).unwrap();
    assert!(org.state().sms_numbers_of(member).is_empty());
    org.admin_does(register(&line, true)).unwrap();
    let from_menu: Vec<_> = org
        .state()
        .sms_numbers_of(member)
        .into_iter()
        .map(|n| n.number.clone())
        .collect();
    assert_eq!(from_menu, vec![line.clone()]);
    assert_eq!(org.state().numbers_of(member).count(), 2);
    assert!(org.state().sms_numbers_of(org.admin).is_empty());
}

#[test]
fn sender_number_facts_come_from_the_directory() {
    let (mut org, line) = with_member_line();
    org.admin_does(register(&line, true)).unwrap();
    assert_eq!(
        org.state().sender_number(&line, org.member),
        Some(SenderNumber {
            number: line.clone(),
            sms_registered: true,
            assigned_to_sender: true
        })
    );
    assert_eq!(
        org.state()
            .sender_number(&line, org.admin)
            .map(|s| s.assigned_to_sender),
        Some(false)
    );
    assert_eq!(
        org.state()
            .sender_number(&number("+19995550000"), org.member),
        None
    );
}
