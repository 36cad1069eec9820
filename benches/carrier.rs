//! Texts through carriers, against a fake Twilio on loopback (`testkit::fake_twilio`).
//!
//! Prints `BENCH` lines (medians over `--rounds`):
//! - `carrier.raw.calls_per_s`: the baseline, `TwilioCarrier::send` straight to the fake,
//!   `--concurrency` calls at once;
//! - `carrier.outbound.texts_per_s`: texts posted in External conversations until each one's
//!   `Queued` (with the carrier's id) is recorded: the post's append, the outbox's prepare,
//!   the carrier call, the acceptance, the link and the delivery record, through the same
//!   adapter and fake, at most `--concurrency` carrier calls at once;
//! - `carrier.outbound.ratio_to_raw`: the two above, measured in the same run;
//! - `carrier.inbound.webhooks_per_s`: signed Twilio inbound webhooks accepted (200, the
//!   `SmsArrived` durable) by the gateway, `--concurrency` clients at once.
//!
//! `cargo bench --bench carrier -- --texts 2000 --webhooks 3000 --concurrency 32 --rounds 3`

use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::{ActorConfig, ActorRuntime, ExecuteOptions, Workspace};
use benchkit::{bench_line, median, Args, ToF64};
use carrier::{Carrier, OutboundSms};
use domain::conversation::{ActorFacts, DeliveryStatus};
use domain::directory::Routing;
use domain::{
    CommandMeta, ConversationCommand, ConversationEvent, ConversationId, DirectoryCommand,
    MessageId, OrgId, PhoneNumber, Role, UserId,
};
use eventlog::{EventStore, LogOptions, RocksLog, StartFrom, Subscription, SubscriptionTarget};
use gateway::carriers::{CarrierEdge, CarrierKind, CarrierSetup};
use testkit::fake_twilio::FakeTwilio;
use tokio::task::JoinSet;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const OUR: &str = "+15550100100";
/// Customers' conversations the texts are spread over (each one's actor takes one at once).
const CONVERSATIONS: usize = 64;

fn customer(i: usize) -> PhoneNumber {
    PhoneNumber::parse(&format!("+1555{:07}", 2_000_000 + i)).expect("number")
}

/// An organization whose admin holds an SMS-registered number (claimed, so inbound texts
/// find it), with `CONVERSATIONS` External conversations.
async fn setup(ws: &Workspace, org: OrgId, admin: UserId) -> Vec<ConversationId> {
    let our = PhoneNumber::parse(OUR).expect("number");
    let sys = CommandMeta::system(org, 1);
    let create = sys.issue(DirectoryCommand::CreateOrganization {
        name: "Bench".into(),
        first_admin: admin,
        first_admin_name: "Ada".into(),
        first_admin_extension: "100".parse().expect("extension"),
    });
    ws.directories
        .execute(&org, create, ExecuteOptions::default())
        .await
        .expect("organization");
    let admin_meta = CommandMeta::user(org, admin, Role::Admin, 2);
    for cmd in [
        DirectoryCommand::AddNumber {
            number: our.clone(),
            route: Routing::User(admin),
            destination_exists: true,
        },
        DirectoryCommand::SetSmsRegistration {
            number: our.clone(),
            registered: true,
        },
    ] {
        ws.directories
            .execute(&org, admin_meta.issue(cmd), ExecuteOptions::default())
            .await
            .expect("number");
    }
    gateway::routes::numbers::claim(&ws.store, &our, org)
        .await
        .expect("claim");
    let mut ids = Vec::new();
    for i in 0..CONVERSATIONS {
        let their = customer(i);
        let id = ConversationId::external(org, &our, &their);
        let start = admin_meta.issue(ConversationCommand::StartExternal {
            id,
            our: our.clone(),
            their,
            inbox: None,
            facts: ActorFacts {
                holds_our_number: true,
                inbox_member: false,
                admin: false,
                queue_reader: false,
            },
        });
        ws.conversations
            .execute(&id, start, ExecuteOptions::default())
            .await
            .expect("conversation");
        ids.push(id);
    }
    ids
}

