//! The stream hub: one subscription to the log for every WebSocket, so that each event is
//! read and decoded once and reaches only the connections that may see it.
//!
//! The hub follows `$all` from the moment it starts. Three kinds of frame carry positions:
//! a conversation's timeline item (built once per event: position, conversation, version
//! and the item as JSON; each recipient adds its own unread count) goes to the
//! conversation's viewers (`domain::visibility`, the one rule: its members, the inbox's
//! team and the admins, or the holders of its number and, on a queue number, the agent who
//! claimed it, the admins and, while unclaimed, the queue's agents); an inbox
//! change (`"type":"inbox"`: a conversation assigned, transferred, returned, done,
//! reopened, attached or detached, or the team changed) goes to the inbox's team (and, when
//! a conversation moved, the organization's admins); a queue
//! change (`"type":"queue"`: every queue event but activity) goes to the queue's members
//! and the organization's admins (who may see any queue's waiting list). A member removed
//! from a team or queue gets that change too. Nothing goes to a connection of another
//! organization.
//!
//! Routing follows the events themselves (`workers::visibility`): the hub keeps, for every
//! conversation, inbox, business number, queue and organization it has met, what routing
//! needs, and moves it with each membership, team, number, inbox-attachment, claim and
//! role event in log order, so an event goes to the audience as of its own position, however far behind the
//! hub runs. What is not known yet is looked up once in the actors' current state: an
//! aggregate born after the hub started is known from its first event; for one born
//! before, the first event that needs it reads the actor, whose state may already include
//! later events (and, with pipelined appends, decisions not yet durable). Until the hub
//! reaches the events that actor had applied, that entry may count someone in (or out)
//! early, for membership changes the hub has not passed yet; from then on it is exact.
//! Conversations are the numerous entries: the hub keeps the
//! `workers::visibility::SEAT_LIMIT` most recently active ones and forgets the idlest beyond that,
//! so memory stays bounded; a forgotten conversation that has an event again is looked up
//! as one never met (with the same caveat, which matters only while the hub runs behind).
//! Inboxes, numbers, queues and organizations are few and never dropped.
//! An event the hub cannot decode, or whose lookups fail after retries, is delivered to
//! nobody (logged).
//!
//! Connections register under a lock that the hub also holds while it hands an event
//! out, and registering returns the last position handed out: the connection gets every
//! later visible event from the hub and reads anything before it (a `since=` resume) from
//! storage itself, so the seam has no gap and no duplicate. A connection whose queue
//! ([`HubConfig::connection_queue`] frames) is full is dropped from the hub, never waited
//! for, and told at once ([`ConnectionFate::cut`]); it closes with `slow_consumer` and the
//! client resumes from its last position.
//!
//! Typing indicators go through the same routing (the sender must be a viewer), never
//! through the log.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub use domain::visibility::Audience;
pub(crate) use workers::visibility::{learn_viewers, prepare, Subject as Show};
pub use workers::visibility::{Audiences, Followed};

use domain::{
    Aggregate, Conversation, ConversationEvent, ConversationId, Directory, DirectoryEvent, Inbox,
    InboxEvent, InboxId, OrgId, Queue, QueueEvent, QueueId, UserId,
};
use eventlog::{
    RecordedEvent, SharedRecord, StartFrom, SubscribeError, Subscription, SubscriptionTarget,
};
use serde::Serialize;
use tokio::sync::{mpsc, Notify};

use crate::app::AppState;
use crate::routes::conversations::item_of;

/// Frames a connection may have queued, by default, before it counts as too slow.
pub const CONNECTION_QUEUE: usize = 4096;

/// The categories whose events the hub routes or follows to route: a `since=` catch-up
/// reads these from storage.
pub const CATEGORIES: [&str; 4] = [
    Conversation::CATEGORY,
    Inbox::CATEGORY,
    Queue::CATEGORY,
    Directory::CATEGORY,
];

/// The hub's settings.
#[derive(Debug, Clone, Copy)]
pub struct HubConfig {
    /// Frames a connection may have queued before it is cut as a slow consumer (at least 1).
    pub connection_queue: usize,
    /// How often a connection is pinged. One that sends nothing — not even the pong — for
    /// two of these is closed as gone (4002 `heartbeat_timeout`).
    pub heartbeat: std::time::Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            connection_queue: CONNECTION_QUEUE,
            heartbeat: crate::routes::stream::HEARTBEAT,
        }
    }
}

