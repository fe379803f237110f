//! The writer's table of next queue offsets, one per topic-queue, and the stamping of a
//! record with where it was placed. Both stores assign offsets through it: the standalone
//! store under its put lock, a raft leader as each entry is placed in its log.

use std::collections::HashMap;

use message::record::PatchError;
use message::record::{patch_physical_offset, patch_queue_offset, patch_store_timestamp};

use crate::dispatch::Dispatcher;

/// Next queue offset per topic and queue id, and the last store timestamp handed out (store
/// timestamps never go backwards, so a search by time can bisect a queue).
#[derive(Debug, Default)]
pub(crate) struct QueueOffsetTable {
    next: HashMap<String, HashMap<i32, i64>>,
    last_store_timestamp_ms: i64,
}

impl QueueOffsetTable {
    /// The table a writer continues from: each queue's end as the ConsumeQueues hold it,
    /// and the time of the last dispatched record.
    pub(crate) fn from_queues(dispatcher: &Dispatcher) -> QueueOffsetTable {
        let mut next: HashMap<String, HashMap<i32, i64>> = HashMap::new();
        for cq in dispatcher.all_queues() {
            next.entry(cq.topic().to_string())
                .or_default()
                .insert(cq.queue_id(), cq.max_offset());
        }
        QueueOffsetTable {
            next,
            last_store_timestamp_ms: dispatcher.dispatched_timestamp_ms(),
        }
    }

    /// Replaces the offsets with the queues' ends; keeps the store time monotonic.
    pub(crate) fn reload(&mut self, dispatcher: &Dispatcher) {
        let last_store_timestamp_ms = self.last_store_timestamp_ms;
        *self = QueueOffsetTable::from_queues(dispatcher);
        self.last_store_timestamp_ms = self.last_store_timestamp_ms.max(last_store_timestamp_ms);
    }

    /// The offset the next record of a queue gets (0 for a queue never written).
    pub(crate) fn peek(&self, topic: &str, queue_id: i32) -> i64 {
        self.next
            .get(topic)
            .and_then(|queues| queues.get(&queue_id))
            .copied()
            .unwrap_or(0)
    }

    /// Hands out the next offset of a queue.
    pub(crate) fn take(&mut self, topic: &str, queue_id: i32) -> i64 {
        // Looked up first so the common case does not allocate the topic name.
        let per_topic = match self.next.get_mut(topic) {
            Some(queues) => queues,
            None => self.next.entry(topic.to_string()).or_default(),
        };
        let next = per_topic.entry(queue_id).or_insert(0);
        let offset = *next;
        *next += 1;
        offset
    }

    /// Gives offsets back down to `next` (a put that stored nothing).
    pub(crate) fn rewind(&mut self, topic: &str, queue_id: i32, next: i64) {
        if let Some(queues) = self.next.get_mut(topic) {
            debug_assert!(queues.get(&queue_id).is_none_or(|&current| current >= next));
            queues.insert(queue_id, next);
        }
    }

    /// Moves a queue forward to at least `floor`, never back.
    pub(crate) fn raise(&mut self, topic: &str, queue_id: i32, floor: i64) {
        let next = self
            .next
            .entry(topic.to_string())
            .or_default()
            .entry(queue_id)
            .or_insert(0);
        *next = (*next).max(floor);
    }

    pub(crate) fn remove_topic(&mut self, topic: &str) {
        self.next.remove(topic);
    }

    /// The store timestamp for a record written at `now_ms`: never before the previous one.
    pub(crate) fn stamp_time(&mut self, now_ms: i64) -> i64 {
        self.last_store_timestamp_ms = self.last_store_timestamp_ms.max(now_ms);
        self.last_store_timestamp_ms
    }

    /// The store timestamp a record written at `now_ms` would get, without handing it out.
    pub(crate) fn peek_time(&self, now_ms: i64) -> i64 {
        self.last_store_timestamp_ms.max(now_ms)
    }
}

/// Writes where a record was placed into the record itself: its queue offset, its
/// CommitLog offset (PHYSICALOFFSET, the position of its body) and its store time.
pub(crate) fn stamp_record(
    record: &mut [u8],
    queue_offset: i64,
    physical_offset: i64,
    store_timestamp_ms: i64,
) -> Result<(), PatchError> {
    debug_assert!(queue_offset >= 0 && physical_offset >= 0);
    patch_queue_offset(record, queue_offset)?;
    patch_physical_offset(record, physical_offset)?;
    patch_store_timestamp(record, store_timestamp_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_dense_per_queue_and_rewind_or_raise() {
        let mut table = QueueOffsetTable::default();
        assert_eq!(table.take("T", 0), 0);
        assert_eq!(table.take("T", 0), 1);
        assert_eq!(table.take("T", 1), 0);
        assert_eq!(table.peek("T", 0), 2);
        table.rewind("T", 0, 1);
        assert_eq!(table.take("T", 0), 1);
        table.raise("T", 0, 10);
        table.raise("T", 0, 5);
        assert_eq!(table.peek("T", 0), 10);
        table.remove_topic("T");
        assert_eq!(table.peek("T", 1), 0);
    }

    #[test]
    fn store_time_never_goes_back() {
        let mut table = QueueOffsetTable::default();
        assert_eq!(table.stamp_time(100), 100);
        assert_eq!(table.peek_time(50), 100);
        assert_eq!(table.stamp_time(50), 100);
        assert_eq!(table.stamp_time(120), 120);
    }
}