/// Raw carrier calls per second.
async fn raw_round(carrier: Arc<dyn Carrier>, calls: usize, concurrency: usize) -> f64 {
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for w in 0..concurrency {
        let carrier = carrier.clone();
        tasks.spawn(async move {
            let mut i = w;
            while i < calls {
                let sms = OutboundSms {
                    idempotency_key: format!("raw-{i}"),
                    from: OUR.into(),
                    to: customer(i % CONVERSATIONS).to_string(),
                    body: "raw".into(),
                    media: vec![],
                    status_callback: Some("http://127.0.0.1:9/status".into()),
                };
                carrier.send(sms).await.expect("fake accepts");
                i += concurrency;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    calls.to_f64() / started.elapsed().as_secs_f64()
}

/// Texts per second through the outbox, posted `concurrency` at a time.
async fn outbox_round(
    ws: &Workspace,
    org: OrgId,
    admin: UserId,
    conversations: &[ConversationId],
    texts: usize,
    concurrency: usize,
) -> f64 {
    let from = ws.store.next_position();
    let started = Instant::now();
    let mut posters = JoinSet::new();
    for w in 0..concurrency {
        let (ws, conversations) = (ws.clone(), conversations.to_vec());
        posters.spawn(async move {
            let mut i = w;
            while i < texts {
                let id = conversations[i % conversations.len()];
                let post = CommandMeta::user(org, admin, Role::Admin, 3).issue(
                    ConversationCommand::PostMessage {
                        message_id: MessageId::random(),
                        text: format!("text {i}"),
                        attachments: vec![],
                        from: Some(domain::conversation::SenderNumber {
                            number: PhoneNumber::parse(OUR).expect("number"),
                            sms_registered: true,
                            assigned_to_sender: true,
                        }),
                        facts: ActorFacts {
                            holds_our_number: true,
                            inbox_member: false,
                            admin: false,
                            queue_reader: false,
                        },
                        opted_out: Default::default(),
                    },
                );
                match ws
                    .conversations
                    .execute(&id, post, ExecuteOptions::default())
                    .await
                {
                    Ok(_) => i += concurrency,
                    // A conversation's actor bounds its queue; come back shortly.
                    Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
                }
            }
        });
    }
    let mut sub = Subscription::new(
        ws.store.clone(),
        SubscriptionTarget::Category("conversation".into()),
        StartFrom::After(from.saturating_sub(1)),
    )
    .expect("subscription");
    let mut queued = 0;
    while queued < texts {
        let record = sub.next().await.expect("event");
        if record.position < from || record.event_type != "DeliveryUpdated" {
            continue;
        }
        if let Ok(ConversationEvent::DeliveryUpdated(d)) =
            actors::event_codec::decode::<ConversationEvent>(&record)
        {
            if d.status == DeliveryStatus::Queued {
                queued += 1;
            }
        }
    }
    while posters.join_next().await.is_some() {}
    texts.to_f64() / started.elapsed().as_secs_f64()
}

/// Inbound webhooks accepted per second.
async fn inbound_round(
    fake: &Arc<FakeTwilio>,
    base: &str,
    webhooks: usize,
    concurrency: usize,
    round: usize,
) -> f64 {
    let url = format!("{base}/v1/carriers/twilio/inbound");
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for w in 0..concurrency {
        let (fake, url) = (fake.clone(), url.clone());
        tasks.spawn(async move {
            let mut i = w;
            while i < webhooks {
                let sid = format!("SMbench{round:04}{i:020}");
                let params = FakeTwilio::inbound_params(
                    &sid,
                    customer(i % CONVERSATIONS).as_str(),
                    OUR,
                    "hello from a customer",
                    &[],
                );
                let r = fake.post_signed(&url, &params, None).await;
                assert_eq!(r.status(), reqwest::StatusCode::OK);
                i += concurrency;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    webhooks.to_f64() / started.elapsed().as_secs_f64()
}

fn main() {
    let args = Args::parse();
    let texts: usize = args.get("texts", 2_000);
    let webhooks: usize = args.get("webhooks", 3_000);
    let concurrency: usize = args.get("concurrency", 32);
    let rounds: usize = args.get("rounds", 3);

    let dir = tempfile::tempdir().expect("temp dir");
    let log = RocksLog::open(dir.path().join("log"), LogOptions::default()).expect("log");
    let store: Arc<dyn EventStore> = Arc::new(log.clone());
    let runtime = Arc::new(ActorRuntime::per_core().expect("actor runtime"));
    let ws = Workspace::new(store.clone(), runtime.clone(), ActorConfig::default());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    rt.block_on(async {
        let fake = Arc::new(FakeTwilio::start().await);
        let (org, admin) = (OrgId::random(), UserId::random());
        let conversations = setup(&ws, org, admin).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let mut carrier_setup =
            CarrierSetup::new(CarrierKind::Twilio(fake.carrier()), dir.path(), &base);
        carrier_setup.max_in_flight = concurrency;
        let edge = CarrierEdge::start(
            &ws,
            carrier_setup,
            workers::webhooks::WebhookConfig::default(),
        )
        .expect("carrier edge");
        let queues =
            projections::LiveQueues::start(&dir.path().join("readmodels"), store.clone())
                .expect("queue views");
        let interactions =
            projections::LiveInteractions::start(&dir.path().join("readmodels"), store.clone())
                .expect("read model");
        let app = gateway::router(
            gateway::AppState::new(ws.clone(), queues, interactions.clone())
                .with_carriers(edge.state.clone()),
        );
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let raw_carrier: Arc<dyn Carrier> = Arc::new(fake.carrier());

        // Warm-up: connections, actors.
        raw_round(raw_carrier.clone(), 200, concurrency).await;
        outbox_round(&ws, org, admin, &conversations, 200, concurrency).await;

        let (mut raw, mut outbox, mut ratios, mut inbound) = (vec![], vec![], vec![], vec![]);
        for round in 0..rounds {
            let r = raw_round(raw_carrier.clone(), texts, concurrency).await;
            let o = outbox_round(&ws, org, admin, &conversations, texts, concurrency).await;
            let i = inbound_round(&fake, &base, webhooks, concurrency, round).await;
            println!(
                "# round {round}: raw {r:.0} calls/s, outbox {o:.0} texts/s ({:.3}), inbound {i:.0} webhooks/s",
                o / r
            );
            raw.push(r);
            outbox.push(o);
            ratios.push(o / r);
            inbound.push(i);
        }
        bench_line("carrier.raw.calls_per_s", median(raw), "calls/s");
        bench_line("carrier.outbound.texts_per_s", median(outbox), "texts/s");
        bench_line("carrier.outbound.ratio_to_raw", median(ratios), "ratio");
        bench_line("carrier.inbound.webhooks_per_s", median(inbound), "webhooks/s");
        edge.abort();
        server.abort();
        interactions.close();
    });
    runtime.shutdown();
    log.shutdown();
}
