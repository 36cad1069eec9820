//! A read model as a server runs it: one generation serving queries while its runner
//! thread follows the log, and a watcher that switches to a new generation once a
//! `replay rebuild` has made it live (blue/green).
//!
//! [`Live<K>`] does this for any [`ModelKind`] (how to open a generation and make its
//! writer): [`LiveInteractions`], [`LiveSearch`] and [`LiveQueues`] are the ones a server
//! runs. `replay rebuild` builds generations through the same trait
//! ([`ModelKind::rebuild_writer`], [`ModelKind::finish`]).
//!
//! [`Live::close`] stops every thread of the model (runners, their log readers, the
//! watcher, the retiring of an old generation) and returns once they have ended, so a
//! process may exit (or delete the directories) right after it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use eventlog::EventStore;
use tokio::sync::watch;

use crate::error::ProjectionError;
use crate::home::ModelHome;
use crate::interactions::InteractionsModel;
use crate::queues::QueuesModel;
use crate::runner::{follow_blocking, ReadModel, Wanted};
use crate::search::SearchModel;

/// How often the watcher looks at `CURRENT`.
pub const WATCH_EVERY: Duration = Duration::from_millis(250);

/// A kind of read model: what [`Live`] needs to run its generations.
pub trait ModelKind: Send + Sync + 'static {
    /// The model's directory under the read models' root (and `replay rebuild` name).
    const NAME: &'static str;
    /// One generation as queries read it.
    type Db: Send + Sync + 'static;
    /// What the runner thread applies events with.
    type Writer: ReadModel + 'static;

    /// Opens (creating if missing) the generation at `path`.
    ///
    /// # Errors
    /// Storage errors, or [`ProjectionError::Layout`] for a generation written by another
    /// version of the code (a fresh generation is then built).
    fn open(path: &Path) -> Result<Arc<Self::Db>, ProjectionError>;

    /// The writer of an open generation, at its stored checkpoint.
    ///
    /// # Errors
    /// Storage errors.
    fn writer(db: Arc<Self::Db>) -> Result<Self::Writer, ProjectionError>;

    /// The writer a rebuild (`replay rebuild`) uses: it may take more memory and store
    /// its checkpoint less often than a server's, as nobody queries the generation until
    /// it is finished. By default the server's writer.
    ///
    /// # Errors
    /// Storage errors.
    fn rebuild_writer(db: Arc<Self::Db>) -> Result<Self::Writer, ProjectionError> {
        Self::writer(db)
    }

    /// Closes `writer` and makes everything it applied durable (before a generation is
    /// switched to); returns the checkpoint now stored.
    ///
    /// # Errors
    /// Storage errors.
    fn finish(db: &Self::Db, writer: Self::Writer) -> Result<Option<u64>, ProjectionError>;
}

/// The live interactions read model of a server.
pub type LiveInteractions = Live<InteractionsModel>;
/// The live search read model of a server.
pub type LiveSearch = Live<SearchModel>;
/// The live queue views of a server.
pub type LiveQueues = Live<QueuesModel>;

