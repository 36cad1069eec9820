//! Read throughput: `$all` forward and one stream forward, over one stream of 1,000,000
//! 200-byte events (decoded into `RecordedEvent`s), with a raw-RocksDB iteration of the same
//! number of 200-byte values as the baseline. Prints `BENCH log.read.all.events_per_s`,
//! `log.read.stream.events_per_s` and their ratios to the raw scan.
//!
//! `cargo bench --bench log_read -- --events 1000000 --rounds 3`

use std::time::Instant;

use benchkit::{bench_line, median, Args, ToF64};
use eventlog::{
    Direction, EventData, EventStore, ExpectedVersion, LogOptions, RocksLog, StreamName,
};

/// The event log allocates a few small buffers per event read or written; glibc's malloc
/// spends more time on them than the log does (measured with `cargo bench --bench log_read`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PAGE: usize = 4096;

fn main() {
    let args = Args::parse();
    let events: u64 = args.get("events", 1_000_000);
    let rounds: usize = args.get("rounds", 3);
    let dir = tempfile::tempdir().expect("temp dir");
    let log = RocksLog::open(dir.path().join("log"), LogOptions::default()).expect("open log");
    let stream = StreamName::new("read-1").expect("stream");
    let load = Instant::now();
    let mut written = 0u64;
    while written < events {
        let n = (events - written).min(1000);
        let batch = (0..n)
            .map(|_| EventData::new("BenchEvent", 1, vec![7u8; 200]))
            .collect();
        log.append_blocking(stream.clone(), ExpectedVersion::Any, batch)
            .expect("append");
        written += n;
    }
    println!(
        "# loaded {events} events in {:.1}s",
        load.elapsed().as_secs_f64()
    );

    let raw_dir = dir.path().join("raw");
    let raw = {
        let mut o = rocksdb::Options::default();
        o.create_if_missing(true);
        let db = rocksdb::DB::open(&o, &raw_dir).expect("raw db");
        let mut b = rocksdb::WriteBatch::default();
        for i in 0..events {
            b.put(i.to_be_bytes(), [7u8; 200]);
            if b.len() >= 10_000 {
                db.write(std::mem::take(&mut b)).expect("raw write");
            }
        }
        db.write(b).expect("raw write");
        db
    };

    let mut all = Vec::new();
    let mut one = Vec::new();
    let mut raw_rates = Vec::new();
    for round in 0..rounds {
        let t = Instant::now();
        let mut n = 0u64;
        let mut it = raw.raw_iterator();
        it.seek_to_first();
        while let Some(v) = it.value() {
            n += v.len() as u64 / 200;
            it.next();
        }
        assert_eq!(n, events);
        raw_rates.push(n.to_f64() / t.elapsed().as_secs_f64());

        let t = Instant::now();
        let mut from = 0;
        loop {
            let page = log.read_all_blocking(from, PAGE).expect("read all");
            let Some(last) = page.last() else { break };
            from = last.position + 1;
        }
        assert_eq!(from, events);
        all.push(events.to_f64() / t.elapsed().as_secs_f64());

        let t = Instant::now();
        let mut from = 0;
        loop {
            let page = log
                .read_stream_blocking(&stream, from, Direction::Forward, PAGE)
                .expect("read stream");
            let Some(last) = page.last() else { break };
            from = last.version + 1;
        }
        assert_eq!(from, events);
        one.push(events.to_f64() / t.elapsed().as_secs_f64());
        println!(
            "# round {round}: all {:.0} ev/s, stream {:.0} ev/s, raw {:.0} ev/s",
            all[round], one[round], raw_rates[round]
        );
    }
    let (all, one, raw) = (median(all), median(one), median(raw_rates));
    bench_line("log.read.all.events_per_s", all, "events/s");
    bench_line("log.read.stream.events_per_s", one, "events/s");
    bench_line("log.read.raw_scan.events_per_s", raw, "events/s");
    bench_line("log.read.all.ratio_to_raw", all / raw, "ratio");
    bench_line("log.read.stream.ratio_to_raw", one / raw, "ratio");
    log.shutdown();
}
