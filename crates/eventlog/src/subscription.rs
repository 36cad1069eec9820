//! Catch-up-then-live subscriptions on `$all`, a category, or one stream.
//!
//! A subscription reads pages from storage until a page comes back short, then subscribes
//! to the live batches the writer publishes and reads storage once more. The seam has no
//! gap and no duplicate because the live receiver is created *before* that last storage
//! read: every batch committed after that moment is in the receiver, everything before is
//! in storage, and the overlap is dropped by comparing against the cursor (the next
//! position, or version for a stream subscription). No receiver exists during a long
//! catch-up, so a rebuild from the start never pins the live buffer.
//!
//! A subscriber that falls behind the live buffer never blocks the writer and never loses
//! events: the receiver reports it lagged, the subscription drops it and catches up from
//! storage again. The logic here uses only the [`EventStore`] trait, so every backend gets
//! it.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast::{self, error::RecvError};

use crate::envelope::RecordedEvent;
use crate::error::{ReadError, StorageError, SubscribeError};
use crate::store::{Direction, EventStore, LiveBatch, SharedEvent, SharedRecord};
use crate::stream_name::StreamName;

/// What a subscription follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionTarget {
    /// Every event, in global order.
    All,
    /// Every event of every stream in the category, in global order.
    Category(String),
    /// One stream, in version order.
    Stream(StreamName),
}

/// Where a subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// From the first event.
    Beginning,
    /// After this checkpoint: a global position for [`SubscriptionTarget::All`] and
    /// [`SubscriptionTarget::Category`], a stream version for
    /// [`SubscriptionTarget::Stream`]. Resuming after the last event seen gives no gap and
    /// no duplicate.
    After(u64),
    /// Only events committed from now on.
    End,
}

/// Events read from storage per catch-up page.
const PAGE: usize = 1024;

/// A catch-up-then-live subscription. See the module docs for the guarantees.
pub struct Subscription {
    store: Arc<dyn EventStore>,
    target: SubscriptionTarget,
    /// Next global position (All, Category) or stream version (Stream) to deliver;
    /// `None` until a `StartFrom::End` stream subscription has looked up its stream.
    next: Option<u64>,
    /// `$all` position when the subscription was created: a `StartFrom::End` stream
    /// subscription starts at the first version committed at or after it.
    created_at: u64,
    /// Checkpoint of the last event handed to the caller (not merely read ahead).
    delivered: Option<u64>,
    buffer: VecDeque<SharedEvent>,
    live: Option<broadcast::Receiver<LiveBatch>>,
    caught_up: bool,
    page: usize,
    /// The `$all` position through which every event is known to be delivered or not of
    /// this target (All and Category only).
    scanned: Option<u64>,
    /// Where handled positions are published ([`Subscription::with_progress`]).
    progress: Option<tokio::sync::watch::Sender<Option<u64>>>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("target", &self.target)
            .field("next", &self.next)
            .field("caught_up", &self.caught_up)
            .finish()
    }
}

impl Subscription {
    /// Starts a subscription. Nothing is read until the first `next`.
    ///
    /// # Errors
    /// [`ReadError::InvalidCategory`] for a malformed category name.
    pub fn new(
        store: Arc<dyn EventStore>,
        target: SubscriptionTarget,
        from: StartFrom,
    ) -> Result<Self, ReadError> {
        if let SubscriptionTarget::Category(c) = &target {
            if !crate::stream_name::is_valid_category(c) {
                return Err(ReadError::InvalidCategory(c.clone()));
            }
        }
        // `End` means after everything committed now; later events are found by the first
        // catch-up read, which starts there.
        let created_at = store.next_position();
        let next = match (from, &target) {
            (StartFrom::Beginning, _) => Some(0),
            (StartFrom::After(n), _) => Some(n.saturating_add(1)),
            (StartFrom::End, SubscriptionTarget::Stream(_)) => None,
            (StartFrom::End, _) => Some(created_at),
        };
        Ok(Self {
            store,
            target,
            next,
            created_at,
            delivered: match from {
                StartFrom::After(n) => Some(n),
                _ => None,
            },
            buffer: VecDeque::new(),
            live: None,
            caught_up: false,
            page: PAGE,
            scanned: None,
            progress: None,
        })
    }

    /// Uses `page` events per catch-up read (tests use small pages to exercise the seam).
    pub fn with_page_size(mut self, page: usize) -> Self {
        self.page = page.max(1);
        self
    }

    /// Publishes this subscription's progress on `tx` (see [`crate::progress`]): each time
    /// it is asked for an event with none left to hand out, every event it handed out
    /// before has been handled by its owner (who asks again only then), so it publishes
    /// the `$all` position through which the log is handled. Only for `$all` and category
    /// targets (a stream subscription counts versions, not positions).
    #[must_use]
    pub fn with_progress(mut self, tx: tokio::sync::watch::Sender<Option<u64>>) -> Self {
        if !matches!(self.target, SubscriptionTarget::Stream(_)) {
            self.progress = Some(tx);
        }
        self
    }

