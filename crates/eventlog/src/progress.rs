//! How far each follower of the log has got, published as it goes.
//!
//! A follower (a process manager, an index) names itself and publishes the `$all`
//! position through which it has *handled* the log: every event at or before it that the
//! follower cares about is done, and it has seen that none of the others concern it.
//! [`Subscription::with_progress`](crate::Subscription::with_progress) publishes for its
//! owner each time it has nothing left to hand out. Tests, health checks and shutdown wait
//! on it ([`Progress::reached`], [`Progress::settled`]) instead of sleeping.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::store::EventStore;

/// The followers of one log and their published positions. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Progress {
    /// Per name: its channel, and whether a follower publishes there (a name only waited
    /// for is not one, so [`Progress::settled`] does not wait for it).
    followers: Arc<Mutex<BTreeMap<String, Channel>>>,
}

struct Channel {
    tx: watch::Sender<Option<u64>>,
    follower: bool,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.positions()).finish()
    }
}

impl Progress {
    fn followers(&self) -> MutexGuard<'_, BTreeMap<String, Channel>> {
        self.followers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn channel(&self, name: &str, follower: bool) -> watch::Sender<Option<u64>> {
        let mut followers = self.followers();
        let channel = followers.entry(name.to_owned()).or_insert_with(|| Channel {
            tx: watch::Sender::new(None),
            follower,
        });
        channel.follower |= follower;
        channel.tx.clone()
    }

    /// Where follower `name` publishes (the same channel each time it is asked: a
    /// follower restarted under the same name carries on from what it published).
    pub fn publisher(&self, name: &str) -> watch::Sender<Option<u64>> {
        self.channel(name, true)
    }

    /// Every follower known and the position it has published (`None`: nothing yet).
    pub fn positions(&self) -> Vec<(String, Option<u64>)> {
        self.followers()
            .iter()
            .filter(|(_, c)| c.follower)
            .map(|(name, c)| (name.clone(), *c.tx.borrow()))
            .collect()
    }

    /// Resolves once follower `name` has handled the log through `position`.
    pub async fn reached(&self, name: &str, position: u64) {
        let mut rx = self.channel(name, false).subscribe();
        // The sender lives in the map as long as `self` does: `wait_for` cannot fail.
        let _ = rx.wait_for(|p| p.is_some_and(|p| p >= position)).await;
    }

    /// Resolves once every follower known now has handled everything committed to `store`,
    /// including what they wrote meanwhile for one another (it waits again until the
    /// log's head stays where they all reached).
    pub async fn settled(&self, store: &dyn EventStore) {
        loop {
            let next = store.next_position();
            let Some(head) = next.checked_sub(1) else {
                return;
            };
            let names: Vec<String> = self.positions().into_iter().map(|(n, _)| n).collect();
            for name in names {
                self.reached(&name, head).await;
            }
            if store.next_position() == next {
                return;
            }
        }
    }
}

/// Raises a published position (never lowers it): for a follower that knows it has
/// handled everything through `position` between the times its subscription publishes.
pub fn publish(tx: &watch::Sender<Option<u64>>, position: u64) {
    tx.send_if_modified(|p| {
        if p.is_some_and(|p| p >= position) {
            false
        } else {
            *p = Some(position);
            true
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_only_waited_for_is_no_follower_until_one_publishes_there() {
        let progress = Progress::default();
        // What `reached` does for a name no follower has taken yet.
        let waited = progress.channel("index", false);
        assert!(progress.positions().is_empty(), "{progress:?}");
        let tx = progress.publisher("index");
        assert!(tx.same_channel(&waited), "the waiter hears the follower");
        publish(&tx, 5);
        publish(&tx, 3);
        assert_eq!(progress.positions(), [("index".to_owned(), Some(5))]);
    }
}
