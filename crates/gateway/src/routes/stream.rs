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
//! [`HEARTBEAT`]; a client that does not take a frame within [`SEND_TIMEOUT`], or falls
//! [`crate::hub::CONNECTION_QUEUE`] frames behind, is cut off with close code 4008
//! (`slow_consumer`) and resumes from its last position.
//!
//! Live frames come from the [`crate::hub`] (one subscription for every connection); a
//! `since=` resume reads what came before the hub's position from storage first.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use domain::{Conversation, ConversationId, OrgId, UserId};
use serde::Deserialize;

use crate::app::AppState;
use crate::auth::sessions;
use crate::error::ApiError;
use crate::hub::{LiveEvent, Outbound, TypingFrame, UnreadEffect};
use crate::routes::json::ApiQuery;

pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// How long a typing indicator shows after the last keystroke frame.
pub const TYPING_TTL_MS: u64 = 5_000;

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientFrame {
    Typing { conversation_id: ConversationId },
}
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest frame a client may send (only typing frames are expected).
pub const MAX_CLIENT_FRAME: usize = 16 * 1024;
/// Clients send little: a small read buffer per connection, not tungstenite's 128 KiB.
const READ_BUFFER: usize = 4 * 1024;

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
    let session = state.sessions.check(state.store(), token.trim()).await?;
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
    let since = params.since;
    Ok(upgrade
        .read_buffer_size(READ_BUFFER)
        .max_message_size(MAX_CLIENT_FRAME)
        .max_frame_size(MAX_CLIENT_FRAME)
        .on_upgrade(move |socket| serve(state, org, user, since, socket)))
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
        // An actor that cannot answer now is not a "no": nothing is cached then.
        let Ok(facts) = crate::routes::facts::facts_for(state, org, user, id).await else {
            return false;
        };
        let Ok(v) = state
            .ws
            .conversations
            .query(&id, move |c: &Conversation, _| {
                c.header().is_some_and(|h| h.org == org) && c.can_view(user, &facts)
            })
            .await
        else {
            return false;
        };
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
    async fn after(&mut self, state: &AppState, user: UserId, event: &LiveEvent) -> Option<u64> {
        let (seq, mine, read) = match event.unread {
            UnreadEffect::Message { seq, author } => (Some(seq), author == Some(user), None),
            UnreadEffect::Read {
                user: reader,
                up_to,
            } if reader == user => (None, false, Some(up_to)),
            _ => return None,
        };
        let fresh = !self.known.contains_key(&event.conversation);
        let e = self.entry(state, user, event.conversation).await;
        if let Some(seq) = seq {
            // Frames come in log order: a message's own seq is the last one at its frame,
            // even when the read model has gone further already.
            e.0 = if fresh { seq } else { e.0.max(seq) };
            if mine {
                e.1 = e.1.max(seq);
            }
        }
        if let Some(up_to) = read {
            e.1 = e.1.max(up_to);
        }
        Some(e.0.saturating_sub(e.1))
    }

    /// `event`'s frame as this user gets it.
    async fn frame(&mut self, state: &AppState, user: UserId, event: &LiveEvent) -> String {
        let count = self.after(state, user, event).await;
        let mut frame = String::with_capacity(event.frame_head.len() + 16);
        frame.push_str(&event.frame_head);
        if let Some(n) = count {
            let _ = write!(frame, ",\"unread\":{n}");
        }
        frame.push('}');
        frame
    }
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

/// Sends one frame; `Err` with the close to give when the client cannot take it.
async fn send(socket: &mut WebSocket, frame: String) -> Result<(), Option<(u16, &'static str)>> {
    match tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(frame.into()))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(None),
        Err(_) => Err(Some((4008, "slow_consumer"))),
    }
}

/// Events read per page while catching up from storage.
const CATCH_UP_PAGE: usize = 512;

/// Sends the caller's events after `since` up to `until` (inclusive) from storage.
async fn catch_up(
    state: &AppState,
    socket: &mut WebSocket,
    vis: &mut Visibility,
    unread: &mut Unread,
    since: u64,
    until: u64,
) -> Result<(), Option<(u16, &'static str)>> {
    let mut from = since.saturating_add(1);
    while from <= until {
        let page = eventlog::store::nonblocking::read_category(
            state.store(),
            "conversation",
            from,
            CATCH_UP_PAGE,
        )
        .await
        .map_err(|_| Some((1011, "internal")))?;
        let Some(last) = page.last() else { break };
        from = last.position.saturating_add(1);
        for record in page.iter().take_while(|r| r.position <= until) {
            let Some(event) = LiveEvent::of(record) else {
                if let Ok(id) = record.stream.id().parse() {
                    vis.known.remove(&id); // joins and leaves change who may see it
                }
                continue;
            };
            if event.unread == UnreadEffect::None {
                vis.known.remove(&event.conversation);
            }
            if vis.allows(state, event.conversation).await {
                send(socket, unread.frame(state, vis.user, &event).await).await?;
            }
        }
        if page.len() < CATCH_UP_PAGE {
            break;
        }
    }
    Ok(())
}

async fn serve(
    state: AppState,
    org: OrgId,
    user: UserId,
    since: Option<u64>,
    mut socket: WebSocket,
) {
    state.metrics.websockets.inc();
    let _connected = Connected(state.metrics.clone());
    let hub = state.hub.get(&state);
    let Some(mut registration) = hub.register(user) else {
        close(&mut socket, 1012, "restarting").await;
        return;
    };
    let mut vis = Visibility {
        org,
        user,
        known: HashMap::new(),
    };
    let mut unread = Unread::default();
    // The hub brings everything after `registration.after`; storage has the rest.
    if let (Some(since), Some(until)) = (since, registration.after) {
        if let Err(reason) =
            catch_up(&state, &mut socket, &mut vis, &mut unread, since, until).await
        {
            if let Some((code, why)) = reason {
                close(&mut socket, code, why).await;
            }
            return;
        }
    }
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    loop {
        tokio::select! {
            next = registration.events.recv() => {
                let frame = match next {
                    // A client may resume from a position the hub has not reached yet
                    // (one its own write returned): it has seen everything up to it.
                    Some(Outbound::Event(event)) if since.is_some_and(|s| event.position <= s) => continue,
                    Some(Outbound::Event(event)) => unread.frame(&state, user, &event).await,
                    Some(Outbound::Typing(t)) => t.json.clone(),
                    None if registration.fate.lagged() => {
                        close(&mut socket, 4008, "slow_consumer").await;
                        return;
                    }
                    None => {
                        close(&mut socket, 1012, "restarting").await;
                        return;
                    }
                };
                if let Err(reason) = send(&mut socket, frame).await {
                    if let Some((code, why)) = reason {
                        close(&mut socket, code, why).await;
                    }
                    return;
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
                            let json = serde_json::json!({
                                "type": "typing",
                                "conversation_id": conversation_id,
                                "user": user,
                                "expires_at_ms": sessions::now_ms() + TYPING_TTL_MS,
                            })
                            .to_string();
                            hub.typing(&state, org, conversation_id, TypingFrame { user, json }).await;
                        }
                    }
                }
                Some(Ok(_)) => {}
            },
        }
    }
}
