//! The outbox's ids, stream names and state: what its records (the domain's
//! [`OutboxEvent`]s in `outbox-<id>` and [`CarrierMessageEvent`]s in `carriermsg-<sid>`,
//! see `domain::outbox`) are written under, and what a text's stream says is left to do.
//!
//! Event ids are deterministic wherever two writers (or a retry after a crash) may write
//! the same fact, so the log recognises the repeat: the prepared text and its first attempt
//! derive from the `SmsRequested` (or `SmsArrived`) event, a link from the carrier message
//! id, a status report from (carrier message id, status, error code, hint), and the
//! acceptance of a text is written at most once whoever writes it.
//!
//! [`CarrierMessageEvent`]: domain::outbox::CarrierMessageEvent

use actors::event_codec;
use domain::outbox::{
    CarrierStatusReported, OutboxEvent, SmsAccepted, SmsOrigin, SmsPrepared, SmsSendFailed,
    CARRIER_MESSAGE_CATEGORY, OUTBOX_CATEGORY,
};
use domain::{MessageId, PhoneNumber, VersionedEvent};
use eventlog::{EventData, Metadata, RecordedEvent, StreamName};
use uuid::Uuid;

/// Namespace of outbox ids and their event ids. Fixed forever (ids derive from it).
const OUTBOX_NAMESPACE: Uuid = Uuid::from_u128(0x0b7c_51f2_8a4e_4d1b_9c3e_5f60_7a8b_9c01);
/// Namespace of carrier-message event ids. Fixed forever.
const CARRIER_MESSAGE_NAMESPACE: Uuid = Uuid::from_u128(0x0b7c_51f2_8a4e_4d1b_9c3e_5f60_7a8b_9c02);

/// The log record of an outbox or carrier-message event, with event id `id` (one of the
/// ids below).
///
/// # Errors
/// When the codec refuses it (it does not for these types).
pub fn record<E: VersionedEvent>(event: &E, id: Uuid) -> Result<EventData, String> {
    event_codec::encode(event, id, Metadata::default()).map_err(|e| e.to_string())
}

/// The outbox id of `message_id`'s SMS to `to`: one per (message, recipient).
pub fn message_outbox_id(message_id: MessageId, to: &PhoneNumber) -> Uuid {
    let mut name = Vec::with_capacity(48);
    name.extend_from_slice(b"message\0");
    name.extend_from_slice(message_id.as_uuid().as_bytes());
    name.extend_from_slice(to.as_str().as_bytes());
    Uuid::new_v5(&OUTBOX_NAMESPACE, &name)
}

/// The outbox id of the HELP reply to the text stored as event `arrived_event` (earlier
/// versions; see [`SmsOrigin::HelpReply`]).
pub fn help_outbox_id(arrived_event: Uuid) -> Uuid {
    let mut name = Vec::with_capacity(24);
    name.extend_from_slice(b"help\0");
    name.extend_from_slice(arrived_event.as_bytes());
    Uuid::new_v5(&OUTBOX_NAMESPACE, &name)
}

/// The id of the event `what` (`prepared`, `attempt-2`, `accepted`, ...) of outbox `id`.
pub fn outbox_event_id(id: Uuid, what: &str) -> Uuid {
    Uuid::new_v5(&id, what.as_bytes())
}

/// `outbox-<id>`.
pub fn outbox_stream(id: Uuid) -> StreamName {
    StreamName::from_parts(OUTBOX_CATEGORY, id).expect("a uuid is a valid stream id")
}

/// `carriermsg-<sid>`, or `None` when the carrier's id cannot name a stream.
pub fn carrier_message_stream(carrier_message_id: &str) -> Option<StreamName> {
    let ok = !carrier_message_id.is_empty()
        && carrier_message_id.len() <= 128
        && carrier_message_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    ok.then(|| StreamName::from_parts(CARRIER_MESSAGE_CATEGORY, carrier_message_id).ok())
        .flatten()
}

/// The id of the link of carrier message `sid`.
pub fn link_event_id(sid: &str) -> Uuid {
    let mut name = Vec::with_capacity(48);
    name.extend_from_slice(b"link\0");
    name.extend_from_slice(sid.as_bytes());
    Uuid::new_v5(&CARRIER_MESSAGE_NAMESPACE, &name)
}

