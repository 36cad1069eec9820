//! Signed checkpoints of `$all`: evidence that survives deleting the log's tail.
//!
//! The per-stream chains show an event changed in place, but not that the newest events
//! were removed, nor that a whole stream's chain was rewritten consistently. A checkpoint
//! fixes what the log held at one moment: the number of events in `$all` (`position`: the
//! events at positions `0..position`) and a digest folded over each of them in order,
//!
//! `digest₀ = 0³²`, `digestₚ₊₁ = blake3("…all-digest.v1" ‖ digestₚ ‖ p ‖ hashₚ)`,
//!
//! where `hashₚ` is the chain hash of the event at position `p` (which covers its content,
//! stream, version and the hash before it). The server signs it with an Ed25519 key kept
//! apart from the log and writes it periodically and with every backup; an auditor who
//! holds the public key proves with `replay verify --checkpoint FILE --public-key KEY` that
//! the log still holds every event up to it, unchanged.
//!
//! A checkpoint is a small JSON file (the signature covers a fixed byte layout, never the
//! JSON text, so reformatting the file does not break it).

use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::envelope::RecordedEvent;

const DIGEST_DOMAIN: &[u8] = b"switchboard.eventlog.all-digest.v1";
const SIGNED_DOMAIN: &[u8] = b"switchboard.eventlog.checkpoint.v1";
/// The checkpoint file format this code writes.
pub const FORMAT: u8 = 1;

/// The digest of `$all`'s first `position` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllDigest {
    /// How many events are folded in: the next one expected is at this position.
    pub position: u64,
    pub value: [u8; 32],
}

impl Default for AllDigest {
    fn default() -> Self {
        Self::EMPTY
    }
}

/// An event out of `$all`'s order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected the event at position {expected}, got position {got}")]
pub struct OutOfOrder {
    pub expected: u64,
    pub got: u64,
}

impl AllDigest {
    /// The digest of no events.
    pub const EMPTY: Self = Self {
        position: 0,
        value: [0; 32],
    };

    /// Folds in the next event of `$all`.
    ///
    /// # Errors
    /// The event is not the one at [`AllDigest::position`].
    pub fn fold(&mut self, event: &RecordedEvent) -> Result<(), OutOfOrder> {
        self.fold_hash(event.position, &event.hash)
    }

    /// Folds in the chain hash of the event at `position`.
    ///
    /// # Errors
    /// `position` is not the next one.
    pub fn fold_hash(&mut self, position: u64, hash: &[u8; 32]) -> Result<(), OutOfOrder> {
        if position != self.position {
            return Err(OutOfOrder {
                expected: self.position,
                got: position,
            });
        }
        let mut h = blake3::Hasher::new();
        h.update(&(DIGEST_DOMAIN.len() as u64).to_le_bytes());
        h.update(DIGEST_DOMAIN);
        h.update(&self.value);
        h.update(&position.to_le_bytes());
        h.update(hash);
        self.value = *h.finalize().as_bytes();
        self.position += 1;
        Ok(())
    }
}

/// Why a log could not be folded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FoldError {
    #[error(transparent)]
    Read(#[from] crate::error::ReadError),
    #[error("`$all` is not contiguous: {0}")]
    Gap(#[from] OutOfOrder),
}

/// Folds `store`'s events from `digest.position` up to (not including) `until`, or to the
/// log's end if it is shorter, calling `progress` with the position reached after each
/// page.
///
/// # Errors
/// A read failed, or `$all` has a hole.
pub fn fold_log(
    store: &dyn crate::store::EventStore,
    digest: &mut AllDigest,
    until: u64,
    mut progress: impl FnMut(u64),
) -> Result<(), FoldError> {
    const PAGE: usize = 4096;
    while digest.position < until {
        let page = store.read_all_blocking(digest.position, PAGE)?;
        if page.is_empty() {
            break;
        }
        let before = digest.position;
        for event in page.iter().take_while(|e| e.position < until) {
            digest.fold(event)?;
        }
        if digest.position == before {
            return Err(OutOfOrder {
                expected: before,
                got: page[0].position,
            }
            .into());
        }
        progress(digest.position);
    }
    Ok(())
}

/// A signed statement: "`$all` held `position` events, folding to `digest`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub format: u8,
    /// Events covered: positions `0..position`.
    pub position: u64,
    /// Hex of the digest over them.
    pub digest: String,
    /// When it was signed, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// Hex of the Ed25519 public key that signed it.
    pub public_key: String,
    /// Hex of the Ed25519 signature over the fields above (see [`Checkpoint::signed_bytes`]).
    pub signature: String,
}

