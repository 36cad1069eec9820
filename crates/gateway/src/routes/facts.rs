//! What other aggregates say about the caller and a conversation (the domain's
//! `ActorFacts`): whether they hold its business number, and whether they are on the team
//! of the inbox holding it (or, on a queue number, whether they claimed it). Looked up per request, so a change applies at once.

use domain::conversation::ActorFacts;
use domain::directory::Routing;
use domain::{Conversation, ConversationId, Directory, Inbox, OrgId, Queue, UserId};

use crate::app::AppState;
use crate::error::ApiError;

/// The facts for the caller on conversation `id` (defaults when it has no number or
/// inbox; `admin` from their role).
///
/// # Errors
/// When an actor cannot be reached.
pub async fn facts_for(
    state: &AppState,
    caller: &crate::auth::Authenticated,
    id: ConversationId,
) -> Result<ActorFacts, ApiError> {
    let (org, user) = (caller.org, caller.user);
    let (inbox, our) = state
        .ws
        .conversations
        .query(&id, |c: &Conversation, _| {
            (
                c.inbox().map(|a| a.inbox),
                c.kind().and_then(|k| k.our_number().cloned()),
            )
        })
        .await?;
    let inbox_member = match inbox {
        Some(inbox) => {
            state
                .ws
                .inboxes
                .query(&inbox, move |i: &Inbox, _| i.is_member(user))
                .await?
        }
        None => false,
    };
    let admin = caller.role == domain::Role::Admin;
    let (holds_our_number, queue_reader) = match our {
        Some(number) => {
            let route = state
                .ws
                .directories
                .query(&org, {
                    let number = number.clone();
                    move |d: &Directory, _| d.number(&number).map(|n| n.route)
                })
                .await?;
            // A queue's conversation: its agents read it while nobody holds it (waiting,
            // or closed: the History), admins always.
            let reader = match route {
                Some(Routing::Queue(queue)) => {
                    admin
                        || state
                            .ws
                            .queues
                            .query(&queue, move |q: &Queue, _| {
                                q.is_member(user) && q.claimer_of(id).is_none()
                            })
                            .await?
                }
                _ => false,
            };
            (holds_line(state, org, user, id, number).await?, reader)
        }
        None => (false, false),
    };
    Ok(ActorFacts {
        holds_our_number,
        inbox_member,
        admin,
        queue_reader,
    })
}

/// Whether `user` holds business number `number` for conversation `id`: the directory
/// assigns them the number, or the number routes to an SMS queue in which they have
/// claimed this conversation (the agent on it reads and replies from the queue's number).
///
/// # Errors
/// When an actor cannot be reached.
pub async fn holds_line(
    state: &AppState,
    org: OrgId,
    user: UserId,
    id: ConversationId,
    number: domain::PhoneNumber,
) -> Result<bool, ApiError> {
    let line = state
        .ws
        .directories
        .query(&org, move |d: &Directory, _| {
            d.number(&number).map(|n| (n.is_assigned_to(user), n.route))
        })
        .await?;
    match line {
        Some((true, _)) => Ok(true),
        Some((false, Routing::Queue(queue))) => {
            Ok(queue_claimer(state, queue, id).await? == Some(user))
        }
        _ => Ok(false),
    }
}

/// The agent who has claimed conversation `id` in `queue`, if any.
///
/// # Errors
/// When the queue actor cannot be reached.
pub async fn queue_claimer(
    state: &AppState,
    queue: domain::QueueId,
    id: ConversationId,
) -> Result<Option<UserId>, ApiError> {
    Ok(state
        .ws
        .queues
        .query(&queue, move |q: &Queue, _| q.claimer_of(id))
        .await?)
}

/// Whether the caller may see and work `inbox`'s conversations: on its team, or an admin
/// of the organization holding it.
///
/// # Errors
/// When the inbox actor cannot be reached.
pub async fn may_work_inbox(
    state: &AppState,
    caller: &crate::auth::Authenticated,
    inbox: domain::InboxId,
) -> Result<bool, ApiError> {
    let (org, user, admin) = (caller.org, caller.user, caller.role == domain::Role::Admin);
    Ok(state
        .ws
        .inboxes
        .query(&inbox, move |i: &Inbox, _| {
            i.header().is_some_and(|h| h.org == org) && (admin || i.is_member(user))
        })
        .await?)
}

/// Whether `user` is on inbox `inbox`'s team.
///
/// # Errors
/// When the inbox actor cannot be reached.
pub async fn is_inbox_member(
    state: &AppState,
    inbox: domain::InboxId,
    user: UserId,
) -> Result<bool, ApiError> {
    Ok(state
        .ws
        .inboxes
        .query(&inbox, move |i: &Inbox, _| i.is_member(user))
        .await?)
}
