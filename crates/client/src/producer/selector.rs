//! Choosing a queue for a send: round robin that steers around brokers that just failed,
//! and the key hash ordered messages use.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use message::tag_hash;
use parking_lot::Mutex;
use remoting::body::MessageQueue;
use tokio::time::Instant;

/// Round-robin queue choice with a short memory of failed brokers.
#[derive(Debug)]
pub(crate) struct QueueChooser {
    next: AtomicUsize,
    /// Broker name → when it may be chosen again.
    faulty_until: Mutex<HashMap<String, Instant>>,
    backoff: Duration,
}

impl QueueChooser {
    pub(crate) fn new(backoff: Duration) -> Self {
        QueueChooser {
            next: AtomicUsize::new(rand::random::<u16>() as usize),
            faulty_until: Mutex::new(HashMap::new()),
            backoff,
        }
    }

    /// Remembers that `broker_name` just failed; it is skipped for the backoff period.
    pub(crate) fn mark_faulty(&self, broker_name: &str) {
        if self.backoff.is_zero() {
            return;
        }
        self.faulty_until
            .lock()
            .insert(broker_name.to_owned(), Instant::now() + self.backoff);
    }

    /// Forgets a broker's failure after it served a send.
    pub(crate) fn mark_healthy(&self, broker_name: &str) {
        let mut faulty = self.faulty_until.lock();
        if !faulty.is_empty() {
            faulty.remove(broker_name);
        }
    }

    /// The next queue in round-robin order, skipping `avoid` (the broker the previous
    /// attempt failed on) and brokers in backoff. When every queue is on such brokers it
    /// still returns one: first one not on `avoid`, else the plain next queue, because a
    /// single-broker topic has nowhere else to go.
    pub(crate) fn choose(
        &self,
        queues: &[MessageQueue],
        avoid: Option<&str>,
    ) -> Option<MessageQueue> {
        if queues.is_empty() {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let in_backoff = {
            let mut faulty = self.faulty_until.lock();
            faulty.retain(|_, until| *until > now);
            let names: Vec<String> = faulty.keys().cloned().collect();
            names
        };
        let nth = |i: usize| &queues[(start.wrapping_add(i)) % queues.len()];
        let healthy = (0..queues.len()).map(nth).find(|q| {
            Some(q.broker_name.as_str()) != avoid && !in_backoff.contains(&q.broker_name)
        });
        healthy
            .or_else(|| {
                (0..queues.len())
                    .map(nth)
                    .find(|q| Some(q.broker_name.as_str()) != avoid)
            })
            .or_else(|| Some(nth(0)))
            .cloned()
    }
}

/// The queue index Java's `SelectMessageQueueByHash` picks for `key`: the key's Java
/// `hashCode` modulo the queue count, made non-negative. Using the same function keeps
/// a key on the same queue whichever client sent it.
pub fn hash_queue_index(key: &str, queue_count: usize) -> usize {
    if queue_count == 0 {
        return 0;
    }
    let count = i64::try_from(queue_count).unwrap_or(i64::MAX);
    let hash = i64::from(tag_hash(key) as i32);
    usize::try_from((hash % count).abs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queues() -> Vec<MessageQueue> {
        let mut out = Vec::new();
        for broker in ["a", "b"] {
            for id in 0..2 {
                out.push(MessageQueue::new("T", broker, id));
            }
        }
        out
    }

    #[tokio::test]
    async fn round_robin_visits_every_queue() {
        let chooser = QueueChooser::new(Duration::from_secs(1));
        let queues = queues();
        let mut seen: Vec<_> = (0..4)
            .map(|_| chooser.choose(&queues, None).unwrap())
            .collect();
        seen.sort();
        assert_eq!(seen, queues);
    }

    #[tokio::test]
    async fn retries_avoid_the_failed_broker_and_backoff_skips_it() {
        let chooser = QueueChooser::new(Duration::from_secs(60));
        let queues = queues();
        for _ in 0..8 {
            assert_eq!(chooser.choose(&queues, Some("a")).unwrap().broker_name, "b");
        }
        chooser.mark_faulty("b");
        for _ in 0..8 {
            assert_eq!(chooser.choose(&queues, None).unwrap().broker_name, "a");
        }
        // Everything is unhealthy: still pick something, not the broker just failed.
        assert_eq!(chooser.choose(&queues, Some("a")).unwrap().broker_name, "b");
        chooser.mark_healthy("b");
        let brokers: std::collections::BTreeSet<_> = (0..8)
            .map(|_| chooser.choose(&queues, None).unwrap().broker_name)
            .collect();
        assert_eq!(brokers.len(), 2);
    }

    #[tokio::test]
    async fn single_broker_topics_still_get_a_queue() {
        let chooser = QueueChooser::new(Duration::from_secs(60));
        let only_a: Vec<_> = queues()
            .into_iter()
            .filter(|q| q.broker_name == "a")
            .collect();
        chooser.mark_faulty("a");
        assert_eq!(chooser.choose(&only_a, Some("a")).unwrap().broker_name, "a");
        assert!(chooser.choose(&[], None).is_none());
    }

    #[test]
    fn hash_selection_matches_java() {
        // "TagA".hashCode() == 2598919; 2598919 % 4 == 3.
        assert_eq!(hash_queue_index("TagA", 4), 3);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE: Java's abs of the remainder.
        assert_eq!(hash_queue_index("polygenelubricants", 3), 2);
        assert_eq!(hash_queue_index("anything", 0), 0);
        for count in 1..10 {
            assert!(hash_queue_index("order-17", count) < count);
        }
    }
}
