//! The API's routes and their documentation, from one source: [`OPERATIONS`], one row per
//! operation with its handler, its documentation and how it honours `Idempotency-Key`.
//! The router is built from it (`app::router`: each row's handler at its path, mounted
//! with the carrier it needs, wrapped in the idempotency middleware when the row says so),
//! `GET /openapi.json` (the OpenAPI 3.1 document) is generated from it, and the access
//! walk (`tests/gateway_access.rs`) enumerates it. A route exists only as a row here.
//!
//! Request and response bodies are JSON Schemas generated from the handlers' own Rust
//! types (`schemars`, reading their serde attributes): each row names its types with
//! [`req`], [`res`] or [`io`], and [`document`] puts every named type under
//! `components.schemas`. Requests are described as the handlers deserialize them,
//! responses as they are serialized (an `Option` answered as `null` is required, a field
//! skipped when empty is not).

use axum::Json;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, patch, post, put, MethodRouter};

use crate::app::AppState;
use crate::routes::{
    attachments, bootstrap, channels, contacts, conversations, health, inboxes, interactions, me,
    numbers, queues, retention, search, sessions, settings, simulator, stream, twilio, users,
    webhooks, Written,
};
use crate::{asyncapi, metrics};

/// Adds the schema of a request or response body to a generator's definitions and answers
/// the schema to use for the body (usually a `$ref`).
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// The [`SchemaFn`] of `T`.
pub fn schema_of<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

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

/// A route's handler as axum mounts it, with its own layers (a larger body limit).
pub type Handler = fn() -> MethodRouter<AppState>;

/// One operation: its handler and its documentation.
#[derive(Clone, Copy, Debug)]
pub struct Operation {
    /// The handler, for `method` only (the router merges the rows of one path).
    pub handler: Handler,
    pub method: &'static str,
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub auth: Auth,
    /// The query string's type (as the handler deserializes it, set with [`query`]): each
    /// property is a query parameter, with its schema and description.
    pub query: Option<SchemaFn>,
    /// Request body: "json", "form", "multipart" or "".
    pub body: &'static str,
    /// Success status.
    pub ok: u16,
    /// Mounted only with this carrier ("simulator", "twilio") or with any carrier ("any").
    pub only_with: Option<&'static str>,
    /// How an `Idempotency-Key` is honoured: the router wraps a [`Idempotency::Recorded`]
    /// row's handler in [`crate::routes::idempotency::replay_or_record`].
    pub idempotency: Idempotency,
    /// The request body's schema (set with [`req`] or [`io`]; for `form` and `multipart`
    /// bodies a hand-written description of the fields).
    pub request: Option<SchemaFn>,
    /// The success answer's schema, for an `answers` of `application/json` (set with
    /// [`res`] or [`io`]).
    pub response: Option<SchemaFn>,
    /// The success answer's media type: `application/json` (the default, described by
    /// `response`), another type (bytes, text, TwiML) or `""` for no body (204, and 101
    /// for the WebSocket).
    pub answers: &'static str,
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

#[allow(
    clippy::too_many_arguments,
    reason = "a row of the table: what every operation must say, in the order it reads"
)]
const fn op(
    handler: Handler,
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    auth: Auth,
    body: &'static str,
    ok: u16,
) -> Operation {
    Operation {
        handler,
        method,
        path,
        tag,
        summary,
        auth,
        query: None,
        body,
        ok,
        only_with: None,
        idempotency: if same(method, "post") && matches!(auth, Auth::Bearer | Auth::BearerOrQuery) {
            Idempotency::Recorded
        } else {
            Idempotency::None
        },
        request: None,
        response: None,
        answers: if ok == 204 || ok == 101 {
            ""
        } else {
            "application/json"
        },
    }
}

/// The request body is a `T` (as the handler deserializes it).
const fn req<T: JsonSchema>(mut o: Operation) -> Operation {
    o.request = Some(schema_of::<T>);
    o
}

/// The success answer is a `T` (as the handler serializes it).
const fn res<T: JsonSchema>(mut o: Operation) -> Operation {
    o.response = Some(schema_of::<T>);
    o
}

/// The request body is a `Req` and the success answer a `Res`.
const fn io<Req: JsonSchema, Res: JsonSchema>(o: Operation) -> Operation {
    res::<Res>(req::<Req>(o))
}

/// The success answer is not JSON but `media` (`""`: no body).
const fn answers(mut o: Operation, media: &'static str) -> Operation {
    o.answers = media;
    o
}

/// `multipart/form-data` of `POST /v1/attachments`: one file part.
struct UploadForm;

impl JsonSchema for UploadForm {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AttachmentUpload".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "type": "object",
            "required": ["file"],
            "properties": {
                "file": {
                    "description": "The file (a part named `file`, or any part with a file name); its type is sniffed from the bytes.",
                    "type": "string",
                    "contentMediaType": "application/octet-stream",
                },
            },
        })
    }
}

/// The form Twilio posts for an inbound text (the fields read; Twilio sends more).
struct TwilioInboundForm;

