//! Authorization on every route, walked from the OpenAPI table
//! ([`gateway::openapi::OPERATIONS`]) rather than from a list kept by hand: each operation
//! is turned into concrete requests (its path parameters filled from Acme's fixtures, every
//! variant walked: a direct, group, channel, inbox, queue and External conversation for
//! `{id}`, every queue action, every view tab, ...; a body from [`json_bodies`]), and a
//! route without a fixture for one of its parameters, or without a body when it takes one,
//! fails the walk: no route can be added without being walked.
//!
//! Each request is made:
//! - without credentials, with a forged token and with a revoked one: 401
//!   `unauthenticated` and nothing written (bearer routes);
//! - as the admin and as a member of another organization (Globex): never a success on
//!   anything of Acme's, nothing of Acme's in any answer, and nothing of Acme's written
//!   (what they may do is in their own organization, and writes only there);
//! - as Carol, a member of Acme who is in none of its conversations, inboxes or queues
//!   and no admin: a 4xx with a machine-readable code and nothing written, except for
//!   what [`expect`] allows any member (each case justified there), where the answer
//!   still carries nothing she may not see.
//!
//! Open routes (health, the document, bootstrap, login), the signed media URL and the
//! simulator's controls are checked for what protects each; the Twilio webhooks are not
//! mounted with the simulator (404), and [`carrier_webhooks_refuse_anything_the_carrier_did_not_sign`]
//! checks them on a server with a Twilio carrier. The WebSocket stream is walked for real:
//! the handshake is refused without a session, a resume from position 0 gives an outsider
//! nothing of Acme's, and their typing reaches no one.

use std::collections::BTreeSet;
use std::time::Duration;

use carrier::simulator::Simulator;
use futures_util::{SinkExt, StreamExt};
use gateway::carriers::CarrierKind;
use gateway::openapi::{Auth, Operation, OPERATIONS};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use testkit::fake_twilio::{self, FakeTwilio};
use testkit::server::{add_user, call, TestServer, PASSWORD};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const INBOX_NUMBER: &str = "+15550303000";
const QUEUE_NUMBER: &str = "+15550304000";
const ACME_NUMBER: &str = "+15550305000";
/// Acme's customers: texting the inbox, in a mixed group, claimed in the queue, waiting in
/// it, and in an External conversation of Ada's line.
const INBOX_CUSTOMER: &str = "+15556660001";
const GROUP_CUSTOMER: &str = "+15556660002";
const QUEUE_CUSTOMER: &str = "+15556660003";
const WAITING_CUSTOMER: &str = "+15556660004";
const EXTERNAL_CUSTOMER: &str = "+15556660005";
const ORG_CONTACT_NUMBER: &str = "+15556660100";
const PERSONAL_CONTACT_NUMBER: &str = "+15556660200";
const INBOX_NAME: &str = "Acme Front Desk";
const QUEUE_NAME: &str = "Acme Overflow Queue";
const CHANNEL_NAME: &str = "acme-walk-general";
const ORG_CONTACT_NAME: &str = "Acme Walk Plumbing";
const PERSONAL_CONTACT_NAME: &str = "Walk Confidant of Ada";
/// A word in every message of Acme's (searched for by the walk).
const SECRET_WORD: &str = "zanzibar";
const ADA_EMAIL: &str = "ada@access.example";
const BOB_EMAIL: &str = "bob@access.example";
const CAROL_EMAIL: &str = "carol@access.example";
const GUS_EMAIL: &str = "gus@globex.example";
const GINA_EMAIL: &str = "gina@globex.example";
/// What every caller uploads in the walk (their own file, in their own organization).
const WALK_FILE: &[u8] = b"the caller's own notes, uploaded by the access walk\n";
const WAIT: Duration = Duration::from_secs(15);

/// Who makes the authenticated requests of the walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    GlobexAdmin,
    GlobexMember,
    /// An Acme member in none of Acme's conversations, inboxes or queues; no admin.
    Carol,
}

struct Caller {
    who: Who,
    name: &'static str,
    user: String,
    token: String,
    email: &'static str,
    /// A conversation of the caller's own (for `?conversation=` on attachments).
    own: String,
    /// What no answer to this caller may contain.
    marks: Vec<String>,
    /// The streams this caller may never write to.
    protected: Vec<String>,
}

/// Acme's fixtures.
struct Acme {
    org: String,
    ada: String,
    ada_token: String,
    bob: String,
    bob_token: String,
    carol: String,
    direct: String,
    group: String,
    channel: String,
    inbox: String,
    inbox_conversation: String,
    queue: String,
    claimed: String,
    waiting: String,
    external: String,
    call: String,
    attachment: String,
    attachment_hash: String,
    other_attachment: String,
    media_id: String,
    media_token: String,
    carrier_message_id: String,
    org_contact: String,
    personal_contact: String,
    webhook: String,
    /// A delivery queued to `webhook`.
    delivery: String,
}

impl Acme {
    /// `{id}` of `/v1/conversations/...`: one conversation of every kind and place.
    fn conversations(&self) -> Vec<(&'static str, String)> {
        vec![
            ("direct", self.direct.clone()),
            ("group", self.group.clone()),
            ("channel", self.channel.clone()),
            ("inbox", self.inbox_conversation.clone()),
            ("queue", self.claimed.clone()),
            ("external", self.external.clone()),
        ]
    }

    /// What only Acme's own people may see.
    fn marks(&self) -> Vec<String> {
        let mut marks: Vec<String> = [
            &self.org,
            &self.ada,
            &self.bob,
            &self.carol,
            &self.direct,
            &self.group,
            &self.channel,
            &self.inbox,
            &self.inbox_conversation,
            &self.queue,
            &self.claimed,
            &self.waiting,
            &self.external,
            &self.call,
            &self.attachment,
            &self.attachment_hash,
            &self.other_attachment,
            &self.media_id,
            &self.org_contact,
            &self.personal_contact,
            &self.webhook,
            &self.delivery,
        ]
        .into_iter()
        .cloned()
        .collect();
        marks.extend(
            [
                "Acme",
                ACME_NUMBER,
                INBOX_NUMBER,
                QUEUE_NUMBER,
                INBOX_CUSTOMER,
                GROUP_CUSTOMER,
                QUEUE_CUSTOMER,
                WAITING_CUSTOMER,
                EXTERNAL_CUSTOMER,
                ORG_CONTACT_NUMBER,
                PERSONAL_CONTACT_NUMBER,
                INBOX_NAME,
                QUEUE_NAME,
                CHANNEL_NAME,
                ORG_CONTACT_NAME,
                PERSONAL_CONTACT_NAME,
            ]
            .map(str::to_owned),
        );
        marks.extend(secret_texts());
        marks
    }

    /// What Carol, a member of Acme in none of it, may not see: the conversations she is
    /// not in (the channel is browsable by anyone in Acme, so its id is not here, but what
    /// is posted in it is), their customers and what was said, Ada's personal contact, the
    /// call and the attachment.
    fn carol_marks(&self) -> Vec<String> {
        let mut marks: Vec<String> = [
            &self.direct,
            &self.group,
            &self.inbox_conversation,
            &self.claimed,
            &self.waiting,
            &self.external,
            &self.call,
            &self.attachment,
            &self.attachment_hash,
            &self.other_attachment,
            &self.personal_contact,
        ]
        .into_iter()
        .cloned()
        .collect();
        marks.extend(
            [
                INBOX_CUSTOMER,
                GROUP_CUSTOMER,
                QUEUE_CUSTOMER,
                WAITING_CUSTOMER,
                EXTERNAL_CUSTOMER,
                PERSONAL_CONTACT_NUMBER,
                PERSONAL_CONTACT_NAME,
            ]
            .map(str::to_owned),
        );
        marks.extend(secret_texts());
        marks
    }

    /// The streams of Acme's conversations, inbox, queue and attachments.
    fn fixture_streams(&self) -> Vec<String> {
        [
            &self.direct,
            &self.group,
            &self.channel,
            &self.inbox_conversation,
            &self.claimed,
            &self.waiting,
            &self.external,
            &self.inbox,
            &self.queue,
            &self.attachment,
            &self.other_attachment,
            &self.webhook,
            &self.delivery,
        ]
        .into_iter()
        .cloned()
        .collect()
    }
}

fn secret_texts() -> Vec<String> {
    [
        "direct", "group", "channel", "external", "inbox", "queue", "waiting",
    ]
    .iter()
    .map(|w| format!("{SECRET_WORD} {w} note"))
    .collect()
}

