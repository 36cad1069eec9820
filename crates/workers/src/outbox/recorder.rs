//! Follows the `outbox` category and records outcomes where they belong: an accepted text
//! gets its carrier message id linked (`carriermsg-<sid>`) and `Queued` recorded in its
//! conversation; a text that failed for good gets `Failed` with the carrier's code.
//! Idempotency keys derive from the text's `SmsRequested` event, so a repeat after a crash
//! writes nothing twice.

use domain::conversation::DeliveryStatus;
use domain::{CommandMeta, ConversationCommand};
use eventlog::{Direction, RecordedEvent};
use uuid::Uuid;

use super::records::outbox_stream;
use super::status::{delivery_of, link};
use crate::driver::{self, Failure};
use actors::core::ExecuteOptions;
use actors::error::CommandError;
use actors::event_codec;
use actors::workspace::Workspace;
use domain::outbox::{
    OutboxEvent, SmsAccepted, SmsOrigin, SmsPrepared, SmsSendFailed, OUTBOX_CATEGORY,
};

/// Checkpoint of the recorder.
pub const CHECKPOINT: &str = "outbox_recorder";

pub(super) async fn run(ws: Workspace) {
    driver::run_concurrent(
        ws,
        CHECKPOINT,
        OUTBOX_CATEGORY,
        256,
        |ws, record| async move { on_outbox_event(&ws, &record).await },
    )
    .await;
}

async fn on_outbox_event(ws: &Workspace, record: &RecordedEvent) -> Result<(), Failure> {
    match event_codec::decode::<OutboxEvent>(record).map_err(Failure::Permanent)? {
        OutboxEvent::SmsAccepted(accepted) => {
            let prepared = prepared_of(ws, record).await?;
            on_accepted(ws, record, &prepared, &accepted).await
        }
        OutboxEvent::SmsSendFailed(failed) if failed.retry_at_ms.is_none() => {
            let prepared = prepared_of(ws, record).await?;
            on_final_failure(ws, record, &prepared, &failed).await
        }
        _ => Ok(()),
    }
}

async fn prepared_of(ws: &Workspace, record: &RecordedEvent) -> Result<SmsPrepared, Failure> {
    let id: Uuid = record
        .stream
        .id()
        .parse()
        .map_err(|_| Failure::Permanent(format!("not an outbox stream: {}", record.stream)))?;
    let first = eventlog::store::nonblocking::read_stream(
        &ws.store,
        &outbox_stream(id),
        0,
        Direction::Forward,
        1,
    )
    .await
    .map_err(|e| Failure::Transient(e.to_string()))?;
    match first.first().map(event_codec::decode::<OutboxEvent>) {
        Some(Ok(OutboxEvent::SmsPrepared(p))) => Ok(p),
        _ => Err(Failure::Permanent(format!(
            "{} does not start with SmsPrepared",
            record.stream
        ))),
    }
}

async fn on_accepted(
    ws: &Workspace,
    record: &RecordedEvent,
    prepared: &SmsPrepared,
    accepted: &SmsAccepted,
) -> Result<(), Failure> {
    let outbox: Uuid = record.stream.id().parse().unwrap_or_default();
    link(ws, &accepted.carrier_message_id, outbox, prepared).await?;
    let status = carrier::CarrierStatus::from_twilio(&accepted.status, None);
    // Whatever the carrier said on acceptance, the text is at least queued now.
    let delivery = match delivery_of(&status) {
        Some((d, _)) if d.stage() > DeliveryStatus::Queued.stage() => d,
        _ => DeliveryStatus::Queued,
    };
    record_delivery(
        ws,
        prepared,
        delivery,
        Some(accepted.carrier_message_id.clone()),
        None,
        b"accepted",
        accepted.at_ms,
    )
    .await
}

async fn on_final_failure(
    ws: &Workspace,
    _record: &RecordedEvent,
    prepared: &SmsPrepared,
    failed: &SmsSendFailed,
) -> Result<(), Failure> {
    let reason = if failed.message.is_empty() {
        failed.code.clone()
    } else {
        failed.message.clone()
    };
    record_delivery(
        ws,
        prepared,
        DeliveryStatus::Failed { reason },
        None,
        Some(failed.code.clone()),
        b"failed",
        failed.at_ms,
    )
    .await
}

/// `RecordDelivery` for a conversation message's text (a HELP reply has no conversation).
async fn record_delivery(
    ws: &Workspace,
    prepared: &SmsPrepared,
    status: DeliveryStatus,
    carrier_message_id: Option<String>,
    error_code: Option<String>,
    purpose: &[u8],
    at_ms: u64,
) -> Result<(), Failure> {
    let SmsOrigin::Message {
        conversation,
        message_id,
        requested_event,
    } = &prepared.origin
    else {
        return Ok(());
    };
    let command =
        CommandMeta::system(prepared.org, at_ms).issue(ConversationCommand::RecordDelivery {
            message_id: *message_id,
            to: prepared.to.clone(),
            status,
            carrier_message_id,
            error_code,
        });
    let options = ExecuteOptions {
        idempotency_key: Some(Uuid::new_v5(requested_event, purpose)),
        metadata: eventlog::Metadata {
            causation_id: Some(*requested_event),
            correlation_id: Some(*requested_event),
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
