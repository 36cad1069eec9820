//! The phonebook, contact search and number → name.
//!
//! - `GET /v1/contacts?scope=organization|personal`: the organization's contacts and the
//!   caller's personal ones, by name.
//! - `POST /v1/contacts`: a personal contact by default, or `"scope": "organization"`.
//!   By the directory's rules any user may keep the shared phonebook up to date; a
//!   personal contact is its owner's alone (not even an admin sees or edits it).
//!   `Idempotency-Key` (a UUID) makes a retry return the first contact and write nothing.
//! - `GET`, `PATCH` (the fields given), `PUT` (all fields), `DELETE /v1/contacts/{id}`:
//!   a contact the caller cannot see (another user's personal one, another
//!   organization's) is 404.
//! - `GET /v1/contacts/search?q=&limit=`: matches from the phonebook (name, company,
//!   numbers), the user directory (name, extension, their numbers) and the external
//!   numbers of the caller's most recent conversations (from the interactions model).
//!   Digits match as digits whatever the punctuation: "555 01" finds +1555010….
//! - `GET /v1/numbers/{number}/name`: the name the caller sees for a number (their own
//!   contact, then the organization's, then the user whose line it is, then the inbox or
//!   queue it is routed to), or `null`.
//!
//! Every write is one directory command: a refused one writes nothing.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use domain::directory::{Contact, ContactDetails, ContactOwner, ContactScope, Routing};
use domain::{ContactId, Directory, DirectoryCommand, PhoneNumber, UserId};
use serde::{Deserialize, Serialize};

use actors::ExecuteOptions;

use crate::app::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::routes::json::ApiPath;
use crate::routes::json::{ApiJson, ApiQuery};

/// Longest contact search, in characters.
pub const MAX_SEARCH_CHARS: usize = 100;
pub const DEFAULT_SEARCH_LIMIT: usize = 20;
pub const MAX_SEARCH_LIMIT: usize = 100;
/// How many of the caller's most recent conversations contact search takes numbers from.
pub const RECENT_CONVERSATIONS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScopeIn {
    Personal,
    Organization,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContact {
    pub name: String,
    #[serde(default)]
    pub company: String,
    #[serde(default)]
    pub numbers: Vec<String>,
    /// Personal unless given.
    pub scope: Option<ScopeIn>,
}

/// `PUT`: every field (missing company and numbers mean none).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceContact {
    pub name: String,
    #[serde(default)]
    pub company: String,
    #[serde(default)]
    pub numbers: Vec<String>,
}

