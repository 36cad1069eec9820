//! Sealing message texts before the log stores them, opening them after it is read, and
//! destroying their keys (erasure on request, retention).
//!
//! A [`domain::Text`] names its [`TextKey`]: an organization, the customers it belongs to,
//! a day. Each (organization, customer, day) has a key of its own in the [`Keyring`], and
//! internal chat one per (organization, day); a text is sealed under the combination of
//! the keys of all its parts (`keyring::combine`), so destroying the key of any one
//! customer, or every key of a day, makes it unreadable. Destroyed keys are never made
//! again for what they sealed: a new key of the same name has another check value, so an
//! old text still reads as erased.
//!
//! **Never on an executor thread, a key's storage.** A key that is not in the keyring's
//! memory is read (or made, fsynced) from RocksDB or, in a cluster, the NATS store. So
//! each operation comes twice: `*_blocking`, which may wait on that storage (read-model
//! threads, blocking tasks), and an `async` one for tokio and actix code, which does what
//! the keys in memory allow in place and hands the rest to a blocking thread
//! (`spawn_blocking`) — only a key's first use (per day and customer) pays that hop.
//! [`Sealer::seal_event_cached`] is the in-place half alone, for a caller that cannot
//! await (an actor deciding in order).
//!
//! Key names: `org (16 bytes) ‖ 'c' ‖ E.164 number ‖ 0 ‖ day (u32 BE)` for a customer,
//! `org ‖ 'i' ‖ 0 ‖ day` for internal chat — so one prefix holds an organization's keys,
//! and another one customer's.

use std::sync::Arc;

use domain::text::{Text, TextKey, Texts};
use domain::{OrgId, PhoneNumber};
use eventlog::keyring::{self, Keyring, KeyringError};

/// Seals and opens texts with the keys of one keyring — the log's ([`Sealer::of`]); or,
/// without a keyring, stores texts in the clear (logs opened without one: tests of other
/// parts).
#[derive(Clone, Debug, Default)]
pub struct Sealer {
    keyring: Option<Arc<Keyring>>,
}

/// Bytes a sealed body carries before its ciphertext: the format of what follows.
const SEALED_BODY: u8 = 1;

impl Sealer {
    /// Seals with the keys of `keyring`.
    pub fn new(keyring: Arc<Keyring>) -> Self {
        Self {
            keyring: Some(keyring),
        }
    }

    /// Seals with the keyring of `store` (see [`eventlog::EventStore::keyring`]); in the
    /// clear when it has none.
    pub fn of(store: &dyn eventlog::EventStore) -> Self {
        Self {
            keyring: store.keyring(),
        }
    }

    /// Stores texts in the clear: nothing can be erased.
    pub fn clear() -> Self {
        Self::default()
    }

    /// The keyring, when texts are sealed.
    pub fn keyring(&self) -> Option<&Arc<Keyring>> {
        self.keyring.as_ref()
    }

    /// Seals every readable text of `event` that names its key; keys are read or made
    /// (fsynced) as needed, so this may wait on the keyring's storage.
    ///
    /// # Errors
    /// When a key cannot be made (the keyring's storage failed): nothing may be written.
    pub fn seal_event_blocking<E: Texts>(&self, event: &mut E) -> Result<(), KeyringError> {
        let Some(ring) = &self.keyring else {
            return Ok(());
        };
        for text in event.texts_mut() {
            let Some((key, words)) = plain_with_key(text) else {
                continue;
            };
            let sealed = seal_bytes(ring, key, words.as_bytes())?;
            *text = sealed_text(key.clone(), sealed);
        }
        Ok(())
    }

    /// Seals one text (see [`Sealer::seal_event_blocking`]).
    ///
    /// # Errors
    /// When a key cannot be made.
    pub fn seal_blocking(&self, text: &mut Text) -> Result<(), KeyringError> {
        self.seal_event_blocking(&mut One(text))
    }

