use super::{types, World, NOBODY, TEAM};
use crate::aggregate::Rejection;
use crate::conversation::{CallMedia, ConversationCommand, ConversationRejection};
use crate::ids::CallId;

fn start(
    call: CallId,
    media: CallMedia,
    facts: crate::conversation::ActorFacts,
) -> ConversationCommand {
    ConversationCommand::StartCall { call, media, facts }
}

#[test]
fn a_participant_starts_and_another_ends_a_call() {
    let mut world = World::direct();
    let (alice, bob, call) = (world.alice, world.bob, CallId::random());
    assert_eq!(
        types(
            &world
                .by(alice, start(call, CallMedia::Video, NOBODY))
                .unwrap()
        ),
        ["CallStarted"]
    );
    world
        .by(
            bob,
            ConversationCommand::EndCall {
                call,
                facts: NOBODY,
            },
        )
        .unwrap();
    let record = world.state().call(&call).unwrap();
    assert_eq!((record.media, record.started_by), (CallMedia::Video, alice));
    assert!(record.ended_at_ms.is_some());
    assert_eq!(
        world.by(
            bob,
            ConversationCommand::EndCall {
                call,
                facts: NOBODY
            }
        ),
        Ok(vec![]),
        "already ended"
    );
}

#[test]
fn a_non_participant_cannot_start_a_call() {
    let mut world = World::direct();
    let carol = world.carol;
    assert_eq!(
        world.by(carol, start(CallId::random(), CallMedia::Audio, NOBODY)),
        Err(ConversationRejection::NotAParticipant)
    );
}

#[test]
fn in_an_inbox_only_the_assignee_calls_the_customer() {
    let mut world = World::in_inbox();
    let (alice, bob) = (world.alice, world.bob);
    world
        .by(alice, ConversationCommand::AssignToMe { facts: TEAM })
        .unwrap();
    assert_eq!(
        world.by(bob, start(CallId::random(), CallMedia::Audio, TEAM)),
        Err(ConversationRejection::NotAssignedToYou)
    );
    world
        .by(alice, start(CallId::random(), CallMedia::Audio, TEAM))
        .unwrap();
}

#[test]
fn a_call_id_names_one_call() {
    let mut world = World::direct();
    let (alice, bob, call) = (world.alice, world.bob, CallId::random());
    world
        .by(alice, start(call, CallMedia::Audio, NOBODY))
        .unwrap();
    assert_eq!(
        world.by(alice, start(call, CallMedia::Audio, NOBODY)),
        Ok(vec![]),
        "a retry"
    );
    let rejection = world
        .by(bob, start(call, CallMedia::Video, NOBODY))
        .unwrap_err();
    assert_eq!(rejection, ConversationRejection::DuplicateCallId { call });
    assert_eq!(rejection.code(), "duplicate_call_id");
}

#[test]
fn only_a_started_call_ends() {
    let mut world = World::direct();
    let (alice, call) = (world.alice, CallId::random());
    assert_eq!(
        world.by(
            alice,
            ConversationCommand::EndCall {
                call,
                facts: NOBODY
            }
        ),
        Err(ConversationRejection::NoSuchCall { call })
    );
}
