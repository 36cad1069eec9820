use proptest::prelude::*;
use uuid::Uuid;

use crate::aggregate::{Aggregate, Rejection};
use crate::command_meta::{CommandMeta, Role};
use crate::ids::{InboxId, OrgId, UserId};
use crate::inbox::{Inbox, InboxCommand, InboxEvent, InboxRejection, INBOX_EVENT_TYPES};
use crate::limits::MAX_INBOX_MEMBERS;
use crate::phone_number::PhoneNumber;
use crate::testkit::{assert_variant_order, number, Harness};

struct World {
    org: OrgId,
    admin: UserId,
    member: UserId,
    inbox: Harness<Inbox>,
    now: u64,
}

impl World {
    fn new() -> Self {
        World {
            org: OrgId::random(),
            admin: UserId::random(),
            member: UserId::random(),
            inbox: Harness::new(),
            now: 0,
        }
    }

    fn created() -> Self {
        let mut world = World::new();
        world.admin_does(create("Support", true)).unwrap();
        world
    }

    fn by(
        &mut self,
        user: UserId,
        role: Role,
        command: InboxCommand,
    ) -> Result<Vec<InboxEvent>, InboxRejection> {
        self.now += 1;
        let meta = CommandMeta::user(self.org, user, role, self.now);
        self.inbox.handle(&meta.issue(command))
    }

    fn admin_does(&mut self, command: InboxCommand) -> Result<Vec<InboxEvent>, InboxRejection> {
        self.by(self.admin, Role::Admin, command)
    }

    fn member_does(&mut self, command: InboxCommand) -> Result<Vec<InboxEvent>, InboxRejection> {
        self.by(self.member, Role::Member, command)
    }
}

fn support_number() -> PhoneNumber {
    number("+16135550200")
}

fn create(name: &str, number_is_ours: bool) -> InboxCommand {
    InboxCommand::CreateInbox {
        id: InboxId::from_uuid(Uuid::from_u128(7)),
        name: name.into(),
        number: support_number(),
        number_is_ours,
    }
}

fn add(user: UserId) -> InboxCommand {
    InboxCommand::AddMember {
        user,
        user_exists: true,
    }
}

#[test]
fn an_admin_creates_an_inbox_on_a_business_number() {
    let world = World::created();
    let inbox = &world.inbox.state;
    assert_eq!(inbox.name(), Some("Support"));
    assert_eq!(inbox.number(), Some(&support_number()));
    assert_eq!(inbox.id(), Some(InboxId::from_uuid(Uuid::from_u128(7))));
    assert!(inbox.members().is_empty());
}

#[test]
fn a_member_cannot_create_an_inbox() {
    let mut world = World::new();
    let rejection = world.member_does(create("Support", true)).unwrap_err();
    assert_eq!(rejection, InboxRejection::AdminOnly);
    assert_eq!(rejection.code(), "admin_only");
}

#[test]
fn an_inbox_is_on_one_of_our_numbers() {
    let mut world = World::new();
    assert_eq!(
        world.admin_does(create("Support", false)),
        Err(InboxRejection::NotOurNumber {
            number: support_number()
        })
    );
}

#[test]
fn an_inbox_needs_a_name() {
    let mut world = World::new();
    assert_eq!(
        world.admin_does(create(" ", true)).unwrap_err().code(),
        "blank"
    );
    assert_eq!(
        world
            .admin_does(create(&"n".repeat(81), true))
            .unwrap_err()
            .code(),
        "too_long"
    );
}

#[test]
fn an_inbox_is_created_once() {
    let mut world = World::created();
    assert_eq!(
        world.admin_does(create("Again", true)),
        Err(InboxRejection::InboxAlreadyCreated)
    );
}

#[test]
fn nothing_happens_to_an_inbox_that_does_not_exist() {
    let mut world = World::new();
    let member = world.member;
    assert_eq!(
        world.admin_does(add(member)),
        Err(InboxRejection::InboxNotCreated)
    );
}

#[test]
fn another_tenant_cannot_touch_an_inbox() {
    let world = World::created();
    let stranger = CommandMeta::user(OrgId::random(), UserId::random(), Role::Admin, 1);
    assert_eq!(
        world
            .inbox
            .state
            .decide(&stranger.issue(add(UserId::random()))),
        Err(InboxRejection::WrongOrganization)
    );
}

