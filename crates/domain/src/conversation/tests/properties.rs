//! Random command sequences against conversations of every kind. The harness checks after
//! every step that replay and snapshots equal the live state; here we check that what must
//! only move forward does, and the invariants of each kind.

use std::collections::BTreeSet;

use proptest::prelude::*;
use uuid::Uuid;

use crate::command_meta::{CommandMeta, Role};
use crate::conversation::{
    ActorFacts, CallMedia, Conversation, ConversationCommand, ConversationEvent, ConversationKind,
    DeliveryStatus, InboxStatus, SenderNumber, CONVERSATION_EVENT_TYPES,
};
use crate::ids::{CallId, ConversationId, InboxId, MessageId, OrgId, UserId};
use crate::limits::{MAX_CONVERSATION_MEMBERS, MAX_PENDING_DELIVERY_MESSAGES, RECENT_MESSAGES};
use crate::phone_number::PhoneNumber;
use crate::testkit::{assert_variant_order, number, Harness};
use crate::visibility::{Seat, Shape};

const ORG: OrgId = OrgId::from_uuid(Uuid::from_u128(0xA));

fn user(i: u8) -> UserId {
    UserId::from_uuid(Uuid::from_u128(0x100 + u128::from(i)))
}

fn users() -> BTreeSet<UserId> {
    (0..4).map(user).collect()
}

fn our() -> PhoneNumber {
    number("+16135550100")
}

/// 0 is the customer, 1 a vendor, 2 a stranger.
fn external(i: u8) -> PhoneNumber {
    number(&format!("+1415555000{i}"))
}

fn message(i: u8) -> MessageId {
    MessageId::from_uuid(Uuid::from_u128(0x500 + u128::from(i)))
}

fn inbox(i: u8) -> InboxId {
    InboxId::from_uuid(Uuid::from_u128(0x200 + u128::from(i)))
}

/// Facts mostly in the actor's favour, so that most commands get past access checks.
fn facts() -> impl Strategy<Value = ActorFacts> {
    (
        proptest::bool::weighted(0.75),
        proptest::bool::weighted(0.75),
    )
        .prop_map(|(holds_our_number, inbox_member)| ActorFacts {
            holds_our_number,
            inbox_member,
            admin: false,
            queue_reader: false,
        })
}

/// Mostly the conversation's own, registered number, assigned to the sender.
fn sender() -> impl Strategy<Value = Option<SenderNumber>> {
    proptest::option::weighted(
        0.9,
        (
            proptest::bool::weighted(0.85),
            proptest::bool::weighted(0.85),
            proptest::bool::weighted(0.9),
        )
            .prop_map(|(sms_registered, assigned_to_sender, ours)| SenderNumber {
                number: if ours { our() } else { external(2) },
                sms_registered,
                assigned_to_sender,
            }),
    )
}

fn status() -> impl Strategy<Value = DeliveryStatus> {
    prop_oneof![
        Just(DeliveryStatus::Requested),
        Just(DeliveryStatus::Queued),
        Just(DeliveryStatus::Sent),
        Just(DeliveryStatus::Delivered),
        Just(DeliveryStatus::Failed { reason: "x".into() }),
        Just(DeliveryStatus::Undelivered { reason: "y".into() }),
    ]
}

/// How the conversation under test starts, and by whom (`None`: the System).
fn start() -> impl Strategy<Value = (Option<u8>, ConversationCommand)> {
    let external_start = |inbox: Option<InboxId>| ConversationCommand::StartExternal {
        id: ConversationId::external(ORG, &our(), &external(0)),
        our: our(),
        their: external(0),
        inbox,
        facts: ActorFacts::default(),
    };
    prop_oneof![
        2 => Just((None, external_start(None))),
        3 => Just((None, external_start(Some(inbox(0))))),
        1 => Just((
            Some(1),
            ConversationCommand::StartDirect {
                id: ConversationId::direct(ORG, user(1), user(2)),
                with: user(2),
                known_users: users(),
            }
        )),
        1 => Just((
            Some(1),
            ConversationCommand::StartChannel {
                id: ConversationId::from_uuid(Uuid::from_u128(0xC)),
                name: "general".into(),
                members: [user(2)].into(),
                known_users: users(),
            }
        )),
        1 => Just((
            Some(1),
            ConversationCommand::StartGroup {
                id: ConversationId::from_uuid(Uuid::from_u128(0xD)),
                users: [user(2)].into(),
                externals: [external(0), external(1)].into(),
                from: SenderNumber {
                    number: our(),
                    sms_registered: true,
                    assigned_to_sender: true,
                },
                known_users: users(),
            }
        )),
    ]
}