type Labels = Vec<(&'static str, &'static str)>;

#[derive(Clone, Debug)]
enum Body {
    Empty,
    Json(Value),
    Multipart(Vec<u8>),
}

/// One concrete request of an operation. `{me}` (the caller's user id) and `{own}` (a
/// conversation of theirs) in its path, query or body are filled in per caller.
struct Walked {
    op: &'static Operation,
    /// Which fixture each parameter, the body and the query are (`("id", "channel")`).
    labels: Labels,
    path: String,
    query: String,
    body: Body,
}

impl Walked {
    fn label(&self, name: &str) -> Option<&'static str> {
        self.labels
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, l)| *l)
    }

    fn describe(&self) -> String {
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(n, l)| format!("{n}={l}"))
            .collect();
        format!(
            "{} {} [{}]",
            self.op.method.to_uppercase(),
            self.op.path,
            labels.join(", ")
        )
    }

    fn method(&self) -> Method {
        Method::from_bytes(self.op.method.to_uppercase().as_bytes()).expect("an HTTP method")
    }

    /// The path and query as `caller` sends them.
    fn target(&self, me: &str, own: &str) -> String {
        let mut t = self.path.clone();
        if !self.query.is_empty() {
            t.push('?');
            t.push_str(&self.query);
        }
        fill(&t, me, own)
    }

    fn body_for(&self, me: &str, own: &str) -> Body {
        match &self.body {
            Body::Json(v) => {
                Body::Json(serde_json::from_str(&fill(&v.to_string(), me, own)).unwrap())
            }
            other => other.clone(),
        }
    }

    /// Everything the caller said: what an answer may echo without leaking it.
    fn said(&self, me: &str, own: &str) -> String {
        let body = match self.body_for(me, own) {
            Body::Json(v) => v.to_string(),
            _ => String::new(),
        };
        format!("{} {body}", self.target(me, own).replace("%2B", "+"))
    }
}

fn fill(s: &str, me: &str, own: &str) -> String {
    s.replace("{me}", me).replace("{own}", own)
}

fn encoded(number: &str) -> String {
    number.replace('+', "%2B")
}

/// The values a path parameter takes in the walk, by operation: `None` when the walk has
/// no fixture for it (the walk then fails: add one).
fn param_values(a: &Acme, template: &str, param: &str) -> Option<Vec<(&'static str, String)>> {
    let under = |prefix: &str| template.starts_with(prefix);
    let values = match param {
        "id" if under("/v1/conversations/") => a.conversations(),
        "id" if under("/v1/inboxes/") => vec![("inbox", a.inbox.clone())],
        "id" if under("/v1/webhooks/") => vec![("webhook", a.webhook.clone())],
        "delivery_id" if under("/v1/webhooks/") => vec![("delivery", a.delivery.clone())],
        "id" if under("/v1/queues/") => vec![("queue", a.queue.clone())],
        "id" if under("/v1/contacts/") => vec![
            ("organization", a.org_contact.clone()),
            ("personal", a.personal_contact.clone()),
        ],
        // Another user of Acme, its admin, and the caller themself (promoting oneself,
        // setting one's own settings).
        "id" if under("/v1/users/") => vec![
            ("bob", a.bob.clone()),
            ("ada", a.ada.clone()),
            ("me", "{me}".to_owned()),
        ],
        // The attachment the signed URL is for, and another one of Acme's.
        "id" if under("/v1/carriers/media/") => vec![
            ("signed", a.media_id.clone()),
            ("other", a.other_attachment.clone()),
        ],
        "token" if under("/v1/carriers/media/") => vec![
            ("signed", a.media_token.clone()),
            ("forged", forged(&a.media_token)),
        ],
        "number" => vec![
            ("ada_line", encoded(ACME_NUMBER)),
            ("inbox_line", encoded(INBOX_NUMBER)),
            ("queue_line", encoded(QUEUE_NUMBER)),
            ("org_contact", encoded(ORG_CONTACT_NUMBER)),
            ("personal_contact", encoded(PERSONAL_CONTACT_NUMBER)),
        ],
        // A team member (inboxes, queues) and the number's assignee.
        "user" => vec![("bob", a.bob.clone()), ("ada", a.ada.clone())],
        "call" if under("/v1/conversations/") => vec![("call", a.call.clone())],
        "conversation" if under("/v1/queues/") => vec![
            ("claimed", a.claimed.clone()),
            ("waiting", a.waiting.clone()),
        ],
        "action" if under("/v1/queues/") => ["claim", "release", "transfer", "close"]
            .iter()
            .map(|x| (*x, (*x).to_owned()))
            .collect(),
        "tab" if under("/v1/queue-views/") => ["active", "pending", "history"]
            .iter()
            .map(|x| (*x, (*x).to_owned()))
            .collect(),
        "key" if under("/v1/attachments/") => vec![
            ("id", a.attachment.clone()),
            ("hash", a.attachment_hash.clone()),
        ],
        _ => return None,
    };
    Some(values)
}

/// `token` (hex, read case-insensitively) with its last digit changed.
fn forged(token: &str) -> String {
    let last = if token.ends_with('0') { '1' } else { '0' };
    format!("{}{last}", &token[..token.len() - 1])
}

/// The JSON bodies an operation is walked with (`None`: the walk has none; it fails).
/// Valid bodies, so that a refusal is about who asks, not about what they sent; where it
/// matters, the caller asks for themself (`{me}`).
fn json_bodies(a: &Acme, method: &str, path: &str) -> Option<Vec<(&'static str, Value)>> {
    let one = |v: Value| Some(vec![("json", v)]);
    match (method, path) {
        // Someone else's login: an organization of one's own cannot take it over.
        ("post", "/v1/bootstrap") => Some(vec![(
            "taken_email",
            json!({ "organization": "Hijack", "name": "Eve", "extension": "100", "email": ADA_EMAIL, "password": PASSWORD }),
        )]),
        ("post", "/v1/sessions") => Some(vec![(
            "wrong_password",
            json!({ "email": ADA_EMAIL, "password": "not Ada's password at all" }),
        )]),
        ("post", "/v1/users") => Some(vec![
            (
                "new",
                json!({ "name": "Walk", "extension": "555", "role": "admin", "email": "walk@access.example", "password": PASSWORD }),
            ),
            (
                "taken_email",
                json!({ "name": "Bob again", "extension": "556", "role": "admin", "email": BOB_EMAIL, "password": PASSWORD }),
            ),
        ]),
        // Someone else's login, with its right password: one's own session cannot change it.
        ("put", "/v1/me/password") => Some(vec![(
            "ada_login",
            json!({ "email": ADA_EMAIL, "current_password": PASSWORD, "new_password": "a brand new passphrase" }),
        )]),
        ("post", "/v1/users/{id}/role") => one(json!({ "role": "admin" })),
        ("put", "/v1/users/{id}/name") => one(json!({ "name": "Walk Renamed" })),
        ("post", "/v1/webhooks") => one(
            json!({ "url": "http://127.0.0.1:9/walk", "events": ["message.inbound", "desk_phone.sms"] }),
        ),
        ("put", "/v1/retention") => one(json!({ "message_days": 3650 })),
        ("post", "/v1/erasures") => one(json!({ "number": "+15559998877" })),
        ("put", "/v1/users/{id}/settings") | ("put", "/v1/me/settings") => {
            one(json!({ "text_messages_to_desk_phone": true }))
        }
        ("post", "/v1/numbers") => Some(vec![
            ("ada_line", json!({ "number": ACME_NUMBER, "user": "{me}" })),
            (
                "inbox_line",
                json!({ "number": INBOX_NUMBER, "user": "{me}" }),
            ),
        ]),
        ("post", "/v1/numbers/{number}/assignees") => one(json!({ "user": "{me}" })),
        ("post", "/v1/numbers/{number}/route") => one(json!({ "type": "user", "user": "{me}" })),
        ("post", "/v1/numbers/{number}/sms-registration") => one(json!({ "registered": false })),
        ("post", "/v1/contacts") => Some(vec![
            (
                "personal",
                json!({ "name": "Walk Contact", "numbers": ["+15557770001"] }),
            ),
            (
                "organization",
                json!({ "name": "Walk Shared Contact", "numbers": ["+15557770002"], "scope": "organization" }),
            ),
        ]),
        ("patch", "/v1/contacts/{id}") => one(json!({ "company": "Walk Co" })),
        // Name and number kept: Acme's marks stay what they are.
        ("put", "/v1/contacts/{id}") => one(
            json!({ "name": ORG_CONTACT_NAME, "company": "Walk Co", "numbers": [ORG_CONTACT_NUMBER] }),
        ),
        ("post", "/v1/conversations/direct") => one(json!({ "with": a.bob })),
        ("post", "/v1/conversations/external") => Some(vec![
            (
                "ada_line",
                json!({ "our": ACME_NUMBER, "their": EXTERNAL_CUSTOMER }),
            ),
            (
                "inbox_line",
                json!({ "our": INBOX_NUMBER, "their": INBOX_CUSTOMER }),
            ),
            (
                "queue_line",
                json!({ "our": QUEUE_NUMBER, "their": QUEUE_CUSTOMER }),
            ),
        ]),
        ("post", "/v1/conversations/group") => {
            one(json!({ "from": ACME_NUMBER, "users": [a.bob], "externals": ["+15557770003"] }))
        }
        ("post", "/v1/conversations/{id}/calls") => one(json!({ "media": "audio" })),
        ("post", "/v1/conversations/{id}/name") => one(json!({ "name": "hijacked" })),
        ("post", "/v1/conversations/channel") => {
            one(json!({ "name": "walk channel", "members": [a.bob] }))
        }
        ("post", "/v1/conversations/{id}/members") => one(json!({ "users": ["{me}"] })),
        ("post", "/v1/conversations/{id}/messages") => one(json!({ "text": "intrusion" })),
        ("post", "/v1/conversations/{id}/read") => one(json!({ "up_to": 1 })),
        ("post", "/v1/conversations/{id}/transfer") => one(json!({ "to": "{me}" })),
        ("post", "/v1/inboxes") => one(json!({ "name": "Mine", "number": INBOX_NUMBER })),
        ("patch", "/v1/inboxes/{id}") => one(json!({ "name": "Taken over" })),
        ("post", "/v1/inboxes/{id}/members") => one(json!({ "user": "{me}" })),
        ("post", "/v1/queues") => one(json!({ "name": "Mine", "number": QUEUE_NUMBER })),
        ("post", "/v1/queues/{id}/members") => one(json!({ "user": "{me}" })),
        ("put", "/v1/queues/{id}/policy") => one(json!({
            "wait_timeout_ms": 1000, "on_wait_timeout": { "type": "close" },
            "idle_timeout_ms": null, "on_idle_timeout": "return_to_queue", "max_pending_visible": null,
        })),
        // Claim, release and close ignore `to`; a transfer goes to the caller.
        ("post", "/v1/queues/{id}/interactions/{conversation}/{action}") => {
            one(json!({ "to": "{me}" }))
        }
        ("post", "/v1/simulator/inbound") => {
            one(json!({ "from": "+15557770004", "to": ACME_NUMBER, "text": "spoofed" }))
        }
        // A number nobody texts, and the outcome it has anyway: harmless if accepted.
        ("post", "/v1/simulator/outcome") => {
            one(json!({ "to": "+15557770005", "outcome": { "kind": "deliver" } }))
        }
        ("post", "/v1/simulator/release") => one(
            json!({ "carrier_message_id": a.carrier_message_id, "outcome": { "kind": "deliver" } }),
        ),
        _ => None,
    }
}

