//! Public URLs of MMS media for the carrier to fetch: `/v1/carriers/media/<attachment
//! id>/<token>`, where the token is a keyed BLAKE3 hash of the id. The carrier has no
//! bearer token, so the URL itself is the credential: unguessable without the key, valid
//! for one attachment only.
//!
//! The key lives in `<data dir>/media.key` (32 random bytes, created on first start, owner
//! read/write only), so URLs handed to a carrier keep working across restarts.

use std::io::Write;
use std::path::Path;

use carrier::OutboundMedia;
use domain::conversation::AttachmentRef;
use domain::AttachmentId;
use rand_core::{OsRng, RngCore};

/// Signs and checks media URLs.
#[derive(Clone)]
pub struct MediaUrls {
    key: [u8; 32],
    public_url: String,
}

impl std::fmt::Debug for MediaUrls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaUrls")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl MediaUrls {
    /// Loads the key from `path`, creating it if missing.
    ///
    /// # Errors
    /// When the file cannot be read or written, or holds something else than a key.
    pub fn open(path: &Path, public_url: &str) -> std::io::Result<Self> {
        let key = match std::fs::read(path) {
            Ok(bytes) => <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "not a 32-byte key")
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key(path)?,
            Err(e) => return Err(e),
        };
        Ok(Self::with_key(key, public_url))
    }

    pub fn with_key(key: [u8; 32], public_url: &str) -> Self {
        Self {
            key,
            public_url: public_url.trim_end_matches('/').to_owned(),
        }
    }

    fn token(&self, id: AttachmentId) -> blake3::Hash {
        blake3::keyed_hash(&self.key, id.as_uuid().as_bytes())
    }

    /// The public URL of attachment `id`.
    pub fn url(&self, id: AttachmentId) -> String {
        format!(
            "{}/v1/carriers/media/{id}/{}",
            self.public_url,
            self.token(id).to_hex()
        )
    }

    /// The carrier's view of an attachment.
    pub fn outbound(&self, attachment: &AttachmentRef) -> OutboundMedia {
        OutboundMedia {
            url: self.url(attachment.id),
            content_type: attachment.mime.clone(),
        }
    }

    /// Whether `token` is the one of `id` (compared in constant time).
    pub fn verify(&self, id: AttachmentId, token: &str) -> bool {
        blake3::Hash::from_hex(token).is_ok_and(|t| t == self.token(id))
    }
}

fn create_key(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut key = [0u8; 32];
    OsRng.fill_bytes(&mut key);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("key.tmp");
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(&key)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_for_their_attachment_only() {
        let urls = MediaUrls::with_key([7; 32], "http://h/");
        let (a, b) = (AttachmentId::random(), AttachmentId::random());
        let url = urls.url(a);
        assert!(url.starts_with(&format!("http://h/v1/carriers/media/{a}/")));
        let token = url.rsplit('/').next().unwrap();
        assert!(urls.verify(a, token));
        assert!(!urls.verify(b, token));
        assert!(!urls.verify(a, "nope"));
        let other_key = MediaUrls::with_key([8; 32], "http://h");
        assert!(!other_key.verify(a, token));
    }

    #[test]
    fn the_key_survives_a_restart() {
        let dir = tempfile_dir();
        let path = dir.join("media.key");
        let first = MediaUrls::open(&path, "http://h").unwrap();
        let again = MediaUrls::open(&path, "http://h").unwrap();
        let id = AttachmentId::random();
        assert_eq!(first.url(id), again.url(id));
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("media-urls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
