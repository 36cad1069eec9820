use std::collections::BTreeSet;

use super::{post, World, NOBODY};
use crate::aggregate::Rejection;
use crate::conversation::{ConversationCommand, ConversationKind, ConversationRejection};
use crate::ids::{ConversationId, UserId};
use crate::limits::MAX_CONVERSATION_MEMBERS;

fn members(world: &World) -> BTreeSet<UserId> {
    world.state().kind().unwrap().internal_members().unwrap()
}

fn name(world: &World) -> String {
    match world.state().kind().unwrap() {
        ConversationKind::Channel { name, .. } => name.clone(),
        other => panic!("not a channel: {other:?}"),
    }
}

#[test]
fn any_user_joins_a_channel_and_then_reads_and_writes_in_it() {
    let mut world = World::channel();
    let carol = world.carol;
    assert_eq!(
        world.by(carol, post("hi", None, NOBODY)),
        Err(ConversationRejection::NotAParticipant)
    );
    world.by(carol, ConversationCommand::JoinChannel).unwrap();
    assert!(members(&world).contains(&carol));
    assert!(world.state().can_view(carol, &NOBODY));
    world.by(carol, post("hi", None, NOBODY)).unwrap();
    assert_eq!(
        world.by(carol, ConversationCommand::JoinChannel),
        Ok(vec![]),
        "already in"
    );
}

#[test]
fn only_channels_are_joined() {
    let mut world = World::direct();
    let carol = world.carol;
    let rejection = world
        .by(carol, ConversationCommand::JoinChannel)
        .unwrap_err();
    assert_eq!(rejection, ConversationRejection::NotAChannel);
    assert_eq!(rejection.code(), "not_a_channel");
}

#[test]
fn a_full_channel_takes_nobody_else() {
    let mut world = World::new();
    let alice = world.alice;
    let others: BTreeSet<_> = (1..MAX_CONVERSATION_MEMBERS)
        .map(|_| UserId::random())
        .collect();
    world
        .by(
            alice,
            ConversationCommand::StartChannel {
                id: ConversationId::random(),
                name: "everyone".into(),
                known_users: others.clone(),
                members: others,
            },
        )
        .unwrap();
    let carol = world.carol;
    assert_eq!(
        world.by(carol, ConversationCommand::JoinChannel),
        Err(ConversationRejection::TooManyMembers {
            max: MAX_CONVERSATION_MEMBERS
        })
    );
}

#[test]
fn a_member_brings_others_in() {
    let mut world = World::channel();
    let (bob, carol, admin) = (world.bob, world.carol, world.admin);
    let command = ConversationCommand::AddChannelMembers {
        users: [carol, admin, bob].into(),
        known_users: world.users(),
    };
    let events = world.by(bob, command.clone()).unwrap();
    assert!(matches!(&events[..],
        [crate::conversation::ConversationEvent::ChannelMembersAdded(added)]
            if added.users == [carol, admin].into()));
    assert_eq!(world.by(bob, command), Ok(vec![]), "all already in");
}

#[test]
fn a_non_member_brings_nobody_in() {
    let mut world = World::channel();
    let carol = world.carol;
    let command = ConversationCommand::AddChannelMembers {
        users: [carol].into(),
        known_users: world.users(),
    };
    assert_eq!(
        world.by(carol, command),
        Err(ConversationRejection::NotAParticipant)
    );
}

#[test]
fn only_users_of_the_organization_are_brought_in() {
    let mut world = World::channel();
    let (bob, stranger) = (world.bob, UserId::random());
    let command = ConversationCommand::AddChannelMembers {
        users: [stranger].into(),
        known_users: world.users(),
    };
    assert_eq!(
        world.by(bob, command),
        Err(ConversationRejection::UnknownUser { user: stranger })
    );
}

#[test]
fn a_member_leaves_and_loses_access() {
    let mut world = World::channel();
    let bob = world.bob;
    world.by(bob, ConversationCommand::LeaveChannel).unwrap();
    assert!(!members(&world).contains(&bob));
    assert!(!world.state().can_view(bob, &NOBODY));
    assert_eq!(
        world.by(bob, ConversationCommand::LeaveChannel),
        Ok(vec![]),
        "already out"
    );
}

#[test]
fn the_last_member_cannot_leave() {
    let mut world = World::channel();
    let (alice, bob) = (world.alice, world.bob);
    world.by(bob, ConversationCommand::LeaveChannel).unwrap();
    let rejection = world
        .by(alice, ConversationCommand::LeaveChannel)
        .unwrap_err();
    assert_eq!(rejection, ConversationRejection::LastMemberCannotLeave);
    assert_eq!(rejection.code(), "last_member_cannot_leave");
}

#[test]
fn a_member_renames_the_channel() {
    let mut world = World::channel();
    let bob = world.bob;
    let rename = ConversationCommand::RenameChannel {
        name: " releases 🚀 ".into(),
    };
    world.by(bob, rename.clone()).unwrap();
    assert_eq!(name(&world), "releases 🚀");
    assert_eq!(world.by(bob, rename), Ok(vec![]), "same name");
}

#[test]
fn a_non_member_cannot_rename_and_names_are_bounded() {
    let mut world = World::channel();
    let (bob, carol) = (world.bob, world.carol);
    assert_eq!(
        world.by(
            carol,
            ConversationCommand::RenameChannel {
                name: "mine".into()
            }
        ),
        Err(ConversationRejection::NotAParticipant)
    );
    assert_eq!(
        world
            .by(
                bob,
                ConversationCommand::RenameChannel {
                    name: "n".repeat(81)
                }
            )
            .unwrap_err()
            .code(),
        "too_long"
    );
    assert_eq!(name(&world), "general");
}
