//! Who sees each event, kept by the events themselves.
//!
//! [`Audiences`] holds what routing needs of each aggregate it has met: a conversation's
//! members, or its business number and inbox (a *seat*); an inbox's team; a business
//! number's holders and route (a *line*); a queue's members (a *crew*); who has claimed
//! each conversation of a queue; and each organization's admins. Every event it is shown
//! moves that state as the domain's `apply` would, in log order, so once something is
//! known its answer is the one as of the last event shown — not the actors' state now,
//! which may be ahead.
//!
//! Only what is not known yet is looked up in the actors' current state (at the first
//! event that needs an aggregate not born while being followed; a queue followed since its
//! creation needs no lookup of its claims); see the hub's module docs for what that
//! leaves. The lookups are retried while an actor is busy or unreachable.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use actors::ActorError;
use domain::conversation::ConversationEvent as C;
use domain::directory::Routing;
use domain::inbox::InboxEvent as I;
use domain::queue::QueueEvent as Q;
use domain::{
    Conversation, ConversationId, Directory, DirectoryEvent, Inbox, InboxId, OrgId, PhoneNumber,
    Queue, QueueId, Role, UserId,
};
use eventlog::RecordedEvent;

use super::{Decoded, Outbound};
use crate::app::AppState;

/// Who an event goes to: a set of users, maybe more sets (the organization's admins, for
/// queue changes and inbox conversations; a queue's agents, who read its closed
/// conversations), and maybe one more user (a member just removed, or the agent who
/// claimed a conversation on a queue number).
#[derive(Debug, Clone, Copy)]
pub struct Audience<'a> {
    users: &'a BTreeSet<UserId>,
    also: &'a BTreeSet<UserId>,
    more: &'a BTreeSet<UserId>,
    extra: Option<UserId>,
}

static NOBODY: BTreeSet<UserId> = BTreeSet::new();

impl<'a> Audience<'a> {
    fn of(users: &'a BTreeSet<UserId>, extra: Option<UserId>) -> Self {
        Self {
            users,
            also: &NOBODY,
            more: &NOBODY,
            extra,
        }
    }

    /// `users` and the users of `also`.
    fn with(users: &'a BTreeSet<UserId>, also: &'a BTreeSet<UserId>) -> Self {
        Self {
            also,
            ..Self::of(users, None)
        }
    }

    pub fn contains(&self, user: &UserId) -> bool {
        self.users.contains(user)
            || self.also.contains(user)
            || self.more.contains(user)
            || self.extra.as_ref() == Some(user)
    }

    /// At most this many users.
    pub fn len(&self) -> usize {
        self.users.len() + self.also.len() + self.more.len() + usize::from(self.extra.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each user once.
    pub fn iter(&self) -> impl Iterator<Item = UserId> + 'a {
        let (users, also, more) = (self.users, self.also, self.more);
        users
            .iter()
            .copied()
            .chain(also.iter().copied().filter(move |u| !users.contains(u)))
            .chain(
                more.iter()
                    .copied()
                    .filter(move |u| !users.contains(u) && !also.contains(u)),
            )
            .chain(
                self.extra
                    .filter(move |u| !users.contains(u) && !also.contains(u) && !more.contains(u)),
            )
    }
}

/// What the frame of a routed event says besides its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Show {
    /// The conversation's timeline item (the frame built when decoding).
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
pub(crate) struct Target<'a> {
    pub org: OrgId,
    pub audience: Audience<'a>,
    pub show: Show,
}

/// How a conversation is seen, as `Conversation::viewers` decides it.
#[derive(Debug, Clone)]
struct Seat {
    org: OrgId,
    shape: Shape,
    /// Followed since its `ConversationStarted`: every claim of it on a queue followed
    /// since its creation has been seen too (else an unknown claim is looked up).
    born: bool,
    /// [`Audiences::tick`] of the last event that touched it (the idlest are forgotten).
    used: u64,
}

#[derive(Debug, Clone)]
enum Shape {
    /// Direct, Channel, Group: the members it records.
    Members(BTreeSet<UserId>),
    /// External: the inbox's team when it is in one, else whoever holds `our`.
    External {
        our: PhoneNumber,
        inbox: Option<InboxId>,
    },
}

