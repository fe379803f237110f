//! Graceful hand-off: a master that is asked to stop (SIGTERM) first moves leadership to
//! the most up-to-date follower that answered recently, so clients see one short election
//! gap instead of the minute RocketMQ's DLedger mode takes to notice a stopped master
//! (apache/rocketmq#3858).

use std::cmp::Reverse;
use std::time::Duration;

use raft::{NodeId, Role, TransferError};
use tokio::time::Instant;
use tracing::{info, warn};

use super::GroupMember;

/// How long a stopping master tries to hand off before it stops anyway.
pub const HANDOFF_TIMEOUT: Duration = Duration::from_secs(3);
/// A follower silent for longer is not chosen.
const RECENT_CONTACT_MS: u64 = 1000;

/// If this node leads, transfers leadership (bounded by `timeout`) to the follower with
/// the highest match index among those heard from recently, trying the next on failure.
/// Returns the new leader, or `None` when this node did not lead or no transfer succeeded.
pub async fn hand_off(member: &GroupMember, timeout: Duration) -> Option<NodeId> {
    if member.store.status().role != Role::Leader {
        return None;
    }
    let deadline = Instant::now() + timeout;
    let raft = member.store.raft();
    let status = match tokio::time::timeout(timeout, raft.status()).await {
        Ok(Ok(status)) => status,
        _ => return None,
    };
    let mut candidates: Vec<_> = status
        .peers
        .iter()
        .filter(|p| p.id != member.self_id && p.last_contact_ms_ago <= RECENT_CONTACT_MS)
        .collect();
    candidates.sort_by_key(|p| Reverse(p.match_index));
    for peer in candidates {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            break;
        }
        match tokio::time::timeout(remaining, raft.transfer_leadership(peer.id)).await {
            Ok(Ok(())) => {
                info!(to = %peer.id, "leadership handed off");
                return Some(peer.id);
            }
            Ok(Err(TransferError::Superseded { leader })) => {
                info!(?leader, "another node took over during the hand-off");
                return leader;
            }
            Ok(Err(TransferError::NotLeader)) => return None,
            Ok(Err(e)) => warn!(to = %peer.id, error = %e, "leadership transfer failed"),
            Err(_) => break,
        }
    }
    warn!("no follower took over in time; stopping as leader");
    None
}
