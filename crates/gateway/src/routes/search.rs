//! `GET /v1/search?q=&before=&limit=&after=`: full-text search over the messages the
//! caller may see, newest first.
//!
//! Who sees what follows the interactions model's lists, chosen by the visibility rule
//! (`domain::visibility`): the caller's own conversations (direct, channels, groups, queue
//! conversations they hold), External conversations on the business numbers they hold,
//! and every conversation of the inboxes the rule lets them see (their teams' and, for an
//! admin, every inbox; asked of the actors per request, so joining or leaving a team
//! applies at once). A queue's waiting and closed conversations are not searched for its
//! agents (they are listed by the queue's own views). Never another organization's. The search index and the interactions model are
//! both read models: `after=<position>` (the position of the caller's own write) waits
//! until both have reached it (read your writes; 503 `view_behind` otherwise).
//!
//! Query language: words (all must match), `"quoted phrases"`, `-excluded`, `OR`,
//! parentheses; at most [`projections::search::MAX_QUERY_CHARS`] characters. Anything
//! else is 400 `invalid_search`.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use domain::{ConversationId, Directory, InboxId, MessageId, UserId};
use projections::interactions::{VISIBLE_INBOXES, VISIBLE_LIMIT};
use projections::search::{Author, SearchError, SearchPage};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::routes::interactions::RYW_TIMEOUT;
use crate::routes::json::ApiQuery;

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = projections::search::MAX_LIMIT;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// The words to find.
    pub q: Option<String>,
    /// Hits older than this log position (the previous page's `next_before`).
    pub before: Option<u64>,
    pub limit: Option<usize>,
    /// Wait until the models have applied this position (read your writes).
    pub after: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SnippetOut {
    /// A fragment of the message around the matched words.
    pub text: String,
    /// Byte ranges of `text` holding matched words.
    pub highlights: Vec<(usize, usize)>,
    /// `text` HTML-escaped, matched words in `<b>`.
    pub html: String,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "SearchHit")]
pub struct HitOut {
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    pub seq: u64,
    /// "user", "external" or "auto_reply" (our number's answer to a HELP).
    pub author_kind: String,
    /// A user id or an E.164 number.
    pub author: String,
    /// The user's name, or the number's name as the caller sees it.
    pub author_name: Option<String>,
    pub snippet: SnippetOut,
    pub at_ms: u64,
    pub position: u64,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "SearchResults")]
pub struct SearchOut {
    pub items: Vec<HitOut>,
    pub next_before: Option<u64>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_search", message)
}

/// The inboxes of the caller's organization whose conversations the caller sees (at most
/// [`VISIBLE_INBOXES`]): of the inboxes its business numbers are routed to, those the
/// rule's inbox audience (`domain::visibility`: the team, and the admins) holds them in.
///
/// # Errors
/// When an actor cannot be reached.
pub(crate) async fn member_inboxes(
    state: &AppState,
    caller: &Authenticated,
) -> Result<Vec<InboxId>, ApiError> {
    let candidates: BTreeSet<InboxId> = state
        .ws
        .directories
        .query(&caller.org, |d: &Directory, _| {
            d.numbers().filter_map(|n| n.inbox()).collect()
        })
        .await?;
    let (org, user) = (caller.org, caller.user);
    let mut table = workers::visibility::Audiences::default();
    let mut out = Vec::new();
    for inbox in candidates {
        let known =
            workers::visibility::learn(&mut table, &state.ws, |a| a.inbox_readers(inbox).err())
                .await?;
        if known && table.sees_inbox(org, inbox, user).unwrap_or(false) {
            out.push(inbox);
            if out.len() == VISIBLE_INBOXES {
                break;
            }
        }
    }
    Ok(out)
}

/// Waits (bounded) until the interactions model and, when running, the search model have
/// applied `after`.
pub(crate) async fn caught_up(state: &AppState, after: Option<u64>) -> Result<(), ApiError> {
    let Some(p) = after else {
        return Ok(());
    };
    let search_ok = match &state.search {
        Some(s) => s.wait_for(p, RYW_TIMEOUT).await,
        None => true,
    };
    if search_ok && state.interactions.wait_for(p, RYW_TIMEOUT).await {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "view_behind",
            "search has not caught up with that position yet; retry",
        ))
    }
}

/// `GET /v1/search?q=&before=&limit=&after=`.
pub async fn search(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<Json<SearchOut>, ApiError> {
    let text = q.q.unwrap_or_default();
    if text.trim().is_empty() {
        return Err(invalid("q (the words to search for) is required"));
    }
    if text.chars().count() > projections::search::MAX_QUERY_CHARS {
        return Err(invalid(format!(
            "q is longer than {} characters",
            projections::search::MAX_QUERY_CHARS
        )));
    }
    let limit = match q.limit {
        None => DEFAULT_LIMIT,
        Some(l) if (1..=MAX_LIMIT).contains(&l) => l,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_limit",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            ))
        }
    };
    let Some(live) = state.search.clone() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "search_unavailable",
            "search is not running on this server",
        ));
    };
    // A search-idle index commits for its searchers (`projections::search::demand`): a
    // search that would miss documents waiting longer than the refresh interval has
    // everything up to the log's head committed first, as `after=` would.
    let after = if live.db().demand().searching() {
        let head = state.store().next_position().checked_sub(1);
        head.max(q.after)
    } else {
        q.after
    };
    caught_up(&state, after).await?;
    let inboxes = member_inboxes(&state, &caller).await?;
    let (org, user, before) = (caller.org, caller.user, q.before);
    let interactions = state.interactions.db();
    let index = live.db();
    let page = tokio::task::spawn_blocking(move || -> Result<SearchPage, SearchError> {
        let visible = interactions.visible_conversations(org, user, &inboxes, VISIBLE_LIMIT)?;
        index.search(org, &text, &visible, before, limit)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| match e {
        SearchError::Invalid(e) => invalid(e.to_string()),
        other => ApiError::internal(other),
    })?;
    Ok(Json(render(&state, &caller, page).await?))
}

/// Names authors against the directory (one query for the whole page).
async fn render(
    state: &AppState,
    caller: &Authenticated,
    page: SearchPage,
) -> Result<SearchOut, ApiError> {
    let viewer = caller.user;
    let SearchPage { hits, next_before } = page;
    let items = state
        .ws
        .directories
        .query(&caller.org, move |d: &Directory, _| {
            hits.iter()
                .map(|h| {
                    let (author_kind, author, author_name) = match &h.author {
                        Author::User(u) => ("user", u.to_string(), user_name(d, u)),
                        Author::External(n) => {
                            ("external", n.to_string(), d.resolve_name(n, viewer))
                        }
                        Author::AutoReply(n) => {
                            ("auto_reply", n.to_string(), d.resolve_name(n, viewer))
                        }
                    };
                    HitOut {
                        conversation_id: h.conversation,
                        message_id: h.message_id,
                        seq: h.seq,
                        author_kind: author_kind.into(),
                        author,
                        author_name,
                        snippet: SnippetOut {
                            text: h.snippet.text.clone(),
                            highlights: h.snippet.highlights.clone(),
                            html: h.snippet.html.clone(),
                        },
                        at_ms: h.at_ms,
                        position: h.position,
                    }
                })
                .collect::<Vec<_>>()
        })
        .await?;
    Ok(SearchOut { items, next_before })
}

fn user_name(d: &Directory, u: &UserId) -> Option<String> {
    d.user(u).map(|u| u.name.clone())
}