/// Why a checkpoint does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    #[error("not a checkpoint file: {0}")]
    Unreadable(String),
    #[error("checkpoint format {0} is newer than this program reads ({FORMAT})")]
    UnknownFormat(u8),
    #[error("the checkpoint is signed by key {found}, not by the trusted key {trusted}")]
    WrongKey { trusted: String, found: String },
    #[error("the checkpoint's signature does not verify")]
    BadSignature,
    #[error("the log holds {held} events, fewer than the {position} the checkpoint covers: its tail was removed")]
    Truncated { held: u64, position: u64 },
    #[error("the log's first {position} events fold to {found}, not to the checkpoint's {expected}: events up to it were changed, removed or reordered")]
    DigestMismatch {
        position: u64,
        expected: String,
        found: String,
    },
}

impl Checkpoint {
    /// The bytes the signature covers.
    fn signed_bytes(position: u64, digest: &[u8; 32], created_at_ms: u64) -> Vec<u8> {
        let mut b = Vec::with_capacity(SIGNED_DOMAIN.len() + 8 + 1 + 8 + 32 + 8);
        b.extend_from_slice(&(SIGNED_DOMAIN.len() as u64).to_le_bytes());
        b.extend_from_slice(SIGNED_DOMAIN);
        b.push(FORMAT);
        b.extend_from_slice(&position.to_le_bytes());
        b.extend_from_slice(digest);
        b.extend_from_slice(&created_at_ms.to_le_bytes());
        b
    }

    /// Signs `digest` as of `created_at_ms`.
    pub fn sign(key: &SigningKey, digest: &AllDigest, created_at_ms: u64) -> Self {
        let signature = key.sign(&Self::signed_bytes(
            digest.position,
            &digest.value,
            created_at_ms,
        ));
        Self {
            format: FORMAT,
            position: digest.position,
            digest: crate::hex::encode(&digest.value),
            created_at_ms,
            public_key: crate::hex::encode(key.verifying_key().as_bytes()),
            signature: crate::hex::encode(&signature.to_bytes()),
        }
    }

    /// Checks the signature, against `trusted` when given (otherwise against the key the
    /// checkpoint names, which only shows it was not altered since signing), and answers
    /// the digest it vouches for.
    ///
    /// # Errors
    /// Malformed fields, another key, a signature that does not verify.
    pub fn verify_signature(
        &self,
        trusted: Option<&VerifyingKey>,
    ) -> Result<AllDigest, CheckpointError> {
        if self.format > FORMAT {
            return Err(CheckpointError::UnknownFormat(self.format));
        }
        let named = VerifyingKey::from_bytes(&unhex::<32>(&self.public_key, "public_key")?)
            .map_err(|e| CheckpointError::Unreadable(format!("public_key: {e}")))?;
        let key = match trusted {
            Some(t) if t != &named => {
                return Err(CheckpointError::WrongKey {
                    trusted: crate::hex::encode(t.as_bytes()),
                    found: self.public_key.clone(),
                })
            }
            Some(t) => *t,
            None => named,
        };
        let digest = unhex::<32>(&self.digest, "digest")?;
        let signature = Signature::from_bytes(&unhex::<64>(&self.signature, "signature")?);
        key.verify(
            &Self::signed_bytes(self.position, &digest, self.created_at_ms),
            &signature,
        )
        .map_err(|_| CheckpointError::BadSignature)?;
        Ok(AllDigest {
            position: self.position,
            value: digest,
        })
    }

    /// Compares the digest a walk of the log computed over its first `position` events
    /// (`held` events in all) with the one this checkpoint vouches for.
    ///
    /// # Errors
    /// The log is shorter than the checkpoint, or its digest differs.
    pub fn check(
        vouched: &AllDigest,
        computed: &AllDigest,
        held: u64,
    ) -> Result<(), CheckpointError> {
        if held < vouched.position || computed.position < vouched.position {
            return Err(CheckpointError::Truncated {
                held,
                position: vouched.position,
            });
        }
        if computed.position != vouched.position || computed.value != vouched.value {
            return Err(CheckpointError::DigestMismatch {
                position: vouched.position,
                expected: crate::hex::encode(&vouched.value),
                found: crate::hex::encode(&computed.value),
            });
        }
        Ok(())
    }

