//! Every queue rule, accepted and rejected, and its timers.

use crate::command_meta::{CommandMeta, Role};
use crate::ids::{ConversationId, InboxId, OrgId, QueueId, UserId};
use crate::queue::*;
use crate::testkit::{number, Harness};

struct World {
    org: OrgId,
    h: Harness<Queue>,
    admin: UserId,
    a: UserId,
    b: UserId,
    outsider: UserId,
}

const WAIT: u64 = 60_000;
const IDLE: u64 = 300_000;

fn policy() -> QueuePolicy {
    QueuePolicy {
        wait_timeout_ms: Some(WAIT),
        on_wait_timeout: WaitTimeoutAction::Close,
        idle_timeout_ms: Some(IDLE),
        on_idle_timeout: IdleTimeoutAction::ReturnToQueue,
        max_pending_visible: None,
    }
}

impl World {
    fn new() -> Self {
        let mut w = Self {
            org: OrgId::random(),
            h: Harness::new(),
            admin: UserId::random(),
            a: UserId::random(),
            b: UserId::random(),
            outsider: UserId::random(),
        };
        let create = QueueCommand::CreateQueue {
            id: QueueId::random(),
            name: "Support".into(),
            number: number("+15550001000"),
            policy: policy(),
        };
        w.admin_does(create).unwrap();
        for u in [w.a, w.b] {
            w.admin_does(QueueCommand::AddMember { user: u }).unwrap();
        }
        w
    }

    fn admin_does(&mut self, c: QueueCommand) -> Result<Vec<QueueEvent>, QueueRejection> {
        let cmd = CommandMeta::user(self.org, self.admin, Role::Admin, 1).issue(c);
        self.h.handle(&cmd)
    }

    fn user_does(
        &mut self,
        u: UserId,
        at: u64,
        c: QueueCommand,
    ) -> Result<Vec<QueueEvent>, QueueRejection> {
        let cmd = CommandMeta::user(self.org, u, Role::Member, at).issue(c);
        self.h.handle(&cmd)
    }

    fn system_does(&mut self, at: u64, c: QueueCommand) -> Result<Vec<QueueEvent>, QueueRejection> {
        let cmd = CommandMeta::system(self.org, at).issue(c);
        self.h.handle(&cmd)
    }

    fn queued(&mut self, at: u64) -> ConversationId {
        let c = ConversationId::random();
        self.system_does(at, QueueCommand::Enqueue { conversation: c })
            .unwrap();
        c
    }

    fn logged_in(mut self) -> Self {
        for u in [self.a, self.b] {
            self.user_does(u, 1, QueueCommand::LogIn).unwrap();
        }
        self
    }
}

#[test]
fn only_admins_create_and_manage_queues() {
    let mut w = World::new();
    let again = w.admin_does(QueueCommand::CreateQueue {
        id: QueueId::random(),
        name: "x".into(),
        number: number("+15550001001"),
        policy: QueuePolicy::default(),
    });
    assert_eq!(again, Err(QueueRejection::QueueAlreadyCreated));
    let by_member = w.user_does(w.a, 2, QueueCommand::AddMember { user: w.outsider });
    assert_eq!(by_member, Err(QueueRejection::AdminOnly));
    assert!(w
        .admin_does(QueueCommand::AddMember { user: w.outsider })
        .is_ok());
    assert!(w.h.state.is_member(w.outsider));
    let other_org =
        CommandMeta::user(OrgId::random(), w.admin, Role::Admin, 1).issue(QueueCommand::LogIn);
    assert_eq!(
        w.h.handle(&other_org),
        Err(QueueRejection::WrongOrganization)
    );
}

#[test]
fn members_log_in_and_out_outsiders_cannot() {
    let mut w = World::new();
    assert_eq!(
        w.user_does(w.outsider, 1, QueueCommand::LogIn),
        Err(QueueRejection::NotAQueueMember)
    );
    assert_eq!(w.user_does(w.a, 1, QueueCommand::LogIn).unwrap().len(), 1);
    assert!(
        w.user_does(w.a, 2, QueueCommand::LogIn).unwrap().is_empty(),
        "idempotent"
    );
    assert!(w.h.state.is_logged_in(w.a));
    assert_eq!(w.user_does(w.a, 3, QueueCommand::LogOut).unwrap().len(), 1);
    assert!(!w.h.state.is_logged_in(w.a));
}

