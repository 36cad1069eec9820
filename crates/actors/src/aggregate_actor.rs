//! The actix actor around a [`Core`]: one per stream.
//!
//! Commands on one stream are decided strictly in order, each against the state the
//! previous one left, and their appends are pipelined: a command is decided and folded in
//! as its message is handled, its append is queued behind the earlier ones
//! ([`Core::submit`]), and the actor answers at once with the queued append
//! ([`Answer::Appending`]), which the caller awaits: the actor's thread is neither held
//! nor woken up by the log. Many commands on one busy conversation thus share a group
//! commit instead of waiting one fsync each. Queries read the state as decided, which may
//! include commands whose append is still in flight (at most one group commit's worth).
//!
//! When an append fails the state holds events the log does not: the caller tells the
//! actor (or sends a conflicting command again), the core is dropped and the next message
//! loads it again. Every append names the event it was decided on top of
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

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use domain::Aggregate;
use eventlog::{AppendFuture, EventStore, StreamName};

use crate::config::ActorConfig;
use crate::core::{CommandOutcome, Core, ExecuteOptions, SnapshotJob, Submitted};
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
    /// Pipelined appends not yet resolved (their callers await them, and count them
    /// down: [`Appending`]).
    in_flight: Arc<AtomicUsize>,
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
            in_flight: Arc::new(AtomicUsize::new(0)),
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
        command: A::Command,
        options: ExecuteOptions,
    ) -> ResponseActFuture<Self, Answered<A>> {
        self.exclusively(ctx, move |mut core| async move {
            let result = core.execute(&command, &options).await;
            (core, result.map(Answer::Done))
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
    /// Sent again because the append it was decided for failed with a conflict
    /// ([`Unresolved`]): decided exclusively, against the log (`Core::execute`), never
    /// pipelined. The failed append's caller has told the actor to drop its state.
    pub retry: bool,
}

impl<A: ActorAggregate> Message for Execute<A> {
    type Result = Answered<A>;
}

/// What an actor answers a command with.
pub type Answered<A> = Result<Answer<A>, CommandError<<A as Aggregate>::Rejection>>;

/// An actor's answer to a command.
pub enum Answer<A: ActorAggregate> {
    /// Refused, nothing to write, or written and durable.
    Done(CommandOutcome<A::Event>),
    /// Decided and folded into the actor's state, its append queued: the caller awaits
    /// it ([`Appending::resolve`]), so the actor neither waits for the log nor is woken
    /// when the append is durable.
    Appending(Appending<A>),
}

impl<A: ActorAggregate> Answer<A> {
    /// The outcome once durable.
    ///
    /// # Errors
    /// As [`Appending::resolve`].
    pub async fn resolve(self) -> Result<CommandOutcome<A::Event>, Unresolved> {
        match self {
            Answer::Done(outcome) => Ok(outcome),
            Answer::Appending(appending) => appending.resolve().await,
        }
    }
}

/// A command's append that failed: the state it was decided on holds events the log does
/// not, and the actor has been told to drop it. A version conflict
/// ([`Unresolved::is_conflict`]) is answered by sending the command again with
/// `retry: true`; any other failure is the command's ([`ActorError::Append`]).
#[derive(Debug)]
pub struct Unresolved {
    pub error: eventlog::AppendError,
}

impl Unresolved {
    /// Someone else wrote the stream, or an earlier append decided on the same state
    /// failed: deciding again against the log may succeed.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self.error,
            eventlog::AppendError::WrongExpectedVersion { .. }
        )
    }
}

/// One pipelined append counted in its actor's in-flight appends until dropped.
struct Pipelined(Arc<AtomicUsize>);

