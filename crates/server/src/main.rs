//! `switchboard`: the server binary.
//!
//! `switchboard serve` opens the event log in the data directory (embedded RocksDB, no
//! other service needed), starts the actors (actix on threads of their own) and the process
//! managers (inbound router, SMS-queue timers and timeline, queue views, the outbox and
//! carrier status over the chosen carrier: the embedded simulator by default, or a
//! Twilio-compatible API with `--carrier twilio`), serves HTTP on
//! the listen address, and on Ctrl-C / SIGTERM stops taking requests, stops the actors,
//! waits for in-flight appends to become durable, and exits. HTTP is the gateway crate's
//! router.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use actors::clock::SystemClock;
use actors::process::{inbound_router, queue_timeline, queue_timers};
use actors::{ActorConfig, ActorRuntime, Workspace};
use anyhow::Context;
use clap::{Parser, Subcommand};
use eventlog::{EventStore, LogOptions, RocksLog};
use gateway::carriers::{CarrierEdge, CarrierKind, CarrierSetup};

/// The event log allocates a few small buffers per event read or written; glibc's malloc
/// spends more time on them than the log does (measured with `cargo bench --bench log_read`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Switchboard business-messaging backend"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server with an embedded data directory.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Data directory (created if missing).
    #[arg(long, default_value = "./data", env = "SWITCHBOARD_DATA_DIR")]
    data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "SWITCHBOARD_LISTEN")]
    listen: SocketAddr,
    #[command(flatten)]
    carrier: CarrierArgs,
    /// A bearer token Prometheus may scrape `/metrics` with (admins' sessions work too).
    #[arg(long, env = "SWITCHBOARD_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// How long a login lasts, in seconds (12 hours by default); its streams close
    /// when it ends.
    #[arg(long, default_value_t = 12 * 60 * 60, env = "SWITCHBOARD_SESSION_TTL_S")]
    session_ttl_s: u64,
    /// Let admins register `http` webhook endpoints and ones on loopback, private or
    /// link-local addresses (local setups; off by default).
    #[arg(long, env = "SWITCHBOARD_ALLOW_PRIVATE_WEBHOOKS")]
    allow_private_webhooks: bool,
    /// Let anyone create an organization with `POST /v1/bootstrap` (by default only the
    /// server's first one can be created that way).
    #[arg(long, env = "SWITCHBOARD_ALLOW_SIGNUPS")]
    allow_signups: bool,
    /// A bearer token with which the operator creates further organizations
    /// (`POST /v1/bootstrap` with `Authorization: Bearer <token>`).
    #[arg(long, env = "SWITCHBOARD_OPERATOR_TOKEN", hide_env_values = true)]
    operator_token: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum CarrierChoice {
    /// The embedded simulator: text as a customer with `POST /v1/simulator/inbound`.
    Simulator,
    /// A Twilio-compatible REST API (and its webhooks, signed with the auth token).
    Twilio,
}

#[derive(clap::Args, Debug)]
struct CarrierArgs {
    /// Which carrier texts go through.
    #[arg(
        long,
        value_enum,
        default_value = "simulator",
        env = "SWITCHBOARD_CARRIER"
    )]
    carrier: CarrierChoice,
    /// Base URL of the Twilio-compatible API.
    #[arg(long, default_value = carrier::twilio::DEFAULT_BASE_URL, env = "TWILIO_BASE_URL")]
    twilio_base_url: String,
    /// Extra trusted root certificate(s) for the Twilio-compatible API, a PEM file
    /// (besides the Mozilla roots built into the binary).
    #[arg(long, env = "TWILIO_CA_FILE")]
    twilio_ca_file: Option<PathBuf>,
    #[arg(long, env = "TWILIO_ACCOUNT_SID")]
    twilio_account_sid: Option<String>,
    /// Basic-auth password of the API and key of the webhook signatures.
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
    twilio_auth_token: Option<String>,
    /// This server's URL as the carrier reaches it (webhook signatures are checked against
    /// it; status callbacks and MMS media URLs are built on it). Default: http://<listen>.
    #[arg(long, env = "SWITCHBOARD_PUBLIC_URL")]
    public_url: Option<String>,
    /// The reply to a customer's HELP; none is sent without it.
    #[arg(long, env = "SWITCHBOARD_HELP_TEXT")]
    help_text: Option<String>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Serve(args) => serve(args),
    }
}

