//! Durable appends of 200-byte events with 1, 8, 64 and 256 concurrent appenders (async
//! tasks on a 2-worker tokio runtime, as the actors and the gateway will append), against
//! two raw-RocksDB baselines measured in the same run, both through the same group commit
//! (one writer thread, one synced `WriteBatch` per drain) with none of the log's logic:
//! - `raw`: the same puts the log makes per event (the ~350-byte event record keyed by
//!   position, plus the stream, category and event-id index entries, in four column
//!   families): `ratio_to_raw` is the cost of the log's logic (validation, idempotency
//!   lookups, expected-version checks, hashing, encoding, acks, live fan-out).
//! - `raw1`: one 200-byte put per event: `ratio_to_raw1` also counts the cost of the
//!   indexes.
//!
//! Prints `BENCH log.append.wN.{events_per_s,p50_ms,p99_ms,ratio_to_raw,ratio_to_raw1}`.
//!
//! `--store nats` also measures the cluster-mode log (`natslog::NatsLog`) in each round,
//! on a three-node R3 JetStream cluster (every write fsynced) it starts on loopback, and
//! prints `BENCH log.append.nats.wN.{events_per_s,p50_ms,p99_ms,ratio_to_rocks}`: its
//! throughput against the embedded RocksDB log's in the same round. Each appender writes
//! its own stream with an exact expected version (as the actors do).
//!
//! `cargo bench --bench log_append -- --seconds 2 --rounds 3 --writers 1,8,64,256 [--store nats]`

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use benchkit::{bench_line, median, Args, Latencies, RawGroupCommit, ToF64};
use eventlog::{EventData, EventStore, ExpectedVersion, LogOptions, RocksLog, StreamName};

/// The event log allocates a few small buffers per event read or written; glibc's malloc
/// spends more time on them than the log does (measured with `cargo bench --bench log_read`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EVENT_BYTES: usize = 200;

struct Round {
    events_per_s: f64,
    latencies: Latencies,
}

/// Runs `writers` tasks calling `op` until `seconds` pass.
fn drive<F, Fut>(rt: &tokio::runtime::Runtime, writers: usize, seconds: f64, op: F) -> Round
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let deadline = Duration::from_secs_f64(seconds);
    rt.block_on(async move {
        let start = Instant::now();
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let op = op.clone();
                tokio::spawn(async move {
                    let mut lat = Latencies::default();
                    let mut n = 0u64;
                    while start.elapsed() < deadline {
                        let t = Instant::now();
                        op(w, n).await;
                        lat.record(t.elapsed());
                        n += 1;
                    }
                    (n, lat)
                })
            })
            .collect();
        let mut total = 0;
        let mut latencies = Latencies::default();
        for t in tasks {
            let (n, lat) = t.await.expect("appender task");
            total += n;
            latencies.merge(&lat);
        }
        Round {
            events_per_s: total.to_f64() / start.elapsed().as_secs_f64(),
            latencies,
        }
    })
}

/// The puts the log makes for one event (sizes as in `crates/eventlog/src/keys.rs`).
fn log_shaped_puts(w: usize, i: u64, position: u64) -> Vec<benchkit::RawPut> {
    let stream = format!("bench-{w}");
    let mut stream_key = stream.clone().into_bytes();
    stream_key.push(0xFF);
    stream_key.extend_from_slice(&i.to_be_bytes());
    let mut category_key = b"bench\xFF".to_vec();
    category_key.extend_from_slice(&position.to_be_bytes());
    let id = (u128::from(position) * 0x9E37_79B9_7F4A_7C15)
        .to_be_bytes()
        .to_vec();
    let mut record = payload(w, i);
    record.resize(EVENT_BYTES + 150, 1); // envelope: ids, type, hashes, names
    vec![
        (0, position.to_be_bytes().to_vec(), record),
        (1, stream_key, vec![1; 9]),
        (2, category_key, vec![1; 9]),
        (3, id, vec![1; 9]),
    ]
}

fn payload(w: usize, i: u64) -> Vec<u8> {
    let mut p = vec![0u8; EVENT_BYTES];
    p[..8].copy_from_slice(&(w as u64).to_le_bytes());
    p[8..16].copy_from_slice(&i.to_le_bytes());
    p
}

