//! Starts actors on demand and finds them again.
//!
//! One registry per aggregate type. An actor is started on the first message for its
//! stream, on the arbiter chosen round-robin, and forgotten when it passivates. Each actor's
//! queue is bounded by the registry (`mailbox_capacity` messages in flight): beyond that a
//! caller gets [`ActorError::Busy`] at once instead of memory growing. A message that meets
//! an actor which just stopped is sent again to a fresh one; it was never handled, so this
//! does not run a command twice.

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use actix::dev::ToEnvelope;
use actix::prelude::*;
use eventlog::{EventStore, StreamName};

use crate::aggregate_actor::{
    ActorAggregate, AggregateActor, Execute, ExecuteFrom, Observed, Query, Seen, SnapshotNow,
    Unresolved,
};
use crate::config::ActorConfig;
use crate::core::{CommandOutcome, ExecuteOptions};
use crate::error::{ActorError, CommandError};
use crate::runtime::ActorRuntime;

struct Entry<A: ActorAggregate> {
    addr: Addr<AggregateActor<A>>,
    in_flight: Arc<AtomicUsize>,
    seen: Seen,
}

struct Inner<A: ActorAggregate> {
    store: Arc<dyn EventStore>,
    runtime: Arc<ActorRuntime>,
    config: ActorConfig,
    actors: Mutex<HashMap<StreamName, Entry<A>>>,
    next_arbiter: AtomicUsize,
}

/// The actors of one aggregate type.
pub struct Registry<A: ActorAggregate> {
    inner: Arc<Inner<A>>,
}

impl<A: ActorAggregate> Clone for Registry<A> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

/// Counts a message in flight to one actor for as long as it lives.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(counter: Arc<AtomicUsize>, capacity: usize) -> Result<Self, ActorError> {
        if counter.fetch_add(1, Ordering::AcqRel) >= capacity {
            counter.fetch_sub(1, Ordering::AcqRel);
            return Err(ActorError::Busy);
        }
        Ok(Self(counter))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A command's outcome from its resolved answer: a failed append is the command's error.
fn resolved<E, R: std::error::Error>(
    resolution: Result<CommandOutcome<E>, Unresolved>,
) -> Result<CommandOutcome<E>, CommandError<R>> {
    resolution.map_err(|failed| ActorError::Append(failed.error).into())
}

/// How often a message is re-sent after meeting a stopped actor.
const DELIVERY_ATTEMPTS: usize = 3;

