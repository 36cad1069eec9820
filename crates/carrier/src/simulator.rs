//! The embedded carrier: the default, so `switchboard serve` needs nothing else, and the
//! carrier of tests and demos.
//!
//! * Every accepted outbound text is recorded ([`Simulator::outbound`], newest last,
//!   bounded by [`SimulatorConfig::max_recorded`]) and gets a Twilio-style `SM…` id.
//! * Sending is **idempotent by [`OutboundSms::idempotency_key`]**: a second send with a
//!   known key returns the first send's id and records nothing (a carrier that honours
//!   idempotency keys).
//! * The delivery [`Outcome`] is controllable: a default, and overrides per destination
//!   number. [`Outcome::RejectSend`] makes `send` itself fail (an outage or a refusal);
//!   [`Outcome::Hold`] keeps a message at `sent` until [`Simulator::release`].
//! * Status reports (`sent`, then `delivered`/`failed`/`undelivered`) go, per message in
//!   order, to every receiver from [`Simulator::subscribe_status`]; timing uses tokio
//!   timers on tasks spawned on the caller's runtime. Reports emitted while nobody is
//!   subscribed are dropped, and a report may arrive before `send` has returned to its
//!   caller (as with a real carrier's callbacks), so subscribe first and tolerate it.
//! * [`Simulator::inbound`] builds an [`InboundSms`] as a customer's text would arrive,
//!   with a fresh `SM…` id; the caller records it like a webhook delivery.
//!
//! Validation mimics Twilio's codes: a `To` that is not E.164 is refused with `21211`, a
//! bad `From` with `21212`, a text with neither body nor media with `21602`, a body over
//! 1600 characters with `21617`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::{
    is_e164, new_message_sid, Accepted, Carrier, CarrierStatus, InboundMedia, InboundSms,
    OutboundMedia, OutboundSms, SendError, SendFuture, StatusReport,
};

/// Longest body accepted (Twilio's limit, in characters).
pub const MAX_BODY_CHARS: usize = 1600;

/// What happens to a message sent through the [`Simulator`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// `sent`, then `delivered`.
    Deliver,
    /// `sent`, then `failed` with this carrier error code.
    Fail {
        /// Carrier error code, e.g. `30008`.
        error_code: String,
    },
    /// `sent`, then `undelivered` with this carrier error code.
    Undeliver {
        /// Carrier error code, e.g. `30003`.
        error_code: String,
    },
    /// Wait `ms` milliseconds after the previous report, then apply `then`.
    Delay {
        /// Milliseconds to wait.
        ms: u64,
        /// What happens afterwards.
        then: Box<Outcome>,
    },
    /// `send` itself fails (nothing is recorded, the key is not consumed). Only meaningful
    /// as the outcome chosen at send time; anywhere else it acts as `Fail` with `code`.
    RejectSend {
        /// Error code returned to the caller.
        code: String,
        /// Whether the error is [`SendError::Retryable`] (an outage) or permanent.
        retryable: bool,
    },
    /// Stay `sent` until [`Simulator::release`] names the next outcome.
    Hold,
}

impl Outcome {
    /// `Delay { ms, then }` for brevity.
    pub fn delay(ms: u64, then: Outcome) -> Outcome {
        Outcome::Delay {
            ms,
            then: Box::new(then),
        }
    }
}

/// Limits of a [`Simulator`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimulatorConfig {
    /// How many outbound messages [`Simulator::outbound`] keeps (oldest dropped first).
    pub max_recorded: usize,
    /// How many idempotency keys are remembered (oldest forgotten first).
    pub max_idempotency_keys: usize,
}

impl Default for SimulatorConfig {
    /// 1 000 messages, 100 000 keys.
    fn default() -> Self {
        SimulatorConfig {
            max_recorded: 1_000,
            max_idempotency_keys: 100_000,
        }
    }
}

/// An outbound message as the simulator recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimMessage {
    /// The `SM…` id returned to the sender.
    pub carrier_message_id: String,
    /// The sender's idempotency key.
    pub idempotency_key: String,
    /// Sending number.
    pub from: String,
    /// Destination number.
    pub to: String,
    /// Text.
    pub body: String,
    /// MMS media.
    pub media: Vec<OutboundMedia>,
    /// The status-callback URL the sender asked for (unused by the simulator).
    pub status_callback: Option<String>,
    /// The outcome chosen at send time.
    pub outcome: Outcome,
    /// The latest status reported for it.
    pub status: CarrierStatus,
    /// When it was accepted.
    pub accepted_at: SystemTime,
}

/// [`Simulator::release`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    /// No message with this id is currently held.
    #[error("message {0} is not held")]
    NotHeld(String),
}

