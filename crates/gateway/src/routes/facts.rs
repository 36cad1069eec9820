//! What the HTTP checks ask of the one visibility rule (`domain::visibility`), with the
//! roles it needs looked up in the actors' current state per request (so a change applies
//! at once) by `workers::visibility`, the same code that keeps the stream hub's routing.
//! Also the few other facts about the caller that commands need (whether they hold a
//! business number to send from, whether a transfer's target is on the team).

use domain::conversation::ActorFacts;
use domain::directory::Routing;
use domain::visibility::Seat;
use domain::{ConversationId, Directory, Inbox, OrgId, Queue, QueueId, UserId};
use workers::visibility::{learn, Audiences};

use crate::app::AppState;
use crate::error::ApiError;

/// The facts for `user` on conversation `id`, whose seat (read with its organization
/// checked) is `seat`, when the rule lets them see it; `None` when it does not (or what
/// the seat names no longer exists).
///
/// # Errors
/// When an actor cannot be reached.
pub async fn facts_of(
    state: &AppState,
    user: UserId,
    id: ConversationId,
    seat: Seat,
) -> Result<Option<ActorFacts>, ApiError> {
    let mut table = Audiences::knowing(id, seat);
    let known = learn(&mut table, &state.ws, |a| match a.viewers(id) {
        Err(need) => Some(need),
        Ok(_) => a.facts(id, user).err(),
    })
    .await?;
    if !known {
        return Ok(None);
    }
    let sees = table
        .viewers(id)
        .is_ok_and(|(_, audience)| audience.contains(&user));
    Ok(sees.then(|| table.facts(id, user).ok()).flatten())
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

/// Whether the caller may see and work `inbox`'s conversations: the rule's inbox
/// audience (its team, and the organization's admins), of the caller's organization.
///
/// # Errors
/// When an actor cannot be reached.
pub async fn may_work_inbox(
    state: &AppState,
    caller: &crate::auth::Authenticated,
    inbox: domain::InboxId,
) -> Result<bool, ApiError> {
    let mut table = Audiences::default();
    let known = learn(&mut table, &state.ws, |a| a.inbox_readers(inbox).err()).await?;
    Ok(known
        && table
            .sees_inbox(caller.org, inbox, caller.user)
            .unwrap_or(false))
}

/// Whether the caller sees queue `queue` (its waiting list, its changes): the rule's queue
/// audience (its agents, and the organization's admins), of the caller's organization.
///
/// # Errors
/// When an actor cannot be reached.
pub async fn sees_queue(
    state: &AppState,
    caller: &crate::auth::Authenticated,
    queue: QueueId,
) -> Result<bool, ApiError> {
    let mut table = Audiences::default();
    let org = caller.org;
    let known = learn(&mut table, &state.ws, |a| {
        a.sees_queue(org, queue, caller.user).err()
    })
    .await?;
    Ok(known && table.sees_queue(org, queue, caller.user).unwrap_or(false))
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
