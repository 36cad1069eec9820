//! The read-model lists: `GET /v1/interactions` (the caller's conversation list with the
//! All / External / Direct / Channels filters), `GET /v1/inboxes/{id}/conversations`
//! (an inbox's views with the per-viewer badges) and `GET /v1/channels` (every channel of
//! the caller's organization, to browse and join).
//!
//! All are newest activity first, paginated with `before=<position>` (the `next_before`
//! of the previous page), and accept `after=<position>`: the position of the caller's own
//! write, which the read model reaches before answering (read your writes; 503
//! `view_behind` if it does not within [`RYW_TIMEOUT`]). Names are resolved against the
//! directory when answering: the viewer's personal contacts, then the organization's,
//! then users.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use domain::{ConversationId, Directory, InboxId, UserId};
use projections::interactions::{
    Badges, ChannelRow, InboxView, KindFilter, KindView, Page, PreviewAuthor, Row,
};
use projections::ProjectionError;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::routes::json::ApiPath;
use crate::routes::json::ApiQuery;

pub const RYW_TIMEOUT: Duration = Duration::from_secs(2);
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 200;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `GET /v1/interactions` only: which kinds (default `all`).
    #[schemars(extend("enum" = ["all", "external", "direct", "channels"]))]
    pub filter: Option<String>,
    /// `GET /v1/inboxes/{id}/conversations` only: which view (default `unassigned`).
    #[schemars(extend("enum" = ["open", "unassigned", "assigned", "mine", "done"]))]
    pub view: Option<String>,
    /// The previous page's `next_before` cursor.
    pub before: Option<u64>,
    /// Page size, 1 to 200.
    pub limit: Option<usize>,
    /// Wait until the list includes this log position (read your writes).
    pub after: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PreviewOut {
    /// "user", "external", "system" or "auto_reply" (our number's answer to a HELP).
    pub author_kind: String,
    pub author: Option<String>,
    pub author_name: Option<String>,
    pub text: String,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InteractionOut {
    pub conversation_id: ConversationId,
    /// "external", "direct", "channel" or "group".
    pub kind: String,
    /// What the list shows: the contact or user name, the number, or the channel name.
    pub title: String,
    pub our_number: Option<String>,
    pub their_number: Option<String>,
    pub last_position: u64,
    pub last_at_ms: u64,
    pub unread: u64,
    pub preview: Option<PreviewOut>,
    pub inbox_id: Option<InboxId>,
    /// "unassigned", "assigned" or "done" for inbox conversations.
    pub status: Option<String>,
    pub assignee: Option<UserId>,
    pub badges: Option<Badges>,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "InteractionList")]
pub struct ListOut {
    pub items: Vec<InteractionOut>,
    pub next_before: Option<u64>,
}

fn limit_of(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(l) if (1..=MAX_LIMIT).contains(&l) => Ok(l),
        Some(_) => Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

async fn caught_up(state: &AppState, after: Option<u64>) -> Result<(), ApiError> {
    if let Some(p) = after {
        if !state.interactions.wait_for(p, RYW_TIMEOUT).await {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "view_behind",
                "the list has not caught up with that position yet; retry",
            ));
        }
    }
    Ok(())
}

/// `GET /v1/interactions?filter=all|external|direct|channels&before&limit&after`.
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<ListOut>, ApiError> {
    let filter = match q.filter.as_deref().unwrap_or("all") {
        "all" => KindFilter::All,
        "external" => KindFilter::External,
        "direct" => KindFilter::Direct,
        "channels" => KindFilter::Channels,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_filter",
                "filter is one of all, external, direct, channels",
            ))
        }
    };
    if q.view.is_some() {
        return Err(ApiError::bad_request(
            "invalid_query",
            "view applies to inboxes",
        ));
    }
    let limit = limit_of(q.limit)?;
    caught_up(&state, q.after).await?;
    let (org, user, before) = (caller.org, caller.user, q.before);
    let db = state.interactions.db();
    let page = tokio::task::spawn_blocking(move || db.list(org, user, filter, before, limit))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)?;
    Ok(Json(render(&state, &caller, page, false).await?))
}