impl ReleaseError {
    /// Stable machine-readable code: `not_held`.
    pub fn code(&self) -> &'static str {
        match self {
            ReleaseError::NotHeld(_) => "not_held",
        }
    }
}

/// The embedded carrier. Cheap to clone; clones share state.
#[derive(Clone, Default)]
pub struct Simulator {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    config: SimulatorConfig,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    default_outcome: Option<Outcome>,
    overrides: HashMap<String, Outcome>,
    messages: VecDeque<SimMessage>,
    by_key: HashMap<String, String>,
    key_order: VecDeque<String>,
    held: HashMap<String, oneshot::Sender<Outcome>>,
    subscribers: Vec<mpsc::UnboundedSender<StatusReport>>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.inner.lock();
        f.debug_struct("Simulator")
            .field("recorded", &state.messages.len())
            .field("held", &state.held.len())
            .field("subscribers", &state.subscribers.len())
            .finish()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves consistent-enough state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Simulator {
    /// A simulator with default limits; every message is delivered.
    pub fn new() -> Simulator {
        Simulator::default()
    }

    /// A simulator with these limits.
    pub fn with_config(config: SimulatorConfig) -> Simulator {
        Simulator {
            inner: Arc::new(Inner {
                config,
                state: Mutex::default(),
            }),
        }
    }

    /// Sets the outcome for numbers without an override.
    pub fn set_default_outcome(&self, outcome: Outcome) {
        self.inner.lock().default_outcome = Some(outcome);
    }

    /// The outcome for numbers without an override ([`Outcome::Deliver`] unless set).
    pub fn default_outcome(&self) -> Outcome {
        self.inner
            .lock()
            .default_outcome
            .clone()
            .unwrap_or(Outcome::Deliver)
    }

    /// Sets the outcome for messages to `to`.
    pub fn set_outcome_for(&self, to: &str, outcome: Outcome) {
        self.inner.lock().overrides.insert(to.to_owned(), outcome);
    }

    /// Removes the override for `to`.
    pub fn clear_outcome_for(&self, to: &str) {
        self.inner.lock().overrides.remove(to);
    }

    /// The outcome a message to `to` would get now.
    pub fn outcome_for(&self, to: &str) -> Outcome {
        let state = self.inner.lock();
        outcome_in(&state, to)
    }

    /// The recorded outbound messages, oldest first, newest last.
    pub fn outbound(&self) -> Vec<SimMessage> {
        self.inner.lock().messages.iter().cloned().collect()
    }

    /// A recorded outbound message by id.
    pub fn message(&self, carrier_message_id: &str) -> Option<SimMessage> {
        self.inner
            .lock()
            .messages
            .iter()
            .find(|m| m.carrier_message_id == carrier_message_id)
            .cloned()
    }

    /// Ids of the messages currently held ([`Outcome::Hold`]).
    pub fn held(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.inner.lock().held.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// A new receiver of every status report emitted from now on.
    pub fn subscribe_status(&self) -> mpsc::UnboundedReceiver<StatusReport> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.inner.lock().subscribers.push(tx);
        rx
    }

    /// Lets a held message continue with `outcome` (which may be another `Delay`/`Hold`).
    pub fn release(&self, carrier_message_id: &str, outcome: Outcome) -> Result<(), ReleaseError> {
        let sender = self.inner.lock().held.remove(carrier_message_id);
        match sender.map(|tx| tx.send(outcome)) {
            Some(Ok(())) => Ok(()),
            _ => Err(ReleaseError::NotHeld(carrier_message_id.to_owned())),
        }
    }

    /// A text from a customer (`from`) to a business number (`to`), as it would arrive
    /// from the carrier, with a fresh `SM…` id.
    pub fn inbound(
        &self,
        from: &str,
        to: &str,
        body: &str,
        media: Vec<InboundMedia>,
    ) -> InboundSms {
        InboundSms {
            carrier_message_id: new_message_sid(),
            from: from.to_owned(),
            to: to.to_owned(),
            body: body.to_owned(),
            media,
        }
    }

    /// Sends one message; what [`Carrier::send`] does. Needs a tokio runtime (it spawns
    /// the task that emits the message's status reports).
    pub fn send_sms(&self, sms: &OutboundSms) -> Result<Accepted, SendError> {
        let mut state = self.inner.lock();
        if let Some(sid) = state.by_key.get(&sms.idempotency_key) {
            let status = state
                .messages
                .iter()
                .find(|m| &m.carrier_message_id == sid)
                .map_or(CarrierStatus::Queued, |m| m.status.clone());
            return Ok(Accepted {
                carrier_message_id: sid.clone(),
                status,
            });
        }
        validate(sms)?;
        let outcome = outcome_in(&state, &sms.to);
        if let Outcome::RejectSend { code, retryable } = &outcome {
            let message = format!("simulated carrier refused the message to {}", sms.to);
            return Err(if *retryable {
                SendError::Retryable {
                    code: code.clone(),
                    message,
                    retry_after: None,
                }
            } else {
                SendError::Permanent {
                    code: code.clone(),
                    message,
                }
            });
        }

        let sid = new_message_sid();
        let config = self.inner.config;
        state.messages.push_back(SimMessage {
            carrier_message_id: sid.clone(),
            idempotency_key: sms.idempotency_key.clone(),
            from: sms.from.clone(),
            to: sms.to.clone(),
            body: sms.body.clone(),
            media: sms.media.clone(),
            status_callback: sms.status_callback.clone(),
            outcome: outcome.clone(),
            status: CarrierStatus::Queued,
            accepted_at: SystemTime::now(),
        });
        while state.messages.len() > config.max_recorded {
            state.messages.pop_front();
        }
        state
            .by_key
            .insert(sms.idempotency_key.clone(), sid.clone());
        state.key_order.push_back(sms.idempotency_key.clone());
        while state.key_order.len() > config.max_idempotency_keys {
            if let Some(old) = state.key_order.pop_front() {
                state.by_key.remove(&old);
            }
        }
        drop(state);

        tokio::spawn(run_outcome(
            Arc::downgrade(&self.inner),
            sid.clone(),
            outcome,
        ));
        Ok(Accepted {
            carrier_message_id: sid,
            status: CarrierStatus::Queued,
        })
    }
}

impl Carrier for Simulator {
    fn name(&self) -> &'static str {
        "simulator"
    }

