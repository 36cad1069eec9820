//! Keys that seal parts of events, kept outside the log so that destroying one makes what
//! it sealed unreadable while the log's bytes (and hash chains) stay as written
//! ("crypto-shredding").
//!
//! A [`Keyring`] is a small RocksDB instance of its own (`<data>/keys`): a key's *name*
//! (bytes chosen by the caller; the actor layer names one per organization, customer and
//! day) → a random 256-bit key and the time it was made. Keys are made on first use
//! ([`Keyring::get_or_create`], written with fsync before anything is sealed under them)
//! and destroyed by prefix ([`Keyring::destroy`]), after which the instance is flushed and
//! compacted so no live file holds the destroyed bytes. The log never holds a key.
//!
//! [`seal`] and [`open`] are XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha) with a random
//! 192-bit nonce; the caller's associated data binds a ciphertext to the name it was sealed
//! under. It is built from its two standard parts: HChaCha20 derives a subkey from the key
//! and the nonce's first 16 bytes, and ring's ChaCha20-Poly1305 (RFC 8439, in assembly)
//! seals under that subkey with the nonce's last 8 bytes. The bytes are the same as any
//! other XChaCha20-Poly1305's (the tests check them against RustCrypto's); ring's is two to
//! five times faster (`benches/sealing.rs`), most on the short texts of a conversation,
//! whose cost in RustCrypto's was mostly the Poly1305 set-up its AVX2 code pays per text.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use ring::rand::{SecureRandom, SystemRandom};
use rocksdb::{Options, WriteBatch, WriteOptions, DB};
use rustc_hash::FxHashMap;

/// Format byte of a stored key record (the version of its layout).
const FORMAT: u8 = 1;

/// A 256-bit key.
pub type Key = [u8; 32];

/// What the cache holds of one name.
struct Cached {
    /// Its key (`None`: known to have none).
    key: Option<Key>,
    /// When that was read.
    at: Instant,
    /// Whether it was used since ([`Keyring::refresh_ahead`] reads again only what is in
    /// use).
    used: bool,
}

type KeyCache = FxHashMap<Vec<u8>, Cached>;

impl Cached {
    fn read_now(key: Option<Key>) -> Self {
        Self {
            key,
            at: Instant::now(),
            used: false,
        }
    }
}

/// The keyring failed to read or write its storage.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("key storage: {0}")]
    Storage(String),
    #[error("key storage holds a record it cannot read (format {0})")]
    Corrupt(u8),
    #[error("the key storage is open read-only")]
    ReadOnly,
}

impl From<KeyringError> for crate::error::StorageError {
    fn from(e: KeyringError) -> Self {
        match e {
            KeyringError::Storage(s) => crate::error::StorageError::Engine(s),
            KeyringError::Corrupt(format) => crate::error::StorageError::Corrupted {
                location: "the keyring".into(),
                reason: format!("a key record of format {format}"),
            },
            KeyringError::ReadOnly => crate::error::StorageError::ReadOnly,
        }
    }
}

impl From<rocksdb::Error> for KeyringError {
    fn from(e: rocksdb::Error) -> Self {
        KeyringError::Storage(e.into_string())
    }
}

/// A key record with its name.
pub type Named = (Vec<u8>, Vec<u8>);

/// Where a keyring's records live when it is not a local RocksDB instance: a cluster's
/// replicated key-value store (`natslog`). Records are opaque bytes to it.
pub trait KeyBackend: Send + Sync {
    /// The record named `name`.
    ///
    /// # Errors
    /// The store cannot be reached.
    fn get(&self, name: &[u8]) -> Result<Option<Vec<u8>>, KeyringError>;
    /// Writes `record` under `name` unless one is there: the record that is there after.
    ///
    /// # Errors
    /// The store cannot be reached.
    fn create(&self, name: &[u8], record: &[u8]) -> Result<Vec<u8>, KeyringError>;
    /// Every (name, record) whose name starts with `prefix`.
    ///
    /// # Errors
    /// The store cannot be reached.
    fn list(&self, prefix: &[u8]) -> Result<Vec<Named>, KeyringError>;
    /// Destroys the records named `names` (every revision of them).
    ///
    /// # Errors
    /// The store cannot be reached.
    fn destroy(&self, names: &[Vec<u8>]) -> Result<(), KeyringError>;
}

