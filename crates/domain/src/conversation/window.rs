//! The messages a conversation's state still holds: a window bounded whatever the length
//! of the conversation, so a snapshot stays small and loads fast. The full history is in
//! the stream; history, previews and per-message read receipts of older messages are the
//! read models' job.
//!
//! The window holds
//! - the newest [`RECENT_MESSAGES`] messages by seq, and
//! - older messages that still await a final SMS delivery status, so the carrier's
//!   callbacks for texts in flight keep moving them forward, unless the message is older
//!   than [`PENDING_DELIVERY_MAX_AGE_MS`] or more than [`MAX_PENDING_DELIVERY_MESSAGES`] of
//!   them are waiting (oldest go first): a carrier that never calls back cannot grow it.
//!
//! Nothing else. Messages leave it only in `apply`, as a function of the events alone
//! (their seqs, delivery statuses and `at_ms`), so replay and snapshots agree.
//!
//! What falls out of the window, and what that means:
//! - **Duplicate message ids.** Within the window a post or inbound text reusing an id is
//!   decided as now: the same author's retry writes nothing, anyone else's is refused. A
//!   retry arriving after the message left the window is not caught here: the actor layer
//!   derives event ids from the command's idempotency key, so the log recognises the retried
//!   command and writes it once.
//! - **Late delivery callbacks.** A callback for a message that is not in the window, once
//!   messages have been let go ([`MessageWindow::pruned_through_seq`] > 0), is accepted and
//!   writes nothing, like any other stale report, so the carrier adapter never retries it.
//!   Before anything was let go an unknown id is still refused.
//! - **Queries.** `Conversation::message`, `delivery` and `read_by` answer for messages in
//!   the window only. Read markers (`read_up_to`) need only the last seq and are exact.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize, Serializer};

use crate::conversation::delivery::DeliveryStatus;
use crate::conversation::state::Author;
use crate::ids::MessageId;
use crate::limits::{MAX_PENDING_DELIVERY_MESSAGES, PENDING_DELIVERY_MAX_AGE_MS, RECENT_MESSAGES};
use crate::phone_number::PhoneNumber;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub seq: u64,
    pub author: Author,
    /// When the message was posted or received; pending deliveries age from here.
    pub at_ms: u64,
    /// Per external recipient, how far its SMS got.
    pub deliveries: BTreeMap<PhoneNumber, DeliveryStatus>,
}

impl MessageRecord {
    /// Does an SMS of this message still wait for a final delivery status?
    pub fn awaits_delivery(&self) -> bool {
        self.deliveries.values().any(|status| !status.is_final())
    }
}

/// Invariants, kept by every method that changes it:
/// - `by_id` and `by_seq` hold the same messages (each is the other's inverse);
/// - the newest message is always in it, and so are all recent ones (see `recent_from`);
/// - every message older than the recent ones awaits a delivery.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct MessageWindow {
    /// Looked up for every post and delivery report, by ids made on the server (random,
    /// or derived from a key through SHA-1) in a map of at most a few thousand: hashed
    /// with Fx. Encoded in id order, as the `BTreeMap` it once was, so a snapshot's bytes
    /// are the same as before and the same for equal windows.
    #[serde(serialize_with = "in_id_order")]
    by_id: FxHashMap<MessageId, MessageRecord>,
    /// The same messages by seq, oldest first: the order in which they are let go.
    by_seq: BTreeMap<u64, MessageId>,
    /// Highest seq of a message let go; 0 while none was. Messages at or below it may be
    /// missing from the window (some may still be in it, waiting for a delivery).
    pruned_through_seq: u64,
}

/// `by_id` as a map in id order.
fn in_id_order<S: Serializer>(
    by_id: &FxHashMap<MessageId, MessageRecord>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut sorted: Vec<(&MessageId, &MessageRecord)> = by_id.iter().collect();
    sorted.sort_unstable_by_key(|(id, _)| *id);
    serializer.collect_map(sorted)
}

impl MessageWindow {
    pub(super) fn get(&self, id: &MessageId) -> Option<&MessageRecord> {
        self.by_id.get(id)
    }

    /// The newest message in the window that `wanted` accepts.
    pub(super) fn newest_where(
        &self,
        wanted: impl Fn(&MessageRecord) -> bool,
    ) -> Option<MessageId> {
        self.by_seq
            .values()
            .rev()
            .find(|id| self.by_id.get(id).is_some_and(&wanted))
            .copied()
    }

    pub(super) fn pruned_through_seq(&self) -> u64 {
        self.pruned_through_seq
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_id.len()
    }

    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = (&MessageId, &MessageRecord)> {
        self.by_id.iter()
    }

    /// Adds a new message; the one it pushes out of the recent messages leaves the window
    /// unless it awaits a delivery.
    pub(super) fn record(&mut self, id: MessageId, record: MessageRecord) {
        let (seq, at_ms) = (record.seq, record.at_ms);
        let recent_before = self.recent_from();
        // A log written by `decide` never reuses an id or a seq inside the window; should
        // one arrive anyway, the newer message replaces the older so both maps still agree.
        if let Some(replaced) = self.by_id.insert(id, record) {
            if self.by_seq.get(&replaced.seq) == Some(&id) {
                self.by_seq.remove(&replaced.seq);
            }
        }
        if let Some(other) = self.by_seq.insert(seq, id) {
            if other != id {
                self.by_id.remove(&other);
            }
        }
        let recent_now = self.recent_from();
        // The messages this one pushed out of the recent ones, one at a time (letting one
        // go changes no other's seq), so nothing is allocated per message.
        let (mut from, until) = (recent_before, recent_now.max(recent_before));
        while let Some((&aged, _)) = self.by_seq.range(from..until).next() {
            from = aged + 1;
            self.let_go_if_settled(aged);
        }
        if seq < recent_now {
            self.let_go_if_settled(seq);
        }
        self.let_go_expired(at_ms);
    }

