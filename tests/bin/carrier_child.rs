//! Child process of `tests/carrier_crash.rs`: a server (gateway, inbound router, carrier
//! edge with the Twilio adapter) over a data directory, running until killed.
//!
//! Usage: `carrier-child <data-dir> <twilio-base-url> <account-sid> <auth-token>
//! <unconfirmed-grace-ms>`. Prints `READY <base url>` once it serves; its public URL is
//! that base. Then answers each `settle` on stdin with `SETTLED` once its followers have
//! handled the log (`testkit::child`).

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use actors::{ActorConfig, ActorRuntime, Workspace};
use eventlog::{EventStore, LogOptions, RocksLog};
use gateway::carriers::{CarrierEdge, CarrierKind, CarrierSetup};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, base_url, account_sid, auth_token, grace_ms] = args.as_slice() else {
        panic!("usage: carrier-child <data-dir> <twilio-base-url> <account-sid> <auth-token> <grace-ms>");
    };
    let dir = std::path::PathBuf::from(dir);
    let store: Arc<dyn EventStore> =
        Arc::new(RocksLog::open(dir.join("log"), LogOptions::default()).expect("open log"));
    let runtime = Arc::new(ActorRuntime::start(2).expect("actor runtime"));
    let ws = Workspace::new(store.clone(), runtime, ActorConfig::default());
    let twilio = carrier::twilio::TwilioCarrier::new(carrier::twilio::TwilioConfig {
        base_url: base_url.clone(),
        account_sid: account_sid.clone(),
        auth_token: auth_token.clone(),
        request_timeout: Duration::from_secs(30),
        extra_roots_pem: None,
    })
    .expect("twilio config");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let mut setup = CarrierSetup::new(CarrierKind::Twilio(twilio), &dir, &base);
        setup.unconfirmed_grace = Duration::from_millis(grace_ms.parse().expect("grace ms"));
        // The outbox, inbound routing and the rest of a single server's followers.
        let edge = CarrierEdge::start(&ws, setup, workers::webhooks::WebhookConfig::default())
            .expect("carrier edge");
        let queues = projections::LiveQueues::start(&dir.join("readmodels"), store.clone())
            .expect("queue views read model");
        let interactions =
            projections::LiveInteractions::start(&dir.join("readmodels"), store.clone())
                .expect("interactions read model");
        testkit::child::answer_settle_requests(ws.clone(), tokio::runtime::Handle::current());
        let app = gateway::router(
            gateway::AppState::new(ws, queues, interactions).with_carriers(edge.state.clone()),
        );
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "READY {base}");
        let _ = out.flush();
        drop(out);
        let _ = axum::serve(listener, app).await;
    });
}
