//! The server's checkpoint-signing key, and the signed checkpoints it writes of its log.
//!
//! The key is 64 hex digits in a file (`--checkpoint-key`, by default
//! `<data>/checkpoint.key`, created with mode 0600 on first start); its public half is
//! written beside it as `checkpoint.pub` and logged at startup. Keep a copy of the public
//! key (and ideally the key file itself) off the data disk: whoever can rewrite the log and
//! the key could sign a rewritten history.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ed25519_dalek::SigningKey;
use eventlog::checkpoint::{self, AllDigest, Checkpoint};
use eventlog::EventStore;

/// Loads the key at `path`, creating it (0600) if there is none.
///
/// # Errors
/// An unreadable or malformed key file, or one that cannot be created.
pub fn load_or_create(path: &Path) -> anyhow::Result<SigningKey> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes = eventlog::hex::decode::<32>(text.trim())
                .with_context(|| format!("{}: expected 64 hex digits", path.display()))?;
            Ok(SigningKey::from_bytes(&bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::generate(&mut rand_core::OsRng);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            write_private(path, &eventlog::hex::encode(&key.to_bytes()))
                .with_context(|| format!("writing the checkpoint key {}", path.display()))?;
            tracing::info!(path = %path.display(), "created a checkpoint-signing key");
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The public key's file beside the key: `<key>.pub` (`checkpoint.key` → `checkpoint.pub`).
pub fn public_key_path(key_path: &Path) -> PathBuf {
    key_path.with_extension("pub")
}

/// Writes the public key beside the private one (readable by all).
///
/// # Errors
/// The file cannot be written.
pub fn publish(key_path: &Path, key: &SigningKey) -> anyhow::Result<String> {
    let public = eventlog::hex::encode(key.verifying_key().as_bytes());
    let path = public_key_path(key_path);
    checkpoint::write_durably(&path, format!("{public}\n").as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(public)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Where the periodic checkpoints go, and how many are kept.
pub struct Checkpoints {
    pub dir: PathBuf,
    pub keep: usize,
}

impl Checkpoints {
    /// The file of the checkpoint at `position` (names sort by position).
    pub fn file(&self, position: u64) -> PathBuf {
        self.dir.join(format!("checkpoint-{position:020}.json"))
    }

    /// The newest checkpoint in the directory that `key` signed, if any.
    fn newest(&self, key: &SigningKey) -> Option<Checkpoint> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_checkpoint_file(p))
            .collect();
        names.sort();
        let trusted = key.verifying_key();
        names.iter().rev().find_map(|p| {
            let cp = Checkpoint::read(p).ok()?;
            cp.verify_signature(Some(&trusted)).ok()?;
            Some(cp)
        })
    }

    /// Writes `cp` and removes all but the newest [`Checkpoints::keep`].
    ///
    /// # Errors
    /// The file system refused.
    pub fn save(&self, cp: &Checkpoint) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.file(cp.position);
        cp.write(&path)?;
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_checkpoint_file(p))
            .collect();
        names.sort();
        let excess = names.len().saturating_sub(self.keep.max(1));
        for old in &names[..excess] {
            let _ = std::fs::remove_file(old);
        }
        Ok(path)
    }
}

fn is_checkpoint_file(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("checkpoint-") && n.ends_with(".json"))
}

/// Signs a checkpoint of `store`'s `$all` every `every` (when it has grown), folding only
/// the events since the newest checkpoint this key signed. Runs until the process ends.
pub async fn run_periodic(
    store: Arc<dyn EventStore>,
    key: SigningKey,
    checkpoints: Checkpoints,
    every: Duration,
) {
    let checkpoints = Arc::new(checkpoints);
    let mut digest = match checkpoints.newest(&key) {
        Some(cp) => match cp.verify_signature(None) {
            Ok(d) if d.position <= store.next_position() => d,
            Ok(d) => {
                tracing::error!(
                    checkpoint = d.position,
                    held = store.next_position(),
                    "the log holds fewer events than this server's newest signed checkpoint: \
                     its tail was removed; run `replay verify --checkpoint` on that file"
                );
                AllDigest::EMPTY
            }
            Err(_) => AllDigest::EMPTY,
        },
        None => AllDigest::EMPTY,
    };
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let until = store.next_position();
        if until == digest.position {
            continue;
        }
        let (store, key, checkpoints) = (store.clone(), key.clone(), checkpoints.clone());
        let mut d = digest;
        let done = tokio::task::spawn_blocking(move || {
            checkpoint::fold_log(&*store, &mut d, until, |_| {})?;
            let cp = Checkpoint::sign(&key, &d, now_ms());
            checkpoints
                .save(&cp)
                .map_err(|e| anyhow::anyhow!("writing a checkpoint: {e}"))?;
            Ok::<_, anyhow::Error>(d)
        })
        .await;
        match done {
            Ok(Ok(d)) => {
                tracing::debug!(position = d.position, "signed a checkpoint of the log");
                digest = d;
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "no checkpoint this round"),
            Err(e) => tracing::warn!(error = %e, "the checkpoint task failed"),
        }
    }
}
