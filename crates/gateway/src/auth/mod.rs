//! Authentication: who is calling.
//!
//! - `credentials`: a login (an email, unique across the service) bound to one user of one
//!   organization, with an argon2 password hash. Stream `credential-<email>`.
//! - `sessions`: bearer tokens `<session id>.<secret>`; only a hash of the secret is stored
//!   (stream `session-<id>`), with an expiry; logout revokes.
//! - `extractor`: [`Authenticated`], the caller of a request, with the role the directory
//!   gives them now (a role change applies to the next request), and the [`extractor::RoleCache`]
//!   that spares each request a directory round trip.

pub mod credentials;
pub mod extractor;
pub mod sessions;

pub use extractor::Authenticated;

/// Keeps this node's authentication caches true to what other nodes of a cluster write:
/// a session revoked elsewhere is forgotten here (and its streams closed), a role changed
/// elsewhere is read again. Follows the log's live feed; if it falls behind, it forgets
/// everything cached. Runs until the log closes.
pub async fn follow_peer_writes(state: crate::app::AppState) {
    use tokio::sync::broadcast::error::RecvError;
    let Some(mut live) = state.store().live() else {
        return;
    };
    loop {
        match live.recv().await {
            Ok(batch) => {
                for e in batch.iter() {
                    match (e.stream.category(), e.event_type.as_str()) {
                        ("session", "SessionRevoked") => {
                            if let Ok(id) = uuid::Uuid::try_parse(e.stream.id()) {
                                state.sessions.revoked_elsewhere(id);
                            }
                        }
                        ("directory", "RoleChanged") => {
                            let changed = actors::event_codec::decode::<domain::DirectoryEvent>(e);
                            let org = e.stream.id().parse::<domain::OrgId>();
                            if let (Ok(domain::DirectoryEvent::RoleChanged(c)), Ok(org)) =
                                (changed, org)
                            {
                                state.roles.forget(org, c.user);
                            }
                        }
                        _ => {}
                    }
                }
            }
            Err(RecvError::Lagged(_)) => {
                state.sessions.forget_all();
                state.roles.forget_all();
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
