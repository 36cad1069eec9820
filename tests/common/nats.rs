//! Real `nats-server`s for the cluster-mode tests: one shared single-node JetStream server
//! per test process (the log suite runs against it, each log in its own stream), and
//! three-node clusters for the cluster tests.
//!
//! The binary is `$SWITCHBOARD_NATS_SERVER`, else `nats-server` on the `PATH`, else the
//! copy `.ci/run` (and `scripts/install-nats-server`) installs under
//! `$HOME/.cache/switchboard/nats`. Servers are started from a thread that lives as long as
//! the test process and get `PR_SET_PDEATHSIG`, so they end with it.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Where the test servers' binary is, if anywhere.
pub fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SWITCHBOARD_NATS_SERVER") {
        return Some(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("nats-server"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let home = std::env::var_os("HOME")?;
        let p = Path::new(&home).join(".cache/switchboard/nats/usr/bin/nats-server");
        p.is_file().then_some(p)
    })
}

/// The binary, or a panic that says how to get it (or skip these tests).
pub fn require_binary() -> PathBuf {
    binary().unwrap_or_else(|| {
        panic!(
            "the cluster-mode tests need nats-server >= 2.12: run scripts/install-nats-server \
             (or set SWITCHBOARD_NATS_SERVER to its path); SWITCHBOARD_SKIP_NATS_TESTS=1 skips \
             them"
        )
    })
}

/// Whether the NATS tests are skipped on purpose.
pub fn skipped() -> bool {
    std::env::var("SWITCHBOARD_SKIP_NATS_TESTS").as_deref() == Ok("1")
}

/// A free TCP port on loopback (free when asked; tests take it at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One `nats-server` process.
pub struct NatsNode {
    pub name: String,
    pub client_port: u16,
    pub monitor_port: u16,
    pub cluster_port: u16,
    pub config: PathBuf,
    pub store_dir: PathBuf,
    child: Option<Child>,
}

impl NatsNode {
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.client_port)
    }

    pub fn monitor(&self) -> String {
        format!("http://127.0.0.1:{}", self.monitor_port)
    }

    /// Starts (or starts again) the server from its configuration; returns once it
    /// accepts connections.
    pub fn start(&mut self) {
        let config = self.config.clone();
        let binary = require_binary();
        // Spawned from a thread that lives as long as the process: PR_SET_PDEATHSIG
        // follows the spawning thread, not the process.
        let child = spawner()
            .send_and_wait(move || {
                let mut cmd = Command::new(binary);
                cmd.arg("-c")
                    .arg(config)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                // SAFETY: prctl is async-signal-safe; it only sets the child's death signal.
                #[allow(unsafe_code, reason = "pre_exec and prctl are unsafe")]
                unsafe {
                    cmd.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                        Ok(())
                    });
                }
                cmd.spawn()
            })
            .expect("nats-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.client_port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server {} did not start",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: the machine is gone (its store stays for a restart).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The running server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for NatsNode {
    fn drop(&mut self) {
        self.kill();
    }
}

fn write_config(
    dir: &Path,
    name: &str,
    ports: (u16, u16, u16),
    routes: &[u16],
) -> (PathBuf, PathBuf) {
    let store = dir.join(name);
    std::fs::create_dir_all(&store).expect("store dir");
    let cluster = if routes.is_empty() {
        String::new()
    } else {
        let routes: Vec<String> = routes
            .iter()
            .map(|p| format!("    nats-route://127.0.0.1:{p}"))
            .collect();
        format!(
            "cluster {{\n  name: sbtest\n  listen: 127.0.0.1:{}\n  routes: [\n{}\n  ]\n}}\n",
            ports.2,
            routes.join("\n")
        )
    };
    let config = format!(
        "server_name: {name}\nlisten: 127.0.0.1:{}\nhttp: 127.0.0.1:{}\nmax_payload: 8MB\n\
         jetstream {{\n  store_dir: \"{}\"\n  sync_interval: always\n  max_memory_store: 64MB\n  \
         max_file_store: 4GB\n}}\n{cluster}",
        ports.0,
        ports.1,
        store.display()
    );
    let path = dir.join(format!("{name}.conf"));
    std::fs::write(&path, config).expect("config written");
    (path, store)
}

/// A single JetStream server for this whole test process.
pub fn shared() -> &'static NatsNode {
    static SERVER: OnceLock<NatsNode> = OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = process_dir();
        let ports = (free_port(), free_port(), 0);
        let (config, store_dir) = write_config(&dir, "single", ports, &[]);
        let mut node = NatsNode {
            name: "single".into(),
            client_port: ports.0,
            monitor_port: ports.1,
            cluster_port: 0,
            config,
            store_dir,
            child: None,
        };
        node.start();
        node
    })
}

