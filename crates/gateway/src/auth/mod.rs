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

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