impl JsonSchema for TwilioInboundForm {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TwilioInboundMessage".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "type": "object",
            "required": ["MessageSid", "From", "To"],
            "properties": {
                "MessageSid": { "type": "string" },
                "From": { "type": "string", "description": "The customer's number (E.164)." },
                "To": { "type": "string", "description": "Our business number (E.164)." },
                "Body": { "type": "string" },
                "NumMedia": { "type": "string", "description": "How many media items (`MediaUrl{i}`, `MediaContentType{i}`, i from 0)." },
            },
            "patternProperties": {
                "^MediaUrl[0-9]+$": { "type": "string", "format": "uri" },
                "^MediaContentType[0-9]+$": { "type": "string" },
            },
        })
    }
}

/// The form of Twilio's status callback (the fields read; Twilio sends more).
struct TwilioStatusForm;

impl JsonSchema for TwilioStatusForm {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TwilioStatusCallback".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "type": "object",
            "required": ["MessageSid"],
            "properties": {
                "MessageSid": { "type": "string" },
                "MessageStatus": { "type": "string", "description": "queued, sent, delivered, failed, undelivered, ... (`SmsStatus` when absent)." },
                "SmsStatus": { "type": "string" },
                "ErrorCode": { "type": "string" },
            },
        })
    }
}

/// `GET /asyncapi.json`'s answer: the stream's AsyncAPI 3.0 document
/// ([`crate::asyncapi`]).
struct AsyncApiDocument;

impl JsonSchema for AsyncApiDocument {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AsyncApiDocument".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "description": "An AsyncAPI 3.0 document (https://www.asyncapi.com/docs/reference/specification/v3.0.0) of the WebSocket stream `GET /v1/stream`.",
            "type": "object",
            "required": ["asyncapi", "info", "channels", "operations", "components"],
            "properties": {
                "asyncapi": { "type": "string" },
                "info": { "type": "object" },
                "channels": { "type": "object" },
                "operations": { "type": "object" },
                "components": { "type": "object" },
            },
        })
    }
}

/// `GET /openapi.json`'s answer: an OpenAPI 3.1 document (this one).
struct OpenApiDocument;

impl JsonSchema for OpenApiDocument {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "OpenApiDocument".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "description": "An OpenAPI 3.1 document (https://spec.openapis.org/oas/v3.1.0).",
            "type": "object",
            "required": ["openapi", "info", "paths", "components"],
            "properties": {
                "openapi": { "type": "string" },
                "info": { "type": "object" },
                "paths": { "type": "object" },
                "components": { "type": "object" },
            },
        })
    }
}

/// A POST whose handler takes the key itself ([`Idempotency::Log`]).
const fn keyed(mut o: Operation) -> Operation {
    o.idempotency = Idempotency::Log;
    o
}

/// The query string is a `T` (as the handler deserializes it).
const fn query<T: JsonSchema>(mut o: Operation) -> Operation {
    o.query = Some(schema_of::<T>);
    o
}

const fn only(mut o: Operation, carrier: &'static str) -> Operation {
    o.only_with = Some(carrier);
    o
}

use Auth::{Bearer, BearerOrQuery, SignedUrl, TwilioSignature};

