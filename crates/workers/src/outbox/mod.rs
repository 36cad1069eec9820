//! The outbox: texts leave through a [`Carrier`], and every step is an event first.
//!
//! The path of one outbound text (the records are `domain::outbox`'s; `records` has their
//! ids, stream names and each text's state):
//!
//! 1. A post in an External or Group conversation writes `SmsRequested` per external
//!    recipient (the domain withholds opted-out numbers: they never get this far).
//! 2. `requests` follows the `conversation` category (checkpoint `outbox_requests`): per
//!    `SmsRequested` it writes `SmsPrepared` (text and media of the message) and
//!    `SmsSendStarted { attempt: 1 }` to `outbox-<id>` in one append, then hands the text
//!    to a job. The checkpoint moves once the append is durable, so nothing requested is
//!    lost; event ids derive from the request, so seeing it again writes nothing. A
//!    customer's HELP (`InboundReceived`) is answered in the conversation first:
//!    `RecordAutoReply` writes our `AutoReplyPosted` with its `SmsRequested`, which then
//!    goes out like any text.
//! 3. `jobs` calls the carrier with at most `max_in_flight` calls at once (one slow text
//!    never stalls the others) and writes the outcome: `SmsAccepted` (once per text), or
//!    `SmsSendFailed` with the next attempt's time (backoff on retryable errors) or final.
//!    Each retry writes its `SmsSendStarted` before calling again. A job sleeping before a
//!    retry holds no call slot.
//! 4. `recorder` follows the `outbox` category (checkpoint `outbox_recorder`): an
//!    acceptance links the carrier's message id (`carriermsg-<sid>`) to the text and
//!    records `DeliveryUpdated(Queued)` with the carrier's id; a final failure records
//!    `Failed` with the carrier's code. Idempotency keys derive from the `SmsRequested`
//!    event id.
//! 5. `status` writes each status report (Twilio's webhook, the simulator's channel) to
//!    `carriermsg-<sid>`, and follows that category (checkpoint `carrier_status`) to
//!    record it in the conversation; a report that came before the link is applied when
//!    the link is written. The domain never moves a delivery backwards, so late,
//!    duplicated and out-of-order reports change nothing.
//!
//! # A crash between the carrier call and its outcome
//!
//! On start, `recovery` folds the `outbox` category from its low-water mark and resumes
//! every text that is not done: a retry that was due, or an attempt that *started* with no
//! outcome. The mark (checkpoint `outbox_recovery_from`) is a position below which every
//! text is finished — the oldest unfinished text's `SmsPrepared`, or the log's head when
//! none is — kept up to date while the outbox runs, so a start reads the texts since the
//! oldest one still open, not every text ever sent. For a text whose attempt started with
//! no outcome the carrier may or may not have the text:
//! - a carrier that dedupes on [`OutboundSms::idempotency_key`] (the simulator,
//!   [`OutboxConfig::carrier_dedupes`]) is simply called again with the same key: it
//!   answers with the first message's id and sends nothing twice;
//! - Twilio has no such key. Its status callback URL carries the text's outbox id
//!   (`?sms=<id>`), so the first status report for a text that Twilio did create confirms
//!   it (`SmsAccepted { confirmed_by: "status_callback" }`) and links its id. The job waits
//!   up to [`OutboxConfig::unconfirmed_grace`] for that; only a text that no report
//!   confirmed in that time is sent again. The limit is therefore: a text Twilio accepted
//!   but reported on later than the grace period (or never) is sent twice — at least once,
//!   not exactly once, in that window.

mod jobs;
mod recorder;
pub mod records;
mod recovery;
mod requests;
pub mod status;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use carrier::{Backoff, Carrier, OutboundMedia};
use domain::conversation::AttachmentRef;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use uuid::Uuid;

use actors::clock::Clock;
use actors::workspace::Workspace;

pub use records::{carrier_message_stream, message_outbox_id, outbox_stream, OutboxState, Pending};
pub use recovery::RECOVERY_CHECKPOINT;
pub use status::{delivery_of, report_status, ReportOutcome};

/// Builds the status-callback URL of a text from its outbox id.
pub type StatusCallbackUrl = Arc<dyn Fn(Uuid) -> String + Send + Sync>;
/// Builds the URL a carrier fetches an MMS attachment from (`None`: not available).
pub type MediaUrl = Arc<dyn Fn(&AttachmentRef) -> Option<OutboundMedia> + Send + Sync>;

