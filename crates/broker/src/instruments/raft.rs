//! A group member's raft work: elections and leadership changes it sees, counted from its
//! raft state as it is published (a term that moves on by k means k elections ran, even
//! when the published states between them were coalesced); how long each fsync of its log
//! took, how many proposals each leader append took in (the group commit) and the damaged
//! entries it found and repaired from a peer, as its raft driver reports them.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use raft::{DriverObserver, RaftState};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Fsync durations, in milliseconds.
const FSYNC_BUCKETS_MS: [f64; 12] = [
    0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0,
];
/// Proposals per leader append.
const APPEND_BUCKETS: [f64; 11] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// Clones share their values.
#[derive(Debug, Clone)]
pub struct RaftCounters {
    elections: Counter,
    leader_changes: Counter,
    fsync_latency: Histogram,
    entries_per_append: Histogram,
    damaged_entries: Counter,
    repaired_entries: Counter,
}

impl Default for RaftCounters {
    fn default() -> Self {
        RaftCounters {
            elections: Counter::default(),
            leader_changes: Counter::default(),
            fsync_latency: Histogram::new(FSYNC_BUCKETS_MS),
            entries_per_append: Histogram::new(APPEND_BUCKETS),
            damaged_entries: Counter::default(),
            repaired_entries: Counter::default(),
        }
    }
}

impl DriverObserver for RaftCounters {
    fn log_synced(&self, elapsed: Duration) {
        self.fsync_latency.observe(elapsed.as_secs_f64() * 1000.0);
    }

    fn proposals_appended(&self, entries: usize) {
        self.entries_per_append.observe(entries as f64);
    }

    fn entry_damaged(&self) {
        self.damaged_entries.inc();
    }

    fn entry_repaired(&self) {
        self.repaired_entries.inc();
    }
}

impl RaftCounters {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "rocketmq_raft_elections",
            "Elections seen by this member (raft terms begun)",
            self.elections.clone(),
        );
        registry.register(
            "rocketmq_raft_leader_changes",
            "Times this member saw a different leader take over",
            self.leader_changes.clone(),
        );
        registry.register(
            "rocketmq_raft_fsync_latency",
            "How long each fsync of the raft log took, in milliseconds",
            self.fsync_latency.clone(),
        );
        registry.register(
            "rocketmq_raft_entries_per_append",
            "Proposals the leader appended to its log at once",
            self.entries_per_append.clone(),
        );
        registry.register(
            "rocketmq_raft_entries_damaged",
            "Entries of this member's log a read found damaged (bit rot), each asked of the other members",
            self.damaged_entries.clone(),
        );
        registry.register(
            "rocketmq_raft_entries_repaired",
            "Damaged entries of this member's log rewritten from another member's copy",
            self.repaired_entries.clone(),
        );
    }

    /// Counts until `shutdown` or until the raft node stops publishing.
    pub async fn follow(self, mut state: watch::Receiver<RaftState>, shutdown: CancellationToken) {
        let (mut term, mut leader) = {
            let now = state.borrow_and_update();
            (now.term, now.leader)
        };
        loop {
            tokio::select! {
                changed = state.changed() => if changed.is_err() { return },
                _ = shutdown.cancelled() => return,
            }
            let now = *state.borrow_and_update();
            if now.term > term {
                self.elections.inc_by(now.term - term);
                term = now.term;
            }
            if now.leader.is_some() && now.leader != leader {
                if leader.is_some() {
                    self.leader_changes.inc();
                }
                leader = now.leader;
            }
        }
    }
}
