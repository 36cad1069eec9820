//! The actix actor around a [`Core`]: one per stream.
//!
//! Commands on one stream are decided strictly in order, each against the state the
//! previous one left, and their appends are pipelined: a command is decided and folded in
//! as its message is handled, its append is queued behind the earlier ones
//! ([`Core::submit`]), and the caller is answered when that append is durable. Many
//! commands on one busy conversation thus share a group commit instead of waiting one
//! fsync each. Queries read the state as decided, which may include commands whose
//! append is still in flight (at most one group commit's worth).
//!
//! When an append fails the state holds events the log does not: the core is dropped and
//! the next message loads it again. Every append names the event it was decided on top of
//! (`ExpectedVersion::After`), so the appends decided on the lost state fail with a
//! conflict too — even when another writer's event took the version the failed one
//! wanted — and their commands are decided again, exclusively, against the log
//! (`Core::execute`, which retries conflicts with a fresh load until the command is
//! written or refused). Loading, commands with an
//! idempotency key (which look for an earlier run first) and retries run exclusively:
//! the actor takes no other message until they are done (`ctx.wait`).
//!
//! The core is loaded lazily by the first message (snapshot + replay), and the actor
//! stops itself after `idle_timeout` without messages (passivation); the registry starts a
//! new one, which rehydrates, when the next message comes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use domain::Aggregate;
use eventlog::{EventStore, StreamName};

use crate::config::ActorConfig;
use crate::core::{CommandOutcome, Core, ExecuteOptions, Submitted};
use crate::error::{ActorError, CommandError};

/// What an aggregate needs to live in an actor: plain data that may cross threads.
pub trait ActorAggregate:
    Aggregate<Command: Clone + Send + 'static, Event: Send + 'static, Rejection: Send + 'static>
    + Unpin
    + Send
    + 'static
{
}

impl<A> ActorAggregate for A where
    A: Aggregate<Command: Clone + Send + 'static, Event: Send + 'static, Rejection: Send + 'static>
        + Unpin
        + Send
        + 'static
{
}

/// Called with the actor's address when it stops, so its registry forgets it.
pub type OnStop<A> = Box<dyn Fn(&Addr<AggregateActor<A>>) + Send>;

/// The actor owning one stream's aggregate.
pub struct AggregateActor<A: ActorAggregate> {
    stream: StreamName,
    store: Arc<dyn EventStore>,
    config: ActorConfig,
    /// `None` until the first message loads it, and while a message is being handled.
    core: Option<Core<A>>,
    last_active: Instant,
    on_stop: Option<OnStop<A>>,
    /// Pipelined appends not yet resolved.
    in_flight: usize,
    /// Bumped when the core is dropped after a failed append, so that the failures of
    /// the other appends decided on it do not drop its successor.
    epoch: u64,
    /// The version the state is at, for the registry to tell whether an event another
    /// node wrote is news to this actor ([`Seen`]); shared with the registry.
    seen: Seen,
}

/// An actor's version as its registry reads it: 0 while no state is loaded, 1 for a
/// loaded stream with no events, `v + 2` at version `v`.
#[derive(Clone, Default)]
pub struct Seen(Arc<std::sync::atomic::AtomicU64>);

impl Seen {
    fn set(&self, loaded: Option<Option<u64>>) {
        let value = match loaded {
            None => 0,
            Some(None) => 1,
            Some(Some(v)) => v.saturating_add(2),
        };
        self.0.store(value, std::sync::atomic::Ordering::Release);
    }

    /// Whether an actor in this state has not seen version `version` of its stream.
    pub fn is_behind(&self, version: u64) -> bool {
        let seen = self.0.load(std::sync::atomic::Ordering::Acquire);
        seen != 0 && version.saturating_add(2) > seen
    }
}

/// Most pipelined appends one actor keeps in flight; past this a command runs
/// exclusively, which holds the mailbox until it is durable (backpressure).
const MAX_IN_FLIGHT: usize = 1024;

impl<A: ActorAggregate> AggregateActor<A> {
    pub fn new(
        stream: StreamName,
        store: Arc<dyn EventStore>,
        config: ActorConfig,
        on_stop: Option<OnStop<A>>,
    ) -> Self {
        Self::with_seen(stream, store, config, on_stop, Seen::default())
    }

    /// As [`AggregateActor::new`], publishing its version in `seen`.
    pub fn with_seen(
        stream: StreamName,
        store: Arc<dyn EventStore>,
        config: ActorConfig,
        on_stop: Option<OnStop<A>>,
        seen: Seen,
    ) -> Self {
        Self {
            stream,
            store,
            config,
            core: None,
            last_active: Instant::now(),
            on_stop,
            in_flight: 0,
            epoch: 0,
            seen,
        }
    }