/// Every operation of the API.
pub const OPERATIONS: &[Operation] = &[
    res::<health::Health>(op(
        || get(health::healthz),
        "get",
        "/healthz",
        "system",
        "Liveness",
        Auth::None,
        "",
        200,
    )),
    answers(
        op(
        || get(metrics::metrics),
        "get",
        "/metrics",
            "system",
            "Prometheus metrics (admins or the scrape token)",
            Bearer,
            "",
            200,
        ),
        "text/plain; version=0.0.4",
    ),
    res::<OpenApiDocument>(op(
        || get(openapi),
        "get",
        "/openapi.json",
        "system",
        "This document",
        Auth::None,
        "",
        200,
    )),
    res::<AsyncApiDocument>(op(
        || get(asyncapi::asyncapi),
        "get",
        "/asyncapi.json",
        "system",
        "The WebSocket stream's frames (AsyncAPI 3.0)",
        Auth::None,
        "",
        200,
    )),
    res::<bootstrap::BootstrapStatus>(op(
        || get(bootstrap::status),
        "get",
        "/v1/bootstrap",
        "auth",
        "Whether anyone may create an organization now (the first one, or sign-ups open)",
        Auth::None,
        "",
        200,
    )),
    io::<bootstrap::BootstrapRequest, bootstrap::BootstrapResponse>(op(
        || post(bootstrap::bootstrap),
        "post",
        "/v1/bootstrap",
        "auth",
        "Create an organization and its first admin: only the server's first, unless the \
         operator opened sign-ups or sends `Authorization: Bearer <operator token>` \
         (otherwise 403 `signups_closed`)",
        Auth::None,
        "json",
        201,
    )),
    io::<sessions::LoginRequest, sessions::LoginResponse>(op(
        || post(sessions::login),
        "post",
        "/v1/sessions",
        "auth",
        "Log in: a bearer token",
        Auth::None,
        "json",
        201,
    )),
    op(
        || delete(sessions::logout),
        "delete",
        "/v1/sessions/current",
        "auth",
        "Log out (revoke this token)",
        Bearer,
        "",
        204,
    ),
    res::<me::Me>(op(
        || get(me::me),
        "get",
        "/v1/me", "auth", "The caller", Bearer, "", 200)),
    io::<me::PasswordChange, me::PasswordChanged>(op(
        || put(me::change_password),
        "put",
        "/v1/me/password",
        "auth",
        "Change my password (confirmed with my email and current password); signs out my other sessions",
        Bearer,
        "json",
        200,
    )),
    io::<users::NewUser, users::CreatedUser>(op(
        || post(users::create_user),
        "post",
        "/v1/users",
        "directory",
        "Add a user with a login (admin)",
        Bearer,
        "json",
        201,
    )),
    res::<users::UserList>(op(
        || get(users::list),
        "get",
        "/v1/users",
        "directory",
        "The organization's users: id, name, extension, role",
        Bearer,
        "",
        200,
    )),
    io::<users::NewRole, Written>(op(
        || post(users::change_role),
        "post",
        "/v1/users/{id}/role",
        "directory",
        "Change a user's role (admin; the last admin stays)",
        Bearer,
        "json",
        200,
    )),
    io::<channels::NewName, Written>(op(
        || put(users::rename),
        "put",
        "/v1/users/{id}/name",
        "directory",
        "Rename a user (the user themself or an admin)",
        Bearer,
        "json",
        200,
    )),
    io::<settings::Settings, Written>(op(
        || put(settings::put_user_settings),
        "put",
        "/v1/users/{id}/settings",
        "settings",
        "Set a user's settings (the user themself or an admin)",
        Bearer,
        "json",
        200,
    )),
    res::<settings::Settings>(op(
        || get(settings::get_settings),
        "get",
        "/v1/me/settings",
        "settings",
        "My settings (text messages to desk phone)",
        Bearer,
        "",
        200,
    )),
    io::<settings::Settings, Written>(op(
        || put(settings::put_my_settings),
        "put",
        "/v1/me/settings",
        "settings",
        "Set my settings",
        Bearer,
        "json",
        200,
    )),
    res::<numbers::NumberList>(op(
        || get(numbers::list),
        "get",
        "/v1/numbers",
        "directory",
        "The organization's business numbers: registration, route, assignees, mine",
        Bearer,
        "",
        200,
    )),
    io::<numbers::NewNumber, numbers::AddedNumber>(op(
        || post(numbers::add_number),
        "post",
        "/v1/numbers",
        "directory",
        "Add a personal business number for a user (admin)",
        Bearer,
        "json",
        201,
    )),
    io::<numbers::Assignee, Written>(op(
        || post(numbers::assign),
        "post",
        "/v1/numbers/{number}/assignees",
        "directory",
        "Let a user send from a number (admin)",
        Bearer,
        "json",
        200,
    )),
    res::<Written>(op(
        || delete(numbers::unassign),
        "delete",
        "/v1/numbers/{number}/assignees/{user}",
        "directory",
        "Stop a user sending from a number (admin)",
        Bearer,
        "",
        200,
    )),
    io::<numbers::RouteOut, Written>(op(
        || post(numbers::route),
        "post",
        "/v1/numbers/{number}/route",
        "directory",
        "Route a number to a user, or to its inbox or queue (admin)",
        Bearer,
        "json",
        200,
    )),
    io::<numbers::SmsRegistration, Written>(op(
        || post(numbers::set_sms_registration),
        "post",
        "/v1/numbers/{number}/sms-registration",
        "directory",
        "Set a number's SMS registration (admin)",
        Bearer,
        "json",
        200,
    )),
    res::<contacts::NumberName>(op(
        || get(contacts::number_name),
        "get",
        "/v1/numbers/{number}/name",
        "contacts",
        "The name a number resolves to for the caller",
        Bearer,
        "",
        200,
    )),
    query::<contacts::ListQuery>(res::<contacts::ContactList>(op(
        || get(contacts::list),
        "get",
        "/v1/contacts",
        "contacts",
        "The phonebook: organization and personal contacts",
        Bearer,
        "",
        200,
    ))),
    keyed(io::<contacts::NewContact, contacts::ContactWritten>(op(
        || post(contacts::create),
        "post",
        "/v1/contacts",
        "contacts",
        "Add a contact (personal, or organization-wide: any member keeps the shared phonebook)",
        Bearer,
        "json",
        201,
    ))),
    query::<contacts::SearchQuery>(res::<contacts::SearchOut>(op(
        || get(contacts::search),
        "get",
        "/v1/contacts/search",
        "contacts",
        "Search phonebook, directory and recent numbers",
        Bearer,
        "",
        200,
    ))),
    res::<contacts::ContactOut>(op(
        || get(contacts::get),
        "get",
        "/v1/contacts/{id}",
        "contacts",
        "One contact",
        Bearer,
        "",
        200,
    )),
    io::<contacts::PatchContact, contacts::ContactWritten>(op(
        || patch(contacts::patch),
        "patch",
        "/v1/contacts/{id}",
        "contacts",
        "Change a contact",
        Bearer,
        "json",
        200,
    )),
    io::<contacts::ReplaceContact, contacts::ContactWritten>(op(
        || put(contacts::replace),
        "put",
        "/v1/contacts/{id}",
        "contacts",
        "Replace a contact",
        Bearer,
        "json",
        200,
    )),
    res::<contacts::ContactWritten>(op(
        || delete(contacts::delete),
        "delete",
        "/v1/contacts/{id}",
        "contacts",
        "Delete a contact",
        Bearer,
        "",
        200,
    )),
    query::<interactions::ListQuery>(res::<interactions::ListOut>(op(
        || get(interactions::list),
        "get",
        "/v1/interactions",
        "conversations",
        "My conversation list, newest activity first",
        Bearer,
        "",
        200,
    ))),
    query::<interactions::ChannelsQuery>(res::<interactions::ChannelsOut>(op(
        || get(interactions::channels),
        "get",
        "/v1/channels",
        "conversations",
        "The organization's channels, joined or not, newest activity first",
        Bearer,
        "",
        200,
    ))),
    io::<conversations::StartDirect, conversations::Started>(op(
        || post(conversations::start_direct),
        "post",
        "/v1/conversations/direct",
        "conversations",
        "Start (or find) a direct conversation",
        Bearer,
        "json",
        201,
    )),
    io::<conversations::StartExternal, conversations::Started>(op(
        || post(conversations::start_external),
        "post",
        "/v1/conversations/external",
        "conversations",
        "Start (or find) an External conversation from one of our numbers",
        Bearer,
        "json",
        201,
    )),
    keyed(io::<conversations::StartGroup, conversations::Started>(op(
        || post(conversations::start_group),
        "post",
        "/v1/conversations/group",
        "conversations",
        "Start a mixed group of users and external numbers",
        Bearer,
        "json",
        201,
    ))),
    keyed(io::<conversations::NewCall, conversations::StartedCall>(
        op(
        || post(conversations::start_call),
        "post",
        "/v1/conversations/{id}/calls",
            "conversations",
            "Record a call or video started from the conversation",
            Bearer,
            "json",
            201,
        ),
    )),
    res::<Written>(op(
        || post(conversations::end_call),
        "post",
        "/v1/conversations/{id}/calls/{call}/end",
        "conversations",
        "Record that a call ended",
        Bearer,
        "",
        200,
    )),
    query::<interactions::OneQuery>(res::<interactions::InteractionOut>(op(
        || get(interactions::one),
        "get",
        "/v1/conversations/{id}",
        "conversations",
        "One conversation as the lists show it (kind, title, unread; an inbox conversation's status and assignee)",
        Bearer,
        "",
        200,
    ))),
    io::<channels::NewName, Written>(op(
        || post(channels::rename),
        "post",
        "/v1/conversations/{id}/name",
        "conversations",
        "Rename a channel (members)",
        Bearer,
        "json",
        200,
    )),
    keyed(io::<channels::NewChannel, conversations::Started>(op(
        || post(channels::create),
        "post",
        "/v1/conversations/channel",
        "conversations",
        "Create a channel",
        Bearer,
        "json",
        201,
    ))),
    res::<Written>(op(
        || post(channels::join),
        "post",
        "/v1/conversations/{id}/join",
        "conversations",
        "Join a channel",
        Bearer,
        "",
        200,
    )),
    res::<Written>(op(
        || post(channels::leave),
        "post",
        "/v1/conversations/{id}/leave",
        "conversations",
        "Leave a channel",
        Bearer,
        "",
        200,
    )),
    io::<channels::AddMembers, Written>(op(
        || post(channels::add_members),
        "post",
        "/v1/conversations/{id}/members",
        "conversations",
        "Add channel members",
        Bearer,
        "json",
        200,
    )),
    res::<channels::MembersOut>(op(
        || get(channels::members),
        "get",
        "/v1/conversations/{id}/members",
        "conversations",
        "Members of a conversation (participants)",
        Bearer,
        "",
        200,
    )),
    keyed(io::<conversations::NewMessage, conversations::Posted>(op(
        || post(conversations::post_message),
        "post",
        "/v1/conversations/{id}/messages",
        "conversations",
        "Post a message (SMS/MMS where the conversation texts)",
        Bearer,
        "json",
        201,
    ))),
    query::<conversations::Page>(res::<conversations::History>(op(
        || get(conversations::history),
        "get",
        "/v1/conversations/{id}/messages",
        "conversations",
        "History, newest page first",
        Bearer,
        "",
        200,
    ))),
    io::<conversations::MarkRead, Written>(op(
        || post(conversations::mark_read),
        "post",
        "/v1/conversations/{id}/read",
        "conversations",
        "Mark read up to a message",
        Bearer,
        "json",
        200,
    )),
    res::<Written>(op(
        || post(inboxes::assign_to_me),
        "post",
        "/v1/conversations/{id}/assign-to-me",
        "inboxes",
        "Assign to Me",
        Bearer,
        "",
        200,
    )),
    io::<inboxes::TransferTo, Written>(op(
        || post(inboxes::transfer),
        "post",
        "/v1/conversations/{id}/transfer",
        "inboxes",
        "Transfer to a team member",
        Bearer,
        "json",
        200,
    )),
    res::<Written>(op(
        || post(inboxes::return_to_inbox),
        "post",
        "/v1/conversations/{id}/return",
        "inboxes",
        "Return to Inbox",
        Bearer,
        "",
        200,
    )),
    res::<Written>(op(
        || post(inboxes::mark_done),
        "post",
        "/v1/conversations/{id}/done",
        "inboxes",
        "Mark as Done",
        Bearer,
        "",
        200,
    )),
    query::<search::SearchQuery>(res::<search::SearchOut>(op(
        || get(search::search),
        "get",
        "/v1/search",
        "conversations",
        "Full-text search over messages I may see",
        Bearer,
        "",
        200,
    ))),
    query::<crate::routes::stream::StreamParams>(op(
        || get(stream::stream),
        "get",
        "/v1/stream",
        "conversations",
        "WebSocket: my events in real time (resume with since)",
        BearerOrQuery,
        "",
        101,
    )),
    io::<inboxes::NewInbox, inboxes::CreatedInbox>(op(
        || post(inboxes::create_inbox),
        "post",
        "/v1/inboxes",
        "inboxes",
        "Create an inbox on a new number (admin)",
        Bearer,
        "json",
        201,
    )),
    res::<inboxes::InboxList>(op(
        || get(inboxes::list),
        "get",
        "/v1/inboxes",
        "inboxes",
        "The inboxes whose team I am on (every one for an admin), with their teams",
        Bearer,
        "",
        200,
    )),
    io::<inboxes::InboxPatch, Written>(op(
        || patch(inboxes::rename),
        "patch",
        "/v1/inboxes/{id}",
        "inboxes",
        "Rename an inbox (admin)",
        Bearer,
        "json",
        200,
    )),
    io::<inboxes::NewMember, Written>(op(
        || post(inboxes::add_member),
        "post",
        "/v1/inboxes/{id}/members",
        "inboxes",
        "Add an inbox member (admin)",
        Bearer,
        "json",
        200,
    )),
    res::<Written>(op(
        || delete(inboxes::remove_member),
        "delete",
        "/v1/inboxes/{id}/members/{user}",
        "inboxes",
        "Remove an inbox member (admin)",
        Bearer,
        "",
        200,
    )),
    query::<interactions::ListQuery>(res::<interactions::ListOut>(op(
        || get(interactions::inbox_view),
        "get",
        "/v1/inboxes/{id}/conversations",
        "inboxes",
        "An inbox view with per-viewer badges (members)",
        Bearer,
        "",
        200,
    ))),
    io::<queues::NewQueue, queues::CreatedQueue>(op(
        || post(queues::create_queue),
        "post",
        "/v1/queues",
        "queues",
        "Create an SMS queue on a new number (admin)",
        Bearer,
        "json",
        201,
    )),
    query::<queues::AfterQuery>(res::<queues::MyQueues>(op(
        || get(queues::list),
        "get",
        "/v1/queues",
        "queues",
        "My queues, and whether I am logged into each",
        Bearer,
        "",
        200,
    ))),
    query::<queues::AfterQuery>(res::<queues::WaitingList>(op(
        || get(queues::waiting),
        "get",
        "/v1/queues/{id}/waiting",
        "queues",
        "A queue's waiting list, oldest first (agents and admins)",
        Bearer,
        "",
        200,
    ))),
    io::<queues::Member, queues::Done>(op(
        || post(queues::add_member),
        "post",
        "/v1/queues/{id}/members",
        "queues",
        "Add a queue agent (admin)",
        Bearer,
        "json",
        200,
    )),
    res::<queues::Done>(op(
        || delete(queues::remove_member),
        "delete",
        "/v1/queues/{id}/members/{user}",
        "queues",
        "Remove a queue agent, logging them out (admin)",
        Bearer,
        "",
        200,
    )),
    io::<crate::routes::wire::Policy, queues::Done>(op(
        || put(queues::set_policy),
        "put",
        "/v1/queues/{id}/policy",
        "queues",
        "Set the queue's timeout policy (admin)",
        Bearer,
        "json",
        200,
    )),
    res::<queues::Done>(op(
        || post(queues::log_in),
        "post",
        "/v1/queues/{id}/login",
        "queues",
        "Log in to a queue",
        Bearer,
        "",
        200,
    )),
    res::<queues::Done>(op(
        || post(queues::log_out),
        "post",
        "/v1/queues/{id}/logout",
        "queues",
        "Log out of a queue",
        Bearer,
        "",
        200,
    )),
    io::<queues::ActBody, queues::Done>(op(
        || post(queues::act),
        "post",
        "/v1/queues/{id}/interactions/{conversation}/{action}",
        "queues",
        "claim | release | transfer | close",
        Bearer,
        "json",
        200,
    )),
    query::<queues::ViewQuery>(res::<Vec<queues::Row>>(op(
        || get(queues::view),
        "get",
        "/v1/queue-views/{tab}",
        "queues",
        "active | pending | history",
        Bearer,
        "",
        200,
    ))),
    only(
        query::<attachments::UploadQuery>(io::<UploadForm, attachments::Uploaded>(op(
        || {
            post(attachments::upload)
                .layer(DefaultBodyLimit::max(attachments::MAX_UPLOAD_BODY))
        },
        "post",
        "/v1/attachments",
            "attachments",
            "Upload an attachment (multipart part `file`)",
            Bearer,
            "multipart",
            201,
        ))),
        "any",
    ),
    only(
        query::<attachments::FetchQuery>(answers(
            op(
        || get(attachments::fetch),
        "get",
        "/v1/attachments/{key}",
                "attachments",
                "Fetch an attachment (participants)",
                Bearer,
                "",
                200,
            ),
            "*/*",
        )),
        "any",
    ),
    only(
        answers(
            op(
        || get(attachments::carrier_media),
        "get",
        "/v1/carriers/media/{id}/{token}",
                "carrier",
                "Media for the carrier (signed URL)",
                SignedUrl,
                "",
                200,
            ),
            "*/*",
        ),
        "any",
    ),
    only(
        answers(
            req::<TwilioInboundForm>(op(
        || post(twilio::inbound),
        "post",
        "/v1/carriers/twilio/inbound",
                "carrier",
                "Twilio inbound message webhook",
                TwilioSignature,
                "form",
                200,
            )),
            "text/xml",
        ),
        "twilio",
    ),
    only(
        query::<crate::routes::twilio::StatusQuery>(req::<TwilioStatusForm>(op(
        || post(twilio::status),
        "post",
        "/v1/carriers/twilio/status",
            "carrier",
            "Twilio status callback",
            TwilioSignature,
            "form",
            204,
        ))),
        "twilio",
    ),
    only(
        io::<simulator::CustomerText, simulator::TextedIn>(op(
        || post(simulator::inbound),
        "post",
        "/v1/simulator/inbound",
            "simulator",
            "Text as a customer (admin)",
            Bearer,
            "json",
            201,
        )),
        "simulator",
    ),
    only(
        res::<simulator::Outbound>(op(
        || get(simulator::outbound),
        "get",
        "/v1/simulator/outbound",
            "simulator",
            "Texts the simulated carrier sent (admin)",
            Bearer,
            "",
            200,
        )),
        "simulator",
    ),
    only(
        req::<simulator::ChooseOutcome>(op(
        || post(simulator::outcome),
        "post",
        "/v1/simulator/outcome",
            "simulator",
            "Choose delivery outcomes (admin)",
            Bearer,
            "json",
            204,
        )),
        "simulator",
    ),
    only(
        req::<simulator::Release>(op(
        || post(simulator::release),
        "post",
        "/v1/simulator/release",
            "simulator",
            "Release a held text (admin)",
            Bearer,
            "json",
            204,
        )),
        "simulator",
    ),
    res::<crate::routes::retention::RetentionOut>(op(
        || get(retention::get),
        "get",
        "/v1/retention",
        "retention",
        "How many days the organization keeps message texts (admin)",
        Bearer,
        "",
        200,
    )),
    res::<crate::routes::retention::RetentionOut>(req::<crate::routes::retention::Retention>(op(
        || put(retention::put),
        "put",
        "/v1/retention",
        "retention",
        "Set how many days message texts are kept, and apply it now: older texts are erased (admin)",
        Bearer,
        "json",
        200,
    ))),
    res::<crate::routes::retention::ErasureList>(op(
        || get(retention::list),
        "get",
        "/v1/erasures",
        "retention",
        "Every erasure of a customer's data (admin)",
        Bearer,
        "",
        200,
    )),
    res::<crate::routes::retention::ErasureOut>(req::<crate::routes::retention::NewErasure>(op(
        || post(retention::create),
        "post",
        "/v1/erasures",
        "retention",
        "Erase every text one customer wrote or was sent, by destroying their keys (admin)",
        Bearer,
        "json",
        201,
    ))),
    res::<crate::routes::webhooks::CreatedWebhook>(req::<crate::routes::webhooks::NewWebhook>(op(
        || post(webhooks::create),
        "post",
        "/v1/webhooks",
        "notifications",
        "Register a webhook endpoint (admin): its signing secret, shown once",
        Bearer,
        "json",
        201,
    ))),
    res::<crate::routes::webhooks::WebhookList>(op(
        || get(webhooks::list),
        "get",
        "/v1/webhooks",
        "notifications",
        "The organization's webhook endpoints (admin)",
        Bearer,
        "",
        200,
    )),
    op(
        || delete(webhooks::remove),
        "delete",
        "/v1/webhooks/{id}",
        "notifications",
        "Remove a webhook endpoint (admin): its pending deliveries are cancelled",
        Bearer,
        "",
        204,
    ),
    query::<workers::webhooks::deliveries::DeliveryPage>(res::<
        workers::webhooks::deliveries::DeliveryList,
    >(op(
        || get(webhooks::list_deliveries),
        "get",
        "/v1/webhooks/{id}/deliveries",
        "notifications",
        "An endpoint's delivery log, newest first (admin): status, attempts, last error",
        Bearer,
        "",
        200,
    ))),
    res::<workers::webhooks::deliveries::DeliveryDetail>(op(
        || get(webhooks::get_delivery),
        "get",
        "/v1/webhooks/{id}/deliveries/{delivery_id}",
        "notifications",
        "One delivery: its body and every attempt (admin)",
        Bearer,
        "",
        200,
    )),
    res::<workers::webhooks::deliveries::DeliveryView>(op(
        || post(webhooks::redeliver),
        "post",
        "/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver",
        "notifications",
        "Send a delivery's body again, as a new delivery (admin)",
        Bearer,
        "",
        202,
    )),
];

