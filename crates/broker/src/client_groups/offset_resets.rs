//! Offsets an operator reset on the broker (INVOKE_BROKER_TO_RESET_OFFSET) that the group's
//! consumers have not picked up yet. Until a consumer pulls the queue again, its commits
//! for it are ignored (a consumer that has not heard of the reset would put the old offset
//! back), and that next pull answers PULL_OFFSET_MOVED to the reset offset: RocketMQ 5's
//! broker-side reset. Held by the master only, in memory, bounded.

use std::collections::HashMap;

use parking_lot::Mutex;

type Key = (String, String, i32);

pub struct OffsetResets {
    pending: Mutex<HashMap<Key, i64>>,
    max_entries: usize,
}

impl OffsetResets {
    pub fn new(max_entries: usize) -> Self {
        OffsetResets {
            pending: Mutex::new(HashMap::new()),
            max_entries,
        }
    }

    /// Records a reset of `group`'s `topic` queue to `offset`; false when the table is full
    /// (the reset still stands, only commits racing it are not held back).
    pub fn mark(&self, group: &str, topic: &str, queue_id: i32, offset: i64) -> bool {
        let mut pending = self.pending.lock();
        let key = (group.to_owned(), topic.to_owned(), queue_id);
        if pending.len() >= self.max_entries && !pending.contains_key(&key) {
            return false;
        }
        pending.insert(key, offset);
        true
    }

    pub fn is_pending(&self, group: &str, topic: &str, queue_id: i32) -> bool {
        self.pending
            .lock()
            .contains_key(&(group.to_owned(), topic.to_owned(), queue_id))
    }

    /// The reset offset of a queue, once: the pull that takes it tells the consumer.
    pub fn take(&self, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
        let mut pending = self.pending.lock();
        if pending.is_empty() {
            return None;
        }
        pending.remove(&(group.to_owned(), topic.to_owned(), queue_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_is_taken_once_and_bounded() {
        let resets = OffsetResets::new(1);
        assert!(resets.mark("G", "T", 0, 5));
        assert!(!resets.mark("G", "T", 1, 5), "full");
        assert!(resets.is_pending("G", "T", 0));
        assert_eq!(resets.take("G", "T", 0), Some(5));
        assert_eq!(resets.take("G", "T", 0), None);
        assert!(!resets.is_pending("G", "T", 0));
    }
}