/// One conversation event as every recipient gets it, apart from their unread count.
#[derive(Debug)]
pub struct LiveEvent {
    pub position: u64,
    pub conversation: ConversationId,
    /// The frame up to its closing brace: `{"position":…,"conversation_id":…,"version":…,
    /// "item":{…}`; the recipient appends `,"unread":n` or nothing, then `}`.
    pub frame_head: String,
    /// What the event does to unread counts.
    pub unread: UnreadEffect,
}

/// How an event moves a user's unread count in its conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnreadEffect {
    /// A new message with this seq; its author has read up to it.
    Message {
        seq: u64,
        author: Option<UserId>,
    },
    /// `user` read up to `up_to`.
    Read {
        user: UserId,
        up_to: u64,
    },
    None,
}

impl LiveEvent {
    /// The event's timeline frame, or `None` for events that have no timeline item.
    fn new(
        record: &RecordedEvent,
        conversation: ConversationId,
        event: &ConversationEvent,
    ) -> Option<Self> {
        let unread = match event {
            ConversationEvent::MessagePosted(m) => UnreadEffect::Message {
                seq: m.seq,
                author: Some(m.author),
            },
            ConversationEvent::InboundReceived(m) => UnreadEffect::Message {
                seq: m.seq,
                author: None,
            },
            ConversationEvent::MessagesRead(r) => UnreadEffect::Read {
                user: r.user,
                up_to: r.up_to,
            },
            _ => UnreadEffect::None,
        };
        // Written straight to text: no `serde_json::Value` tree built and walked again.
        let item = serde_json::to_string(&item_of(event.clone())?).ok()?;
        let frame_head = format!(
            "{{\"position\":{},\"conversation_id\":\"{}\",\"version\":{},\"item\":{}",
            record.position, conversation, record.version, item
        );
        Some(Self {
            position: record.position,
            conversation,
            frame_head,
            unread,
        })
    }
}

/// An inbox or queue change, the same for every recipient.
#[derive(Debug)]
pub struct ChangeFrame {
    pub position: u64,
    pub json: String,
}

#[derive(Serialize)]
struct InboxChange<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    position: u64,
    inbox_id: InboxId,
    conversation_id: Option<ConversationId>,
    change: &'a str,
    assignee: Option<UserId>,
}

#[derive(Serialize)]
struct QueueChange<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    position: u64,
    queue_id: QueueId,
    conversation_id: Option<ConversationId>,
    change: &'a str,
    agent: Option<UserId>,
}