/// `GET /v1/inboxes/{id}/conversations?view=open|unassigned|assigned|mine|done&before&limit&after`
/// (inbox members).
pub async fn inbox_view(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(inbox): ApiPath<InboxId>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<ListOut>, ApiError> {
    let view = match q.view.as_deref().unwrap_or("unassigned") {
        "open" => InboxView::Open,
        "unassigned" => InboxView::Unassigned,
        "assigned" => InboxView::Assigned,
        "mine" => InboxView::Mine,
        "done" => InboxView::Done,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_view",
                "view is one of open, unassigned, assigned, mine, done",
            ))
        }
    };
    if q.filter.is_some() {
        return Err(ApiError::bad_request(
            "invalid_query",
            "filter applies to interactions",
        ));
    }
    let limit = limit_of(q.limit)?;
    if !crate::routes::facts::may_work_inbox(&state, &caller, inbox).await? {
        return Err(ApiError::not_found("inbox_not_found", "no such inbox"));
    }
    caught_up(&state, q.after).await?;
    let (org, user, before) = (caller.org, caller.user, q.before);
    let db = state.interactions.db();
    let page =
        tokio::task::spawn_blocking(move || db.inbox_view(org, inbox, user, view, before, limit))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::from)?;
    Ok(Json(render(&state, &caller, page, true).await?))
}

/// `GET /v1/conversations/{id}` query.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OneQuery {
    /// Wait (briefly) until the summary reflects the write at this log position.
    pub after: Option<u64>,
}

/// `GET /v1/conversations/{id}`: one conversation as the caller's lists show it (kind,
/// title, numbers, unread count, preview; for an inbox conversation its inbox, status,
/// assignee and badges), so any way into a conversation (search, a link) opens the same
/// full view. Whoever may read its history may read it; 404 otherwise.
///
/// # Errors
/// `conversation_not_found`, `view_behind` (503: the list has not caught up yet).
pub async fn one(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<ConversationId>,
    ApiQuery(q): ApiQuery<OneQuery>,
) -> Result<Json<InteractionOut>, ApiError> {
    crate::routes::conversations::visible(&state, &caller, id).await?;
    caught_up(&state, q.after).await?;
    let (db, user) = (state.interactions.db(), caller.user);
    let row = tokio::task::spawn_blocking(move || -> Result<Option<Row>, ProjectionError> {
        let Some(meta) = db.conversation(&id)? else {
            return Ok(None);
        };
        let unread = db.unread(&user, &meta)?;
        Ok(Some(Row {
            conversation: id,
            last_position: meta.last_position,
            last_at_ms: meta.last_at_ms,
            unread,
            meta,
        }))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::from)?;
    let Some(row) = row else {
        // Visible to its actor, not listed yet: just created.
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "view_behind",
            "the conversation is not listed yet; retry",
        ));
    };
    let badges = row.meta.inbox.is_some();
    let viewer = caller.user;
    let row = opened(&state, vec![row]).await.remove(0);
    let out = state
        .ws
        .directories
        .query(&caller.org, move |d: &Directory, _| {
            item(d, viewer, row.clone(), badges)
        })
        .await?;
    Ok(Json(out))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelsQuery {
    /// The previous page's `next_before` cursor.
    pub before: Option<u64>,
    /// Page size, 1 to 200.
    pub limit: Option<usize>,
    /// Wait until the list includes this log position (read your writes).
    pub after: Option<u64>,
}

/// One channel of the organization.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChannelOut {
    pub conversation_id: ConversationId,
    pub name: String,
    /// How many members it has.
    pub members: usize,
    /// Whether the caller is a member.
    pub joined: bool,
    pub last_activity_at_ms: u64,
    /// Log position of its last activity (the cursor `before` pages by).
    pub position: u64,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "ChannelList")]
pub struct ChannelsOut {
    pub items: Vec<ChannelOut>,
    pub next_before: Option<u64>,
}

/// `GET /v1/channels?before&limit&after`: every channel of the caller's organization,
/// joined or not (anyone in it may join one), newest activity first. Any role; other
/// organizations' channels never appear.
///
/// # Errors
/// `invalid_limit` (400), `view_behind` (503).
pub async fn channels(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiQuery(q): ApiQuery<ChannelsQuery>,
) -> Result<Json<ChannelsOut>, ApiError> {
    let limit = limit_of(q.limit)?;
    caught_up(&state, q.after).await?;
    let (org, user, before) = (caller.org, caller.user, q.before);
    let db = state.interactions.db();
    let page = tokio::task::spawn_blocking(move || db.channels(org, user, before, limit))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)?;
    let item = |r: ChannelRow| ChannelOut {
        conversation_id: r.conversation,
        name: r.name,
        members: r.members,
        joined: r.joined,
        last_activity_at_ms: r.last_at_ms,
        position: r.last_position,
    };
    Ok(Json(ChannelsOut {
        items: page.rows.into_iter().map(item).collect(),
        next_before: page.next_before,
    }))
}

