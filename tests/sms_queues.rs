//! SMS queues through actors, the inbound router and the durable timer scheduler, over the
//! real log: first claim wins, follow-ups reach the claimer, release/transfer rules, and
//! timeouts that fire exactly once — also across a restart with the timer pending.

use std::sync::Arc;
use std::time::Duration;

use actors::clock::ManualClock;
use actors::{ActorConfig, ActorRuntime, CommandError, ExecuteOptions, Workspace};
use domain::directory::{Extension, Routing};
use domain::inbound::{InboundEvent, SmsArrived};
use domain::queue::{
    IdleTimeoutAction, QueueCommand, QueuePolicy, QueueRejection, WaitTimeoutAction,
};
use domain::{
    CommandMeta, Conversation, ConversationId, DirectoryCommand, OrgId, PhoneNumber, Queue,
    QueueId, Role, UserId,
};
use eventlog::{Direction, ExpectedVersion, StreamName};
use testkit::TempLog;
use workers::{inbound_router, queue_timeline, queue_timers};

const QUEUE_NUMBER: &str = "+15550007000";
const WAIT_MS: u64 = 1_000;

fn number(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).unwrap()
}

struct World {
    log: TempLog,
    ws: Option<Workspace>,
    org: OrgId,
    queue: QueueId,
    agents: [UserId; 2],
}

impl World {
    fn workspace(log: &TempLog) -> Workspace {
        let runtime = Arc::new(ActorRuntime::start(2).unwrap());
        Workspace::new(log.store(), runtime, ActorConfig::default())
    }

    async fn new() -> Self {
        let log = TempLog::new();
        let ws = Self::workspace(&log);
        let org = OrgId::random();
        let queue = QueueId::random();
        let agents = [UserId::random(), UserId::random()];
        let sys = CommandMeta::system(org, 1);
        for c in [
            DirectoryCommand::CreateOrganization {
                name: "Acme".into(),
                first_admin: UserId::random(),
                first_admin_name: "Ada".into(),
                first_admin_extension: Extension::parse("100").unwrap(),
            },
            DirectoryCommand::AddNumber {
                number: number(QUEUE_NUMBER),
                route: Routing::Queue(queue),
                destination_exists: true,
            },
        ] {
            ws.directories
                .execute(&org, sys.issue(c), ExecuteOptions::default())
                .await
                .unwrap();
        }
        let policy = QueuePolicy {
            wait_timeout_ms: Some(WAIT_MS),
            on_wait_timeout: WaitTimeoutAction::Close,
            idle_timeout_ms: None,
            on_idle_timeout: IdleTimeoutAction::ReturnToQueue,
            max_pending_visible: None,
        };
        let mut cmds = vec![QueueCommand::CreateQueue {
            id: queue,
            name: "Support".into(),
            number: number(QUEUE_NUMBER),
            policy,
        }];
        cmds.extend(agents.iter().map(|a| QueueCommand::AddMember { user: *a }));
        for c in cmds {
            ws.queues
                .execute(&queue, sys.issue(c), ExecuteOptions::default())
                .await
                .unwrap();
        }
        let w = Self {
            log,
            ws: Some(ws),
            org,
            queue,
            agents,
        };
        for a in agents {
            w.agent(a, QueueCommand::LogIn).await.unwrap();
        }
        w
    }

    fn ws(&self) -> &Workspace {
        self.ws.as_ref().unwrap()
    }

    async fn agent(&self, a: UserId, c: QueueCommand) -> Result<(), CommandError<QueueRejection>> {
        let cmd = CommandMeta::user(self.org, a, Role::Member, 10).issue(c);
        self.ws()
            .queues
            .execute(&self.queue, cmd, ExecuteOptions::default())
            .await
            .map(|_| ())
    }

