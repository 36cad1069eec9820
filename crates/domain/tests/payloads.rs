//! Versioned event payloads through the log's codec, exactly as the actor layer calls it:
//! `bincode::serde::encode_into_std_write(event.payload(), ..)` to write and
//! `bincode::serde::seed_decode_from_slice(E::payload_seed(type, version)?, ..)` to read.

mod support;

use std::collections::BTreeSet;

use proptest::prelude::*;

use domain::conversation::legacy::{delivery_updated_v1_to_v2, DeliveryUpdatedV1};
use domain::conversation::{DeliveryStatus, DeliveryUpdated, CONVERSATION_EVENT_TYPES};
use domain::directory::DIRECTORY_EVENT_TYPES;
use domain::inbound::InboundEvent;
use domain::inbox::INBOX_EVENT_TYPES;
use domain::queue::QUEUE_EVENT_TYPES;
use domain::schema::{all_event_schemas, event_schema, EventSchema};
use domain::{
    ConversationEvent, DirectoryEvent, DomainEvent, InboxEvent, MessageId, QueueEvent, SchemaError,
    VersionedEvent,
};
use support::{check_all, decode_payload, encode_payload, number, samples, Params};

#[test]
fn every_variant_of_every_enum_round_trips_through_the_log_codec() {
    // Every pick covers another variant of the nested enums (kinds, statuses, notes...).
    for pick in 0..12 {
        let params = Params {
            pick,
            flag: pick % 2 == 0,
            opt_n: (pick % 3 != 0).then_some(u64::from(pick) * 1000),
            opt_text: (pick % 3 != 1).then(|| format!("SM{pick}")),
            ..Params::fixed()
        };
        check_all(&samples(&params)).unwrap();
    }
}

#[test]
fn the_samples_cover_every_event_type_in_its_current_version() {
    let sampled: BTreeSet<(&str, u16)> = samples(&Params::fixed()).types().into_iter().collect();
    let known: BTreeSet<(&str, u16)> = all_event_schemas()
        .map(|s| (s.event_type, s.current_version))
        .collect();
    assert_eq!(
        sampled, known,
        "add a sample to tests/support for every new event type"
    );
    assert_eq!(
        known.len(),
        24 + 14 + 4 + 13 + 1 + 3 + 4 + 3 + 2 + 2 + 4 + 2 + 1 + 4 + 2 + 1
    );
}

#[test]
fn event_type_names_are_unique_across_all_enums() {
    let names: Vec<&str> = all_event_schemas().map(|s| s.event_type).collect();
    let unique: BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(
        unique.len(),
        names.len(),
        "duplicate event type in {names:?}"
    );
}

