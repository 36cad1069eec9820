//! The stream hub's routing as a function over recorded events. A day's work is done over
//! HTTP first (channel joins and leaves right after bursts, inbox moves, number
//! assignments, queue claims and transfers, a second organization); only then is the
//! whole log fed to a fresh `gateway::hub::Audiences` (through `gateway::hub::route`), so it routes every event long after
//! the fact — a hub as far behind as it gets. Each frame must reach exactly the users who
//! could see it at the event's own position, as the domain's rules say when replayed to
//! that position (not as they say now).

use std::collections::{BTreeSet, HashMap};

use domain::conversation::ActorFacts;
use domain::directory::Routing;
use domain::{
    Aggregate, Conversation, ConversationEvent, ConversationId, Directory, DirectoryEvent, Inbox,
    InboxEvent, InboxId, OrgId, Queue, QueueEvent, QueueId, UserId,
};
use eventlog::RecordedEvent;
use gateway::hub::{Audiences, Routed};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use testkit::server::{add_user, call, customer_text, TestServer, PASSWORD};
use workers::inbound_router;

const INBOX_NUMBER: &str = "+15550301000";
const QUEUE_NUMBER: &str = "+15550302000";
const DEE_NUMBER: &str = "+15550303000";
const CUSTOMER: &str = "+15557770301";

/// The aggregates folded from the log up to a position: the rules' own answer.
#[derive(Default)]
struct Replayed {
    conversations: HashMap<ConversationId, Conversation>,
    inboxes: HashMap<InboxId, Inbox>,
    queues: HashMap<QueueId, Queue>,
    directories: HashMap<OrgId, Directory>,
}

impl Replayed {
    fn apply(&mut self, record: &RecordedEvent) {
        match record.stream.category() {
            "conversation" => {
                let event: ConversationEvent = actors::event_codec::decode(record).unwrap();
                let id: ConversationId = record.stream.id().parse().unwrap();
                self.conversations.entry(id).or_default().apply(&event);
            }
            "inbox" => {
                let event: InboxEvent = actors::event_codec::decode(record).unwrap();
                let id: InboxId = record.stream.id().parse().unwrap();
                self.inboxes.entry(id).or_default().apply(&event);
            }
            "queue" => {
                let event: QueueEvent = actors::event_codec::decode(record).unwrap();
                let id: QueueId = record.stream.id().parse().unwrap();
                self.queues.entry(id).or_default().apply(&event);
            }
            "directory" => {
                let event: DirectoryEvent = actors::event_codec::decode(record).unwrap();
                let id: OrgId = record.stream.id().parse().unwrap();
                self.directories.entry(id).or_default().apply(&event);
            }
            _ => {}
        }
    }

    fn users_of(&self, org: OrgId) -> BTreeSet<UserId> {
        self.directories[&org].users().map(|u| u.id).collect()
    }

    /// What the gateway's facts lookup says about `user` and conversation `id`.
    fn facts(&self, id: ConversationId, user: UserId) -> ActorFacts {
        let c = &self.conversations[&id];
        let org = c.header().unwrap().org;
        let inbox_member = c
            .inbox()
            .is_some_and(|a| self.inboxes[&a.inbox].is_member(user));
        let line = c
            .kind()
            .and_then(|k| k.our_number())
            .and_then(|n| self.directories[&org].number(n));
        let claimer = |q: &QueueId| self.queues.get(q).and_then(|q| q.claimer_of(id));
        let holds_our_number = line.is_some_and(|n| {
            n.is_assigned_to(user)
                || matches!(n.route, Routing::Queue(q) if claimer(&q) == Some(user))
        });
        let admin = self.directories[&org].role_of(&user) == Some(domain::Role::Admin);
        // A queue's conversation: its agents read it while nobody holds it, admins always.
        let queue_reader = line.is_some_and(|n| match n.route {
            Routing::Queue(q) => {
                admin
                    || (claimer(&q).is_none()
                        && self.queues.get(&q).is_some_and(|q| q.is_member(user)))
            }
            _ => false,
        });
        ActorFacts {
            holds_our_number,
            inbox_member,
            admin,
            queue_reader,
        }
    }

    /// Who may see conversation `id` now, user by user.
    fn viewers(&self, id: ConversationId) -> (OrgId, BTreeSet<UserId>) {
        let c = &self.conversations[&id];
        let org = c.header().unwrap().org;
        let users = self
            .users_of(org)
            .into_iter()
            .filter(|u| c.can_view(*u, &self.facts(id, *u)))
            .collect();
        (org, users)
    }