#[test]
fn texts_wait_oldest_first_and_only_logged_in_members_see_them() {
    let mut w = World::new();
    let first = w.queued(10);
    let second = w.queued(20);
    assert!(
        w.h.state.pending_for(w.a).is_empty(),
        "not logged in: nothing offered"
    );
    let w = &mut w.logged_in();
    let pending: Vec<_> =
        w.h.state
            .pending_for(w.a)
            .into_iter()
            .map(|(c, _)| c)
            .collect();
    assert_eq!(pending, vec![first, second]);
    assert!(w.h.state.pending_for(w.outsider).is_empty());
    let by_user = w.user_does(
        w.a,
        30,
        QueueCommand::Enqueue {
            conversation: first,
        },
    );
    assert_eq!(by_user, Err(QueueRejection::SystemOnly));
    assert!(w
        .system_does(
            31,
            QueueCommand::Enqueue {
                conversation: first
            }
        )
        .unwrap()
        .is_empty());
}

#[test]
fn first_claim_wins_and_follow_ups_go_to_the_claimer() {
    let mut w = World::new().logged_in();
    let c = w.queued(10);
    assert_eq!(
        w.user_does(w.a, 20, QueueCommand::Claim { conversation: c })
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        w.user_does(w.b, 21, QueueCommand::Claim { conversation: c }),
        Err(QueueRejection::AlreadyClaimed { by: w.a })
    );
    assert_eq!(w.h.state.claimer_of(c), Some(w.a));
    // A follow-up text: activity for the claimer, not a new waiting interaction.
    let e = w
        .system_does(30, QueueCommand::Enqueue { conversation: c })
        .unwrap();
    assert!(matches!(e[..], [QueueEvent::QueueActivityRecorded(_)]));
    assert!(w.h.state.waiting(c).is_none());
    assert_eq!(w.h.state.active_for(w.a).len(), 1);
    // Claiming needs a login and a waiting interaction.
    let other = w.queued(40);
    w.user_does(w.b, 41, QueueCommand::LogOut).unwrap();
    assert_eq!(
        w.user_does(
            w.b,
            42,
            QueueCommand::Claim {
                conversation: other
            }
        ),
        Err(QueueRejection::NotLoggedIn)
    );
    let never = ConversationId::random();
    assert_eq!(
        w.user_does(
            w.a,
            43,
            QueueCommand::Claim {
                conversation: never
            }
        ),
        Err(QueueRejection::NotWaiting {
            conversation: never
        })
    );
}

#[test]
fn release_makes_it_claimable_again() {
    let mut w = World::new().logged_in();
    let c = w.queued(10);
    w.user_does(w.a, 20, QueueCommand::Claim { conversation: c })
        .unwrap();
    assert_eq!(
        w.user_does(w.b, 21, QueueCommand::Release { conversation: c }),
        Err(QueueRejection::NotYourInteraction)
    );
    w.user_does(w.a, 22, QueueCommand::Release { conversation: c })
        .unwrap();
    assert!(w.h.state.waiting(c).is_some());
    assert!(w
        .user_does(w.b, 23, QueueCommand::Claim { conversation: c })
        .is_ok());
    assert_eq!(w.h.state.claimer_of(c), Some(w.b));
}

#[test]
fn transfer_only_to_a_logged_in_member() {
    let mut w = World::new().logged_in();
    let c = w.queued(10);
    w.user_does(w.a, 20, QueueCommand::Claim { conversation: c })
        .unwrap();
    w.user_does(w.b, 21, QueueCommand::LogOut).unwrap();
    assert_eq!(
        w.user_does(
            w.a,
            22,
            QueueCommand::Transfer {
                conversation: c,
                to: w.b
            }
        ),
        Err(QueueRejection::TargetNotLoggedIn { user: w.b })
    );
    assert_eq!(
        w.user_does(
            w.a,
            22,
            QueueCommand::Transfer {
                conversation: c,
                to: w.outsider
            }
        ),
        Err(QueueRejection::TargetNotLoggedIn { user: w.outsider })
    );
    w.user_does(w.b, 23, QueueCommand::LogIn).unwrap();
    w.user_does(
        w.a,
        24,
        QueueCommand::Transfer {
            conversation: c,
            to: w.b,
        },
    )
    .unwrap();
    assert_eq!(w.h.state.claimer_of(c), Some(w.b));
    // An admin may move anyone's interaction.
    w.admin_does(QueueCommand::Transfer {
        conversation: c,
        to: w.a,
    })
    .unwrap();
    assert_eq!(w.h.state.claimer_of(c), Some(w.a));
}

