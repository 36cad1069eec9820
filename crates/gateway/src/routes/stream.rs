//! `GET /v1/stream` (WebSocket): the caller's events in real time, each with its global
//! position. `?since=<position>` resumes right after the last position the client saw,
//! with no gap and no duplicate (the log's subscription guarantees it). Browsers cannot set
//! headers on a WebSocket, so the token may come as `?token=` as well as a bearer header.
//!
//! Frames are JSON: `{"position", "conversation_id", "version", "item", "unread"?}` where
//! `item` is a timeline item (message, inbound, read, system) and `unread` is the caller's
//! unread count in that conversation after it (on message frames and the caller's own
//! read frames).
//!
//! Typing: a client sends `{"type":"typing","conversation_id":…}` on each keystroke burst;
//! the other internal participants connected get `{"type":"typing","conversation_id",
//! "user","expires_at_ms"}` and hide it at that time, or as soon as a message from that
//! user arrives. Typing is never stored and never reaches external numbers (they have no
//! connection here). A heartbeat ping goes out every
//! [`HEARTBEAT`]; a client that does not take a frame within [`SEND_TIMEOUT`] is cut off
//! with close code 4008 (`slow_consumer`) and resumes from its last position.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use domain::{Conversation, ConversationEvent, ConversationId, OrgId, UserId};
use eventlog::{RecordedEvent, StartFrom, Subscription, SubscriptionTarget};
use serde::Deserialize;

use crate::app::AppState;
use crate::auth::sessions;
use crate::error::ApiError;
use crate::routes::conversations::item_of;
use crate::routes::json::ApiQuery;

pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// How long a typing indicator shows after the last keystroke frame.
pub const TYPING_TTL_MS: u64 = 5_000;

/// A typing indicator in flight between connections.
#[derive(Debug, Clone)]
pub struct Typing {
    pub org: OrgId,
    pub conversation: ConversationId,
    pub user: UserId,
    pub expires_at_ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientFrame {
    Typing { conversation_id: ConversationId },
}
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize)]
pub struct StreamParams {
    pub since: Option<u64>,
    pub token: Option<String>,
}

pub async fn stream(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<StreamParams>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
        .or(params.token)
        .ok_or_else(ApiError::unauthenticated)?;
    let session = sessions::check(state.store(), token.trim()).await?;
    let (org, user) = (session.org, session.user);
    let exists = state
        .ws
        .directories
        .query(&org, move |d: &domain::Directory, _| {
            d.user(&user).is_some()
        })
        .await?;
    if !exists {
        return Err(ApiError::unauthenticated());
    }
    let upgrade = upgrade.map_err(|_| {
        ApiError::bad_request("websocket_required", "connect with a WebSocket upgrade")
    })?;
    let from = params.since.map_or(StartFrom::End, StartFrom::After);
    Ok(upgrade.on_upgrade(move |socket| serve(state, org, user, from, socket)))
}

/// Whether `user` may see each conversation, cached; membership events clear the entry.
struct Visibility {
    org: OrgId,
    user: UserId,
    known: HashMap<ConversationId, bool>,
}

impl Visibility {
    async fn allows(&mut self, state: &AppState, id: ConversationId) -> bool {
        if let Some(v) = self.known.get(&id) {
            return *v;
        }
        let (org, user) = (self.org, self.user);
        let Ok(facts) = crate::routes::facts::facts_for(state, org, user, id).await else {
            return false;
        };
        let v = state
            .ws
            .conversations
            .query(&id, move |c: &Conversation, _| {
                c.header().is_some_and(|h| h.org == org) && c.can_view(user, &facts)
            })
            .await
            .unwrap_or(false);
        self.known.insert(id, v);
        v
    }
}

/// The caller's unread count per conversation, kept as the stream goes: seeded from the
/// interactions read model the first time a conversation shows up, then moved by the
/// message and read events this stream delivers (in log order, so never stale).
#[derive(Default)]
struct Unread {
    /// (last message seq, read up to) per conversation.
    known: HashMap<ConversationId, (u64, u64)>,
}

