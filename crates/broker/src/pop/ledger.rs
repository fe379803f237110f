//! The open checkpoints, as the revive topic says them: each member builds it by reading
//! the topic in order, so a member that becomes master knows which popped messages are
//! still unacknowledged and when they become visible again.
//!
//! A checkpoint closes when every offset it handed out is acknowledged, or when its
//! *revived* marker is read (its unacknowledged messages were stored again for
//! redelivery). Nothing else closes one: dropping an open checkpoint would lose its
//! messages, as the group's offset has moved past them. Admission (a pop) is what keeps
//! the count bounded.

use std::collections::{BTreeSet, HashMap};

use super::record::{CheckpointKey, PopRecord};

struct Open {
    revive_at: i64,
    unacked: BTreeSet<i64>,
    /// Where in the revive queue the checkpoint was read: scanning again from the lowest of
    /// these finds every open checkpoint.
    record_offset: i64,
}

#[derive(Default)]
pub struct Ledger {
    open: HashMap<CheckpointKey, Open>,
    by_revive_time: BTreeSet<(i64, CheckpointKey)>,
    by_record_offset: BTreeSet<(i64, CheckpointKey)>,
    /// Revive-queue records below this were read.
    read_below: i64,
}

/// A checkpoint whose invisible time ran out, with what it still owes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub key: CheckpointKey,
    pub unacked: Vec<i64>,
}

impl Ledger {
    pub fn read_below(&self) -> i64 {
        self.read_below
    }

    /// Starts reading at `offset` (where the recorded progress says no open checkpoint is
    /// below), when nothing was read yet.
    pub fn start_at(&mut self, offset: i64) {
        if self.read_below < offset && self.open.is_empty() {
            self.read_below = offset;
        }
    }

    /// Takes in the record stored at `record_offset` of the revive queue.
    pub fn take_in(&mut self, record_offset: i64, record: PopRecord) {
        self.read_below = self.read_below.max(record_offset + 1);
        match record {
            PopRecord::Checkpoint {
                key,
                invisible_time,
                offsets,
            } => {
                if offsets.is_empty() {
                    return;
                }
                let revive_at = key.pop_time.saturating_add(invisible_time.max(0));
                if let Some(open) = self.open.get_mut(&key) {
                    // The same message changed twice within a millisecond: one checkpoint.
                    open.unacked.extend(offsets);
                    return;
                }
                self.by_revive_time.insert((revive_at, key.clone()));
                self.by_record_offset.insert((record_offset, key.clone()));
                self.open.insert(
                    key,
                    Open {
                        revive_at,
                        unacked: offsets.into_iter().collect(),
                        record_offset,
                    },
                );
            }
            PopRecord::Ack { key, offsets } => {
                let Some(open) = self.open.get_mut(&key) else {
                    return;
                };
                for offset in offsets {
                    open.unacked.remove(&offset);
                }
                if open.unacked.is_empty() {
                    self.close(&key);
                }
            }
            PopRecord::Revived { key } => self.close(&key),
            PopRecord::Barrier { .. } => {}
        }
    }

    /// Forgets a checkpoint (all acknowledged, or revived).
    pub fn close(&mut self, key: &CheckpointKey) {
        if let Some(open) = self.open.remove(key) {
            self.by_revive_time.remove(&(open.revive_at, key.clone()));
            self.by_record_offset
                .remove(&(open.record_offset, key.clone()));
        }
    }

    /// Up to `max` checkpoints whose invisible time ended at or before `now_ms`, earliest
    /// first.
    pub fn due(&self, now_ms: i64, max: usize) -> Vec<Due> {
        self.by_revive_time
            .iter()
            .take_while(|(revive_at, _)| *revive_at <= now_ms)
            .take(max)
            .filter_map(|(_, key)| {
                let open = self.open.get(key)?;
                Some(Due {
                    key: key.clone(),
                    unacked: open.unacked.iter().copied().collect(),
                })
            })
            .collect()
    }

    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// Unacknowledged offsets of all open checkpoints (popped messages in flight).
    pub fn in_flight(&self) -> usize {
        self.open.values().map(|open| open.unacked.len()).sum()
    }

    /// Each open checkpoint with its unacknowledged messages.
    pub fn unacked_by_checkpoint(&self) -> impl Iterator<Item = (&CheckpointKey, usize)> {
        self.open
            .iter()
            .map(|(key, open)| (key, open.unacked.len()))
    }

