//! The raft settings a simulated seed draws: fast timings on a 1 ms tick, pre-vote and
//! check-quorum mostly on, and batches and windows small enough to exercise pipelining
//! (their product stays above the proposal rate, so a backlog drains). Shared by the raft
//! simulation and the store's whole-group simulation.

use std::ops::RangeInclusive;

use raft::RaftConfig;
use rand::rngs::SmallRng;
use rand::Rng;

/// How large entries and batches may be in one simulation.
pub struct Sizes {
    pub batch_bytes: RangeInclusive<usize>,
    pub max_entry_body_bytes: usize,
}

/// No preferred leader; a simulation that wants one sets it.
pub fn raft_config(rng: &mut SmallRng, seed: u64, sync_flush: bool, sizes: Sizes) -> RaftConfig {
    RaftConfig {
        tick_ms: 1,
        heartbeat_interval_ms: 3,
        max_heartbeat_leak: 4,
        min_vote_interval_ms: 1,
        max_vote_interval_ms: rng.gen_range(4..=12),
        min_take_leadership_vote_interval_ms: 1,
        max_take_leadership_vote_interval_ms: 3,
        vote_round_timeout_ms: 8,
        pre_vote: rng.gen_bool(0.85),
        check_quorum: rng.gen_bool(0.85),
        sync_flush,
        max_batch_entries: rng.gen_range(4..=16),
        max_batch_bytes: rng.gen_range(sizes.batch_bytes),
        max_inflight_batches: rng.gen_range(2..=8),
        max_inflight_bytes: 1 << 20,
        append_timeout_ms: rng.gen_range(10..=30),
        max_entry_body_bytes: sizes.max_entry_body_bytes,
        max_uncommitted_entries: 200,
        preferred_leaders: Vec::new(),
        preferred_leader_check_interval_ms: 20,
        max_transfer_lag_entries: 20,
        transfer_timeout_ms: 20,
        random_seed: seed,
    }
}