impl Unread {
    async fn entry(
        &mut self,
        state: &AppState,
        user: UserId,
        id: ConversationId,
    ) -> &mut (u64, u64) {
        match self.known.entry(id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let db = state.interactions.db();
                let seeded = tokio::task::spawn_blocking(move || {
                    let last = db
                        .conversation(&id)
                        .ok()
                        .flatten()
                        .map_or(0, |m| m.last_seq);
                    (last, db.marker(&user, &id).unwrap_or(0))
                })
                .await
                .unwrap_or((0, 0));
                v.insert(seeded)
            }
        }
    }

    /// The unread count after `event`, for the frames that change it.
    async fn after(
        &mut self,
        state: &AppState,
        user: UserId,
        id: ConversationId,
        event: &ConversationEvent,
    ) -> Option<u64> {
        let (seq, mine, read) = match event {
            ConversationEvent::MessagePosted(m) => (Some(m.seq), m.author == user, None),
            ConversationEvent::InboundReceived(m) => (Some(m.seq), false, None),
            ConversationEvent::MessagesRead(r) if r.user == user => (None, false, Some(r.up_to)),
            _ => return None,
        };
        let e = self.entry(state, user, id).await;
        if let Some(seq) = seq {
            e.0 = e.0.max(seq);
            if mine {
                e.1 = e.1.max(seq);
            }
        }
        if let Some(up_to) = read {
            e.1 = e.1.max(up_to);
        }
        Some(e.0.saturating_sub(e.1))
    }
}

async fn frame_of(
    state: &AppState,
    vis: &mut Visibility,
    unread: &mut Unread,
    record: &RecordedEvent,
) -> Option<String> {
    let id: ConversationId = record.stream.id().parse().ok()?;
    let event: ConversationEvent = actors::event_codec::decode(record).ok()?;
    if matches!(
        event,
        ConversationEvent::ChannelMemberJoined(_)
            | ConversationEvent::ChannelMembersAdded(_)
            | ConversationEvent::ChannelMemberLeft(_)
            | ConversationEvent::ConversationStarted(_)
    ) {
        vis.known.remove(&id);
    }
    if !vis.allows(state, id).await {
        return None;
    }
    let count = unread.after(state, vis.user, id, &event).await;
    let item = item_of(event)?;
    let mut frame = serde_json::json!({
        "position": record.position,
        "conversation_id": id,
        "version": record.version,
        "item": item,
    });
    if let Some(n) = count {
        frame["unread"] = n.into();
    }
    Some(frame.to_string())
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}

/// Counts an open connection for as long as it lives.
struct Connected(std::sync::Arc<crate::metrics::Metrics>);

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.websockets.dec();
    }
}

async fn serve(state: AppState, org: OrgId, user: UserId, from: StartFrom, mut socket: WebSocket) {
    state.metrics.websockets.inc();
    let _connected = Connected(state.metrics.clone());
    let target = SubscriptionTarget::Category("conversation".into());
    let Ok(mut sub) = Subscription::new(state.store().clone(), target, from) else {
        close(&mut socket, 1011, "internal").await;
        return;
    };
    let mut vis = Visibility {
        org,
        user,
        known: HashMap::new(),
    };
    let mut unread = Unread::default();
    let mut typing = state.typing.subscribe();
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    loop {
        tokio::select! {
            next = sub.next() => {
                let record = match next {
                    Ok(r) => r,
                    Err(_) => {
                        close(&mut socket, 1012, "restarting").await;
                        return;
                    }
                };
                let Some(frame) = frame_of(&state, &mut vis, &mut unread, &record).await else { continue };
                match tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(frame.into()))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return,
                    Err(_) => {
                        close(&mut socket, 4008, "slow_consumer").await;
                        return;
                    }
                }
            }
            _ = heartbeat.tick() => {
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(Message::Text(text))) => {
                    // Malformed frames and conversations the caller cannot see are ignored.
                    if let Ok(ClientFrame::Typing { conversation_id }) = serde_json::from_str(&text) {
                        if vis.allows(&state, conversation_id).await {
                            let _ = state.typing.send(Typing {
                                org,
                                conversation: conversation_id,
                                user,
                                expires_at_ms: sessions::now_ms() + TYPING_TTL_MS,
                            });
                        }
                    }
                }
                Some(Ok(_)) => {}
            },
            t = typing.recv() => {
                let Ok(t) = t else { continue }; // lagged: typing is best-effort
                if t.org != org || t.user == user || !vis.allows(&state, t.conversation).await {
                    continue;
                }
                let frame = serde_json::json!({
                    "type": "typing",
                    "conversation_id": t.conversation,
                    "user": t.user,
                    "expires_at_ms": t.expires_at_ms,
                });
                if socket.send(Message::Text(frame.to_string().into())).await.is_err() {
                    return;
                }
            }
        }
    }
}