fn post() -> impl Strategy<Value = ConversationCommand> {
    let text = prop_oneof![Just(""), Just("hi"), Just("😀")];
    let opted_out = proptest::collection::btree_set(0..2u8, 0..2);
    (0..4u8, text, sender(), facts(), opted_out).prop_map(|(m, text, from, facts, opted_out)| {
        ConversationCommand::PostMessage {
            message_id: message(m),
            text: text.into(),
            attachments: vec![],
            from,
            facts,
            opted_out: opted_out.into_iter().map(external).collect(),
        }
    })
}

fn inbound() -> impl Strategy<Value = ConversationCommand> {
    let text = prop_oneof![4 => Just("hi"), 1 => Just("STOP"), 1 => Just("start"), 1 => Just("")];
    let from = prop_oneof![8 => Just(0u8), 1 => Just(1), 1 => Just(2)];
    let routed = prop_oneof![2 => Just(None), 3 => Just(Some(0u8)), 1 => Just(Some(1))];
    (4..8u8, from, text, routed).prop_map(|(m, from, text, routed)| {
        ConversationCommand::RecordInbound {
            message_id: message(m),
            from: external(from),
            to: our(),
            text: text.into(),
            media: vec![],
            routed_to_inbox: routed.map(inbox),
        }
    })
}

fn delivery() -> impl Strategy<Value = ConversationCommand> {
    let to = prop_oneof![3 => Just(0u8), 1 => Just(1)];
    let carrier_id = proptest::option::of("[A-Za-z0-9]{0,40}");
    let error_code = proptest::option::of("[0-9]{0,6}");
    (0..5u8, to, status(), carrier_id, error_code).prop_map(
        |(m, to, status, carrier_message_id, error_code)| ConversationCommand::RecordDelivery {
            message_id: message(m),
            to: external(to),
            status,
            carrier_message_id,
            error_code,
        },
    )
}

fn call() -> impl Strategy<Value = ConversationCommand> {
    let id = (0..2u128).prop_map(|c| CallId::from_uuid(Uuid::from_u128(0x600 + c)));
    (id, any::<bool>(), facts()).prop_map(|(call, start, facts)| {
        if start {
            ConversationCommand::StartCall {
                call,
                media: CallMedia::Audio,
                facts,
            }
        } else {
            ConversationCommand::EndCall { call, facts }
        }
    })
}

fn channel() -> impl Strategy<Value = ConversationCommand> {
    prop_oneof![
        Just(ConversationCommand::JoinChannel),
        Just(ConversationCommand::LeaveChannel),
        proptest::collection::btree_set(0..5u8, 0..3).prop_map(|u| {
            ConversationCommand::AddChannelMembers {
                users: u.into_iter().map(user).collect(),
                known_users: users(),
            }
        }),
        prop_oneof![Just("ops"), Just(" "), Just("general")]
            .prop_map(|name| ConversationCommand::RenameChannel { name: name.into() }),
    ]
}

fn inbox_action() -> impl Strategy<Value = ConversationCommand> {
    prop_oneof![
        3 => facts().prop_map(|facts| ConversationCommand::AssignToMe { facts }),
        2 => (0..4u8, proptest::bool::weighted(0.8), facts()).prop_map(
            |(to, to_is_inbox_member, facts)| ConversationCommand::Transfer {
                to: user(to),
                to_is_inbox_member,
                facts,
            }
        ),
        2 => facts().prop_map(|facts| ConversationCommand::ReturnToInbox { facts }),
        2 => facts().prop_map(|facts| ConversationCommand::MarkDone { facts }),
    ]
}