/// One event of a category the hub follows, decoded once: borrowed from a live event's
/// memo (decoded once for all its live readers), or decoded here from a stored record.
#[derive(Debug)]
pub(crate) enum Decoded<'a> {
    Conversation {
        id: ConversationId,
        event: Cow<'a, ConversationEvent>,
        /// Its timeline frame, if it has one.
        item: Option<Arc<LiveEvent>>,
    },
    Inbox(InboxId, Cow<'a, InboxEvent>),
    Queue(QueueId, Cow<'a, QueueEvent>),
    Directory(OrgId, Cow<'a, DirectoryEvent>),
}

/// One event as [`route`] routes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Routed {
    pub position: u64,
    pub org: OrgId,
    /// Who gets it.
    pub users: BTreeSet<UserId>,
    /// The frame (without the per-recipient `unread`).
    pub frame: serde_json::Value,
}

/// Routes one event as the hub does: learns what it needs and does not know from the
/// actors' current state, applies the event, and answers who gets which frame (`None`:
/// nobody, or the event is not shown). Feed it every event of the categories
/// `conversation`, `inbox`, `queue` and `directory`, in log order.
pub async fn route(
    audiences: &mut Audiences,
    state: &AppState,
    record: &RecordedEvent,
) -> Option<Routed> {
    let event = Decoded::of(record, state.sealer()).await?;
    if !prepare(audiences, &state.ws, &event.followed(), None).await {
        return None;
    }
    let target = audiences.target(&event.followed()).ok()??;
    let frame = match event.frame(record, &target.subject)? {
        Outbound::Event(e) => serde_json::from_str(&format!("{}}}", e.frame_head)).ok()?,
        Outbound::Change(c) => serde_json::from_str(&c.json).ok()?,
        Outbound::Typing(_) | Outbound::Wake => return None,
    };
    Some(Routed {
        position: record.position,
        org: target.org,
        users: target.audience.iter().collect(),
        frame,
    })
}

/// The snake_case form of an event type name (`ConversationAssigned` →
/// `conversation_assigned`), as change frames name it.
pub(crate) fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

impl<'a> Decoded<'a> {
    /// A stored record, decoded here. `None` for other categories and for events that
    /// cannot be decoded.
    pub(crate) async fn of(
        record: &RecordedEvent,
        sealer: &actors::sealing::Sealer,
    ) -> Option<Decoded<'static>> {
        let id = record.stream.id();
        let decoded = match record.stream.category() {
            Conversation::CATEGORY => {
                let id: ConversationId = id.parse().ok()?;
                let event: ConversationEvent = actors::event_codec::decode_opened(record, sealer)
                    .await
                    .ok()?;
                let item = LiveEvent::new(record, id, &event).map(Arc::new);
                Decoded::Conversation {
                    id,
                    event: Cow::Owned(event),
                    item,
                }
            }
            Inbox::CATEGORY => Decoded::Inbox(id.parse().ok()?, Cow::Owned(decode(record)?)),
            Queue::CATEGORY => Decoded::Queue(id.parse().ok()?, Cow::Owned(decode(record)?)),
            Directory::CATEGORY => {
                Decoded::Directory(id.parse().ok()?, Cow::Owned(decode(record)?))
            }
            _ => return None,
        };
        Some(decoded)
    }

    /// A live event, borrowed from its memo: decoded and opened once for all its live
    /// readers (the read models and process managers read the same memo). As
    /// [`Decoded::of`] otherwise.
    pub(crate) async fn of_live(
        event: &'a SharedRecord,
        sealer: &actors::sealing::Sealer,
    ) -> Option<Decoded<'a>> {
        use actors::event_codec::Decoded as Payload;
        let record = event.record();
        let Some(memo) = actors::event_codec::memo(event) else {
            return Decoded::of(record, sealer).await;
        };
        let payload = match memo.decoded() {
            Ok(payload) => payload,
            Err(reason) => {
                tracing::warn!(position = record.position, %reason, "stream hub cannot decode event");
                return None;
            }
        };
        Some(match payload {
            Payload::Conversation(id, _) => {
                let event = actors::event_codec::conversation_opened(event, sealer)
                    .await
                    .ok()?;
                let item = LiveEvent::new(record, *id, &event).map(Arc::new);
                Decoded::Conversation {
                    id: *id,
                    event,
                    item,
                }
            }
            Payload::Inbox(id, e) => Decoded::Inbox(*id, Cow::Borrowed(e)),
            Payload::Queue(id, e) => Decoded::Queue(*id, Cow::Borrowed(e)),
            Payload::Directory(org, e) => Decoded::Directory(*org, Cow::Borrowed(e)),
            _ => return None,
        })
    }

    /// The event as the visibility state follows it.
    pub(crate) fn followed(&self) -> Followed<'_> {
        match self {
            Decoded::Conversation { id, event, item } => Followed::Conversation {
                id: *id,
                event,
                item: item.is_some(),
            },
            Decoded::Inbox(id, event) => Followed::Inbox(*id, event),
            Decoded::Queue(id, event) => Followed::Queue(*id, event),
            Decoded::Directory(org, event) => Followed::Directory(*org, event),
        }
    }

    /// The frame `show` says this event gives.
    pub(crate) fn frame(&self, record: &RecordedEvent, show: &Show) -> Option<Outbound> {
        let change = snake_case(&record.event_type);
        let json = match show {
            Show::Item => {
                return match self {
                    Decoded::Conversation { item: Some(e), .. } => Some(Outbound::Event(e.clone())),
                    _ => None,
                }
            }
            Show::Inbox {
                inbox,
                conversation,
                assignee,
            } => serde_json::to_string(&InboxChange {
                kind: "inbox",
                position: record.position,
                inbox_id: *inbox,
                conversation_id: *conversation,
                change: &change,
                assignee: *assignee,
            }),
            Show::Queue {
                queue,
                conversation,
                agent,
            } => serde_json::to_string(&QueueChange {
                kind: "queue",
                position: record.position,
                queue_id: *queue,
                conversation_id: *conversation,
                change: &change,
                agent: *agent,
            }),
        };
        Some(Outbound::Change(Arc::new(ChangeFrame {
            position: record.position,
            json: json.ok()?,
        })))
    }
}

