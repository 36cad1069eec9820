//! One event of every variant of every event enum, built from a few values that proptest
//! varies (so the same builder serves the fixed tests and the property tests), and the
//! log's codec as the actor layer calls it.

#![allow(dead_code)] // each test file uses its part

use std::collections::BTreeSet;
use std::fmt::Debug;

use bincode::config::Config;
use proptest::prelude::*;
use uuid::Uuid;

use domain::conversation::{self as c, ConversationKind, DeliveryStatus, SystemNote};
use domain::directory::{self as d, ContactDetails, ContactOwner, Extension, Routing};
use domain::inbound::{InboundEvent, SmsArrived};
use domain::inbox as i;
use domain::queue::WaitTimeoutAction;
use domain::queue::{self as q, CloseReason, IdleTimeoutAction, QueuePolicy, TimeoutKind};
use domain::{
    Actor, AttachmentId, CallId, ContactId, ConversationEvent, ConversationId, DirectoryEvent,
    DomainEvent, InboxEvent, InboxId, MessageId, OrgId, PhoneNumber, QueueEvent, QueueId, Role,
    UserId, VersionedEvent,
};

/// The log's bincode configuration (crates/eventlog/src/codec.rs).
pub fn config() -> impl Config {
    bincode::config::standard().with_limit::<{ 64 * 1024 * 1024 }>()
}

/// The payload bytes the log stores for `event`.
pub fn encode_payload<E: VersionedEvent>(event: &E) -> Vec<u8> {
    let mut bytes = Vec::new();
    bincode::serde::encode_into_std_write(event.payload(), &mut bytes, config())
        .expect("every payload encodes");
    bytes
}

/// Reads `bytes` stored as `schema_version` of `event_type`, as the log's reader does.
pub fn decode_payload<E: VersionedEvent>(
    event_type: &str,
    schema_version: u16,
    bytes: &[u8],
) -> Result<E, String> {
    let seed = E::payload_seed(event_type, schema_version).map_err(|e| e.to_string())?;
    let (event, read) =
        bincode::serde::seed_decode_from_slice(seed, bytes, config()).map_err(|e| e.to_string())?;
    if read != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - read));
    }
    Ok(event)
}

/// What the samples are made of.
#[derive(Clone, Debug)]
pub struct Params {
    pub ids: [u128; 3],
    pub text: String,
    pub n: u64,
    pub opt_n: Option<u64>,
    pub opt_text: Option<String>,
    pub flag: bool,
    /// Chooses among the variants of nested enums.
    pub pick: u8,
    pub numbers: [PhoneNumber; 2],
}

impl Params {
    pub fn fixed() -> Self {
        Self {
            ids: [1, 2, 3],
            text: "Hi! Is my order ready? 🙂".into(),
            n: 1_700_000_000_000,
            opt_n: Some(42),
            opt_text: Some("SM0123456789abcdef".into()),
            flag: true,
            pick: 0,
            numbers: [number("+16135550100"), number("+14155550142")],
        }
    }
}

pub fn number(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).expect("valid test number")
}

pub fn params() -> impl Strategy<Value = Params> {
    let phone = "\\+[1-9][0-9]{7,14}".prop_map(|s| number(&s));
    (
        any::<[u128; 3]>(),
        any::<String>(),
        any::<u64>(),
        any::<Option<u64>>(),
        any::<Option<String>>(),
        any::<bool>(),
        any::<u8>(),
        [phone.clone(), phone],
    )
        .prop_map(
            |(ids, text, n, opt_n, opt_text, flag, pick, numbers)| Params {
                ids,
                text,
                n,
                opt_n,
                opt_text,
                flag,
                pick,
                numbers,
            },
        )
}

/// One event of every variant, per enum.
#[derive(Clone, Debug)]
pub struct Samples {
    pub conversation: Vec<ConversationEvent>,
    pub directory: Vec<DirectoryEvent>,
    pub inbox: Vec<InboxEvent>,
    pub queue: Vec<QueueEvent>,
    pub inbound: Vec<InboundEvent>,
    pub erasure: Vec<domain::erasure::ErasureEvent>,
    pub attachment: Vec<domain::attachment::AttachmentEvent>,
    pub session: Vec<domain::session::SessionEvent>,
    pub credential: Vec<domain::credential::CredentialEvent>,
    pub webhook: Vec<domain::webhook::WebhookEvent>,
    pub webhook_delivery: Vec<domain::webhook::WebhookDeliveryEvent>,
    pub claim: Vec<domain::claim::ClaimEvent>,
    pub idempotency: Vec<domain::idempotency::IdempotencyEvent>,
    pub outbox: Vec<domain::outbox::OutboxEvent>,
    pub carrier_message: Vec<domain::outbox::CarrierMessageEvent>,
    pub sms_thread: Vec<domain::sms_thread::SmsThreadEvent>,
}

