//! `gateway_load`: the gateway under load, over real HTTP and WebSocket connections on
//! loopback, with the server (`switchboard serve`) as a separate child process.
//!
//! Setup (timed apart): one organization, `--users` members (default 1,000) each logged in
//! with an open `/v1/stream` WebSocket, `--channels` channels (default 100) of
//! `users / channels` members each, and one fan-out channel of `--fanout-members` users
//! (default 1,000).
//!
//! - Baseline: as many concurrent `GET /healthz` loops as the headline send phase has
//!   senders, with the same HTTP client: the raw round-trip rate of this machine.
//! - Send phases, one per `--senders` level (default `50,100,200`; the last one is the
//!   headline): closed-loop senders, sender `i` posting into channel `i % channels` as
//!   each of its members in turn (per-user rate limits are never the bottleneck). Each
//!   text embeds a send id and the send start time; every member's socket records the
//!   delivery latency from that start. `--warmup` seconds (default 5; 2 for later levels)
//!   not counted, then `--seconds` (default 20) measured; only sends started in the
//!   measured window count. Accepted = `201` (the server answers after the group commit's
//!   fsync, so accepted messages are durable). Several levels give latency against
//!   throughput: closed-loop senders queue, so at a given rate latency grows with them.
//! - Fan-out (no other load): `--fanout-rounds` (default 20, after `--fanout-warmup` 2
//!   uncounted) single messages into the fan-out channel, one at a time; per round the time
//!   from the send start until the last member socket has the frame. The domain caps a
//!   channel's members (`too_many_members`); when the asked size is refused, the channel
//!   gets the largest allowed size, the lines are named after it (`gateway.fanout500.*`),
//!   and a second run opens a second socket per member so that as many sockets as asked
//!   get the one message (`gateway.fanout500x2.*`).
//! - The relay (`--relay false` skips it): the same send phases run against
//!   [`gateway_relay`], this binary started again as a separate process that does only
//!   what any server of this traffic must (HTTP, a durable RocksDB group commit, one frame
//!   to each member's sockets, on the same stack), with the same users, tokens, channels,
//!   sockets and senders, while the gateway idles (its sockets open, nothing sent). Its
//!   figures are the floor of this machine, measured in the same run, that the gateway's
//!   are read against (`gateway.messages_vs_relay`,
//!   `gateway.server_cpu_per_message_vs_relay`). With `--relay-rounds N` (default 1), N − 1
//!   more headline rounds follow against the gateway and the relay in turn (both servers up,
//!   which goes first alternating), each drained and the gateway's read models caught up
//!   before the other side's, and the ratios' medians over all N rounds are printed
//!   (`gateway.messages_vs_relay.median`, `….server_cpu_per_message_vs_relay.median`,
//!   with `.min` and `.max`): the machine drifts between phases by more than a lever moves.
//! - Open loop (latency without coordinated omission): `--rate` messages a second (default:
//!   half the relay's headline rate of this run; without a relay, half the gateway's) on a
//!   fixed schedule on as many connections as the headline level has senders (as wrk2
//!   does), each send and delivery timed from its scheduled start, whether or not
//!   earlier sends were answered: first against the relay
//!   (`gateway.relay.open_loop.*`), then, the relay gone, against the gateway
//!   (`gateway.open_loop.send.p99_ms`, `gateway.open_loop.delivery.p99_ms`, …, and its CPU
//!   per message against the relay's at the same rate). While the gateway's open loop runs,
//!   three searches for a message its user posted just before (`search_probes`): the
//!   first search of the server's life, a third into the window, with the index search-idle
//!   (`gateway.open_loop.search.idle_first_ms`), one 2 s later with the index searched
//!   (`….searched_ms`), and one with `after=` the post's position
//!   (`….read_your_write_ms`); a `#` line says whether each found the message
//!   (`--search-probes false` leaves them out: the first one's commit of what the idle
//!   index holds falls inside the measured window). The open loop's `#` line also gives how
//!   late the generator itself woke for sends whose lane was free by their due time (p50,
//!   p99, max): its own delay on the shared cores, which their latencies include.
//!
//! Prints the `BENCH` lines of issue 5 (`gateway.messages_per_s`, `gateway.send.p50_ms`,
//! `gateway.send.p99_ms`, `gateway.delivery.p50_ms`, `gateway.delivery.p99_ms`,
//! `gateway.fanout<N>.p50_ms`/`.p99_ms`), the same for the other levels
//! (`gateway.senders<N>.*`) and for the relay (`gateway.relay[.senders<N>].*`) and, to read
//! them by: the `/healthz` baseline and the ratio to it, the ratios to the relay, frames
//! delivered per second, and the CPU cores used over the measured
//! window by the server, by this load generator and by everything else on the machine
//! (they all share its cores), and accepted messages per CPU-second of the server (what a
//! message costs, less sensitive to what else runs), the largest lag of each read model
//! behind the log while measuring (`gateway.readmodel_lag_max.<model>`, sampled from
//! `/metrics` once a second) and how long after the send phase they had all caught up
//! (`gateway.readmodels_caught_up_s`). `#` lines give the setup time, accepted messages and frames
//! per second through each send phase, the server's CPU by thread (µs per accepted message)
//! and its context switches by thread per accepted message (the hops a message makes between
//! threads), and every error, non-201, missing delivery, socket close and server warning
//! (zero when all is well).
//!
//! - Cluster mode (`--store nats`): after all of the above, the same setup and send and
//!   fan-out phases run again against two `switchboard serve --store nats://…` nodes on a
//!   3-node R3 `nats-server` cluster on loopback (nats-server ≥ 2.12, found as the cluster
//!   tests find it): user `i`'s socket on node `i % 2`, channel `c`'s senders on node
//!   `c % 2`, so most frames cross nodes. Its lines are `gateway.cluster.*`, with
//!   `gateway.cluster.messages_vs_embedded` and
//!   `gateway.cluster.server_cpu_per_message_vs_embedded` against the embedded server of
//!   the same run (the cluster's "server" CPU counts both nodes and the three
//!   `nats-server`s). Read-model lag is sampled on the first node.
//!
//! - A/B of a lever (`--ab-env NAME=VALUE,…`): after all of the above, the same setup,
//!   send phases and fan-out again against a server started with those environment
//!   variables (e.g. `SWITCHBOARD_RECENT_TEXTS=0`), the open loop at the first run's rate;
//!   its lines are `gateway.b.*`, with `gateway.b[.senders<N>|.open_loop].messages_vs_a`
//!   and `.server_cpu_per_message_vs_a` against the first run. `--ab-bin PATH` does the
//!   same with another build of `switchboard` as B (e.g. the commit before a lever, built
//!   into another target dir), alone or with `--ab-env`. `--ab-rounds N` (1) runs A and B
//!   in turn N times, each on a fresh server (`gateway.a.roundK.*` and `gateway.b.roundK.*`
//!   from the second round on, without the relay), and prints each ratio's median as
//!   `gateway.b[.senders<N>|.open_loop].<ratio>.median`: a lever smaller than the spread
//!   between runs shows in the medians.
//!
//! Other flags: `--sockets N` connects only the first N users (the rest still send), to
//! see what open sockets cost; `--setup-parallel` (16) users created at a time;
//! `--client-threads` (2) runtime threads of the load generator; `--perf <file>` runs
//! `perf record -g` (or `GATEWAY_LOAD_PERF_ARGS`) on the server over the headline level's measured window
//! (`--perf-open-loop true`: the gateway's open loop's instead; B's of an A/B in
//! `<file>.b`); `--server-log <file>` keeps
//! the server's log (level `SWITCHBOARD_LOG`, default `warn`; with
//! `SWITCHBOARD_LOG=warn,eventlog=debug` the summary counts lagged subscribers).
//!
//! Run: `cargo bench --bench gateway_load -- [flags]` (the target lives in the server
//! package, where `CARGO_BIN_EXE_switchboard` names the freshly built server).

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use benchkit::{bench_line, median, Args, Latencies, ToF64};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

mod gateway_relay;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PASSWORD: &str = "correct horse battery staple";
/// Setup logins from one loopback address (under the server's burst per address).
const LOGINS_PER_ADDRESS: usize = 25;
/// Delivery histograms are sharded by socket to keep lock contention down.
const SHARDS: usize = 32;

/// The server child process; killed on drop.
struct Server {
    child: Child,
    base: String,
    log: std::path::PathBuf,
    /// In cluster mode (`--store nats`): the other `switchboard` nodes (the first is
    /// `child`/`base`) and the `nats-server` cluster under them.
    cluster: Option<Cluster>,
    _dir: tempfile::TempDir,
}

/// Two `switchboard` nodes on a 3-node R3 `nats-server` cluster beside the first one.
struct Cluster {
    /// Every node's `host:port`, the first node's included (node `i % n` serves user `i`).
    bases: Vec<String>,
    others: Vec<Child>,
    nats: Vec<testkit::nats::NatsNode>,
}

impl Server {
    /// `switchboard serve` on a fresh data directory: this build's binary, or `bin`.
    fn start(env: &[(String, String)], bin: Option<&str>) -> Self {
        let (dir, listen) = (tempfile::tempdir().expect("temp dir"), free_address());
        let mut cmd = Command::new(bin.unwrap_or(env!("CARGO_BIN_EXE_switchboard")));
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--listen")
            .arg(&listen)
            .env("NO_COLOR", "1")
            .env(
                "RUST_LOG",
                std::env::var("SWITCHBOARD_LOG").unwrap_or_else(|_| "warn".into()),
            );
        Self::spawn(cmd, dir, listen)
    }

