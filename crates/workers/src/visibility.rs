//! Who sees each event of the log, kept by the events themselves: the state the one
//! visibility rule ([`domain::visibility`]) needs, as of a position in the log.
//!
//! [`Audiences`] holds what the rule needs of each aggregate it has met: a conversation's
//! [`Seat`]; an inbox's team; a business number's holders and route (a [`Line`]); a
//! queue's agents (its crew); who has claimed each conversation of a queue; and each
//! organization's admins. Every event it is shown moves that state as the domain's `apply`
//! would, in log order, so once something is known its answer is the one as of the last
//! event shown — not the actors' state now, which may be ahead. It implements
//! [`Roles`], so the audience of a conversation is [`Seat::audience`] over it.
//!
//! Only what is not known yet is looked up in the actors' current state ([`Need`],
//! [`prepare`], [`learn_viewers`]): at the first event that needs an aggregate not born
//! while being followed (a queue followed since its creation needs no lookup of its
//! claims). The lookups are retried while an actor is busy or unreachable. The stream hub
//! keeps one table for all its connections; a resumed connection's catch-up keeps its own;
//! an HTTP check fills a fresh one for one conversation ([`Audiences::knowing`], [`learn`]).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use actors::{ActorError, Workspace};
use domain::conversation::ActorFacts;
use domain::conversation::ConversationEvent as C;
use domain::inbox::InboxEvent as I;
use domain::queue::QueueEvent as Q;
use domain::visibility::{inbox_audience, queue_audience, Audience, Line, Roles, Seat};
use domain::{
    Conversation, ConversationEvent, ConversationId, Directory, DirectoryEvent, Inbox, InboxEvent,
    InboxId, OrgId, PhoneNumber, Queue, QueueEvent, QueueId, Role, UserId,
};

/// One event of the categories `conversation`, `inbox`, `queue` and `directory`, decoded,
/// as the table follows it.
#[derive(Debug, Clone, Copy)]
pub enum Followed<'a> {
    Conversation {
        id: ConversationId,
        event: &'a ConversationEvent,
        /// It is an item of the conversation's timeline (shown to its viewers).
        item: bool,
    },
    Inbox(InboxId, &'a InboxEvent),
    Queue(QueueId, &'a QueueEvent),
    Directory(OrgId, &'a DirectoryEvent),
}

/// What an event is about, for its frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// The conversation's timeline item.
    Item,
    /// An inbox change: a conversation moved in it, or its team changed.
    Inbox {
        inbox: InboxId,
        conversation: Option<ConversationId>,
        assignee: Option<UserId>,
    },
    /// A queue change: an interaction moved, an agent logged in or out, membership.
    Queue {
        queue: QueueId,
        conversation: Option<ConversationId>,
        agent: Option<UserId>,
    },
}

/// Where an event goes.
pub struct Target<'a> {
    pub org: OrgId,
    pub audience: Audience<'a>,
    pub subject: Subject,
}

/// A conversation's seat as the table keeps it.
#[derive(Debug, Clone)]
struct Kept {
    seat: Seat,
    /// Followed since its `ConversationStarted`: every claim of it on a queue followed
    /// since its creation has been seen too (else an unknown claim is looked up).
    born: bool,
    /// [`Audiences::tick`] of the last event that touched it (the idlest are forgotten).
    used: u64,
}

/// Conversations whose routing state is kept at most (beyond 1.5 × this, the idlest are
/// forgotten down to it, with their claims): a forgotten conversation that has an event
/// again is looked up in the actors' current state, as one never met is.
pub const SEAT_LIMIT: usize = 200_000;

/// An inbox's team or a queue's members.
#[derive(Debug, Clone)]
struct Team {
    org: OrgId,
    members: BTreeSet<UserId>,
}

/// Something the rule needs that is not known yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    Seat(ConversationId),
    Team(InboxId),
    Line(OrgId, PhoneNumber),
    Crew(QueueId),
    Claim(QueueId, ConversationId),
    Admins(OrgId),
}

/// A looked-up answer to a [`Need`].
enum Learned {
    Seat(ConversationId, Seat),
    Team(InboxId, Team),
    Line(OrgId, PhoneNumber, Line),
    Crew(QueueId, Team),
    Claim(QueueId, ConversationId, Option<UserId>),
    Admins(OrgId, BTreeSet<UserId>),
}