/// E.164: a `+`, then up to 15 digits, the first not 0.
pub const E164_PATTERN: &str = "^\\+[1-9][0-9]{1,14}$";

/// The path parameters of `path`, each with its format: ids are UUIDs, numbers E.164,
/// and the few words a segment may be are an enum. A malformed one answers 400
/// `invalid_path`.
fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            let schema = match (path, name) {
                (_, "number") => json!({ "type": "string", "pattern": E164_PATTERN, "description": "E.164, e.g. +15557770001" }),
                (_, "action") => json!({ "type": "string", "enum": ["claim", "release", "transfer", "close"] }),
                (_, "tab") => json!({ "type": "string", "enum": ["active", "pending", "history"] }),
                (_, "key") => json!({ "type": "string", "description": "the content hash (64 hex) or the attachment id (UUID)" }),
                (_, "token") => json!({ "type": "string" }),
                _ => json!({ "type": "string", "format": "uuid" }),
            };
            json!({ "name": name, "in": "path", "required": true, "schema": schema })
        })
        .collect()
}

/// The query parameters a query type describes: one per property, required when the
/// type requires it, with the property's schema and description.
fn query_params(query: SchemaFn) -> Vec<Value> {
    let mut g = SchemaSettings::draft2020_12()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .for_deserialize()
        .into_generator();
    let schema = query(&mut g).to_value();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, property)| {
            let mut property = property.clone();
            let description = property
                .as_object_mut()
                .and_then(|p| p.remove("description"))
                .unwrap_or(Value::Null);
            let mut param = json!({
                "name": name,
                "in": "query",
                "required": required.contains(&name.as_str()),
                "schema": property,
            });
            if !description.is_null() {
                param["description"] = description;
            }
            param
        })
        .collect()
}

