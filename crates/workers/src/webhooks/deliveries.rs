//! The durable side of outbound webhooks: every delivery is a stream in the log, attempted
//! by one dispatcher until it is delivered, given up or cancelled, and read back by admins.
//!
//! # Records
//! The domain's [`WebhookDeliveryEvent`]s; this module appends and reads them.
//! - `webhookdelivery-<delivery id>`: `WebhookDeliveryQueued` (the endpoint, the event type,
//!   the exact body sent on every attempt, what caused it), then one
//!   `WebhookDeliveryAttempted` per attempt (when, how long, the HTTP status or the error,
//!   when the next attempt is due, or none: delivered or given up), or
//!   `WebhookDeliveryCancelled` (the endpoint was removed).
//! - `webhooklog-<webhook id>`: one `WebhookDeliveryListed` per delivery, in the order
//!   they were queued: the endpoint's delivery log, paged newest first.
//!
//! Queueing is idempotent: both records take ids derived from the delivery's id (itself
//! derived from the log event that caused it, the endpoint and the recipient), so a
//! follower that handles an event again after a crash appends nothing new.
//!
//! # The dispatcher
//! [`dispatch`] follows the `webhookdelivery` category. It first reads everything after
//! its checkpoint up to the head, so a delivery whose outcome is already recorded is
//! never attempted again, then attempts what is due: at once for a new delivery, at the
//! recorded `next_at_ms` for a retry (so the backoff survives restarts; a retry due while
//! the server was down is made when it comes back). Its checkpoint is the position just
//! before the oldest delivery still pending, so a restart re-reads exactly what it needs.
//! At most [`MAX_IN_FLIGHT`] attempts run at once, [`MAX_IN_FLIGHT_PER_ENDPOINT`] per
//! endpoint, so one endpoint that hangs cannot hold up the others'.
//!
//! An attempt made but not recorded (a crash in between) is made again with the same
//! `Switchboard-Delivery` id: delivery is at least once, and receivers drop repeats by
//! that id. An admin's redelivery is a new delivery (a new id) of the same body.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use actors::event_codec;
use domain::webhook::{
    SealedBody, WebhookDeliveryAttempted, WebhookDeliveryCancelled, WebhookDeliveryEvent,
    WebhookDeliveryListed, WebhookDeliveryQueued, DELIVERY_CATEGORY, DELIVERY_LOG_CATEGORY,
};
use domain::{OrgId, UserId};
use eventlog::{
    Direction, EventData, EventStore, ExpectedVersion, RecordedEvent, StartFrom, StreamName,
    Subscription, SubscriptionTarget,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{load, Sender};

/// Category of the delivery streams.
pub const DELIVERY: &str = DELIVERY_CATEGORY;
/// Category of the endpoints' delivery logs.
pub const LOG: &str = DELIVERY_LOG_CATEGORY;

pub(super) const CHECKPOINT: &str = "webhook_dispatch";

/// Attempts running at once.
pub const MAX_IN_FLIGHT: usize = 32;
/// Attempts running at once to one endpoint.
pub const MAX_IN_FLIGHT_PER_ENDPOINT: usize = 4;
/// Longest error text kept of one attempt (a receiver's answer is cut to it).
pub const MAX_ERROR_LEN: usize = 300;
/// Pause before recording an attempt again when the log refused it.
const RECORD_RETRY: Duration = Duration::from_secs(5);

/// A delivery as queued, its body in the clear: what the follower and the routes queue,
/// and what reading a delivery answers. Stored as the domain's [`WebhookDeliveryQueued`],
/// its body sealed when it quotes a message text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queued {
    pub delivery: Uuid,
    pub webhook: Uuid,
    pub org: OrgId,
    /// The notification's type, e.g. `message.inbound`.
    pub event: String,
    /// The JSON body, byte for byte what every attempt sends.
    pub body: String,
    /// The log event that caused it (`None` for a redelivery).
    pub cause: Option<Uuid>,
    /// The delivery an admin asked to send again.
    pub redelivery_of: Option<Uuid>,
    pub by: Option<UserId>,
    pub at_ms: u64,
    /// The key of the message text the body quotes: the body is then stored sealed under
    /// it ([`WebhookDeliveryQueued::sealed`]) and erased with the text.
    pub key: Option<domain::TextKey>,
    /// Read back with its key gone: `body` is the JSON string `"[erased]"`, and the
    /// delivery is never attempted.
    pub erased: bool,
}

impl Queued {
    /// The stored record, its sealed body (if any) opened by `sealer`, or erased.
    fn opened(stored: WebhookDeliveryQueued, sealer: &actors::sealing::Sealer) -> Self {
        let WebhookDeliveryQueued {
            delivery,
            webhook,
            org,
            event,
            mut body,
            cause,
            redelivery_of,
            by,
            at_ms,
            sealed,
        } = stored;
        let (key, erased) = match sealed {
            None => (None, false),
            Some(SealedBody { key, sealed }) => match sealer.open_body_blocking(&key, &sealed) {
                Some(opened) => {
                    body = String::from_utf8_lossy(&opened).into_owned();
                    (Some(key), false)
                }
                None => {
                    body = format!("\"{}\"", domain::text::ERASED);
                    (Some(key), true)
                }
            },
        };
        Self {
            delivery,
            webhook,
            org,
            event,
            body,
            cause,
            redelivery_of,
            by,
            at_ms,
            key,
            erased,
        }
    }
}