/// The state the rule needs; see the module docs.
#[derive(Debug, Default)]
pub struct Audiences {
    seats: HashMap<ConversationId, Kept>,
    teams: HashMap<InboxId, Team>,
    lines: HashMap<OrgId, HashMap<PhoneNumber, Line>>,
    crews: HashMap<QueueId, Team>,
    /// Who has claimed each queue conversation (`None`: waiting, closed or released).
    claims: HashMap<(QueueId, ConversationId), Option<UserId>>,
    /// Queues followed since their creation: a conversation with no claim event seen is
    /// claimed by nobody.
    queues_born: HashSet<QueueId>,
    /// Each organization's admins (they see every inbox conversation and queue).
    admins: HashMap<OrgId, BTreeSet<UserId>>,
    /// Events applied (the clock of [`Kept::used`]).
    tick: u64,
    /// [`SEAT_LIMIT`], but for tests.
    seat_limit: Option<usize>,
}

impl Roles for Audiences {
    type Missing = Need;

    fn team(&self, inbox: InboxId) -> Result<&BTreeSet<UserId>, Need> {
        self.teams
            .get(&inbox)
            .map(|t| &t.members)
            .ok_or(Need::Team(inbox))
    }

    fn admins(&self, org: OrgId) -> Result<&BTreeSet<UserId>, Need> {
        self.admins.get(&org).ok_or(Need::Admins(org))
    }

    fn line(&self, org: OrgId, number: &PhoneNumber) -> Result<&Line, Need> {
        self.lines
            .get(&org)
            .and_then(|l| l.get(number))
            .ok_or_else(|| Need::Line(org, number.clone()))
    }

    fn claimer(&self, queue: QueueId, id: ConversationId) -> Result<Option<UserId>, Need> {
        match self.claims.get(&(queue, id)) {
            Some(claimer) => Ok(*claimer),
            None if self.seats.get(&id).is_some_and(|k| k.born)
                && self.queues_born.contains(&queue) =>
            {
                Ok(None)
            }
            None => Err(Need::Claim(queue, id)),
        }
    }

    fn crew(&self, queue: QueueId) -> Result<&BTreeSet<UserId>, Need> {
        self.crews
            .get(&queue)
            .map(|t| &t.members)
            .ok_or(Need::Crew(queue))
    }
}

impl Audiences {
    /// Who sees conversation `id` now (as of the last event applied), or what is missing.
    ///
    /// # Errors
    /// What must be learned first.
    pub fn viewers(&self, id: ConversationId) -> Result<(OrgId, Audience<'_>), Need> {
        let kept = self.seats.get(&id).ok_or(Need::Seat(id))?;
        Ok((kept.seat.org, kept.seat.audience(id, self)?))
    }

    /// What conversation `id`'s commands need to know of `user` (see [`Seat::facts`]),
    /// or what is missing.
    ///
    /// # Errors
    /// What must be learned first.
    pub fn facts(&self, id: ConversationId, user: UserId) -> Result<ActorFacts, Need> {
        let kept = self.seats.get(&id).ok_or(Need::Seat(id))?;
        kept.seat.facts(user, id, self)
    }

    /// Whether `user` sees inbox `inbox` (its team, or an admin of `org`, the
    /// organization it must belong to), as of what is known.
    ///
    /// # Errors
    /// What must be learned first.
    pub fn sees_inbox(&self, org: OrgId, inbox: InboxId, user: UserId) -> Result<bool, Need> {
        let (of, audience) = self.inbox_readers(inbox)?;
        Ok(of == org && audience.contains(&user))
    }

    /// Whether `user` sees queue `queue` (its agents, or an admin of `org`, the
    /// organization it must belong to), as of what is known.
    ///
    /// # Errors
    /// What must be learned first.
    pub fn sees_queue(&self, org: OrgId, queue: QueueId, user: UserId) -> Result<bool, Need> {
        let crew = self.crews.get(&queue).ok_or(Need::Crew(queue))?;
        Ok(crew.org == org
            && queue_audience(&crew.members, self.admins(org)?, None).contains(&user))
    }