    /// Who the rules say should get `routed`'s frame.
    fn expected(&self, routed: &Routed) -> (OrgId, BTreeSet<UserId>) {
        let f = &routed.frame;
        fn id<T: std::str::FromStr>(f: &Value, key: &str) -> T {
            match f[key].as_str().map(str::parse) {
                Some(Ok(id)) => id,
                _ => panic!("{key} in {f}"),
            }
        }
        match f["type"].as_str() {
            Some("inbox") => {
                let inbox = &self.inboxes[&id(f, "inbox_id")];
                let org = inbox.header().unwrap().org;
                let mut users = inbox.members().clone();
                // A conversation's move: the organization's admins too (they may take
                // any over); the team's own changes: the team.
                if !f["conversation_id"].is_null() {
                    users.extend(
                        self.directories[&org]
                            .users()
                            .filter(|u| u.role == domain::Role::Admin)
                            .map(|u| u.id),
                    );
                }
                (org, users)
            }
            Some("queue") => {
                let queue = &self.queues[&id(f, "queue_id")];
                let org = queue.header().unwrap().org;
                // The queue's agents, and the organization's admins.
                let mut users = queue.members().clone();
                users.extend(
                    self.directories[&org]
                        .users()
                        .filter(|u| u.role == domain::Role::Admin)
                        .map(|u| u.id),
                );
                if f["change"] == "queue_member_removed" {
                    users.insert(id(f, "agent"));
                }
                (org, users)
            }
            None => self.viewers(id(f, "conversation_id")),
            Some(other) => panic!("unexpected frame type {other}"),
        }
    }
}

struct Org {
    admin: String,
    admin_id: UserId,
    org: OrgId,
}

async fn bootstrap(c: &Client, s: &TestServer, name: &str, email: &str) -> Org {
    let (status, boot) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": name, "name": "Admin", "extension": "100", "email": email, "password": PASSWORD,
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{boot}");
    Org {
        admin: boot["token"].as_str().unwrap().to_owned(),
        admin_id: boot["user_id"].as_str().unwrap().parse().unwrap(),
        org: serde_json::from_value(boot["organization_id"].clone()).unwrap(),
    }
}

/// A request that must succeed; its JSON body.
async fn ok(r: reqwest::RequestBuilder) -> Value {
    let (status, body) = call(r).await;
    assert!(status.is_success(), "{status}: {body}");
    body
}

