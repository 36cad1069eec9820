//! Notifications leave the system through outbound webhooks.
//!
//! An organization's admins register endpoints (`POST /v1/webhooks {url, events}`); each
//! gets a secret, shown once. The registrations are events in the organization's stream
//! `webhooks-<org>` (the domain's [`WebhookEvent`]: `WebhookAdded`, `WebhookRemoved`), so
//! they are durable and audited like everything else.
//!
//! [`run`] follows the `conversation` and `queue` categories (checkpoints `webhooks` and
//! `webhooks_queue`) and turns their events into notifications ([`events`]: customer
//! texts, texts we sent and their delivery, inbox assignment, queue work, texts for desk
//! phones). For each endpoint subscribed to one it queues a **delivery** in the log
//! ([`deliveries`]); the checkpoint moves once the deliveries are durable, and the
//! dispatcher attempts them, retrying a failure after each pause of
//! [`WebhookConfig::retry_after`] (exponential, up to hours) before giving up. Retries
//! survive restarts: the schedule is in the log. Admins read every endpoint's deliveries
//! (status, attempts, last error) and redeliver one over the API.
//!
//! Each request carries `Switchboard-Event` (the type), `Switchboard-Delivery` (the
//! delivery's UUID: the same on every attempt, also after a restart, so a receiver drops
//! repeats) and `Switchboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>" keyed by the secret>`. An attempt not answered 2xx within
//! [`REQUEST_TIMEOUT`] failed.
//!
//! Endpoints must be `https`, and may not name a loopback, private or link-local address,
//! unless the operator allows it (`--allow-private-webhooks`, for tests and local setups);
//! redirects are not followed. A host name is resolved at each delivery and only its
//! public addresses are connected to ([`PublicOnly`]): a name registered while it pointed
//! somewhere public and later rebound to an internal address (DNS rebinding) reaches
//! nothing inside.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use actors::{event_codec, Workspace};
use domain::webhook::{WebhookAdded, WebhookEvent, WebhookRemoved, WEBHOOKS_CATEGORY};
use domain::OrgId;
use eventlog::{AppendError, Direction, EventStore, ExpectedVersion, RecordedEvent, StreamName};
use hmac::{Hmac, Mac};
use uuid::Uuid;

use crate::driver::{self, Failure};

pub mod deliveries;
pub mod events;

pub use events::EVENTS;

/// Endpoints per organization.
pub const MAX_WEBHOOKS: usize = 10;

/// Longest endpoint URL.
pub const MAX_URL_LEN: usize = 2_048;

/// How long one delivery attempt may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

const CHECKPOINT: &str = "webhooks";
const QUEUE_CHECKPOINT: &str = "webhooks_queue";
/// The names [`run`]'s followers publish their progress under.
pub const FOLLOWERS: [&str; 3] = [CHECKPOINT, QUEUE_CHECKPOINT, deliveries::CHECKPOINT];

/// The default pauses between attempts: 10 attempts over about 16 hours.
pub const DEFAULT_RETRY_AFTER: [Duration; 9] = [
    Duration::from_secs(10),
    Duration::from_secs(60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(15 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(3_600),
    Duration::from_secs(2 * 3_600),
    Duration::from_secs(4 * 3_600),
    Duration::from_secs(8 * 3_600),
];

/// How webhooks are checked and delivered.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// Accept `http` and loopback, private and link-local addresses.
    pub allow_private: bool,
    /// Pauses before the retries of a failed delivery (their count is the retries'); each
    /// is stretched by up to a tenth so a burst's retries spread out.
    pub retry_after: Vec<Duration>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allow_private: false,
            retry_after: DEFAULT_RETRY_AFTER.to_vec(),
        }
    }
}

/// A registered endpoint.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub secret: [u8; 32],
    pub at_ms: u64,
}

/// An organization's stream of webhook registrations.
pub fn stream_of(org: OrgId) -> StreamName {
    StreamName::from_parts(WEBHOOKS_CATEGORY, org).expect("an organization id is a valid stream id")
}

/// Why webhook records could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadFailure {
    /// The log's read failed (unavailable storage passes; a caller may retry).
    #[error(transparent)]
    Log(#[from] eventlog::ReadError),
    /// A record that does not decode, or its reader died: a bug or damage.
    #[error("{0}")]
    Record(String),
}

