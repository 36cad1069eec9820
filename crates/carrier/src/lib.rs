//! SMS/MMS carriers for Switchboard.
//!
//! Texts leave and enter the system through a [`Carrier`]. This crate holds everything
//! carrier-facing that does not need the event log:
//!
//! * [`Carrier`] — the object-safe sending trait (`Arc<dyn Carrier>`), with the
//!   [`OutboundSms`] request, the [`Accepted`] answer and the typed [`SendError`]
//!   (retryable vs permanent), plus [`CarrierStatus`] (delivery states) and the
//!   [`Backoff`] policy the outbox worker uses between attempts.
//! * [`twilio`] — a Twilio-compatible REST adapter ([`twilio::TwilioCarrier`]), the
//!   `X-Twilio-Signature` algorithm, parsers for the inbound-message and status-callback
//!   webhooks, and [`twilio::fetch_media`] for inbound MMS media.
//! * [`tls`] — the rustls client configuration (`ring` provider, bundled Mozilla roots,
//!   optional extra roots) the Twilio adapter's HTTP client uses.
//! * [`simulator`] — the embedded carrier ([`simulator::Simulator`]) used by default and in
//!   tests: records outbound texts, controllable delivery outcomes, status reports on a
//!   channel, and "text as a customer".
//! * [`keywords`] — opt-out / opt-in / help keyword classification.
//! * [`error_codes`] — carrier error codes in words.
//! * [`blobs`] — a content-addressed, atomically written blob store and MIME sniffing
//!   from magic bytes, with an [`blobs::AttachmentPolicy`].
//! * [`media`] — MMS image preparation: decode with limits, downscale and re-encode to
//!   fit the MMS size budget.
//!
//! # Delivery semantics
//!
//! Carriers are *at least once* at the HTTP level: a timeout or a dropped connection
//! after the request left may or may not have sent the text. Twilio has no idempotency
//! header for message creation, so **deduplication is the outbox's job**: the caller keeps
//! a dedupe record per [`OutboundSms::idempotency_key`] and consults it before calling
//! [`Carrier::send`] again after a crash. The [`simulator::Simulator`] models a carrier
//! that *does* honour the key.
//!
//! Status reports (from webhooks or the simulator) may arrive late, duplicated or out of
//! order; [`CarrierStatus::supersedes`] tells whether a report moves a message forward.

#![warn(missing_docs)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub mod blobs;
pub mod error_codes;
pub mod keywords;
pub mod media;
pub mod simulator;
pub mod tls;
pub mod twilio;

/// The future returned by [`Carrier::send`].
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<Accepted, SendError>> + Send + 'a>>;

/// A way to send SMS/MMS. Object safe: use it as `Arc<dyn Carrier>`.
pub trait Carrier: Send + Sync {
    /// A short, stable name for logs and metrics (`"twilio"`, `"simulator"`).
    fn name(&self) -> &'static str;

    /// Hands one message to the carrier.
    ///
    /// `Ok` means the carrier accepted it for delivery (it has a carrier message id);
    /// delivery itself is reported later as [`StatusReport`]s. On
    /// [`SendError::Retryable`] the message may or may not have been sent (timeouts),
    /// so retries must go through the outbox's dedupe record.
    fn send(&self, sms: OutboundSms) -> SendFuture<'_>;
}

/// One outbound text (SMS, or MMS when `media` is not empty) to one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundSms {
    /// Stable per (our message id, recipient); the same key must be used for every
    /// attempt to send the same text to the same recipient.
    pub idempotency_key: String,
    /// Our business number, E.164 (`+15551234567`).
    pub from: String,
    /// The recipient, E.164.
    pub to: String,
    /// The text. May be empty when `media` is not.
    pub body: String,
    /// Media for MMS, fetched by the carrier from these URLs.
    pub media: Vec<OutboundMedia>,
    /// Where the carrier should post delivery-status callbacks, if anywhere.
    pub status_callback: Option<String>,
}

/// One MMS attachment of an [`OutboundSms`], by URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundMedia {
    /// A URL the carrier can fetch the media from.
    pub url: String,
    /// The sniffed MIME type (`image/jpeg`, …).
    pub content_type: String,
}

/// The carrier accepted a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// The carrier's id for the message (`SM…` for Twilio and the simulator); status
    /// reports refer to it.
    pub carrier_message_id: String,
    /// The status the carrier reported on acceptance (usually `queued`/`accepted`).
    pub status: CarrierStatus,
}

