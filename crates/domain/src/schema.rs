//! Versioned event payloads: what the log stores for an event, and how old versions are
//! read back as the current one.
//!
//! # The stored payload
//! The log's envelope names each event's type and schema version, so the payload is only
//! the *inner struct* of the event's variant (e.g. a [`DeliveryUpdated`]), never the enum:
//! nothing in the bytes depends on the order of an enum's variants, and each event type
//! has its own version.
//!
//! ```
//! use domain::conversation::{ConversationEvent, DeliveryStatus, DeliveryUpdated};
//! use domain::schema::VersionedEvent;
//! use domain::{DomainEvent, MessageId, PhoneNumber};
//!
//! let event = ConversationEvent::DeliveryUpdated(DeliveryUpdated {
//!     message_id: MessageId::random(),
//!     to: PhoneNumber::parse("+16135550142")?,
//!     status: DeliveryStatus::Sent,
//!     carrier_message_id: Some("SM123".into()),
//!     error_code: None,
//!     at_ms: 1_000,
//! });
//! let config = bincode::config::standard();
//! // Writing: the envelope gets event_type() and schema_version(), the payload this.
//! let mut payload = Vec::new();
//! bincode::serde::encode_into_std_write(event.payload(), &mut payload, config)?;
//! // Reading: the envelope's type and version choose the struct, then it is upcast.
//! let seed = ConversationEvent::payload_seed(event.event_type(), event.schema_version())?;
//! let (read, _) = bincode::serde::seed_decode_from_slice(seed, &payload, config)?;
//! assert_eq!(read, event);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Versions
//! Every event type starts at version 1. A change to a type's stored shape (a field added,
//! removed, renamed, retyped or moved, a nested type changed) is a new version: the old
//! struct moves, unchanged forever, to a `legacy` module with a function that upcasts it
//! to the next version, and the crate's `versioned_events!` macro lists it. Reading a
//! stored version decodes its own struct and upcasts it step by step to the current one.
//! `schemas/` at the root of the workspace holds the JSON Schema of every version (see its
//! README for the steps).
//!
//! [`DeliveryUpdated`]: crate::conversation::DeliveryUpdated

use std::fmt;
use std::marker::PhantomData;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema};
use serde::de::DeserializeSeed;
use serde::{Deserializer, Serialize, Serializer};

use crate::aggregate::DomainEvent;

/// An event enum whose stored payload is its variant's inner struct, in one of the
/// versions each event type has had.
///
/// Implemented by the crate's `versioned_events!` macro (in this module); never by hand.
pub trait VersionedEvent: DomainEvent + crate::text::Texts {
    /// Every event type of this enum, in variant order: its name, current version and all
    /// the versions a log may hold.
    const SCHEMAS: &'static [EventSchema];

    /// What the log stores as this event's payload: the inner struct of the variant, in the
    /// current version ([`DomainEvent::schema_version`]). Serialize it with any serde
    /// format; the envelope carries [`DomainEvent::event_type`] and the version.
    fn payload(&self) -> Payload<'_, Self> {
        Payload { event: self }
    }

    /// How to read a payload stored as `schema_version` of `event_type`: a
    /// [`DeserializeSeed`] that decodes the struct of exactly that version and upcasts it
    /// to the current one. Works with non-self-describing formats such as bincode.
    ///
    /// # Errors
    /// [`SchemaError::UnknownEventType`] when no variant of this enum has that type,
    /// [`SchemaError::FutureSchemaVersion`] when the version is newer than this code
    /// knows (written by a newer build), [`SchemaError::UnknownSchemaVersion`] for an older
    /// version this code does not read.
    fn payload_seed(
        event_type: &str,
        schema_version: u16,
    ) -> Result<PayloadSeed<Self>, SchemaError> {
        let (index, schema) = Self::SCHEMAS
            .iter()
            .enumerate()
            .find(|(_, schema)| schema.event_type == event_type)
            .ok_or_else(|| SchemaError::UnknownEventType {
                event_type: event_type.to_owned(),
            })?;
        if schema_version > schema.current_version {
            return Err(SchemaError::FutureSchemaVersion {
                event_type: schema.event_type,
                version: schema_version,
                current: schema.current_version,
            });
        }
        if !schema.knows(schema_version) {
            return Err(SchemaError::UnknownSchemaVersion {
                event_type: schema.event_type,
                version: schema_version,
            });
        }
        Ok(PayloadSeed {
            index,
            version: schema_version,
            event: PhantomData,
        })
    }

    /// Serializes the inner struct of the variant (what [`Payload`] does).
    #[doc(hidden)]
    fn serialize_payload<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error>;

    /// Deserializes the struct the seed names and upcasts it (what [`PayloadSeed`] does).
    #[doc(hidden)]
    fn deserialize_payload<'de, D: Deserializer<'de>>(
        seed: PayloadSeed<Self>,
        deserializer: D,
    ) -> Result<Self, D::Error>;
}

