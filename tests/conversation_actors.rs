//! Conversation actors over the real log: races resolve in the actor, state survives
//! restarts and passivation, snapshots and full replay agree, queues are bounded.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use actors::{ActorConfig, ActorError, CommandError, Core, ExecuteOptions};
use domain::conversation::ActorFacts;
use domain::{
    Aggregate, CommandMeta, Conversation, ConversationCommand, ConversationEvent, ConversationId,
    ConversationRejection, InboxId, MessageId, OrgId, PhoneNumber, Role, UserId,
};
use eventlog::{Direction, EventStore, StreamName};
use proptest::prelude::*;
use testkit::actors::{quick_passivation, ActorWorld};

type Registry = actors::Registry<Conversation>;

fn member_facts() -> ActorFacts {
    ActorFacts {
        holds_our_number: false,
        inbox_member: true,
        admin: false,
        queue_reader: false,
    }
}

async fn start_inbox_conversation(reg: &Registry, org: OrgId) -> ConversationId {
    let our = PhoneNumber::parse("+15551230000").unwrap();
    let their = PhoneNumber::parse("+15559870000").unwrap();
    let id = ConversationId::external(org, &our, &their);
    let start = ConversationCommand::StartExternal {
        id,
        our,
        their,
        inbox: Some(InboxId::random()),
        facts: ActorFacts::default(),
    };
    reg.execute(
        &id,
        CommandMeta::system(org, 1).issue(start),
        ExecuteOptions::default(),
    )
    .await
    .expect("conversation started");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_assign_to_me_have_exactly_one_winner() {
    let world = ActorWorld::new(ActorConfig::default());
    let reg = world.conversations().clone();
    let org = OrgId::random();
    let id = start_inbox_conversation(&reg, org).await;
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let reg = reg.clone();
            let user = UserId::random();
            tokio::spawn(async move {
                let cmd = CommandMeta::user(org, user, Role::Member, 2).issue(
                    ConversationCommand::AssignToMe {
                        facts: member_facts(),
                    },
                );
                (user, reg.execute(&id, cmd, ExecuteOptions::default()).await)
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut holders = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (user, Ok(outcome)) => {
                assert!(outcome.position.is_some() && !outcome.events.is_empty());
                winners.push(user);
            }
            (_, Err(CommandError::Rejected(ConversationRejection::AlreadyAssigned { to }))) => {
                holders.push(to);
            }
            (_, Err(e)) => panic!("unexpected failure {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one Assign to Me wins");
    assert_eq!(holders.len(), 999);
    assert!(
        holders.iter().all(|h| *h == winners[0]),
        "every rejection names the holder"
    );
    let assignee = reg
        .query(&id, |c: &Conversation, _| c.assignee())
        .await
        .unwrap();
    assert_eq!(assignee, Some(winners[0]));
}

/// A channel with three members and a few commands, used by the restart tests.
async fn busy_channel(reg: &Registry, org: OrgId) -> (ConversationId, Vec<UserId>) {
    let users: Vec<UserId> = (0..3).map(|_| UserId::random()).collect();
    let known: BTreeSet<UserId> = users.iter().copied().collect();
    let id = ConversationId::random();
    let meta = |u: UserId, t: u64| CommandMeta::user(org, u, Role::Member, t);
    let start = ConversationCommand::StartChannel {
        id,
        name: "support".into(),
        members: known.clone(),
        known_users: known,
    };
    reg.execute(
        &id,
        meta(users[0], 1).issue(start),
        ExecuteOptions::default(),
    )
    .await
    .unwrap();
    for i in 0..20u64 {
        let post = ConversationCommand::PostMessage {
            message_id: MessageId::random(),
            text: format!("message {i} 👋"),
            attachments: Vec::new(),
            from: None,
            facts: ActorFacts::default(),
            opted_out: BTreeSet::new(),
        };
        let u = users[(i % 3) as usize];
        reg.execute(&id, meta(u, 10 + i).issue(post), ExecuteOptions::default())
            .await
            .unwrap();
    }
    let read = ConversationCommand::MarkRead {
        up_to: 15,
        facts: ActorFacts::default(),
    };
    reg.execute(
        &id,
        meta(users[1], 99).issue(read),
        ExecuteOptions::default(),
    )
    .await
    .unwrap();
    (id, users)
}

async fn state_of(reg: &Registry, id: ConversationId) -> (Conversation, Option<u64>) {
    reg.query(&id, |c: &Conversation, v| (c.clone(), v))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rehydration_after_restart_equals_the_state_before() {
    let mut world = ActorWorld::new(ActorConfig {
        snapshot_every: 7,
        ..ActorConfig::default()
    });
    let org = OrgId::random();
    let (id, users) = busy_channel(world.conversations(), org).await;
    let before = state_of(world.conversations(), id).await;
    assert_eq!(before.1, Some(21), "start + 20 posts + read receipt");
    assert_eq!(before.0.read_up_to(users[1]), 15);
    world.restart();
    assert_eq!(world.conversations().active(), 0);
    let after = state_of(world.conversations(), id).await;
    assert_eq!(after, before);
    // And it keeps working where it left off.
    let rename = ConversationCommand::RenameChannel {
        name: "help".into(),
    };
    let out = world
        .conversations()
        .execute(
            &id,
            CommandMeta::user(org, users[2], Role::Member, 200).issue(rename),
            ExecuteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(out.version, Some(22));
}

/// Many commands on one busy conversation at once: the actor decides them in order and
/// pipelines their appends. A second writer outside the actor (another `Core` on the same
/// stream) breaks the chain mid-burst: the appends decided on the stale state fail with a
/// version conflict, the actor reloads and retries them, and every command still lands
/// exactly once, with the replies' versions and positions those of the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_commands_land_once_in_order_even_with_a_foreign_writer() {
    let world = ActorWorld::new(ActorConfig::default());
    let reg = world.conversations().clone();
    let org = OrgId::random();
    let (id, users) = busy_channel(&reg, org).await;
    let store = world.log.store();
    let stream = StreamName::from_parts("conversation", id).unwrap();
    let post = |i: usize| ConversationCommand::PostMessage {
        message_id: MessageId::random(),
        text: format!("burst {i}"),
        attachments: Vec::new(),
        from: None,
        facts: ActorFacts::default(),
        opted_out: BTreeSet::new(),
    };
    let tasks: Vec<_> = (0..400)
        .map(|i| {
            let (reg, cmd) = (reg.clone(), post(i));
            let meta = CommandMeta::user(org, users[i % 3], Role::Member, 1_000 + i as u64);
            tokio::spawn(async move {
                reg.execute(&id, meta.issue(cmd), ExecuteOptions::default())
                    .await
            })
        })
        .collect();
    let mut foreign =
        Core::<Conversation>::load(store.clone(), stream.clone(), ActorConfig::default())
            .await
            .unwrap();
    let meta = CommandMeta::user(org, users[0], Role::Member, 5_000);
    loop {
        // The foreign core may itself be behind; `execute` catches up and retries.
        match foreign
            .execute(&meta.issue(post(9_999)), &ExecuteOptions::default())
            .await
        {
            Ok(_) => break,
            Err(CommandError::Actor(ActorError::Conflict)) => continue,
            Err(e) => panic!("foreign writer failed: {e}"),
        }
    }
    let mut replies = Vec::new();
    for t in tasks {
        let out = t.await.unwrap().expect("every command lands");
        assert_eq!(out.events.len(), 1);
        replies.push((out.version.unwrap(), out.position.unwrap()));
    }
    // If the foreign post came after the burst, the actor has not seen it yet; its next
    // command conflicts, catches up and lands.
    let last = CommandMeta::user(org, users[1], Role::Member, 6_000).issue(post(10_000));
    let out = reg
        .execute(&id, last, ExecuteOptions::default())
        .await
        .unwrap();
    assert_eq!(out.version, Some(22 + 400 + 1));
    let records = store
        .read_stream_blocking(&stream, 0, Direction::Forward, 100_000)
        .unwrap();
    assert_eq!(
        records.len() - 1,
        22 + 400 + 1,
        "start, 20 posts, a read, the burst, the foreign post"
    );
    for (version, position) in &replies {
        assert_eq!(
            records[usize::try_from(*version).unwrap()].position,
            *position,
            "reply names the log's event"
        );
    }
    let mut versions: Vec<u64> = replies.iter().map(|r| r.0).collect();
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(versions.len(), 400, "one version per command");
    let events: Vec<ConversationEvent> = records
        .iter()
        .map(|r| actors::event_codec::decode(r).unwrap())
        .collect();
    let (live, version) = state_of(&reg, id).await;
    assert_eq!(version, Some(records.len() as u64 - 1));
    assert_eq!(
        Conversation::replay(events.iter()),
        live,
        "the actor's state is the log's"
    );
}

/// A stale state's pipelined appends: the first fails because another writer's event took
/// its version; the second, decided on top of the first, expects the version that other
/// event now holds. It must fail too: it was decided for an assignee who never got the
/// conversation. (With versions alone it landed: "done by Yuri" while Xena held it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_decided_on_a_lost_append_never_lands() {
    let world = ActorWorld::new(ActorConfig::default());
    let reg = world.conversations().clone();
    let org = OrgId::random();
    let id = start_inbox_conversation(&reg, org).await;
    let store = world.log.store();
    let stream = StreamName::from_parts("conversation", id).unwrap();
    let load = || Core::<Conversation>::load(store.clone(), stream.clone(), ActorConfig::default());
    let (mut stale, mut foreign) = (load().await.unwrap(), load().await.unwrap());
    let (xena, yuri) = (UserId::random(), UserId::random());
    let as_user = |user| CommandMeta::user(org, user, Role::Member, 10);
    let assign = ConversationCommand::AssignToMe {
        facts: member_facts(),
    };
    foreign
        .execute(
            &as_user(xena).issue(assign.clone()),
            &ExecuteOptions::default(),
        )
        .await
        .expect("Xena takes it");
    let mut submit = |cmd: ConversationCommand| match stale
        .submit(&as_user(yuri).issue(cmd), &ExecuteOptions::default())
    {
        actors::Submitted::Appending { append, .. } => append,
        actors::Submitted::Done(r) => panic!("decided on the stale state: {r:?}"),
        actors::Submitted::NeedsKey => panic!("no text to seal"),
    };
    let take = submit(assign);
    let done = submit(ConversationCommand::MarkDone {
        facts: member_facts(),
    });
    for (what, append) in [("assign", take), ("done on top of it", done)] {
        let got = append.await;
        assert!(
            matches!(got, Err(eventlog::AppendError::WrongExpectedVersion { .. })),
            "{what}: {got:?}"
        );
    }
    let types: Vec<String> = store
        .read_stream_blocking(&stream, 0, Direction::Forward, 100)
        .unwrap()
        .into_iter()
        .map(|r| r.event_type)
        .collect();
    assert_eq!(
        types.last().map(String::as_str),
        Some("ConversationAssigned")
    );
    assert!(!types.iter().any(|t| t == "MarkedDone"), "{types:?}");
    // The actor, meanwhile, has not seen Xena's write: Yuri's command through it is decided
    // again against the log and refused by the domain, never answered with a conflict.
    let out = reg
        .execute(
            &id,
            as_user(yuri).issue(ConversationCommand::MarkDone {
                facts: member_facts(),
            }),
            ExecuteOptions::default(),
        )
        .await;
    assert!(
        matches!(
            out,
            Err(CommandError::Rejected(
                ConversationRejection::NotAssignedToYou
            ))
        ),
        "{out:?}"
    );
}

/// `execute_from`: the command is built from the state the actor holds, in the same
/// message; a declined build writes nothing; an actor not loaded yet loads first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_from_builds_the_command_from_the_state_it_decides_on() {
    let mut world = ActorWorld::new(ActorConfig::default());
    let org = OrgId::random();
    let (id, users) = busy_channel(world.conversations(), org).await;
    let stranger = UserId::random();
    // Posts as `author` if the state says they are a member; else declines with the
    // version the state is at.
    let post_as = |author: UserId, t: u64| {
        move |c: &Conversation| match c.audience_without_roles(author) {
            Some(true) => Ok(CommandMeta::user(org, author, Role::Member, t).issue(
                ConversationCommand::PostMessage {
                    message_id: MessageId::random(),
                    text: format!("from {author}"),
                    attachments: Vec::new(),
                    from: None,
                    facts: ActorFacts::default(),
                    opted_out: BTreeSet::new(),
                },
            )),
            _ => Err(c.read_up_to(author)),
        }
    };
    let stream = StreamName::from_parts("conversation", id).unwrap();
    let version = |store: Arc<dyn EventStore>| store.stream_version_blocking(&stream).unwrap();
    let before = version(world.log.store());

    let declined = world
        .conversations()
        .execute_from(&id, post_as(stranger, 300), ExecuteOptions::default())
        .await
        .expect("delivered");
    assert!(matches!(declined, Err(0)), "a stranger is declined");
    assert_eq!(
        version(world.log.store()),
        before,
        "a declined build writes nothing"
    );

    let posted = world
        .conversations()
        .execute_from(&id, post_as(users[1], 301), ExecuteOptions::default())
        .await
        .expect("delivered")
        .unwrap_or_else(|_| panic!("a member's post is built"));
    let at = posted.version.expect("written");
    assert_eq!(Some(at), version(world.log.store()));
    assert!(matches!(
        posted.events.as_slice(),
        [ConversationEvent::MessagePosted(m)] if m.author == users[1]
    ));

    // An actor not loaded yet: it loads, then builds on what it loaded.
    world.restart();
    assert_eq!(world.conversations().active(), 0);
    let posted = world
        .conversations()
        .execute_from(&id, post_as(users[2], 302), ExecuteOptions::default())
        .await
        .expect("delivered")
        .unwrap_or_else(|_| panic!("built after loading"));
    assert_eq!(posted.version, Some(at + 1));
    let declined = world
        .conversations()
        .execute_from(&id, post_as(stranger, 303), ExecuteOptions::default())
        .await
        .expect("delivered");
    assert!(declined.is_err());
    assert_eq!(version(world.log.store()), Some(at + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passivated_actor_rehydrates_to_the_same_state() {
    let world = ActorWorld::new(quick_passivation());
    let org = OrgId::random();
    let (id, _) = busy_channel(world.conversations(), org).await;
    let before = state_of(world.conversations(), id).await;
    let mut waited = Duration::ZERO;
    while world.conversations().active() > 0 && waited < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(25)).await;
        waited += Duration::from_millis(25);
    }
    assert_eq!(world.conversations().active(), 0, "idle actor passivated");
    assert_eq!(state_of(world.conversations(), id).await, before);
    assert_eq!(world.conversations().active(), 1, "rehydrated on demand");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_busy_and_runs_nothing_extra() {
    let world = ActorWorld::new(ActorConfig {
        mailbox_capacity: 4,
        ..ActorConfig::default()
    });
    let reg = world.conversations().clone();
    let org = OrgId::random();
    let (id, users) = busy_channel(&reg, org).await;
    let tasks: Vec<_> = (0..200u64)
        .map(|i| {
            let (reg, user) = (reg.clone(), users[0]);
            tokio::spawn(async move {
                let post = ConversationCommand::PostMessage {
                    message_id: MessageId::random(),
                    text: format!("burst {i}"),
                    attachments: Vec::new(),
                    from: None,
                    facts: ActorFacts::default(),
                    opted_out: BTreeSet::new(),
                };
                let cmd = CommandMeta::user(org, user, Role::Member, 1000 + i).issue(post);
                reg.execute(&id, cmd, ExecuteOptions::default()).await
            })
        })
        .collect();
    let (mut ok, mut busy) = (0u64, 0u64);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(CommandError::Actor(ActorError::Busy)) => busy += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(busy > 0, "a burst beyond the queue bound is refused");
    assert_eq!(ok + busy, 200);
    let (_, version) = state_of(&reg, id).await;
    assert_eq!(
        version,
        Some(21 + ok),
        "exactly the accepted posts were written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_writes_a_retried_command_once() {
    let world = ActorWorld::new(ActorConfig::default());
    let reg = world.conversations().clone();
    let org = OrgId::random();
    let (id, users) = busy_channel(&reg, org).await;
    let options = ExecuteOptions {
        idempotency_key: Some(uuid::Uuid::new_v4()),
        ..ExecuteOptions::default()
    };
    let post = |text: &str| {
        CommandMeta::user(org, users[0], Role::Member, 500).issue(
            ConversationCommand::PostMessage {
                message_id: MessageId::random(),
                text: text.into(),
                attachments: Vec::new(),
                from: None,
                facts: ActorFacts::default(),
                opted_out: BTreeSet::new(),
            },
        )
    };
    let first = reg
        .execute(&id, post("once"), options.clone())
        .await
        .unwrap();
    let retry = reg.execute(&id, post("once"), options).await.unwrap();
    assert!(!first.deduplicated && retry.deduplicated);
    assert_eq!(retry.position, Some(first.position.unwrap()));
    assert_eq!(
        state_of(&reg, id).await.1,
        first.version,
        "nothing written by the retry"
    );
}

// ---- snapshots vs full replay (property test over random command sequences) ----

#[derive(Debug, Clone)]
enum Step {
    Post { by: usize, text_len: usize },
    Read { by: usize, up_to: u64 },
    Rename { by: usize },
    Join { by: usize },
    Leave { by: usize },
    Snapshot,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (0usize..5, 0usize..40).prop_map(|(by, text_len)| Step::Post { by, text_len }),
        2 => (0usize..5, 0u64..30).prop_map(|(by, up_to)| Step::Read { by, up_to }),
        1 => (0usize..5).prop_map(|by| Step::Rename { by }),
        1 => (0usize..5).prop_map(|by| Step::Join { by }),
        1 => (0usize..5).prop_map(|by| Step::Leave { by }),
        1 => Just(Step::Snapshot),
    ]
}

async fn run_steps(steps: Vec<Step>, snapshot_every: u64) {
    let log = testkit::TempLog::new();
    let store: Arc<dyn EventStore> = log.store();
    let org = OrgId::random();
    let users: Vec<UserId> = (0..5).map(|_| UserId::random()).collect();
    let id = ConversationId::random();
    let stream = StreamName::from_parts("conversation", id).unwrap();
    let config = ActorConfig {
        snapshot_every,
        ..ActorConfig::default()
    };
    let mut core = Core::<Conversation>::load(store.clone(), stream.clone(), config.clone())
        .await
        .unwrap();
    let known: BTreeSet<UserId> = users.iter().copied().collect();
    let start = ConversationCommand::StartChannel {
        id,
        name: "c".into(),
        members: users[..2].iter().copied().collect(),
        known_users: known,
    };
    let meta = |u: usize, t: u64| CommandMeta::user(org, users[u], Role::Member, t);
    core.execute(&meta(0, 0).issue(start), &ExecuteOptions::default())
        .await
        .unwrap();
    for (t, s) in (1u64..).zip(steps) {
        let cmd = match s {
            Step::Post { by, text_len } => ConversationCommand::PostMessage {
                message_id: MessageId::random(),
                text: "x".repeat(text_len),
                attachments: Vec::new(),
                from: None,
                facts: ActorFacts::default(),
                opted_out: BTreeSet::new(),
            }
            .with_actor(by),
            Step::Read { by, up_to } => ConversationCommand::MarkRead {
                up_to,
                facts: ActorFacts::default(),
            }
            .with_actor(by),
            Step::Rename { by } => ConversationCommand::RenameChannel {
                name: format!("n{t}"),
            }
            .with_actor(by),
            Step::Join { by } => ConversationCommand::JoinChannel.with_actor(by),
            Step::Leave { by } => ConversationCommand::LeaveChannel.with_actor(by),
            Step::Snapshot => {
                core.snapshot_now().await.unwrap();
                continue;
            }
        };
        let (by, cmd) = cmd;
        // Rejections are part of the sequence: they must change nothing.
        let _ = core
            .execute(&meta(by, t).issue(cmd), &ExecuteOptions::default())
            .await;
    }
    let live = core.state.clone();
    let from_snapshot = Core::<Conversation>::load(store.clone(), stream.clone(), config)
        .await
        .unwrap();
    let records = store
        .read_stream_blocking(&stream, 0, Direction::Forward, 100_000)
        .unwrap();
    let events: Vec<ConversationEvent> = records
        .iter()
        .map(|r| actors::event_codec::decode(r).unwrap())
        .collect();
    let replayed = Conversation::replay(events.iter());
    assert_eq!(
        from_snapshot.state, live,
        "snapshot + tail equals the live state"
    );
    assert_eq!(replayed, live, "full replay equals the live state");
    assert_eq!(from_snapshot.version, core.version);
}

trait WithActor: Sized {
    fn with_actor(self, by: usize) -> (usize, Self) {
        (by, self)
    }
}
impl WithActor for ConversationCommand {}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn snapshots_and_full_replay_give_the_same_state(
        steps in proptest::collection::vec(step(), 1..60),
        snapshot_every in prop_oneof![Just(0u64), 1u64..8],
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(run_steps(steps, snapshot_every));
    }
}