#[test]
fn the_type_name_lists_follow_the_schemas() {
    fn names(schemas: &[EventSchema]) -> Vec<&'static str> {
        schemas.iter().map(|s| s.event_type).collect()
    }
    assert_eq!(names(ConversationEvent::SCHEMAS), CONVERSATION_EVENT_TYPES);
    assert_eq!(names(DirectoryEvent::SCHEMAS), DIRECTORY_EVENT_TYPES);
    assert_eq!(names(InboxEvent::SCHEMAS), INBOX_EVENT_TYPES);
    assert_eq!(names(QueueEvent::SCHEMAS), QUEUE_EVENT_TYPES);
    assert_eq!(names(InboundEvent::SCHEMAS), ["SmsArrived"]);
    assert_eq!(
        names(domain::erasure::ErasureEvent::SCHEMAS),
        ["RetentionSet", "CustomerErased", "RetentionApplied"]
    );
    assert_eq!(
        names(domain::attachment::AttachmentEvent::SCHEMAS),
        [
            "AttachmentStored",
            "AttachmentUnavailable",
            "AttachmentReferenced",
            "AttachmentErased"
        ]
    );
    assert_eq!(
        names(domain::session::SessionEvent::SCHEMAS),
        ["SessionStarted", "SessionRevoked", "SessionOpened"]
    );
    assert_eq!(
        names(domain::credential::CredentialEvent::SCHEMAS),
        ["CredentialsRegistered", "PasswordChanged"]
    );
    assert_eq!(
        names(domain::webhook::WebhookEvent::SCHEMAS),
        ["WebhookAdded", "WebhookRemoved"]
    );
    assert_eq!(
        names(domain::webhook::WebhookDeliveryEvent::SCHEMAS),
        [
            "WebhookDeliveryQueued",
            "WebhookDeliveryAttempted",
            "WebhookDeliveryCancelled",
            "WebhookDeliveryListed"
        ]
    );
    assert_eq!(
        names(domain::claim::ClaimEvent::SCHEMAS),
        ["NumberClaimed", "FirstOrganizationClaimed"]
    );
    assert_eq!(
        names(domain::idempotency::IdempotencyEvent::SCHEMAS),
        ["ResponseRecorded"]
    );
    assert_eq!(
        names(domain::outbox::OutboxEvent::SCHEMAS),
        [
            "SmsPrepared",
            "SmsSendStarted",
            "SmsAccepted",
            "SmsSendFailed"
        ]
    );
    assert_eq!(
        names(domain::outbox::CarrierMessageEvent::SCHEMAS),
        ["CarrierMessageLinked", "CarrierStatusReported"]
    );
    assert_eq!(
        names(domain::sms_thread::SmsThreadEvent::SCHEMAS),
        ["SmsThreadMoved"]
    );
}

#[test]
fn versions_are_consecutive_and_end_at_the_current_one() {
    for schema in all_event_schemas() {
        let versions: Vec<u16> = schema.known_versions().collect();
        let expected: Vec<u16> = (versions[0]..=schema.current_version).collect();
        assert_eq!(versions, expected, "{}", schema.event_type);
    }
    let delivery = event_schema("DeliveryUpdated").unwrap();
    assert_eq!(delivery.current_version, 2);
    assert_eq!(delivery.known_versions().collect::<Vec<_>>(), [1, 2]);
    assert_eq!(delivery.file_name(1), "DeliveryUpdated.v1.json");
    // Texts were sealed from version 2 on.
    let two = [
        "DeliveryUpdated",
        "MessagePosted",
        "InboundReceived",
        "AutoReplyPosted",
        "SmsArrived",
        "SmsPrepared",
    ];
    for name in &two[1..] {
        assert_eq!(event_schema(name).unwrap().current_version, 2, "{name}");
    }
    // Stored as an enum encoded whole before they were domain records: version 1 is that
    // form, version 2 the bare struct.
    let formerly_enums = [
        "SessionStarted",
        "SessionRevoked",
        "WebhookAdded",
        "WebhookRemoved",
        "WebhookDeliveryQueued",
        "WebhookDeliveryAttempted",
        "WebhookDeliveryCancelled",
    ];
    for name in formerly_enums {
        let schema = event_schema(name).unwrap();
        assert_eq!(
            schema.known_versions().collect::<Vec<_>>(),
            [1, 2],
            "{name}"
        );
    }
    let two: Vec<&str> = two.iter().chain(&formerly_enums).copied().collect();
    let others = all_event_schemas().filter(|s| !two.contains(&s.event_type));
    for schema in others {
        assert_eq!(schema.known_versions().collect::<Vec<_>>(), [1]);
    }
}

#[test]
fn the_envelope_version_is_the_current_version_of_the_type() {
    let samples = samples(&Params::fixed());
    for event in &samples.conversation {
        let schema = event_schema(event.event_type()).unwrap();
        assert_eq!(event.schema_version(), schema.current_version);
    }
    let delivery = samples
        .conversation
        .iter()
        .find(|e| matches!(e, ConversationEvent::DeliveryUpdated(_)))
        .unwrap();
    assert_eq!(delivery.schema_version(), 2);
}

