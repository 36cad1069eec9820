//! Who may see what: the one rule for conversations, inboxes and queues.
//!
//! A conversation records part of the answer itself (its [`Seat`]: the members of a
//! Direct, Channel or Group conversation, or an External conversation's business number
//! and inbox). The rest belongs to other aggregates — an inbox's team, the directory's
//! admins and number holders, a queue's agents and who claimed what — and arrives through
//! [`Roles`]. [`Seat::audience`] combines them into the [`Audience`]: exactly the users
//! who see the conversation. Everything that decides visibility asks it:
//!
//! - the HTTP checks resolve the roles of one conversation and test one user
//!   ([`Audience::contains`]), and give the conversation's commands the same answer as
//!   [`ActorFacts`] ([`Seat::facts`]; a property test pins that the conversation's own
//!   check agrees);
//! - the stream hub keeps the roles as of the events it has routed and fans each event out
//!   to [`Audience::iter`];
//! - search lists the inboxes a user sees with [`inbox_audience`].
//!
//! Inbox and queue changes go to [`inbox_audience`] and [`queue_audience`].

use std::collections::BTreeSet;

use crate::conversation::{ActorFacts, ConversationEvent, ConversationKind, ConversationStarted};
use crate::directory::Routing;
use crate::ids::{ConversationId, InboxId, OrgId, QueueId, UserId};
use crate::phone_number::PhoneNumber;

/// Who an event goes to, or who sees a conversation: a set of users, maybe more sets (the
/// organization's admins; a queue's agents, who read its unclaimed conversations), and
/// maybe one more user (a member just removed, or the agent who claimed a conversation on
/// a queue number). Borrowed from whoever holds the sets.
#[derive(Debug, Clone, Copy)]
pub struct Audience<'a> {
    users: &'a BTreeSet<UserId>,
    also: &'a BTreeSet<UserId>,
    more: &'a BTreeSet<UserId>,
    extra: Option<UserId>,
}

static NOBODY: BTreeSet<UserId> = BTreeSet::new();

impl<'a> Audience<'a> {
    /// `users`, and `extra`.
    pub fn of(users: &'a BTreeSet<UserId>, extra: Option<UserId>) -> Self {
        Self {
            users,
            also: &NOBODY,
            more: &NOBODY,
            extra,
        }
    }

    /// Nobody.
    pub fn nobody() -> Self {
        Self::of(&NOBODY, None)
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

/// Who sees an inbox and its changes: its team and the organization's admins (who see
/// every inbox conversation and may take any over), and `removed`, a member just taken
/// off the team (told of it once).
pub fn inbox_audience<'a>(
    team: &'a BTreeSet<UserId>,
    admins: &'a BTreeSet<UserId>,
    removed: Option<UserId>,
) -> Audience<'a> {
    Audience {
        extra: removed,
        ..Audience::with(team, admins)
    }
}

/// Who sees a queue and its changes: its agents and the organization's admins, and
/// `removed`, an agent just taken off it.
pub fn queue_audience<'a>(
    crew: &'a BTreeSet<UserId>,
    admins: &'a BTreeSet<UserId>,
    removed: Option<UserId>,
) -> Audience<'a> {
    inbox_audience(crew, admins, removed)
}

/// A business number as the directory has it: who it is assigned to, and where it routes
/// (`None`: the directory does not know the number).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Line {
    pub holders: BTreeSet<UserId>,
    pub route: Option<Routing>,
}

/// What other aggregates say that a conversation's audience depends on. `Missing` is
/// whatever the implementation answers when it does not know yet (the stream hub: what to
/// look up).
pub trait Roles {
    type Missing;
    /// An inbox's team.
    fn team(&self, inbox: InboxId) -> Result<&BTreeSet<UserId>, Self::Missing>;
    /// The organization's admins.
    fn admins(&self, org: OrgId) -> Result<&BTreeSet<UserId>, Self::Missing>;
    /// The organization's business number `number`.
    fn line(&self, org: OrgId, number: &PhoneNumber) -> Result<&Line, Self::Missing>;
    /// Who has claimed `conversation` on `queue` (`None`: waiting, closed or released).
    fn claimer(
        &self,
        queue: QueueId,
        conversation: ConversationId,
    ) -> Result<Option<UserId>, Self::Missing>;
    /// A queue's agents.
    fn crew(&self, queue: QueueId) -> Result<&BTreeSet<UserId>, Self::Missing>;
}

