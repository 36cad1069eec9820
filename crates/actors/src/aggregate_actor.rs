//! The actix actor around a [`Core`]: one per stream.
//!
//! Every message is handled as an `AtomicResponse`: the actor takes no other message until
//! the current command's append is durable and folded in, so commands on one stream are
//! strictly sequential and each is decided against the state the previous one left. The
//! core is loaded lazily by the first message (snapshot + replay), and the actor stops
//! itself after `idle_timeout` without messages (passivation); the registry starts a new
//! one, which rehydrates, when the next message comes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use domain::Aggregate;
use eventlog::{EventStore, StreamName};

use crate::config::ActorConfig;
use crate::core::{CommandOutcome, Core, ExecuteOptions};
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
}

impl<A: ActorAggregate> AggregateActor<A> {
    pub fn new(
        stream: StreamName,
        store: Arc<dyn EventStore>,
        config: ActorConfig,
        on_stop: Option<OnStop<A>>,
    ) -> Self {
        Self {
            stream,
            store,
            config,
            core: None,
            last_active: Instant::now(),
            on_stop,
        }
    }

    /// Runs `work` on the core (loading it first if needed) with the actor blocked for
    /// other messages until it completes, then puts the core back.
    fn with_core<T, E, F, Fut>(&mut self, work: F) -> AtomicResponse<Self, Result<T, E>>
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
        AtomicResponse::new(Box::pin(fut.into_actor(self).map(
            |(core, result), act, _| {
                act.core = core;
                act.last_active = Instant::now();
                result
            },
        )))
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
        AtomicResponse<Self, Result<CommandOutcome<A::Event>, CommandError<A::Rejection>>>;

    fn handle(&mut self, msg: Execute<A>, _: &mut Self::Context) -> Self::Result {
        self.with_core(move |mut core| async move {
            let result = core.execute(&msg.command, &msg.options).await;
            (core, result)
        })
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
    type Result = AtomicResponse<Self, Result<R, CommandError<A::Rejection>>>;

    fn handle(&mut self, msg: Query<A, R>, _: &mut Self::Context) -> Self::Result {
        self.with_core(move |core| async move {
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
    type Result = AtomicResponse<Self, Result<(), ActorError>>;

    fn handle(&mut self, _: SnapshotNow, _: &mut Self::Context) -> Self::Result {
        self.with_core(move |mut core| async move {
            let r = core.snapshot_now().await;
            (core, r)
        })
    }
}
