//! Cluster mode on real processes: three `nats-server`s (R3 JetStream, every write
//! fsynced) and two `switchboard serve --store nats://…` nodes, on loopback.
//!
//! One run goes through what a cluster must survive, in order:
//! 1. concurrent Assign to Me through both nodes: exactly one winner per conversation;
//! 2. the stream's leader SIGKILLed under HTTP load, senders retrying with their
//!    `Idempotency-Key`: every acknowledged message in the history exactly once;
//! 3. a switchboard node SIGKILLed: its client resumes on the other node with `since=` and
//!    misses nothing; the process managers move over (their lease expires) and a queue
//!    timer due meanwhile fires, once;
//! 4. two of three nats-servers down: writes refused with 503 `storage_unavailable` and
//!    `/healthz` saying so, nothing half-written; writes come back with the quorum;
//! 5. all five restarted: identical histories through both nodes, and each node's replica
//!    verifies (chains, indexes, `$all` contiguous).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use testkit::nats::{self, NatsNode};
use tokio_tungstenite::tungstenite::Message;

const PASSWORD: &str = "correct horse battery staple";
const INBOX: &str = "+15550901000";
const QUEUE: &str = "+15550902000";
const LINE: &str = "+15550903000";

/// One `switchboard` process.
struct Node {
    name: String,
    port: u16,
    data: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn start(&mut self, servers: &str, monitors: &str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args([
                "serve",
                "--store",
                servers,
                "--nats-monitor",
                monitors,
                "--nats-write-timeout-s",
                "4",
                "--node",
                &self.name,
                "--allow-signups",
                "--listen",
                &format!("127.0.0.1:{}", self.port),
                "--data-dir",
            ])
            .arg(&self.data)
            .env("RUST_LOG", "warn,natslog=info,switchboard=info")
            .env("NO_COLOR", "1")
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("switchboard starts");
        self.child = Some(child);
    }

    /// SIGKILL: the machine is gone.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, and the clean exit it leads to.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(60);
            while c.try_wait().ok().flatten().is_none() {
                assert!(Instant::now() < deadline, "{} did not stop", self.name);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Whether this node ran the process managers when last it said: its log's last word
    /// on the lease is "taken".
    fn leads(&self) -> bool {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let taken = log.rfind("lease taken");
        let lost = log.rfind("lease lost");
        taken.is_some() && taken > lost
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            // A failed phase names the node's answer; its log names the cause (every
            // `internal` answer logs its detail): the warnings and errors, and the end.
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let notable: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                .collect();
            eprintln!(
                "--- node {}: {} warning/error lines (last 60) ---\n{}\n--- its last 40 lines ---\n{}",
                self.name,
                notable.len(),
                notable[notable.len().saturating_sub(60)..].join("\n"),
                lines[lines.len().saturating_sub(40)..].join("\n"),
            );
        }
    }
}

