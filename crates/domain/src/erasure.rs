//! Retention and erasure of message texts, as facts in the `erasure-<org>` stream.
//!
//! Texts are sealed in the log under per-(organization, customer, day) keys (see
//! [`crate::text`]). Destroying keys is what erases; these records say what was destroyed
//! and why, so that read models holding copies of texts (the search index) drop them, an
//! interrupted erasure is finished on the next start, and auditors see who asked for what.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::{OrgId, UserId};
use crate::phone_number::PhoneNumber;
use crate::schema::versioned_events;
use crate::text::{Text, Texts};

/// Stream category of retention settings and erasures, one stream per organization.
pub const ERASURE_CATEGORY: &str = "erasure";

/// Longest retention an organization may set, in days (100 years).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// An admin set how long message texts and media are kept (`None`: for ever).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RetentionSet {
    pub org: OrgId,
    /// Texts are kept this many whole days after the day they were written.
    pub days: Option<u32>,
    pub by: UserId,
    pub at_ms: u64,
}

/// An admin asked for one customer's data to be erased: every text the customer wrote or
/// was sent (in every conversation, group MMS included, and as it arrived), and the media
/// only their conversations referenced. Recorded before any key is destroyed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerErased {
    pub org: OrgId,
    pub customer: PhoneNumber,
    pub by: UserId,
    pub at_ms: u64,
}

/// The retention destroyed the keys of the texts written before `before_day` (days since
/// 1970-01-01, UTC): they read as erased from now on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RetentionApplied {
    pub org: OrgId,
    pub before_day: u32,
    /// Keys destroyed by this run.
    pub keys: u64,
    pub at_ms: u64,
}

/// Events of the `erasure-<org>` streams.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErasureEvent {
    RetentionSet(RetentionSet),
    CustomerErased(CustomerErased),
    RetentionApplied(RetentionApplied),
}

versioned_events! {
    ErasureEvent {
        RetentionSet(RetentionSet) = 1,
        CustomerErased(CustomerErased) = 1,
        RetentionApplied(RetentionApplied) = 1,
    }
}

/// No texts: a customer's number names whose data goes, it is not a message body.
impl Texts for ErasureEvent {
    fn texts_mut(&mut self) -> Vec<&mut Text> {
        Vec::new()
    }
}

/// An organization's retention and erasures, folded from its stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErasureState {
    pub retention_days: Option<u32>,
    /// Every erasure asked for: (customer, when).
    pub erased: Vec<(PhoneNumber, u64)>,
    /// The newest `before_day` the retention reached.
    pub retained_from_day: Option<u32>,
}

impl ErasureState {
    pub fn apply(&mut self, event: &ErasureEvent) {
        match event {
            ErasureEvent::RetentionSet(e) => self.retention_days = e.days,
            ErasureEvent::CustomerErased(e) => self.erased.push((e.customer.clone(), e.at_ms)),
            ErasureEvent::RetentionApplied(e) => {
                self.retained_from_day = self.retained_from_day.max(Some(e.before_day));
            }
        }
    }
}

/// Whether `days` is a retention an organization may set.
pub fn valid_retention(days: u32) -> bool {
    (1..=MAX_RETENTION_DAYS).contains(&days)
}
