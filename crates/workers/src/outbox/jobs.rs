//! One job per outbound text: call the carrier, write the outcome, retry with backoff.
//!
//! A job holds a call slot (a semaphore permit) only while the carrier is being called,
//! so texts waiting for a retry never block others. Every outcome is written to the
//! text's outbox stream before the job moves on; appends that fail for a passing reason
//! (overload, storage hiccup) are repeated with the same event ids, which the log
//! recognises.

use std::sync::Arc;
use std::time::Duration;

use carrier::{OutboundSms, SendError};
use eventlog::{AppendError, AppendResult, Direction, EventData, ExpectedVersion, StreamName};
use tokio::sync::OwnedSemaphorePermit;
use uuid::Uuid;

use super::records::{
    idempotency_key, outbox_event_id, outbox_stream, record, OutboxState, Pending,
};
use super::Shared;
use domain::outbox::{OutboxEvent, SmsAccepted, SmsPrepared, SmsSendFailed, SmsSendStarted};

/// How often a job waiting for a status report to confirm a lost outcome looks again.
const CONFIRMATION_POLL: Duration = Duration::from_millis(200);

/// What a job does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    /// Call the carrier for `attempt`; `started`: its `SmsSendStarted` is written already.
    Send { attempt: u32, started: bool },
    /// `attempt` started before a crash and its outcome is unknown.
    Unconfirmed { attempt: u32 },
    /// Wait until `at_ms`, then start `attempt`.
    RetryAt { attempt: u32, at_ms: u64 },
}

impl Step {
    pub(super) fn of(pending: Pending) -> Option<Step> {
        match pending {
            Pending::Nothing => None,
            Pending::Unconfirmed { attempt } => Some(Step::Unconfirmed { attempt }),
            Pending::RetryAt { attempt, at_ms } => Some(Step::RetryAt { attempt, at_ms }),
        }
    }
}

