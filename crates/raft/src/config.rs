//! Timings and limits of the consensus core.
//!
//! The defaults aim at a failover of about one second on a LAN, against DLedger's ten:
//! - the leader sends a heartbeat every 100 ms (DLedger: 2000 ms);
//! - a follower that hears nothing for `max_heartbeat_leak` x 100 ms = 500 ms becomes a
//!   candidate (DLedger: 3 x 2000 ms), which tolerates four lost heartbeats in a row or a
//!   400 ms stall (GC-free Rust makes long pauses rare);
//! - the candidate then waits a random 20-500 ms before its first (pre-)vote round, so two
//!   followers that lost the leader at the same moment rarely split the vote;
//! - so an election starts 520-1000 ms after the last heartbeat and, with LAN round trips of
//!   well under a millisecond, ends a few milliseconds later.
//!
//! The same `max_heartbeat_leak x heartbeat_interval_ms` is the leader's check-quorum window
//! and a follower's leader lease: a pre-vote is refused while a leader was heard within it.

/// Configuration of one raft node. Every duration is in milliseconds of the driver's clock;
/// the core counts them in ticks of `tick_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftConfig {
    /// Length of one core tick. Every other duration is rounded up to whole ticks.
    pub tick_ms: u64,
    /// How often a leader sends heartbeats (DLedger `heartBeatTimeIntervalMs`).
    pub heartbeat_interval_ms: u64,
    /// Missed heartbeats before a follower becomes a candidate, and heartbeat periods without
    /// a quorum before a leader steps down (DLedger `maxHeartBeatLeak`).
    pub max_heartbeat_leak: u64,
    /// Bounds of the random wait before a vote round (DLedger `min/maxVoteIntervalMs`).
    pub min_vote_interval_ms: u64,
    pub max_vote_interval_ms: u64,
    /// Bounds of the wait used by a node that was asked to take leadership.
    pub min_take_leadership_vote_interval_ms: u64,
    pub max_take_leadership_vote_interval_ms: u64,
    /// How long a vote round waits for answers before it is judged with what arrived.
    pub vote_round_timeout_ms: u64,
    /// Ask for a vote with a pre-vote round first, so that a node rejoining after a partition
    /// cannot depose a healthy leader by inflating the term.
    pub pre_vote: bool,
    /// A leader that has not heard from a quorum for `max_heartbeat_leak` heartbeat periods
    /// steps down and stops accepting writes.
    pub check_quorum: bool,
    /// Count an entry towards the quorum only once the node (leader included) fsynced it.
    /// Without it, an entry counts once written to storage (the OS page cache), as in DLedger.
    pub sync_flush: bool,
    /// Largest batch of entries in one append message.
    pub max_batch_entries: usize,
    pub max_batch_bytes: usize,
    /// Window of unacknowledged append messages per follower (pipelining).
    pub max_inflight_batches: usize,
    pub max_inflight_bytes: usize,
    /// An append not acknowledged within this time makes the leader re-probe the follower
    /// (DLedger `maxPushTimeOutMs`); this is what re-syncs a follower that lost messages.
    pub append_timeout_ms: u64,
    /// Largest body of a single entry.
    pub max_entry_body_bytes: usize,
    /// Proposals are refused (back-pressure) while this many entries are appended but not
    /// committed (DLedger `maxPendingRequestsNum`).
    pub max_uncommitted_entries: u64,
    /// Nodes leadership should move to when they are healthy (DLedger `preferredLeaderIds`).
    pub preferred_leaders: Vec<crate::NodeId>,
    /// How often a leader checks whether a preferred node could take over.
    pub preferred_leader_check_interval_ms: u64,
    /// A transfer is refused when the target lags by more entries than this.
    pub max_transfer_lag_entries: u64,
    /// A transfer that has not completed in this time is abandoned and writes resume.
    pub transfer_timeout_ms: u64,
    /// Seed of the random vote intervals; the driver picks one per node, the simulation
    /// derives it from the test seed so that runs reproduce.
    pub random_seed: u64,
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            tick_ms: 10,
            heartbeat_interval_ms: 100,
            max_heartbeat_leak: 5,
            min_vote_interval_ms: 20,
            max_vote_interval_ms: 500,
            min_take_leadership_vote_interval_ms: 10,
            max_take_leadership_vote_interval_ms: 50,
            vote_round_timeout_ms: 200,
            pre_vote: true,
            check_quorum: true,
            sync_flush: false,
            max_batch_entries: 1024,
            max_batch_bytes: 1 << 20,
            max_inflight_batches: 64,
            max_inflight_bytes: 32 << 20,
            append_timeout_ms: 1000,
            max_entry_body_bytes: 4 << 20,
            max_uncommitted_entries: 100_000,
            preferred_leaders: Vec::new(),
            preferred_leader_check_interval_ms: 1000,
            max_transfer_lag_entries: 1000,
            transfer_timeout_ms: 1000,
            random_seed: 0,
        }
    }
}