impl Seat {
    fn new(
        org: OrgId,
        kind: &domain::conversation::ConversationKind,
        inbox: Option<InboxId>,
        born: bool,
    ) -> Self {
        use domain::conversation::ConversationKind as K;
        let shape = match kind {
            K::External { our, .. } => Shape::External {
                our: our.clone(),
                inbox,
            },
            other => Shape::Members(other.internal_members().unwrap_or_default()),
        };
        Self {
            org,
            shape,
            born,
            used: 0,
        }
    }
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

/// A business number: who the directory assigns it to, and where it routes (`None`: the
/// directory does not know the number).
#[derive(Debug, Clone, Default)]
struct Line {
    holders: BTreeSet<UserId>,
    route: Option<Routing>,
}

/// Something routing needs that is not known yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Need {
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

/// The routing state; see the module docs. The hub keeps one, shared by all its
/// connections; a `since=` catch-up keeps its own while it reads storage.
#[derive(Debug, Default)]
pub struct Audiences {
    seats: HashMap<ConversationId, Seat>,
    teams: HashMap<InboxId, Team>,
    lines: HashMap<OrgId, HashMap<PhoneNumber, Line>>,
    crews: HashMap<QueueId, Team>,
    /// Who has claimed each queue conversation (`None`: waiting, closed or released).
    claims: HashMap<(QueueId, ConversationId), Option<UserId>>,
    /// Queues followed since their creation: a conversation with no claim event seen is
    /// claimed by nobody.
    queues_born: HashSet<QueueId>,
    /// Each organization's admins (they see every queue's waiting list).
    admins: HashMap<OrgId, BTreeSet<UserId>>,
    /// Events applied (the clock of [`Seat::used`]).
    tick: u64,
    /// [`SEAT_LIMIT`], but for tests.
    seat_limit: Option<usize>,
}

/// One event as [`Audiences::route`] routes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Routed {
    pub position: u64,
    pub org: OrgId,
    /// Who gets it.
    pub users: BTreeSet<UserId>,
    /// The frame (without the per-recipient `unread`).
    pub frame: serde_json::Value,
}

impl Audiences {
    /// Routes one event as the hub does: learns what it needs and does not know from the
    /// actors' current state, applies the event, and answers who gets which frame (`None`:
    /// nobody, or the event is not shown). Feed it every event of the categories
    /// `conversation`, `inbox`, `queue` and `directory`, in log order.
    pub async fn route(&mut self, state: &AppState, record: &RecordedEvent) -> Option<Routed> {
        let event = Decoded::of(record, state.sealer())?;
        if !prepare(self, state, &event, None).await {
            return None;
        }
        let target = self.target(&event).ok()??;
        let frame = match event.frame(record, &target.show)? {
            Outbound::Event(e) => serde_json::from_str(&format!("{}}}", e.frame_head)).ok()?,
            Outbound::Change(c) => serde_json::from_str(&c.json).ok()?,
            Outbound::Typing(_) => return None,
        };
        Some(Routed {
            position: record.position,
            org: target.org,
            users: target.audience.iter().collect(),
            frame,
        })
    }

    /// Who sees conversation `id` now (as of the last event applied), or what is missing.
    pub(crate) fn viewers(&self, id: ConversationId) -> Result<(OrgId, Audience<'_>), Need> {
        let seat = self.seats.get(&id).ok_or(Need::Seat(id))?;
        match &seat.shape {
            Shape::Members(members) => Ok((seat.org, Audience::of(members, None))),
            Shape::External {
                inbox: Some(inbox), ..
            } => {
                // The team, and the organization's admins (who may take any over).
                let team = self.teams.get(inbox).ok_or(Need::Team(*inbox))?;
                let admins = self.admins.get(&seat.org).ok_or(Need::Admins(seat.org))?;
                Ok((seat.org, Audience::with(&team.members, admins)))
            }
            Shape::External { our, inbox: None } => {
                let line = self
                    .lines
                    .get(&seat.org)
                    .and_then(|l| l.get(our))
                    .ok_or_else(|| Need::Line(seat.org, our.clone()))?;
                // On a queue number, the agent who claimed the conversation holds it; the
                // organization's admins read it, and the queue's agents while nobody
                // holds it (waiting, or closed: the History).
                let Some(Routing::Queue(queue)) = line.route else {
                    return Ok((seat.org, Audience::of(&line.holders, None)));
                };
                let claimer = match self.claims.get(&(queue, id)) {
                    Some(claimer) => *claimer,
                    None if seat.born && self.queues_born.contains(&queue) => None,
                    None => return Err(Need::Claim(queue, id)),
                };
                let admins = self.admins.get(&seat.org).ok_or(Need::Admins(seat.org))?;
                let readers = match claimer {
                    Some(_) => &NOBODY,
                    None => &self.crews.get(&queue).ok_or(Need::Crew(queue))?.members,
                };
                Ok((
                    seat.org,
                    Audience {
                        users: &line.holders,
                        also: readers,
                        more: admins,
                        extra: claimer,
                    },
                ))
            }
        }
    }