/// A record of a delivery stream as read: the queueing with its body opened.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Record {
    Queued(Queued),
    Attempted(WebhookDeliveryAttempted),
    Cancelled(WebhookDeliveryCancelled),
}

/// A stored delivery record, whichever version it was written in.
fn read_stored(record: &RecordedEvent) -> Result<WebhookDeliveryEvent, String> {
    event_codec::decode::<WebhookDeliveryEvent>(record)
        .map_err(|e| format!("{}: {e}", record.stream))
}

/// A stored delivery record, with a sealed body opened by `sealer`.
fn read_record(record: &RecordedEvent, sealer: &actors::sealing::Sealer) -> Result<Record, String> {
    Ok(match read_stored(record)? {
        WebhookDeliveryEvent::WebhookDeliveryQueued(q) => Record::Queued(Queued::opened(q, sealer)),
        WebhookDeliveryEvent::WebhookDeliveryAttempted(a) => Record::Attempted(a),
        WebhookDeliveryEvent::WebhookDeliveryCancelled(c) => Record::Cancelled(c),
        WebhookDeliveryEvent::WebhookDeliveryListed(_) => {
            return Err(format!(
                "{}: a delivery log line in a delivery",
                record.stream
            ))
        }
    })
}

/// A line of an endpoint's delivery log.
///
/// # Errors
/// An undecodable line, as text.
pub fn read_listed(line: &RecordedEvent) -> Result<WebhookDeliveryListed, String> {
    match read_stored(line)? {
        WebhookDeliveryEvent::WebhookDeliveryListed(listed) => Ok(listed),
        _ => Err(format!("{}: not a delivery log line", line.stream)),
    }
}

fn delivery_stream(id: Uuid) -> StreamName {
    StreamName::from_parts(DELIVERY, id).expect("a UUID is a valid stream id")
}

/// An endpoint's delivery log.
pub fn log_stream(webhook: Uuid) -> StreamName {
    StreamName::from_parts(LOG, webhook).expect("a UUID is a valid stream id")
}

/// The log record of `event`, with the id `id` (a fresh one if `None`).
fn record_data(event: &WebhookDeliveryEvent, id: Option<Uuid>) -> Result<EventData, String> {
    event_codec::encode(
        event,
        id.unwrap_or_else(Uuid::new_v4),
        eventlog::Metadata::default(),
    )
    .map_err(|e| e.to_string())
}

/// The record of a cancellation now, for `reason`.
fn cancellation(reason: &str) -> WebhookDeliveryEvent {
    WebhookDeliveryEvent::WebhookDeliveryCancelled(WebhookDeliveryCancelled {
        reason: reason.to_owned(),
        at_ms: now_ms(),
    })
}