/// Where the schemas' definitions go, as a `$ref` prefix.
pub const SCHEMAS_REF: &str = "#/components/schemas/";

/// A generator of the document's schemas: JSON Schema 2020-12 (OpenAPI 3.1's dialect),
/// definitions under [`SCHEMAS_REF`], for what the API reads (`serialize` false: the
/// handlers' deserialization) or what it answers.
fn generator(serialize: bool) -> SchemaGenerator {
    let settings = SchemaSettings::draft2020_12().with(|s| {
        s.definitions_path = "/components/schemas".into();
        s.meta_schema = None;
    });
    if serialize {
        settings.for_serialize()
    } else {
        settings.for_deserialize()
    }
    .into_generator()
}

/// Calls `f` on every `$ref` naming a definition.
fn each_ref(v: &mut Value, f: &mut impl FnMut(&mut String)) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                match x {
                    Value::String(r) if k == "$ref" && r.starts_with(SCHEMAS_REF) => f(r),
                    _ => each_ref(x, f),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| each_ref(x, f)),
        _ => {}
    }
}

/// The request and the response definitions as one `components.schemas`. A type read and
/// answered alike is one entry; one described differently each way (`deny_unknown_fields`,
/// an `Option` optional when read but answered as `null`), or referring to one that is,
/// keeps its name for requests and takes `<Name>Response` for answers, where
/// `answers` (the operations' response schemas) and the response definitions refer to it.
fn merge_definitions(
    requests: Map<String, Value>,
    mut responses: Map<String, Value>,
    answers: &mut [&mut Value],
) -> Map<String, Value> {
    let both: Vec<String> = responses
        .keys()
        .filter(|k| requests.contains_key(*k))
        .cloned()
        .collect();
    let mut differ: std::collections::BTreeSet<String> = both
        .iter()
        .filter(|k| requests[k.as_str()] != responses[k.as_str()])
        .cloned()
        .collect();
    loop {
        let grown = both.iter().find(|k| {
            let mut refers = false;
            each_ref(&mut responses[k.as_str()].clone(), &mut |r| {
                refers |= differ.contains(&r[SCHEMAS_REF.len()..]);
            });
            refers && !differ.contains(*k)
        });
        match grown {
            Some(k) => differ.insert(k.clone()),
            None => break,
        };
    }
    let mut renamed = std::collections::BTreeMap::new();
    for name in &differ {
        let mut new = format!("{name}Response");
        while requests.contains_key(&new) || responses.contains_key(&new) {
            new.push('_');
        }
        renamed.insert(name.clone(), new);
    }
    let mut rename = |r: &mut String| {
        if let Some(new) = renamed.get(&r[SCHEMAS_REF.len()..]) {
            *r = format!("{SCHEMAS_REF}{new}");
        }
    };
    for v in responses.values_mut() {
        each_ref(v, &mut rename);
    }
    for v in answers.iter_mut() {
        each_ref(v, &mut rename);
    }
    let mut all = requests;
    for (name, schema) in responses {
        let name = renamed.get(&name).cloned().unwrap_or(name);
        all.insert(name, schema);
    }
    all
}

