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
//!
//! `switchboard backup --to DIR` backs a data directory up while its server runs (through
//! the server's control socket; directly when no server runs), and `switchboard restore
//! --from DIR` restores one into an empty data directory (see [`ops`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use actors::clock::SystemClock;
use actors::{ActorConfig, ActorRuntime, Workspace};
use anyhow::Context;
use clap::{Parser, Subcommand};

mod ops;
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
    Serve(Box<ServeArgs>),
    /// Back up a data directory, online: the running server writes a consistent copy of
    /// its log, attachments and keys into DIR, with a signed checkpoint of the log.
    Backup(BackupArgs),
    /// Restore a backup into a new data directory (after checking every chain and the
    /// signed checkpoint); read models are rebuilt when the server starts on it.
    Restore(RestoreArgs),
}

#[derive(clap::Args)]
struct BackupArgs {
    /// The data directory of the server to back up.
    #[arg(long, default_value = "./data", env = "SWITCHBOARD_DATA_DIR")]
    data_dir: PathBuf,
    /// Where the backup goes: a new (or empty) directory, ideally on another disk.
    #[arg(long)]
    to: PathBuf,
    /// The checkpoint-signing key, when no server runs (default: <data-dir>/checkpoint.key).
    #[arg(long, env = "SWITCHBOARD_CHECKPOINT_KEY")]
    checkpoint_key: Option<PathBuf>,
}

#[derive(clap::Args)]
struct RestoreArgs {
    /// The backup directory (as `switchboard backup --to` wrote it).
    #[arg(long)]
    from: PathBuf,
    /// The new data directory (must not exist or be empty).
    #[arg(long)]
    data_dir: PathBuf,
    /// The public key the backup's checkpoint must be signed with (64 hex digits, or a
    /// file holding them, e.g. the server's `checkpoint.pub`); without it, the signature is
    /// only checked against the key the backup names.
    #[arg(long)]
    public_key: Option<String>,
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
    /// Pauses between the attempts of a webhook delivery that fails, e.g. `10s,1m,5m,1h`;
    /// it is given up after the last. Default: 10s, 1m, 5m, 15m, 30m, 1h, 2h, 4h, 8h
    /// (10 attempts over about 16 hours).
    #[arg(
        long,
        env = "SWITCHBOARD_WEBHOOK_RETRY_AFTER",
        value_delimiter = ',',
        value_parser = humantime::parse_duration
    )]
    webhook_retry_after: Option<Vec<std::time::Duration>>,
    /// How many texts sealed lately the server remembers in the clear, so that the readers
    /// of a new message (the stream hub, search, the outbox, webhooks) need not each
    /// decrypt it again; forgotten at once when any key is destroyed. 0: none.
    #[arg(long, default_value_t = eventlog::keyring::RECENT_TEXTS, env = "SWITCHBOARD_RECENT_TEXTS")]
    recent_texts: usize,
    /// How often search commits what it indexed, at most, in milliseconds, when no search
    /// waits for it: a new message is found within about this long by a search without
    /// `after` (one with `after` has what it waits for committed within 100 ms of the
    /// last commit); longer writes and merges fewer index segments under load. 10 to
    /// 60,000.
    #[arg(
        long,
        default_value_t = projections::search::writer::COMMIT_INTERVAL_MS,
        env = "SWITCHBOARD_SEARCH_REFRESH_MS",
        value_parser = clap::value_parser!(u64).range(10..=60_000)
    )]
    search_refresh_ms: u64,
    /// How long the read models (conversation lists, queue views, search) let the log's
    /// events gather after applying a batch, in milliseconds, when no query waits for
    /// them: a list read without `after` may be this much behind (one with `after` has
    /// what it waits for applied at once); longer writes less often under a steady
    /// stream of messages. 0 (apply every commit of the log at once) to 1,000.
    #[arg(
        long,
        default_value_t = projections::runner::LINGER_MS,
        env = "SWITCHBOARD_READMODEL_LINGER_MS",
        value_parser = clap::value_parser!(u64).range(0..=1_000)
    )]
    readmodel_linger_ms: u64,
    /// Let anyone create an organization with `POST /v1/bootstrap` (by default only the
    /// server's first one can be created that way).
    #[arg(long, env = "SWITCHBOARD_ALLOW_SIGNUPS")]
    allow_signups: bool,
    /// A bearer token with which the operator creates further organizations
    /// (`POST /v1/bootstrap` with `Authorization: Bearer <token>`).
    #[arg(long, env = "SWITCHBOARD_OPERATOR_TOKEN", hide_env_values = true)]
    operator_token: Option<String>,
    /// The Ed25519 key the log's checkpoints are signed with (created on first start);
    /// default: <data-dir>/checkpoint.key. Its public half is written beside it (`.pub`).
    #[arg(long, env = "SWITCHBOARD_CHECKPOINT_KEY")]
    checkpoint_key: Option<PathBuf>,
    /// How often a signed checkpoint of the log is written to <data-dir>/checkpoints (the
    /// newest 100 are kept); 0: never (backups still sign one).
    #[arg(long, default_value_t = 300, env = "SWITCHBOARD_CHECKPOINT_EVERY_S")]
    checkpoint_every_s: u64,
    #[command(flatten)]
    store: StoreArgs,
}