fn main() {
    let args = Args::parse();
    let seconds: f64 = args.get("seconds", 2.0);
    let rounds: usize = args.get("rounds", 3);
    let writer_counts: Vec<usize> = args
        .get("writers", "1,8,64,256".to_string())
        .split(',')
        .filter_map(|s| s.parse().ok())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let nats = args.get("store", "rocksdb".to_string()) == "nats";
    let cluster = nats.then(|| testkit::nats::cluster(&dir.path().join("nats")));
    let servers = cluster.as_ref().map(|nodes| {
        let urls: Vec<String> = nodes.iter().map(testkit::nats::NatsNode::url).collect();
        let monitors: Vec<String> = nodes.iter().map(testkit::nats::NatsNode::monitor).collect();
        (urls.join(","), monitors)
    });
    println!("# log_append: {EVENT_BYTES}-byte events, {seconds}s per round, {rounds} rounds, median reported");
    for &n in &writer_counts {
        let mut log_rates = Vec::new();
        let mut raw_rates = Vec::new();
        let mut raw1_rates = Vec::new();
        let mut log_lat = Latencies::default();
        let mut nats_rates = Vec::new();
        let mut nats_lat = Latencies::default();
        for round in 0..rounds {
            // Alternate raw and log in each round so drift on a shared machine hits both.
            let raw1 = Arc::new(RawGroupCommit::open(
                &dir.path().join(format!("raw1-{n}-{round}")),
                &["default"],
            ));
            let r = drive(&rt, n, seconds, {
                let raw1 = raw1.clone();
                move |w, i| {
                    let raw1 = raw1.clone();
                    let key = ((w as u64) << 40 | i).to_be_bytes().to_vec();
                    async move { raw1.put(vec![(0, key, payload(w, i))]).await }
                }
            });
            drop(raw1);
            raw1_rates.push(r.events_per_s);

            let raw = Arc::new(RawGroupCommit::open(
                &dir.path().join(format!("raw-{n}-{round}")),
                &["events", "stream_index", "category_index", "event_ids"],
            ));
            let next_position = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let r = drive(&rt, n, seconds, {
                let raw = raw.clone();
                move |w, i| {
                    let raw = raw.clone();
                    let p = next_position.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    async move { raw.put(log_shaped_puts(w, i, p)).await }
                }
            });
            drop(raw);
            raw_rates.push(r.events_per_s);

            let log: Arc<dyn EventStore> = Arc::new(
                RocksLog::open(
                    dir.path().join(format!("log-{n}-{round}")),
                    LogOptions::default(),
                )
                .expect("open log"),
            );
            let streams: Arc<Vec<StreamName>> = Arc::new(
                (0..n)
                    .map(|w| StreamName::new(format!("bench-{w}")).expect("stream name"))
                    .collect(),
            );
            let r = drive(&rt, n, seconds, appends(log, streams.clone()));
            log_rates.push(r.events_per_s);
            log_lat.merge(&r.latencies);
            if let Some((urls, monitors)) = &servers {
                let mut options = natslog::NatsOptions::from_url(urls).expect("urls");
                options.monitors.clone_from(monitors);
                options.stream = format!("BENCH{n}R{round}");
                options.subject_prefix = format!("bench{n}r{round}");
                let log = natslog::NatsLog::connect_blocking(
                    options,
                    &dir.path().join(format!("replica-{n}-{round}")),
                    LogOptions::default(),
                )
                .expect("the bench cluster takes the log");
                let r = drive(&rt, n, seconds, appends(Arc::new(log.clone()), streams));
                log.shutdown();
                nats_rates.push(r.events_per_s);
                nats_lat.merge(&r.latencies);
                println!("# w{n} round {round}: nats {:.0} ev/s", nats_rates[round]);
            }
            println!(
                "# w{n} round {round}: log {:.0} ev/s, raw {:.0} ev/s, raw1 {:.0} ev/s",
                log_rates[round], raw_rates[round], raw1_rates[round]
            );
        }
        let (log_eps, raw_eps, raw1_eps) =
            (median(log_rates), median(raw_rates), median(raw1_rates));
        bench_line(
            &format!("log.append.w{n}.events_per_s"),
            log_eps,
            "events/s",
        );
        bench_line(
            &format!("log.append.w{n}.raw_events_per_s"),
            raw_eps,
            "events/s",
        );
        bench_line(
            &format!("log.append.w{n}.p50_ms"),
            log_lat.percentile_ms(0.50),
            "ms",
        );
        bench_line(
            &format!("log.append.w{n}.p99_ms"),
            log_lat.percentile_ms(0.99),
            "ms",
        );
        bench_line(
            &format!("log.append.w{n}.ratio_to_raw"),
            log_eps / raw_eps,
            "ratio",
        );
        bench_line(
            &format!("log.append.w{n}.raw1_events_per_s"),
            raw1_eps,
            "events/s",
        );
        bench_line(
            &format!("log.append.w{n}.ratio_to_raw1"),
            log_eps / raw1_eps,
            "ratio",
        );
        if !nats_rates.is_empty() {
            let nats_eps = median(nats_rates);
            bench_line(
                &format!("log.append.nats.w{n}.events_per_s"),
                nats_eps,
                "events/s",
            );
            bench_line(
                &format!("log.append.nats.w{n}.p50_ms"),
                nats_lat.percentile_ms(0.50),
                "ms",
            );
            bench_line(
                &format!("log.append.nats.w{n}.p99_ms"),
                nats_lat.percentile_ms(0.99),
                "ms",
            );
            bench_line(
                &format!("log.append.nats.w{n}.ratio_to_rocks"),
                nats_eps / log_eps,
                "ratio",
            );
        }
    }
}

/// Appender `w`'s `i`-th append to its own stream, expecting exactly version `i - 1`.
fn appends(
    log: Arc<dyn EventStore>,
    streams: Arc<Vec<StreamName>>,
) -> impl Fn(usize, u64) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync + 'static
{
    move |w, i| {
        let e = EventData::new("BenchEvent", 1, payload(w, i));
        let expected = ExpectedVersion::after(i.checked_sub(1));
        let append = log.append(streams[w].clone(), expected, vec![e]);
        Box::pin(async move {
            append.await.expect("append");
        })
    }
}