/// Queues `q`: its stream, then its line in the endpoint's log. Queueing the same delivery
/// again appends nothing.
///
/// # Errors
/// The log's, as text.
pub async fn enqueue(store: &Arc<dyn EventStore>, q: Queued) -> Result<(), String> {
    let Queued {
        delivery: id,
        webhook,
        org,
        event,
        body,
        cause,
        redelivery_of,
        by,
        at_ms,
        key,
        erased: _,
    } = q;
    let listed = WebhookDeliveryEvent::WebhookDeliveryListed(WebhookDeliveryListed {
        delivery: id,
        event: event.clone(),
        at_ms,
    });
    let (body, sealed) = match key {
        // The body quotes a text: sealed under the text's key, on a blocking thread (the
        // key may be read from storage).
        Some(key) => {
            let sealer = actors::sealing::Sealer::of(&**store);
            let sealed = {
                let key = key.clone();
                tokio::task::spawn_blocking(move || {
                    sealer.seal_body_blocking(&key, body.as_bytes())
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?
            };
            (String::new(), Some(SealedBody { key, sealed }))
        }
        None => (body, None),
    };
    let record = WebhookDeliveryEvent::WebhookDeliveryQueued(WebhookDeliveryQueued {
        delivery: id,
        webhook,
        org,
        event,
        body,
        cause,
        redelivery_of,
        by,
        at_ms,
        sealed,
    });
    let queued = record_data(&record, Some(Uuid::new_v5(&id, b"queued")))?;
    match store
        .append(delivery_stream(id), ExpectedVersion::NoStream, vec![queued])
        .await
    {
        // Queued before (a follower handling its event again; the body may have been
        // built from facts that changed since): the first one stands.
        Ok(_)
        | Err(
            eventlog::AppendError::WrongExpectedVersion { .. }
            | eventlog::AppendError::EventIdReused { .. }
            | eventlog::AppendError::PartialDuplicate { .. },
        ) => {}
        Err(e) => return Err(e.to_string()),
    }
    let line = record_data(&listed, Some(Uuid::new_v5(&id, b"listed")))?;
    match store
        .append(log_stream(webhook), ExpectedVersion::Any, vec![line])
        .await
    {
        Ok(_)
        | Err(
            eventlog::AppendError::EventIdReused { .. }
            | eventlog::AppendError::PartialDuplicate { .. },
        ) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// The pause after failed attempt `attempt` (1-based), `None` once the schedule is spent.
/// Each pause is stretched by up to a tenth, by the delivery's id, so the retries of a
/// burst do not all fall due at the same instant.
fn pause_after(schedule: &[Duration], attempt: u32, id: Uuid) -> Option<Duration> {
    let pause = *schedule.get(usize::try_from(attempt).ok()?.checked_sub(1)?)?;
    let spread = u32::from(id.as_bytes()[attempt as usize % 16]);
    Some(pause + pause.mul_f64(f64::from(spread) / 2550.0))
}

/// What the dispatcher knows of a delivery not finished yet.
struct Pending {
    webhook: Uuid,
    org: OrgId,
    event: String,
    /// Position of its `Queued` record.
    queued_at: u64,
    attempts: u32,
    due_ms: u64,
    in_flight: bool,
}

#[derive(Default)]
struct Book {
    pending: HashMap<Uuid, Pending>,
    /// Not in flight, by due time.
    due: BTreeSet<(u64, Uuid)>,
    /// Queued position → delivery, for the checkpoint.
    by_position: BTreeMap<u64, Uuid>,
    in_flight: usize,
    in_flight_to: HashMap<Uuid, usize>,
}

impl Book {
    fn apply(&mut self, r: &RecordedEvent) {
        let Ok(id) = Uuid::try_parse(r.stream.id()) else {
            return;
        };
        // The book needs no body: a sealed one stays sealed.
        let record = match read_stored(r) {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(error = %e, "webhooks: unreadable delivery record");
                return;
            }
        };
        match record {
            WebhookDeliveryEvent::WebhookDeliveryQueued(q) => {
                if self.pending.contains_key(&id) {
                    return;
                }
                self.due.insert((0, id));
                self.by_position.insert(r.position, id);
                self.pending.insert(
                    id,
                    Pending {
                        webhook: q.webhook,
                        org: q.org,
                        event: q.event,
                        queued_at: r.position,
                        attempts: 0,
                        due_ms: 0,
                        in_flight: false,
                    },
                );
            }
            WebhookDeliveryEvent::WebhookDeliveryAttempted(a) => match a.next_at_ms {
                Some(next) if a.error.is_some() => {
                    self.landed(id);
                    if let Some(p) = self.pending.get_mut(&id) {
                        self.due.remove(&(p.due_ms, id));
                        p.attempts = p.attempts.max(a.attempt);
                        p.due_ms = next;
                        self.due.insert((next, id));
                    }
                }
                _ => self.finish(id),
            },
            WebhookDeliveryEvent::WebhookDeliveryCancelled(_) => self.finish(id),
            WebhookDeliveryEvent::WebhookDeliveryListed(_) => {
                tracing::error!(stream = %r.stream, "webhooks: a delivery log line in a delivery");
            }
        }
    }

    /// An attempt of `id` is over (recorded or not).
    fn landed(&mut self, id: Uuid) {
        if let Some(p) = self.pending.get_mut(&id) {
            if p.in_flight {
                p.in_flight = false;
                self.in_flight -= 1;
                if let Some(n) = self.in_flight_to.get_mut(&p.webhook) {
                    *n -= 1;
                    if *n == 0 {
                        self.in_flight_to.remove(&p.webhook);
                    }
                }
            }
        }
    }

    fn finish(&mut self, id: Uuid) {
        self.landed(id);
        if let Some(p) = self.pending.remove(&id) {
            self.due.remove(&(p.due_ms, id));
            self.by_position.remove(&p.queued_at);
        }
    }

    /// Takes the deliveries due at `now` that may start.
    fn start_due(&mut self, now: u64) -> Vec<(Uuid, Uuid, OrgId, String, u32)> {
        let mut started = Vec::new();
        let mut skipped = Vec::new();
        while self.in_flight < MAX_IN_FLIGHT {
            let Some(&(due, id)) = self.due.iter().find(|(due, id)| {
                *due <= now
                    && !skipped.contains(id)
                    && self.pending.get(id).is_some_and(|p| {
                        self.in_flight_to.get(&p.webhook).copied().unwrap_or(0)
                            < MAX_IN_FLIGHT_PER_ENDPOINT
                    })
            }) else {
                break;
            };
            let Some(p) = self.pending.get_mut(&id) else {
                self.due.remove(&(due, id));
                skipped.push(id);
                continue;
            };
            self.due.remove(&(due, id));
            p.in_flight = true;
            self.in_flight += 1;
            *self.in_flight_to.entry(p.webhook).or_default() += 1;
            started.push((id, p.webhook, p.org, p.event.clone(), p.attempts + 1));
        }
        started
    }

    /// An attempt that could not be recorded: try again at `at`.
    fn retry_at(&mut self, id: Uuid, at: u64) {
        self.landed(id);
        if let Some(p) = self.pending.get_mut(&id) {
            self.due.remove(&(p.due_ms, id));
            p.due_ms = at;
            self.due.insert((at, id));
        }
    }

    /// When the next delivery falls due after `now`. Those due already were started by
    /// [`Self::start_due`] or are held back by the caps: an attempt landing wakes the loop
    /// for them, not a timer (which would spin while they wait).
    fn next_due_after(&self, now: u64) -> Option<u64> {
        self.due
            .range((now.saturating_add(1), Uuid::nil())..)
            .next()
            .map(|(due, _)| *due)
    }

    /// The checkpoint: just before the oldest pending delivery, else the last position read.
    fn checkpoint(&self, last: Option<u64>) -> Option<u64> {
        match self.by_position.first_key_value() {
            Some((oldest, _)) => oldest.checked_sub(1),
            None => last,
        }
    }
}

fn now_ms() -> u64 {
    super::now_ms()
}

/// Attempts queued deliveries until the log closes.
///
/// Publishes its position under [`CHECKPOINT`] in `progress` whenever no attempt is in
/// flight: the position just before the oldest delivery still pending (a retry waits),
/// else through everything the log holds. So a delivery counts as handled once it is
/// delivered, given up or cancelled, and a test that waits for the followers to settle
/// waits for its retries too.
pub(super) async fn dispatch(
    store: Arc<dyn EventStore>,
    progress: tokio::sync::watch::Sender<Option<u64>>,
    sender: Arc<Sender>,
) {
    let saved = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.read_checkpoint_blocking(CHECKPOINT))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten()
    };
    let mut book = Book::default();
    let mut last = saved;
    // Everything recorded so far first: no attempt before the outcomes are known.
    loop {
        let from = last.map_or(0, |p| p + 1);
        let page = match eventlog::store::nonblocking::read_category(&store, DELIVERY, from, 1_024)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "webhooks: cannot read the deliveries; retrying");
                tokio::time::sleep(RECORD_RETRY).await;
                continue;
            }
        };
        let Some(end) = page.last().map(|r| r.position) else {
            break;
        };
        for r in &page {
            book.apply(r);
        }
        last = Some(end);
    }
    let from = last.map_or(StartFrom::Beginning, StartFrom::After);
    // What the subscription has handed out, all of it handled but the attempts it started
    // (which this loop knows of): published on, once none is in flight.
    let (seen_tx, mut seen) = tokio::sync::watch::channel(None);
    let mut sub = match Subscription::new(
        store.clone(),
        SubscriptionTarget::Category(DELIVERY.to_owned()),
        from,
    ) {
        Ok(s) => s.with_progress(seen_tx),
        Err(e) => {
            tracing::error!(error = %e, "webhooks: cannot follow the deliveries; none are sent");
            return;
        }
    };
    let (landed_tx, mut landed_rx) = tokio::sync::mpsc::unbounded_channel::<(Uuid, u64)>();
    let mut saved_at = saved;
    loop {
        let now = now_ms();
        for (id, webhook, org, event, attempt) in book.start_due(now) {
            let (store, sender, landed) = (store.clone(), sender.clone(), landed_tx.clone());
            tokio::spawn(async move {
                if let Err(why) =
                    attempt_one(&store, &sender, id, webhook, org, &event, attempt).await
                {
                    tracing::warn!(delivery = %id, %why, "webhooks: attempt not recorded; trying again later");
                    let at = now_ms() + u64::try_from(RECORD_RETRY.as_millis()).unwrap_or(5_000);
                    let _ = landed.send((id, at));
                }
            });
        }
        let checkpoint = book.checkpoint(last);
        if checkpoint != saved_at && sub.buffered() == 0 {
            if let Some(position) = checkpoint {
                let store = store.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    store.write_checkpoint_blocking(CHECKPOINT, position)
                })
                .await;
            }
            saved_at = checkpoint;
        }
        publish_handled(&book, &mut seen, &progress);
        let wait = book
            .next_due_after(now)
            .map_or(Duration::from_secs(60), |due| {
                Duration::from_millis((due - now).min(60_000))
            });
        let until = tokio::time::Instant::now() + wait;
        // Log batches of other categories only move what is published: they wake this
        // inner loop, never the scan for due deliveries above.
        loop {
            tokio::select! {
                next = sub.next() => {
                    match next {
                        Ok(r) => {
                            book.apply(&r);
                            last = Some(r.position);
                        }
                        Err(e) => {
                            tracing::info!(error = %e, "webhooks: dispatcher stopped");
                            return;
                        }
                    }
                    break;
                }
                Some((id, at)) = landed_rx.recv() => {
                    book.retry_at(id, at);
                    break;
                }
                Ok(()) = seen.changed() => publish_handled(&book, &mut seen, &progress),
                () = tokio::time::sleep_until(until) => break,
            }
        }
    }
}

