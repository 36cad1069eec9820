//! What other aggregates say about the caller and a conversation (the domain's
//! `ActorFacts`): whether they hold its business number, and whether they are on the team
//! of the inbox holding it. Looked up per request, so a change applies at once.

use domain::conversation::ActorFacts;
use domain::{Conversation, ConversationId, Directory, Inbox, OrgId, UserId};

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
        Some(number) => {
            state
                .ws
                .directories
                .query(&org, move |d: &Directory, _| {
                    d.number(&number).is_some_and(|n| n.is_assigned_to(user))
                })
                .await?
        }
        None => false,
    };
    Ok(ActorFacts {
        holds_our_number,
        inbox_member,
    })
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
