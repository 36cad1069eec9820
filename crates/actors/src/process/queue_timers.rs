//! The durable timer scheduler of SMS queues.
//!
//! Timers live in the queues' state (wait and idle deadlines set by their events), so the
//! log is their durable store. On start the scheduler follows the `queue` category from the
//! beginning: each queue it meets is asked for its pending timers, which go into a
//! min-heap. Later events refresh their queue's timers. When the earliest deadline is
//! reached it sends `FireTimer` naming that deadline; the queue acts only if the deadline is
//! still current, and the command's idempotency key derives from (queue, conversation,
//! deadline), so a timer that fell due while the server was down fires once on restart and
//! never twice.
//!
//! It also carries out overflow to another queue: a `QueueTimedOut` whose action is
//! `OverflowToQueue(q)` enqueues the conversation in `q`.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;

use domain::queue::{QueueCommand, QueueEvent, WaitTimeoutAction};
use domain::{Aggregate, CommandMeta, ConversationId, OrgId, Queue, QueueId};
use eventlog::{RecordedEvent, StartFrom, Subscription, SubscriptionTarget};
use uuid::Uuid;

use crate::clock::Clock;
use crate::core::ExecuteOptions;
use crate::event_codec;
use crate::workspace::Workspace;

type TimerKey = (QueueId, ConversationId);

/// Pending timers, earliest first; entries superseded in `current` are skipped lazily.
#[derive(Default)]
struct Timers {
    heap: BinaryHeap<Reverse<(u64, QueueId, ConversationId)>>,
    current: HashMap<TimerKey, u64>,
    org_of: HashMap<QueueId, OrgId>,
}

impl Timers {
    fn replace_queue(&mut self, queue: QueueId, org: OrgId, timers: Vec<(ConversationId, u64)>) {
        self.org_of.insert(queue, org);
        self.current.retain(|(q, _), _| *q != queue);
        for (conversation, deadline) in timers {
            self.current.insert((queue, conversation), deadline);
            self.heap.push(Reverse((deadline, queue, conversation)));
        }
    }

    /// The earliest deadline still current.
    fn next_due(&mut self) -> Option<(u64, QueueId, ConversationId)> {
        while let Some(Reverse((d, q, c))) = self.heap.peek().copied() {
            if self.current.get(&(q, c)) == Some(&d) {
                return Some((d, q, c));
            }
            self.heap.pop();
        }
        None
    }

    fn len(&self) -> usize {
        self.current.len()
    }
}

/// The idempotency key of firing one timer.
pub fn fire_key(queue: QueueId, conversation: ConversationId, deadline_ms: u64) -> Uuid {
    let mut name = Vec::with_capacity(40);
    name.extend_from_slice(queue.as_uuid().as_bytes());
    name.extend_from_slice(conversation.as_uuid().as_bytes());
    name.extend_from_slice(&deadline_ms.to_be_bytes());
    Uuid::new_v5(
        &Uuid::from_u128(0x5b_0a_7e_11_7100_4e2e_9a7c_0000_0000_0001),
        &name,
    )
}

async fn refresh(ws: &Workspace, timers: &mut Timers, queue: QueueId) {
    let found = ws
        .queues
        .query(&queue, |q: &Queue, _| {
            q.header().map(|h| (h.org, q.pending_timers()))
        })
        .await;
    match found {
        Ok(Some((org, list))) => timers.replace_queue(queue, org, list),
        Ok(None) => {}
        Err(e) => tracing::warn!(%queue, error = %e, "queue timers not refreshed"),
    }
}

async fn overflow(ws: &Workspace, record: &RecordedEvent, org: OrgId) {
    let Ok(QueueEvent::QueueTimedOut(t)) = event_codec::decode::<QueueEvent>(record) else {
        return;
    };
    let Some(WaitTimeoutAction::OverflowToQueue(target)) = t.wait_action else {
        return;
    };
    let options = ExecuteOptions {
        idempotency_key: Some(Uuid::new_v5(&record.event_id, b"overflow")),
        ..ExecuteOptions::default()
    };
    let cmd = CommandMeta::system(org, t.at_ms).issue(QueueCommand::Enqueue {
        conversation: t.conversation,
    });
    if let Err(e) = ws.queues.execute(&target, cmd, options).await {
        tracing::warn!(queue = %target, error = %e, "overflow not enqueued");
    }
}

fn queue_of(record: &RecordedEvent) -> Option<QueueId> {
    record.stream.id().parse().ok()
}

/// What the loop learned from the log since it last looked at the clock.
#[derive(Default)]
struct Seen {
    dirty: BTreeSet<QueueId>,
    timed_out: Vec<RecordedEvent>,
}

impl Seen {
    fn note(&mut self, record: RecordedEvent) {
        if let Some(q) = queue_of(&record) {
            self.dirty.insert(q);
            if record.event_type == "QueueTimedOut" {
                self.timed_out.push(record);
            }
        }
    }
}

/// Runs until the log closes.
pub async fn run(ws: Workspace, clock: Arc<dyn Clock>) {
    let target = SubscriptionTarget::Category(<Queue as Aggregate>::CATEGORY.to_owned());
    let mut sub = match Subscription::new(ws.store.clone(), target, StartFrom::Beginning) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "queue timers cannot subscribe");
            return;
        }
    };
    let mut timers = Timers::default();
    let mut seen = Seen::default();
    loop {
        // Take every event that is ready before looking at the clock, so a rebuild
        // queries each queue once, not once per event. (`Subscription::next` is safe to
        // cancel.)
        loop {
            tokio::select! {
                biased;
                r = sub.next() => match r {
                    Ok(record) => seen.note(record),
                    Err(e) => {
                        tracing::info!(error = %e, "queue timers stopped");
                        return;
                    }
                },
                _ = std::future::ready(()) => break,
            }
        }
        for q in std::mem::take(&mut seen.dirty) {
            refresh(&ws, &mut timers, q).await;
        }
        for record in std::mem::take(&mut seen.timed_out) {
            if let Some(org) = queue_of(&record).and_then(|q| timers.org_of.get(&q).copied()) {
                overflow(&ws, &record, org).await;
            }
        }
        let next = timers.next_due();
        tokio::select! {
            biased;
            r = sub.next() => match r {
                Ok(record) => seen.note(record),
                Err(e) => {
                    tracing::info!(error = %e, "queue timers stopped");
                    return;
                }
            },
            _ = async {
                match next {
                    Some((due, _, _)) => clock.sleep_until(due).await,
                    None => std::future::pending::<()>().await,
                }
            } => {
                let Some((due, queue, conversation)) = next else { continue };
                let Some(org) = timers.org_of.get(&queue).copied() else { continue };
                let cmd = CommandMeta::system(org, clock.now_ms()).issue(QueueCommand::FireTimer {
                    conversation,
                    deadline_ms: due,
                });
                let options = ExecuteOptions {
                    idempotency_key: Some(fire_key(queue, conversation, due)),
                    ..ExecuteOptions::default()
                };
                if let Err(e) = ws.queues.execute(&queue, cmd, options).await {
                    tracing::warn!(%queue, %conversation, error = %e, "queue timer not fired; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                // Whatever happened, the queue's state now says what is still pending.
                seen.dirty.insert(queue);
            }
        }
        tracing::trace!(pending = timers.len(), "queue timers");
    }
}