    /// Where reading must start again to find every open checkpoint.
    pub fn low_watermark(&self) -> i64 {
        self.by_record_offset
            .first()
            .map_or(self.read_below, |(offset, _)| *offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(start: i64, pop_time: i64) -> CheckpointKey {
        CheckpointKey {
            group: "G".into(),
            topic: "T".into(),
            queue_id: 0,
            start_offset: start,
            pop_time,
        }
    }

    fn checkpoint(start: i64, pop_time: i64, offsets: &[i64]) -> PopRecord {
        PopRecord::Checkpoint {
            key: key(start, pop_time),
            invisible_time: 1000,
            offsets: offsets.to_vec(),
        }
    }

    #[test]
    fn a_change_of_invisible_time_within_the_pop_millisecond_keeps_the_message() {
        // Popped at 5 (offsets 10..=12 from offset 10), then offset 10, the one that opened
        // the checkpoint, given 8 s more before the clock moved on.
        let mut ledger = Ledger::default();
        ledger.take_in(0, checkpoint(10, 5, &[10, 11, 12]));
        let (records, pop_time) = PopRecord::renewal(key(10, 5), 10, 8000, 5);
        assert!(pop_time > 5, "the receipt names a checkpoint of its own");
        for (i, record) in records.into_iter().enumerate() {
            ledger.take_in(1 + i as i64, record);
        }
        let at_old_time: Vec<_> = ledger.due(5 + 1000, 10).into_iter().collect();
        assert_eq!(at_old_time.len(), 1);
        assert_eq!(at_old_time[0].unacked, vec![11, 12]);
        ledger.close(&key(10, 5));
        let renewed = ledger.due(pop_time + 8000, 10);
        assert_eq!(renewed.len(), 1, "the postponed message comes back");
        assert_eq!(renewed[0].unacked, vec![10]);
        assert_eq!(renewed[0].key.pop_time, pop_time);
    }

    #[test]
    fn a_checkpoint_closes_when_every_offset_is_acked() {
        let mut ledger = Ledger::default();
        ledger.take_in(0, checkpoint(10, 5, &[10, 11, 12]));
        ledger.take_in(
            1,
            PopRecord::Ack {
                key: key(10, 5),
                offsets: vec![10, 12],
            },
        );
        assert_eq!(
            ledger.due(1005, 10),
            vec![Due {
                key: key(10, 5),
                unacked: vec![11]
            }]
        );
        assert!(ledger.due(1004, 10).is_empty(), "not before its time");
        ledger.take_in(
            2,
            PopRecord::Ack {
                key: key(10, 5),
                offsets: vec![11],
            },
        );
        assert_eq!(ledger.open_count(), 0);
        assert_eq!(ledger.low_watermark(), 3);
    }

    #[test]
    fn revived_markers_close_and_the_watermark_follows_the_oldest_open() {
        let mut ledger = Ledger::default();
        ledger.start_at(100);
        ledger.take_in(100, checkpoint(0, 1, &[0]));
        ledger.take_in(101, checkpoint(1, 2, &[1]));
        assert_eq!(ledger.low_watermark(), 100);
        assert_eq!(ledger.in_flight(), 2);
        ledger.take_in(102, PopRecord::Revived { key: key(0, 1) });
        assert_eq!(ledger.low_watermark(), 101);
        // Acks and markers of checkpoints it does not hold change nothing.
        ledger.take_in(
            103,
            PopRecord::Ack {
                key: key(7, 7),
                offsets: vec![7],
            },
        );
        ledger.take_in(104, PopRecord::Revived { key: key(8, 8) });
        assert_eq!(ledger.open_count(), 1);
        assert_eq!(ledger.read_below(), 105);
    }

    #[test]
    fn due_checkpoints_come_earliest_first_and_bounded() {
        let mut ledger = Ledger::default();
        ledger.take_in(0, checkpoint(0, 30, &[0]));
        ledger.take_in(1, checkpoint(1, 10, &[1]));
        ledger.take_in(2, checkpoint(2, 20, &[2]));
        let due: Vec<i64> = ledger
            .due(i64::MAX, 2)
            .into_iter()
            .map(|d| d.key.start_offset)
            .collect();
        assert_eq!(due, vec![1, 2]);
    }
}
