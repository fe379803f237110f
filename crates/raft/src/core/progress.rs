//! What a leader knows about each follower's log: DLedger's entry-dispatcher state per peer,
//! the window of in-flight appends, and the quorum arithmetic over match indexes.

use std::collections::VecDeque;

use crate::NodeId;

/// Replication state of one follower, after DLedger's `EntryDispatcher`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaState {
    /// Finding where the follower's log matches ours: one probe in flight at a time.
    Compare,
    /// The follower is behind our first retained entry (or lost its log): its log restarts at
    /// our first entry. One probe in flight at a time.
    Truncate,
    /// Logs match; batches are pipelined up to the window.
    Append,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Inflight {
    pub last_index: u64,
    pub bytes: usize,
    pub sent_at: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Progress {
    pub id: NodeId,
    pub state: ReplicaState,
    /// Highest index known to be on the follower (durably, with `sync_flush`).
    pub match_index: u64,
    /// Highest index known to be on the follower's disk (at most `match_index`).
    pub durable_match: u64,
    /// Next index to send.
    pub next_index: u64,
    pub inflight: VecDeque<Inflight>,
    pub inflight_bytes: usize,
    /// Sequence number of the next append to this follower.
    pub next_seq: u64,
    /// Answers to appends sent before this sequence number predate the last rewind; their
    /// complaints are stale and ignored.
    pub rewind_seq: u64,
    /// Appends sent from this sequence number on left after `match_index` was last raised,
    /// so the follower processed them after it held `match_index`.
    pub match_seq: u64,
    /// Tick of the last answer of any kind in the current term (check-quorum).
    pub last_contact: u64,
}

impl Progress {
    pub fn new(id: NodeId, next_index: u64, now: u64) -> Progress {
        Progress {
            id,
            state: ReplicaState::Compare,
            match_index: 0,
            durable_match: 0,
            next_index,
            inflight: VecDeque::new(),
            inflight_bytes: 0,
            next_seq: 1,
            rewind_seq: 1,
            match_seq: 1,
            last_contact: now,
        }
    }

    /// Forgets everything in flight and starts probing from `next_index`.
    pub fn rewind(&mut self, state: ReplicaState, next_index: u64) {
        self.state = state;
        self.next_index = next_index.max(self.match_index + 1);
        self.inflight.clear();
        self.inflight_bytes = 0;
        self.rewind_seq = self.next_seq;
    }

    /// Drops in-flight batches the follower has acknowledged.
    pub fn release_through(&mut self, index: u64) {
        while let Some(front) = self.inflight.front() {
            if front.last_index > index {
                break;
            }
            self.inflight_bytes = self.inflight_bytes.saturating_sub(front.bytes);
            self.inflight.pop_front();
        }
    }

    pub fn record_sent(&mut self, last_index: u64, bytes: usize, now: u64) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.inflight.push_back(Inflight {
            last_index,
            bytes,
            sent_at: now,
        });
        self.inflight_bytes += bytes;
        seq
    }

    /// Whether another append may be sent now.
    pub fn can_send(&self, max_batches: usize, max_bytes: usize) -> bool {
        match self.state {
            ReplicaState::Compare | ReplicaState::Truncate => self.inflight.is_empty(),
            ReplicaState::Append => {
                self.inflight.len() < max_batches && self.inflight_bytes < max_bytes
            }
        }
    }

    /// The oldest unanswered append is older than `timeout` ticks.
    pub fn timed_out(&self, now: u64, timeout: u64) -> bool {
        self.inflight
            .front()
            .is_some_and(|front| now.saturating_sub(front.sent_at) >= timeout)
    }
}

/// The highest index held by a quorum, given every member's (leader included) index:
/// the `quorum`-th largest. `scratch` avoids an allocation per call on the hot path.
pub(crate) fn quorum_index(indexes: &[u64], scratch: &mut Vec<u64>) -> u64 {
    scratch.clear();
    scratch.extend_from_slice(indexes);
    scratch.sort_unstable_by(|a, b| b.cmp(a));
    let quorum = super::vote::quorum(indexes.len());
    scratch.get(quorum - 1).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_index_is_the_majority_floor() {
        let mut scratch = Vec::new();
        assert_eq!(quorum_index(&[7], &mut scratch), 7);
        assert_eq!(quorum_index(&[9, 3, 5], &mut scratch), 5);
        assert_eq!(quorum_index(&[9, 3, 5, 1, 8], &mut scratch), 5);
        assert_eq!(quorum_index(&[9, 0, 0], &mut scratch), 0);
    }

    #[test]
    fn window_and_release() {
        let mut p = Progress::new(NodeId(1), 1, 0);
        p.state = ReplicaState::Append;
        p.record_sent(5, 100, 0);
        p.record_sent(9, 100, 1);
        assert!(!p.can_send(2, 1000));
        assert!(!p.can_send(8, 150));
        p.release_through(6);
        assert_eq!(p.inflight.len(), 1);
        assert!(p.can_send(2, 1000));
        assert!(p.timed_out(11, 10));
        assert!(!p.timed_out(10, 10));
        p.rewind(ReplicaState::Compare, 3);
        assert!(p.inflight.is_empty());
        assert_eq!(p.rewind_seq, 3);
    }
}