/// The queries an operation is walked with (none by default).
fn queries(a: &Acme, method: &str, path: &str) -> Vec<(&'static str, String)> {
    let q = |label: &'static str, s: &str| (label, s.to_owned());
    match (method, path) {
        ("get", "/v1/search") => vec![q("secret", &format!("q={SECRET_WORD}"))],
        ("get", "/v1/contacts/search") => {
            vec![q("digits", "q=555"), q("confidant", "q=Confidant")]
        }
        ("get", "/v1/attachments/{key}") => vec![
            q("in_acme", &format!("conversation={}", a.direct)),
            q("in_own", "conversation={own}"),
        ],
        ("get", "/v1/inboxes/{id}/conversations") => vec![
            q("unassigned", ""),
            q("open", "view=open"),
            q("mine", "view=mine"),
        ],
        ("get", "/v1/interactions") => vec![q("all", ""), q("external", "filter=external")],
        _ => vec![("", String::new())],
    }
}

/// Every concrete request of `op`: the product of its parameters', bodies' and queries'
/// variants.
fn expand(a: &Acme, op: &'static Operation) -> Vec<Walked> {
    let mut paths: Vec<(Labels, String)> = vec![(Vec::new(), String::new())];
    for seg in op.path.split('/').skip(1) {
        let choices: Vec<(Option<(&'static str, &'static str)>, String)> =
            match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(param) => param_values(a, op.path, param)
                    .unwrap_or_else(|| {
                        panic!(
                            "{} {}: the access walk has no fixture for `{{{param}}}`: add one to \
                             `param_values` in tests/gateway_access.rs",
                            op.method.to_uppercase(),
                            op.path
                        )
                    })
                    .into_iter()
                    .map(|(label, v)| (Some((param, label)), v))
                    .collect(),
                None => vec![(None, seg.to_owned())],
            };
        paths = paths
            .iter()
            .flat_map(|(labels, p)| {
                choices.iter().map(move |(label, v)| {
                    let mut labels = labels.clone();
                    labels.extend(*label);
                    (labels, format!("{p}/{v}"))
                })
            })
            .collect();
    }
    let bodies: Vec<(&'static str, Body)> = match op.body {
        "" => vec![("", Body::Empty)],
        "json" => json_bodies(a, op.method, op.path)
            .unwrap_or_else(|| {
                panic!(
                    "{} {}: the access walk has no JSON body for it: add one to `json_bodies` \
                     in tests/gateway_access.rs",
                    op.method.to_uppercase(),
                    op.path
                )
            })
            .into_iter()
            .map(|(l, v)| (l, Body::Json(v)))
            .collect(),
        "multipart" if op.path == "/v1/attachments" => {
            vec![("file", Body::Multipart(WALK_FILE.to_vec()))]
        }
        // Twilio's webhooks are walked by `carrier_webhooks_refuse_...`; here (not mounted)
        // they are sent without one.
        "form" if op.auth == Auth::TwilioSignature => vec![("", Body::Empty)],
        other => panic!(
            "{} {}: the access walk has no `{other}` body for it: add one",
            op.method.to_uppercase(),
            op.path
        ),
    };
    let queries = queries(a, op.method, op.path);
    let mut out = Vec::new();
    for (labels, path) in &paths {
        for (body_label, body) in &bodies {
            for (query_label, query) in &queries {
                let mut labels = labels.clone();
                if !body_label.is_empty() {
                    labels.push(("body", body_label));
                }
                if !query_label.is_empty() {
                    labels.push(("query", query_label));
                }
                out.push(Walked {
                    op,
                    labels,
                    path: path.clone(),
                    query: query.clone(),
                    body: body.clone(),
                });
            }
        }
    }
    out
}

/// What a request of an authenticated caller must come to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// A 4xx with a machine-readable code (not 401: the caller is signed in), and nothing
    /// written.
    Refused,
    /// A success that writes nothing.
    Reads,
    /// A success writing only the caller's own things (never a protected stream).
    Writes,
    /// Carol joins Acme's channel: one event on it (she leaves again at once).
    JoinsChannel,
}

