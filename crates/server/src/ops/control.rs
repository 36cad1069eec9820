//! The operator's control socket: `<data>/control.sock`, a Unix socket only the data
//! directory's owner can open (mode 0600), through which `switchboard backup` asks the
//! running server for a backup. One JSON request per connection, answered by JSON lines:
//! progress, then `done` with the manifest or `failed` with the reason.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use eventlog::RocksLog;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::ops::backup::{self, Manifest, Progress};

/// The socket's file name in the data directory.
pub const SOCKET: &str = "control.sock";
/// The longest request line read.
const MAX_REQUEST: u64 = 64 * 1024;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Back up into `to` (an absolute path on the server's machine, absent or empty).
    Backup { to: PathBuf },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Progress(Progress),
    Done(Manifest),
    Failed(String),
}

/// What the socket can do on this node.
pub struct Control {
    /// The log to back up; `None` on a cluster node (its replica is the cluster's copy).
    pub log: Option<RocksLog>,
    pub data_dir: PathBuf,
    pub key: SigningKey,
    /// Held while a backup runs: one at a time.
    pub busy: Arc<tokio::sync::Mutex<()>>,
}

/// Binds `<data_dir>/control.sock` (replacing a stale one) with mode 0600.
///
/// # Errors
/// The socket cannot be bound.
pub fn bind(data_dir: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let path = data_dir.join(SOCKET);
    // A server holding the data directory holds the log's lock too, so a socket file
    // here now is a dead process's.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves the socket until the process ends.
pub async fn serve(listener: UnixListener, control: Arc<Control>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(answer(stream, control.clone()));
    }
}

async fn answer(stream: UnixStream, control: Arc<Control>) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_REQUEST));
    let replies = match reader.read_line(&mut line).await {
        Ok(_) => match serde_json::from_str::<Request>(&line) {
            Ok(request) => run(request, &control).await,
            Err(e) => one(Reply::Failed(format!("not a request: {e}"))),
        },
        Err(e) => one(Reply::Failed(format!("reading the request: {e}"))),
    };
    let mut replies = replies;
    while let Some(reply) = replies.recv().await {
        let Ok(mut text) = serde_json::to_string(&reply) else {
            return;
        };
        text.push('\n');
        if write.write_all(text.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn one(reply: Reply) -> tokio::sync::mpsc::UnboundedReceiver<Reply> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let _ = tx.send(reply);
    rx
}

async fn run(
    request: Request,
    control: &Arc<Control>,
) -> tokio::sync::mpsc::UnboundedReceiver<Reply> {
    let Request::Backup { to } = request;
    let Some(log) = control.log.clone() else {
        return one(Reply::Failed(
            "this node runs on a NATS cluster: back up the cluster's stream (`nats stream \
             backup`); a node's replica is rebuilt from the cluster"
                .into(),
        ));
    };
    if !to.is_absolute() {
        return one(Reply::Failed(format!(
            "{}: name the backup directory by an absolute path",
            to.display()
        )));
    }
    let Ok(guard) = control.busy.clone().try_lock_owned() else {
        return one(Reply::Failed("a backup is already running".into()));
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let control = control.clone();
    tokio::task::spawn_blocking(move || {
        let _guard = guard;
        let progress_tx = tx.clone();
        let mut progress = move |p: Progress| {
            let _ = progress_tx.send(Reply::Progress(p));
        };
        tracing::info!(to = %to.display(), "backup started");
        let done = backup::backup(&log, &control.data_dir, &control.key, &to, &mut progress);
        let reply = match done {
            Ok(manifest) => {
                tracing::info!(to = %to.display(), events = manifest.events, "backup written");
                Reply::Done(manifest)
            }
            Err(e) => {
                tracing::warn!(to = %to.display(), error = %format!("{e:#}"), "backup failed");
                Reply::Failed(format!("{e:#}"))
            }
        };
        let _ = tx.send(reply);
    });
    rx
}
