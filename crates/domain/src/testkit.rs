//! Helpers shared by the unit tests of every aggregate.

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::aggregate::{Aggregate, DomainEvent};
use crate::phone_number::PhoneNumber;
use crate::schema::VersionedEvent;

pub fn number(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).expect("test numbers are valid")
}

/// `value` encoded and decoded the way the log stores it (bincode 2 via serde).
pub fn through_bincode<T: Serialize + DeserializeOwned>(value: &T) -> T {
    let config = bincode::config::standard();
    let bytes = bincode::serde::encode_to_vec(value, config).expect("encodes");
    let (decoded, read) =
        bincode::serde::decode_from_slice(&bytes, config).expect("decodes what it encoded");
    assert_eq!(read, bytes.len(), "decoding consumed every byte");
    decoded
}

/// `event` stored the way the log stores it: its payload (the variant's inner struct)
/// under its type and version, read back through [`VersionedEvent::payload_seed`].
pub fn through_payload<E: VersionedEvent>(event: &E) -> E {
    let config = bincode::config::standard();
    let mut bytes = Vec::new();
    bincode::serde::encode_into_std_write(event.payload(), &mut bytes, config).expect("encodes");
    let seed = E::payload_seed(event.event_type(), event.schema_version())
        .expect("the current version of every type is known");
    let (decoded, read) =
        bincode::serde::seed_decode_from_slice(seed, &bytes, config).expect("decodes");
    assert_eq!(read, bytes.len(), "decoding consumed every byte");
    decoded
}

/// An aggregate driven command by command, as its actor would, that also keeps the log.
///
/// After every accepted command it checks what the actor layer relies on: the events
/// survive the log's encoding unchanged (as the enum, and as a versioned payload), replaying the whole log from `Default` gives the
/// state reached step by step, and so does a snapshot of the state taken through the
/// same encoding.
pub struct Harness<A: Aggregate> {
    pub state: A,
    pub log: Vec<A::Event>,
}

impl<A> Harness<A>
where
    A: Aggregate + PartialEq + Debug,
    A::Event: PartialEq + Debug,
{
    pub fn new() -> Self {
        Self {
            state: A::default(),
            log: Vec::new(),
        }
    }

    pub fn handle(&mut self, command: &A::Command) -> Result<Vec<A::Event>, A::Rejection> {
        let decided = self.state.decide(command);
        assert_eq!(
            decided.as_ref().ok(),
            self.state.decide(command).as_ref().ok(),
            "decide is deterministic"
        );
        let events = decided?;
        for event in &events {
            assert_eq!(&through_bincode(event), event, "event survives encoding");
            assert_eq!(&through_payload(event), event, "payload survives encoding");
            self.state.apply(event);
        }
        self.log.extend(events.iter().cloned());
        assert_eq!(A::replay(&self.log), self.state, "replay equals live state");
        assert_eq!(
            through_bincode(&self.state),
            self.state,
            "snapshot equals live state"
        );
        Ok(events)
    }
}

/// The position of `event`'s variant in its enum, as bincode encodes it (a one-byte varint
/// below 251), checked against the aggregate's list of event type names: the list is in
/// variant order, so stored events keep decoding as the types their envelopes name.
pub fn assert_variant_order<E: DomainEvent>(event: &E, type_names: &[&str]) {
    let bytes = bincode::serde::encode_to_vec(event, bincode::config::standard()).expect("encodes");
    let position = usize::from(bytes[0]);
    assert_eq!(type_names.get(position), Some(&event.event_type()));
    let unique: std::collections::BTreeSet<_> = type_names.iter().collect();
    assert_eq!(
        unique.len(),
        type_names.len(),
        "event type names are unique"
    );
}
