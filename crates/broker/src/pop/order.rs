//! Orderly pops (FIFO consumer groups, RocketMQ's `ConsumerOrderInfoManager`): a queue
//! hands out its next messages only once every message of the previous pop is
//! acknowledged or has run out of invisible time, and always from the group's committed
//! offset, so a message group is consumed in order with no two of its messages in flight
//! at once. Unacknowledged messages come back simply by being popped again, with their
//! delivery count raised; no checkpoint is stored.
//!
//! The group's offset moves to the first unacknowledged message at each ack and travels
//! through the raft log like every consumer offset: an acknowledged prefix survives a
//! failover. What a pop has in flight is known to the master that handed it out only; a
//! new master hands those messages out again at once (at least once, and a message group
//! may for that moment be in flight twice).

use std::collections::HashMap;

/// Group, topic, queue id.
pub type QueueKey = (String, String, i32);

#[derive(Debug)]
struct InFlight {
    attempt_id: Option<String>,
    pop_time: i64,
    invisible_time: i64,
    offsets: Vec<i64>,
    acked: Vec<bool>,
    /// A later visibility for an offset whose invisible time was changed.
    visible_at: HashMap<i64, i64>,
    /// Earlier deliveries of each offset (0 for a first delivery).
    counts: Vec<u32>,
}

impl InFlight {
    /// When the queue may be popped again: `None` when it may now.
    fn blocked_until(&self, now_ms: i64) -> Option<i64> {
        let default_visible = self.pop_time.saturating_add(self.invisible_time);
        self.offsets
            .iter()
            .zip(&self.acked)
            .filter(|(_, acked)| !**acked)
            .map(|(offset, _)| {
                self.visible_at
                    .get(offset)
                    .copied()
                    .unwrap_or(default_visible)
            })
            .filter(|visible| *visible > now_ms)
            .max()
    }

    /// The group's offset once the acknowledged prefix is consumed.
    fn next_offset(&self) -> i64 {
        match self.acked.iter().position(|acked| !acked) {
            Some(i) => self.offsets[i],
            None => self.offsets.last().map_or(0, |last| last + 1),
        }
    }
}

/// What an orderly ack did.
#[derive(Debug, PartialEq, Eq)]
pub enum OrderAck {
    /// The group's offset may move to this.
    Next(i64),
    /// The receipt is from an earlier pop of the queue: nothing to record.
    Stale,
    /// The pop it names did not hand this offset out.
    Unknown,
}

/// The in-flight pops of orderly groups, per queue, bounded.
#[derive(Debug)]
pub struct OrderLedger {
    queues: HashMap<QueueKey, InFlight>,
    max_queues: usize,
}

impl OrderLedger {
    pub fn new(max_queues: usize) -> OrderLedger {
        OrderLedger {
            queues: HashMap::new(),
            max_queues,
        }
    }

    /// Until when a pop (by `attempt_id`) must leave the queue alone; `None`: it may pop.
    /// A retry of the receive that made the last pop (same attempt id) is not held back.
    pub fn blocked_until(
        &self,
        key: &QueueKey,
        attempt_id: Option<&str>,
        now_ms: i64,
    ) -> Option<i64> {
        let in_flight = self.queues.get(key)?;
        if attempt_id.is_some() && in_flight.attempt_id.as_deref() == attempt_id {
            return None;
        }
        in_flight.blocked_until(now_ms)
    }

    /// Whether a pop of a queue not yet held could be recorded (the table has room, or
    /// room can be made by dropping queues no pop holds back any more).
    pub fn has_room_for(&mut self, key: &QueueKey, now_ms: i64) -> bool {
        if self.queues.contains_key(key) || self.queues.len() < self.max_queues {
            return true;
        }
        // A queue that holds nothing back only keeps delivery counts.
        self.queues
            .retain(|_, in_flight| in_flight.blocked_until(now_ms).is_some());
        self.queues.len() < self.max_queues
    }

