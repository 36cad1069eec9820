//! Attachments: a content-addressed blob store, MIME sniffing from magic bytes, and size /
//! type limits.
//!
//! Blobs are named by the lowercase hex BLAKE3 hash of their content and fanned out into
//! two-character subdirectories (`<root>/ab/ab12…`). Writes are atomic: a temporary file
//! in the destination directory is written, fsynced and renamed into place, then the
//! directory is fsynced, so a crash leaves either the whole blob or none of it (plus, at
//! worst, a stray `.blobtmp*` file that is never read). Events reference blobs by
//! [`BlobRef`]; nothing outside this module sees a path.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The MIME type reported for content [`sniff`] does not recognise.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// The image types accepted for MMS.
pub const MMS_IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif"];

/// A stored blob.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlobRef {
    /// Lowercase hex BLAKE3 hash of the content (64 characters).
    pub hash: String,
    /// Size in bytes.
    pub size: u64,
    /// MIME type sniffed from the bytes ([`OCTET_STREAM`] when unknown).
    pub mime: String,
}

/// Blob store failures.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// Filesystem error.
    #[error("blob store I/O error: {0}")]
    Io(#[from] io::Error),
    /// The hash is not 64 lowercase hex characters.
    #[error("not a blob hash")]
    InvalidHash,
    /// The stored bytes no longer match their hash.
    #[error("blob {hash} is corrupt")]
    Corrupt {
        /// The requested hash.
        hash: String,
    },
}

impl BlobError {
    /// Stable machine-readable code: `blob_io`, `invalid_blob_hash`, `blob_corrupt`.
    pub fn code(&self) -> &'static str {
        match self {
            BlobError::Io(_) => "blob_io",
            BlobError::InvalidHash => "invalid_blob_hash",
            BlobError::Corrupt { .. } => "blob_corrupt",
        }
    }
}

/// A content-addressed blob store in one directory. Cheap to clone; safe to use from
/// several threads (writes of the same content race harmlessly).
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// Opens (creating if needed) a store rooted at `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<BlobStore, BlobError> {
        let root = dir.as_ref().to_path_buf();
        fs::create_dir_all(&root)?;
        Ok(BlobStore { root })
    }

    /// Stores `bytes` and returns its reference. Idempotent: content already present is
    /// not rewritten.
    pub fn put(&self, bytes: &[u8]) -> Result<BlobRef, BlobError> {
        let hash = blake3::hash(bytes).to_hex().to_string();
        let blob = BlobRef {
            size: bytes.len() as u64,
            mime: sniff(bytes).unwrap_or(OCTET_STREAM).to_owned(),
            hash,
        };
        let (dir, path) = self.locate(&blob.hash);
        match fs::metadata(&path) {
            Ok(meta) if meta.len() == blob.size => return Ok(blob),
            // A short or otherwise damaged file is replaced below.
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        if !dir.is_dir() {
            fs::create_dir_all(&dir)?;
            sync_dir(&self.root)?;
        }
        let mut tmp = tempfile::Builder::new()
            .prefix(".blobtmp")
            .tempfile_in(&dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(&path).map_err(|e| BlobError::Io(e.error))?;
        sync_dir(&dir)?;
        Ok(blob)
    }

    /// Reads a blob, verifying its hash. `Ok(None)` when absent; [`BlobError::InvalidHash`]
    /// for anything that is not a well-formed hash (no path tricks reach the filesystem).
    pub fn get(&self, hash: &str) -> Result<Option<Vec<u8>>, BlobError> {
        if !is_valid_hash(hash) {
            return Err(BlobError::InvalidHash);
        }
        let (_, path) = self.locate(hash);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if blake3::hash(&bytes).to_hex().as_str() != hash {
            return Err(BlobError::Corrupt {
                hash: hash.to_owned(),
            });
        }
        Ok(Some(bytes))
    }

    /// Whether a blob with this hash is stored (not verified).
    pub fn contains(&self, hash: &str) -> Result<bool, BlobError> {
        if !is_valid_hash(hash) {
            return Err(BlobError::InvalidHash);
        }
        Ok(self.locate(hash).1.is_file())
    }

    fn locate(&self, hash: &str) -> (PathBuf, PathBuf) {
        let dir = self.root.join(&hash[..2]);
        let path = dir.join(hash);
        (dir, path)
    }
}

/// Whether `s` is a well-formed blob hash: exactly 64 lowercase hex characters.
pub fn is_valid_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// The MIME type of `bytes` from their magic bytes, never from a name or a client's claim.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    infer::get(bytes).map(|kind| kind.mime_type())
}

