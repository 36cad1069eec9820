use super::{types, World, HOLDER, NOBODY, TEAM};
use crate::aggregate::{Aggregate, Rejection};
use crate::command_meta::{Actor, CommandMeta, Role};
use crate::conversation::{
    ConversationCommand, ConversationKind, ConversationRejection, InboxStatus,
};
use crate::ids::{ConversationId, OrgId, UserId};
use crate::limits::{MAX_CONVERSATION_MEMBERS, MAX_GROUP_EXTERNALS};
use crate::testkit::number;
use crate::validation::InvalidInput;

fn start_external(world: &World, facts: crate::conversation::ActorFacts) -> ConversationCommand {
    ConversationCommand::StartExternal {
        id: world.external_id(),
        our: world.our.clone(),
        their: world.their.clone(),
        inbox: None,
        facts,
    }
}

#[test]
fn an_inbound_text_opens_an_external_conversation() {
    let world = World::external();
    let header = world.state().header().unwrap();
    assert_eq!(header.id, world.external_id());
    assert_eq!(
        header.kind,
        ConversationKind::External {
            our: world.our.clone(),
            their: world.their.clone()
        }
    );
    assert!(world.state().inbox().is_none());
}

#[test]
fn a_user_holding_the_line_composes_to_a_new_number() {
    let mut world = World::new();
    let alice = world.alice;
    let events = world.by(alice, start_external(&world, HOLDER)).unwrap();
    assert_eq!(types(&events), ["ConversationStarted"]);
}

#[test]
fn a_user_cannot_compose_from_a_line_they_do_not_hold() {
    let mut world = World::new();
    let bob = world.bob;
    assert_eq!(
        world.by(bob, start_external(&world, NOBODY)),
        Err(ConversationRejection::FromNumberNotAssignedToYou)
    );
}

#[test]
fn the_same_pair_continues_the_same_conversation() {
    let mut world = World::external();
    let alice = world.alice;
    assert_eq!(world.by(alice, start_external(&world, HOLDER)), Ok(vec![]));
    assert_eq!(world.system(start_external(&world, NOBODY)), Ok(vec![]));
}

#[test]
fn an_external_id_must_be_the_pairs() {
    let mut world = World::new();
    let expected = world.external_id();
    let rejection = world
        .system(ConversationCommand::StartExternal {
            id: ConversationId::random(),
            our: world.our.clone(),
            their: world.their.clone(),
            inbox: None,
            facts: NOBODY,
        })
        .unwrap_err();
    assert_eq!(
        rejection,
        ConversationRejection::IdDoesNotMatch { expected }
    );
    assert_eq!(rejection.code(), "id_does_not_match");
}

#[test]
fn our_number_is_not_an_external_number() {
    let mut world = World::new();
    let our = world.our.clone();
    assert_eq!(
        world.system(ConversationCommand::StartExternal {
            id: ConversationId::external(world.org, &our, &our),
            our: our.clone(),
            their: our.clone(),
            inbox: None,
            facts: NOBODY,
        }),
        Err(ConversationRejection::ExternalIsOurNumber { number: our })
    );
}

#[test]
fn another_tenant_cannot_use_a_conversation() {
    let world = World::external();
    let stranger = CommandMeta::user(OrgId::random(), UserId::random(), Role::Admin, 5);
    assert_eq!(
        world
            .state()
            .decide(&stranger.issue(super::post("hi", None, HOLDER))),
        Err(ConversationRejection::WrongOrganization)
    );
}

#[test]
fn composing_from_an_inbox_number_assigns_the_conversation_to_the_composer() {
    let mut world = World::new();
    let alice = world.alice;
    let command = ConversationCommand::StartExternal {
        id: world.external_id(),
        our: world.our.clone(),
        their: world.their.clone(),
        inbox: Some(world.inbox),
        facts: TEAM,
    };
    let events = world.by(alice, command).unwrap();
    assert_eq!(
        types(&events),
        [
            "ConversationStarted",
            "InboxAttached",
            "ConversationAssigned"
        ]
    );
    assert_eq!(
        world.state().inbox().unwrap().status,
        InboxStatus::Assigned(alice)
    );
}

#[test]
fn only_the_inbox_team_composes_from_an_inbox_number() {
    let mut world = World::new();
    let alice = world.alice;
    let command = ConversationCommand::StartExternal {
        id: world.external_id(),
        our: world.our.clone(),
        their: world.their.clone(),
        inbox: Some(world.inbox),
        facts: HOLDER,
    };
    assert_eq!(
        world.by(alice, command),
        Err(ConversationRejection::NotAnInboxMember)
    );
}

