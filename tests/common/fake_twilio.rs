//! A fake Twilio: an axum app on `127.0.0.1:0` that records every message-create request,
//! answers as told (accept, fail with a status, or never answer), serves media, and sends
//! signed webhooks (status callbacks, inbound texts) to a server under test.
//!
//! [`FakeTwilio::start_tls`] serves the same app over HTTPS with a certificate issued by a
//! throwaway CA made in the test (`rcgen`), whose PEM the adapter is told to trust.
//!
//! Signatures are computed here with `hmac`/`sha1`/`base64` directly — independently of
//! `carrier::twilio` — and checked against Twilio's documented example in
//! [`tests::signing_matches_twilios_documented_example`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use hmac::Mac;

pub const ACCOUNT_SID: &str = "ACfake0001";
pub const AUTH_TOKEN: &str = "fake-auth-token";

/// One message-create request as the fake received it.
#[derive(Debug, Clone)]
pub struct SentMessage {
    /// The sid the fake answered with (or would have, for a failed or hung request).
    pub sid: String,
    pub params: Vec<(String, String)>,
    /// The request carried the account's basic auth.
    pub authorized: bool,
    /// What the fake answered (0: it never answered).
    pub answered: u16,
}

impl SentMessage {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

#[derive(Default)]
struct FakeState {
    sent: Vec<SentMessage>,
    /// Statuses to answer the next creates with (503, 429, 400, ...), in order.
    failures: VecDeque<u16>,
    /// Record creates, then never answer.
    hang: bool,
    media: HashMap<String, (Vec<u8>, String)>,
    /// Media names answered with this status instead.
    media_failures: HashMap<String, u16>,
    /// Requests per media name.
    media_requests: HashMap<String, usize>,
    counter: u64,
}

/// The running fake; stops when dropped.
pub struct FakeTwilio {
    pub base: String,
    /// Over HTTPS: the PEM of the CA that issued the fake's certificate.
    pub ca_pem: Option<String>,
    state: Arc<Mutex<FakeState>>,
    client: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeTwilio {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// HMAC-SHA1 over the URL and the sorted parameters, keyed by the auth token, base64.
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac =
        hmac::Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()).expect("any key length");
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn owned(params: &[(&str, &str)]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn form(params: &[(String, String)]) -> String {
    let mut f = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        f.append_pair(k, v);
    }
    f.finish()
}

impl FakeTwilio {
    /// The fake over plain HTTP.
    pub async fn start() -> Self {
        Self::start_with(false).await
    }

    /// The fake over HTTPS (`https://127.0.0.1:<port>`), its certificate issued by a CA
    /// made for this run ([`FakeTwilio::ca_pem`]).
    pub async fn start_tls() -> Self {
        Self::start_with(true).await
    }

    async fn start_with(tls: bool) -> Self {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let app = Router::new()
            .route(
                "/2010-04-01/Accounts/{account}/Messages.json",
                post(create_message),
            )
            .route("/media/{name}", get(media))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (base, ca_pem, task) = if tls {
            let (ca_pem, acceptor) = tls::acceptor();
            let task = tokio::spawn(async move {
                let _ = axum::serve(tls::TlsListener::new(listener, acceptor), app).await;
            });
            (format!("https://{addr}"), Some(ca_pem), task)
        } else {
            let task = tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            (format!("http://{addr}"), None, task)
        };
        Self {
            base,
            ca_pem,
            state,
            client: crate::http(),
            task,
        }
    }

    /// The adapter configured against this fake.
    pub fn config(&self) -> carrier::twilio::TwilioConfig {
        carrier::twilio::TwilioConfig {
            base_url: self.base.clone(),
            account_sid: ACCOUNT_SID.into(),
            auth_token: AUTH_TOKEN.into(),
            request_timeout: Duration::from_secs(10),
            extra_roots_pem: self.ca_pem.as_ref().map(|p| p.as_bytes().to_vec()),
        }
    }

    pub fn carrier(&self) -> carrier::twilio::TwilioCarrier {
        carrier::twilio::TwilioCarrier::new(self.config()).expect("valid config")
    }