    /// Records a pop that handed out `offsets`; returns each one's earlier deliveries. A
    /// message handed out by the previous pop of the queue counts one more delivery (none
    /// more when the same receive attempt asks again).
    pub fn record(
        &mut self,
        key: QueueKey,
        attempt_id: Option<String>,
        pop_time: i64,
        invisible_time: i64,
        offsets: &[i64],
    ) -> Vec<u32> {
        let previous = self.queues.remove(&key);
        let counts: Vec<u32> = offsets
            .iter()
            .map(|offset| {
                let Some(previous) = &previous else {
                    return 0;
                };
                let Some(i) = previous.offsets.iter().position(|o| o == offset) else {
                    return 0;
                };
                let same_attempt =
                    attempt_id.is_some() && previous.attempt_id.as_deref() == attempt_id.as_deref();
                previous.counts[i] + u32::from(!same_attempt)
            })
            .collect();
        self.queues.insert(
            key,
            InFlight {
                attempt_id,
                pop_time,
                invisible_time,
                offsets: offsets.to_vec(),
                acked: vec![false; offsets.len()],
                visible_at: HashMap::new(),
                counts: counts.clone(),
            },
        );
        counts
    }

    /// Acknowledges `offset` of the pop made at `pop_time`. `committed`: the group's offset
    /// now; without a record of the pop (another master handed it out) only the message at
    /// the group's offset may move it, by one.
    pub fn ack(&mut self, key: &QueueKey, offset: i64, pop_time: i64, committed: i64) -> OrderAck {
        let Some(in_flight) = self.queues.get_mut(key) else {
            return if offset == committed {
                OrderAck::Next(offset + 1)
            } else {
                OrderAck::Stale
            };
        };
        if in_flight.pop_time != pop_time {
            return OrderAck::Stale;
        }
        let Some(i) = in_flight.offsets.iter().position(|o| *o == offset) else {
            return OrderAck::Unknown;
        };
        in_flight.acked[i] = true;
        let next = in_flight.next_offset();
        if in_flight.acked.iter().all(|acked| *acked) {
            self.queues.remove(key);
        }
        OrderAck::Next(next)
    }

    /// Forgets what the queue's last pop handed out (the group's offset was reset): nothing
    /// holds the queue back any more.
    pub fn forget(&mut self, key: &QueueKey) {
        self.queues.remove(key);
    }

    /// Makes `offset` of the pop made at `pop_time` visible again at `visible_at`; false
    /// when that pop is not the queue's last.
    pub fn change_visibility(
        &mut self,
        key: &QueueKey,
        offset: i64,
        pop_time: i64,
        visible_at: i64,
    ) -> bool {
        match self.queues.get_mut(key) {
            Some(in_flight)
                if in_flight.pop_time == pop_time && in_flight.offsets.contains(&offset) =>
            {
                in_flight.visible_at.insert(offset, visible_at);
                true
            }
            _ => false,
        }
    }

    /// Each queue with the messages its last pop handed out and that are not yet
    /// acknowledged.
    pub fn unacked_by_queue(&self) -> impl Iterator<Item = (&QueueKey, usize)> {
        self.queues
            .iter()
            .map(|(key, q)| (key, q.acked.iter().filter(|acked| !**acked).count()))
    }

