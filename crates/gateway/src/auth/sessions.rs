//! Bearer tokens: `<session id>.<secret>`, stored as a hash with an expiry, revocable.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use domain::{OrgId, UserId};
use eventlog::{codec, Direction, EventData, EventStore, ExpectedVersion, StreamName};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiError;

/// How long a token lives.
pub const SESSION_TTL_MS: u64 = 12 * 60 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum SessionEvent {
    Started {
        org: OrgId,
        user: UserId,
        secret_hash: [u8; 32],
        expires_at_ms: u64,
    },
    Revoked {
        at_ms: u64,
    },
}

/// An entry of a user's index of sessions (stream `sessions-<user>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct SessionOpened {
    session: Uuid,
    expires_at_ms: u64,
}

fn index_of(user: UserId) -> Result<StreamName, ApiError> {
    StreamName::from_parts("sessions", user.to_string()).map_err(ApiError::internal)
}

/// A valid session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub id: Uuid,
    pub org: OrgId,
    pub user: UserId,
    pub expires_at_ms: u64,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn stream_of(id: Uuid) -> Result<StreamName, ApiError> {
    StreamName::from_parts("session", id.simple()).map_err(ApiError::internal)
}

async fn append(
    store: &Arc<dyn EventStore>,
    id: Uuid,
    expected: ExpectedVersion,
    e: &SessionEvent,
) -> Result<(), ApiError> {
    let event_type = match e {
        SessionEvent::Started { .. } => "SessionStarted",
        SessionEvent::Revoked { .. } => "SessionRevoked",
    };
    let payload = codec::encode(e).map_err(ApiError::internal)?;
    store
        .append(
            stream_of(id)?,
            expected,
            vec![EventData::new(event_type, 1, payload)],
        )
        .await
        .map_err(ApiError::from)?;
    Ok(())
}

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
    let id = Uuid::new_v4();
    let mut secret = [0u8; 32];
    OsRng.fill_bytes(&mut secret);
    let expires_at_ms = now_ms() + ttl_ms;
    let started = SessionEvent::Started {
        org,
        user,
        secret_hash: *blake3::hash(&secret).as_bytes(),
        expires_at_ms,
    };
    append(store, id, ExpectedVersion::NoStream, &started).await?;
    // The user's index of sessions, so that all of them can be ended at once.
    let opened = SessionOpened {
        session: id,
        expires_at_ms,
    };
    store
        .append(
            index_of(user)?,
            ExpectedVersion::Any,
            vec![EventData::new(
                "SessionOpened",
                1,
                codec::encode(&opened).map_err(ApiError::internal)?,
            )],
        )
        .await
        .map_err(ApiError::from)?;
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
        let session = load(store, id, &secret).await?;
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
        let revoked = revoke(store, id).await;
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
        let stream = index_of(user)?;
        let now = now_ms();
        let mut from = 0;
        let mut revoked = 0;
        loop {
            let page = eventlog::store::nonblocking::read_stream(
                store,
                &stream,
                from,
                Direction::Forward,
                256,
            )
            .await
            .map_err(ApiError::from)?;
            let Some(last) = page.last() else {
                return Ok(revoked);
            };
            from = last.version + 1;
            for e in &page {
                let opened: SessionOpened =
                    codec::decode(&e.payload).map_err(ApiError::internal)?;
                if opened.session != keep
                    && opened.expires_at_ms > now
                    && !ended(store, opened.session).await?
                {
                    self.revoke(store, opened.session).await?;
                    revoked += 1;
                }
            }
        }
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

/// The session `id` is, if `secret` is its secret and it is unexpired and not revoked.
async fn load(
    store: &Arc<dyn EventStore>,
    id: Uuid,
    secret: &[u8; 32],
) -> Result<Session, ApiError> {
    let events =
        eventlog::store::nonblocking::read_stream(store, &stream_of(id)?, 0, Direction::Forward, 8)
            .await
            .map_err(ApiError::from)?;
    let mut session = None;
    for e in &events {
        match codec::decode::<SessionEvent>(&e.payload).map_err(ApiError::internal)? {
            SessionEvent::Started {
                org,
                user,
                secret_hash,
                expires_at_ms,
            } => {
                // blake3::Hash compares in constant time.
                if blake3::Hash::from_bytes(secret_hash) == blake3::hash(secret) {
                    session = Some(Session {
                        id,
                        org,
                        user,
                        expires_at_ms,
                    });
                }
            }
            SessionEvent::Revoked { .. } => return Err(ApiError::unauthenticated()),
        }
    }
    match session {
        Some(s) if s.expires_at_ms > now_ms() => Ok(s),
        _ => Err(ApiError::unauthenticated()),
    }
}

/// Whether session `id` was revoked already.
async fn ended(store: &Arc<dyn EventStore>, id: Uuid) -> Result<bool, ApiError> {
    let events =
        eventlog::store::nonblocking::read_stream(store, &stream_of(id)?, 0, Direction::Forward, 8)
            .await
            .map_err(ApiError::from)?;
    Ok(events.iter().any(|e| e.event_type == "SessionRevoked"))
}

/// Revokes a session in the log; callers go through [`SessionCache::revoke`].
async fn revoke(store: &Arc<dyn EventStore>, id: Uuid) -> Result<(), ApiError> {
    append(
        store,
        id,
        ExpectedVersion::StreamExists,
        &SessionEvent::Revoked { at_ms: now_ms() },
    )
    .await
}
