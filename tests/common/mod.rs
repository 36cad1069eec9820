//! `testkit`: helpers shared by the integration tests (one place, never copied).
//!
//! - [`TempLog`]: a real RocksDB log in its own temp directory, reopenable.
//! - [`event`] / [`payload_for`]: deterministic events whose payload can be recomputed.
//! - [`actors::ActorWorld`]: a log, an actix runtime and registries, restartable.
//! - [`server::TestServer`]: the real gateway on `127.0.0.1:0` over a temp log (with a
//!   carrier edge and the inbound router when asked).
//! - [`fake_twilio::FakeTwilio`]: a fake Twilio-compatible carrier that records requests
//!   and sends signed webhooks.
//! - [`texting`]: HTTP steps of texting tests (an organization with an SMS number, an
//!   External conversation, a post) against any base URL.

pub mod actors;
pub mod fake_twilio;
pub mod server;
pub mod stream;
pub mod texting;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use eventlog::{EventData, EventStore, LogOptions, RocksLog, StreamName};

/// A log in a temporary directory that is removed on drop.
pub struct TempLog {
    dir: tempfile::TempDir,
    pub log: Option<RocksLog>,
    pub options: LogOptions,
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
        }
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
        Arc::new(self.log().clone())
    }

    /// Closes the log (waiting for its writer) and opens it again from disk.
    pub fn reopen(&mut self) {
        if let Some(log) = self.log.take() {
            log.shutdown();
            drop(log);
        }
        self.log = Some(RocksLog::open(self.path(), self.options.clone()).expect("reopen log"));
    }
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
