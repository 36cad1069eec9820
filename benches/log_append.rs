//! Durable appends of 200-byte events with 1, 8, 64 and 256 concurrent appenders, against
//! a raw-RocksDB baseline doing one put per event through the same group commit, measured
//! in the same run. Prints `BENCH log.append.wN.{events_per_s,p50_ms,p99_ms,ratio_to_raw}`.
//!
//! `cargo bench --bench log_append -- --seconds 2 --rounds 3 --writers 1,8,64,256`

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use benchkit::{bench_line, median, Args, Latencies, RawGroupCommit};
use eventlog::{EventData, EventStore, ExpectedVersion, LogOptions, RocksLog, StreamName};

const EVENT_BYTES: usize = 200;

struct Round {
    events_per_s: f64,
    latencies: Latencies,
}

/// Runs `writers` threads calling `op` until `seconds` pass; op returns events written.
fn drive(
    writers: usize,
    seconds: f64,
    op: impl Fn(usize, u64) -> u64 + Send + Sync + 'static,
) -> Round {
    let op = Arc::new(op);
    let barrier = Arc::new(Barrier::new(writers + 1));
    let deadline = Duration::from_secs_f64(seconds);
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let (op, barrier) = (op.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut lat = Latencies::default();
                let mut events = 0;
                barrier.wait();
                let start = Instant::now();
                let mut i = 0;
                while start.elapsed() < deadline {
                    let t = Instant::now();
                    events += op(w, i);
                    lat.record(t.elapsed());
                    i += 1;
                }
                (events, lat)
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let mut total = 0;
    let mut latencies = Latencies::default();
    for h in handles {
        let (n, lat) = h.join().expect("appender thread");
        total += n;
        latencies.merge(&lat);
    }
    Round {
        events_per_s: total as f64 / start.elapsed().as_secs_f64(),
        latencies,
    }
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
    let dir = tempfile::tempdir().expect("temp dir");
    println!("# log_append: {EVENT_BYTES}-byte events, {seconds}s per round, {rounds} rounds, median reported");
    for &n in &writer_counts {
        let mut log_rates = Vec::new();
        let mut raw_rates = Vec::new();
        let mut log_lat = Latencies::default();
        for round in 0..rounds {
            // Alternate raw and log in each round so drift on a shared machine hits both.
            let raw = Arc::new(RawGroupCommit::open(
                &dir.path().join(format!("raw-{n}-{round}")),
            ));
            let r = drive(n, seconds, {
                let raw = raw.clone();
                move |w, i| {
                    raw.put_blocking(payload(w, i));
                    1
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
            let streams: Vec<StreamName> = (0..n)
                .map(|w| StreamName::new(format!("bench-{w}")).expect("stream name"))
                .collect();
            let r = drive(n, seconds, move |w, i| {
                let e = EventData::new("BenchEvent", 1, payload(w, i));
                log.append_blocking(streams[w].clone(), ExpectedVersion::Any, vec![e])
                    .expect("append");
                1
            });
            log_rates.push(r.events_per_s);
            log_lat.merge(&r.latencies);
            println!(
                "# w{n} round {round}: log {:.0} ev/s, raw {:.0} ev/s",
                log_rates[round], raw_rates[round]
            );
        }
        let (log_eps, raw_eps) = (median(log_rates), median(raw_rates));
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
    }
}
