//! The outbound webhook records of the log.
//!
//! - `webhooks-<org>`: the organization's endpoints, as [`WebhookAdded`] and
//!   [`WebhookRemoved`] ([`WebhookEvent`]). The signing secret is stored as it is sent
//!   (the receiver needs the same key), and only admins read it back, once.
//! - `webhookdelivery-<delivery id>`: one delivery, [`WebhookDeliveryQueued`] (the exact
//!   body every attempt sends) then one [`WebhookDeliveryAttempted`] per attempt, or
//!   [`WebhookDeliveryCancelled`]; `webhooklog-<webhook id>`: one
//!   [`WebhookDeliveryListed`] per delivery of the endpoint, in the order they were queued
//!   ([`WebhookDeliveryEvent`]).
//!
//! The workers append and read them (`workers::webhooks`, and the gateway's
//! `routes::webhooks` through it); the records are versioned events with their schemas in
//! `schemas/`. Before they were domain records the registrations and the delivery records
//! (not the log lines) were stored as enums encoded whole (a variant position before the
//! fields): those are version 1 of their types, read through [`legacy`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::schema::versioned_events;
use crate::text::{Text, TextKey, Texts};
use crate::{OrgId, UserId};

/// Category of the organizations' endpoint registrations.
pub const WEBHOOKS_CATEGORY: &str = "webhooks";

/// Category of the delivery streams.
pub const DELIVERY_CATEGORY: &str = "webhookdelivery";

/// Category of the endpoints' delivery logs.
pub const DELIVERY_LOG_CATEGORY: &str = "webhooklog";

/// An admin registered an endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookAdded {
    #[schemars(with = "String")]
    pub id: Uuid,
    pub url: String,
    /// The notification types it subscribed to, sorted, without repeats.
    pub events: Vec<String>,
    /// The HMAC key of its signatures.
    pub secret: [u8; 32],
    pub by: UserId,
    pub at_ms: u64,
}

/// An admin removed an endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookRemoved {
    #[schemars(with = "String")]
    pub id: Uuid,
    pub by: UserId,
    pub at_ms: u64,
}

/// Events of the `webhooks-<org>` streams.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WebhookEvent {
    WebhookAdded(WebhookAdded),
    WebhookRemoved(WebhookRemoved),
}

versioned_events! {
    WebhookEvent {
        WebhookAdded(WebhookAdded) = 2 [
            1: legacy::WebhookAddedV1 => legacy::webhook_added_v1_to_v2,
        ],
        WebhookRemoved(WebhookRemoved) = 2 [
            1: legacy::WebhookRemovedV1 => legacy::webhook_removed_v1_to_v2,
        ],
    }
}

/// No texts: a registration names an endpoint.
impl Texts for WebhookEvent {
    fn texts_mut(&mut self) -> Vec<&mut Text> {
        Vec::new()
    }
}

/// A delivery was queued: the first event of its `webhookdelivery-<id>` stream. Its id
/// derives from what caused it, so queueing it again writes nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookDeliveryQueued {
    #[schemars(with = "String")]
    pub delivery: Uuid,
    #[schemars(with = "String")]
    pub webhook: Uuid,
    pub org: OrgId,
    /// The notification's type, e.g. `message.inbound`.
    pub event: String,
    /// The JSON body, byte for byte what every attempt sends; empty when it is `sealed`.
    pub body: String,
    /// The log event that caused it (`None` for a redelivery).
    #[schemars(with = "Option<String>")]
    pub cause: Option<Uuid>,
    /// The delivery an admin asked to send again.
    #[schemars(with = "Option<String>")]
    pub redelivery_of: Option<Uuid>,
    pub by: Option<UserId>,
    pub at_ms: u64,
    /// A body quoting a message text, sealed under the text's key so that it is erased
    /// with the text.
    pub sealed: Option<SealedBody>,
}

/// A delivery's body, sealed under the key of the message text it quotes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SealedBody {
    pub key: TextKey,
    /// The sealed bytes of the JSON body.
    pub sealed: Vec<u8>,
}

/// One attempt of a delivery and its outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookDeliveryAttempted {
    /// 1 for the first attempt.
    pub attempt: u32,
    pub at_ms: u64,
    pub took_ms: u64,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// Why it failed; `None`: delivered.
    pub error: Option<String>,
    /// When the next attempt is due; `None` after a success or the last attempt.
    pub next_at_ms: Option<u64>,
}