impl crate::Conversation {
    /// Whether `user` is in this conversation's audience, when its seat needs nothing from
    /// [`Roles`] (Direct, Channel, Group: their members) — decided without copying the
    /// seat, for the request path; `None` for an External conversation or one not started.
    /// The same answer as [`Seat::audience`] (the property test below pins it).
    pub fn audience_without_roles(&self, user: UserId) -> Option<bool> {
        let kind = &self.header()?.kind;
        if matches!(kind, ConversationKind::External { .. }) {
            return None;
        }
        Some(kind.has_member(user))
    }
}

/// A conversation's own part of who sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    pub org: OrgId,
    pub shape: Shape,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// Direct, Channel, Group: the members it records.
    Members(BTreeSet<UserId>),
    /// External: the inbox's team when it is in one, else whoever holds `our`.
    External {
        our: PhoneNumber,
        inbox: Option<InboxId>,
    },
}

impl Seat {
    pub fn new(org: OrgId, kind: &ConversationKind, inbox: Option<InboxId>) -> Self {
        let shape = match kind {
            ConversationKind::External { our, .. } => Shape::External {
                our: our.clone(),
                inbox,
            },
            other => Shape::Members(other.internal_members().unwrap_or_default()),
        };
        Self { org, shape }
    }

    /// The seat of the conversation `started` starts.
    pub fn started(started: &ConversationStarted) -> Self {
        Self::new(started.org, &started.kind, None)
    }

    /// Moves the seat by one later event of its conversation, as the conversation's
    /// `apply` moves what [`crate::Conversation::seat`] reads.
    pub fn apply(&mut self, event: &ConversationEvent) {
        use ConversationEvent as C;
        match (event, &mut self.shape) {
            (C::ChannelMemberJoined(e), Shape::Members(m)) => {
                m.insert(e.user);
            }
            (C::ChannelMembersAdded(e), Shape::Members(m)) => {
                m.extend(e.users.iter().copied());
            }
            (C::ChannelMemberLeft(e), Shape::Members(m)) => {
                m.remove(&e.user);
            }
            (C::InboxAttached(e), Shape::External { inbox, .. }) => *inbox = Some(e.inbox),
            (C::InboxDetached(_), Shape::External { inbox, .. }) => *inbox = None,
            _ => {}
        }
    }

    /// Whether the audience needs nothing from [`Roles`] (the conversation records it).
    pub fn is_self_contained(&self) -> bool {
        matches!(self.shape, Shape::Members(_))
    }

