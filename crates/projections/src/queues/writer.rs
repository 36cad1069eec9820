//! Applying events to a [`QueuesDb`]: queue events change the queues and their open
//! interactions; `ConversationStarted` (External) and `SmsArrived` name the customer of a
//! conversation. Everything else is skipped by type name, undecoded. A batch that changes
//! nothing writes nothing, not even its checkpoint, for at most [`HOLD_UNCHANGED`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::conversation::ConversationKind;
use domain::inbound::InboundEvent;
use domain::queue::QueueEvent;
use domain::{ConversationEvent, ConversationId, QueueId};
use eventlog::codec;
use rocksdb::WriteBatch;

use super::{keys, Closed, Item, ItemState, QueueView, QueuesDb};
use crate::batch::{bound_cache, BatchWriter, FxHashMap, FxHashSet, Projector, Stored};
use crate::error::ProjectionError;
use crate::event::{category, Decoded, Event};

/// The writer of a [`QueuesDb`] (what a runner or a rebuild drives).
pub type QueuesWriter = BatchWriter<QueuesProjector>;

impl QueuesWriter {
    /// A writer resuming from the stored checkpoint.
    ///
    /// # Errors
    /// When the checkpoint cannot be read.
    pub fn new(db: Arc<QueuesDb>) -> Result<Self, ProjectionError> {
        let checkpoint = db.checkpoint()?;
        Ok(Self::resume(QueuesProjector::new(db), checkpoint))
    }
}

/// Applies events to a [`QueuesDb`], keeping the state it changes (`queues`, `items`) in
/// memory during a batch and writing the batch, the index entries derived from that state
/// and the checkpoint in one `WriteBatch`.
pub struct QueuesProjector {
    db: Arc<QueuesDb>,
    queues: FxHashMap<QueueId, Option<QueueView>>,
    dirty_queues: FxHashSet<QueueId>,
    /// `None`: no open interaction.
    items: FxHashMap<(QueueId, ConversationId), Option<Item>>,
    dirty_items: FxHashSet<(QueueId, ConversationId)>,
    /// Index entries (`members`, `waiting`, `active`, `history`, `customers`) in the order
    /// the batch's events produced them.
    batch: WriteBatch,
    /// Batches that changed nothing since the last write: (their last position, since
    /// when, how many events). Their checkpoint is written with the next batch that changes
    /// something, or once [`HOLD_UNCHANGED`] has passed or [`HOLD_UNCHANGED_EVENTS`] events
    /// have, rather than once per batch (most of the log is not about queues).
    unchanged: Option<(u64, Instant, u64)>,
}

/// How long the checkpoint of batches that changed nothing is held back at most: a
/// restart (even after a crash) reads at most this much of the log again, finding nothing
/// to change.
pub const HOLD_UNCHANGED: Duration = Duration::from_secs(1);
/// How many events that changed nothing are held back at most.
pub const HOLD_UNCHANGED_EVENTS: u64 = 100_000;

impl QueuesProjector {
    fn new(db: Arc<QueuesDb>) -> Self {
        Self {
            db,
            queues: FxHashMap::default(),
            dirty_queues: FxHashSet::default(),
            items: FxHashMap::default(),
            dirty_items: FxHashSet::default(),
            batch: WriteBatch::default(),
            unchanged: None,
        }
    }

    /// Writes the checkpoint of the batches that changed nothing.
    fn store_unchanged(&mut self) -> Result<(), ProjectionError> {
        if let Some((checkpoint, _, _)) = self.unchanged {
            self.db.store().commit(WriteBatch::default(), checkpoint)?;
            self.unchanged = None;
        }
        Ok(())
    }

    fn queue(&mut self, id: QueueId) -> Result<&mut QueueView, ProjectionError> {
        if !self.queues.contains_key(&id) {
            let v = self.db.queue(&id)?;
            self.queues.insert(id, v);
        }
        self.dirty_queues.insert(id);
        Ok(self
            .queues
            .get_mut(&id)
            .expect("just inserted")
            .get_or_insert_with(QueueView::default))
    }

    fn item(
        &mut self,
        queue: QueueId,
        conv: ConversationId,
    ) -> Result<Option<Item>, ProjectionError> {
        if let Some(i) = self.items.get(&(queue, conv)) {
            return Ok(*i);
        }
        let i = self.db.item(&queue, &conv)?;
        self.items.insert((queue, conv), i);
        Ok(i)
    }

