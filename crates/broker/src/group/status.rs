//! The group status a member reports (request code DLEDGER_METADATA, 50000, on the
//! broker's client port; body JSON below) and leadership transfer on request
//! (DLEDGER_LEADERSHIP_TRANSFER, 51005, ext field `transfereeId`, e.g. `n1`). The codes
//! are DLedger's own; the bodies are this broker's (DLedger peers use a different RPC).
//!
//! ```json
//! {"group":"RaftNode00","brokerName":"RaftNode00","brokerAddr":"127.0.0.1:30911",
//!  "brokerId":0,"selfId":"n0","role":"LEADER","term":3,"leaderId":"n0","writable":true,
//!  "firstIndex":1,"lastIndex":812,"commitIndex":812,"appliedIndex":812,
//!  "metadataComplete":true,
//!  "voter":true,"membershipIndex":0,
//!  "peers":[{"nodeId":"n1","raftAddr":"127.0.0.1:40912","voter":true,"matchIndex":812,
//!            "lastContactMsAgo":40}, ...]}
//! ```
//! `matchIndex` and `lastContactMsAgo` are known on the leader only. The members are the
//! membership in force on the answering member (`membershipIndex`: the entry that set it,
//! 0 for `dLegerPeers` as configured); a learner (`voter: false`) is catching up. A member
//! the group removed answers `"removed":true` (the field is there only then) and is out
//! of the name servers' routes.

use std::time::Duration;

use raft::{NodeId, Role, TransferError};
use serde::{Deserialize, Serialize};

use super::GroupMember;

/// How a refusal names the leader when none is known.
pub const NOT_ELECTED: &str = "not elected yet";

/// Ext field naming the node that should lead.
pub const TRANSFEREE_FIELD: &str = "transfereeId";
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerBody {
    pub node_id: String,
    pub raft_addr: String,
    #[serde(default = "voter_by_default")]
    pub voter: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_index: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_contact_ms_ago: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupStatusBody {
    pub group: String,
    pub broker_name: String,
    pub broker_addr: String,
    pub broker_id: u64,
    pub self_id: String,
    pub role: String,
    pub term: u64,
    pub leader_id: Option<String>,
    pub writable: bool,
    pub first_index: u64,
    pub last_index: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    /// Whether this member's metadata tables (topics, groups, offsets) hold every op it
    /// applied: `false` while it owes a copy after a log restart. A member copying
    /// metadata takes it only from a member that says `true`.
    #[serde(default)]
    pub metadata_complete: bool,
    /// Why this member stopped following its group (a storage error stopped its raft node
    /// or its apply loop); it leaves the routes and exits for its supervisor to restart it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    /// Whether this member votes in the membership it knows.
    #[serde(default = "voter_by_default")]
    pub voter: bool,
    #[serde(default)]
    pub membership_index: u64,
    /// The group removed this member (it is out of the name servers' routes).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
    pub peers: Vec<PeerBody>,
}

/// Members reported before membership changes existed were all voters.
fn voter_by_default() -> bool {
    true
}

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Leader => "LEADER",
        Role::Follower => "FOLLOWER",
        Role::Candidate => "CANDIDATE",
    }
}

/// How this member is known to clients, for its status.
pub struct MemberIdentity<'a> {
    pub broker_name: &'a str,
    pub broker_addr: &'a str,
    pub broker_id: u64,
}

/// This member's view of the group.
pub async fn group_status(
    identity: MemberIdentity<'_>,
    member: &GroupMember,
) -> Option<GroupStatusBody> {
    let replica = member.store.status();
    let stopped_reason = member.store.failure().borrow().clone();
    let raft = match tokio::time::timeout(STATUS_TIMEOUT, member.store.raft().status()).await {
        Ok(Ok(status)) => status,
        // A stopped raft node answers nothing: report what it last published, and why.
        _ if stopped_reason.is_some() => {
            let last = *member.store.raft().state().borrow();
            raft::Status {
                id: last.id,
                role: last.role,
                term: last.term,
                leader: last.leader,
                voted_for: None,
                commit_index: last.commit_index,
                safe_index: 0,
                first_index: member.store.commit_log().first_index(),
                last_index: last.last_index,
                persisted_index: 0,
                peers: Vec::new(),
                transferring_to: None,
                membership: member.store.raft().membership().borrow().clone(),
                membership_index: 0,
                removed: last.removed,
            }
        }
        _ => return None,
    };
    let peers = raft
        .membership
        .members()
        .iter()
        .filter(|p| p.id != member.self_id)
        .map(|p| {
            let progress = raft.peers.iter().find(|s| s.id == p.id);
            PeerBody {
                node_id: p.id.to_string(),
                raft_addr: p.addr.clone(),
                voter: p.voter,
                match_index: progress.map(|s| s.match_index),
                last_contact_ms_ago: progress.map(|s| s.last_contact_ms_ago),
            }
        })
        .collect();
    Some(GroupStatusBody {
        group: member.group_name.clone(),
        broker_name: identity.broker_name.to_owned(),
        broker_addr: identity.broker_addr.to_owned(),
        broker_id: identity.broker_id,
        self_id: member.self_id.to_string(),
        role: role_name(raft.role).to_owned(),
        term: raft.term,
        leader_id: raft.leader.map(|l| l.to_string()),
        writable: replica.writable,
        first_index: raft.first_index,
        last_index: raft.last_index,
        commit_index: raft.commit_index,
        applied_index: replica.applied_index,
        metadata_complete: *member.metadata.complete().borrow(),
        stopped_reason,
        voter: raft.membership.is_voter(member.self_id),
        membership_index: raft.membership_index,
        removed: raft.removed,
        peers,
    })
}

/// Why a transfer request was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum TransferRefusal {
    #[error("`{0}` is not a node id like n1")]
    BadTarget(String),
    #[error("{target} is not a voting member of group {group}")]
    NotMember { target: NodeId, group: String },
    #[error("this node ({id}) is not the leader; the leader is {leader}")]
    NotLeader { id: NodeId, leader: String },
    #[error("transfer to {target} failed: {source}")]
    Failed {
        target: NodeId,
        #[source]
        source: TransferError,
    },
    #[error("transfer to {0} did not complete in time")]
    Timeout(NodeId),
}

/// Moves leadership to `target` (resolves once it leads). Asking the current leader to
/// lead is a success with nothing to do.
pub async fn transfer(member: &GroupMember, target: &str) -> Result<NodeId, TransferRefusal> {
    let target: NodeId = target
        .parse()
        .map_err(|_| TransferRefusal::BadTarget(target.to_owned()))?;
    if !member.store.raft().membership().borrow().is_voter(target) {
        return Err(TransferRefusal::NotMember {
            target,
            group: member.group_name.clone(),
        });
    }
    let status = member.store.status();
    if status.role != Role::Leader {
        return Err(TransferRefusal::NotLeader {
            id: member.self_id,
            leader: status
                .leader
                .map_or_else(|| NOT_ELECTED.to_owned(), |l| l.to_string()),
        });
    }
    if target == member.self_id {
        return Ok(target);
    }
    match tokio::time::timeout(
        TRANSFER_TIMEOUT,
        member.store.raft().transfer_leadership(target),
    )
    .await
    {
        Ok(Ok(())) => Ok(target),
        Ok(Err(source)) => Err(TransferRefusal::Failed { target, source }),
        Err(_) => Err(TransferRefusal::Timeout(target)),
    }
}