fn decode<E: domain::VersionedEvent>(record: &RecordedEvent) -> Option<E> {
    match actors::event_codec::decode(record) {
        Ok(e) => Some(e),
        Err(reason) => {
            tracing::warn!(position = record.position, %reason, "stream hub cannot decode event");
            None
        }
    }
}

/// A typing indicator on its way to the other viewers.
#[derive(Debug)]
pub struct TypingFrame {
    pub user: UserId,
    pub json: String,
}

/// What the hub sends a connection.
#[derive(Debug, Clone)]
pub enum Outbound {
    Event(Arc<LiveEvent>),
    Change(Arc<ChangeFrame>),
    Typing(Arc<TypingFrame>),
    /// No frame: wakes the connection's task to read its [`ConnectionFate`], which has
    /// just ended (sent by [`ConnectionFate::end_and_wake`]).
    Wake,
}

/// Why a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The hub dropped it for not keeping up: its queue was full.
    Lagged,
    /// Its session was revoked (logout).
    SessionEnded,
    /// Its session expired.
    SessionExpired,
    /// Its client closed it, or its socket failed.
    ClientLeft,
}

impl Ending {
    const ALL: [Ending; 4] = [
        Ending::Lagged,
        Ending::SessionEnded,
        Ending::SessionExpired,
        Ending::ClientLeft,
    ];

    fn code(self) -> u8 {
        match self {
            Ending::Lagged => 1,
            Ending::SessionEnded => 2,
            Ending::SessionExpired => 3,
            Ending::ClientLeft => 4,
        }
    }
}

/// Why a connection ends, once it does: set once (the first reason wins), read with one
/// atomic load. The connection's task reads it at each turn of its loop instead of
/// polling a future per reason every time a frame wakes it; what ends a connection
/// that waits for frames also wakes it, through its queue ([`Outbound::Wake`]) or, while
/// it writes, through [`ConnectionFate::ended`].
#[derive(Debug, Default)]
pub struct ConnectionFate {
    /// 0 while the connection lives, else its [`Ending`]'s code.
    ending: AtomicU8,
    wake: Notify,
}

impl ConnectionFate {
    /// Why the connection ends; `None` while it lives.
    pub fn ending(&self) -> Option<Ending> {
        let code = self.ending.load(Ordering::Acquire);
        Ending::ALL.into_iter().find(|e| e.code() == code)
    }

    /// Resolves once the connection ends, with why, so that a connection blocked on a
    /// socket that takes nothing learns it at once.
    pub async fn ended(&self) -> Ending {
        loop {
            if let Some(ending) = self.ending() {
                return ending;
            }
            self.wake.notified().await;
        }
    }

    /// Ends the connection for `why`, unless it already ended; wakes [`Self::ended`].
    pub fn end(&self, why: Ending) {
        let _ = self
            .ending
            .compare_exchange(0, why.code(), Ordering::AcqRel, Ordering::Acquire);
        // A permit is stored if nobody waits yet: the next `ended` returns at once.
        self.wake.notify_one();
    }

    /// [`Self::end`], and wakes the connection's task if it waits for frames: a
    /// [`Outbound::Wake`] on its queue (a full queue needs none: the task has frames to
    /// take, and reads the fate before it waits again).
    pub fn end_and_wake(&self, why: Ending, queue: &mpsc::WeakSender<Outbound>) {
        self.end(why);
        if let Some(tx) = queue.upgrade() {
            let _ = tx.try_send(Outbound::Wake);
        }
    }

    fn lag(&self) {
        self.end(Ending::Lagged);
    }
}

