//! The role manager: the broker's role follows the replicated store's readiness.
//!
//! Master (brokerId 0) only while the store is *writable*: this node leads, its no-op and
//! so everything before it is committed and dispatched, and its queue-offset table was
//! rebuilt, so queue offsets continue densely from where the last master stopped. Any
//! other state (follower, candidate, a leader still catching up, a leader handing off) is
//! slave with brokerId = `dLegerSelfId` digits + 1. Every change re-registers with the name
//! servers at once (see [`crate::BrokerContext::change_role`]), so clients find the new
//! master on their next route refresh.

use std::sync::Arc;

use store::ReplicaStatus;
use tokio::sync::watch;

use crate::context::BrokerContext;
use crate::role::Role;

/// The role a replica status implies.
pub fn role_for(status: &ReplicaStatus, slave_id: u64) -> (Role, u64) {
    if status.writable {
        (Role::Master, 0)
    } else {
        (Role::Slave, slave_id)
    }
}

/// Follows `status` until shutdown or until the store stops publishing.
pub async fn follow(ctx: Arc<BrokerContext>, mut status: watch::Receiver<ReplicaStatus>) {
    let slave_id = ctx.config.dledger_slave_id();
    loop {
        let now = *status.borrow_and_update();
        let (role, broker_id) = role_for(&now, slave_id);
        if ctx.role.role() != role {
            tracing::info!(?role, term = now.term, leader = ?now.leader, commit = now.commit_index,
                "raft role change seen");
        }
        ctx.change_role(role, broker_id);
        tokio::select! {
            changed = status.changed() => {
                if changed.is_err() {
                    ctx.change_role(Role::Slave, slave_id);
                    return;
                }
            }
            _ = ctx.shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::{NodeId, Role as RaftRole};

    fn status(role: RaftRole, writable: bool) -> ReplicaStatus {
        ReplicaStatus {
            id: NodeId(1),
            role,
            term: 3,
            leader: Some(NodeId(1)),
            writable,
            commit_index: 10,
            applied_index: 10,
        }
    }

    #[test]
    fn only_a_writable_leader_is_master() {
        assert_eq!(
            role_for(&status(RaftRole::Leader, true), 2),
            (Role::Master, 0)
        );
        assert_eq!(
            role_for(&status(RaftRole::Leader, false), 2),
            (Role::Slave, 2)
        );
        assert_eq!(
            role_for(&status(RaftRole::Follower, false), 2),
            (Role::Slave, 2)
        );
    }
}