    /// Seals the texts of `event` whose keys the keyring holds in memory, never touching
    /// its storage; `false` when some text still needs a key read or made (seal the rest
    /// with [`Sealer::seal_event_blocking`] on a thread that may block, or
    /// [`Sealer::seal_event`]).
    pub fn seal_event_cached<E: Texts>(&self, event: &mut E) -> bool {
        let Some(ring) = &self.keyring else {
            return true;
        };
        let mut all = true;
        for text in event.texts_mut() {
            let Some((key, words)) = plain_with_key(text) else {
                continue;
            };
            match seal_bytes_cached(ring, key, words.as_bytes()) {
                Some(sealed) => *text = sealed_text(key.clone(), sealed),
                None => all = false,
            }
        }
        all
    }

    /// [`Sealer::seal_event_blocking`] for async code: sealed in place when the keys are
    /// in memory, on a blocking thread otherwise.
    ///
    /// # Errors
    /// When a key cannot be made: texts may then be left sealed or not, and nothing may be
    /// written.
    pub async fn seal_event<E: Texts>(&self, event: &mut E) -> Result<(), KeyringError> {
        if self.seal_event_cached(event) {
            return Ok(());
        }
        let sealer = self.clone();
        let mut texts = Many::of(event);
        let texts =
            off_executor(move || sealer.seal_event_blocking(&mut texts).map(|()| texts)).await?;
        texts.put_back(event);
        Ok(())
    }

    /// Opens every sealed text of `event`: readable again, or [`Text::Erased`] when a key
    /// it needs is gone. A keyring that cannot be read leaves the text sealed (and logs).
    /// May wait on the keyring's storage.
    pub fn open_event_blocking<E: Texts>(&self, event: &mut E) {
        for text in event.texts_mut() {
            self.open_blocking(text);
        }
    }

    /// Opens the texts of `event` that the keyring's memory can open or knows erased,
    /// never touching its storage; `false` when some text needs the storage.
    pub fn open_event_cached<E: Texts>(&self, event: &mut E) -> bool {
        let Some(ring) = &self.keyring else {
            return true;
        };
        let mut all = true;
        for text in event.texts_mut() {
            if let Text::Sealed {
                key,
                check,
                nonce,
                ciphertext,
            } = text
            {
                match open_bytes_cached(ring, key, check, nonce, ciphertext) {
                    Some(opened) => *text = opened_text(key.clone(), opened),
                    None => all = false,
                }
            }
        }
        all
    }

    /// [`Sealer::open_event_blocking`] for async code: opened in place when the keys are
    /// in memory, on a blocking thread otherwise.
    pub async fn open_event<E: Texts>(&self, event: &mut E) {
        if self.open_event_cached(event) {
            return;
        }
        let sealer = self.clone();
        let mut texts = Many::of(event);
        let texts = off_executor(move || {
            sealer.open_event_blocking(&mut texts);
            texts
        })
        .await;
        texts.put_back(event);
    }

    /// Opens one text (see [`Sealer::open_event_blocking`]).
    pub fn open_blocking(&self, text: &mut Text) {
        let Text::Sealed {
            key,
            check,
            nonce,
            ciphertext,
        } = text
        else {
            return;
        };
        let Some(ring) = &self.keyring else {
            return;
        };
        match open_bytes(ring, key, check, nonce, ciphertext) {
            Ok(opened) => *text = opened_text(key.clone(), opened),
            Err(e) => tracing::error!(error = %e, "cannot read the keyring: a text stays sealed"),
        }
    }

    /// Opens one text (see [`Sealer::open_event`]).
    pub async fn open(&self, text: &mut Text) {
        self.open_event(&mut One(text)).await;
    }

