//! What other aggregates say about the caller and a conversation (the domain's
//! `ActorFacts`): whether they hold its business number, and whether they are on the team
//! of the inbox holding it (or, on a queue number, whether they claimed it). Looked up per request, so a change applies at once.

use domain::conversation::ActorFacts;
use domain::directory::Routing;
use domain::{Conversation, ConversationId, Directory, Inbox, OrgId, Queue, UserId};

use crate::app::AppState;
use crate::error::ApiError;

/// The facts for `user` on conversation `id` (defaults when it has no number or inbox).
///
/// # Errors
/// When an actor cannot be reached.
pub async fn facts_for(
    state: &AppState,
    org: OrgId,
    user: UserId,
    id: ConversationId,
) -> Result<ActorFacts, ApiError> {
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
    let holds_our_number = match our {
        Some(number) => holds_line(state, org, user, id, number).await?,
        None => false,
    };
    Ok(ActorFacts {
        holds_our_number,
        inbox_member,
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