fn v1(status: DeliveryStatus) -> DeliveryUpdatedV1 {
    DeliveryUpdatedV1 {
        message_id: MessageId::random(),
        to: number("+14155550142"),
        status,
        at_ms: 1_700_000_000_000,
    }
}

#[test]
fn a_stored_v1_delivery_update_reads_as_v2_without_carrier_refs() {
    let old = v1(DeliveryStatus::Undelivered {
        reason: "30006 landline".into(),
    });
    // What a log written before version 2 holds: the v1 struct under ("DeliveryUpdated", 1).
    let mut bytes = Vec::new();
    bincode::serde::encode_into_std_write(&old, &mut bytes, support::config()).unwrap();

    let read: ConversationEvent = decode_payload("DeliveryUpdated", 1, &bytes).unwrap();
    assert_eq!(
        read,
        ConversationEvent::DeliveryUpdated(DeliveryUpdated {
            message_id: old.message_id,
            to: old.to.clone(),
            status: old.status.clone(),
            carrier_message_id: None,
            error_code: None,
            at_ms: old.at_ms,
        })
    );
    assert_eq!(read.schema_version(), 2);
    // Written again, it is a v2 payload, longer by the two absent options.
    assert_eq!(encode_payload(&read).len(), bytes.len() + 2);
}

#[test]
fn a_stored_v1_message_reads_as_v2_with_its_text_in_the_clear() {
    let old = domain::conversation::legacy::MessagePostedV1 {
        message_id: domain::MessageId::random(),
        seq: 3,
        author: domain::UserId::random(),
        text: "written before sealing".into(),
        attachments: vec![],
        at_ms: 7,
    };
    let mut bytes = Vec::new();
    bincode::serde::encode_into_std_write(&old, &mut bytes, support::config()).unwrap();
    let read: ConversationEvent = decode_payload("MessagePosted", 1, &bytes).unwrap();
    let ConversationEvent::MessagePosted(read) = read else {
        panic!("{read:?}")
    };
    assert_eq!(read.text, domain::Text::unsealed("written before sealing"));
    assert_eq!(
        read.text.key(),
        None,
        "an old text has no key: it was never sealed"
    );
    assert_eq!((read.seq, read.at_ms), (3, 7));
}

#[test]
fn a_stored_v1_prepared_text_reads_as_v2_with_its_body_in_the_clear() {
    use domain::outbox::legacy::{sms_prepared_v1_to_v2, SmsPreparedV1};
    use domain::outbox::{OutboxEvent, SmsOrigin, SmsPrepared};

    let old = SmsPreparedV1 {
        org: domain::OrgId::random(),
        origin: SmsOrigin::HelpReply {
            arrived_event: uuid::Uuid::from_u128(7),
        },
        from: number("+16135550100"),
        to: number("+14155550142"),
        body: "written before sealing".into(),
        media: vec![],
        at_ms: 7,
    };
    let mut bytes = Vec::new();
    bincode::serde::encode_into_std_write(&old, &mut bytes, support::config()).unwrap();
    let read: OutboxEvent = decode_payload("SmsPrepared", 1, &bytes).unwrap();
    let expected = SmsPrepared {
        org: old.org,
        origin: old.origin.clone(),
        from: old.from.clone(),
        to: old.to.clone(),
        body: domain::Text::unsealed("written before sealing"),
        media: vec![],
        at_ms: 7,
    };
    assert_eq!(read, OutboxEvent::SmsPrepared(expected.clone()));
    assert_eq!(sms_prepared_v1_to_v2(old), expected);
    assert_eq!(read.schema_version(), 2);
    assert!(
        decode_payload::<OutboxEvent>("SmsPrepared", 2, &bytes).is_err(),
        "a v1 body is not a Text"
    );
}

#[test]
fn v1_bytes_are_not_read_as_v2() {
    let mut v1_bytes = Vec::new();
    bincode::serde::encode_into_std_write(
        v1(DeliveryStatus::Sent),
        &mut v1_bytes,
        support::config(),
    )
    .unwrap();
    // v1 bytes read as v2: the struct runs out of bytes before its last fields.
    assert!(decode_payload::<ConversationEvent>("DeliveryUpdated", 2, &v1_bytes).is_err());
}