    #[cfg(test)]
    fn in_flight(&self) -> usize {
        self.unacked_by_queue().map(|(_, n)| n).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(queue: i32) -> QueueKey {
        ("G".into(), "T".into(), queue)
    }

    #[test]
    fn a_queue_is_held_until_its_pop_is_acknowledged_in_order() {
        let mut ledger = OrderLedger::new(8);
        assert_eq!(ledger.blocked_until(&key(0), None, 0), None);
        assert_eq!(
            ledger.record(key(0), Some("a1".into()), 100, 1000, &[5, 6, 7]),
            vec![0, 0, 0]
        );
        assert_eq!(ledger.blocked_until(&key(0), None, 200), Some(1100));
        assert_eq!(
            ledger.blocked_until(&key(1), None, 200),
            None,
            "other queues"
        );
        assert_eq!(
            ledger.blocked_until(&key(0), Some("a1"), 200),
            None,
            "the same receive attempt again"
        );
        // Out of order: the offset stays at the first unacknowledged message.
        assert_eq!(ledger.ack(&key(0), 6, 100, 5), OrderAck::Next(5));
        assert_eq!(ledger.ack(&key(0), 5, 100, 5), OrderAck::Next(7));
        assert_eq!(ledger.blocked_until(&key(0), None, 200), Some(1100));
        assert_eq!(ledger.ack(&key(0), 9, 100, 7), OrderAck::Unknown);
        assert_eq!(ledger.ack(&key(0), 7, 99, 7), OrderAck::Stale, "older pop");
        assert_eq!(ledger.ack(&key(0), 7, 100, 7), OrderAck::Next(8));
        assert_eq!(ledger.blocked_until(&key(0), None, 200), None);
        assert_eq!(ledger.in_flight(), 0);
    }

    #[test]
    fn an_unacknowledged_message_comes_back_first_with_its_count_raised() {
        let mut ledger = OrderLedger::new(8);
        ledger.record(key(0), None, 100, 1000, &[5, 6]);
        assert_eq!(ledger.ack(&key(0), 5, 100, 5), OrderAck::Next(6));
        assert_eq!(ledger.blocked_until(&key(0), None, 1099), Some(1100));
        assert_eq!(ledger.blocked_until(&key(0), None, 1100), None);
        // Popped again from the group's offset: 6 a second time, 7 for the first.
        assert_eq!(ledger.record(key(0), None, 1200, 1000, &[6, 7]), vec![1, 0]);
        assert_eq!(ledger.record(key(0), None, 2300, 1000, &[6, 7]), vec![2, 1]);
        // A receive retried with its attempt id is the same delivery.
        ledger.record(key(0), Some("x".into()), 3400, 1000, &[6, 7]);
        assert_eq!(
            ledger.record(key(0), Some("x".into()), 3500, 1000, &[6, 7]),
            vec![3, 2]
        );
    }

    #[test]
    fn a_changed_invisible_time_moves_the_hold() {
        let mut ledger = OrderLedger::new(8);
        ledger.record(key(0), None, 100, 1000, &[5, 6]);
        assert!(ledger.change_visibility(&key(0), 5, 100, 300));
        assert!(ledger.change_visibility(&key(0), 6, 100, 400));
        assert_eq!(ledger.blocked_until(&key(0), None, 200), Some(400));
        assert_eq!(ledger.blocked_until(&key(0), None, 400), None);
        assert!(ledger.change_visibility(&key(0), 6, 100, 5000));
        assert_eq!(ledger.blocked_until(&key(0), None, 400), Some(5000));
        assert!(!ledger.change_visibility(&key(0), 6, 99, 9000), "older pop");
        assert!(
            !ledger.change_visibility(&key(0), 8, 100, 9000),
            "not handed out"
        );
    }

    #[test]
    fn without_a_record_only_the_message_at_the_offset_moves_it() {
        // A new master: acks of pops it did not make.
        let mut ledger = OrderLedger::new(8);
        assert_eq!(ledger.ack(&key(0), 10, 1, 10), OrderAck::Next(11));
        assert_eq!(ledger.ack(&key(0), 12, 1, 10), OrderAck::Stale);
    }

    #[test]
    fn the_table_is_bounded_and_makes_room_from_queues_it_no_longer_holds() {
        let mut ledger = OrderLedger::new(2);
        ledger.record(key(0), None, 100, 1000, &[1]);
        ledger.record(key(1), None, 100, 5000, &[1]);
        assert!(ledger.has_room_for(&key(0), 200), "a queue it has");
        assert!(!ledger.has_room_for(&key(2), 200), "both held");
        assert!(ledger.has_room_for(&key(2), 2000), "queue 0 no longer held");
        assert_eq!(ledger.in_flight(), 1);
    }
}
