//! Bearer tokens: `<session id>.<secret>`, stored as a hash with an expiry, revocable.
//!
//! The records are `records::sessions`' (the domain's `SessionEvent`s); this module turns
//! them into tokens, checks tokens (with a cache) and ends the streams of a revoked session.

use std::sync::Arc;

use domain::{OrgId, UserId};
use eventlog::EventStore;
use uuid::Uuid;

use crate::error::ApiError;
pub use records::now_ms;
pub use records::sessions::Session;

/// How long a token lives.
pub const SESSION_TTL_MS: u64 = 12 * 60 * 60 * 1000;

/// Starts a session for `user` lasting `ttl_ms`; returns the token (shown once) and its
/// expiry.
///
/// # Errors
/// Internal errors only.
pub async fn start(
    store: &Arc<dyn EventStore>,
    org: OrgId,
    user: UserId,
    ttl_ms: u64,
) -> Result<(String, u64), ApiError> {
    let (id, secret, expires_at_ms) = records::sessions::start(store, org, user, ttl_ms).await?;
    Ok((
        format!("{}.{}", id.simple(), eventlog::hex::encode(&secret)),
        expires_at_ms,
    ))
}

/// Sessions verified since the process started, so that an authenticated request costs
/// no storage read. [`SessionCache::revoke`] drops the entry, and a check that read
/// storage while a revocation happened does not cache what it read; a revocation another
/// node of a cluster writes reaches this one through the log
/// ([`crate::auth::follow_peer_writes`] calls [`SessionCache::revoked_elsewhere`]).
#[derive(Default)]
pub struct SessionCache {
    known: std::sync::Mutex<std::collections::HashMap<Uuid, ([u8; 32], Session)>>,
    revocations: std::sync::atomic::AtomicU64,
    /// Per session with an open stream: what tells its streams that it ended.
    ends: std::sync::Mutex<std::collections::HashMap<Uuid, std::sync::Weak<SessionEndSender>>>,
}

type SessionEndSender = tokio::sync::watch::Sender<bool>;

/// Resolves when its session is revoked (logout): open streams hold one and close then.
pub struct SessionEnd(Arc<SessionEndSender>);

impl SessionEnd {
    /// Resolves once the session is revoked.
    pub async fn ended(&self) {
        let mut ended = self.0.subscribe();
        let _ = ended.wait_for(|e| *e).await;
    }
}

/// Sessions kept in a [`SessionCache`]; past this it starts over (and re-reads storage).
const MAX_CACHED_SESSIONS: usize = 100_000;

impl SessionCache {
    fn known(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<Uuid, ([u8; 32], Session)>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session a token opens, if it is genuine, unexpired and not revoked.
    ///
    /// # Errors
    /// `unauthenticated` (401) for any token that does not; internal errors.
    pub async fn check(
        &self,
        store: &Arc<dyn EventStore>,
        token: &str,
    ) -> Result<Session, ApiError> {
        use std::sync::atomic::Ordering;
        let (id, secret) = parse(token)?;
        let cached = self.known().get(&id).copied();
        if let Some((secret_hash, session)) = cached {
            // blake3::Hash compares in constant time.
            return if blake3::Hash::from_bytes(secret_hash) == blake3::hash(&secret)
                && session.expires_at_ms > now_ms()
            {
                Ok(session)
            } else {
                Err(ApiError::unauthenticated())
            };
        }
        let before = self.revocations.load(Ordering::Acquire);
        let session = records::sessions::load(store, id, &secret)
            .await?
            .ok_or_else(ApiError::unauthenticated)?;
        let mut known = self.known();
        if self.revocations.load(Ordering::Acquire) == before {
            if known.len() >= MAX_CACHED_SESSIONS {
                known.clear();
            }
            known.insert(id, (*blake3::hash(&secret).as_bytes(), session));
        }
        Ok(session)
    }

    /// Revokes a session (logout). Revoking twice is fine.
    ///
    /// # Errors
    /// Internal errors only.
    pub async fn revoke(&self, store: &Arc<dyn EventStore>, id: Uuid) -> Result<(), ApiError> {
        use std::sync::atomic::Ordering;
        self.revocations.fetch_add(1, Ordering::AcqRel);
        self.known().remove(&id);
        let revoked = records::sessions::revoke(store, id)
            .await
            .map_err(ApiError::from);
        self.revocations.fetch_add(1, Ordering::AcqRel);
        self.known().remove(&id);
        if revoked.is_ok() {
            let end = self.ends().remove(&id).and_then(|w| w.upgrade());
            if let Some(end) = end {
                end.send_replace(true);
            }
        }
        revoked
    }

    /// Revokes every unexpired session of `user` but `keep` (after a password change);
    /// returns how many it revoked. Sessions opened before the index existed are not
    /// found here; they end at their expiry.
    ///
    /// # Errors
    /// Internal errors only.
    pub async fn revoke_all_but(
        &self,
        store: &Arc<dyn EventStore>,
        user: UserId,
        keep: Uuid,
    ) -> Result<usize, ApiError> {
        let now = now_ms();
        let mut revoked = 0;
        for opened in records::sessions::opened(store, user).await? {
            if opened.session != keep
                && opened.expires_at_ms > now
                && !records::sessions::ended(store, opened.session).await?
            {
                self.revoke(store, opened.session).await?;
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    /// Forgets session `id`, revoked by someone else (another node of a cluster): its
    /// next check reads storage, and its open streams close.
    pub fn revoked_elsewhere(&self, id: Uuid) {
        use std::sync::atomic::Ordering;
        self.revocations.fetch_add(1, Ordering::AcqRel);
        self.known().remove(&id);
        let end = self.ends().remove(&id).and_then(|w| w.upgrade());
        if let Some(end) = end {
            end.send_replace(true);
        }
    }

    /// Forgets every session (the follower of other nodes' writes fell behind).
    pub fn forget_all(&self) {
        use std::sync::atomic::Ordering;
        self.revocations.fetch_add(1, Ordering::AcqRel);
        self.known().clear();
    }

    fn ends(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<Uuid, std::sync::Weak<SessionEndSender>>>
    {
        self.ends.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What tells a stream of session `id` that the session was revoked.
    pub fn end_of(&self, id: Uuid) -> SessionEnd {
        let mut ends = self.ends();
        if let Some(end) = ends.get(&id).and_then(std::sync::Weak::upgrade) {
            return SessionEnd(end);
        }
        // Sessions whose streams have all closed leave a dead entry: drop those now and
        // then, so the map stays the size of the open sessions.
        if ends.len() >= 64 && ends.len().is_power_of_two() {
            ends.retain(|_, w| w.strong_count() > 0);
        }
        let end = Arc::new(tokio::sync::watch::Sender::new(false));
        ends.insert(id, Arc::downgrade(&end));
        SessionEnd(end)
    }
}

fn parse(token: &str) -> Result<(Uuid, [u8; 32]), ApiError> {
    let (id, secret) = token
        .split_once('.')
        .ok_or_else(ApiError::unauthenticated)?;
    let id = Uuid::try_parse(id).map_err(|_| ApiError::unauthenticated())?;
    let secret = eventlog::hex::decode::<32>(secret).ok_or_else(ApiError::unauthenticated)?;
    Ok((id, secret))
}
