use super::{post, World, HOLDER, NOBODY, TEAM};
use crate::aggregate::Rejection;
use crate::conversation::{ConversationCommand, ConversationRejection};

fn read(up_to: u64, facts: crate::conversation::ActorFacts) -> ConversationCommand {
    ConversationCommand::MarkRead { up_to, facts }
}

fn three_messages() -> World {
    let mut world = World::direct();
    let alice = world.alice;
    for text in ["a", "b", "c"] {
        world.by(alice, post(text, None, NOBODY)).unwrap();
    }
    world
}

#[test]
fn a_participant_marks_messages_read() {
    let mut world = three_messages();
    let bob = world.bob;
    world.by(bob, read(2, NOBODY)).unwrap();
    assert_eq!(world.state().read_up_to(bob), 2);
    assert_eq!(world.state().read_up_to(world.alice), 0);
}

#[test]
fn a_read_marker_never_moves_back() {
    let mut world = three_messages();
    let bob = world.bob;
    world.by(bob, read(3, NOBODY)).unwrap();
    assert_eq!(world.by(bob, read(1, NOBODY)), Ok(vec![]));
    assert_eq!(world.by(bob, read(3, NOBODY)), Ok(vec![]));
    assert_eq!(world.state().read_up_to(bob), 3);
}

#[test]
fn nobody_reads_messages_that_do_not_exist() {
    let mut world = three_messages();
    let bob = world.bob;
    let rejection = world.by(bob, read(4, NOBODY)).unwrap_err();
    assert_eq!(
        rejection,
        ConversationRejection::ReadBeyondLastMessage { last: 3 }
    );
    assert_eq!(rejection.code(), "read_beyond_last_message");
}

#[test]
fn only_internal_participants_have_read_markers() {
    let mut world = three_messages();
    let carol = world.carol;
    assert_eq!(
        world.by(carol, read(1, NOBODY)),
        Err(ConversationRejection::NotAParticipant)
    );
    assert_eq!(
        world.system(read(1, NOBODY)),
        Err(ConversationRejection::UsersOnly)
    );
}

#[test]
fn the_lines_holder_reads_an_external_conversation_others_do_not() {
    let mut world = World::external();
    world.inbound("hi").unwrap();
    let (alice, bob) = (world.alice, world.bob);
    world.by(alice, read(1, HOLDER)).unwrap();
    assert_eq!(
        world.by(bob, read(1, NOBODY)),
        Err(ConversationRejection::NotAParticipant)
    );
}

#[test]
fn any_team_member_reads_an_inbox_conversation_without_holding_it() {
    let mut world = World::in_inbox();
    world.inbound("hi").unwrap();
    let (bob, carol) = (world.bob, world.carol);
    world.by(bob, read(1, TEAM)).unwrap();
    assert_eq!(
        world.by(carol, read(1, NOBODY)),
        Err(ConversationRejection::NotAnInboxMember)
    );
}

#[test]
fn read_receipts_name_the_readers_but_not_the_author() {
    let mut world = three_messages();
    let (alice, bob) = (world.alice, world.bob);
    let first = world
        .state()
        .messages
        .iter()
        .find(|(_, m)| m.seq == 1)
        .map(|(id, _)| *id)
        .unwrap();
    assert!(world.state().read_by(&first).is_empty());
    world.by(alice, read(3, NOBODY)).unwrap();
    assert!(
        world.state().read_by(&first).is_empty(),
        "the author is no reader"
    );
    world.by(bob, read(1, NOBODY)).unwrap();
    assert_eq!(world.state().read_by(&first), [bob]);
}