/// `PATCH`: the fields given change, the others stay.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchContact {
    pub name: Option<String>,
    pub company: Option<String>,
    pub numbers: Option<Vec<String>>,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContactOut {
    pub contact_id: ContactId,
    /// "organization" or "personal".
    pub scope: String,
    pub name: String,
    pub company: String,
    pub numbers: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContactList {
    pub items: Vec<ContactOut>,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContactWritten {
    pub contact_id: ContactId,
    /// Where the change landed in the log (`None` when nothing changed).
    pub position: Option<u64>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only personal or only organization-wide contacts (both when omitted).
    pub scope: Option<ScopeIn>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Name, company or digits.
    pub q: Option<String>,
    /// Most matches (default 20).
    pub limit: Option<usize>,
}

/// One contact search result.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContactMatch {
    /// "phonebook", "directory" or "recent".
    pub source: String,
    /// The name to show (for a recent number: as the caller sees it, if any).
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ContactId>,
    /// For phonebook entries: "organization" or "personal".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    pub numbers: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "ContactSearchResults")]
pub struct SearchOut {
    pub items: Vec<ContactMatch>,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NumberName {
    pub number: String,
    pub name: Option<String>,
}

fn not_found() -> ApiError {
    ApiError::not_found("contact_not_found", "no such contact")
}

/// A contact id from the path; one that cannot exist is 404 like a missing one.
fn contact_id(raw: &str) -> Result<ContactId, ApiError> {
    raw.parse().map_err(|_| not_found())
}

fn scope_name(owner: ContactOwner) -> &'static str {
    match owner {
        ContactOwner::Organization => "organization",
        ContactOwner::User(_) => "personal",
    }
}

fn out(c: &Contact) -> ContactOut {
    ContactOut {
        contact_id: c.id,
        scope: scope_name(c.owner).into(),
        name: c.details.name.clone(),
        company: c.details.company.clone(),
        numbers: c.details.numbers.iter().map(|n| n.to_string()).collect(),
    }
}

fn numbers(raw: &[String]) -> Result<Vec<PhoneNumber>, ApiError> {
    raw.iter().map(|n| crate::routes::phone_number(n)).collect()
}

/// The contact `id` if the caller may see it.
async fn visible_contact(
    state: &AppState,
    caller: &Authenticated,
    id: ContactId,
) -> Result<Contact, ApiError> {
    let viewer = caller.user;
    state
        .ws
        .directories
        .query(&caller.org, move |d: &Directory, _| {
            d.contact(&id).filter(|c| c.is_visible_to(viewer)).cloned()
        })
        .await?
        .ok_or_else(not_found)
}

async fn execute(
    state: &AppState,
    caller: &Authenticated,
    command: DirectoryCommand,
    idempotency_key: Option<uuid::Uuid>,
) -> Result<Option<u64>, ApiError> {
    let options = ExecuteOptions {
        idempotency_key,
        metadata: eventlog::Metadata {
            acting_user: Some(caller.user.to_string()),
            ..Default::default()
        },
    };
    let out = state
        .ws
        .directories
        .execute(&caller.org, caller.meta().issue(command), options)
        .await?;
    Ok(out.position)
}

/// `GET /v1/contacts?scope=`.
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<ContactList>, ApiError> {
    let viewer = caller.user;
    let scope = q.scope;
    let mut items = state
        .ws
        .directories
        .query(&caller.org, move |d: &Directory, _| {
            d.contacts_visible_to(viewer)
                .filter(|c| match scope {
                    None => true,
                    Some(ScopeIn::Organization) => c.owner == ContactOwner::Organization,
                    Some(ScopeIn::Personal) => c.owner == ContactOwner::User(viewer),
                })
                .map(out)
                .collect::<Vec<_>>()
        })
        .await?;
    items.sort_by(|a, b| {
        (a.name.to_lowercase(), a.contact_id).cmp(&(b.name.to_lowercase(), b.contact_id))
    });
    Ok(Json(ContactList { items }))
}

/// `POST /v1/contacts`.
pub async fn create(
    State(state): State<AppState>,
    caller: Authenticated,
    idempotency_key: crate::routes::idempotency::IdempotencyKey,
    ApiJson(req): ApiJson<NewContact>,
) -> Result<(StatusCode, Json<ContactWritten>), ApiError> {
    let key = idempotency_key.scoped(&caller, "contact", &[])?;
    let details = ContactDetails {
        name: req.name,
        company: req.company,
        numbers: numbers(&req.numbers)?,
    };
    // With a key, the contact id derives from it, so the retry names the same contact.
    let contact = key.map_or_else(ContactId::random, |k| {
        ContactId::from_uuid(uuid::Uuid::new_v5(&k, b"contact"))
    });
    let scope = match req.scope.unwrap_or(ScopeIn::Personal) {
        ScopeIn::Personal => ContactScope::Personal,
        ScopeIn::Organization => ContactScope::Organization,
    };
    let position = execute(
        &state,
        &caller,
        DirectoryCommand::AddContact {
            contact,
            scope,
            details,
        },
        key,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(ContactWritten {
            contact_id: contact,
            position,
        }),
    ))
}

/// `GET /v1/contacts/{id}`.
pub async fn get(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ContactOut>, ApiError> {
    let id = contact_id(&id)?;
    Ok(Json(out(&visible_contact(&state, &caller, id).await?)))
}

async fn update(
    state: &AppState,
    caller: &Authenticated,
    id: ContactId,
    details: ContactDetails,
) -> Result<Json<ContactWritten>, ApiError> {
    let position = execute(
        state,
        caller,
        DirectoryCommand::UpdateContact {
            contact: id,
            details,
        },
        None,
    )
    .await?;
    Ok(Json(ContactWritten {
        contact_id: id,
        position,
    }))
}

/// `PUT /v1/contacts/{id}`.
pub async fn replace(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ReplaceContact>,
) -> Result<Json<ContactWritten>, ApiError> {
    let id = contact_id(&id)?;
    let details = ContactDetails {
        name: req.name,
        company: req.company,
        numbers: numbers(&req.numbers)?,
    };
    visible_contact(&state, &caller, id).await?;
    update(&state, &caller, id, details).await
}

/// `PATCH /v1/contacts/{id}`.
pub async fn patch(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<PatchContact>,
) -> Result<Json<ContactWritten>, ApiError> {
    let id = contact_id(&id)?;
    let new_numbers = req.numbers.as_deref().map(numbers).transpose()?;
    let current = visible_contact(&state, &caller, id).await?;
    let details = ContactDetails {
        name: req.name.unwrap_or(current.details.name),
        company: req.company.unwrap_or(current.details.company),
        numbers: new_numbers.unwrap_or(current.details.numbers),
    };
    update(&state, &caller, id, details).await
}

/// `DELETE /v1/contacts/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ContactWritten>, ApiError> {
    let id = contact_id(&id)?;
    visible_contact(&state, &caller, id).await?;
    let position = execute(
        &state,
        &caller,
        DirectoryCommand::DeleteContact { contact: id },
        None,
    )
    .await?;
    Ok(Json(ContactWritten {
        contact_id: id,
        position,
    }))
}

/// What a contact search looks for.
#[derive(Clone, Debug)]
struct Needle {
    /// The query, lowercased.
    whole: String,
    /// Its words, lowercased: each must occur.
    words: Vec<String>,
    /// Its digits, when the query is a number ("555 01", "+1 (555) 01"): matched as a
    /// run of digits inside a number's digits.
    digits: Option<String>,
}

impl Needle {
    fn new(q: &str) -> Self {
        let whole = q.trim().to_lowercase();
        let words = whole.split_whitespace().map(str::to_owned).collect();
        let looks_like_number = q
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c))
            && q.chars().any(|c| c.is_ascii_digit());
        let digits =
            looks_like_number.then(|| q.chars().filter(char::is_ascii_digit).collect::<String>());
        Self {
            whole,
            words,
            digits,
        }
    }

    /// How well `text` matches: 0 it starts with the query, 1 every word starts a word of
    /// it, 2 every word occurs in it; `None`: no match.
    fn text_rank(&self, text: &str) -> Option<u8> {
        let text = text.to_lowercase();
        if !self.words.iter().all(|w| text.contains(w.as_str())) {
            return None;
        }
        if text.starts_with(&self.whole) {
            return Some(0);
        }
        let starts: Vec<&str> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|s| !s.is_empty())
            .collect();
        if self
            .words
            .iter()
            .all(|w| starts.iter().any(|s| s.starts_with(w.as_str())))
        {
            Some(1)
        } else {
            Some(2)
        }
    }

    /// Whether `number`'s digits contain the query's digits.
    fn number_matches(&self, number: &PhoneNumber) -> bool {
        self.digits.as_deref().is_some_and(|d| {
            let n: String = number
                .as_str()
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            n.contains(d)
        })
    }
}

