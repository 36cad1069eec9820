//! `GET /v1/stream` (WebSocket): the caller's events in real time, each with its global
//! position. `?since=<position>` resumes right after the last position the client saw,
//! with no gap and no duplicate. Browsers cannot set headers on a WebSocket, so the token
//! may come as `?token=` as well as a bearer header.
//!
//! Frames are JSON, one per event position:
//! - a conversation's timeline: `{"position", "conversation_id", "version", "item",
//!   "unread"?}` where `item` is a timeline item (message, inbound, auto reply, read,
//!   system, call, delivery) and `unread` is the caller's unread count in that
//!   conversation after it (on message frames and the caller's own read frames);
//! - an inbox change, to the inbox's team: `{"type":"inbox", "position", "inbox_id",
//!   "conversation_id" (null for team changes), "change" (the event's name in snake_case:
//!   `conversation_assigned`, `conversation_transferred`, `returned_to_inbox`,
//!   `marked_done`, `reopened_by_inbound_text`, `inbox_attached`, `inbox_detached`,
//!   `inbox_created`, `inbox_member_added`, `inbox_member_removed`, `inbox_renamed`),
//!   "assignee" (the holder after it, or null)}`;
//! - a queue change, to the queue's members and the organization's admins:
//!   `{"type":"queue", "position", "queue_id",
//!   "conversation_id" (null for membership, login and policy changes), "change"
//!   (`interaction_queued`, `interaction_claimed`, `interaction_released`,
//!   `interaction_transferred`, `interaction_closed`, `queue_timed_out`,
//!   `agent_logged_in`, `agent_logged_out`, `queue_member_added`, `queue_member_removed`,
//!   `queue_policy_changed`, `queue_created`), "agent" (who claimed, the transfer's
//!   target, who released or closed it — null when the policy did —, who logged in or
//!   out, the member added or removed; else null)}`.
//!
//! A user removed from an inbox team or a queue gets that change as well. Each event goes
//! to the users who may see it as of its own position (see [`crate::hub`]).
//!
//! Typing: a client sends `{"type":"typing","conversation_id":…}` on each keystroke burst;
//! the other internal participants connected get `{"type":"typing","conversation_id",
//! "user","expires_at_ms"}` (no position) and hide it at that time. It ends early when the
//! typist's message is posted, or when they send `{"type":"typing_stopped",
//! "conversation_id"}` (the input was cleared): the others get the same frame with
//! `"stopped": true` and `expires_at_ms` now. Typing is never stored and never reaches external
//! numbers (they have no connection here). A heartbeat ping goes out every [`HEARTBEAT`]
//! ([`crate::hub::HubConfig::heartbeat`]); a client that sends nothing, not even the pong,
//! for two of them is taken for gone and closed with 4002 (`heartbeat_timeout`).
//!
//! Sessions: a stream lives no longer than the session that opened it. When the session
//! is revoked (logout) or expires, the stream closes with code 4001 (`session_ended` /
//! `session_expired`); reconnecting then needs a new login.
//!
//! Slow consumers: the hub queues at most [`crate::hub::HubConfig::connection_queue`]
//! frames per connection ([`crate::hub::CONNECTION_QUEUE`] by default) and never waits
//! for a socket. When a connection's queue overflows, the hub drops it and the connection
//! stops at once — even while blocked writing to a client that reads nothing — and closes
//! with code 4008 (`slow_consumer`); the client resumes from its last position. That is
//! the only limit on a slow client: there is no per-frame send timeout (a client that
//! reads nothing while nothing happens costs its socket buffers until its queue
//! overflows). Those buffers are bounded: a stream's socket sends through a kernel buffer
//! capped at [`SOCKET_SEND_BUFFER`] (when the server runs with [`crate::peer::Peer`]
//! connection info), not the MiBs TCP autotuning grants. The close frame comes after
//! whatever the socket still buffers; a client that takes nothing for [`CLOSE_TIMEOUT`]
//! is dropped without it.
//!
//! Live frames come from the [`crate::hub`] (one subscription for every connection); a
//! `since=` resume reads what came before the hub's position from storage first (the
//! categories in [`crate::hub::CATEGORIES`], merged in log order and routed the same way).

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use domain::{ConversationId, OrgId, UserId};
use eventlog::RecordedEvent;
use futures_util::SinkExt;
use serde::Deserialize;

use crate::app::AppState;
use crate::auth::sessions;
use crate::error::ApiError;
use crate::hub::{
    self, Audiences, ConnectionFate, Decoded, LiveEvent, Outbound, UnreadEffect, CATEGORIES,
};
use crate::routes::json::ApiQuery;

pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// How long a typing indicator shows after the last keystroke frame.
pub const TYPING_TTL_MS: u64 = 5_000;

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientFrame {
    Typing { conversation_id: ConversationId },
    TypingStopped { conversation_id: ConversationId },
}
/// How long a connection being closed waits for the client to take the close frame.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest frame a client may send (only typing frames are expected).
pub const MAX_CLIENT_FRAME: usize = 16 * 1024;
/// Clients send little: a small read buffer per connection, not tungstenite's 128 KiB.
const READ_BUFFER: usize = 4 * 1024;
/// How long a conversation's first frame on a stream waits for the interactions model to
/// reach it before its unread count is seeded from the model as it is.
const SEED_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct StreamParams {
    /// The last position the client saw: resume right after it, with no gap and no
    /// duplicate.
    pub since: Option<u64>,
    /// The session token, for clients that cannot set the `Authorization` header.
    pub token: Option<String>,
}

/// Most unsent bytes the kernel buffers for one stream's socket (it doubles this for its
/// bookkeeping): a client that stops reading holds at most that much kernel memory, not
/// the several MiB TCP autotuning would give it, until its frame queue overflows and it is
/// closed as a slow consumer.
pub const SOCKET_SEND_BUFFER: usize = 64 * 1024;

pub async fn stream(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<StreamParams>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
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
    // Watch for the session's end first, then check it again: a logout in between is
    // either seen by the check or signalled to the watch.
    let end = state.sessions.end_of(session.id);
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
    // Registered with the hub before the upgrade is answered: every event after this
    // point reaches the stream, including those appended before its socket is served (a
    // client that reads state once connected misses nothing in between).
    let hub = state.hub.get(&state);
    let registration = hub.register(org, user).ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "restarting",
            "the server is shutting down; connect again",
        )
    })?;
    if let Some(peer) = extensions.get::<axum::extract::ConnectInfo<crate::peer::Peer>>() {
        peer.0.cap_send_buffer(SOCKET_SEND_BUFFER);
    }
    let opened = Opened {
        org,
        user,
        since: params.since,
        end,
        expires_at_ms: session.expires_at_ms,
        hub,
        registration,
    };
    Ok(upgrade
        .read_buffer_size(READ_BUFFER)
        .max_message_size(MAX_CLIENT_FRAME)
        .max_frame_size(MAX_CLIENT_FRAME)
        .on_upgrade(move |socket| serve(state, opened, socket)))
}

/// What a stream is opened with, before its upgrade is answered.
struct Opened {
    org: OrgId,
    user: UserId,
    since: Option<u64>,
    /// Closes the stream when the session is revoked; it also ends at `expires_at_ms`.
    end: sessions::SessionEnd,
    expires_at_ms: u64,
    hub: hub::StreamHub,
    registration: hub::Registration,
}

/// The caller's unread count per conversation, kept as the stream goes: seeded from the
/// interactions read model the first time a conversation shows up (once the model has
/// applied that event, so the seed never misses a read the stream has already passed),
/// then moved by the message and read events this stream delivers (in log order, so
/// never stale).
#[derive(Default)]
struct Unread {
    /// (last message seq, read up to) per conversation. Looked up for every frame, by
    /// server-made ids: hashed with Fx, not SipHash.
    known: rustc_hash::FxHashMap<ConversationId, (u64, u64)>,
}