/// A connection registered with the hub. Dropping it unregisters.
pub struct Registration {
    pub events: mpsc::Receiver<Outbound>,
    /// The sending side of `events`, held weakly (the queue still closes when the hub
    /// drops the connection): for [`ConnectionFate::end_and_wake`].
    pub wake: mpsc::WeakSender<Outbound>,
    /// Every visible event after this position comes through `events`; `None`: every one.
    pub after: Option<u64>,
    pub fate: Arc<ConnectionFate>,
    hub: Arc<Shared>,
    user: UserId,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut reg = self.hub.lock();
        if let Some(conns) = reg.by_user.get_mut(&self.user) {
            conns.retain(|c| c.id != self.id);
            if conns.is_empty() {
                reg.by_user.remove(&self.user);
            }
        }
    }
}

struct Connection {
    id: u64,
    org: OrgId,
    tx: mpsc::Sender<Outbound>,
    fate: Arc<ConnectionFate>,
}

#[derive(Default)]
struct Registry {
    /// Looked up for every audience member of every event, by server-made ids: hashed
    /// with Fx, not SipHash.
    by_user: rustc_hash::FxHashMap<UserId, Vec<Connection>>,
    /// The last position handed out (or skipped as invisible).
    head: Option<u64>,
    /// Set when the hub stopped (the log closed): registering then fails.
    closed: bool,
}

#[derive(Default)]
struct Shared {
    /// Lock order: `audiences` before `registry`.
    registry: Mutex<Registry>,
    /// Written only by the hub's run loop; read by typing indicators.
    audiences: Mutex<Audiences>,
    next_id: AtomicU64,
    /// Typing indicators handed out, until when they show: (conversation, user).
    typing: Mutex<HashMap<(ConversationId, UserId), u64>>,
}

/// Indicators kept in [`Shared::typing`] before the expired ones are swept.
const TYPING_KEPT: usize = 10_000;

/// A typing frame: `user` types in `conversation` until `expires_at_ms` (`stopped`: they
/// stopped, hide it now).
fn typing_json(
    conversation: ConversationId,
    user: UserId,
    expires_at_ms: u64,
    stopped: bool,
) -> String {
    let mut frame = serde_json::json!({
        "type": "typing",
        "conversation_id": conversation,
        "user": user,
        "expires_at_ms": expires_at_ms,
    });
    if stopped {
        frame["stopped"] = serde_json::json!(true);
    }
    frame.to_string()
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn audiences(&self) -> std::sync::MutexGuard<'_, Audiences> {
        self.audiences.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands `item` to the connections of `audience` in `org` (but not `except`'s); drops
    /// those whose queue is full. Sets the head to `position` when given, under the same
    /// lock.
    fn hand_out(
        &self,
        audience: Audience<'_>,
        org: OrgId,
        except: Option<UserId>,
        item: &Outbound,
        position: Option<u64>,
    ) {
        let mut reg = self.lock();
        let reg = &mut *reg;
        let mut emptied = Vec::new();
        let mut give = |user: UserId, conns: &mut Vec<Connection>| {
            if Some(user) == except {
                return;
            }
            conns.retain(|c| {
                if c.org != org {
                    return true;
                }
                match c.tx.try_send(item.clone()) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        c.fate.lag();
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                }
            });
            if conns.is_empty() {
                emptied.push(user);
            }
        };
        // Walk whichever side is smaller: the audience or the connected users.
        if audience.len() <= reg.by_user.len() {
            for user in audience.iter() {
                if let Some(conns) = reg.by_user.get_mut(&user) {
                    give(user, conns);
                }
            }
        } else {
            for (user, conns) in &mut reg.by_user {
                if audience.contains(user) {
                    give(*user, conns);
                }
            }
        }
        for user in emptied {
            reg.by_user.remove(&user);
        }
        if let Some(p) = position {
            reg.head = Some(p);
        }
    }
}

/// The hub; see the module docs. Cheap to clone.
#[derive(Clone)]
pub struct StreamHub {
    shared: Arc<Shared>,
    config: HubConfig,
}

/// Where the [`AppState`] keeps its hub, started on first use.
#[derive(Clone, Default)]
pub struct HubSlot {
    hub: Arc<OnceLock<StreamHub>>,
    config: HubConfig,
}

