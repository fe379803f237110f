//! How a consumer group shares a topic's queues (clients rebalancing themselves, and a
//! broker answering QUERY_ASSIGNMENT for them). Every member computes the same answer
//! from the same sorted inputs (the queues from the route, the member ids from a broker),
//! so no coordination is needed beyond agreeing on those lists.

use crate::body::MessageQueue;

/// RocketMQ's allocation strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AllocateStrategy {
    /// Contiguous blocks; the first `queues % members` members get one extra
    /// (`AllocateMessageQueueAveragely`, Java's default).
    #[default]
    Averagely,
    /// Queue `i` goes to member `i % members` (`AllocateMessageQueueAveragelyByCircle`).
    AveragelyByCircle,
}

impl AllocateStrategy {
    /// The queues `me` gets. Both lists are sorted here, so callers may pass them in any
    /// order. A member missing from `members` gets nothing (its heartbeat has not reached
    /// the broker yet).
    pub fn allocate(
        self,
        me: &str,
        queues: &[MessageQueue],
        members: &[String],
    ) -> Vec<MessageQueue> {
        let mut queues = queues.to_vec();
        queues.sort();
        queues.dedup();
        let mut members = members.to_vec();
        members.sort();
        members.dedup();
        let Some(index) = members.iter().position(|m| m == me) else {
            return Vec::new();
        };
        if queues.is_empty() {
            return Vec::new();
        }
        let count = members.len();
        match self {
            AllocateStrategy::Averagely => {
                let total = queues.len();
                let remainder = total % count;
                let size = if total <= count {
                    1
                } else if remainder > 0 && index < remainder {
                    total / count + 1
                } else {
                    total / count
                };
                let start = if remainder > 0 && index < remainder {
                    index * size
                } else {
                    index * size + remainder
                };
                let range = size.min(total.saturating_sub(start));
                (0..range)
                    .filter_map(|i| queues.get((start + i) % total).cloned())
                    .collect()
            }
            AllocateStrategy::AveragelyByCircle => queues
                .into_iter()
                .enumerate()
                .filter(|(i, _)| i % count == index)
                .map(|(_, q)| q)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn queues(n: i32) -> Vec<MessageQueue> {
        (0..n).map(|i| MessageQueue::new("T", "b", i)).collect()
    }

    fn members(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn averagely_gives_contiguous_blocks_like_java() {
        let all = queues(8);
        let ids = members(3);
        let got: Vec<Vec<i32>> = ids
            .iter()
            .map(|me| {
                AllocateStrategy::Averagely
                    .allocate(me, &all, &ids)
                    .iter()
                    .map(|q| q.queue_id)
                    .collect()
            })
            .collect();
        assert_eq!(got, [vec![0, 1, 2], vec![3, 4, 5], vec![6, 7]]);
    }

    #[test]
    fn every_queue_goes_to_exactly_one_member() {
        for strategy in [
            AllocateStrategy::Averagely,
            AllocateStrategy::AveragelyByCircle,
        ] {
            for queue_count in 0..12 {
                for member_count in 1..6 {
                    let all = queues(queue_count);
                    let ids = members(member_count);
                    let mut seen = Vec::new();
                    for me in &ids {
                        seen.extend(strategy.allocate(me, &all, &ids));
                    }
                    let unique: BTreeSet<_> = seen.iter().cloned().collect();
                    assert_eq!(
                        seen.len(),
                        unique.len(),
                        "{strategy:?} {queue_count}/{member_count}"
                    );
                    assert_eq!(
                        unique.len(),
                        all.len(),
                        "{strategy:?} {queue_count}/{member_count}"
                    );
                }
            }
        }
    }

    #[test]
    fn unknown_members_and_input_order() {
        let all = queues(4);
        assert!(AllocateStrategy::Averagely
            .allocate("stranger", &all, &members(2))
            .is_empty());
        let mut shuffled = all.clone();
        shuffled.reverse();
        let reversed_ids: Vec<String> = members(2).into_iter().rev().collect();
        assert_eq!(
            AllocateStrategy::Averagely.allocate("c0", &shuffled, &reversed_ids),
            all[..2].to_vec()
        );
        let circle: Vec<i32> = AllocateStrategy::AveragelyByCircle
            .allocate("c1", &all, &members(2))
            .iter()
            .map(|q| q.queue_id)
            .collect();
        assert_eq!(circle, [1, 3]);
    }
}
