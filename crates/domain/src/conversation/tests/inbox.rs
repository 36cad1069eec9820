use super::{post, types, World, HOLDER, NOBODY, TEAM};
use crate::aggregate::{Aggregate, Rejection};
use crate::command_meta::{CommandMeta, Role};
use crate::conversation::{
    ConversationAssigned, ConversationCommand, ConversationEvent, ConversationRejection,
    InboxStatus,
};
use crate::ids::UserId;

fn status(world: &World) -> InboxStatus {
    world.state().inbox().unwrap().status
}

fn assign_to_me() -> ConversationCommand {
    ConversationCommand::AssignToMe { facts: TEAM }
}

fn transfer(to: UserId, to_is_inbox_member: bool) -> ConversationCommand {
    ConversationCommand::Transfer {
        to,
        to_is_inbox_member,
        facts: TEAM,
    }
}

/// An inbox conversation Alice holds.
fn held_by_alice() -> World {
    let mut world = World::in_inbox();
    let alice = world.alice;
    world.by(alice, assign_to_me()).unwrap();
    world
}

#[test]
fn an_inbound_text_to_an_inbox_number_lands_unassigned() {
    let world = World::in_inbox();
    assert_eq!(world.state().inbox().unwrap().inbox, world.inbox);
    assert_eq!(status(&world), InboxStatus::Unassigned);
    assert!(status(&world).is_open());
}

#[test]
fn a_team_member_assigns_an_unassigned_conversation_to_themself() {
    let world = held_by_alice();
    assert_eq!(status(&world), InboxStatus::Assigned(world.alice));
    assert_eq!(world.state().assignee(), Some(world.alice));
}

#[test]
fn assigning_twice_to_yourself_writes_nothing() {
    let mut world = held_by_alice();
    let alice = world.alice;
    assert_eq!(world.by(alice, assign_to_me()), Ok(vec![]));
}

#[test]
fn only_the_team_takes_inbox_conversations() {
    let mut world = World::in_inbox();
    let alice = world.alice;
    let rejection = world
        .by(alice, ConversationCommand::AssignToMe { facts: NOBODY })
        .unwrap_err();
    assert_eq!(rejection, ConversationRejection::NotAnInboxMember);
    assert_eq!(rejection.code(), "not_an_inbox_member");
}

#[test]
fn nobody_takes_a_conversation_assigned_to_someone_else() {
    let mut world = held_by_alice();
    let (alice, bob) = (world.alice, world.bob);
    let rejection = world.by(bob, assign_to_me()).unwrap_err();
    assert_eq!(
        rejection,
        ConversationRejection::AlreadyAssigned { to: alice }
    );
    assert_eq!(rejection.code(), "already_assigned");
    assert_eq!(status(&world), InboxStatus::Assigned(alice));
}

#[test]
fn an_admin_takes_a_conversation_assigned_to_someone_else() {
    let mut world = held_by_alice();
    let (admin, alice) = (world.admin, world.alice);
    let events = world.by(admin, assign_to_me()).unwrap();
    assert!(
        matches!(&events[..], [ConversationEvent::ConversationAssigned(ConversationAssigned {
        to, taken_from: Some(from), ..
    })] if *to == admin && *from == alice)
    );
    assert_eq!(status(&world), InboxStatus::Assigned(admin));
}

#[test]
fn of_many_racing_assign_to_me_exactly_one_wins() {
    let mut world = World::in_inbox();
    let racers: Vec<UserId> = (0..1000).map(|_| UserId::random()).collect();
    let mut winners = Vec::new();
    for &racer in &racers {
        match world.by(racer, assign_to_me()) {
            Ok(events) => {
                assert_eq!(events.len(), 1);
                winners.push(racer);
            }
            Err(rejection) => assert_eq!(
                rejection,
                ConversationRejection::AlreadyAssigned { to: racers[0] }
            ),
        }
    }
    assert_eq!(winners, [racers[0]]);
}

#[test]
fn taking_a_done_conversation_reopens_it() {
    let mut world = held_by_alice();
    let (alice, bob) = (world.alice, world.bob);
    world
        .by(alice, ConversationCommand::MarkDone { facts: TEAM })
        .unwrap();
    world.by(bob, assign_to_me()).unwrap();
    assert_eq!(status(&world), InboxStatus::Assigned(bob));
}

#[test]
fn conversations_outside_inboxes_are_not_assigned() {
    let mut world = World::external();
    let alice = world.alice;
    assert_eq!(
        world.by(alice, assign_to_me()),
        Err(ConversationRejection::NotAnInboxConversation)
    );
}

#[test]
fn the_system_does_not_take_conversations() {
    let mut world = World::in_inbox();
    assert_eq!(
        world.system(assign_to_me()),
        Err(ConversationRejection::UsersOnly)
    );
}

#[test]
fn only_the_assignee_replies() {
    let mut world = World::in_inbox();
    let (alice, bob) = (world.alice, world.bob);
    // The inbox's number is nobody's line: being the assignee is what lets one text from it.
    let from = Some(world.sender(true, false));
    let rejection = world.by(alice, post("hi", from.clone(), TEAM)).unwrap_err();
    assert_eq!(rejection, ConversationRejection::NotAssignedToYou);
    assert_eq!(rejection.code(), "not_assigned_to_you");

    world.by(alice, assign_to_me()).unwrap();
    let events = world.by(alice, post("On it!", from.clone(), TEAM)).unwrap();
    assert_eq!(types(&events), ["MessagePosted", "SmsRequested"]);
    assert_eq!(
        world.by(bob, post("me too", from, TEAM)),
        Err(ConversationRejection::NotAssignedToYou)
    );
}