/// Ranks of one candidate: the best of its text and its numbers (a number match ranks 1).
fn best(text: impl IntoIterator<Item = Option<u8>>, number: bool) -> Option<u8> {
    text.into_iter().flatten().chain(number.then_some(1)).min()
}

/// `GET /v1/contacts/search?q=&limit=`.
pub async fn search(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<Json<SearchOut>, ApiError> {
    let text = q.q.unwrap_or_default();
    if text.trim().is_empty() {
        return Err(ApiError::bad_request(
            "invalid_search",
            "q (a name, a company, an extension or digits of a number) is required",
        ));
    }
    if text.chars().count() > MAX_SEARCH_CHARS {
        return Err(ApiError::bad_request(
            "invalid_search",
            format!("q is longer than {MAX_SEARCH_CHARS} characters"),
        ));
    }
    let limit = match q.limit {
        None => DEFAULT_SEARCH_LIMIT,
        Some(l) if (1..=MAX_SEARCH_LIMIT).contains(&l) => l,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_limit",
                format!("limit must be between 1 and {MAX_SEARCH_LIMIT}"),
            ))
        }
    };
    let needle = Needle::new(&text);
    let recent = if needle.digits.is_some() {
        let inboxes = crate::routes::search::member_inboxes(&state, &caller).await?;
        let (org, user) = (caller.org, caller.user);
        let db = state.interactions.db();
        tokio::task::spawn_blocking(move || {
            db.recent_external_numbers(org, user, &inboxes, RECENT_CONVERSATIONS)
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)?
    } else {
        // Recent numbers match by digits only (their names are contacts and users).
        Vec::new()
    };
    let viewer = caller.user;
    let mut found = state
        .ws
        .directories
        .query(&caller.org, move |d: &Directory, _| {
            matches(d, viewer, &needle, &recent)
        })
        .await?;
    found.sort_by(|a, b| {
        let key = |m: &(u8, u8, ContactMatch)| {
            (
                m.0,
                m.1,
                m.2.name.as_deref().unwrap_or("").to_lowercase(),
                m.2.numbers.first().cloned(),
            )
        };
        key(a).cmp(&key(b))
    });
    found.truncate(limit);
    Ok(Json(SearchOut {
        items: found.into_iter().map(|(_, _, m)| m).collect(),
    }))
}

