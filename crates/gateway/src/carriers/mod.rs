//! The carrier edge: which carrier the server talks to, the attachment store, public media
//! URLs for MMS, and recording what arrives. Routes are in `routes::{twilio, simulator,
//! attachments}`; the sending side is `workers::outbox`.
//!
//! - [`CarrierEdge::open`] builds the [`CarrierState`] the routes use;
//!   [`CarrierState::outbox_setup`] is what `workers::start::leader` starts the outbox with
//!   (and, for the simulator, the task writing its status reports to the log);
//!   [`CarrierEdge::start`] does both with a single server's followers (tests, benches).
//! - [`attachments`]: blobs in `<data dir>/blobs/` (content-addressed, written atomically)
//!   and their per-organization index (`attachment-<id>` streams), with inbound media that
//!   could not be fetched recorded as unavailable.
//! - [`references`]: the participants-only check against the durable index of which
//!   conversations reference an attachment (`workers::attachment_refs` keeps it).
//! - [`media_urls`]: unguessable, signed URLs a carrier fetches MMS media from.
//! - [`inbound`]: an arrived text becomes `SmsArrived` in `inbound-<org>`, once per carrier
//!   message id.
//! - [`upload`]: an upload streamed into the blob store a batch at a time, never whole in
//!   memory.
//! - [`image_budget`]: the bytes held server-wide for preparing MMS images, bounded.

pub mod attachments;
pub mod image_budget;
pub mod inbound;
pub mod media_urls;
pub mod references;
pub mod upload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actors::clock::SystemClock;
use actors::Workspace;
use carrier::blobs::BlobStore;
use carrier::simulator::Simulator;
use carrier::twilio::TwilioCarrier;
use carrier::{Backoff, Carrier};
use workers::outbox::OutboxConfig;

pub use media_urls::MediaUrls;

/// The carrier texts go through.
#[derive(Clone, Debug)]
pub enum CarrierKind {
    /// The embedded simulator (the default): outbound texts stay in memory, outcomes are
    /// chosen through `/v1/simulator/*`.
    Simulator(Simulator),
    /// A Twilio-compatible REST API, with its webhooks under `/v1/carriers/twilio/*`.
    Twilio(TwilioCarrier),
}

impl CarrierKind {
    pub fn carrier(&self) -> Arc<dyn Carrier> {
        match self {
            CarrierKind::Simulator(s) => Arc::new(s.clone()),
            CarrierKind::Twilio(t) => Arc::new(t.clone()),
        }
    }
}

/// How to start the carrier edge.
#[derive(Clone, Debug)]
pub struct CarrierSetup {
    pub kind: CarrierKind,
    /// Holds `blobs/` and `media.key`.
    pub data_dir: PathBuf,
    /// The server's URL as the carrier reaches it (`https://sb.example.com`): webhook
    /// signatures are checked against it, status callbacks and media URLs are built on it.
    pub public_url: String,
    /// The reply to HELP; `None` sends none.
    pub help_text: Option<String>,
    /// Retries of failed sends.
    pub backoff: Backoff,
    /// Most carrier calls at once.
    pub max_in_flight: usize,
    /// Twilio only: how long an attempt whose outcome a crash lost waits for a status
    /// report to confirm it before it is sent again (see `workers::outbox`).
    pub unconfirmed_grace: Duration,
}

impl CarrierSetup {
    /// Defaults for `kind` over `data_dir`, reachable at `public_url`.
    pub fn new(kind: CarrierKind, data_dir: impl Into<PathBuf>, public_url: &str) -> Self {
        Self {
            kind,
            data_dir: data_dir.into(),
            public_url: public_url.trim_end_matches('/').to_owned(),
            help_text: None,
            backoff: Backoff::default(),
            max_in_flight: 64,
            unconfirmed_grace: Duration::from_secs(600),
        }
    }
}

/// What the carrier routes need.
pub struct CarrierState {
    pub kind: CarrierKind,
    pub blobs: BlobStore,
    /// Without a trailing slash.
    pub public_url: String,
    pub media: MediaUrls,
    /// Bounds the memory that preparing MMS images takes across requests.
    pub images: image_budget::ImageBudget,
}