    /// Runs `work` on the core (loading it first if needed) with the actor taking no other
    /// message until it completes (`ctx.wait`), then puts the core back.
    fn exclusively<T, E, F, Fut>(
        &mut self,
        ctx: &mut Context<Self>,
        work: F,
    ) -> ResponseActFuture<Self, Result<T, E>>
    where
        T: 'static,
        E: From<ActorError> + 'static,
        F: FnOnce(Core<A>) -> Fut + 'static,
        Fut: std::future::Future<Output = (Core<A>, Result<T, E>)> + 'static,
    {
        self.last_active = Instant::now();
        let core = self.core.take();
        let (store, stream, config) =
            (self.store.clone(), self.stream.clone(), self.config.clone());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let fut = async move {
            let core = match core {
                Some(c) => c,
                None => match Core::load(store, stream, config).await {
                    Ok(c) => c,
                    Err(e) => return (None, Err(E::from(e))),
                },
            };
            let (core, result) = work(core).await;
            (Some(core), result)
        };
        ctx.wait(fut.into_actor(self).map(move |(core, result), act, _| {
            act.core = core;
            act.publish_seen();
            act.last_active = Instant::now();
            let _ = tx.send(result);
        }));
        Box::pin(
            async move {
                rx.await
                    .unwrap_or_else(|_| Err(E::from(ActorError::Unavailable)))
            }
            .into_actor(self),
        )
    }

    fn publish_seen(&self) {
        self.seen.set(self.core.as_ref().map(|c| c.version));
    }

    fn execute_exclusively(
        &mut self,
        ctx: &mut Context<Self>,
        msg: Execute<A>,
    ) -> <Self as Handler<Execute<A>>>::Result {
        self.exclusively(ctx, move |mut core| async move {
            let result = core.execute(&msg.command, &msg.options).await;
            (core, result)
        })
    }
}

impl<A: ActorAggregate> Actor for AggregateActor<A> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.config.mailbox_capacity.max(1));
        let check = (self.config.idle_timeout / 4).max(Duration::from_millis(5));
        ctx.run_interval(check, |act, ctx| {
            if act.last_active.elapsed() >= act.config.idle_timeout {
                tracing::debug!(stream = %act.stream, "passivating idle actor");
                ctx.stop();
            }
        });
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        if let Some(on_stop) = self.on_stop.take() {
            on_stop(&ctx.address());
        }
    }
}

/// Execute a command against the stream's aggregate.
pub struct Execute<A: Aggregate> {
    pub command: A::Command,
    pub options: ExecuteOptions,
}

impl<A: ActorAggregate> Message for Execute<A> {
    type Result = Result<CommandOutcome<A::Event>, CommandError<A::Rejection>>;
}

impl<A: ActorAggregate> Handler<Execute<A>> for AggregateActor<A> {
    type Result =
        ResponseActFuture<Self, Result<CommandOutcome<A::Event>, CommandError<A::Rejection>>>;

    fn handle(&mut self, msg: Execute<A>, ctx: &mut Self::Context) -> Self::Result {
        self.last_active = Instant::now();
        let pipelined = msg.options.idempotency_key.is_none() && self.in_flight < MAX_IN_FLIGHT;
        let Some(core) = self.core.as_mut().filter(|_| pipelined) else {
            return self.execute_exclusively(ctx, msg);
        };
        let (append, events) = match core.submit(&msg.command, &msg.options) {
            Submitted::Done(result) => return Box::pin(actix::fut::ready(result)),
            // A key's first use: read or made off this thread, the actor taking no other
            // message meanwhile, so commands still go in order.
            Submitted::NeedsKey => return self.execute_exclusively(ctx, msg),
            Submitted::Appending { append, events } => (append, events),
        };
        self.in_flight += 1;
        self.publish_seen();
        let epoch = self.epoch;
        Box::pin(append.into_actor(self).then(move |appended, act, ctx| {
            act.in_flight -= 1;
            act.last_active = Instant::now();
            let failed = match appended {
                Ok(r) => {
                    if act.in_flight == 0 {
                        if let Some(core) = act.core.as_mut() {
                            core.maybe_snapshot();
                        }
                    }
                    let outcome = CommandOutcome {
                        version: Some(r.last_version),
                        position: Some(r.last_position),
                        events,
                        deduplicated: r.deduplicated,
                    };
                    return Box::pin(actix::fut::ready(Ok(outcome))) as Self::Result;
                }
                Err(e) => e,
            };
            // The state holds these events and the log does not: load it again.
            if act.epoch == epoch {
                act.core = None;
                act.publish_seen();
                act.epoch += 1;
            }
            match failed {
                // Someone else wrote the stream, or an earlier append decided on the
                // dropped state failed: decide again against the log.
                eventlog::AppendError::WrongExpectedVersion { .. } => {
                    act.execute_exclusively(ctx, msg)
                }
                other => Box::pin(actix::fut::ready(Err(ActorError::Append(other).into()))),
            }
        }))
    }
}

