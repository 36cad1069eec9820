//! The HTTP and WebSocket gateway on real servers: auth, conversations, the stream,
//! inboxes, queues, the access walk, the OpenAPI document, idempotency, webhooks, uploads,
//! search, contacts, metrics, the seed workflows and the browser tests of the web client.
//!
//! One test binary for these files (each a module, as it was a binary before): every
//! binary links RocksDB, so fewer binaries build much faster.

#[path = "contacts.rs"]
mod contacts;
#[path = "gateway_access.rs"]
mod gateway_access;
#[path = "gateway_auth.rs"]
mod gateway_auth;
#[path = "gateway_channels.rs"]
mod gateway_channels;
#[path = "gateway_conversations.rs"]
mod gateway_conversations;
#[path = "gateway_directory.rs"]
mod gateway_directory;
#[path = "gateway_idempotency.rs"]
mod gateway_idempotency;
#[path = "gateway_inbox.rs"]
mod gateway_inbox;
#[path = "gateway_metrics.rs"]
mod gateway_metrics;
#[path = "gateway_queues.rs"]
mod gateway_queues;
#[path = "gateway_stream.rs"]
mod gateway_stream;
#[path = "gateway_stream_hub.rs"]
mod gateway_stream_hub;
#[path = "gateway_uploads.rs"]
mod gateway_uploads;
#[path = "gateway_webhooks.rs"]
mod gateway_webhooks;
#[path = "gateway_workflows.rs"]
mod gateway_workflows;
#[path = "openapi.rs"]
mod openapi;
#[path = "retention.rs"]
mod retention;
#[path = "search.rs"]
mod search;
#[path = "web_client.rs"]
mod web_client;
