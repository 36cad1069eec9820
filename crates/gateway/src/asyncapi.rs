//! `GET /asyncapi.json`: the AsyncAPI 3.0 document of the WebSocket stream
//! (`GET /v1/stream`, see [`crate::routes::stream`]): every frame the server sends and
//! the client may send, as JSON Schemas generated (by `schemars`) from the types below and
//! the timeline [`Item`] the history answers, so the two cannot drift apart silently:
//! `tests/gateway_stream.rs` checks real frames against this document.
//!
//! The schemas are AsyncAPI's default format (a superset of JSON Schema draft 07), with
//! their definitions under `components.schemas`.

use axum::Json;
use domain::{ConversationId, InboxId, QueueId, UserId};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Value};

use crate::routes::conversations::Item;

/// The `change` of an inbox frame: the inbox event's name in snake_case.
pub const INBOX_CHANGES: &[&str] = &[
    "inbox_created",
    "inbox_renamed",
    "inbox_member_added",
    "inbox_member_removed",
    "inbox_attached",
    "inbox_detached",
    "conversation_assigned",
    "conversation_transferred",
    "returned_to_inbox",
    "marked_done",
    "reopened_by_inbound_text",
];

/// The `change` of a queue frame: the queue event's name in snake_case.
pub const QUEUE_CHANGES: &[&str] = &[
    "queue_created",
    "queue_member_added",
    "queue_member_removed",
    "queue_policy_changed",
    "agent_logged_in",
    "agent_logged_out",
    "interaction_queued",
    "interaction_claimed",
    "interaction_released",
    "interaction_transferred",
    "interaction_closed",
    "queue_timed_out",
];

/// The close codes the server ends a stream with, and why.
pub const CLOSE_CODES: &[(u16, &str, &str)] = &[
    (
        4001,
        "session_ended",
        "the session was revoked (logout): log in again",
    ),
    (4001, "session_expired", "the session expired: log in again"),
    (
        4002,
        "heartbeat_timeout",
        "nothing came from the client, not even a pong, for two heartbeats",
    ),
    (
        4008,
        "slow_consumer",
        "the client did not keep up: reconnect with since=<last position>",
    ),
];

fn string_enum(description: &str, values: &[&str]) -> Schema {
    schemars::json_schema!({
        "type": "string",
        "description": description,
        "enum": values,
    })
}

fn inbox_change(_: &mut SchemaGenerator) -> Schema {
    string_enum("The inbox event, in snake_case.", INBOX_CHANGES)
}

fn queue_change(_: &mut SchemaGenerator) -> Schema {
    string_enum("The queue event, in snake_case.", QUEUE_CHANGES)
}

/// A conversation's timeline moved on (a message, an inbound text, a read, a delivery
/// update, a system note, a call): to everyone who may see the conversation.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Described, not built: the hub writes these frames itself.
pub struct TimelineFrame {
    /// The event's position in the log: resume after it with `?since=`.
    position: u64,
    conversation_id: ConversationId,
    /// The conversation's version after this event.
    version: u64,
    item: Item,
    /// The recipient's unread count in the conversation after it (on message frames
    /// and the recipient's own read frames only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unread: Option<u64>,
}

/// The frame's kind, for the frames that have one.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum InboxKind {
    Inbox,
}

#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum QueueKind {
    Queue,
}

#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum TypingKind {
    Typing,
}

/// A shared inbox changed: to the inbox's team (and a member just removed from it).
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct InboxFrame {
    #[serde(rename = "type")]
    kind: InboxKind,
    position: u64,
    inbox_id: InboxId,
    /// The conversation it is about; `null` for changes to the team or the inbox.
    conversation_id: Option<ConversationId>,
    #[schemars(schema_with = "inbox_change")]
    change: String,
    /// Who holds the conversation after it, or `null`.
    assignee: Option<UserId>,
}

/// A queue changed: to the queue's members and the organization's admins.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct QueueFrame {
    #[serde(rename = "type")]
    kind: QueueKind,
    position: u64,
    queue_id: QueueId,
    /// The interaction's conversation; `null` for membership, login and policy changes.
    conversation_id: Option<ConversationId>,
    #[schemars(schema_with = "queue_change")]
    change: String,
    /// Who claimed, the transfer's target, who released or closed (null when the policy
    /// did), who logged in or out, the member added or removed; else `null`.
    agent: Option<UserId>,
}