impl Drop for Pipelined {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A command decided and folded into its actor's state whose append is queued
/// ([`Answer::Appending`]).
///
/// Dropped before it is resolved (the caller went away), it hands its append to the
/// actor, which awaits it and drops its state if it failed, as the caller would have.
pub struct Appending<A: ActorAggregate> {
    /// `None` once resolved.
    append: Option<AppendFuture>,
    events: Vec<A::Event>,
    epoch: u64,
    /// The snapshot of the state after this command, written once its append is durable.
    snapshot: Option<SnapshotJob>,
    pipelined: Option<Pipelined>,
    actor: Addr<AggregateActor<A>>,
}

impl<A: ActorAggregate> Appending<A> {
    /// Waits until the append is durable: the command's outcome, or why it was not
    /// written. A failure tells the actor to drop the state (it holds the events the log
    /// does not).
    ///
    /// # Errors
    /// [`Unresolved`]: the append failed.
    pub async fn resolve(mut self) -> Result<CommandOutcome<A::Event>, Unresolved> {
        // Polled in place: a caller dropping this future midway drops `self` with the
        // append still in it, which `Drop` hands to the actor.
        let appended = match self.append.as_mut() {
            Some(append) => append.await,
            None => {
                let error = eventlog::StorageError::Failed("resolved twice".into()).into();
                return Err(Unresolved { error });
            }
        };
        self.append = None;
        self.pipelined = None;
        match appended {
            Ok(r) => {
                if let Some(job) = self.snapshot.take() {
                    job.spawn();
                }
                Ok(CommandOutcome {
                    version: Some(r.last_version),
                    position: Some(r.last_position),
                    events: std::mem::take(&mut self.events),
                    deduplicated: r.deduplicated,
                })
            }
            Err(error) => {
                // Told whatever the failure, and past the mailbox's bound: a conflicting
                // command sent again may be refused as busy, and the state must go anyway.
                self.actor.do_send(AppendFailed { epoch: self.epoch });
                Err(Unresolved { error })
            }
        }
    }
}

impl<A: ActorAggregate> Drop for Appending<A> {
    fn drop(&mut self) {
        if let Some(append) = self.append.take() {
            self.actor.do_send(AwaitAppend {
                append,
                epoch: self.epoch,
                pipelined: self.pipelined.take(),
            });
        }
    }
}

/// The append of a command whose caller went away ([`Appending`] dropped unresolved):
/// the actor awaits it and drops its state if it failed.
struct AwaitAppend {
    append: AppendFuture,
    epoch: u64,
    pipelined: Option<Pipelined>,
}

impl Message for AwaitAppend {
    type Result = ();
}

impl<A: ActorAggregate> Handler<AwaitAppend> for AggregateActor<A> {
    type Result = ();

    fn handle(&mut self, msg: AwaitAppend, ctx: &mut Self::Context) {
        let AwaitAppend {
            append,
            epoch,
            pipelined,
        } = msg;
        ctx.spawn(append.into_actor(self).map(move |appended, act, _| {
            drop(pipelined);
            if appended.is_err() {
                act.forget_state(epoch);
            }
        }));
    }
}

/// The append of a command decided on the state of `epoch` failed: that state holds
/// events the log does not.
struct AppendFailed {
    epoch: u64,
}

impl Message for AppendFailed {
    type Result = ();
}

impl<A: ActorAggregate> Handler<AppendFailed> for AggregateActor<A> {
    type Result = ();

    fn handle(&mut self, msg: AppendFailed, _: &mut Self::Context) {
        self.forget_state(msg.epoch);
    }
}

/// A command's answer: now, or once it has run exclusively.
enum Handled<A: ActorAggregate> {
    Now(Answered<A>),
    Later(ResponseActFuture<AggregateActor<A>, Answered<A>>),
}

impl<A: ActorAggregate> AggregateActor<A> {
    /// Drops the state if it is still the one of `epoch` (an append decided on it failed,
    /// so it holds events the log does not): the next message loads it again. The
    /// other appends decided on it fail with a conflict and are decided again.
    fn forget_state(&mut self, epoch: u64) {
        if self.epoch == epoch {
            self.core = None;
            self.publish_seen();
            self.epoch += 1;
        }
    }

    fn execute(
        &mut self,
        ctx: &mut Context<Self>,
        command: A::Command,
        options: ExecuteOptions,
        retry: bool,
    ) -> Handled<A> {
        self.last_active = Instant::now();
        let pipelined = !retry
            && options.idempotency_key.is_none()
            && self.in_flight.load(Ordering::Acquire) < MAX_IN_FLIGHT;
        let Some(core) = self.core.as_mut().filter(|_| pipelined) else {
            return Handled::Later(self.execute_exclusively(ctx, command, options));
        };
        match core.submit(&command, &options) {
            Submitted::Done(result) => Handled::Now(result.map(Answer::Done)),
            // A key's first use: read or made off this thread, the actor taking no other
            // message meanwhile, so commands still go in order.
            Submitted::NeedsKey => Handled::Later(self.execute_exclusively(ctx, command, options)),
            Submitted::Appending { append, events } => {
                let snapshot = core.snapshot_due();
                self.in_flight.fetch_add(1, Ordering::AcqRel);
                self.publish_seen();
                Handled::Now(Ok(Answer::Appending(Appending {
                    append: Some(append),
                    events,
                    epoch: self.epoch,
                    snapshot,
                    pipelined: Some(Pipelined(self.in_flight.clone())),
                    actor: ctx.address(),
                })))
            }
        }
    }
}

impl<A: ActorAggregate> Handler<Execute<A>> for AggregateActor<A> {
    type Result = ActorResponse<Self, Answered<A>>;

    fn handle(&mut self, msg: Execute<A>, ctx: &mut Self::Context) -> Self::Result {
        match self.execute(ctx, msg.command, msg.options, msg.retry) {
            Handled::Now(answer) => ActorResponse::reply(answer),
            Handled::Later(answer) => ActorResponse::r#async(answer),
        }
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
    /// As [`Execute::retry`].
    pub retry: bool,
}

impl<A: ActorAggregate, T: Send + 'static> Message for ExecuteFrom<A, T> {
    type Result = Result<Result<Answer<A>, T>, CommandError<A::Rejection>>;
}

impl<A: ActorAggregate, T: Send + 'static> Handler<ExecuteFrom<A, T>> for AggregateActor<A> {
    type Result = ActorResponse<Self, Result<Result<Answer<A>, T>, CommandError<A::Rejection>>>;