    /// Cluster mode: a 3-node `nats-server` cluster (R3, fsync on every write) and two
    /// `switchboard serve --store nats://…` nodes on it; the first node's log is the one
    /// summarised.
    fn cluster() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let nats = testkit::nats::cluster(&dir.path().join("nats"));
        let urls: Vec<String> = nats.iter().map(testkit::nats::NatsNode::url).collect();
        let monitors: Vec<String> = nats.iter().map(testkit::nats::NatsNode::monitor).collect();
        let (urls, monitors) = (urls.join(","), monitors.join(","));
        let mut bases = Vec::new();
        let mut children = Vec::new();
        let log = dir.path().join("server.log");
        for node in ["a", "b"] {
            let listen = free_address();
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
            cmd.arg("serve")
                .arg("--store")
                .arg(&urls)
                .arg("--nats-monitor")
                .arg(&monitors)
                .arg("--node")
                .arg(node)
                .arg("--data-dir")
                .arg(dir.path().join(format!("data-{node}")))
                .arg("--listen")
                .arg(&listen)
                .env("NO_COLOR", "1")
                .env(
                    "RUST_LOG",
                    std::env::var("SWITCHBOARD_LOG").unwrap_or_else(|_| "warn".into()),
                )
                .stdout(append(&log))
                .stderr(append(&log));
            children.push(cmd.spawn().expect("start a switchboard node"));
            bases.push(listen);
        }
        let child = children.remove(0);
        Self {
            child,
            base: bases[0].clone(),
            log,
            cluster: Some(Cluster {
                bases,
                others: children,
                nats,
            }),
            _dir: dir,
        }
    }

    /// The `host:port` that serves user (or sender) `i`: node `i % n` in cluster mode.
    fn base_for(&self, i: usize) -> &str {
        match &self.cluster {
            Some(c) => &c.bases[i % c.bases.len()],
            None => &self.base,
        }
    }

    /// Every process doing the server's work: the `switchboard` nodes and, in cluster
    /// mode, the `nats-server`s.
    fn pids(&self) -> Vec<String> {
        let mut pids = vec![self.child.id().to_string()];
        if let Some(c) = &self.cluster {
            pids.extend(c.others.iter().map(|o| o.id().to_string()));
            pids.extend(c.nats.iter().filter_map(|n| n.pid()).map(|p| p.to_string()));
        }
        pids
    }

    /// CPU seconds used so far by [`Server::pids`].
    fn cpu_seconds(&self) -> f64 {
        self.pids().iter().map(|p| cpu_seconds(p)).sum()
    }

    /// The relay ([`gateway_relay`]): this binary again, serving the users and channels of
    /// `spec`.
    fn relay(spec: &std::path::Path) -> Self {
        let (dir, listen) = (tempfile::tempdir().expect("temp dir"), free_address());
        let mut cmd = Command::new(std::env::current_exe().expect("own binary"));
        cmd.env(gateway_relay::SPEC_ENV, spec)
            .env(gateway_relay::LISTEN_ENV, &listen)
            .env(gateway_relay::DATA_ENV, dir.path().join("data"));
        Self::spawn(cmd, dir, listen)
    }

    fn spawn(mut cmd: Command, dir: tempfile::TempDir, listen: String) -> Self {
        let log = dir.path().join("server.log");
        // The server logs to stdout.
        let child = cmd
            .stdout(append(&log))
            .stderr(append(&log))
            .spawn()
            .expect("start the server");
        Self {
            child,
            base: listen,
            log,
            cluster: None,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.base)
    }

    async fn wait_healthy(&mut self, c: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("child status") {
                panic!(
                    "server exited with {status}: {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            let bases = self
                .cluster
                .as_ref()
                .map_or_else(|| vec![self.base.clone()], |c| c.bases.clone());
            let mut healthy = 0;
            for base in &bases {
                if let Ok(r) = c.get(format!("http://{base}/healthz")).send().await {
                    healthy += usize::from(r.status().is_success());
                }
            }
            if healthy == bases.len() {
                return;
            }
            assert!(Instant::now() < deadline, "server not healthy within 60 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Warnings and errors the server logged (its log level is `warn` unless
    /// `SWITCHBOARD_LOG` says otherwise).
    fn log_summary(&self) -> (usize, usize, Vec<String>) {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lagged = text.matches("subscriber lagged").count();
        let lines: Vec<String> = text
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .map(str::to_owned)
            .collect();
        let first = lines.iter().take(5).cloned().collect();
        (lines.len(), lagged, first)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(c) = &mut self.cluster {
            for o in &mut c.others {
                let _ = o.kill();
                let _ = o.wait();
            }
        }
    }
}

/// `127.0.0.1:<a free port>`.
fn free_address() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    format!("127.0.0.1:{port}")
}

fn append(path: &std::path::Path) -> std::fs::File {
    std::fs::File::options()
        .create(true)
        .append(true)
        .open(path)
        .expect("server log file")
}

/// CPU seconds (user + system) used so far by process `pid`.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat_cpu_seconds(&stat)
}

/// CPU seconds (user + system) of a `/proc/…/stat` line.
fn stat_cpu_seconds(stat: &str) -> f64 {
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let hz = 100.0; // USER_HZ is 100 on every Linux this runs on.
    (ticks(11) + ticks(12)) / hz
}

/// What one thread has used so far: its name, CPU seconds and context switches.
#[derive(Clone, Default)]
struct ThreadUse {
    name: String,
    cpu: f64,
    /// Voluntary and involuntary context switches (`/proc/…/task/…/status`): each is a
    /// sleep or a preemption, so they count the hops a message makes between threads.
    switches: f64,
}

/// What each live thread of process `pid` has used so far, by thread id.
fn thread_cpu_seconds(pid: &str) -> BTreeMap<String, ThreadUse> {
    let mut threads = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return threads;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let name = stat
            .split_once('(')
            .and_then(|(_, r)| r.rsplit_once(')'))
            .map_or("?", |(n, _)| n)
            .trim()
            .to_owned();
        let tid = task.file_name().to_string_lossy().into_owned();
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        let switches = status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.rsplit(char::is_whitespace).next()?.parse::<f64>().ok())
            .sum();
        threads.insert(
            tid,
            ThreadUse {
                name,
                cpu: stat_cpu_seconds(&stat),
                switches,
            },
        );
    }
    threads
}

/// What each thread name used between two [`thread_cpu_seconds`] samples, most CPU
/// first; threads that ended in between are not in the second sample, and the CPU they
/// used counts as `(exited)` against the process total `total` (their switches are lost).
fn threads_between(
    before: &BTreeMap<String, ThreadUse>,
    after: &BTreeMap<String, ThreadUse>,
    total: f64,
) -> Vec<ThreadUse> {
    let mut by_name: BTreeMap<String, ThreadUse> = BTreeMap::new();
    for (tid, now) in after {
        let start = before.get(tid).cloned().unwrap_or_default();
        let used = by_name.entry(now.name.clone()).or_default();
        used.cpu += now.cpu - start.cpu;
        used.switches += now.switches - start.switches;
    }
    let counted: f64 = by_name.values().map(|u| u.cpu).sum();
    if total - counted > 0.005 {
        by_name.insert(
            "(exited)".to_owned(),
            ThreadUse {
                cpu: total - counted,
                ..ThreadUse::default()
            },
        );
    }
    let mut v: Vec<ThreadUse> = by_name
        .into_iter()
        .filter(|(_, u)| u.cpu > 0.0 || u.switches > 0.0)
        .map(|(name, u)| ThreadUse { name, ..u })
        .collect();
    v.sort_by(|a, b| b.cpu.total_cmp(&a.cpu));
    v
}

/// Busy CPU seconds of the whole machine so far (all processes), from `/proc/stat`.
fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let total: f64 = f.iter().take(8).sum();
    let idle = f.get(3).copied().unwrap_or(0.0) + f.get(4).copied().unwrap_or(0.0);
    (total - idle) / 100.0
}

/// The log's next position, from the gateway's `/healthz` (`None` from the relay).
async fn log_next_position(c: &reqwest::Client, server: &Server) -> Option<u64> {
    let r = c.get(server.url("/healthz")).send().await.ok()?;
    let v: Value = r.json().await.ok()?;
    v["log_next_position"].as_u64()
}

/// Each read model's lag behind the log (`readmodel_lag_events{model="…"}` of `/metrics`).
async fn model_lags(c: &reqwest::Client, url: &str, admin: &str) -> Vec<(String, u64)> {
    let Ok(r) = c.get(url).bearer_auth(admin).send().await else {
        return Vec::new();
    };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("readmodel_lag_events{model=\"")?;
            let (model, rest) = rest.split_once('"')?;
            let value = rest.rsplit(' ').next()?.parse::<f64>().ok()?;
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a gauge of whole events: `as` saturates, and takes NaN to 0"
            )]
            let events = value as u64;
            Some((model.to_owned(), events))
        })
        .collect()
}

/// Counters shared by every task.
#[derive(Default)]
struct Counters {
    sent_ok: AtomicU64,
    send_errors: AtomicU64,
    /// Non-201 answers by status code.
    non_201: Mutex<BTreeMap<u16, u64>>,
    /// Frames of measured messages received, over all sockets.
    delivered_measured: AtomicU64,
    delivered_warmup: AtomicU64,
    frames: AtomicU64,
    /// Socket ends (close frames with their code and reason, errors, end of stream).
    socket_ends: Mutex<BTreeMap<String, u64>>,
    sockets_open: AtomicUsize,
}

impl Counters {
    fn non_201(&self, status: u16) {
        *self.non_201.lock().unwrap().entry(status).or_default() += 1;
    }
}

/// What a socket reader does with the frames it reads.
struct Receivers {
    base: Instant,
    delivery: Vec<Mutex<Latencies>>,
    /// Per fan-out round: how many sockets have its frame, whether it counts, and the
    /// latency (µs) at which the last of `fanout_target` sockets had it.
    fanout_seen: Vec<AtomicUsize>,
    fanout_counted: Vec<bool>,
    fanout_done: Vec<AtomicU64>,
    fanout_target: AtomicUsize,
    fanout_notify: tokio::sync::Notify,
    /// Per-socket frame latency of the counted fan-out rounds.
    fanout_member: Mutex<Latencies>,
    counters: Counters,
}