/// How the outbox sends.
#[derive(Clone)]
pub struct OutboxConfig {
    /// Most carrier calls at once.
    pub max_in_flight: usize,
    /// Delays between attempts and how many there are.
    pub backoff: Backoff,
    /// The carrier honours `OutboundSms::idempotency_key` (the simulator does, Twilio does
    /// not): an attempt whose outcome a crash lost is simply made again.
    pub carrier_dedupes: bool,
    /// For a carrier that does not dedupe: how long to wait for a status report to confirm
    /// an attempt whose outcome a crash lost, before sending it again.
    pub unconfirmed_grace: Duration,
    /// The status callback URL for a text, if the carrier should call back.
    pub status_callback: Option<StatusCallbackUrl>,
    /// Public URLs of MMS media.
    pub media_url: Option<MediaUrl>,
    /// The reply to HELP keywords; `None` sends none.
    pub help_text: Option<String>,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            max_in_flight: 64,
            backoff: Backoff::default(),
            carrier_dedupes: false,
            unconfirmed_grace: Duration::from_secs(600),
            status_callback: None,
            media_url: None,
            help_text: None,
        }
    }
}

impl std::fmt::Debug for OutboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxConfig")
            .field("max_in_flight", &self.max_in_flight)
            .field("backoff", &self.backoff)
            .field("carrier_dedupes", &self.carrier_dedupes)
            .field("unconfirmed_grace", &self.unconfirmed_grace)
            .field("status_callback", &self.status_callback.is_some())
            .field("media_url", &self.media_url.is_some())
            .field("help_text", &self.help_text.is_some())
            .finish()
    }
}

/// What the outbox's tasks share.
pub(crate) struct Shared {
    pub ws: Workspace,
    pub carrier: Arc<dyn Carrier>,
    pub config: OutboxConfig,
    pub clock: Arc<dyn Clock>,
    /// One permit per carrier call in flight.
    pub calls: Arc<Semaphore>,
    /// Outbox ids with a running job, so a text is never worked twice at once.
    pub active: Mutex<HashSet<Uuid>>,
    /// Every text known unfinished, with the position of its `SmsPrepared`: the recovery
    /// low-water mark is the least of them.
    pub open: Mutex<HashMap<Uuid, u64>>,
    /// Held (shared) by a preparation from before its append until its text is in `open`;
    /// taken exclusively to compute the low-water mark, so no text is in between.
    pub preparing: tokio::sync::RwLock<()>,
}

impl Shared {
    pub(crate) fn opened(&self, id: Uuid, prepared_at: u64) {
        if let Ok(mut open) = self.open.lock() {
            open.entry(id).or_insert(prepared_at);
        }
    }

    pub(crate) fn finished(&self, id: Uuid) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(&id);
        }
    }
}

/// The running outbox: its tasks stop when the log closes, or when aborted.
pub struct Outbox {
    pub tasks: Vec<JoinHandle<()>>,
}

impl Outbox {
    /// Starts recovery and then the request follower (which also answers HELP), the
    /// recorder and the status follower, over `ws`'s log.
    pub fn start(
        ws: Workspace,
        carrier: Arc<dyn Carrier>,
        config: OutboxConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let shared = Arc::new(Shared {
            calls: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            ws: ws.clone(),
            carrier,
            config,
            clock,
            active: Mutex::new(HashSet::new()),
            open: Mutex::new(HashMap::new()),
            preparing: tokio::sync::RwLock::new(()),
        });
        // Known before they run (requests publishes only once recovery is done).
        crate::start::known(
            &ws,
            &[
                requests::REQUESTS_CHECKPOINT,
                recorder::CHECKPOINT,
                status::CHECKPOINT,
            ],
        );
        let requests = {
            let shared = shared.clone();
            tokio::spawn(async move {
                recovery::resume_unfinished(&shared).await;
                let marks = tokio::spawn(recovery::keep_low_water_mark(shared.clone()));
                requests::follow_requests(shared).await;
                marks.abort();
            })
        };
        let recorder = tokio::spawn(recorder::run(ws.clone()));
        let status = tokio::spawn(status::run(ws));
        Self {
            tasks: vec![requests, recorder, status],
        }
    }

    /// Stops every task.
    pub fn abort(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