/// Publishes how far the dispatcher has handled the log, when no attempt is in flight:
/// just before the oldest pending delivery, else through what the subscription has seen.
fn publish_handled(
    book: &Book,
    seen: &mut tokio::sync::watch::Receiver<Option<u64>>,
    progress: &tokio::sync::watch::Sender<Option<u64>>,
) {
    if book.in_flight == 0 {
        if let Some(position) = book.checkpoint(*seen.borrow_and_update()) {
            eventlog::progress::publish(progress, position);
        }
    }
}

/// Makes attempt `attempt` of delivery `id` and records it.
///
/// # Errors
/// When the outcome could not be recorded (or the delivery not read).
async fn attempt_one(
    store: &Arc<dyn EventStore>,
    sender: &Sender,
    id: Uuid,
    webhook: Uuid,
    org: OrgId,
    event: &str,
    attempt: u32,
) -> Result<(), String> {
    let stream = delivery_stream(id);
    let first = eventlog::store::nonblocking::read_stream(store, &stream, 0, Direction::Forward, 1)
        .await
        .map_err(|e| e.to_string())?;
    let sealer = actors::sealing::Sealer::of(&**store);
    // Its body is opened on a blocking thread (the key may be read from storage).
    let read = tokio::task::spawn_blocking(move || {
        first.first().map(|r| read_record(r, &sealer)).transpose()
    });
    let Some(Record::Queued(queued)) = read.await.map_err(|e| e.to_string())?? else {
        return Err(format!("{stream} does not start with its queueing"));
    };
    let (endpoints, _) = load(store, org).await.map_err(|e| e.to_string())?;
    let endpoint = endpoints.into_iter().find(|e| e.id == webhook);
    let record = match endpoint {
        // The text it quotes was erased: never sent.
        Some(_) if queued.erased => {
            record_data(&cancellation("the message text it quotes was erased"), None)?
        }
        None => record_data(&cancellation("the webhook was removed"), None)?,
        Some(endpoint) => {
            let at_ms = now_ms();
            let started = std::time::Instant::now();
            let outcome = sender
                .post(&endpoint, event, id, queued.body.as_bytes())
                .await;
            let took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let (status, error, asked) = match outcome {
                Ok(status) => (Some(status), None, None),
                Err(r) => (r.status, Some(truncate(r.why)), r.retry_after),
            };
            // The schedule's pause, or longer if the receiver asked for it (429/503 with
            // `Retry-After`), never beyond the schedule's longest pause.
            let next_at_ms = error.as_ref().and_then(|_| {
                pause_after(&sender.config.retry_after, attempt, id).map(|p| {
                    let longest = sender.config.retry_after.iter().max().copied();
                    let p = asked.map_or(p, |a| p.max(a.min(longest.unwrap_or(a))));
                    now_ms() + u64::try_from(p.as_millis()).unwrap_or(u64::MAX / 2)
                })
            });
            if error.is_some() && next_at_ms.is_none() {
                tracing::warn!(webhook = %endpoint.id, delivery = %id, attempts = attempt, "webhook delivery given up");
            }
            record_data(
                &WebhookDeliveryEvent::WebhookDeliveryAttempted(WebhookDeliveryAttempted {
                    attempt,
                    at_ms,
                    took_ms,
                    status,
                    error,
                    next_at_ms,
                }),
                None,
            )?
        }
    };
    store
        .append(stream, ExpectedVersion::Any, vec![record])
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_ERROR_LEN {
        let mut end = MAX_ERROR_LEN;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

// ---------------------------------------------------------------------------------------
// The delivery log as admins read it (the routes are the gateway's `routes::webhooks`).

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not attempted yet, or failed and waiting for its next attempt.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed: given up.
    Failed,
    /// Not sent: the endpoint was removed first, or the text it quotes was erased.
    Cancelled,
}

/// One delivery, as the log lists it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DeliveryView {
    #[schemars(with = "String")]
    pub delivery_id: Uuid,
    /// The notification's type, e.g. `message.inbound`.
    pub event: String,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    pub created_at_ms: u64,
    pub last_attempt_at_ms: Option<u64>,
    /// The receiver's HTTP status at the last attempt, when it answered.
    pub last_status_code: Option<u16>,
    /// Why the last attempt failed (or why the delivery was cancelled).
    pub last_error: Option<String>,
    /// When the next attempt is due (pending only).
    pub next_attempt_at_ms: Option<u64>,
    /// The delivery this one sends again (an admin's redelivery).
    #[schemars(with = "Option<String>")]
    pub redelivery_of: Option<Uuid>,
}

