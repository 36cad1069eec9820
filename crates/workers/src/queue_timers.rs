//! The durable timer scheduler of SMS queues.
//!
//! Timers live in the queues' events: every event that starts a wait or a claim, or
//! records activity, carries the new deadline, and a close ends it. So the log is the
//! timers' durable store, and the scheduler keeps its min-heap by following the `queue`
//! category from the beginning, applying each event's deadline as the queue aggregate
//! does. When the earliest deadline is reached it sends `FireTimer` naming that deadline;
//! the queue acts only if the deadline is still current, and the command's idempotency key
//! derives from (queue, conversation, deadline), so a timer that fell due while the server
//! was down fires once on restart and never twice.
//!
//! It also carries out overflow: a `QueueTimedOut` whose action is `OverflowToQueue(q)`
//! enqueues the conversation in `q`; `OverflowToInbox(i)` hands the conversation to inbox
//! `i`, where it waits Unassigned.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use domain::queue::{QueueCommand, QueueEvent, WaitTimeoutAction};
use domain::{Aggregate, CommandMeta, ConversationCommand, ConversationId, OrgId, Queue, QueueId};
use eventlog::{RecordedEvent, SharedEvent, StartFrom, Subscription, SubscriptionTarget};
use uuid::Uuid;

use actors::clock::Clock;
use actors::core::ExecuteOptions;
use actors::event_codec;
use actors::workspace::Workspace;

type TimerKey = (QueueId, ConversationId);

/// Pending timers, earliest first; entries superseded in `current` are skipped lazily.
#[derive(Default)]
struct Timers {
    heap: BinaryHeap<Reverse<(u64, QueueId, ConversationId)>>,
    current: HashMap<TimerKey, u64>,
    org_of: HashMap<QueueId, OrgId>,
}

impl Timers {
    fn set(&mut self, queue: QueueId, conversation: ConversationId, deadline: Option<u64>) {
        match deadline {
            Some(d) => {
                if self.current.insert((queue, conversation), d) != Some(d) {
                    self.heap.push(Reverse((d, queue, conversation)));
                }
            }
            None => {
                self.current.remove(&(queue, conversation));
            }
        }
    }