    /// Seals arbitrary bytes (e.g. a webhook body quoting a text) under `key`: the format
    /// byte, check, nonce and ciphertext in one buffer for [`Sealer::open_body_blocking`].
    /// Without a keyring, the bytes as they are. May wait on the keyring's storage.
    ///
    /// # Errors
    /// When a key cannot be made.
    pub fn seal_body_blocking(&self, key: &TextKey, body: &[u8]) -> Result<Vec<u8>, KeyringError> {
        let Some(ring) = &self.keyring else {
            return Ok(body.to_vec());
        };
        let (check, nonce, ciphertext) = seal_bytes(ring, key, body)?;
        let mut out = Vec::with_capacity(1 + 8 + 24 + ciphertext.len());
        out.push(SEALED_BODY);
        out.extend_from_slice(&check);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Opens what [`Sealer::seal_body_blocking`] sealed under `key`; `None` once the key
    /// is gone. May wait on the keyring's storage.
    pub fn open_body_blocking(&self, key: &TextKey, sealed: &[u8]) -> Option<Vec<u8>> {
        let Some(ring) = &self.keyring else {
            return Some(sealed.to_vec());
        };
        let (check, nonce, ciphertext) = body_parts(sealed)?;
        open_bytes(ring, key, check, nonce, ciphertext)
            .ok()
            .flatten()
    }

    /// [`Sealer::open_body_blocking`] for async code: opened in place when the keys are in
    /// memory, on a blocking thread otherwise.
    pub async fn open_body(&self, key: TextKey, sealed: Vec<u8>) -> Option<Vec<u8>> {
        let Some(ring) = &self.keyring else {
            return Some(sealed);
        };
        let (check, nonce, ciphertext) = body_parts(&sealed)?;
        if let Some(opened) = open_bytes_cached(ring, &key, check, nonce, ciphertext) {
            return opened;
        }
        let sealer = self.clone();
        off_executor(move || sealer.open_body_blocking(&key, &sealed)).await
    }

    /// Destroys every key of `customer`'s texts in `org` made before `before_ms`: their
    /// texts, in every conversation and stream, read as erased from now on. Returns how
    /// many keys were destroyed.
    ///
    /// # Errors
    /// When the keyring cannot be written, or texts are not sealed.
    pub fn erase_customer_blocking(
        &self,
        org: OrgId,
        customer: &PhoneNumber,
        before_ms: u64,
    ) -> Result<usize, KeyringError> {
        let ring = self.keyring.as_ref().ok_or(KeyringError::ReadOnly)?;
        let mut prefix = org_prefix(org);
        prefix.push(b'c');
        prefix.extend_from_slice(customer.as_str().as_bytes());
        prefix.push(0);
        ring.destroy(&prefix, |_, made| made < before_ms)
    }

    /// Destroys every key of `org`'s texts written before `day` (days since the epoch):
    /// retention. Returns how many keys were destroyed.
    ///
    /// # Errors
    /// When the keyring cannot be written, or texts are not sealed.
    pub fn erase_before_blocking(&self, org: OrgId, day: u32) -> Result<usize, KeyringError> {
        let ring = self.keyring.as_ref().ok_or(KeyringError::ReadOnly)?;
        ring.destroy(&org_prefix(org), |name, _| day_of_name(name) < day)
    }

    /// The organizations that have keys (retention looks at each).
    ///
    /// # Errors
    /// When the keyring cannot be read.
    pub fn organizations_blocking(&self) -> Result<Vec<OrgId>, KeyringError> {
        let Some(ring) = &self.keyring else {
            return Ok(Vec::new());
        };
        let mut orgs: Vec<OrgId> = Vec::new();
        for (name, _) in ring.names(&[])? {
            if let Some(bytes) = name.get(..16) {
                let org = OrgId::from_uuid(uuid::Uuid::from_slice(bytes).unwrap_or_default());
                if orgs.last() != Some(&org) {
                    orgs.push(org);
                }
            }
        }
        Ok(orgs)
    }
}

fn org_prefix(org: OrgId) -> Vec<u8> {
    org.as_uuid().as_bytes().to_vec()
}

fn day_of_name(name: &[u8]) -> u32 {
    name.len()
        .checked_sub(4)
        .and_then(|at| name.get(at..))
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(u32::MAX, u32::from_be_bytes)
}

/// One text, as an event of one text.
struct One<'a>(&'a mut Text);

