//! `benchkit`: what every load generator in `benches/` shares.
//!
//! - [`Args`]: `--name value` flags with defaults (sizes are flags; defaults finish in a
//!   few minutes on 2 cores).
//! - [`bench_line`]: the one output format, `BENCH <name> <value> <unit>`.
//! - [`median`] and [`Latencies`]: medians over rounds and percentiles from an HDR histogram.
//! - [`RawGroupCommit`]: the raw-RocksDB baseline: the same group commit (one writer thread
//!   fed by a crossbeam channel, one synced `WriteBatch` per drain) with none of the log's
//!   logic, one put per event.

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
        let us = (d.as_micros() as u64).clamp(1, 60_000_000);
        let _ = self.0.record(us);
    }

    pub fn merge(&mut self, other: &Latencies) {
        let _ = self.0.add(&other.0);
    }

    pub fn percentile_ms(&self, p: f64) -> f64 {
        self.0.value_at_quantile(p) as f64 / 1000.0
    }
}

type RawAck = crossbeam_channel::Sender<()>;

/// The raw baseline: RocksDB puts through the same group commit, without the log.
pub struct RawGroupCommit {
    tx: Option<crossbeam_channel::Sender<(Vec<u8>, RawAck)>>,
    thread: Option<JoinHandle<()>>,
}

impl RawGroupCommit {
    pub fn open(path: &Path) -> Self {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.set_max_background_jobs(2);
        opts.set_bytes_per_sync(1024 * 1024);
        let db = Arc::new(rocksdb::DB::open(&opts, path).expect("open raw db"));
        let (tx, rx) = crossbeam_channel::bounded::<(Vec<u8>, RawAck)>(65_536);
        let thread = std::thread::spawn(move || {
            let mut next_key = 0u64;
            let mut wo = rocksdb::WriteOptions::default();
            wo.set_sync(true);
            while let Ok(first) = rx.recv() {
                let mut batch = rocksdb::WriteBatch::default();
                let mut acks = Vec::new();
                let mut bytes = 0;
                for (value, ack) in
                    std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok()))
                {
                    bytes += value.len();
                    batch.put(next_key.to_be_bytes(), value);
                    next_key += 1;
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

    /// Writes `value` durably; blocks until the batch holding it is synced.
    pub fn put_blocking(&self, value: Vec<u8>) {
        let (ack, done) = crossbeam_channel::bounded(1);
        if let Some(tx) = &self.tx {
            tx.send((value, ack)).expect("raw writer alive");
            done.recv().expect("raw writer acked");
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