/// Why [`Carrier::send`] failed.
///
/// `code` is the carrier's error code when it gave one (Twilio's numeric `code`, e.g.
/// `"21211"`), otherwise one of ours: `timeout`, `connection_failed`, `transport_error`,
/// `http_<status>`, `invalid_carrier_response`, `invalid_request`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying later: timeouts, connection errors, HTTP 5xx, 429 (and 408).
    #[error("carrier unavailable ({code}): {message}")]
    Retryable {
        /// The carrier's error code, or ours (see the type docs).
        code: String,
        /// Human-readable detail.
        message: String,
        /// How long the carrier asked us to wait (`Retry-After`), if it said.
        retry_after: Option<Duration>,
    },
    /// Retrying will not help: the carrier refused this message (4xx).
    #[error("carrier rejected the message ({code}): {message}")]
    Permanent {
        /// The carrier's error code, or ours (see the type docs).
        code: String,
        /// Human-readable detail.
        message: String,
    },
}

impl SendError {
    /// Stable machine-readable code of the error class: `carrier_unavailable` or
    /// `carrier_rejected`. The carrier's own code is [`SendError::carrier_code`].
    pub fn code(&self) -> &'static str {
        match self {
            SendError::Retryable { .. } => "carrier_unavailable",
            SendError::Permanent { .. } => "carrier_rejected",
        }
    }

    /// The carrier's (or our transport-level) error code, e.g. `"21211"` or `"timeout"`.
    pub fn carrier_code(&self) -> &str {
        match self {
            SendError::Retryable { code, .. } | SendError::Permanent { code, .. } => code,
        }
    }

    /// Human-readable detail.
    pub fn message(&self) -> &str {
        match self {
            SendError::Retryable { message, .. } | SendError::Permanent { message, .. } => message,
        }
    }

    /// Whether the outbox should try again later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SendError::Retryable { .. })
    }

    /// The carrier's requested wait before retrying, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SendError::Retryable { retry_after, .. } => *retry_after,
            SendError::Permanent { .. } => None,
        }
    }
}

/// A message's state at the carrier, as reported on acceptance and in status callbacks.
///
/// Outbound: `accepted`/`scheduled` → `queued` → `sending` → `sent` → `delivered` (→ `read`),
/// or `undelivered`/`failed` with the carrier's error code, or `canceled`.
/// Inbound: `receiving` → `received`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CarrierStatus {
    /// Accepted by a messaging service, not yet queued.
    Accepted,
    /// Scheduled for later sending.
    Scheduled,
    /// Queued at the carrier.
    Queued,
    /// Being sent.
    Sending,
    /// Handed to the downstream network.
    Sent,
    /// The handset confirmed delivery.
    Delivered,
    /// Read (channels that report it).
    Read,
    /// The downstream network could not deliver it.
    Undelivered {
        /// The carrier's error code (`30003`, …).
        error_code: Option<String>,
    },
    /// The carrier could not send it.
    Failed {
        /// The carrier's error code.
        error_code: Option<String>,
    },
    /// Canceled before sending.
    Canceled,
    /// Inbound, being received.
    Receiving,
    /// Inbound, received.
    Received,
    /// A status this crate does not know; never supersedes anything.
    Unknown {
        /// The status string as the carrier sent it.
        status: String,
    },
}

impl CarrierStatus {
    /// Maps a Twilio `status`/`MessageStatus` string (case-insensitive) and its error code.
    /// An empty error code counts as none; the code is kept only for `failed`/`undelivered`.
    pub fn from_twilio(status: &str, error_code: Option<&str>) -> CarrierStatus {
        let error_code = error_code
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        match status.trim().to_ascii_lowercase().as_str() {
            "accepted" => CarrierStatus::Accepted,
            "scheduled" => CarrierStatus::Scheduled,
            "queued" => CarrierStatus::Queued,
            "sending" => CarrierStatus::Sending,
            "sent" => CarrierStatus::Sent,
            "delivered" => CarrierStatus::Delivered,
            "read" => CarrierStatus::Read,
            "undelivered" => CarrierStatus::Undelivered { error_code },
            "failed" => CarrierStatus::Failed { error_code },
            "canceled" | "cancelled" => CarrierStatus::Canceled,
            "receiving" => CarrierStatus::Receiving,
            "received" => CarrierStatus::Received,
            _ => CarrierStatus::Unknown {
                status: status.to_owned(),
            },
        }
    }