    /// Every message-create request so far.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.state.lock().unwrap().sent.clone()
    }

    /// The next creates are answered with these statuses, in order; then normally.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.state.lock().unwrap().failures.extend(statuses);
    }

    /// Creates are recorded and never answered (a carrier that took the message, and a
    /// connection that died before the answer).
    pub fn set_hang(&self, hang: bool) {
        self.state.lock().unwrap().hang = hang;
    }

    /// Serves `bytes` at `/media/<name>`; returns its URL.
    pub fn serve_media(&self, name: &str, bytes: Vec<u8>, content_type: &str) -> String {
        self.state
            .lock()
            .unwrap()
            .media
            .insert(name.to_owned(), (bytes, content_type.to_owned()));
        format!("{}/media/{name}", self.base)
    }

    /// `/media/<name>` answers `status` (500, 404, ...) every time; returns its URL.
    pub fn fail_media(&self, name: &str, status: u16) -> String {
        self.state
            .lock()
            .unwrap()
            .media_failures
            .insert(name.to_owned(), status);
        format!("{}/media/{name}", self.base)
    }

    /// How many times `/media/<name>` was requested.
    pub fn media_requests(&self, name: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .media_requests
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    /// Waits until `n` creates were received (panics after `timeout`).
    pub async fn wait_for_sent(&self, n: usize, timeout: Duration) -> Vec<SentMessage> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let sent = self.sent();
            if sent.len() >= n {
                return sent;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the fake carrier got {} of {n} messages",
                sent.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Posts a signed status callback for `message` to its `StatusCallback` URL (with its
    /// scheme and host replaced by `base`, when the server moved).
    pub async fn callback(
        &self,
        message: &SentMessage,
        status: &str,
        error_code: Option<&str>,
        base: Option<&str>,
    ) -> reqwest::StatusCode {
        let url = message.get("StatusCallback").expect("a StatusCallback");
        let url = match base {
            Some(base) => {
                let rest = url.split_once("://").map_or(url, |(_, r)| r);
                let path = rest.find('/').map_or("/", |i| &rest[i..]);
                format!("{base}{path}")
            }
            None => url.to_owned(),
        };
        let mut params = owned(&[
            ("AccountSid", ACCOUNT_SID),
            ("MessageSid", &message.sid),
            ("SmsSid", &message.sid),
            ("MessageStatus", status),
            ("To", message.get("To").unwrap_or_default()),
            ("From", message.get("From").unwrap_or_default()),
        ]);
        if let Some(code) = error_code {
            params.push(("ErrorCode".into(), code.into()));
        }
        self.post_signed(&url, &params, None).await.status()
    }

    /// Posts form `params` to `url`, signed (with `signature` instead, when given).
    pub async fn post_signed(
        &self,
        url: &str,
        params: &[(String, String)],
        signature: Option<&str>,
    ) -> reqwest::Response {
        let signature = signature.map_or_else(|| sign(AUTH_TOKEN, url, params), str::to_owned);
        self.client
            .post(url)
            .header("X-Twilio-Signature", signature)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form(params))
            .send()
            .await
            .expect("webhook sent")
    }

    /// A customer's text as Twilio posts it to `<server>/v1/carriers/twilio/inbound`;
    /// `media`: URLs (of this fake) with their content types.
    pub fn inbound_params(
        sid: &str,
        from: &str,
        to: &str,
        body: &str,
        media: &[(&str, &str)],
    ) -> Vec<(String, String)> {
        let num_media = media.len().to_string();
        let mut params = owned(&[
            ("ToCountry", "US"),
            ("MessageSid", sid),
            ("SmsMessageSid", sid),
            ("AccountSid", ACCOUNT_SID),
            ("From", from),
            ("To", to),
            ("Body", body),
            ("NumMedia", &num_media),
            ("NumSegments", "1"),
        ]);
        for (i, (url, content_type)) in media.iter().enumerate() {
            params.push((format!("MediaUrl{i}"), url.to_string()));
            params.push((format!("MediaContentType{i}"), content_type.to_string()));
        }
        params
    }
}

async fn create_message(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"))
    );
    let authorized = account == ACCOUNT_SID
        && headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            == Some(expected.as_str());
    let params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let (sid, answer, hang) = {
        let mut s = state.lock().unwrap();
        s.counter += 1;
        let sid = format!("SM{:032x}", s.counter);
        let answer = if !authorized {
            401
        } else {
            s.failures.pop_front().unwrap_or(201)
        };
        let hang = s.hang && answer == 201;
        s.sent.push(SentMessage {
            sid: sid.clone(),
            params,
            authorized,
            answered: if hang { 0 } else { answer },
        });
        (sid, answer, hang)
    };
    if hang {
        std::future::pending::<()>().await;
    }
    let status = StatusCode::from_u16(answer).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = if status.is_success() {
        serde_json::json!({ "sid": sid, "status": "queued", "account_sid": ACCOUNT_SID })
    } else {
        serde_json::json!({ "code": 20000 + u32::from(answer), "message": "fake carrier says no", "status": answer })
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn media(State(state): State<Arc<Mutex<FakeState>>>, Path(name): Path<String>) -> Response {
    let mut state = state.lock().unwrap();
    *state.media_requests.entry(name.clone()).or_default() += 1;
    if let Some(status) = state.media_failures.get(&name) {
        return StatusCode::from_u16(*status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response();
    }
    match state.media.get(&name) {
        Some((bytes, content_type)) => (
            [(header::CONTENT_TYPE, content_type.clone())],
            bytes.clone(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// HTTPS for the fake: a CA and a certificate for 127.0.0.1 made with `rcgen`, and an
/// axum [`Listener`](axum::serve::Listener) that completes each TLS handshake on a task of
/// its own before handing the stream to axum.
mod tls {
    use std::sync::Arc;

    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::mpsc;
    use tokio_rustls::server::TlsStream;
    use tokio_rustls::TlsAcceptor;

    /// A fresh CA's PEM, and an acceptor presenting a certificate it issued for
    /// `127.0.0.1` and `localhost`.
    pub fn acceptor() -> (String, TlsAcceptor) {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
            .expect("CA certificate");
        let leaf_key = KeyPair::generate().expect("leaf key");
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("leaf params")
            .signed_by(&leaf_key, &ca)
            .expect("leaf certificate");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key)
            .expect("server certificate");
        (ca.pem(), TlsAcceptor::from(Arc::new(config)))
    }

    pub struct TlsListener {
        addr: std::net::SocketAddr,
        accepted: mpsc::Receiver<(TlsStream<TcpStream>, std::net::SocketAddr)>,
        _accept_loop: tokio::task::JoinHandle<()>,
    }

    impl TlsListener {
        pub fn new(listener: TcpListener, acceptor: TlsAcceptor) -> Self {
            let addr = listener.local_addr().expect("addr");
            let (tx, accepted) = mpsc::channel(64);
            let accept_loop = tokio::spawn(async move {
                while let Ok((tcp, peer)) = listener.accept().await {
                    let (acceptor, tx) = (acceptor.clone(), tx.clone());
                    tokio::spawn(async move {
                        // A failed handshake (a client refusing the certificate) is dropped.
                        if let Ok(stream) = acceptor.accept(tcp).await {
                            let _ = tx.send((stream, peer)).await;
                        }
                    });
                }
            });
            Self {
                addr,
                accepted,
                _accept_loop: accept_loop,
            }
        }
    }

    impl Drop for TlsListener {
        fn drop(&mut self) {
            self._accept_loop.abort();
        }
    }

    impl axum::serve::Listener for TlsListener {
        type Io = TlsStream<TcpStream>;
        type Addr = std::net::SocketAddr;

        async fn accept(&mut self) -> (Self::Io, Self::Addr) {
            match self.accepted.recv().await {
                Some(accepted) => accepted,
                None => std::future::pending().await,
            }
        }

        fn local_addr(&self) -> std::io::Result<Self::Addr> {
            Ok(self.addr)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_matches_twilios_documented_example() {
        let params = owned(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]);
        assert_eq!(
            sign(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &params
            ),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
    }
}