    /// Replaces the open interaction of `conv` in `queue`, moving its index entries.
    fn set_item(
        &mut self,
        queue: QueueId,
        conv: ConversationId,
        new: Option<Item>,
    ) -> Result<(), ProjectionError> {
        let old = self.item(queue, conv)?;
        if old == new {
            return Ok(());
        }
        let (waiting, active) = (
            self.db.store().cf(super::WAITING)?,
            self.db.store().cf(super::ACTIVE)?,
        );
        let index_key = |item: &Item| match item.state {
            ItemState::Waiting { since_ms } => (
                waiting,
                keys::waiting(&queue, since_ms, item.interaction, &conv),
            ),
            ItemState::Active { agent, since_ms } => {
                (active, keys::active(&agent, since_ms, &queue, &conv))
            }
        };
        if let Some(old) = &old {
            let (cf, k) = index_key(old);
            self.batch.delete_cf(cf, k);
        }
        if let Some(new) = &new {
            let (cf, k) = index_key(new);
            self.batch.put_cf(cf, k, []);
        }
        self.items.insert((queue, conv), new);
        self.dirty_items.insert((queue, conv));
        Ok(())
    }

    fn customer(
        &mut self,
        conv: ConversationId,
        number: &domain::PhoneNumber,
    ) -> Result<(), ProjectionError> {
        let cf = self.db.store().cf(super::CUSTOMERS)?;
        self.batch
            .put_cf(cf, keys::customer(&conv), codec::encode(number)?);
        Ok(())
    }

    fn apply_queue(
        &mut self,
        queue: QueueId,
        position: u64,
        event: QueueEvent,
    ) -> Result<(), ProjectionError> {
        let db = self.db.clone();
        let members = db.store().cf(super::MEMBERS)?;
        match event {
            QueueEvent::QueueCreated(e) => {
                let q = self.queue(queue)?;
                q.org = Some(e.org);
                q.name = e.name;
                q.policy = e.policy;
            }
            QueueEvent::QueuePolicyChanged(e) => self.queue(queue)?.policy = e.policy,
            QueueEvent::QueueMemberAdded(e) => {
                self.queue(queue)?.members.insert(e.user);
                self.batch
                    .put_cf(members, keys::member(&e.user, &queue), []);
            }
            QueueEvent::QueueMemberRemoved(e) => {
                let q = self.queue(queue)?;
                q.members.remove(&e.user);
                q.logged_in.remove(&e.user);
                self.batch.delete_cf(members, keys::member(&e.user, &queue));
            }
            QueueEvent::AgentLoggedIn(e) => {
                self.queue(queue)?.logged_in.insert(e.agent);
            }
            QueueEvent::AgentLoggedOut(e) => {
                self.queue(queue)?.logged_in.remove(&e.agent);
            }
            QueueEvent::InteractionQueued(e) => {
                // A new interaction: nobody has held it yet.
                self.set_item(
                    queue,
                    e.conversation,
                    Some(Item {
                        interaction: e.interaction,
                        state: ItemState::Waiting { since_ms: e.at_ms },
                        last_agent: None,
                    }),
                )?;
            }
            QueueEvent::InteractionReleased(e) => {
                let last_agent = self.item(queue, e.conversation)?.and_then(|i| i.last_agent);
                self.set_item(
                    queue,
                    e.conversation,
                    Some(Item {
                        interaction: e.interaction,
                        state: ItemState::Waiting { since_ms: e.at_ms },
                        last_agent,
                    }),
                )?;
            }
            QueueEvent::InteractionClaimed(e) => {
                self.set_item(
                    queue,
                    e.conversation,
                    Some(Item {
                        interaction: e.interaction,
                        state: ItemState::Active {
                            agent: e.agent,
                            since_ms: e.at_ms,
                        },
                        last_agent: Some(e.agent),
                    }),
                )?;
            }
            QueueEvent::InteractionTransferred(e) => {
                if let Some(mut item) = self.item(queue, e.conversation)? {
                    if let ItemState::Active { agent, .. } = &mut item.state {
                        *agent = e.to;
                    }
                    item.last_agent = Some(e.to);
                    self.set_item(queue, e.conversation, Some(item))?;
                }
            }
            QueueEvent::InteractionClosed(e) => {
                let agent = self.item(queue, e.conversation)?.and_then(|i| i.last_agent);
                self.set_item(queue, e.conversation, None)?;
                let closed = Closed {
                    conversation: e.conversation,
                    interaction: e.interaction,
                    agent,
                    at_ms: e.at_ms,
                    reason: e.reason,
                };
                let cf = self.db.store().cf(super::HISTORY)?;
                self.batch
                    .put_cf(cf, keys::history(&queue, position), codec::encode(&closed)?);
            }
            // What a timeout did follows as its own events (closed, released, overflowed).
            QueueEvent::QueueActivityRecorded(_) | QueueEvent::QueueTimedOut(_) => {}
        }
        Ok(())
    }
}

