//! Online backup and restore of one machine's data directory.
//!
//! A backup is a directory:
//! - `log/`: a RocksDB checkpoint of the event log, taken while the server runs (every
//!   event acknowledged before the backup began is in it);
//! - `blobs/`: the attachments (content-addressed and never rewritten, so copying them
//!   after the log's checkpoint misses none the log refers to);
//! - `keys/`: a RocksDB checkpoint of the keyring message texts are sealed under, taken
//!   after the log's (every key the copied log needs was made before its events were
//!   written; a key destroyed meanwhile stays destroyed in the copy);
//! - `media.key`: the key MMS media URLs are signed with;
//! - `checkpoint.json`: a checkpoint of the copied log, signed by the server's key;
//! - `backup.json`: the manifest, written last (a directory without it is no backup).
//!
//! Read models are not copied: the server rebuilds them from the log when it starts on a
//! restored directory. The checkpoint-signing key is not copied either (see
//! [`crate::ops::signing`]).
//!
//! Copies are hard links where the backup is on the data directory's file system (instant,
//! but no protection against losing that disk: back up to another one) and byte copies
//! elsewhere.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use ed25519_dalek::SigningKey;
use eventlog::checkpoint::{self, AllDigest, Checkpoint};
use eventlog::{EventStore, RocksLog};
use serde::{Deserialize, Serialize};

/// The manifest format this code writes.
pub const MANIFEST_FORMAT: u8 = 1;
const MANIFEST: &str = "backup.json";
const CHECKPOINT: &str = "checkpoint.json";
const MEDIA_KEY: &str = "media.key";

/// What `backup.json` says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub format: u8,
    /// The Switchboard version that wrote it.
    pub version: String,
    pub created_at_ms: u64,
    /// Events in the copied log (positions `0..events`).
    pub events: u64,
    /// Hex of the `$all` digest over them (as in `checkpoint.json`).
    pub digest: String,
    /// Hex of the key that signed `checkpoint.json`.
    pub public_key: String,
    pub blobs: u64,
    pub blob_bytes: u64,
}

/// One step of a backup or restore, as progress reports name it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Progress {
    /// `log`, `verify`, `keys`, `blobs`, `media_key`, `manifest`.
    pub step: String,
    pub done: u64,
    pub total: Option<u64>,
}

fn report(progress: &mut dyn FnMut(Progress), step: &str, done: u64, total: Option<u64>) {
    progress(Progress {
        step: step.to_owned(),
        done,
        total,
    });
}

/// Backs up the running log `log` of `data_dir` into `to` (absent or empty).
///
/// # Errors
/// `to` is not empty or is inside the data directory; the copy failed or does not verify.
pub fn backup(
    log: &RocksLog,
    data_dir: &Path,
    key: &SigningKey,
    to: &Path,
    progress: &mut dyn FnMut(Progress),
) -> anyhow::Result<Manifest> {
    let data_dir = data_dir
        .canonicalize()
        .with_context(|| format!("{}", data_dir.display()))?;
    prepare_empty(to)?;
    let to = to.canonicalize()?;
    if to.starts_with(&data_dir) {
        bail!(
            "{} is inside the data directory {}: back up elsewhere (ideally another disk)",
            to.display(),
            data_dir.display()
        );
    }
    let events = log
        .checkpoint_to(&to.join("log"))
        .context("taking a checkpoint of the log")?;
    report(progress, "log", events, Some(events));
    let digest = verify_copy(&to.join("log"), events, progress)?;
    if let Some(keyring) = log.keyring() {
        keyring
            .checkpoint_to(&to.join("keys"))
            .context("taking a checkpoint of the keyring")?;
    }
    report(progress, "keys", 1, Some(1));
    let created_at_ms = crate::ops::signing::now_ms();
    let cp = Checkpoint::sign(key, &digest, created_at_ms);
    cp.write(&to.join(CHECKPOINT))
        .context("writing the signed checkpoint")?;
    let (blobs, blob_bytes) = copy_blobs(&data_dir.join("blobs"), &to.join("blobs"), progress)?;
    copy_file_if_present(&data_dir.join(MEDIA_KEY), &to.join(MEDIA_KEY))?;
    report(progress, "media_key", 1, Some(1));
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at_ms,
        events,
        digest: cp.digest.clone(),
        public_key: cp.public_key.clone(),
        blobs,
        blob_bytes,
    };
    let text = serde_json::to_string_pretty(&manifest)?;
    checkpoint::write_durably(&to.join(MANIFEST), text.as_bytes())
        .context("writing the manifest")?;
    report(progress, "manifest", 1, Some(1));
    Ok(manifest)
}