/// The organization's endpoints and the stream's last version.
///
/// # Errors
/// The log's, or an undecodable record.
pub async fn load(
    store: &Arc<dyn EventStore>,
    org: OrgId,
) -> Result<(Vec<Endpoint>, Option<u64>), ReadFailure> {
    let records = eventlog::store::nonblocking::read_stream(
        store,
        &stream_of(org),
        0,
        Direction::Forward,
        usize::MAX,
    )
    .await?;
    let mut endpoints: Vec<Endpoint> = Vec::new();
    for r in &records {
        match event_codec::decode::<WebhookEvent>(r).map_err(ReadFailure::Record)? {
            WebhookEvent::WebhookAdded(WebhookAdded {
                id,
                url,
                events,
                secret,
                at_ms,
                ..
            }) => endpoints.push(Endpoint {
                id,
                url,
                events,
                secret,
                at_ms,
            }),
            WebhookEvent::WebhookRemoved(WebhookRemoved { id, .. }) => {
                endpoints.retain(|e| e.id != id);
            }
        }
    }
    Ok((endpoints, records.last().map(|r| r.version)))
}

/// Is `url` an endpoint we may call? Its scheme, and for an address literal (or
/// `localhost`) whether it is public.
///
/// # Errors
/// Why not, completing "the webhook URL ..." (`is too long`, `must be https`, ...).
pub fn check_url(url: &str, allow_private: bool) -> Result<reqwest::Url, String> {
    let refuse = |why: &str| why.to_owned();
    if url.len() > MAX_URL_LEN {
        return Err(refuse("is too long"));
    }
    let parsed = reqwest::Url::parse(url).map_err(|_| refuse("is not a URL"))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err(refuse("must be https")),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(refuse("may not carry credentials"));
    }
    let public = match parsed.host_str() {
        None | Some("") => return Err(refuse("has no host")),
        Some(host) => match host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            Ok(ip) => is_public(ip),
            Err(_) => {
                let d = host.trim_end_matches('.').to_ascii_lowercase();
                d != "localhost" && !d.ends_with(".localhost")
            }
        },
    };
    if !public && !allow_private {
        return Err(refuse("names a loopback, private or link-local address"));
    }
    Ok(parsed)
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                // 100.64.0.0/10, carrier-grade NAT.
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                // fc00::/7 unique local, fe80::/10 link-local.
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// Hex HMAC-SHA256 of the concatenated `parts` keyed by `secret`.
fn mac_hex(secret: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes any key");
    for p in parts {
        mac.update(p);
    }
    eventlog::hex::encode(&mac.finalize().into_bytes())
}

/// The value of `Switchboard-Signature` for `body` sent at `t` (unix seconds).
pub fn signature(secret: &[u8], t: u64, body: &[u8]) -> String {
    let mac = mac_hex(secret, &[t.to_string().as_bytes(), b".", body]);
    format!("t={t},v1={mac}")
}

/// Appends `event` to `org`'s registrations, expecting the stream at `version` (`None`:
/// empty).
///
/// # Errors
/// The log's (`WrongExpectedVersion` when the registrations changed meanwhile).
pub async fn append(
    store: &Arc<dyn EventStore>,
    org: OrgId,
    version: Option<u64>,
    event: &WebhookEvent,
) -> Result<(), AppendError> {
    let data = event_codec::encode(event, Uuid::new_v4(), eventlog::Metadata::default())
        .map_err(|e| AppendError::Storage(eventlog::StorageError::Engine(e.to_string())))?;
    let expected = version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
    store
        .append(stream_of(org), expected, vec![data])
        .await
        .map(|_| ())
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Notifies the organizations' webhooks until the log closes: queues a delivery for every
/// notification of a conversation or queue event each endpoint subscribed to, and
/// attempts the queued deliveries (see [`deliveries`]).
pub async fn run(ws: Workspace, config: WebhookConfig) {
    let client = match client(config.allow_private) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhooks: no HTTP client; notifications are off");
            return;
        }
    };
    let sender = Arc::new(Sender { client, config });
    let internal = Arc::new(events::InternalChats::default());
    tokio::join!(
        deliveries::dispatch(
            ws.store.clone(),
            ws.progress.publisher(deliveries::CHECKPOINT),
            sender
        ),
        driver::run(ws.clone(), CHECKPOINT, "conversation", |ws, record| {
            let internal = internal.clone();
            async move {
                let notices = events::of_conversation(&ws, &internal, &record).await?;
                queue(&ws, &record, notices).await
            }
        }),
        driver::run(
            ws.clone(),
            QUEUE_CHECKPOINT,
            "queue",
            |ws, record| async move {
                let notices = events::of_queue(&ws, &record).await?;
                queue(&ws, &record, notices).await
            }
        ),
    );
}