    /// Publishes what is handled, before waiting for the live feed with nothing buffered.
    fn publish_progress(&self) {
        let Some(tx) = &self.progress else { return };
        if let Some(through) = self.delivered.max(self.scanned) {
            crate::progress::publish(tx, through);
        }
    }

    /// Called after the live receiver exists and before the storage read that closes the
    /// seam: every event before the log's next position now is in storage, so once that
    /// read (and any after it) is delivered, the log is scanned through it.
    fn mark_seam(&mut self) {
        if let Some(last) = self.store.next_position().checked_sub(1) {
            self.scanned = self.scanned.max(Some(last));
        }
    }

    /// The checkpoint of the last event delivered (a position, or a version for a stream
    /// subscription), to resume with [`StartFrom::After`]. Events read ahead into the
    /// buffer but not yet returned do not count.
    pub fn checkpoint(&self) -> Option<u64> {
        self.delivered
    }

    /// Events already read and waiting to be returned: that many calls to `next` return
    /// at once. Consumers that batch (read models) take them all before writing.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Takes in, without waiting, the live batches the log has committed since this
    /// subscription last looked: afterwards [`Subscription::buffered`] counts them too.
    /// Returns whether any came. A consumer that hands events on in chunks (a read
    /// model's reader) takes a chunk of everything committed meanwhile, not one commit's
    /// worth at a time. Before the subscription has caught up with storage, or once it
    /// has fallen behind the live batches, nothing comes: `next` reads storage then.
    pub fn absorb_ready(&mut self) -> bool {
        let before = self.buffer.len();
        while self.caught_up {
            let Some(live) = self.live.as_mut() else {
                break;
            };
            let received = match live.try_recv() {
                Ok(batch) => Ok(batch),
                Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                    Err(RecvError::Lagged(missed))
                }
                // Closed: `next` says so once the buffer is delivered.
                Err(_) => break,
            };
            if self.absorb_live(received).is_err() {
                break;
            }
        }
        self.buffer.len() > before
    }

    fn deliver(&mut self) -> Option<SharedEvent> {
        let e = self.buffer.pop_front()?;
        self.delivered = Some(match self.target {
            SubscriptionTarget::Stream(_) => e.version,
            _ => e.position,
        });
        Some(e)
    }

    /// The next event. Never misses or repeats one.
    ///
    /// Cancel-safe: the subscription changes only once a read or a live batch has arrived,
    /// so a `next` dropped while it waits (in a `select!` with a timer) loses nothing, and
    /// the next call goes on where it stood.
    ///
    /// # Errors
    /// [`SubscribeError::Closed`] once the log has shut down (or is read-only) and every
    /// stored event has been delivered; storage errors.
    pub async fn next(&mut self) -> Result<SharedEvent, SubscribeError> {
        loop {
            if let Some(e) = self.deliver() {
                return Ok(e);
            }
            if !self.caught_up {
                let short = self.read_page_async().await?;
                if short && self.subscribe_live() {
                    // Subscribed only now: one more read closes the seam.
                    self.mark_seam();
                    if !self.read_page_async().await? {
                        continue;
                    }
                }
                self.caught_up = short;
                continue;
            }
            self.publish_progress();
            let live = self.live.as_mut().ok_or(SubscribeError::Closed)?;
            let received = live.recv().await;
            self.absorb_live(received)?;
        }
    }

    /// As [`Subscription::next`], blocking the calling thread.
    ///
    /// # Panics
    /// When called on an async executor thread (tokio refuses to block one); use
    /// [`Subscription::next`] there.
    ///
    /// # Errors
    /// As [`Subscription::next`].
    pub fn next_blocking(&mut self) -> Result<SharedEvent, SubscribeError> {
        loop {
            if let Some(e) = self.deliver() {
                return Ok(e);
            }
            if !self.caught_up {
                let short = self.read_page_blocking()?;
                if short && self.subscribe_live() {
                    self.mark_seam();
                    if !self.read_page_blocking()? {
                        continue;
                    }
                }
                self.caught_up = short;
                continue;
            }
            self.publish_progress();
            let live = self.live.as_mut().ok_or(SubscribeError::Closed)?;
            let received = live.blocking_recv();
            self.absorb_live(received)?;
        }
    }

    /// Creates the live receiver if there is none. Returns whether one was created now (so
    /// a final catch-up read must follow). With the log closed or read-only there is none:
    /// the subscription then ends with `Closed` once storage is exhausted.
    fn subscribe_live(&mut self) -> bool {
        if self.live.is_some() {
            return false;
        }
        self.live = self.store.live();
        self.live.is_some()
    }

    /// Reads one page off the executor; returns whether it was short (end reached).
    async fn read_page_async(&mut self) -> Result<bool, SubscribeError> {
        let (store, target, next, page, since) = (
            self.store.clone(),
            self.target.clone(),
            self.next,
            self.page,
            self.created_at,
        );
        let read =
            tokio::task::spawn_blocking(move || read_page(&*store, &target, next, since, page))
                .await
                .map_err(|e| StorageError::Engine(format!("catch-up task failed: {e}")))??;
        Ok(self.absorb_page(read))
    }

    fn read_page_blocking(&mut self) -> Result<bool, SubscribeError> {
        let read = read_page(
            &*self.store,
            &self.target,
            self.next,
            self.created_at,
            self.page,
        )?;
        Ok(self.absorb_page(read))
    }

    /// Buffers a page read from storage; returns whether it was short.
    fn absorb_page(&mut self, page: PageRead) -> bool {
        if self.next.is_none() {
            self.next = Some(page.resolved_next);
        }
        let short = page.events.len() < self.page;
        for e in page.events {
            self.advance_past(&e);
            self.buffer.push_back(SharedRecord::new(e));
        }
        short
    }

    fn advance_past(&mut self, e: &RecordedEvent) {
        self.next = Some(match self.target {
            SubscriptionTarget::Stream(_) => e.version.saturating_add(1),
            _ => e.position.saturating_add(1),
        });
    }

    fn absorb_live(
        &mut self,
        received: Result<LiveBatch, RecvError>,
    ) -> Result<(), SubscribeError> {
        let batch = match received {
            Ok(batch) => batch,
            Err(RecvError::Lagged(missed)) => {
                tracing::debug!(
                    missed,
                    target = ?self.target,
                    "subscriber lagged; catching up from storage"
                );
                self.fall_back_to_storage();
                return Ok(());
            }
            Err(RecvError::Closed) => return Err(SubscribeError::Closed),
        };
        let Some(next) = self.next else {
            self.fall_back_to_storage();
            return Ok(());
        };
        let mut next = next;
        for e in batch.iter() {
            let (matches, n) = match &self.target {
                SubscriptionTarget::All => (true, e.position),
                SubscriptionTarget::Category(c) => (e.stream.category() == c, e.position),
                SubscriptionTarget::Stream(s) => (&e.stream == s, e.version),
            };
            if !matches || n < next {
                continue; // another target's event, or one already delivered from storage
            }
            let contiguous = matches!(self.target, SubscriptionTarget::Category(_)) || n == next;
            if !contiguous {
                // Should not happen; if it does, storage has what we missed.
                self.buffer.clear();
                self.fall_back_to_storage();
                return Ok(());
            }
            self.buffer.push_back(Arc::clone(e));
            next = n.saturating_add(1);
        }
        self.next = Some(next);
        if let Some(last) = batch.iter().map(|e| e.position).max() {
            self.scanned = self.scanned.max(Some(last));
        }
        Ok(())
    }

    fn fall_back_to_storage(&mut self) {
        self.live = None;
        self.caught_up = false;
        // Events still buffered were already accounted for in `next`; deliver them first.
    }
}