    /// A table that knows conversation `id`'s seat already (read with its kind): an HTTP
    /// check then looks up only what the seat names.
    pub fn knowing(id: ConversationId, seat: Seat) -> Self {
        let mut table = Self::default();
        table.learn(Learned::Seat(id, seat));
        table
    }

    /// Who sees inbox `inbox` and its conversations, and its organization.
    ///
    /// # Errors
    /// What must be learned first.
    pub fn inbox_readers(&self, inbox: InboxId) -> Result<(OrgId, Audience<'_>), Need> {
        let team = self.teams.get(&inbox).ok_or(Need::Team(inbox))?;
        Ok((
            team.org,
            inbox_audience(&team.members, self.admins(team.org)?, None),
        ))
    }

    /// The organization `event` belongs to, when known.
    fn org_of(&self, event: &Followed) -> Option<OrgId> {
        match event {
            Followed::Conversation { id, .. } => self.seats.get(id).map(|s| s.seat.org),
            Followed::Inbox(id, _) => self.teams.get(id).map(|t| t.org),
            Followed::Queue(id, _) => self.crews.get(id).map(|t| t.org),
            Followed::Directory(org, _) => Some(*org),
        }
    }

    /// What must be known before `event` is applied: the aggregate it belongs to, when it
    /// is shown and not its first event.
    fn own_need(&self, event: &Followed) -> Option<Need> {
        match *event {
            Followed::Conversation { id, event, item } => {
                let needs_seat = item || matches!(inbox_change(event), Some((None, _)));
                (needs_seat && !self.seats.contains_key(&id)).then_some(Need::Seat(id))
            }
            Followed::Inbox(id, event) => (!matches!(event, I::InboxCreated(_))
                && !self.teams.contains_key(&id))
            .then_some(Need::Team(id)),
            Followed::Queue(id, event) => (queue_shown(event)
                && !matches!(event, Q::QueueCreated(_))
                && !self.crews.contains_key(&id))
            .then_some(Need::Crew(id)),
            Followed::Directory(..) => None,
        }
    }

    fn learn(&mut self, learned: Learned) {
        // Never over what events have set: only the unknown is filled in.
        match learned {
            Learned::Seat(id, seat) => {
                let used = self.tick;
                self.seats.entry(id).or_insert(Kept {
                    seat,
                    born: false,
                    used,
                });
                self.trim();
            }
            Learned::Team(id, team) => {
                self.teams.entry(id).or_insert(team);
            }
            Learned::Line(org, number, line) => {
                self.lines
                    .entry(org)
                    .or_default()
                    .entry(number)
                    .or_insert(line);
            }
            Learned::Crew(id, crew) => {
                self.crews.entry(id).or_insert(crew);
            }
            Learned::Claim(queue, id, claimer) => {
                self.claims.entry((queue, id)).or_insert(claimer);
            }
            Learned::Admins(org, admins) => {
                self.admins.entry(org).or_insert(admins);
            }
        }
    }

    /// Forgets the idlest conversations (and their claims) once there are more than 1.5 ×
    /// the limit, keeping the limit's worth of the most recently used.
    fn trim(&mut self) {
        let limit = self.seat_limit.unwrap_or(SEAT_LIMIT);
        if self.seats.len() <= limit + limit / 2 {
            return;
        }
        let mut used: Vec<u64> = self.seats.values().map(|s| s.used).collect();
        let cut = used.len() - limit;
        let (_, oldest_kept, _) = used.select_nth_unstable(cut);
        let oldest_kept = *oldest_kept;
        self.seats.retain(|_, s| s.used >= oldest_kept);
        let seats = &self.seats;
        self.claims.retain(|(_, id), _| seats.contains_key(id));
    }