    /// The snake_case name (`"delivered"`, `"undelivered"`, …; `"unknown"` for unknown).
    pub fn as_str(&self) -> &'static str {
        match self {
            CarrierStatus::Accepted => "accepted",
            CarrierStatus::Scheduled => "scheduled",
            CarrierStatus::Queued => "queued",
            CarrierStatus::Sending => "sending",
            CarrierStatus::Sent => "sent",
            CarrierStatus::Delivered => "delivered",
            CarrierStatus::Read => "read",
            CarrierStatus::Undelivered { .. } => "undelivered",
            CarrierStatus::Failed { .. } => "failed",
            CarrierStatus::Canceled => "canceled",
            CarrierStatus::Receiving => "receiving",
            CarrierStatus::Received => "received",
            CarrierStatus::Unknown { .. } => "unknown",
        }
    }

    /// The carrier error code of a `failed`/`undelivered` status.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            CarrierStatus::Undelivered { error_code } | CarrierStatus::Failed { error_code } => {
                error_code.as_deref()
            }
            _ => None,
        }
    }

    /// Progress rank: a higher rank is further along (`unknown` is 0).
    pub fn rank(&self) -> u8 {
        match self {
            CarrierStatus::Unknown { .. } => 0,
            CarrierStatus::Accepted | CarrierStatus::Scheduled | CarrierStatus::Receiving => 1,
            CarrierStatus::Queued => 2,
            CarrierStatus::Sending => 3,
            CarrierStatus::Sent => 4,
            CarrierStatus::Delivered
            | CarrierStatus::Undelivered { .. }
            | CarrierStatus::Failed { .. }
            | CarrierStatus::Canceled
            | CarrierStatus::Received => 5,
            CarrierStatus::Read => 6,
        }
    }

    /// Whether this is an end state (`delivered`, `read`, `undelivered`, `failed`,
    /// `canceled`, `received`).
    pub fn is_terminal(&self) -> bool {
        self.rank() >= 5
    }

    /// Whether a report of `self` should replace the recorded `current` status: it must
    /// move forward. End states are sticky (a late `sent` or a conflicting `failed` after
    /// `delivered` is ignored), except `read` after `delivered`. Unknown never supersedes.
    pub fn supersedes(&self, current: &CarrierStatus) -> bool {
        if matches!(self, CarrierStatus::Unknown { .. }) {
            return false;
        }
        if current.is_terminal() {
            return matches!(
                (current, self),
                (CarrierStatus::Delivered, CarrierStatus::Read)
            );
        }
        self.rank() > current.rank()
    }
}

impl fmt::Display for CarrierStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.error_code() {
            Some(code) => write!(f, "{} ({code})", self.as_str()),
            None => f.write_str(self.as_str()),
        }
    }
}

/// A text that arrived from a customer (webhook or simulator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundSms {
    /// The carrier's message id (`MessageSid`); dedupe inbound on it.
    pub carrier_message_id: String,
    /// The customer's number.
    pub from: String,
    /// Our business number the text was sent to.
    pub to: String,
    /// The text (may be empty for a picture-only MMS).
    pub body: String,
    /// MMS media, in order.
    pub media: Vec<InboundMedia>,
}

/// One inbound MMS attachment, still at the carrier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundMedia {
    /// Where to fetch it (see [`twilio::fetch_media`]).
    pub url: String,
    /// The type the carrier claimed; re-sniff the fetched bytes, do not trust this.
    pub content_type: Option<String>,
}

/// A delivery-status report for an outbound message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// The carrier's message id, as returned in [`Accepted`].
    pub carrier_message_id: String,
    /// The new status.
    pub status: CarrierStatus,
    /// The carrier's error code, if it sent one (also inside `failed`/`undelivered`).
    pub error_code: Option<String>,
}

/// Whether `s` looks like an E.164 number: `+`, a non-zero digit, 7 to 15 digits in all.
pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// Retry policy for the outbox: exponential backoff with a cap, deterministic jitter and a
/// maximum number of attempts.
///
/// `attempt` counts attempts already made: after the first failed attempt ask
/// `delay_for(1)`. The undisturbed delay is `base * 2^(attempt-1)` capped at `cap`; jitter
/// then takes away up to `jitter` (a fraction in `0.0..=1.0`) of it, pseudo-randomly but
/// as a pure function of (`seed`, `attempt`), so a worker that seeds it per message (see
/// [`Backoff::with_seed_from`]) spreads retries out and tests are reproducible.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay before the first retry (before jitter).
    pub base: Duration,
    /// Upper bound on any delay.
    pub cap: Duration,
    /// Attempts allowed in all (the first try included); no retry once reached.
    pub max_attempts: u32,
    /// Fraction of the delay that jitter may take away, `0.0..=1.0` (clamped).
    pub jitter: f64,
    /// Jitter seed.
    pub seed: u64,
}

