//! The caller of a request, from its bearer token.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use domain::{OrgId, Role, UserId};

use crate::app::AppState;
use crate::auth::sessions::{self, Session};
use crate::error::ApiError;

/// An authenticated caller: a live session of a user who still exists in their
/// organization's directory, with the role the directory gives them now.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated {
    pub session: Session,
    pub org: OrgId,
    pub user: UserId,
    pub role: Role,
}

impl Authenticated {
    /// The command context of this caller, now.
    pub fn meta(&self) -> domain::CommandMeta {
        domain::CommandMeta::user(self.org, self.user, self.role, sessions::now_ms())
    }

    /// `Ok` for an admin of the organization; otherwise 403 `admin_only`, saying that only
    /// an admin `does` (e.g. "manages webhooks").
    ///
    /// # Errors
    /// `admin_only` for anyone else.
    pub fn require_admin(&self, does: &str) -> Result<(), crate::error::ApiError> {
        if self.role == domain::Role::Admin {
            Ok(())
        } else {
            Err(crate::error::ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "admin_only",
                format!("only an admin {does}"),
            ))
        }
    }
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(ApiError::unauthenticated)?;
        let token = header
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(ApiError::unauthenticated)?;
        let session = state.sessions.check(&state.ws.store, token).await?;
        let user = session.user;
        state
            .limiter
            .take_api(user)
            .map_err(ApiError::rate_limited)?;
        let role = match state.roles.get(session.org, user) {
            Some(role) => role,
            None => {
                let generation = state.roles.generation();
                let role = state
                    .ws
                    .directories
                    .query(&session.org, move |d: &domain::Directory, _| {
                        d.user(&user).map(|u| u.role)
                    })
                    .await
                    .map_err(ApiError::from)?
                    .ok_or_else(ApiError::unauthenticated)?;
                state.roles.store(session.org, user, role, generation);
                role
            }
        };
        Ok(Self {
            session,
            org: session.org,
            user,
            role,
        })
    }
}

/// Roles as the directory gave them, so that authenticating a request does not ask the
/// organization's directory actor each time.
///
/// Exact, not eventually right: the one command that changes a role (`ChangeRole`, from
/// `POST /v1/users/{id}/role` in this process, the log's only writer) runs inside
/// [`RoleCache::changing`], which drops the user's entry and bumps a generation before the
/// command and again after it resolves; a lookup stores its answer only if no bump
/// happened since it began. So once the change is answered, every request sees the new
/// role, and no answer read before it can be stored later.
#[derive(Default)]
pub struct RoleCache {
    inner: std::sync::Mutex<RoleCacheInner>,
}

#[derive(Default)]
struct RoleCacheInner {
    roles: std::collections::HashMap<(OrgId, UserId), Role>,
    generation: u64,
}

/// Roles kept in a [`RoleCache`]; past this it starts over.
const MAX_CACHED_ROLES: usize = 100_000;

impl RoleCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, RoleCacheInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached role of `user`.
    pub fn get(&self, org: OrgId, user: UserId) -> Option<Role> {
        self.lock().roles.get(&(org, user)).copied()
    }

    /// Read before asking the directory; pass to [`RoleCache::store`].
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Keeps `role` unless a role changed since `generation` was read.
    pub fn store(&self, org: OrgId, user: UserId, role: Role, generation: u64) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.roles.len() >= MAX_CACHED_ROLES {
            inner.roles.clear();
        }
        inner.roles.insert((org, user), role);
    }

    /// Forgets every role (the follower of other nodes' writes fell behind).
    pub fn forget_all(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.roles.clear();
    }

    /// Forgets `user`'s role: it changed (here, or on another node of a cluster).
    pub fn forget(&self, org: OrgId, user: UserId) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.roles.remove(&(org, user));
    }

    /// Runs `change` (a command that may change `user`'s role) with the user's entry
    /// dropped before and after it.
    pub async fn changing<T>(
        &self,
        org: OrgId,
        user: UserId,
        change: impl std::future::Future<Output = T>,
    ) -> T {
        self.forget(org, user);
        let out = change.await;
        self.forget(org, user);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_answer_read_before_a_role_change_is_never_kept() {
        let cache = RoleCache::default();
        let (org, user) = (OrgId::random(), UserId::random());
        // A lookup begins, then the role changes while it waits on the directory.
        let seen = cache.generation();
        cache
            .changing(org, user, async {
                // A lookup that began during the change does not keep its answer either.
                let during = cache.generation();
                cache.store(org, user, Role::Admin, during);
            })
            .await;
        cache.store(org, user, Role::Admin, seen);
        assert_eq!(cache.get(org, user), None);
        // A lookup begun after the change keeps it.
        let after = cache.generation();
        cache.store(org, user, Role::Member, after);
        assert_eq!(cache.get(org, user), Some(Role::Member));
        // The next change drops it.
        cache.changing(org, user, async {}).await;
        assert_eq!(cache.get(org, user), None);
    }
}