    /// A customer texts the queue's number at `at_ms`; routed like the carrier would.
    async fn text(&self, from: &str, at_ms: u64) -> ConversationId {
        let e = InboundEvent::SmsArrived(SmsArrived {
            org: self.org,
            to: number(QUEUE_NUMBER),
            from: number(from),
            text: domain::Text::unsealed("hello?"),
            media: Vec::new(),
            carrier_message_id: uuid::Uuid::new_v4().to_string(),
            at_ms,
        });
        let data =
            actors::event_codec::encode(&e, uuid::Uuid::new_v4(), Default::default()).unwrap();
        let stream = StreamName::from_parts("inbound", self.org).unwrap();
        let r = self
            .ws()
            .store
            .append(stream, ExpectedVersion::Any, vec![data])
            .await
            .unwrap();
        let record = self
            .ws()
            .store
            .read_all_blocking(r.first_position, 1)
            .unwrap()
            .remove(0);
        match inbound_router::route(self.ws(), &record).await.unwrap() {
            inbound_router::Routed::Queued(id, q) => {
                assert_eq!(q, self.queue);
                id
            }
            other => panic!("not queued: {other:?}"),
        }
    }

    async fn queue_state<R: Send + 'static>(
        &self,
        f: impl Fn(&Queue) -> R + Clone + Send + 'static,
    ) -> R {
        self.ws()
            .queues
            .query(&self.queue, move |q: &Queue, _| f(q))
            .await
            .unwrap()
    }

    fn timeouts_recorded(&self) -> usize {
        let stream = StreamName::from_parts("queue", self.queue).unwrap();
        self.ws()
            .store
            .read_stream_blocking(&stream, 0, Direction::Forward, 10_000)
            .unwrap()
            .iter()
            .filter(|e| e.event_type == "QueueTimedOut")
            .count()
    }

    fn restart(&mut self) {
        if let Some(ws) = self.ws.take() {
            ws.runtime.shutdown();
        }
        self.log.reopen();
        self.ws = Some(Self::workspace(&self.log));
    }
}