/// Appends, repeating after passing failures (same ids: the log recognises a repeat).
/// Gives up on refusals (version, reused ids) and when the log is closed.
pub(super) async fn append(
    shared: &Shared,
    stream: &StreamName,
    events: Vec<EventData>,
) -> Result<AppendResult, AppendError> {
    let mut pause = Duration::from_millis(20);
    let mut tries = 0;
    loop {
        let result = shared
            .ws
            .store
            .append(stream.clone(), ExpectedVersion::Any, events.clone())
            .await;
        match result {
            Err(AppendError::Overloaded) | Err(AppendError::Storage(_)) if tries < 50 => {
                tries += 1;
                tracing::warn!(%stream, "outbox append failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            other => return other,
        }
    }
}

/// The outbox stream's current state.
pub(super) async fn read_state(shared: &Shared, id: Uuid) -> Result<OutboxState, String> {
    let records = eventlog::store::nonblocking::read_stream(
        &shared.ws.store,
        &outbox_stream(id),
        0,
        Direction::Forward,
        4096,
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(OutboxState::from_records(&records))
}

/// Starts a job for outbox `id` unless one runs: what is left to do is read from its
/// stream. Used on recovery and when a request turns out to be prepared already.
pub(super) async fn ensure_running(shared: &Arc<Shared>, id: Uuid) -> Result<(), String> {
    if shared.active.lock().is_ok_and(|a| a.contains(&id)) {
        return Ok(());
    }
    let records = eventlog::store::nonblocking::read_stream(
        &shared.ws.store,
        &outbox_stream(id),
        0,
        Direction::Forward,
        4096,
    )
    .await
    .map_err(|e| e.to_string())?;
    let state = OutboxState::from_records(&records);
    let step = Step::of(state.pending());
    let (Some(prepared), Some(step)) = (state.prepared, step) else {
        return Ok(());
    };
    if let Some(first) = records.first() {
        shared.opened(id, first.position);
    }
    spawn(shared, id, prepared, step, None);
    Ok(())
}

/// Runs the job of outbox `id` on its own task, unless one is running already.
pub(super) fn spawn(
    shared: &Arc<Shared>,
    id: Uuid,
    prepared: SmsPrepared,
    step: Step,
    permit: Option<OwnedSemaphorePermit>,
) {
    let fresh = shared.active.lock().is_ok_and(|mut a| a.insert(id));
    if !fresh {
        return;
    }
    let shared = shared.clone();
    tokio::spawn(async move {
        if run(&shared, id, &prepared, step, permit).await {
            shared.finished(id);
        }
        if let Ok(mut active) = shared.active.lock() {
            active.remove(&id);
        }
    });
}

fn outbound(shared: &Shared, id: Uuid, prepared: &SmsPrepared, body: String) -> OutboundSms {
    OutboundSms {
        idempotency_key: idempotency_key(&prepared.origin, &prepared.to),
        from: prepared.from.to_string(),
        to: prepared.to.to_string(),
        body,
        media: match &shared.config.media_url {
            Some(url) => prepared.media.iter().filter_map(|a| url(a)).collect(),
            None => Vec::new(),
        },
        status_callback: shared.config.status_callback.as_ref().map(|url| url(id)),
    }
}

async fn write(shared: &Shared, id: Uuid, what: &str, event: OutboxEvent) -> bool {
    let data = match record(&event, outbox_event_id(id, what)) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(outbox = %id, error = %e, "outbox record not encodable");
            return false;
        }
    };
    match append(shared, &outbox_stream(id), vec![data]).await {
        Ok(_) => true,
        // Written before with other content: for `accepted`, a status report confirmed the
        // text first, which is the same fact.
        Err(AppendError::EventIdReused { .. }) => true,
        Err(e) => {
            tracing::error!(outbox = %id, what, error = %e, "outbox record not written");
            false
        }
    }
}

/// Works the text until it is accepted or failed for good (true), or until its job must
/// give up with the text still open (false: a record could not be written, the log is
/// closing), which the next start resumes.
async fn run(
    shared: &Shared,
    id: Uuid,
    prepared: &SmsPrepared,
    mut step: Step,
    mut permit: Option<OwnedSemaphorePermit>,
) -> bool {
    loop {
        step = match step {
            Step::RetryAt { attempt, at_ms } => {
                drop(permit.take());
                shared.clock.sleep_until(at_ms).await;
                Step::Send {
                    attempt,
                    started: false,
                }
            }
            Step::Unconfirmed { attempt } => {
                drop(permit.take());
                if shared.config.carrier_dedupes {
                    // The carrier recognises the key: calling again cannot send twice.
                    Step::Send {
                        attempt,
                        started: true,
                    }
                } else if confirmed_meanwhile(shared, id).await {
                    return true;
                } else {
                    tracing::warn!(
                        outbox = %id,
                        attempt,
                        "no status report confirmed an attempt whose outcome was lost; sending again"
                    );
                    Step::Send {
                        attempt: attempt + 1,
                        started: false,
                    }
                }
            }
            Step::Send { attempt, started } => {
                if !started {
                    let event = OutboxEvent::SmsSendStarted(SmsSendStarted {
                        attempt,
                        at_ms: shared.clock.now_ms(),
                    });
                    if !write(shared, id, &format!("attempt-{attempt}"), event).await {
                        return false;
                    }
                }
                let slot = match permit.take() {
                    Some(p) => p,
                    None => match shared.calls.clone().acquire_owned().await {
                        Ok(p) => p,
                        Err(_) => return false,
                    },
                };
                // Read back from the log after a restart, the body is sealed; erased
                // meanwhile, it is never sent.
                let mut body = prepared.body.clone();
                shared.ws.sealer.open(&mut body).await;
                let Some(body) = body.as_plain().map(str::to_owned) else {
                    drop(slot);
                    return erased(shared, id, attempt).await;
                };
                let result = shared
                    .carrier
                    .send(outbound(shared, id, prepared, body))
                    .await;
                drop(slot);
                match outcome(shared, id, attempt, result).await {
                    Next::Step(next) => next,
                    Next::Finished => return true,
                    Next::GaveUp => return false,
                }
            }
        };
    }
}

/// The text was erased before it went out: failed for good, with that reason.
async fn erased(shared: &Shared, id: Uuid, attempt: u32) -> bool {
    let event = OutboxEvent::SmsSendFailed(SmsSendFailed {
        attempt,
        code: "erased".into(),
        message: "the text was erased before it was sent".into(),
        retry_at_ms: None,
        at_ms: shared.clock.now_ms(),
    });
    write(shared, id, &format!("failed-{attempt}"), event).await
}

/// What follows a call.
enum Next {
    Step(Step),
    /// Accepted, or failed for good, and written.
    Finished,
    /// The outcome could not be written.
    GaveUp,
}

/// Writes what one call came to; what follows.
async fn outcome(
    shared: &Shared,
    id: Uuid,
    attempt: u32,
    result: Result<carrier::Accepted, SendError>,
) -> Next {
    let now = shared.clock.now_ms();
    match result {
        Ok(accepted) => {
            let event = OutboxEvent::SmsAccepted(SmsAccepted {
                attempt,
                carrier: shared.carrier.name().to_owned(),
                carrier_message_id: accepted.carrier_message_id,
                status: accepted.status.as_str().to_owned(),
                confirmed_by: "response".to_owned(),
                at_ms: now,
            });
            if write(shared, id, "accepted", event).await {
                Next::Finished
            } else {
                Next::GaveUp
            }
        }
        Err(e) => {
            let backoff = shared.config.backoff.with_seed_from(&id.to_string());
            let delay = e
                .is_retryable()
                .then(|| backoff.next_delay(attempt, e.retry_after()))
                .flatten();
            let retry_at_ms =
                delay.map(|d| now.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)));
            let event = OutboxEvent::SmsSendFailed(SmsSendFailed {
                attempt,
                code: e.carrier_code().to_owned(),
                message: e.message().to_owned(),
                retry_at_ms,
                at_ms: now,
            });
            if !write(shared, id, &format!("failed-{attempt}"), event).await {
                return Next::GaveUp;
            }
            match retry_at_ms {
                Some(at_ms) => Next::Step(Step::RetryAt {
                    attempt: attempt + 1,
                    at_ms,
                }),
                None => Next::Finished,
            }
        }
    }
}

/// Waits up to the grace period for a status report to confirm the text; true if one did.
async fn confirmed_meanwhile(shared: &Shared, id: Uuid) -> bool {
    let deadline = tokio::time::Instant::now() + shared.config.unconfirmed_grace;
    loop {
        match read_state(shared, id).await {
            Ok(state) if state.accepted.is_some() => return true,
            Ok(_) => {}
            Err(e) => tracing::warn!(outbox = %id, error = %e, "outbox stream unreadable"),
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(CONFIRMATION_POLL).await;
    }
}