/// Where the event log lives.
#[derive(clap::Args, Debug)]
struct StoreArgs {
    /// `rocksdb`: embedded in the data directory (one machine). `nats://h1:4222,h2:4222,…`:
    /// a replicated NATS JetStream stream (cluster mode: any number of nodes; each keeps a
    /// replica of the log in its data directory for reads).
    #[arg(long, default_value = "rocksdb", env = "SWITCHBOARD_STORE")]
    store: String,
    /// The servers' monitoring endpoints (`http://h1:8222,…`), read to check that every
    /// write is fsynced; default: each server's host on port 8222.
    #[arg(long, env = "SWITCHBOARD_NATS_MONITOR", value_delimiter = ',')]
    nats_monitor: Vec<String>,
    /// The JetStream stream holding the log (its buckets are named after it).
    #[arg(long, default_value = "SWITCHBOARD", env = "SWITCHBOARD_NATS_STREAM")]
    nats_stream: String,
    /// How many servers hold each message (3: any one may be lost).
    #[arg(long, default_value_t = 3, env = "SWITCHBOARD_NATS_REPLICAS")]
    nats_replicas: usize,
    /// How long a write keeps retrying while the cluster has no leader (an election takes
    /// a few seconds) before it is refused with 503 `storage_unavailable`.
    #[arg(long, default_value_t = 15, env = "SWITCHBOARD_NATS_WRITE_TIMEOUT_S")]
    nats_write_timeout_s: u64,
    /// This node's name in the cluster (who holds the process managers' lease); default:
    /// the listen address.
    #[arg(long, env = "SWITCHBOARD_NODE")]
    node: Option<String>,
}

/// The keys message texts are sealed under (`<data>/keys`, see `eventlog::keyring`):
/// beside the log, never in it, so destroying one erases what it sealed.
fn open_keyring(
    data_dir: &std::path::Path,
) -> anyhow::Result<std::sync::Arc<eventlog::keyring::Keyring>> {
    let dir = data_dir.join("keys");
    let keyring = eventlog::keyring::Keyring::open(&dir)
        .with_context(|| format!("opening the keyring in {}", dir.display()))?;
    Ok(std::sync::Arc::new(keyring))
}

/// The log this node runs on.
enum Log {
    Rocks(RocksLog),
    Nats(natslog::NatsLog),
}