/// Execute the command `build` makes from the aggregate's state, in one message: a
/// caller that must look at the state before it knows the command (is the author a
/// viewer? which kind of conversation is it?) needs no separate [`Query`] first, and the
/// look and the decision see the same state. `build` answers `Err(t)` to decline (the
/// caller takes a slower path, or refuses); nothing is then written.
pub struct ExecuteFrom<A: Aggregate, T> {
    #[allow(clippy::type_complexity)]
    pub build: Box<dyn FnOnce(&A) -> Result<A::Command, T> + Send>,
    pub options: ExecuteOptions,
}

impl<A: ActorAggregate, T: Send + 'static> Message for ExecuteFrom<A, T> {
    type Result = Result<Result<CommandOutcome<A::Event>, T>, CommandError<A::Rejection>>;
}

impl<A: ActorAggregate, T: Send + 'static> Handler<ExecuteFrom<A, T>> for AggregateActor<A> {
    type Result = ResponseActFuture<
        Self,
        Result<Result<CommandOutcome<A::Event>, T>, CommandError<A::Rejection>>,
    >;

    fn handle(&mut self, msg: ExecuteFrom<A, T>, ctx: &mut Self::Context) -> Self::Result {
        let ExecuteFrom { build, options } = msg;
        if let Some(core) = &self.core {
            return match build(&core.state) {
                Err(declined) => Box::pin(actix::fut::ready(Ok(Err(declined)))),
                Ok(command) => {
                    let executed = <Self as Handler<Execute<A>>>::handle(
                        self,
                        Execute { command, options },
                        ctx,
                    );
                    Box::pin(executed.map(|r, _, _| r.map(Ok)))
                }
            };
        }
        // Not loaded yet: load, look and decide exclusively.
        self.exclusively(ctx, move |mut core| async move {
            match build(&core.state) {
                Err(declined) => (core, Ok(Err(declined))),
                Ok(command) => {
                    let r = core.execute(&command, &options).await;
                    (core, r.map(Ok))
                }
            }
        })
    }
}

/// Another writer (a node of a cluster) appended version `version` of the stream: an
/// actor whose state is behind it catches up, so its queries see the write. One with
/// appends in flight leaves it to them (a stale append fails and reloads the state).
pub struct Observed {
    pub version: u64,
}

impl Message for Observed {
    type Result = ();
}

impl<A: ActorAggregate> Handler<Observed> for AggregateActor<A> {
    type Result = ();

    fn handle(&mut self, msg: Observed, ctx: &mut Self::Context) {
        let behind = self
            .core
            .as_ref()
            .is_some_and(|c| c.version.is_none_or(|v| v < msg.version));
        if !behind || self.in_flight > 0 {
            return;
        }
        let caught_up = self.exclusively(ctx, move |mut core| async move {
            let r = core.catch_up().await.map(|_| ());
            (core, r)
        });
        ctx.spawn(caught_up.map(|r: Result<(), ActorError>, _, _| {
            if let Err(e) = r {
                tracing::debug!(error = %e, "catching up with another writer failed");
            }
        }));
    }
}

/// Read the aggregate's state (and its version) through a function run in the actor, so
/// no state is copied that the caller does not need.
pub struct Query<A: Aggregate, R> {
    #[allow(clippy::type_complexity)]
    pub read: Box<dyn FnOnce(&A, Option<u64>) -> R + Send>,
}

impl<A: ActorAggregate, R: 'static> Message for Query<A, R> {
    type Result = Result<R, CommandError<A::Rejection>>;
}

impl<A: ActorAggregate, R: 'static> Handler<Query<A, R>> for AggregateActor<A> {
    type Result = ResponseActFuture<Self, Result<R, CommandError<A::Rejection>>>;

    fn handle(&mut self, msg: Query<A, R>, ctx: &mut Self::Context) -> Self::Result {
        self.last_active = Instant::now();
        if let Some(core) = &self.core {
            return Box::pin(actix::fut::ready(Ok((msg.read)(&core.state, core.version))));
        }
        self.exclusively(ctx, move |core| async move {
            let r = (msg.read)(&core.state, core.version);
            (core, Ok(r))
        })
    }
}

/// Write a snapshot of the current state now (tests, benchmarks, operators).
pub struct SnapshotNow;

impl Message for SnapshotNow {
    type Result = Result<(), ActorError>;
}

impl<A: ActorAggregate> Handler<SnapshotNow> for AggregateActor<A> {
    type Result = ResponseActFuture<Self, Result<(), ActorError>>;

    fn handle(&mut self, _: SnapshotNow, ctx: &mut Self::Context) -> Self::Result {
        self.exclusively(ctx, move |mut core| async move {
            let r = core.snapshot_now().await;
            (core, r)
        })
    }
}
