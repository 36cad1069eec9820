//! The shape every aggregate has: plain data, a pure `decide` and a pure `apply`.
//!
//! The actor layer owns one aggregate value per stream. For a command it calls
//! [`Aggregate::decide`]; if that returns events it appends them to the stream
//! `"<CATEGORY>-<id>"` and then folds them into its state with [`Aggregate::apply`].
//! Rehydration is the same fold over the stored events, so `apply` must never fail and
//! must never look at anything but the state and the event.

use std::fmt::Display;

use crate::schema::VersionedEvent;

/// An event-sourced aggregate.
pub trait Aggregate: Default + Clone + serde::Serialize + serde::de::DeserializeOwned {
    /// Stream category, e.g. "conversation"; the stream is `"<CATEGORY>-<id>"`.
    const CATEGORY: &'static str;
    type Command;
    /// Its events, stored as versioned payloads (see [`crate::schema`]).
    type Event: VersionedEvent;
    type Rejection: Rejection;

    /// Decides what happens when `command` meets the current state.
    ///
    /// `Ok(vec![])` means the command's effect already holds (a retry, a late status
    /// report): nothing needs writing and the caller reports success.
    ///
    /// # Errors
    /// A typed rejection naming the broken rule; nothing may be written then.
    fn decide(&self, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Rejection>;

    /// Folds one event into the state. Total: events in the log are facts, so an event
    /// that no longer fits the current rules is still applied as well as it can be.
    fn apply(&mut self, event: &Self::Event);

    /// Decides and, when accepted, applies the events to `self`.
    ///
    /// # Errors
    /// The rejection from [`Aggregate::decide`]; `self` is unchanged then.
    fn handle(&mut self, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Rejection> {
        let events = self.decide(command)?;
        for event in &events {
            self.apply(event);
        }
        Ok(events)
    }

    /// Rebuilds a state by folding `events` from [`Default`], as rehydration does.
    fn replay<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self
    where
        Self::Event: 'a,
    {
        let mut state = Self::default();
        for event in events {
            state.apply(event);
        }
        state
    }
}

/// One past-tense fact as stored in the log.
pub trait DomainEvent: Clone + serde::Serialize + serde::de::DeserializeOwned {
    /// Past-tense type name stored in the log envelope, e.g. "MessagePosted".
    fn event_type(&self) -> &'static str;
    /// Schema version of this event type's payload (every type starts at 1; see
    /// [`crate::schema`] for how a type gets a new version).
    fn schema_version(&self) -> u16;
}

/// Why a command was refused.
pub trait Rejection: std::error::Error {
    /// Stable machine-readable snake_case code, e.g. "already_assigned"; never changes once shipped.
    fn code(&self) -> &'static str;
    /// What kind of refusal it is (the gateway's HTTP status follows from it), decided
    /// where each variant is defined.
    fn kind(&self) -> RejectionKind;
}

/// The kinds of refusal, for whoever maps them to a protocol (HTTP: 403, 422, 404, 409,
/// and 404 for another organization's data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectionKind {
    /// The actor may not do this (their role, their membership, their assignment).
    Forbidden,
    /// The command itself is malformed: a blank or too long field, an empty message, an
    /// unsupported attachment.
    Invalid,
    /// What the command names does not exist.
    NotFound,
    /// Another organization's: answered as if it did not exist, naming nothing.
    OtherOrganization,
    /// The command is well-formed and allowed, but the state refuses it now.
    Conflict,
}

/// The name of the stream holding aggregate `A` with identity `id`: `"<CATEGORY>-<id>"`.
pub fn stream_name<A: Aggregate>(id: &impl Display) -> String {
    format!("{}-{}", A::CATEGORY, id)
}
