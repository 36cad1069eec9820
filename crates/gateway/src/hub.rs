//! The stream hub: one subscription to the log for every WebSocket, so that each event is
//! read and decoded once and reaches only the connections that may see it.
//!
//! The hub follows `$all` from the moment it starts. For each conversation event it
//! builds the frame's shared part once (position, conversation, version and the item as
//! JSON) and hands it to the connections of the conversation's viewers
//! ([`domain::conversation::Viewers`], resolved against the inbox team or the number's
//! holders and cached per conversation). A conversation's cached viewers are dropped on
//! any event of it that is not a message, read or delivery (joins, leaves, inbox moves),
//! on any event of an inbox (team changes), on any directory event of its organization
//! (number assignments) and, for conversations on a number, on any queue event (claims),
//! and resolved again on its next event.
//!
//! Connections register under a lock that the hub also holds while it hands an event
//! out, and registering returns the last position handed out: the connection gets every
//! later visible event from the hub and reads anything before it (a `since=` resume) from
//! storage itself, so the seam has no gap and no duplicate. A connection whose queue is
//! full is dropped from the hub (never waited for) and told so; it closes with
//! `slow_consumer` and the client resumes from its last position.
//!
//! Typing indicators go through the same routing, never through the log.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use domain::conversation::Viewers;
use domain::directory::Routing;
use domain::{Conversation, ConversationEvent, ConversationId, Directory, Inbox, OrgId, UserId};
use eventlog::{RecordedEvent, StartFrom, SubscribeError, Subscription, SubscriptionTarget};
use tokio::sync::mpsc;

use crate::app::AppState;
use crate::routes::conversations::item_of;