/// A cluster of three servers, R3-capable, in `dir`.
pub fn cluster(dir: &Path) -> Vec<NatsNode> {
    let ports: Vec<(u16, u16, u16)> = (0..3)
        .map(|_| (free_port(), free_port(), free_port()))
        .collect();
    let routes: Vec<u16> = ports.iter().map(|p| p.2).collect();
    let mut nodes: Vec<NatsNode> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let name = format!("n{}", i + 1);
            let (config, store_dir) = write_config(dir, &name, *p, &routes);
            NatsNode {
                name,
                client_port: p.0,
                monitor_port: p.1,
                cluster_port: p.2,
                config,
                store_dir,
                child: None,
            }
        })
        .collect();
    for n in &mut nodes {
        n.start();
    }
    nodes
}

/// This process's scratch directory for servers' stores; directories left by earlier
/// test processes that are gone are removed.
#[allow(unsafe_code, reason = "kill(pid, 0) has no safe wrapper in std")]
fn process_dir() -> PathBuf {
    let root = std::env::temp_dir().join("switchboard-nats-tests");
    if let Ok(entries) = std::fs::read_dir(&root) {
        for e in entries.flatten() {
            let pid: Option<i32> = e.file_name().to_str().and_then(|s| s.parse().ok());
            // SAFETY: kill with signal 0 only checks whether the process exists.
            if pid.is_some_and(|p| unsafe { libc::kill(p, 0) } != 0) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = root.join(std::process::id().to_string());
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

type Spawn = Box<dyn FnOnce() -> std::io::Result<Child> + Send>;

struct Spawner(std::sync::mpsc::Sender<(Spawn, std::sync::mpsc::Sender<std::io::Result<Child>>)>);

impl Spawner {
    fn send_and_wait(
        &self,
        f: impl FnOnce() -> std::io::Result<Child> + Send + 'static,
    ) -> std::io::Result<Child> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.0.send((Box::new(f), tx)).expect("spawner thread runs");
        rx.recv().expect("spawner answers")
    }
}

fn spawner() -> &'static Spawner {
    static SPAWNER: OnceLock<Spawner> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<(Spawn, std::sync::mpsc::Sender<_>)>();
        std::thread::Builder::new()
            .name("nats-spawner".into())
            .spawn(move || {
                for (f, answer) in rx {
                    let _ = answer.send(f());
                }
                // Never return while the process lives: children die with this thread.
                loop {
                    std::thread::park();
                }
            })
            .expect("spawner thread");
        Spawner(tx)
    })
}

/// Options for a log of its own on the shared server (R1: one server).
pub fn log_options() -> natslog::NatsOptions {
    let server = shared();
    let mut o = natslog::NatsOptions::from_url(&server.url()).expect("url");
    o.monitors = vec![server.monitor()];
    let id = uuid::Uuid::new_v4().simple().to_string();
    o.stream = format!("T{}", &id[..16]);
    o.subject_prefix = format!("t{}", &id[..16]);
    o.replicas = 1;
    o.client_name = "switchboard-tests".into();
    o
}