/// The id of a status report: the same report arriving twice is the same event.
pub fn report_event_id(sid: &str, report: &CarrierStatusReported) -> Uuid {
    let mut name = Vec::with_capacity(96);
    name.extend_from_slice(b"status\0");
    for part in [
        sid,
        report.status.as_str(),
        report.error_code.as_deref().unwrap_or(""),
    ] {
        name.extend_from_slice(part.as_bytes());
        name.push(0);
    }
    if let Some(hint) = report.outbox_hint {
        name.extend_from_slice(hint.as_bytes());
    }
    Uuid::new_v5(&CARRIER_MESSAGE_NAMESPACE, &name)
}

/// The key the carrier sees for every attempt of one text (the simulator dedupes on it).
pub fn idempotency_key(origin: &SmsOrigin, to: &PhoneNumber) -> String {
    match origin {
        SmsOrigin::Message { message_id, .. } => format!("{message_id}:{to}"),
        SmsOrigin::HelpReply { arrived_event } => format!("help:{arrived_event}"),
    }
}

/// Where an outbox stream stands, folded from its events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboxState {
    pub prepared: Option<SmsPrepared>,
    /// The highest attempt started.
    pub last_attempt: u32,
    /// The last attempt started has no outcome yet.
    pub attempt_open: bool,
    pub accepted: Option<SmsAccepted>,
    /// The last failure (a retry time, or final).
    pub failed: Option<SmsSendFailed>,
}

/// What is left to do for an outbox stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pending {
    /// Accepted, or failed for good (or never prepared).
    Nothing,
    /// Attempt `attempt` started and its outcome is unknown (lost to a crash).
    Unconfirmed { attempt: u32 },
    /// Attempt `attempt` is due at `at_ms`.
    RetryAt { attempt: u32, at_ms: u64 },
}

impl OutboxState {
    /// Folds one event in. A prepared text is kept as read (its body sealed).
    pub fn apply(&mut self, event: &OutboxEvent) {
        match event {
            OutboxEvent::SmsPrepared(p) => self.prepared = Some(p.clone()),
            OutboxEvent::SmsSendStarted(s) => {
                self.last_attempt = self.last_attempt.max(s.attempt);
                self.attempt_open = true;
            }
            OutboxEvent::SmsAccepted(a) => {
                self.accepted = Some(a.clone());
                self.attempt_open = false;
            }
            OutboxEvent::SmsSendFailed(f) => {
                self.failed = Some(f.clone());
                if f.attempt >= self.last_attempt {
                    self.attempt_open = false;
                }
            }
        }
    }

    pub fn pending(&self) -> Pending {
        if self.prepared.is_none() || self.accepted.is_some() {
            return Pending::Nothing;
        }
        if self.attempt_open {
            return Pending::Unconfirmed {
                attempt: self.last_attempt.max(1),
            };
        }
        match &self.failed {
            Some(SmsSendFailed {
                attempt,
                retry_at_ms: Some(at_ms),
                ..
            }) => Pending::RetryAt {
                attempt: attempt + 1,
                at_ms: *at_ms,
            },
            Some(_) => Pending::Nothing,
            // Prepared without an attempt: the first one never started.
            None => Pending::RetryAt {
                attempt: 1,
                at_ms: 0,
            },
        }
    }