/// Every match as (rank, source order, match).
fn matches(
    d: &Directory,
    viewer: UserId,
    needle: &Needle,
    recent: &[PhoneNumber],
) -> Vec<(u8, u8, ContactMatch)> {
    let mut out = Vec::new();
    let mut known_numbers = std::collections::HashSet::new();
    for c in d.contacts_visible_to(viewer) {
        let number_hit = c.details.numbers.iter().any(|n| needle.number_matches(n));
        if let Some(rank) = best(
            [
                needle.text_rank(&c.details.name),
                needle.text_rank(&c.details.company),
            ],
            number_hit,
        ) {
            known_numbers.extend(c.details.numbers.iter().cloned());
            out.push((
                rank,
                0,
                ContactMatch {
                    source: "phonebook".into(),
                    name: Some(c.details.name.clone()),
                    contact_id: Some(c.id),
                    scope: Some(scope_name(c.owner).into()),
                    company: Some(c.details.company.clone()),
                    user_id: None,
                    extension: None,
                    numbers: c.details.numbers.iter().map(|n| n.to_string()).collect(),
                },
            ));
        }
    }
    for u in d.users() {
        let lines: Vec<&PhoneNumber> = d.numbers_of(u.id).map(|n| &n.number).collect();
        let extension_rank = needle
            .digits
            .as_deref()
            .filter(|digits| u.extension.as_str().starts_with(digits))
            .map(|digits| u8::from(u.extension.as_str() != digits));
        let number_hit = lines.iter().any(|n| needle.number_matches(n));
        if let Some(rank) = best([needle.text_rank(&u.name), extension_rank], number_hit) {
            known_numbers.extend(lines.iter().map(|n| (*n).clone()));
            out.push((
                rank,
                1,
                ContactMatch {
                    source: "directory".into(),
                    name: Some(u.name.clone()),
                    contact_id: None,
                    scope: None,
                    company: None,
                    user_id: Some(u.id),
                    extension: Some(u.extension.to_string()),
                    numbers: lines.iter().map(|n| n.to_string()).collect(),
                },
            ));
        }
    }
    for n in recent {
        if needle.number_matches(n) && !known_numbers.contains(n) {
            out.push((
                1,
                2,
                ContactMatch {
                    source: "recent".into(),
                    name: d.resolve_name(n, viewer),
                    contact_id: None,
                    scope: None,
                    company: None,
                    user_id: None,
                    extension: None,
                    numbers: vec![n.to_string()],
                },
            ));
        }
    }
    out
}

/// `GET /v1/numbers/{number}/name`.
pub async fn number_name(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(number): ApiPath<String>,
) -> Result<Json<NumberName>, ApiError> {
    let number = crate::routes::path_phone_number(&number)?;
    let viewer = caller.user;
    let (name, route) = {
        let number = number.clone();
        state
            .ws
            .directories
            .query(&caller.org, move |d: &Directory, _| {
                (
                    d.resolve_name(&number, viewer),
                    d.number(&number).map(|n| n.route),
                )
            })
            .await?
    };
    let org = caller.org;
    let name = match (name, route) {
        (Some(name), _) => Some(name),
        (None, Some(Routing::Inbox(inbox))) => {
            state
                .ws
                .inboxes
                .query(&inbox, move |i: &domain::Inbox, _| {
                    i.header().filter(|h| h.org == org).map(|h| h.name.clone())
                })
                .await?
        }
        (None, Some(Routing::Queue(queue))) => {
            state
                .ws
                .queues
                .query(&queue, move |q: &domain::Queue, _| {
                    q.header().filter(|h| h.org == org).map(|h| h.name.clone())
                })
                .await?
        }
        (None, _) => None,
    };
    Ok(Json(NumberName {
        number: number.to_string(),
        name,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s).unwrap()
    }

    #[test]
    fn digits_match_as_digits_whatever_the_punctuation() {
        let n = number("+15550101234");
        for q in ["555 01", "+1 (555) 010-1234", "0101", "5550101234"] {
            assert!(Needle::new(q).number_matches(&n), "{q}");
        }
        for q in ["555 02", "bob", "55a01"] {
            assert!(!Needle::new(q).number_matches(&n), "{q}");
        }
    }

    #[test]
    fn names_rank_prefix_then_word_start_then_anywhere() {
        let n = Needle::new("Bob");
        assert_eq!(n.text_rank("Bob's Plumbing"), Some(0));
        assert_eq!(n.text_rank("Uncle Bob"), Some(1));
        assert_eq!(n.text_rank("Thingamabob"), Some(2));
        assert_eq!(n.text_rank("Alice"), None);
        assert_eq!(Needle::new("plumbing i").text_rank("Plumbing Inc"), Some(0));
        assert_eq!(Needle::new("plumb inc").text_rank("Plumbing Inc"), Some(1));
        assert_eq!(Needle::new("inc plumb").text_rank("Plumbing Inc"), Some(1));
    }
}