/// Size and type limits for an attachment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachmentPolicy {
    /// Largest accepted size in bytes.
    pub max_bytes: usize,
    /// Accepted sniffed MIME types; an empty list accepts any type (unrecognised content
    /// then counts as [`OCTET_STREAM`]).
    pub allowed: &'static [&'static str],
}

impl AttachmentPolicy {
    /// Images for MMS (JPEG, PNG, GIF) up to `max_bytes` (before resizing).
    pub const fn mms_images(max_bytes: usize) -> AttachmentPolicy {
        AttachmentPolicy {
            max_bytes,
            allowed: MMS_IMAGE_TYPES,
        }
    }

    /// Any file type up to `max_bytes`.
    pub const fn any_type(max_bytes: usize) -> AttachmentPolicy {
        AttachmentPolicy {
            max_bytes,
            allowed: &[],
        }
    }

    /// Checks `bytes` against the policy and returns the sniffed MIME type.
    pub fn check(&self, bytes: &[u8]) -> Result<&'static str, AttachmentError> {
        if bytes.is_empty() {
            return Err(AttachmentError::Empty);
        }
        if bytes.len() > self.max_bytes {
            return Err(AttachmentError::TooLarge {
                size: bytes.len(),
                max_bytes: self.max_bytes,
            });
        }
        let detected = sniff(bytes);
        if self.allowed.is_empty() {
            return Ok(detected.unwrap_or(OCTET_STREAM));
        }
        match detected {
            Some(mime) if self.allowed.contains(&mime) => Ok(mime),
            detected => Err(AttachmentError::UnsupportedMediaType { detected }),
        }
    }
}

/// Why an attachment was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachmentError {
    /// No bytes.
    #[error("the attachment is empty")]
    Empty,
    /// Over the size limit.
    #[error("the attachment is {size} bytes; the limit is {max_bytes}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max_bytes: usize,
    },
    /// Its sniffed type is not accepted.
    #[error("unsupported media type ({})", detected.unwrap_or("unrecognised"))]
    UnsupportedMediaType {
        /// What the bytes look like, if recognised.
        detected: Option<&'static str>,
    },
}

impl AttachmentError {
    /// Stable machine-readable code: `empty_attachment`, `attachment_too_large`,
    /// `unsupported_media_type`.
    pub fn code(&self) -> &'static str {
        match self {
            AttachmentError::Empty => "empty_attachment",
            AttachmentError::TooLarge { .. } => "attachment_too_large",
            AttachmentError::UnsupportedMediaType { .. } => "unsupported_media_type",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG_1X1: &[u8] = &[
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F,
        0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00,
        0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49,
        0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
    ];
    const GIF_HEADER: &[u8] = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;";
    const JPEG_HEADER: &[u8] = &[
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0,
    ];

    fn entries(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(entries(&p));
            } else {
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn put_get_roundtrip_with_fanout_layout() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("blobs")).unwrap();
        let blob = store.put(b"hello blob").unwrap();
        // Independently: b3sum of "hello blob".
        assert_eq!(blob.hash, blake3::hash(b"hello blob").to_hex().as_str());
        assert_eq!(blob.size, 10);
        assert_eq!(blob.mime, OCTET_STREAM);
        assert_eq!(store.get(&blob.hash).unwrap().unwrap(), b"hello blob");
        assert!(store.contains(&blob.hash).unwrap());
        let files = entries(&dir.path().join("blobs"));
        assert_eq!(
            files,
            vec![dir
                .path()
                .join("blobs")
                .join(&blob.hash[..2])
                .join(&blob.hash)],
            "exactly one file, fanned out, no temp files left"
        );
    }

