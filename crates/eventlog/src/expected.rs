//! The expected-version rule of an append (optimistic concurrency per stream).

use serde::{Deserialize, Serialize};

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
}

impl ExpectedVersion {
    /// Whether a stream whose last version is `actual` (`None`: no stream) satisfies this.
    pub fn is_satisfied_by(self, actual: Option<u64>) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual.is_none(),
            ExpectedVersion::StreamExists => actual.is_some(),
            ExpectedVersion::Exact(v) => actual == Some(v),
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
}

#[cfg(test)]
mod tests {
    use super::ExpectedVersion::*;
    use super::*;

    #[test]
    fn each_rule_accepts_and_rejects() {
        assert!(Any.is_satisfied_by(None) && Any.is_satisfied_by(Some(3)));
        assert!(NoStream.is_satisfied_by(None) && !NoStream.is_satisfied_by(Some(0)));
        assert!(StreamExists.is_satisfied_by(Some(0)) && !StreamExists.is_satisfied_by(None));
        assert!(Exact(2).is_satisfied_by(Some(2)));
        assert!(!Exact(2).is_satisfied_by(Some(3)) && !Exact(0).is_satisfied_by(None));
        assert_eq!(ExpectedVersion::after(None), NoStream);
        assert_eq!(ExpectedVersion::after(Some(4)), Exact(4));
    }
}
