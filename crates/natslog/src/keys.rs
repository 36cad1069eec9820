//! The cluster's keyring: the keys message texts are sealed under (`eventlog::keyring`), in
//! a replicated JetStream key-value bucket (`<prefix>-keys`, as many replicas as the log)
//! instead of a node's disk, so every node opens what any node sealed, and destroying a
//! key (erasure, retention) destroys it for all. Names are hex in the bucket; destroying
//! purges every revision.
//!
//! Each node caches keys in memory; a watcher on the bucket drops the cached entry of every
//! key another node makes or destroys, and a text that does not open with the cached keys
//! is tried again with the bucket's before it is called erased
//! (`actors::sealing`). Between a destruction and its watch event reaching another node,
//! that node may still open the text (milliseconds). A task reads the keys in use again
//! every so often (`Keyring::refresh_ahead`), so their trust never runs out while they
//! are used and opening a text asks the bucket (blocking its thread) only for a key's
//! first use.

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_nats::jetstream::kv;
use eventlog::keyring::{KeyBackend, Keyring, KeyringError, Named};
use futures_util::StreamExt;
use tokio::runtime::Handle;

/// The bucket, reached from any thread.
pub(crate) struct NatsKeys {
    pub kv: kv::Store,
    pub handle: Handle,
}

fn failed(e: impl std::fmt::Display) -> KeyringError {
    KeyringError::Storage(format!("the cluster's keyring: {e}"))
}

impl NatsKeys {
    fn block_on<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Result<T, KeyringError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| failed("the client's runtime stopped"))
    }
}

impl KeyBackend for NatsKeys {
    fn get(&self, name: &[u8]) -> Result<Option<Vec<u8>>, KeyringError> {
        let (kv, key) = (self.kv.clone(), eventlog::hex::encode(name));
        self.block_on(async move { kv.get(key).await })?
            .map(|v| v.map(|b| b.to_vec()))
            .map_err(failed)
    }

    fn create(&self, name: &[u8], record: &[u8]) -> Result<Vec<u8>, KeyringError> {
        let (kv, key, value) = (
            self.kv.clone(),
            eventlog::hex::encode(name),
            record.to_vec(),
        );
        self.block_on(async move {
            match kv.create(&key, value.clone().into()).await {
                Ok(_) => Ok(value),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => kv
                    .get(key)
                    .await
                    .map_err(failed)?
                    .map(|b| b.to_vec())
                    .ok_or_else(|| failed("a key made elsewhere vanished")),
                Err(e) => Err(failed(e)),
            }
        })?
    }

    fn list(&self, prefix: &[u8]) -> Result<Vec<Named>, KeyringError> {
        let (kv, prefix) = (self.kv.clone(), eventlog::hex::encode(prefix));
        self.block_on(async move {
            let mut keys = kv.keys().await.map_err(failed)?;
            let mut names = Vec::new();
            while let Some(key) = keys.next().await {
                let key = key.map_err(failed)?;
                if key.starts_with(&prefix) {
                    names.push(key);
                }
            }
            let mut out = Vec::with_capacity(names.len());
            for key in names {
                if let (Some(name), Some(value)) = (
                    eventlog::hex::decode_vec(&key),
                    kv.get(key.clone()).await.map_err(failed)?,
                ) {
                    out.push((name, value.to_vec()));
                }
            }
            Ok(out)
        })?
    }

    fn destroy(&self, names: &[Vec<u8>]) -> Result<(), KeyringError> {
        let (kv, keys) = (
            self.kv.clone(),
            names
                .iter()
                .map(|n| eventlog::hex::encode(n))
                .collect::<Vec<_>>(),
        );
        self.block_on(async move {
            for key in keys {
                kv.purge(key).await.map_err(failed)?;
            }
            Ok(())
        })?
    }
}

/// Drops the cached entry of every key changed in the bucket, for as long as the keyring
/// lives. When the watch fails or ends (the cluster restarted under it, say) it is made
/// again and everything the keyring holds is dropped, since changes may have been missed
/// meanwhile; should the watch miss one silently, the keyring trusts nothing for longer
/// than [`eventlog::keyring::REMOTE_TRUST`] anyway.
pub(crate) fn watch(kv: kv::Store, handle: &Handle, keyring: Weak<Keyring>) {
    handle.spawn(async move {
        let mut first = true;
        loop {
            match kv.watch_all().await {
                Ok(mut changes) => {
                    if !std::mem::take(&mut first) {
                        let Some(ring) = keyring.upgrade() else {
                            return;
                        };
                        ring.forget_all();
                    }
                    while let Some(change) = changes.next().await {
                        let Some(ring) = keyring.upgrade() else {
                            return;
                        };
                        let entry = match change {
                            Ok(entry) => entry,
                            Err(e) => {
                                tracing::warn!(error = %e, "the cluster's keyring watch failed; watching again");
                                ring.forget_all();
                                break;
                            }
                        };
                        if let Some(name) = eventlog::hex::decode_vec(&entry.key) {
                            // A key made anywhere: only its cache entry goes; one
                            // destroyed: the texts this node remembers go too.
                            if entry.operation == kv::Operation::Put {
                                ring.forget_key(&name);
                            } else {
                                ring.forget(&name);
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot watch the cluster's keyring"),
            }
            if keyring.strong_count() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

/// The keyring of a cluster over `kv`, watched.
pub(crate) fn keyring(kv: kv::Store, handle: &Handle) -> Arc<Keyring> {
    let backend = Arc::new(NatsKeys {
        kv: kv.clone(),
        handle: handle.clone(),
    });
    let ring = Arc::new(Keyring::remote(backend));
    watch(kv, handle, Arc::downgrade(&ring));
    refresh_ahead(handle, Arc::downgrade(&ring));
    ring
}

/// How often the keys in use are read again (those read half the trust horizon ago or
/// more), so none of them is ever untrusted when a text is opened.
const REFRESH_EVERY: Duration = Duration::from_millis(1_250);

/// Keeps the keys in use trusted for as long as the keyring lives
/// ([`Keyring::refresh_ahead`], on a blocking thread: it waits on the bucket), so that
/// opening a text on an executor thread waits on the bucket only for a key's first use or
/// its first after a quiet spell.
fn refresh_ahead(handle: &Handle, keyring: Weak<Keyring>) {
    handle.spawn(async move {
        let mut tick = tokio::time::interval(REFRESH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(ring) = keyring.upgrade() else {
                return;
            };
            let refreshed = tokio::task::spawn_blocking(move || {
                ring.refresh_ahead(eventlog::keyring::REMOTE_TRUST / 2)
            })
            .await;
            if let Ok(Err(e)) = refreshed {
                tracing::warn!(error = %e, "cannot read the keys in use again; they are read when used");
            }
        }
    });
}
