//! System messages: lifecycle steps recorded in the timeline by the system only.

use super::World;
use crate::conversation::{ConversationCommand, ConversationRejection, SystemNote};
use crate::ids::QueueId;
use crate::queue::TimeoutKind;

fn note() -> ConversationCommand {
    ConversationCommand::RecordSystemMessage {
        note: SystemNote::TimedOut {
            queue: QueueId::random(),
            kind: TimeoutKind::Wait,
        },
    }
}

#[test]
fn the_system_records_a_lifecycle_step_without_counting_a_message() {
    let mut w = World::external();
    let before = w.state().last_seq();
    let events = w.system(note()).unwrap();
    assert_eq!(super::types(&events), vec!["SystemMessageRecorded"]);
    assert_eq!(
        w.state().last_seq(),
        before,
        "not a message: no seq, no unread"
    );
}

#[test]
fn users_cannot_record_system_messages() {
    let mut w = World::external();
    let alice = w.alice;
    assert_eq!(w.by(alice, note()), Err(ConversationRejection::SystemOnly));
}

#[test]
fn a_system_message_needs_a_started_conversation() {
    let mut w = World::new();
    assert_eq!(w.system(note()), Err(ConversationRejection::NotStarted));
}

#[test]
fn the_system_hands_an_external_conversation_to_an_inbox_unassigned() {
    use crate::conversation::InboxStatus;
    use crate::ids::InboxId;
    let mut w = World::external();
    let inbox = InboxId::random();
    let events = w
        .system(ConversationCommand::AttachToInbox { inbox })
        .unwrap();
    assert_eq!(super::types(&events), vec!["InboxAttached"]);
    assert_eq!(
        w.state().inbox().map(|a| (a.inbox, a.status)),
        Some((inbox, InboxStatus::Unassigned))
    );
    assert!(
        w.system(ConversationCommand::AttachToInbox { inbox })
            .unwrap()
            .is_empty(),
        "idempotent"
    );
    let alice = w.alice;
    assert_eq!(
        w.by(alice, ConversationCommand::AttachToInbox { inbox }),
        Err(ConversationRejection::SystemOnly)
    );
    let mut channel = World::channel();
    assert_eq!(
        channel.system(ConversationCommand::AttachToInbox { inbox }),
        Err(ConversationRejection::NotExternal)
    );
}