#[test]
fn a_user_starts_a_direct_conversation_with_another_user() {
    let world = World::direct();
    let (alice, bob) = (world.alice, world.bob);
    let members = world.state().kind().unwrap().internal_members().unwrap();
    assert_eq!(members, [alice, bob].into());
    assert_eq!(
        world.state().id(),
        Some(ConversationId::direct(world.org, bob, alice))
    );
}

#[test]
fn the_other_user_starting_it_continues_the_same_direct_conversation() {
    let mut world = World::direct();
    let (alice, bob) = (world.alice, world.bob);
    let command = ConversationCommand::StartDirect {
        id: ConversationId::direct(world.org, bob, alice),
        with: alice,
        known_users: world.users(),
    };
    assert_eq!(world.by(bob, command), Ok(vec![]));
}

#[test]
fn nobody_messages_themselves() {
    let mut world = World::new();
    let alice = world.alice;
    let command = ConversationCommand::StartDirect {
        id: ConversationId::direct(world.org, alice, alice),
        with: alice,
        known_users: world.users(),
    };
    assert_eq!(
        world.by(alice, command),
        Err(ConversationRejection::CannotMessageYourself)
    );
}

#[test]
fn direct_conversations_are_with_users_of_the_organization() {
    let mut world = World::new();
    let (alice, stranger) = (world.alice, UserId::random());
    let command = ConversationCommand::StartDirect {
        id: ConversationId::direct(world.org, alice, stranger),
        with: stranger,
        known_users: world.users(),
    };
    assert_eq!(
        world.by(alice, command),
        Err(ConversationRejection::UnknownUser { user: stranger })
    );
}

#[test]
fn a_direct_id_must_be_the_pairs() {
    let mut world = World::new();
    let (alice, bob) = (world.alice, world.bob);
    let command = ConversationCommand::StartDirect {
        id: ConversationId::direct(world.org, alice, world.carol),
        with: bob,
        known_users: world.users(),
    };
    assert!(matches!(
        world.by(alice, command),
        Err(ConversationRejection::IdDoesNotMatch { .. })
    ));
}

#[test]
fn the_system_does_not_start_direct_conversations() {
    let mut world = World::new();
    let bob = world.bob;
    let command = ConversationCommand::StartDirect {
        id: ConversationId::random(),
        with: bob,
        known_users: world.users(),
    };
    assert_eq!(world.system(command), Err(ConversationRejection::UsersOnly));
}

#[test]
fn a_channel_has_its_creator_as_a_member() {
    let world = World::channel();
    let ConversationKind::Channel { name, members } = world.state().kind().unwrap() else {
        panic!("a channel")
    };
    assert_eq!(name, "general");
    assert_eq!(members, &[world.alice, world.bob].into());
}

#[test]
fn a_channel_needs_a_name_of_at_most_80_characters() {
    let mut world = World::new();
    let alice = world.alice;
    for (name, code) in [("   ", "blank"), (&*"c".repeat(81), "too_long")] {
        let command = ConversationCommand::StartChannel {
            id: ConversationId::random(),
            name: name.into(),
            members: Default::default(),
            known_users: world.users(),
        };
        assert_eq!(world.by(alice, command).unwrap_err().code(), code);
    }
}

#[test]
fn channel_members_are_users_of_the_organization() {
    let mut world = World::new();
    let (alice, stranger) = (world.alice, UserId::random());
    let command = ConversationCommand::StartChannel {
        id: ConversationId::random(),
        name: "x".into(),
        members: [stranger].into(),
        known_users: world.users(),
    };
    assert_eq!(
        world.by(alice, command),
        Err(ConversationRejection::UnknownUser { user: stranger })
    );
}

#[test]
fn a_channel_has_at_most_500_members() {
    let mut world = World::new();
    let alice = world.alice;
    let others: std::collections::BTreeSet<_> = (0..MAX_CONVERSATION_MEMBERS)
        .map(|_| UserId::random())
        .collect();
    let command = |members: std::collections::BTreeSet<UserId>| ConversationCommand::StartChannel {
        id: ConversationId::random(),
        name: "all hands".into(),
        known_users: members.clone(),
        members,
    };
    assert_eq!(
        world.by(alice, command(others.clone())),
        Err(ConversationRejection::TooManyMembers {
            max: MAX_CONVERSATION_MEMBERS
        })
    );
    let fitting = others.into_iter().skip(1).collect();
    world.by(alice, command(fitting)).unwrap();
}

#[test]
fn a_channel_id_is_started_once() {
    let mut world = World::channel();
    let (alice, id) = (world.alice, world.state().id().unwrap());
    let command = ConversationCommand::StartChannel {
        id,
        name: "again".into(),
        members: Default::default(),
        known_users: world.users(),
    };
    assert_eq!(
        world.by(alice, command),
        Err(ConversationRejection::AlreadyStarted)
    );
}