struct PageRead {
    events: Vec<RecordedEvent>,
    /// For a `StartFrom::End` stream subscription: the version after the stream's end.
    resolved_next: u64,
}

/// The first version of `stream` committed at or after `$all` position `since`.
fn first_version_since(
    store: &dyn EventStore,
    stream: &StreamName,
    since: u64,
) -> Result<u64, ReadError> {
    let mut next = store.stream_version_blocking(stream)?.map_or(0, |v| v + 1);
    let mut from = u64::MAX;
    loop {
        let page = store.read_stream_blocking(stream, from, Direction::Backward, 256)?;
        for e in &page {
            if e.position < since {
                return Ok(next);
            }
            next = e.version;
        }
        match page.last() {
            Some(last) if last.version > 0 => from = last.version - 1,
            _ => return Ok(next),
        }
    }
}

fn read_page(
    store: &dyn EventStore,
    target: &SubscriptionTarget,
    next: Option<u64>,
    since: u64,
    page: usize,
) -> Result<PageRead, ReadError> {
    let next = match (next, target) {
        (Some(n), _) => n,
        (None, SubscriptionTarget::Stream(s)) => first_version_since(store, s, since)?,
        (None, _) => since,
    };
    let resolved_next = next;
    let events = match target {
        SubscriptionTarget::All => store.read_all_blocking(next, page)?,
        SubscriptionTarget::Category(c) => store.read_category_blocking(c, next, page)?,
        SubscriptionTarget::Stream(s) => {
            store.read_stream_blocking(s, next, Direction::Forward, page)?
        }
    };
    Ok(PageRead {
        events,
        resolved_next,
    })
}