async fn text_in(s: &TestServer, org: OrgId, to: &str, text: &str) -> ConversationId {
    let record = customer_text(s, org, to, CUSTOMER, text).await;
    match inbound_router::route(&s.ws, &record).await.unwrap() {
        inbound_router::Routed::Recorded(id) | inbound_router::Routed::Queued(id, _) => id,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_far_behind_routes_every_event_to_its_audience_as_of_its_position() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let acme = bootstrap(&c, &s, "Acme", "ada@hub.example").await;
    let other = bootstrap(&c, &s, "Other", "oz@hub.example").await;
    let admin = acme.admin.clone();
    let (bob, bob_t) = add_user(&c, &s, &admin, "bob@hub.example", "101").await;
    let (cy, cy_t) = add_user(&c, &s, &admin, "cy@hub.example", "102").await;
    let (dee, dee_t) = add_user(&c, &s, &admin, "dee@hub.example", "103").await;
    let [bob_id, cy_id, dee_id]: [UserId; 3] = [&bob, &cy, &dee].map(|u| u.parse().unwrap());
    let post = |conversation: &str, token: &str, text: &str| {
        c.post(s.url(&format!("/v1/conversations/{conversation}/messages")))
            .bearer_auth(token)
            .json(&json!({ "text": text }))
    };

    // A channel: Cy joins right after a burst, Bob leaves right after, Dee is added.
    let channel = ok(c
        .post(s.url("/v1/conversations/channel"))
        .bearer_auth(&admin)
        .json(&json!({ "name": "general", "members": [bob] })))
    .await["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for text in ["m1", "m2", "m3"] {
        ok(post(&channel, &admin, text)).await;
    }
    ok(c.post(s.url(&format!("/v1/conversations/{channel}/join")))
        .bearer_auth(&cy_t))
    .await;
    ok(post(&channel, &admin, "m4")).await;
    ok(c.post(s.url(&format!("/v1/conversations/{channel}/leave")))
        .bearer_auth(&bob_t))
    .await;
    ok(post(&channel, &admin, "m5")).await;
    ok(
        c.post(s.url(&format!("/v1/conversations/{channel}/members")))
            .bearer_auth(&admin)
            .json(&json!({ "users": [dee] })),
    )
    .await;
    ok(post(&channel, &cy_t, "m6")).await;

    // An inbox: Bob and Cy on the team, Dee added later; the conversation moves around.
    let inbox = ok(c
        .post(s.url("/v1/inboxes"))
        .bearer_auth(&admin)
        .json(&json!({ "name": "Front desk", "number": INBOX_NUMBER })))
    .await["inbox_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let members = s.url(&format!("/v1/inboxes/{inbox}/members"));
    for u in [&bob, &cy] {
        ok(c.post(&members)
            .bearer_auth(&admin)
            .json(&json!({ "user": u })))
        .await;
    }
    let x = text_in(&s, acme.org, INBOX_NUMBER, "i1").await;
    let act = |action: &str, token: &str| {
        c.post(s.url(&format!("/v1/conversations/{x}/{action}")))
            .bearer_auth(token)
    };
    ok(act("assign-to-me", &bob_t)).await;
    ok(act("transfer", &bob_t).json(&json!({ "to": cy }))).await;
    ok(c.post(&members)
        .bearer_auth(&admin)
        .json(&json!({ "user": dee })))
    .await;
    text_in(&s, acme.org, INBOX_NUMBER, "i2").await;
    ok(act("return", &cy_t)).await;
    ok(act("assign-to-me", &dee_t)).await;
    ok(act("done", &dee_t)).await;
    text_in(&s, acme.org, INBOX_NUMBER, "i3").await;

    // A queue: a claim, a transfer, a release; follow-ups reach whoever holds it then.
    let queue = ok(c
        .post(s.url("/v1/queues"))
        .bearer_auth(&admin)
        .json(&json!({ "name": "Support", "number": QUEUE_NUMBER })))
    .await["queue_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for u in [&bob, &cy] {
        ok(c.post(s.url(&format!("/v1/queues/{queue}/members")))
            .bearer_auth(&admin)
            .json(&json!({ "user": u })))
        .await;
    }
    for t in [&bob_t, &cy_t] {
        ok(c.post(s.url(&format!("/v1/queues/{queue}/login")))
            .bearer_auth(t))
        .await;
    }
    let y = text_in(&s, acme.org, QUEUE_NUMBER, "q1").await;
    let interaction = |action: &str, token: &str| {
        c.post(s.url(&format!("/v1/queues/{queue}/interactions/{y}/{action}")))
            .bearer_auth(token)
    };
    ok(interaction("claim", &bob_t)).await;
    text_in(&s, acme.org, QUEUE_NUMBER, "q2").await;
    ok(interaction("transfer", &bob_t).json(&json!({ "to": cy }))).await;
    text_in(&s, acme.org, QUEUE_NUMBER, "q3").await;
    ok(interaction("release", &cy_t)).await;
    text_in(&s, acme.org, QUEUE_NUMBER, "q4").await;
    ok(interaction("claim", &bob_t)).await;
    ok(interaction("close", &bob_t)).await;
    ok(c.post(s.url(&format!("/v1/queues/{queue}/logout")))
        .bearer_auth(&cy_t))
    .await;

    // Dee's own number, assigned to Cy for a while.
    ok(c.post(s.url("/v1/numbers"))
        .bearer_auth(&admin)
        .json(&json!({ "number": DEE_NUMBER, "user": dee })))
    .await;
    let z = ok(c
        .post(s.url("/v1/conversations/external"))
        .bearer_auth(&dee_t)
        .json(&json!({ "our": DEE_NUMBER, "their": CUSTOMER })))
    .await["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(post(&z, &dee_t, "p1")).await;
    ok(
        c.post(s.url(&format!("/v1/numbers/{DEE_NUMBER}/assignees")))
            .bearer_auth(&admin)
            .json(&json!({ "user": cy })),
    )
    .await;
    ok(post(&z, &dee_t, "p2")).await;
    ok(
        c.delete(s.url(&format!("/v1/numbers/{DEE_NUMBER}/assignees/{cy}")))
            .bearer_auth(&admin),
    )
    .await;
    ok(post(&z, &dee_t, "p3")).await;

    // Another organization's channel.
    let oz_channel = ok(c
        .post(s.url("/v1/conversations/channel"))
        .bearer_auth(&other.admin)
        .json(&json!({ "name": "general" })))
    .await["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(post(&oz_channel, &other.admin, "oz1")).await;

    // Only now, with every actor at its final state, route the whole log.
    let end = s.ws.store.next_position();
    let records =
        eventlog::store::nonblocking::read_all(&s.ws.store, 0, usize::try_from(end).unwrap() + 1)
            .await
            .unwrap();
    assert_eq!(records.len() as u64, end);
    let state = gateway::AppState::new(s.ws.clone(), s.queues.clone(), s.interactions.clone());
    let mut audiences = Audiences::default();
    let mut replayed = Replayed::default();
    let mut routed = Vec::new();
    for record in &records {
        replayed.apply(record);
        let Some(r) = gateway::hub::route(&mut audiences, &state, record).await else {
            continue;
        };
        assert_eq!(r.position, record.position);
        assert_eq!(
            (r.org, r.users.clone()),
            replayed.expected(&r),
            "frame at {}: {}",
            r.position,
            r.frame
        );
        assert!(
            r.users.is_subset(&replayed.users_of(r.org)),
            "never to another organization: {}",
            r.frame
        );
        routed.push(r);
    }

    // The same, spelled out for the steps that a late, current-state routing gets wrong.
    let by_text = |text: &str| -> BTreeSet<UserId> {
        let found: Vec<_> = routed
            .iter()
            .filter(|r| r.frame["item"]["text"] == text)
            .collect();
        assert_eq!(found.len(), 1, "one frame for {text}");
        found[0].users.clone()
    };
    let ada = acme.admin_id;
    assert_eq!(
        by_text("m1"),
        [ada, bob_id].into(),
        "Cy joined after the burst"
    );
    assert_eq!(by_text("m3"), [ada, bob_id].into());
    assert_eq!(by_text("m4"), [ada, bob_id, cy_id].into());
    assert_eq!(by_text("m5"), [ada, cy_id].into(), "Bob left before m5");
    assert_eq!(by_text("m6"), [ada, cy_id, dee_id].into());
    // An inbox's conversations: its team and the admins (who may take any over).
    assert_eq!(
        by_text("i1"),
        [ada, bob_id, cy_id].into(),
        "Dee joined the team later"
    );
    assert_eq!(by_text("i2"), [ada, bob_id, cy_id, dee_id].into());
    // A queue's: the agent holding it, the admins, and the queue's agents while nobody
    // holds it.
    assert_eq!(
        by_text("q1"),
        [ada, bob_id, cy_id].into(),
        "waiting: the queue's agents"
    );
    assert_eq!(by_text("q2"), [ada, bob_id].into(), "Bob claimed it");
    assert_eq!(by_text("q3"), [ada, cy_id].into(), "transferred to Cy");
    assert_eq!(by_text("q4"), [ada, bob_id, cy_id].into(), "released");
    assert_eq!(by_text("p1"), [dee_id].into());
    assert_eq!(by_text("p2"), [dee_id, cy_id].into(), "Cy holds the number");
    assert_eq!(by_text("p3"), [dee_id].into(), "no longer");
    assert_eq!(by_text("oz1"), [other.admin_id].into());

    // Inbox and queue changes, in order, with their subjects.
    let changes = |kind: &str| -> Vec<(String, Value, BTreeSet<UserId>)> {
        routed
            .iter()
            .filter(|r| r.frame["type"] == kind)
            .map(|r| {
                let subject = if kind == "inbox" {
                    r.frame["assignee"].clone()
                } else {
                    r.frame["agent"].clone()
                };
                (
                    r.frame["change"].as_str().unwrap().to_owned(),
                    subject,
                    r.users.clone(),
                )
            })
            .collect()
    };
    let team = |users: &[UserId]| users.iter().copied().collect::<BTreeSet<_>>();
    let moves: Vec<_> = changes("inbox")
        .into_iter()
        .filter(|(change, ..)| !change.starts_with("inbox_"))
        .collect();
    assert_eq!(
        moves,
        vec![
            (
                "conversation_assigned".into(),
                json!(bob),
                team(&[ada, bob_id, cy_id])
            ),
            (
                "conversation_transferred".into(),
                json!(cy),
                team(&[ada, bob_id, cy_id])
            ),
            (
                "returned_to_inbox".into(),
                Value::Null,
                team(&[ada, bob_id, cy_id, dee_id])
            ),
            (
                "conversation_assigned".into(),
                json!(dee),
                team(&[ada, bob_id, cy_id, dee_id])
            ),
            (
                "marked_done".into(),
                Value::Null,
                team(&[ada, bob_id, cy_id, dee_id])
            ),
            (
                "reopened_by_inbound_text".into(),
                Value::Null,
                team(&[ada, bob_id, cy_id, dee_id])
            ),
        ]
    );
    let queue_changes: Vec<(String, Value)> = changes("queue")
        .into_iter()
        .map(|(change, agent, _)| (change, agent))
        .collect();
    assert_eq!(
        queue_changes,
        vec![
            ("queue_created".into(), Value::Null),
            ("queue_member_added".into(), json!(bob)),
            ("queue_member_added".into(), json!(cy)),
            ("agent_logged_in".into(), json!(bob)),
            ("agent_logged_in".into(), json!(cy)),
            ("interaction_queued".into(), Value::Null),
            ("interaction_claimed".into(), json!(bob)),
            ("interaction_transferred".into(), json!(cy)),
            ("interaction_released".into(), json!(cy)),
            ("interaction_claimed".into(), json!(bob)),
            ("interaction_closed".into(), json!(bob)),
            ("agent_logged_out".into(), json!(cy)),
        ]
    );
}