impl Samples {
    /// (event type, schema version) of every sample.
    pub fn types(&self) -> Vec<(&'static str, u16)> {
        fn of<E: DomainEvent>(events: &[E]) -> impl Iterator<Item = (&'static str, u16)> + '_ {
            events.iter().map(|e| (e.event_type(), e.schema_version()))
        }
        of(&self.conversation)
            .chain(of(&self.directory))
            .chain(of(&self.inbox))
            .chain(of(&self.queue))
            .chain(of(&self.inbound))
            .chain(of(&self.erasure))
            .chain(of(&self.attachment))
            .chain(of(&self.session))
            .chain(of(&self.credential))
            .chain(of(&self.webhook))
            .chain(of(&self.webhook_delivery))
            .chain(of(&self.claim))
            .chain(of(&self.idempotency))
            .chain(of(&self.outbox))
            .chain(of(&self.carrier_message))
            .chain(of(&self.sms_thread))
            .collect()
    }

    /// Calls `check` on every sample's JSON payload: its event type and its `serde_json`
    /// text (the fields in the order serde writes them).
    pub fn json_payloads(&self) -> Vec<(&'static str, String)> {
        fn of<E: VersionedEvent>(
            events: &[E],
        ) -> impl Iterator<Item = (&'static str, String)> + '_ {
            events.iter().map(|e| {
                (
                    e.event_type(),
                    serde_json::to_string(&e.payload()).expect("JSON encodes"),
                )
            })
        }
        of(&self.conversation)
            .chain(of(&self.directory))
            .chain(of(&self.inbox))
            .chain(of(&self.queue))
            .chain(of(&self.inbound))
            .chain(of(&self.erasure))
            .chain(of(&self.attachment))
            .chain(of(&self.session))
            .chain(of(&self.credential))
            .chain(of(&self.webhook))
            .chain(of(&self.webhook_delivery))
            .chain(of(&self.claim))
            .chain(of(&self.idempotency))
            .chain(of(&self.outbox))
            .chain(of(&self.carrier_message))
            .chain(of(&self.sms_thread))
            .collect()
    }
}

pub fn samples(p: &Params) -> Samples {
    let uuid = |k: usize| Uuid::from_u128(p.ids[k % 3]);
    let (org, user, other) = (
        OrgId::from_uuid(uuid(0)),
        UserId::from_uuid(uuid(1)),
        UserId::from_uuid(uuid(2)),
    );
    let (queue, inbox) = (QueueId::from_uuid(uuid(0)), InboxId::from_uuid(uuid(1)));
    let (our, their) = (p.numbers[0].clone(), p.numbers[1].clone());
    let message_id = MessageId::from_uuid(uuid(2));
    let at_ms = p.n;
    let text = p.text.clone();
    let pick = usize::from(p.pick);
    let users: BTreeSet<UserId> = [user, other].into();
    let by = [
        Actor::User {
            id: user,
            role: Role::Admin,
        },
        Actor::User {
            id: other,
            role: Role::Member,
        },
        Actor::System,
    ][pick % 3];
    let attachments = vec![c::AttachmentRef {
        id: AttachmentId::from_uuid(uuid(1)),
        mime: "image/png".into(),
        size_bytes: p.n / 3,
    }];
    let kind = match pick % 4 {
        0 => ConversationKind::External {
            our: our.clone(),
            their: their.clone(),
        },
        1 => ConversationKind::Direct { a: user, b: other },
        2 => ConversationKind::Channel {
            name: text.clone(),
            members: users.clone(),
        },
        _ => ConversationKind::Group {
            our: our.clone(),
            users: users.clone(),
            externals: [their.clone()].into(),
        },
    };
    let status = match pick % 6 {
        0 => DeliveryStatus::Requested,
        1 => DeliveryStatus::Queued,
        2 => DeliveryStatus::Sent,
        3 => DeliveryStatus::Delivered,
        4 => DeliveryStatus::Failed {
            reason: text.clone(),
        },
        _ => DeliveryStatus::Undelivered {
            reason: text.clone(),
        },
    };
    let reason = [
        CloseReason::ByAgent,
        CloseReason::WaitTimeout,
        CloseReason::IdleTimeout,
        CloseReason::Overflowed,
    ][pick % 4]
        .clone();
    let timeout = [TimeoutKind::Wait, TimeoutKind::Idle][pick % 2];
    let note = match pick % 6 {
        0 => SystemNote::Queued { queue },
        1 => SystemNote::ClaimedBy { queue, agent: user },
        2 => SystemNote::TransferredTo {
            queue,
            from: user,
            to: other,
        },
        3 => SystemNote::Released {
            queue,
            by: Some(user),
        },
        4 => SystemNote::Closed {
            queue,
            by: None,
            reason: reason.clone(),
        },
        _ => SystemNote::TimedOut {
            queue,
            kind: timeout,
        },
    };
    let wait_action = match pick % 4 {
        0 => WaitTimeoutAction::Close,
        1 => WaitTimeoutAction::CloseWithReply { text: text.clone() },
        2 => WaitTimeoutAction::OverflowToQueue(queue),
        _ => WaitTimeoutAction::OverflowToInbox(inbox),
    };
    let idle_action = [IdleTimeoutAction::ReturnToQueue, IdleTimeoutAction::Close][pick % 2];
    #[allow(
        clippy::cast_possible_truncation,
        reason = "any u32 will do: the low half of an arbitrary u64"
    )]
    let max_pending_visible = p.opt_n.map(|n| n as u32);
    let policy = QueuePolicy {
        wait_timeout_ms: p.opt_n,
        on_wait_timeout: wait_action.clone(),
        idle_timeout_ms: p.opt_n.map(|n| n / 2),
        on_idle_timeout: idle_action,
        max_pending_visible,
    };
    let routing = [
        Routing::User(user),
        Routing::Inbox(inbox),
        Routing::Queue(queue),
    ][pick % 3];
    let details = ContactDetails {
        name: text.clone(),
        company: String::new(),
        numbers: vec![their.clone(), our.clone()],
    };
    let contact = ContactId::from_uuid(uuid(2));
    let call = CallId::from_uuid(uuid(0));
    let conversation = ConversationId::from_uuid(uuid(1));
    let opt_user = p.flag.then_some(user);

