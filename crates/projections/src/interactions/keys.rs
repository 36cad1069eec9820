//! Binary keys of the interactions read model.
//!
//! A conversation is listed under one or more *audience keys*; a viewer's list merges the
//! keys they hold. `sorted` entries are `audience ‖ !position ‖ conversation`, so a prefix
//! scan yields the most recent activity first and the position doubles as a cursor.
//!
//! Memberships (direct, channel, group) are not audience keys: a message would move one
//! sorted key per member. They are `members` entries `user ‖ conversation`, written only
//! when someone joins or leaves, and a user's list sorts them by each conversation's
//! `last` position (`conversation → position`, one write per conversation per batch)
//! when it is read.

use domain::{ConversationId, InboxId, OrgId, PhoneNumber, UserId};
use serde::{Deserialize, Serialize};

/// Where a conversation is listed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Audience {
    /// A user's own sorted entries: the queue conversations they hold (their direct,
    /// channel and group memberships are `members` entries, merged in when read).
    User(UserId),
    /// External conversations on a business number outside any inbox: whoever holds the
    /// number sees them.
    Number(OrgId, PhoneNumber),
    /// An inbox's conversations in one status.
    Inbox(InboxId, InboxBucket),
    /// An inbox's conversations assigned to one user ("Assigned to Me").
    InboxAssignee(InboxId, UserId),
    /// Every channel of an organization, members or not: the list anyone in it browses
    /// to find channels to join.
    Channels(OrgId),
}

/// The status buckets of an inbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum InboxBucket {
    Unassigned,
    Assigned,
    Done,
}

impl InboxBucket {
    fn byte(self) -> u8 {
        match self {
            InboxBucket::Unassigned => 0,
            InboxBucket::Assigned => 1,
            InboxBucket::Done => 2,
        }
    }
}

impl Audience {
    /// The key prefix of this audience's entries (prefix-free across audiences).
    pub fn prefix(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(48);
        match self {
            Audience::User(u) => {
                k.push(b'U');
                k.extend_from_slice(u.as_uuid().as_bytes());
            }
            Audience::Number(org, n) => {
                k.push(b'N');
                k.extend_from_slice(org.as_uuid().as_bytes());
                k.extend_from_slice(n.as_str().as_bytes());
                k.push(0);
            }
            Audience::Inbox(i, b) => {
                k.push(b'I');
                k.extend_from_slice(i.as_uuid().as_bytes());
                k.push(b.byte());
            }
            Audience::InboxAssignee(i, u) => {
                k.push(b'A');
                k.extend_from_slice(i.as_uuid().as_bytes());
                k.extend_from_slice(u.as_uuid().as_bytes());
            }
            Audience::Channels(org) => {
                k.push(b'C');
                k.extend_from_slice(org.as_uuid().as_bytes());
            }
        }
        k
    }
}

/// `prefix ‖ !position ‖ conversation`.
pub fn sorted_key(prefix: &[u8], position: u64, conv: &ConversationId) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 24);
    k.extend_from_slice(prefix);
    k.extend_from_slice(&(!position).to_be_bytes());
    k.extend_from_slice(conv.as_uuid().as_bytes());
    k
}

/// Splits the suffix of a sorted key back into (position, conversation).
pub fn parse_sorted_suffix(suffix: &[u8]) -> Option<(u64, ConversationId)> {
    let pos: [u8; 8] = suffix.get(..8)?.try_into().ok()?;
    let id: [u8; 16] = suffix.get(8..24)?.try_into().ok()?;
    (suffix.len() == 24).then(|| {
        (
            !u64::from_be_bytes(pos),
            ConversationId::from_uuid(uuid::Uuid::from_bytes(id)),
        )
    })
}

pub fn conv_key(conv: &ConversationId) -> [u8; 16] {
    *conv.as_uuid().as_bytes()
}

/// `user ‖ conversation`, the key of a read marker.
pub fn marker_key(user: &UserId, conv: &ConversationId) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..16].copy_from_slice(user.as_uuid().as_bytes());
    k[16..].copy_from_slice(conv.as_uuid().as_bytes());
    k
}

/// `conversation ‖ message`: the prefix of a message's `deliveries` entries.
pub fn delivery_prefix(conv: &ConversationId, message: &domain::MessageId) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..16].copy_from_slice(conv.as_uuid().as_bytes());
    k[16..].copy_from_slice(message.as_uuid().as_bytes());
    k
}

/// `conversation ‖ message ‖ recipient`: how far one SMS of a message got.
pub fn delivery_key(
    conv: &ConversationId,
    message: &domain::MessageId,
    to: &PhoneNumber,
) -> Vec<u8> {
    let mut k = delivery_prefix(conv, message).to_vec();
    k.extend_from_slice(to.as_str().as_bytes());
    k
}

/// A `members` entry: `user` is a member of `conv`.
pub fn member_key(user: &UserId, conv: &ConversationId) -> [u8; 32] {
    marker_key(user, conv)
}

/// The conversation of a `members` entry (its last 16 bytes).
pub fn parse_member_conv(key: &[u8]) -> Option<ConversationId> {
    let id: [u8; 16] = key.get(16..32)?.try_into().ok()?;
    (key.len() == 32).then(|| ConversationId::from_uuid(uuid::Uuid::from_bytes(id)))
}

pub fn user_key(user: &UserId) -> [u8; 16] {
    *user.as_uuid().as_bytes()
}

/// The smallest key strictly greater than every key starting with `prefix`.
pub fn upper_bound(prefix: &[u8]) -> Vec<u8> {
    let mut k = prefix.to_vec();
    while let Some(last) = k.pop() {
        if last < 0xFF {
            k.push(last + 1);
            return k;
        }
    }
    vec![0xFF; prefix.len() + 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_keys_order_newest_first_and_round_trip() {
        let p = Audience::User(UserId::random()).prefix();
        let (a, b) = (ConversationId::random(), ConversationId::random());
        let older = sorted_key(&p, 5, &a);
        let newer = sorted_key(&p, 9, &b);
        assert!(newer < older);
        assert_eq!(parse_sorted_suffix(&newer[p.len()..]), Some((9, b)));
        assert_eq!(parse_sorted_suffix(&older[p.len()..p.len() + 1]), None);
    }

    #[test]
    fn audience_prefixes_are_prefix_free() {
        let (org, user, inbox) = (OrgId::random(), UserId::random(), InboxId::random());
        let prefixes = [
            Audience::User(user).prefix(),
            Audience::Number(org, PhoneNumber::parse("+15551234").unwrap()).prefix(),
            Audience::Inbox(inbox, InboxBucket::Unassigned).prefix(),
            Audience::Inbox(inbox, InboxBucket::Done).prefix(),
            Audience::InboxAssignee(inbox, user).prefix(),
            Audience::Channels(org).prefix(),
            Audience::Channels(OrgId::random()).prefix(),
        ];
        for (i, a) in prefixes.iter().enumerate() {
            for (j, b) in prefixes.iter().enumerate() {
                assert!(i == j || !b.starts_with(a), "{i} is a prefix of {j}");
            }
        }
    }

    #[test]
    fn number_prefixes_are_prefix_free() {
        let org = OrgId::random();
        let a = Audience::Number(org, PhoneNumber::parse("+15551234").unwrap()).prefix();
        let b = Audience::Number(org, PhoneNumber::parse("+155512345").unwrap()).prefix();
        assert!(!b.starts_with(&a) && !a.starts_with(&b));
    }
}