impl Default for Backoff {
    /// 1 s base, 5 min cap, 10 attempts, 50 % jitter, seed 0.
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
            max_attempts: 10,
            jitter: 0.5,
            seed: 0,
        }
    }
}

impl Backoff {
    /// This policy with the jitter seed derived from `key` (e.g. the idempotency key).
    pub fn with_seed_from(self, key: &str) -> Backoff {
        let hash = blake3::hash(key.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash.as_bytes()[..8]);
        Backoff {
            seed: u64::from_le_bytes(first),
            ..self
        }
    }

    /// The delay to wait after `attempt` attempts have failed. `delay_for(0)` is zero.
    pub fn delay_for(&self, attempt: u32) -> Duration {
        if attempt == 0 {
            return Duration::ZERO;
        }
        let exponent = (attempt - 1).min(63);
        let factor = 1u128 << exponent;
        let nanos = self.base.as_nanos().saturating_mul(factor);
        let full = nanos.min(self.cap.as_nanos());
        let jitter = if self.jitter.is_nan() {
            0.0
        } else {
            self.jitter.clamp(0.0, 1.0)
        };
        // A uniform fraction in [0, 1) from (seed, attempt).
        let unit = unit_fraction(splitmix64(
            self.seed ^ u64::from(attempt).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        ));
        let take = jitter_take(full, jitter, unit);
        let nanos = full.saturating_sub(take);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Whether another attempt is allowed after `attempt` attempts.
    pub fn should_retry(&self, attempt: u32) -> bool {
        attempt < self.max_attempts
    }

    /// The delay before the next attempt after `attempt` failed ones, or `None` when the
    /// attempts are used up. A carrier's `Retry-After` raises the delay (never lowers it),
    /// bounded by `cap`.
    pub fn next_delay(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if !self.should_retry(attempt) {
            return None;
        }
        let delay = self.delay_for(attempt);
        Some(match retry_after {
            Some(hint) => delay.max(hint.min(self.cap)),
            None => delay,
        })
    }
}

/// A fraction in [0, 1) from the top 53 bits of `x`.
#[allow(
    clippy::cast_precision_loss,
    reason = "both are below 2^54, so f64 holds them exactly"
)]
fn unit_fraction(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// The nanoseconds jitter takes off a delay of `full`: `full * jitter * unit`, both
/// factors in [0, 1], rounded down.
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a random share of a delay: f64's precision is plenty, and the product is in [0, full]"
)]
fn jitter_take(full: u128, jitter: f64, unit: f64) -> u128 {
    (full as f64 * jitter * unit) as u128
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A fresh Twilio-style message id: `SM` followed by 32 lowercase hex digits.
pub(crate) fn new_message_sid() -> String {
    format!("SM{}", uuid::Uuid::new_v4().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_from_twilio_maps_known_and_unknown() {
        assert_eq!(
            CarrierStatus::from_twilio("delivered", None),
            CarrierStatus::Delivered
        );
        assert_eq!(
            CarrierStatus::from_twilio("QUEUED", Some("")),
            CarrierStatus::Queued
        );
        assert_eq!(
            CarrierStatus::from_twilio("undelivered", Some("30003")),
            CarrierStatus::Undelivered {
                error_code: Some("30003".into())
            }
        );
        assert_eq!(
            CarrierStatus::from_twilio("failed", Some("  ")),
            CarrierStatus::Failed { error_code: None }
        );
        // An error code on a non-failure status is dropped.
        assert_eq!(
            CarrierStatus::from_twilio("sent", Some("30001")),
            CarrierStatus::Sent
        );
        assert_eq!(
            CarrierStatus::from_twilio("exploded", None),
            CarrierStatus::Unknown {
                status: "exploded".into()
            }
        );
        assert_eq!(
            CarrierStatus::from_twilio("failed", Some("30008")).to_string(),
            "failed (30008)"
        );
    }

    #[test]
    fn status_never_moves_backwards() {
        let queued = CarrierStatus::Queued;
        let sent = CarrierStatus::Sent;
        let delivered = CarrierStatus::Delivered;
        let failed = CarrierStatus::Failed {
            error_code: Some("30008".into()),
        };
        assert!(sent.supersedes(&queued));
        assert!(delivered.supersedes(&sent));
        assert!(!sent.supersedes(&delivered), "late sent after delivered");
        assert!(!sent.supersedes(&sent), "duplicate");
        assert!(!failed.supersedes(&delivered), "conflicting end state");
        assert!(!delivered.supersedes(&failed));
        assert!(failed.supersedes(&sent));
        assert!(CarrierStatus::Read.supersedes(&delivered));
        assert!(!CarrierStatus::Unknown { status: "x".into() }.supersedes(&queued));
        assert!(queued.supersedes(&CarrierStatus::Accepted));
    }

    #[test]
    fn status_serializes_with_state_tag() {
        let json = serde_json::to_value(CarrierStatus::Failed {
            error_code: Some("30008".into()),
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"state": "failed", "error_code": "30008"})
        );
        let back: CarrierStatus = serde_json::from_value(json).unwrap();
        assert_eq!(back.error_code(), Some("30008"));
    }

    #[test]
    fn send_error_codes() {
        let e = SendError::Retryable {
            code: "http_503".into(),
            message: "down".into(),
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(e.code(), "carrier_unavailable");
        assert_eq!(e.carrier_code(), "http_503");
        assert!(e.is_retryable());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        let p = SendError::Permanent {
            code: "21211".into(),
            message: "bad To".into(),
        };
        assert_eq!(p.code(), "carrier_rejected");
        assert!(!p.is_retryable());
        assert_eq!(p.retry_after(), None);
    }

    #[test]
    fn e164() {
        for ok in [
            "+15551234567",
            "+4915112345678",
            "+2901234",
            "+123456789012345",
        ] {
            assert!(is_e164(ok), "{ok}");
        }
        for bad in [
            "15551234567",
            "+",
            "+0155512345",
            "+1555123456789012",
            "+1555-123-4567",
            "+123456",
            "",
            "+1555123456٣",
        ] {
            assert!(!is_e164(bad), "{bad}");
        }
    }

    #[test]
    fn message_sid_shape() {
        let a = new_message_sid();
        let b = new_message_sid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 34);
        assert!(a.starts_with("SM"));
        assert!(a[2..]
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
    }

    fn no_jitter() -> Backoff {
        Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(10),
            max_attempts: 5,
            jitter: 0.0,
            seed: 0,
        }
    }

    #[test]
    fn backoff_exponential_and_capped() {
        let b = no_jitter();
        assert_eq!(b.delay_for(0), Duration::ZERO);
        assert_eq!(b.delay_for(1), Duration::from_millis(100));
        assert_eq!(b.delay_for(2), Duration::from_millis(200));
        assert_eq!(b.delay_for(3), Duration::from_millis(400));
        assert_eq!(b.delay_for(7), Duration::from_millis(6400));
        assert_eq!(b.delay_for(8), Duration::from_secs(10));
        assert_eq!(b.delay_for(64), Duration::from_secs(10));
        assert_eq!(b.delay_for(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn backoff_jitter_bounded_deterministic_and_seeded() {
        let b = Backoff {
            jitter: 0.5,
            ..no_jitter()
        }
        .with_seed_from("msg-1:+15550001111");
        let mut distinct = std::collections::HashSet::new();
        for attempt in 1..=12 {
            let full = no_jitter().delay_for(attempt);
            let d = b.delay_for(attempt);
            assert!(d <= full, "attempt {attempt}: {d:?} > {full:?}");
            assert!(d >= full / 2, "attempt {attempt}: {d:?} < half of {full:?}");
            assert_eq!(d, b.delay_for(attempt), "pure");
            distinct.insert(d.as_nanos() * 1000 / full.as_nanos());
        }
        assert!(distinct.len() > 3, "jitter actually varies: {distinct:?}");
        let other = b.with_seed_from("msg-2:+15550001111");
        assert!(
            (1..=8).any(|a| other.delay_for(a) != b.delay_for(a)),
            "different seeds give different jitter"
        );
        let wild = Backoff {
            jitter: f64::NAN,
            ..no_jitter()
        };
        assert_eq!(wild.delay_for(2), Duration::from_millis(200));
    }

    #[test]
    fn backoff_attempt_limit_and_retry_after() {
        let b = no_jitter();
        assert!(b.should_retry(4));
        assert!(!b.should_retry(5));
        assert_eq!(b.next_delay(5, None), None);
        assert_eq!(b.next_delay(1, None), Some(Duration::from_millis(100)));
        assert_eq!(
            b.next_delay(1, Some(Duration::from_secs(2))),
            Some(Duration::from_secs(2)),
            "retry-after raises"
        );
        assert_eq!(
            b.next_delay(3, Some(Duration::from_millis(1))),
            Some(Duration::from_millis(400)),
            "retry-after never lowers"
        );
        assert_eq!(
            b.next_delay(1, Some(Duration::from_secs(3600))),
            Some(Duration::from_secs(10)),
            "bounded by cap"
        );
    }
}