/// Who issues a command: user 0 is the admin; `None` is the System.
fn mostly_a_user() -> impl Strategy<Value = Option<u8>> {
    proptest::option::weighted(0.9, 0..4u8)
}

fn mostly_the_system() -> impl Strategy<Value = Option<u8>> {
    proptest::option::weighted(0.1, 0..4u8)
}

/// A command with its actor, biased towards actors who may issue it.
fn step() -> impl Strategy<Value = (Option<u8>, ConversationCommand)> {
    prop_oneof![
        4 => (mostly_a_user(), post()),
        3 => (mostly_the_system(), inbound()),
        3 => (mostly_the_system(), delivery()),
        2 => (mostly_a_user(), (0..6u64, facts()))
            .prop_map(|(a, (up_to, facts))| (a, ConversationCommand::MarkRead { up_to, facts })),
        1 => (mostly_a_user(), call()),
        2 => (mostly_a_user(), channel()),
        4 => (mostly_a_user(), inbox_action()),
    ]
}

fn meta(actor: Option<u8>, at_ms: u64) -> CommandMeta {
    match actor {
        Some(0) => CommandMeta::user(ORG, user(0), Role::Admin, at_ms),
        Some(i) => CommandMeta::user(ORG, user(i), Role::Member, at_ms),
        None => CommandMeta::system(ORG, at_ms),
    }
}

/// The seat's shape names exactly the users `can_view` admits, whatever the facts.
fn check_viewers(c: &Conversation) {
    let Some(seat) = c.seat() else { return };
    for i in 0..5 {
        let u = user(i);
        for (holds_our_number, inbox_member) in
            [(false, false), (true, false), (false, true), (true, true)]
        {
            let facts = ActorFacts {
                holds_our_number,
                inbox_member,
                admin: false,
                queue_reader: false,
            };
            let named = match &seat.shape {
                Shape::Members(members) => members.contains(&u),
                Shape::External { inbox: Some(_), .. } => inbox_member,
                Shape::External { inbox: None, .. } => holds_our_number,
            };
            assert_eq!(
                c.can_view(u, &facts),
                named,
                "seat {seat:?} disagrees with can_view for {u} with {facts:?}"
            );
        }
    }
}

fn check_invariants(before: &Conversation, after: &Conversation) {
    check_viewers(after);
    let Some(header) = after.header() else { return };
    assert_eq!(
        before.id().unwrap_or(header.id),
        header.id,
        "the id never changes"
    );

    for (user, &marker) in before.read_markers() {
        assert!(
            after.read_up_to(*user) >= marker,
            "read markers never decrease"
        );
    }
    for &marker in after.read_markers().values() {
        assert!(
            marker <= after.last_seq(),
            "nobody read past the last message"
        );
    }

    assert!(after.last_seq() >= before.last_seq());
    let recent_from = after
        .last_seq()
        .saturating_sub(RECENT_MESSAGES as u64 - 1)
        .max(1);
    let seqs: BTreeSet<u64> = after.messages.iter().map(|(_, m)| m.seq).collect();
    assert!(
        (recent_from..=after.last_seq()).all(|seq| seqs.contains(&seq)),
        "the window holds every recent message"
    );
    for (_, record) in after.messages.iter() {
        assert!(record.seq <= after.last_seq());
        assert!(
            record.seq >= recent_from || record.awaits_delivery(),
            "older messages stay only while an SMS awaits delivery"
        );
    }
    assert!(after.messages.len() <= RECENT_MESSAGES + MAX_PENDING_DELIVERY_MESSAGES);

    let externals: BTreeSet<&PhoneNumber> = header.kind.external_numbers().into_iter().collect();
    for (id, record) in after.messages.iter() {
        for (to, status) in &record.deliveries {
            assert!(externals.contains(to), "SMS only go to external members");
            if let Some(old) = before.delivery(id, to) {
                assert!(status.stage() >= old.stage(), "delivery never moves back");
                if old.is_final() {
                    assert_eq!(status, old, "the first final status wins");
                }
            }
        }
    }

    match &header.kind {
        ConversationKind::External { their, .. } => {
            assert!(after.opted_out.iter().all(|n| n == their));
        }
        kind => {
            assert!(
                after.inbox().is_none(),
                "only External conversations sit in inboxes"
            );
            // A group's external members may text STOP into it; nobody else opts out.
            assert!(after.opted_out.iter().all(|n| externals.contains(n)));
            let members = kind.internal_members().unwrap_or_default();
            assert!((1..=MAX_CONVERSATION_MEMBERS).contains(&members.len()));
        }
    }
    if let ConversationKind::Direct { a, b } = &header.kind {
        assert!(a < b);
    }
}