/// One event type: its name in the envelope, its current schema version and every version
/// a log may hold, each with its JSON Schema.
#[derive(Clone, Copy, Debug)]
pub struct EventSchema {
    pub event_type: &'static str,
    pub current_version: u16,
    /// Oldest first; consecutive; the last is `current_version`.
    pub versions: &'static [SchemaVersion],
}

impl EventSchema {
    /// Can a payload stored as `version` of this type be read?
    pub fn knows(&self, version: u16) -> bool {
        self.versions.iter().any(|v| v.version == version)
    }

    /// The versions a log may hold, oldest first.
    pub fn known_versions(&self) -> impl Iterator<Item = u16> + '_ {
        self.versions.iter().map(|v| v.version)
    }

    /// The name of the JSON Schema file of `version` in `schemas/`:
    /// `<EventType>.v<N>.json`.
    pub fn file_name(&self, version: u16) -> String {
        format!("{}.v{}.json", self.event_type, version)
    }
}

/// One stored version of an event type.
#[derive(Clone, Copy)]
pub struct SchemaVersion {
    pub version: u16,
    /// The JSON Schema of the payload struct of this version (see [`json_schema_of`]).
    pub json_schema: fn() -> Schema,
}

impl fmt::Debug for SchemaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchemaVersion")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Every event type the domain writes, across all event enums. Names are unique across
/// enums, so `schemas/` is one flat directory.
pub fn all_event_schemas() -> impl Iterator<Item = &'static EventSchema> {
    use crate::{ConversationEvent, DirectoryEvent, InboxEvent, QueueEvent};
    [
        ConversationEvent::SCHEMAS,
        DirectoryEvent::SCHEMAS,
        InboxEvent::SCHEMAS,
        QueueEvent::SCHEMAS,
        crate::inbound::InboundEvent::SCHEMAS,
        crate::erasure::ErasureEvent::SCHEMAS,
        crate::attachment::AttachmentEvent::SCHEMAS,
        crate::session::SessionEvent::SCHEMAS,
        crate::credential::CredentialEvent::SCHEMAS,
        crate::webhook::WebhookEvent::SCHEMAS,
        crate::webhook::WebhookDeliveryEvent::SCHEMAS,
        crate::claim::ClaimEvent::SCHEMAS,
        crate::idempotency::IdempotencyEvent::SCHEMAS,
        crate::outbox::OutboxEvent::SCHEMAS,
        crate::outbox::CarrierMessageEvent::SCHEMAS,
        crate::sms_thread::SmsThreadEvent::SCHEMAS,
    ]
    .into_iter()
    .flatten()
}

/// The schema of the event type named `event_type`, whichever enum it belongs to.
pub fn event_schema(event_type: &str) -> Option<&'static EventSchema> {
    all_event_schemas().find(|schema| schema.event_type == event_type)
}

/// The JSON Schema (draft 2020-12) of a payload struct, as the files in `schemas/` hold it.
///
/// It describes what serde writes (the serialize contract: every field is present, an
/// `Option` as its value or null) in its human-readable form (ids as UUID strings; bincode
/// writes them as 16 bytes). `required` lists the fields in declaration order, which is
/// the order bincode writes them in.
pub fn json_schema_of<T: JsonSchema>() -> Schema {
    SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<T>()
}

/// The stored payload of an event: serializes the inner struct of its variant only.
pub struct Payload<'a, E> {
    event: &'a E,
}

