//! One assigned queue's local state: messages pulled but not yet consumed (the prefetch
//! buffer the flow control bounds), the offset that is safe to commit, and for ordered
//! consumption the broker lock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use remoting::body::{MessageQueue, ProcessQueueInfo};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::message::ReceivedMessage;

/// How long a lock taken on the broker is trusted without renewal (Java: 30 s; the
/// broker keeps it 60 s, the client renews every 20 s).
pub const LOCK_TRUST: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Buffer {
    /// Pulled, not yet handed out (ordered) or not yet finished (concurrent), by offset.
    waiting: BTreeMap<i64, ReceivedMessage>,
    /// Ordered consumption: handed to the listener, not yet committed.
    consuming: BTreeMap<i64, ReceivedMessage>,
    bytes: usize,
    /// Highest offset ever put, for the commit offset once everything is consumed.
    max_offset: Option<i64>,
}

pub(crate) struct ProcessQueue {
    pub queue: MessageQueue,
    buffer: Mutex<Buffer>,
    dropped: AtomicBool,
    /// Cancelled when the queue is dropped, waking its tasks.
    pub cancel: CancellationToken,
    /// New messages for the ordered consume loop.
    pub arrived: Notify,
    locked: AtomicBool,
    lock_taken_at: Mutex<Option<Instant>>,
    /// Held while an ordered batch is consumed, so a rebalance unlocks the queue on the
    /// broker only between batches.
    pub consume_lock: tokio::sync::Mutex<()>,
}

impl ProcessQueue {
    pub(crate) fn new(queue: MessageQueue, parent: &CancellationToken) -> Self {
        ProcessQueue {
            queue,
            buffer: Mutex::new(Buffer::default()),
            dropped: AtomicBool::new(false),
            cancel: parent.child_token(),
            arrived: Notify::new(),
            locked: AtomicBool::new(false),
            lock_taken_at: Mutex::new(None),
            consume_lock: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::Acquire)
    }

    pub(crate) fn drop_queue(&self) {
        self.dropped.store(true, Ordering::Release);
        self.cancel.cancel();
    }

    /// Adds pulled messages (duplicates of buffered offsets are ignored).
    pub(crate) fn put(&self, messages: &[ReceivedMessage]) {
        let mut buffer = self.buffer.lock();
        for message in messages {
            let offset = message.queue_offset;
            if buffer.waiting.contains_key(&offset) || buffer.consuming.contains_key(&offset) {
                continue;
            }
            buffer.bytes = buffer.bytes.saturating_add(message.body.len());
            buffer.max_offset = Some(buffer.max_offset.map_or(offset, |max| max.max(offset)));
            buffer.waiting.insert(offset, message.clone());
        }
    }

    /// Messages buffered (waiting and being consumed).
    pub(crate) fn count(&self) -> usize {
        let buffer = self.buffer.lock();
        buffer.waiting.len() + buffer.consuming.len()
    }

    /// Body bytes buffered.
    pub(crate) fn bytes(&self) -> usize {
        self.buffer.lock().bytes
    }

    /// Distance between the lowest and highest buffered offsets (concurrent consumption
    /// stops pulling when one slow message holds the commit offset back too far).
    pub(crate) fn span(&self) -> i64 {
        let buffer = self.buffer.lock();
        match (
            buffer.waiting.keys().next(),
            buffer.waiting.keys().next_back(),
        ) {
            (Some(first), Some(last)) => last - first,
            _ => 0,
        }
    }

    /// Concurrent consumption: the listed messages are done. Returns the offset safe to
    /// commit: the lowest still buffered, or one past the highest ever put.
    pub(crate) fn remove(&self, offsets: &[i64]) -> Option<i64> {
        let mut buffer = self.buffer.lock();
        for offset in offsets {
            if let Some(message) = buffer.waiting.remove(offset) {
                buffer.bytes = buffer.bytes.saturating_sub(message.body.len());
            }
        }
        commit_point(&buffer)
    }

    /// Ordered consumption: moves the lowest `max` waiting messages to "consuming".
    pub(crate) fn take_in_order(&self, max: usize) -> Vec<ReceivedMessage> {
        let mut buffer = self.buffer.lock();
        let mut taken = Vec::new();
        while taken.len() < max {
            let Some((offset, message)) = buffer.waiting.pop_first() else {
                break;
            };
            buffer.consuming.insert(offset, message.clone());
            taken.push(message);
        }
        taken
    }

    /// Ordered consumption succeeded: forget the consuming messages; returns the offset
    /// to commit (one past the last consumed).
    pub(crate) fn commit_in_order(&self) -> Option<i64> {
        let mut buffer = self.buffer.lock();
        let consumed = std::mem::take(&mut buffer.consuming);
        let released: usize = consumed.values().map(|m| m.body.len()).sum();
        buffer.bytes = buffer.bytes.saturating_sub(released);
        consumed.keys().next_back().map(|last| last + 1)
    }

