//! Sessions: `session-<id>` holds a session's start (its organization, user, the BLAKE3
//! hash of its secret, its expiry) and maybe its revocation; `sessions-<user>` indexes a
//! user's sessions so that all of them can be ended at once. The records are the domain's
//! [`SessionEvent`]s; records stored before they were (an enum encoded whole) still read.

use std::sync::Arc;

use actors::event_codec;
use domain::session::{
    SessionEvent, SessionOpened, SessionRevoked, SessionStarted, SESSION_CATEGORY,
    SESSION_INDEX_CATEGORY,
};
use domain::{OrgId, UserId};
use eventlog::{Direction, EventData, EventStore, ExpectedVersion, RecordedEvent, StreamName};
use rand_core::{OsRng, RngCore};
use uuid::Uuid;

use crate::{now_ms, RecordError};

/// A valid session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub id: Uuid,
    pub org: OrgId,
    pub user: UserId,
    pub expires_at_ms: u64,
}

fn index_of(user: UserId) -> Result<StreamName, RecordError> {
    StreamName::from_parts(SESSION_INDEX_CATEGORY, user.to_string()).map_err(RecordError::internal)
}

fn stream_of(id: Uuid) -> Result<StreamName, RecordError> {
    StreamName::from_parts(SESSION_CATEGORY, id.simple()).map_err(RecordError::internal)
}

/// The log record of `event` (a fresh event id: every session event is written once).
fn record(event: &SessionEvent) -> Result<EventData, RecordError> {
    event_codec::encode(event, Uuid::new_v4(), eventlog::Metadata::default())
        .map_err(RecordError::internal)
}

/// A stored session record, whichever version it was written in.
fn read(record: &RecordedEvent) -> Result<SessionEvent, RecordError> {
    event_codec::decode::<SessionEvent>(record).map_err(RecordError::internal)
}

/// Starts a session for `user` lasting `ttl_ms`, and indexes it: its id, its secret (to
/// be shown once; only its hash is stored) and its expiry.
///
/// # Errors
/// The log's.
pub async fn start(
    store: &Arc<dyn EventStore>,
    org: OrgId,
    user: UserId,
    ttl_ms: u64,
) -> Result<(Uuid, [u8; 32], u64), RecordError> {
    let id = Uuid::new_v4();
    let mut secret = [0u8; 32];
    OsRng.fill_bytes(&mut secret);
    let expires_at_ms = now_ms().saturating_add(ttl_ms);
    let started = SessionEvent::SessionStarted(SessionStarted {
        org,
        user,
        secret_hash: *blake3::hash(&secret).as_bytes(),
        expires_at_ms,
    });
    store
        .append(
            stream_of(id)?,
            ExpectedVersion::NoStream,
            vec![record(&started)?],
        )
        .await?;
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
        .await?;
    Ok((id, secret, expires_at_ms))
}

/// The session `id` is, if `secret` is its secret and it is unexpired and not revoked.
///
/// # Errors
/// The log's, or a record that is not a session's.
pub async fn load(
    store: &Arc<dyn EventStore>,
    id: Uuid,
    secret: &[u8; 32],
) -> Result<Option<Session>, RecordError> {
    let events =
        eventlog::store::nonblocking::read_stream(store, &stream_of(id)?, 0, Direction::Forward, 8)
            .await?;
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
            SessionEvent::SessionRevoked(_) => return Ok(None),
            SessionEvent::SessionOpened(_) => {
                return Err(RecordError::Internal(format!(
                    "session-{} holds a SessionOpened",
                    id.simple()
                )))
            }
        }
    }
    Ok(session.filter(|s| s.expires_at_ms > now_ms()))
}

/// Whether session `id` was revoked already.
///
/// # Errors
/// The log's.
pub async fn ended(store: &Arc<dyn EventStore>, id: Uuid) -> Result<bool, RecordError> {
    let events =
        eventlog::store::nonblocking::read_stream(store, &stream_of(id)?, 0, Direction::Forward, 8)
            .await?;
    Ok(events.iter().any(|e| e.event_type == "SessionRevoked"))
}

/// Revokes session `id` (which must have started).
///
/// # Errors
/// The log's (`StreamNotFound`-like refusals for a session never started).
pub async fn revoke(store: &Arc<dyn EventStore>, id: Uuid) -> Result<(), RecordError> {
    let revoked = SessionEvent::SessionRevoked(SessionRevoked { at_ms: now_ms() });
    store
        .append(
            stream_of(id)?,
            ExpectedVersion::StreamExists,
            vec![record(&revoked)?],
        )
        .await?;
    Ok(())
}

/// Every session `user` opened since the index exists, oldest first.
///
/// # Errors
/// The log's, or a record that is not an index entry.
pub async fn opened(
    store: &Arc<dyn EventStore>,
    user: UserId,
) -> Result<Vec<SessionOpened>, RecordError> {
    let stream = index_of(user)?;
    let mut from = 0;
    let mut out = Vec::new();
    loop {
        let page = eventlog::store::nonblocking::read_stream(
            store,
            &stream,
            from,
            Direction::Forward,
            256,
        )
        .await?;
        let Some(last) = page.last() else {
            return Ok(out);
        };
        from = last.version + 1;
        for e in &page {
            let SessionEvent::SessionOpened(opened) = read(e)? else {
                return Err(RecordError::Internal(format!(
                    "{stream} holds a {}",
                    e.event_type
                )));
            };
            out.push(opened);
        }
    }
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

    const SECRET: [u8; 32] = [7u8; 32];

    /// A session started, and indexed, the old way (its secret is [`SECRET`]).
    async fn start_the_old_way(
        store: &Arc<dyn EventStore>,
        org: OrgId,
        user: UserId,
        expires_at_ms: u64,
    ) -> Uuid {
        let id = Uuid::new_v4();
        let secret = SECRET;
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
        id
    }

    #[tokio::test]
    async fn sessions_written_before_they_were_domain_events_still_work() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn EventStore> =
            Arc::new(RocksLog::open(dir.path().join("log"), LogOptions::default()).unwrap());
        let (org, user) = (OrgId::random(), UserId::random());
        let expires_at_ms = now_ms() + 60_000;
        let id = start_the_old_way(&store, org, user, expires_at_ms).await;
        let other = start_the_old_way(&store, org, user, expires_at_ms).await;

        let session = load(&store, id, &SECRET).await.unwrap();
        assert_eq!(
            session,
            Some(Session {
                id,
                org,
                user,
                expires_at_ms
            })
        );
        // The old index is read, and the other old session then holds a new (version 2)
        // revocation after its old start.
        let opened = opened(&store, user).await.unwrap();
        assert_eq!(
            opened.iter().map(|o| o.session).collect::<Vec<_>>(),
            [id, other]
        );
        revoke(&store, other).await.unwrap();
        assert_eq!(load(&store, other, &SECRET).await.unwrap(), None);
        assert!(ended(&store, other).await.unwrap());
        assert!(load(&store, id, &SECRET).await.unwrap().is_some());

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
        assert_eq!(load(&store, id, &SECRET).await.unwrap(), None);
    }

    #[test]
    fn old_records_read_as_the_domain_events_and_new_ones_are_version_2() {
        let (org, user) = (OrgId::random(), UserId::random());
        let recorded =
            |data: EventData| RecordedEvent::unchained(stream_of(Uuid::nil()).unwrap(), 0, data);
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