impl HubSlot {
    /// A slot whose hub will run with `config`.
    pub fn new(config: HubConfig) -> Self {
        Self {
            hub: Arc::default(),
            config,
        }
    }

    /// Closes every stream for a shutdown (each ends with 1012 `restarting`, and its
    /// client resumes from its position on the next server); nothing may register after.
    /// A hub not started yet has no streams and starts closed.
    pub fn close(&self, state: &AppState) {
        self.get(state).close();
    }

    /// The hub if it has started (a stream connected since the process started).
    pub fn started(&self) -> Option<StreamHub> {
        self.hub.get().cloned()
    }

    /// The hub, started now if this is the first call (needs a Tokio runtime).
    pub fn get(&self, state: &AppState) -> StreamHub {
        self.hub
            .get_or_init(|| StreamHub::start(state.clone(), self.config))
            .clone()
    }
}

impl StreamHub {
    /// The settings it runs with.
    pub fn config(&self) -> HubConfig {
        self.config
    }

    /// Starts following the log from its end.
    fn start(state: AppState, config: HubConfig) -> Self {
        let shared = Arc::new(Shared::default());
        let next = state.store().next_position();
        shared.lock().head = next.checked_sub(1);
        let hub = Self { shared, config };
        tokio::spawn(hub.clone().run(state, next.checked_sub(1)));
        hub
    }

    /// The last position the hub has handed out or passed over; `None` before any.
    pub fn head(&self) -> Option<u64> {
        self.shared.lock().head
    }

    /// Registers a connection of `user` (of `org`); `None` once the hub has stopped.
    pub fn register(&self, org: OrgId, user: UserId) -> Option<Registration> {
        let (tx, events) = mpsc::channel(self.config.connection_queue.max(1));
        let fate = Arc::new(ConnectionFate::default());
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let mut reg = self.shared.lock();
        if reg.closed {
            return None;
        }
        let wake = tx.downgrade();
        reg.by_user.entry(user).or_default().push(Connection {
            id,
            org,
            tx,
            fate: fate.clone(),
        });
        Some(Registration {
            events,
            wake,
            after: reg.head,
            fate,
            hub: self.shared.clone(),
            user,
            id,
        })
    }

    /// Sends a typing indicator of `user`, showing until `expires_at_ms`, to the other
    /// connected viewers of `conversation`, if `user` is a viewer of it in `org`.
    pub async fn typing(
        &self,
        state: &AppState,
        org: OrgId,
        user: UserId,
        conversation: ConversationId,
        expires_at_ms: u64,
    ) {
        if self
            .send_typing(state, org, user, conversation, expires_at_ms, false)
            .await
        {
            let mut typing = self.shared.typing.lock().unwrap_or_else(|e| e.into_inner());
            if typing.len() >= TYPING_KEPT {
                let now = crate::auth::sessions::now_ms();
                typing.retain(|_, until| *until > now);
            }
            typing.insert((conversation, user), expires_at_ms);
        }
    }

