//! Carrier status reports: written as they arrive to `carriermsg-<sid>`
//! ([`report_status`], from the Twilio webhook and the simulator's channel), then recorded
//! in the text's conversation by a follower of that category (checkpoint
//! `carrier_status`).
//!
//! Which text a carrier message is comes from the stream's [`CarrierMessageLinked`],
//! written when the text was accepted: durable, so a report after a restart still finds
//! its conversation. A report may come before the link (the simulator reports while the
//! send call is still answering; a callback can race the acceptance's append): it waits in
//! the stream, and the link, when it comes, applies every report before it. A report whose
//! callback URL named the text (`outbox_hint`) links it itself: that is how a text whose
//! acceptance a crash lost is confirmed.

use std::sync::Arc;

use carrier::{CarrierStatus, StatusReport};
use domain::conversation::DeliveryStatus;
use domain::{CommandMeta, ConversationCommand};
use eventlog::{AppendError, Direction, EventStore, ExpectedVersion, RecordedEvent};
use tokio::sync::mpsc::UnboundedReceiver;
use uuid::Uuid;

use super::records::{
    carrier_message_stream, link_event_id, outbox_event_id, outbox_stream, record, report_event_id,
    OutboxState,
};
use crate::driver::{self, Failure};
use actors::core::ExecuteOptions;
use actors::error::CommandError;
use actors::event_codec;
use actors::workspace::Workspace;
use domain::outbox::{
    CarrierMessageEvent, CarrierMessageLinked, CarrierStatusReported, OutboxEvent, SmsAccepted,
    SmsOrigin, SmsPrepared, CARRIER_MESSAGE_CATEGORY,
};

/// Checkpoint of the status follower.
pub const CHECKPOINT: &str = "carrier_status";

/// Most events of one carrier message stream read at once (a link and its reports).
const STREAM_PAGE: usize = 256;

/// What [`report_status`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportOutcome {
    /// Written; it will be recorded.
    Recorded,
    /// The same report was written before: nothing written.
    Duplicate,
}

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The carrier message id cannot name a stream.
    #[error("invalid carrier message id")]
    InvalidMessageId,
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error("report not encodable: {0}")]
    Encode(String),
}

/// The delivery status (and carrier error code) a carrier status stands for, or `None`
/// for statuses that say nothing about an outbound text (`received`, unknown ones).
pub fn delivery_of(status: &CarrierStatus) -> Option<(DeliveryStatus, Option<String>)> {
    let with_code = |what: &str, code: Option<&str>| match code {
        Some(c) => format!("{what} ({c})"),
        None => what.to_owned(),
    };
    Some(match status {
        CarrierStatus::Accepted
        | CarrierStatus::Scheduled
        | CarrierStatus::Queued
        | CarrierStatus::Sending => (DeliveryStatus::Queued, None),
        CarrierStatus::Sent => (DeliveryStatus::Sent, None),
        CarrierStatus::Delivered | CarrierStatus::Read => (DeliveryStatus::Delivered, None),
        CarrierStatus::Undelivered { error_code } => (
            DeliveryStatus::Undelivered {
                reason: with_code("undelivered", error_code.as_deref()),
            },
            error_code.clone(),
        ),
        CarrierStatus::Failed { error_code } => (
            DeliveryStatus::Failed {
                reason: with_code("failed", error_code.as_deref()),
            },
            error_code.clone(),
        ),
        CarrierStatus::Canceled => (
            DeliveryStatus::Failed {
                reason: "canceled".to_owned(),
            },
            None,
        ),
        CarrierStatus::Receiving | CarrierStatus::Received | CarrierStatus::Unknown { .. } => {
            return None
        }
    })
}

