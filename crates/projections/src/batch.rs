//! What every read model's writer shares: a batch applies the events past the checkpoint,
//! then stores what they changed together with the new checkpoint in one atomic write; a
//! batch that fails is forgotten whole, and the writer goes back to what is stored.
//!
//! A model says how events change it and how a batch is stored ([`Projector`]);
//! [`BatchWriter`] keeps the checkpoint and makes it a [`ReadModel`].

use std::hash::Hash;
use std::time::Instant;

use eventlog::{RecordedEvent, SharedEvent};

use crate::error::ProjectionError;
use crate::event::{Event, Page};
use crate::runner::ReadModel;

/// How one read model applies events and stores a batch of them.
pub trait Projector: Send {
    /// The model's name (its directory and `replay rebuild` argument).
    const NAME: &'static str;

    /// Applies one event (events come in position order, each once, after the
    /// checkpoint) to what the next [`Projector::store`] writes.
    ///
    /// # Errors
    /// Storage errors or an undecodable event; the batch is then discarded.
    fn apply(&mut self, event: &Event<'_>) -> Result<(), ProjectionError>;

    /// Stores what was applied since the last call, with `checkpoint` (the position of
    /// the last of those `events` events), atomically.
    ///
    /// # Errors
    /// Storage errors; nothing of the batch is then stored and it is discarded.
    fn store(&mut self, checkpoint: u64, events: u64) -> Result<Stored, ProjectionError>;

    /// Forgets everything applied since the last durable store (a batch failed).
    fn discard(&mut self);

    /// As [`ReadModel::open_texts_with`].
    fn open_texts_with(&mut self, _sealer: actors::sealing::Sealer) {}

    /// As [`ReadModel::visible`], given the checkpoint (the default: everything applied
    /// is visible).
    fn visible(&self, checkpoint: Option<u64>) -> Option<u64> {
        checkpoint
    }

    /// As [`ReadModel::flush_at`].
    fn flush_at(&self) -> Option<Instant> {
        None
    }

    /// As [`ReadModel::flush_when_wanted`].
    fn flush_when_wanted(&self) -> Option<Instant> {
        self.flush_at()
    }

    /// As [`ReadModel::flush`]: stores what was held back (deferred batches).
    ///
    /// # Errors
    /// Storage errors; nothing held back is then stored.
    fn flush(&mut self) -> Result<(), ProjectionError> {
        Ok(())
    }
}

/// What [`Projector::store`] did with a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// Written with its checkpoint.
    Durable,
    /// Held back, to be written with a later batch (the search index commits only when
    /// it has documents, or when enough events have passed). A failure before then loses
    /// it too, and the writer goes back to the last durable checkpoint.
    Deferred,
}

/// A [`Projector`] with its checkpoint: the [`ReadModel`] a runner or a rebuild drives.
pub struct BatchWriter<P> {
    projector: P,
    /// The position of the last event applied.
    checkpoint: Option<u64>,
    /// The position of the last event stored durably.
    durable: Option<u64>,
}

impl<P: Projector> BatchWriter<P> {
    /// `projector` over a model whose stored checkpoint is `checkpoint`.
    pub fn resume(projector: P, checkpoint: Option<u64>) -> Self {
        Self {
            projector,
            checkpoint,
            durable: checkpoint,
        }
    }

    pub fn projector(&self) -> &P {
        &self.projector
    }

    pub fn into_projector(self) -> P {
        self.projector
    }
}

impl<P: Projector> ReadModel for BatchWriter<P> {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn checkpoint(&self) -> Option<u64> {
        self.checkpoint
    }

    fn apply_batch(&mut self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let fresh = &events[self.first_fresh(events)..];
        self.apply_fresh(
            last_position(fresh),
            fresh.len(),
            fresh.iter().map(Event::new),
        )
    }

    fn apply_shared(&mut self, events: &[SharedEvent]) -> Result<(), ProjectionError> {
        let fresh = &events[self.first_fresh(events)..];
        let events = fresh.iter().map(|e| Event::live(e));
        self.apply_fresh(last_position(fresh), fresh.len(), events)
    }

    fn apply_page(&mut self, page: &Page) -> Result<(), ProjectionError> {
        let from = self.first_fresh(page.records());
        let fresh = &page.records()[from..];
        self.apply_fresh(last_position(fresh), fresh.len(), page.events_from(from))
    }

    fn visible(&self) -> Option<u64> {
        self.projector.visible(self.checkpoint)
    }

    fn open_texts_with(&mut self, sealer: actors::sealing::Sealer) {
        self.projector.open_texts_with(sealer);
    }

    fn flush_at(&self) -> Option<Instant> {
        self.projector.flush_at()
    }

    fn flush_when_wanted(&self) -> Option<Instant> {
        self.projector.flush_when_wanted()
    }

    fn flush(&mut self) -> Result<(), ProjectionError> {
        match self.projector.flush() {
            Ok(()) => {
                self.durable = self.checkpoint;
                Ok(())
            }
            Err(e) => {
                self.projector.discard();
                self.checkpoint = self.durable;
                Err(e)
            }
        }
    }
}

/// An event as batches hold it: stored, or shared live.
trait Positioned {
    fn position(&self) -> u64;
}