    /// Moves what is known by `event`, as the aggregates' `apply` does.
    fn apply(&mut self, event: &Followed) {
        self.tick += 1;
        match *event {
            Followed::Conversation { id, event, .. } => {
                if let C::ConversationStarted(e) = event {
                    let kept = Kept {
                        seat: Seat::started(e),
                        born: true,
                        used: self.tick,
                    };
                    self.seats.insert(id, kept);
                    self.trim();
                    return;
                }
                if let Some(kept) = self.seats.get_mut(&id) {
                    kept.used = self.tick;
                    kept.seat.apply(event);
                }
            }
            Followed::Inbox(id, event) => match event {
                I::InboxCreated(e) => {
                    self.teams.insert(
                        id,
                        Team {
                            org: e.org,
                            members: BTreeSet::new(),
                        },
                    );
                }
                I::InboxMemberAdded(e) => {
                    if let Some(t) = self.teams.get_mut(&id) {
                        t.members.insert(e.user);
                    }
                }
                I::InboxMemberRemoved(e) => {
                    if let Some(t) = self.teams.get_mut(&id) {
                        t.members.remove(&e.user);
                    }
                }
                I::InboxRenamed(_) => {}
            },
            Followed::Queue(id, event) => self.apply_queue(id, event),
            Followed::Directory(org, event) => self.apply_directory(org, event),
        }
    }

    fn apply_queue(&mut self, id: QueueId, event: &Q) {
        let claim = match event {
            Q::QueueCreated(e) => {
                self.queues_born.insert(id);
                self.crews.insert(
                    id,
                    Team {
                        org: e.org,
                        members: BTreeSet::new(),
                    },
                );
                return;
            }
            Q::QueueMemberAdded(e) => {
                if let Some(t) = self.crews.get_mut(&id) {
                    t.members.insert(e.user);
                }
                return;
            }
            Q::QueueMemberRemoved(e) => {
                if let Some(t) = self.crews.get_mut(&id) {
                    t.members.remove(&e.user);
                }
                return;
            }
            Q::InteractionQueued(e) => (e.conversation, None),
            Q::InteractionClaimed(e) => (e.conversation, Some(e.agent)),
            Q::InteractionReleased(e) => (e.conversation, None),
            // Decided only on a claimed interaction.
            Q::InteractionTransferred(e) => (e.conversation, Some(e.to)),
            Q::InteractionClosed(e) => (e.conversation, None),
            Q::QueuePolicyChanged(_)
            | Q::AgentLoggedIn(_)
            | Q::AgentLoggedOut(_)
            | Q::QueueActivityRecorded(_)
            | Q::QueueTimedOut(_) => return,
        };
        self.claims.insert((id, claim.0), claim.1);
    }

    fn apply_directory(&mut self, org: OrgId, event: &DirectoryEvent) {
        use DirectoryEvent as D;
        let admin = match event {
            D::OrganizationCreated(_) => {
                self.admins.insert(org, BTreeSet::new());
                return;
            }
            D::UserAdded(e) => Some((e.user, e.role)),
            D::RoleChanged(e) => Some((e.user, e.role)),
            _ => None,
        };
        if let Some((user, role)) = admin {
            if let Some(admins) = self.admins.get_mut(&org) {
                if role == Role::Admin {
                    admins.insert(user);
                } else {
                    admins.remove(&user);
                }
            }
            return;
        }
        if let D::NumberAdded(e) = event {
            self.lines.entry(org).or_default().insert(
                e.number.clone(),
                Line {
                    holders: BTreeSet::new(),
                    route: Some(e.route),
                },
            );
            return;
        }
        let (number, change): (&PhoneNumber, &dyn Fn(&mut Line)) = match event {
            D::NumberRouted(e) => (&e.number, &|l: &mut Line| l.route = Some(e.to)),
            D::NumberAssigned(e) => (&e.number, &|l: &mut Line| {
                l.holders.insert(e.user);
            }),
            D::NumberUnassigned(e) => (&e.number, &|l: &mut Line| {
                l.holders.remove(&e.user);
            }),
            _ => return,
        };
        if let Some(line) = self.lines.get_mut(&org).and_then(|l| l.get_mut(number)) {
            change(line);
        }
    }