    #[test]
    fn put_is_idempotent_and_does_not_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let a = store.put(PNG_1X1).unwrap();
        assert_eq!(a.mime, "image/png");
        let path = dir.path().join(&a.hash[..2]).join(&a.hash);
        let before = fs::metadata(&path).unwrap();
        let b = store.put(PNG_1X1).unwrap();
        assert_eq!(a, b);
        let after = fs::metadata(&path).unwrap();
        assert_eq!(before.modified().unwrap(), after.modified().unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            assert_eq!(before.ino(), after.ino(), "same inode: not replaced");
        }
        assert_eq!(entries(dir.path()).len(), 1);
    }

    #[test]
    fn damaged_short_file_is_replaced_on_put() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let a = store.put(b"some content").unwrap();
        let path = dir.path().join(&a.hash[..2]).join(&a.hash);
        fs::write(&path, b"some").unwrap();
        store.put(b"some content").unwrap();
        assert_eq!(store.get(&a.hash).unwrap().unwrap(), b"some content");
    }

    #[test]
    fn get_verifies_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let a = store.put(b"original").unwrap();
        let path = dir.path().join(&a.hash[..2]).join(&a.hash);
        fs::write(&path, b"tampered").unwrap();
        let err = store.get(&a.hash).unwrap_err();
        assert_eq!(err.code(), "blob_corrupt");
    }

    #[test]
    fn missing_blob_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let absent = blake3::hash(b"never stored").to_hex().to_string();
        assert_eq!(store.get(&absent).unwrap(), None);
        assert!(!store.contains(&absent).unwrap());
    }

    #[test]
    fn malformed_hashes_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("store")).unwrap();
        // A file outside the store that traversal would reach.
        fs::write(dir.path().join("secret"), b"x").unwrap();
        let good = blake3::hash(b"x").to_hex().to_string();
        for bad in [
            String::new(),
            "../secret".to_string(),
            format!("../{}", &good[3..]),
            good.to_uppercase(),
            good[..63].to_string(),
            format!("{good}0"),
            format!("{}g", &good[..63]),
            format!("{}/", &good[..63]),
            format!("{}é", &good[..62]),
        ] {
            let err = store.get(&bad).unwrap_err();
            assert_eq!(err.code(), "invalid_blob_hash", "{bad:?}");
            assert!(store.contains(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn concurrent_puts_of_same_content() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let data = vec![7u8; 64 * 1024];
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                let data = data.clone();
                std::thread::spawn(move || store.put(&data).unwrap())
            })
            .collect();
        let refs: Vec<BlobRef> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(refs.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(store.get(&refs[0].hash).unwrap().unwrap(), data);
        assert_eq!(entries(dir.path()).len(), 1, "no temp files left");
    }

    #[test]
    fn sniff_from_magic_bytes() {
        assert_eq!(sniff(PNG_1X1), Some("image/png"));
        assert_eq!(sniff(GIF_HEADER), Some("image/gif"));
        assert_eq!(sniff(JPEG_HEADER), Some("image/jpeg"));
        assert_eq!(sniff(b"%PDF-1.7\n"), Some("application/pdf"));
        assert_eq!(sniff(b"hello"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn attachment_policy() {
        let mms = AttachmentPolicy::mms_images(1024);
        assert_eq!(mms.check(PNG_1X1), Ok("image/png"));
        assert_eq!(mms.check(GIF_HEADER), Ok("image/gif"));
        assert_eq!(mms.check(JPEG_HEADER), Ok("image/jpeg"));
        let e = mms.check(b"").unwrap_err();
        assert_eq!(e.code(), "empty_attachment");
        let e = mms.check(b"hello").unwrap_err();
        assert_eq!(e.code(), "unsupported_media_type");
        assert_eq!(e, AttachmentError::UnsupportedMediaType { detected: None });
        let e = mms.check(b"%PDF-1.7\n").unwrap_err();
        assert_eq!(
            e,
            AttachmentError::UnsupportedMediaType {
                detected: Some("application/pdf")
            }
        );
        let mut big = PNG_1X1.to_vec();
        big.resize(1025, 0);
        let e = mms.check(&big).unwrap_err();
        assert_eq!(e.code(), "attachment_too_large");
        assert_eq!(
            e,
            AttachmentError::TooLarge {
                size: 1025,
                max_bytes: 1024
            }
        );
        big.truncate(1024);
        assert_eq!(mms.check(&big), Ok("image/png"), "exactly at the limit");

        let any = AttachmentPolicy::any_type(10);
        assert_eq!(any.check(b"hello"), Ok(OCTET_STREAM));
        assert_eq!(
            any.check(b"hello world").unwrap_err().code(),
            "attachment_too_large"
        );
    }
}