impl Positioned for RecordedEvent {
    fn position(&self) -> u64 {
        self.position
    }
}

impl Positioned for SharedEvent {
    fn position(&self) -> u64 {
        self.record().position
    }
}

/// The position of the last of `events`.
fn last_position<E: Positioned>(events: &[E]) -> Option<u64> {
    events.last().map(Positioned::position)
}

impl<P: Projector> BatchWriter<P> {
    /// The index of the first of `events` (in position order) after the checkpoint.
    fn first_fresh<E: Positioned>(&self, events: &[E]) -> usize {
        self.checkpoint
            .map_or(0, |c| events.partition_point(|e| e.position() <= c))
    }

    /// Applies `events` (`count` records all after the checkpoint, the last at position
    /// `last`) as one batch.
    fn apply_fresh<'e>(
        &mut self,
        last: Option<u64>,
        count: usize,
        mut events: impl Iterator<Item = Event<'e>>,
    ) -> Result<(), ProjectionError> {
        let Some(last) = last else {
            return Ok(());
        };
        let stored = events
            .try_for_each(|e| self.projector.apply(&e))
            .and_then(|()| self.projector.store(last, count as u64));
        match stored {
            Ok(stored) => {
                self.checkpoint = Some(last);
                if stored == Stored::Durable {
                    self.durable = Some(last);
                }
                Ok(())
            }
            Err(e) => {
                self.projector.discard();
                self.checkpoint = self.durable;
                Err(e)
            }
        }
    }
}

/// The writers' caches: keyed by ids (UUIDs the server generates or derives), for which a
/// fast non-cryptographic hash is enough.
pub type FxHashMap<K, V> = rustc_hash::FxHashMap<K, V>;
pub type FxHashSet<K> = rustc_hash::FxHashSet<K>;

/// Clean entries a writer's read-through cache keeps between batches at most.
pub const CACHE_LIMIT: usize = 200_000;

/// Empties `cache` once it holds more than [`CACHE_LIMIT`] entries (call it after a store,
/// when every entry is clean).
pub fn bound_cache<K: Eq + Hash, V>(cache: &mut FxHashMap<K, V>) {
    if cache.len() > CACHE_LIMIT {
        cache.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what it was given; fails the store of any batch reaching `fail_at`.
    #[derive(Default)]
    struct Probe {
        pending: Vec<u64>,
        stored: Vec<u64>,
        fail_at: Option<u64>,
        defer: bool,
    }

    impl Projector for Probe {
        const NAME: &'static str = "probe";

        fn apply(&mut self, event: &Event<'_>) -> Result<(), ProjectionError> {
            self.pending.push(event.position);
            Ok(())
        }

        fn store(&mut self, checkpoint: u64, events: u64) -> Result<Stored, ProjectionError> {
            // Deferred batches stay pending until a durable store.
            assert!(events <= self.pending.len() as u64);
            assert_eq!(self.pending.last(), Some(&checkpoint));
            if self.fail_at.is_some_and(|f| self.pending.contains(&f)) {
                return Err(ProjectionError::Corrupt("failing on purpose".into()));
            }
            if self.defer {
                return Ok(Stored::Deferred);
            }
            self.stored.append(&mut self.pending);
            Ok(Stored::Durable)
        }

        fn discard(&mut self) {
            self.pending.clear();
        }
    }

    fn events(positions: std::ops::Range<u64>) -> Vec<RecordedEvent> {
        positions
            .map(|p| RecordedEvent {
                stream: eventlog::StreamName::new("test-1").expect("stream name"),
                version: p,
                position: p,
                timestamp_us: 0,
                prev_hash: [0; 32],
                hash: [0; 32],
                event_id: uuid::Uuid::from_u128(u128::from(p) + 1),
                event_type: "Probe".into(),
                schema_version: 1,
                metadata: Default::default(),
                payload: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn batches_skip_what_is_applied_and_a_failure_goes_back_to_what_is_stored() {
        let mut w = BatchWriter::resume(Probe::default(), Some(2));
        // Overlapping the checkpoint: only 3 and 4 are new.
        w.apply_batch(&events(0..5)).unwrap();
        assert_eq!(w.projector().stored, [3, 4]);
        assert_eq!(w.checkpoint(), Some(4));
        // Entirely applied already: nothing happens, the checkpoint does not go back.
        w.apply_batch(&events(1..4)).unwrap();
        assert_eq!(w.checkpoint(), Some(4));
        w.apply_batch(&[]).unwrap();
        assert_eq!(w.checkpoint(), Some(4));

        // Deferred batches move the checkpoint in memory; a failure goes back to the
        // durable one and forgets the deferred events, which the next batch repeats.
        w.projector.defer = true;
        w.apply_batch(&events(5..7)).unwrap();
        assert_eq!(w.checkpoint(), Some(6));
        w.projector.fail_at = Some(8);
        assert!(w.apply_batch(&events(7..9)).is_err());
        assert_eq!(w.checkpoint(), Some(4));
        assert!(w.projector().pending.is_empty());
        w.projector.fail_at = None;
        w.projector.defer = false;
        w.apply_batch(&events(5..9)).unwrap();
        assert_eq!(w.projector().stored, [3, 4, 5, 6, 7, 8]);
        assert_eq!(w.checkpoint(), Some(8));
    }
}