impl<A: ActorAggregate> Registry<A> {
    pub fn new(
        store: Arc<dyn EventStore>,
        runtime: Arc<ActorRuntime>,
        config: ActorConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                runtime,
                config,
                actors: Mutex::new(HashMap::new()),
                next_arbiter: AtomicUsize::new(0),
            }),
        }
    }

    /// The stream of the aggregate with this id.
    ///
    /// # Errors
    /// [`ActorError::Unavailable`] when `id` cannot name a stream.
    pub fn stream_of(id: &impl Display) -> Result<StreamName, ActorError> {
        StreamName::from_parts(A::CATEGORY, id).map_err(|_| ActorError::Unavailable)
    }

    /// How many actors are alive (not passivated).
    pub fn active(&self) -> usize {
        self.inner.actors.lock().map_or(0, |a| a.len())
    }

    fn get_or_start(&self, stream: &StreamName) -> (Addr<AggregateActor<A>>, Arc<AtomicUsize>) {
        let mut actors = match self.inner.actors.lock() {
            Ok(a) => a,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(e) = actors.get(stream) {
            if e.addr.connected() {
                return (e.addr.clone(), e.in_flight.clone());
            }
        }
        let arbiters = self.inner.runtime.arbiters();
        let i = self.inner.next_arbiter.fetch_add(1, Ordering::Relaxed) % arbiters.len();
        let weak: Weak<Inner<A>> = Arc::downgrade(&self.inner);
        let key = stream.clone();
        let on_stop: crate::aggregate_actor::OnStop<A> = Box::new(move |addr| {
            if let Some(inner) = weak.upgrade() {
                if let Ok(mut actors) = inner.actors.lock() {
                    if actors.get(&key).is_some_and(|e| &e.addr == addr) {
                        actors.remove(&key);
                    }
                }
            }
        });
        let seen = Seen::default();
        let actor = AggregateActor::with_seen(
            stream.clone(),
            self.inner.store.clone(),
            self.inner.config.clone(),
            Some(on_stop),
            seen.clone(),
        );
        let addr = AggregateActor::start_in_arbiter(&arbiters[i], move |_| actor);
        let in_flight = Arc::new(AtomicUsize::new(0));
        actors.insert(
            stream.clone(),
            Entry {
                addr: addr.clone(),
                in_flight: in_flight.clone(),
                seen,
            },
        );
        (addr, in_flight)
    }

    /// Version `version` of `stream` was written (by another node): its actor, if it has
    /// one with a state behind that, catches up.
    pub fn notice(&self, stream: &StreamName, version: u64) {
        let Ok(actors) = self.inner.actors.lock() else {
            return;
        };
        if let Some(e) = actors.get(stream) {
            if e.seen.is_behind(version) {
                e.addr.do_send(Observed { version });
            }
        }
    }

    /// Every live actor with a loaded state catches up with its stream (the follower of
    /// other nodes' writes fell behind and cannot say which).
    pub fn notice_all(&self) {
        let Ok(actors) = self.inner.actors.lock() else {
            return;
        };
        for e in actors.values() {
            e.addr.do_send(Observed {
                version: u64::MAX - 2,
            });
        }
    }

    fn forget(&self, stream: &StreamName, addr: &Addr<AggregateActor<A>>) {
        if let Ok(mut actors) = self.inner.actors.lock() {
            if actors.get(stream).is_some_and(|e| &e.addr == addr) {
                actors.remove(stream);
            }
        }
    }

    /// Sends `make()` to the stream's actor, starting it if needed.
    async fn deliver<M, F>(&self, stream: &StreamName, make: F) -> Result<M::Result, ActorError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        AggregateActor<A>: Handler<M>,
        <AggregateActor<A> as Actor>::Context: ToEnvelope<AggregateActor<A>, M>,
        F: Fn() -> M,
    {
        for _ in 0..DELIVERY_ATTEMPTS {
            let (addr, counter) = self.get_or_start(stream);
            let _in_flight = InFlight::enter(counter, self.inner.config.mailbox_capacity.max(1))?;
            match addr.send(make()).await {
                Ok(r) => return Ok(r),
                Err(MailboxError::Closed) => self.forget(stream, &addr),
                Err(MailboxError::Timeout) => return Err(ActorError::Unavailable),
            }
        }
        Err(ActorError::Unavailable)
    }

    /// Executes `command` on the aggregate with this id.
    ///
    /// The actor decides it and queues its append; this call, not the actor, waits for
    /// the append to be durable ([`crate::aggregate_actor::Answer`]). A version conflict sends the command again,
    /// to be decided exclusively against the log.
    ///
    /// # Errors
    /// The domain's rejection or the machinery's [`ActorError`].
    pub async fn execute(
        &self,
        id: &impl Display,
        command: A::Command,
        options: ExecuteOptions,
    ) -> Result<CommandOutcome<A::Event>, CommandError<A::Rejection>> {
        let stream = Self::stream_of(id)?;
        let (command, options) = (&command, &options);
        let send = |retry| {
            self.deliver(&stream, move || Execute::<A> {
                command: command.clone(),
                options: options.clone(),
                retry,
            })
        };
        match send(false).await??.resolve().await {
            Err(failed) if failed.is_conflict() => resolved(send(true).await??.resolve().await),
            first => resolved(first),
        }
    }

    /// Executes the command `build` makes from the aggregate's current state, in one
    /// message to its actor ([`ExecuteFrom`]); `Ok(Err(t))` when
    /// `build` declined with `t` (nothing written). As [`Registry::execute`], a version
    /// conflict sends it again: `build` then looks at the state loaded from the log.
    ///
    /// # Errors
    /// The domain's rejection or the machinery's [`ActorError`].
    #[allow(clippy::type_complexity)]
    pub async fn execute_from<T, F>(
        &self,
        id: &impl Display,
        build: F,
        options: ExecuteOptions,
    ) -> Result<Result<CommandOutcome<A::Event>, T>, CommandError<A::Rejection>>
    where
        T: Send + 'static,
        F: Fn(&A) -> Result<A::Command, T> + Clone + Send + 'static,
    {
        let stream = Self::stream_of(id)?;
        let (build, options) = (&build, &options);
        let send = |retry| {
            self.deliver(&stream, move || ExecuteFrom::<A, T> {
                build: Box::new(build.clone()),
                options: options.clone(),
                retry,
            })
        };
        let answer = match send(false).await?? {
            Err(declined) => return Ok(Err(declined)),
            Ok(answer) => answer,
        };
        match answer.resolve().await {
            Err(failed) if failed.is_conflict() => match send(true).await?? {
                Err(declined) => Ok(Err(declined)),
                Ok(answer) => resolved(answer.resolve().await).map(Ok),
            },
            first => resolved(first).map(Ok),
        }
    }

    /// Runs `read` on the aggregate's state (and version) inside its actor.
    ///
    /// # Errors
    /// [`ActorError`] when the actor cannot load or be reached.
    pub async fn query<R, F>(&self, id: &impl Display, read: F) -> Result<R, ActorError>
    where
        R: Send + 'static,
        F: Fn(&A, Option<u64>) -> R + Clone + Send + 'static,
    {
        let stream = Self::stream_of(id)?;
        let result = self
            .deliver(&stream, || Query::<A, R> {
                read: Box::new(read.clone()),
            })
            .await?;
        result.map_err(|e| match e {
            CommandError::Actor(a) => a,
            CommandError::Rejected(_) => ActorError::Unavailable,
        })
    }

    /// Writes a snapshot of the aggregate now.
    ///
    /// # Errors
    /// [`ActorError`] on storage failure.
    pub async fn snapshot_now(&self, id: &impl Display) -> Result<(), ActorError> {
        let stream = Self::stream_of(id)?;
        self.deliver(&stream, || SnapshotNow).await?
    }
}