/// Frames a connection may have queued before it counts as too slow.
pub const CONNECTION_QUEUE: usize = 4096;

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
    /// The event as a frame, or `None` for events clients do not see.
    pub fn of(record: &RecordedEvent) -> Option<Self> {
        let conversation: ConversationId = record.stream.id().parse().ok()?;
        let event: ConversationEvent = actors::event_codec::decode(record).ok()?;
        let unread = match &event {
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
        let item = match event {
            ConversationEvent::DeliveryUpdated(d) => serde_json::json!({
                "type": "delivery",
                "message_id": d.message_id,
                "to": d.to.to_string(),
                "status": d.status,
                "error_code": d.error_code,
                "at_ms": d.at_ms,
            }),
            other => serde_json::to_value(item_of(other)?).ok()?,
        };
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
    Typing(Arc<TypingFrame>),
}

/// Why a connection's queue ended.
#[derive(Debug, Default)]
pub struct ConnectionFate {
    lagged: AtomicBool,
}

impl ConnectionFate {
    /// Whether the hub dropped the connection for not keeping up.
    pub fn lagged(&self) -> bool {
        self.lagged.load(Ordering::Acquire)
    }
}

/// A connection registered with the hub. Dropping it unregisters.
pub struct Registration {
    pub events: mpsc::Receiver<Outbound>,
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
    tx: mpsc::Sender<Outbound>,
    fate: Arc<ConnectionFate>,
}

#[derive(Default)]
struct Registry {
    by_user: HashMap<UserId, Vec<Connection>>,
    /// The last position handed out (or skipped as invisible).
    head: Option<u64>,
    /// Set when the hub stopped (the log closed): registering then fails.
    closed: bool,
}

/// Who sees a conversation, resolved to users.
struct Audience {
    org: OrgId,
    /// For invalidation: the inbox or number the set came from.
    source: Viewers,
    users: HashSet<UserId>,
}

#[derive(Default)]
struct Shared {
    registry: Mutex<Registry>,
    audiences: Mutex<HashMap<ConversationId, Arc<Audience>>>,
    next_id: AtomicU64,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn audiences(&self) -> std::sync::MutexGuard<'_, HashMap<ConversationId, Arc<Audience>>> {
        self.audiences.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands `item` to the connections of `users` (but not `except`'s); drops those whose
    /// queue is full. Sets the head to `position` when given, under the same lock.
    fn hand_out(
        &self,
        users: &HashSet<UserId>,
        except: Option<UserId>,
        item: &Outbound,
        position: Option<u64>,
    ) {
        let mut reg = self.lock();
        let reg = &mut *reg;
        let mut emptied = Vec::new();
        let small = users.len() <= reg.by_user.len();
        let mut give = |user: &UserId, conns: &mut Vec<Connection>| {
            if Some(*user) == except {
                return;
            }
            conns.retain(|c| match c.tx.try_send(item.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    c.fate.lagged.store(true, Ordering::Release);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
            if conns.is_empty() {
                emptied.push(*user);
            }
        };
        // Walk whichever side is smaller: the audience or the connected users.
        if small {
            for user in users {
                if let Some(conns) = reg.by_user.get_mut(user) {
                    give(user, conns);
                }
            }
        } else {
            for (user, conns) in &mut reg.by_user {
                if users.contains(user) {
                    give(user, conns);
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
}

/// Where the [`AppState`] keeps its hub, started on first use.
#[derive(Clone, Default)]
pub struct HubSlot(Arc<OnceLock<StreamHub>>);

impl HubSlot {
    /// The hub, started now if this is the first call (needs a Tokio runtime).
    pub fn get(&self, state: &AppState) -> StreamHub {
        self.0
            .get_or_init(|| StreamHub::start(state.clone()))
            .clone()
    }
}

impl StreamHub {
    /// Starts following the log from its end.
    fn start(state: AppState) -> Self {
        let shared = Arc::new(Shared::default());
        let next = state.store().next_position();
        shared.lock().head = next.checked_sub(1);
        let hub = Self { shared };
        tokio::spawn(hub.clone().run(state, next.checked_sub(1)));
        hub
    }

    /// Registers a connection of `user`; `None` once the hub has stopped.
    pub fn register(&self, user: UserId) -> Option<Registration> {
        let (tx, events) = mpsc::channel(CONNECTION_QUEUE);
        let fate = Arc::new(ConnectionFate::default());
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let mut reg = self.shared.lock();
        if reg.closed {
            return None;
        }
        reg.by_user.entry(user).or_default().push(Connection {
            id,
            tx,
            fate: fate.clone(),
        });
        Some(Registration {
            events,
            after: reg.head,
            fate,
            hub: self.shared.clone(),
            user,
            id,
        })
    }

    /// Sends a typing indicator to the other connected viewers of its conversation.
    pub async fn typing(
        &self,
        state: &AppState,
        org: OrgId,
        conversation: ConversationId,
        frame: TypingFrame,
    ) {
        let Some(audience) = self.audience(state, conversation).await else {
            return;
        };
        if audience.org != org {
            return;
        }
        let user = frame.user;
        self.shared.hand_out(
            &audience.users,
            Some(user),
            &Outbound::Typing(Arc::new(frame)),
            None,
        );
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

    async fn dispatch(&self, state: &AppState, record: &RecordedEvent) {
        match record.stream.category() {
            "conversation" => {}
            "inbox" => {
                if let Ok(inbox) = record.stream.id().parse() {
                    self.forget(|a| a.source == Viewers::InboxTeam(inbox));
                }
                return self.skip(record.position);
            }
            "queue" => {
                // Claims, releases and transfers change who holds a queue conversation.
                self.forget(|a| matches!(a.source, Viewers::NumberHolders(_)));
                return self.skip(record.position);
            }
            "directory" => {
                if let Ok(org) = record.stream.id().parse::<OrgId>() {
                    self.forget(|a| a.org == org && matches!(a.source, Viewers::NumberHolders(_)));
                }
                return self.skip(record.position);
            }
            _ => return self.skip(record.position),
        }
        let Some(event) = LiveEvent::of(record) else {
            // Not shown to clients, but it may change who sees the conversation.
            if let Ok(id) = record.stream.id().parse() {
                self.shared.audiences().remove(&id);
            }
            return self.skip(record.position);
        };
        if matches!(event.unread, UnreadEffect::None) {
            self.shared.audiences().remove(&event.conversation);
        }
        let Some(audience) = self.audience(state, event.conversation).await else {
            return self.skip(record.position);
        };
        self.shared.hand_out(
            &audience.users,
            None,
            &Outbound::Event(Arc::new(event)),
            Some(record.position),
        );
    }

    fn skip(&self, position: u64) {
        self.shared.lock().head = Some(position);
    }

    fn forget(&self, stale: impl Fn(&Audience) -> bool) {
        self.shared.audiences().retain(|_, a| !stale(a));
    }

    /// The conversation's viewers, from the cache or resolved now.
    async fn audience(&self, state: &AppState, id: ConversationId) -> Option<Arc<Audience>> {
        if let Some(a) = self.shared.audiences().get(&id) {
            return Some(a.clone());
        }
        let (org, source) = state
            .ws
            .conversations
            .query(&id, |c: &Conversation, _| {
                c.header().map(|h| (h.org, c.viewers()))
            })
            .await
            .ok()??;
        let users: HashSet<UserId> = match &source {
            Viewers::Nobody => HashSet::new(),
            Viewers::Members(m) => m.iter().copied().collect(),
            Viewers::InboxTeam(inbox) => state
                .ws
                .inboxes
                .query(inbox, |i: &Inbox, _| i.members().iter().copied().collect())
                .await
                .ok()?,
            Viewers::NumberHolders(number) => {
                let number = number.clone();
                let (mut holders, route) = state
                    .ws
                    .directories
                    .query(&org, move |d: &Directory, _| {
                        d.number(&number).map_or((HashSet::new(), None), |n| {
                            (n.assigned_to.iter().copied().collect(), Some(n.route))
                        })
                    })
                    .await
                    .ok()?;
                // On a queue number, the agent who claimed the conversation holds it.
                if let Some(Routing::Queue(queue)) = route {
                    let claimer = crate::routes::facts::queue_claimer(state, queue, id).await;
                    holders.extend(claimer.ok().flatten());
                }
                holders
            }
        };
        let audience = Arc::new(Audience { org, source, users });
        self.shared.audiences().insert(id, audience.clone());
        Some(audience)
    }
}