fn client() -> reqwest::Client {
    carrier::tls::install_default_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn healthy(c: &reqwest::Client, node: &Node) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(r) = c.get(format!("{}/healthz", node.base())).send().await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} not healthy in time; its log: {}",
            node.name,
            std::fs::read_to_string(&node.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn call(r: reqwest::RequestBuilder) -> (StatusCode, Value) {
    match r.send().await {
        Ok(r) => {
            let status = r.status();
            (status, r.json().await.unwrap_or(Value::Null))
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            json!({ "transport": e.to_string() }),
        ),
    }
}

/// Sends `r` until it is answered 2xx, or anything but "retry shortly": a 503 (the cluster
/// still settling on a loaded machine, or unavailable for a moment) or a 409
/// `idempotency_key_in_use` (a try still running). Every try carries one Idempotency-Key,
/// so a retry of a write whose outcome was unknown writes nothing twice. Bounded.
async fn ok(r: reqwest::RequestBuilder) -> Value {
    let r = r.header("idempotency-key", uuid::Uuid::new_v4().to_string());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, v) = call(r.try_clone().expect("a body that can be sent again")).await;
        let again = status == StatusCode::SERVICE_UNAVAILABLE
            || (status == StatusCode::CONFLICT && v["code"] == "idempotency_key_in_use");
        if !again || Instant::now() > deadline {
            assert!(status.is_success(), "{status} {v}");
            return v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Retries `make()` until it answers 2xx (bounded): reads through a node whose replica or
/// actors have not yet seen a write another node made an instant before. Every try
/// carries one Idempotency-Key (a refused try is not recorded: the next runs afresh).
async fn eventually_ok(make: impl Fn() -> reqwest::RequestBuilder) -> Value {
    let key = uuid::Uuid::new_v4().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, v) = call(make().header("idempotency-key", &key)).await;
        if status.is_success() {
            return v;
        }
        assert!(Instant::now() < deadline, "{status} {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every item of a conversation's history, oldest first.
async fn history(c: &reqwest::Client, base: &str, token: &str, conv: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let mut url = format!("{base}/v1/conversations/{conv}/messages?limit=200");
        if let Some(b) = before {
            url.push_str(&format!("&before={b}"));
        }
        let page = eventually_ok(|| c.get(&url).bearer_auth(token)).await;
        let mut got: Vec<Value> = page["items"].as_array().unwrap().clone();
        got.extend(items);
        items = got;
        match page["next_before"].as_u64() {
            Some(b) => before = Some(b),
            None => return items,
        }
    }
}

/// The name of the nats-server leading the log's stream, as a live server reports it.
async fn stream_leader(c: &reqwest::Client, nodes: &[NatsNode]) -> Option<String> {
    for n in nodes.iter().filter(|n| n.is_running()) {
        let url = format!("{}/jsz?accounts=true&streams=true", n.monitor());
        let Ok(r) = c.get(url).send().await else {
            continue;
        };
        let Ok(v) = r.json::<Value>().await else {
            continue;
        };
        for a in v["account_details"].as_array().into_iter().flatten() {
            for s in a["stream_detail"].as_array().into_iter().flatten() {
                if s["name"] == "SWITCHBOARD" {
                    if let Some(l) = s["cluster"]["leader"].as_str() {
                        return Some(l.to_owned());
                    }
                }
            }
        }
    }
    None
}

struct Org {
    id: domain::OrgId,
    admin: String,
    u1: (String, String),
    u2: (String, String),
}

async fn login(c: &reqwest::Client, base: &str, email: &str) -> String {
    let v = ok(c
        .post(format!("{base}/v1/sessions"))
        .json(&json!({ "email": email, "password": PASSWORD })))
    .await;
    v["token"].as_str().unwrap().to_owned()
}

/// An organization made through both nodes: bootstrap on one, users on the other.
async fn organization(c: &reqwest::Client, a: &Node, b: &Node) -> Org {
    let boot = ok(c.post(format!("{}/v1/bootstrap", a.base())).json(&json!({
        "organization": "Cluster Co", "name": "Ada", "extension": "100",
        "email": "ada@cluster.example", "password": PASSWORD,
    })))
    .await;
    let admin = boot["token"].as_str().unwrap().to_owned();
    let id: domain::OrgId = serde_json::from_value(boot["organization_id"].clone()).unwrap();
    let mut users = Vec::new();
    for (i, email) in ["u1@cluster.example", "u2@cluster.example"]
        .iter()
        .enumerate()
    {
        let ext = format!("10{}", i + 1);
        let created = eventually_ok(|| {
            c.post(format!("{}/v1/users", b.base()))
                .bearer_auth(&admin)
                .json(&json!({
                    "name": email, "extension": ext, "role": "member",
                    "email": email, "password": PASSWORD,
                }))
        })
        .await;
        let token = login(c, &b.base(), email).await;
        users.push((created["user_id"].as_str().unwrap().to_owned(), token));
    }
    Org {
        id,
        admin,
        u2: users.pop().unwrap(),
        u1: users.pop().unwrap(),
    }
}

fn external(org: domain::OrgId, our: &str, their: &str) -> String {
    domain::ConversationId::external(
        org,
        &domain::PhoneNumber::parse(our).unwrap(),
        &domain::PhoneNumber::parse(their).unwrap(),
    )
    .to_string()
}

/// POSTs to `url` until the answer is not 503 (at most 60 s): the answer.
async fn pressed(c: &reqwest::Client, url: &str, token: &str) -> (StatusCode, Value) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, v) = call(c.post(url).bearer_auth(token)).await;
        if status != StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
            return (status, v);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Phase 1: two people press Assign to Me at once, each through another node.
async fn assign_races(c: &reqwest::Client, a: &Node, b: &Node, org: &Org) {
    let inbox = ok(c
        .post(format!("{}/v1/inboxes", a.base()))
        .bearer_auth(&org.admin)
        .json(&json!({ "name": "Front desk", "number": INBOX })))
    .await;
    let inbox = inbox["inbox_id"].as_str().unwrap().to_owned();
    for user in [&org.u1.0, &org.u2.0] {
        eventually_ok(|| {
            c.post(format!("{}/v1/inboxes/{inbox}/members", b.base()))
                .bearer_auth(&org.admin)
                .json(&json!({ "user": user }))
        })
        .await;
    }
    let customers: Vec<String> = (0..5).map(|i| format!("+1555770{i:04}")).collect();
    for (i, from) in customers.iter().enumerate() {
        let node = if i % 2 == 0 { a } else { b };
        ok(c.post(format!("{}/v1/simulator/inbound", node.base()))
            .bearer_auth(&org.admin)
            .json(&json!({ "from": from, "to": INBOX, "text": format!("help {i}") })))
        .await;
    }
    for from in &customers {
        let conv = external(org.id, INBOX, from);
        // The inbound router (on whichever node holds the lease) records the text.
        eventually_ok(|| {
            c.get(format!("{}/v1/conversations/{conv}/messages", a.base()))
                .bearer_auth(&org.u1.1)
        })
        .await;
        // A press the cluster did not answer in time (503 `storage_unavailable`: its outcome
        // is unknown) is pressed again by the same person until it is decided: pressing
        // Assign to Me on a conversation one holds already answers 200, so each person ends
        // with the answer their press really got.
        let url = |node: &Node| format!("{}/v1/conversations/{conv}/assign-to-me", node.base());
        let (url_a, url_b) = (url(a), url(b));
        let (first, second) =
            tokio::join!(pressed(c, &url_a, &org.u1.1), pressed(c, &url_b, &org.u2.1));
        let mut winners = 0;
        for (status, v) in [first, second] {
            match status {
                StatusCode::OK => winners += 1,
                StatusCode::CONFLICT => assert_eq!(v["code"], "already_assigned", "{v}"),
                // Not seen the conversation yet on that node: the other one won meanwhile
                // or will; it is not a second winner.
                StatusCode::NOT_FOUND => {}
                other => panic!("{other} {v}"),
            }
        }
        assert_eq!(winners, 1, "exactly one Assign to Me wins for {conv}");
    }
}

/// Phase 2: the stream's leader dies under load; every acknowledged message is there once.
async fn leader_killed_under_load(
    c: &reqwest::Client,
    a: &Node,
    b: &Node,
    nats_nodes: &mut [NatsNode],
    org: &Org,
) -> String {
    let conv = ok(c
        .post(format!("{}/v1/conversations/direct", a.base()))
        .bearer_auth(&org.admin)
        .json(&json!({ "with": org.u1.0 })))
    .await["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bases = Arc::new([a.base(), b.base()]);
    let acked = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let senders: Vec<_> = (0..4)
        .map(|s| {
            let (c, bases, acked) = (c.clone(), bases.clone(), acked.clone());
            let (token, conv) = (org.admin.clone(), conv.clone());
            tokio::spawn(async move {
                for i in 0..20 {
                    let key = uuid::Uuid::new_v4().to_string();
                    let deadline = Instant::now() + Duration::from_secs(120);
                    let mut attempt = 0usize;
                    loop {
                        let base = &bases[(s + i + attempt) % 2];
                        let (status, v) = call(
                            c.post(format!("{base}/v1/conversations/{conv}/messages"))
                                .bearer_auth(&token)
                                .header("idempotency-key", &key)
                                .json(&json!({ "text": format!("load {s}/{i}") })),
                        )
                        .await;
                        if status == StatusCode::CREATED {
                            acked
                                .lock()
                                .unwrap()
                                .push(v["message_id"].as_str().unwrap().to_owned());
                            break;
                        }
                        assert!(
                            status.is_server_error() || status == StatusCode::BAD_GATEWAY,
                            "a retry may only meet unavailability: {status} {v}"
                        );
                        assert!(Instant::now() < deadline, "never acknowledged: {v}");
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            })
        })
        .collect();
    // Kill the leader once some writes are acknowledged.
    while acked.lock().unwrap().len() < 15 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let leader = stream_leader(c, nats_nodes).await.expect("a stream leader");
    let killed = nats_nodes
        .iter_mut()
        .find(|n| n.name == leader)
        .expect("the leader is one of ours");
    killed.kill();
    for s in senders {
        s.await.expect("sender");
    }
    killed.start();
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), 80);
    let items = history(c, &a.base(), &org.admin, &conv).await;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for item in items.iter().filter(|i| i["type"] == "message") {
        *seen
            .entry(item["message_id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    for id in &acked {
        assert_eq!(
            seen.get(id),
            Some(&1),
            "acknowledged {id} once in the history"
        );
    }
    assert_eq!(seen.len(), acked.len(), "nothing else was written");
    conv
}

async fn ws_connect(
    base: &str,
    token: &str,
    since: Option<u64>,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut url = format!(
        "{}/v1/stream?token={token}",
        base.replacen("http://", "ws://", 1)
    );
    if let Some(s) = since {
        url.push_str(&format!("&since={s}"));
    }
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket");
    ws
}

/// The next JSON frame, if one comes within `wait`.
async fn frame(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    wait: Duration,
) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).ok(),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

/// Phase 3: a switchboard node dies; its client resumes elsewhere; timers move over.
async fn node_killed(
    c: &reqwest::Client,
    nodes: &mut [Node; 2],
    servers: &str,
    monitors: &str,
    org: &Org,
    conv: &str,
) {
    // The node that runs the process managers is the one to lose.
    let deadline = Instant::now() + Duration::from_secs(30);
    let lead = loop {
        if let Some(i) = (0..2).find(|&i| nodes[i].leads()) {
            break i;
        }
        assert!(
            Instant::now() < deadline,
            "a node took the lease; their lease lines: {:?}",
            nodes
                .iter()
                .map(|n| std::fs::read_to_string(&n.log)
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| l.contains("lease") || l.contains("process managers"))
                    .map(str::to_owned)
                    .collect::<Vec<_>>())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let other = 1 - lead;
    let (lead_base, other_base) = (nodes[lead].base(), nodes[other].base());
    // A waiting customer whose wait times out after the node is gone.
    ok(c.post(format!("{other_base}/v1/queues"))
        .bearer_auth(&org.admin)
        .json(&json!({ "name": "Night", "number": QUEUE,
            "policy": { "wait_timeout_ms": 20_000, "on_wait_timeout": { "type": "close" } } })))
    .await;
    let customer = "+15557771234";
    ok(c.post(format!("{other_base}/v1/simulator/inbound"))
        .bearer_auth(&org.admin)
        .json(&json!({ "from": customer, "to": QUEUE, "text": "anyone?" })))
    .await;
    let queued = external(org.id, QUEUE, customer);
    let queued_items = || async {
        history(c, &other_base, &org.admin, &queued)
            .await
            .into_iter()
            .filter(|i| i["type"] == "system")
            .map(|i| i["note"]["type"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !queued_items().await.contains(&"queued".to_owned()) {
        assert!(Instant::now() < deadline, "the text was queued");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // U1 follows the conversation on the node about to die.
    let (_, u1_token) = &org.u1;
    let mut ws = ws_connect(&lead_base, u1_token, None).await;
    ok(
        c.post(format!("{lead_base}/v1/conversations/{conv}/messages"))
            .bearer_auth(&org.admin)
            .json(&json!({ "text": "before the crash" })),
    )
    .await;
    let mut last = None;
    while let Some(f) = frame(&mut ws, Duration::from_secs(10)).await {
        if let Some(p) = f["position"].as_u64() {
            last = Some(p);
        }
        if f["item"]["text"] == "before the crash" {
            break;
        }
    }
    let last = last.expect("a frame before the crash");
    nodes[lead].kill();
    let mut sent = HashSet::new();
    for i in 0..5 {
        let text = format!("after the crash {i}");
        ok(
            c.post(format!("{other_base}/v1/conversations/{conv}/messages"))
                .bearer_auth(&org.admin)
                .json(&json!({ "text": text })),
        )
        .await;
        sent.insert(text);
    }
    // Resumed on the other node from the last position seen: everything since, once.
    let mut ws = ws_connect(&other_base, u1_token, Some(last)).await;
    let mut got = Vec::new();
    let mut positions = Vec::new();
    while got.len() < sent.len() {
        let f = frame(&mut ws, Duration::from_secs(20))
            .await
            .expect("the resumed stream delivers what was missed");
        if let Some(p) = f["position"].as_u64() {
            assert!(p > last, "nothing at or before since= again");
            positions.push(p);
        }
        if f["conversation_id"] == conv && f["item"]["type"] == "message" {
            got.push(f["item"]["text"].as_str().unwrap().to_owned());
        }
    }
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "in order, no repeat"
    );
    assert_eq!(got.iter().cloned().collect::<HashSet<_>>(), sent);
    assert_eq!(got.len(), sent.len(), "no message twice");
    // The lease moves to the survivor; the timer due meanwhile fires once.
    let deadline = Instant::now() + Duration::from_secs(90);
    while !queued_items().await.contains(&"timed_out".to_owned()) {
        assert!(
            Instant::now() < deadline,
            "the queue timer fired on the survivor"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        nodes[other].leads(),
        "the survivor runs the process managers"
    );
    nodes[lead].start(servers, monitors);
    healthy(c, &nodes[lead]).await;
    let notes = queued_items().await;
    assert_eq!(
        notes.iter().filter(|n| *n == "timed_out").count(),
        1,
        "{notes:?}"
    );
    assert_eq!(
        notes.iter().filter(|n| *n == "closed").count(),
        1,
        "{notes:?}"
    );
}

/// Phase 4: no quorum, no writes — clearly refused, nothing half-written.
async fn quorum_lost(
    c: &reqwest::Client,
    a: &Node,
    nats_nodes: &mut [NatsNode],
    org: &Org,
    conv: &str,
) {
    ok(c.post(format!("{}/v1/numbers", a.base()))
        .bearer_auth(&org.admin)
        .json(&json!({ "number": LINE, "user": org.u1.0 })))
    .await;
    let texted = eventually_ok(|| {
        c.post(format!("{}/v1/conversations/external", a.base()))
            .bearer_auth(&org.u1.1)
            .json(&json!({ "our": LINE, "their": "+15557775555" }))
    })
    .await["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    nats_nodes[0].kill();
    nats_nodes[1].kill();
    let refused = [
        (conv.to_owned(), org.admin.clone(), "refused direct"),
        (texted.clone(), org.u1.1.clone(), "refused text"),
    ];
    for (target, token, text) in &refused {
        let (status, v) = call(
            c.post(format!("{}/v1/conversations/{target}/messages", a.base()))
                .bearer_auth(token)
                .json(&json!({ "text": text })),
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
        assert_eq!(v["code"], "storage_unavailable", "{v}");
    }
    let (status, health) = call(c.get(format!("{}/healthz", a.base()))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{health}");
    assert_eq!(health["reason"], "storage_unavailable");
    nats_nodes[0].start();
    nats_nodes[1].start();
    // Writes come back with the quorum.
    eventually_ok_longer(|| {
        c.post(format!("{}/v1/conversations/{conv}/messages", a.base()))
            .bearer_auth(&org.admin)
            .json(&json!({ "text": "quorum back" }))
    })
    .await;
    // A refused write's outcome is unknown (a leader may still commit what it had), but
    // never partial: a text that is there has its SMS request with it (one atomic batch).
    for (target, token, text) in &refused {
        let items = history(c, &a.base(), token, target).await;
        let found: Vec<&Value> = items.iter().filter(|i| i["text"] == *text).collect();
        assert!(found.len() <= 1, "{found:?}");
        if target == &texted {
            for item in found {
                assert!(
                    item["deliveries"].as_array().is_some_and(|d| !d.is_empty()),
                    "a text stored with its SMS request: {item}"
                );
            }
        }
    }
}

async fn eventually_ok_longer(make: impl Fn() -> reqwest::RequestBuilder) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, v) = call(make()).await;
        if status.is_success() {
            return v;
        }
        assert!(Instant::now() < deadline, "{status} {v}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn verify_replica(data: &Path) -> u64 {
    let replica = eventlog::RocksLog::open_read_only(data.join("replica")).expect("replica");
    use eventlog::EventStore;
    let report = replica.verify_all_blocking().expect("verify runs");
    assert!(report.is_ok(), "{:?}", report.first_break);
    report.events_checked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_survives_losing_any_one_machine() {
    if nats::skipped() {
        eprintln!("cluster test skipped (SWITCHBOARD_SKIP_NATS_TESTS=1)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut nats_nodes = nats::cluster(dir.path());
    let servers = nats_nodes
        .iter()
        .map(NatsNode::url)
        .collect::<Vec<_>>()
        .join(",");
    let monitors = nats_nodes
        .iter()
        .map(NatsNode::monitor)
        .collect::<Vec<_>>()
        .join(",");
    let mut nodes = ["a", "b"].map(|name| Node {
        name: name.into(),
        port: nats::free_port(),
        data: dir.path().join(format!("sb-{name}")),
        log: dir.path().join(format!("sb-{name}.log")),
        child: None,
    });
    for n in &mut nodes {
        n.start(&servers, &monitors);
    }
    let c = client();
    for n in &nodes {
        healthy(&c, n).await;
    }
    let org = organization(&c, &nodes[0], &nodes[1]).await;

    assign_races(&c, &nodes[0], &nodes[1], &org).await;
    let conv = leader_killed_under_load(&c, &nodes[0], &nodes[1], &mut nats_nodes, &org).await;
    node_killed(&c, &mut nodes, &servers, &monitors, &org, &conv).await;
    quorum_lost(&c, &nodes[0], &mut nats_nodes, &org, &conv).await;

    // Phase 5: everything restarted.
    let before = history(&c, &nodes[0].base(), &org.admin, &conv).await;
    for n in &mut nodes {
        n.stop();
    }
    for n in &mut nats_nodes {
        n.kill();
    }
    for n in &mut nats_nodes {
        n.start();
    }
    for n in &mut nodes {
        n.start(&servers, &monitors);
    }
    for n in &nodes {
        healthy(&c, n).await;
    }
    let through_a = history(&c, &nodes[0].base(), &org.admin, &conv).await;
    let through_b = history(&c, &nodes[1].base(), &org.admin, &conv).await;
    assert_eq!(through_a, before, "the history survived the restart");
    assert_eq!(through_b, before, "both nodes answer the same history");

    // Phase 6: a customer erased through one node reads as erased through the other (the
    // keyring is the cluster's); another customer's texts stay.
    let texts = |v: &[Value]| -> Vec<(String, bool)> {
        v.iter()
            .filter(|i| i["type"] == "inbound")
            .map(|i| {
                (
                    i["text"].as_str().unwrap().to_owned(),
                    i["erased"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    };
    let (erased, kept) = ("+15557700000", "+15557700001");
    let (erased_conv, kept_conv) = (
        external(org.id, INBOX, erased),
        external(org.id, INBOX, kept),
    );
    let a = nodes[0].base();
    assert_eq!(
        texts(&history(&c, &a, &org.admin, &erased_conv).await),
        [("help 0".to_owned(), false)]
    );
    ok(c.post(format!("{}/v1/erasures", nodes[1].base()))
        .bearer_auth(&org.admin)
        .json(&json!({ "number": erased })))
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = texts(&history(&c, &a, &org.admin, &erased_conv).await);
        if now == [("[erased]".to_owned(), true)] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never erased on a: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        texts(&history(&c, &a, &org.admin, &kept_conv).await),
        [("help 1".to_owned(), false)]
    );
    for n in &mut nodes {
        n.stop();
    }
    let checked: Vec<u64> = nodes.iter().map(|n| verify_replica(&n.data)).collect();
    assert_eq!(checked[0], checked[1], "both replicas hold the whole log");
    assert!(checked[0] > 100);
}
