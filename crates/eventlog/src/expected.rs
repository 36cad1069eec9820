//! The expected-version rule of an append (optimistic concurrency per stream).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What the caller believes about the stream's current version.
///
/// Versions are 0-based: a stream with one event is at version 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream's last event must be at exactly this version.
    Exact(u64),
    /// The stream's last event must be at exactly `version` **and** be the event
    /// `event_id`. A version alone cannot tell a caller's own event from another writer's
    /// that took the same version: a caller that pipelines appends (the next decided on
    /// top of the previous, before that one is durable) names the event it builds on, so
    /// when an earlier append fails and someone else's event takes its version, every
    /// later append decided on the lost state is refused too, instead of landing on top
    /// of a state it was never decided against.
    After { version: u64, event_id: Uuid },
}

/// The last event of a stream, as far as an expectation is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub version: u64,
    pub event_id: Uuid,
}

impl ExpectedVersion {
    /// Whether a stream whose last event is `head` (`None`: no stream) satisfies this.
    pub fn is_satisfied_by(self, head: Option<Head>) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => head.is_none(),
            ExpectedVersion::StreamExists => head.is_some(),
            ExpectedVersion::Exact(v) => head.map(|h| h.version) == Some(v),
            ExpectedVersion::After { version, event_id } => {
                head == Some(Head { version, event_id })
            }
        }
    }

    /// The version this expectation requires the stream to be at, if it names one
    /// (`Some(None)`: the stream must not exist).
    pub fn version(self) -> Option<Option<u64>> {
        match self {
            ExpectedVersion::NoStream => Some(None),
            ExpectedVersion::Exact(v) | ExpectedVersion::After { version: v, .. } => Some(Some(v)),
            ExpectedVersion::Any | ExpectedVersion::StreamExists => None,
        }
    }

    /// The expected version a caller should use after it has seen `last` (the version of the
    /// last event it knows, `None` if it knows of none).
    pub fn after(last: Option<u64>) -> Self {
        match last {
            None => ExpectedVersion::NoStream,
            Some(v) => ExpectedVersion::Exact(v),
        }
    }

    /// As [`ExpectedVersion::after`], naming the last event too when it is known.
    pub fn after_event(last: Option<u64>, event_id: Option<Uuid>) -> Self {
        match (last, event_id) {
            (None, _) => ExpectedVersion::NoStream,
            (Some(version), Some(event_id)) => ExpectedVersion::After { version, event_id },
            (Some(v), None) => ExpectedVersion::Exact(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ExpectedVersion::*;
    use super::*;

    fn head(version: u64, id: Uuid) -> Option<Head> {
        Some(Head {
            version,
            event_id: id,
        })
    }

    #[test]
    fn each_rule_accepts_and_rejects() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(Any.is_satisfied_by(None) && Any.is_satisfied_by(head(3, a)));
        assert!(NoStream.is_satisfied_by(None) && !NoStream.is_satisfied_by(head(0, a)));
        assert!(StreamExists.is_satisfied_by(head(0, a)) && !StreamExists.is_satisfied_by(None));
        assert!(Exact(2).is_satisfied_by(head(2, a)));
        assert!(!Exact(2).is_satisfied_by(head(3, a)) && !Exact(0).is_satisfied_by(None));
        let after = After {
            version: 2,
            event_id: a,
        };
        assert!(after.is_satisfied_by(head(2, a)));
        assert!(
            !after.is_satisfied_by(head(2, b)),
            "same version, another event"
        );
        assert!(!after.is_satisfied_by(head(3, a)) && !after.is_satisfied_by(None));
        assert_eq!(ExpectedVersion::after(None), NoStream);
        assert_eq!(ExpectedVersion::after(Some(4)), Exact(4));
        assert_eq!(ExpectedVersion::after_event(Some(4), None), Exact(4));
        assert_eq!(
            ExpectedVersion::after_event(Some(4), Some(a)),
            After {
                version: 4,
                event_id: a
            }
        );
        assert_eq!(after.version(), Some(Some(2)));
        assert_eq!(NoStream.version(), Some(None));
        assert_eq!(Any.version(), None);
    }
}
