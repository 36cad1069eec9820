use std::collections::BTreeSet;

use super::{post, types, World, HOLDER, NOBODY};
use crate::aggregate::Rejection;
use crate::conversation::{
    AttachmentRef, ConversationCommand, ConversationEvent, ConversationRejection, MessagePosted,
    SmsRequested,
};
use crate::ids::{AttachmentId, MessageId};
use crate::limits::{MAX_INTERNAL_TEXT_CHARS, MAX_SMS_TEXT_CHARS};

#[test]
fn a_participant_posts_in_a_direct_conversation() {
    let mut world = World::direct();
    let alice = world.alice;
    let events = world.by(alice, post("hi 👋", None, NOBODY)).unwrap();
    let [ConversationEvent::MessagePosted(MessagePosted {
        seq, author, text, ..
    })] = &events[..]
    else {
        panic!("one message, no SMS: {events:?}")
    };
    assert_eq!(
        (*seq, *author, text.as_plain().unwrap()),
        (1, alice, "hi 👋")
    );
    assert_eq!(world.state().last_seq(), 1);
}

#[test]
fn a_non_participant_cannot_post() {
    let mut world = World::direct();
    let carol = world.carol;
    let rejection = world.by(carol, post("hi", None, NOBODY)).unwrap_err();
    assert_eq!(rejection, ConversationRejection::NotAParticipant);
    assert_eq!(rejection.code(), "not_a_participant");
}

#[test]
fn the_system_does_not_post() {
    let mut world = World::direct();
    assert_eq!(
        world.system(post("hi", None, NOBODY)),
        Err(ConversationRejection::UsersOnly)
    );
}