/// Restores the backup in `from` into `data_dir` (absent or empty): checks the copy first
/// (every chain, and the signed checkpoint: against `trusted` when given), then copies it
/// into a sibling directory and renames that into place, so a failed restore leaves no
/// half-filled data directory.
///
/// # Errors
/// Not a complete backup, a copy that does not verify, a data directory in use.
pub fn restore(
    from: &Path,
    data_dir: &Path,
    trusted: Option<&ed25519_dalek::VerifyingKey>,
    progress: &mut dyn FnMut(Progress),
) -> anyhow::Result<Manifest> {
    let text = std::fs::read_to_string(from.join(MANIFEST)).with_context(|| {
        format!(
            "{} is not a complete backup (no {MANIFEST})",
            from.display()
        )
    })?;
    let manifest: Manifest = serde_json::from_str(&text).context("reading the manifest")?;
    if manifest.format > MANIFEST_FORMAT {
        bail!(
            "backup format {} is newer than this program reads ({MANIFEST_FORMAT})",
            manifest.format
        );
    }
    let cp = Checkpoint::read(&from.join(CHECKPOINT))?;
    let vouched = cp.verify_signature(trusted)?;
    if vouched.position != manifest.events || cp.digest != manifest.digest {
        bail!("the manifest and the signed checkpoint disagree");
    }
    let digest = verify_copy(&from.join("log"), manifest.events, progress)?;
    Checkpoint::check(&vouched, &digest, digest.position)?;
    if data_dir.exists()
        && std::fs::read_dir(data_dir)
            .with_context(|| format!("{}", data_dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} is not empty: restore into a new data directory",
            data_dir.display()
        );
    }
    let name = data_dir
        .file_name()
        .context("the data directory needs a name")?
        .to_string_lossy()
        .into_owned();
    let parent = match data_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)?;
    let staging = parent.join(format!(".{name}.restoring"));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("removing an earlier attempt {}", staging.display()))?;
    }
    std::fs::create_dir_all(&staging)?;
    let files = copy_tree(&from.join("log"), &staging.join("log"))?;
    report(progress, "log", files, Some(files));
    if from.join("keys").exists() {
        copy_tree(&from.join("keys"), &staging.join("keys"))?;
    }
    report(progress, "keys", 1, Some(1));
    copy_blobs(&from.join("blobs"), &staging.join("blobs"), progress)?;
    copy_file_if_present(&from.join(MEDIA_KEY), &staging.join(MEDIA_KEY))?;
    report(progress, "media_key", 1, Some(1));
    sync_dir(&staging)?;
    if data_dir.exists() {
        std::fs::remove_dir(data_dir)?;
    }
    std::fs::rename(&staging, data_dir)
        .with_context(|| format!("moving the restored copy to {}", data_dir.display()))?;
    sync_dir(&parent)?;
    Ok(manifest)
}

/// Every chain and index of the copy verifies, and its `$all` holds `events`: its digest.
fn verify_copy(
    dir: &Path,
    events: u64,
    progress: &mut dyn FnMut(Progress),
) -> anyhow::Result<AllDigest> {
    let copy = RocksLog::open_read_only(dir)
        .with_context(|| format!("opening the copied log {}", dir.display()))?;
    let report_ = copy.verify_all_blocking()?;
    if let Some(b) = report_.first_break {
        bail!("the copied log does not verify: {b}");
    }
    if copy.next_position() != events {
        bail!(
            "the copied log holds {} events, not {events}",
            copy.next_position()
        );
    }
    let mut digest = AllDigest::EMPTY;
    checkpoint::fold_log(&copy, &mut digest, events, |at| {
        report(progress, "verify", at, Some(events));
    })?;
    if digest.position != events {
        bail!(
            "the copied log's $all ends at {}, not {events}",
            digest.position
        );
    }
    if events == 0 {
        // Nothing was folded, so nothing was reported yet.
        report(progress, "verify", 0, Some(0));
    }
    Ok(digest)
}

fn prepare_empty(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        if std::fs::read_dir(dir)?.next().is_some() {
            bail!(
                "{} is not empty: back up into a new directory",
                dir.display()
            );
        }
    } else {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(())
}

/// Copies the blob store `from` into `to`: every finished blob (not the temporary files of
/// uploads in progress), each checked against its name (its hash). Answers (blobs, bytes).
fn copy_blobs(
    from: &Path,
    to: &Path,
    progress: &mut dyn FnMut(Progress),
) -> anyhow::Result<(u64, u64)> {
    std::fs::create_dir_all(to)?;
    let (mut count, mut bytes) = (0u64, 0u64);
    if !from.exists() {
        report(progress, "blobs", 0, Some(0));
        return Ok((0, 0));
    }
    for shard in std::fs::read_dir(from)? {
        let shard = shard?;
        if !shard.file_type()?.is_dir() {
            continue;
        }
        let target = to.join(shard.file_name());
        std::fs::create_dir_all(&target)?;
        for blob in std::fs::read_dir(shard.path())? {
            let blob = blob?;
            let name = blob.file_name().to_string_lossy().into_owned();
            if !carrier::blobs::is_valid_hash(&name) {
                continue;
            }
            let size = link_or_copy(&blob.path(), &target.join(&name))?;
            let content = std::fs::read(target.join(&name))?;
            if blake3::hash(&content).to_hex().as_str() != name {
                bail!("attachment {name} does not match its hash: the store is damaged");
            }
            count += 1;
            bytes += size;
            if count.is_multiple_of(1000) {
                report(progress, "blobs", count, None);
            }
        }
        sync_dir(&target)?;
    }
    sync_dir(to)?;
    report(progress, "blobs", count, Some(count));
    Ok((count, bytes))
}

/// Copies a directory's files (one level, as RocksDB's). Never hard links: RocksDB
/// appends to some of its files, which would change the backup too.
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<u64> {
    std::fs::create_dir_all(to)?;
    let mut files = 0;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        copy_synced(&entry.path(), &to.join(entry.file_name()))?;
        files += 1;
    }
    sync_dir(to)?;
    Ok(files)
}

fn link_or_copy(from: &Path, to: &Path) -> anyhow::Result<u64> {
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(std::fs::metadata(to)?.len());
    }
    copy_synced(from, to)
}

fn copy_synced(from: &Path, to: &Path) -> anyhow::Result<u64> {
    let n = std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    std::fs::File::open(to)?.sync_all()?;
    Ok(n)
}

fn copy_file_if_present(from: &Path, to: &Path) -> anyhow::Result<()> {
    if from.exists() {
        copy_synced(from, to)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}
