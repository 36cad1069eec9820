//! Leases: one node at a time does a job (the process managers: outbox, timers, routers,
//! webhooks), by holding a key in the log's lease bucket. The bucket's entries expire
//! after [`LEASE_TTL`]; the holder renews its key every third of that with a
//! compare-and-set on its revision. A node that cannot renew in time gives the lease up
//! (its watch turns `false`) before the key expires and another node takes it, so two
//! holders overlap only if a node stalls for longer than the renewal margin — the jobs are
//! idempotent (every effect is keyed by the event that caused it), so an overlap repeats
//! work, never its effects.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::store::NatsLog;

/// How long an unrenewed lease lasts.
pub const LEASE_TTL: Duration = Duration::from_secs(10);

impl NatsLog {
    /// Competes for lease `name` on behalf of `holder` (a node's name) until the log is
    /// shut down: the watch is `true` while this node holds it.
    pub fn lease(&self, name: &str, holder: &str) -> watch::Receiver<bool> {
        let (tx, rx) = watch::channel(false);
        let inner = std::sync::Arc::downgrade(&self.inner);
        let (key, value) = (format!("lease_{name}"), holder.to_owned());
        self.inner.handle.spawn(async move {
            let renew_every = LEASE_TTL / 3;
            let mut held: Option<(u64, Instant)> = None;
            loop {
                let Some(inner) = inner.upgrade() else { return };
                held = match held {
                    None => match inner.leases.create(&key, value.clone().into()).await {
                        Ok(revision) => {
                            tracing::info!(lease = %key, "lease taken");
                            Some((revision, Instant::now()))
                        }
                        Err(_) => None,
                    },
                    Some((revision, renewed)) => {
                        match inner
                            .leases
                            .update(&key, value.clone().into(), revision)
                            .await
                        {
                            Ok(revision) => Some((revision, Instant::now())),
                            // Not renewed: keep trying while there is margin left.
                            Err(e) if renewed.elapsed() < LEASE_TTL * 2 / 3 => {
                                tracing::debug!(lease = %key, error = %e, "lease not renewed yet");
                                Some((revision, renewed))
                            }
                            Err(e) => {
                                tracing::warn!(lease = %key, error = %e, "lease lost");
                                None
                            }
                        }
                    }
                };
                drop(inner);
                let holding = held.is_some();
                tx.send_if_modified(|now| std::mem::replace(now, holding) != holding);
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(if holding {
                    renew_every
                } else {
                    Duration::from_millis(500)
                })
                .await;
            }
        });
        rx
    }
}