/// A delivery will not be attempted (again): its endpoint was removed, or the text it
/// quotes was erased.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookDeliveryCancelled {
    pub reason: String,
    pub at_ms: u64,
}

/// An entry of an endpoint's delivery log `webhooklog-<webhook id>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookDeliveryListed {
    #[schemars(with = "String")]
    pub delivery: Uuid,
    pub event: String,
    pub at_ms: u64,
}

/// Events of the `webhookdelivery-<id>` streams, and the lines of the `webhooklog-<webhook>`
/// streams.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WebhookDeliveryEvent {
    WebhookDeliveryQueued(WebhookDeliveryQueued),
    WebhookDeliveryAttempted(WebhookDeliveryAttempted),
    WebhookDeliveryCancelled(WebhookDeliveryCancelled),
    WebhookDeliveryListed(WebhookDeliveryListed),
}

versioned_events! {
    WebhookDeliveryEvent {
        WebhookDeliveryQueued(WebhookDeliveryQueued) = 2 [
            1: legacy::WebhookDeliveryQueuedV1 => legacy::webhook_delivery_queued_v1_to_v2,
        ],
        WebhookDeliveryAttempted(WebhookDeliveryAttempted) = 2 [
            1: legacy::WebhookDeliveryAttemptedV1 => legacy::webhook_delivery_attempted_v1_to_v2,
        ],
        WebhookDeliveryCancelled(WebhookDeliveryCancelled) = 2 [
            1: legacy::WebhookDeliveryCancelledV1 => legacy::webhook_delivery_cancelled_v1_to_v2,
        ],
        WebhookDeliveryListed(WebhookDeliveryListed) = 1,
    }
}

/// No texts: a body quoting a message text is sealed as a whole ([`SealedBody`]) by the
/// workers, not a [`Text`] the actor layer seals.
impl Texts for WebhookDeliveryEvent {
    fn texts_mut(&mut self) -> Vec<&mut Text> {
        Vec::new()
    }
}

/// Version 1 of the registrations and of the delivery records, as the webhooks code
/// stored them before they were domain records: an enum encoded whole, so bincode wrote
/// the variant's position before its fields. Read only: nothing writes version 1 any more.
///
/// Frozen: nothing here ever changes (the files in `schemas/` must keep matching).
pub mod legacy {
    use std::borrow::Cow;

    use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
    use serde::{Deserialize, Serialize};
    use uuid::Uuid;

    use super::{
        SealedBody, WebhookAdded, WebhookDeliveryAttempted, WebhookDeliveryCancelled,
        WebhookDeliveryQueued, WebhookRemoved,
    };
    use crate::text::TextKey;
    use crate::{OrgId, UserId};

    /// The former enum of `webhooks-<org>` records, exactly as it was stored (a struct
    /// variant and a newtype variant over a struct of the same fields are the same bytes,
    /// and the same JSON).
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub enum WebhookEventV1 {
        Added(AddedV1),
        Removed(RemovedV1),
    }

    /// The fields of `WebhookEventV1::Added`.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[schemars(rename = "Added")]
    pub struct AddedV1 {
        #[schemars(with = "String")]
        pub id: Uuid,
        pub url: String,
        pub events: Vec<String>,
        pub secret: [u8; 32],
        pub by: UserId,
        pub at_ms: u64,
    }

    /// The fields of `WebhookEventV1::Removed`.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[schemars(rename = "Removed")]
    pub struct RemovedV1 {
        #[schemars(with = "String")]
        pub id: Uuid,
        pub by: UserId,
        pub at_ms: u64,
    }

    /// [`WebhookAdded`] version 1: variant `Added` (position 0) of the former enum
    /// `WebhookEvent`, stored whole. Reads only that variant.
    #[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
    #[serde(try_from = "WebhookEventV1")]
    #[schemars(rename = "WebhookAdded")]
    pub struct WebhookAddedV1 {
        #[schemars(rename = "Added")]
        pub added: AddedV1,
    }

    impl TryFrom<WebhookEventV1> for WebhookAddedV1 {
        type Error = &'static str;

        fn try_from(stored: WebhookEventV1) -> Result<Self, Self::Error> {
            match stored {
                WebhookEventV1::Added(added) => Ok(Self { added }),
                WebhookEventV1::Removed(_) => Err("a WebhookAdded v1 holding a Removed"),
            }
        }
    }

