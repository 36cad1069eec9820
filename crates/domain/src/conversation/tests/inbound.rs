use super::{types, World, TEAM};
use crate::aggregate::Rejection;
use crate::conversation::{
    AttachmentRef, Author, ConversationCommand, ConversationEvent, ConversationRejection,
    InboxStatus,
};
use crate::ids::{AttachmentId, InboxId, MessageId};
use crate::testkit::number;

fn inbound_from(world: &World, from: &str, to: &str) -> ConversationCommand {
    ConversationCommand::RecordInbound {
        message_id: MessageId::random(),
        from: number(from),
        to: number(to),
        text: "hello".into(),
        media: vec![],
        routed_to_inbox: world.state().inbox().map(|a| a.inbox),
    }
}

#[test]
fn an_inbound_text_is_recorded_in_order() {
    let mut world = World::external();
    let events = world.inbound("Is my order ready? 🙂").unwrap();
    let [ConversationEvent::InboundReceived(received)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!((received.seq, &received.from), (1, &world.their));
    assert_eq!(
        world.state().message(&received.message_id).unwrap().author,
        Author::External(world.their.clone())
    );
}

#[test]
fn inbound_mms_media_are_recorded() {
    let mut world = World::external();
    let photo = AttachmentRef {
        id: AttachmentId::random(),
        mime: "image/HEIC".into(),
        size_bytes: 2_000_000,
    };
    let events = world
        .system(ConversationCommand::RecordInbound {
            message_id: MessageId::random(),
            from: world.their.clone(),
            to: world.our.clone(),
            text: String::new(),
            media: vec![photo.clone()],
            routed_to_inbox: None,
        })
        .unwrap();
    let ConversationEvent::InboundReceived(received) = &events[0] else {
        panic!()
    };
    assert_eq!(received.media[0].mime, "image/heic");
}

#[test]
fn only_the_system_records_inbound_texts() {
    let mut world = World::external();
    let alice = world.alice;
    let command = inbound_from(&world, "+16135550142", "+16135550100");
    let rejection = world.by(alice, command).unwrap_err();
    assert_eq!(rejection, ConversationRejection::SystemOnly);
    assert_eq!(rejection.code(), "system_only");
}

#[test]
fn inbound_texts_are_between_the_conversations_numbers() {
    let mut world = World::external();
    let stranger = inbound_from(&world, "+16135550999", "+16135550100");
    assert_eq!(
        world.system(stranger),
        Err(ConversationRejection::InboundAddressMismatch)
    );
    let other_line = inbound_from(&world, "+16135550142", "+16135550199");
    assert_eq!(
        world.system(other_line),
        Err(ConversationRejection::InboundAddressMismatch)
    );
}

#[test]
fn a_mixed_group_hears_from_its_external_members_only() {
    let mut world = World::group();
    let (our, their, vendor) = (world.our.clone(), world.their.clone(), world.vendor());
    for from in [&their, &vendor] {
        let events = world
            .system(inbound_from(&world, from.as_str(), our.as_str()))
            .unwrap();
        assert_eq!(types(&events), ["InboundReceived"]);
    }
    let last = world.state().last_seq();
    assert_eq!(last, 2);
    // A number outside the group, or a text to another of our numbers: refused.
    assert_eq!(
        world.system(inbound_from(&world, "+16135550999", our.as_str())),
        Err(ConversationRejection::InboundAddressMismatch)
    );
    assert_eq!(
        world.system(inbound_from(&world, their.as_str(), "+16135550199")),
        Err(ConversationRejection::InboundAddressMismatch)
    );
    // A group is never an inbox conversation, whatever the number routes to.
    let mut routed = inbound_from(&world, vendor.as_str(), our.as_str());
    if let ConversationCommand::RecordInbound {
        routed_to_inbox, ..
    } = &mut routed
    {
        *routed_to_inbox = Some(world.inbox);
    }
    assert_eq!(types(&world.system(routed).unwrap()), ["InboundReceived"]);
    assert!(world.state().inbox().is_none());
}

#[test]
fn only_conversations_with_external_numbers_receive_texts() {
    for mut world in [World::direct(), World::channel()] {
        let command = inbound_from(&world, "+16135550142", "+16135550100");
        assert_eq!(
            world.system(command),
            Err(ConversationRejection::NotExternal)
        );
    }
}

#[test]
fn an_empty_inbound_text_is_refused() {
    let mut world = World::external();
    assert_eq!(world.inbound(" "), Err(ConversationRejection::EmptyMessage));
}

#[test]
fn a_retried_webhook_is_recorded_once() {
    let mut world = World::external();
    let command = inbound_from(&world, "+16135550142", "+16135550100");
    world.system(command.clone()).unwrap();
    assert_eq!(world.system(command), Ok(vec![]));
    assert_eq!(world.state().last_seq(), 1);
}

#[test]
fn a_text_on_a_done_inbox_conversation_reopens_it() {
    let mut world = World::in_inbox();
    let admin = world.admin;
    world
        .by(admin, ConversationCommand::MarkDone { facts: TEAM })
        .unwrap();
    let events = world.inbound("one more question").unwrap();
    assert_eq!(types(&events), ["InboundReceived", "ReopenedByInboundText"]);
    assert_eq!(
        world.state().inbox().unwrap().status,
        InboxStatus::Unassigned
    );
}

#[test]
fn a_text_on_an_open_inbox_conversation_leaves_its_status() {
    let mut world = World::in_inbox();
    let alice = world.alice;
    world
        .by(alice, ConversationCommand::AssignToMe { facts: TEAM })
        .unwrap();
    assert_eq!(
        types(&world.inbound("thanks").unwrap()),
        ["InboundReceived"]
    );
    assert_eq!(
        world.state().inbox().unwrap().status,
        InboxStatus::Assigned(alice)
    );
}

#[test]
fn the_conversation_follows_its_numbers_routing() {
    let mut world = World::external();
    let inbox = InboxId::random();
    let routed = |world: &World, routed_to_inbox| ConversationCommand::RecordInbound {
        message_id: MessageId::random(),
        from: world.their.clone(),
        to: world.our.clone(),
        text: "hi".into(),
        media: vec![],
        routed_to_inbox,
    };
    let events = world.system(routed(&world, Some(inbox))).unwrap();
    assert_eq!(types(&events), ["InboxAttached", "InboundReceived"]);
    assert_eq!(world.state().inbox().unwrap().inbox, inbox);

    let other = InboxId::random();
    let events = world.system(routed(&world, Some(other))).unwrap();
    assert_eq!(
        types(&events),
        ["InboxDetached", "InboxAttached", "InboundReceived"]
    );

    let events = world.system(routed(&world, None)).unwrap();
    assert_eq!(types(&events), ["InboxDetached", "InboundReceived"]);
    assert!(world.state().inbox().is_none());
}

#[test]
fn stop_opts_the_customer_out_and_start_back_in() {
    let mut world = World::external();
    assert_eq!(
        types(&world.inbound("Stop").unwrap()),
        ["InboundReceived", "OptedOut"]
    );
    assert!(world.state().is_opted_out(&world.their));
    assert_eq!(
        types(&world.inbound("STOP").unwrap()),
        ["InboundReceived"],
        "already out"
    );
    assert_eq!(
        types(&world.inbound("start").unwrap()),
        ["InboundReceived", "OptedIn"]
    );
    assert!(!world.state().is_opted_out(&world.their));
    assert_eq!(
        types(&world.inbound("START").unwrap()),
        ["InboundReceived"],
        "already in"
    );
}

#[test]
fn help_and_ordinary_sentences_change_nothing() {
    let mut world = World::external();
    assert_eq!(types(&world.inbound("HELP").unwrap()), ["InboundReceived"]);
    assert_eq!(
        types(&world.inbound("please stop calling me at work").unwrap()),
        ["InboundReceived"]
    );
    assert!(!world.state().is_opted_out(&world.their));
}

#[test]
fn an_auto_reply_is_our_message_with_its_sms_even_to_an_opted_out_customer() {
    let mut world = World::external();
    world.inbound("STOP").unwrap();
    let help = world.inbound("HELP").unwrap();
    let ConversationEvent::InboundReceived(help) = &help[0] else {
        panic!("{help:?}")
    };
    let reply = ConversationCommand::RecordAutoReply {
        message_id: MessageId::random(),
        reply_to: help.message_id,
        text: "Acme: reply STOP to opt out.".into(),
    };
    let events = world.system(reply.clone()).unwrap();
    assert_eq!(types(&events), ["AutoReplyPosted", "SmsRequested"]);
    let ConversationEvent::AutoReplyPosted(posted) = &events[0] else {
        panic!()
    };
    assert_eq!(
        (posted.seq, &posted.from, posted.reply_to),
        (3, &world.our, help.message_id)
    );
    let ConversationEvent::SmsRequested(requested) = &events[1] else {
        panic!()
    };
    assert_eq!((&requested.to, &requested.from), (&world.their, &world.our));
    assert_eq!(world.state().last_seq(), 3);
    // Repeated (a process manager after a crash): nothing more.
    assert_eq!(world.system(reply.clone()).unwrap(), vec![]);
    // Its delivery is recorded like any text's.
    let delivered = world
        .system(ConversationCommand::RecordDelivery {
            message_id: posted.message_id,
            to: world.their.clone(),
            status: crate::conversation::DeliveryStatus::Queued,
            carrier_message_id: Some("SM1".into()),
            error_code: None,
        })
        .unwrap();
    assert_eq!(types(&delivered), ["DeliveryUpdated"]);
    // Only the System answers automatically, and only in External conversations.
    let alice = world.alice;
    let by_user = world.by(alice, reply);
    assert!(by_user.is_err(), "{by_user:?}");
    let mut direct = World::direct();
    let refused = direct.system(ConversationCommand::RecordAutoReply {
        message_id: MessageId::random(),
        reply_to: MessageId::random(),
        text: "hi".into(),
    });
    assert_eq!(refused, Err(ConversationRejection::NotExternal));
}

#[test]
fn in_a_mixed_group_the_auto_reply_goes_to_the_member_who_asked() {
    let mut world = World::group();
    let (our, vendor) = (world.our.clone(), world.vendor());
    let help = world
        .system(ConversationCommand::RecordInbound {
            message_id: MessageId::random(),
            from: vendor.clone(),
            to: our.clone(),
            text: "HELP".into(),
            media: vec![],
            routed_to_inbox: None,
        })
        .unwrap();
    let ConversationEvent::InboundReceived(help) = &help[0] else {
        panic!("{help:?}")
    };
    let events = world
        .system(ConversationCommand::RecordAutoReply {
            message_id: MessageId::random(),
            reply_to: help.message_id,
            text: "Acme: reply STOP to opt out.".into(),
        })
        .unwrap();
    let [ConversationEvent::AutoReplyPosted(_), ConversationEvent::SmsRequested(requested)] =
        &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!((&requested.to, &requested.from), (&vendor, &our));
    // Not in answer to an external member's text: nobody to answer.
    let refused = world.system(ConversationCommand::RecordAutoReply {
        message_id: MessageId::random(),
        reply_to: MessageId::random(),
        text: "hi".into(),
    });
    assert_eq!(refused, Err(ConversationRejection::NotExternal));
}