    fn handle(&mut self, msg: ExecuteFrom<A, T>, ctx: &mut Self::Context) -> Self::Result {
        let ExecuteFrom {
            build,
            options,
            retry,
        } = msg;
        if let Some(core) = &self.core {
            return match build(&core.state) {
                Err(declined) => ActorResponse::reply(Ok(Err(declined))),
                Ok(command) => match self.execute(ctx, command, options, retry) {
                    Handled::Now(answer) => ActorResponse::reply(answer.map(Ok)),
                    Handled::Later(answer) => {
                        ActorResponse::r#async(answer.map(|r, _, _| r.map(Ok)))
                    }
                },
            };
        }
        // Not loaded yet (or dropped after a failed append): load, look and decide
        // exclusively.
        ActorResponse::r#async(self.exclusively(ctx, move |mut core| async move {
            match build(&core.state) {
                Err(declined) => (core, Ok(Err(declined))),
                Ok(command) => {
                    let r = core.execute(&command, &options).await;
                    (core, r.map(|outcome| Ok(Answer::Done(outcome))))
                }
            }
        }))
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
        if !behind || self.in_flight.load(Ordering::Acquire) > 0 {
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

#[cfg(test)]
mod tests {
    use super::*;
    use domain::conversation::ActorFacts;
    use domain::{
        CommandMeta, Conversation, ConversationCommand, ConversationId, InboxId, OrgId,
        PhoneNumber, Role, UserId,
    };
    use eventlog::{LogOptions, RocksLog};

    fn assign(org: OrgId, user: UserId) -> <Conversation as Aggregate>::Command {
        CommandMeta::user(org, user, Role::Member, 10).issue(ConversationCommand::AssignToMe {
            facts: ActorFacts {
                inbox_member: true,
                ..ActorFacts::default()
            },
        })
    }

    fn execute(command: <Conversation as Aggregate>::Command) -> Execute<Conversation> {
        Execute {
            command,
            options: ExecuteOptions::default(),
            retry: false,
        }
    }

    /// A caller that goes away while its command's append is in flight (a client that
    /// disconnects) leaves the actor no less right: the actor awaits the append its caller
    /// dropped, and drops its state when that append failed, as the caller would have
    /// told it. Without that, the actor would go on answering with a decision the log
    /// never took.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_append_whose_caller_went_away_is_awaited_by_the_actor() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn EventStore> =
            Arc::new(RocksLog::open(dir.path(), LogOptions::default()).unwrap());
        let runtime = crate::ActorRuntime::start(1).unwrap();
        let org = OrgId::random();
        let (our, their) = (
            PhoneNumber::parse("+15551230000").unwrap(),
            PhoneNumber::parse("+15559870000").unwrap(),
        );
        let id = ConversationId::external(org, &our, &their);
        let stream = StreamName::from_parts("conversation", id).unwrap();
        let (config, actor_store) = (ActorConfig::default(), store.clone());
        let actor_stream = stream.clone();
        let addr = AggregateActor::<Conversation>::start_in_arbiter(&runtime.arbiters()[0], |_| {
            AggregateActor::new(actor_stream, actor_store, config, None)
        });
        let start = CommandMeta::system(org, 1).issue(ConversationCommand::StartExternal {
            id,
            our,
            their,
            inbox: Some(InboxId::random()),
            facts: ActorFacts::default(),
        });
        let answer = addr.send(execute(start)).await.unwrap().unwrap();
        answer.resolve().await.expect("started");
        // Xena takes the conversation behind the actor's back: its state is now stale.
        let (xena, yuri) = (UserId::random(), UserId::random());
        let mut foreign = Core::<Conversation>::load(store.clone(), stream, ActorConfig::default())
            .await
            .unwrap();
        foreign
            .execute(&assign(org, xena), &ExecuteOptions::default())
            .await
            .expect("Xena takes it");
        // Yuri's command is decided on the stale state (its append must fail); its caller
        // drops the answer without awaiting it.
        let answer = addr
            .send(execute(assign(org, yuri)))
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(answer, Answer::Appending(_)), "decided and queued");
        drop(answer);
        let assignee = || {
            addr.send(Query::<Conversation, _> {
                read: Box::new(|c: &Conversation, _| c.assignee()),
            })
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now = assignee().await.unwrap().unwrap();
            if now == Some(xena) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the actor kept a decision the log never took: assignee {now:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // And Yuri's command, decided on the reloaded state, is refused.
        let again = addr.send(execute(assign(org, yuri))).await.unwrap();
        assert!(
            matches!(again, Err(CommandError::Rejected(_))),
            "decided on the log"
        );
    }
}