    /// Folds records (in stream order), skipping any that do not decode.
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a RecordedEvent>) -> Self {
        let mut state = Self::default();
        for r in records {
            match event_codec::decode::<OutboxEvent>(r) {
                Ok(event) => state.apply(&event),
                Err(e) => tracing::warn!(stream = %r.stream, error = %e, "outbox record skipped"),
            }
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use actors::sealing::Sealer;
    use domain::conversation::AttachmentRef;
    use domain::outbox::{CarrierMessageEvent, CarrierMessageLinked, SmsSendStarted};
    use domain::{AttachmentId, ConversationId, OrgId, Text, TextKey};
    use eventlog::keyring::Keyring;
    use eventlog::{codec, Direction, EventStore, ExpectedVersion, LogOptions, RocksLog};
    use serde::Serialize;

    use super::*;

    /// The records as the outbox wrote them before they were domain events: its own
    /// structs (verbatim), each encoded bare under its type name, `SmsPrepared` as version
    /// 2 (version 1: the body a `String`) and the others as version 1.
    mod old {
        use domain::conversation::AttachmentRef;
        use domain::{ConversationId, MessageId, OrgId, PhoneNumber, Text};
        use serde::Serialize;
        use uuid::Uuid;

        #[derive(Clone, Serialize)]
        pub enum SmsOrigin {
            Message {
                conversation: ConversationId,
                message_id: MessageId,
                requested_event: Uuid,
            },
            HelpReply {
                arrived_event: Uuid,
            },
        }

        #[derive(Serialize)]
        pub struct SmsPrepared {
            pub org: OrgId,
            pub origin: SmsOrigin,
            pub from: PhoneNumber,
            pub to: PhoneNumber,
            pub body: Text,
            pub media: Vec<AttachmentRef>,
            pub at_ms: u64,
        }

        #[derive(Serialize)]
        pub struct SmsPreparedV1 {
            pub org: OrgId,
            pub origin: SmsOrigin,
            pub from: PhoneNumber,
            pub to: PhoneNumber,
            pub body: String,
            pub media: Vec<AttachmentRef>,
            pub at_ms: u64,
        }

        #[derive(Serialize)]
        pub struct SmsSendStarted {
            pub attempt: u32,
            pub at_ms: u64,
        }

        #[derive(Serialize)]
        pub struct SmsAccepted {
            pub attempt: u32,
            pub carrier: String,
            pub carrier_message_id: String,
            pub status: String,
            pub confirmed_by: String,
            pub at_ms: u64,
        }

        #[derive(Serialize)]
        pub struct SmsSendFailed {
            pub attempt: u32,
            pub code: String,
            pub message: String,
            pub retry_at_ms: Option<u64>,
            pub at_ms: u64,
        }

        #[derive(Serialize)]
        pub struct CarrierMessageLinked {
            pub outbox: Uuid,
            pub org: OrgId,
            pub origin: SmsOrigin,
            pub to: PhoneNumber,
        }

        #[derive(Serialize)]
        pub struct CarrierStatusReported {
            pub status: String,
            pub error_code: Option<String>,
            pub outbox_hint: Option<Uuid>,
        }
    }

    /// What the old `OutboxRecord::encode` / `CarrierMessageRecord::encode` built.
    fn old_record(event_type: &str, version: u16, payload: &impl Serialize, id: Uuid) -> EventData {
        EventData::new(event_type, version, codec::encode(payload).unwrap()).with_id(id)
    }

    fn number(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s).unwrap()
    }

    /// One text's records in both forms: (old, new), in stream order.
    struct Sample {
        org: OrgId,
        conversation: ConversationId,
        message_id: MessageId,
        requested_event: Uuid,
        media: Vec<AttachmentRef>,
        body: Text,
    }

    impl Sample {
        fn new() -> Self {
            let org = OrgId::random();
            Self {
                org,
                conversation: ConversationId::random(),
                message_id: MessageId::random(),
                requested_event: Uuid::new_v4(),
                media: vec![AttachmentRef {
                    id: AttachmentId::random(),
                    mime: "image/png".into(),
                    size_bytes: 1234,
                }],
                // As the log holds it: sealed (stand-in bytes for a ciphertext).
                body: Text::Sealed {
                    key: TextKey::new(org, vec![number("+15550002000")], 5),
                    check: vec![1; 8],
                    nonce: vec![2; 24],
                    ciphertext: b"hello".to_vec(),
                },
            }
        }

        fn old_origin(&self) -> old::SmsOrigin {
            old::SmsOrigin::Message {
                conversation: self.conversation,
                message_id: self.message_id,
                requested_event: self.requested_event,
            }
        }

        fn origin(&self) -> SmsOrigin {
            SmsOrigin::Message {
                conversation: self.conversation,
                message_id: self.message_id,
                requested_event: self.requested_event,
            }
        }

        fn outbox(&self) -> Uuid {
            message_outbox_id(self.message_id, &number("+15550002000"))
        }

        fn outbox_records(&self) -> Vec<(EventData, OutboxEvent)> {
            let id = self.outbox();
            let (from, to) = (number("+15550001000"), number("+15550002000"));
            vec![
                (
                    old_record(
                        "SmsPrepared",
                        2,
                        &old::SmsPrepared {
                            org: self.org,
                            origin: self.old_origin(),
                            from: from.clone(),
                            to: to.clone(),
                            body: self.body.clone(),
                            media: self.media.clone(),
                            at_ms: 5,
                        },
                        outbox_event_id(id, "prepared"),
                    ),
                    OutboxEvent::SmsPrepared(SmsPrepared {
                        org: self.org,
                        origin: self.origin(),
                        from,
                        to,
                        body: self.body.clone(),
                        media: self.media.clone(),
                        at_ms: 5,
                    }),
                ),
                (
                    old_record(
                        "SmsSendStarted",
                        1,
                        &old::SmsSendStarted {
                            attempt: 1,
                            at_ms: 5,
                        },
                        outbox_event_id(id, "attempt-1"),
                    ),
                    OutboxEvent::SmsSendStarted(SmsSendStarted {
                        attempt: 1,
                        at_ms: 5,
                    }),
                ),
                (
                    old_record(
                        "SmsSendFailed",
                        1,
                        &old::SmsSendFailed {
                            attempt: 1,
                            code: "http_503".into(),
                            message: "down".into(),
                            retry_at_ms: Some(60),
                            at_ms: 6,
                        },
                        outbox_event_id(id, "failed-1"),
                    ),
                    OutboxEvent::SmsSendFailed(SmsSendFailed {
                        attempt: 1,
                        code: "http_503".into(),
                        message: "down".into(),
                        retry_at_ms: Some(60),
                        at_ms: 6,
                    }),
                ),
                (
                    old_record(
                        "SmsSendStarted",
                        1,
                        &old::SmsSendStarted {
                            attempt: 2,
                            at_ms: 60,
                        },
                        outbox_event_id(id, "attempt-2"),
                    ),
                    OutboxEvent::SmsSendStarted(SmsSendStarted {
                        attempt: 2,
                        at_ms: 60,
                    }),
                ),
                (
                    old_record(
                        "SmsAccepted",
                        1,
                        &old::SmsAccepted {
                            attempt: 2,
                            carrier: "twilio".into(),
                            carrier_message_id: "SM1".into(),
                            status: "queued".into(),
                            confirmed_by: "response".into(),
                            at_ms: 61,
                        },
                        outbox_event_id(id, "accepted"),
                    ),
                    OutboxEvent::SmsAccepted(SmsAccepted {
                        attempt: 2,
                        carrier: "twilio".into(),
                        carrier_message_id: "SM1".into(),
                        status: "queued".into(),
                        confirmed_by: "response".into(),
                        at_ms: 61,
                    }),
                ),
            ]
        }

        fn carrier_message_records(&self) -> Vec<(EventData, CarrierMessageEvent)> {
            let reported = CarrierStatusReported {
                status: "delivered".into(),
                error_code: Some("30005".into()),
                outbox_hint: Some(self.outbox()),
            };
            vec![
                (
                    old_record(
                        "CarrierMessageLinked",
                        1,
                        &old::CarrierMessageLinked {
                            outbox: self.outbox(),
                            org: self.org,
                            origin: self.old_origin(),
                            to: number("+15550002000"),
                        },
                        link_event_id("SM1"),
                    ),
                    CarrierMessageEvent::CarrierMessageLinked(CarrierMessageLinked {
                        outbox: self.outbox(),
                        org: self.org,
                        origin: self.origin(),
                        to: number("+15550002000"),
                    }),
                ),
                (
                    old_record(
                        "CarrierStatusReported",
                        1,
                        &old::CarrierStatusReported {
                            status: "delivered".into(),
                            error_code: Some("30005".into()),
                            outbox_hint: Some(self.outbox()),
                        },
                        report_event_id("SM1", &reported),
                    ),
                    CarrierMessageEvent::CarrierStatusReported(reported),
                ),
            ]
        }
    }

    #[test]
    fn the_records_are_the_bytes_written_before() {
        let sample = Sample::new();
        let outbox = sample.outbox_records();
        let carrier = sample.carrier_message_records();
        let new = outbox
            .iter()
            .map(|(old, event)| (old, record(event, old.event_id).unwrap()))
            .chain(
                carrier
                    .iter()
                    .map(|(old, event)| (old, record(event, old.event_id).unwrap())),
            );
        for (old, new) in new {
            assert_eq!(
                (new.event_type.as_str(), new.schema_version),
                (old.event_type.as_str(), old.schema_version)
            );
            assert_eq!(new.payload, old.payload, "{}", old.event_type);
            assert_eq!(new.metadata, old.metadata);
        }
        // A HELP reply's origin (the other variant) too.
        let arrived_event = Uuid::new_v4();
        let linked = CarrierMessageEvent::CarrierMessageLinked(CarrierMessageLinked {
            outbox: help_outbox_id(arrived_event),
            org: sample.org,
            origin: SmsOrigin::HelpReply { arrived_event },
            to: number("+15550002000"),
        });
        let old = old::CarrierMessageLinked {
            outbox: help_outbox_id(arrived_event),
            org: sample.org,
            origin: old::SmsOrigin::HelpReply { arrived_event },
            to: number("+15550002000"),
        };
        assert_eq!(
            record(&linked, Uuid::nil()).unwrap().payload,
            codec::encode(&old).unwrap()
        );
    }

    /// The outbox seals a prepared text's body through the event's `Texts`: sealed once,
    /// under the body's key, what is stored is the old struct around that sealed body.
    #[test]
    fn a_prepared_text_is_stored_sealed_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Sealer::new(Arc::new(Keyring::open(dir.path()).unwrap()));
        let sample = Sample::new();
        let key = TextKey::new(sample.org, vec![number("+15550002000")], 5);
        let mut event = OutboxEvent::SmsPrepared(SmsPrepared {
            org: sample.org,
            origin: sample.origin(),
            from: number("+15550001000"),
            to: number("+15550002000"),
            body: Text::new("hello", key.clone()),
            media: vec![],
            at_ms: 5,
        });
        sealer.seal_event_blocking(&mut event).unwrap();
        let OutboxEvent::SmsPrepared(sealed) = &event else {
            unreachable!()
        };
        assert!(matches!(&sealed.body, Text::Sealed { key: k, .. } if *k == key));
        let old = old::SmsPrepared {
            org: sample.org,
            origin: sample.old_origin(),
            from: number("+15550001000"),
            to: number("+15550002000"),
            body: sealed.body.clone(),
            media: vec![],
            at_ms: 5,
        };
        let stored = record(&event, Uuid::nil()).unwrap();
        assert_eq!(stored.payload, codec::encode(&old).unwrap());
        // Read back it stays sealed until the job opens it.
        let read = stored_as_read(stored);
        let OutboxEvent::SmsPrepared(read_back) =
            event_codec::decode::<OutboxEvent>(&read).unwrap()
        else {
            unreachable!()
        };
        assert_eq!(read_back.body, sealed.body);
        let mut body = read_back.body;
        sealer.open_blocking(&mut body);
        assert_eq!(body, "hello");
        // Other events carry no text.
        let started = OutboxEvent::SmsSendStarted(SmsSendStarted {
            attempt: 1,
            at_ms: 1,
        });
        assert!(!domain::Texts::has_texts(&started));
    }

    fn stored_as_read(data: EventData) -> RecordedEvent {
        RecordedEvent::unchained(outbox_stream(Uuid::nil()), 0, data)
    }

    #[tokio::test]
    async fn records_written_before_they_were_domain_events_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn EventStore> =
            Arc::new(RocksLog::open(dir.path().join("log"), LogOptions::default()).unwrap());
        let read = |stream: StreamName| {
            let store = store.clone();
            async move {
                eventlog::store::nonblocking::read_stream(
                    &store,
                    &stream,
                    0,
                    Direction::Forward,
                    64,
                )
                .await
                .unwrap()
            }
        };

        // A text's stream as the outbox wrote it, and the carrier message's.
        let sample = Sample::new();
        let (old, expected): (Vec<_>, Vec<_>) = sample.outbox_records().into_iter().unzip();
        let stream = outbox_stream(sample.outbox());
        store
            .append(stream.clone(), ExpectedVersion::NoStream, old)
            .await
            .unwrap();
        let stored = read(stream).await;
        let events: Vec<OutboxEvent> = stored
            .iter()
            .map(|r| event_codec::decode(r).unwrap())
            .collect();
        assert_eq!(events, expected);
        let state = OutboxState::from_records(&stored);
        let OutboxEvent::SmsPrepared(prepared) = &expected[0] else {
            unreachable!()
        };
        assert_eq!(state.prepared.as_ref(), Some(prepared));
        assert_eq!((state.last_attempt, state.pending()), (2, Pending::Nothing));

        let (old, expected): (Vec<_>, Vec<_>) =
            sample.carrier_message_records().into_iter().unzip();
        let stream = carrier_message_stream("SM1").unwrap();
        store
            .append(stream.clone(), ExpectedVersion::NoStream, old)
            .await
            .unwrap();
        let events: Vec<CarrierMessageEvent> = read(stream)
            .await
            .iter()
            .map(|r| event_codec::decode(r).unwrap())
            .collect();
        assert_eq!(events, expected);

        // A text prepared before texts were sealed (version 1, the body a string), whose
        // first attempt's outcome was lost: it reads with its body in the clear, pending.
        let arrived_event = Uuid::new_v4();
        let id = help_outbox_id(arrived_event);
        let v1 = old::SmsPreparedV1 {
            org: sample.org,
            origin: old::SmsOrigin::HelpReply { arrived_event },
            from: number("+15550001000"),
            to: number("+15550002000"),
            body: "Reply STOP to stop".into(),
            media: vec![],
            at_ms: 7,
        };
        let started = old::SmsSendStarted {
            attempt: 1,
            at_ms: 7,
        };
        store
            .append(
                outbox_stream(id),
                ExpectedVersion::NoStream,
                vec![
                    old_record("SmsPrepared", 1, &v1, outbox_event_id(id, "prepared")),
                    old_record(
                        "SmsSendStarted",
                        1,
                        &started,
                        outbox_event_id(id, "attempt-1"),
                    ),
                ],
            )
            .await
            .unwrap();
        let state = OutboxState::from_records(&read(outbox_stream(id)).await);
        assert_eq!(
            state.prepared,
            Some(SmsPrepared {
                org: sample.org,
                origin: SmsOrigin::HelpReply { arrived_event },
                from: number("+15550001000"),
                to: number("+15550002000"),
                body: Text::unsealed("Reply STOP to stop"),
                media: vec![],
                at_ms: 7,
            })
        );
        assert_eq!(state.pending(), Pending::Unconfirmed { attempt: 1 });
    }

    fn prepared() -> SmsPrepared {
        SmsPrepared {
            org: OrgId::random(),
            origin: SmsOrigin::HelpReply {
                arrived_event: Uuid::new_v4(),
            },
            from: number("+15550001000"),
            to: number("+15550002000"),
            body: Text::unsealed("hi"),
            media: vec![],
            at_ms: 5,
        }
    }

    #[test]
    fn pending_follows_the_attempts() {
        let mut s = OutboxState::default();
        assert_eq!(s.pending(), Pending::Nothing, "nothing prepared");
        s.apply(&OutboxEvent::SmsPrepared(prepared()));
        s.apply(&OutboxEvent::SmsSendStarted(SmsSendStarted {
            attempt: 1,
            at_ms: 1,
        }));
        assert_eq!(s.pending(), Pending::Unconfirmed { attempt: 1 });
        s.apply(&OutboxEvent::SmsSendFailed(SmsSendFailed {
            attempt: 1,
            code: "timeout".into(),
            message: String::new(),
            retry_at_ms: Some(50),
            at_ms: 2,
        }));
        assert_eq!(
            s.pending(),
            Pending::RetryAt {
                attempt: 2,
                at_ms: 50
            }
        );
        s.apply(&OutboxEvent::SmsSendStarted(SmsSendStarted {
            attempt: 2,
            at_ms: 50,
        }));
        assert_eq!(s.pending(), Pending::Unconfirmed { attempt: 2 });
        s.apply(&OutboxEvent::SmsAccepted(SmsAccepted {
            attempt: 2,
            carrier: "twilio".into(),
            carrier_message_id: "SM1".into(),
            status: "queued".into(),
            confirmed_by: "response".into(),
            at_ms: 51,
        }));
        assert_eq!(s.pending(), Pending::Nothing);
    }

    #[test]
    fn ids_are_deterministic_and_distinct() {
        let m = MessageId::random();
        let a = number("+15550001000");
        let b = number("+15550002000");
        assert_eq!(message_outbox_id(m, &a), message_outbox_id(m, &a));
        assert_ne!(message_outbox_id(m, &a), message_outbox_id(m, &b));
        let r = |status: &str| CarrierStatusReported {
            status: status.into(),
            error_code: None,
            outbox_hint: None,
        };
        assert_eq!(
            report_event_id("SM1", &r("sent")),
            report_event_id("SM1", &r("sent"))
        );
        assert_ne!(
            report_event_id("SM1", &r("sent")),
            report_event_id("SM1", &r("delivered"))
        );
        assert!(carrier_message_stream("SMabc123").is_some());
        assert!(carrier_message_stream("SM/../x").is_none());
        assert!(carrier_message_stream("").is_none());
    }
}