/// Named keys, cached in memory: in a RocksDB instance of their own, or in a
/// [`KeyBackend`] shared by the nodes of a cluster.
pub struct Keyring {
    /// `None`: opened read-only where no keyring was ever written (every key is missing).
    db: Option<DB>,
    /// A cluster's store, instead of `db`.
    remote: Option<std::sync::Arc<dyn KeyBackend>>,
    writable: bool,
    /// Keys read so far, and names known to have none, with when they were read.
    cache: Mutex<KeyCache>,
    /// How long what the cache and `recent` hold is trusted: for ever over a local
    /// RocksDB (every change goes through this keyring), [`REMOTE_TRUST`] over a cluster's
    /// store, whose changes by other nodes arrive by a watch that can miss some.
    trust_for: Option<Duration>,
    /// Serialises making keys, so two sealers of one name agree on its key.
    making: Mutex<()>,
    /// Texts sealed here lately, by nonce: what the readers of a new event (the stream
    /// hub, search, the outbox, webhooks) would otherwise each decrypt again.
    recent: Mutex<Recent>,
}

/// Texts sealed lately, by their nonce (random, so one per sealed text), forgotten oldest
/// first past the capacity (a count, and [`RECENT_BYTES`] of plaintext), and all at once
/// when any key is destroyed or changed elsewhere: an erased text is never recalled.
struct Recent {
    capacity: usize,
    /// Each text, and when it was sealed.
    texts: FxHashMap<[u8; NONCE_LEN], (Box<[u8]>, Instant)>,
    order: std::collections::VecDeque<[u8; NONCE_LEN]>,
    /// Plaintext bytes held.
    bytes: usize,
}

/// Bytes of an XChaCha20-Poly1305 nonce.
const NONCE_LEN: usize = 24;

/// Texts a keyring remembers by default (see [`Keyring::remember`]).
pub const RECENT_TEXTS: usize = 32_768;
/// Plaintext bytes a keyring remembers at most, whatever the count (long texts and sealed
/// webhook bodies are larger than most).
pub const RECENT_BYTES: usize = 8 * 1024 * 1024;

/// How long a keyring over a cluster's store trusts what it read or remembered without
/// asking the store again. Other nodes' changes normally reach it at once through the
/// store's watch (`Keyring::forget`); a watch that misses one (the cluster restarted under
/// it) leaves a destroyed key readable on this node for at most this long.
pub const REMOTE_TRUST: Duration = Duration::from_secs(5);

