//! The state keeps a bounded window of messages: the recent ones and those whose SMS
//! await a delivery. Every test here runs through the harness, which checks after each
//! command that replaying the log from `Default`, and a snapshot, equal the live state.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::{post, World, HOLDER, NOBODY};
use crate::aggregate::{Aggregate, Rejection};
use crate::command_meta::CommandMeta;
use crate::conversation::{
    Author, Conversation, ConversationCommand, ConversationEvent, ConversationKind,
    ConversationRejection, ConversationStarted, DeliveryStatus, DeliveryUpdated, InboundReceived,
    MessagePosted, SmsRequested,
};
use crate::ids::{ConversationId, MessageId, OrgId, UserId};
use crate::limits::{MAX_PENDING_DELIVERY_MESSAGES, PENDING_DELIVERY_MAX_AGE_MS, RECENT_MESSAGES};
use crate::phone_number::PhoneNumber;
use crate::testkit::{number, through_bincode};

const RECENT: u64 = RECENT_MESSAGES as u64;

fn report(message_id: MessageId, to: &PhoneNumber, status: DeliveryStatus) -> ConversationCommand {
    ConversationCommand::RecordDelivery {
        message_id,
        to: to.clone(),
        status,
        carrier_message_id: None,
        error_code: None,
    }
}

fn post_as(message_id: MessageId, text: &str) -> ConversationCommand {
    ConversationCommand::PostMessage {
        message_id,
        text: text.into(),
        attachments: vec![],
        from: None,
        facts: NOBODY,
        opted_out: BTreeSet::new(),
    }
}

/// Alice texts the customer from her line; the id of her message, whose SMS is Requested.
fn text_customer(world: &mut World) -> MessageId {
    let alice = world.alice;
    let events = world
        .by(alice, post("hi", Some(world.sender(true, true)), HOLDER))
        .unwrap();
    let [ConversationEvent::MessagePosted(posted), ConversationEvent::SmsRequested(_)] =
        &events[..]
    else {
        panic!("{events:?}")
    };
    posted.message_id
}

/// `count` texts from the customer; they never await a delivery.
fn texts_from_customer(world: &mut World, count: u64) {
    for _ in 0..count {
        world.inbound("ok").unwrap();
    }
}

/// The harness replays the whole log after every step, which is quadratic: the posts
/// here go straight to the state and replay and snapshots are checked every
/// `RECENT_MESSAGES` posts, then the harness takes over for the commands that follow.
#[test]
fn a_long_conversation_keeps_only_its_recent_messages() {
    let mut world = World::direct();
    let (alice, bob) = (world.alice, world.bob);
    let mut state = world.state().clone();
    let mut log = world.conversation.log.clone();
    let mut ids = Vec::new();
    for i in 1..=10 * RECENT {
        let id = MessageId::random();
        let author = if i % 2 == 1 { alice } else { bob };
        world.now += 1;
        let meta = CommandMeta::user(world.org, author, world.role_of(author), world.now);
        log.extend(state.handle(&meta.issue(post_as(id, "hi"))).unwrap());
        ids.push(id);
        assert!(state.messages.len() <= RECENT_MESSAGES);
        if i % RECENT == 0 {
            assert_eq!(
                Conversation::replay(&log),
                state,
                "replay equals live state"
            );
            assert_eq!(through_bincode(&state), state, "snapshot equals live state");
        }
    }
    world.conversation.state = state;
    world.conversation.log = log;
    let state = world.state();
    assert_eq!(state.last_seq(), 10 * RECENT);
    assert_eq!(state.messages.len(), RECENT_MESSAGES);
    assert_eq!(state.pruned_through_seq(), 9 * RECENT);
    let oldest_kept = ids.len() - RECENT_MESSAGES;
    assert!(ids[..oldest_kept]
        .iter()
        .all(|id| state.message(id).is_none()));
    assert_eq!(
        state.message(&ids[oldest_kept]).unwrap().seq,
        9 * RECENT + 1
    );

    // Read markers need only the last seq: exact for old and new messages alike.
    let newest_by_alice = ids[ids.len() - 2];
    world.by(bob, post_as(MessageId::random(), "x")).unwrap();
    assert_eq!(world.by(bob, read(3)).map(|e| e.len()), Ok(1));
    assert_eq!(world.state().read_up_to(bob), 3);
    assert_eq!(world.by(bob, read(2)), Ok(vec![]));
    let last = world.state().last_seq();
    assert_eq!(
        world.by(bob, read(last + 1)),
        Err(ConversationRejection::ReadBeyondLastMessage { last })
    );
    world.by(bob, read(last)).unwrap();
    assert_eq!(world.state().read_by(&newest_by_alice), [bob]);
    assert!(
        world.state().read_by(&ids[0]).is_empty(),
        "receipts of older messages are the read models' job"
    );

    // Within the window a reused id is a retry of its author, or refused.
    assert_eq!(world.by(alice, post_as(newest_by_alice, "hi")), Ok(vec![]));
    assert_eq!(
        world.by(bob, post_as(newest_by_alice, "hi")),
        Err(ConversationRejection::DuplicateMessageId {
            message_id: newest_by_alice
        })
    );
}

