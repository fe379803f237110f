//! The role manager: the broker's role follows the replicated store's readiness.
//!
//! Master (brokerId 0) only while the store is *writable*: this node leads, its no-op and
//! so everything before it is committed and dispatched, and its queue-offset table was
//! rebuilt, so queue offsets continue densely from where the last master stopped. Any
//! other state (follower, candidate, a leader still catching up, a leader handing off) is
//! slave with brokerId = `dLegerSelfId` digits + 1. Every change re-registers with the name
//! servers at once, so clients find the new master on their next route refresh.

use std::sync::Arc;

use store::ReplicaStatus;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::role::{Role, RoleState};

/// The role a replica status implies, given whether the metadata tables are complete (a
/// member rebuilt after a log restart must not register as master with half its topics).
pub fn role_for(status: &ReplicaStatus, metadata_complete: bool, slave_id: u64) -> (Role, u64) {
    if status.writable && metadata_complete {
        (Role::Master, 0)
    } else {
        (Role::Slave, slave_id)
    }
}

/// The broker's role and what must hear of its changes.
pub struct RoleManager {
    pub role: Arc<RoleState>,
    /// Fired at every change, so name servers route clients to the new master at once.
    pub registration_needed: Arc<Notify>,
    /// The id this member registers with as a slave.
    pub slave_id: u64,
    pub shutdown: CancellationToken,
}

impl RoleManager {
    fn change(&self, role: Role, broker_id: u64) {
        if self.role.set(role, broker_id) {
            tracing::info!(?role, broker_id, "broker role changed");
            self.registration_needed.notify_one();
        }
    }
}

/// Follows `status` (and the metadata's completeness) until shutdown or until the store
/// stops publishing.
pub async fn follow(
    manager: RoleManager,
    mut status: watch::Receiver<ReplicaStatus>,
    mut metadata_complete: watch::Receiver<bool>,
) {
    let slave_id = manager.slave_id;
    let mut removed = false;
    loop {
        let now = *status.borrow_and_update();
        let complete = *metadata_complete.borrow_and_update();
        if now.removed != removed {
            removed = now.removed;
            if removed {
                tracing::warn!(term = now.term, "the group removed this member: it leaves the \
                    name servers' routes (stop this broker, or add it back with mqadmin addGroupMember)");
            } else {
                tracing::info!(term = now.term, "a member of the group again");
            }
            manager.registration_needed.notify_one();
        }
        let (role, broker_id) = role_for(&now, complete, slave_id);
        if manager.role.role() != role {
            tracing::info!(?role, term = now.term, leader = ?now.leader, commit = now.commit_index,
                metadata_complete = complete, "raft role change seen");
        }
        manager.change(role, broker_id);
        tokio::select! {
            changed = status.changed() => {
                if changed.is_err() {
                    manager.change(Role::Slave, slave_id);
                    return;
                }
            }
            changed = metadata_complete.changed() => {
                if changed.is_err() {
                    manager.change(Role::Slave, slave_id);
                    return;
                }
            }
            _ = manager.shutdown.cancelled() => return,
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
            removed: false,
        }
    }

    #[test]
    fn only_a_writable_leader_is_master() {
        assert_eq!(
            role_for(&status(RaftRole::Leader, true), true, 2),
            (Role::Master, 0)
        );
        assert_eq!(
            role_for(&status(RaftRole::Leader, true), false, 2),
            (Role::Slave, 2),
            "not while a metadata copy is owed"
        );
        assert_eq!(
            role_for(&status(RaftRole::Leader, false), true, 2),
            (Role::Slave, 2)
        );
        assert_eq!(
            role_for(&status(RaftRole::Follower, false), true, 2),
            (Role::Slave, 2)
        );
    }
}