#[test]
fn close_by_the_claimer_and_a_new_text_starts_a_new_interaction() {
    let mut w = World::new().logged_in();
    let c = w.queued(10);
    w.user_does(w.a, 20, QueueCommand::Claim { conversation: c })
        .unwrap();
    assert_eq!(
        w.user_does(w.b, 21, QueueCommand::Close { conversation: c }),
        Err(QueueRejection::NotYourInteraction)
    );
    w.user_does(w.a, 22, QueueCommand::Close { conversation: c })
        .unwrap();
    assert!(w.h.state.claimer_of(c).is_none() && w.h.state.waiting(c).is_none());
    let e = w
        .system_does(30, QueueCommand::Enqueue { conversation: c })
        .unwrap();
    let QueueEvent::InteractionQueued(q) = &e[0] else {
        panic!("{e:?}")
    };
    assert_eq!(q.interaction, 1, "a new interaction, same conversation");
    // A waiting one can be closed only by an admin.
    assert_eq!(
        w.user_does(w.a, 31, QueueCommand::Close { conversation: c }),
        Err(QueueRejection::AdminOnly)
    );
    assert!(w
        .admin_does(QueueCommand::Close { conversation: c })
        .is_ok());
}

#[test]
fn wait_timeout_fires_once_and_only_when_due() {
    let mut w = World::new().logged_in();
    let c = w.queued(1_000);
    assert_eq!(w.h.state.pending_timers(), vec![(c, 1_000 + WAIT)]);
    let fire = |d| QueueCommand::FireTimer {
        conversation: c,
        deadline_ms: d,
    };
    assert_eq!(
        w.system_does(1_000 + WAIT - 1, fire(1_000 + WAIT)),
        Err(QueueRejection::TimerNotDue)
    );
    assert_eq!(
        w.user_does(w.a, 1_000 + WAIT, fire(1_000 + WAIT)),
        Err(QueueRejection::SystemOnly)
    );
    let e = w.system_does(1_000 + WAIT, fire(1_000 + WAIT)).unwrap();
    assert!(
        matches!(&e[..], [QueueEvent::QueueTimedOut(t), QueueEvent::InteractionClosed(x)]
        if t.kind == TimeoutKind::Wait && x.reason == CloseReason::WaitTimeout)
    );
    assert!(
        w.system_does(1_000 + WAIT + 5, fire(1_000 + WAIT))
            .unwrap()
            .is_empty(),
        "fires once"
    );
    assert!(w.h.state.pending_timers().is_empty());
}

#[test]
fn a_timer_whose_interaction_moved_on_does_nothing() {
    let mut w = World::new().logged_in();
    let c = w.queued(1_000);
    w.user_does(w.a, 2_000, QueueCommand::Claim { conversation: c })
        .unwrap();
    let stale = QueueCommand::FireTimer {
        conversation: c,
        deadline_ms: 1_000 + WAIT,
    };
    assert!(w.system_does(1_000 + WAIT, stale).unwrap().is_empty());
    assert_eq!(w.h.state.claimer_of(c), Some(w.a));
}