#[test]
fn a_future_version_is_refused() {
    let error = ConversationEvent::payload_seed("DeliveryUpdated", 99).unwrap_err();
    assert_eq!(
        error,
        SchemaError::FutureSchemaVersion {
            event_type: "DeliveryUpdated",
            version: 99,
            current: 2,
        }
    );
    assert_eq!(error.code(), "future_schema_version");
    assert_eq!(
        InboxEvent::payload_seed("InboxCreated", 2)
            .unwrap_err()
            .code(),
        "future_schema_version"
    );
    // Through the codec helper too: nothing is decoded.
    let bytes = encode_payload(&samples(&Params::fixed()).conversation[5]);
    let refused = decode_payload::<ConversationEvent>("DeliveryUpdated", 3, &bytes).unwrap_err();
    assert!(refused.contains("newer"), "{refused}");
}

#[test]
fn an_unknown_type_or_version_is_refused() {
    let error = ConversationEvent::payload_seed("MessageTeleported", 1).unwrap_err();
    assert_eq!(
        error,
        SchemaError::UnknownEventType {
            event_type: "MessageTeleported".into()
        }
    );
    assert_eq!(error.code(), "unknown_event_type");
    // A type of another enum is unknown to this one.
    assert_eq!(
        ConversationEvent::payload_seed("InboxCreated", 1)
            .unwrap_err()
            .code(),
        "unknown_event_type"
    );
    let error = ConversationEvent::payload_seed("DeliveryUpdated", 0).unwrap_err();
    assert_eq!(
        error,
        SchemaError::UnknownSchemaVersion {
            event_type: "DeliveryUpdated",
            version: 0
        }
    );
    assert_eq!(error.code(), "unknown_schema_version");
}

#[test]
fn a_seed_names_what_it_reads() {
    let seed = ConversationEvent::payload_seed("DeliveryUpdated", 1).unwrap();
    assert_eq!(seed.event_type(), "DeliveryUpdated");
    assert_eq!(seed.schema_version(), 1);
    let seed = QueueEvent::payload_seed("QueueTimedOut", 1).unwrap();
    assert_eq!(seed.event_type(), "QueueTimedOut");
}

