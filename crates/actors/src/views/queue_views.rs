//! The contact-center views of SMS queues: Active (what I hold), Pending (what waits in the
//! queues I am logged into, oldest first, as many as each queue's policy shows), and
//! History (closed interactions of my queues, newest first). Each tab's search covers only
//! that tab and matches the customer's number.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use domain::inbound::{InboundEvent, INBOUND_CATEGORY};
use domain::queue::{CloseReason, QueueEvent, QueuePolicy};
use domain::{Aggregate, ConversationId, PhoneNumber, Queue, QueueId, UserId};
use eventlog::{EventStore, RecordedEvent, StartFrom, Subscription, SubscriptionTarget};
use tokio::sync::watch;

use crate::event_codec;

/// One line of a view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InteractionRow {
    pub queue: QueueId,
    pub queue_name: String,
    pub conversation: ConversationId,
    pub interaction: u64,
    pub customer: Option<PhoneNumber>,
    /// Who holds (Active), held last (History), or nobody (Pending).
    pub agent: Option<UserId>,
    /// Since when it waits (Pending), was claimed (Active), or when it closed (History).
    pub at_ms: u64,
    pub close_reason: Option<CloseReason>,
}

#[derive(Default)]
struct QueueInfo {
    name: String,
    policy: QueuePolicy,
    members: BTreeSet<UserId>,
    logged_in: BTreeSet<UserId>,
}

#[derive(Default)]
struct State {
    queues: HashMap<QueueId, QueueInfo>,
    waiting: BTreeMap<(QueueId, ConversationId), (u64, u64)>,
    active: BTreeMap<(QueueId, ConversationId), (u64, UserId, u64)>,
    last_agent: HashMap<(QueueId, ConversationId), UserId>,
    history: Vec<InteractionRow>,
    customers: HashMap<ConversationId, PhoneNumber>,
}

/// Queue views, kept up to date by [`QueueViews::run`].
#[derive(Clone)]
pub struct QueueViews {
    state: Arc<RwLock<State>>,
    /// Position of the last event applied (`None` before the first).
    applied: watch::Sender<Option<u64>>,
}

impl Default for QueueViews {
    fn default() -> Self {
        Self::new()
    }
}

fn matches(row: &InteractionRow, search: Option<&str>) -> bool {
    let Some(q) = search.map(str::trim).filter(|q| !q.is_empty()) else {
        return true;
    };
    let digits: String = q.chars().filter(char::is_ascii_digit).collect();
    let customer = row
        .customer
        .as_ref()
        .map(|c| c.to_string())
        .unwrap_or_default();
    (!digits.is_empty() && customer.contains(&digits))
        || row.queue_name.to_lowercase().contains(&q.to_lowercase())
}

impl QueueViews {
    pub fn new() -> Self {
        let (applied, _) = watch::channel(None);
        Self {
            state: Arc::new(RwLock::new(State::default())),
            applied,
        }
    }

