//! The cluster's keyring: the keys message texts are sealed under (`eventlog::keyring`), in
//! a replicated JetStream key-value bucket (`<prefix>-keys`, as many replicas as the log)
//! instead of a node's disk, so every node opens what any node sealed, and destroying a
//! key (erasure, retention) destroys it for all. Names are hex in the bucket; destroying
//! purges every revision. A key is found on any replica, but its absence is taken only
//! from the bucket stream's leader (a replica may be behind); reads and creations ride out
//! failures that pass.
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
use async_nats::jetstream::stream::LastRawMessageErrorKind;
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
        self.block_on(async move { read(&kv, &key).await })?
    }

    fn create(&self, name: &[u8], record: &[u8]) -> Result<Vec<u8>, KeyringError> {
        let (kv, key, value) = (
            self.kv.clone(),
            eventlog::hex::encode(name),
            record.to_vec(),
        );
        self.block_on(async move {
            let deadline = tokio::time::Instant::now() + PATIENCE;
            let mut pause = FIRST_PAUSE;
            loop {
                let Err(refused) = kv.create(&key, value.clone().into()).await else {
                    return Ok(value);
                };
                // Made elsewhere meanwhile (told as such, or as a wrong last sequence
                // when the client's own look was served by a replica still behind), or an
                // outcome unknown: which key stands, as `read` finds it.
                if let Some(made) = read(&kv, &key).await? {
                    return Ok(made);
                }
                if refused.kind() == kv::CreateErrorKind::AlreadyExists {
                    return Err(failed("a key made elsewhere vanished"));
                }
                if tokio::time::Instant::now() + pause > deadline {
                    return Err(failed(refused));
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
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
                if let (Some(name), Some(value)) =
                    (eventlog::hex::decode_vec(&key), read(&kv, &key).await?)
                {
                    out.push((name, value));
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

/// How long a read or a creation of a key keeps trying through failures that pass (the
/// bucket's stream not found on the server asked while the cluster forms or elects, a
/// timeout) before it reports the bucket unavailable.
const PATIENCE: Duration = Duration::from_secs(5);
const FIRST_PAUSE: Duration = Duration::from_millis(25);
const MAX_PAUSE: Duration = Duration::from_millis(500);

/// The value of `key` (`None`: never made, or destroyed). A key any replica has is the
/// key (a name's key never changes; one destroyed may still show for the moments that
/// replica is behind, as it may before the watch tells this node anyway), so a direct get,
/// which any replica may answer, finds it even without a quorum. Its absence is only taken
/// from the bucket stream's leader: a replica still behind would not have a key just made
/// elsewhere. Failures that pass (the stream not yet found on the server asked while the
/// cluster forms, a timeout) are retried for [`PATIENCE`].
async fn read(kv: &kv::Store, key: &str) -> Result<Option<Vec<u8>>, KeyringError> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut pause = FIRST_PAUSE;
    loop {
        let error = match kv.get(key).await {
            Ok(Some(value)) => return Ok(Some(value.to_vec())),
            Ok(None) | Err(_) => match from_leader(kv, key).await {
                Ok(value) => return Ok(value),
                Err(e) => e,
            },
        };
        if tokio::time::Instant::now() + pause > deadline {
            return Err(error);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// The value of `key` as the bucket stream's leader has it (`STREAM.MSG.GET`).
async fn from_leader(kv: &kv::Store, key: &str) -> Result<Option<Vec<u8>>, KeyringError> {
    let subject = format!("{}{key}", kv.prefix);
    match kv.stream.get_last_raw_message_by_subject(&subject).await {
        // Destroying purges the key: its last message is then a purge (or delete) marker.
        Ok(message) => Ok(
            match message.headers.get(KV_OPERATION).map(|v| v.as_str()) {
                Some("DEL" | "PURGE") => None,
                _ => Some(message.payload.to_vec()),
            },
        ),
        Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => Ok(None),
        Err(e) => Err(failed(e)),
    }
}

/// The header a key-value bucket marks a deletion or a purge with.
const KV_OPERATION: &str = "KV-Operation";

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
