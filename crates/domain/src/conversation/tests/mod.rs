//! Conversation tests: one file per concept, from a small organization's point of view.

mod calls;
mod channel;
mod delivery;
mod inbound;
mod inbox;
mod posting;
mod properties;
mod read_receipts;
mod start;
mod system_messages;
mod window;

use std::collections::BTreeSet;

use crate::command_meta::{CommandMeta, Role};
use crate::conversation::{
    ActorFacts, Conversation, ConversationCommand, ConversationEvent, ConversationRejection,
    SenderNumber,
};
use crate::ids::{ConversationId, InboxId, MessageId, OrgId, UserId};
use crate::phone_number::PhoneNumber;
use crate::testkit::{number, Harness};

type Outcome = Result<Vec<ConversationEvent>, ConversationRejection>;

/// An organization with an admin and three members, a business line held by Alice, a
/// customer, and one conversation under test.
pub struct World {
    pub org: OrgId,
    pub admin: UserId,
    pub alice: UserId,
    pub bob: UserId,
    pub carol: UserId,
    pub our: PhoneNumber,
    pub their: PhoneNumber,
    pub inbox: InboxId,
    pub conversation: Harness<Conversation>,
    pub now: u64,
}

/// The actor holds the conversation's line (External).
pub const HOLDER: ActorFacts = ActorFacts {
    holds_our_number: true,
    inbox_member: false,
    admin: false,
    queue_reader: false,
};
/// The actor is on the inbox's team.
pub const TEAM: ActorFacts = ActorFacts {
    holds_our_number: false,
    inbox_member: true,
    admin: false,
    queue_reader: false,
};
pub const NOBODY: ActorFacts = ActorFacts {
    holds_our_number: false,
    inbox_member: false,
    admin: false,
    queue_reader: false,
};

impl World {
    pub fn new() -> Self {
        World {
            org: OrgId::random(),
            admin: UserId::random(),
            alice: UserId::random(),
            bob: UserId::random(),
            carol: UserId::random(),
            our: number("+16135550100"),
            their: number("+16135550142"),
            inbox: InboxId::random(),
            conversation: Harness::new(),
            now: 1_000,
        }
    }

    pub fn state(&self) -> &Conversation {
        &self.conversation.state
    }

    pub fn users(&self) -> BTreeSet<UserId> {
        [self.admin, self.alice, self.bob, self.carol].into()
    }

    pub fn role_of(&self, user: UserId) -> Role {
        if user == self.admin {
            Role::Admin
        } else {
            Role::Member
        }
    }

    pub fn by(&mut self, user: UserId, command: ConversationCommand) -> Outcome {
        self.now += 1;
        let meta = CommandMeta::user(self.org, user, self.role_of(user), self.now);
        self.conversation.handle(&meta.issue(command))
    }

    pub fn system(&mut self, command: ConversationCommand) -> Outcome {
        self.now += 1;
        let meta = CommandMeta::system(self.org, self.now);
        self.conversation.handle(&meta.issue(command))
    }

    /// The From fact for the conversation's line.
    pub fn sender(&self, sms_registered: bool, assigned_to_sender: bool) -> SenderNumber {
        SenderNumber {
            number: self.our.clone(),
            sms_registered,
            assigned_to_sender,
        }
    }

    pub fn external_id(&self) -> ConversationId {
        ConversationId::external(self.org, &self.our, &self.their)
    }

    /// An External conversation on Alice's line, opened by an inbound text.
    pub fn external() -> Self {
        let mut world = World::new();
        world
            .system(ConversationCommand::StartExternal {
                id: world.external_id(),
                our: world.our.clone(),
                their: world.their.clone(),
                inbox: None,
                facts: NOBODY,
            })
            .unwrap();
        world
    }

    /// An External conversation on an inbox number, Unassigned.
    pub fn in_inbox() -> Self {
        let mut world = World::new();
        world
            .system(ConversationCommand::StartExternal {
                id: world.external_id(),
                our: world.our.clone(),
                their: world.their.clone(),
                inbox: Some(world.inbox),
                facts: NOBODY,
            })
            .unwrap();
        world
    }

    /// Alice and Bob's Direct conversation.
    pub fn direct() -> Self {
        let mut world = World::new();
        let (alice, bob) = (world.alice, world.bob);
        let command = ConversationCommand::StartDirect {
            id: ConversationId::direct(world.org, alice, bob),
            with: bob,
            known_users: world.users(),
        };
        world.by(alice, command).unwrap();
        world
    }

    /// A channel Alice started with Bob.
    pub fn channel() -> Self {
        let mut world = World::new();
        let (alice, bob) = (world.alice, world.bob);
        let command = ConversationCommand::StartChannel {
            id: ConversationId::random(),
            name: "general".into(),
            members: [bob].into(),
            known_users: world.users(),
        };
        world.by(alice, command).unwrap();
        world
    }

    /// A group Alice started with Bob, the customer and a vendor, from her line.
    pub fn group() -> Self {
        let mut world = World::new();
        let (alice, bob) = (world.alice, world.bob);
        let command = ConversationCommand::StartGroup {
            id: ConversationId::random(),
            users: [bob].into(),
            externals: [world.their.clone(), world.vendor()].into(),
            from: world.sender(true, true),
            known_users: world.users(),
        };
        world.by(alice, command).unwrap();
        world
    }

    pub fn vendor(&self) -> PhoneNumber {
        number("+14155550123")
    }

    /// A text from the customer.
    pub fn inbound(&mut self, text: &str) -> Outcome {
        self.system(ConversationCommand::RecordInbound {
            message_id: MessageId::random(),
            from: self.their.clone(),
            to: self.our.clone(),
            text: text.into(),
            media: vec![],
            routed_to_inbox: self.state().inbox().map(|a| a.inbox),
        })
    }
}

/// A text-only post.
pub fn post(text: &str, from: Option<SenderNumber>, facts: ActorFacts) -> ConversationCommand {
    ConversationCommand::PostMessage {
        message_id: MessageId::random(),
        text: text.into(),
        attachments: vec![],
        from,
        facts,
        opted_out: BTreeSet::new(),
    }
}

/// The event types of `events`, to compare sequences at a glance.
pub fn types(events: &[ConversationEvent]) -> Vec<&'static str> {
    use crate::aggregate::DomainEvent;
    events.iter().map(DomainEvent::event_type).collect()
}