/// Queues one delivery per notice and endpoint subscribed to it. Its id derives from the
/// causing event, the endpoint, the type and the recipient, so handling the event again
/// queues nothing new.
async fn queue(
    ws: &Workspace,
    record: &RecordedEvent,
    notices: events::Notices,
) -> Result<(), Failure> {
    let Some((org, endpoints, notices)) = notices else {
        return Ok(());
    };
    let mut queued = Vec::new();
    for endpoint in &endpoints {
        for n in notices
            .iter()
            .filter(|n| endpoint.events.iter().any(|e| e == n.event))
        {
            let mut name = endpoint.id.as_bytes().to_vec();
            name.extend_from_slice(n.event.as_bytes());
            name.extend_from_slice(&n.recipient);
            let id = Uuid::new_v5(&record.event_id, &name);
            let mut body = n.body.clone();
            body["delivery_id"] = serde_json::json!(id);
            queued.push(deliveries::Queued {
                delivery: id,
                webhook: endpoint.id,
                org,
                event: n.event.to_owned(),
                body: serde_json::to_string(&body)
                    .map_err(|e| Failure::Permanent(e.to_string()))?,
                cause: Some(record.event_id),
                redelivery_of: None,
                by: None,
                at_ms: record.timestamp_us / 1_000,
                key: n.key.clone(),
                erased: false,
            });
        }
    }
    futures_util::future::try_join_all(
        queued
            .into_iter()
            .map(|q| deliveries::enqueue(&ws.store, q)),
    )
    .await
    .map_err(Failure::Transient)?;
    Ok(())
}