struct Generation<K: ModelKind> {
    name: String,
    db: Arc<K::Db>,
    progress: watch::Receiver<Option<u64>>,
    /// What queries wait for, told to the runner.
    wanted: Arc<Wanted>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl<K: ModelKind> Generation<K> {
    fn start(
        home: &ModelHome,
        name: String,
        store: Arc<dyn EventStore>,
    ) -> Result<Self, ProjectionError> {
        let db = K::open(&home.path_of(&name))?;
        // Created on a thread at background priority, so that the threads the writer
        // starts (tantivy's indexing and merge threads) inherit it.
        let mut writer = std::thread::scope(|s| {
            s.spawn(|| {
                background_priority();
                K::writer(db.clone())
            })
            .join()
        })
        .map_err(|_| std::io::Error::other("creating the writer panicked"))??;
        writer.open_texts_with(actors::sealing::Sealer::of(&*store));
        let (tx, progress) = watch::channel(writer.checkpoint());
        let stop = Arc::new(AtomicBool::new(false));
        let wanted = Arc::new(Wanted::default());
        let thread = {
            let stop = stop.clone();
            let wanted = wanted.clone();
            let gen = name.clone();
            std::thread::Builder::new()
                .name(format!("readmodel-{}", K::NAME))
                .spawn(move || {
                    background_priority();
                    match follow_blocking(store, &mut writer, &tx, &wanted, &stop, |_, _| {}) {
                        Ok(f) => {
                            tracing::info!(generation = %gen, finished = ?f, "read model stopped");
                        }
                        Err(e) => {
                            tracing::error!(generation = %gen, error = %e, "read model failed");
                        }
                    }
                })?
        };
        Ok(Self {
            name,
            db,
            progress,
            wanted,
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the runner and waits until it (and its log reader) has ended.
    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!(generation = %self.name, "read model runner panicked");
            }
        }
    }
}

impl<K: ModelKind> Drop for Generation<K> {
    /// A generation's runner never outlives it: it holds the generation's storage open.
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

struct Shared<K: ModelKind> {
    home: ModelHome,
    /// The log followed: a query's wait tells the runner only of positions it holds.
    store: Arc<dyn EventStore>,
    serving: RwLock<Generation<K>>,
    closed: Arc<AtomicBool>,
    /// Dropped by [`Live::close`] to wake the watcher at once.
    wake: Mutex<Option<mpsc::Sender<()>>>,
    watcher: Mutex<Option<JoinHandle<()>>>,
    /// Threads retiring old generations (waiting for their readers, deleting them).
    retiring: Mutex<Vec<JoinHandle<()>>>,
    /// Held for the whole of [`Live::close`], so a second caller waits for the first.
    closing: Mutex<()>,
}

/// A live read model of kind `K`: queries read the serving generation ([`Live::db`]).
pub struct Live<K: ModelKind> {
    shared: Arc<Shared<K>>,
}

impl<K: ModelKind> Clone for Live<K> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<K: ModelKind> Live<K> {
    /// Opens the live generation under `root` (creating the first, or a fresh one when the
    /// stored layout is from another version of the code), starts following the log, and
    /// starts watching for a switch.
    ///
    /// # Errors
    /// Storage or file errors.
    pub fn start(root: &Path, store: Arc<dyn EventStore>) -> Result<Self, ProjectionError> {
        let home = ModelHome::new(root, K::NAME);
        let current = home.current_or_init()?;
        let generation = match Generation::<K>::start(&home, current, store.clone()) {
            Ok(g) => g,
            Err(ProjectionError::Layout { found, expected }) => {
                tracing::warn!(%found, %expected, "read model layout changed: building a new generation");
                let fresh = home.new_generation()?;
                home.switch_to(&fresh)?;
                Generation::<K>::start(&home, fresh, store.clone())?
            }
            Err(e) => return Err(e),
        };
        let (wake, woken) = mpsc::channel();
        let shared = Arc::new(Shared {
            home,
            store: store.clone(),
            serving: RwLock::new(generation),
            closed: Arc::new(AtomicBool::new(false)),
            wake: Mutex::new(Some(wake)),
            watcher: Mutex::new(None),
            retiring: Mutex::new(Vec::new()),
            closing: Mutex::new(()),
        });
        let weak = Arc::downgrade(&shared);
        let watcher = std::thread::Builder::new()
            .name(format!("readmodel-{}-watch", K::NAME))
            .spawn(move || watch_loop(&weak, &store, &woken))?;
        *shared.watcher.lock().expect("not poisoned") = Some(watcher);
        Ok(Self { shared })
    }

    /// The generation serving queries now.
    pub fn db(&self) -> Arc<K::Db> {
        self.shared.serving.read().expect("not poisoned").db.clone()
    }

    /// The name of the serving generation.
    pub fn generation(&self) -> String {
        self.shared
            .serving
            .read()
            .expect("not poisoned")
            .name
            .clone()
    }

    /// Position the serving generation has applied.
    pub fn position(&self) -> Option<u64> {
        *self
            .shared
            .serving
            .read()
            .expect("not poisoned")
            .progress
            .borrow()
    }

    pub fn home_dir(&self) -> PathBuf {
        self.shared.home.dir().to_path_buf()
    }