fn carrier_setup(
    args: CarrierArgs,
    data_dir: &std::path::Path,
    public_url: &str,
) -> anyhow::Result<CarrierSetup> {
    let kind = match args.carrier {
        CarrierChoice::Simulator => CarrierKind::Simulator(carrier::simulator::Simulator::new()),
        CarrierChoice::Twilio => {
            let extra_roots_pem = match &args.twilio_ca_file {
                Some(path) => Some(
                    std::fs::read(path)
                        .with_context(|| format!("reading --twilio-ca-file {}", path.display()))?,
                ),
                None => None,
            };
            let config = carrier::twilio::TwilioConfig {
                base_url: args.twilio_base_url,
                extra_roots_pem,
                ..carrier::twilio::TwilioConfig::new(
                    args.twilio_account_sid
                        .context("--twilio-account-sid (TWILIO_ACCOUNT_SID) is required")?,
                    args.twilio_auth_token
                        .context("--twilio-auth-token (TWILIO_AUTH_TOKEN) is required")?,
                )
            };
            CarrierKind::Twilio(
                carrier::twilio::TwilioCarrier::new(config)
                    .context("configuring the Twilio carrier")?,
            )
        }
    };
    let mut setup = CarrierSetup::new(kind, data_dir, public_url);
    setup.help_text = args.help_text;
    Ok(setup)
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let ServeArgs {
        data_dir,
        listen,
        carrier,
        metrics_token,
        session_ttl_s,
        allow_private_webhooks,
        allow_signups,
        operator_token,
    } = args;
    let session_ttl = std::time::Duration::from_secs(session_ttl_s);
    let webhooks = gateway::notifications::WebhookConfig {
        allow_private: allow_private_webhooks,
        ..Default::default()
    };
    let signups = gateway::routes::bootstrap::Signups {
        open: allow_signups,
        operator_token: operator_token.filter(|t| !t.is_empty()),
    };
    let public_url = carrier
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{listen}"));
    let setup = carrier_setup(carrier, &data_dir, &public_url)?;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let log = RocksLog::open(data_dir.join("log"), LogOptions::default())
        .with_context(|| format!("opening the event log in {}", data_dir.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let store: Arc<dyn EventStore> = Arc::new(log.clone());
    let actors = Arc::new(ActorRuntime::per_core().context("starting the actor runtime")?);
    let ws = Workspace::new(store.clone(), actors.clone(), ActorConfig::default());
    runtime.block_on(async move {
        tokio::spawn(inbound_router::run(ws.clone()));
        tokio::spawn(queue_timers::run(ws.clone(), Arc::new(SystemClock)));
        tokio::spawn(queue_timeline::run(ws.clone()));
        tokio::spawn(gateway::notifications::run(ws.clone(), webhooks.clone()));
        let interactions =
            projections::LiveInteractions::start(&data_dir.join("readmodels"), store.clone())
                .context("opening the interactions read model")?;
        let search = projections::LiveSearch::start(&data_dir.join("readmodels"), store.clone())
            .context("opening the search read model")?;
        let queues = projections::LiveQueues::start(&data_dir.join("readmodels"), store.clone())
            .context("opening the queue views read model")?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        let addr = listener.local_addr()?;
        tracing::info!(addr = %addr, data_dir = %data_dir.display(), "switchboard listening");
        let edge = CarrierEdge::start(&ws, setup).context("starting the carrier edge")?;
        tracing::info!(carrier = edge.state.kind.carrier().name(), %public_url, "carrier edge started");
        let state = gateway::AppState::new(ws, queues.clone(), interactions.clone())
            .with_carriers(edge.state.clone())
            .with_search(search.clone())
            .with_metrics(gateway::metrics::Metrics::new(metrics_token))
            .with_session_ttl(session_ttl)
            .with_webhooks(webhooks)
            .with_signups(signups);
        let app = gateway::router(state.clone());
        let streams = state.clone();
        // Connection info: the login limits are per client address.
        let app = app.into_make_service_with_connect_info::<gateway::peer::Peer>();
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                shutdown_signal().await;
                // Upgraded WebSockets are not requests axum drains: close them now, each
                // with 1012 `restarting` after what it has queued, so clients resume.
                streams.hub.close(&streams);
            })
            .await
            .context("serving HTTP")
            .map(|()| {
                interactions.close();
                search.close();
                queues.close();
            });
        // Let the streams finish their close handshakes (bounded).
        let deadline = tokio::time::Instant::now() + STREAMS_CLOSE;
        while state.metrics.websockets.get() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // Texts in flight resume from the log on the next start.
        edge.abort();
        served
    })?;
    // Actors first (nothing new is appended), then the log: every append queued before
    // this point is durable and acknowledged when it returns.
    actors.shutdown();
    log.shutdown();
    tracing::info!("switchboard stopped");
    Ok(())
}

/// How long a shutdown waits for open streams to take their close frame.
const STREAMS_CLOSE: std::time::Duration = std::time::Duration::from_secs(5);

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown requested; draining");
}