fn read(up_to: u64) -> ConversationCommand {
    ConversationCommand::MarkRead {
        up_to,
        facts: NOBODY,
    }
}

#[test]
fn a_pending_sms_outlives_the_recent_window_until_it_is_final() {
    let mut world = World::external();
    let their = world.their.clone();
    let id = text_customer(&mut world);
    texts_from_customer(&mut world, RECENT + 10);
    assert!(world.state().pruned_through_seq() > 0);
    assert_eq!(world.state().messages.len(), RECENT_MESSAGES + 1);
    assert_eq!(world.state().message(&id).map(|m| m.seq), Some(1));

    let sent = world
        .system(report(id, &their, DeliveryStatus::Sent))
        .unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        world.state().delivery(&id, &their),
        Some(&DeliveryStatus::Sent),
        "a status that is not final keeps it waiting"
    );

    let delivered = world
        .system(report(id, &their, DeliveryStatus::Delivered))
        .unwrap();
    assert_eq!(delivered.len(), 1);
    assert_eq!(world.state().message(&id), None, "once final it is let go");
    assert_eq!(world.state().messages.len(), RECENT_MESSAGES);
}

#[test]
fn a_late_callback_for_a_message_let_go_writes_nothing() {
    let mut world = World::external();
    let their = world.their.clone();
    let id = text_customer(&mut world);
    world
        .system(report(id, &their, DeliveryStatus::Delivered))
        .unwrap();
    texts_from_customer(&mut world, RECENT);
    assert_eq!(world.state().message(&id), None);
    for status in [
        DeliveryStatus::Sent,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed { reason: "x".into() },
    ] {
        assert_eq!(world.system(report(id, &their, status)), Ok(vec![]));
    }
    assert_eq!(
        world.by(world.alice, report(id, &their, DeliveryStatus::Sent)),
        Err(ConversationRejection::SystemOnly),
        "only the system reports, window or not"
    );
}

#[test]
fn an_unknown_message_is_refused_while_none_was_let_go() {
    let mut world = World::external();
    let their = world.their.clone();
    text_customer(&mut world);
    texts_from_customer(&mut world, RECENT - 1);
    assert_eq!(world.state().pruned_through_seq(), 0);
    let unknown = MessageId::random();
    let rejection = world
        .system(report(unknown, &their, DeliveryStatus::Sent))
        .unwrap_err();
    assert_eq!(
        rejection,
        ConversationRejection::NoSuchSmsRequest {
            message_id: unknown,
            to: their
        }
    );
    assert_eq!(rejection.code(), "no_such_sms_request");
}