    /// Reads a checkpoint file.
    ///
    /// # Errors
    /// Unreadable or not a checkpoint.
    pub fn read(path: &Path) -> Result<Self, CheckpointError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CheckpointError::Unreadable(format!("{}: {e}", path.display())))?;
        serde_json::from_str(&text)
            .map_err(|e| CheckpointError::Unreadable(format!("{}: {e}", path.display())))
    }

    /// Writes it to `path` durably: a temporary file, fsync, rename, fsync of the directory.
    ///
    /// # Errors
    /// The file system refused.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        write_durably(path, text.as_bytes())
    }
}

/// Writes `bytes` to `path` so that after a crash the file is either the old one or the
/// whole new one.
///
/// # Errors
/// The file system refused.
pub fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp: PathBuf = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Reads a public key given as 64 hex digits, or a file holding them.
///
/// # Errors
/// Neither hex nor a readable file of hex.
pub fn parse_public_key(text_or_path: &str) -> Result<VerifyingKey, CheckpointError> {
    let text = if Path::new(text_or_path).is_file() {
        std::fs::read_to_string(text_or_path)
            .map_err(|e| CheckpointError::Unreadable(format!("{text_or_path}: {e}")))?
    } else {
        text_or_path.to_owned()
    };
    VerifyingKey::from_bytes(&unhex::<32>(text.trim(), "public key")?)
        .map_err(|e| CheckpointError::Unreadable(format!("public key: {e}")))
}

fn unhex<const N: usize>(s: &str, what: &str) -> Result<[u8; N], CheckpointError> {
    crate::hex::decode::<N>(s).ok_or_else(|| {
        CheckpointError::Unreadable(format!("{what}: expected {} hex digits", N * 2))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn digest(hashes: &[[u8; 32]]) -> AllDigest {
        let mut d = AllDigest::EMPTY;
        for (p, h) in hashes.iter().enumerate() {
            d.fold_hash(p as u64, h).unwrap();
        }
        d
    }

    #[test]
    fn a_signed_checkpoint_vouches_for_exactly_its_prefix() {
        let hashes: Vec<[u8; 32]> = (0..5u8).map(|i| [i; 32]).collect();
        let d = digest(&hashes[..3]);
        let cp = Checkpoint::sign(&key(7), &d, 1_700_000_000_000);
        let trusted = key(7).verifying_key();
        let vouched = cp.verify_signature(Some(&trusted)).unwrap();
        assert_eq!(vouched, d);
        // The same prefix checks; a longer log is fine as long as its prefix folds equal.
        Checkpoint::check(&vouched, &digest(&hashes[..3]), 5).unwrap();
        // A shorter log: its tail was removed.
        assert!(matches!(
            Checkpoint::check(&vouched, &digest(&hashes[..2]), 2),
            Err(CheckpointError::Truncated {
                held: 2,
                position: 3
            })
        ));
        // One hash changed (a rewritten stream): another digest.
        let mut changed = hashes.clone();
        changed[1] = [9; 32];
        assert!(matches!(
            Checkpoint::check(&vouched, &digest(&changed[..3]), 5),
            Err(CheckpointError::DigestMismatch { .. })
        ));
        // Two events swapped: another digest too.
        let mut swapped = hashes.clone();
        swapped.swap(0, 1);
        assert!(Checkpoint::check(&vouched, &digest(&swapped[..3]), 5).is_err());
    }

    #[test]
    fn a_forged_or_altered_checkpoint_is_refused() {
        let d = digest(&[[1; 32], [2; 32]]);
        let cp = Checkpoint::sign(&key(7), &d, 5);
        let trusted = key(7).verifying_key();
        // Moved back to cover less (hiding a later truncation): the signature breaks.
        let mut fewer = cp.clone();
        fewer.position = 1;
        assert_eq!(
            fewer.verify_signature(Some(&trusted)),
            Err(CheckpointError::BadSignature)
        );
        // Re-signed by someone else's key: not the trusted one.
        let forged = Checkpoint::sign(&key(8), &digest(&[[1; 32]]), 5);
        assert!(matches!(
            forged.verify_signature(Some(&trusted)),
            Err(CheckpointError::WrongKey { .. })
        ));
        // Round trip through the file format.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        cp.write(&path).unwrap();
        assert_eq!(Checkpoint::read(&path).unwrap(), cp);
        let pk = crate::hex::encode(trusted.as_bytes());
        assert_eq!(parse_public_key(&pk).unwrap(), trusted);
        assert!(parse_public_key("zz").is_err());
    }

    #[test]
    fn folding_out_of_order_is_refused() {
        let mut d = AllDigest::EMPTY;
        assert_eq!(
            d.fold_hash(1, &[0; 32]),
            Err(OutOfOrder {
                expected: 0,
                got: 1
            })
        );
    }
}