    /// Asks for an SMS of message `id` to `to`.
    pub(super) fn request_sms(&mut self, id: &MessageId, to: &PhoneNumber) {
        if let Some(message) = self.by_id.get_mut(id) {
            message
                .deliveries
                .insert(to.clone(), DeliveryStatus::Requested);
        }
    }

    /// Records how far the SMS of `id` to `to` got, at `at_ms`; an older message whose
    /// SMS are all final now leaves the window.
    pub(super) fn update_delivery(
        &mut self,
        id: &MessageId,
        to: &PhoneNumber,
        status: &DeliveryStatus,
        at_ms: u64,
    ) {
        if let Some(message) = self.by_id.get_mut(id) {
            message.deliveries.insert(to.clone(), status.clone());
            let seq = message.seq;
            if seq < self.recent_from() {
                self.let_go_if_settled(seq);
            }
        }
        self.let_go_expired(at_ms);
    }

    /// The lowest seq of the recent messages: the newest [`RECENT_MESSAGES`] seqs. 0 while
    /// the window is empty.
    fn recent_from(&self) -> u64 {
        let newest = self.by_seq.last_key_value().map_or(0, |(&seq, _)| seq);
        newest.saturating_sub(RECENT_MESSAGES as u64 - 1)
    }

    fn let_go_if_settled(&mut self, seq: u64) {
        let settled = self
            .by_seq
            .get(&seq)
            .and_then(|id| self.by_id.get(id))
            .is_none_or(|message| !message.awaits_delivery());
        if settled {
            self.let_go(seq);
        }
    }

    /// Lets go of the oldest messages waiting for a delivery while they are older than
    /// [`PENDING_DELIVERY_MAX_AGE_MS`] at `now_ms`, or while too many wait. Seqs follow
    /// `at_ms` closely but not strictly (clocks of different nodes), so a message behind a
    /// younger one may wait a little longer; it is still let go as a function of the events.
    fn let_go_expired(&mut self, now_ms: u64) {
        let most = RECENT_MESSAGES + MAX_PENDING_DELIVERY_MESSAGES;
        while let Some((&seq, id)) = self.by_seq.first_key_value() {
            if seq >= self.recent_from() {
                break;
            }
            let expired = self.by_id.get(id).is_none_or(|message| {
                now_ms.saturating_sub(message.at_ms) > PENDING_DELIVERY_MAX_AGE_MS
            });
            // Seqs are 1..=last, so with messages older than the recent ones in the window
            // there are exactly RECENT_MESSAGES recent ones and the rest wait for a delivery.
            if !expired && self.by_id.len() <= most {
                break;
            }
            self.let_go(seq);
        }
    }

    fn let_go(&mut self, seq: u64) {
        if let Some(id) = self.by_seq.remove(&seq) {
            self.by_id.remove(&id);
        }
        self.pruned_through_seq = self.pruned_through_seq.max(seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::delivery::DeliveryStatus;

    /// The window as it was encoded before `by_id` became a hash map.
    #[derive(Serialize)]
    struct AsBefore<'a> {
        by_id: BTreeMap<MessageId, MessageRecord>,
        by_seq: &'a BTreeMap<u64, MessageId>,
        pruned_through_seq: u64,
    }

    #[test]
    fn a_window_encodes_as_the_ordered_maps_it_was_and_decodes_equal() {
        let mut window = MessageWindow::default();
        let user = Author::User(crate::ids::UserId::random());
        for seq in 1..=(RECENT_MESSAGES as u64 + 40) {
            let mut deliveries = BTreeMap::new();
            if seq % 7 == 0 {
                let to = PhoneNumber::parse("+15555550123").expect("a number");
                deliveries.insert(to, DeliveryStatus::Requested);
            }
            let record = MessageRecord {
                seq,
                author: user.clone(),
                at_ms: seq,
                deliveries,
            };
            window.record(MessageId::random(), record);
        }
        assert!(window.pruned_through_seq() > 0, "some were let go");
        let config = bincode::config::standard();
        let encoded = bincode::serde::encode_to_vec(&window, config).expect("encodes");
        let before = AsBefore {
            by_id: window
                .by_id
                .iter()
                .map(|(id, r)| (*id, r.clone()))
                .collect(),
            by_seq: &window.by_seq,
            pruned_through_seq: window.pruned_through_seq,
        };
        assert_eq!(
            encoded,
            bincode::serde::encode_to_vec(&before, config).expect("encodes"),
            "a snapshot's bytes are those of the ordered maps"
        );
        let (decoded, _): (MessageWindow, usize) =
            bincode::serde::decode_from_slice(&encoded, config).expect("decodes");
        assert_eq!(decoded, window);
    }
}