    /// The organization `event` belongs to, when known.
    fn org_of(&self, event: &Decoded) -> Option<OrgId> {
        match event {
            Decoded::Conversation { id, .. } => self.seats.get(id).map(|s| s.org),
            Decoded::Inbox(id, _) => self.teams.get(id).map(|t| t.org),
            Decoded::Queue(id, _) => self.crews.get(id).map(|t| t.org),
            Decoded::Directory(org, _) => Some(*org),
        }
    }

    /// What must be known before `event` is applied: the aggregate it belongs to, when it
    /// is shown and not its first event.
    fn own_need(&self, event: &Decoded) -> Option<Need> {
        match event {
            Decoded::Conversation { id, event, item } => {
                let needs_seat = item.is_some() || matches!(inbox_change(event), Some((None, _)));
                (needs_seat && !self.seats.contains_key(id)).then_some(Need::Seat(*id))
            }
            Decoded::Inbox(id, event) => (!matches!(event, I::InboxCreated(_))
                && !self.teams.contains_key(id))
            .then_some(Need::Team(*id)),
            Decoded::Queue(id, event) => (queue_shown(event)
                && !matches!(event, Q::QueueCreated(_))
                && !self.crews.contains_key(id))
            .then_some(Need::Crew(*id)),
            Decoded::Directory(..) => None,
        }
    }