/// What `who` may do with an Acme-facing request: [`Expect::Refused`] unless allowed
/// here, with the reason.
fn expect(who: Who, w: &Walked) -> Expect {
    use Expect::*;
    let globex_admin = who == Who::GlobexAdmin;
    let carol = who == Who::Carol;
    let (id, body) = (w.label("id"), w.label("body"));
    match (w.op.method, w.op.path) {
        // About the caller themself, whoever they are: answered from their own
        // conversations, queues and settings only.
        ("get", "/v1/me")
        | ("get", "/v1/me/settings")
        | ("get", "/v1/interactions")
        | ("get", "/v1/search")
        | ("get", "/v1/queues")
        | ("get", "/v1/queue-views/{tab}") => Reads,
        ("put", "/v1/me/settings") => Writes,
        // Logging oneself out (a session of their own, opened for it).
        ("delete", "/v1/sessions/current") => Writes,
        // "Set a user's settings (the user themself or an admin)".
        ("put", "/v1/users/{id}/settings") if id == Some("me") => Writes,
        // "Rename a user (the user themself or an admin)".
        ("put", "/v1/users/{id}/name") if id == Some("me") => Writes,
        // Any member sees their own organization's directory, numbers, channels to join,
        // phonebook (organization-wide contacts and their own) and the name a number has
        // for them: Acme's for Carol, Globex's (none of Acme's) for Globex.
        ("get", "/v1/users")
        | ("get", "/v1/numbers")
        | ("get", "/v1/inboxes")
        | ("get", "/v1/channels")
        | ("get", "/v1/contacts")
        | ("get", "/v1/contacts/search")
        | ("get", "/v1/numbers/{number}/name") => Reads,
        // Any member uploads a file into their own organization (fetching it back needs a
        // conversation that carries it).
        ("post", "/v1/attachments") => Writes,
        // Contacts: personal ones are the caller's; the shared phonebook is kept up to date
        // by any member, by the directory's rules (routes/contacts.rs, tests/contacts.rs):
        // a contact in their own organization's directory either way.
        ("post", "/v1/contacts") => Writes,
        ("get", "/v1/contacts/{id}") if carol && id == Some("organization") => Reads,
        ("patch" | "put" | "delete", "/v1/contacts/{id}")
            if carol && id == Some("organization") =>
        {
            Writes
        }
        // Globex's admin is an admin in Globex: a new user there (Bob's email is taken,
        // whoever asks), their own role unchanged, and the simulator's outbound list
        // (filtered to Globex's numbers) and outcomes (server-wide by design, see
        // routes/simulator.rs; nothing of Acme's is read or written).
        ("post", "/v1/users") if globex_admin && body == Some("new") => Writes,
        ("post", "/v1/users/{id}/role") if globex_admin && id == Some("me") => Reads,
        ("get", "/v1/simulator/outbound") | ("post", "/v1/simulator/outcome") if globex_admin => {
            Reads
        }
        // Globex's admin registers and lists Globex's own webhooks.
        ("post", "/v1/webhooks") if globex_admin => Writes,
        ("get", "/v1/webhooks") if globex_admin => Reads,
        // ... and sets Globex's retention and erases a customer of Globex's: only Globex's
        // keys (the keyring's names begin with the organization).
        ("put", "/v1/retention") | ("post", "/v1/erasures") if globex_admin => Writes,
        ("get", "/v1/retention") | ("get", "/v1/erasures") if globex_admin => Reads,
        // Carol in Acme: her own direct conversation with Bob, a channel of her own (with
        // Bob: anyone may add any user of the organization), and joining Acme's channel
        // (channels are open to the whole organization).
        ("post", "/v1/conversations/direct" | "/v1/conversations/channel") if carol => Writes,
        ("post", "/v1/conversations/{id}/join") if carol && id == Some("channel") => JoinsChannel,
        // Leaving a channel she is not in, or a queue she is not logged in to, changes
        // nothing (and says nothing).
        ("post", "/v1/conversations/{id}/leave") if carol && id == Some("channel") => Reads,
        ("post", "/v1/queues/{id}/logout") if carol => Reads,
        _ => Refused,
    }
}

/// What an open route must come to, whoever asks.
fn expect_open(w: &Walked) -> Expect {
    match (w.op.method, w.op.path, w.label("body")) {
        ("get", "/healthz", _)
        | ("get", "/openapi.json", _)
        | ("get", "/asyncapi.json", _)
        | ("get", "/v1/bootstrap", _) => Expect::Reads,
        ("post", "/v1/bootstrap", Some("taken_email")) => Expect::Refused,
        ("post", "/v1/sessions", Some("wrong_password")) => Expect::Refused,
        _ => panic!(
            "{}: an operation open to everyone needs its expectation in `expect_open`",
            w.describe()
        ),
    }
}

/// `bytes` as a multipart upload (content type, body).
fn multipart(bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "accesswalkboundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"notes.txt\"\r\nContent-Type: text/plain\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Sends a request (again after a 429: the rate limit is per user, and a refused request
/// does nothing); its status, JSON body (`Null` if none) and raw body.
async fn send(
    c: &Client,
    s: &TestServer,
    method: &Method,
    target: &str,
    token: Option<&str>,
    body: &Body,
) -> (StatusCode, Value, String) {
    loop {
        let mut r = c.request(method.clone(), s.url(target));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r = match body {
            Body::Empty => r,
            Body::Json(v) => r.json(v),
            Body::Multipart(bytes) => {
                let (content_type, body) = multipart(bytes);
                r.header(reqwest::header::CONTENT_TYPE, content_type)
                    .body(body)
            }
        };
        let response = r.send().await.expect("request sent");
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let wait = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(1);
            tokio::time::sleep(Duration::from_secs(wait)).await;
            continue;
        }
        let text = response.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        return (status, json, text);
    }
}

/// An authenticated request that must succeed (fixtures).
async fn ok(r: reqwest::RequestBuilder) -> Value {
    let (status, v) = call(r).await;
    assert!(status.is_success(), "{status} {v}");
    v
}

/// Waits until every follower (the outbox, the inbound router, the queue timeline, the
/// webhook dispatcher and its retries) has done what the fixtures set off, as they
/// publish it, and the read models have caught up; returns the log's next position.
async fn settle(s: &TestServer) -> u64 {
    s.settled().await;
    let next = s.ws.store.next_position();
    if let Some(head) = next.checked_sub(1) {
        assert!(s.interactions.wait_for(head, WAIT).await);
        assert!(s.search.wait_for(head, WAIT).await);
        assert!(s.queues.wait_for(head, WAIT).await);
    }
    next
}

/// The streams of the events written at positions `from..to`.
fn written(s: &TestServer, from: u64, to: u64) -> Vec<String> {
    if to <= from {
        return Vec::new();
    }
    s.ws.store
        .read_all_blocking(from, usize::try_from(to - from).unwrap())
        .expect("read back")
        .iter()
        .map(|e| e.stream.as_str().to_owned())
        .collect()
}

/// A PNG of `w`×`h` pixels.
fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            u8::try_from(x * 9).unwrap(),
            u8::try_from(y * 7).unwrap(),
            90,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

