//! Attachments: a content-addressed blob store, MIME sniffing from magic bytes, and size /
//! type limits.
//!
//! Blobs are named by the lowercase hex BLAKE3 hash of their content and fanned out into
//! two-character subdirectories (`<root>/ab/ab12…`). Writes are atomic: a temporary file
//! is written, fsynced and renamed into place, then the destination directory is
//! fsynced, so a crash leaves either the whole blob or none of it (plus, at worst, a stray
//! `.blobtmp*` file that is never read). Events reference blobs by [`BlobRef`]; nothing
//! outside this module sees a path.
//!
//! Two ways in: [`BlobStore::put`] for bytes already in memory, and [`BlobWriter`]
//! ([`BlobStore::writer`]) for content that arrives a piece at a time (an upload): each
//! piece goes to a temporary file in the store's directory and into an incremental hash,
//! so storing a blob costs a small fixed buffer, not its size. Either way the type is
//! sniffed from the first [`SNIFF_BYTES`] bytes.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The MIME type reported for content [`sniff`] does not recognise.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// The image types accepted for MMS.
pub const MMS_IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif"];

/// How many leading bytes a blob's type is sniffed from (what a [`BlobWriter`] keeps in
/// memory). `infer` itself sniffs a file from its first 8 KiB; the extra room lets the
/// OOXML and compound-document checks, which look further in, see more of the file.
pub const SNIFF_BYTES: usize = 64 * 1024;

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
    ///
    /// # Errors
    /// [`BlobError::Io`] when the file cannot be written.
    pub fn put(&self, bytes: &[u8]) -> Result<BlobRef, BlobError> {
        let blob = BlobRef {
            hash: blake3::hash(bytes).to_hex().to_string(),
            size: bytes.len() as u64,
            mime: sniff(&bytes[..bytes.len().min(SNIFF_BYTES)])
                .unwrap_or(OCTET_STREAM)
                .to_owned(),
        };
        if self.holds(&blob)? {
            return Ok(blob);
        }
        let (dir, _) = self.locate(&blob.hash);
        self.ensure_dir(&dir)?;
        let mut tmp = tempfile::Builder::new()
            .prefix(TMP_PREFIX)
            .tempfile_in(&dir)?;
        tmp.write_all(bytes)?;
        self.install(tmp, &blob)?;
        Ok(blob)
    }

    /// Starts a blob whose bytes will come a piece at a time: a temporary file in the
    /// store's directory, removed unless [`BlobWriter::finish`] renames it into place.
    ///
    /// # Errors
    /// [`BlobError::Io`] when the temporary file cannot be created.
    pub fn writer(&self) -> Result<BlobWriter, BlobError> {
        let tmp = tempfile::Builder::new()
            .prefix(TMP_PREFIX)
            .tempfile_in(&self.root)?;
        Ok(BlobWriter {
            store: self.clone(),
            tmp,
            hasher: blake3::Hasher::new(),
            head: Vec::new(),
            size: 0,
        })
    }

    /// Whether `blob` is stored whole already (a short or otherwise damaged file is not:
    /// it gets replaced).
    fn holds(&self, blob: &BlobRef) -> Result<bool, BlobError> {
        match fs::metadata(self.locate(&blob.hash).1) {
            Ok(meta) => Ok(meta.len() == blob.size),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates a fan-out directory (durably) if it is missing.
    fn ensure_dir(&self, dir: &Path) -> Result<(), BlobError> {
        if !dir.is_dir() {
            fs::create_dir_all(dir)?;
            sync_dir(&self.root)?;
        }
        Ok(())
    }

    /// Makes the written temporary file `tmp` the blob: fsynced, renamed into place, and
    /// the rename made durable.
    fn install(&self, tmp: tempfile::NamedTempFile, blob: &BlobRef) -> Result<(), BlobError> {
        let (dir, path) = self.locate(&blob.hash);
        tmp.as_file().sync_all()?;
        tmp.persist(&path).map_err(|e| BlobError::Io(e.error))?;
        sync_dir(&dir)?;
        Ok(())
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

    /// The first `len` bytes of a blob (all of it when shorter), not verified: for judging
    /// a blob (its type, an image's dimensions) before reading it whole. `Ok(None)` when
    /// absent; [`BlobError::InvalidHash`] as for [`BlobStore::get`].
    ///
    /// # Errors
    /// [`BlobError::InvalidHash`], [`BlobError::Io`].
    pub fn get_head(&self, hash: &str, len: usize) -> Result<Option<Vec<u8>>, BlobError> {
        use std::io::Read;
        if !is_valid_hash(hash) {
            return Err(BlobError::InvalidHash);
        }
        let file = match fs::File::open(self.locate(hash).1) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut head = Vec::with_capacity(len.min(SNIFF_BYTES));
        file.take(len as u64).read_to_end(&mut head)?;
        Ok(Some(head))
    }

    /// Whether a blob with this hash is stored (not verified).
    pub fn contains(&self, hash: &str) -> Result<bool, BlobError> {
        if !is_valid_hash(hash) {
            return Err(BlobError::InvalidHash);
        }
        Ok(self.locate(hash).1.is_file())
    }

    /// Deletes a blob (media erased: no attachment needs it any more); whether it was
    /// there. The directory entry's removal is made durable.
    ///
    /// # Errors
    /// [`BlobError::InvalidHash`], [`BlobError::Io`].
    pub fn remove(&self, hash: &str) -> Result<bool, BlobError> {
        if !is_valid_hash(hash) {
            return Err(BlobError::InvalidHash);
        }
        let (dir, path) = self.locate(hash);
        match fs::remove_file(&path) {
            Ok(()) => {
                fs::File::open(&dir)?.sync_all()?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn locate(&self, hash: &str) -> (PathBuf, PathBuf) {
        let dir = self.root.join(&hash[..2]);
        let path = dir.join(hash);
        (dir, path)
    }
}

/// Temporary files' names start with this (in the root for a [`BlobWriter`], in the
/// fan-out directory for [`BlobStore::put`]); nothing reads them.
const TMP_PREFIX: &str = ".blobtmp";

/// A blob being written a piece at a time ([`BlobStore::writer`]): the pieces go to a
/// temporary file and into a BLAKE3 hasher as they come, and the first [`SNIFF_BYTES`]
/// are kept to sniff the type from; nothing else is held in memory. [`BlobWriter::finish`]
/// renames the file into place under its hash; dropping the writer instead removes it.
///
/// Its methods do blocking file I/O: call them off an async executor.
#[derive(Debug)]
pub struct BlobWriter {
    store: BlobStore,
    tmp: tempfile::NamedTempFile,
    hasher: blake3::Hasher,
    /// The first [`SNIFF_BYTES`] bytes.
    head: Vec<u8>,
    size: u64,
}

impl BlobWriter {
    /// Appends `bytes`.
    ///
    /// # Errors
    /// [`BlobError::Io`] when the temporary file cannot be written (the blob is then
    /// unusable: drop the writer).
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), BlobError> {
        self.tmp.write_all(bytes)?;
        self.hasher.update(bytes);
        let room = SNIFF_BYTES.saturating_sub(self.head.len());
        self.head.extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// How many bytes were written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The first bytes written (at most [`SNIFF_BYTES`]): what the type is sniffed from.
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// Stores what was written as a blob and returns its reference. Idempotent like
    /// [`BlobStore::put`]: when the content is there already, the temporary file is removed
    /// and the stored one left as it is.
    ///
    /// # Errors
    /// [`BlobError::Io`] when the file cannot be flushed or renamed into place.
    pub fn finish(self) -> Result<BlobRef, BlobError> {
        let BlobWriter {
            store,
            tmp,
            hasher,
            head,
            size,
        } = self;
        let blob = BlobRef {
            hash: hasher.finalize().to_hex().to_string(),
            size,
            mime: sniff(&head).unwrap_or(OCTET_STREAM).to_owned(),
        };
        if store.holds(&blob)? {
            return Ok(blob);
        }
        store.ensure_dir(&store.locate(&blob.hash).0)?;
        store.install(tmp, &blob)?;
        Ok(blob)
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
    ///
    /// # Errors
    /// Why the attachment is refused.
    pub fn check(&self, bytes: &[u8]) -> Result<&'static str, AttachmentError> {
        self.check_sized(bytes.len(), &bytes[..bytes.len().min(SNIFF_BYTES)])
    }

    /// Checks an attachment of `size` bytes that starts with `head` (its first
    /// [`SNIFF_BYTES`], or all of it when shorter, as a [`BlobWriter`] keeps them) against
    /// the policy, and returns the sniffed MIME type.
    ///
    /// # Errors
    /// Why the attachment is refused.
    pub fn check_sized(&self, size: usize, head: &[u8]) -> Result<&'static str, AttachmentError> {
        if size == 0 {
            return Err(AttachmentError::Empty);
        }
        if size > self.max_bytes {
            return Err(AttachmentError::TooLarge {
                size,
                max_bytes: self.max_bytes,
            });
        }
        let detected = sniff(head);
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

    /// Bytes that compress to nothing and repeat nowhere (BLAKE3's extendable output).
    fn noise(len: usize) -> Vec<u8> {
        let mut out = vec![0; len];
        blake3::Hasher::new()
            .update(b"noise")
            .finalize_xof()
            .fill(&mut out);
        out
    }

    #[test]
    fn a_blob_written_in_pieces_is_the_blob_put_whole() {
        let data = noise(3 * SNIFF_BYTES + 12_345);
        let whole_dir = tempfile::tempdir().unwrap();
        let whole = BlobStore::open(whole_dir.path())
            .unwrap()
            .put(&data)
            .unwrap();

        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let mut w = store.writer().unwrap();
        // Pieces of every awkward size: 1 byte, across the sniffed head's end, large.
        let mut rest = data.as_slice();
        for size in [1, 7, SNIFF_BYTES - 8, 100, 2 * SNIFF_BYTES, usize::MAX] {
            let (piece, tail) = rest.split_at(size.min(rest.len()));
            w.write(piece).unwrap();
            rest = tail;
        }
        assert_eq!(w.size(), data.len() as u64);
        assert_eq!(w.head(), &data[..SNIFF_BYTES], "only the head is kept");
        let blob = w.finish().unwrap();
        assert_eq!(blob, whole);
        assert_eq!(blob.hash, blake3::hash(&data).to_hex().as_str());
        assert_eq!(store.get(&blob.hash).unwrap().unwrap(), data);
        assert_eq!(
            entries(dir.path()),
            vec![dir.path().join(&blob.hash[..2]).join(&blob.hash)],
            "the blob, fanned out, and no temporary file left"
        );
    }

    #[test]
    fn a_written_blob_is_sniffed_from_its_first_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let mut w = store.writer().unwrap();
        for b in PNG_1X1 {
            w.write(&[*b]).unwrap();
        }
        assert_eq!(w.finish().unwrap().mime, "image/png");
        let mut w = store.writer().unwrap();
        w.write(b"%PDF").unwrap();
        w.write(b"-1.7\n").unwrap();
        assert_eq!(w.finish().unwrap().mime, "application/pdf");
    }

    #[test]
    fn the_head_of_a_blob() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let data = noise(1000);
        let blob = store.put(&data).unwrap();
        assert_eq!(
            store.get_head(&blob.hash, 10).unwrap().unwrap(),
            &data[..10]
        );
        assert_eq!(store.get_head(&blob.hash, 5000).unwrap().unwrap(), data);
        let absent = blake3::hash(b"absent").to_hex().to_string();
        assert_eq!(store.get_head(&absent, 10).unwrap(), None);
        assert_eq!(
            store.get_head("../x", 10).unwrap_err().code(),
            "invalid_blob_hash"
        );
    }

    #[test]
    fn a_dropped_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let mut w = store.writer().unwrap();
        w.write(&noise(100_000)).unwrap();
        assert_eq!(entries(dir.path()).len(), 1, "the temporary file");
        drop(w);
        assert!(entries(dir.path()).is_empty());
    }

    #[test]
    fn writing_content_already_stored_does_not_rewrite_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let a = store.put(b"stored once").unwrap();
        let path = dir.path().join(&a.hash[..2]).join(&a.hash);
        let before = fs::metadata(&path).unwrap();
        let mut w = store.writer().unwrap();
        w.write(b"stored ").unwrap();
        w.write(b"once").unwrap();
        assert_eq!(w.finish().unwrap(), a);
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            assert_eq!(before.ino(), fs::metadata(&path).unwrap().ino());
        }
        assert_eq!(entries(dir.path()), vec![path], "no temporary file left");
        // A damaged copy is replaced by the written one.
        fs::write(dir.path().join(&a.hash[..2]).join(&a.hash), b"stored").unwrap();
        let mut w = store.writer().unwrap();
        w.write(b"stored once").unwrap();
        w.finish().unwrap();
        assert_eq!(store.get(&a.hash).unwrap().unwrap(), b"stored once");
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

        // Judged from the size and the head, as a streamed upload is.
        assert_eq!(mms.check_sized(1024, PNG_1X1), Ok("image/png"));
        assert_eq!(
            mms.check_sized(1025, PNG_1X1).unwrap_err().code(),
            "attachment_too_large"
        );
        assert_eq!(
            mms.check_sized(0, b"").unwrap_err().code(),
            "empty_attachment"
        );

        let any = AttachmentPolicy::any_type(10);
        assert_eq!(any.check(b"hello"), Ok(OCTET_STREAM));
        assert_eq!(
            any.check(b"hello world").unwrap_err().code(),
            "attachment_too_large"
        );
    }
}