impl Unread {
    async fn entry(
        &mut self,
        state: &AppState,
        user: UserId,
        id: ConversationId,
        position: u64,
    ) -> &mut (u64, u64) {
        match self.known.entry(id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                // The hub runs ahead of the read model: a seed read before the model has
                // this event could miss the caller's own reads and messages just before
                // it, which this stream will not deliver again. A model still behind
                // after the wait gives its best (counts may then run high until the
                // next read).
                if !state.interactions.wait_for(position, SEED_WAIT).await {
                    tracing::warn!(
                        position,
                        "interactions model behind the stream; unread count seeded from it"
                    );
                }
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
        let e = self
            .entry(state, user, event.conversation, event.position)
            .await;
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
        frame_of(&event.frame_head, count)
    }
}

/// An event's frame from its head (the JSON object without its closing brace) and the
/// reader's unread count, if the event changes it.
///
/// Exactly as long as the frame: a `String` whose length is its capacity becomes the
/// socket's `Bytes` as it is, where one with room to spare takes a second allocation (a
/// shared, reference-counted header), freed with an atomic once the frame is written, for
/// every frame of every connection.
fn frame_of(head: &str, unread: Option<u64>) -> String {
    const UNREAD: &str = ",\"unread\":";
    let tail = unread.map_or(0, |n| {
        UNREAD.len() + n.checked_ilog10().map_or(1, |d| d as usize + 1)
    });
    let mut frame = String::with_capacity(head.len() + tail + 1);
    frame.push_str(head);
    if let Some(n) = unread {
        let _ = write!(frame, "{UNREAD}{n}");
    }
    frame.push('}');
    frame
}

/// Closes with `code`: sends the close frame (after whatever the socket buffers still
/// hold) and waits for the client's answer, which the connection's reader takes (it ends
/// on the client's close), so nothing the client sent is left unread when the TCP
/// connection closes. A client that takes nothing for [`CLOSE_TIMEOUT`] is dropped
/// without it.
async fn close(sink: &mut Sink, reader: &mut AbortOnDrop, code: u16, reason: &'static str) {
    let goodbye = async {
        let frame = Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        if sink.send(frame).await.is_err() {
            return;
        }
        let _ = (&mut reader.0).await;
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, goodbye).await;
}

/// Counts an open connection for as long as it lives.
struct Connected(std::sync::Arc<crate::metrics::Metrics>);

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.websockets.dec();
    }
}