    /// Waits until the serving generation has applied `position` (read your writes), at
    /// most `timeout`. Returns whether it got there.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        let mut rx = {
            let serving = self.shared.serving.read().expect("not poisoned");
            // A model holding the position back writes it now (the search index); one not
            // in this log yet (a client's guess, another node's write) is not asked for,
            // so it cannot stand in for the positions asked later.
            if serving.progress.borrow().is_none_or(|p| p < position)
                && position < self.shared.store.next_position()
            {
                serving.wanted.want(position);
            }
            serving.progress.clone()
        };
        tokio::time::timeout(timeout, rx.wait_for(|p| p.is_some_and(|p| p >= position)))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Stops following the log and watching for a switch, and returns once every thread
    /// of the model has ended: the watcher (abandoning a switch in progress), the serving
    /// generation's runner and its log reader (the runner sees the stop within 100 ms, and
    /// the batch it is applying is stored first), and the retiring of old generations.
    /// Queries keep reading the serving generation, which stays open until the last
    /// clone of this `Live` is dropped. Blocks: call it off the async executor, or where
    /// blocking for a moment is acceptable (shutdown).
    pub fn close(&self) {
        let shared = &self.shared;
        let _closing = shared.closing.lock().expect("not poisoned");
        shared.closed.store(true, Ordering::Release);
        drop(shared.wake.lock().expect("not poisoned").take());
        let watcher = shared.watcher.lock().expect("not poisoned").take();
        if let Some(watcher) = watcher {
            if watcher.join().is_err() {
                tracing::error!(model = K::NAME, "read model watcher panicked");
            }
        }
        let runner = {
            let mut serving = shared.serving.write().expect("not poisoned");
            serving.stop.store(true, Ordering::Release);
            serving.thread.take()
        };
        // Joined outside the lock: queries keep reading meanwhile.
        if let Some(runner) = runner {
            if runner.join().is_err() {
                tracing::error!(model = K::NAME, "read model runner panicked");
            }
        }
        let retiring = std::mem::take(&mut *shared.retiring.lock().expect("not poisoned"));
        for thread in retiring {
            if thread.join().is_err() {
                tracing::error!(model = K::NAME, "retiring a read model generation panicked");
            }
        }
    }
}

fn watch_loop<K: ModelKind>(
    shared: &std::sync::Weak<Shared<K>>,
    store: &Arc<dyn EventStore>,
    woken: &mpsc::Receiver<()>,
) {
    loop {
        // Woken early only by `close` (or the model being dropped): the sender is gone.
        if let Err(RecvTimeoutError::Disconnected) = woken.recv_timeout(WATCH_EVERY) {
            return;
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
        let serving = shared.serving.read().expect("not poisoned").name.clone();
        let wanted = match shared.home.current() {
            Ok(Some(w)) if w != serving => w,
            _ => continue,
        };
        if let Err(e) = switch(&shared, &wanted, store) {
            tracing::warn!(generation = %wanted, error = %e, "cannot switch read model yet");
        }
    }
}

/// Opens `wanted`, lets it catch up with the serving generation, swaps it in, and retires
/// the old one.
fn switch<K: ModelKind>(
    shared: &Shared<K>,
    wanted: &str,
    store: &Arc<dyn EventStore>,
) -> Result<(), ProjectionError> {
    let mut next = Generation::<K>::start(&shared.home, wanted.to_owned(), store.clone())?;
    loop {
        let target = *shared
            .serving
            .read()
            .expect("not poisoned")
            .progress
            .borrow();
        let reached = *next.progress.borrow();
        if target.is_none() || reached >= target {
            break;
        }
        if shared.closed.load(Ordering::Acquire) {
            // Dropping `next` stops its runner and waits for it.
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut old = {
        let mut serving = shared.serving.write().expect("not poisoned");
        std::mem::swap(&mut *serving, &mut next);
        next
    };
    tracing::info!(from = %old.name, to = %wanted, "read model switched");
    old.stop.store(true, Ordering::Release);
    // The old runner stops within 100 ms; its files go once nobody reads them (or are
    // left, when the model closes first, for the next rebuild's numbering to pass over).
    let home = shared.home.clone();
    let closed = shared.closed.clone();
    let retire = std::thread::Builder::new()
        .name(format!("readmodel-{}-retire", K::NAME))
        .spawn(move || {
            old.stop_and_join();
            while Arc::strong_count(&old.db) > 1 && !closed.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let name = old.name.clone();
            let unused = Arc::strong_count(&old.db) == 1;
            drop(old);
            if !unused {
                tracing::warn!(generation = %name, "old read model generation still read at close: left on disk");
            } else if let Err(e) = home.remove(&name) {
                tracing::warn!(generation = %name, error = %e, "old read model generation left on disk");
            }
        })?;
    let mut retiring = shared.retiring.lock().expect("not poisoned");
    retiring.retain(|t| !t.is_finished());
    retiring.push(retire);
    Ok(())
}

/// The nice value of read-model threads: below the request path (tokio workers, actors,
/// the log writer, all at 0), so that when the CPU is short a request is served first and
/// a model falls behind instead, then catches up in larger, cheaper batches. Queries that
/// must see a write wait for it (`after=`).
pub const BACKGROUND_NICE: i32 = 5;

/// Lowers the calling thread (and the threads it starts from now on) to
/// [`BACKGROUND_NICE`]. On Linux the nice value is per thread; elsewhere, and if the call
/// fails, nothing changes.
pub fn background_priority() {
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code, reason = "setpriority has no safe wrapper in std")]
    // SAFETY: setpriority only reads its arguments; `who = 0` is the calling thread.
    unsafe {
        let _ = libc::setpriority(libc::PRIO_PROCESS, 0, BACKGROUND_NICE);
    }
}