    fn learn(&mut self, learned: Learned) {
        // Never over what events have set: only the unknown is filled in.
        match learned {
            Learned::Seat(id, mut seat) => {
                seat.used = self.tick;
                self.seats.entry(id).or_insert(seat);
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
    fn apply(&mut self, event: &Decoded) {
        self.tick += 1;
        match event {
            Decoded::Conversation { id, event, .. } => {
                if let C::ConversationStarted(e) = event {
                    let mut seat = Seat::new(e.org, &e.kind, None, true);
                    seat.used = self.tick;
                    self.seats.insert(*id, seat);
                    self.trim();
                    return;
                }
                let Some(seat) = self.seats.get_mut(id) else {
                    return;
                };
                seat.used = self.tick;
                match (event, &mut seat.shape) {
                    (C::ChannelMemberJoined(e), Shape::Members(m)) => {
                        m.insert(e.user);
                    }
                    (C::ChannelMembersAdded(e), Shape::Members(m)) => {
                        m.extend(e.users.iter().copied());
                    }
                    (C::ChannelMemberLeft(e), Shape::Members(m)) => {
                        m.remove(&e.user);
                    }
                    (C::InboxAttached(e), Shape::External { inbox, .. }) => {
                        *inbox = Some(e.inbox);
                    }
                    (C::InboxDetached(_), Shape::External { inbox, .. }) => *inbox = None,
                    _ => {}
                }
            }
            Decoded::Inbox(id, event) => match event {
                I::InboxCreated(e) => {
                    self.teams.insert(
                        *id,
                        Team {
                            org: e.org,
                            members: BTreeSet::new(),
                        },
                    );
                }
                I::InboxMemberAdded(e) => {
                    if let Some(t) = self.teams.get_mut(id) {
                        t.members.insert(e.user);
                    }
                }
                I::InboxMemberRemoved(e) => {
                    if let Some(t) = self.teams.get_mut(id) {
                        t.members.remove(&e.user);
                    }
                }
                I::InboxRenamed(_) => {}
            },
            Decoded::Queue(id, event) => self.apply_queue(*id, event),
            Decoded::Directory(org, event) => self.apply_directory(*org, event),
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
    pub(crate) fn target(&self, event: &Decoded) -> Result<Option<Target<'_>>, Need> {
        match event {
            Decoded::Conversation { id, event, item } => {
                if let Some((named, assignee)) = inbox_change(event) {
                    let inbox = match named {
                        Some(inbox) => inbox,
                        None => match &self.seats.get(id).ok_or(Need::Seat(*id))?.shape {
                            Shape::External {
                                inbox: Some(inbox), ..
                            } => *inbox,
                            _ => return Ok(None),
                        },
                    };
                    let team = self.teams.get(&inbox).ok_or(Need::Team(inbox))?;
                    let admins = self.admins.get(&team.org).ok_or(Need::Admins(team.org))?;
                    return Ok(Some(Target {
                        org: team.org,
                        audience: Audience::with(&team.members, admins),
                        show: Show::Inbox {
                            inbox,
                            conversation: Some(*id),
                            assignee,
                        },
                    }));
                }
                if item.is_none() {
                    return Ok(None);
                }
                let (org, audience) = self.viewers(*id)?;
                Ok(Some(Target {
                    org,
                    audience,
                    show: Show::Item,
                }))
            }
            Decoded::Inbox(id, event) => {
                let team = self.teams.get(id).ok_or(Need::Team(*id))?;
                let removed = match event {
                    I::InboxMemberRemoved(e) => Some(e.user),
                    _ => None,
                };
                Ok(Some(Target {
                    org: team.org,
                    audience: Audience::of(&team.members, removed),
                    show: Show::Inbox {
                        inbox: *id,
                        conversation: None,
                        assignee: None,
                    },
                }))
            }
            Decoded::Queue(id, event) => {
                if !queue_shown(event) {
                    return Ok(None);
                }
                let crew = self.crews.get(id).ok_or(Need::Crew(*id))?;
                let admins = self.admins.get(&crew.org).ok_or(Need::Admins(crew.org))?;
                let (conversation, agent) = queue_subjects(event);
                let removed = match event {
                    Q::QueueMemberRemoved(e) => Some(e.user),
                    _ => None,
                };
                Ok(Some(Target {
                    org: crew.org,
                    audience: Audience {
                        extra: removed,
                        ..Audience::with(&crew.members, admins)
                    },
                    show: Show::Queue {
                        queue: *id,
                        conversation,
                        agent,
                    },
                }))
            }
            Decoded::Directory(..) => Ok(None),
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
pub(crate) trait Table {
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

/// Longest chain of lookups one event may need (seat → line → claim).
const MAX_LOOKUPS: usize = 4;

/// Learns what `event` needs that is not known, applies it, and learns what telling its
/// audience needs. `false` when a lookup failed or, with `focus`, the event belongs to
/// another organization (nothing more is looked up for it): deliver nothing then.
pub(crate) async fn prepare(
    table: &mut impl Table,
    state: &AppState,
    event: &Decoded,
    focus: Option<OrgId>,
) -> bool {
    if let Some(need) = table.with(|a| a.own_need(event)) {
        match resolve(state, need).await {
            Some(learned) => table.with(|a| a.learn(learned)),
            None => return false,
        }
    }
    table.with(|a| a.apply(event));
    for _ in 0..MAX_LOOKUPS {
        let need = table.with(|a| {
            if focus.is_some_and(|f| a.org_of(event).is_some_and(|o| o != f)) {
                return Err(());
            }
            Ok(a.target(event).err())
        });
        match need {
            Err(()) => return false,
            Ok(None) => return true,
            Ok(Some(need)) => match resolve(state, need).await {
                Some(learned) => table.with(|a| a.learn(learned)),
                None => return false,
            },
        }
    }
    false
}

/// Learns what telling conversation `id`'s viewers needs. `false` when a lookup failed.
pub(crate) async fn learn_viewers(
    table: &mut impl Table,
    state: &AppState,
    id: ConversationId,
) -> bool {
    for _ in 0..MAX_LOOKUPS {
        match table.with(|a| a.viewers(id).err()) {
            None => return true,
            Some(need) => match resolve(state, need).await {
                Some(learned) => table.with(|a| a.learn(learned)),
                None => return false,
            },
        }
    }
    false
}

/// Attempts at an actor lookup before the event is given up (busy or unreachable actors).
const LOOKUP_ATTEMPTS: u32 = 6;

/// An actor's answer, retried with backoff (10 ms, doubling) while it is busy or cannot
/// be reached.
async fn ask<T, F>(what: &Need, mut query: impl FnMut() -> F) -> Option<T>
where
    F: Future<Output = Result<T, ActorError>>,
{
    let mut delay = Duration::from_millis(10);
    for attempt in 1..=LOOKUP_ATTEMPTS {
        match query().await {
            Ok(v) => return Some(v),
            Err(e) if attempt == LOOKUP_ATTEMPTS => {
                tracing::error!(error = %e, need = ?what, "stream hub lookup failed; event not routed");
            }
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    None
}

/// Looks `need` up in the actors' current state; `None` if it does not exist or cannot be
/// reached.
async fn resolve(state: &AppState, need: Need) -> Option<Learned> {
    let ws = &state.ws;
    match need.clone() {
        Need::Seat(id) => {
            let seat = ask(&need, || {
                ws.conversations.query(&id, |c: &Conversation, _| {
                    c.header()
                        .map(|h| Seat::new(h.org, &h.kind, c.inbox().map(|a| a.inbox), false))
                })
            })
            .await??;
            Some(Learned::Seat(id, seat))
        }
        Need::Team(id) => {
            let team = ask(&need, || {
                ws.inboxes.query(&id, |i: &Inbox, _| {
                    i.header().map(|h| Team {
                        org: h.org,
                        members: i.members().clone(),
                    })
                })
            })
            .await??;
            Some(Learned::Team(id, team))
        }
        Need::Crew(id) => {
            let crew = ask(&need, || {
                ws.queues.query(&id, |q: &Queue, _| {
                    q.header().map(|h| Team {
                        org: h.org,
                        members: q.members().clone(),
                    })
                })
            })
            .await??;
            Some(Learned::Crew(id, crew))
        }
        Need::Line(org, number) => {
            let asked = number.clone();
            let line = ask(&need, || {
                let asked = asked.clone();
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
            let admins = ask(&need, || {
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
            let claimer = ask(&need, || {
                ws.queues
                    .query(&queue, move |q: &Queue, _| q.claimer_of(id))
            })
            .await?;
            Some(Learned::Claim(queue, id, claimer))
        }
    }
}

/// The snake_case form of an event type name (`ConversationAssigned` →
/// `conversation_assigned`), as change frames name it.
pub(crate) fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel_started(id: ConversationId, org: OrgId, member: UserId) -> Decoded {
        let kind = domain::conversation::ConversationKind::Channel {
            name: "c".into(),
            members: [member].into(),
        };
        Decoded::Conversation {
            id,
            event: C::ConversationStarted(domain::conversation::ConversationStarted {
                id,
                org,
                kind,
                by: domain::Actor::System,
                at_ms: 0,
            }),
            item: None,
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
            a.apply(&channel_started(*id, org, user));
        }
        // 6 ≤ 1.5 × 4: nothing forgotten yet. The first is used again (a member joins).
        assert_eq!(a.seats.len(), 6);
        let joined = UserId::random();
        a.apply(&Decoded::Conversation {
            id: ids[0],
            event: C::ChannelMemberJoined(domain::conversation::ChannelMemberJoined {
                user: joined,
                at_ms: 0,
            }),
            item: None,
        });
        // The seventh goes over: the four most recently used stay.
        let late = ConversationId::random();
        a.apply(&channel_started(late, org, user));
        let kept: HashSet<ConversationId> = a.seats.keys().copied().collect();
        let expected: HashSet<ConversationId> = [ids[0], ids[4], ids[5], late].into();
        assert_eq!(kept, expected);
        // What is kept is exact; a forgotten one is needed again.
        let (_, viewers) = a.viewers(ids[0]).unwrap();
        assert!(viewers.contains(&joined) && viewers.contains(&user));
        assert_eq!(a.viewers(ids[1]).err(), Some(Need::Seat(ids[1])));
    }

    #[test]
    fn event_names_become_snake_case() {
        assert_eq!(snake_case("ConversationAssigned"), "conversation_assigned");
        assert_eq!(snake_case("AgentLoggedIn"), "agent_logged_in");
        assert_eq!(snake_case("InboxMemberRemoved"), "inbox_member_removed");
    }

    #[test]
    fn an_audience_counts_its_extra_user_once() {
        let a = UserId::from(uuid::Uuid::from_u128(1));
        let b = UserId::from(uuid::Uuid::from_u128(2));
        let users: BTreeSet<UserId> = [a].into();
        let both = Audience::of(&users, Some(b));
        assert_eq!(both.iter().collect::<Vec<_>>(), vec![a, b]);
        assert!(both.contains(&b));
        let same = Audience::of(&users, Some(a));
        assert_eq!(same.iter().count(), 1);
        let admins: BTreeSet<UserId> = [a, b].into();
        let with_admins = Audience {
            users: &users,
            also: &admins,
            more: &NOBODY,
            extra: Some(b),
        };
        assert_eq!(with_admins.iter().collect::<Vec<_>>(), vec![a, b]);
    }
}