#[test]
fn an_admin_adds_and_removes_team_members() {
    let mut world = World::created();
    let member = world.member;
    world.admin_does(add(member)).unwrap();
    assert!(world.inbox.state.is_member(member));
    assert_eq!(
        world.admin_does(add(member)),
        Ok(vec![]),
        "already a member"
    );
    world
        .admin_does(InboxCommand::RemoveMember { user: member })
        .unwrap();
    assert!(!world.inbox.state.is_member(member));
    assert_eq!(
        world.admin_does(InboxCommand::RemoveMember { user: member }),
        Ok(vec![]),
        "already gone"
    );
}

#[test]
fn a_member_cannot_manage_the_team() {
    let mut world = World::created();
    let member = world.member;
    assert_eq!(
        world.member_does(add(member)),
        Err(InboxRejection::AdminOnly)
    );
    world.admin_does(add(member)).unwrap();
    assert_eq!(
        world.member_does(InboxCommand::RemoveMember { user: member }),
        Err(InboxRejection::AdminOnly)
    );
}

#[test]
fn team_members_are_users_of_the_organization() {
    let mut world = World::created();
    let stranger = UserId::random();
    assert_eq!(
        world.admin_does(InboxCommand::AddMember {
            user: stranger,
            user_exists: false
        }),
        Err(InboxRejection::UnknownUser { user: stranger })
    );
}

#[test]
fn a_team_has_at_most_500_members() {
    let mut world = World::created();
    for _ in 0..MAX_INBOX_MEMBERS {
        world.admin_does(add(UserId::random())).unwrap();
    }
    assert_eq!(
        world.admin_does(add(UserId::random())),
        Err(InboxRejection::TooManyMembers {
            max: MAX_INBOX_MEMBERS
        })
    );
}

#[test]
fn an_admin_renames_an_inbox() {
    let mut world = World::created();
    let rename = InboxCommand::RenameInbox {
        name: "Customer care".into(),
    };
    world.admin_does(rename.clone()).unwrap();
    assert_eq!(world.inbox.state.name(), Some("Customer care"));
    assert_eq!(world.admin_does(rename.clone()), Ok(vec![]), "same name");
    assert_eq!(world.member_does(rename), Err(InboxRejection::AdminOnly));
}

fn command() -> impl Strategy<Value = InboxCommand> {
    let user = |i: u8| UserId::from_uuid(Uuid::from_u128(0x100 + u128::from(i)));
    prop_oneof![
        any::<bool>().prop_map(|ours| create("Support", ours)),
        (0..4u8, any::<bool>()).prop_map(move |(u, user_exists)| InboxCommand::AddMember {
            user: user(u),
            user_exists
        }),
        (0..4u8).prop_map(move |u| InboxCommand::RemoveMember { user: user(u) }),
        prop_oneof![Just("Sales"), Just(""), Just("Support")]
            .prop_map(|name| InboxCommand::RenameInbox { name: name.into() }),
    ]
}

proptest! {
    #[test]
    fn random_commands_keep_an_inbox_consistent(
        steps in proptest::collection::vec((any::<bool>(), command()), 1..40)
    ) {
        let org = OrgId::from_uuid(Uuid::from_u128(0xA));
        let mut inbox = Harness::<Inbox>::new();
        let mut number = None;
        for (at_ms, (admin, command)) in (1..).zip(steps) {
            let role = if admin { Role::Admin } else { Role::Member };
            let meta = CommandMeta::user(org, UserId::from_uuid(Uuid::from_u128(1)), role, at_ms);
            let before = inbox.state.clone();
            let outcome = inbox.handle(&meta.issue(command));
            if !admin {
                prop_assert!(outcome.is_err(), "every inbox command is an admin power");
            }
            if let Some(number) = &number {
                prop_assert_eq!(inbox.state.number(), Some(number), "the number never changes");
            }
            number = inbox.state.number().cloned();
            prop_assert!(inbox.state.members().len() <= MAX_INBOX_MEMBERS);
            if before.header().is_none() {
                prop_assert!(inbox.state.members().is_empty(), "no team before the inbox");
            }
        }
        for event in &inbox.log {
            assert_variant_order(event, &INBOX_EVENT_TYPES);
        }
    }
}