impl<E: VersionedEvent> Serialize for Payload<'_, E> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.event.serialize_payload(serializer)
    }
}

impl<E> Clone for Payload<'_, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for Payload<'_, E> {}

impl<E: fmt::Debug> fmt::Debug for Payload<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Payload").field(self.event).finish()
    }
}

/// Reads the payload of one stored (event type, schema version) as the current event; made
/// by [`VersionedEvent::payload_seed`].
pub struct PayloadSeed<E> {
    /// Position of the event type in `E::SCHEMAS` (and of its variant in `E`).
    index: usize,
    version: u16,
    event: PhantomData<fn() -> E>,
}

impl<E: VersionedEvent> PayloadSeed<E> {
    /// The event type the payload was stored as.
    pub fn event_type(&self) -> &'static str {
        E::SCHEMAS[self.index].event_type
    }

    /// The version the payload was stored in.
    pub fn schema_version(&self) -> u16 {
        self.version
    }

    /// Position of the event type in `E::SCHEMAS`, for the generated decoder.
    #[doc(hidden)]
    pub fn variant_index(&self) -> usize {
        self.index
    }
}

impl<E> Clone for PayloadSeed<E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for PayloadSeed<E> {}

impl<E: VersionedEvent> fmt::Debug for PayloadSeed<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PayloadSeed")
            .field("event_type", &self.event_type())
            .field("schema_version", &self.version)
            .finish()
    }
}

impl<'de, E: VersionedEvent> DeserializeSeed<'de> for PayloadSeed<E> {
    type Value = E;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<E, D::Error> {
        E::deserialize_payload(self, deserializer)
    }
}

/// Why a stored payload cannot be read as an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    #[error("unknown event type {event_type:?}")]
    UnknownEventType { event_type: String },
    #[error(
        "{event_type} v{version} was written by a newer version of Switchboard; \
         this one reads up to v{current}"
    )]
    FutureSchemaVersion {
        event_type: &'static str,
        version: u16,
        current: u16,
    },
    #[error("{event_type} v{version} is not a version this build can read")]
    UnknownSchemaVersion {
        event_type: &'static str,
        version: u16,
    },
}

impl SchemaError {
    /// Stable machine-readable snake_case code; never changes once shipped.
    pub fn code(&self) -> &'static str {
        match self {
            SchemaError::UnknownEventType { .. } => "unknown_event_type",
            SchemaError::FutureSchemaVersion { .. } => "future_schema_version",
            SchemaError::UnknownSchemaVersion { .. } => "unknown_schema_version",
        }
    }
}

/// Are `versions` consecutive, from 1 or more, ending at `current`? Checked at compile time
/// by [`versioned_events!`]: each legacy version upcasts to the next one.
#[doc(hidden)]
pub const fn versions_form_a_chain(versions: &[u16], current: u16) -> bool {
    let Some(&last) = versions.last() else {
        return false;
    };
    if last != current || versions[0] == 0 {
        return false;
    }
    let mut i = 1;
    while i < versions.len() {
        if versions[i] != versions[i - 1] + 1 {
            return false;
        }
        i += 1;
    }
    true
}