impl Receivers {
    /// Receivers of `runs` runs of `per_run` fan-out rounds each (the first `warmup` of
    /// each run not counted) to `fan_sockets` sockets.
    fn new(per_run: usize, runs: usize, warmup: usize, fan_sockets: usize) -> Self {
        let rounds = per_run * runs;
        Self {
            base: Instant::now(),
            delivery: (0..SHARDS)
                .map(|_| Mutex::new(Latencies::default()))
                .collect(),
            fanout_seen: (0..rounds).map(|_| AtomicUsize::new(0)).collect(),
            fanout_counted: (0..rounds).map(|r| r % per_run.max(1) >= warmup).collect(),
            fanout_done: (0..rounds).map(|_| AtomicU64::new(0)).collect(),
            fanout_target: AtomicUsize::new(fan_sockets),
            fanout_notify: tokio::sync::Notify::new(),
            fanout_member: Mutex::new(Latencies::default()),
            counters: Counters::default(),
        }
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Frames carry `~B<kind><a>.<b>~` in the message text: kind `m` (measured) / `w`
    /// (warm-up) with a = send start (ns since `base`), b = send id; kind `f` (fan-out)
    /// with a = round, b = send start.
    fn on_frame(&self, socket: usize, text: &str) {
        self.counters.frames.fetch_add(1, Ordering::Relaxed);
        let Some(at) = text.find("~B") else { return };
        let rest = &text[at + 2..];
        let Some(end) = rest.find('~') else { return };
        let marker = &rest[..end];
        let Some(kind) = marker.bytes().next() else {
            return;
        };
        let Some((a, b)) = marker[1..].split_once('.') else {
            return;
        };
        let now = self.now_ns();
        match kind {
            b'm' => {
                let Ok(start) = a.parse::<u64>() else { return };
                let lat = Duration::from_nanos(now.saturating_sub(start));
                self.delivery[socket % SHARDS].lock().unwrap().record(lat);
                self.counters
                    .delivered_measured
                    .fetch_add(1, Ordering::Relaxed);
            }
            b'w' => {
                self.counters
                    .delivered_warmup
                    .fetch_add(1, Ordering::Relaxed);
            }
            b'f' => {
                let (Ok(round), Ok(start)) = (a.parse::<usize>(), b.parse::<u64>()) else {
                    return;
                };
                let lat = Duration::from_nanos(now.saturating_sub(start));
                let Some(seen) = self.fanout_seen.get(round) else {
                    return;
                };
                if self.fanout_counted[round] {
                    self.fanout_member.lock().unwrap().record(lat);
                }
                let target = self.fanout_target.load(Ordering::Acquire);
                if seen.fetch_add(1, Ordering::AcqRel) + 1 == target {
                    self.fanout_done[round].store(
                        u64::try_from(lat.as_micros()).unwrap_or(u64::MAX),
                        Ordering::Release,
                    );
                    self.fanout_notify.notify_one();
                }
            }
            _ => {}
        }
    }
}

/// Opens a WebSocket on each of `urls` (50 at a time), socket ids from `first`, each
/// read by a task of its own.
async fn connect_all(urls: Vec<String>, first: usize, rx: &Arc<Receivers>) {
    let sem = Arc::new(tokio::sync::Semaphore::new(50));
    let mut connects = Vec::new();
    for (i, url) in urls.into_iter().enumerate() {
        let (sem, rx) = (sem.clone(), rx.clone());
        connects.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.expect("semaphore");
            let (ws, _) = tokio_tungstenite::connect_async(url)
                .await
                .expect("websocket connects");
            tokio::spawn(read_socket(ws, first + i, rx));
        }));
    }
    for t in connects {
        t.await.expect("connect task");
    }
}

/// Opens a socket to `server` for each of `users` (socket ids from 0) and waits until all
/// are open.
async fn open_sockets(server: &Server, users: &[User], rx: &Arc<Receivers>) {
    let urls = users
        .iter()
        .enumerate()
        .map(|(i, u)| format!("ws://{}/v1/stream?token={}", server.base_for(i), u.token))
        .collect();
    connect_all(urls, 0, rx).await;
    while rx.counters.sockets_open.load(Ordering::Relaxed) < users.len() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn read_socket(mut ws: Ws, socket: usize, rx: Arc<Receivers>) {
    rx.counters.sockets_open.fetch_add(1, Ordering::Relaxed);
    let end = loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => rx.on_frame(socket, t.as_str()),
            Some(Ok(Message::Close(f))) => {
                break match f {
                    Some(f) => format!("close {} {}", u16::from(f.code), f.reason),
                    None => "close (no frame)".to_owned(),
                }
            }
            Some(Ok(_)) => {} // pings are answered by tungstenite on the next read/write
            Some(Err(e)) => break format!("error: {e}"),
            None => break "end of stream".to_owned(),
        }
    };
    rx.counters.sockets_open.fetch_sub(1, Ordering::Relaxed);
    *rx.counters
        .socket_ends
        .lock()
        .unwrap()
        .entry(end)
        .or_default() += 1;
}

/// Sends `req`, retrying on 429 (setup only); the JSON body of the 2xx answer.
async fn call_retry(make: impl Fn() -> reqwest::RequestBuilder, throttled: &AtomicU64) -> Value {
    loop {
        let r = make().send().await.expect("setup request sent");
        let status = r.status();
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            throttled.fetch_add(1, Ordering::Relaxed);
            let wait = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(1);
            tokio::time::sleep(Duration::from_millis(200).max(Duration::from_secs(wait) / 4)).await;
            continue;
        }
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "setup call failed: {status} {body}");
        return body;
    }
}

struct User {
    id: String,
    token: String,
    auth: String,
}

struct Setup {
    /// The organization admin's token (scrapes `/metrics`).
    admin: String,
    users: Vec<User>,
    channels: Vec<String>,
    fanout_channel: String,
    /// Members of the fan-out channel: users `0..fanout_size`.
    fanout_size: usize,
}

async fn setup(
    c: &reqwest::Client,
    s: &Server,
    n_users: usize,
    n_channels: usize,
    parallel: usize,
    fanout_members: usize,
) -> Setup {
    let throttled = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let boot = call_retry(
        || {
            c.post(s.url("/v1/bootstrap")).json(&json!({
                "organization": "Load", "name": "Admin", "extension": "100",
                "email": "admin@load.example", "password": PASSWORD,
            }))
        },
        &throttled,
    )
    .await;
    let admin = boot["token"].as_str().expect("admin token").to_owned();
    let admin_auth = admin.clone();

    // Users: created by the admin and logged in, `parallel` at a time (argon2 both ways).
    // The server allows a client address a burst of 30 logins (then one a second), so the
    // users log in from loopback addresses of their own, 25 to an address.
    let login_clients: Vec<reqwest::Client> = (0..n_users.div_ceil(LOGINS_PER_ADDRESS))
        .map(|k| {
            let [_, _, hi, lo] = u32::try_from(k + 1).expect("address").to_be_bytes();
            reqwest::Client::builder()
                .local_address(std::net::IpAddr::from([127, 1, hi, lo]))
                .build()
                .expect("login client")
        })
        .collect();
    let sem = Arc::new(tokio::sync::Semaphore::new(parallel));
    let mut tasks = Vec::new();
    for i in 0..n_users {
        let (c, sem, admin, throttled) = (c.clone(), sem.clone(), admin.clone(), throttled.clone());
        let login = login_clients[i / LOGINS_PER_ADDRESS].clone();
        let (users_url, sessions_url) = (s.url("/v1/users"), s.url("/v1/sessions"));
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.expect("semaphore");
            let email = format!("user{i}@load.example");
            let created = call_retry(
                || {
                    c.post(&users_url).bearer_auth(&admin).json(&json!({
                        "name": format!("User {i}"), "extension": format!("{}", 10_000 + i),
                        "role": "member", "email": email, "password": PASSWORD,
                    }))
                },
                &throttled,
            )
            .await;
            let login = call_retry(
                || {
                    login
                        .post(&sessions_url)
                        .json(&json!({ "email": email, "password": PASSWORD }))
                },
                &throttled,
            )
            .await;
            let token = login["token"].as_str().expect("token").to_owned();
            User {
                id: created["user_id"].as_str().expect("user id").to_owned(),
                auth: format!("Bearer {token}"),
                token,
            }
        }));
    }
    let mut users = Vec::with_capacity(n_users);
    for t in tasks {
        users.push(t.await.expect("user task"));
    }
    let users_s = t.elapsed().as_secs_f64();

    // Channels are created by their first member, so they hold exactly their members.
    let t2 = Instant::now();
    let per = n_users / n_channels;
    let mut channels = Vec::with_capacity(n_channels);
    for ch in 0..n_channels {
        let group = &users[ch * per..(ch + 1) * per];
        let members: Vec<&str> = group.iter().map(|u| u.id.as_str()).collect();
        let v = call_retry(
            || {
                c.post(s.url("/v1/conversations/channel"))
                    .header(reqwest::header::AUTHORIZATION, &group[0].auth)
                    .json(&json!({ "name": format!("load-{ch}"), "members": members }))
            },
            &throttled,
        )
        .await;
        channels.push(v["conversation_id"].as_str().expect("id").to_owned());
    }
    // The fan-out channel: the first `fanout_members` users, created by user 0. The
    // domain caps a channel's members; over the cap the bench takes the largest allowed
    // and says so.
    let mut size = fanout_members.min(n_users);
    let mut refused = None;
    let fanout_channel = loop {
        let members: Vec<&str> = users[..size].iter().map(|u| u.id.as_str()).collect();
        let r = c
            .post(s.url("/v1/conversations/channel"))
            .header(reqwest::header::AUTHORIZATION, &users[0].auth)
            .json(&json!({ "name": "everyone", "members": members }))
            .send()
            .await
            .expect("fan-out channel request");
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            break v["conversation_id"].as_str().expect("id").to_owned();
        }
        let max = v["message"]
            .as_str()
            .and_then(|m| m.split_whitespace().find_map(|w| w.parse::<usize>().ok()));
        match (v["code"].as_str(), max) {
            (Some("too_many_members"), Some(max)) if max < size && refused.is_none() => {
                refused = Some(format!("{status} {v}"));
                size = max;
            }
            _ => panic!("creating the fan-out channel of {size}: {status} {v}"),
        }
    };
    if let Some(why) = refused {
        println!(
            "# NOTE: a channel of {} members is refused by the server ({why}); \
             the fan-out channel has {size} members",
            fanout_members.min(n_users)
        );
    }
    println!(
        "# setup: {n_users} users created and logged in in {users_s:.1} s ({parallel} at a time), \
         {} channels in {:.1} s, {} setup requests throttled (429, retried)",
        n_channels + 1,
        t2.elapsed().as_secs_f64(),
        throttled.load(Ordering::Relaxed)
    );
    Setup {
        admin: admin_auth,
        users,
        channels,
        fanout_channel,
        fanout_size: size,
    }
}

