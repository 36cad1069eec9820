//! Bearer tokens: `<session id>.<secret>`, stored as a hash with an expiry, revocable.
//!
//! The records (`session-<id>`: started, revoked; `sessions-<user>`: opened) are the
//! domain's [`SessionEvent`]s; this module appends and reads them.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use actors::event_codec;
use domain::session::{
    SessionEvent, SessionOpened, SessionRevoked, SessionStarted, SESSION_CATEGORY,
    SESSION_INDEX_CATEGORY,
};
use domain::{OrgId, UserId};
use eventlog::{Direction, EventData, EventStore, ExpectedVersion, RecordedEvent, StreamName};
use rand_core::{OsRng, RngCore};
use uuid::Uuid;

use crate::error::ApiError;

/// How long a token lives.
pub const SESSION_TTL_MS: u64 = 12 * 60 * 60 * 1000;

fn index_of(user: UserId) -> Result<StreamName, ApiError> {
    StreamName::from_parts(SESSION_INDEX_CATEGORY, user.to_string()).map_err(ApiError::internal)
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
        .map_or(0, |d| d.as_millis() as u64)
}

fn stream_of(id: Uuid) -> Result<StreamName, ApiError> {
    StreamName::from_parts(SESSION_CATEGORY, id.simple()).map_err(ApiError::internal)
}

/// The log record of `event` (a fresh event id: every session event is written once).
fn record(event: &SessionEvent) -> Result<EventData, ApiError> {
    event_codec::encode(event, Uuid::new_v4(), eventlog::Metadata::default())
        .map_err(ApiError::internal)
}

/// A stored session record, whichever version it was written in.
fn read(record: &RecordedEvent) -> Result<SessionEvent, ApiError> {
    event_codec::decode::<SessionEvent>(record).map_err(ApiError::internal)
}

