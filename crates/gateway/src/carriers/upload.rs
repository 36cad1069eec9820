//! An attachment arriving a piece at a time (an upload's file part): written to a
//! temporary file of the blob store as it comes, hashed and sniffed on the way
//! ([`carrier::blobs::BlobWriter`]), in writes of about [`WRITE_BATCH`] bytes on the
//! blocking pool. An upload holds one batch in memory, whatever its size; nothing holds a
//! blocking thread while it waits for the client.

use axum::body::Bytes;
use carrier::blobs::{BlobRef, BlobStore, BlobWriter};

use crate::error::ApiError;

/// Bytes gathered before they are written: big enough that a 25 MiB upload is a hundred
/// writes, not thousands of small ones; small enough to hold for each of many uploads.
pub const WRITE_BATCH: usize = 256 * 1024;

/// An upload being received (see the module docs). Dropping it removes what was written.
pub struct Upload {
    /// `None` only after a failed write (the upload is then unusable).
    writer: Option<BlobWriter>,
    /// Received, not written yet (less than [`WRITE_BATCH`]).
    batch: Vec<u8>,
}

impl Upload {
    /// Starts an upload into `blobs`.
    ///
    /// # Errors
    /// Internal errors (the temporary file cannot be created).
    pub async fn start(blobs: &BlobStore) -> Result<Self, ApiError> {
        let blobs = blobs.clone();
        let writer = tokio::task::spawn_blocking(move || blobs.writer())
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
        Ok(Self {
            writer: Some(writer),
            batch: Vec::new(),
        })
    }

    /// How many bytes were received so far.
    pub fn size(&self) -> u64 {
        self.writer.as_ref().map_or(0, BlobWriter::size) + self.batch.len() as u64
    }

    /// Adds `chunk`, writing once a batch is full (a chunk of a batch or more is written
    /// as it is, not copied).
    ///
    /// # Errors
    /// Internal errors (disk).
    pub async fn push(&mut self, chunk: Bytes) -> Result<(), ApiError> {
        if self.batch.is_empty() && chunk.len() >= WRITE_BATCH {
            return self.write(chunk).await;
        }
        self.batch.extend_from_slice(&chunk);
        if self.batch.len() >= WRITE_BATCH {
            let batch = Bytes::from(std::mem::take(&mut self.batch));
            self.write(batch).await?;
        }
        Ok(())
    }

    async fn write(&mut self, bytes: Bytes) -> Result<(), ApiError> {
        let mut writer = self.writer.take().ok_or_else(failed)?;
        self.writer = Some(
            tokio::task::spawn_blocking(move || writer.write(&bytes).map(|()| writer))
                .await
                .map_err(ApiError::internal)?
                .map_err(ApiError::internal)?,
        );
        Ok(())
    }

    /// Writes what is left: the upload is complete, to be judged and then kept or dropped.
    ///
    /// # Errors
    /// Internal errors (disk).
    pub async fn complete(mut self) -> Result<Complete, ApiError> {
        if !self.batch.is_empty() {
            let batch = Bytes::from(std::mem::take(&mut self.batch));
            self.write(batch).await?;
        }
        let writer = self.writer.take().ok_or_else(failed)?;
        Ok(Complete(Some(writer)))
    }
}

fn failed() -> ApiError {
    ApiError::internal("the upload failed to write earlier")
}

impl Drop for Upload {
    fn drop(&mut self) {
        discard(self.writer.take());
    }
}

/// A received upload: all of it written to its temporary file.
pub struct Complete(Option<BlobWriter>);

impl Complete {
    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.0.as_ref().map_or(0, BlobWriter::size)
    }

    /// Its first bytes, to sniff its type from (see [`carrier::blobs::SNIFF_BYTES`]).
    pub fn head(&self) -> &[u8] {
        self.0.as_ref().map_or(&[], BlobWriter::head)
    }

    /// Stores it as a blob (renamed into place under its hash).
    ///
    /// # Errors
    /// Internal errors (disk).
    pub async fn keep(mut self) -> Result<BlobRef, ApiError> {
        let writer = self.0.take().ok_or_else(failed)?;
        tokio::task::spawn_blocking(move || writer.finish())
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)
    }
}

impl Drop for Complete {
    fn drop(&mut self) {
        discard(self.0.take());
    }
}

/// Removes an unfinished blob's temporary file, off the executor when there is one.
fn discard(writer: Option<BlobWriter>) {
    let Some(writer) = writer else { return };
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn_blocking(move || drop(writer))),
        Err(_) => drop(writer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(files(&p));
            } else {
                out.push(p);
            }
        }
        out
    }

    #[tokio::test]
    async fn chunks_of_any_size_make_the_blob_of_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path()).unwrap();
        let data: Vec<u8> = (0..3 * WRITE_BATCH + 1000)
            .map(|i| u8::try_from(i % 251).unwrap())
            .collect();
        let mut upload = Upload::start(&blobs).await.unwrap();
        let mut rest = &data[..];
        // Small chunks gathered into batches, a chunk larger than a batch, a tail.
        for size in [10, 1000, WRITE_BATCH, 2 * WRITE_BATCH, usize::MAX] {
            let (chunk, tail) = rest.split_at(size.min(rest.len()));
            upload.push(Bytes::copy_from_slice(chunk)).await.unwrap();
            rest = tail;
            assert!(upload.batch.len() < WRITE_BATCH, "a full batch is written");
        }
        assert_eq!(upload.size(), data.len() as u64);
        let complete = upload.complete().await.unwrap();
        assert_eq!(complete.size(), data.len() as u64);
        assert_eq!(complete.head(), &data[..carrier::blobs::SNIFF_BYTES]);
        let blob = complete.keep().await.unwrap();
        assert_eq!(blob.hash, blake3::hash(&data).to_hex().as_str());
        assert_eq!(blobs.get(&blob.hash).unwrap().unwrap(), data);
    }

    #[test]
    fn an_upload_not_kept_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut upload = Upload::start(&blobs).await.unwrap();
            upload
                .push(Bytes::from(vec![1; 2 * WRITE_BATCH]))
                .await
                .unwrap();
            assert_eq!(files(dir.path()).len(), 1, "its temporary file");
            drop(upload.complete().await.unwrap());
        });
        // The file is removed on the blocking pool, which a runtime finishes when dropped.
        drop(runtime);
        assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
    }
}
