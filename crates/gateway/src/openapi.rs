//! `GET /openapi.json`: the OpenAPI 3.1 document of the API, generated from [`OPERATIONS`],
//! the table every route in `app.rs` must appear in (`tests/openapi.rs` fails when the
//! table and the router disagree, in either direction).

use axum::Json;
use serde_json::{json, Map, Value};

/// How an operation authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// No credentials (health, bootstrap, login).
    None,
    /// `Authorization: Bearer <session token>`.
    Bearer,
    /// A bearer token, also accepted as `?token=` (browsers cannot set WebSocket headers).
    BearerOrQuery,
    /// `X-Twilio-Signature` over the public URL and the form parameters.
    TwilioSignature,
    /// A signed URL (the token is part of the path).
    SignedUrl,
}

/// One documented operation.
#[derive(Clone, Copy, Debug)]
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub auth: Auth,
    /// Query parameters (name, description).
    pub query: &'static [(&'static str, &'static str)],
    /// Request body: "json", "form", "multipart" or "".
    pub body: &'static str,
    /// Success status.
    pub ok: u16,
    /// Mounted only with this carrier ("simulator", "twilio") or with any carrier ("any").
    pub only_with: Option<&'static str>,
    /// How an `Idempotency-Key` is honoured.
    pub idempotency: Idempotency,
}

/// How an operation honours `Idempotency-Key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idempotency {
    /// Not a POST with a bearer token: the header is not looked at.
    None,
    /// The handler derives the ids of what it writes from the scoped key, so the log's
    /// idempotent appends make a retry write nothing; the answer is the first result
    /// (`"deduplicated": true`).
    Log,
    /// The first successful answer is recorded in the log and replayed to a retry
    /// ([`crate::routes::idempotency::replay_or_record`]).
    Recorded,
}

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn op(
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    auth: Auth,
    body: &'static str,
    ok: u16,
) -> Operation {
    Operation {
        method,
        path,
        tag,
        summary,
        auth,
        query: &[],
        body,
        ok,
        only_with: None,
        idempotency: if same(method, "post") && matches!(auth, Auth::Bearer | Auth::BearerOrQuery) {
            Idempotency::Recorded
        } else {
            Idempotency::None
        },
    }
}

/// A POST whose handler takes the key itself ([`Idempotency::Log`]).
const fn keyed(mut o: Operation) -> Operation {
    o.idempotency = Idempotency::Log;
    o
}

const fn q(mut o: Operation, query: &'static [(&'static str, &'static str)]) -> Operation {
    o.query = query;
    o
}

const fn only(mut o: Operation, carrier: &'static str) -> Operation {
    o.only_with = Some(carrier);
    o
}

use Auth::{Bearer, BearerOrQuery, SignedUrl, TwilioSignature};