    /// Applies one queue event's effect on deadlines (mirrors the aggregate's `apply`).
    fn apply(&mut self, queue: QueueId, event: &QueueEvent) {
        match event {
            QueueEvent::QueueCreated(e) => {
                self.org_of.insert(queue, e.org);
            }
            QueueEvent::InteractionQueued(e) => self.set(queue, e.conversation, e.wait_deadline_ms),
            QueueEvent::InteractionReleased(e) => {
                self.set(queue, e.conversation, e.wait_deadline_ms);
            }
            QueueEvent::InteractionClaimed(e) => {
                self.set(queue, e.conversation, e.idle_deadline_ms);
            }
            QueueEvent::InteractionTransferred(e) => {
                self.set(queue, e.conversation, e.idle_deadline_ms);
            }
            QueueEvent::QueueActivityRecorded(e) => {
                self.set(queue, e.conversation, e.idle_deadline_ms);
            }
            QueueEvent::InteractionClosed(e) => self.set(queue, e.conversation, None),
            _ => {}
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

    /// Removes and returns up to `max` current timers due at `now`. A timer whose firing
    /// fails comes back with its queue's next refresh.
    fn take_due(&mut self, now: u64, max: usize) -> Vec<(u64, QueueId, ConversationId)> {
        let mut due = Vec::new();
        while due.len() < max {
            match self.next_due() {
                Some(t @ (d, q, c)) if d <= now => {
                    self.heap.pop();
                    self.current.remove(&(q, c));
                    due.push(t);
                }
                _ => break,
            }
        }
        due
    }

    fn len(&self) -> usize {
        self.current.len()
    }
}

/// Timers fired concurrently at most (each is one command and one durable append).
const FIRE_CONCURRENCY: usize = 4096;

/// The idempotency key of firing one timer.
pub fn fire_key(queue: QueueId, conversation: ConversationId, deadline_ms: u64) -> Uuid {
    let mut name = Vec::with_capacity(40);
    name.extend_from_slice(queue.as_uuid().as_bytes());
    name.extend_from_slice(conversation.as_uuid().as_bytes());
    name.extend_from_slice(&deadline_ms.to_be_bytes());
    Uuid::new_v5(
        &Uuid::from_u128(0x5b0a_7e11_7100_4e2e_9a7c_0000_0000_0001),
        &name,
    )
}

async fn overflow(ws: &Workspace, record: &RecordedEvent, org: OrgId) {
    let Ok(QueueEvent::QueueTimedOut(t)) = event_codec::decode::<QueueEvent>(record) else {
        return;
    };
    let options = ExecuteOptions {
        idempotency_key: Some(Uuid::new_v5(&record.event_id, b"overflow")),
        ..ExecuteOptions::default()
    };
    let meta = CommandMeta::system(org, t.at_ms);
    let outcome = match t.wait_action {
        Some(WaitTimeoutAction::OverflowToQueue(target)) => {
            let cmd = meta.issue(QueueCommand::Enqueue {
                conversation: t.conversation,
            });
            ws.queues
                .execute(&target, cmd, options)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        Some(WaitTimeoutAction::OverflowToInbox(inbox)) => {
            let cmd = meta.issue(ConversationCommand::AttachToInbox { inbox });
            ws.conversations
                .execute(&t.conversation, cmd, options)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        _ => return,
    };
    if let Err(e) = outcome {
        tracing::warn!(conversation = %t.conversation, error = %e, "overflow not carried out");
    }
}

fn queue_of(record: &RecordedEvent) -> Option<QueueId> {
    record.stream.id().parse().ok()
}

/// Applies one event from the subscription: deadlines, and overflow after a timeout.
async fn on_event(ws: &Workspace, timers: &mut Timers, record: SharedEvent) {
    let Some(queue) = queue_of(&record) else {
        return;
    };
    let event = match event_codec::decode::<QueueEvent>(&record) {
        Ok(e) => e,
        Err(reason) => {
            tracing::error!(position = record.position, %reason, "undecodable queue event");
            return;
        }
    };
    timers.apply(queue, &event);
    if matches!(event, QueueEvent::QueueTimedOut(_)) {
        if let Some(org) = timers.org_of.get(&queue).copied() {
            overflow(ws, &record, org).await;
        }
    }
}

/// The name the timers publish their progress under (they keep no checkpoint: every
/// start reads the queues from the beginning).
pub const PROGRESS: &str = "queue_timers";

/// Runs until the log closes.
pub async fn run(ws: Workspace, clock: Arc<dyn Clock>) {
    let target = SubscriptionTarget::Category(<Queue as Aggregate>::CATEGORY.to_owned());
    let mut sub = match Subscription::new(ws.store.clone(), target, StartFrom::Beginning) {
        // Published: every timer of the events up to there is known (not: fired).
        Ok(s) => s.with_progress(ws.progress.publisher(PROGRESS)),
        Err(e) => {
            tracing::error!(error = %e, "queue timers cannot subscribe");
            return;
        }
    };
    let mut timers = Timers::default();
    loop {
        let next = timers.next_due();
        tokio::select! {
            biased;
            r = sub.next() => match r {
                Ok(record) => on_event(&ws, &mut timers, record).await,
                Err(e) => {
                    tracing::info!(error = %e, "queue timers stopped");
                    return;
                }
            },
            () = async {
                match next {
                    Some((due, _, _)) => clock.sleep_until(due).await,
                    None => std::future::pending::<()>().await,
                }
            } => {
                let now = clock.now_ms();
                let mut firing = tokio::task::JoinSet::new();
                for (due, queue, conversation) in timers.take_due(now, FIRE_CONCURRENCY) {
                    let Some(org) = timers.org_of.get(&queue).copied() else { continue };
                    let ws = ws.clone();
                    firing.spawn(async move {
                        let cmd = CommandMeta::system(org, now).issue(QueueCommand::FireTimer {
                            conversation,
                            deadline_ms: due,
                        });
                        let options = ExecuteOptions {
                            idempotency_key: Some(fire_key(queue, conversation, due)),
                            ..ExecuteOptions::default()
                        };
                        let fired = ws.queues.execute(&queue, cmd, options).await;
                        if let Err(e) = &fired {
                            tracing::warn!(%queue, %conversation, error = %e, "queue timer not fired; will retry");
                        }
                        (queue, conversation, due, fired.is_ok())
                    });
                }
                let mut failed = false;
                while let Some(done) = firing.join_next().await {
                    // A fired timer's effect arrives through the subscription; a failed one
                    // is put back to be tried again.
                    if let Ok((queue, conversation, due, false)) = done {
                        failed = true;
                        timers.set(queue, conversation, Some(due));
                    }
                }
                if failed {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
        tracing::trace!(pending = timers.len(), "queue timers");
    }
}