    // Texts as the log stores them: sealed (the bytes here stand in for a ciphertext).
    let sealed = domain::Text::Sealed {
        key: domain::TextKey::new(org, vec![their.clone()], at_ms),
        check: vec![1; 8],
        nonce: vec![2; 24],
        ciphertext: text.clone().into_bytes(),
    };
    use ConversationEvent as CE;
    let conversation_events = vec![
        CE::ConversationStarted(c::ConversationStarted {
            id: conversation,
            org,
            kind,
            by,
            at_ms,
        }),
        CE::MessagePosted(c::MessagePosted {
            message_id,
            seq: p.n,
            author: user,
            text: sealed.clone(),
            attachments: attachments.clone(),
            at_ms,
        }),
        CE::InboundReceived(c::InboundReceived {
            message_id,
            seq: p.n,
            from: their.clone(),
            text: sealed.clone(),
            media: attachments.clone(),
            at_ms,
        }),
        CE::SmsRequested(c::SmsRequested {
            message_id,
            to: their.clone(),
            from: our.clone(),
            at_ms,
        }),
        CE::SmsWithheld(c::SmsWithheld {
            message_id,
            to: their.clone(),
            at_ms,
        }),
        CE::DeliveryUpdated(c::DeliveryUpdated {
            message_id,
            to: their.clone(),
            status,
            carrier_message_id: p.opt_text.clone(),
            error_code: p.flag.then(|| "30005".to_owned()),
            at_ms,
        }),
        CE::MessagesRead(c::MessagesRead {
            user,
            up_to: p.n,
            at_ms,
        }),
        CE::CallStarted(c::CallStarted {
            call,
            media: [c::CallMedia::Audio, c::CallMedia::Video][pick % 2],
            by: user,
            at_ms,
        }),
        CE::CallEnded(c::CallEnded {
            call,
            by: other,
            at_ms,
        }),
        CE::ChannelMemberJoined(c::ChannelMemberJoined { user, at_ms }),
        CE::ChannelMembersAdded(c::ChannelMembersAdded {
            users: users.clone(),
            by: user,
            at_ms,
        }),
        CE::ChannelMemberLeft(c::ChannelMemberLeft { user, at_ms }),
        CE::ChannelRenamed(c::ChannelRenamed {
            name: text.clone(),
            by: user,
            at_ms,
        }),
        CE::InboxAttached(c::InboxAttached { inbox, at_ms }),
        CE::InboxDetached(c::InboxDetached { inbox, at_ms }),
        CE::ConversationAssigned(c::ConversationAssigned {
            to: user,
            taken_from: opt_user,
            at_ms,
        }),
        CE::ConversationTransferred(c::ConversationTransferred {
            from: opt_user,
            to: other,
            by,
            at_ms,
        }),
        CE::ReturnedToInbox(c::ReturnedToInbox {
            from: opt_user,
            by,
            at_ms,
        }),
        CE::MarkedDone(c::MarkedDone {
            was_assigned_to: opt_user,
            by,
            at_ms,
        }),
        CE::ReopenedByInboundText(c::ReopenedByInboundText { message_id, at_ms }),
        CE::OptedOut(c::OptedOut {
            number: their.clone(),
            at_ms,
        }),
        CE::OptedIn(c::OptedIn {
            number: their.clone(),
            at_ms,
        }),
        CE::SystemMessageRecorded(c::SystemMessageRecorded { note, at_ms }),
        CE::AutoReplyPosted(c::AutoReplyPosted {
            message_id,
            seq: p.n,
            from: our.clone(),
            reply_to: message_id,
            text: sealed.clone(),
            at_ms,
        }),
    ];