/// Every operation of the API.
pub const OPERATIONS: &[Operation] = &[
    op("get", "/healthz", "system", "Liveness", Auth::None, "", 200),
    op(
        "get",
        "/metrics",
        "system",
        "Prometheus metrics (admins or the scrape token)",
        Bearer,
        "",
        200,
    ),
    op(
        "get",
        "/openapi.json",
        "system",
        "This document",
        Auth::None,
        "",
        200,
    ),
    op(
        "post",
        "/v1/bootstrap",
        "auth",
        "Create an organization and its first admin",
        Auth::None,
        "json",
        201,
    ),
    op(
        "post",
        "/v1/sessions",
        "auth",
        "Log in: a bearer token",
        Auth::None,
        "json",
        201,
    ),
    op(
        "delete",
        "/v1/sessions/current",
        "auth",
        "Log out (revoke this token)",
        Bearer,
        "",
        204,
    ),
    op("get", "/v1/me", "auth", "The caller", Bearer, "", 200),
    op(
        "post",
        "/v1/users",
        "directory",
        "Add a user with a login (admin)",
        Bearer,
        "json",
        201,
    ),
    op(
        "get",
        "/v1/users",
        "directory",
        "The organization's users: id, name, extension, role",
        Bearer,
        "",
        200,
    ),
    op(
        "post",
        "/v1/users/{id}/role",
        "directory",
        "Change a user's role (admin; the last admin stays)",
        Bearer,
        "json",
        200,
    ),
    op(
        "put",
        "/v1/users/{id}/settings",
        "settings",
        "Set a user's settings (the user themself or an admin)",
        Bearer,
        "json",
        200,
    ),
    op(
        "get",
        "/v1/me/settings",
        "settings",
        "My settings (text messages to desk phone)",
        Bearer,
        "",
        200,
    ),
    op(
        "put",
        "/v1/me/settings",
        "settings",
        "Set my settings",
        Bearer,
        "json",
        200,
    ),
    op(
        "get",
        "/v1/numbers",
        "directory",
        "The organization's business numbers: registration, route, assignees, mine",
        Bearer,
        "",
        200,
    ),
    op(
        "post",
        "/v1/numbers",
        "directory",
        "Add a personal business number for a user (admin)",
        Bearer,
        "json",
        201,
    ),
    op(
        "post",
        "/v1/numbers/{number}/assignees",
        "directory",
        "Let a user send from a number (admin)",
        Bearer,
        "json",
        200,
    ),
    op(
        "delete",
        "/v1/numbers/{number}/assignees/{user}",
        "directory",
        "Stop a user sending from a number (admin)",
        Bearer,
        "",
        200,
    ),
    op(
        "post",
        "/v1/numbers/{number}/route",
        "directory",
        "Route a number to a user, or to its inbox or queue (admin)",
        Bearer,
        "json",
        200,
    ),
    op(
        "post",
        "/v1/numbers/{number}/sms-registration",
        "directory",
        "Set a number's SMS registration (admin)",
        Bearer,
        "json",
        200,
    ),
    op(
        "get",
        "/v1/numbers/{number}/name",
        "contacts",
        "The name a number resolves to for the caller",
        Bearer,
        "",
        200,
    ),
    op(
        "get",
        "/v1/contacts",
        "contacts",
        "The phonebook: organization and personal contacts",
        Bearer,
        "",
        200,
    ),
    keyed(op(
        "post",
        "/v1/contacts",
        "contacts",
        "Add a contact (personal, or organization-wide: any member keeps the shared phonebook)",
        Bearer,
        "json",
        201,
    )),
    q(
        op(
            "get",
            "/v1/contacts/search",
            "contacts",
            "Search phonebook, directory and recent numbers",
            Bearer,
            "",
            200,
        ),
        &[("q", "name, company or digits")],
    ),
    op(
        "get",
        "/v1/contacts/{id}",
        "contacts",
        "One contact",
        Bearer,
        "",
        200,
    ),
    op(
        "patch",
        "/v1/contacts/{id}",
        "contacts",
        "Change a contact",
        Bearer,
        "json",
        200,
    ),
    op(
        "put",
        "/v1/contacts/{id}",
        "contacts",
        "Replace a contact",
        Bearer,
        "json",
        200,
    ),
    op(
        "delete",
        "/v1/contacts/{id}",
        "contacts",
        "Delete a contact",
        Bearer,
        "",
        200,
    ),
    q(
        op(
            "get",
            "/v1/interactions",
            "conversations",
            "My conversation list, newest activity first",
            Bearer,
            "",
            200,
        ),
        &[
            ("filter", "all | external | direct | channels"),
            ("before", "cursor"),
            ("limit", "page size (1..=200)"),
            ("after", "read-your-writes position"),
        ],
    ),
    q(
        op(
            "get",
            "/v1/channels",
            "conversations",
            "The organization's channels, joined or not, newest activity first",
            Bearer,
            "",
            200,
        ),
        &[
            ("before", "cursor"),
            ("limit", "page size (1..=200)"),
            ("after", "read-your-writes position"),
        ],
    ),
    op(
        "post",
        "/v1/conversations/direct",
        "conversations",
        "Start (or find) a direct conversation",
        Bearer,
        "json",
        201,
    ),
    op(
        "post",
        "/v1/conversations/external",
        "conversations",
        "Start (or find) an External conversation from one of our numbers",
        Bearer,
        "json",
        201,
    ),
    keyed(op(
        "post",
        "/v1/conversations/group",
        "conversations",
        "Start a mixed group of users and external numbers",
        Bearer,
        "json",
        201,
    )),
    keyed(op(
        "post",
        "/v1/conversations/{id}/calls",
        "conversations",
        "Record a call or video started from the conversation",
        Bearer,
        "json",
        201,
    )),
    op(
        "post",
        "/v1/conversations/{id}/calls/{call}/end",
        "conversations",
        "Record that a call ended",
        Bearer,
        "",
        200,
    ),
    op(
        "post",
        "/v1/conversations/{id}/name",
        "conversations",
        "Rename a channel (members)",
        Bearer,
        "json",
        200,
    ),
    keyed(op(
        "post",
        "/v1/conversations/channel",
        "conversations",
        "Create a channel",
        Bearer,
        "json",
        201,
    )),
    op(
        "post",
        "/v1/conversations/{id}/join",
        "conversations",
        "Join a channel",
        Bearer,
        "",
        200,
    ),
    op(
        "post",
        "/v1/conversations/{id}/leave",
        "conversations",
        "Leave a channel",
        Bearer,
        "",
        200,
    ),
    op(
        "post",
        "/v1/conversations/{id}/members",
        "conversations",
        "Add channel members",
        Bearer,
        "json",
        200,
    ),
    op(
        "get",
        "/v1/conversations/{id}/members",
        "conversations",
        "Members of a conversation (participants)",
        Bearer,
        "",
        200,
    ),
    keyed(op(
        "post",
        "/v1/conversations/{id}/messages",
        "conversations",
        "Post a message (SMS/MMS where the conversation texts)",
        Bearer,
        "json",
        201,
    )),
    q(
        op(
            "get",
            "/v1/conversations/{id}/messages",
            "conversations",
            "History, newest page first",
            Bearer,
            "",
            200,
        ),
        &[("before", "seq cursor"), ("limit", "page size")],
    ),
    op(
        "post",
        "/v1/conversations/{id}/read",
        "conversations",
        "Mark read up to a message",
        Bearer,
        "json",
        200,
    ),
    op(
        "post",
        "/v1/conversations/{id}/assign-to-me",
        "inboxes",
        "Assign to Me",
        Bearer,
        "",
        200,
    ),
    op(
        "post",
        "/v1/conversations/{id}/transfer",
        "inboxes",
        "Transfer to a team member",
        Bearer,
        "json",
        200,
    ),
    op(
        "post",
        "/v1/conversations/{id}/return",
        "inboxes",
        "Return to Inbox",
        Bearer,
        "",
        200,
    ),
    op(
        "post",
        "/v1/conversations/{id}/done",
        "inboxes",
        "Mark as Done",
        Bearer,
        "",
        200,
    ),
    q(
        op(
            "get",
            "/v1/search",
            "conversations",
            "Full-text search over messages I may see",
            Bearer,
            "",
            200,
        ),
        &[
            ("q", "words"),
            ("before", "cursor"),
            ("limit", "page size"),
            ("after", "read-your-writes position"),
        ],
    ),
    q(
        op(
            "get",
            "/v1/stream",
            "conversations",
            "WebSocket: my events in real time (resume with since)",
            BearerOrQuery,
            "",
            101,
        ),
        &[("token", "session token"), ("since", "last position seen")],
    ),
    op(
        "post",
        "/v1/inboxes",
        "inboxes",
        "Create an inbox on a new number (admin)",
        Bearer,
        "json",
        201,
    ),
    op(
        "get",
        "/v1/inboxes",
        "inboxes",
        "The inboxes whose team I am on (every one for an admin), with their teams",
        Bearer,
        "",
        200,
    ),
    op(
        "patch",
        "/v1/inboxes/{id}",
        "inboxes",
        "Rename an inbox (admin)",
        Bearer,
        "json",
        200,
    ),
    op(
        "post",
        "/v1/inboxes/{id}/members",
        "inboxes",
        "Add an inbox member (admin)",
        Bearer,
        "json",
        200,
    ),
    op(
        "delete",
        "/v1/inboxes/{id}/members/{user}",
        "inboxes",
        "Remove an inbox member (admin)",
        Bearer,
        "",
        200,
    ),
    q(
        op(
            "get",
            "/v1/inboxes/{id}/conversations",
            "inboxes",
            "An inbox view with per-viewer badges (members)",
            Bearer,
            "",
            200,
        ),
        &[
            ("view", "open | unassigned | assigned | mine | done"),
            ("before", "cursor"),
            ("limit", "page size (1..=200)"),
            ("after", "read-your-writes position"),
        ],
    ),
    op(
        "post",
        "/v1/queues",
        "queues",
        "Create an SMS queue on a new number (admin)",
        Bearer,
        "json",
        201,
    ),
    q(
        op(
            "get",
            "/v1/queues",
            "queues",
            "My queues, and whether I am logged into each",
            Bearer,
            "",
            200,
        ),
        &[("after", "read-your-writes position")],
    ),
    q(
        op(
            "get",
            "/v1/queues/{id}/waiting",
            "queues",
            "A queue's waiting list, oldest first (agents and admins)",
            Bearer,
            "",
            200,
        ),
        &[("after", "read-your-writes position")],
    ),
    op(
        "post",
        "/v1/queues/{id}/members",
        "queues",
        "Add a queue agent (admin)",
        Bearer,
        "json",
        200,
    ),
    op(
        "delete",
        "/v1/queues/{id}/members/{user}",
        "queues",
        "Remove a queue agent, logging them out (admin)",
        Bearer,
        "",
        200,
    ),
    op(
        "put",
        "/v1/queues/{id}/policy",
        "queues",
        "Set the queue's timeout policy (admin)",
        Bearer,
        "json",
        200,
    ),
    op(
        "post",
        "/v1/queues/{id}/login",
        "queues",
        "Log in to a queue",
        Bearer,
        "",
        200,
    ),
    op(
        "post",
        "/v1/queues/{id}/logout",
        "queues",
        "Log out of a queue",
        Bearer,
        "",
        200,
    ),
    op(
        "post",
        "/v1/queues/{id}/interactions/{conversation}/{action}",
        "queues",
        "claim | release | transfer | close",
        Bearer,
        "json",
        200,
    ),
    q(
        op(
            "get",
            "/v1/queue-views/{tab}",
            "queues",
            "active | pending | history",
            Bearer,
            "",
            200,
        ),
        &[
            ("search", "customer number or queue name"),
            ("after", "read-your-writes position"),
        ],
    ),
    only(
        op(
            "post",
            "/v1/attachments",
            "attachments",
            "Upload an attachment (multipart part `file`)",
            Bearer,
            "multipart",
            201,
        ),
        "any",
    ),
    only(
        op(
            "get",
            "/v1/attachments/{key}",
            "attachments",
            "Fetch an attachment (participants)",
            Bearer,
            "",
            200,
        ),
        "any",
    ),
    only(
        op(
            "get",
            "/v1/carriers/media/{id}/{token}",
            "carrier",
            "Media for the carrier (signed URL)",
            SignedUrl,
            "",
            200,
        ),
        "any",
    ),
    only(
        op(
            "post",
            "/v1/carriers/twilio/inbound",
            "carrier",
            "Twilio inbound message webhook",
            TwilioSignature,
            "form",
            200,
        ),
        "twilio",
    ),
    only(
        op(
            "post",
            "/v1/carriers/twilio/status",
            "carrier",
            "Twilio status callback",
            TwilioSignature,
            "form",
            200,
        ),
        "twilio",
    ),
    only(
        op(
            "post",
            "/v1/simulator/inbound",
            "simulator",
            "Text as a customer (admin)",
            Bearer,
            "json",
            201,
        ),
        "simulator",
    ),
    only(
        op(
            "get",
            "/v1/simulator/outbound",
            "simulator",
            "Texts the simulated carrier sent (admin)",
            Bearer,
            "",
            200,
        ),
        "simulator",
    ),
    only(
        op(
            "post",
            "/v1/simulator/outcome",
            "simulator",
            "Choose delivery outcomes (admin)",
            Bearer,
            "json",
            200,
        ),
        "simulator",
    ),
    only(
        op(
            "post",
            "/v1/simulator/release",
            "simulator",
            "Release a held text (admin)",
            Bearer,
            "json",
            200,
        ),
        "simulator",
    ),
];

fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect()
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for o in OPERATIONS {
        let mut params = path_params(o.path);
        params.extend(o.query.iter().map(|(name, description)| {
            json!({ "name": name, "in": "query", "required": false, "description": description, "schema": { "type": "string" } })
        }));
        if o.idempotency != Idempotency::None {
            params.push(json!({
                "name": "Idempotency-Key",
                "in": "header",
                "required": false,
                "description": match o.idempotency {
                    Idempotency::Log => "A UUID: a retry with the same key writes nothing and answers the first result (`deduplicated: true`).",
                    _ => "A UUID: a retry with the same key and request answers the first successful response again (header `Idempotent-Replayed: true`) and writes nothing; another request with the key: 422 `idempotency_key_reused`; while the first runs: 409 `idempotency_key_in_use`.",
                },
                "schema": { "type": "string", "format": "uuid" },
            }));
        }
        let security = match o.auth {
            Auth::None | Auth::SignedUrl => json!([]),
            Auth::Bearer => json!([{ "bearer": [] }]),
            Auth::BearerOrQuery => json!([{ "bearer": [] }, { "token_query": [] }]),
            Auth::TwilioSignature => json!([{ "twilio_signature": [] }]),
        };
        let mut operation = json!({
            "tags": [o.tag],
            "summary": o.summary,
            "operationId": format!("{}_{}", o.method, o.path.trim_start_matches('/').replace(['/', '{', '}', '-', '.'], "_")),
            "parameters": params,
            "security": security,
            "responses": {
                o.ok.to_string(): { "description": "success" },
                "4XX": { "description": "refused", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
            },
        });
        let media = match o.body {
            "json" => Some("application/json"),
            "form" => Some("application/x-www-form-urlencoded"),
            "multipart" => Some("multipart/form-data"),
            _ => None,
        };
        if let Some(media) = media {
            operation["requestBody"] = json!({ "required": true, "content": { media: { "schema": { "type": "object" } } } });
        }
        if let Some(c) = o.only_with {
            operation["x-only-with-carrier"] = json!(c);
        }
        paths
            .entry(o.path.to_owned())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("an object")
            .insert(o.method.to_owned(), operation);
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Switchboard API", "version": env!("CARGO_PKG_VERSION") },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer" },
                "token_query": { "type": "apiKey", "in": "query", "name": "token" },
                "twilio_signature": { "type": "apiKey", "in": "header", "name": "X-Twilio-Signature" },
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": { "type": "string", "description": "stable, machine-readable" },
                        "message": { "type": "string" },
                    },
                },
            },
        },
    })
}

/// `GET /openapi.json`.
pub async fn openapi() -> Json<Value> {
    Json(document())
}
