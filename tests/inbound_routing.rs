//! The inbound router (a process manager driven by the log): texts to a number reach the
//! External conversation its routing names, and a crash between effect and checkpoint
//! leaves exactly one effect after restart.

use std::time::Duration;

use actors::{ActorConfig, ActorRuntime, ExecuteOptions, Workspace};
use domain::directory::{Extension, Routing};
use domain::inbound::{InboundEvent, SmsArrived};
use domain::{
    CommandMeta, Conversation, ConversationId, DirectoryCommand, InboxId, OrgId, PhoneNumber,
    UserId,
};
use eventlog::{ExpectedVersion, StreamName};
use std::sync::Arc;
use testkit::TempLog;
use workers::inbound_router::{self, Routed};

fn number(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).unwrap()
}

struct World {
    log: TempLog,
    ws: Option<Workspace>,
}

impl World {
    fn start(log: TempLog) -> Self {
        let runtime = Arc::new(ActorRuntime::start(2).unwrap());
        let ws = Workspace::new(log.store(), runtime, ActorConfig::default());
        Self { log, ws: Some(ws) }
    }

    fn ws(&self) -> &Workspace {
        self.ws.as_ref().unwrap()
    }

    fn restart(mut self) -> Self {
        if let Some(ws) = self.ws.take() {
            ws.runtime.shutdown();
        }
        let mut log = self.log;
        log.reopen();
        World::start(log)
    }
}

/// An organization whose `+15550000001` routes to a user and `+15550000002` to an inbox.
async fn organization(ws: &Workspace) -> (OrgId, InboxId) {
    let org = OrgId::random();
    let admin = UserId::random();
    let inbox = InboxId::random();
    let sys = CommandMeta::system(org, 1);
    let cmds = vec![
        DirectoryCommand::CreateOrganization {
            name: "Acme".into(),
            first_admin: admin,
            first_admin_name: "Ada".into(),
            first_admin_extension: Extension::parse("100").unwrap(),
        },
        DirectoryCommand::AddNumber {
            number: number("+15550000001"),
            route: Routing::User(admin),
            destination_exists: true,
        },
        DirectoryCommand::AddNumber {
            number: number("+15550000002"),
            route: Routing::Inbox(inbox),
            destination_exists: true,
        },
    ];
    for c in cmds {
        ws.directories
            .execute(&org, sys.issue(c), ExecuteOptions::default())
            .await
            .expect("directory command");
    }
    (org, inbox)
}

async fn arrive(
    ws: &Workspace,
    org: OrgId,
    to: &str,
    from: &str,
    text: &str,
) -> eventlog::RecordedEvent {
    let e = InboundEvent::SmsArrived(SmsArrived {
        org,
        to: number(to),
        from: number(from),
        text: domain::Text::unsealed(text),
        media: Vec::new(),
        carrier_message_id: format!("SM{text}"),
        at_ms: 10,
    });
    let data = actors::event_codec::encode(&e, uuid::Uuid::new_v4(), Default::default()).unwrap();
    let stream = StreamName::from_parts("inbound", org).unwrap();
    let r = ws
        .store
        .append(stream, ExpectedVersion::Any, vec![data])
        .await
        .unwrap();
    ws.store
        .read_all_blocking(r.first_position, 1)
        .unwrap()
        .remove(0)
}