    use DirectoryEvent as DE;
    let extension = Extension::parse(&format!("{:02}", p.n % 1000)).expect("valid extension");
    let role = [Role::Admin, Role::Member][pick % 2];
    let directory_events = vec![
        DE::OrganizationCreated(d::OrganizationCreated {
            org,
            name: text.clone(),
            at_ms,
        }),
        DE::UserAdded(d::UserAdded {
            user,
            name: text.clone(),
            extension,
            role,
            by,
            at_ms,
        }),
        DE::RoleChanged(d::RoleChanged {
            user,
            role,
            by,
            at_ms,
        }),
        DE::TextMessagesToDeskPhoneSet(d::TextMessagesToDeskPhoneSet {
            user,
            enabled: p.flag,
            by,
            at_ms,
        }),
        DE::UserRenamed(d::UserRenamed {
            user,
            name: text.clone(),
            by,
            at_ms,
        }),
        DE::NumberAdded(d::NumberAdded {
            number: our.clone(),
            route: routing,
            by,
            at_ms,
        }),
        DE::NumberSmsRegistered(d::NumberSmsRegistered {
            number: our.clone(),
            by,
            at_ms,
        }),
        DE::NumberSmsUnregistered(d::NumberSmsUnregistered {
            number: our.clone(),
            by,
            at_ms,
        }),
        DE::NumberRouted(d::NumberRouted {
            number: our.clone(),
            to: routing,
            by,
            at_ms,
        }),
        DE::NumberAssigned(d::NumberAssigned {
            number: our.clone(),
            user,
            by,
            at_ms,
        }),
        DE::NumberUnassigned(d::NumberUnassigned {
            number: our.clone(),
            user,
            by,
            at_ms,
        }),
        DE::ContactAdded(d::ContactAdded {
            contact,
            owner: if p.flag {
                ContactOwner::Organization
            } else {
                ContactOwner::User(user)
            },
            details: details.clone(),
            by,
            at_ms,
        }),
        DE::ContactUpdated(d::ContactUpdated {
            contact,
            details,
            by,
            at_ms,
        }),
        DE::ContactDeleted(d::ContactDeleted { contact, by, at_ms }),
    ];

    use InboxEvent as IE;
    let inbox_events = vec![
        IE::InboxCreated(i::InboxCreated {
            id: inbox,
            org,
            name: text.clone(),
            number: our.clone(),
            by,
            at_ms,
        }),
        IE::InboxMemberAdded(i::InboxMemberAdded { user, by, at_ms }),
        IE::InboxMemberRemoved(i::InboxMemberRemoved { user, by, at_ms }),
        IE::InboxRenamed(i::InboxRenamed {
            name: text.clone(),
            by,
            at_ms,
        }),
    ];