/// One attempt, in a delivery's detail.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AttemptView {
    pub attempt: u32,
    pub at_ms: u64,
    pub took_ms: u64,
    pub status_code: Option<u16>,
    pub error: Option<String>,
}

/// `GET /v1/webhooks/{id}/deliveries/{delivery_id}` answer.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliveryView,
    /// The body every attempt sends.
    pub request_body: serde_json::Value,
    /// Oldest first.
    pub attempt_log: Vec<AttemptView>,
}

/// `GET /v1/webhooks/{id}/deliveries` answer, newest first.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DeliveryList {
    pub items: Vec<DeliveryView>,
    /// Pass as `before` for the next (older) page; `null` on the last.
    pub next_before: Option<u64>,
}

/// `GET /v1/webhooks/{id}/deliveries` query.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryPage {
    /// Most deliveries (default 50, at most 200).
    pub limit: Option<usize>,
    /// Only deliveries older than this cursor (a previous page's `next_before`).
    pub before: Option<u64>,
    /// Only deliveries in this state. A page reads at most [`MAX_SCAN`] deliveries to
    /// fill itself, so it may hold fewer than `limit` and still have a `next_before`.
    pub status: Option<DeliveryStatus>,
}

/// Most deliveries one filtered page reads.
pub const MAX_SCAN: usize = 2_000;