impl Recent {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            texts: FxHashMap::default(),
            order: std::collections::VecDeque::new(),
            bytes: 0,
        }
    }

    fn clear(&mut self) {
        self.texts.clear();
        self.order.clear();
        self.bytes = 0;
    }

    fn forget_oldest(&mut self) {
        if let Some(oldest) = self.order.pop_front() {
            if let Some((text, _)) = self.texts.remove(&oldest) {
                self.bytes -= text.len();
            }
        }
    }
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("writable", &self.writable)
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// Opens (or creates) the keyring in `dir`.
    ///
    /// # Errors
    /// When RocksDB cannot open the directory.
    pub fn open(dir: &Path) -> Result<Self, KeyringError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        // Few, small records: no background churn, and nothing kept past a flush.
        options.set_keep_log_file_num(2);
        let db = DB::open(&options, dir)?;
        Ok(Self::with(Some(db), true))
    }

    /// Opens the keyring in `dir` to read only (auditors' tools); a directory without one
    /// reads as a keyring without keys.
    ///
    /// # Errors
    /// When RocksDB cannot open an existing keyring.
    pub fn open_read_only(dir: &Path) -> Result<Self, KeyringError> {
        if !dir.join("CURRENT").exists() {
            return Ok(Self::with(None, false));
        }
        let db = DB::open_for_read_only(&Options::default(), dir, false)?;
        Ok(Self::with(Some(db), false))
    }

    /// A keyring over a cluster's store. Its cache is kept true by [`Keyring::forget`] (the
    /// backend's owner calls it for every change another node makes), by
    /// [`Keyring::get_fresh`] before a text is called erased, and, should the owner's watch
    /// miss a change, by trusting nothing it read or remembered for longer than
    /// [`REMOTE_TRUST`].
    pub fn remote(backend: std::sync::Arc<dyn KeyBackend>) -> Self {
        Self::remote_trusting(backend, REMOTE_TRUST)
    }

    /// As [`Keyring::remote`], trusting what it read or remembered for `trust` (tests use
    /// zero: every read asks the store).
    pub fn remote_trusting(backend: std::sync::Arc<dyn KeyBackend>, trust: Duration) -> Self {
        let mut ring = Self::with(None, true);
        ring.remote = Some(backend);
        ring.trust_for = Some(trust);
        ring
    }

    fn with(db: Option<DB>, writable: bool) -> Self {
        Self {
            db,
            remote: None,
            writable,
            cache: Mutex::new(FxHashMap::default()),
            trust_for: None,
            making: Mutex::new(()),
            recent: Mutex::new(Recent::new(RECENT_TEXTS)),
        }
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many lately sealed texts to remember (0: none; every read decrypts).
    pub fn set_recent_capacity(&self, capacity: usize) {
        let mut recent = self.recent();
        recent.clear();
        recent.capacity = capacity;
    }

    /// Remembers the plaintext of a text just sealed with `nonce`, so that reading it back
    /// soon after needs no decryption ([`Keyring::recall`]).
    pub fn remember(&self, nonce: &[u8], plaintext: &[u8]) {
        let Ok(nonce) = <[u8; NONCE_LEN]>::try_from(nonce) else {
            return;
        };
        let mut recent = self.recent();
        if recent.capacity == 0
            || plaintext.len() > RECENT_BYTES
            || recent.texts.contains_key(&nonce)
        {
            return;
        }
        while recent.order.len() >= recent.capacity || recent.bytes + plaintext.len() > RECENT_BYTES
        {
            recent.forget_oldest();
        }
        recent.bytes += plaintext.len();
        recent
            .texts
            .insert(nonce, (plaintext.into(), Instant::now()));
        recent.order.push_back(nonce);
    }

    /// The plaintext of the text sealed here lately with `nonce`, if it is remembered, no
    /// key has been destroyed or changed elsewhere since, and it is still trusted.
    pub fn recall(&self, nonce: &[u8]) -> Option<Vec<u8>> {
        let nonce = <[u8; NONCE_LEN]>::try_from(nonce).ok()?;
        let recent = self.recent();
        let (text, at) = recent.texts.get(&nonce)?;
        self.trusted(*at).then(|| text.to_vec())
    }

    /// Whether what was read or remembered at `at` may still be used as it is.
    fn trusted(&self, at: Instant) -> bool {
        self.trust_for.is_none_or(|t| at.elapsed() < t)
    }

    /// Drops everything cached and remembered: the owner of a cluster's store calls it
    /// when its watch was interrupted (changes may have been missed).
    pub fn forget_all(&self) {
        self.cache().clear();
        self.recent().clear();
    }

    fn remember_key(&self, name: &[u8], key: Option<Key>) {
        self.cache().insert(name.to_vec(), Cached::read_now(key));
    }

    /// Reads again, from a cluster's store, every cached key that was used since it was
    /// read and was read `older_than` ago or more; returns how many it read. Its owner
    /// calls it every so often from a thread that may block, so that a key in use stays
    /// trusted ([`REMOTE_TRUST`]) without a reader of texts ever waiting on the store:
    /// only the first use of a key, or one after a quiet spell, asks the store on the
    /// reader's thread. What is read replaces the cache's entry only if nothing changed
    /// that entry meanwhile (a watch's `forget`, a destruction here), so a refresh never
    /// brings back a key dropped during its read. A key found gone or changed also drops
    /// the texts remembered (they may have been sealed under it). Over a local RocksDB
    /// there is nothing to refresh.
    ///
    /// # Errors
    /// When the store cannot be read; what was read before stays refreshed.
    pub fn refresh_ahead(&self, older_than: Duration) -> Result<usize, KeyringError> {
        let Some(remote) = &self.remote else {
            return Ok(0);
        };
        let due: Vec<(Vec<u8>, Instant)> = self
            .cache()
            .iter()
            .filter(|(_, c)| c.used && c.at.elapsed() >= older_than)
            .map(|(name, c)| (name.clone(), c.at))
            .collect();
        for (name, was_read) in &due {
            let started = Instant::now();
            let key = remote
                .get(name)?
                .map(|v| parse(&v))
                .transpose()?
                .map(|(_, key)| key);
            let mut cache = self.cache();
            let Some(entry) = cache.get_mut(name).filter(|c| c.at == *was_read) else {
                continue;
            };
            let changed = entry.key != key;
            *entry = Cached {
                key,
                at: started,
                used: false,
            };
            drop(cache);
            if changed {
                self.recent().clear();
            }
        }
        Ok(due.len())
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, KeyCache> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The key named `name`, if it exists.
    ///
    /// # Errors
    /// When the storage cannot be read.
    pub fn get(&self, name: &[u8]) -> Result<Option<Key>, KeyringError> {
        if let Some(cached) = self.cache().get_mut(name) {
            if self.trusted(cached.at) {
                cached.used = true;
                return Ok(cached.key);
            }
        }
        self.get_fresh(name)
    }

    /// What the cache alone says of `name`, never touching the storage (a caller on an
    /// async executor tries this first, and hands a `None` to a thread that may block):
    /// `Some(Some(key))` for a trusted cached key; `Some(None)` when the name is cached as
    /// having none and this keyring is [authoritative](Keyring::authoritative); `None`
    /// when only the storage can answer.
    pub fn cached(&self, name: &[u8]) -> Option<Option<Key>> {
        let mut cache = self.cache();
        let cached = cache.get_mut(name).filter(|c| self.trusted(c.at))?;
        cached.used = true;
        match cached.key {
            Some(key) => Some(Some(key)),
            None => self.authoritative().then_some(None),
        }
    }

    /// Whether this keyring is the only writer of its keys, so that what its cache holds
    /// is final: a writable local RocksDB (no other process can open it meanwhile). Over a
    /// cluster's store another node may make or destroy a key at any moment, and a
    /// read-only keyring reads one a server writes.
    pub fn authoritative(&self) -> bool {
        self.db.is_some() && self.writable && self.remote.is_none()
    }

    /// As [`Keyring::get`], asking the storage whatever the cache holds (a key another
    /// node made or destroyed a moment ago).
    ///
    /// # Errors
    /// When the storage cannot be read.
    pub fn get_fresh(&self, name: &[u8]) -> Result<Option<Key>, KeyringError> {
        let found = match (&self.db, &self.remote) {
            (Some(db), _) => db.get_pinned(name)?.map(|v| parse(&v)).transpose()?,
            (None, Some(remote)) => remote.get(name)?.map(|v| parse(&v)).transpose()?,
            (None, None) => None,
        };
        let key = found.map(|(_, key)| key);
        self.remember_key(name, key);
        Ok(key)
    }

    /// Drops what the cache holds of `name` (another node changed it), and every text
    /// remembered (it may have been sealed under that key).
    pub fn forget(&self, name: &[u8]) {
        self.forget_key(name);
        self.recent().clear();
    }

    /// Drops what the cache holds of `name` only (another node made it: no text sealed
    /// before can have been sealed under it).
    pub fn forget_key(&self, name: &[u8]) {
        self.cache().remove(name);
    }

    /// The key named `name`, made (and durably written) now if it does not exist.
    ///
    /// # Errors
    /// When the storage cannot be read or written, or is read-only.
    pub fn get_or_create(&self, name: &[u8], now_ms: u64) -> Result<Key, KeyringError> {
        if let Some(key) = self.get(name)? {
            return Ok(key);
        }
        if let Some(remote) = &self.remote {
            // Another node may make it at the same moment: the store keeps the first.
            let record = new_record(now_ms);
            let (_, key) = parse(&remote.create(name, &record)?)?;
            self.remember_key(name, Some(key));
            return Ok(key);
        }
        let (Some(db), true) = (&self.db, self.writable) else {
            return Err(KeyringError::ReadOnly);
        };
        let _making = self
            .making
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(v) = db.get_pinned(name)? {
            let (_, key) = parse(&v)?;
            self.remember_key(name, Some(key));
            return Ok(key);
        }
        let record = new_record(now_ms);
        let (_, key) = parse(&record)?;
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        db.put_opt(name, &record, &sync)?;
        self.remember_key(name, Some(key));
        Ok(key)
    }

    /// Every key name under `prefix` with the time its key was made, in name order.
    ///
    /// # Errors
    /// When the storage cannot be read.
    pub fn names(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, u64)>, KeyringError> {
        if let Some(remote) = &self.remote {
            let mut out = remote
                .list(prefix)?
                .into_iter()
                .map(|(name, record)| parse(&record).map(|(made, _)| (name, made)))
                .collect::<Result<Vec<_>, _>>()?;
            out.sort();
            return Ok(out);
        }
        let Some(db) = &self.db else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in db.prefix_iterator(prefix) {
            let (name, value) = item?;
            if !name.starts_with(prefix) {
                break;
            }
            let (made_ms, _) = parse(&value)?;
            out.push((name.to_vec(), made_ms));
        }
        Ok(out)
    }

    /// Destroys every key under `prefix` that `doomed(name, made_ms)` picks, then flushes
    /// and compacts so that no live file of the keyring still holds them. Returns how
    /// many were destroyed.
    ///
    /// # Errors
    /// When the storage cannot be read or written, or is read-only.
    pub fn destroy(
        &self,
        prefix: &[u8],
        mut doomed: impl FnMut(&[u8], u64) -> bool,
    ) -> Result<usize, KeyringError> {
        if !self.writable || (self.db.is_none() && self.remote.is_none()) {
            return Err(KeyringError::ReadOnly);
        }
        let _making = self
            .making
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let names: Vec<Vec<u8>> = self
            .names(prefix)?
            .into_iter()
            .filter(|(name, made)| doomed(name, *made))
            .map(|(name, _)| name)
            .collect();
        if names.is_empty() {
            return Ok(0);
        }
        let Some(db) = &self.db else {
            if let Some(remote) = &self.remote {
                remote.destroy(&names)?;
            }
            let mut cache = self.cache();
            for name in &names {
                cache.insert(name.clone(), Cached::read_now(None));
            }
            self.recent().clear();
            return Ok(names.len());
        };
        let mut batch = WriteBatch::default();
        for name in &names {
            batch.delete(name);
        }
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        db.write_opt(batch, &sync)?;
        {
            let mut cache = self.cache();
            for name in &names {
                cache.insert(name.clone(), Cached::read_now(None));
            }
            self.recent().clear();
        }
        // The deletions reach the SST files, and compaction rewrites the files that held
        // the keys without them; the WAL that held their writes is dropped after the flush.
        db.flush()?;
        db.compact_range::<&[u8], &[u8]>(None, None);
        Ok(names.len())
    }

    /// Writes a consistent copy of the keyring to `dir` (which must not exist), for
    /// backups.
    ///
    /// # Errors
    /// When RocksDB cannot write the checkpoint.
    pub fn checkpoint_to(&self, dir: &Path) -> Result<(), KeyringError> {
        let Some(db) = &self.db else {
            return Err(KeyringError::ReadOnly);
        };
        rocksdb::checkpoint::Checkpoint::new(db)?.create_checkpoint(dir)?;
        Ok(())
    }
}

/// A new random key's record: format, time made, key.
fn new_record(now_ms: u64) -> Vec<u8> {
    let mut key: Key = [0; 32];
    SystemRandom::new()
        .fill(&mut key)
        .expect("the operating system's random source answers");
    let mut record = Vec::with_capacity(41);
    record.push(FORMAT);
    record.extend_from_slice(&now_ms.to_be_bytes());
    record.extend_from_slice(&key);
    record
}

fn parse(value: &[u8]) -> Result<(u64, Key), KeyringError> {
    match value {
        [FORMAT, rest @ ..] if rest.len() == 40 => {
            let mut made = [0; 8];
            made.copy_from_slice(&rest[..8]);
            let mut key = [0; 32];
            key.copy_from_slice(&rest[8..]);
            Ok((u64::from_be_bytes(made), key))
        }
        [other, ..] => Err(KeyringError::Corrupt(*other)),
        [] => Err(KeyringError::Corrupt(0)),
    }
}

/// One key from several (a text of several subjects needs all of theirs): destroying any
/// of them destroys it.
pub fn combine(keys: &[Key]) -> Key {
    let mut hasher = blake3::Hasher::new_derive_key("switchboard sealed text key v1");
    for key in keys {
        hasher.update(key);
    }
    *hasher.finalize().as_bytes()
}

/// A short fingerprint of a key, stored beside what it sealed: a key made again under the
/// same name (after the first was destroyed) is told apart from the one that sealed it.
pub fn check_of(key: &Key) -> [u8; 8] {
    let digest = blake3::derive_key("switchboard sealed text check v1", key);
    let mut check = [0; 8];
    check.copy_from_slice(&digest[..8]);
    check
}

/// The ChaCha20-Poly1305 key and nonce of XChaCha20-Poly1305 under `key` and `nonce`.
fn xchacha(key: &Key, nonce: &[u8; NONCE_LEN]) -> (LessSafeKey, Nonce) {
    let mut head = [0; 16];
    head.copy_from_slice(&nonce[..16]);
    let subkey = chacha20::hchacha::<chacha20::cipher::consts::U10>(key.into(), &head.into());
    let subkey = UnboundKey::new(&CHACHA20_POLY1305, &subkey)
        .expect("a 256-bit key is ChaCha20-Poly1305's length");
    let mut tail = [0; 12];
    tail[4..].copy_from_slice(&nonce[16..]);
    (LessSafeKey::new(subkey), Nonce::assume_unique_for_key(tail))
}

/// Seals `plaintext` under `key`: (nonce, ciphertext with its tag).
pub fn seal(key: &Key, aad: &[u8], plaintext: &[u8]) -> (Vec<u8>, Vec<u8>) {
    // 192 random bits from the thread's CSPRNG (ChaCha, seeded and reseeded from the
    // operating system): random nonces this long never repeat in practice, and drawing
    // them costs no system call per text, as `OsRng` did (the process never forks).
    let mut nonce = [0; NONCE_LEN];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut nonce);
    let (cipher, once) = xchacha(key, &nonce);
    let mut sealed = Vec::with_capacity(plaintext.len() + CHACHA20_POLY1305.tag_len());
    sealed.extend_from_slice(plaintext);
    cipher
        .seal_in_place_append_tag(once, Aad::from(aad), &mut sealed)
        .expect("a text is far below ChaCha20-Poly1305's limit of 256 GiB");
    (nonce.to_vec(), sealed)
}