    use QueueEvent as QE;
    let interaction = p.n / 7;
    let queue_events = vec![
        QE::QueueCreated(q::QueueCreated {
            id: queue,
            org,
            name: text.clone(),
            number: our.clone(),
            policy: policy.clone(),
            at_ms,
        }),
        QE::QueueMemberAdded(q::QueueMemberAdded { user, at_ms }),
        QE::QueueMemberRemoved(q::QueueMemberRemoved { user, at_ms }),
        QE::QueuePolicyChanged(q::QueuePolicyChanged { policy, at_ms }),
        QE::AgentLoggedIn(q::AgentLoggedIn { agent: user, at_ms }),
        QE::AgentLoggedOut(q::AgentLoggedOut { agent: user, at_ms }),
        QE::InteractionQueued(q::InteractionQueued {
            conversation,
            interaction,
            at_ms,
            wait_deadline_ms: p.opt_n,
        }),
        QE::InteractionClaimed(q::InteractionClaimed {
            conversation,
            interaction,
            agent: user,
            at_ms,
            idle_deadline_ms: p.opt_n,
        }),
        QE::InteractionReleased(q::InteractionReleased {
            conversation,
            interaction,
            by: opt_user,
            at_ms,
            wait_deadline_ms: p.opt_n,
        }),
        QE::InteractionTransferred(q::InteractionTransferred {
            conversation,
            interaction,
            from: user,
            to: other,
            by: opt_user,
            at_ms,
            idle_deadline_ms: p.opt_n,
        }),
        QE::InteractionClosed(q::InteractionClosed {
            conversation,
            interaction,
            by: opt_user,
            reason,
            auto_reply: p.opt_text.clone(),
            at_ms,
        }),
        QE::QueueActivityRecorded(q::QueueActivityRecorded {
            conversation,
            interaction,
            at_ms,
            idle_deadline_ms: p.opt_n,
        }),
        QE::QueueTimedOut(q::QueueTimedOut {
            conversation,
            interaction,
            kind: timeout,
            deadline_ms: p.n / 2,
            at_ms,
            wait_action: p.flag.then_some(wait_action),
            idle_action: (!p.flag).then_some(idle_action),
        }),
    ];

    let inbound_events = vec![InboundEvent::SmsArrived(SmsArrived {
        org,
        to: our,
        from: their,
        text: sealed.clone(),
        media: attachments.clone(),
        carrier_message_id: p.opt_text.clone().unwrap_or_default(),
        at_ms,
    })];

    use domain::erasure as er;
    let erasure_events = vec![
        er::ErasureEvent::RetentionSet(er::RetentionSet {
            org,
            days: p.flag.then_some(30),
            by: user,
            at_ms,
        }),
        er::ErasureEvent::CustomerErased(er::CustomerErased {
            org,
            customer: p.numbers[0].clone(),
            by: user,
            at_ms,
        }),
        er::ErasureEvent::RetentionApplied(er::RetentionApplied {
            org,
            before_day: 3,
            keys: p.n,
            at_ms,
        }),
    ];

    use domain::attachment as at;
    let attachment_events = vec![
        at::AttachmentEvent::AttachmentStored(at::AttachmentStored {
            org,
            hash: format!("{:064x}", p.n),
            mime: "image/png".to_owned(),
            size: p.n,
        }),
        at::AttachmentEvent::AttachmentUnavailable(at::AttachmentUnavailable {
            org,
            carrier_message_id: p.opt_text.clone().unwrap_or_default(),
            index: 2,
            code: "media_fetch_timeout".to_owned(),
            reason: "the carrier's media server did not answer".to_owned(),
            claimed_mime: p.flag.then(|| "image/jpeg".to_owned()),
        }),
        at::AttachmentEvent::AttachmentReferenced(at::AttachmentReferenced {
            conversation: domain::ConversationId::from_uuid(uuid(1)),
        }),
        at::AttachmentEvent::AttachmentErased(at::AttachmentErased {
            reason: "customer_erased".to_owned(),
            cause: uuid(2),
        }),
    ];