/// The document of every operation, whatever the configuration.
pub fn document() -> Value {
    document_for(|_| true)
}

/// The document of the operations a server mounts with `carrier` (its name, `None`
/// without a carrier edge): the routes of another carrier are left out.
pub fn document_for_carrier(carrier: Option<&str>) -> Value {
    document_for(|o| o.mounted_with(carrier))
}

impl Operation {
    /// Whether a server with `carrier` (its name, `None` without a carrier edge) mounts
    /// this operation.
    pub fn mounted_with(&self, carrier: Option<&str>) -> bool {
        match self.only_with {
            None => true,
            Some("any") => carrier.is_some(),
            Some(only) => carrier == Some(only),
        }
    }
}

fn document_for(mounted: impl Fn(&Operation) -> bool) -> Value {
    let (mut requests, mut responses) = (generator(false), generator(true));
    let mut answer_schemas = Vec::new();
    let mut paths = Map::new();
    for o in OPERATIONS.iter().filter(|o| mounted(o)) {
        let mut params = path_params(o.path);
        params.extend(o.query.map(query_params).unwrap_or_default());
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
                "4XX": { "description": "refused", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
            },
        });
        let success = match (o.answers, o.response) {
            ("", _) => {
                json!({ "description": if o.ok == 101 { "switching protocols" } else { "success, no content" } })
            }
            (media, Some(schema)) => {
                answer_schemas.push((o, media, schema(&mut responses).to_value()));
                json!({ "description": "success", "content": { media: { "schema": {} } } })
            }
            ("application/json", None) => {
                json!({ "description": "success", "content": { "application/json": { "schema": { "type": "object" } } } })
            }
            (media, None) => json!({ "description": "success", "content": { media: {} } }),
        };
        operation["responses"][o.ok.to_string()] = success;
        let media = match o.body {
            "json" => Some("application/json"),
            "form" => Some("application/x-www-form-urlencoded"),
            "multipart" => Some("multipart/form-data"),
            _ => None,
        };
        if let Some(media) = media {
            let schema = o.request.map_or_else(
                || json!({ "type": "object" }),
                |f| f(&mut requests).to_value(),
            );
            operation["requestBody"] =
                json!({ "required": true, "content": { media: { "schema": schema } } });
        }
        if let Some(c) = o.only_with {
            operation["x-only-with-carrier"] = json!(c);
        }
        if o.path.contains("{number}") {
            let invalid = json!({ "description": "a malformed path parameter: `invalid_path`", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
            operation["responses"]["400"] = invalid;
        }
        paths
            .entry(o.path.to_owned())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("an object")
            .insert(o.method.to_owned(), operation);
    }
    let mut schemas = {
        let mut answers: Vec<&mut Value> = answer_schemas.iter_mut().map(|(_, _, v)| v).collect();
        merge_definitions(
            requests.take_definitions(true),
            responses.take_definitions(true),
            &mut answers,
        )
    };
    for (o, media, schema) in answer_schemas {
        paths[o.path][o.method]["responses"][o.ok.to_string()]["content"][media]["schema"] = schema;
    }
    let error = schemas.insert(
        "Error".to_owned(),
        json!({
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": { "type": "string", "description": "stable, machine-readable" },
                "message": { "type": "string" },
            },
        }),
    );
    assert!(error.is_none(), "no API type is named Error");
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
            "schemas": schemas,
        },
    })
}