/// The inbox rules, checked from the outside: who holds the conversation changes only as
/// the command allows, and only the holder writes.
fn check_inbox_rules(
    before: &Conversation,
    after: &Conversation,
    actor: Option<u8>,
    command: &ConversationCommand,
) {
    let actor = actor.map(user);
    let (Some(was), Some(now)) = (before.inbox(), after.inbox()) else {
        return;
    };
    if was.inbox != now.inbox {
        return;
    }
    if after.last_seq() > before.last_seq() {
        if let ConversationCommand::PostMessage { .. } = command {
            assert_eq!(was.status.assignee(), actor, "only the assignee writes");
        }
    }
    if was.status == now.status {
        return;
    }
    match (now.status, command) {
        (InboxStatus::Assigned(holder), ConversationCommand::AssignToMe { facts }) => {
            assert_eq!(actor, Some(holder));
            assert!(
                facts.inbox_member || actor == Some(user(0)),
                "team members, or an admin on the team or not"
            );
            if was.status.assignee().is_some() {
                assert_eq!(actor, Some(user(0)), "only an admin takes it from someone");
            }
        }
        (
            InboxStatus::Assigned(holder),
            ConversationCommand::Transfer {
                to,
                to_is_inbox_member,
                ..
            },
        ) => {
            assert_eq!(holder, *to);
            assert!(to_is_inbox_member);
            assert!(actor.is_none() || actor == Some(user(0)) || actor == was.status.assignee());
        }
        (InboxStatus::Unassigned, ConversationCommand::ReturnToInbox { .. })
        | (InboxStatus::Done, ConversationCommand::MarkDone { .. }) => {
            assert!(actor.is_none() || actor == Some(user(0)) || actor == was.status.assignee());
        }
        (InboxStatus::Unassigned, ConversationCommand::RecordInbound { .. }) => {
            assert_eq!(was.status, InboxStatus::Done, "a text reopens only Done");
        }
        (status, command) => panic!("{:?} -> {status:?} by {command:?}", was.status),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_commands_keep_a_conversation_consistent(
        (starter, start) in start(),
        steps in proptest::collection::vec(step(), 1..80),
    ) {
        let mut conversation = Harness::<Conversation>::new();
        conversation.handle(&meta(starter, 0).issue(start)).unwrap();
        for (at_ms, (actor, command)) in (1..).zip(steps) {
            let before = conversation.state.clone();
            let _ = conversation.handle(&meta(actor, at_ms).issue(command.clone()));
            check_invariants(&before, &conversation.state);
            check_inbox_rules(&before, &conversation.state, actor, &command);
        }
        for event in &conversation.log {
            assert_variant_order(event, &CONVERSATION_EVENT_TYPES);
        }
        // The seat followed event by event (as the stream hub follows it) is the state's.
        let mut followed: Option<Seat> = None;
        for event in &conversation.log {
            match (event, followed.as_mut()) {
                (ConversationEvent::ConversationStarted(e), _) => followed = Some(Seat::started(e)),
                (event, Some(seat)) => seat.apply(event),
                (_, None) => {}
            }
        }
        prop_assert_eq!(followed, conversation.state.seat());
        let seqs: Vec<u64> = conversation
            .log
            .iter()
            .filter_map(|event| match event {
                ConversationEvent::MessagePosted(e) => Some(e.seq),
                ConversationEvent::InboundReceived(e) => Some(e.seq),
                _ => None,
            })
            .collect();
        let last = conversation.state.last_seq();
        prop_assert_eq!(seqs, (1..=last).collect::<Vec<_>>(), "messages are numbered 1..=last");
    }
}