    /// Where `event` (already applied) goes: `Ok(None)` when it is not shown, `Err` with
    /// what is missing to tell.
    ///
    /// # Errors
    /// What must be learned first.
    pub fn target(&self, event: &Followed) -> Result<Option<Target<'_>>, Need> {
        match *event {
            Followed::Conversation { id, event, item } => {
                if let Some((named, assignee)) = inbox_change(event) {
                    let inbox = match named {
                        Some(inbox) => inbox,
                        None => match &self.seats.get(&id).ok_or(Need::Seat(id))?.seat.shape {
                            domain::visibility::Shape::External {
                                inbox: Some(inbox), ..
                            } => *inbox,
                            _ => return Ok(None),
                        },
                    };
                    let (org, audience) = self.inbox_readers(inbox)?;
                    return Ok(Some(Target {
                        org,
                        audience,
                        subject: Subject::Inbox {
                            inbox,
                            conversation: Some(id),
                            assignee,
                        },
                    }));
                }
                if !item {
                    return Ok(None);
                }
                let (org, audience) = self.viewers(id)?;
                Ok(Some(Target {
                    org,
                    audience,
                    subject: Subject::Item,
                }))
            }
            Followed::Inbox(id, event) => {
                let team = self.teams.get(&id).ok_or(Need::Team(id))?;
                let removed = match event {
                    I::InboxMemberRemoved(e) => Some(e.user),
                    _ => None,
                };
                // The team is told of its inbox's changes; admins see its conversations
                // move (above), and the inbox's own changes through the REST API.
                Ok(Some(Target {
                    org: team.org,
                    audience: Audience::of(&team.members, removed),
                    subject: Subject::Inbox {
                        inbox: id,
                        conversation: None,
                        assignee: None,
                    },
                }))
            }
            Followed::Queue(id, event) => {
                if !queue_shown(event) {
                    return Ok(None);
                }
                let crew = self.crews.get(&id).ok_or(Need::Crew(id))?;
                let admins = self.admins(crew.org)?;
                let (conversation, agent) = queue_subjects(event);
                let removed = match event {
                    Q::QueueMemberRemoved(e) => Some(e.user),
                    _ => None,
                };
                Ok(Some(Target {
                    org: crew.org,
                    audience: queue_audience(&crew.members, admins, removed),
                    subject: Subject::Queue {
                        queue: id,
                        conversation,
                        agent,
                    },
                }))
            }
            Followed::Directory(..) => Ok(None),
        }
    }
}

/// For an event that moves a conversation in an inbox: the inbox it names (`None`: the
/// conversation's current one) and the assignee after it.
fn inbox_change(event: &C) -> Option<(Option<InboxId>, Option<UserId>)> {
    match event {
        C::ConversationAssigned(e) => Some((None, Some(e.to))),
        C::ConversationTransferred(e) => Some((None, Some(e.to))),
        C::ReturnedToInbox(_) | C::MarkedDone(_) | C::ReopenedByInboundText(_) => {
            Some((None, None))
        }
        C::InboxAttached(e) => Some((Some(e.inbox), None)),
        C::InboxDetached(e) => Some((Some(e.inbox), None)),
        _ => None,
    }
}

/// Every queue change is shown except activity (each follow-up text of a claimed
/// conversation: it changes no list; the conversation's own frames show the text).
fn queue_shown(event: &Q) -> bool {
    !matches!(event, Q::QueueActivityRecorded(_))
}

/// The conversation a queue event is about, and the agent: who claimed it, who it was
/// transferred to, who released or closed it (`None`: the queue's policy did), who logged
/// in or out, the member added or removed.
fn queue_subjects(event: &Q) -> (Option<ConversationId>, Option<UserId>) {
    match event {
        Q::QueueCreated(_) | Q::QueuePolicyChanged(_) => (None, None),
        Q::QueueMemberAdded(e) => (None, Some(e.user)),
        Q::QueueMemberRemoved(e) => (None, Some(e.user)),
        Q::AgentLoggedIn(e) => (None, Some(e.agent)),
        Q::AgentLoggedOut(e) => (None, Some(e.agent)),
        Q::InteractionQueued(e) => (Some(e.conversation), None),
        Q::InteractionClaimed(e) => (Some(e.conversation), Some(e.agent)),
        Q::InteractionReleased(e) => (Some(e.conversation), e.by),
        Q::InteractionTransferred(e) => (Some(e.conversation), Some(e.to)),
        Q::InteractionClosed(e) => (Some(e.conversation), e.by),
        Q::QueueActivityRecorded(e) => (Some(e.conversation), None),
        Q::QueueTimedOut(e) => (Some(e.conversation), None),
    }
}