/// Cancels the deliveries of a removed endpoint that are still pending, at once (the
/// dispatcher would otherwise find out at each one's next attempt, up to hours later).
/// Reads the endpoint's log newest first, as far back as a delivery can still be pending
/// (a day). Returns how many it cancelled.
///
/// # Errors
/// The log's, as text.
pub async fn cancel_pending(store: &Arc<dyn EventStore>, webhook: Uuid) -> Result<usize, String> {
    let oldest = now_ms().saturating_sub(24 * 3600 * 1000);
    let mut cursor = u64::MAX;
    let mut cancelled = 0;
    loop {
        let lines = eventlog::store::nonblocking::read_stream(
            store,
            &log_stream(webhook),
            cursor,
            Direction::Backward,
            MAX_PAGE,
        )
        .await
        .map_err(|e| e.to_string())?;
        for line in &lines {
            let listed = read_listed(line)?;
            if listed.at_ms < oldest {
                return Ok(cancelled);
            }
            let records = eventlog::store::nonblocking::read_stream(
                store,
                &delivery_stream(listed.delivery),
                0,
                Direction::Forward,
                usize::MAX,
            )
            .await
            .map_err(|e| e.to_string())?;
            let pending = fold(&records, &actors::sealing::Sealer::clear())?
                .is_some_and(|f| f.view.status == DeliveryStatus::Pending);
            if !pending {
                continue;
            }
            let record = record_data(
                &cancellation("the webhook was removed"),
                Some(Uuid::new_v5(&listed.delivery, b"cancelled: removed")),
            )?;
            match store
                .append(
                    delivery_stream(listed.delivery),
                    ExpectedVersion::Any,
                    vec![record],
                )
                .await
            {
                Ok(_) => cancelled += 1,
                Err(eventlog::AppendError::EventIdReused { .. }) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        match lines.last() {
            Some(last) if lines.len() == MAX_PAGE && last.version > 0 => cursor = last.version - 1,
            _ => return Ok(cancelled),
        }
    }
}

/// Most deliveries one page lists.
pub const MAX_PAGE: usize = 200;

/// A delivery as its records fold: what was queued, its view and its attempts.
pub struct Folded {
    pub queued: Queued,
    pub view: DeliveryView,
    pub attempts: Vec<AttemptView>,
}

fn fold(
    records: &[RecordedEvent],
    sealer: &actors::sealing::Sealer,
) -> Result<Option<Folded>, String> {
    let mut folded: Option<Folded> = None;
    for r in records {
        match read_record(r, sealer)? {
            Record::Queued(q) => {
                folded = Some(Folded {
                    view: DeliveryView {
                        delivery_id: q.delivery,
                        event: q.event.clone(),
                        status: DeliveryStatus::Pending,
                        attempts: 0,
                        created_at_ms: q.at_ms,
                        last_attempt_at_ms: None,
                        last_status_code: None,
                        last_error: None,
                        next_attempt_at_ms: Some(q.at_ms),
                        redelivery_of: q.redelivery_of,
                    },
                    queued: q,
                    attempts: Vec::new(),
                });
            }
            Record::Attempted(a) => {
                let Some(f) = folded.as_mut() else { continue };
                let v = &mut f.view;
                v.attempts = v.attempts.max(a.attempt);
                v.last_attempt_at_ms = Some(a.at_ms);
                v.last_status_code = a.status;
                v.last_error.clone_from(&a.error);
                v.next_attempt_at_ms = a.next_at_ms.filter(|_| a.error.is_some());
                v.status = match (&a.error, a.next_at_ms) {
                    (None, _) => DeliveryStatus::Delivered,
                    (Some(_), Some(_)) => DeliveryStatus::Pending,
                    (Some(_), None) => DeliveryStatus::Failed,
                };
                f.attempts.push(AttemptView {
                    attempt: a.attempt,
                    at_ms: a.at_ms,
                    took_ms: a.took_ms,
                    status_code: a.status,
                    error: a.error,
                });
            }
            Record::Cancelled(WebhookDeliveryCancelled { reason, .. }) => {
                let Some(f) = folded.as_mut() else { continue };
                if f.view.status == DeliveryStatus::Pending {
                    f.view.status = DeliveryStatus::Cancelled;
                    f.view.last_error = Some(reason);
                    f.view.next_attempt_at_ms = None;
                }
            }
        }
    }
    Ok(folded)
}

/// Delivery `id` as its records fold, if it exists.
///
/// # Errors
/// The log's, or an undecodable record.
pub async fn read_delivery(
    store: &Arc<dyn EventStore>,
    id: Uuid,
) -> Result<Option<Folded>, super::ReadFailure> {
    let records = eventlog::store::nonblocking::read_stream(
        store,
        &delivery_stream(id),
        0,
        Direction::Forward,
        usize::MAX,
    )
    .await?;
    let sealer = actors::sealing::Sealer::of(&**store);
    tokio::task::spawn_blocking(move || fold(&records, &sealer))
        .await
        .map_err(|e| super::ReadFailure::Record(e.to_string()))?
        .map_err(super::ReadFailure::Record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(position: u64, id: Uuid, data: EventData) -> RecordedEvent {
        RecordedEvent::unchained(delivery_stream(id), position, data)
    }

    fn recorded(position: u64, id: Uuid, record: &WebhookDeliveryEvent) -> RecordedEvent {
        stored(position, id, record_data(record, None).unwrap())
    }

    fn queued(id: Uuid, webhook: Uuid) -> WebhookDeliveryEvent {
        WebhookDeliveryEvent::WebhookDeliveryQueued(WebhookDeliveryQueued {
            delivery: id,
            webhook,
            org: OrgId::random(),
            event: "message.inbound".into(),
            body: "{}".into(),
            cause: None,
            redelivery_of: None,
            by: None,
            at_ms: 1,
            sealed: None,
        })
    }

    fn attempted(
        attempt: u32,
        error: Option<&str>,
        next_at_ms: Option<u64>,
    ) -> WebhookDeliveryEvent {
        WebhookDeliveryEvent::WebhookDeliveryAttempted(WebhookDeliveryAttempted {
            attempt,
            at_ms: 2,
            took_ms: 1,
            status: Some(500),
            error: error.map(str::to_owned),
            next_at_ms,
        })
    }

    #[test]
    fn the_book_attempts_what_is_due_and_keeps_its_checkpoint_before_the_oldest_pending() {
        let mut book = Book::default();
        let webhook = Uuid::new_v4();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        book.apply(&recorded(10, a, &queued(a, webhook)));
        book.apply(&recorded(11, b, &queued(b, webhook)));
        assert_eq!(book.checkpoint(Some(11)), Some(9));
        let started = book.start_due(100);
        assert_eq!(started.len(), 2);
        assert!(started.iter().all(|s| s.4 == 1), "first attempts");
        assert!(
            book.start_due(100).is_empty(),
            "in flight: not started twice"
        );
        // a failed and waits until 500; b is delivered.
        book.apply(&recorded(
            12,
            a,
            &attempted(1, Some("answered 500"), Some(500)),
        ));
        book.apply(&recorded(13, b, &attempted(1, None, None)));
        assert_eq!(book.checkpoint(Some(13)), Some(9));
        assert!(book.start_due(499).is_empty());
        assert_eq!(book.next_due_after(499), Some(500));
        let again = book.start_due(500);
        assert_eq!(again.len(), 1);
        assert_eq!((again[0].0, again[0].4), (a, 2));
        // Given up: nothing pending, the checkpoint is the last position read.
        book.apply(&recorded(14, a, &attempted(2, Some("answered 500"), None)));
        assert!(book.pending.is_empty() && book.due.is_empty());
        assert_eq!(book.in_flight, 0);
        assert_eq!(book.checkpoint(Some(14)), Some(14));
    }

    #[test]
    fn one_endpoint_cannot_take_every_attempt() {
        let mut book = Book::default();
        let (slow, other) = (Uuid::new_v4(), Uuid::new_v4());
        for i in 0..10 {
            let id = Uuid::new_v4();
            book.apply(&recorded(i, id, &queued(id, slow)));
        }
        let id = Uuid::new_v4();
        book.apply(&recorded(10, id, &queued(id, other)));
        let started = book.start_due(1);
        let to_slow = started.iter().filter(|s| s.1 == slow).count();
        assert_eq!(to_slow, MAX_IN_FLIGHT_PER_ENDPOINT);
        assert!(started.iter().any(|s| s.1 == other));
        // The held-back ones do not make the loop wake at once; a later retry still does.
        assert_eq!(book.next_due_after(1), None);
        let later = Uuid::new_v4();
        book.apply(&recorded(11, later, &queued(later, other)));
        book.apply(&recorded(
            12,
            later,
            &attempted(1, Some("answered 500"), Some(900)),
        ));
        assert_eq!(book.next_due_after(1), Some(900));
    }

    #[test]
    fn pauses_follow_the_schedule_stretched_by_at_most_a_tenth() {
        let schedule = [Duration::from_secs(10), Duration::from_secs(3600)];
        for _ in 0..50 {
            let id = Uuid::new_v4();
            let first = pause_after(&schedule, 1, id).unwrap();
            assert!(
                first >= schedule[0] && first <= schedule[0].mul_f64(1.1),
                "{first:?}"
            );
            let second = pause_after(&schedule, 2, id).unwrap();
            assert!(second >= schedule[1] && second <= schedule[1].mul_f64(1.1));
            assert_eq!(pause_after(&schedule, 3, id), None);
            assert_eq!(pause_after(&schedule, 0, id), None);
        }
    }

    #[test]
    fn a_delivery_folds_to_its_last_outcome() {
        let (id, webhook) = (Uuid::new_v4(), Uuid::new_v4());
        let records = [
            recorded(1, id, &queued(id, webhook)),
            recorded(2, id, &attempted(1, Some("answered 503"), Some(9))),
        ];
        let f = fold(&records, &actors::sealing::Sealer::clear())
            .unwrap()
            .unwrap();
        assert_eq!(f.view.status, DeliveryStatus::Pending);
        assert_eq!(f.view.next_attempt_at_ms, Some(9));
        assert_eq!(f.view.last_error.as_deref(), Some("answered 503"));
        let cancelled = [
            records[0].clone(),
            records[1].clone(),
            recorded(
                3,
                id,
                &WebhookDeliveryEvent::WebhookDeliveryCancelled(WebhookDeliveryCancelled {
                    reason: "the webhook was removed".into(),
                    at_ms: 3,
                }),
            ),
        ];
        let f = fold(&cancelled, &actors::sealing::Sealer::clear())
            .unwrap()
            .unwrap();
        assert_eq!(
            (f.view.status, f.view.attempts),
            (DeliveryStatus::Cancelled, 1)
        );
        assert_eq!(f.attempts.len(), 1);
        assert_eq!(
            truncate("é".repeat(400)).chars().count(),
            MAX_ERROR_LEN / 2 + 1
        );
    }

    /// The delivery records as this module wrote them before they were domain events
    /// (verbatim but for two fields serde skipped): one enum, encoded whole under version 1
    /// of each event type.
    mod old {
        use serde::Serialize;

        use super::*;

        #[derive(Serialize)]
        pub struct Queued {
            pub delivery: Uuid,
            pub webhook: Uuid,
            pub org: OrgId,
            pub event: String,
            pub body: String,
            pub cause: Option<Uuid>,
            pub redelivery_of: Option<Uuid>,
            pub by: Option<UserId>,
            pub at_ms: u64,
            // (And two fields serde skipped: not stored.)
        }

        #[derive(Serialize)]
        pub struct SealedQueued {
            pub queued: Queued,
            pub key: domain::TextKey,
            pub sealed: Vec<u8>,
        }

        #[derive(Serialize)]
        pub struct Attempted {
            pub attempt: u32,
            pub at_ms: u64,
            pub took_ms: u64,
            pub status: Option<u16>,
            pub error: Option<String>,
            pub next_at_ms: Option<u64>,
        }

        #[derive(Serialize)]
        pub enum Record {
            Queued(Queued),
            Attempted(Attempted),
            Cancelled { reason: String, at_ms: u64 },
            QueuedSealed(SealedQueued),
        }

        #[derive(Serialize)]
        pub struct Listed {
            pub delivery: Uuid,
            pub event: String,
            pub at_ms: u64,
        }

        pub fn data(event_type: &str, payload: &impl Serialize) -> EventData {
            EventData::new(event_type, 1, eventlog::codec::encode(payload).unwrap())
        }

        pub fn queued(id: Uuid, webhook: Uuid, org: OrgId, body: &str) -> Queued {
            Queued {
                delivery: id,
                webhook,
                org,
                event: "message.inbound".into(),
                body: body.into(),
                cause: Some(Uuid::from_u128(7)),
                redelivery_of: None,
                by: None,
                at_ms: 1,
            }
        }
    }

    #[test]
    fn deliveries_written_before_they_were_domain_events_still_read() {
        let (id, webhook, org) = (Uuid::new_v4(), Uuid::new_v4(), OrgId::random());
        let body = r#"{"type":"message.inbound"}"#;
        let records = [
            stored(
                1,
                id,
                old::data(
                    "WebhookDeliveryQueued",
                    &old::Record::Queued(old::queued(id, webhook, org, body)),
                ),
            ),
            stored(
                2,
                id,
                old::data(
                    "WebhookDeliveryAttempted",
                    &old::Record::Attempted(old::Attempted {
                        attempt: 1,
                        at_ms: 2,
                        took_ms: 3,
                        status: Some(503),
                        error: Some("answered 503".into()),
                        next_at_ms: Some(9),
                    }),
                ),
            ),
            stored(
                3,
                id,
                old::data(
                    "WebhookDeliveryCancelled",
                    &old::Record::Cancelled {
                        reason: "the webhook was removed".into(),
                        at_ms: 4,
                    },
                ),
            ),
        ];
        let f = fold(&records, &actors::sealing::Sealer::clear())
            .unwrap()
            .unwrap();
        assert_eq!(
            (f.queued.delivery, f.queued.webhook, f.queued.org),
            (id, webhook, org)
        );
        assert_eq!(f.queued.body, body);
        assert_eq!(f.queued.cause, Some(Uuid::from_u128(7)));
        assert_eq!(
            (f.view.status, f.view.attempts, f.view.last_status_code),
            (DeliveryStatus::Cancelled, 1, Some(503))
        );
        assert_eq!(
            f.view.last_error.as_deref(),
            Some("the webhook was removed")
        );

        // The dispatcher's book reads them too: queued, waiting, then done.
        let mut book = Book::default();
        book.apply(&records[0]);
        assert_eq!(book.start_due(0).len(), 1);
        book.apply(&records[1]);
        assert_eq!(book.next_due_after(0), Some(9));
        book.apply(&records[2]);
        assert!(book.pending.is_empty());

        // A body quoting a text was stored as another variant, under the same type.
        let key = domain::TextKey::new(org, vec![], 1_700_000_000_000);
        let sealed = old::Record::QueuedSealed(old::SealedQueued {
            queued: old::queued(id, webhook, org, ""),
            key: key.clone(),
            // Sealer::clear() seals nothing: the body is its own sealing.
            sealed: body.as_bytes().to_vec(),
        });
        let record = stored(1, id, old::data("WebhookDeliveryQueued", &sealed));
        let Record::Queued(q) = read_record(&record, &actors::sealing::Sealer::clear()).unwrap()
        else {
            panic!("not a queueing")
        };
        assert_eq!((q.body.as_str(), q.key, q.erased), (body, Some(key), false));
        // One variant stored under another's type is refused, not misread.
        let misnamed = stored(1, id, old::data("WebhookDeliveryAttempted", &sealed));
        assert!(read_record(&misnamed, &actors::sealing::Sealer::clear()).is_err());

        // The log lines were bare structs: the same bytes as the domain's, version 1.
        let listed = old::data(
            "WebhookDeliveryListed",
            &old::Listed {
                delivery: id,
                event: "message.inbound".into(),
                at_ms: 1,
            },
        );
        let now = record_data(
            &WebhookDeliveryEvent::WebhookDeliveryListed(WebhookDeliveryListed {
                delivery: id,
                event: "message.inbound".into(),
                at_ms: 1,
            }),
            None,
        )
        .unwrap();
        assert_eq!(
            (now.event_type.as_str(), now.schema_version, &now.payload),
            ("WebhookDeliveryListed", 1, &listed.payload)
        );
        assert_eq!(
            read_listed(&stored(1, webhook, listed)).unwrap().delivery,
            id
        );
    }

    #[test]
    fn deliveries_are_written_as_version_2_bare_structs() {
        let record = queued(Uuid::new_v4(), Uuid::new_v4());
        let data = record_data(&record, None).unwrap();
        assert_eq!(
            (data.event_type.as_str(), data.schema_version),
            ("WebhookDeliveryQueued", 2)
        );
        let WebhookDeliveryEvent::WebhookDeliveryQueued(q) = record else {
            unreachable!()
        };
        assert_eq!(data.payload, eventlog::codec::encode(&q).unwrap());
    }
}