/// Closed-loop `GET /healthz` from `senders` tasks for `secs`: round trips per second.
async fn healthz_baseline(
    c: &reqwest::Client,
    s: &Server,
    senders: usize,
    secs: f64,
) -> (f64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let url = s.url("/healthz");
    let mut tasks = Vec::new();
    let t = Instant::now();
    for _ in 0..senders {
        let (c, stop, count, url) = (c.clone(), stop.clone(), count.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Latencies::default();
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                if let Ok(r) = c.get(&url).send().await {
                    let ok = r.status().is_success();
                    let _ = r.bytes().await;
                    if ok {
                        count.fetch_add(1, Ordering::Relaxed);
                        lat.record(t0.elapsed());
                    }
                }
            }
            lat
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut lat = Latencies::default();
    for t in tasks {
        lat.merge(&t.await.expect("baseline task"));
    }
    (
        count.load(Ordering::Relaxed).to_f64() / t.elapsed().as_secs_f64(),
        lat.percentile_ms(0.99),
    )
}

/// Phases of the send loop.
const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

struct SendPlan {
    /// Per channel: the messages URL.
    urls: Vec<String>,
    /// Per channel: the members' `Authorization` values.
    auths: Vec<Vec<String>>,
    /// Per channel: how many members have a socket (frames expected per message).
    live: Vec<u64>,
}

/// Posts one message; the status of the answer, or `None` when the request failed (counted).
async fn post_message(
    c: &reqwest::Client,
    url: &str,
    auth: &str,
    body: String,
    rx: &Receivers,
) -> Option<u16> {
    let r = c
        .post(url)
        .header(reqwest::header::AUTHORIZATION, auth)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    match r {
        Ok(r) => {
            let status = r.status().as_u16();
            let _ = r.bytes().await;
            if status == 201 {
                rx.counters.sent_ok.fetch_add(1, Ordering::Relaxed);
            } else {
                rx.counters.non_201(status);
            }
            Some(status)
        }
        Err(e) => {
            if rx.counters.send_errors.fetch_add(1, Ordering::Relaxed) < 3 {
                eprintln!("# send error: {e}");
            }
            None
        }
    }
}

/// A closed-loop sender: the next message as soon as the last one is answered.
async fn sender(
    i: usize,
    c: reqwest::Client,
    plan: Arc<SendPlan>,
    phase: Arc<AtomicU8>,
    rx: Arc<Receivers>,
) -> Sent {
    let ch = i % plan.urls.len();
    let auths = &plan.auths[ch];
    let mut k = i / plan.urls.len();
    let mut sent = Sent::default();
    loop {
        let p = phase.load(Ordering::Acquire);
        if p == STOP {
            break;
        }
        let kind = if p == MEASURE { 'm' } else { 'w' };
        let auth = &auths[k % auths.len()];
        k += 1;
        let t0 = Instant::now();
        let start = rx.now_ns();
        let body = format!("{{\"text\":\"load ~B{kind}{start}.{i}-{k}~\"}}");
        if post_message(&c, &plan.urls[ch], auth, body, &rx).await == Some(201) && kind == 'm' {
            sent.latency.record(t0.elapsed());
            sent.accepted += 1;
            sent.expected += plan.live[ch];
        }
    }
    sent
}

/// What senders report: latencies of measured sends, accepted messages, frames expected.
#[derive(Default)]
struct Sent {
    latency: Latencies,
    accepted: u64,
    expected: u64,
}

impl Sent {
    fn merge(&mut self, other: &Sent) {
        self.latency.merge(&other.latency);
        self.accepted += other.accepted;
        self.expected += other.expected;
    }
}

/// The open loop, on `lanes` connections as wrk2 does it: message `j` is due `j / rate`
/// seconds after the loop starts and goes on lane `j % lanes`, whether or not the lane's
/// earlier messages were answered in time; its send and delivery latencies are timed from
/// that due time. A server that stalls is charged for every message that waited behind
/// the stall (no coordinated omission), and so is a load generator that fell behind its
/// schedule, which the `#` line reports. Messages go round the channels and, within one,
/// its members.
async fn open_loop(
    rate: f64,
    lanes: usize,
    c: reqwest::Client,
    plan: Arc<SendPlan>,
    phase: Arc<AtomicU8>,
    rx: Arc<Receivers>,
) -> Sent {
    let t0 = Instant::now();
    let base_ns = rx.now_ns();
    let behind_us = Arc::new(AtomicU64::new(0));
    let sent_count = Arc::new(AtomicU64::new(0));
    // How late the generator itself woke for a send whose lane was free by its due time
    // (so not waiting for the server): its own share of the latencies, on shared cores.
    let woke_late = Arc::new(Mutex::new(Latencies::default()));
    let mut tasks = Vec::new();
    for lane in 0..lanes {
        let (c, plan, phase, rx) = (c.clone(), plan.clone(), phase.clone(), rx.clone());
        let (behind_us, sent_count) = (behind_us.clone(), sent_count.clone());
        let woke_late = woke_late.clone();
        tasks.push(tokio::spawn(async move {
            let channels = plan.urls.len() as u64;
            let mut sent = Sent::default();
            let mut own_lateness = Latencies::default();
            let mut free_at = t0;
            let mut j = lane as u64;
            loop {
                let offset = Duration::from_secs_f64(j.to_f64() / rate);
                let due = t0 + offset;
                tokio::time::sleep_until(due.into()).await;
                let p = phase.load(Ordering::Acquire);
                if p == STOP {
                    break;
                }
                let late = due.elapsed();
                behind_us.fetch_max(
                    u64::try_from(late.as_micros()).unwrap_or(u64::MAX),
                    Ordering::Relaxed,
                );
                if p == MEASURE && free_at <= due {
                    own_lateness.record(late);
                }
                let kind = if p == MEASURE { 'm' } else { 'w' };
                let ch = usize::try_from(j % channels).expect("below urls.len()");
                let auths = &plan.auths[ch];
                let auth =
                    &auths[usize::try_from(j / channels).expect("a send index") % auths.len()];
                let start = base_ns + u64::try_from(offset.as_nanos()).unwrap_or(u64::MAX);
                let body = format!("{{\"text\":\"load ~B{kind}{start}.o-{j}~\"}}");
                if post_message(&c, &plan.urls[ch], auth, body, &rx).await == Some(201)
                    && kind == 'm'
                {
                    sent.latency
                        .record(Duration::from_nanos(rx.now_ns().saturating_sub(start)));
                    sent.accepted += 1;
                    sent.expected += plan.live[ch];
                }
                sent_count.fetch_add(1, Ordering::Relaxed);
                free_at = Instant::now();
                j += lanes as u64;
            }
            woke_late
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .merge(&own_lateness);
            sent
        }));
    }
    let mut sent = Sent::default();
    for t in tasks {
        sent.merge(&t.await.expect("open-loop lane"));
    }
    let woke_late = woke_late
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    println!(
        "# open loop at {rate:.0} msg/s on {lanes} connections: {} messages sent; the load \
         generator was at most {:.1} ms late starting a send (a lane waiting for an answer \
         makes its next send late; the wait is in the latencies); sends whose lane was free \
         by their due time started late by p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (the \
         generator's own delay, counted in their latencies)",
        sent_count.load(Ordering::Relaxed),
        behind_us.load(Ordering::Relaxed).to_f64() / 1000.0,
        woke_late.percentile_ms(0.50),
        woke_late.percentile_ms(0.99),
        woke_late.0.max().to_f64() / 1000.0,
    );
    sent
}

/// One search of [`search_probes`]: its name, latency, and whether it found the message.
struct SearchProbe {
    name: &'static str,
    ms: f64,
    found: bool,
}

/// Searches made while the open loop runs, each for a word only the message the probe's
/// user posted just before holds:
/// - `idle_first`: the first search of the server's life, a third into the measured
///   window: the index has been search-idle since it started, so it holds what the load
///   wrote since its last commit, and the search first has the log's head committed
///   (`projections::search::demand`); it must find the message;
/// - `searched`, 2 s later: the index is searched now and commits every refresh interval,
///   so the search does not wait, and a message younger than the interval may be missed;
/// - `read_your_write`, with `after=` the post's position: waits until the models have it;
///   it must find it.
async fn search_probes(
    c: reqwest::Client,
    post_url: String,
    auth: String,
    search_url: String,
    seconds: f64,
) -> Vec<SearchProbe> {
    tokio::time::sleep(Duration::from_secs_f64(seconds / 3.0)).await;
    let mut probes = Vec::new();
    for (name, after) in [
        ("idle_first", false),
        ("searched", false),
        ("read_your_write", true),
    ] {
        if name == "searched" {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let word = format!("probe{}x{}", probes.len(), std::process::id());
        let posted: Value = c
            .post(&post_url)
            .header(reqwest::header::AUTHORIZATION, &auth)
            .json(&json!({ "text": format!("search probe {word}") }))
            .send()
            .await
            .expect("probe post")
            .json()
            .await
            .expect("probe post answer");
        // The word is letters and digits: nothing to escape.
        let mut url = format!("{search_url}?q={word}");
        if after {
            let position = posted["position"].as_u64().expect("the post's position");
            url.push_str(&format!("&after={position}"));
        }
        let t = Instant::now();
        let answer = c
            .get(&url)
            .header(reqwest::header::AUTHORIZATION, &auth)
            .send()
            .await
            .expect("probe search");
        let status = answer.status().as_u16();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if status != 200 {
            println!("# search probe {name}: status {status} after {ms:.1} ms: {body}");
        }
        let found = body["items"]
            .as_array()
            .is_some_and(|items| !items.is_empty());
        probes.push(SearchProbe { name, ms, found });
    }
    probes
}

impl SendPlan {
    /// Sender `i` posts into channel `i % channels` of `server`, as each member in turn.
    fn new(server: &Server, st: &Setup, o: &Run) -> Self {
        let per = o.n_users / o.n_channels;
        Self {
            urls: st
                .channels
                .iter()
                .enumerate()
                .map(|(ch, id)| {
                    format!(
                        "http://{}/v1/conversations/{id}/messages",
                        server.base_for(ch)
                    )
                })
                .collect(),
            auths: (0..o.n_channels)
                .map(|ch| {
                    st.users[ch * per..(ch + 1) * per]
                        .iter()
                        .map(|u| u.auth.clone())
                        .collect()
                })
                .collect(),
            live: (0..o.n_channels)
                .map(|ch| {
                    (ch * per..(ch + 1) * per)
                        .filter(|&u| u < o.sockets)
                        .count() as u64
                })
                .collect(),
        }
    }
}

/// The name prefix of a `--senders` level: `<base>` for the last (headline) level,
/// `<base>.senders<N>` for the others.
fn level_prefix(base: &str, levels: &[usize], senders: usize) -> String {
    if levels.last() == Some(&senders) {
        base.to_owned()
    } else {
        format!("{base}.senders{senders}")
    }
}

/// What a send phase offers: `Closed(n)` senders each waiting for its answer, or an
/// `Open(rate)` loop sending `rate` messages a second on a fixed schedule.
#[derive(Clone, Copy)]
enum Load {
    Closed(usize),
    Open(f64),
}

/// One send phase's load and warm-up (seconds).
struct Level {
    load: Load,
    warmup: f64,
}

/// What one send phase measured.
struct Phase {
    accepted: u64,
    /// Frames of measured messages the sockets should get.
    expected: u64,
    /// Measured frames delivered before this phase.
    delivered_before: u64,
    elapsed: f64,
    warm_sent: u64,
    send_lat: Latencies,
    /// The open loop's offered rate (messages/s); `None` for closed-loop senders.
    offered: Option<f64>,
    server_cpu: f64,
    client_cpu: f64,
    other_cpu: f64,
    /// Per second: accepted messages / frames received.
    points: Vec<String>,
    /// Largest lag of each read model while measuring (the gateway only).
    lag_max: BTreeMap<String, u64>,
    /// Events appended to the log while measuring (the gateway's `/healthz`; the relay
    /// keeps no log).
    log_events: Option<u64>,
    /// The server's CPU seconds and context switches by thread name over the measured
    /// window, most CPU first.
    threads: Vec<ThreadUse>,
    /// The gateway's open loop: searches made while it ran ([`search_probes`]).
    search_probes: Vec<SearchProbe>,
}

/// Deliveries of the measured messages once the stragglers are in.
struct Delivered {
    frames: u64,
    drain_s: f64,
    latency: Latencies,
}

/// The level's load (closed-loop senders or the open loop) against `server` for its
/// warm-up then `--seconds`; with `admin`, the read models' lag is sampled from `/metrics`
/// once a second, and `--perf` records the server over the headline level's measured
/// window.
async fn send_phase(
    c: &reqwest::Client,
    server: &Server,
    plan: Arc<SendPlan>,
    rx: &Arc<Receivers>,
    o: &Run,
    admin: Option<&str>,
    Level { load, warmup }: Level,
) -> Phase {
    let server_pid = server.child.id().to_string();
    // The counters run on over phases: this phase's figures are from here.
    let (sent_before, delivered_before) = (
        rx.counters.sent_ok.load(Ordering::Relaxed),
        rx.counters.delivered_measured.load(Ordering::Relaxed),
    );
    for shard in &rx.delivery {
        *shard.lock().unwrap() = Latencies::default();
    }
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let mut tasks = Vec::new();
    match load {
        Load::Closed(senders) => {
            for i in 0..senders {
                tasks.push(tokio::spawn(sender(
                    i,
                    c.clone(),
                    plan.clone(),
                    phase.clone(),
                    rx.clone(),
                )));
            }
        }
        Load::Open(rate) => tasks.push(tokio::spawn(open_loop(
            rate,
            o.senders.last().copied().unwrap_or(200),
            c.clone(),
            plan.clone(),
            phase.clone(),
            rx.clone(),
        ))),
    }
    // Per second of the send phase: messages accepted and frames received (all kinds),
    // and the read models' lag behind the log (from `/metrics`).
    let timeline = {
        let (rx, phase) = (rx.clone(), phase.clone());
        let (c, metrics_url) = (c.clone(), server.url("/metrics"));
        let admin = admin.map(str::to_owned);
        tokio::spawn(async move {
            let mut points = Vec::new();
            let mut lag_max: BTreeMap<String, u64> = BTreeMap::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            let (mut sent, mut frames) = (
                rx.counters.sent_ok.load(Ordering::Relaxed),
                rx.counters.frames.load(Ordering::Relaxed),
            );
            while phase.load(Ordering::Acquire) != STOP {
                tick.tick().await;
                let (s, f) = (
                    rx.counters.sent_ok.load(Ordering::Relaxed),
                    rx.counters.frames.load(Ordering::Relaxed),
                );
                points.push(format!("{}/{}", s - sent, f - frames));
                (sent, frames) = (s, f);
                if let (MEASURE, Some(admin)) = (phase.load(Ordering::Acquire), &admin) {
                    for (model, lag) in model_lags(&c, &metrics_url, admin).await {
                        let max = lag_max.entry(model).or_default();
                        *max = (*max).max(lag);
                    }
                }
            }
            (points, lag_max)
        })
    };
    tokio::time::sleep(Duration::from_secs_f64(warmup)).await;
    let warm_sent = rx.counters.sent_ok.load(Ordering::Relaxed) - sent_before;
    let (server_cpu0, client_cpu0) = (server.cpu_seconds(), cpu_seconds("self"));
    let (machine0, threads0) = (machine_busy_seconds(), thread_cpu_seconds(&server_pid));
    let node0_cpu0 = cpu_seconds(&server_pid);
    let log0 = log_next_position(c, server).await;
    let mut perf = (admin.is_some()
        && !o.perf_out.is_empty()
        && match load {
            Load::Closed(n) => !o.perf_open_loop && o.senders.last() == Some(&n),
            Load::Open(_) => o.perf_open_loop,
        })
    .then(|| {
        // `GATEWAY_LOAD_PERF_ARGS` replaces `-g` (e.g. `--call-graph dwarf,8192 -F 300`:
        // release builds keep no frame pointers, so `-g` stacks stop at the first frame).
        let how = std::env::var("GATEWAY_LOAD_PERF_ARGS").unwrap_or_else(|_| "-g".to_owned());
        Command::new("perf")
            .arg("record")
            .args(how.split_whitespace())
            .args(["-o", &o.perf_out, "-p", &server_pid])
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(format!("{}.log", o.perf_out))
                    .map_or_else(|_| Stdio::null(), Stdio::from),
            )
            .spawn()
            .expect("perf record")
    });
    let t = Instant::now();
    phase.store(MEASURE, Ordering::Release);
    let probes = (o.search_probes && admin.is_some() && matches!(load, Load::Open(_))).then(|| {
        tokio::spawn(search_probes(
            c.clone(),
            plan.urls[0].clone(),
            plan.auths[0][0].clone(),
            server.url("/v1/search"),
            o.seconds,
        ))
    });
    tokio::time::sleep(Duration::from_secs_f64(o.seconds)).await;
    phase.store(STOP, Ordering::Release);
    let search_probes = match probes {
        Some(p) => p.await.expect("search probes"),
        None => Vec::new(),
    };
    let mut sent = Sent::default();
    for t in tasks {
        sent.merge(&t.await.expect("sender"));
    }
    let Sent {
        latency: send_lat,
        accepted,
        expected,
    } = sent;
    let elapsed = t.elapsed().as_secs_f64();
    let (server_cpu, client_cpu) = (
        server.cpu_seconds() - server_cpu0,
        cpu_seconds("self") - client_cpu0,
    );
    let other_cpu = machine_busy_seconds() - machine0 - server_cpu - client_cpu;
    // The first node's threads by name; in cluster mode the other processes as one entry.
    let node0_cpu = cpu_seconds(&server_pid) - node0_cpu0;
    let log_events = match (log0, log_next_position(c, server).await) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let mut threads = threads_between(&threads0, &thread_cpu_seconds(&server_pid), node0_cpu);
    if server.cluster.is_some() {
        threads.push(ThreadUse {
            name: "(other node + nats-servers)".to_owned(),
            cpu: server_cpu - node0_cpu,
            switches: 0.0,
        });
        threads.sort_by(|a, b| b.cpu.total_cmp(&a.cpu));
    }
    if let Some(p) = perf.as_mut() {
        let _ = Command::new("kill")
            .args(["-INT", &p.id().to_string()])
            .status();
        let _ = p.wait();
        println!("# perf data of the measured window in {}", o.perf_out);
    }
    let (points, lag_max) = timeline.await.expect("timeline");
    Phase {
        accepted,
        expected,
        delivered_before,
        elapsed,
        warm_sent,
        send_lat,
        offered: match load {
            Load::Open(rate) => Some(rate),
            Load::Closed(_) => None,
        },
        server_cpu,
        client_cpu,
        other_cpu,
        points,
        lag_max,
        log_events,
        threads,
        search_probes,
    }
}

impl Phase {
    fn messages_per_s(&self) -> f64 {
        self.accepted.to_f64() / self.elapsed
    }

    /// Waits (up to 15 s) until every member's socket has every accepted message.
    async fn drain(&self, rx: &Receivers) -> Delivered {
        let t_drain = Instant::now();
        let delivered =
            || rx.counters.delivered_measured.load(Ordering::Relaxed) - self.delivered_before;
        while delivered() < self.expected && t_drain.elapsed() < Duration::from_secs(15) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut latency = Latencies::default();
        for h in &rx.delivery {
            latency.merge(&h.lock().unwrap());
        }
        Delivered {
            frames: delivered(),
            drain_s: t_drain.elapsed().as_secs_f64(),
            latency,
        }
    }

    /// The `BENCH` lines of the phase, named `<prefix>.…`.
    fn report(&self, prefix: &str, d: &Delivered) {
        let line = |name: &str, value: f64, unit: &str| {
            bench_line(&format!("{prefix}.{name}"), value, unit);
        };
        if let Some(rate) = self.offered {
            line("offered_per_s", rate, "msg/s");
        }
        line("messages_per_s", self.messages_per_s(), "msg/s");
        line("send.p50_ms", self.send_lat.percentile_ms(0.50), "ms");
        line("send.p99_ms", self.send_lat.percentile_ms(0.99), "ms");
        line("delivery.p50_ms", d.latency.percentile_ms(0.50), "ms");
        line("delivery.p99_ms", d.latency.percentile_ms(0.99), "ms");
        line(
            "deliveries_per_s",
            d.frames.to_f64() / self.elapsed,
            "frames/s",
        );
        line("server_cpu_cores", self.server_cpu / self.elapsed, "cores");
        // What a message costs the server, whatever else shared the machine: accepted
        // messages per CPU-second the server used (its threads, the read models' included).
        if self.server_cpu > 0.0 {
            line(
                "messages_per_server_cpu_s",
                self.accepted.to_f64() / self.server_cpu,
                "msg/cpu-s",
            );
        }
        line("loadgen_cpu_cores", self.client_cpu / self.elapsed, "cores");
        // Anything else running on the machine meanwhile (other builds, tests) skews the run.
        line(
            "other_cpu_cores",
            (self.other_cpu / self.elapsed).max(0.0),
            "cores",
        );
    }

    /// The `#` line: counts, maxima and missing deliveries.
    fn summary(&self, name: &str, d: &Delivered) {
        println!(
            "# {name}: {} accepted in {:.2} s (warm-up {}), send max {:.1} ms; deliveries {} of \
             {} expected ({} missing) after {:.2} s drain, delivery max {:.1} ms",
            self.accepted,
            self.elapsed,
            self.warm_sent,
            self.send_lat.0.max().to_f64() / 1000.0,
            d.frames,
            self.expected,
            self.expected.saturating_sub(d.frames),
            d.drain_s,
            d.latency.0.max().to_f64() / 1000.0,
        );
        // Where the server's CPU went: cores, and µs per accepted message.
        let per = |secs: f64| secs / self.elapsed;
        let per_message = |secs: f64| secs * 1e6 / self.accepted.max(1).to_f64();
        let threads: Vec<String> = self
            .threads
            .iter()
            .filter(|u| u.cpu > 0.0)
            .map(|u| {
                format!(
                    "{} {:.2} ({:.0} µs)",
                    u.name,
                    per(u.cpu),
                    per_message(u.cpu)
                )
            })
            .collect();
        println!(
            "# {name}: server CPU by thread, cores (µs per accepted message): {}; total {:.2} ({:.0} µs)",
            threads.join(", "),
            per(self.server_cpu),
            per_message(self.server_cpu),
        );
        // How often the threads slept or were preempted: a message's hops between threads.
        let mut by_switches: Vec<&ThreadUse> =
            self.threads.iter().filter(|u| u.switches > 0.0).collect();
        by_switches.sort_by(|a, b| b.switches.total_cmp(&a.switches));
        let per_accepted = |n: f64| n / self.accepted.max(1).to_f64();
        let switches: Vec<String> = by_switches
            .iter()
            .map(|u| format!("{} {:.2}", u.name, per_accepted(u.switches)))
            .collect();
        println!(
            "# {name}: context switches per accepted message by thread: {}; total {:.2}",
            switches.join(", "),
            per_accepted(self.threads.iter().map(|u| u.switches).sum()),
        );
        if let Some(events) = self.log_events {
            println!(
                "# {name}: {events} events appended to the log while measuring, {:.2} per accepted message",
                per_accepted(events.to_f64()),
            );
        }
    }
}

fn main() {
    // Started again as the relay (by `Server::relay`): serve, never measure.
    gateway_relay::serve_if_asked();
    let args = Args::parse();
    let n_users: usize = args.get("users", 1000);
    // Users with an open socket (the first ones): fewer isolates what sockets cost.
    let sockets: usize = args.get("sockets", n_users);
    let n_channels: usize = args.get("channels", 100);
    let senders: Vec<usize> = args
        .get("senders", String::from("50,100,200"))
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .expect("--senders: numbers separated by commas")
        })
        .collect();
    let seconds: f64 = args.get("seconds", 20.0);
    let warmup: f64 = args.get("warmup", 5.0);
    let baseline_s: f64 = args.get("baseline-seconds", 5.0);
    let rounds: usize = args.get("fanout-rounds", 20);
    let fanout_warmup: usize = args.get("fanout-warmup", 2);
    let fanout_members: usize = args.get("fanout-members", 1000);
    let setup_parallel: usize = args.get("setup-parallel", 16);
    let client_threads: usize = args.get("client-threads", 2);
    let perf_out: String = args.get("perf", String::new());
    let perf_open_loop: bool = args.get("perf-open-loop", false);
    // `--search-probes false`: the gateway's open loop without its searches (whose first
    // commits what the idle index holds, inside the measured window).
    let search_probes: bool = args.get("search-probes", true);
    let server_log: String = args.get("server-log", String::new());
    let relay: bool = args.get("relay", true);
    // Headline rounds against the gateway and the relay in turn (the first is the
    // headline level itself): the ratios' medians stand against the machine's drift.
    let relay_rounds: usize = args.get("relay-rounds", 1);
    let rate: f64 = args.get("rate", 0.0);
    // `NAME=VALUE,…`: a second run against a server with these environment variables.
    let ab_env: Vec<(String, String)> = args
        .get("ab-env", String::new())
        .split(',')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("--ab-env: NAME=VALUE,…");
            (k.to_owned(), v.to_owned())
        })
        .collect();
    // A second run against another build of the server (e.g. the commit before a lever).
    let ab_bin: String = args.get("ab-bin", String::new());
    // A and B in turn this many times: the ratios' medians stand against the drift.
    let ab_rounds: usize = args.get("ab-rounds", 1);
    let store: String = args.get("store", String::from("rocksdb"));
    assert!(
        store == "rocksdb" || store == "nats",
        "--store: rocksdb or nats"
    );
    assert!(
        n_channels > 0 && n_users >= n_channels,
        "need users >= channels > 0"
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(client_threads)
        .enable_all()
        .build()
        .expect("runtime");
    let o = Run {
        name: "gateway".to_owned(),
        cluster: false,
        n_users,
        sockets: sockets.min(n_users),
        n_channels,
        senders,
        seconds,
        warmup,
        baseline_s,
        rounds,
        fanout_warmup,
        fanout_members,
        setup_parallel,
        perf_out,
        perf_open_loop,
        search_probes,
        server_log,
        relay,
        relay_rounds: relay_rounds.max(1),
        rate: (rate > 0.0).then_some(rate),
        env: Vec::new(),
        bin: None,
    };
    let embedded = rt.block_on(run(o.clone()));
    if !ab_env.is_empty() || !ab_bin.is_empty() {
        // The lever's A/B: the same phases against a server started with `--ab-env`
        // (after A and its relay are gone), the open loop at A's rate.
        let b = Run {
            name: "gateway.b".to_owned(),
            relay: false,
            server_log: String::new(),
            // B's profile beside A's, not over it.
            perf_out: if o.perf_out.is_empty() {
                String::new()
            } else {
                format!("{}.b", o.perf_out)
            },
            env: ab_env,
            bin: (!ab_bin.is_empty()).then_some(ab_bin),
            rate: embedded.open_rate,
            ..o.clone()
        };
        let outcome = rt.block_on(run(b.clone()));
        let mut ratios: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut keep = |round: Vec<(String, f64)>| {
            for (name, ratio) in round {
                ratios.entry(name).or_default().push(ratio);
            }
        };
        keep(compare(&b, "a", &embedded, &outcome));
        for round in 2..=ab_rounds {
            // A again, then B again, each on a fresh server: A, B, A, B, … so that a drift
            // of the machine during the run weighs on both sides alike.
            let a = Run {
                name: format!("gateway.a.round{round}"),
                relay: false,
                perf_out: String::new(),
                server_log: String::new(),
                rate: embedded.open_rate,
                ..o.clone()
            };
            let again = rt.block_on(run(a));
            let b = Run {
                name: format!("gateway.b.round{round}"),
                perf_out: String::new(),
                ..b.clone()
            };
            let outcome = rt.block_on(run(b.clone()));
            keep(compare(&b, "a", &again, &outcome));
        }
        if ab_rounds > 1 {
            for (name, mut values) in ratios {
                values.sort_by(f64::total_cmp);
                let shown: Vec<String> = values.iter().map(|v| format!("{v:.3}")).collect();
                println!(
                    "# gateway.b{name}: {} over {ab_rounds} rounds",
                    shown.join(" ")
                );
                bench_line(
                    &format!("gateway.b{name}.median"),
                    values[values.len() / 2],
                    "ratio",
                );
            }
        }
    }
    if store == "nats" {
        // The same load against a 2-node cluster, after the embedded server (and the
        // relay) are gone; its figures are read against the embedded server's.
        let o = Run {
            name: "gateway.cluster".to_owned(),
            cluster: true,
            relay: false,
            server_log: String::new(),
            ..o
        };
        let cluster = rt.block_on(run(o.clone()));
        let _ = compare(&o, "embedded", &embedded, &cluster);
    }
}

