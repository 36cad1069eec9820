use super::{post, World, HOLDER};
use crate::aggregate::Rejection;
use crate::conversation::{
    ConversationCommand, ConversationEvent, ConversationRejection, DeliveryStatus,
};
use crate::ids::MessageId;
use crate::limits::MAX_DELIVERY_REASON_CHARS;
use crate::phone_number::PhoneNumber;

/// An External conversation with one posted message; its id and recipient.
fn sent_message() -> (World, MessageId, PhoneNumber) {
    let mut world = World::external();
    let alice = world.alice;
    let events = world
        .by(alice, post("hi", Some(world.sender(true, true)), HOLDER))
        .unwrap();
    let ConversationEvent::SmsRequested(request) = &events[1] else {
        panic!("{events:?}")
    };
    let (id, to) = (request.message_id, request.to.clone());
    (world, id, to)
}

fn report(message_id: MessageId, to: &PhoneNumber, status: DeliveryStatus) -> ConversationCommand {
    ConversationCommand::RecordDelivery {
        message_id,
        to: to.clone(),
        status,
    }
}

#[test]
fn delivery_moves_from_queued_to_sent_to_delivered() {
    let (mut world, id, to) = sent_message();
    for status in [
        DeliveryStatus::Queued,
        DeliveryStatus::Sent,
        DeliveryStatus::Delivered,
    ] {
        assert_eq!(
            world.system(report(id, &to, status.clone())).unwrap().len(),
            1
        );
        assert_eq!(world.state().delivery(&id, &to), Some(&status));
    }
}

#[test]
fn a_late_report_never_moves_delivery_back() {
    let (mut world, id, to) = sent_message();
    world
        .system(report(id, &to, DeliveryStatus::Delivered))
        .unwrap();
    assert_eq!(
        world.system(report(id, &to, DeliveryStatus::Sent)),
        Ok(vec![])
    );
    assert_eq!(
        world.system(report(id, &to, DeliveryStatus::Queued)),
        Ok(vec![])
    );
    assert_eq!(
        world.system(report(id, &to, DeliveryStatus::Delivered)),
        Ok(vec![])
    );
    assert_eq!(
        world.state().delivery(&id, &to),
        Some(&DeliveryStatus::Delivered)
    );
}

#[test]
fn a_failure_keeps_its_reason_and_the_first_final_status_wins() {
    let (mut world, id, to) = sent_message();
    let failed = DeliveryStatus::Undelivered {
        reason: "30006 landline".into(),
    };
    world.system(report(id, &to, DeliveryStatus::Sent)).unwrap();
    world.system(report(id, &to, failed.clone())).unwrap();
    assert_eq!(
        world.system(report(id, &to, DeliveryStatus::Delivered)),
        Ok(vec![])
    );
    assert_eq!(world.state().delivery(&id, &to), Some(&failed));
    assert!(failed.is_final());
}

#[test]
fn long_carrier_reasons_are_cut() {
    let (mut world, id, to) = sent_message();
    let reason = "x".repeat(MAX_DELIVERY_REASON_CHARS + 50);
    world
        .system(report(id, &to, DeliveryStatus::Failed { reason }))
        .unwrap();
    let Some(DeliveryStatus::Failed { reason }) = world.state().delivery(&id, &to) else {
        panic!()
    };
    assert_eq!(reason.chars().count(), MAX_DELIVERY_REASON_CHARS);
}

#[test]
fn reports_are_for_requested_sms_only() {
    let (mut world, id, _) = sent_message();
    let stranger = crate::testkit::number("+19995550000");
    let rejection = world
        .system(report(id, &stranger, DeliveryStatus::Sent))
        .unwrap_err();
    assert_eq!(
        rejection,
        ConversationRejection::NoSuchSmsRequest {
            message_id: id,
            to: stranger
        }
    );
    assert_eq!(rejection.code(), "no_such_sms_request");
    let their = world.their.clone();
    assert!(world
        .system(report(MessageId::random(), &their, DeliveryStatus::Sent))
        .is_err());
}

#[test]
fn only_the_system_reports_delivery() {
    let (mut world, id, to) = sent_message();
    let alice = world.alice;
    assert_eq!(
        world.by(alice, report(id, &to, DeliveryStatus::Delivered)),
        Err(ConversationRejection::SystemOnly)
    );
}