/// Resolves a webhook's host and answers only its public addresses, so the connection goes
/// to the addresses checked (never to a second lookup that could answer otherwise); a name
/// with none fails the delivery.
pub struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<std::net::SocketAddr> =
                found.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(format!(
                    "{host} resolves to no public address (loopback, private or link-local \
                     addresses are refused)"
                )
                .into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

fn client(allow_private: bool) -> Result<reqwest::Client, String> {
    let tls = carrier::tls::client_config(None).map_err(|e| e.to_string())?;
    let builder = if allow_private {
        reqwest::Client::builder()
    } else {
        reqwest::Client::builder().dns_resolver(Arc::new(PublicOnly))
    };
    builder
        .tls_backend_preconfigured(tls)
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("switchboard-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

/// Makes the HTTP requests of deliveries.
struct Sender {
    client: reqwest::Client,
    config: WebhookConfig,
}

/// Most bytes of a refusing receiver's answer kept in the delivery log.
const ANSWER_KEPT: usize = 200;

/// Why an attempt failed.
#[derive(Debug)]
pub(crate) struct Refused {
    /// The receiver's status, when it answered.
    pub status: Option<u16>,
    pub why: String,
    /// How long the receiver asked us to wait (its `Retry-After`, in seconds or as a date).
    pub retry_after: Option<Duration>,
}

/// A `Retry-After` value: delay seconds, or an HTTP date (the time left until it).
fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

impl Sender {
    /// POSTs `body` to `endpoint`, signed: the receiver's status when it answered 2xx;
    /// otherwise its status (if it answered), why it failed, and when it asked to be
    /// tried again.
    async fn post(
        &self,
        endpoint: &Endpoint,
        event: &str,
        delivery: Uuid,
        body: &[u8],
    ) -> Result<u16, Refused> {
        let refused = |status, why| Refused {
            status,
            why,
            retry_after: None,
        };
        // Checked again at each call: the operator may have stopped allowing private
        // addresses since the endpoint was registered.
        let url = check_url(&endpoint.url, self.config.allow_private)
            .map_err(|why| refused(None, format!("the webhook URL {why}")))?;
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("switchboard-event", event)
            .header("switchboard-delivery", delivery.to_string())
            .header(
                "switchboard-signature",
                signature(&endpoint.secret, t, body),
            )
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| refused(None, error_chain(&e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(status.as_u16());
        }
        let wait = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(retry_after);
        // The start of the answer, for the admin reading the log.
        let mut response = response;
        let said = match response.chunk().await {
            Ok(Some(bytes)) => String::from_utf8_lossy(&bytes[..bytes.len().min(ANSWER_KEPT)])
                .trim()
                .to_owned(),
            _ => String::new(),
        };
        let why = if said.is_empty() {
            format!("answered {status}")
        } else {
            format!("answered {status}: {said}")
        };
        Err(Refused {
            status: Some(status.as_u16()),
            why,
            retry_after: wait,
        })
    }
}

/// An error with its causes ("error sending request: connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The registrations as this module wrote them before they were domain events: this
    /// enum (verbatim), encoded whole under version 1 of `WebhookAdded` and
    /// `WebhookRemoved`.
    #[derive(serde::Serialize)]
    enum OldWebhookEvent {
        Added {
            id: Uuid,
            url: String,
            events: Vec<String>,
            secret: [u8; 32],
            by: domain::UserId,
            at_ms: u64,
        },
        Removed {
            id: Uuid,
            by: domain::UserId,
            at_ms: u64,
        },
    }

    #[tokio::test]
    async fn registrations_written_before_they_were_domain_events_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn EventStore> = Arc::new(
            eventlog::RocksLog::open(dir.path().join("log"), eventlog::LogOptions::default())
                .unwrap(),
        );
        let (org, by) = (OrgId::random(), domain::UserId::random());
        let (kept, removed) = (Uuid::new_v4(), Uuid::new_v4());
        let added = |id: Uuid, secret: u8| OldWebhookEvent::Added {
            id,
            url: format!("https://hooks.example.com/{id}"),
            events: vec!["message.inbound".to_owned()],
            secret: [secret; 32],
            by,
            at_ms: 5,
        };
        let old = |event_type: &str, event: &OldWebhookEvent| {
            eventlog::EventData::new(event_type, 1, eventlog::codec::encode(event).unwrap())
        };
        store
            .append(
                stream_of(org),
                ExpectedVersion::NoStream,
                vec![
                    old("WebhookAdded", &added(kept, 1)),
                    old("WebhookAdded", &added(removed, 2)),
                    old(
                        "WebhookRemoved",
                        &OldWebhookEvent::Removed {
                            id: removed,
                            by,
                            at_ms: 6,
                        },
                    ),
                ],
            )
            .await
            .unwrap();
        let (endpoints, version) = load(&store, org).await.unwrap();
        assert_eq!(version, Some(2));
        assert_eq!(endpoints.len(), 1);
        let e = &endpoints[0];
        assert_eq!((e.id, e.secret, e.at_ms), (kept, [1; 32], 5));
        assert_eq!(e.url, format!("https://hooks.example.com/{kept}"));
        assert_eq!(e.events, ["message.inbound"]);

        // Written now (version 2, the bare struct) after the old ones: all read together.
        let removal = WebhookEvent::WebhookRemoved(WebhookRemoved {
            id: kept,
            by,
            at_ms: 7,
        });
        append(&store, org, version, &removal).await.unwrap();
        let stored = eventlog::store::nonblocking::read_stream(
            &store,
            &stream_of(org),
            3,
            Direction::Forward,
            1,
        )
        .await
        .unwrap();
        assert_eq!(
            (stored[0].event_type.as_str(), stored[0].schema_version),
            ("WebhookRemoved", 2)
        );
        let (endpoints, version) = load(&store, org).await.unwrap();
        assert!(endpoints.is_empty());
        assert_eq!(version, Some(3));
    }

    #[tokio::test]
    async fn a_name_that_resolves_only_inside_is_never_connected_to() {
        use reqwest::dns::Resolve;
        // `localhost` resolves (from /etc/hosts) to loopback addresses only.
        let refused = PublicOnly
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .expect("no address of localhost is public");
        assert!(
            refused.to_string().contains("no public address"),
            "{refused}"
        );
        // An address literal's own lookup answers it: a public one passes, a private one not.
        let public: Vec<_> = PublicOnly
            .resolve("93.184.216.34".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert_eq!(public.len(), 1);
        assert!(PublicOnly
            .resolve("10.0.0.1".parse().unwrap())
            .await
            .is_err());
    }

    #[test]
    fn endpoints_must_be_public_https_unless_allowed() {
        for ok in [
            "https://hooks.example.com/switchboard",
            "https://93.184.216.34/x",
            "https://[2606:2800:220:1::]/x",
        ] {
            assert!(check_url(ok, false).is_ok(), "{ok}");
        }
        for refused in [
            "http://hooks.example.com/x",
            "ftp://hooks.example.com/x",
            "https://localhost/x",
            "https://api.localhost./x",
            "https://127.0.0.1/x",
            "https://10.1.2.3/x",
            "https://172.16.0.1/x",
            "https://192.168.1.1/x",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/x",
            "https://0.0.0.0/x",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "https://[fe80::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://user:pw@hooks.example.com/x",
            "not a url",
        ] {
            assert!(check_url(refused, false).is_err(), "{refused}");
        }
        assert!(check_url("http://127.0.0.1:9/x", true).is_ok());
        assert!(check_url(
            &format!("https://a.example/{}", "x".repeat(MAX_URL_LEN)),
            true
        )
        .is_err());
    }

    #[test]
    fn the_signature_is_an_hmac_sha256_of_the_timestamp_and_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            mac_hex(b"Jefe", &[b"what do ya want ", b"for nothing?"]),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            signature(b"Jefe", 17, b"{}"),
            format!("t=17,v1={}", mac_hex(b"Jefe", &[b"17.{}"]))
        );
        assert_ne!(signature(b"Jefe", 17, b"{}"), signature(b"Jefe", 18, b"{}"));
    }
}