    /// Hides `user`'s typing indicator in `conversation` from the other viewers now, if
    /// one is showing (they sent their message, or cleared what they typed).
    pub async fn typing_stopped(
        &self,
        state: &AppState,
        org: OrgId,
        user: UserId,
        conversation: ConversationId,
    ) {
        let now = crate::auth::sessions::now_ms();
        let showing = self
            .shared
            .typing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(conversation, user))
            .is_some_and(|until| until > now);
        if showing {
            self.send_typing(state, org, user, conversation, now, true)
                .await;
        }
    }

    /// Hands a typing frame to the other viewers; whether `user` may send it.
    async fn send_typing(
        &self,
        state: &AppState,
        org: OrgId,
        user: UserId,
        conversation: ConversationId,
        expires_at_ms: u64,
        stopped: bool,
    ) -> bool {
        let frame = || {
            Outbound::Typing(Arc::new(TypingFrame {
                user,
                json: typing_json(conversation, user, expires_at_ms, stopped),
            }))
        };
        {
            let audiences = self.shared.audiences();
            if let Ok((of, audience)) = audiences.viewers(conversation) {
                if of == org && audience.contains(&user) {
                    self.shared
                        .hand_out(audience, org, Some(user), &frame(), None);
                    return true;
                }
                return false;
            }
        }
        // No event of it has reached the hub yet: its current state, not kept (only the
        // run loop writes the hub's audiences, in log order).
        let mut fresh = Audiences::default();
        if !matches!(
            learn_viewers(&mut fresh, &state.ws, conversation).await,
            Ok(true)
        ) {
            return false;
        }
        if let Ok((of, audience)) = fresh.viewers(conversation) {
            if of == org && audience.contains(&user) {
                self.shared
                    .hand_out(audience, org, Some(user), &frame(), None);
                return true;
            }
        }
        false
    }

    async fn run(self, state: AppState, mut after: Option<u64>) {
        loop {
            let from = after.map_or(StartFrom::Beginning, StartFrom::After);
            let mut sub =
                match Subscription::new(state.store().clone(), SubscriptionTarget::All, from) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(error = %e, "stream hub cannot subscribe");
                        break;
                    }
                };
            loop {
                match sub.next().await {
                    Ok(record) => {
                        self.dispatch(&state, &record).await;
                        after = Some(record.position);
                    }
                    Err(SubscribeError::Closed) => {
                        self.close();
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "stream hub subscription failed; resuming");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        break;
                    }
                }
            }
        }
        self.close();
    }

    /// Stops: every connection's queue ends (not as lagged), and nobody may register.
    fn close(&self) {
        let mut reg = self.shared.lock();
        reg.closed = true;
        reg.by_user.clear();
    }

    async fn dispatch(&self, state: &AppState, live: &SharedRecord) {
        let record = live.record();
        let Some(event) = Decoded::of_live(live, state.sealer()).await else {
            return self.skip(record.position);
        };
        if !prepare(
            &mut &self.shared.audiences,
            &state.ws,
            &event.followed(),
            None,
        )
        .await
        {
            return self.skip(record.position);
        }
        let audiences = self.shared.audiences();
        let Ok(Some(target)) = audiences.target(&event.followed()) else {
            return self.skip(record.position);
        };
        let Some(item) = event.frame(record, &target.subject) else {
            return self.skip(record.position);
        };
        self.shared.hand_out(
            target.audience,
            target.org,
            None,
            &item,
            Some(record.position),
        );
    }

    fn skip(&self, position: u64) {
        self.shared.lock().head = Some(position);
    }
}

#[cfg(test)]
mod tests {
    use super::{mpsc, snake_case, ConnectionFate, Ending, Outbound};

    #[tokio::test]
    async fn a_connection_fate_keeps_its_first_ending_and_wakes_a_waiting_queue() {
        let (tx, mut rx) = mpsc::channel::<Outbound>(1);
        let fate = ConnectionFate::default();
        assert_eq!(fate.ending(), None);
        fate.end_and_wake(Ending::SessionEnded, &tx.downgrade());
        // The task waiting for frames is woken by a `Wake` on its queue.
        assert!(matches!(rx.try_recv(), Ok(Outbound::Wake)));
        fate.end(Ending::Lagged);
        assert_eq!(fate.ending(), Some(Ending::SessionEnded));
        assert_ne!(fate.ending(), Some(Ending::Lagged));
        assert_eq!(fate.ended().await, Ending::SessionEnded);

        // A full queue takes no `Wake` (its task has frames to take, and reads the fate
        // before it waits), and a queue whose sender is gone stays closed.
        let (tx, mut rx) = mpsc::channel::<Outbound>(1);
        tx.try_send(Outbound::Wake).expect("room for one");
        let fate = ConnectionFate::default();
        fate.end_and_wake(Ending::SessionExpired, &tx.downgrade());
        assert!(matches!(rx.try_recv(), Ok(Outbound::Wake)));
        assert!(rx.try_recv().is_err());
        let weak = tx.downgrade();
        drop(tx);
        fate.end_and_wake(Ending::SessionExpired, &weak);
        assert!(rx.recv().await.is_none());
        assert_eq!(fate.ended().await, Ending::SessionExpired);
    }

    #[test]
    fn event_names_become_snake_case() {
        assert_eq!(snake_case("ConversationAssigned"), "conversation_assigned");
        assert_eq!(snake_case("AgentLoggedIn"), "agent_logged_in");
        assert_eq!(snake_case("InboxMemberRemoved"), "inbox_member_removed");
    }
}
