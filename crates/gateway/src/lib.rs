//! Switchboard's gateway: the versioned HTTP API (axum) in front of the actors.
//!
//! Every request is authenticated (a bearer token from `POST /v1/sessions` or
//! `POST /v1/bootstrap`), except `GET /healthz` and those two, Twilio's webhooks (signed
//! with `X-Twilio-Signature`) and the carrier's media fetches (signed URLs). Errors are JSON
//! `{ "code", "message" }` with a stable code and the right status; clients never see
//! storage details.
//!
//! # Layout
//! - [`error`]: [`ApiError`], the one error type of every handler, and how domain and
//!   actor errors map onto statuses and codes.
//! - [`auth`]: credentials (argon2 hashes) and sessions (revocable, expiring tokens), both
//!   stored by the `records` crate; the [`auth::Authenticated`] extractor.
//! - [`rate_limit`]: token buckets per user (and per login email): 429 with Retry-After.
//! - [`routes`]: the handlers, one file per resource; [`routes::web`] serves the web client
//!   (static files from `web/`, embedded in the binary) at `/` and `/assets/`.
//! - [`carriers`]: the carrier edge: which carrier, the attachment blobs and the check
//!   against the reference index, signed media URLs for MMS, the outbox's setup. The
//!   records (attachments, arrived texts) are the `records` crate's; the followers of the
//!   log (outbox, webhooks, indexes) are the `workers`.
//!
//! The gateway never appends to the log: commands go to the actors, records to `records`,
//! webhook registrations to `workers::webhooks`.
//! - [`hub`]: one subscription to the log for every WebSocket; decodes each event once
//!   and routes it (and typing indicators) to the connections of its viewers.
//! - [`openapi`]: the table of operations (handler, documentation, idempotency), from which
//!   [`router`] mounts the routes and `GET /openapi.json` documents them.
//! - [`app`]: [`AppState`] and [`router`], assembling the routes with body limits.
//! - [`peer`]: the connection a request came on ([`peer::Peer`]: client address, socket),
//!   for the per-address login limits and the WebSockets' capped send buffers.

pub mod app;
pub mod asyncapi;
pub mod auth;
pub mod carriers;
pub mod error;
pub mod hub;
pub mod metrics;
pub mod openapi;
pub mod peer;
pub mod rate_limit;
pub mod routes;

pub use app::{router, AppState};
pub use error::ApiError;