    /// Ordered consumption failed: the consuming messages go back to the front, each with
    /// its local retry count raised.
    pub(crate) fn roll_back_in_order(&self) {
        let mut buffer = self.buffer.lock();
        let consuming = std::mem::take(&mut buffer.consuming);
        for (offset, mut message) in consuming {
            message.reconsume_times = message.reconsume_times.saturating_add(1);
            buffer.waiting.insert(offset, message);
        }
    }

    /// What a running-info report shows of this queue (Java's `fillProcessQueueInfo`);
    /// pull and consume times are not tracked here and read 0.
    pub(crate) fn info(&self, commit_offset: i64) -> ProcessQueueInfo {
        let buffer = self.buffer.lock();
        let offsets = buffer.waiting.keys().chain(buffer.consuming.keys());
        let (min, max) = offsets.fold((None, None), |(min, max): (Option<i64>, Option<i64>), o| {
            (
                Some(min.map_or(*o, |m| m.min(*o))),
                Some(max.map_or(*o, |m| m.max(*o))),
            )
        });
        ProcessQueueInfo {
            commit_offset,
            cached_msg_min_offset: min.unwrap_or(0),
            cached_msg_max_offset: max.unwrap_or(0),
            cached_msg_count: i32::try_from(buffer.waiting.len() + buffer.consuming.len())
                .unwrap_or(i32::MAX),
            cached_msg_size_in_mib: i32::try_from(buffer.bytes / (1024 * 1024)).unwrap_or(i32::MAX),
            locked: self.locked.load(Ordering::Acquire),
            droped: self.is_dropped(),
            ..ProcessQueueInfo::default()
        }
    }

    pub(crate) fn has_waiting(&self) -> bool {
        !self.buffer.lock().waiting.is_empty()
    }

    pub(crate) fn set_locked(&self, locked: bool) {
        self.locked.store(locked, Ordering::Release);
        if locked {
            *self.lock_taken_at.lock() = Some(Instant::now());
        }
    }

    /// Whether this client holds a broker lock on the queue that is still trusted.
    pub(crate) fn holds_lock(&self) -> bool {
        self.locked.load(Ordering::Acquire)
            && self
                .lock_taken_at
                .lock()
                .is_some_and(|at| at.elapsed() < LOCK_TRUST)
    }
}

fn commit_point(buffer: &Buffer) -> Option<i64> {
    match buffer.waiting.keys().next() {
        Some(first) => Some(*first),
        None => buffer.max_offset.map(|max| max + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::collections::HashMap;

    fn message(offset: i64) -> ReceivedMessage {
        let host = "127.0.0.1:1".parse().unwrap();
        ReceivedMessage {
            topic: "T".into(),
            queue: MessageQueue::new("T", "b", 0),
            queue_offset: offset,
            commit_log_offset: offset * 100,
            body: Bytes::from(vec![0u8; 10]),
            flag: 0,
            sys_flag: 0,
            born_timestamp_ms: 0,
            born_host: host,
            store_timestamp_ms: 0,
            store_host: host,
            reconsume_times: 0,
            properties: HashMap::new(),
            offset_msg_id: String::new(),
        }
    }

    fn queue() -> ProcessQueue {
        ProcessQueue::new(MessageQueue::new("T", "b", 0), &CancellationToken::new())
    }

    #[test]
    fn commit_offset_waits_for_the_slowest_message() {
        let pq = queue();
        pq.put(&[message(5), message(6), message(7)]);
        assert_eq!((pq.count(), pq.bytes(), pq.span()), (3, 30, 2));
        assert_eq!(pq.remove(&[6, 7]), Some(5));
        assert_eq!(pq.remove(&[5]), Some(8));
        assert_eq!((pq.count(), pq.bytes()), (0, 0));
        assert_eq!(pq.remove(&[]), Some(8));
    }

    #[test]
    fn duplicates_are_buffered_once() {
        let pq = queue();
        pq.put(&[message(1)]);
        pq.put(&[message(1)]);
        assert_eq!(pq.count(), 1);
        assert_eq!(pq.bytes(), 10);
    }

    #[test]
    fn ordered_consumption_commits_in_order_and_rolls_back_to_the_front() {
        let pq = queue();
        pq.put(&[message(3), message(1), message(2)]);
        let first = pq.take_in_order(2);
        assert_eq!(
            first.iter().map(|m| m.queue_offset).collect::<Vec<_>>(),
            [1, 2]
        );
        pq.roll_back_in_order();
        let again = pq.take_in_order(1);
        assert_eq!(again[0].queue_offset, 1);
        assert_eq!(again[0].reconsume_times, 1);
        assert_eq!(pq.commit_in_order(), Some(2));
        assert_eq!(pq.take_in_order(5).len(), 2);
        assert_eq!(pq.commit_in_order(), Some(4));
        assert!(!pq.has_waiting());
        assert_eq!(pq.bytes(), 0);
    }

    #[tokio::test]
    async fn locks_are_trusted_for_a_while() {
        let pq = queue();
        assert!(!pq.holds_lock());
        pq.set_locked(true);
        assert!(pq.holds_lock());
        pq.set_locked(false);
        assert!(!pq.holds_lock());
        pq.drop_queue();
        assert!(pq.is_dropped() && pq.cancel.is_cancelled());
    }
}