    use domain::session as se;
    let session_events = vec![
        se::SessionEvent::SessionStarted(se::SessionStarted {
            org,
            user,
            secret_hash: [p.pick.wrapping_add(1); 32],
            expires_at_ms: at_ms,
        }),
        se::SessionEvent::SessionRevoked(se::SessionRevoked { at_ms }),
        se::SessionEvent::SessionOpened(se::SessionOpened {
            session: uuid(1),
            expires_at_ms: at_ms,
        }),
    ];

    use domain::credential as cr;
    let credential_events = vec![
        cr::CredentialEvent::CredentialsRegistered(cr::CredentialsRegistered {
            org,
            user,
            password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${}", p.n),
        }),
        cr::CredentialEvent::PasswordChanged(cr::PasswordChanged {
            org,
            user: other,
            password_hash: text.clone(),
        }),
    ];

    use domain::webhook as wh;
    let webhook_events = vec![
        wh::WebhookEvent::WebhookAdded(wh::WebhookAdded {
            id: uuid(0),
            url: format!("https://hooks.example.com/{}", p.n),
            events: vec!["message.inbound".to_owned(), text.clone()],
            secret: [p.pick; 32],
            by: user,
            at_ms,
        }),
        wh::WebhookEvent::WebhookRemoved(wh::WebhookRemoved {
            id: uuid(0),
            by: other,
            at_ms,
        }),
    ];
    let webhook_delivery_events = vec![
        wh::WebhookDeliveryEvent::WebhookDeliveryQueued(wh::WebhookDeliveryQueued {
            delivery: uuid(1),
            webhook: uuid(0),
            org,
            event: "message.inbound".to_owned(),
            body: if p.flag { String::new() } else { text.clone() },
            cause: p.flag.then(|| uuid(2)),
            redelivery_of: (!p.flag).then(|| uuid(2)),
            by: (!p.flag).then_some(user),
            at_ms,
            sealed: p.flag.then(|| wh::SealedBody {
                key: domain::TextKey::new(org, p.numbers.to_vec(), at_ms),
                sealed: text.as_bytes().to_vec(),
            }),
        }),
        wh::WebhookDeliveryEvent::WebhookDeliveryAttempted(wh::WebhookDeliveryAttempted {
            attempt: u32::from(p.pick) + 1,
            at_ms,
            took_ms: p.n / 7,
            status: p.flag.then_some(503),
            error: p.opt_text.clone(),
            next_at_ms: p.opt_n,
        }),
        wh::WebhookDeliveryEvent::WebhookDeliveryCancelled(wh::WebhookDeliveryCancelled {
            reason: "the webhook was removed".to_owned(),
            at_ms,
        }),
        wh::WebhookDeliveryEvent::WebhookDeliveryListed(wh::WebhookDeliveryListed {
            delivery: uuid(1),
            event: "queue.interaction_queued".to_owned(),
            at_ms,
        }),
    ];

    use domain::claim as cl;
    let claim_events = vec![
        cl::ClaimEvent::NumberClaimed(cl::NumberClaimed { org }),
        cl::ClaimEvent::FirstOrganizationClaimed(cl::FirstOrganizationClaimed { org }),
    ];

    use domain::idempotency as id;
    let idempotency_events = vec![id::IdempotencyEvent::ResponseRecorded(
        id::ResponseRecorded {
            request: [p.pick; 32],
            status: 201,
            content_type: p.flag.then(|| "application/json".to_owned()),
            location: p.opt_text.clone(),
            body: text.as_bytes().to_vec(),
            at_ms,
        },
    )];

