//! Queue locks for orderly consumption (LOCK_BATCH_MQ / UNLOCK_BATCH_MQ).
//!
//! An orderly consumer may only consume a queue while it holds the queue's lock on the
//! broker, so two members of a group never consume one queue at once. A lock belongs to
//! (group, client id) and lapses after `lock_max_live` without renewal (RocketMQ: 60 s;
//! clients renew every 20 s).

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use remoting::body::MessageQueue;

#[derive(Debug, Clone)]
struct LockEntry {
    client_id: String,
    last_update: Instant,
}

impl LockEntry {
    fn expired(&self, now: Instant, max_live: Duration) -> bool {
        now.saturating_duration_since(self.last_update) > max_live
    }
}

pub struct RebalanceLockManager {
    /// Group → queue → holder.
    locks: Mutex<HashMap<String, HashMap<MessageQueue, LockEntry>>>,
    lock_max_live: Duration,
    max_entries: usize,
}

impl RebalanceLockManager {
    pub fn new(lock_max_live: Duration, max_entries: usize) -> Self {
        RebalanceLockManager {
            locks: Mutex::new(HashMap::new()),
            lock_max_live,
            max_entries,
        }
    }

    /// Locks (or renews) what it can of `queues` for `client_id`; returns the queues the
    /// client now holds.
    pub fn try_lock_batch(
        &self,
        group: &str,
        queues: &BTreeSet<MessageQueue>,
        client_id: &str,
        now: Instant,
    ) -> BTreeSet<MessageQueue> {
        let mut locks = self.locks.lock();
        let mut total: usize = locks.values().map(HashMap::len).sum();
        if total + queues.len() > self.max_entries {
            self.prune(&mut locks, now);
            total = locks.values().map(HashMap::len).sum();
        }
        let group_locks = locks.entry(group.to_owned()).or_default();
        let mut locked = BTreeSet::new();
        for queue in queues {
            match group_locks.get_mut(queue) {
                Some(entry) if entry.client_id == client_id => {
                    entry.last_update = now;
                    locked.insert(queue.clone());
                }
                Some(entry) if entry.expired(now, self.lock_max_live) => {
                    entry.client_id = client_id.to_owned();
                    entry.last_update = now;
                    locked.insert(queue.clone());
                }
                Some(_) => {}
                None if total < self.max_entries => {
                    group_locks.insert(
                        queue.clone(),
                        LockEntry {
                            client_id: client_id.to_owned(),
                            last_update: now,
                        },
                    );
                    total += 1;
                    locked.insert(queue.clone());
                }
                None => {}
            }
        }
        if group_locks.is_empty() {
            locks.remove(group);
        }
        locked
    }

    /// Releases the queues `client_id` holds among `queues`.
    pub fn unlock_batch(&self, group: &str, queues: &BTreeSet<MessageQueue>, client_id: &str) {
        let mut locks = self.locks.lock();
        if let Some(group_locks) = locks.get_mut(group) {
            for queue in queues {
                if group_locks
                    .get(queue)
                    .is_some_and(|entry| entry.client_id == client_id)
                {
                    group_locks.remove(queue);
                }
            }
            if group_locks.is_empty() {
                locks.remove(group);
            }
        }
    }

    /// Whether any unexpired lock of the group exists.
    pub fn group_holds_locks(&self, group: &str, now: Instant) -> bool {
        self.locks.lock().get(group).is_some_and(|group_locks| {
            group_locks
                .values()
                .any(|entry| !entry.expired(now, self.lock_max_live))
        })
    }

    fn prune(&self, locks: &mut HashMap<String, HashMap<MessageQueue, LockEntry>>, now: Instant) {
        locks.retain(|_, group_locks| {
            group_locks.retain(|_, entry| !entry.expired(now, self.lock_max_live));
            !group_locks.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queues(ids: &[i32]) -> BTreeSet<MessageQueue> {
        ids.iter()
            .map(|&id| MessageQueue::new("T", "broker-a", id))
            .collect()
    }

    #[test]
    fn a_queue_has_one_holder_until_it_expires_or_is_released() {
        let manager = RebalanceLockManager::new(Duration::from_secs(60), 100);
        let t0 = Instant::now();
        assert_eq!(
            manager.try_lock_batch("G", &queues(&[0, 1]), "c1", t0),
            queues(&[0, 1])
        );
        assert_eq!(
            manager.try_lock_batch("G", &queues(&[1, 2]), "c2", t0),
            queues(&[2])
        );
        // Renewal by the holder works; another group is independent.
        assert_eq!(
            manager.try_lock_batch("G", &queues(&[1]), "c1", t0),
            queues(&[1])
        );
        assert_eq!(
            manager.try_lock_batch("H", &queues(&[1]), "c2", t0),
            queues(&[1])
        );
        // After expiry another client takes over.
        let later = t0 + Duration::from_secs(61);
        assert_eq!(
            manager.try_lock_batch("G", &queues(&[0]), "c2", later),
            queues(&[0])
        );
        // Only the holder can release.
        assert_eq!(
            manager.try_lock_batch("G", &queues(&[2]), "c2", later),
            queues(&[2])
        );
        manager.unlock_batch("G", &queues(&[2]), "c1");
        assert!(manager
            .try_lock_batch("G", &queues(&[2]), "c1", later)
            .is_empty());
        manager.unlock_batch("G", &queues(&[2]), "c2");
        assert_eq!(
            manager.try_lock_batch("G", &queues(&[2]), "c1", later),
            queues(&[2])
        );
        assert!(manager.group_holds_locks("G", later));
    }

    #[test]
    fn the_lock_table_is_bounded() {
        let manager = RebalanceLockManager::new(Duration::from_secs(60), 3);
        let now = Instant::now();
        let locked = manager.try_lock_batch("G", &queues(&[0, 1, 2, 3, 4]), "c1", now);
        assert_eq!(locked.len(), 3);
        // Expired entries make room again.
        let later = now + Duration::from_secs(61);
        assert_eq!(
            manager
                .try_lock_batch("G2", &queues(&[9]), "c1", later)
                .len(),
            1
        );
    }
}
