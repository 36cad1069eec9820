//! `testkit`: helpers shared by the integration tests (one place, never copied).
//!
//! - [`TempLog`]: a real RocksDB log in its own temp directory, reopenable.
//! - [`event`] / [`payload_for`]: deterministic events whose payload can be recomputed.
//! - [`actors::ActorWorld`]: a log, an actix runtime and registries, restartable.
//! - [`server::TestServer`]: the real gateway on `127.0.0.1:0` over a temp log (with a
//!   carrier edge and the inbound router when asked).
//! - [`fake_twilio::FakeTwilio`]: a fake Twilio-compatible carrier that records requests
//!   and sends signed webhooks.
//! - [`child::Kid`]: a server in a child process (crash tests), asked to settle rather
//!   than given time.
//! - [`texting`]: HTTP steps of texting tests (an organization with an SMS number, an
//!   External conversation, a post) against any base URL.

pub mod actors;
pub mod child;
pub mod fake_twilio;
pub mod nats;
pub mod server;
pub mod stream;
pub mod texting;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use eventlog::{EventData, EventStore, LogOptions, RocksLog, StreamName};

/// Which implementation of the log a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded RocksDB log.
    Rocks,
    /// The JetStream log (on the process's shared test `nats-server`), read through its
    /// local replica.
    Nats,
}

/// A log in a temporary directory that is removed on drop: RocksDB by default, or the
/// JetStream log in a stream of its own ([`TempLog::on`]).
pub struct TempLog {
    dir: tempfile::TempDir,
    pub log: Option<RocksLog>,
    pub options: LogOptions,
    nats: Option<(natslog::NatsLog, natslog::NatsOptions)>,
    /// Texts sealed with the keyring in `<dir>/keys` ([`TempLog::sealed`]), as a server
    /// does.
    keyring: Option<Arc<eventlog::keyring::Keyring>>,
}

impl TempLog {
    pub fn new() -> Self {
        Self::with_options(LogOptions::default())
    }

    pub fn with_options(options: LogOptions) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = RocksLog::open(dir.path().join("log"), options.clone()).expect("open log");
        Self {
            dir,
            log: Some(log),
            options,
            nats: None,
            keyring: None,
        }
    }

    /// A RocksDB log that seals message texts with a keyring of its own, as a server's.
    pub fn sealed() -> Self {
        let mut log = Self::new();
        let keyring = Arc::new(
            eventlog::keyring::Keyring::open(&log.dir().join("keys")).expect("open keyring"),
        );
        log.log = log.log.take().map(|l| l.with_keyring(keyring.clone()));
        log.keyring = Some(keyring);
        log
    }

    /// A log on `backend`.
    pub fn on(backend: Backend) -> Self {
        Self::on_with(backend, LogOptions::default())
    }

    /// A log on `backend` with these limits.
    pub fn on_with(backend: Backend, options: LogOptions) -> Self {
        match backend {
            Backend::Rocks => Self::with_options(options),
            Backend::Nats => {
                let dir = tempfile::tempdir().expect("temp dir");
                let nats_options = nats::log_options();
                let log = connect_nats(&nats_options, &dir.path().join("replica"), &options);
                Self {
                    dir,
                    log: None,
                    options,
                    nats: Some((log, nats_options)),
                    keyring: None,
                }
            }
        }
    }

    /// The log, whatever its implementation.
    pub fn events(&self) -> &dyn EventStore {
        match &self.nats {
            Some((log, _)) => log,
            None => self.log(),
        }
    }

    /// Waits until reads see every append acknowledged so far: at once on RocksDB; on the
    /// JetStream log, until the local replica holds the stream's last sequence.
    pub fn settle(&self) {
        if let Some((log, _)) = &self.nats {
            let target = log
                .cluster_last_sequence_blocking()
                .expect("cluster reachable");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while log.replica().next_position() < target {
                assert!(std::time::Instant::now() < deadline, "replica caught up");
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
    }

    /// Stops the log: RocksDB drains its writer, JetStream answers what was submitted.
    pub fn shutdown(&self) {
        match &self.nats {
            Some((log, _)) => log.shutdown(),
            None => self.log().shutdown(),
        }
    }

    /// The JetStream log, for a test on [`Backend::Nats`].
    pub fn nats(&self) -> Option<&natslog::NatsLog> {
        self.nats.as_ref().map(|(log, _)| log)
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> &RocksLog {
        self.log.as_ref().expect("log is open")
    }

    pub fn store(&self) -> Arc<dyn EventStore> {
        match &self.nats {
            Some((log, _)) => Arc::new(log.clone()),
            None => Arc::new(self.log().clone()),
        }
    }

    /// Closes the log (waiting for its writer) and opens it again: from disk, or for the
    /// JetStream log a new connection whose replica catches up from where it was.
    pub fn reopen(&mut self) {
        if let Some((log, options)) = self.nats.take() {
            log.shutdown();
            drop(log);
            let log = connect_nats(&options, &self.dir.path().join("replica"), &self.options);
            self.nats = Some((log, options));
            return;
        }
        if let Some(log) = self.log.take() {
            log.shutdown();
            drop(log);
        }
        let log = RocksLog::open(self.path(), self.options.clone()).expect("reopen log");
        self.log = Some(match &self.keyring {
            Some(k) => log.with_keyring(k.clone()),
            None => log,
        });
    }
}

/// Connects on a thread of its own, so a test on an async runtime may call it too (a second
/// connection to the same stream is a second node of the same cluster).
pub fn connect_nats(
    options: &natslog::NatsOptions,
    replica: &Path,
    log_options: &LogOptions,
) -> natslog::NatsLog {
    let (options, replica, log_options) =
        (options.clone(), replica.to_path_buf(), log_options.clone());
    std::thread::spawn(move || natslog::NatsLog::connect_blocking(options, &replica, log_options))
        .join()
        .expect("connecting thread")
        .expect("the test nats-server takes the log")
}

impl Default for TempLog {
    fn default() -> Self {
        Self::new()
    }
}

/// An HTTP client for tests. The workspace's reqwest speaks TLS through rustls without a
/// crypto provider of its own (the carrier configures `ring`), so a client built without a
/// TLS configuration needs the process default installed first.
pub fn http() -> reqwest::Client {
    carrier::tls::install_default_provider();
    reqwest::Client::new()
}

/// The payload a test event with this seed carries (recomputable by a checker).
pub fn payload_for(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut h = blake3::Hasher::new();
    h.update(&seed.to_le_bytes());
    let mut reader = h.finalize_xof();
    out.resize(len, 0);
    reader.fill(&mut out);
    out
}

/// A test event of type `TestEvent` with a payload derived from `seed`.
pub fn event(seed: u64) -> EventData {
    EventData::new("TestEvent", 1, payload_for(seed, 16 + (seed % 64) as usize))
}

pub fn stream(name: &str) -> StreamName {
    StreamName::new(name).expect("valid stream name")
}