    /// [`WebhookRemoved`] version 1: variant `Removed` (position 1) of the former enum
    /// `WebhookEvent`, stored whole. Reads only that variant.
    #[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
    #[serde(try_from = "WebhookEventV1")]
    #[schemars(rename = "WebhookRemoved")]
    pub struct WebhookRemovedV1 {
        #[schemars(rename = "Removed")]
        pub removed: RemovedV1,
    }

    impl TryFrom<WebhookEventV1> for WebhookRemovedV1 {
        type Error = &'static str;

        fn try_from(stored: WebhookEventV1) -> Result<Self, Self::Error> {
            match stored {
                WebhookEventV1::Removed(removed) => Ok(Self { removed }),
                WebhookEventV1::Added(_) => Err("a WebhookRemoved v1 holding an Added"),
            }
        }
    }

    /// The same fields, without the enum around them.
    pub fn webhook_added_v1_to_v2(v1: WebhookAddedV1) -> WebhookAdded {
        let AddedV1 {
            id,
            url,
            events,
            secret,
            by,
            at_ms,
        } = v1.added;
        WebhookAdded {
            id,
            url,
            events,
            secret,
            by,
            at_ms,
        }
    }

    /// The same fields, without the enum around them.
    pub fn webhook_removed_v1_to_v2(v1: WebhookRemovedV1) -> WebhookRemoved {
        let RemovedV1 { id, by, at_ms } = v1.removed;
        WebhookRemoved { id, by, at_ms }
    }