async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..400 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_claim_at_once_and_exactly_one_wins() {
    let w = World::new().await;
    let c = w.text("+15559990001", 100).await;
    let [a, b] = w.agents;
    let (ra, rb) = tokio::join!(
        w.agent(a, QueueCommand::Claim { conversation: c }),
        w.agent(b, QueueCommand::Claim { conversation: c })
    );
    let (winner, loser) = match (ra, rb) {
        (Ok(()), Err(e)) => (a, e),
        (Err(e), Ok(())) => (b, e),
        other => panic!("exactly one claim must win: {other:?}"),
    };
    assert!(
        matches!(loser, CommandError::Rejected(QueueRejection::AlreadyClaimed { by }) if by == winner)
    );
    assert_eq!(w.queue_state(move |q| q.claimer_of(c)).await, Some(winner));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_ups_reach_the_claimer_and_release_reopens_the_claim() {
    let w = World::new().await;
    let [a, b] = w.agents;
    let c = w.text("+15559990002", 100).await;
    assert_eq!(w.queue_state(move |q| q.pending_for(a).len()).await, 1);
    w.agent(a, QueueCommand::Claim { conversation: c })
        .await
        .unwrap();
    // The customer texts again: same conversation, still with the claimer, not waiting.
    assert_eq!(w.text("+15559990002", 200).await, c);
    assert_eq!(
        w.queue_state(move |q| (q.claimer_of(c), q.waiting(c).is_some()))
            .await,
        (Some(a), false)
    );
    let texts = w
        .ws()
        .conversations
        .query(&c, |c: &Conversation, _| c.last_seq())
        .await
        .unwrap();
    assert_eq!(texts, 2, "the history stays in one conversation");
    // Release → claimable by the other agent.
    w.agent(a, QueueCommand::Release { conversation: c })
        .await
        .unwrap();
    w.agent(b, QueueCommand::Claim { conversation: c })
        .await
        .unwrap();
    // Transfer to a logged-out agent is refused.
    w.agent(a, QueueCommand::LogOut).await.unwrap();
    let refused = w
        .agent(
            b,
            QueueCommand::Transfer {
                conversation: c,
                to: a,
            },
        )
        .await;
    assert!(
        matches!(refused, Err(CommandError::Rejected(QueueRejection::TargetNotLoggedIn { user })) if user == a)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_timeout_fires_exactly_once_also_across_a_restart() {
    let mut w = World::new().await;
    let clock = ManualClock::new(10_000);
    let scheduler = tokio::spawn(queue_timers::run(w.ws().clone(), Arc::new(clock.clone())));
    // One interaction times out while the scheduler runs.
    let first = w.text("+15559990003", clock.now_ms_for_test()).await;
    timers_loaded(&w).await;
    clock.advance(WAIT_MS);
    assert!(
        eventually(async || w.timeouts_recorded() == 1).await,
        "timer fired"
    );
    assert!(
        w.queue_state(move |q| q.waiting(first).is_none()).await,
        "closed by the policy"
    );

    // Another is pending when everything stops; its deadline passes while down.
    let second = w.text("+15559990004", clock.now_ms_for_test()).await;
    scheduler.abort();
    let _ = scheduler.await;
    w.restart();
    clock.advance(WAIT_MS * 3);
    let scheduler = tokio::spawn(queue_timers::run(w.ws().clone(), Arc::new(clock.clone())));
    assert!(
        eventually(async || w.timeouts_recorded() == 2).await,
        "the missed timer fired on restart"
    );
    assert!(w.queue_state(move |q| q.waiting(second).is_none()).await);
    // And never again: more time, another restart of the scheduler.
    clock.advance(WAIT_MS * 10);
    scheduler.abort();
    let _ = scheduler.await;
    let scheduler = tokio::spawn(queue_timers::run(w.ws().clone(), Arc::new(clock.clone())));
    timers_loaded(&w).await;
    assert_eq!(w.timeouts_recorded(), 2, "each timeout fired exactly once");
    scheduler.abort();
}

trait NowForTest {
    fn now_ms_for_test(&self) -> u64;
}

impl NowForTest for ManualClock {
    fn now_ms_for_test(&self) -> u64 {
        actors::clock::Clock::now_ms(self)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lifecycle_step_is_a_system_message_in_the_conversation_exactly_once() {
    let w = World::new().await;
    let [a, b] = w.agents;
    let timeline = tokio::spawn(queue_timeline::run(w.ws().clone()));
    let c = w.text("+15559990005", 100).await;
    w.agent(a, QueueCommand::Claim { conversation: c })
        .await
        .unwrap();
    w.agent(
        a,
        QueueCommand::Transfer {
            conversation: c,
            to: b,
        },
    )
    .await
    .unwrap();
    w.agent(b, QueueCommand::Close { conversation: c })
        .await
        .unwrap();
    let stream = StreamName::from_parts("conversation", c).unwrap();
    let notes = || -> Vec<String> {
        w.ws()
            .store
            .read_stream_blocking(&stream, 0, Direction::Forward, 1000)
            .unwrap()
            .iter()
            .filter_map(
                |r| match actors::event_codec::decode::<domain::ConversationEvent>(r) {
                    Ok(domain::ConversationEvent::SystemMessageRecorded(m)) => Some(
                        format!("{:?}", m.note)
                            .split([' ', '{'])
                            .next()
                            .unwrap()
                            .to_owned(),
                    ),
                    _ => None,
                },
            )
            .collect()
    };
    let expected = vec!["Queued", "ClaimedBy", "TransferredTo", "Closed"];
    assert!(
        eventually(async || notes() == expected).await,
        "timeline: {:?}",
        notes()
    );
    // A crash that loses the checkpoint replays the queue's events: nothing is written twice.
    timeline.abort();
    let _ = timeline.await;
    w.ws()
        .store
        .write_checkpoint_blocking(queue_timeline::CHECKPOINT, 0)
        .unwrap();
    let timeline = tokio::spawn(queue_timeline::run(w.ws().clone()));
    let last_queue_event = w
        .ws()
        .store
        .read_category_blocking("queue", 0, 100_000)
        .unwrap()
        .last()
        .unwrap()
        .position;
    assert!(
        eventually(async || {
            w.ws()
                .store
                .read_checkpoint_blocking(queue_timeline::CHECKPOINT)
                .unwrap()
                == Some(last_queue_event)
        })
        .await,
        "replayed to the end"
    );
    // And nothing more after it: the timeline has handled everything there is.
    let head = w.ws().store.next_position() - 1;
    w.ws()
        .progress
        .reached(queue_timeline::CHECKPOINT, head)
        .await;
    assert_eq!(notes(), expected, "exactly once");
    timeline.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_center_views_show_active_pending_and_searchable_history() {
    let w = World::new().await;
    let [a, b] = w.agents;
    let queues =
        projections::LiveQueues::start(&w.log.dir().join("readmodels"), w.ws().store.clone())
            .unwrap();
    let views = queues.db();
    let first = w.text("+15551110001", 100).await;
    let second = w.text("+15552220002", 200).await;
    let synced = |w: &World| w.ws().store.next_position() - 1;
    assert!(
        queues.wait_for(synced(&w), Duration::from_secs(10)).await,
        "read your writes"
    );
    let pending: Vec<_> = views
        .pending(a, None, 100)
        .unwrap()
        .iter()
        .map(|r| r.conversation)
        .collect();
    assert_eq!(pending, vec![first, second], "oldest first");
    let waiting = views.waiting(&w.queue, 10).unwrap();
    assert_eq!(
        waiting.iter().map(|x| x.conversation).collect::<Vec<_>>(),
        vec![first, second],
        "the queue's waiting list, oldest first"
    );
    assert!(waiting[0].since_ms <= waiting[1].since_ms);
    let found = views.pending(a, Some("222 0002"), 100).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].customer, Some(number("+15552220002")));
    w.agent(
        a,
        QueueCommand::Claim {
            conversation: second,
        },
    )
    .await
    .unwrap();
    queues.wait_for(synced(&w), Duration::from_secs(10)).await;
    assert_eq!(views.active(a, None, 100).unwrap()[0].conversation, second);
    assert!(views.active(b, None, 100).unwrap().is_empty());
    assert_eq!(
        views.pending(b, None, 100).unwrap().len(),
        1,
        "claimed work leaves Pending"
    );
    // Search covers only its tab: the claimed customer is not in Pending.
    assert!(views.pending(a, Some("2220002"), 100).unwrap().is_empty());
    w.agent(b, QueueCommand::LogOut).await.unwrap();
    queues.wait_for(synced(&w), Duration::from_secs(10)).await;
    assert!(
        views.pending(b, None, 100).unwrap().is_empty(),
        "logged out: nothing offered"
    );
    w.agent(
        a,
        QueueCommand::Close {
            conversation: second,
        },
    )
    .await
    .unwrap();
    queues.wait_for(synced(&w), Duration::from_secs(10)).await;
    let history = views.history(a, Some("+1 555 222"), 50).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].agent, Some(a));
    assert!(
        views.history(a, Some("111"), 50).unwrap().is_empty(),
        "the waiting one is not history"
    );
    assert!(
        views
            .history(UserId::random(), None, 50)
            .unwrap()
            .is_empty(),
        "outsiders see no history"
    );
    queues.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_timeout_can_overflow_into_a_shared_inbox() {
    let w = World::new().await;
    let inbox = domain::InboxId::random();
    let policy = QueuePolicy {
        wait_timeout_ms: Some(WAIT_MS),
        on_wait_timeout: WaitTimeoutAction::OverflowToInbox(inbox),
        idle_timeout_ms: None,
        on_idle_timeout: IdleTimeoutAction::ReturnToQueue,
        max_pending_visible: None,
    };
    let set = CommandMeta::system(w.org, 5).issue(QueueCommand::SetPolicy { policy });
    w.ws()
        .queues
        .execute(&w.queue, set, ExecuteOptions::default())
        .await
        .unwrap();
    let clock = ManualClock::new(50_000);
    let scheduler = tokio::spawn(queue_timers::run(w.ws().clone(), Arc::new(clock.clone())));
    let c = w.text("+15559990006", clock.now_ms_for_test()).await;
    timers_loaded(&w).await;
    clock.advance(WAIT_MS);
    let in_inbox = || async {
        w.ws()
            .conversations
            .query(&c, |c: &Conversation, _| c.inbox().map(|a| a.inbox))
            .await
            .unwrap()
    };
    assert!(
        eventually(async || in_inbox().await == Some(inbox)).await,
        "handed to the inbox"
    );
    assert!(
        w.queue_state(move |q| q.waiting(c).is_none()).await,
        "and gone from the queue"
    );
    scheduler.abort();
}

/// Builds the queue views from the log in chunks of random size, reopening the model
/// between chunks and sometimes feeding events again (as a restart from an older
/// checkpoint would).
fn queues_with_restarts(
    store: &Arc<dyn eventlog::EventStore>,
    dir: &std::path::Path,
    seed: u64,
) -> projections::db::Dump {
    use projections::queues::{QueuesDb, QueuesWriter};
    use projections::ReadModel;
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let all = store.read_all_blocking(0, usize::MAX).unwrap();
    let mut at = 0;
    while at < all.len() {
        let db = Arc::new(QueuesDb::open(dir).unwrap());
        let mut w = QueuesWriter::new(db.clone()).unwrap();
        for _ in 0..rng.random_range(1..4) {
            let n = rng.random_range(1..40).min(all.len() - at);
            if n == 0 {
                break;
            }
            let from = if at > 0 && rng.random_bool(0.3) {
                at.saturating_sub(rng.random_range(1..10))
            } else {
                at
            };
            w.apply_batch(&all[from..at + n]).unwrap();
            at += n;
        }
    }
    QueuesDb::open(dir).unwrap().dump().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_views_equal_a_fresh_rebuild_after_random_commands_and_restarts() {
    use projections::queues::{QueuesDb, QueuesWriter};
    use projections::ReadModel;
    use rand::{Rng, SeedableRng};
    let w = World::new().await;
    let root = w.log.dir().join("readmodels");
    let mut live = projections::LiveQueues::start(&root, w.ws().store.clone()).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    // Conversations with their customer's number, and whether their interaction is closed.
    let mut convs: Vec<(ConversationId, String, bool)> = Vec::new();
    let mut next_customer = 0;
    let mut at_ms = 1_000;
    for step in 0..150 {
        at_ms += 10;
        let agent = w.agents[rng.random_range(0..2)];
        let pick = |rng: &mut rand::rngs::StdRng| {
            (!convs.is_empty()).then(|| rng.random_range(0..convs.len()))
        };
        match rng.random_range(0..10) {
            0 | 1 => {
                next_customer += 1;
                let from = format!("+1555333{next_customer:04}");
                let id = w.text(&from, at_ms).await;
                convs.push((id, from, false));
            }
            2 => {
                // A closed interaction's customer writes again: a new interaction.
                if let Some(i) = convs.iter().position(|c| c.2) {
                    let id = w.text(&convs[i].1.clone(), at_ms).await;
                    assert_eq!(id, convs[i].0);
                    convs[i].2 = false;
                }
            }
            3 | 4 => {
                if let Some(i) = pick(&mut rng) {
                    let conversation = convs[i].0;
                    let _ = w.agent(agent, QueueCommand::Claim { conversation }).await;
                }
            }
            5 => {
                if let Some(i) = pick(&mut rng) {
                    let conversation = convs[i].0;
                    let _ = w.agent(agent, QueueCommand::Release { conversation }).await;
                }
            }
            6 => {
                if let Some(i) = pick(&mut rng) {
                    let conversation = convs[i].0;
                    let to = w.agents.into_iter().find(|a| *a != agent).unwrap();
                    let _ = w
                        .agent(agent, QueueCommand::Transfer { conversation, to })
                        .await;
                }
            }
            7 => {
                if let Some(i) = pick(&mut rng) {
                    let conversation = convs[i].0;
                    if w.agent(agent, QueueCommand::Close { conversation })
                        .await
                        .is_ok()
                    {
                        convs[i].2 = true;
                    }
                }
            }
            8 => {
                let c = if rng.random_bool(0.5) {
                    QueueCommand::LogOut
                } else {
                    QueueCommand::LogIn
                };
                let _ = w.agent(agent, c).await;
            }
            _ => {}
        }
        if step == 75 {
            // The server restarts: the model resumes from its stored checkpoint.
            let head = w.ws().store.next_position() - 1;
            assert!(live.wait_for(head / 2, Duration::from_secs(10)).await);
            // `close` waits for the runner; dropping the last handle closes the database.
            live.close();
            drop(live);
            live = projections::LiveQueues::start(&root, w.ws().store.clone()).unwrap();
        }
    }
    let head = w.ws().store.next_position() - 1;
    assert!(
        live.wait_for(head, Duration::from_secs(10)).await,
        "read your writes"
    );
    // Closing stores the checkpoint held back for batches that changed nothing (the
    // runner's writer ends); the views stay readable.
    live.close();
    let dump = live.db().dump().unwrap();
    for family in ["history", "waiting", "customers", "members"] {
        assert!(
            dump.iter().any(|(cf, _, _)| cf == family),
            "the run wrote {family}"
        );
    }
    // The views agree with the aggregate: the queue's waiting list, oldest first.
    let waiting: Vec<ConversationId> = live
        .db()
        .waiting(&w.queue, 1_000)
        .unwrap()
        .into_iter()
        .map(|x| x.conversation)
        .collect();
    let expected: Vec<ConversationId> = w
        .queue_state(|q| {
            q.waiting_oldest_first()
                .into_iter()
                .map(|(c, _)| c)
                .collect::<Vec<_>>()
        })
        .await;
    assert!(!expected.is_empty(), "something waits");
    assert_eq!(waiting, expected, "as the aggregate has it, oldest first");

    let store = w.ws().store.clone();
    let (fresh_dir, chunked_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (fresh, chunked) = tokio::task::spawn_blocking(move || {
        let db = Arc::new(QueuesDb::open(fresh_dir.path()).unwrap());
        let mut writer = QueuesWriter::new(db.clone()).unwrap();
        writer
            .apply_batch(&store.read_all_blocking(0, usize::MAX).unwrap())
            .unwrap();
        (
            db.dump().unwrap(),
            queues_with_restarts(&store, chunked_dir.path(), 13),
        )
    })
    .await
    .unwrap();
    assert_eq!(dump.len(), fresh.len());
    assert!(dump == fresh, "the live model differs from a fresh rebuild");
    assert!(
        chunked == fresh,
        "a build with restarts and repeats differs from a fresh rebuild"
    );
}

/// Most of the log is not about queues: a batch that changes no view writes nothing, not
/// even its checkpoint, until a batch that changes something, the flush when
/// `HOLD_UNCHANGED` is up, or the writer's close stores it. Queries see it applied at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_that_change_nothing_hold_their_checkpoint_back_until_a_flush_or_close() {
    use projections::queues::{QueuesDb, QueuesWriter};
    use projections::ReadModel;
    let w = World::new().await;
    w.text("+15553339001", 1_000).await;
    let store = w.ws().store.clone();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let db = Arc::new(QueuesDb::open(&path).unwrap());
        let mut writer = QueuesWriter::new(db.clone()).unwrap();
        let all = store.read_all_blocking(0, usize::MAX).unwrap();
        let first = all.last().unwrap().position;
        writer.apply_batch(&all).unwrap();
        assert_eq!(
            db.checkpoint().unwrap(),
            Some(first),
            "a text changes the views"
        );
        assert_eq!(writer.flush_at(), None);

        // Events no view is about.
        let unrelated = StreamName::new("note-1").unwrap();
        let data = |i: u8| eventlog::EventData::new("Noted", 1, vec![i]);
        for (i, expected) in [
            (1, ExpectedVersion::NoStream),
            (2, ExpectedVersion::Exact(0)),
        ] {
            store
                .append_blocking(unrelated.clone(), expected, vec![data(i)])
                .unwrap();
            let fresh = store.read_all_blocking(first + 1, usize::MAX).unwrap();
            writer.apply_batch(&fresh).unwrap();
        }
        let head = store.next_position() - 1;
        assert_eq!(writer.checkpoint(), Some(head), "applied");
        assert_eq!(writer.visible(), Some(head), "and what queries see");
        assert_eq!(db.checkpoint().unwrap(), Some(first), "not written");
        assert!(writer.flush_at().is_some(), "a flush is due");
        writer.flush().unwrap();
        assert_eq!(db.checkpoint().unwrap(), Some(head), "written by the flush");
        assert_eq!(writer.flush_at(), None);

        store
            .append_blocking(unrelated, ExpectedVersion::Exact(1), vec![data(3)])
            .unwrap();
        writer
            .apply_batch(&store.read_all_blocking(head + 1, usize::MAX).unwrap())
            .unwrap();
        assert_eq!(db.checkpoint().unwrap(), Some(head));
        drop(writer);
        assert_eq!(
            db.checkpoint().unwrap(),
            Some(store.next_position() - 1),
            "written on close"
        );
    })
    .await
    .unwrap();
}

/// Waits until the queue timers have read every queue event committed so far (they know
/// every timer set), as they publish it.
async fn timers_loaded(w: &World) {
    let head = w.ws().store.next_position().saturating_sub(1);
    tokio::time::timeout(
        Duration::from_secs(60),
        w.ws().progress.reached(queue_timers::PROGRESS, head),
    )
    .await
    .expect("the queue timers caught up");
}