/// Writes a status report to its carrier message's stream. The same report twice (same
/// status, error code and hint) is one event.
///
/// # Errors
/// [`ReportError`]; nothing was written.
pub async fn report_status(
    store: &Arc<dyn EventStore>,
    report: &StatusReport,
    outbox_hint: Option<Uuid>,
) -> Result<ReportOutcome, ReportError> {
    let sid = report.carrier_message_id.as_str();
    let stream = carrier_message_stream(sid).ok_or(ReportError::InvalidMessageId)?;
    let reported = CarrierStatusReported {
        status: match &report.status {
            CarrierStatus::Unknown { status } => status.chars().take(32).collect(),
            known => known.as_str().to_owned(),
        },
        error_code: report
            .status
            .error_code()
            .or(report.error_code.as_deref())
            .map(|c| c.chars().take(64).collect()),
        outbox_hint,
    };
    let id = report_event_id(sid, &reported);
    let data = record(&CarrierMessageEvent::CarrierStatusReported(reported), id)
        .map_err(ReportError::Encode)?;
    match store.append(stream, ExpectedVersion::Any, vec![data]).await {
        Ok(r) if r.deduplicated => Ok(ReportOutcome::Duplicate),
        Ok(_) => Ok(ReportOutcome::Recorded),
        Err(AppendError::EventIdReused { .. }) => Ok(ReportOutcome::Duplicate),
        Err(e) => Err(e.into()),
    }
}