async fn inbound_texts(ws: &Workspace, id: ConversationId) -> (u64, Option<InboxId>) {
    ws.conversations
        .query(&id, |c: &Conversation, _| {
            (c.last_seq(), c.inbox().map(|a| a.inbox))
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn texts_follow_the_numbers_routing_and_reprocessing_has_no_effect() {
    let world = World::start(TempLog::new());
    let ws = world.ws();
    let (org, inbox) = organization(ws).await;

    let personal = arrive(ws, org, "+15550000001", "+15559990001", "hi").await;
    let to_inbox = arrive(ws, org, "+15550000002", "+15559990001", "help").await;
    let stranger = arrive(ws, org, "+15550000099", "+15559990001", "who").await;

    let a = inbound_router::route(ws, &personal).await.unwrap();
    let b = inbound_router::route(ws, &to_inbox).await.unwrap();
    assert_eq!(
        inbound_router::route(ws, &stranger).await.unwrap(),
        Routed::UnknownNumber
    );
    let Routed::Recorded(a) = a else {
        panic!("{a:?}")
    };
    let Routed::Recorded(b) = b else {
        panic!("{b:?}")
    };
    assert_eq!(
        a,
        ConversationId::external(org, &number("+15550000001"), &number("+15559990001"))
    );
    assert_eq!(inbound_texts(ws, a).await, (1, None));
    assert_eq!(
        inbound_texts(ws, b).await,
        (1, Some(inbox)),
        "inbox number → inbox conversation"
    );

    // Seen again (a crash before the checkpoint moved): no second effect.
    let version_before = ws
        .store
        .stream_version_blocking(&StreamName::from_parts("conversation", b).unwrap())
        .unwrap();
    inbound_router::route(ws, &to_inbox).await.unwrap();
    assert_eq!(inbound_texts(ws, b).await, (1, Some(inbox)));
    let version_after = ws
        .store
        .stream_version_blocking(&StreamName::from_parts("conversation", b).unwrap())
        .unwrap();
    assert_eq!(
        version_before, version_after,
        "nothing written the second time"
    );

    // A second text from the same customer continues the same conversation.
    let again = arrive(ws, org, "+15550000002", "+15559990001", "still there?").await;
    assert_eq!(
        inbound_router::route(ws, &again).await.unwrap(),
        Routed::Recorded(b)
    );
    assert_eq!(inbound_texts(ws, b).await.0, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_router_completes_flows_exactly_once_across_restarts() {
    let world = World::start(TempLog::new());
    let (org, _) = organization(world.ws()).await;
    let router = tokio::spawn(inbound_router::run(world.ws().clone()));
    for i in 0..5 {
        arrive(
            world.ws(),
            org,
            "+15550000002",
            &format!("+1555888000{i}"),
            "hello",
        )
        .await;
    }
    let first = ConversationId::external(org, &number("+15550000002"), &number("+15558880004"));
    let mut waited = 0;
    while inbound_texts(world.ws(), first).await.0 < 1 && waited < 200 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        waited += 1;
    }
    assert_eq!(inbound_texts(world.ws(), first).await.0, 1);
    // Crash with the checkpoint behind the effects: pretend only the first text was done.
    let store = world.ws().store.clone();
    let earliest = store.read_category_blocking("inbound", 0, 1).unwrap()[0].position;
    router.abort();
    store
        .write_checkpoint_blocking(inbound_router::CHECKPOINT, earliest)
        .unwrap();
    drop(store);
    let _ = router.await;
    let world = world.restart();
    let router = tokio::spawn(inbound_router::run(world.ws().clone()));
    // A text arriving after the restart is routed too, after the replayed ones.
    arrive(world.ws(), org, "+15550000002", "+15558880009", "later").await;
    let late = ConversationId::external(org, &number("+15550000002"), &number("+15558880009"));
    let mut waited = 0;
    while inbound_texts(world.ws(), late).await.0 < 1 && waited < 200 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        waited += 1;
    }
    for i in 0..5 {
        let id = ConversationId::external(
            org,
            &number("+15550000002"),
            &number(&format!("+1555888000{i}")),
        );
        assert_eq!(
            inbound_texts(world.ws(), id).await.0,
            1,
            "exactly one text in conversation {i}"
        );
    }
    assert_eq!(inbound_texts(world.ws(), late).await.0, 1);
    // An idle router saves its checkpoint once `driver::SAVE_INTERVAL` is up (waited for
    // here for up to a minute, so a loaded machine cannot fail it).
    let saved = async || {
        world
            .ws()
            .store
            .read_checkpoint_blocking(inbound_router::CHECKPOINT)
            .unwrap()
    };
    let mut waited = 0;
    while saved().await <= Some(earliest) && waited < 2_400 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        waited += 1;
    }
    assert!(saved().await > Some(earliest), "checkpoint moved on");
    router.abort();
}