#[derive(Clone)]
struct Run {
    /// The lines' prefix: `gateway`, or `gateway.cluster` for the cluster run.
    name: String,
    /// Against two nodes on a 3-node `nats-server` cluster instead of one embedded server.
    cluster: bool,
    n_users: usize,
    sockets: usize,
    n_channels: usize,
    /// Concurrent senders of each send phase, the last one the headline.
    senders: Vec<usize>,
    seconds: f64,
    warmup: f64,
    baseline_s: f64,
    rounds: usize,
    fanout_warmup: usize,
    fanout_members: usize,
    setup_parallel: usize,
    perf_out: String,
    /// `--perf` records the open loop's measured window instead of the headline level's.
    perf_open_loop: bool,
    /// Searches during the gateway's open loop ([`search_probes`]).
    search_probes: bool,
    server_log: String,
    relay: bool,
    /// Headline rounds against the gateway and the relay in turn (`--relay-rounds`).
    relay_rounds: usize,
    /// The open loop's rate (messages/s); `None`: half the relay's headline rate.
    rate: Option<f64>,
    /// Environment variables of the server (the B side of `--ab-env`).
    env: Vec<(String, String)>,
    /// Another `switchboard` binary to run (the B side of `--ab-bin`).
    bin: Option<String>,
}