#[test]
fn a_message_in_the_window_without_that_sms_is_still_refused() {
    let mut world = World::external();
    let their = world.their.clone();
    let stranger = number("+19995550000");
    let pending = text_customer(&mut world);
    texts_from_customer(&mut world, RECENT + 1);
    assert!(world.state().pruned_through_seq() > 0);
    assert_eq!(
        world.system(report(pending, &stranger, DeliveryStatus::Sent)),
        Err(ConversationRejection::NoSuchSmsRequest {
            message_id: pending,
            to: stranger
        })
    );
    let events = world.inbound("one more").unwrap();
    let [ConversationEvent::InboundReceived(inbound)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(
        world.system(report(inbound.message_id, &their, DeliveryStatus::Sent)),
        Err(ConversationRejection::NoSuchSmsRequest {
            message_id: inbound.message_id,
            to: their
        }),
        "an inbound text has no SMS of ours"
    );
}

#[test]
fn a_pending_sms_is_let_go_after_a_week() {
    let mut world = World::external();
    let their = world.their.clone();
    let id = text_customer(&mut world);
    let posted_at = world.now;
    texts_from_customer(&mut world, RECENT);
    assert!(world.state().message(&id).is_some());

    // The next command is issued at posted_at + max age: still waiting.
    world.now = posted_at + PENDING_DELIVERY_MAX_AGE_MS - 1;
    world.inbound("still there?").unwrap();
    assert!(world.state().message(&id).is_some());
    // One millisecond later it is too old.
    world.inbound("hello?").unwrap();
    assert_eq!(world.state().message(&id), None);
    assert_eq!(world.state().messages.len(), RECENT_MESSAGES);
    assert_eq!(
        world.system(report(id, &their, DeliveryStatus::Delivered)),
        Ok(vec![])
    );
}

#[test]
fn a_recent_pending_sms_is_kept_however_old() {
    let mut world = World::external();
    let their = world.their.clone();
    let id = text_customer(&mut world);
    world.now += 10 * PENDING_DELIVERY_MAX_AGE_MS;
    texts_from_customer(&mut world, RECENT - 1);
    assert!(world.state().message(&id).is_some());
    assert_eq!(
        world
            .system(report(id, &their, DeliveryStatus::Delivered))
            .map(|e| e.len()),
        Ok(1)
    );
}

/// Without the harness (its replay after every step is quadratic), then checked the same
/// way once at the end.
#[test]
fn at_most_so_many_older_messages_wait_for_their_delivery() {
    let mut world = World::external();
    let (org, alice, their) = (world.org, world.alice, world.their.clone());
    let from = world.sender(true, true);
    let mut state = world.state().clone();
    let mut log = world.conversation.log.clone();
    let mut ids = Vec::new();
    let total = RECENT_MESSAGES + MAX_PENDING_DELIVERY_MESSAGES + 10;
    for _ in 0..total {
        world.now += 1;
        let meta = CommandMeta::user(org, alice, world.role_of(alice), world.now);
        let command = post("hi", Some(from.clone()), HOLDER);
        let events = state.handle(&meta.issue(command)).unwrap();
        let ConversationEvent::MessagePosted(posted) = &events[0] else {
            panic!("{events:?}")
        };
        ids.push(posted.message_id);
        log.extend(events);
    }
    assert_eq!(
        state.messages.len(),
        RECENT_MESSAGES + MAX_PENDING_DELIVERY_MESSAGES
    );
    assert!(ids[..10].iter().all(|id| state.message(id).is_none()));
    assert!(ids[10..].iter().all(|id| state.message(id).is_some()));
    assert_eq!(state.pruned_through_seq(), 10);
    assert_eq!(Conversation::replay(&log), state);
    assert_eq!(through_bincode(&state), state);

    let late = CommandMeta::system(org, world.now + 1).issue(report(
        ids[0],
        &their,
        DeliveryStatus::Delivered,
    ));
    assert_eq!(state.decide(&late), Ok(vec![]));
    let waiting = CommandMeta::system(org, world.now + 1).issue(report(
        ids[10],
        &their,
        DeliveryStatus::Delivered,
    ));
    assert_eq!(state.decide(&waiting).map(|e| e.len()), Ok(1));
}

/// What the state of one long External conversation weighs once encoded as a snapshot.
fn snapshot_bytes(messages: u64, deliver: impl Fn(u64) -> Option<DeliveryStatus>) -> usize {
    let org = OrgId::random();
    let (our, their) = (number("+16135550100"), number("+16135550142"));
    let alice = UserId::random();
    let mut state = Conversation::default();
    state.apply(&ConversationEvent::ConversationStarted(
        ConversationStarted {
            id: ConversationId::external(org, &our, &their),
            org,
            kind: ConversationKind::External {
                our: our.clone(),
                their: their.clone(),
            },
            by: crate::command_meta::Actor::System,
            at_ms: 1_700_000_000_000,
        },
    ));
    for seq in 1..=messages {
        // A message every ten seconds: 100,000 of them span twelve days.
        let at_ms = 1_700_000_000_000 + seq * 10_000;
        let message_id = MessageId::random();
        if seq % 3 == 0 {
            state.apply(&ConversationEvent::InboundReceived(InboundReceived {
                message_id,
                seq,
                from: their.clone(),
                text: crate::Text::unsealed("Is my order ready?"),
                media: vec![],
                at_ms,
            }));
            continue;
        }
        state.apply(&ConversationEvent::MessagePosted(MessagePosted {
            message_id,
            seq,
            author: alice,
            text: crate::Text::unsealed("It ships tomorrow."),
            attachments: vec![],
            at_ms,
        }));
        state.apply(&ConversationEvent::SmsRequested(SmsRequested {
            message_id,
            to: their.clone(),
            from: our.clone(),
            at_ms,
        }));
        if let Some(status) = deliver(seq) {
            state.apply(&ConversationEvent::DeliveryUpdated(DeliveryUpdated {
                message_id,
                to: their.clone(),
                status,
                carrier_message_id: Some(format!("SM{seq:032}")),
                error_code: None,
                at_ms: at_ms + 2_000,
            }));
        }
    }
    assert_eq!(state.last_seq(), messages);
    assert!(state.messages.len() <= RECENT_MESSAGES + MAX_PENDING_DELIVERY_MESSAGES);
    let bytes = bincode::serde::encode_to_vec(&state, bincode::config::standard()).unwrap();
    assert_eq!(through_bincode(&state), state);
    bytes.len()
}

#[test]
fn the_snapshot_of_a_100k_message_conversation_is_small() {
    // Every SMS delivered, except one in a thousand whose carrier stops at Sent.
    let bytes = snapshot_bytes(100_000, |seq| {
        Some(if seq % 1000 == 1 {
            DeliveryStatus::Sent
        } else {
            DeliveryStatus::Delivered
        })
    });
    println!("snapshot of 100,000 messages: {bytes} bytes");
    assert!(bytes < 64 * 1024, "{bytes} bytes");
}

#[test]
fn the_snapshot_stays_bounded_when_no_delivery_is_ever_final() {
    let bytes = snapshot_bytes(100_000, |_| Some(DeliveryStatus::Sent));
    println!("snapshot of 100,000 messages, none delivered: {bytes} bytes");
    assert!(bytes < 256 * 1024, "{bytes} bytes");
}

/// One step of a long conversation: Alice texts, the customer texts, the carrier reports
/// on the `n`th message texted so far, or time passes.
#[derive(Clone, Debug)]
enum Step {
    Text,
    Inbound,
    Report(usize, DeliveryStatus),
    Wait(u64),
}

fn step() -> impl Strategy<Value = Step> {
    let status = prop_oneof![
        Just(DeliveryStatus::Queued),
        Just(DeliveryStatus::Sent),
        Just(DeliveryStatus::Delivered),
        Just(DeliveryStatus::Undelivered { reason: "y".into() }),
    ];
    prop_oneof![
        6 => Just(Step::Text),
        4 => Just(Step::Inbound),
        5 => (any::<usize>(), status).prop_map(|(n, s)| Step::Report(n, s)),
        1 => (0..PENDING_DELIVERY_MAX_AGE_MS / 2).prop_map(Step::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    /// Messages come and go; after every step the window holds every recent message, older
    /// ones only while they wait for a delivery, and callbacks for messages let go write
    /// nothing. The harness checks replay and snapshots at every step.
    #[test]
    fn the_window_follows_a_long_conversation(
        steps in proptest::collection::vec(step(), RECENT_MESSAGES + 64..2 * RECENT_MESSAGES),
    ) {
        let mut world = World::external();
        let their = world.their.clone();
        let mut texted = Vec::new();
        for step in steps {
            match step {
                Step::Text => texted.push(text_customer(&mut world)),
                Step::Inbound => {
                    world.inbound("ok").unwrap();
                }
                Step::Report(_, _) if texted.is_empty() => {}
                Step::Report(n, status) => {
                    let id = texted[n % texted.len()];
                    let before = world.state().delivery(&id, &their).cloned();
                    let outcome = world.system(report(id, &their, status));
                    match before {
                        None => prop_assert_eq!(outcome, Ok(vec![]), "let go"),
                        Some(_) => prop_assert!(outcome.is_ok()),
                    }
                }
                Step::Wait(ms) => world.now += ms,
            }
            let state = world.state();
            let last = state.last_seq();
            let recent_from = last.saturating_sub(RECENT - 1).max(1);
            let seqs: BTreeSet<u64> = state.messages.iter().map(|(_, m)| m.seq).collect();
            prop_assert!((recent_from..=last).all(|seq| seqs.contains(&seq)));
            for (_, message) in state.messages.iter() {
                prop_assert!(message.seq >= recent_from || message.awaits_delivery());
                if message.seq < recent_from {
                    prop_assert_eq!(&message.author, &Author::User(world.alice));
                }
            }
            prop_assert!(state.messages.len() <= RECENT_MESSAGES + MAX_PENDING_DELIVERY_MESSAGES);
        }
    }
}