impl Log {
    fn open(args: &StoreArgs, data_dir: &std::path::Path) -> anyhow::Result<Self> {
        if args.store == "rocksdb" {
            let log = RocksLog::open(data_dir.join("log"), LogOptions::default())
                .with_context(|| format!("opening the event log in {}", data_dir.display()))?;
            return Ok(Self::Rocks(log.with_keyring(open_keyring(data_dir)?)));
        }
        if !args.store.starts_with("nats://") {
            anyhow::bail!(
                "--store is `rocksdb` or `nats://host:port,…`, not {}",
                args.store
            );
        }
        let mut options =
            natslog::NatsOptions::from_url(&args.store).map_err(anyhow::Error::msg)?;
        if !args.nats_monitor.is_empty() {
            options.monitors.clone_from(&args.nats_monitor);
        }
        options.stream.clone_from(&args.nats_stream);
        options.replicas = args.nats_replicas;
        options.unavailable_after = std::time::Duration::from_secs(args.nats_write_timeout_s);
        options.client_name = format!("switchboard {}", args.node.as_deref().unwrap_or(""));
        let log = natslog::NatsLog::connect_blocking(
            options,
            &data_dir.join("replica"),
            LogOptions::default(),
        )
        .context("joining the NATS cluster")?;
        Ok(Self::Nats(log))
    }

    fn store(&self) -> Arc<dyn EventStore> {
        match self {
            Self::Rocks(log) => Arc::new(log.clone()),
            Self::Nats(log) => Arc::new(log.clone()),
        }
    }

    /// Whether this node runs the process managers now: always on one machine; in a
    /// cluster, while it holds their lease.
    fn leadership(&self, node: &str) -> tokio::sync::watch::Receiver<bool> {
        match self {
            Self::Rocks(_) => {
                let (tx, rx) = tokio::sync::watch::channel(true);
                // Kept open for the process's life: the node leads for good.
                std::mem::forget(tx);
                rx
            }
            Self::Nats(log) => log.lease("process-managers", node),
        }
    }

    fn shutdown(&self) {
        match self {
            Self::Rocks(log) => log.shutdown(),
            Self::Nats(log) => log.shutdown(),
        }
    }
}

/// The jobs one node of a cluster runs at a time (each keyed by the events that cause its
/// effects, so a handover repeats work, never effects): inbound routing, queue timers and
/// timeline, outbound webhooks, retention, the outbox. Started when this node takes the lead, stopped
/// when it loses it.
async fn process_managers(
    ws: Workspace,
    webhooks: workers::webhooks::WebhookConfig,
    carriers: Arc<gateway::carriers::CarrierState>,
    setup: gateway::carriers::CarrierSetup,
    mut leader: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if leader.wait_for(|lead| *lead).await.is_err() {
            return;
        }
        tracing::info!("this node runs the process managers");
        let running = workers::start::leader(
            &ws,
            workers::start::Leader {
                webhooks: webhooks.clone(),
                queue_timers: Some(Arc::new(SystemClock)),
                retention: Some(workers::retention::SWEEP_EVERY),
                outbox: Some(carriers.outbox_setup(&setup)),
                clock: Arc::new(SystemClock),
            },
        );
        // Stopped when the lead is lost, and when this supervisor is aborted (shutdown).
        let lost = leader.wait_for(|lead| !*lead).await.is_ok();
        drop(running);
        if !lost {
            return;
        }
        tracing::warn!("this node lost the process managers' lease; stopped them");
    }
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
        Command::Serve(args) => serve(*args),
        Command::Backup(args) => backup(args),
        Command::Restore(args) => restore(args),
    }
}

fn print_progress(p: &ops::backup::Progress) {
    match p.total {
        Some(total) => eprintln!("{}: {}/{total}", p.step, p.done),
        None => eprintln!("{}: {}", p.step, p.done),
    }
}

fn print_manifest(m: &ops::backup::Manifest) {
    println!(
        "{} events (digest {}), {} attachments ({} bytes); checkpoint signed by {}",
        m.events, m.digest, m.blobs, m.blob_bytes, m.public_key
    );
}