/// Opens what [`seal`] sealed; `None` when the key, the associated data, the nonce or the
/// ciphertext is not the one it was sealed with.
pub fn open(key: &Key, aad: &[u8], nonce: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
    let nonce = <&[u8; NONCE_LEN]>::try_from(nonce).ok()?;
    let (cipher, once) = xchacha(key, nonce);
    let mut text = ciphertext.to_vec();
    let len = cipher
        .open_in_place(once, Aad::from(aad), &mut text)
        .ok()?
        .len();
    text.truncate(len);
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    use chacha20poly1305::XChaCha20Poly1305;
    use proptest::prelude::*;

    /// RustCrypto's XChaCha20-Poly1305, the reference the sealing must agree with byte for
    /// byte (texts sealed before it was built on ring were sealed by this one).
    fn reference(key: &Key) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(key.into())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn sealing_is_xchacha20_poly1305_byte_for_byte(
            key in any::<[u8; 32]>(),
            aad in proptest::collection::vec(any::<u8>(), 0..200),
            text in proptest::collection::vec(any::<u8>(), 0..1500),
            flip in any::<prop::sample::Index>(),
        ) {
            let (nonce, sealed) = seal(&key, &aad, &text);
            prop_assert_eq!(nonce.len(), NONCE_LEN);
            let by_reference = reference(&key)
                .encrypt(nonce.as_slice().into(), Payload { msg: &text, aad: &aad })
                .unwrap();
            prop_assert_eq!(&sealed, &by_reference);
            prop_assert_eq!(open(&key, &aad, &nonce, &by_reference), Some(text.clone()));
            // Any flipped bit of the ciphertext, tag or nonce is refused.
            let mut tampered = sealed.clone();
            let at = flip.index(tampered.len());
            tampered[at] ^= 1;
            prop_assert_eq!(open(&key, &aad, &nonce, &tampered), None);
            let mut other = nonce.clone();
            other[flip.index(NONCE_LEN)] ^= 0x80;
            prop_assert_eq!(open(&key, &aad, &other, &sealed), None);
            prop_assert_eq!(open(&key, &aad, &nonce[..12], &sealed), None);
        }
    }

    #[test]
    fn a_destroyed_key_is_gone_from_memory_and_storage() {
        let dir = tempfile::tempdir().unwrap();
        let ring = Keyring::open(dir.path()).unwrap();
        let a = ring.get_or_create(b"org/a/1", 10).unwrap();
        let b = ring.get_or_create(b"org/b/1", 20).unwrap();
        assert_ne!(a, b);
        assert_eq!(ring.get_or_create(b"org/a/1", 30).unwrap(), a, "made once");
        let (nonce, sealed) = seal(&a, b"aad", b"hello");
        assert_eq!(
            open(&a, b"aad", &nonce, &sealed).as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(open(&a, b"other", &nonce, &sealed), None);
        assert_eq!(open(&b, b"aad", &nonce, &sealed), None);

        assert_eq!(ring.destroy(b"org/a/", |_, made| made < 15).unwrap(), 1);
        assert_eq!(ring.get(b"org/a/1").unwrap(), None);
        assert_eq!(ring.get(b"org/b/1").unwrap(), Some(b));
        drop(ring);
        // Reopened: still gone, and no file of the keyring holds its bytes.
        let ring = Keyring::open(dir.path()).unwrap();
        assert_eq!(ring.get(b"org/a/1").unwrap(), None);
        drop(ring);
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(
                !bytes.windows(32).any(|w| w == a),
                "a file still holds the key"
            );
        }
        let ring = Keyring::open_read_only(dir.path()).unwrap();
        assert_eq!(ring.get(b"org/b/1").unwrap(), Some(b));
        assert!(ring.get_or_create(b"org/c/1", 0).is_err());
    }

    #[test]
    fn sealed_texts_are_recalled_until_any_key_is_destroyed() {
        let dir = tempfile::tempdir().unwrap();
        let ring = Keyring::open(dir.path()).unwrap();
        ring.get_or_create(b"org/a/1", 10).unwrap();
        ring.set_recent_capacity(2);
        let nonces: Vec<[u8; NONCE_LEN]> = (1..=3u8).map(|i| [i; NONCE_LEN]).collect();
        for (i, n) in nonces.iter().enumerate() {
            ring.remember(n, format!("text {i}").as_bytes());
        }
        assert_eq!(
            ring.recall(&nonces[0]),
            None,
            "the oldest went past the capacity"
        );
        assert_eq!(ring.recall(&nonces[2]).as_deref(), Some(&b"text 2"[..]));
        assert_eq!(ring.recall(&[3; 12]), None, "not a nonce");
        ring.forget_key(b"org/b/1");
        assert!(
            ring.recall(&nonces[1]).is_some(),
            "a key made elsewhere keeps them"
        );
        assert_eq!(ring.destroy(b"org/a/", |_, _| true).unwrap(), 1);
        assert_eq!(
            ring.recall(&nonces[1]),
            None,
            "a destroyed key forgets them all"
        );
        ring.remember(&nonces[0], b"again");
        ring.forget(b"org/c/1");
        assert_eq!(
            ring.recall(&nonces[0]),
            None,
            "so does a key changed elsewhere"
        );
        ring.set_recent_capacity(10);
        let half = vec![7u8; RECENT_BYTES / 2 + 1];
        ring.remember(&nonces[0], &half);
        ring.remember(&nonces[1], &half);
        assert_eq!(
            ring.recall(&nonces[0]),
            None,
            "past the byte bound the oldest goes"
        );
        assert!(ring.recall(&nonces[1]).is_some());
        ring.remember(&nonces[2], &vec![7u8; RECENT_BYTES + 1]);
        assert_eq!(
            ring.recall(&nonces[2]),
            None,
            "larger than the bound: not kept"
        );
        assert!(
            ring.recall(&nonces[1]).is_some(),
            "and nothing forgotten for it"
        );
        ring.set_recent_capacity(0);
        ring.remember(&nonces[0], b"again");
        assert_eq!(
            ring.recall(&nonces[0]),
            None,
            "capacity 0 remembers nothing"
        );
    }

    /// A cluster's store another node changes behind this keyring's back (no `forget`
    /// reaches it): what the keyring holds is not trusted beyond its horizon.
    #[derive(Default)]
    struct Shared(Mutex<std::collections::BTreeMap<Vec<u8>, Vec<u8>>>);

    impl KeyBackend for Shared {
        fn get(&self, name: &[u8]) -> Result<Option<Vec<u8>>, KeyringError> {
            Ok(self.0.lock().unwrap().get(name).cloned())
        }
        fn create(&self, name: &[u8], record: &[u8]) -> Result<Vec<u8>, KeyringError> {
            let mut map = self.0.lock().unwrap();
            Ok(map
                .entry(name.to_vec())
                .or_insert_with(|| record.to_vec())
                .clone())
        }
        fn list(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, KeyringError> {
            let map = self.0.lock().unwrap();
            Ok(map
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect())
        }
        fn destroy(&self, names: &[Vec<u8>]) -> Result<(), KeyringError> {
            let mut map = self.0.lock().unwrap();
            for name in names {
                map.remove(name);
            }
            Ok(())
        }
    }

    #[test]
    fn a_cluster_keyring_does_not_trust_what_it_holds_beyond_its_horizon() {
        let store = std::sync::Arc::new(Shared::default());
        let other = Keyring::remote(store.clone());
        // Trusted for ever in practice: a destruction it is not told of goes unseen.
        let trusting = Keyring::remote_trusting(store.clone(), Duration::from_secs(3_600));
        // Trusting nothing: every read asks the store.
        let wary = Keyring::remote_trusting(store.clone(), Duration::ZERO);
        let key = other.get_or_create(b"org/a/1", 10).unwrap();
        for ring in [&trusting, &wary] {
            assert_eq!(ring.get(b"org/a/1").unwrap(), Some(key));
            ring.remember(&[7; NONCE_LEN], b"hello");
        }
        assert_eq!(
            trusting.recall(&[7; NONCE_LEN]).as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(
            wary.recall(&[7; NONCE_LEN]),
            None,
            "remembered past its horizon"
        );

        // Another node destroys the key; its watch's message is lost.
        assert_eq!(other.destroy(b"org/a/", |_, _| true).unwrap(), 1);
        assert_eq!(
            trusting.get(b"org/a/1").unwrap(),
            Some(key),
            "within the horizon"
        );
        assert_eq!(wary.get(b"org/a/1").unwrap(), None, "asked the store again");
        // A watch that was interrupted drops everything.
        trusting.forget_all();
        assert_eq!(trusting.get(b"org/a/1").unwrap(), None);
        assert_eq!(trusting.recall(&[7; NONCE_LEN]), None);
    }

    /// A store that counts its reads and, when asked, lets another node's change arrive
    /// (by the watch: `forget_key`) while a read is under way.
    #[derive(Default)]
    struct Watched {
        store: Shared,
        reads: std::sync::atomic::AtomicUsize,
        forget_during_read: std::sync::OnceLock<std::sync::Weak<Keyring>>,
    }

    impl KeyBackend for Watched {
        fn get(&self, name: &[u8]) -> Result<Option<Vec<u8>>, KeyringError> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if let Some(ring) = self
                .forget_during_read
                .get()
                .and_then(std::sync::Weak::upgrade)
            {
                ring.forget_key(name);
            }
            self.store.get(name)
        }
        fn create(&self, name: &[u8], record: &[u8]) -> Result<Vec<u8>, KeyringError> {
            self.store.create(name, record)
        }
        fn list(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, KeyringError> {
            self.store.list(prefix)
        }
        fn destroy(&self, names: &[Vec<u8>]) -> Result<(), KeyringError> {
            self.store.destroy(names)
        }
    }

    #[test]
    fn refreshing_ahead_reads_again_only_keys_in_use_and_never_brings_back_a_dropped_one() {
        let backend = std::sync::Arc::new(Watched::default());
        let reads = || backend.reads.load(std::sync::atomic::Ordering::SeqCst);
        let ring = std::sync::Arc::new(Keyring::remote_trusting(
            backend.clone(),
            Duration::from_secs(3_600),
        ));
        let (a, b) = (
            ring.get_or_create(b"org/a/1", 10).unwrap(),
            ring.get_or_create(b"org/b/1", 10).unwrap(),
        );
        let before = reads();
        // `a` is used after it was read, `b` is not: only `a` is read again.
        assert_eq!(ring.get(b"org/a/1").unwrap(), Some(a));
        assert_eq!(reads(), before, "a cache hit asks nothing");
        assert_eq!(ring.refresh_ahead(Duration::ZERO).unwrap(), 1);
        assert_eq!(reads(), before + 1);
        assert_eq!(
            ring.refresh_ahead(Duration::ZERO).unwrap(),
            0,
            "not used since its refresh"
        );
        // Nothing is refreshed before it is `older_than`.
        assert_eq!(ring.get(b"org/a/1").unwrap(), Some(a));
        assert_eq!(ring.refresh_ahead(Duration::from_secs(60)).unwrap(), 0);

        // Another node destroys `a` and the watch misses it: the refresh finds it gone,
        // and the texts remembered go with it.
        ring.remember(&[7; NONCE_LEN], b"hello");
        backend.store.destroy(&[b"org/a/1".to_vec()]).unwrap();
        assert_eq!(ring.refresh_ahead(Duration::ZERO).unwrap(), 1);
        let after = reads();
        assert_eq!(ring.get(b"org/a/1").unwrap(), None, "gone, from the cache");
        assert_eq!(reads(), after);
        assert_eq!(ring.recall(&[7; NONCE_LEN]), None);

        // A change that arrives while the refresh reads wins: the refresh does not put
        // back what the watch dropped.
        assert_eq!(ring.get(b"org/b/1").unwrap(), Some(b));
        backend
            .forget_during_read
            .set(std::sync::Arc::downgrade(&ring))
            .unwrap();
        // `b`, and `a` (known to be gone, and looked up since).
        assert_eq!(ring.refresh_ahead(Duration::ZERO).unwrap(), 2);
        assert!(
            !ring.cache().contains_key(&b"org/b/1"[..])
                && !ring.cache().contains_key(&b"org/a/1"[..]),
            "dropped during the read, and still dropped"
        );
        // A local keyring has nothing to refresh.
        let dir = tempfile::tempdir().unwrap();
        let local = Keyring::open(dir.path()).unwrap();
        local.get_or_create(b"org/a/1", 10).unwrap();
        local.get(b"org/a/1").unwrap();
        assert_eq!(local.refresh_ahead(Duration::ZERO).unwrap(), 0);
    }

    #[test]
    fn a_combined_key_needs_every_part() {
        let (a, b, c) = ([1; 32], [2; 32], [3; 32]);
        assert_eq!(combine(&[a, b]), combine(&[a, b]));
        assert_ne!(combine(&[a, b]), combine(&[a, c]));
        assert_ne!(check_of(&a), check_of(&b));
    }
}
