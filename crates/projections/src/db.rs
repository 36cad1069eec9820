//! A read model's own RocksDB instance (never the log's): named column families plus a
//! `meta` family holding the checkpoint, which is written in the same `WriteBatch` as the
//! data it covers.

use std::path::Path;

use rocksdb::{ColumnFamilyDescriptor, Options, WriteBatch, WriteOptions, DB};

use crate::error::ProjectionError;

const META: &str = "meta";
const CHECKPOINT: &[u8] = b"checkpoint";
const LAYOUT: &[u8] = b"layout";

/// Every (family, key, value) of a database, in order.
pub type Dump = Vec<(String, Vec<u8>, Vec<u8>)>;

/// One read model's database.
pub struct ModelDb {
    db: DB,
}

impl ModelDb {
    /// Opens (creating if missing) the database at `path` with `families` plus `meta`.
    /// `layout` names the model and the version of its key layout; a database written with
    /// another layout is refused rather than misread (rebuild it instead). The families in
    /// `hinted` get memtable insert hints by their keys' first bytes (see
    /// `eventlog::rocks::with_insert_hints`): for keys that grow (or shrink) under a prefix.
    /// The families in `in_place` (and `meta`, whose checkpoint every batch rewrites) are
    /// updated in place in the memtable when a key's new value is no larger than the one
    /// there: a row rewritten on every message (a conversation's, a read marker) then keeps
    /// one memtable entry instead of one per write, and the memtable stays small enough for
    /// its inserts and lookups to stay in the CPU's caches. Only for families read by key
    /// (`get`, `multi_get`, which RocksDB locks against the rewrite): an iterator may see a
    /// value half rewritten.
    ///
    /// # Errors
    /// RocksDB errors, or a layout mismatch.
    pub fn open(
        path: &Path,
        families: &[&str],
        hinted: &[(&str, usize)],
        in_place: &[&str],
        layout: &str,
    ) -> Result<Self, ProjectionError> {
        let mut opts = Options::default();
        // One writer (the model's runner); RocksDB refuses in-place updates otherwise.
        opts.set_allow_concurrent_memtable_write(false);
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_background_jobs(2);
        opts.increase_parallelism(2);
        let cfs = families.iter().chain(std::iter::once(&META)).map(|name| {
            let mut o = Options::default();
            o.set_compression_type(rocksdb::DBCompressionType::Lz4);
            // Most keys here begin with a random id: see `RANDOM_KEYS_MEMTABLE_BYTES`.
            o.set_write_buffer_size(eventlog::rocks::RANDOM_KEYS_MEMTABLE_BYTES);
            if let Some(cap) = hinted
                .iter()
                .find_map(|(n, cap)| (n == name).then_some(*cap))
            {
                o = eventlog::rocks::with_insert_hints(&mut o, cap);
            }
            if *name == META || in_place.contains(name) {
                o.set_inplace_update_support(true);
            }
            ColumnFamilyDescriptor::new(*name, o)
        });
        let db = DB::open_cf_descriptors(&opts, path, cfs)?;
        let this = Self { db };
        match this.db.get_cf(this.cf(META)?, LAYOUT)? {
            Some(stored) if stored != layout.as_bytes() => {
                return Err(ProjectionError::Layout {
                    found: String::from_utf8_lossy(&stored).into_owned(),
                    expected: layout.to_owned(),
                })
            }
            Some(_) => {}
            None => this.db.put_cf(this.cf(META)?, LAYOUT, layout.as_bytes())?,
        }
        Ok(this)
    }

    pub fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily, ProjectionError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| ProjectionError::Corrupt(format!("missing column family {name}")))
    }

    pub fn raw(&self) -> &DB {
        &self.db
    }

    /// The position of the last event this model has applied.
    ///
    /// # Errors
    /// RocksDB errors or a malformed checkpoint.
    pub fn checkpoint(&self) -> Result<Option<u64>, ProjectionError> {
        match self.db.get_cf(self.cf(META)?, CHECKPOINT)? {
            None => Ok(None),
            Some(v) => Ok(Some(u64::from_be_bytes(v.as_slice().try_into().map_err(
                |_| ProjectionError::Corrupt("checkpoint is not 8 bytes".into()),
            )?))),
        }
    }

    /// Writes `batch` and the new checkpoint atomically. Not fsynced: a read model is
    /// rebuildable, and RocksDB's WAL recovers a prefix of batches, so after a crash the
    /// data and its checkpoint still agree (the model resumes from an earlier position).
    ///
    /// # Errors
    /// RocksDB errors.
    pub fn commit(&self, mut batch: WriteBatch, checkpoint: u64) -> Result<(), ProjectionError> {
        batch.put_cf(self.cf(META)?, CHECKPOINT, checkpoint.to_be_bytes());
        let mut wo = WriteOptions::default();
        wo.set_sync(false);
        self.db.write_opt(batch, &wo)?;
        Ok(())
    }

    /// Every (family, key, value) stored, in order: for comparing two builds in tests and
    /// for `replay` diagnostics. Reads the whole database.
    ///
    /// # Errors
    /// RocksDB errors.
    pub fn dump(&self, families: &[&str]) -> Result<Dump, ProjectionError> {
        let mut out = Vec::new();
        for name in families.iter().chain(std::iter::once(&META)) {
            for item in self
                .db
                .iterator_cf(self.cf(name)?, rocksdb::IteratorMode::Start)
            {
                let (k, v) = item?;
                out.push(((*name).to_owned(), k.to_vec(), v.to_vec()));
            }
        }
        Ok(out)
    }

    /// Flushes memtables so a reopen does not replay the WAL (used before a switch).
    ///
    /// # Errors
    /// RocksDB errors.
    pub fn flush(&self) -> Result<(), ProjectionError> {
        self.db.flush_wal(true)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries in `family`'s active memtable.
    fn entries(db: &ModelDb, family: &str) -> u64 {
        db.raw()
            .property_int_value_cf(
                db.cf(family).unwrap(),
                "rocksdb.num-entries-active-mem-table",
            )
            .unwrap()
            .unwrap()
    }

    #[test]
    fn rows_rewritten_in_place_keep_one_memtable_entry_each() {
        let dir = tempfile::tempdir().unwrap();
        let db = ModelDb::open(dir.path(), &["rows", "log"], &[], &["rows"], "test/1").unwrap();
        for i in 0..100u64 {
            let mut batch = WriteBatch::default();
            for family in ["rows", "log"] {
                batch.put_cf(db.cf(family).unwrap(), b"conversation", i.to_be_bytes());
            }
            db.commit(batch, i).unwrap();
        }
        assert_eq!(entries(&db, "rows"), 1, "rewritten in place");
        assert_eq!(entries(&db, "log"), 100, "one entry per write");
        // The layout and the checkpoint (rewritten by every commit).
        assert_eq!(entries(&db, META), 2);
        let row = |family| {
            db.raw()
                .get_cf(db.cf(family).unwrap(), b"conversation")
                .unwrap()
        };
        assert_eq!(row("rows"), Some(99u64.to_be_bytes().to_vec()));
        assert_eq!(row("log"), row("rows"));
        assert_eq!(db.checkpoint().unwrap(), Some(99));
        // A larger value cannot go where the smaller one was: it is added, and read back.
        let mut batch = WriteBatch::default();
        batch.put_cf(db.cf("rows").unwrap(), b"conversation", [7u8; 16]);
        db.commit(batch, 100).unwrap();
        assert_eq!(entries(&db, "rows"), 2);
        assert_eq!(row("rows"), Some(vec![7u8; 16]));
    }
}