    /// Who sees conversation `id` (this seat's) — the rule:
    /// - Direct, Channel, Group: their members;
    /// - External in an inbox: the inbox's team and the organization's admins;
    /// - External outside inboxes: whoever holds its business number; when the number
    ///   routes to an SMS queue, also the agent who claimed it, the organization's admins,
    ///   and the queue's agents while nobody holds it (waiting, or closed: the History).
    ///
    /// # Errors
    /// What `roles` does not know yet.
    pub fn audience<'a, R: Roles>(
        &'a self,
        id: ConversationId,
        roles: &'a R,
    ) -> Result<Audience<'a>, R::Missing> {
        match &self.shape {
            Shape::Members(members) => Ok(Audience::of(members, None)),
            Shape::External {
                inbox: Some(inbox), ..
            } => Ok(inbox_audience(
                roles.team(*inbox)?,
                roles.admins(self.org)?,
                None,
            )),
            Shape::External { our, inbox: None } => {
                let line = roles.line(self.org, our)?;
                let Some(Routing::Queue(queue)) = line.route else {
                    return Ok(Audience::of(&line.holders, None));
                };
                let claimer = roles.claimer(queue, id)?;
                let admins = roles.admins(self.org)?;
                let readers = match claimer {
                    Some(_) => &NOBODY,
                    None => roles.crew(queue)?,
                };
                Ok(Audience {
                    users: &line.holders,
                    also: readers,
                    more: admins,
                    extra: claimer,
                })
            }
        }
    }

    /// What the conversation's commands need to know of `user`, from the same roles as
    /// [`Self::audience`]: `Conversation::can_view(user, &facts)` holds exactly when the
    /// audience contains `user`. A seat that needs no roles gives the defaults, and
    /// `admin` is asked only where the rule uses it (inbox and queue conversations).
    ///
    /// # Errors
    /// What `roles` does not know yet.
    pub fn facts<R: Roles>(
        &self,
        user: UserId,
        id: ConversationId,
        roles: &R,
    ) -> Result<ActorFacts, R::Missing> {
        let Shape::External { our, inbox } = &self.shape else {
            return Ok(ActorFacts::default());
        };
        if let Some(inbox) = inbox {
            return Ok(ActorFacts {
                inbox_member: roles.team(*inbox)?.contains(&user),
                admin: roles.admins(self.org)?.contains(&user),
                ..ActorFacts::default()
            });
        }
        let line = roles.line(self.org, our)?;
        let Some(Routing::Queue(queue)) = line.route else {
            return Ok(ActorFacts {
                holds_our_number: line.holders.contains(&user),
                ..ActorFacts::default()
            });
        };
        let claimer = roles.claimer(queue, id)?;
        let admin = roles.admins(self.org)?.contains(&user);
        Ok(ActorFacts {
            holds_our_number: line.holders.contains(&user) || claimer == Some(user),
            inbox_member: false,
            admin,
            queue_reader: admin || (claimer.is_none() && roles.crew(queue)?.contains(&user)),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::aggregate::Aggregate;
    use crate::command_meta::Actor;
    use crate::conversation::{Conversation, InboxAttached};

    /// Roles known in full.
    #[derive(Debug, Default)]
    struct Known {
        teams: HashMap<InboxId, BTreeSet<UserId>>,
        admins: BTreeSet<UserId>,
        line: Line,
        claimer: Option<UserId>,
        crew: BTreeSet<UserId>,
    }

    impl Roles for Known {
        type Missing = ();
        fn team(&self, inbox: InboxId) -> Result<&BTreeSet<UserId>, ()> {
            self.teams.get(&inbox).ok_or(())
        }
        fn admins(&self, _: OrgId) -> Result<&BTreeSet<UserId>, ()> {
            Ok(&self.admins)
        }
        fn line(&self, _: OrgId, _: &PhoneNumber) -> Result<&Line, ()> {
            Ok(&self.line)
        }
        fn claimer(&self, _: QueueId, _: ConversationId) -> Result<Option<UserId>, ()> {
            Ok(self.claimer)
        }
        fn crew(&self, _: QueueId) -> Result<&BTreeSet<UserId>, ()> {
            Ok(&self.crew)
        }
    }

    fn user(i: u8) -> UserId {
        UserId::from(uuid::Uuid::from_u128(u128::from(i) + 1))
    }

    /// A subset of the five users 0..5.
    fn users() -> impl Strategy<Value = BTreeSet<UserId>> {
        proptest::collection::btree_set(0u8..5, 0..4)
            .prop_map(|s| s.into_iter().map(user).collect())
    }

    proptest! {
        /// The conversation's own check, given the facts the roles give, admits exactly
        /// the audience the same roles give: one rule, whichever side asks.
        #[test]
        fn the_conversation_admits_exactly_its_audience(
            members in users(),
            external in any::<bool>(),
            in_inbox in any::<bool>(),
            team in users(),
            admins in users(),
            holders in users(),
            route in 0u8..3,
            claimer in proptest::option::of(0u8..5),
            crew in users(),
        ) {
            let org = OrgId::random();
            let our = PhoneNumber::parse("+16135550100").map_err(|e| TestCaseError::fail(e.to_string()))?;
            let (inbox, queue) = (InboxId::random(), QueueId::random());
            let kind = if external {
                ConversationKind::External {
                    our: our.clone(),
                    their: PhoneNumber::parse("+16135550142").map_err(|e| TestCaseError::fail(e.to_string()))?,
                }
            } else {
                ConversationKind::Channel { name: "c".into(), members: members.clone() }
            };
            let id = ConversationId::random();
            let started = ConversationStarted { id, org, kind, by: Actor::System, at_ms: 0 };
            let mut conversation = Conversation::default();
            conversation.apply(&ConversationEvent::ConversationStarted(started.clone()));
            let mut seat = Seat::started(&started);
            if external && in_inbox {
                let attached = ConversationEvent::InboxAttached(InboxAttached { inbox, at_ms: 0 });
                conversation.apply(&attached);
                seat.apply(&attached);
            }
            prop_assert_eq!(conversation.seat(), Some(seat.clone()));
            let roles = Known {
                teams: [(inbox, team)].into(),
                admins,
                line: Line {
                    holders,
                    route: match route {
                        0 => None,
                        1 => Some(Routing::User(user(0))),
                        _ => Some(Routing::Queue(queue)),
                    },
                },
                claimer: claimer.map(user),
                crew,
            };
            let audience = seat.audience(id, &roles).map_err(|()| TestCaseError::fail("unknown"))?;
            for u in (0..6).map(user) {
                let facts = seat.facts(u, id, &roles).map_err(|()| TestCaseError::fail("unknown"))?;
                prop_assert_eq!(conversation.can_view(u, &facts), audience.contains(&u), "user {:?}", u);
                let without = conversation.audience_without_roles(u);
                prop_assert_eq!(without, (!external).then(|| audience.contains(&u)));
            }
        }
    }

    #[test]
    fn an_audience_counts_its_extra_user_once() {
        let (a, b) = (user(0), user(1));
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
