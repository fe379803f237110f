//! Membership changes on request (DLEDGER_ADD_MEMBER, 51100, ext fields `nodeId` and
//! `raftAddr`; DLEDGER_REMOVE_MEMBER, 51101, ext field `nodeId`), carried out by the
//! group's leader one at a time (see `raft::membership`).
//!
//! An added member joins as a learner: it receives the whole log (its CommitLog, queues and
//! metadata are rebuilt from it) and becomes a voter once it has caught up, at which point
//! the answer's remark says so or `getBrokerGroup` shows it. A removed member stops
//! counting at once; its process is the operator's to stop.

use std::time::Duration;

use raft::{MembershipChange, NodeId, ProposalError, Role};

use super::status::NOT_ELECTED;
use super::GroupMember;

/// Ext field naming the member to add or remove (`n3`).
pub const NODE_ID_FIELD: &str = "nodeId";
/// Ext field with an added member's raft address (`host:port`, its `dLegerPeers` entry).
pub const RAFT_ADDR_FIELD: &str = "raftAddr";
/// How long a change may take to commit; a learner's catch-up is not waited for.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);
const CHANGE_RETRY: Duration = Duration::from_millis(50);

/// Why a membership change was not made.
#[derive(Debug, thiserror::Error)]
pub enum MembershipRefusal {
    #[error("`{0}` is not a node id like n3")]
    BadNode(String),
    #[error("this node ({id}) is not the leader; the leader is {leader}")]
    NotLeader { id: NodeId, leader: String },
    #[error("{0}")]
    Refused(String),
    #[error("the change did not commit within {0:?}; see getBrokerGroup for where it stands")]
    Timeout(Duration),
}

/// Adds `node` (raft address `raft_addr`) as a learner; it is promoted to voter once it has
/// caught up.
pub async fn add(
    member: &GroupMember,
    node: &str,
    raft_addr: &str,
) -> Result<String, MembershipRefusal> {
    let id = parse_node(node)?;
    let index = change(
        member,
        MembershipChange::Add {
            id,
            addr: raft_addr.trim().to_owned(),
        },
    )
    .await?;
    Ok(format!(
        "{id} ({raft_addr}) joins group {} as a learner at entry {index}; it becomes a voter \
         once it has caught up",
        member.group_name
    ))
}

/// Removes `node`, voter or learner. The leader cannot remove itself: transfer leadership
/// first (`mqadmin removeGroupMember` does).
pub async fn remove(member: &GroupMember, node: &str) -> Result<String, MembershipRefusal> {
    let id = parse_node(node)?;
    let index = change(member, MembershipChange::Remove(id)).await?;
    Ok(format!(
        "{id} left group {} at entry {index}; stop its broker now",
        member.group_name
    ))
}

fn parse_node(node: &str) -> Result<NodeId, MembershipRefusal> {
    node.parse()
        .map_err(|_| MembershipRefusal::BadNode(node.to_owned()))
}

async fn change(member: &GroupMember, change: MembershipChange) -> Result<u64, MembershipRefusal> {
    let status = member.store.status();
    if status.role != Role::Leader {
        return Err(MembershipRefusal::NotLeader {
            id: member.self_id,
            leader: status
                .leader
                .map_or_else(|| NOT_ELECTED.to_owned(), |l| l.to_string()),
        });
    }
    // Back to back (an add, then the removal it replaces) the previous change may not be
    // durably committed yet: that is a wait, not a refusal.
    let attempts = async {
        loop {
            match member.store.raft().change_membership(change.clone()).await {
                Err(ProposalError::ChangeInProgress) => {
                    tokio::time::sleep(CHANGE_RETRY).await;
                }
                outcome => return outcome,
            }
        }
    };
    match tokio::time::timeout(CHANGE_TIMEOUT, attempts).await {
        Ok(Ok(place)) => Ok(place.index),
        Ok(Err(ProposalError::NotLeader { leader })) => Err(MembershipRefusal::NotLeader {
            id: member.self_id,
            leader: leader.map_or_else(|| NOT_ELECTED.to_owned(), |l| l.to_string()),
        }),
        Ok(Err(e)) => Err(MembershipRefusal::Refused(e.to_string())),
        Err(_) => Err(MembershipRefusal::Timeout(CHANGE_TIMEOUT)),
    }
}