/// Implements [`DomainEvent`] and [`VersionedEvent`] for an event enum whose variants are
/// newtypes over their payload structs.
///
/// One line per variant: `Variant(PayloadStruct) = current_version`, then, for a type that
/// has had older versions, each as `version: LegacyStruct => upcast_fn`, oldest first. An
/// upcast fn takes its version's struct and returns the next version's (the next legacy
/// struct, or the current one for the last). The event type name is the variant's name.
///
/// ```text
/// versioned_events! {
///     ConversationEvent {
///         ConversationStarted(ConversationStarted) = 1,
///         DeliveryUpdated(DeliveryUpdated) = 2 [
///             1: legacy::DeliveryUpdatedV1 => legacy::delivery_updated_v1_to_v2,
///         ],
///     }
/// }
/// ```
macro_rules! versioned_events {
    (
        $enum:ident {
            $(
                $variant:ident($inner:ty) = $current:literal
                $( [ $( $old:literal : $legacy:ty => $upcast:path ),+ $(,)? ] )?
            ),+ $(,)?
        }
    ) => {
        impl $crate::aggregate::DomainEvent for $enum {
            fn event_type(&self) -> &'static str {
                match self {
                    $( Self::$variant(_) => stringify!($variant), )+
                }
            }

            fn schema_version(&self) -> u16 {
                match self {
                    $( Self::$variant(_) => $current, )+
                }
            }
        }

        const _: () = {
            /// The variants in order: their positions index `SCHEMAS`.
            #[allow(clippy::enum_variant_names)]
            enum Variant {
                $( $variant, )+
            }

            $(
                assert!(
                    $crate::schema::versions_form_a_chain(
                        &[ $( $( $old, )+ )? $current ],
                        $current,
                    ),
                    concat!(
                        stringify!($variant),
                        ": legacy versions must be consecutive, oldest first, up to the current"
                    ),
                );
            )+

            impl $crate::schema::VersionedEvent for $enum {
                const SCHEMAS: &'static [$crate::schema::EventSchema] = &[
                    $(
                        $crate::schema::EventSchema {
                            event_type: stringify!($variant),
                            current_version: $current,
                            versions: &[
                                $( $(
                                    $crate::schema::SchemaVersion {
                                        version: $old,
                                        json_schema: $crate::schema::json_schema_of::<$legacy>,
                                    },
                                )+ )?
                                $crate::schema::SchemaVersion {
                                    version: $current,
                                    json_schema: $crate::schema::json_schema_of::<$inner>,
                                },
                            ],
                        },
                    )+
                ];

                fn serialize_payload<S: ::serde::Serializer>(
                    &self,
                    serializer: S,
                ) -> Result<S::Ok, S::Error> {
                    match self {
                        $( Self::$variant(inner) => ::serde::Serialize::serialize(inner, serializer), )+
                    }
                }

                fn deserialize_payload<'de, D: ::serde::Deserializer<'de>>(
                    seed: $crate::schema::PayloadSeed<Self>,
                    deserializer: D,
                ) -> Result<Self, D::Error> {
                    let (index, version) = (seed.variant_index(), seed.schema_version());
                    $(
                        if index == Variant::$variant as usize {
                            if version == $current {
                                return <$inner as ::serde::Deserialize>::deserialize(deserializer)
                                    .map(Self::$variant);
                            }
                            $(
                                $crate::schema::versioned_events!(
                                    @legacy deserializer, version, $variant;
                                    $( ($old, $legacy, $upcast) )+
                                );
                            )?
                        }
                    )+
                    // `payload_seed` only makes seeds of known versions.
                    Err(<D::Error as ::serde::de::Error>::custom(format_args!(
                        "no decoder for {seed:?}"
                    )))
                }
            }
        };
    };

    // Stored version `$old`: decode its struct, then apply its upcast and every later one.
    (@legacy $d:ident, $version:ident, $variant:ident; ) => {};
    (
        @legacy $d:ident, $version:ident, $variant:ident;
        ($old:literal, $legacy:ty, $upcast:path)
        $( ($later_old:literal, $later_legacy:ty, $later_upcast:path) )*
    ) => {
        if $version == $old {
            let value = <$legacy as ::serde::Deserialize>::deserialize($d)?;
            let value = $upcast(value);
            $( let value = $later_upcast(value); )*
            return Ok(Self::$variant(value));
        }
        $crate::schema::versioned_events!(
            @legacy $d, $version, $variant;
            $( ($later_old, $later_legacy, $later_upcast) )*
        );
    };
}

pub(crate) use versioned_events;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_chains_are_consecutive_and_end_at_the_current_version() {
        assert!(versions_form_a_chain(&[1], 1));
        assert!(versions_form_a_chain(&[1, 2, 3], 3));
        assert!(versions_form_a_chain(&[2, 3], 3));
        assert!(!versions_form_a_chain(&[], 1));
        assert!(!versions_form_a_chain(&[1, 3], 3));
        assert!(!versions_form_a_chain(&[2, 1], 1));
        assert!(!versions_form_a_chain(&[1, 2], 3));
        assert!(!versions_form_a_chain(&[0, 1], 1));
    }
}