#[test]
fn messages_are_numbered_in_order() {
    let mut world = World::channel();
    let (alice, bob) = (world.alice, world.bob);
    world.by(alice, post("one", None, NOBODY)).unwrap();
    world.by(bob, post("two", None, NOBODY)).unwrap();
    let seqs: Vec<u64> = world
        .conversation
        .log
        .iter()
        .filter_map(|e| match e {
            ConversationEvent::MessagePosted(m) => Some(m.seq),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, [1, 2]);
}

#[test]
fn an_empty_message_is_refused() {
    let mut world = World::direct();
    let alice = world.alice;
    assert_eq!(
        world.by(alice, post("  ", None, NOBODY)),
        Err(ConversationRejection::EmptyMessage)
    );
}

#[test]
fn an_attachment_alone_is_a_message() {
    let mut world = World::direct();
    let alice = world.alice;
    let command = ConversationCommand::PostMessage {
        message_id: MessageId::random(),
        text: String::new(),
        attachments: vec![AttachmentRef {
            id: AttachmentId::random(),
            mime: "application/pdf".into(),
            size_bytes: 3_000_000,
        }],
        from: None,
        facts: NOBODY,
        opted_out: BTreeSet::new(),
    };
    world.by(alice, command).unwrap();
}

#[test]
fn internal_text_may_be_4000_characters_sms_1600() {
    let mut world = World::direct();
    let alice = world.alice;
    world
        .by(
            alice,
            post(&"😀".repeat(MAX_INTERNAL_TEXT_CHARS), None, NOBODY),
        )
        .unwrap();
    assert_eq!(
        world
            .by(
                alice,
                post(&"a".repeat(MAX_INTERNAL_TEXT_CHARS + 1), None, NOBODY)
            )
            .unwrap_err()
            .code(),
        "too_long"
    );

    let mut world = World::external();
    let from = Some(world.sender(true, true));
    world
        .by(
            alice,
            post(&"😀".repeat(MAX_SMS_TEXT_CHARS), from.clone(), HOLDER),
        )
        .unwrap();
    assert_eq!(
        world
            .by(
                alice,
                post(&"a".repeat(MAX_SMS_TEXT_CHARS + 1), from, HOLDER)
            )
            .unwrap_err()
            .code(),
        "too_long"
    );
}

#[test]
fn posting_in_an_external_conversation_requests_its_sms() {
    let mut world = World::external();
    let alice = world.alice;
    let events = world
        .by(
            alice,
            post(
                "Your order is ready",
                Some(world.sender(true, true)),
                HOLDER,
            ),
        )
        .unwrap();
    assert_eq!(types(&events), ["MessagePosted", "SmsRequested"]);
    let ConversationEvent::SmsRequested(SmsRequested {
        to,
        from,
        message_id,
        ..
    }) = &events[1]
    else {
        unreachable!()
    };
    assert_eq!((to, from), (&world.their, &world.our));
    assert_eq!(
        world.state().delivery(message_id, to),
        Some(&crate::conversation::DeliveryStatus::Requested)
    );
}

#[test]
fn only_holders_of_the_line_post_in_its_external_conversations() {
    let mut world = World::external();
    let bob = world.bob;
    assert_eq!(
        world.by(bob, post("hi", Some(world.sender(true, false)), NOBODY)),
        Err(ConversationRejection::NotAParticipant)
    );
}

#[test]
fn texting_needs_a_from_number() {
    let mut world = World::external();
    let alice = world.alice;
    assert_eq!(
        world.by(alice, post("hi", None, HOLDER)),
        Err(ConversationRejection::FromNumberRequired)
    );
}

#[test]
fn the_from_number_is_the_conversations_line() {
    let mut world = World::external();
    let alice = world.alice;
    let mut other_line = world.sender(true, true);
    other_line.number = crate::testkit::number("+16135550199");
    assert_eq!(
        world.by(alice, post("hi", Some(other_line), HOLDER)),
        Err(ConversationRejection::WrongFromNumber {
            expected: world.our.clone()
        })
    );
}

#[test]
fn the_from_number_must_be_sms_registered() {
    let mut world = World::external();
    let alice = world.alice;
    let rejection = world
        .by(alice, post("hi", Some(world.sender(false, true)), HOLDER))
        .unwrap_err();
    assert_eq!(rejection, ConversationRejection::FromNumberNotSmsRegistered);
    assert_eq!(rejection.code(), "from_number_not_sms_registered");
}

#[test]
fn a_group_message_goes_by_sms_to_every_external_member() {
    let mut world = World::group();
    let bob = world.bob;
    let events = world
        .by(
            bob,
            post("Meeting at 3", Some(world.sender(true, true)), NOBODY),
        )
        .unwrap();
    assert_eq!(
        types(&events),
        ["MessagePosted", "SmsRequested", "SmsRequested"]
    );
    let recipients: BTreeSet<_> = events
        .iter()
        .filter_map(|e| match e {
            ConversationEvent::SmsRequested(r) => Some(r.to.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(recipients, [world.their.clone(), world.vendor()].into());
}

#[test]
fn a_group_member_without_the_groups_line_cannot_text_through_it() {
    let mut world = World::group();
    let bob = world.bob;
    assert_eq!(
        world.by(bob, post("hi", Some(world.sender(true, false)), NOBODY)),
        Err(ConversationRejection::FromNumberNotAssignedToYou)
    );
}

#[test]
fn a_non_member_cannot_post_in_a_group() {
    let mut world = World::group();
    let carol = world.carol;
    assert_eq!(
        world.by(carol, post("hi", Some(world.sender(true, true)), NOBODY)),
        Err(ConversationRejection::NotAParticipant)
    );
}

#[test]
fn group_members_who_opted_out_get_no_sms() {
    let mut world = World::group();
    let alice = world.alice;
    let command = ConversationCommand::PostMessage {
        message_id: MessageId::random(),
        text: "hi".into(),
        attachments: vec![],
        from: Some(world.sender(true, true)),
        facts: NOBODY,
        opted_out: [world.vendor()].into(),
    };
    let events = world.by(alice, command).unwrap();
    assert_eq!(events.len(), 3);
    assert!(events.iter().any(|e| matches!(e,
        ConversationEvent::SmsRequested(r) if r.to == world.their)));
    assert!(events.iter().any(|e| matches!(e,
        ConversationEvent::SmsWithheld(w) if w.to == world.vendor())));
}

#[test]
fn nothing_is_texted_to_a_customer_who_opted_out() {
    let mut world = World::external();
    world.inbound("STOP").unwrap();
    let alice = world.alice;
    let rejection = world
        .by(
            alice,
            post("one more thing", Some(world.sender(true, true)), HOLDER),
        )
        .unwrap_err();
    assert_eq!(
        rejection,
        ConversationRejection::RecipientOptedOut {
            number: world.their.clone()
        }
    );
    assert_eq!(rejection.code(), "recipient_opted_out");
}

#[test]
fn sms_attachments_are_resized_images() {
    let mut world = World::external();
    let (alice, from) = (world.alice, world.sender(true, true));
    let with = |mime: &str, size_bytes: u64| ConversationCommand::PostMessage {
        message_id: MessageId::random(),
        text: String::new(),
        attachments: vec![AttachmentRef {
            id: AttachmentId::random(),
            mime: mime.into(),
            size_bytes,
        }],
        from: Some(from.clone()),
        facts: HOLDER,
        opted_out: BTreeSet::new(),
    };
    world.by(alice, with("image/jpeg", 500_000)).unwrap();
    assert_eq!(
        world
            .by(alice, with("application/pdf", 500))
            .unwrap_err()
            .code(),
        "unsupported_mms_type"
    );
    assert_eq!(
        world
            .by(alice, with("image/png", 5_000_000))
            .unwrap_err()
            .code(),
        "attachment_too_large"
    );
}

#[test]
fn a_retried_post_is_written_once() {
    let mut world = World::direct();
    let (alice, bob) = (world.alice, world.bob);
    let command = post("hi", None, NOBODY);
    world.by(alice, command.clone()).unwrap();
    assert_eq!(world.by(alice, command.clone()), Ok(vec![]));
    let ConversationCommand::PostMessage { message_id, .. } = command else {
        unreachable!()
    };
    assert_eq!(
        world.by(bob, command),
        Err(ConversationRejection::DuplicateMessageId { message_id })
    );
    assert_eq!(world.state().last_seq(), 1);
}
