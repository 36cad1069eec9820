//! The follower: keeps this node's replica up with the stream, from the replica's own next
//! position, with an ordered consumer (the server delivers in sequence order; the client
//! recreates the consumer on any gap). Messages that arrive together are stored as one
//! replica batch. Any failure — the cluster unreachable, a record the replica refuses —
//! starts the consumer again from where the replica is.

use std::sync::Weak;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull::OrderedConfig, DeliverPolicy};
use futures_util::{FutureExt, StreamExt};

use eventlog::EventStore;

use crate::record::WireRecord;
use crate::store::Inner;
use crate::subject;

/// Most messages stored in one replica batch.
const BATCH: usize = 1024;

pub(crate) async fn follow(inner: Weak<Inner>) {
    let mut pause = Duration::from_millis(50);
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        match follow_once(&strong).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "replica follower restarting");
            }
        }
        drop(strong);
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

async fn follow_once(inner: &std::sync::Arc<Inner>) -> Result<(), String> {
    let start = inner.replica.next_position().saturating_add(1);
    let stream = inner
        .js
        .get_stream_no_info(&inner.options.stream)
        .await
        .map_err(|e| e.to_string())?;
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: subject::all(&inner.options.subject_prefix),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
    loop {
        let Some(first) = messages.next().await else {
            return Err("the consumer ended".into());
        };
        let mut batch = vec![first.map_err(|e| e.to_string())?];
        while batch.len() < BATCH {
            match messages.next().now_or_never() {
                Some(Some(Ok(m))) => batch.push(m),
                Some(Some(Err(e))) => return Err(e.to_string()),
                _ => break,
            }
        }
        let mut events = Vec::with_capacity(batch.len());
        for m in &batch {
            let seq = m.info().map_err(|e| e.to_string())?.stream_sequence;
            let record = WireRecord::decode(&m.payload)
                .map_err(|e| format!("message {seq} is not an event record: {e}"))?;
            events.push(record.into_replicated(seq));
        }
        let replica = inner.replica.clone();
        tokio::task::spawn_blocking(move || replica.replicate_blocking(events))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    }
}