/// Resolves names against the directory (one query for the whole page).
async fn render(
    state: &AppState,
    caller: &Authenticated,
    page: Page,
    badges: bool,
) -> Result<ListOut, ApiError> {
    let viewer = caller.user;
    let Page { rows, next_before } = page;
    let rows = opened(state, rows).await;
    let items = state
        .ws
        .directories
        .query(&caller.org, move |d: &Directory, _| {
            rows.iter()
                .map(|r| item(d, viewer, r.clone(), badges))
                .collect::<Vec<_>>()
        })
        .await?;
    Ok(ListOut { items, next_before })
}

/// The rows with their previews' texts opened (or erased): the keys in memory in place,
/// those not there yet read from the keyring's storage in one blocking hop for the page.
async fn opened(state: &AppState, mut rows: Vec<Row>) -> Vec<Row> {
    state.sealer().open_event(&mut Previews(&mut rows)).await;
    rows
}

/// A page's preview texts, opened together.
struct Previews<'a>(&'a mut [Row]);

impl domain::text::Texts for Previews<'_> {
    fn texts_mut(&mut self) -> Vec<&mut domain::Text> {
        self.0
            .iter_mut()
            .filter_map(|row| row.meta.preview.as_mut().map(|p| &mut p.text))
            .collect()
    }
}

fn user_name(d: &Directory, u: &UserId) -> String {
    d.user(u).map_or_else(|| u.to_string(), |u| u.name.clone())
}

fn item(d: &Directory, viewer: UserId, r: Row, badges: bool) -> InteractionOut {
    let number_name = |n: &domain::PhoneNumber| d.resolve_name(n, viewer);
    let (kind, title, our, their) = match &r.meta.kind {
        KindView::External { our, their } => (
            "external",
            number_name(their).unwrap_or_else(|| their.to_string()),
            Some(our.to_string()),
            Some(their.to_string()),
        ),
        KindView::Direct { a, b } => {
            let other = if *a == viewer { b } else { a };
            ("direct", user_name(d, other), None, None)
        }
        KindView::Channel { name } => ("channel", name.clone(), None, None),
        KindView::Group { our, externals } => {
            let mut names: Vec<String> = r
                .meta
                .members
                .iter()
                .filter(|u| **u != viewer)
                .map(|u| user_name(d, u))
                .collect();
            names.extend(
                externals
                    .iter()
                    .map(|n| number_name(n).unwrap_or_else(|| n.to_string())),
            );
            ("group", names.join(", "), Some(our.to_string()), None)
        }
    };
    let preview = r.meta.preview.as_ref().map(|p| {
        let (author_kind, author, author_name) = match &p.author {
            PreviewAuthor::User(u) => ("user", Some(u.to_string()), Some(user_name(d, u))),
            PreviewAuthor::External(n) => ("external", Some(n.to_string()), number_name(n)),
            PreviewAuthor::System => ("system", None, None),
            PreviewAuthor::AutoReply(n) => ("auto_reply", Some(n.to_string()), number_name(n)),
        };
        PreviewOut {
            author_kind: author_kind.into(),
            author,
            author_name,
            // Opened before (`opened`): the words, or `[erased]`.
            text: p.shown(&actors::sealing::Sealer::clear()),
        }
    });
    let (inbox_id, status, assignee) = match r.meta.inbox {
        Some((inbox, s)) => {
            let (name, who) = match s {
                projections::interactions::InboxStatus::Unassigned => ("unassigned", None),
                projections::interactions::InboxStatus::Assigned(u) => ("assigned", Some(u)),
                projections::interactions::InboxStatus::Done => ("done", None),
            };
            (Some(inbox), Some(name.to_owned()), who)
        }
        None => (None, None, None),
    };
    InteractionOut {
        conversation_id: r.conversation,
        kind: kind.into(),
        title,
        our_number: our,
        their_number: their,
        last_position: r.last_position,
        last_at_ms: r.last_at_ms,
        unread: r.unread,
        preview,
        inbox_id,
        status,
        assignee,
        badges: r
            .meta
            .inbox
            .filter(|_| badges)
            .map(|(_, s)| Badges::of(s, viewer, r.unread)),
    }
}
