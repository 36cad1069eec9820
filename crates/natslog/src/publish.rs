//! Writing one append to the stream: a single message, or an atomic batch (all of it or
//! nothing), either way conditioned on the stream's subject still ending at the sequence
//! the writer built on (`Nats-Expected-Last-Subject-Sequence`, 0: no message yet), and
//! each message carrying its event id as `Nats-Msg-Id` (the server's duplicate window
//! catches a quick retry).
//!
//! Everything goes through core requests, so every outcome — acknowledgement, conflict,
//! a batch the server dropped — comes back as the server's own answer and error code.

use async_nats::{Client, HeaderMap};
use bytes::Bytes;
use serde::Deserialize;
use uuid::Uuid;

/// What the server did with an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Published {
    /// Stored; the sequence of its last message.
    Stored { last_seq: u64 },
    /// A single message whose id the server had seen within its duplicate window: stored
    /// before, at `seq`.
    Duplicate { seq: u64 },
}

/// Why the server did not store it. Nothing was stored in every case but `Unavailable`,
/// whose outcome is unknown (a retry with the same ids is safe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failed {
    /// The subject no longer ends where the writer built (another writer got there).
    Conflict,
    /// A batch repeating a message id the server has seen: maybe a retry of itself.
    DuplicateInBatch,
    /// The batch was dropped on the way (a leader change, a timeout): send it again.
    Incomplete,
    /// No leader, no answer in time, too many batches in flight: try again shortly.
    Unavailable(String),
    /// Refused for good (too large, misconfigured stream…).
    Refused(String),
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    err_code: u64,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
struct Ack {
    #[serde(default)]
    error: Option<ApiError>,
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    duplicate: bool,
    #[serde(default)]
    count: Option<u64>,
}

const MSG_ID: &str = "Nats-Msg-Id";
const EXPECTED_SUBJECT_SEQ: &str = "Nats-Expected-Last-Subject-Sequence";
const BATCH_ID: &str = "Nats-Batch-Id";
const BATCH_SEQ: &str = "Nats-Batch-Sequence";
const BATCH_COMMIT: &str = "Nats-Batch-Commit";

/// Publishes `messages` (event id, body) to `subject` as one append.
pub(crate) async fn publish(
    client: &Client,
    subject: &str,
    messages: Vec<(Uuid, Vec<u8>)>,
    expected_last_seq: u64,
) -> Result<Published, Failed> {
    let count = messages.len();
    let batch = (count > 1).then(|| Uuid::new_v4().simple().to_string());
    let mut reply = None;
    for (i, (id, body)) in messages.into_iter().enumerate() {
        let mut headers = HeaderMap::new();
        headers.insert(MSG_ID, id.to_string().as_str());
        if i == 0 {
            headers.insert(EXPECTED_SUBJECT_SEQ, expected_last_seq.to_string().as_str());
        }
        let last = i + 1 == count;
        if let Some(batch) = &batch {
            headers.insert(BATCH_ID, batch.as_str());
            headers.insert(BATCH_SEQ, (i + 1).to_string().as_str());
            if last {
                headers.insert(BATCH_COMMIT, "1");
            }
        }
        let body = Bytes::from(body);
        if last {
            let answer = client
                .request_with_headers(subject.to_owned(), headers, body)
                .await
                .map_err(|e| Failed::Unavailable(e.to_string()))?;
            reply = Some(answer);
        } else {
            // Staged, unanswered: the commit's answer covers the whole batch.
            client
                .publish_with_headers(subject.to_owned(), headers, body)
                .await
                .map_err(|e| Failed::Unavailable(e.to_string()))?;
        }
    }
    let reply = reply.ok_or_else(|| Failed::Refused("an append must carry events".into()))?;
    if reply.payload.is_empty() {
        // A status-only answer (503: no responders).
        return Err(Failed::Unavailable(format!(
            "no answer from the stream ({:?})",
            reply.status
        )));
    }
    let ack: Ack = serde_json::from_slice(&reply.payload)
        .map_err(|e| Failed::Unavailable(format!("unreadable answer: {e}")))?;
    if let Some(e) = ack.error {
        return Err(match e.err_code {
            // Wrong last (subject) sequence, numbered or not.
            10071 | 10164 => Failed::Conflict,
            10201 => Failed::DuplicateInBatch,
            // Incomplete batch; too many batches in flight.
            10176 | 10210 => Failed::Incomplete,
            _ => Failed::Refused(format!("{} ({})", e.description, e.err_code)),
        });
    }
    if ack.duplicate {
        return Ok(Published::Duplicate { seq: ack.seq });
    }
    if batch.is_some() && ack.count.is_some_and(|c| c != count as u64) {
        return Err(Failed::Refused(format!(
            "the batch stored {:?} messages of {count}",
            ack.count
        )));
    }
    Ok(Published::Stored { last_seq: ack.seq })
}