#[test]
fn a_group_mixes_users_and_external_numbers_on_the_creators_line() {
    let world = World::group();
    let ConversationKind::Group {
        our,
        users,
        externals,
    } = world.state().kind().unwrap()
    else {
        panic!("a group")
    };
    assert_eq!(our, &world.our);
    assert_eq!(users, &[world.alice, world.bob].into());
    assert_eq!(externals, &[world.their.clone(), world.vendor()].into());
    let started = &world.conversation.log[0];
    assert!(
        matches!(started, crate::conversation::ConversationEvent::ConversationStarted(e)
        if e.by == Actor::User { id: world.alice, role: Role::Member })
    );
}

fn start_group(
    world: &World,
    users: &[UserId],
    externals: &[crate::phone_number::PhoneNumber],
    sms_registered: bool,
    assigned: bool,
) -> ConversationCommand {
    ConversationCommand::StartGroup {
        id: ConversationId::random(),
        users: users.iter().copied().collect(),
        externals: externals.iter().cloned().collect(),
        from: world.sender(sms_registered, assigned),
        known_users: world.users(),
    }
}

#[test]
fn a_group_needs_an_external_number_and_three_participants() {
    let mut world = World::new();
    let (alice, bob) = (world.alice, world.bob);
    let their = world.their.clone();
    assert_eq!(
        world.by(alice, start_group(&world, &[bob], &[], true, true)),
        Err(ConversationRejection::GroupNeedsExternal)
    );
    assert_eq!(
        world.by(
            alice,
            start_group(&world, &[alice], std::slice::from_ref(&their), true, true)
        ),
        Err(ConversationRejection::GroupTooSmall)
    );
    let vendor = world.vendor();
    world
        .by(
            alice,
            start_group(&world, &[], &[their, vendor], true, true),
        )
        .unwrap();
}

#[test]
fn a_group_has_at_most_ten_external_numbers() {
    let mut world = World::new();
    let alice = world.alice;
    let externals: Vec<_> = (0..=MAX_GROUP_EXTERNALS)
        .map(|i| number(&format!("+1415555{i:04}")))
        .collect();
    assert_eq!(
        world.by(alice, start_group(&world, &[], &externals, true, true)),
        Err(ConversationRejection::Invalid(InvalidInput::TooMany {
            field: "externals",
            count: MAX_GROUP_EXTERNALS + 1,
            max: MAX_GROUP_EXTERNALS
        }))
    );
}

#[test]
fn a_group_texts_from_a_registered_line_of_its_creator() {
    let mut world = World::new();
    let (alice, bob) = (world.alice, world.bob);
    let their = world.their.clone();
    assert_eq!(
        world.by(
            alice,
            start_group(&world, &[bob], std::slice::from_ref(&their), false, true)
        ),
        Err(ConversationRejection::FromNumberNotSmsRegistered)
    );
    assert_eq!(
        world.by(alice, start_group(&world, &[bob], &[their], true, false)),
        Err(ConversationRejection::FromNumberNotAssignedToYou)
    );
}

#[test]
fn a_group_does_not_text_its_own_number() {
    let mut world = World::new();
    let (alice, bob) = (world.alice, world.bob);
    let our = world.our.clone();
    assert_eq!(
        world.by(
            alice,
            start_group(&world, &[bob], std::slice::from_ref(&our), true, true)
        ),
        Err(ConversationRejection::ExternalIsOurNumber { number: our })
    );
}

#[test]
fn group_users_are_users_of_the_organization() {
    let mut world = World::new();
    let (alice, stranger) = (world.alice, UserId::random());
    let their = world.their.clone();
    assert_eq!(
        world.by(
            alice,
            start_group(&world, &[stranger], &[their], true, true)
        ),
        Err(ConversationRejection::UnknownUser { user: stranger })
    );
}

#[test]
fn nothing_happens_in_a_conversation_that_was_not_started() {
    let mut world = World::new();
    let alice = world.alice;
    assert_eq!(
        world.by(alice, super::post("hi", None, HOLDER)),
        Err(ConversationRejection::NotStarted)
    );
}

#[test]
fn a_start_routed_to_another_conversations_stream_is_refused() {
    let mut world = World::direct();
    let (alice, carol) = (world.alice, world.carol);
    let command = ConversationCommand::StartDirect {
        id: ConversationId::direct(world.org, alice, carol),
        with: carol,
        known_users: world.users(),
    };
    assert_eq!(
        world.by(alice, command),
        Err(ConversationRejection::AlreadyStarted)
    );
}