/// Why a configuration cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    #[error("{low} must not exceed {high}")]
    Order {
        low: &'static str,
        high: &'static str,
    },
    #[error("heartbeat_interval_ms x max_heartbeat_leak must exceed heartbeat_interval_ms")]
    LeakTooSmall,
}

impl RaftConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive: [(&'static str, u64); 8] = [
            ("tick_ms", self.tick_ms),
            ("heartbeat_interval_ms", self.heartbeat_interval_ms),
            ("max_heartbeat_leak", self.max_heartbeat_leak),
            ("vote_round_timeout_ms", self.vote_round_timeout_ms),
            ("append_timeout_ms", self.append_timeout_ms),
            ("max_batch_entries", self.max_batch_entries as u64),
            ("max_batch_bytes", self.max_batch_bytes as u64),
            ("max_inflight_batches", self.max_inflight_batches as u64),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        if self.max_uncommitted_entries == 0 {
            return Err(ConfigError::Zero("max_uncommitted_entries"));
        }
        if self.min_vote_interval_ms > self.max_vote_interval_ms {
            return Err(ConfigError::Order {
                low: "min_vote_interval_ms",
                high: "max_vote_interval_ms",
            });
        }
        if self.min_take_leadership_vote_interval_ms > self.max_take_leadership_vote_interval_ms {
            return Err(ConfigError::Order {
                low: "min_take_leadership_vote_interval_ms",
                high: "max_take_leadership_vote_interval_ms",
            });
        }
        if self.max_heartbeat_leak < 2 {
            return Err(ConfigError::LeakTooSmall);
        }
        Ok(())
    }

    /// Ticks covering `ms`, rounded up, at least one.
    pub(crate) fn ticks(&self, ms: u64) -> u64 {
        ms.div_ceil(self.tick_ms.max(1)).max(1)
    }

    /// The follower timeout, leader lease and check-quorum window, in ticks.
    pub(crate) fn leader_timeout_ticks(&self) -> u64 {
        self.ticks(
            self.heartbeat_interval_ms
                .saturating_mul(self.max_heartbeat_leak),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_fail_over_in_about_a_second() {
        let config = RaftConfig::default();
        config.validate().unwrap();
        let worst_ms =
            config.heartbeat_interval_ms * config.max_heartbeat_leak + config.max_vote_interval_ms;
        assert!(worst_ms <= 1000, "worst-case election start {worst_ms} ms");
    }

    #[test]
    fn rejects_inverted_bounds_and_zeros() {
        let mut config = RaftConfig {
            min_vote_interval_ms: 10,
            max_vote_interval_ms: 5,
            ..RaftConfig::default()
        };
        assert!(matches!(config.validate(), Err(ConfigError::Order { .. })));
        config.max_vote_interval_ms = 50;
        config.tick_ms = 0;
        assert_eq!(config.validate(), Err(ConfigError::Zero("tick_ms")));
    }
}
