//! The real gateway, served over TCP on `127.0.0.1:0`, for end-to-end tests.

use std::sync::Arc;

use actors::{ActorConfig, ActorRuntime, Workspace};

use crate::TempLog;

/// A running server; stops when dropped.
pub struct TestServer {
    pub base: String,
    pub log: TempLog,
    pub ws: Workspace,
    pub interactions: projections::LiveInteractions,
    /// The search read model (served at `/v1/search`).
    pub search: projections::LiveSearch,
    /// The queue views (served at `/v1/queue-views/{tab}`).
    pub queues: projections::LiveQueues,
    /// With [`TestServer::start_with_carrier`]: the carrier edge and the followers
    /// (inbound routing, queue timeline, webhooks, the outbox, the attachment index).
    pub edge: Option<gateway::carriers::CarrierEdge>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_inner::<fn(&mut gateway::carriers::CarrierSetup)>(None, |s| s).await
    }

    /// A server without a carrier whose state `tweak` adjusts (sign-up policy, limits).
    pub async fn start_with_state(
        tweak: impl FnOnce(gateway::AppState) -> gateway::AppState,
    ) -> Self {
        Self::start_inner::<fn(&mut gateway::carriers::CarrierSetup)>(None, tweak).await
    }

    /// A server with a carrier edge over `kind` (its public URL is the server's own base)
    /// and the inbound router running, so texts flow end to end; `tweak` adjusts the
    /// setup (backoff, grace period, help text).
    pub async fn start_with_carrier(
        kind: gateway::carriers::CarrierKind,
        tweak: impl FnOnce(&mut gateway::carriers::CarrierSetup),
    ) -> Self {
        Self::start_inner(Some((kind, tweak)), |s| s).await
    }

    /// As [`TestServer::start_with_carrier`], with its state adjusted by `tweak_state`
    /// (e.g. its webhook settings, which the notifications follow too).
    pub async fn start_with_carrier_and_state(
        kind: gateway::carriers::CarrierKind,
        tweak: impl FnOnce(&mut gateway::carriers::CarrierSetup),
        tweak_state: impl FnOnce(gateway::AppState) -> gateway::AppState,
    ) -> Self {
        Self::start_inner(Some((kind, tweak)), tweak_state).await
    }

    async fn start_inner<F: FnOnce(&mut gateway::carriers::CarrierSetup)>(
        carrier: Option<(gateway::carriers::CarrierKind, F)>,
        tweak_state: impl FnOnce(gateway::AppState) -> gateway::AppState,
    ) -> Self {
        let log = TempLog::sealed();
        let runtime = Arc::new(ActorRuntime::start(2).expect("actor runtime"));
        let ws = Workspace::new(log.store(), runtime, ActorConfig::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let interactions =
            projections::LiveInteractions::start(&log.dir().join("readmodels"), ws.store.clone())
                .expect("interactions read model");
        let search =
            projections::LiveSearch::start(&log.dir().join("readmodels"), ws.store.clone())
                .expect("search read model");
        let queues =
            projections::LiveQueues::start(&log.dir().join("readmodels"), ws.store.clone())
                .expect("queue views read model");
        let mut state = gateway::AppState::new(ws.clone(), queues.clone(), interactions.clone())
            .with_search(search.clone())
            .with_webhooks(test_webhooks())
            // Tests create an organization per tenant they need.
            .with_signups(gateway::routes::bootstrap::Signups {
                open: true,
                operator_token: None,
            });
        let mut opened = None;
        if let Some((kind, tweak)) = carrier {
            let mut setup = gateway::carriers::CarrierSetup::new(kind, log.dir(), &base);
            tweak(&mut setup);
            let carriers = gateway::carriers::CarrierEdge::open(&setup).expect("carrier edge");
            state = state.with_carriers(carriers.clone());
            opened = Some((carriers, setup));
        }
        let state = tweak_state(state);
        // With a carrier, the followers a single server runs, through the workers' start
        // points, with the webhook settings `tweak_state` left (quick retries by default);
        // not the queue timers nor retention (tests drive those with their own clocks).
        let edge = opened.map(|(carriers, setup)| {
            let mut followers = workers::start::every_node(&ws, carriers.blobs.clone());
            followers.join(workers::start::leader(
                &ws,
                workers::start::Leader {
                    webhooks: state.webhooks.clone(),
                    queue_timers: None,
                    retention: None,
                    outbox: Some(carriers.outbox_setup(&setup)),
                    clock: Arc::new(actors::clock::SystemClock),
                },
            ));
            gateway::carriers::CarrierEdge {
                state: carriers,
                followers,
            }
        });
        let app = gateway::router(state);
        let task = tokio::spawn(async move {
            let app = app.into_make_service_with_connect_info::<gateway::peer::Peer>();
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base,
            log,
            ws,
            interactions,
            search,
            queues,
            edge,
            task,
        }
    }

    /// Waits until every follower of this server (inbound routing, the queue timeline,
    /// webhooks, the outbox, the attachment index) has handled everything committed so
    /// far, as they publish it: what a test checks next is what they did, or that they did
    /// nothing. Panics after a minute (a follower stopped).
    pub async fn settled(&self) {
        tokio::time::timeout(
            std::time::Duration::from_secs(60),
            self.ws.progress.settled(&*self.ws.store),
        )
        .await
        .unwrap_or_else(|_| panic!("the followers did not settle: {:?}", self.ws.progress));
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(edge) = &self.edge {
            edge.abort();
        }
        // `close` returns once the read models' threads have ended: a test process that
        // exits while one still writes can abort in RocksDB's teardown ("pthread lock:
        // Invalid argument").
        self.interactions.close();
        self.search.close();
        self.queues.close();
    }
}

/// Webhooks in tests: receivers on loopback, and quick retries.
pub fn test_webhooks() -> workers::webhooks::WebhookConfig {
    workers::webhooks::WebhookConfig {
        allow_private: true,
        retry_after: vec![std::time::Duration::from_millis(50); 3],
    }
}

/// The password every test user gets.
pub const PASSWORD: &str = "correct horse battery staple";

/// Sends a request; its status and JSON body (`Null` when there is none).
pub async fn call(r: reqwest::RequestBuilder) -> (reqwest::StatusCode, serde_json::Value) {
    let r = r.send().await.expect("request sent");
    let status = r.status();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// The `conversation_id`s of a page's `items` (a list or search answer), in order.
pub fn conversation_ids(v: &serde_json::Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["conversation_id"].as_str().unwrap().to_owned())
        .collect()
}

/// An admin adds a member with a login, who then logs in: (user id, token).
pub async fn add_user(
    c: &reqwest::Client,
    s: &TestServer,
    admin: &str,
    email: &str,
    extension: &str,
) -> (String, String) {
    let (status, v) = call(c.post(s.url("/v1/users")).bearer_auth(admin).json(&serde_json::json!({
        "name": email, "extension": extension, "role": "Member", "email": email, "password": PASSWORD,
    })))
    .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{v}");
    let (status, login) = call(
        c.post(s.url("/v1/sessions"))
            .json(&serde_json::json!({ "email": email, "password": PASSWORD })),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{login}");
    (
        v["user_id"].as_str().expect("user id").to_owned(),
        login["token"].as_str().expect("token").to_owned(),
    )
}

/// A customer's text as the carrier hands it over (`inbound-<org>`), appended to the log;
/// returns the stored event for `inbound_router::route`.
pub async fn customer_text(
    s: &TestServer,
    org: domain::OrgId,
    to: &str,
    from: &str,
    text: &str,
) -> eventlog::RecordedEvent {
    use domain::inbound::{InboundEvent, SmsArrived};
    let from = domain::PhoneNumber::parse(from).expect("valid number");
    let key = domain::TextKey::new(org, vec![from.clone()], 1);
    let mut e = InboundEvent::SmsArrived(SmsArrived {
        org,
        to: domain::PhoneNumber::parse(to).expect("valid number"),
        from,
        text: domain::Text::new(text, key),
        media: Vec::new(),
        carrier_message_id: uuid::Uuid::new_v4().to_string(),
        at_ms: 1,
    });
    s.ws.sealer.seal_event(&mut e).await.expect("sealed");
    let data =
        actors::event_codec::encode(&e, uuid::Uuid::new_v4(), Default::default()).expect("encodes");
    let stream = eventlog::StreamName::from_parts("inbound", org).expect("stream");
    let r =
        s.ws.store
            .append(stream, eventlog::ExpectedVersion::Any, vec![data])
            .await
            .expect("appended");
    s.ws.store
        .read_all_blocking(r.first_position, 1)
        .expect("read back")
        .remove(0)
}
