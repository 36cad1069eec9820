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

    /// Seals every readable text of `event` that names its key; keys are made as needed.
    ///
    /// # Errors
    /// When a key cannot be made (the keyring's storage failed): nothing may be written.
    pub fn seal_event<E: Texts>(&self, event: &mut E) -> Result<(), KeyringError> {
        let Some(ring) = &self.keyring else {
            return Ok(());
        };
        for text in event.texts_mut() {
            if let Text::Plain {
                text: words,
                key: Some(key),
            } = text
            {
                let (check, nonce, ciphertext) = seal_bytes(ring, key, words.as_bytes())?;
                *text = Text::Sealed {
                    key: key.clone(),
                    check,
                    nonce,
                    ciphertext,
                };
            }
        }
        Ok(())
    }

    /// Seals one text (see [`Sealer::seal_event`]).
    ///
    /// # Errors
    /// When a key cannot be made.
    pub fn seal(&self, text: &mut Text) -> Result<(), KeyringError> {
        struct One<'a>(&'a mut Text);
        impl Texts for One<'_> {
            fn texts_mut(&mut self) -> Vec<&mut Text> {
                vec![&mut *self.0]
            }
        }
        self.seal_event(&mut One(text))
    }

    /// Opens every sealed text of `event`: readable again, or [`Text::Erased`] when a key
    /// it needs is gone. A keyring that cannot be read leaves the text sealed (and logs).
    pub fn open_event<E: Texts>(&self, event: &mut E) {
        for text in event.texts_mut() {
            self.open(text);
        }
    }

    /// Opens one text (see [`Sealer::open_event`]).
    pub fn open(&self, text: &mut Text) {
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
            Ok(Some(bytes)) => {
                *text = Text::Plain {
                    text: String::from_utf8_lossy(&bytes).into_owned(),
                    key: Some(key.clone()),
                };
            }
            Ok(None) => *text = Text::Erased { key: key.clone() },
            Err(e) => tracing::error!(error = %e, "cannot read the keyring: a text stays sealed"),
        }
    }

    /// Seals arbitrary bytes (e.g. a webhook body quoting a text) under `key`: the format
    /// byte, check, nonce and ciphertext in one buffer for [`Sealer::open_body`]. Without
    /// a keyring, the bytes as they are.
    ///
    /// # Errors
    /// When a key cannot be made.
    pub fn seal_body(&self, key: &TextKey, body: &[u8]) -> Result<Vec<u8>, KeyringError> {
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

    /// Opens what [`Sealer::seal_body`] sealed under `key`; `None` once the key is gone.
    pub fn open_body(&self, key: &TextKey, sealed: &[u8]) -> Option<Vec<u8>> {
        let Some(ring) = &self.keyring else {
            return Some(sealed.to_vec());
        };
        match sealed {
            [SEALED_BODY, rest @ ..] if rest.len() >= 32 => {
                let (check, rest) = rest.split_at(8);
                let (nonce, ciphertext) = rest.split_at(24);
                open_bytes(ring, key, check, nonce, ciphertext)
                    .ok()
                    .flatten()
            }
            _ => None,
        }
    }

    /// Destroys every key of `customer`'s texts in `org` made before `before_ms`: their
    /// texts, in every conversation and stream, read as erased from now on. Returns how
    /// many keys were destroyed.
    ///
    /// # Errors
    /// When the keyring cannot be written, or texts are not sealed.
    pub fn erase_customer(
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
    pub fn erase_before(&self, org: OrgId, day: u32) -> Result<usize, KeyringError> {
        let ring = self.keyring.as_ref().ok_or(KeyringError::ReadOnly)?;
        ring.destroy(&org_prefix(org), |name, _| day_of_name(name) < day)
    }

    /// The organizations that have keys (retention looks at each).
    ///
    /// # Errors
    /// When the keyring cannot be read.
    pub fn organizations(&self) -> Result<Vec<OrgId>, KeyringError> {
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
    let data_key = keyring::combine(&parts);
    let (nonce, ciphertext) = keyring::seal(&data_key, &names.concat(), plaintext);
    // Every reader of the new event (the stream hub, search, the outbox, webhooks) opens
    // it within moments: they recall it instead of each decrypting it again.
    ring.remember(&nonce, plaintext);
    Ok((keyring::check_of(&data_key).to_vec(), nonce, ciphertext))
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
                sealer.seal_event(&mut e).unwrap();
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
            sealer.open(&mut t);
            t
        };
        assert_eq!(opened(&ann_text), "ann's order");
        assert_eq!(opened(&group_text), "both");

        assert_eq!(sealer.erase_customer(org, &ann, wall_ms() + 1).unwrap(), 1);
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
        assert!(sealer.erase_before(org, 6).unwrap() >= 3);
        assert!(opened(&bob_text).is_erased());
        assert!(opened(&chat).is_erased());
        assert_eq!(sealer.organizations().unwrap(), Vec::<OrgId>::new());
    }

    #[test]
    fn a_body_sealed_under_a_text_key_is_erased_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Sealer::new(Arc::new(Keyring::open(dir.path()).unwrap()));
        let org = OrgId::random();
        let key = TextKey::new(org, vec![n("+16135550101")], 0);
        let body = sealer.seal_body(&key, b"{\"text\":\"hi\"}").unwrap();
        assert_eq!(sealer.open_body(&key, &body).unwrap(), b"{\"text\":\"hi\"}");
        sealer
            .erase_customer(org, &n("+16135550101"), wall_ms() + 1)
            .unwrap();
        assert_eq!(sealer.open_body(&key, &body), None);
        assert_eq!(Sealer::clear().open_body(&key, b"plain").unwrap(), b"plain");
    }

    struct Wrap(Text);
    impl Texts for Wrap {
        fn texts_mut(&mut self) -> Vec<&mut Text> {
            vec![&mut self.0]
        }
    }
}