fn status() -> impl Strategy<Value = DeliveryStatus> {
    prop_oneof![
        Just(DeliveryStatus::Requested),
        Just(DeliveryStatus::Queued),
        Just(DeliveryStatus::Sent),
        Just(DeliveryStatus::Delivered),
        any::<String>().prop_map(|reason| DeliveryStatus::Failed { reason }),
        any::<String>().prop_map(|reason| DeliveryStatus::Undelivered { reason }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn current_payloads_round_trip(params in support::params()) {
        check_all(&samples(&params))?;
    }

    #[test]
    fn any_v1_delivery_update_upcasts_field_for_field(
        id in any::<u128>(),
        status in status(),
        at_ms in any::<u64>(),
    ) {
        let old = DeliveryUpdatedV1 {
            message_id: MessageId::from_uuid(uuid::Uuid::from_u128(id)),
            to: number("+16135550100"),
            status,
            at_ms,
        };
        let mut bytes = Vec::new();
        bincode::serde::encode_into_std_write(&old, &mut bytes, support::config()).unwrap();
        let read: ConversationEvent = decode_payload("DeliveryUpdated", 1, &bytes)
            .map_err(TestCaseError::fail)?;
        let expected = DeliveryUpdated {
            message_id: old.message_id,
            to: old.to.clone(),
            status: old.status.clone(),
            carrier_message_id: None,
            error_code: None,
            at_ms,
        };
        prop_assert_eq!(&delivery_updated_v1_to_v2(old), &expected);
        prop_assert_eq!(read, ConversationEvent::DeliveryUpdated(expected));
    }
}

/// Records stored as an enum encoded whole before they were domain records: version 1 of
/// each type is that enum's variant (bincode: its position, then its fields), read as the
/// bare struct of version 2; another variant under the type's name is refused.
mod formerly_enums {
    use domain::session::legacy::{RevokedV1, SessionEventV1, StartedV1};
    use domain::session::{SessionEvent, SessionRevoked, SessionStarted};
    use domain::webhook::legacy::{
        AddedV1, AttemptedV1, CancelledV1, QueuedV1, RecordV1, RemovedV1, SealedQueuedV1,
        WebhookEventV1,
    };
    use domain::webhook::{
        SealedBody, WebhookAdded, WebhookDeliveryAttempted, WebhookDeliveryCancelled,
        WebhookDeliveryEvent, WebhookDeliveryQueued, WebhookEvent, WebhookRemoved,
    };
    use domain::{DomainEvent, OrgId, TextKey, UserId};
    use uuid::Uuid;

    use super::support::{self, decode_payload, encode_payload};

    fn whole<T: serde::Serialize>(value: &T) -> Vec<u8> {
        let mut bytes = Vec::new();
        bincode::serde::encode_into_std_write(value, &mut bytes, support::config()).unwrap();
        bytes
    }

    #[test]
    fn session_events_of_version_1_read_as_version_2() {
        let (org, user) = (OrgId::random(), UserId::random());
        let started = SessionEventV1::Started(StartedV1 {
            org,
            user,
            secret_hash: [4; 32],
            expires_at_ms: 10,
        });
        let revoked = SessionEventV1::Revoked(RevokedV1 { at_ms: 11 });
        // The variant's position comes first.
        assert_eq!((whole(&started)[0], whole(&revoked)[0]), (0, 1));

        let read: SessionEvent = decode_payload("SessionStarted", 1, &whole(&started)).unwrap();
        let expected = SessionEvent::SessionStarted(SessionStarted {
            org,
            user,
            secret_hash: [4; 32],
            expires_at_ms: 10,
        });
        assert_eq!(read, expected);
        assert_eq!(read.schema_version(), 2);
        // Version 2 is the same fields without the position.
        assert_eq!(encode_payload(&read), whole(&started)[1..]);
        let read: SessionEvent = decode_payload("SessionRevoked", 1, &whole(&revoked)).unwrap();
        assert_eq!(
            read,
            SessionEvent::SessionRevoked(SessionRevoked { at_ms: 11 })
        );

        assert!(decode_payload::<SessionEvent>("SessionStarted", 1, &whole(&revoked)).is_err());
        assert!(decode_payload::<SessionEvent>("SessionRevoked", 1, &whole(&started)).is_err());
        // A version 2 payload is not a version 1 one.
        let v2 = encode_payload(&expected);
        assert!(decode_payload::<SessionEvent>("SessionStarted", 1, &v2).is_err());
    }

    #[test]
    fn webhook_registrations_of_version_1_read_as_version_2() {
        let (id, by) = (Uuid::new_v4(), UserId::random());
        let added = WebhookEventV1::Added(AddedV1 {
            id,
            url: "https://hooks.example.com/x".into(),
            events: vec!["message.inbound".into()],
            secret: [9; 32],
            by,
            at_ms: 1,
        });
        let removed = WebhookEventV1::Removed(RemovedV1 { id, by, at_ms: 2 });
        let read: WebhookEvent = decode_payload("WebhookAdded", 1, &whole(&added)).unwrap();
        assert_eq!(
            read,
            WebhookEvent::WebhookAdded(WebhookAdded {
                id,
                url: "https://hooks.example.com/x".into(),
                events: vec!["message.inbound".into()],
                secret: [9; 32],
                by,
                at_ms: 1,
            })
        );
        assert_eq!(encode_payload(&read), whole(&added)[1..]);
        let read: WebhookEvent = decode_payload("WebhookRemoved", 1, &whole(&removed)).unwrap();
        assert_eq!(
            read,
            WebhookEvent::WebhookRemoved(WebhookRemoved { id, by, at_ms: 2 })
        );
        assert!(decode_payload::<WebhookEvent>("WebhookAdded", 1, &whole(&removed)).is_err());
        assert!(decode_payload::<WebhookEvent>("WebhookRemoved", 1, &whole(&added)).is_err());
    }

    #[test]
    fn webhook_delivery_records_of_version_1_read_as_version_2() {
        let (delivery, webhook, org) = (Uuid::new_v4(), Uuid::new_v4(), OrgId::random());
        let queued = |body: &str| QueuedV1 {
            delivery,
            webhook,
            org,
            event: "message.inbound".into(),
            body: body.into(),
            cause: Some(Uuid::from_u128(3)),
            redelivery_of: None,
            by: None,
            at_ms: 1,
        };
        let expected = |body: &str, sealed: Option<SealedBody>| {
            WebhookDeliveryEvent::WebhookDeliveryQueued(WebhookDeliveryQueued {
                delivery,
                webhook,
                org,
                event: "message.inbound".into(),
                body: body.into(),
                cause: Some(Uuid::from_u128(3)),
                redelivery_of: None,
                by: None,
                at_ms: 1,
                sealed,
            })
        };
        let plain = RecordV1::Queued(queued("{}"));
        let read: WebhookDeliveryEvent =
            decode_payload("WebhookDeliveryQueued", 1, &whole(&plain)).unwrap();
        assert_eq!(read, expected("{}", None));

        // A sealed body was another variant (position 3) under the same type.
        let key = TextKey::new(org, vec![], 1_700_000_000_000);
        let sealed = RecordV1::QueuedSealed(SealedQueuedV1 {
            queued: queued(""),
            key: key.clone(),
            sealed: vec![1, 2, 3],
        });
        assert_eq!(whole(&sealed)[0], 3);
        let read: WebhookDeliveryEvent =
            decode_payload("WebhookDeliveryQueued", 1, &whole(&sealed)).unwrap();
        assert_eq!(
            read,
            expected(
                "",
                Some(SealedBody {
                    key,
                    sealed: vec![1, 2, 3]
                })
            )
        );

        let attempted = RecordV1::Attempted(AttemptedV1 {
            attempt: 2,
            at_ms: 5,
            took_ms: 6,
            status: Some(500),
            error: Some("answered 500".into()),
            next_at_ms: Some(7),
        });
        let read: WebhookDeliveryEvent =
            decode_payload("WebhookDeliveryAttempted", 1, &whole(&attempted)).unwrap();
        assert_eq!(
            read,
            WebhookDeliveryEvent::WebhookDeliveryAttempted(WebhookDeliveryAttempted {
                attempt: 2,
                at_ms: 5,
                took_ms: 6,
                status: Some(500),
                error: Some("answered 500".into()),
                next_at_ms: Some(7),
            })
        );
        assert_eq!(encode_payload(&read), whole(&attempted)[1..]);

        let cancelled = RecordV1::Cancelled(CancelledV1 {
            reason: "the webhook was removed".into(),
            at_ms: 8,
        });
        let read: WebhookDeliveryEvent =
            decode_payload("WebhookDeliveryCancelled", 1, &whole(&cancelled)).unwrap();
        assert_eq!(
            read,
            WebhookDeliveryEvent::WebhookDeliveryCancelled(WebhookDeliveryCancelled {
                reason: "the webhook was removed".into(),
                at_ms: 8,
            })
        );

        for (event_type, wrong) in [
            ("WebhookDeliveryQueued", &attempted),
            ("WebhookDeliveryAttempted", &plain),
            ("WebhookDeliveryCancelled", &sealed),
        ] {
            assert!(
                decode_payload::<WebhookDeliveryEvent>(event_type, 1, &whole(wrong)).is_err(),
                "{event_type}"
            );
        }
    }
}