/// `GET /openapi.json`: the operations this server mounts (a simulator server does not
/// list Twilio's webhooks, and the reverse).
pub async fn openapi(
    axum::extract::State(state): axum::extract::State<crate::app::AppState>,
) -> Json<Value> {
    let carrier = state.carriers.as_ref().map(|c| c.kind.carrier().name());
    Json(document_for_carrier(carrier))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_ref(name: &str) -> Value {
        json!({ "$ref": format!("{SCHEMAS_REF}{name}") })
    }

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().expect("an object").clone()
    }

    #[test]
    fn a_type_described_differently_each_way_gets_a_response_name() {
        let requests = json!({
            "Id": { "type": "string" },
            "A": { "type": "object", "required": [] },
            "Wrap": { "properties": { "a": to_ref("A") } },
        });
        let responses = json!({
            "Id": { "type": "string" },
            "A": { "type": "object", "required": ["x"] },
            "Wrap": { "properties": { "a": to_ref("A") } },
            "Only": { "properties": { "w": to_ref("Wrap"), "id": to_ref("Id") } },
        });
        let (mut wrap, mut id) = (to_ref("Wrap"), to_ref("Id"));
        let all = merge_definitions(map(requests), map(responses), &mut [&mut wrap, &mut id]);
        let names: Vec<&str> = all.keys().map(String::as_str).collect();
        let mut expected = vec!["A", "AResponse", "Id", "Only", "Wrap", "WrapResponse"];
        expected.sort_unstable();
        let mut names = names;
        names.sort_unstable();
        assert_eq!(names, expected);
        assert_eq!(wrap, to_ref("WrapResponse"));
        assert_eq!(id, to_ref("Id"));
        assert_eq!(all["Wrap"]["properties"]["a"], to_ref("A"));
        assert_eq!(all["WrapResponse"]["properties"]["a"], to_ref("AResponse"));
        assert_eq!(all["Only"]["properties"]["w"], to_ref("WrapResponse"));
        assert_eq!(all["AResponse"]["required"], json!(["x"]));
    }
}
