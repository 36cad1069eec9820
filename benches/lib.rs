//! `benchkit`: what every load generator in `benches/` shares.
//!
//! - [`Args`]: `--name value` flags with defaults (sizes are flags; defaults finish in a
//!   few minutes on 2 cores).
//! - [`bench_line`]: the one output format, `BENCH <name> <value> <unit>`.
//! - [`median`] and [`Latencies`]: medians over rounds and percentiles from an HDR histogram.
//! - [`ToF64`]: counts as floats, for rates and ratios.
//! - [`RawGroupCommit`]: the raw-RocksDB baseline: the same group commit (one writer thread
//!   fed by a bounded crossbeam channel, one synced `WriteBatch` per drain, a oneshot ack per
//!   caller) with none of the log's logic, doing whatever puts the caller hands it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use hdrhistogram::Histogram;

/// `--key value` command-line flags (cargo bench passes `--bench`, which is ignored).
pub struct Args(HashMap<String, String>);

impl Args {
    pub fn parse() -> Self {
        let mut map = HashMap::new();
        let mut it = std::env::args().skip(1).peekable();
        while let Some(a) = it.next() {
            if let Some(key) = a.strip_prefix("--") {
                if let Some(v) = it.next_if(|v| !v.starts_with("--")) {
                    map.insert(key.to_string(), v);
                }
            }
        }
        Self(map)
    }

    pub fn get<T: std::str::FromStr>(&self, key: &str, default: T) -> T {
        self.0
            .get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }
}

/// Prints one headline figure.
pub fn bench_line(name: &str, value: f64, unit: &str) {
    println!("BENCH {name} {value:.3} {unit}");
}

/// Counts as `f64`, for the rates, ratios and means a benchmark prints. Exact below 2^53:
/// a benchmark's counts stay far below that, and the figures are printed rounded anyway.
pub trait ToF64 {
    fn to_f64(self) -> f64;
}

#[allow(
    clippy::cast_precision_loss,
    reason = "benchmark counts, far below 2^53, printed rounded"
)]
impl ToF64 for u64 {
    fn to_f64(self) -> f64 {
        self as f64
    }
}

#[allow(
    clippy::cast_precision_loss,
    reason = "benchmark counts, far below 2^53, printed rounded"
)]
impl ToF64 for usize {
    fn to_f64(self) -> f64 {
        self as f64
    }
}

pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    if xs.is_empty() {
        return f64::NAN;
    }
    xs[xs.len() / 2]
}

/// Latencies in microseconds.
pub struct Latencies(pub Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Self(Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"))
    }
}

impl Latencies {
    pub fn record(&mut self, d: std::time::Duration) {
        let us = u64::try_from(d.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, 60_000_000);
        let _ = self.0.record(us);
    }

    pub fn merge(&mut self, other: &Latencies) {
        let _ = self.0.add(&other.0);
    }

    pub fn percentile_ms(&self, p: f64) -> f64 {
        self.0.value_at_quantile(p).to_f64() / 1000.0
    }
}

type RawAck = tokio::sync::oneshot::Sender<()>;

/// One put of the raw baseline: (column family index, key, value).
pub type RawPut = (usize, Vec<u8>, Vec<u8>);

/// The raw baseline: RocksDB puts through the same group commit, without the log.
pub struct RawGroupCommit {
    tx: Option<crossbeam_channel::Sender<(Vec<RawPut>, RawAck)>>,
    thread: Option<JoinHandle<()>>,
}

impl RawGroupCommit {
    /// Opens a fresh database at `path` with the column families `cfs` (puts name them by
    /// index) and starts its writer thread.
    pub fn open(path: &Path, cfs: &[&str]) -> Self {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_background_jobs(2);
        opts.set_bytes_per_sync(1024 * 1024);
        let db = Arc::new(rocksdb::DB::open_cf(&opts, path, cfs).expect("open raw db"));
        let names: Vec<String> = cfs.iter().map(|s| s.to_string()).collect();
        let (tx, rx) = crossbeam_channel::bounded::<(Vec<RawPut>, RawAck)>(65_536);
        let thread = std::thread::spawn(move || {
            let handles: Vec<_> = names
                .iter()
                .map(|n| db.cf_handle(n).expect("column family"))
                .collect();
            let mut wo = rocksdb::WriteOptions::default();
            wo.set_sync(true);
            while let Ok(first) = rx.recv() {
                let mut batch = rocksdb::WriteBatch::default();
                let mut acks = Vec::new();
                let mut bytes = 0;
                let pending =
                    std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok()));
                for (puts, ack) in pending {
                    for (cf, k, v) in puts {
                        bytes += k.len() + v.len();
                        batch.put_cf(handles[cf], k, v);
                    }
                    acks.push(ack);
                    if bytes >= 8 * 1024 * 1024 {
                        break;
                    }
                }
                db.write_opt(batch, &wo).expect("raw write");
                for a in acks {
                    let _ = a.send(());
                }
            }
        });
        Self {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// Writes `puts` durably; resolves once the batch holding them is synced. Queues the
    /// puts the way `RocksLog::append` does (a non-blocking send) and awaits a oneshot.
    pub async fn put(&self, puts: Vec<RawPut>) {
        let (ack, done) = tokio::sync::oneshot::channel();
        if let Some(tx) = &self.tx {
            tx.try_send((puts, ack))
                .expect("raw writer alive, queue not full");
            done.await.expect("raw writer acked");
        }
    }
}

impl Drop for RawGroupCommit {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
