//! One pop at a time per group and queue: a pop reads from the group's offset, stores its
//! checkpoint and moves the offset on, and a second pop of the same queue in between would
//! hand out the same messages again. A busy queue is skipped, as RocketMQ's broker skips
//! it, rather than waited for.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::OwnedMutexGuard;

/// Group, topic, queue id.
type QueueKey = (String, String, i32);

pub struct QueueLocks {
    locks: Mutex<HashMap<QueueKey, Arc<tokio::sync::Mutex<()>>>>,
    max_entries: usize,
}

impl QueueLocks {
    pub fn new(max_entries: usize) -> QueueLocks {
        QueueLocks {
            locks: Mutex::new(HashMap::new()),
            max_entries,
        }
    }

    /// The queue's lock if no other pop holds it; `None` when busy (or, with the table
    /// full of held locks, when no lock can be made).
    pub fn try_lock(&self, group: &str, topic: &str, queue_id: i32) -> Option<OwnedMutexGuard<()>> {
        self.entry(group, topic, queue_id)?.try_lock_owned().ok()
    }

    /// The queue's lock, waiting up to `wait` for a pop that holds it (an orderly ack must
    /// not be lost to a pop in progress); `None` past that, or with the table full.
    pub async fn lock(
        &self,
        group: &str,
        topic: &str,
        queue_id: i32,
        wait: std::time::Duration,
    ) -> Option<OwnedMutexGuard<()>> {
        let lock = self.entry(group, topic, queue_id)?;
        tokio::time::timeout(wait, lock.lock_owned()).await.ok()
    }

    fn entry(
        &self,
        group: &str,
        topic: &str,
        queue_id: i32,
    ) -> Option<Arc<tokio::sync::Mutex<()>>> {
        let mut locks = self.locks.lock();
        let key = (group.to_owned(), topic.to_owned(), queue_id);
        if !locks.contains_key(&key) && locks.len() >= self.max_entries {
            // Locks nobody holds are only a cache.
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
            if locks.len() >= self.max_entries {
                return None;
            }
        }
        Some(Arc::clone(locks.entry(key).or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_queue_is_busy_until_released_and_the_table_is_bounded() {
        let locks = QueueLocks::new(2);
        let first = locks.try_lock("G", "T", 0).unwrap();
        assert!(locks.try_lock("G", "T", 0).is_none());
        assert!(locks.try_lock("G", "T", 1).is_some());
        assert!(
            locks.try_lock("H", "T", 0).is_some(),
            "the unheld entry made room"
        );
        let _second = locks.try_lock("G", "T", 1).unwrap();
        assert!(locks.try_lock("X", "T", 9).is_none(), "every entry held");
        drop(first);
        assert!(locks.try_lock("G", "T", 0).is_some());
    }
}
