use super::{post, World, HOLDER};
use crate::aggregate::Rejection;
use crate::conversation::{
    ConversationCommand, ConversationEvent, ConversationRejection, DeliveryStatus, DeliveryUpdated,
};
use crate::ids::MessageId;
use crate::limits::{
    MAX_CARRIER_ERROR_CODE_CHARS, MAX_CARRIER_MESSAGE_ID_CHARS, MAX_DELIVERY_REASON_CHARS,
};
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
    carrier_report(message_id, to, status, None, None)
}

fn carrier_report(
    message_id: MessageId,
    to: &PhoneNumber,
    status: DeliveryStatus,
    carrier_message_id: Option<&str>,
    error_code: Option<&str>,
) -> ConversationCommand {
    ConversationCommand::RecordDelivery {
        message_id,
        to: to.clone(),
        status,
        carrier_message_id: carrier_message_id.map(Into::into),
        error_code: error_code.map(Into::into),
    }
}

fn the_update(events: &[ConversationEvent]) -> &DeliveryUpdated {
    match events {
        [ConversationEvent::DeliveryUpdated(update)] => update,
        other => panic!("expected one DeliveryUpdated, got {other:?}"),
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

#[test]
fn the_carrier_id_and_error_code_are_recorded_in_the_event() {
    let (mut world, id, to) = sent_message();
    let queued = world
        .system(carrier_report(
            id,
            &to,
            DeliveryStatus::Queued,
            Some("SM0123456789abcdef"),
            None,
        ))
        .unwrap();
    let update = the_update(&queued);
    assert_eq!(
        update.carrier_message_id.as_deref(),
        Some("SM0123456789abcdef")
    );
    assert_eq!(update.error_code, None);
    assert_eq!(update.status, DeliveryStatus::Queued);

    let undelivered = DeliveryStatus::Undelivered {
        reason: "Unknown destination handset".into(),
    };
    let failed = world
        .system(carrier_report(
            id,
            &to,
            undelivered.clone(),
            Some("SM0123456789abcdef"),
            Some("30005"),
        ))
        .unwrap();
    let update = the_update(&failed);
    assert_eq!(update.error_code.as_deref(), Some("30005"));
    assert_eq!(
        update.carrier_message_id.as_deref(),
        Some("SM0123456789abcdef")
    );
    assert_eq!(update.status, undelivered);
    assert_eq!(world.state().delivery(&id, &to), Some(&undelivered));
}

#[test]
fn a_report_that_would_not_move_the_status_writes_nothing_whatever_it_carries() {
    let (mut world, id, to) = sent_message();
    world
        .system(carrier_report(id, &to, DeliveryStatus::Sent, None, None))
        .unwrap();
    // The same status again, now with the carrier's id: still a duplicate.
    assert_eq!(
        world.system(carrier_report(
            id,
            &to,
            DeliveryStatus::Sent,
            Some("SM1"),
            None
        )),
        Ok(vec![])
    );
    // An older status with an error code: still never backwards.
    assert_eq!(
        world.system(carrier_report(
            id,
            &to,
            DeliveryStatus::Queued,
            Some("SM1"),
            Some("30003")
        )),
        Ok(vec![])
    );
    assert_eq!(
        world.state().delivery(&id, &to),
        Some(&DeliveryStatus::Sent)
    );
}

#[test]
fn empty_carrier_values_are_none_and_long_ones_are_cut() {
    let (mut world, id, to) = sent_message();
    let events = world
        .system(carrier_report(
            id,
            &to,
            DeliveryStatus::Queued,
            Some(""),
            Some(""),
        ))
        .unwrap();
    let update = the_update(&events);
    assert_eq!(
        (&update.carrier_message_id, &update.error_code),
        (&None, &None)
    );

    let long_id = "i".repeat(MAX_CARRIER_MESSAGE_ID_CHARS + 1);
    let long_code = "é".repeat(MAX_CARRIER_ERROR_CODE_CHARS + 1);
    let failed = DeliveryStatus::Failed { reason: "x".into() };
    let events = world
        .system(carrier_report(
            id,
            &to,
            failed,
            Some(&long_id),
            Some(&long_code),
        ))
        .unwrap();
    let update = the_update(&events);
    assert_eq!(
        update
            .carrier_message_id
            .as_deref()
            .map(|s| s.chars().count()),
        Some(MAX_CARRIER_MESSAGE_ID_CHARS)
    );
    assert_eq!(
        update.error_code.as_deref().map(|s| s.chars().count()),
        Some(MAX_CARRIER_ERROR_CODE_CHARS)
    );
}