#[test]
fn an_assignee_removed_from_the_team_can_no_longer_reply() {
    let mut world = held_by_alice();
    let alice = world.alice;
    assert_eq!(
        world.by(alice, post("hi", Some(world.sender(true, false)), HOLDER)),
        Err(ConversationRejection::NotAnInboxMember)
    );
}

#[test]
fn the_team_sees_an_inbox_conversation_and_nobody_else() {
    let world = held_by_alice();
    assert!(world.state().can_view(world.bob, &TEAM));
    assert!(!world.state().can_view(world.bob, &HOLDER));
    assert!(world.state().can_write(world.alice, &TEAM));
    assert!(!world.state().can_write(world.bob, &TEAM));
}

#[test]
fn the_assignee_transfers_to_another_team_member() {
    let mut world = held_by_alice();
    let (alice, bob) = (world.alice, world.bob);
    let events = world.by(alice, transfer(bob, true)).unwrap();
    assert!(
        matches!(&events[..], [ConversationEvent::ConversationTransferred(t)]
        if t.from == Some(alice) && t.to == bob)
    );
    assert_eq!(status(&world), InboxStatus::Assigned(bob));
    assert_eq!(
        world.by(bob, transfer(bob, true)),
        Ok(vec![]),
        "already theirs"
    );
}

#[test]
fn transfers_go_to_team_members_only() {
    let mut world = held_by_alice();
    let (alice, carol) = (world.alice, world.carol);
    let rejection = world.by(alice, transfer(carol, false)).unwrap_err();
    assert_eq!(
        rejection,
        ConversationRejection::TargetNotAnInboxMember { user: carol }
    );
    assert_eq!(rejection.code(), "target_not_an_inbox_member");
}

#[test]
fn only_the_assignee_or_an_admin_transfers() {
    let mut world = held_by_alice();
    let (admin, bob, carol) = (world.admin, world.bob, world.carol);
    assert_eq!(
        world.by(bob, transfer(carol, true)),
        Err(ConversationRejection::NotAssignedToYou)
    );
    world.by(admin, transfer(carol, true)).unwrap();
    assert_eq!(status(&world), InboxStatus::Assigned(carol));
    // An admin also dispatches unassigned conversations; a member cannot.
    let mut world = World::in_inbox();
    let (admin, bob, carol) = (world.admin, world.bob, world.carol);
    assert_eq!(
        world.by(bob, transfer(carol, true)),
        Err(ConversationRejection::NotAssignedToYou)
    );
    world.by(admin, transfer(carol, true)).unwrap();
}

#[test]
fn returning_to_the_inbox_unassigns_and_ends_the_right_to_reply() {
    let mut world = held_by_alice();
    let alice = world.alice;
    let back = ConversationCommand::ReturnToInbox { facts: TEAM };
    world.by(alice, back.clone()).unwrap();
    assert_eq!(status(&world), InboxStatus::Unassigned);
    assert_eq!(
        world.by(alice, post("hi", Some(world.sender(true, false)), TEAM)),
        Err(ConversationRejection::NotAssignedToYou)
    );
    assert_eq!(world.by(alice, back), Ok(vec![]), "already unassigned");
}

#[test]
fn only_the_assignee_or_an_admin_returns_a_conversation() {
    let mut world = held_by_alice();
    let (admin, bob) = (world.admin, world.bob);
    let back = ConversationCommand::ReturnToInbox { facts: TEAM };
    assert_eq!(
        world.by(bob, back.clone()),
        Err(ConversationRejection::NotAssignedToYou)
    );
    world.by(admin, back).unwrap();
    assert_eq!(status(&world), InboxStatus::Unassigned);
}

#[test]
fn the_assignee_marks_a_conversation_done() {
    let mut world = held_by_alice();
    let alice = world.alice;
    let done = ConversationCommand::MarkDone { facts: TEAM };
    world.by(alice, done.clone()).unwrap();
    assert_eq!(status(&world), InboxStatus::Done);
    assert!(!status(&world).is_open());
    assert_eq!(world.by(alice, done), Ok(vec![]), "already done");
}

#[test]
fn only_the_assignee_or_an_admin_marks_done() {
    let mut world = held_by_alice();
    let (admin, bob) = (world.admin, world.bob);
    let done = ConversationCommand::MarkDone { facts: TEAM };
    assert_eq!(
        world.by(bob, done.clone()),
        Err(ConversationRejection::NotAssignedToYou)
    );
    world.by(admin, done).unwrap();
    assert_eq!(status(&world), InboxStatus::Done);
}

#[test]
fn the_system_may_close_conversations_like_an_admin() {
    let mut world = held_by_alice();
    world
        .system(ConversationCommand::MarkDone { facts: NOBODY })
        .unwrap();
    assert_eq!(status(&world), InboxStatus::Done);
}

#[test]
fn the_role_in_the_command_decides_admin_powers() {
    let world = held_by_alice();
    let bob_as_admin = CommandMeta::user(world.org, world.bob, Role::Admin, 10);
    assert!(world
        .state()
        .decide(&bob_as_admin.issue(assign_to_me()))
        .is_ok());
}
