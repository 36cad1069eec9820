//! Claims of things unique across the whole service, each the first event of a stream
//! appended with `NoStream`, so that of two claims at once exactly one is written:
//!
//! - `number-<E.164>`: [`NumberClaimed`], the organization a business number belongs to
//!   (so two organizations never both hold it, and the carrier edge finds the
//!   organization of an inbound text's number);
//! - `bootstrap-first`: [`FirstOrganizationClaimed`], the server's first organization
//!   (so two first runs at once create one).
//!
//! The gateway appends and reads them (`gateway::routes::numbers`,
//! `gateway::routes::bootstrap`); the records are versioned events ([`ClaimEvent`]) with
//! their schemas in `schemas/`. Before they were domain records both were written as the
//! bare [`OrgId`]; a struct of one field is the same bytes, so nothing changed on disk.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schema::versioned_events;
use crate::text::{Text, Texts};
use crate::OrgId;

/// Category of the business number claims.
pub const NUMBER_CATEGORY: &str = "number";

/// The stream of the first organization's claim (one event at most).
pub const FIRST_ORGANIZATION_STREAM: &str = "bootstrap-first";

/// A business number belongs to `org`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NumberClaimed {
    pub org: OrgId,
}

/// `org` is the server's first organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FirstOrganizationClaimed {
    pub org: OrgId,
}

/// Events of the `number-<E.164>` streams and of `bootstrap-first`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClaimEvent {
    NumberClaimed(NumberClaimed),
    FirstOrganizationClaimed(FirstOrganizationClaimed),
}

versioned_events! {
    ClaimEvent {
        NumberClaimed(NumberClaimed) = 1,
        FirstOrganizationClaimed(FirstOrganizationClaimed) = 1,
    }
}

/// No texts: a claim names an organization.
impl Texts for ClaimEvent {
    fn texts_mut(&mut self) -> Vec<&mut Text> {
        Vec::new()
    }
}