/// Someone else is typing in a conversation the recipient may see. Not stored, no
/// position: hide it at `expires_at_ms`, or at once when `stopped`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct TypingFrame {
    #[serde(rename = "type")]
    kind: TypingKind,
    conversation_id: ConversationId,
    user: UserId,
    /// Milliseconds since the Unix epoch.
    expires_at_ms: u64,
    /// Present (true) when the typist stopped: hide the indicator now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stopped: Option<bool>,
}

/// What a client may send: typing indicators (anything else is ignored).
#[derive(JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ClientFrame {
    /// On each keystroke burst.
    Typing { conversation_id: ConversationId },
    /// The input was cleared.
    TypingStopped { conversation_id: ConversationId },
}

/// Where the schemas' definitions go, as a `$ref` prefix.
pub const SCHEMAS_REF: &str = "#/components/schemas/";

/// The server's frames: (message name, title, schema function).
type Described = (
    &'static str,
    &'static str,
    fn(&mut SchemaGenerator) -> Schema,
);

const SERVER_FRAMES: &[Described] = &[
    (
        "timeline",
        "A conversation event",
        crate::openapi::schema_of::<TimelineFrame>,
    ),
    (
        "inbox",
        "An inbox change",
        crate::openapi::schema_of::<InboxFrame>,
    ),
    (
        "queue",
        "A queue change",
        crate::openapi::schema_of::<QueueFrame>,
    ),
    (
        "typing",
        "Someone is typing",
        crate::openapi::schema_of::<TypingFrame>,
    ),
];

/// The document (the same for every configuration).
pub fn document() -> Value {
    let settings = SchemaSettings::draft07().with(|s| {
        s.definitions_path = "/components/schemas".into();
        s.meta_schema = None;
    });
    let mut g = settings.for_serialize().into_generator();
    let mut messages = serde_json::Map::new();
    let mut channel_messages = serde_json::Map::new();
    let mut received = Vec::new();
    for (name, title, schema) in SERVER_FRAMES {
        messages.insert(
            (*name).to_owned(),
            json!({ "name": name, "title": title, "payload": schema(&mut g).to_value() }),
        );
        channel_messages.insert(
            (*name).to_owned(),
            json!({ "$ref": format!("#/components/messages/{name}") }),
        );
        received.push(json!({ "$ref": format!("#/channels/stream/messages/{name}") }));
    }
    let client = crate::openapi::schema_of::<ClientFrame>(&mut g).to_value();
    messages.insert(
        "client_typing".to_owned(),
        json!({ "name": "client_typing", "title": "The client's typing indicator", "payload": client }),
    );
    channel_messages.insert(
        "client_typing".to_owned(),
        json!({ "$ref": "#/components/messages/client_typing" }),
    );
    let closes: Vec<Value> = CLOSE_CODES
        .iter()
        .map(|(code, reason, why)| json!({ "code": code, "reason": reason, "description": why }))
        .collect();
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Switchboard stream",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The caller's events in real time over one WebSocket, each with its global position: \
                resume with `?since=<last position>` with no gap and no duplicate. A heartbeat ping goes out every 15 s. \
                The HTTP API is described at /openapi.json.",
        },
        "defaultContentType": "application/json",
        "channels": {
            "stream": {
                "address": "/v1/stream",
                "title": "The caller's stream",
                "messages": channel_messages,
                "bindings": {
                    "ws": {
                        "method": "GET",
                        "query": {
                            "type": "object",
                            "properties": {
                                "since": { "type": "integer", "minimum": 0, "description": "The last position the client saw." },
                                "token": { "type": "string", "description": "The session token, for clients that cannot set the Authorization header." },
                            },
                        },
                    },
                },
                "x-close-codes": closes,
            },
        },
        "operations": {
            "receive_events": {
                "action": "receive",
                "title": "Frames the server sends",
                "channel": { "$ref": "#/channels/stream" },
                "security": [
                    { "$ref": "#/components/securitySchemes/bearer" },
                    { "$ref": "#/components/securitySchemes/token_query" },
                ],
                "messages": received,
            },
            "send_typing": {
                "action": "send",
                "title": "Typing indicators the client sends",
                "channel": { "$ref": "#/channels/stream" },
                "messages": [{ "$ref": "#/channels/stream/messages/client_typing" }],
            },
        },
        "components": {
            "messages": messages,
            "schemas": g.take_definitions(true),
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer" },
                "token_query": { "type": "httpApiKey", "in": "query", "name": "token" },
            },
        },
    })
}

/// `GET /asyncapi.json`.
pub async fn asyncapi() -> Json<Value> {
    Json(document())
}