impl Projector for QueuesProjector {
    const NAME: &'static str = super::NAME;

    fn apply(&mut self, event: &Event<'_>) -> Result<(), ProjectionError> {
        let wanted = event.is_in(category::QUEUE)
            || (event.is_in(category::CONVERSATION) && event.event_type == "ConversationStarted")
            || (event.is_in(category::INBOUND) && event.event_type == "SmsArrived");
        if !wanted {
            return Ok(());
        }
        match event.decoded()? {
            // Queue events are few: applied from a copy.
            Decoded::Queue(queue, e) => self.apply_queue(*queue, event.position, e.clone()),
            Decoded::Conversation(conv, ConversationEvent::ConversationStarted(e)) => {
                if let ConversationKind::External { their, .. } = &e.kind {
                    self.customer(*conv, their)?;
                }
                Ok(())
            }
            Decoded::Inbound(InboundEvent::SmsArrived(sms)) => {
                let conv = ConversationId::external(sms.org, &sms.to, &sms.from);
                self.customer(conv, &sms.from)
            }
            _ => Ok(()),
        }
    }

    /// Writes the batch, the changed state and `checkpoint` atomically.
    fn store(&mut self, checkpoint: u64, events: u64) -> Result<Stored, ProjectionError> {
        if self.batch.is_empty() && self.dirty_queues.is_empty() && self.dirty_items.is_empty() {
            let (since, held) = self
                .unchanged
                .map_or((Instant::now(), 0), |(_, since, n)| (since, n));
            let held = held + events;
            self.unchanged = Some((checkpoint, since, held));
            if held < HOLD_UNCHANGED_EVENTS && since.elapsed() < HOLD_UNCHANGED {
                return Ok(Stored::Deferred);
            }
            self.store_unchanged()?;
            return Ok(Stored::Durable);
        }
        self.unchanged = None;
        let store = self.db.store();
        let (queues, items) = (store.cf(super::QUEUES)?, store.cf(super::ITEMS)?);
        let mut batch = std::mem::take(&mut self.batch);
        for id in self.dirty_queues.drain() {
            if let Some(Some(q)) = self.queues.get(&id) {
                batch.put_cf(queues, keys::queue(&id), codec::encode(q)?);
            }
        }
        for key in self.dirty_items.drain() {
            let k = keys::item(&key.0, &key.1);
            match self.items.get(&key) {
                Some(Some(item)) => batch.put_cf(items, k, codec::encode(item)?),
                _ => batch.delete_cf(items, k),
            }
        }
        store.commit(batch, checkpoint)?;
        bound_cache(&mut self.items);
        bound_cache(&mut self.queues);
        Ok(Stored::Durable)
    }

    fn flush_at(&self) -> Option<Instant> {
        self.unchanged.map(|(_, since, _)| since + HOLD_UNCHANGED)
    }

    fn flush(&mut self) -> Result<(), ProjectionError> {
        self.store_unchanged()
    }

    /// Forgets a batch that failed (nothing of it was stored).
    fn discard(&mut self) {
        self.unchanged = None;
        self.batch = WriteBatch::default();
        self.queues.clear();
        self.dirty_queues.clear();
        self.items.clear();
        self.dirty_items.clear();
    }
}

impl Drop for QueuesProjector {
    /// Stores the checkpoint held back, so that a closed model (a restart, a rebuild's
    /// finish) resumes where it got to.
    fn drop(&mut self) {
        if let Err(e) = self.store_unchanged() {
            tracing::warn!(error = %e, "queue views' checkpoint not stored on close");
        }
    }
}