fn backup(args: BackupArgs) -> anyhow::Result<()> {
    use std::io::{BufRead, Write};
    let to = std::path::absolute(&args.to).with_context(|| format!("{}", args.to.display()))?;
    let socket = args.data_dir.join(ops::control::SOCKET);
    match std::os::unix::net::UnixStream::connect(&socket) {
        Ok(mut stream) => {
            let request = ops::control::Request::Backup { to: to.clone() };
            let mut line = serde_json::to_string(&request)?;
            line.push('\n');
            stream.write_all(line.as_bytes())?;
            for reply in std::io::BufReader::new(stream).lines() {
                match serde_json::from_str::<ops::control::Reply>(&reply?)? {
                    ops::control::Reply::Progress(p) => print_progress(&p),
                    ops::control::Reply::Done(m) => {
                        println!("backup written to {}", to.display());
                        print_manifest(&m);
                        return Ok(());
                    }
                    ops::control::Reply::Failed(e) => anyhow::bail!("backup failed: {e}"),
                }
            }
            anyhow::bail!("the server closed the control socket before the backup finished")
        }
        Err(e) => {
            // No server runs here: open the log (its lock says if one does after all).
            tracing::debug!(error = %e, "no control socket; backing up directly");
            let log = RocksLog::open(args.data_dir.join("log"), LogOptions::default())
                .with_context(|| {
                    format!(
                        "no server answers on {} and the log cannot be opened",
                        socket.display()
                    )
                })?;
            let log = log.with_keyring(open_keyring(&args.data_dir)?);
            let key_path = args
                .checkpoint_key
                .unwrap_or_else(|| args.data_dir.join("checkpoint.key"));
            let key = ops::signing::load_or_create(&key_path)?;
            let done =
                ops::backup::backup(&log, &args.data_dir, &key, &to, &mut |p| print_progress(&p));
            log.shutdown();
            let m = done?;
            println!("backup written to {}", to.display());
            print_manifest(&m);
            Ok(())
        }
    }
}

fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let trusted = args
        .public_key
        .as_deref()
        .map(eventlog::checkpoint::parse_public_key)
        .transpose()?;
    let m = ops::backup::restore(&args.from, &args.data_dir, trusted.as_ref(), &mut |p| {
        print_progress(&p);
    })?;
    println!(
        "restored into {} (read models are rebuilt when the server starts)",
        args.data_dir.display()
    );
    print_manifest(&m);
    Ok(())
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
        webhook_retry_after,
        recent_texts,
        search_refresh_ms,
        readmodel_linger_ms,
        allow_signups,
        operator_token,
        checkpoint_key,
        checkpoint_every_s,
        store: store_args,
    } = args;
    let session_ttl = std::time::Duration::from_secs(session_ttl_s);
    let webhooks = workers::webhooks::WebhookConfig {
        allow_private: allow_private_webhooks,
        retry_after: webhook_retry_after
            .unwrap_or_else(|| workers::webhooks::DEFAULT_RETRY_AFTER.to_vec()),
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
    let log = Log::open(&store_args, &data_dir)?;
    let key_path = checkpoint_key.unwrap_or_else(|| data_dir.join("checkpoint.key"));
    let signing_key = ops::signing::load_or_create(&key_path)?;
    let public_key = ops::signing::publish(&key_path, &signing_key)?;
    tracing::info!(%public_key, "checkpoints of the log are signed with this key");
    // What the control socket backs up: one machine's log (a cluster's is the cluster's).
    let backed_up = match &log {
        Log::Rocks(l) => Some(l.clone()),
        Log::Nats(_) => None,
    };
    let node = store_args
        .node
        .clone()
        .unwrap_or_else(|| listen.to_string());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let store: Arc<dyn EventStore> = log.store();
    if let Some(keyring) = store.keyring() {
        keyring.set_recent_capacity(recent_texts);
    }
    let leader = runtime.block_on(async { log.leadership(&node) });
    let clustered = matches!(log, Log::Nats(_));
    let actors = Arc::new(ActorRuntime::per_core().context("starting the actor runtime")?);
    let ws = Workspace::new(store.clone(), actors.clone(), ActorConfig::default());
    runtime.block_on(async move {
        // Before any read model starts: each runner reads its linger as it starts.
        projections::runner::set_server_linger(std::time::Duration::from_millis(
            readmodel_linger_ms,
        ));
        let interactions =
            projections::LiveInteractions::start(&data_dir.join("readmodels"), store.clone())
                .context("opening the interactions read model")?;
        projections::search::writer::set_server_commit_interval(
            std::time::Duration::from_millis(search_refresh_ms),
        );
        let search = projections::LiveSearch::start(&data_dir.join("readmodels"), store.clone())
            .context("opening the search read model")?;
        let queues = projections::LiveQueues::start(&data_dir.join("readmodels"), store.clone())
            .context("opening the queue views read model")?;
        let control = match ops::control::bind(&data_dir) {
            Ok(socket) => Some(tokio::spawn(ops::control::serve(
                socket,
                Arc::new(ops::control::Control {
                    log: backed_up,
                    data_dir: data_dir.clone(),
                    key: signing_key.clone(),
                    busy: Arc::default(),
                }),
            ))),
            // E.g. a path longer than a Unix socket's 107 bytes: serve anyway.
            Err(e) => {
                tracing::warn!(error = %e, data_dir = %data_dir.display(), "no control socket: `switchboard backup` cannot reach this server");
                None
            }
        };
        let checkpoints = (checkpoint_every_s > 0).then(|| {
            tokio::spawn(ops::signing::run_periodic(
                store.clone(),
                signing_key,
                ops::signing::Checkpoints {
                    dir: data_dir.join("checkpoints"),
                    keep: 100,
                },
                std::time::Duration::from_secs(checkpoint_every_s),
            ))
        });
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        let addr = listener.local_addr()?;
        tracing::info!(addr = %addr, data_dir = %data_dir.display(), "switchboard listening");
        let carriers = CarrierEdge::open(&setup).context("starting the carrier edge")?;
        let index = workers::start::every_node(&ws, carriers.blobs.clone());
        let managers = tokio::spawn(process_managers(
            ws.clone(),
            webhooks.clone(),
            carriers.clone(),
            setup,
            leader,
        ));
        tracing::info!(carrier = carriers.kind.carrier().name(), %public_url, %node, "carrier edge started");
        let state = gateway::AppState::new(ws, queues.clone(), interactions.clone())
            .with_carriers(carriers)
            .with_search(search.clone())
            .with_metrics(gateway::metrics::Metrics::new(metrics_token))
            .with_session_ttl(session_ttl)
            .with_webhooks(webhooks)
            .with_signups(signups);
        if clustered {
            // Other nodes write too: keep this node's caches and actors up with them.
            tokio::spawn(gateway::auth::follow_peer_writes(state.clone()));
            tokio::spawn(state.ws.clone().follow_peer_writes());
        }
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
        // The followers save what they have handled and end (bounded: one stuck in a
        // handler's retries is aborted); texts in flight resume from the log on the next
        // start.
        state.ws.stopping.stop();
        if tokio::time::timeout(FOLLOWERS_STOP, state.ws.stopping.stopped())
            .await
            .is_err()
        {
            tracing::warn!("followers still busy after {FOLLOWERS_STOP:?}; stopped where they were");
        }
        managers.abort();
        index.abort();
        for task in [control, checkpoints].into_iter().flatten() {
            task.abort();
        }
        let _ = std::fs::remove_file(data_dir.join(ops::control::SOCKET));
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

/// How long a shutdown waits for the followers to save what they have handled.
const FOLLOWERS_STOP: std::time::Duration = std::time::Duration::from_secs(5);

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
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutdown requested; draining");
}