/// What a run measured, for comparisons: its send phases, its open loop and the rate.
struct Outcome {
    phases: Vec<(usize, Phase)>,
    open: Option<Phase>,
    open_rate: Option<f64>,
}

/// The whole run against one server (or cluster).
async fn run(o: Run) -> Outcome {
    let total = Instant::now();
    let mut server = if o.cluster {
        Server::cluster()
    } else {
        Server::start(&o.env, o.bin.as_deref())
    };
    carrier::tls::install_default_provider();
    let c = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_idle_timeout(None)
        .build()
        .expect("client");
    server.wait_healthy(&c).await;
    let server_pid = server.child.id().to_string();
    println!(
        "# server pid {server_pid} at {} ({} users, {} with a socket, {} channels of {}, {} senders)",
        server.base,
        o.n_users,
        o.sockets,
        o.n_channels,
        o.n_users / o.n_channels,
        o.senders.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    );

    let st = setup(
        &c,
        &server,
        o.n_users,
        o.n_channels,
        o.setup_parallel,
        o.fanout_members,
    )
    .await;

    // Every user's socket.
    // Fan-out rounds: a warm-up then counted rounds, over the fan-out channel's members'
    // sockets, then the same again with a second socket per member when the channel is
    // smaller than the users (so that as many sockets get the message as were asked for).
    let per_run = o.fanout_warmup + o.rounds;
    // Fan-out sockets: the channel members with a socket (all of them by default).
    let fan_sockets = st.fanout_size.min(o.sockets);
    let runs = if st.fanout_size < o.fanout_members.min(o.n_users) && fan_sockets == st.fanout_size
    {
        2
    } else {
        1
    };
    let rx = Arc::new(Receivers::new(per_run, runs, o.fanout_warmup, fan_sockets));
    let t = Instant::now();
    open_sockets(&server, &st.users[..o.sockets], &rx).await;
    println!(
        "# {} sockets connected in {:.2} s",
        o.sockets,
        t.elapsed().as_secs_f64()
    );

    // Baseline: raw HTTP round trips, same client and concurrency (the headline level's).
    let headline_senders = o.senders.last().copied().unwrap_or(1);
    let (healthz_per_s, healthz_p99) =
        healthz_baseline(&c, &server, headline_senders, o.baseline_s).await;

    // Send phases, one per `--senders` level, the last one under the headline names.
    let plan = Arc::new(SendPlan::new(&server, &st, &o));
    let mut phases = Vec::new();
    for (level, &senders) in o.senders.iter().enumerate() {
        let prefix = level_prefix(&o.name, &o.senders, senders);
        // The first level warms the server up; later ones only their senders.
        let warmup = if level == 0 {
            o.warmup
        } else {
            o.warmup.min(2.0)
        };
        let level = Level {
            load: Load::Closed(senders),
            warmup,
        };
        let phase = gateway_level(&c, &server, &plan, &rx, &o, &st.admin, level, &prefix).await;
        phases.push((senders, phase));
    }
    if let Some((_, headline)) = phases.last() {
        bench_line(&format!("{}.healthz_per_s", o.name), healthz_per_s, "req/s");
        bench_line(&format!("{}.healthz.p99_ms", o.name), healthz_p99, "ms");
        bench_line(
            &format!("{}.messages_vs_healthz", o.name),
            headline.messages_per_s() / healthz_per_s,
            "ratio",
        );
    }
    // Fan-out: one message at a time into the fan-out channel.
    let fan_url = server.url(&format!("/v1/conversations/{}/messages", st.fanout_channel));
    for run in 0..runs {
        let sockets = fan_sockets * (run + 1);
        if run == 1 {
            // A second socket for every member of the (capped) fan-out channel.
            let extra: Vec<String> = st.users[..st.fanout_size]
                .iter()
                .enumerate()
                // The second socket on the other node, in cluster mode.
                .map(|(i, u)| {
                    format!(
                        "ws://{}/v1/stream?token={}",
                        server.base_for(i + 1),
                        u.token
                    )
                })
                .collect();
            let open = rx.counters.sockets_open.load(Ordering::Relaxed);
            connect_all(extra, o.n_users, &rx).await;
            while rx.counters.sockets_open.load(Ordering::Relaxed) < open + st.fanout_size {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        rx.fanout_target.store(sockets, Ordering::Release);
        *rx.fanout_member.lock().unwrap() = Latencies::default();
        let mut fanout = Latencies::default();
        let mut fan_send = Latencies::default();
        let mut incomplete = 0;
        for round in run * per_run..(run + 1) * per_run {
            let auth = &st.users[round % st.fanout_size].auth;
            let t0 = Instant::now();
            let start = rx.now_ns();
            let r = c
                .post(&fan_url)
                .header(reqwest::header::AUTHORIZATION, auth)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(format!("{{\"text\":\"fan ~Bf{round}.{start}~\"}}"))
                .send()
                .await
                .expect("fan-out send");
            let status = r.status().as_u16();
            let _ = r.bytes().await;
            if status != 201 {
                rx.counters.non_201(status);
                continue;
            }
            let sent = t0.elapsed();
            let deadline = Instant::now() + Duration::from_secs(10);
            while rx.fanout_seen[round].load(Ordering::Acquire) < sockets
                && Instant::now() < deadline
            {
                let _ =
                    tokio::time::timeout(Duration::from_millis(100), rx.fanout_notify.notified())
                        .await;
            }
            if !rx.fanout_counted[round] {
                continue;
            }
            fan_send.record(sent);
            let seen = rx.fanout_seen[round].load(Ordering::Acquire);
            if seen < sockets {
                incomplete += 1;
                println!("# fan-out round {round}: only {seen} of {sockets} sockets within 10 s");
                continue;
            }
            fanout.record(Duration::from_micros(
                rx.fanout_done[round].load(Ordering::Acquire),
            ));
        }
        let name = if run == 0 {
            format!("{}.fanout{}", o.name, st.fanout_size)
        } else {
            format!("{}.fanout{}x2", o.name, st.fanout_size)
        };
        bench_line(&format!("{name}.p50_ms"), fanout.percentile_ms(0.50), "ms");
        bench_line(&format!("{name}.p99_ms"), fanout.percentile_ms(0.99), "ms");
        let member = rx.fanout_member.lock().unwrap();
        println!(
            "# {name}: {} rounds, one message to a {}-member channel until all {sockets} of its \
             members' sockets have it ({} sockets open in all; +{} uncounted rounds), {incomplete} \
             incomplete; max {:.1} ms; send p50 {:.1} ms; per-socket frame latency p50 {:.1} ms \
             p99 {:.1} ms",
            o.rounds,
            st.fanout_size,
            rx.counters.sockets_open.load(Ordering::Relaxed),
            o.fanout_warmup,
            fanout.0.max().to_f64() / 1000.0,
            fan_send.percentile_ms(0.50),
            member.percentile_ms(0.5),
            member.percentile_ms(0.99),
        );
    }

    let k = &rx.counters;
    println!(
        "# errors: {} send errors, non-201 {:?}, {} sockets open of {}, socket ends {:?}, {} frames",
        k.send_errors.load(Ordering::Relaxed),
        k.non_201.lock().unwrap(),
        k.sockets_open.load(Ordering::Relaxed),
        o.sockets + (runs - 1) * st.fanout_size,
        k.socket_ends.lock().unwrap(),
        k.frames.load(Ordering::Relaxed),
    );
    let (warns, lagged, first) = server.log_summary();
    if !o.server_log.is_empty() {
        let _ = std::fs::copy(&server.log, &o.server_log);
        println!("# server log copied to {}", o.server_log);
    }
    println!(
        "# server log: {warns} WARN/ERROR lines; {lagged} 'subscriber lagged' (logged only with \
         SWITCHBOARD_LOG=warn,eventlog=debug)"
    );
    for l in first {
        println!("#   {l}");
    }
    // The relay's phases (the gateway idle meanwhile: its sockets open, nothing sent), then
    // the gateway's open loop at the relay's open-loop rate.
    let relay = if o.relay {
        let gateway = Rounds {
            server: &server,
            plan: &plan,
            rx: &rx,
            admin: &st.admin,
        };
        relay_phase(&c, &st, &o, &phases, &gateway).await
    } else {
        None
    };
    let rate = match (o.rate, &relay, phases.last()) {
        (Some(rate), _, _) => Some(rate),
        (None, Some(relay), _) => relay.offered,
        // Without a relay: half the gateway's own headline rate.
        (None, None, Some((_, headline))) => Some(headline.messages_per_s() / 2.0),
        (None, None, None) => None,
    };
    let rate = rate.filter(|r| *r > 0.0);
    let mut open = None;
    if let Some(rate) = rate {
        let prefix = format!("{}.open_loop", o.name);
        let level = Level {
            load: Load::Open(rate),
            warmup: o.warmup.min(2.0),
        };
        let phase = gateway_level(&c, &server, &plan, &rx, &o, &st.admin, level, &prefix).await;
        if let Some(relay) = &relay {
            versus_relay(&prefix, &phase, relay);
        }
        open = Some(phase);
    }
    println!("# total {:.1} s", total.elapsed().as_secs_f64());
    Outcome {
        phases,
        open,
        open_rate: rate,
    }
}

/// One send phase against the gateway, with its read models' lag: while measuring (the
/// largest, sampled once a second) and how long they took to catch up after it; prints
/// its lines under `prefix`.
#[allow(clippy::too_many_arguments)]
async fn gateway_level(
    c: &reqwest::Client,
    server: &Server,
    plan: &Arc<SendPlan>,
    rx: &Arc<Receivers>,
    o: &Run,
    admin: &str,
    level: Level,
    prefix: &str,
) -> Phase {
    let load = match level.load {
        Load::Closed(n) => format!("{n} senders"),
        Load::Open(rate) => format!("open loop at {rate:.0} msg/s"),
    };
    let phase = send_phase(c, server, plan.clone(), rx, o, Some(admin), level).await;
    println!(
        "# {prefix}: {load}; per second (accepted/frames), warm-up then measured: {}",
        phase.points.join(" ")
    );
    let caught_up = models_caught_up(c, server, admin).await;
    let delivered = phase.drain(rx).await;
    phase.report(prefix, &delivered);
    for (model, lag) in &phase.lag_max {
        bench_line(
            &format!("{prefix}.readmodel_lag_max.{model}"),
            lag.to_f64(),
            "events",
        );
    }
    match caught_up {
        Some(s) => bench_line(&format!("{prefix}.readmodels_caught_up_s"), s, "s"),
        None => println!("# read models still behind 30 s after the send phase"),
    }
    for p in &phase.search_probes {
        bench_line(&format!("{prefix}.search.{}_ms", p.name), p.ms, "ms");
        println!(
            "# {prefix}.search.{}: {}",
            p.name,
            if p.found {
                "found the message posted just before"
            } else {
                "did not find the message posted just before"
            }
        );
    }
    phase.summary(prefix, &delivered);
    phase
}

/// Seconds until every read model of `server` has caught up with the log (polling
/// `/metrics`), or `None` after 30 s.
async fn models_caught_up(c: &reqwest::Client, server: &Server, admin: &str) -> Option<f64> {
    let t = Instant::now();
    let metrics_url = server.url("/metrics");
    loop {
        let lags = model_lags(c, &metrics_url, admin).await;
        if !lags.is_empty() && lags.iter().all(|(_, lag)| *lag == 0) {
            return Some(t.elapsed().as_secs_f64());
        }
        if t.elapsed() > Duration::from_secs(30) {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Run `o` against run `base` of the same invocation (the cluster against the embedded
/// server, or the B side of an A/B against A): `<prefix>.messages_vs_<label>` and
/// `.server_cpu_per_message_vs_<label>` for each send phase and the open loop.
/// Prints `other`'s messages per second and CPU per message against `base`'s, per send
/// phase and for the open loop; returns each ratio by its name after `o.name`.
fn compare(o: &Run, label: &str, base: &Outcome, other: &Outcome) -> Vec<(String, f64)> {
    let mut ratios = Vec::new();
    let mut line = |name: String, value: f64| {
        bench_line(&name, value, "ratio");
        ratios.push((name[o.name.len()..].to_owned(), value));
    };
    let pairs = base
        .phases
        .iter()
        .zip(&other.phases)
        .map(|((senders, b), (_, x))| (level_prefix(&o.name, &o.senders, *senders), b, x));
    let open = base
        .open
        .iter()
        .zip(&other.open)
        .map(|(b, x)| (format!("{}.open_loop", o.name), b, x));
    for (prefix, b, x) in pairs.chain(open) {
        line(
            format!("{prefix}.messages_vs_{label}"),
            x.messages_per_s() / b.messages_per_s(),
        );
        if x.accepted > 0 && b.accepted > 0 && b.server_cpu > 0.0 {
            line(
                format!("{prefix}.server_cpu_per_message_vs_{label}"),
                (x.server_cpu / x.accepted.to_f64()) / (b.server_cpu / b.accepted.to_f64()),
            );
        }
    }
    ratios
}

/// The same send phases against the relay ([`gateway_relay`]): the same users, tokens,
/// channels, sockets and senders, with none of the gateway's work beyond HTTP, a durable
/// write and the fan-out; then its open loop (at `--rate`, or half its headline rate).
/// Prints its lines as `gateway.relay.*` and the gateway's against them; returns the open
/// loop's phase.
async fn relay_phase(
    c: &reqwest::Client,
    st: &Setup,
    o: &Run,
    gateway: &[(usize, Phase)],
    rounds: &Rounds<'_>,
) -> Option<Phase> {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = dir.path().join("relay.json");
    let per = o.n_users / o.n_channels;
    let tokens: Vec<&str> = st.users.iter().map(|u| u.token.as_str()).collect();
    let channels: Vec<(&str, Vec<usize>)> = st
        .channels
        .iter()
        .enumerate()
        .map(|(ch, id)| (id.as_str(), (ch * per..(ch + 1) * per).collect()))
        .collect();
    gateway_relay::write_spec(&spec, &tokens, &channels);
    let mut relay = Server::relay(&spec);
    relay.wait_healthy(c).await;
    let rx = Arc::new(Receivers::new(0, 0, 0, 0));
    open_sockets(&relay, &st.users[..o.sockets], &rx).await;
    let plan = Arc::new(SendPlan::new(&relay, st, o));
    let mut headline = None;
    let levels = gateway.len();
    for (level, (senders, gateway)) in gateway.iter().enumerate() {
        let prefix = level_prefix("gateway.relay", &o.senders, *senders);
        let last = level + 1 == levels;
        let warmup = if level == 0 {
            o.warmup
        } else {
            o.warmup.min(2.0)
        };
        let level = Level {
            load: Load::Closed(*senders),
            warmup,
        };
        let phase = send_phase(c, &relay, plan.clone(), &rx, o, None, level).await;
        let delivered = phase.drain(&rx).await;
        phase.report(&prefix, &delivered);
        versus_relay(
            &level_prefix("gateway", &o.senders, *senders),
            gateway,
            &phase,
        );
        phase.summary(&prefix, &delivered);
        headline = Some(phase.messages_per_s());
        if last && o.relay_rounds > 1 {
            let relay = Rounds {
                server: &relay,
                plan: &plan,
                rx: &rx,
                admin: "",
            };
            interleaved(c, o, (gateway, &phase), rounds, &relay).await;
        }
    }
    // The open loop at `--rate`, or half the relay's headline rate just measured.
    let open = match o.rate.or(headline.map(|r| r / 2.0)) {
        Some(rate) if rate > 0.0 => {
            let prefix = "gateway.relay.open_loop";
            let level = Level {
                load: Load::Open(rate),
                warmup: o.warmup.min(2.0),
            };
            let phase = send_phase(c, &relay, plan.clone(), &rx, o, None, level).await;
            let delivered = phase.drain(&rx).await;
            phase.report(prefix, &delivered);
            phase.summary(prefix, &delivered);
            Some(phase)
        }
        _ => None,
    };
    let k = &rx.counters;
    println!(
        "# relay errors: {} send errors, non-201 {:?}, socket ends {:?}",
        k.send_errors.load(Ordering::Relaxed),
        k.non_201.lock().unwrap(),
        k.socket_ends.lock().unwrap(),
    );
    open
}

/// One side of the interleaved headline rounds: a server with its sockets open, its send
/// plan and its receivers; `admin` (empty for the relay) to wait for its read models.
struct Rounds<'a> {
    server: &'a Server,
    plan: &'a Arc<SendPlan>,
    rx: &'a Arc<Receivers>,
    admin: &'a str,
}

impl Rounds<'_> {
    /// One headline-level send phase (2 s warm-up), drained, and, for the gateway, its read
    /// models caught up, so nothing of it runs on into the other side's round.
    async fn headline(&self, c: &reqwest::Client, o: &Run, name: &str) -> Phase {
        let level = Level {
            load: Load::Closed(o.senders.last().copied().unwrap_or(200)),
            warmup: o.warmup.min(2.0),
        };
        let phase = send_phase(c, self.server, self.plan.clone(), self.rx, o, None, level).await;
        let delivered = phase.drain(self.rx).await;
        if !self.admin.is_empty() && models_caught_up(c, self.server, self.admin).await.is_none() {
            println!("# {name}: read models still behind 30 s after the round");
        }
        phase.summary(name, &delivered);
        phase
    }
}

/// `--relay-rounds` N > 1: N − 1 more headline rounds against the gateway and the relay in
/// turn (which goes first alternates, so a drift of the machine falls on both), the first
/// round being the headline level already measured (`first`: the gateway's, the relay's).
/// Prints each round's ratios and `gateway.messages_vs_relay.median` and
/// `gateway.server_cpu_per_message_vs_relay.median` (with `.min` and `.max`) over all N.
async fn interleaved(
    c: &reqwest::Client,
    o: &Run,
    first: (&Phase, &Phase),
    gateway: &Rounds<'_>,
    relay: &Rounds<'_>,
) {
    let per_message = |p: &Phase| p.server_cpu * 1e6 / p.accepted.max(1).to_f64();
    let ratios = |g: &Phase, r: &Phase| {
        (
            g.messages_per_s() / r.messages_per_s(),
            per_message(g) / per_message(r),
        )
    };
    let mut rounds = vec![ratios(first.0, first.1)];
    for round in 1..o.relay_rounds {
        let (g_name, r_name) = (
            format!("gateway.round{round}"),
            format!("gateway.relay.round{round}"),
        );
        let (g, r) = if round % 2 == 1 {
            let r = relay.headline(c, o, &r_name).await;
            (gateway.headline(c, o, &g_name).await, r)
        } else {
            let g = gateway.headline(c, o, &g_name).await;
            (g, relay.headline(c, o, &r_name).await)
        };
        let (m, cpu) = ratios(&g, &r);
        println!(
            "# round {round}: gateway {:.0} msg/s at {:.0} µs/msg, relay {:.0} msg/s at {:.0} \
             µs/msg: messages vs relay {m:.3}, CPU per message vs relay {cpu:.3}",
            g.messages_per_s(),
            per_message(&g),
            r.messages_per_s(),
            per_message(&r),
        );
        rounds.push((m, cpu));
    }
    for (name, values) in [
        (
            "messages_vs_relay",
            rounds.iter().map(|r| r.0).collect::<Vec<_>>(),
        ),
        (
            "server_cpu_per_message_vs_relay",
            rounds.iter().map(|r| r.1).collect(),
        ),
    ] {
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        bench_line(&format!("gateway.{name}.median"), median(values), "ratio");
        bench_line(&format!("gateway.{name}.min"), min, "ratio");
        bench_line(&format!("gateway.{name}.max"), max, "ratio");
    }
}

/// `<prefix>.messages_vs_relay` and `<prefix>.server_cpu_per_message_vs_relay`: the
/// gateway's phase against the relay's under the same load.
fn versus_relay(prefix: &str, gateway: &Phase, relay: &Phase) {
    bench_line(
        &format!("{prefix}.messages_vs_relay"),
        gateway.messages_per_s() / relay.messages_per_s(),
        "ratio",
    );
    if gateway.accepted > 0 && relay.accepted > 0 && relay.server_cpu > 0.0 {
        bench_line(
            &format!("{prefix}.server_cpu_per_message_vs_relay"),
            (gateway.server_cpu / gateway.accepted.to_f64())
                / (relay.server_cpu / relay.accepted.to_f64()),
            "ratio",
        );
    }
}