/// Access to an [`Audiences`]: owned (a catch-up) or behind the hub's lock.
pub trait Table {
    fn with<R>(&mut self, f: impl FnOnce(&mut Audiences) -> R) -> R;
}

impl Table for Audiences {
    fn with<R>(&mut self, f: impl FnOnce(&mut Audiences) -> R) -> R {
        f(self)
    }
}

impl Table for &Mutex<Audiences> {
    fn with<R>(&mut self, f: impl FnOnce(&mut Audiences) -> R) -> R {
        f(&mut self.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Most lookups one question may need: the longest chain is a queue number's
/// conversation (seat → line → claim → admins → crew), and an event's own aggregate before it.
const MAX_LOOKUPS: usize = 6;

/// Looks `need` up and learns it: `Ok(false)` when what it names does not exist.
async fn learn_need(
    table: &mut impl Table,
    ws: &Workspace,
    need: Need,
) -> Result<bool, ActorError> {
    match resolve(ws, need).await? {
        Some(learned) => {
            table.with(|a| a.learn(learned));
            Ok(true)
        }
        None => Ok(false),
    }
}

/// [`learn_need`] for the stream hub, which delivers nothing when it fails.
async fn learn_or_log(table: &mut impl Table, ws: &Workspace, need: Need) -> bool {
    let what = need.clone();
    match learn_need(table, ws, need).await {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(error = %e, need = ?what, "visibility lookup failed; event not routed");
            false
        }
    }
}

/// Learns what `event` needs that is not known, applies it, and learns what telling its
/// audience needs. `false` when a lookup failed or, with `focus`, the event belongs to
/// another organization (nothing more is looked up for it): deliver nothing then.
pub async fn prepare(
    table: &mut impl Table,
    ws: &Workspace,
    event: &Followed<'_>,
    focus: Option<OrgId>,
) -> bool {
    if let Some(need) = table.with(|a| a.own_need(event)) {
        if !learn_or_log(table, ws, need).await {
            return false;
        }
    }
    table.with(|a| a.apply(event));
    for _ in 0..=MAX_LOOKUPS {
        let need = table.with(|a| {
            if focus.is_some_and(|f| a.org_of(event).is_some_and(|o| o != f)) {
                return Err(());
            }
            Ok(a.target(event).err())
        });
        match need {
            Err(()) => return false,
            Ok(None) => return true,
            Ok(Some(need)) => {
                if !learn_or_log(table, ws, need).await {
                    return false;
                }
            }
        }
    }
    false
}

/// Learns what `missing` says is missing until it says nothing is: `Ok(false)` when
/// something it names does not exist (or the chain is longer than any the rule makes).
///
/// # Errors
/// An actor could not be reached, after retries.
pub async fn learn(
    table: &mut impl Table,
    ws: &Workspace,
    missing: impl Fn(&Audiences) -> Option<Need>,
) -> Result<bool, ActorError> {
    for _ in 0..=MAX_LOOKUPS {
        match table.with(|a| missing(a)) {
            None => return Ok(true),
            Some(need) => {
                if !learn_need(table, ws, need).await? {
                    return Ok(false);
                }
            }
        }
    }
    Ok(false)
}

/// Learns what telling conversation `id`'s viewers needs: `Ok(false)` when the
/// conversation (or what it names) does not exist.
///
/// # Errors
/// An actor could not be reached, after retries.
pub async fn learn_viewers(
    table: &mut impl Table,
    ws: &Workspace,
    id: ConversationId,
) -> Result<bool, ActorError> {
    learn(table, ws, |a| a.viewers(id).err()).await
}

/// Attempts at an actor lookup before it is given up (busy or unreachable actors).
const LOOKUP_ATTEMPTS: u32 = 6;

/// An actor's answer, retried with backoff (10 ms, doubling) while it is busy or cannot
/// be reached.
async fn ask<T, F>(mut query: impl FnMut() -> F) -> Result<T, ActorError>
where
    F: Future<Output = Result<T, ActorError>>,
{
    let mut delay = Duration::from_millis(10);
    let mut attempt = 1;
    loop {
        match query().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt == LOOKUP_ATTEMPTS => return Err(e),
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
        }
    }
}

/// Looks `need` up in the actors' current state; `Ok(None)` if it does not exist.
async fn resolve(ws: &Workspace, need: Need) -> Result<Option<Learned>, ActorError> {
    Ok(match need {
        Need::Seat(id) => ask(|| ws.conversations.query(&id, |c: &Conversation, _| c.seat()))
            .await?
            .map(|seat| Learned::Seat(id, seat)),
        Need::Team(id) => ask(|| {
            ws.inboxes.query(&id, |i: &Inbox, _| {
                i.header().map(|h| Team {
                    org: h.org,
                    members: i.members().clone(),
                })
            })
        })
        .await?
        .map(|team| Learned::Team(id, team)),
        Need::Crew(id) => ask(|| {
            ws.queues.query(&id, |q: &Queue, _| {
                q.header().map(|h| Team {
                    org: h.org,
                    members: q.members().clone(),
                })
            })
        })
        .await?
        .map(|crew| Learned::Crew(id, crew)),
        Need::Line(org, number) => {
            let line = ask(|| {
                let asked = number.clone();
                ws.directories.query(&org, move |d: &Directory, _| {
                    d.number(&asked).map_or_else(Line::default, |n| Line {
                        holders: n.assigned_to.clone(),
                        route: Some(n.route),
                    })
                })
            })
            .await?;
            Some(Learned::Line(org, number, line))
        }
        Need::Admins(org) => {
            let admins = ask(|| {
                ws.directories.query(&org, |d: &Directory, _| {
                    d.users()
                        .filter(|u| u.role == Role::Admin)
                        .map(|u| u.id)
                        .collect::<BTreeSet<_>>()
                })
            })
            .await?;
            Some(Learned::Admins(org, admins))
        }
        Need::Claim(queue, id) => {
            let claimer = ask(|| {
                ws.queues
                    .query(&queue, move |q: &Queue, _| q.claimer_of(id))
            })
            .await?;
            Some(Learned::Claim(queue, id, claimer))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel_started(id: ConversationId, org: OrgId, member: UserId) -> ConversationEvent {
        let kind = domain::conversation::ConversationKind::Channel {
            name: "c".into(),
            members: [member].into(),
        };
        C::ConversationStarted(domain::conversation::ConversationStarted {
            id,
            org,
            kind,
            by: domain::Actor::System,
            at_ms: 0,
        })
    }

    fn followed(id: ConversationId, event: &ConversationEvent) -> Followed<'_> {
        Followed::Conversation {
            id,
            event,
            item: false,
        }
    }

    #[test]
    fn the_idlest_conversations_are_forgotten_beyond_the_limit() {
        let mut a = Audiences {
            seat_limit: Some(4),
            ..Audiences::default()
        };
        let org = OrgId::random();
        let user = UserId::random();
        let ids: Vec<ConversationId> = (0..6).map(|_| ConversationId::random()).collect();
        for id in &ids {
            a.apply(&followed(*id, &channel_started(*id, org, user)));
        }
        // 6 ≤ 1.5 × 4: nothing forgotten yet. The first is used again (a member joins).
        assert_eq!(a.seats.len(), 6);
        let joined = UserId::random();
        let join = C::ChannelMemberJoined(domain::conversation::ChannelMemberJoined {
            user: joined,
            at_ms: 0,
        });
        a.apply(&followed(ids[0], &join));
        // The seventh goes over: the four most recently used stay.
        let late = ConversationId::random();
        a.apply(&followed(late, &channel_started(late, org, user)));
        let kept: HashSet<ConversationId> = a.seats.keys().copied().collect();
        let expected: HashSet<ConversationId> = [ids[0], ids[4], ids[5], late].into();
        assert_eq!(kept, expected);
        // What is kept is exact; a forgotten one is needed again.
        let (_, viewers) = a.viewers(ids[0]).unwrap();
        assert!(viewers.contains(&joined) && viewers.contains(&user));
        assert_eq!(a.viewers(ids[1]).err(), Some(Need::Seat(ids[1])));
    }
}