impl CarrierState {
    pub fn simulator(&self) -> Option<&Simulator> {
        match &self.kind {
            CarrierKind::Simulator(s) => Some(s),
            CarrierKind::Twilio(_) => None,
        }
    }

    pub fn twilio(&self) -> Option<&TwilioCarrier> {
        match &self.kind {
            CarrierKind::Twilio(t) => Some(t),
            CarrierKind::Simulator(_) => None,
        }
    }

    /// The outbox's carrier and settings over this edge (status callbacks and media URLs
    /// on its public URL; with the simulator, its status reports, subscribed now so that
    /// none is missed).
    pub fn outbox_setup(self: &Arc<Self>, setup: &CarrierSetup) -> workers::start::OutboxSetup {
        let status_reports = self.simulator().map(Simulator::subscribe_status);
        let status_callback: Option<workers::outbox::StatusCallbackUrl> = self.twilio().map(|_| {
            let state = self.clone();
            Arc::new(move |id| state.status_callback_url(id)) as _
        });
        let media = self.media.clone();
        let config = OutboxConfig {
            max_in_flight: setup.max_in_flight,
            backoff: setup.backoff,
            carrier_dedupes: self.simulator().is_some(),
            unconfirmed_grace: setup.unconfirmed_grace,
            status_callback,
            media_url: Some(Arc::new(move |a| Some(media.outbound(a)))),
            help_text: setup.help_text.clone(),
        };
        workers::start::OutboxSetup {
            carrier: setup.kind.carrier(),
            config,
            status_reports,
        }
    }

    /// The URL Twilio posts status callbacks for outbox text `id` to.
    pub fn status_callback_url(&self, id: uuid::Uuid) -> String {
        format!("{}/v1/carriers/twilio/status?sms={id}", self.public_url)
    }
}

/// Why the carrier edge could not start.
#[derive(Debug, thiserror::Error)]
pub enum CarrierSetupError {
    #[error("attachment store: {0}")]
    Blobs(#[from] carrier::blobs::BlobError),
    #[error("media URL key {path}: {source}")]
    MediaKey {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The carrier edge with the followers a single server runs (tests and benches; the
/// server starts them itself, as a cluster's leader): they stop when it is dropped or
/// aborted (or when the log closes).
pub struct CarrierEdge {
    pub state: Arc<CarrierState>,
    pub followers: workers::start::Running,
}

impl CarrierEdge {
    /// Opens the attachment store and starts every follower through the `workers`' start
    /// points, the outbox with this carrier (and, with the simulator, its status feed),
    /// webhooks by `webhooks`; not the queue timers nor retention. Call within tokio.
    ///
    /// # Errors
    /// [`CarrierSetupError`] when the data directory cannot hold blobs or the media key.
    pub fn start(
        ws: &Workspace,
        setup: CarrierSetup,
        webhooks: workers::webhooks::WebhookConfig,
    ) -> Result<Self, CarrierSetupError> {
        let state = Self::open(&setup)?;
        let mut followers = workers::start::every_node(ws, state.blobs.clone());
        followers.join(workers::start::leader(
            ws,
            workers::start::Leader {
                webhooks,
                queue_timers: None,
                retention: None,
                outbox: Some(state.outbox_setup(&setup)),
                clock: Arc::new(SystemClock),
            },
        ));
        Ok(Self { state, followers })
    }

    /// The carrier routes' state (attachment store, media URLs), with nothing running.
    ///
    /// # Errors
    /// [`CarrierSetupError`] when the data directory cannot hold blobs or the media key.
    pub fn open(setup: &CarrierSetup) -> Result<Arc<CarrierState>, CarrierSetupError> {
        let blobs = BlobStore::open(setup.data_dir.join("blobs"))?;
        let key_path = setup.data_dir.join("media.key");
        let media = MediaUrls::open(&key_path, &setup.public_url).map_err(|source| {
            CarrierSetupError::MediaKey {
                path: key_path.clone(),
                source,
            }
        })?;
        Ok(Arc::new(CarrierState {
            kind: setup.kind.clone(),
            blobs,
            public_url: setup.public_url.clone(),
            media,
            images: image_budget::ImageBudget::new(image_budget::IMAGE_PREPARATION_BUDGET),
        }))
    }

    /// Stops the followers (also done on drop).
    pub fn abort(&self) {
        self.followers.abort();
    }
}