#[test]
fn idle_timeout_returns_to_queue_or_closes_by_policy() {
    let mut w = World::new().logged_in();
    let c = w.queued(1_000);
    w.user_does(w.a, 2_000, QueueCommand::Claim { conversation: c })
        .unwrap();
    // Activity moves the deadline; the old one is stale.
    w.user_does(w.a, 3_000, QueueCommand::RecordActivity { conversation: c })
        .unwrap();
    assert!(w
        .system_does(
            2_000 + IDLE,
            QueueCommand::FireTimer {
                conversation: c,
                deadline_ms: 2_000 + IDLE
            }
        )
        .unwrap()
        .is_empty());
    let e = w
        .system_does(
            3_000 + IDLE,
            QueueCommand::FireTimer {
                conversation: c,
                deadline_ms: 3_000 + IDLE,
            },
        )
        .unwrap();
    assert!(matches!(
        &e[..],
        [
            QueueEvent::QueueTimedOut(_),
            QueueEvent::InteractionReleased(_)
        ]
    ));
    assert!(w.h.state.waiting(c).is_some(), "back in the queue");
    w.admin_does(QueueCommand::SetPolicy {
        policy: QueuePolicy {
            on_idle_timeout: IdleTimeoutAction::Close,
            ..policy()
        },
    })
    .unwrap();
    w.user_does(w.b, 400_000, QueueCommand::Claim { conversation: c })
        .unwrap();
    let e = w
        .system_does(
            400_000 + IDLE,
            QueueCommand::FireTimer {
                conversation: c,
                deadline_ms: 400_000 + IDLE,
            },
        )
        .unwrap();
    assert!(
        matches!(&e[..], [QueueEvent::QueueTimedOut(_), QueueEvent::InteractionClosed(x)] if x.reason == CloseReason::IdleTimeout)
    );
}

#[test]
fn overflow_and_auto_reply_are_recorded_on_wait_timeout() {
    let mut w = World::new();
    let inbox = InboxId::random();
    w.admin_does(QueueCommand::SetPolicy {
        policy: QueuePolicy {
            on_wait_timeout: WaitTimeoutAction::OverflowToInbox(inbox),
            ..policy()
        },
    })
    .unwrap();
    let c = w.queued(0);
    let e = w
        .system_does(
            WAIT,
            QueueCommand::FireTimer {
                conversation: c,
                deadline_ms: WAIT,
            },
        )
        .unwrap();
    assert!(
        matches!(&e[..], [QueueEvent::QueueTimedOut(t), QueueEvent::InteractionClosed(x)]
        if t.wait_action == Some(WaitTimeoutAction::OverflowToInbox(inbox)) && x.reason == CloseReason::Overflowed)
    );
    w.admin_does(QueueCommand::SetPolicy {
        policy: QueuePolicy {
            on_wait_timeout: WaitTimeoutAction::CloseWithReply {
                text: "We'll text you back".into(),
            },
            ..policy()
        },
    })
    .unwrap();
    let c = w.queued(100);
    let e = w
        .system_does(
            100 + WAIT,
            QueueCommand::FireTimer {
                conversation: c,
                deadline_ms: 100 + WAIT,
            },
        )
        .unwrap();
    assert!(
        matches!(&e[..], [_, QueueEvent::InteractionClosed(x)] if x.auto_reply.as_deref() == Some("We'll text you back"))
    );
}

#[test]
fn the_policy_can_limit_how_many_waiting_an_agent_sees() {
    let mut w = World::new().logged_in();
    for t in 0..5 {
        w.queued(t);
    }
    w.admin_does(QueueCommand::SetPolicy {
        policy: QueuePolicy {
            max_pending_visible: Some(2),
            ..policy()
        },
    })
    .unwrap();
    assert_eq!(w.h.state.pending_for(w.a).len(), 2);
}

#[test]
fn someone_off_the_queue_learns_nothing_of_its_interactions() {
    let mut w = World::new().logged_in();
    let waiting = w.queued(10);
    let claimed = w.queued(11);
    w.user_does(
        w.a,
        20,
        QueueCommand::Claim {
            conversation: claimed,
        },
    )
    .unwrap();
    let never = ConversationId::random();
    // Waiting, claimed by someone else, or unknown: the same answer for an outsider.
    for conversation in [waiting, claimed, never] {
        for command in [
            QueueCommand::Release { conversation },
            QueueCommand::Close { conversation },
        ] {
            assert_eq!(
                w.user_does(w.outsider, 30, command),
                Err(QueueRejection::NotAQueueMember)
            );
        }
    }
    // An agent of the queue is told what is wrong.
    assert_eq!(
        w.user_does(
            w.b,
            31,
            QueueCommand::Release {
                conversation: waiting
            }
        ),
        Err(QueueRejection::NotClaimed {
            conversation: waiting
        })
    );
}