async fn upload(c: &Client, s: &TestServer, token: &str, bytes: &[u8]) -> Value {
    let (content_type, body) = multipart(bytes);
    let (status, v) = call(
        c.post(s.url("/v1/attachments"))
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v
}

async fn login(c: &Client, s: &TestServer, email: &str) -> String {
    let v = ok(c
        .post(s.url("/v1/sessions"))
        .json(&json!({ "email": email, "password": PASSWORD })))
    .await;
    v["token"].as_str().unwrap().to_owned()
}

/// Acme, with everything the walk names: Ada (admin) and Bob; a direct conversation, a
/// mixed group on Ada's line, a channel and an External conversation of Ada's, each with a
/// message; an inbox (Bob on its team, holding a customer's conversation) and a queue (Bob
/// an agent, holding one customer, another waiting); a call, an attachment in a message
/// and as MMS; an organization-wide contact and a personal one of Ada's. Carol is a member
/// in none of it.
async fn acme(c: &Client, s: &TestServer) -> Acme {
    let boot = ok(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": "Acme", "name": "Ada", "extension": "100", "email": ADA_EMAIL, "password": PASSWORD,
    })))
    .await;
    let ada_token = boot["token"].as_str().unwrap().to_owned();
    let ada = boot["user_id"].as_str().unwrap().to_owned();
    let org = boot["organization_id"].as_str().unwrap().to_owned();
    let org_id: domain::OrgId = org.parse().unwrap();
    let (bob, bob_token) = add_user(c, s, &ada_token, BOB_EMAIL, "101").await;
    let (carol, _) = add_user(c, s, &ada_token, CAROL_EMAIL, "102").await;
    let as_ada = |r: reqwest::RequestBuilder| r.bearer_auth(&ada_token);
    let as_bob = |r: reqwest::RequestBuilder| r.bearer_auth(&bob_token);
    let post = |path: &str| c.post(s.url(path));
    let id_of = |v: &Value, field: &str| v[field].as_str().unwrap().to_owned();
    let say = |conversation: String, text: String| {
        let r = as_ada(post(&format!("/v1/conversations/{conversation}/messages")))
            .json(&json!({ "text": text }));
        async move { ok(r).await }
    };

    ok(as_ada(post("/v1/numbers")).json(&json!({ "number": ACME_NUMBER, "user": ada }))).await;
    let v =
        ok(as_ada(post("/v1/inboxes"))
            .json(&json!({ "name": INBOX_NAME, "number": INBOX_NUMBER })))
        .await;
    let inbox = id_of(&v, "inbox_id");
    ok(as_ada(post(&format!("/v1/inboxes/{inbox}/members"))).json(&json!({ "user": bob }))).await;
    let v =
        ok(as_ada(post("/v1/queues")).json(&json!({ "name": QUEUE_NAME, "number": QUEUE_NUMBER })))
            .await;
    let queue = id_of(&v, "queue_id");
    ok(as_ada(post(&format!("/v1/queues/{queue}/members"))).json(&json!({ "user": bob }))).await;
    ok(as_bob(post(&format!("/v1/queues/{queue}/login")))).await;

    let v = ok(as_ada(post("/v1/conversations/direct")).json(&json!({ "with": bob }))).await;
    let direct = id_of(&v, "conversation_id");
    say(direct.clone(), format!("{SECRET_WORD} direct note")).await;
    let v = ok(as_ada(post("/v1/conversations/group"))
        .json(&json!({ "from": ACME_NUMBER, "users": [bob], "externals": [GROUP_CUSTOMER] })))
    .await;
    let group = id_of(&v, "conversation_id");
    say(group.clone(), format!("{SECRET_WORD} group note")).await;
    let v = ok(as_ada(post("/v1/conversations/channel"))
        .json(&json!({ "name": CHANNEL_NAME, "members": [bob] })))
    .await;
    let channel = id_of(&v, "conversation_id");
    say(channel.clone(), format!("{SECRET_WORD} channel note")).await;
    let v = ok(as_ada(post("/v1/conversations/external"))
        .json(&json!({ "our": ACME_NUMBER, "their": EXTERNAL_CUSTOMER })))
    .await;
    let external = id_of(&v, "conversation_id");
    say(external.clone(), format!("{SECRET_WORD} external note")).await;
    let v = ok(as_ada(post(&format!("/v1/conversations/{direct}/calls")))
        .json(&json!({ "media": "video" })))
    .await;
    let call_id = id_of(&v, "call_id");

    // An image in the direct conversation and, by MMS, in the group; another file.
    let up = upload(c, s, &ada_token, &png(16, 16)).await;
    let (attachment, attachment_hash) = (id_of(&up, "id"), id_of(&up, "attachment_id"));
    for conversation in [&direct, &group] {
        ok(
            as_ada(post(&format!("/v1/conversations/{conversation}/messages")))
                .json(&json!({ "text": "a picture", "attachments": [attachment_hash] })),
        )
        .await;
    }
    let other = upload(c, s, &ada_token, b"Acme's other file\n").await;
    let other_attachment = id_of(&other, "id");

    // A webhook nobody answers (its deliveries fail and are given up): the customers'
    // texts below are queued to it.
    let v = ok(as_ada(post("/v1/webhooks")).json(&json!({
        "url": "http://127.0.0.1:9/acme", "events": ["message.inbound"],
    })))
    .await;
    let webhook = id_of(&v, "webhook_id");

    // Customers text the inbox and the queue; Bob takes the inbox conversation and claims
    // one of the queue's, the other waits.
    for (from, to, word) in [
        (INBOX_CUSTOMER, INBOX_NUMBER, "inbox"),
        (QUEUE_CUSTOMER, QUEUE_NUMBER, "queue"),
        (WAITING_CUSTOMER, QUEUE_NUMBER, "waiting"),
    ] {
        ok(as_ada(post("/v1/simulator/inbound")).json(
            &json!({ "from": from, "to": to, "text": format!("{SECRET_WORD} {word} note") }),
        ))
        .await;
    }
    let external_id = |our: &str, their: &str| {
        domain::ConversationId::external(
            org_id,
            &domain::PhoneNumber::parse(our).unwrap(),
            &domain::PhoneNumber::parse(their).unwrap(),
        )
        .to_string()
    };
    let inbox_conversation = external_id(INBOX_NUMBER, INBOX_CUSTOMER);
    let claimed = external_id(QUEUE_NUMBER, QUEUE_CUSTOMER);
    let waiting = external_id(QUEUE_NUMBER, WAITING_CUSTOMER);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, view) = call(as_bob(
            c.get(s.url(&format!("/v1/inboxes/{inbox}/conversations"))),
        ))
        .await;
        let (_, list) = call(as_bob(c.get(s.url(&format!("/v1/queues/{queue}/waiting"))))).await;
        let (view, list) = (view.to_string(), list.to_string());
        if view.contains(&inbox_conversation) && list.contains(&claimed) && list.contains(&waiting)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the customers' texts were not routed: {view} {list}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ok(as_bob(post(&format!(
        "/v1/conversations/{inbox_conversation}/assign-to-me"
    ))))
    .await;
    ok(as_bob(post(&format!(
        "/v1/queues/{queue}/interactions/{claimed}/claim"
    ))))
    .await;

    let v = ok(as_ada(post("/v1/contacts")).json(&json!({
        "name": ORG_CONTACT_NAME, "numbers": [ORG_CONTACT_NUMBER], "scope": "organization",
    })))
    .await;
    let org_contact = id_of(&v, "contact_id");
    let v = ok(as_ada(post("/v1/contacts")).json(&json!({
        "name": PERSONAL_CONTACT_NAME, "numbers": [PERSONAL_CONTACT_NUMBER],
    })))
    .await;
    let personal_contact = id_of(&v, "contact_id");

    // The MMS went to the group's customer with a signed URL for the carrier.
    let deadline = tokio::time::Instant::now() + WAIT;
    let sent = loop {
        let (_, v) = call(as_ada(c.get(s.url("/v1/simulator/outbound")))).await;
        let mms = v["texts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["media_urls"].as_array().is_some_and(|m| !m.is_empty()))
            .cloned();
        if let Some(mms) = mms {
            break mms;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the MMS never reached the simulated carrier: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let url = sent["media_urls"][0].as_str().unwrap();
    let (_, signed) = url
        .split_once("/v1/carriers/media/")
        .expect("a signed media URL");
    let (media_id, media_token) = signed.split_once('/').unwrap();
    Acme {
        org,
        ada,
        ada_token: ada_token.clone(),
        bob,
        bob_token: bob_token.clone(),
        carol,
        direct,
        group,
        channel,
        inbox,
        inbox_conversation,
        queue,
        claimed,
        waiting,
        external,
        call: call_id,
        attachment,
        attachment_hash,
        other_attachment,
        media_id: media_id.to_owned(),
        media_token: media_token.to_owned(),
        carrier_message_id: sent["carrier_message_id"].as_str().unwrap().to_owned(),
        org_contact,
        personal_contact,
        delivery: webhook_delivery(c, s, &ada_token, &webhook).await,
        webhook,
    }
}

/// A delivery of Acme's webhook, once one is queued.
async fn webhook_delivery(c: &Client, s: &TestServer, token: &str, webhook: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, v) = call(
            c.get(s.url(&format!("/v1/webhooks/{webhook}/deliveries")))
                .bearer_auth(token),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        if let Some(id) = v["items"][0]["delivery_id"].as_str() {
            return id.to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery was queued to the webhook"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Tallies of the walk.
#[derive(Default)]
struct Tally {
    /// Requests per caller (in `Who` order), and unauthenticated ones.
    per_caller: [usize; 3],
    unauthenticated: usize,
    allowed: Vec<String>,
    /// How the callers were refused: (status, code) → requests.
    refusals: std::collections::BTreeMap<(u16, String), usize>,
    failures: Vec<String>,
}

impl Tally {
    fn fail(&mut self, f: String) {
        self.failures.push(f);
    }
}

fn index(who: Who) -> usize {
    match who {
        Who::GlobexAdmin => 0,
        Who::GlobexMember => 1,
        Who::Carol => 2,
    }
}

/// Checks one answer against what was expected, writes included.
#[allow(clippy::too_many_arguments)]
fn judge(
    t: &mut Tally,
    s: &TestServer,
    what: &str,
    expected: Expect,
    authenticated: bool,
    validation_first: bool,
    (status, json, text): (&StatusCode, &Value, &str),
    (before, after): (u64, u64),
    marks: &[String],
    protected: &[String],
    said: &str,
) {
    let streams = written(s, before, after);
    match expected {
        Expect::Refused => {
            if !(status.is_client_error() && json["code"].is_string()) {
                t.fail(format!("{what}: expected a refusal, got {status} {text}"));
            } else if authenticated && *status == StatusCode::UNAUTHORIZED {
                t.fail(format!("{what}: a signed-in caller got 401: {text}"));
            } else if !validation_first
                && matches!(
                    *status,
                    StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY
                )
            {
                t.fail(format!(
                    "{what}: refused as bad input ({status} {text}) before anything was \
                     authorized: the walk's request must be valid for the check to mean something"
                ));
            }
            if !streams.is_empty() {
                t.fail(format!(
                    "{what}: refused ({status}) but wrote to {streams:?}"
                ));
            }
        }
        Expect::Reads => {
            if !status.is_success() {
                t.fail(format!("{what}: expected a success, got {status} {text}"));
            }
            if !streams.is_empty() {
                t.fail(format!("{what}: wrote to {streams:?}"));
            }
        }
        Expect::Writes | Expect::JoinsChannel => {
            if !status.is_success() {
                t.fail(format!("{what}: expected a success, got {status} {text}"));
            }
            // Joining writes to the channel (checked by the caller); anything else is the
            // caller's own.
            if expected == Expect::Writes {
                for stream in &streams {
                    if let Some(p) = protected.iter().find(|p| stream.contains(p.as_str())) {
                        t.fail(format!("{what}: wrote to {stream} ({p} is not theirs)"));
                    }
                }
            }
        }
    }
    for mark in marks {
        if text.contains(mark.as_str()) && !said.contains(mark.as_str()) {
            t.fail(format!("{what}: the answer leaks {mark}: {status} {text}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_route_refuses_strangers_and_other_tenants() {
    let started = std::time::Instant::now();
    let s = TestServer::start_with_carrier(CarrierKind::Simulator(Simulator::new()), |_| {}).await;
    let c = testkit::http();
    let a = acme(&c, &s).await;

    // Carol's own conversation (with Ada), and a session of hers already ended.
    let carol_token = login(&c, &s, CAROL_EMAIL).await;
    let v = ok(c
        .post(s.url("/v1/conversations/direct"))
        .bearer_auth(&carol_token)
        .json(&json!({ "with": a.ada })))
    .await;
    let carol_own = v["conversation_id"].as_str().unwrap().to_owned();
    let revoked = login(&c, &s, CAROL_EMAIL).await;
    let (status, _) = call(
        c.delete(s.url("/v1/sessions/current"))
            .bearer_auth(&revoked),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Globex is another tenant: its admin Gus and member Gina, and a conversation of theirs.
    let boot = ok(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": "Globex", "name": "Gus", "extension": "100", "email": GUS_EMAIL, "password": PASSWORD,
    })))
    .await;
    let gus_token = boot["token"].as_str().unwrap().to_owned();
    let gus = boot["user_id"].as_str().unwrap().to_owned();
    let (gina, gina_token) = add_user(&c, &s, &gus_token, GINA_EMAIL, "101").await;
    let v = ok(c
        .post(s.url("/v1/conversations/direct"))
        .bearer_auth(&gus_token)
        .json(&json!({ "with": gina })))
    .await;
    let globex_own = v["conversation_id"].as_str().unwrap().to_owned();
    // Each says something in their own conversation: their streams have frames of their own.
    for (token, conversation) in [(&gus_token, &globex_own), (&carol_token, &carol_own)] {
        ok(
            c.post(s.url(&format!("/v1/conversations/{conversation}/messages")))
                .bearer_auth(token)
                .json(&json!({ "text": "hello from my own conversation" })),
        )
        .await;
    }

    let mut acme_marks = a.marks();
    acme_marks.push(carol_own.clone());
    let callers = [
        Caller {
            who: Who::GlobexAdmin,
            name: "Globex's admin",
            user: gus,
            token: gus_token,
            email: GUS_EMAIL,
            own: globex_own.clone(),
            marks: acme_marks.clone(),
            protected: acme_marks.clone(),
        },
        Caller {
            who: Who::GlobexMember,
            name: "Globex's member",
            user: gina,
            token: gina_token,
            email: GINA_EMAIL,
            own: globex_own,
            marks: acme_marks.clone(),
            protected: acme_marks.clone(),
        },
        Caller {
            who: Who::Carol,
            name: "Carol (Acme, in none of it)",
            user: a.carol.clone(),
            token: carol_token,
            email: CAROL_EMAIL,
            own: carol_own,
            marks: a.carol_marks(),
            protected: a.fixture_streams(),
        },
    ];
    let strangers: [(&str, Option<&str>); 3] = [
        ("no token", None),
        ("a forged token", Some("not-a-session-token")),
        ("a revoked token", Some(revoked.as_str())),
    ];
    settle(&s).await;

    let mut t = Tally::default();
    let mut covered = BTreeSet::new();
    for (n, op) in OPERATIONS.iter().enumerate() {
        let mounted = op.only_with.is_none_or(|w| w == "any" || w == "simulator");
        for w in expand(&a, op) {
            let method = w.method();
            // Another carrier's routes are not mounted here, for anyone.
            if !mounted {
                let mut tokens: Vec<(&str, Option<&str>)> = vec![("no token", None)];
                tokens.extend(callers.iter().map(|k| (k.name, Some(k.token.as_str()))));
                for (name, token) in tokens {
                    let target = w.target(&a.ada, &a.direct);
                    let before = s.ws.store.next_position();
                    let (status, json, text) = send(&c, &s, &method, &target, token, &w.body).await;
                    let after = s.ws.store.next_position();
                    if (status, json["code"].as_str())
                        != (StatusCode::NOT_FOUND, Some("route_not_found"))
                        || after != before
                    {
                        t.fail(format!(
                            "{} as {name}: another carrier's route answered {status} {text}",
                            w.describe()
                        ));
                    }
                }
                covered.insert(n);
                continue;
            }
            match op.auth {
                Auth::None => {
                    let expected = expect_open(&w);
                    let mut tokens: Vec<(&str, Option<&str>, &[String])> =
                        vec![("no token", None, acme_marks.as_slice())];
                    tokens.extend(
                        callers
                            .iter()
                            .map(|k| (k.name, Some(k.token.as_str()), k.marks.as_slice())),
                    );
                    for (name, token, marks) in tokens {
                        let target = w.target(&a.ada, &a.direct);
                        let before = s.ws.store.next_position();
                        let (status, json, text) =
                            send(&c, &s, &method, &target, token, &w.body).await;
                        let after = s.ws.store.next_position();
                        judge(
                            &mut t,
                            &s,
                            &format!("{} as {name}", w.describe()),
                            expected,
                            false,
                            true,
                            (&status, &json, &text),
                            (before, after),
                            marks,
                            &[],
                            &w.said(&a.ada, &a.direct),
                        );
                        if op.path == "/openapi.json"
                            && json != gateway::openapi::document_for_carrier(Some("simulator"))
                        {
                            t.fail("GET /openapi.json: not the document".into());
                        }
                        if op.path == "/asyncapi.json" && json != gateway::asyncapi::document() {
                            t.fail("GET /asyncapi.json: not the document".into());
                        }
                    }
                }
                Auth::SignedUrl => {
                    // The signature is the only credential: whoever asks (a carrier has no
                    // session), the URL as signed opens that attachment and nothing else;
                    // a session, even Acme's admin's, opens nothing more.
                    let valid =
                        w.label("id") == Some("signed") && w.label("token") == Some("signed");
                    let expected = if valid {
                        Expect::Reads
                    } else {
                        Expect::Refused
                    };
                    let mut tokens: Vec<(&str, Option<&str>)> =
                        vec![("no token", None), ("Ada", Some(a.ada_token.as_str()))];
                    tokens.extend(callers.iter().map(|k| (k.name, Some(k.token.as_str()))));
                    for (name, token) in tokens {
                        let target = w.target(&a.ada, &a.direct);
                        let before = s.ws.store.next_position();
                        let (status, json, text) =
                            send(&c, &s, &method, &target, token, &w.body).await;
                        let after = s.ws.store.next_position();
                        let text = if valid { String::new() } else { text };
                        judge(
                            &mut t,
                            &s,
                            &format!("{} as {name}", w.describe()),
                            expected,
                            false,
                            false,
                            (&status, &json, &text),
                            (before, after),
                            &[],
                            &[],
                            "",
                        );
                    }
                }
                Auth::TwilioSignature => {
                    panic!("{}: mounted with the simulator?", w.describe())
                }
                Auth::Bearer | Auth::BearerOrQuery => {
                    // Without a valid session: 401 `unauthenticated`, nothing written.
                    for (name, token) in strangers {
                        let target = w.target(&a.ada, &a.direct);
                        let before = s.ws.store.next_position();
                        let (status, json, text) = send(
                            &c,
                            &s,
                            &method,
                            &target,
                            token,
                            &w.body_for(&a.ada, &a.direct),
                        )
                        .await;
                        let after = s.ws.store.next_position();
                        t.unauthenticated += 1;
                        if (status, json["code"].as_str())
                            != (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
                            || after != before
                        {
                            t.fail(format!(
                                "{} with {name}: expected 401 unauthenticated and nothing \
                                 written, got {status} {text} ({} events)",
                                w.describe(),
                                after - before
                            ));
                        }
                    }
                    if op.auth == Auth::BearerOrQuery {
                        let target = format!("{}?token=not-a-session-token", w.path);
                        let (status, json, text) =
                            send(&c, &s, &method, &target, None, &Body::Empty).await;
                        if (status, json["code"].as_str())
                            != (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
                        {
                            t.fail(format!(
                                "{} with ?token=forged: got {status} {text}",
                                w.describe()
                            ));
                        }
                    }
                    for k in &callers {
                        let mut expected = expect(k.who, &w);
                        // The WebSocket is walked below; a plain GET is no upgrade.
                        if op.auth == Auth::BearerOrQuery {
                            expected = Expect::Refused;
                        }
                        // Logging out ends a session opened for it, not the walk's.
                        let token = if op.method == "delete" && op.path == "/v1/sessions/current" {
                            login(&c, &s, k.email).await
                        } else {
                            k.token.clone()
                        };
                        let target = w.target(&k.user, &k.own);
                        let body = w.body_for(&k.user, &k.own);
                        let before = s.ws.store.next_position();
                        let (status, json, text) =
                            send(&c, &s, &method, &target, Some(&token), &body).await;
                        let after = s.ws.store.next_position();
                        t.per_caller[index(k.who)] += 1;
                        let what = format!("{} as {}", w.describe(), k.name);
                        if expected == Expect::Refused {
                            let code = json["code"].as_str().unwrap_or_default().to_owned();
                            *t.refusals.entry((status.as_u16(), code)).or_default() += 1;
                        } else {
                            t.allowed.push(format!("{what}: {status}"));
                        }
                        judge(
                            &mut t,
                            &s,
                            &what,
                            expected,
                            true,
                            op.auth == Auth::BearerOrQuery,
                            (&status, &json, &text),
                            (before, after),
                            &k.marks,
                            &k.protected,
                            &w.said(&k.user, &k.own),
                        );
                        if expected == Expect::JoinsChannel {
                            let joined = written(&s, before, after);
                            if joined.len() != 1 || !joined[0].contains(a.channel.as_str()) {
                                t.fail(format!("{what}: joining wrote {joined:?}"));
                            }
                            // Back out, so that she stays in none of Acme's conversations.
                            let before = s.ws.store.next_position();
                            let (status, _, text) = send(
                                &c,
                                &s,
                                &Method::POST,
                                &format!("/v1/conversations/{}/leave", a.channel),
                                Some(&k.token),
                                &Body::Empty,
                            )
                            .await;
                            let left = written(&s, before, s.ws.store.next_position());
                            assert!(status.is_success() && left.len() == 1, "{status} {text}");
                        }
                        if op.method == "delete" && op.path == "/v1/sessions/current" {
                            let (status, _, _) =
                                send(&c, &s, &Method::GET, "/v1/me", Some(&token), &Body::Empty)
                                    .await;
                            if status != StatusCode::UNAUTHORIZED {
                                t.fail(format!("{what}: the session still works ({status})"));
                            }
                        }
                    }
                    if op.auth == Auth::BearerOrQuery {
                        websocket_walk(&mut t, &s, &a, op, &callers, &strangers).await;
                    }
                }
            }
            covered.insert(n);
        }
    }
    assert_eq!(
        covered.len(),
        OPERATIONS.len(),
        "every operation walked: missing {:?}",
        OPERATIONS
            .iter()
            .enumerate()
            .filter(|(n, _)| !covered.contains(n))
            .map(|(_, o)| format!("{} {}", o.method, o.path))
            .collect::<Vec<_>>()
    );

    // Carol browses Acme's channels (anyone in Acme may join one): Acme's, which she
    // left, and the one she made; Globex, once the list has caught up with everything,
    // still sees none of them.
    let head = settle(&s).await - 1;
    let channels = |token: &str| {
        c.get(s.url(&format!("/v1/channels?after={head}")))
            .bearer_auth(token.to_owned())
    };
    let (status, list) = call(channels(&callers[2].token)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{list}");
    let general = items
        .iter()
        .find(|i| i["conversation_id"] == json!(a.channel))
        .expect("Acme's channel listed");
    assert_eq!(
        (&general["name"], &general["joined"]),
        (&json!(CHANNEL_NAME), &json!(false))
    );
    for k in &callers[..2] {
        let (status, list) = call(channels(&k.token)).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(list["items"], json!([]), "{list}");
    }

    println!(
        "access walk: {} operations; {} requests per caller (Globex admin, Globex member, \
         Carol: {:?}), {} unauthenticated; {} allowed successes; {:.1}s",
        covered.len(),
        t.per_caller.iter().max().unwrap(),
        t.per_caller,
        t.unauthenticated,
        t.allowed.len(),
        started.elapsed().as_secs_f64()
    );
    for allowed in &t.allowed {
        println!("  allowed: {allowed}");
    }
    for ((status, code), n) in &t.refusals {
        println!("  refused {n:>4} × {status} {code}");
    }
    assert!(
        t.failures.is_empty(),
        "{} access failures:\n{}",
        t.failures.len(),
        t.failures.join("\n")
    );
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn ws_url(s: &TestServer, path: &str, query: &str) -> String {
    format!("{}{path}?{query}", s.base.replace("http://", "ws://"))
}

/// The text frames `ws` gets until it is quiet for `quiet`.
async fn frames(ws: &mut Ws, quiet: Duration) -> Vec<String> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(quiet, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => out.push(t.to_string()),
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
    }
    out
}

/// The users whose typing `ws` receives, in order, up to and including `last`'s
/// (bounded by [`WAIT`]).
async fn typists_until(ws: &mut Ws, last: &str) -> Vec<String> {
    let mut got = Vec::new();
    let _ = tokio::time::timeout(WAIT, async {
        while let Some(Ok(m)) = ws.next().await {
            let Message::Text(frame) = m else { continue };
            let v: Value = serde_json::from_str(&frame).unwrap_or(Value::Null);
            if v["type"] == "typing" {
                let user = v["user"].as_str().unwrap_or_default().to_owned();
                let done = user == last;
                got.push(user);
                if done {
                    return;
                }
            }
        }
    })
    .await;
    got
}

/// The stream, for real: the handshake without a session is refused with 401; every
/// caller's resume from position 0 (query token and bearer header) carries nothing of
/// Acme's they may not see; and their typing in Acme's conversations reaches nobody there.
async fn websocket_walk(
    t: &mut Tally,
    s: &TestServer,
    a: &Acme,
    op: &Operation,
    callers: &[Caller],
    strangers: &[(&str, Option<&str>)],
) {
    for (name, token) in strangers {
        let query = token.map_or_else(String::new, |t| format!("token={t}"));
        match tokio_tungstenite::connect_async(ws_url(s, op.path, &query)).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                let body: Value = serde_json::from_slice(r.body().as_deref().unwrap_or_default())
                    .unwrap_or(Value::Null);
                if (r.status().as_u16(), body["code"].as_str()) != (401, Some("unauthenticated")) {
                    t.fail(format!(
                        "WebSocket {} with {name}: refused with {} {body}",
                        op.path,
                        r.status()
                    ));
                }
            }
            Ok(_) => t.fail(format!("WebSocket {} with {name}: upgraded", op.path)),
            Err(e) => t.fail(format!("WebSocket {} with {name}: {e}", op.path)),
        }
    }
    for k in callers {
        for by_header in [false, true] {
            let ws = if by_header {
                let mut r = ws_url(s, op.path, "since=0").into_client_request().unwrap();
                r.headers_mut().insert(
                    "authorization",
                    format!("Bearer {}", k.token).parse().unwrap(),
                );
                tokio_tungstenite::connect_async(r).await
            } else {
                tokio_tungstenite::connect_async(ws_url(
                    s,
                    op.path,
                    &format!("since=0&token={}", k.token),
                ))
                .await
            };
            let Ok((mut ws, _)) = ws else {
                t.fail(format!("WebSocket {} as {}: not upgraded", op.path, k.name));
                continue;
            };
            t.per_caller[index(k.who)] += 1;
            let got = frames(&mut ws, Duration::from_millis(700)).await;
            if got.is_empty() {
                t.fail(format!(
                    "WebSocket {} as {} (since=0): not even their own frames",
                    op.path, k.name
                ));
            }
            for frame in got {
                for mark in &k.marks {
                    if frame.contains(mark.as_str()) {
                        t.fail(format!(
                            "WebSocket {} as {} (since=0): a frame leaks {mark}: {frame}",
                            op.path, k.name
                        ));
                    }
                }
            }
        }
    }

    // The same resume gives Bob what was said in Acme's direct conversation: the checks
    // above would see a leak.
    let url = ws_url(s, op.path, &format!("since=0&token={}", a.bob_token));
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("a WebSocket");
    let said = format!("{SECRET_WORD} direct note");
    let got = frames(&mut ws, Duration::from_millis(700)).await;
    assert!(
        got.iter().any(|f| f.contains(&said)),
        "Bob's resume: {got:?}"
    );
    drop(ws);

    // Typing: Ada and Bob listen; the outsiders type in each of Acme's conversations, and
    // each waits for the answer to a ping it sends after (the server handles a socket's
    // frames in order and hands typing out before it reads on, so every outsider's typing
    // has been handed out by then); then Bob and Ada type in theirs. A connection's frames
    // arrive in the order they were handed out, so whatever reached Ada or Bob from the
    // outsiders came before the other's typing: no waiting on the clock.
    let connect = |token: &str| {
        let url = ws_url(s, op.path, &format!("token={token}"));
        async move {
            tokio_tungstenite::connect_async(url)
                .await
                .expect("a WebSocket")
                .0
        }
    };
    let mut ada = connect(&a.ada_token).await;
    let mut bob = connect(&a.bob_token).await;
    let typing = |conversation: &str| {
        Message::Text(
            json!({ "type": "typing", "conversation_id": conversation })
                .to_string()
                .into(),
        )
    };
    let mut outsiders = Vec::new();
    for k in callers {
        let mut ws = connect(&k.token).await;
        for (_, conversation) in a.conversations() {
            ws.send(typing(&conversation)).await.unwrap();
        }
        ws.send(typing(&a.waiting)).await.unwrap();
        testkit::stream::handled(&mut ws).await;
        outsiders.push(ws);
    }
    bob.send(typing(&a.direct)).await.unwrap();
    ada.send(typing(&a.direct)).await.unwrap();
    for (listener, ws, expected) in [("Ada", &mut ada, &a.bob), ("Bob", &mut bob, &a.ada)] {
        let got = typists_until(ws, expected).await;
        if got != [expected.clone()] {
            t.fail(format!(
                "typing: {listener} got typing from {got:?}, expected only from {expected}"
            ));
        }
    }
    drop(outsiders);
}

const TWILIO_NUMBER: &str = "+15550306000";

/// A forged webhook: what it is, its signature, its parameters, and whether it carries a
/// bearer token instead.
type Attempt<'a> = (&'a str, Option<String>, &'a [(String, String)], bool);
const TWILIO_CUSTOMER: &str = "+15556660301";

/// Twilio's webhooks (no session: the carrier signs them): unsigned, signed with another
/// auth token, for another URL or over other parameters, or with an admin's bearer token
/// instead, a webhook is refused with 403 `invalid_signature` and writes nothing; signed,
/// it is taken (so the refusals are the signature's). The simulator's routes are not
/// mounted with Twilio.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carrier_webhooks_refuse_anything_the_carrier_did_not_sign() {
    let fake = FakeTwilio::start().await;
    let s = TestServer::start_with_carrier(CarrierKind::Twilio(fake.carrier()), |_| {}).await;
    let c = testkit::http();
    let org =
        testkit::texting::org_with_number(&c, &s.base, "ada@twilio-access.example", TWILIO_NUMBER)
            .await;
    let id =
        testkit::texting::start_external(&c, &s.base, &org, TWILIO_NUMBER, TWILIO_CUSTOMER).await;
    testkit::texting::post_text(&c, &s.base, &org, id, "a text the carrier reports on").await;
    let sent = fake.wait_for_sent(1, WAIT).await.remove(0);
    settle(&s).await;

    let form = |params: &[(String, String)]| {
        let mut f = form_urlencoded::Serializer::new(String::new());
        for (k, v) in params {
            f.append_pair(k, v);
        }
        f.finish()
    };
    let mut walked = 0;
    for op in OPERATIONS {
        if op.only_with == Some("simulator") {
            let method = Method::from_bytes(op.method.to_uppercase().as_bytes()).unwrap();
            for token in [None, Some(org.token.as_str())] {
                let (status, json, text) =
                    send(&c, &s, &method, op.path, token, &Body::Empty).await;
                assert_eq!(
                    (status, json["code"].as_str()),
                    (StatusCode::NOT_FOUND, Some("route_not_found")),
                    "{} {} is mounted with Twilio: {text}",
                    op.method,
                    op.path
                );
            }
            continue;
        }
        if op.auth != Auth::TwilioSignature {
            continue;
        }
        assert_eq!(op.only_with, Some("twilio"), "{}", op.path);
        let owned = |p: &[(&str, &str)]| -> Vec<(String, String)> {
            p.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let (url, params, tampered) = match op.path {
            "/v1/carriers/twilio/inbound" => {
                let params = FakeTwilio::inbound_params(
                    "SMaccesswalk0001",
                    TWILIO_CUSTOMER,
                    TWILIO_NUMBER,
                    "a text nobody sent",
                    &[],
                );
                let tampered = FakeTwilio::inbound_params(
                    "SMaccesswalk0001",
                    "+15556660302",
                    TWILIO_NUMBER,
                    "a text nobody sent",
                    &[],
                );
                (s.url(op.path), params, tampered)
            }
            "/v1/carriers/twilio/status" => {
                let url = sent.get("StatusCallback").unwrap().to_owned();
                let report = |status: &str| {
                    owned(&[
                        ("AccountSid", fake_twilio::ACCOUNT_SID),
                        ("MessageSid", sent.sid.as_str()),
                        ("SmsSid", sent.sid.as_str()),
                        ("MessageStatus", status),
                        ("To", TWILIO_CUSTOMER),
                        ("From", TWILIO_NUMBER),
                    ])
                };
                (url, report("delivered"), report("failed"))
            }
            other => panic!("{other}: a carrier webhook needs its signature checks here"),
        };
        // What an earlier webhook set off (the inbound router) is done.
        settle(&s).await;
        let good = fake_twilio::sign(fake_twilio::AUTH_TOKEN, &url, &params);
        let attempts: [Attempt; 5] = [
            ("no signature", None, params.as_slice(), false),
            (
                "a signature made with another auth token",
                Some(fake_twilio::sign("not-the-auth-token", &url, &params)),
                params.as_slice(),
                false,
            ),
            (
                "a signature for another URL",
                Some(fake_twilio::sign(
                    fake_twilio::AUTH_TOKEN,
                    &s.url("/v1/carriers/twilio/elsewhere"),
                    &params,
                )),
                params.as_slice(),
                false,
            ),
            (
                "a signature over other parameters",
                Some(good.clone()),
                tampered.as_slice(),
                false,
            ),
            (
                "an admin's bearer token instead",
                None,
                params.as_slice(),
                true,
            ),
        ];
        for (name, signature, params, bearer) in attempts {
            let before = s.ws.store.next_position();
            let mut r = c
                .post(&url)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(form(params));
            if let Some(sig) = signature {
                r = r.header("X-Twilio-Signature", sig);
            }
            if bearer {
                r = r.bearer_auth(&org.token);
            }
            let (status, v) = call(r).await;
            assert_eq!(
                (status, v["code"].as_str()),
                (StatusCode::FORBIDDEN, Some("invalid_signature")),
                "POST {} with {name}: {v}",
                op.path
            );
            // Whatever it might have set off has been handled by every follower.
            let after = settle(&s).await;
            assert_eq!(
                after,
                before,
                "POST {} with {name} wrote to {:?}",
                op.path,
                written(&s, before, after)
            );
        }
        // Signed as the carrier signs: taken.
        let before = s.ws.store.next_position();
        let r = fake.post_signed(&url, &params, None).await;
        assert!(r.status().is_success(), "POST {}: {}", op.path, r.status());
        assert!(s.ws.store.next_position() > before, "POST {}", op.path);
        walked += 1;
    }
    assert_eq!(
        walked,
        OPERATIONS
            .iter()
            .filter(|o| o.auth == Auth::TwilioSignature)
            .count()
    );
    assert!(walked > 0);
}