    /// Follows the log from the beginning until it closes.
    pub async fn run(self, store: Arc<dyn EventStore>) {
        let mut sub = match Subscription::new(store, SubscriptionTarget::All, StartFrom::Beginning)
        {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "queue views cannot subscribe");
                return;
            }
        };
        loop {
            match sub.next().await {
                Ok(record) => {
                    self.apply(&record);
                    self.applied.send_replace(Some(record.position));
                }
                Err(e) => {
                    tracing::info!(error = %e, "queue views stopped");
                    return;
                }
            }
        }
    }

    /// Waits until the view has applied `position` (read-your-writes), at most `timeout`.
    /// Returns whether it got there.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        let mut rx = self.applied.subscribe();
        let reached =
            tokio::time::timeout(timeout, rx.wait_for(|p| p.is_some_and(|p| p >= position)))
                .await
                .is_ok_and(|r| r.is_ok());
        reached
    }

    fn apply(&self, record: &RecordedEvent) {
        let category = record.stream.category();
        let Ok(mut s) = self.state.write() else {
            return;
        };
        if category == INBOUND_CATEGORY {
            if let Ok(InboundEvent::SmsArrived(sms)) = event_codec::decode::<InboundEvent>(record) {
                let id = ConversationId::external(sms.org, &sms.to, &sms.from);
                s.customers.insert(id, sms.from);
            }
            return;
        }
        if category != <Queue as Aggregate>::CATEGORY {
            return;
        }
        let (Ok(queue), Ok(event)) = (
            record.stream.id().parse::<QueueId>(),
            event_codec::decode::<QueueEvent>(record),
        ) else {
            return;
        };
        let s = &mut *s;
        match event {
            QueueEvent::QueueCreated(e) => {
                let q = s.queues.entry(queue).or_default();
                q.name = e.name;
                q.policy = e.policy;
            }
            QueueEvent::QueuePolicyChanged(e) => {
                s.queues.entry(queue).or_default().policy = e.policy
            }
            QueueEvent::QueueMemberAdded(e) => {
                s.queues.entry(queue).or_default().members.insert(e.user);
            }
            QueueEvent::QueueMemberRemoved(e) => {
                let q = s.queues.entry(queue).or_default();
                q.members.remove(&e.user);
                q.logged_in.remove(&e.user);
            }
            QueueEvent::AgentLoggedIn(e) => {
                s.queues.entry(queue).or_default().logged_in.insert(e.agent);
            }
            QueueEvent::AgentLoggedOut(e) => {
                s.queues
                    .entry(queue)
                    .or_default()
                    .logged_in
                    .remove(&e.agent);
            }
            QueueEvent::InteractionQueued(e) => {
                s.waiting
                    .insert((queue, e.conversation), (e.at_ms, e.interaction));
            }
            QueueEvent::InteractionReleased(e) => {
                s.active.remove(&(queue, e.conversation));
                s.waiting
                    .insert((queue, e.conversation), (e.at_ms, e.interaction));
            }
            QueueEvent::InteractionClaimed(e) => {
                s.waiting.remove(&(queue, e.conversation));
                s.active
                    .insert((queue, e.conversation), (e.at_ms, e.agent, e.interaction));
                s.last_agent.insert((queue, e.conversation), e.agent);
            }
            QueueEvent::InteractionTransferred(e) => {
                if let Some(a) = s.active.get_mut(&(queue, e.conversation)) {
                    a.1 = e.to;
                }
                s.last_agent.insert((queue, e.conversation), e.to);
            }
            QueueEvent::InteractionClosed(e) => {
                s.waiting.remove(&(queue, e.conversation));
                s.active.remove(&(queue, e.conversation));
                let row = InteractionRow {
                    queue,
                    queue_name: s
                        .queues
                        .get(&queue)
                        .map(|q| q.name.clone())
                        .unwrap_or_default(),
                    conversation: e.conversation,
                    interaction: e.interaction,
                    customer: s.customers.get(&e.conversation).cloned(),
                    agent: s.last_agent.get(&(queue, e.conversation)).copied(),
                    at_ms: e.at_ms,
                    close_reason: Some(e.reason),
                };
                s.history.push(row);
            }
            QueueEvent::QueueActivityRecorded(_) | QueueEvent::QueueTimedOut(_) => {}
        }
    }

    fn row(
        s: &State,
        queue: QueueId,
        conversation: ConversationId,
        interaction: u64,
        agent: Option<UserId>,
        at_ms: u64,
    ) -> InteractionRow {
        InteractionRow {
            queue,
            queue_name: s
                .queues
                .get(&queue)
                .map(|q| q.name.clone())
                .unwrap_or_default(),
            conversation,
            interaction,
            customer: s.customers.get(&conversation).cloned(),
            agent,
            at_ms,
            close_reason: None,
        }
    }

    /// Active: what `agent` holds, oldest claim first.
    pub fn active(&self, agent: UserId, search: Option<&str>) -> Vec<InteractionRow> {
        let Ok(s) = self.state.read() else {
            return Vec::new();
        };
        let mut rows: Vec<_> = s
            .active
            .iter()
            .filter(|(_, (_, a, _))| *a == agent)
            .map(|((q, c), (at, a, i))| Self::row(&s, *q, *c, *i, Some(*a), *at))
            .filter(|r| matches(r, search))
            .collect();
        rows.sort_by_key(|r| r.at_ms);
        rows
    }

    /// Pending: waiting in the queues `agent` is logged into, oldest first, as many per
    /// queue as its policy shows.
    pub fn pending(&self, agent: UserId, search: Option<&str>) -> Vec<InteractionRow> {
        let Ok(s) = self.state.read() else {
            return Vec::new();
        };
        let mut rows = Vec::new();
        for (queue, info) in &s.queues {
            if !info.logged_in.contains(&agent) || !info.members.contains(&agent) {
                continue;
            }
            let mut mine: Vec<_> = s
                .waiting
                .range((*queue, ConversationId::from_uuid(uuid::Uuid::nil()))..)
                .take_while(|((q, _), _)| q == queue)
                .map(|((q, c), (at, i))| Self::row(&s, *q, *c, *i, None, *at))
                .collect();
            mine.sort_by_key(|r| (r.at_ms, r.interaction));
            if let Some(max) = info.policy.max_pending_visible {
                mine.truncate(max as usize);
            }
            rows.extend(mine.into_iter().filter(|r| matches(r, search)));
        }
        rows.sort_by_key(|r| (r.at_ms, r.interaction));
        rows
    }

    /// History: closed interactions of the queues `user` is a member of, newest first.
    pub fn history(&self, user: UserId, search: Option<&str>, limit: usize) -> Vec<InteractionRow> {
        let Ok(s) = self.state.read() else {
            return Vec::new();
        };
        s.history
            .iter()
            .rev()
            .filter(|r| {
                s.queues
                    .get(&r.queue)
                    .is_some_and(|q| q.members.contains(&user))
            })
            .filter(|r| matches(r, search))
            .take(limit)
            .cloned()
            .collect()
    }
}