impl Texts for One<'_> {
    fn texts_mut(&mut self) -> Vec<&mut Text> {
        vec![&mut *self.0]
    }
}

/// A copy of an event's texts, sealed or opened on a blocking thread (the event itself
/// need not be `Send`), then put back in the same order.
struct Many(Vec<Text>);

impl Many {
    fn of<E: Texts>(event: &mut E) -> Self {
        Self(event.texts_mut().into_iter().map(|t| t.clone()).collect())
    }

    fn put_back<E: Texts>(self, event: &mut E) {
        for (slot, text) in event.texts_mut().into_iter().zip(self.0) {
            *slot = text;
        }
    }
}

impl Texts for Many {
    fn texts_mut(&mut self) -> Vec<&mut Text> {
        self.0.iter_mut().collect()
    }
}

/// Runs `job`, which may wait on the keyring's storage, on a blocking thread; a panic in
/// it goes on in the caller.
async fn off_executor<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(job).await {
        Ok(out) => out,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// A readable text that names its key: what sealing replaces.
fn plain_with_key(text: &Text) -> Option<(&TextKey, &str)> {
    match text {
        Text::Plain {
            text: words,
            key: Some(key),
        } => Some((key, words)),
        _ => None,
    }
}

fn sealed_text(key: TextKey, (check, nonce, ciphertext): Sealed) -> Text {
    Text::Sealed {
        key,
        check,
        nonce,
        ciphertext,
    }
}

/// What opening found: the plaintext, or `None` when a key is gone.
fn opened_text(key: TextKey, opened: Option<Vec<u8>>) -> Text {
    match opened {
        Some(bytes) => Text::Plain {
            text: String::from_utf8_lossy(&bytes).into_owned(),
            key: Some(key),
        },
        None => Text::Erased { key },
    }
}

/// A sealed body's (check, nonce, ciphertext); `None` when it is not one.
fn body_parts(sealed: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    match sealed {
        [SEALED_BODY, rest @ ..] if rest.len() >= 32 => {
            let (check, rest) = rest.split_at(8);
            let (nonce, ciphertext) = rest.split_at(24);
            Some((check, nonce, ciphertext))
        }
        _ => None,
    }
}

/// The names of the keys a text of `key` is sealed under, in order.
fn names(key: &TextKey) -> Vec<Vec<u8>> {
    let name = |subject: &[u8]| {
        let mut name = org_prefix(key.org);
        name.extend_from_slice(subject);
        name.push(0);
        name.extend_from_slice(&key.day.to_be_bytes());
        name
    };
    if key.customers.is_empty() {
        return vec![name(b"i")];
    }
    key.customers
        .iter()
        .map(|c| name(&[b"c", c.as_str().as_bytes()].concat()))
        .collect()
}

/// The wall clock in milliseconds: when a key is made (erasure destroys the keys made
/// before it was asked for).
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What sealing made: (check, nonce, ciphertext).
type Sealed = (Vec<u8>, Vec<u8>, Vec<u8>);

fn seal_bytes(ring: &Keyring, key: &TextKey, plaintext: &[u8]) -> Result<Sealed, KeyringError> {
    let names = names(key);
    let now_ms = wall_ms();
    let parts = names
        .iter()
        .map(|n| ring.get_or_create(n, now_ms))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(seal_with(ring, &names, &parts, plaintext))
}

/// As [`seal_bytes`] with the keys in the keyring's memory only; `None` when one is not.
fn seal_bytes_cached(ring: &Keyring, key: &TextKey, plaintext: &[u8]) -> Option<Sealed> {
    let names = names(key);
    let parts = names
        .iter()
        .map(|n| ring.cached(n).flatten())
        .collect::<Option<Vec<_>>>()?;
    Some(seal_with(ring, &names, &parts, plaintext))
}

fn seal_with(
    ring: &Keyring,
    names: &[Vec<u8>],
    parts: &[keyring::Key],
    plaintext: &[u8],
) -> Sealed {
    let data_key = keyring::combine(parts);
    let (nonce, ciphertext) = keyring::seal(&data_key, &names.concat(), plaintext);
    // Every reader of the new event (the stream hub, search, the outbox, webhooks) opens
    // it within moments: they recall it instead of each decrypting it again.
    ring.remember(&nonce, plaintext);
    (keyring::check_of(&data_key).to_vec(), nonce, ciphertext)
}

/// `Ok(None)`: a key is gone (or was made again since): erased. A text that does not
/// open with the cached keys is tried once more with the keys as the storage has them now
/// (in a cluster, another node may have made a key this one cached as missing).
fn open_bytes(
    ring: &Keyring,
    key: &TextKey,
    check: &[u8],
    nonce: &[u8],
    ciphertext: &[u8],
) -> Result<Option<Vec<u8>>, KeyringError> {
    if let Some(plaintext) = ring.recall(nonce) {
        return Ok(Some(plaintext));
    }
    let names = names(key);
    for fresh in [false, true] {
        let mut parts = Vec::with_capacity(names.len());
        for name in &names {
            let part = if fresh {
                ring.get_fresh(name)?
            } else {
                ring.get(name)?
            };
            match part {
                Some(k) => parts.push(k),
                None => break,
            }
        }
        if parts.len() < names.len() {
            continue;
        }
        let data_key = keyring::combine(&parts);
        if keyring::check_of(&data_key) != check {
            continue;
        }
        return Ok(keyring::open(&data_key, &names.concat(), nonce, ciphertext));
    }
    Ok(None)
}

/// As [`open_bytes`] from the keyring's memory only: `Some(opened)` when it can tell
/// (the text remembered, its keys held, or — the keyring being authoritative — a key
/// known gone or made again), `None` when only the storage can.
#[allow(clippy::option_option)]
fn open_bytes_cached(
    ring: &Keyring,
    key: &TextKey,
    check: &[u8],
    nonce: &[u8],
    ciphertext: &[u8],
) -> Option<Option<Vec<u8>>> {
    if let Some(plaintext) = ring.recall(nonce) {
        return Some(Some(plaintext));
    }
    let names = names(key);
    let mut parts = Vec::with_capacity(names.len());
    for name in &names {
        match ring.cached(name)? {
            Some(k) => parts.push(k),
            None => return Some(None),
        }
    }
    let data_key = keyring::combine(&parts);
    if keyring::check_of(&data_key) != check {
        return ring.authoritative().then_some(None);
    }
    Some(keyring::open(&data_key, &names.concat(), nonce, ciphertext))
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::text::DAY_MS;

    fn n(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s).unwrap()
    }

    #[test]
    fn erasing_one_customer_erases_their_texts_and_no_one_elses() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Sealer::new(Arc::new(Keyring::open(dir.path()).unwrap()));
        let org = OrgId::random();
        let (ann, bob) = (n("+16135550101"), n("+16135550102"));
        let sealed = |customers: Vec<PhoneNumber>, words: &str| {
            let mut t = Text::new(words, TextKey::new(org, customers, 5 * DAY_MS));
            let mut one = [&mut t];
            for text in one.iter_mut() {
                let mut e = Wrap(text.clone());
                sealer.seal_event_blocking(&mut e).unwrap();
                **text = e.0;
            }
            t
        };
        let ann_text = sealed(vec![ann.clone()], "ann's order");
        let bob_text = sealed(vec![bob.clone()], "bob's order");
        let group_text = sealed(vec![ann.clone(), bob.clone()], "both");
        let chat = sealed(vec![], "internal");
        assert!(matches!(ann_text, Text::Sealed { .. }));
        let opened = |t: &Text| {
            let mut t = t.clone();
            sealer.open_blocking(&mut t);
            t
        };
        assert_eq!(opened(&ann_text), "ann's order");
        assert_eq!(opened(&group_text), "both");

        assert_eq!(
            sealer
                .erase_customer_blocking(org, &ann, wall_ms() + 1)
                .unwrap(),
            1
        );
        assert!(opened(&ann_text).is_erased());
        assert!(
            opened(&group_text).is_erased(),
            "a group text needs every member's key"
        );
        assert_eq!(opened(&bob_text), "bob's order");
        assert_eq!(opened(&chat), "internal");
        // A new text of ann makes a new key; the old one stays erased.
        let again = sealed(vec![ann.clone()], "new");
        assert_eq!(opened(&again), "new");
        assert!(opened(&ann_text).is_erased());

        // Retention: every key of the organization before day 6.
        assert!(sealer.erase_before_blocking(org, 6).unwrap() >= 3);
        assert!(opened(&bob_text).is_erased());
        assert!(opened(&chat).is_erased());
        assert_eq!(
            sealer.organizations_blocking().unwrap(),
            Vec::<OrgId>::new()
        );
    }

    #[test]
    fn a_body_sealed_under_a_text_key_is_erased_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Sealer::new(Arc::new(Keyring::open(dir.path()).unwrap()));
        let org = OrgId::random();
        let key = TextKey::new(org, vec![n("+16135550101")], 0);
        let body = sealer
            .seal_body_blocking(&key, b"{\"text\":\"hi\"}")
            .unwrap();
        assert_eq!(
            sealer.open_body_blocking(&key, &body).unwrap(),
            b"{\"text\":\"hi\"}"
        );
        sealer
            .erase_customer_blocking(org, &n("+16135550101"), wall_ms() + 1)
            .unwrap();
        assert_eq!(sealer.open_body_blocking(&key, &body), None);
        assert_eq!(
            Sealer::clear().open_body_blocking(&key, b"plain").unwrap(),
            b"plain"
        );
    }

    #[test]
    fn only_texts_whose_keys_are_in_memory_seal_and_open_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let org = OrgId::random();
        let ann = n("+16135550101");
        let key = TextKey::new(org, vec![ann.clone()], 5 * DAY_MS);
        let sealer = Sealer::new(Arc::new(Keyring::open(dir.path()).unwrap()));
        let mut first = Wrap(Text::new("first", key.clone()));
        assert!(
            !sealer.seal_event_cached(&mut first),
            "no key yet: it must be made"
        );
        assert_eq!(first.0, "first", "left as it was");
        sealer.seal_event_blocking(&mut first).unwrap();
        let mut second = Wrap(Text::new("second", key.clone()));
        assert!(
            sealer.seal_event_cached(&mut second),
            "its key is in memory now"
        );
        assert!(matches!(second.0, Text::Sealed { .. }));
        drop(sealer);

        // Opened again: nothing in memory, so only the storage can open the first text.
        let sealer = Sealer::new(Arc::new(Keyring::open(dir.path()).unwrap()));
        let mut text = Wrap(first.0.clone());
        assert!(!sealer.open_event_cached(&mut text));
        assert!(matches!(text.0, Text::Sealed { .. }), "left sealed");
        sealer.open_event_blocking(&mut text);
        assert_eq!(text.0, "first");
        let mut text = Wrap(second.0.clone());
        assert!(
            sealer.open_event_cached(&mut text),
            "the key was read: in memory"
        );
        assert_eq!(text.0, "second");

        // This keyring is the only writer of its keys: a key it destroyed is known gone
        // without asking the storage.
        sealer
            .erase_customer_blocking(org, &ann, wall_ms() + 1)
            .unwrap();
        let mut text = Wrap(first.0.clone());
        assert!(sealer.open_event_cached(&mut text));
        assert!(text.0.is_erased());
    }

    /// A cluster's key store whose every read and write waits until the test opens its
    /// gate (at most [`Gated::PATIENCE`], then fails): a call made on the executor's only
    /// thread would wait there for a gate only that thread can open.
    #[derive(Default)]
    struct Gated {
        keys: std::sync::Mutex<std::collections::BTreeMap<Vec<u8>, Vec<u8>>>,
        open: std::sync::Mutex<bool>,
        opened: std::sync::Condvar,
        calls: std::sync::atomic::AtomicUsize,
    }

    impl Gated {
        const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

        fn set(&self, open: bool) {
            *self.open.lock().unwrap() = open;
            self.opened.notify_all();
        }

        fn pass(&self) -> Result<(), KeyringError> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let open = self.open.lock().unwrap();
            let (open, _) = self
                .opened
                .wait_timeout_while(open, Self::PATIENCE, |open| !*open)
                .unwrap();
            if *open {
                Ok(())
            } else {
                Err(KeyringError::Storage(
                    "asked on the executor's thread: the gate never opened".into(),
                ))
            }
        }
    }

    impl keyring::KeyBackend for Gated {
        fn get(&self, name: &[u8]) -> Result<Option<Vec<u8>>, KeyringError> {
            self.pass()?;
            Ok(self.keys.lock().unwrap().get(name).cloned())
        }
        fn create(&self, name: &[u8], record: &[u8]) -> Result<Vec<u8>, KeyringError> {
            self.pass()?;
            let mut keys = self.keys.lock().unwrap();
            Ok(keys
                .entry(name.to_vec())
                .or_insert_with(|| record.to_vec())
                .clone())
        }
        fn list(&self, prefix: &[u8]) -> Result<Vec<keyring::Named>, KeyringError> {
            let keys = self.keys.lock().unwrap();
            Ok(keys
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect())
        }
        fn destroy(&self, names: &[Vec<u8>]) -> Result<(), KeyringError> {
            let mut keys = self.keys.lock().unwrap();
            for name in names {
                keys.remove(name);
            }
            Ok(())
        }
    }

    #[test]
    fn async_sealing_and_opening_never_wait_on_the_key_store_on_the_executor() {
        let store = Arc::new(Gated::default());
        let key = TextKey::new(OrgId::random(), vec![n("+16135550101")], 0);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        // `op` first (it reaches the closed gate), then the task that opens it: both on
        // the runtime's one thread, so the gate opens only if `op` waits elsewhere.
        let through_the_gate =
            |op: std::pin::Pin<Box<dyn std::future::Future<Output = Text> + '_>>| {
                store.set(false);
                let before = store.calls.load(std::sync::atomic::Ordering::SeqCst);
                let open_gate = async {
                    while store.calls.load(std::sync::atomic::Ordering::SeqCst) == before {
                        tokio::task::yield_now().await;
                    }
                    store.set(true);
                };
                rt.block_on(async { tokio::join!(op, open_gate).0 })
            };

        // Trusting what they read for the whole test: only a first use asks the store.
        let node = || {
            let ring =
                Keyring::remote_trusting(store.clone(), std::time::Duration::from_secs(3_600));
            Sealer::new(Arc::new(ring))
        };
        let sealer = node();
        let sealed = through_the_gate(Box::pin(async {
            let mut e = Wrap(Text::new("hello", key.clone()));
            sealer
                .seal_event(&mut e)
                .await
                .expect("sealed off the executor");
            e.0
        }));
        assert!(matches!(sealed, Text::Sealed { .. }));

        // Another node: the key is only in the store.
        let other = node();
        let opened = through_the_gate(Box::pin(async {
            let mut e = Wrap(sealed.clone());
            other.open_event(&mut e).await;
            e.0
        }));
        assert_eq!(opened, "hello");

        // In memory now on both: no store call at all.
        let calls = store.calls.load(std::sync::atomic::Ordering::SeqCst);
        store.set(false);
        let again = rt.block_on(async {
            let mut e = Wrap(Text::new("again", key.clone()));
            sealer.seal_event(&mut e).await.unwrap();
            other.open_event(&mut e).await;
            e.0
        });
        assert_eq!(again, "again");
        assert_eq!(store.calls.load(std::sync::atomic::Ordering::SeqCst), calls);
    }

    struct Wrap(Text);
    impl Texts for Wrap {
        fn texts_mut(&mut self) -> Vec<&mut Text> {
            vec![&mut self.0]
        }
    }
}