    /// The former enum of `webhookdelivery-<id>` records (the dispatcher's `Record`),
    /// exactly as it was stored. `Queued` and `QueuedSealed` were both stored as
    /// `WebhookDeliveryQueued`.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub enum RecordV1 {
        Queued(QueuedV1),
        Attempted(AttemptedV1),
        Cancelled(CancelledV1),
        QueuedSealed(SealedQueuedV1),
    }

    /// The fields of `RecordV1::Queued`.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[schemars(rename = "Queued")]
    pub struct QueuedV1 {
        #[schemars(with = "String")]
        pub delivery: Uuid,
        #[schemars(with = "String")]
        pub webhook: Uuid,
        pub org: OrgId,
        pub event: String,
        pub body: String,
        #[schemars(with = "Option<String>")]
        pub cause: Option<Uuid>,
        #[schemars(with = "Option<String>")]
        pub redelivery_of: Option<Uuid>,
        pub by: Option<UserId>,
        pub at_ms: u64,
    }

    /// The fields of `RecordV1::QueuedSealed`: a `Queued` whose body is empty, the body
    /// sealed under `key`.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[schemars(rename = "SealedQueued")]
    pub struct SealedQueuedV1 {
        pub queued: QueuedV1,
        pub key: TextKey,
        pub sealed: Vec<u8>,
    }

    /// The fields of `RecordV1::Attempted`.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[schemars(rename = "Attempted")]
    pub struct AttemptedV1 {
        pub attempt: u32,
        pub at_ms: u64,
        pub took_ms: u64,
        pub status: Option<u16>,
        pub error: Option<String>,
        pub next_at_ms: Option<u64>,
    }

    /// The fields of `RecordV1::Cancelled`.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[schemars(rename = "Cancelled")]
    pub struct CancelledV1 {
        pub reason: String,
        pub at_ms: u64,
    }

    /// [`WebhookDeliveryQueued`] version 1: variant `Queued` (position 0) or `QueuedSealed`
    /// (position 3) of the former enum `Record`, stored whole. Reads only those two.
    #[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
    #[serde(try_from = "RecordV1")]
    pub struct WebhookDeliveryQueuedV1 {
        pub queued: QueuedV1,
        /// The key and the sealed body of a `QueuedSealed` (whose `queued.body` is empty).
        pub sealed: Option<(TextKey, Vec<u8>)>,
    }

    impl TryFrom<RecordV1> for WebhookDeliveryQueuedV1 {
        type Error = &'static str;

        fn try_from(stored: RecordV1) -> Result<Self, Self::Error> {
            match stored {
                RecordV1::Queued(queued) => Ok(Self {
                    queued,
                    sealed: None,
                }),
                RecordV1::QueuedSealed(SealedQueuedV1 {
                    queued,
                    key,
                    sealed,
                }) => Ok(Self {
                    queued,
                    sealed: Some((key, sealed)),
                }),
                RecordV1::Attempted(_) | RecordV1::Cancelled(_) => {
                    Err("a WebhookDeliveryQueued v1 holding another record")
                }
            }
        }
    }

    /// serde's JSON form of either variant: an object whose one property names it.
    impl JsonSchema for WebhookDeliveryQueuedV1 {
        fn schema_name() -> Cow<'static, str> {
            "WebhookDeliveryQueued".into()
        }

        fn json_schema(generator: &mut SchemaGenerator) -> Schema {
            json_schema!({
                "description": "WebhookDeliveryQueued version 1: variant `Queued` (position 0) \
                    or `QueuedSealed` (position 3) of the former enum `Record` (`Queued`, \
                    `Attempted`, `Cancelled`, `QueuedSealed`), stored whole: bincode wrote \
                    the variant's position, then its fields.",
                "type": "object",
                "properties": {
                    "Queued": generator.subschema_for::<QueuedV1>(),
                    "QueuedSealed": generator.subschema_for::<SealedQueuedV1>(),
                },
                "minProperties": 1,
                "maxProperties": 1,
                "additionalProperties": false,
            })
        }
    }

    /// [`WebhookDeliveryAttempted`] version 1: variant `Attempted` (position 1) of the
    /// former enum `Record`, stored whole. Reads only that variant.
    #[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
    #[serde(try_from = "RecordV1")]
    #[schemars(rename = "WebhookDeliveryAttempted")]
    pub struct WebhookDeliveryAttemptedV1 {
        #[schemars(rename = "Attempted")]
        pub attempted: AttemptedV1,
    }

    impl TryFrom<RecordV1> for WebhookDeliveryAttemptedV1 {
        type Error = &'static str;

        fn try_from(stored: RecordV1) -> Result<Self, Self::Error> {
            match stored {
                RecordV1::Attempted(attempted) => Ok(Self { attempted }),
                _ => Err("a WebhookDeliveryAttempted v1 holding another record"),
            }
        }
    }

    /// [`WebhookDeliveryCancelled`] version 1: variant `Cancelled` (position 2) of the
    /// former enum `Record`, stored whole. Reads only that variant.
    #[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
    #[serde(try_from = "RecordV1")]
    #[schemars(rename = "WebhookDeliveryCancelled")]
    pub struct WebhookDeliveryCancelledV1 {
        #[schemars(rename = "Cancelled")]
        pub cancelled: CancelledV1,
    }

    impl TryFrom<RecordV1> for WebhookDeliveryCancelledV1 {
        type Error = &'static str;

        fn try_from(stored: RecordV1) -> Result<Self, Self::Error> {
            match stored {
                RecordV1::Cancelled(cancelled) => Ok(Self { cancelled }),
                _ => Err("a WebhookDeliveryCancelled v1 holding another record"),
            }
        }
    }

    /// The same fields, without the enum around them; a sealed body moves into
    /// [`WebhookDeliveryQueued::sealed`] (its `body` was empty already).
    pub fn webhook_delivery_queued_v1_to_v2(v1: WebhookDeliveryQueuedV1) -> WebhookDeliveryQueued {
        let QueuedV1 {
            delivery,
            webhook,
            org,
            event,
            body,
            cause,
            redelivery_of,
            by,
            at_ms,
        } = v1.queued;
        WebhookDeliveryQueued {
            delivery,
            webhook,
            org,
            event,
            body,
            cause,
            redelivery_of,
            by,
            at_ms,
            sealed: v1.sealed.map(|(key, sealed)| SealedBody { key, sealed }),
        }
    }

    /// The same fields, without the enum around them.
    pub fn webhook_delivery_attempted_v1_to_v2(
        v1: WebhookDeliveryAttemptedV1,
    ) -> WebhookDeliveryAttempted {
        let AttemptedV1 {
            attempt,
            at_ms,
            took_ms,
            status,
            error,
            next_at_ms,
        } = v1.attempted;
        WebhookDeliveryAttempted {
            attempt,
            at_ms,
            took_ms,
            status,
            error,
            next_at_ms,
        }
    }

    /// The same fields, without the enum around them.
    pub fn webhook_delivery_cancelled_v1_to_v2(
        v1: WebhookDeliveryCancelledV1,
    ) -> WebhookDeliveryCancelled {
        let CancelledV1 { reason, at_ms } = v1.cancelled;
        WebhookDeliveryCancelled { reason, at_ms }
    }
}