async fn append(
    store: &Arc<dyn EventStore>,
    id: Uuid,
    expected: ExpectedVersion,
    event: &SessionEvent,
) -> Result<(), ApiError> {
    store
        .append(stream_of(id)?, expected, vec![record(event)?])
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
    let started = SessionEvent::SessionStarted(SessionStarted {
        org,
        user,
        secret_hash: *blake3::hash(&secret).as_bytes(),
        expires_at_ms,
    });
    append(store, id, ExpectedVersion::NoStream, &started).await?;
    // The user's index of sessions, so that all of them can be ended at once.
    let opened = SessionEvent::SessionOpened(SessionOpened {
        session: id,
        expires_at_ms,
    });
    store
        .append(
            index_of(user)?,
            ExpectedVersion::Any,
            vec![record(&opened)?],
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
                let SessionEvent::SessionOpened(opened) = read(e)? else {
                    return Err(ApiError::internal(format!(
                        "{stream} holds a {}",
                        e.event_type
                    )));
                };
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
        match read(e)? {
            SessionEvent::SessionStarted(SessionStarted {
                org,
                user,
                secret_hash,
                expires_at_ms,
            }) => {
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
            SessionEvent::SessionRevoked(_) => return Err(ApiError::unauthenticated()),
            SessionEvent::SessionOpened(_) => {
                return Err(ApiError::internal(format!(
                    "session-{} holds a SessionOpened",
                    id.simple()
                )))
            }
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
        &SessionEvent::SessionRevoked(SessionRevoked { at_ms: now_ms() }),
    )
    .await
}

#[cfg(test)]
mod tests {
    use eventlog::{codec, LogOptions, RocksLog};
    use serde::Serialize;

    use super::*;

    /// The records as this module wrote them before they were domain events: the enum of
    /// `session-<id>` (verbatim) encoded whole, and the index entry as a bare struct, all
    /// under version 1.
    #[derive(Serialize)]
    enum OldSessionEvent {
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

    #[derive(Serialize)]
    struct OldSessionOpened {
        session: Uuid,
        expires_at_ms: u64,
    }

    fn old(event_type: &str, payload: &impl Serialize) -> EventData {
        EventData::new(event_type, 1, codec::encode(payload).unwrap())
    }

    /// A session started, and indexed, the old way: its token.
    async fn start_the_old_way(
        store: &Arc<dyn EventStore>,
        org: OrgId,
        user: UserId,
        expires_at_ms: u64,
    ) -> (Uuid, String) {
        let id = Uuid::new_v4();
        let secret = [7u8; 32];
        let started = OldSessionEvent::Started {
            org,
            user,
            secret_hash: *blake3::hash(&secret).as_bytes(),
            expires_at_ms,
        };
        store
            .append(
                stream_of(id).unwrap(),
                ExpectedVersion::NoStream,
                vec![old("SessionStarted", &started)],
            )
            .await
            .unwrap();
        let opened = OldSessionOpened {
            session: id,
            expires_at_ms,
        };
        store
            .append(
                index_of(user).unwrap(),
                ExpectedVersion::Any,
                vec![old("SessionOpened", &opened)],
            )
            .await
            .unwrap();
        (
            id,
            format!("{}.{}", id.simple(), eventlog::hex::encode(&secret)),
        )
    }

    #[tokio::test]
    async fn sessions_written_before_they_were_domain_events_still_work() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn EventStore> =
            Arc::new(RocksLog::open(dir.path().join("log"), LogOptions::default()).unwrap());
        let (org, user) = (OrgId::random(), UserId::random());
        let expires_at_ms = now_ms() + 60_000;
        let (id, token) = start_the_old_way(&store, org, user, expires_at_ms).await;
        let (other, other_token) = start_the_old_way(&store, org, user, expires_at_ms).await;

        let cache = SessionCache::default();
        let session = cache.check(&store, &token).await.unwrap();
        assert_eq!(
            session,
            Session {
                id,
                org,
                user,
                expires_at_ms
            }
        );
        // The old index is read: a password change ends the other old session, which then
        // holds a new (version 2) revocation after its old start.
        assert_eq!(cache.revoke_all_but(&store, user, id).await.unwrap(), 1);
        assert!(cache.check(&store, &other_token).await.is_err());
        assert!(ended(&store, other).await.unwrap());
        assert!(cache.check(&store, &token).await.is_ok());

        // An old revocation ends a session too.
        store
            .append(
                stream_of(id).unwrap(),
                ExpectedVersion::StreamExists,
                vec![old(
                    "SessionRevoked",
                    &OldSessionEvent::Revoked { at_ms: 1 },
                )],
            )
            .await
            .unwrap();
        assert!(SessionCache::default().check(&store, &token).await.is_err());
    }

    #[test]
    fn old_records_read_as_the_domain_events_and_new_ones_are_version_2() {
        let (org, user) = (OrgId::random(), UserId::random());
        let recorded = |data: EventData| RecordedEvent {
            stream: stream_of(Uuid::nil()).unwrap(),
            version: 0,
            position: 0,
            timestamp_us: 0,
            prev_hash: [0; 32],
            hash: [0; 32],
            event_id: data.event_id,
            event_type: data.event_type,
            schema_version: data.schema_version,
            metadata: data.metadata,
            payload: data.payload,
        };
        let started = SessionStarted {
            org,
            user,
            secret_hash: [3; 32],
            expires_at_ms: 9,
        };
        let old_started = OldSessionEvent::Started {
            org,
            user,
            secret_hash: [3; 32],
            expires_at_ms: 9,
        };
        assert_eq!(
            read(&recorded(old("SessionStarted", &old_started))).unwrap(),
            SessionEvent::SessionStarted(started.clone())
        );
        let old_revoked = OldSessionEvent::Revoked { at_ms: 5 };
        assert_eq!(
            read(&recorded(old("SessionRevoked", &old_revoked))).unwrap(),
            SessionEvent::SessionRevoked(SessionRevoked { at_ms: 5 })
        );
        // A variant under the other's name is refused, not misread.
        assert!(read(&recorded(old("SessionStarted", &old_revoked))).is_err());

        // Written now: the bare struct, as version 2.
        let new = record(&SessionEvent::SessionStarted(started.clone())).unwrap();
        assert_eq!(
            (new.event_type.as_str(), new.schema_version),
            ("SessionStarted", 2)
        );
        assert_eq!(new.payload, codec::encode(&started).unwrap());
        assert_eq!(
            read(&recorded(new)).unwrap(),
            SessionEvent::SessionStarted(started)
        );

        // The index entry was a bare struct already: the same bytes, still version 1.
        let session = Uuid::new_v4();
        let opened = record(&SessionEvent::SessionOpened(SessionOpened {
            session,
            expires_at_ms: 9,
        }))
        .unwrap();
        assert_eq!(
            (opened.event_type.as_str(), opened.schema_version),
            ("SessionOpened", 1)
        );
        assert_eq!(
            opened.payload,
            codec::encode(&OldSessionOpened {
                session,
                expires_at_ms: 9
            })
            .unwrap()
        );
    }
}