    fn send(&self, sms: OutboundSms) -> SendFuture<'_> {
        Box::pin(async move { self.send_sms(&sms) })
    }
}

fn outcome_in(state: &State, to: &str) -> Outcome {
    state
        .overrides
        .get(to)
        .or(state.default_outcome.as_ref())
        .cloned()
        .unwrap_or(Outcome::Deliver)
}

fn validate(sms: &OutboundSms) -> Result<(), SendError> {
    let refuse = |code: &str, message: String| {
        Err(SendError::Permanent {
            code: code.to_owned(),
            message,
        })
    };
    if !is_e164(&sms.to) {
        return refuse(
            "21211",
            format!("The 'To' number {} is not a valid phone number.", sms.to),
        );
    }
    if !is_e164(&sms.from) {
        return refuse(
            "21212",
            format!(
                "The 'From' number {} is not a valid phone number.",
                sms.from
            ),
        );
    }
    if sms.body.is_empty() && sms.media.is_empty() {
        return refuse("21602", "Message body is required.".to_owned());
    }
    if sms.body.chars().count() > MAX_BODY_CHARS {
        return refuse(
            "21617",
            "The concatenated message body exceeds the 1600 character limit.".to_owned(),
        );
    }
    Ok(())
}

/// Emits `status` for `sid` to every subscriber and records it. `false` once the
/// simulator is gone.
fn emit(inner: &Weak<Inner>, sid: &str, status: CarrierStatus) -> bool {
    let Some(inner) = inner.upgrade() else {
        return false;
    };
    let mut state = inner.lock();
    if let Some(message) = state
        .messages
        .iter_mut()
        .rev()
        .find(|m| m.carrier_message_id == sid)
    {
        message.status = status.clone();
    }
    let report = StatusReport {
        carrier_message_id: sid.to_owned(),
        error_code: status.error_code().map(str::to_owned),
        status,
    };
    state
        .subscribers
        .retain(|tx| tx.send(report.clone()).is_ok());
    true
}

async fn run_outcome(inner: Weak<Inner>, sid: String, mut outcome: Outcome) {
    if !emit(&inner, &sid, CarrierStatus::Sent) {
        return;
    }
    loop {
        let status = match outcome {
            Outcome::Deliver => CarrierStatus::Delivered,
            Outcome::Fail { error_code }
            | Outcome::RejectSend {
                code: error_code, ..
            } => CarrierStatus::Failed {
                error_code: Some(error_code),
            },
            Outcome::Undeliver { error_code } => CarrierStatus::Undelivered {
                error_code: Some(error_code),
            },
            Outcome::Delay { ms, then } => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                outcome = *then;
                continue;
            }
            Outcome::Hold => {
                let (tx, rx) = oneshot::channel();
                {
                    let Some(strong) = inner.upgrade() else {
                        return;
                    };
                    strong.lock().held.insert(sid.clone(), tx);
                }
                // Only a Weak is held while waiting: dropping the simulator drops the
                // sender and ends this task.
                match rx.await {
                    Ok(next) => {
                        outcome = next;
                        continue;
                    }
                    Err(_) => return,
                }
            }
        };
        emit(&inner, &sid, status);
        return;
    }
}