/// Writes every report the simulator emits until it stops.
pub async fn feed(store: Arc<dyn EventStore>, mut reports: UnboundedReceiver<StatusReport>) {
    while let Some(report) = reports.recv().await {
        let mut pause = std::time::Duration::from_millis(20);
        for _ in 0..20 {
            match report_status(&store, &report, None).await {
                Ok(_) | Err(ReportError::InvalidMessageId) | Err(ReportError::Encode(_)) => break,
                Err(e) => {
                    tracing::warn!(sid = %report.carrier_message_id, error = %e, "status report not written; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(2));
                }
            }
        }
    }
}

/// Links carrier message `sid` to outbox `outbox`. Whoever links it writes the same event.
pub(super) async fn link(
    ws: &Workspace,
    sid: &str,
    outbox: Uuid,
    prepared: &SmsPrepared,
) -> Result<(), Failure> {
    let Some(stream) = carrier_message_stream(sid) else {
        return Err(Failure::Permanent(format!(
            "invalid carrier message id {sid:?}"
        )));
    };
    let linked = CarrierMessageEvent::CarrierMessageLinked(CarrierMessageLinked {
        outbox,
        org: prepared.org,
        origin: prepared.origin.clone(),
        to: prepared.to.clone(),
    });
    let data = record(&linked, link_event_id(sid)).map_err(Failure::Permanent)?;
    match ws
        .store
        .append(stream, ExpectedVersion::Any, vec![data])
        .await
    {
        Ok(_) | Err(AppendError::EventIdReused { .. }) => Ok(()),
        Err(e) => Err(Failure::Transient(e.to_string())),
    }
}

pub(super) async fn run(ws: Workspace) {
    driver::run_concurrent(
        ws,
        CHECKPOINT,
        CARRIER_MESSAGE_CATEGORY,
        256,
        |ws, record| async move { on_carrier_message_event(&ws, &record).await },
    )
    .await;
}

async fn stream_records(
    ws: &Workspace,
    record: &RecordedEvent,
) -> Result<Vec<RecordedEvent>, Failure> {
    eventlog::store::nonblocking::read_stream(
        &ws.store,
        &record.stream,
        0,
        Direction::Forward,
        STREAM_PAGE,
    )
    .await
    .map_err(|e| Failure::Transient(e.to_string()))
}

async fn on_carrier_message_event(ws: &Workspace, record: &RecordedEvent) -> Result<(), Failure> {
    match event_codec::decode::<CarrierMessageEvent>(record).map_err(Failure::Permanent)? {
        CarrierMessageEvent::CarrierMessageLinked(link) => {
            // Reports that came before the link.
            if record.version == 0 {
                return Ok(());
            }
            for earlier in stream_records(ws, record).await? {
                if earlier.version >= record.version {
                    break;
                }
                if let Ok(CarrierMessageEvent::CarrierStatusReported(report)) =
                    event_codec::decode::<CarrierMessageEvent>(&earlier)
                {
                    apply(ws, &link, &report, &earlier).await?;
                }
            }
            Ok(())
        }
        CarrierMessageEvent::CarrierStatusReported(report) => {
            let linked = stream_records(ws, record).await?.iter().find_map(|r| {
                match event_codec::decode::<CarrierMessageEvent>(r) {
                    Ok(CarrierMessageEvent::CarrierMessageLinked(l)) => Some(l),
                    _ => None,
                }
            });
            match (linked, report.outbox_hint) {
                (Some(link), _) => apply(ws, &link, &report, record).await,
                (None, Some(outbox)) => confirm(ws, record.stream.id(), outbox, &report).await,
                // The link will come, and apply this report then.
                (None, None) => Ok(()),
            }
        }
    }
}

/// A report named its text before the text's acceptance was written (it was lost to a
/// crash, or is being written): accept the text with this carrier id and link it. The
/// link applies the report.
async fn confirm(
    ws: &Workspace,
    sid: &str,
    outbox: Uuid,
    report: &CarrierStatusReported,
) -> Result<(), Failure> {
    let records = eventlog::store::nonblocking::read_stream(
        &ws.store,
        &outbox_stream(outbox),
        0,
        Direction::Forward,
        4096,
    )
    .await
    .map_err(|e| Failure::Transient(e.to_string()))?;
    let state = OutboxState::from_records(&records);
    let Some(prepared) = state.prepared else {
        return Err(Failure::Permanent(format!(
            "a status report for {sid} names unknown outbox text {outbox}"
        )));
    };
    if state.accepted.is_none() {
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let accepted = OutboxEvent::SmsAccepted(SmsAccepted {
            attempt: state.last_attempt.max(1),
            carrier: "twilio".to_owned(),
            carrier_message_id: sid.to_owned(),
            status: report.status.clone(),
            confirmed_by: "status_callback".to_owned(),
            at_ms,
        });
        let data =
            record(&accepted, outbox_event_id(outbox, "accepted")).map_err(Failure::Permanent)?;
        match ws
            .store
            .append(outbox_stream(outbox), ExpectedVersion::Any, vec![data])
            .await
        {
            Ok(_) | Err(AppendError::EventIdReused { .. }) => {}
            Err(e) => return Err(Failure::Transient(e.to_string())),
        }
    }
    link(ws, sid, outbox, &prepared).await
}

/// Records one report in the linked text's conversation.
async fn apply(
    ws: &Workspace,
    link: &CarrierMessageLinked,
    report: &CarrierStatusReported,
    record: &RecordedEvent,
) -> Result<(), Failure> {
    let SmsOrigin::Message {
        conversation,
        message_id,
        ..
    } = &link.origin
    else {
        return Ok(());
    };
    let status = CarrierStatus::from_twilio(&report.status, report.error_code.as_deref());
    let Some((delivery, code)) = delivery_of(&status) else {
        return Ok(());
    };
    let at_ms = record.timestamp_us / 1000;
    let command = CommandMeta::system(link.org, at_ms).issue(ConversationCommand::RecordDelivery {
        message_id: *message_id,
        to: link.to.clone(),
        status: delivery,
        carrier_message_id: Some(record.stream.id().to_owned()),
        error_code: code.or_else(|| report.error_code.clone()),
    });
    let options = ExecuteOptions {
        idempotency_key: Some(Uuid::new_v5(&record.event_id, b"delivery")),
        metadata: eventlog::Metadata {
            causation_id: Some(record.event_id),
            correlation_id: Some(link.outbox),
            acting_user: None,
        },
    };
    match ws
        .conversations
        .execute(conversation, command, options)
        .await
    {
        Ok(_) => Ok(()),
        Err(CommandError::Rejected(r)) => Err(Failure::Permanent(r.to_string())),
        Err(e) => Err(Failure::Transient(e.to_string())),
    }
}