/// Why a connection ends: the close to send, if any.
type Ending = Option<(u16, &'static str)>;

const SLOW_CONSUMER: Ending = Some((4008, "slow_consumer"));
/// Nothing from the client, not even a pong, for two heartbeats: it is gone.
const HEARTBEAT_TIMEOUT: Ending = Some((4002, "heartbeat_timeout"));
/// The session was revoked (logout): reconnecting needs a new login.
const SESSION_ENDED: Ending = Some((4001, "session_ended"));
/// The session expired: reconnecting needs a new login.
const SESSION_EXPIRED: Ending = Some((4001, "session_expired"));

/// Frames written to a socket together at most: what the hub has queued for it when one
/// is sent goes out with it, in one write (one system call, not one a frame, under load).
const WRITE_BATCH: usize = 64;

/// Sends `messages` and flushes them once, unless the hub cuts the connection first (its
/// queue overflowed while this socket took nothing): the hub never waits for a socket,
/// so neither does the cut. `cut` is the connection's [`ConnectionFate::ended`], made once
/// and kept for the connection's life (not made again, and registered again, per send):
/// the session's end and expiry cut a write short too.
async fn send(
    sink: &mut Sink,
    cut: Pin<&mut impl Future<Output = hub::Ending>>,
    messages: Vec<Message>,
) -> Result<(), Ending> {
    let write = async {
        for message in messages {
            sink.feed(message).await?;
        }
        sink.flush().await
    };
    tokio::select! {
        biased;
        why = cut => Err(close_for(why)),
        sent = write => sent.map_err(|_| None),
    }
}

/// The close a connection ended for `why` sends.
fn close_for(why: hub::Ending) -> Ending {
    match why {
        hub::Ending::Lagged => SLOW_CONSUMER,
        hub::Ending::SessionEnded => SESSION_ENDED,
        hub::Ending::SessionExpired => SESSION_EXPIRED,
        // Nobody to tell.
        hub::Ending::ClientLeft => None,
    }
}

/// Aborts the task it holds when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Events read per category and page while catching up from storage.
const CATCH_UP_PAGE: usize = 512;

/// The events of the hub's categories after `from`, up to `until`, in position order, a
/// page at a time: each category's page is read and the merge is cut at the lowest last
/// position of a full page, so no event is skipped between categories.
struct Merged {
    from: u64,
    until: u64,
}

impl Merged {
    async fn next(&mut self, state: &AppState) -> Result<Option<Vec<RecordedEvent>>, Ending> {
        if self.from > self.until {
            return Ok(None);
        }
        let (mut bound, mut page) = (self.until, Vec::new());
        for category in CATEGORIES {
            let read = eventlog::store::nonblocking::read_category(
                state.store(),
                category,
                self.from,
                CATCH_UP_PAGE,
            )
            .await
            .map_err(|_| Some((1011, "internal")))?;
            if read.len() == CATCH_UP_PAGE {
                bound = bound.min(read.last().map_or(self.until, |r| r.position));
            }
            page.extend(read);
        }
        page.retain(|r| r.position <= bound);
        page.sort_unstable_by_key(|r| r.position);
        self.from = bound.saturating_add(1);
        Ok(Some(page))
    }
}

/// Sends the caller's frames after `since` up to `until` (inclusive) from storage, routed
/// by an [`Audiences`] of the catch-up's own, fed every event of the hub's categories in
/// log order as the hub was.
#[allow(clippy::too_many_arguments)]
async fn catch_up(
    state: &AppState,
    sink: &mut Sink,
    fate: &ConnectionFate,
    unread: &mut Unread,
    org: OrgId,
    user: UserId,
    since: u64,
    until: u64,
) -> Result<(), Ending> {
    let cut = fate.ended();
    tokio::pin!(cut);
    let mut audiences = Audiences::default();
    let mut pages = Merged {
        from: since.saturating_add(1),
        until,
    };
    while let Some(page) = pages.next(state).await? {
        let mut batch = Vec::new();
        for record in &page {
            let Some(event) = Decoded::of(record, state.sealer()).await else {
                continue;
            };
            if !hub::prepare(&mut audiences, &state.ws, &event.followed(), Some(org)).await {
                continue;
            }
            let item = match audiences.target(&event.followed()) {
                Ok(Some(t)) if t.org == org && t.audience.contains(&user) => {
                    event.frame(record, &t.subject)
                }
                _ => None,
            };
            let frame = match item {
                Some(Outbound::Event(e)) => unread.frame(state, user, &e).await,
                Some(Outbound::Change(c)) => c.json.clone(),
                Some(Outbound::Typing(_) | Outbound::Wake) | None => continue,
            };
            batch.push(Message::Text(frame.into()));
            if batch.len() == WRITE_BATCH {
                send(sink, cut.as_mut(), std::mem::take(&mut batch)).await?;
            }
        }
        if !batch.is_empty() {
            send(sink, cut.as_mut(), batch).await?;
        }
    }
    Ok(())
}

/// A connection's writing half.
type Sink = futures_util::stream::SplitSink<WebSocket, Message>;

/// When a connection's client last sent anything (a pong, typing, a ping), in ms since
/// the connection opened.
struct Heard {
    opened: tokio::time::Instant,
    ms: std::sync::atomic::AtomicU64,
}

impl Heard {
    fn now(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.ms.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// How long ago the client last sent anything.
    fn silence(&self) -> Duration {
        let ms = self.ms.load(std::sync::atomic::Ordering::Relaxed);
        self.opened
            .elapsed()
            .saturating_sub(Duration::from_millis(ms))
    }
}

/// Reads what the client sends, in a task of its own, until it closes or its socket
/// fails; then ends the connection's fate ([`hub::Ending::ClientLeft`]) and wakes it. The
/// connection's loop so never polls the socket for reading when a frame wakes it (with
/// ten members a channel, ten times a message): this task waits on the socket alone.
/// Typing frames go to the hub from here; malformed frames and conversations the caller
/// cannot see are ignored.
#[allow(clippy::too_many_arguments)]
async fn read_client(
    state: AppState,
    hub: hub::StreamHub,
    org: OrgId,
    user: UserId,
    mut source: futures_util::stream::SplitStream<WebSocket>,
    heard: std::sync::Arc<Heard>,
    fate: std::sync::Arc<ConnectionFate>,
    wake: tokio::sync::mpsc::WeakSender<Outbound>,
) {
    use futures_util::StreamExt;
    loop {
        match source.next().await {
            None | Some(Err(_) | Ok(Message::Close(_))) => break,
            Some(Ok(Message::Text(text))) => {
                heard.now();
                match serde_json::from_str(&text) {
                    Ok(ClientFrame::Typing { conversation_id }) => {
                        let until = sessions::now_ms() + TYPING_TTL_MS;
                        hub.typing(&state, org, user, conversation_id, until).await;
                    }
                    Ok(ClientFrame::TypingStopped { conversation_id }) => {
                        hub.typing_stopped(&state, org, user, conversation_id).await;
                    }
                    Err(_) => {}
                }
            }
            Some(Ok(_)) => heard.now(),
        }
    }
    fate.end_and_wake(hub::Ending::ClientLeft, &wake);
}

async fn serve(state: AppState, opened: Opened, socket: WebSocket) {
    use futures_util::StreamExt;
    state.metrics.websockets.inc();
    let _connected = Connected(state.metrics.clone());
    let Opened {
        org,
        user,
        since,
        end,
        expires_at_ms,
        hub,
        mut registration,
    } = opened;
    let fate = registration.fate.clone();
    let every = hub.config().heartbeat;
    let (mut sink, source) = socket.split();
    // The session's end and expiry are watched by a task of their own, and the client's
    // frames are read by another; each ends the connection's fate and wakes it. The loop
    // below then polls only its queue and the heartbeat each time a frame wakes it, and
    // reads the fate with one atomic load.
    let _watch = {
        let (fate, wake) = (fate.clone(), registration.wake.clone());
        let expired = Duration::from_millis(expires_at_ms.saturating_sub(sessions::now_ms()));
        AbortOnDrop(tokio::spawn(async move {
            let why = tokio::select! {
                () = end.ended() => hub::Ending::SessionEnded,
                () = tokio::time::sleep(expired) => hub::Ending::SessionExpired,
            };
            fate.end_and_wake(why, &wake);
        }))
    };
    let heard = std::sync::Arc::new(Heard {
        opened: tokio::time::Instant::now(),
        ms: std::sync::atomic::AtomicU64::new(0),
    });
    // The client's frames ([`read_client`]); `close` awaits it for the client's answer.
    let mut reader = AbortOnDrop(tokio::spawn(read_client(
        state.clone(),
        hub,
        org,
        user,
        source,
        heard.clone(),
        fate.clone(),
        registration.wake.clone(),
    )));
    let mut unread = Unread::default();
    // The hub brings everything after `registration.after`; storage has the rest.
    if let (Some(since), Some(until)) = (since, registration.after) {
        if let Err(ending) = catch_up(
            &state,
            &mut sink,
            &fate,
            &mut unread,
            org,
            user,
            since,
            until,
        )
        .await
        {
            if let Some((code, why)) = ending {
                close(&mut sink, &mut reader, code, why).await;
            }
            return;
        }
    }
    // A client may resume from a position the hub has not reached yet (one its own write
    // returned): it has seen everything up to it.
    let seen = |position: u64| since.is_some_and(|s| position <= s);
    // The frame of one thing the hub sent (`None`: already seen).
    let message_of = async |unread: &mut Unread, outbound: Outbound| match outbound {
        Outbound::Event(event) if seen(event.position) => None,
        Outbound::Change(change) if seen(change.position) => None,
        Outbound::Event(event) => Some(Message::Text(
            unread.frame(&state, user, &event).await.into(),
        )),
        Outbound::Change(change) => Some(Message::Text(change.json.clone().into())),
        Outbound::Typing(t) => Some(Message::Text(t.json.clone().into())),
        // The loop reads the fate before it waits again.
        Outbound::Wake => None,
    };
    // Silence is counted from here: no ping went out while catching up.
    heard.now();
    let mut heartbeat = tokio::time::interval(every);
    heartbeat.tick().await;
    let cut = fate.ended();
    tokio::pin!(cut);
    loop {
        let outgoing = if let Some(why) = fate.ending() {
            Err(close_for(why))
        } else {
            tokio::select! {
                biased;
                next = registration.events.recv() => match next {
                    Some(outbound) => {
                        let mut batch = Vec::new();
                        batch.extend(message_of(&mut unread, outbound).await);
                        while batch.len() < WRITE_BATCH {
                            // A closed queue is seen by the next `recv`.
                            let Ok(outbound) = registration.events.try_recv() else { break };
                            batch.extend(message_of(&mut unread, outbound).await);
                        }
                        if batch.is_empty() {
                            continue;
                        }
                        Ok(batch)
                    }
                    // The hub dropped the connection (it lagged), or stopped.
                    None => Err(fate.ending().map_or(Some((1012, "restarting")), close_for)),
                },
                _ = heartbeat.tick() => {
                    if heard.silence() > every * 2 {
                        Err(HEARTBEAT_TIMEOUT)
                    } else {
                        Ok(vec![Message::Ping(Vec::new().into())])
                    }
                }
            }
        };
        let sent = match outgoing {
            Ok(messages) => send(&mut sink, cut.as_mut(), messages).await,
            Err(ending) => Err(ending),
        };
        if let Err(ending) = sent {
            if let Some((code, why)) = ending {
                close(&mut sink, &mut reader, code, why).await;
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::frame_of;

    #[test]
    fn a_frame_is_exactly_as_long_as_its_text() {
        let head = r#"{"position":7,"item":{"type":"message"}"#;
        for unread in [
            None,
            Some(0),
            Some(9),
            Some(10),
            Some(99),
            Some(100),
            Some(u64::MAX),
        ] {
            let frame = frame_of(head, unread);
            assert_eq!(frame.len(), frame.capacity(), "{frame}");
            let json: serde_json::Value = serde_json::from_str(&frame).unwrap();
            assert_eq!(json["position"], 7);
            assert_eq!(
                json.get("unread").and_then(serde_json::Value::as_u64),
                unread
            );
        }
    }
}