    use domain::outbox as ob;
    let origin = if p.flag {
        ob::SmsOrigin::Message {
            conversation,
            message_id,
            requested_event: uuid(2),
        }
    } else {
        ob::SmsOrigin::HelpReply {
            arrived_event: uuid(0),
        }
    };
    let outbox_events = vec![
        ob::OutboxEvent::SmsPrepared(ob::SmsPrepared {
            org,
            origin: origin.clone(),
            from: p.numbers[0].clone(),
            to: p.numbers[1].clone(),
            // A HELP reply of an earlier version went out in the clear.
            body: if p.flag {
                sealed
            } else {
                domain::Text::unsealed(text.clone())
            },
            media: attachments,
            at_ms,
        }),
        ob::OutboxEvent::SmsSendStarted(ob::SmsSendStarted {
            attempt: u32::from(p.pick) + 1,
            at_ms,
        }),
        ob::OutboxEvent::SmsAccepted(ob::SmsAccepted {
            attempt: u32::from(p.pick) + 1,
            carrier: "twilio".to_owned(),
            carrier_message_id: p.opt_text.clone().unwrap_or_default(),
            status: "queued".to_owned(),
            confirmed_by: if p.flag {
                "response"
            } else {
                "status_callback"
            }
            .to_owned(),
            at_ms,
        }),
        ob::OutboxEvent::SmsSendFailed(ob::SmsSendFailed {
            attempt: u32::from(p.pick) + 1,
            code: "http_503".to_owned(),
            message: text.clone(),
            retry_at_ms: p.opt_n,
            at_ms,
        }),
    ];
    let carrier_message_events = vec![
        ob::CarrierMessageEvent::CarrierMessageLinked(ob::CarrierMessageLinked {
            outbox: uuid(1),
            org,
            origin,
            to: p.numbers[1].clone(),
        }),
        ob::CarrierMessageEvent::CarrierStatusReported(ob::CarrierStatusReported {
            status: "delivered".to_owned(),
            error_code: p.flag.then(|| "30005".to_owned()),
            outbox_hint: (!p.flag).then(|| uuid(1)),
        }),
    ];

    let sms_thread_events = vec![domain::sms_thread::SmsThreadEvent::SmsThreadMoved(
        domain::sms_thread::SmsThreadMoved {
            conversation,
            at_ms,
        },
    )];

    Samples {
        conversation: conversation_events,
        directory: directory_events,
        inbox: inbox_events,
        queue: queue_events,
        inbound: inbound_events,
        erasure: erasure_events,
        attachment: attachment_events,
        session: session_events,
        credential: credential_events,
        webhook: webhook_events,
        webhook_delivery: webhook_delivery_events,
        claim: claim_events,
        idempotency: idempotency_events,
        outbox: outbox_events,
        carrier_message: carrier_message_events,
        sms_thread: sms_thread_events,
    }
}

/// Checks that `event` survives the log's payload codec, and that its payload is exactly
/// the inner struct: the enum's serde form without the variant's position.
pub fn check_round_trip<E>(event: &E) -> Result<(), TestCaseError>
where
    E: VersionedEvent + PartialEq + Debug,
{
    let bytes = encode_payload(event);
    let decoded: E = decode_payload(event.event_type(), event.schema_version(), &bytes)
        .map_err(TestCaseError::fail)?;
    prop_assert_eq!(&decoded, event);
    let whole = bincode::serde::encode_to_vec(event, config()).expect("encodes");
    // Fewer than 251 variants: bincode writes the variant's position as one byte.
    prop_assert_eq!(
        &whole[1..],
        &bytes[..],
        "the payload is the inner struct only"
    );

    // Any serde format works the same, a self-describing one included.
    let json = serde_json::to_string(&event.payload()).expect("JSON encodes");
    let seed = E::payload_seed(event.event_type(), event.schema_version()).expect("known");
    let mut deserializer = serde_json::Deserializer::from_str(&json);
    let from_json = serde::de::DeserializeSeed::deserialize(seed, &mut deserializer)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&from_json, event);
    Ok(())
}

pub fn check_all(samples: &Samples) -> Result<(), TestCaseError> {
    samples.conversation.iter().try_for_each(check_round_trip)?;
    samples.directory.iter().try_for_each(check_round_trip)?;
    samples.inbox.iter().try_for_each(check_round_trip)?;
    samples.queue.iter().try_for_each(check_round_trip)?;
    samples.inbound.iter().try_for_each(check_round_trip)?;
    samples.erasure.iter().try_for_each(check_round_trip)?;
    samples.attachment.iter().try_for_each(check_round_trip)?;
    samples.session.iter().try_for_each(check_round_trip)?;
    samples.credential.iter().try_for_each(check_round_trip)?;
    samples.webhook.iter().try_for_each(check_round_trip)?;
    samples
        .webhook_delivery
        .iter()
        .try_for_each(check_round_trip)?;
    samples.claim.iter().try_for_each(check_round_trip)?;
    samples.idempotency.iter().try_for_each(check_round_trip)?;
    samples.outbox.iter().try_for_each(check_round_trip)?;
    samples
        .carrier_message
        .iter()
        .try_for_each(check_round_trip)?;
    samples.sms_thread.iter().try_for_each(check_round_trip)?;
    Ok(())
}
